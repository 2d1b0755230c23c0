#!/usr/bin/env bash
# Writes a CI job summary: the test counts from nextest's JUnit report, then every Markdown
# report the gate runs left under target/gate*/ (or, for runs that wrote only JSON, their
# verdict and failed checks). Appends to $GITHUB_STEP_SUMMARY, or prints when it is unset.
# Run by hand from the repo root: `bash ci/job-summary.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${GITHUB_STEP_SUMMARY:-/dev/stdout}
python3 - "$out" <<'PY'
import glob, json, os, sys
import xml.etree.ElementTree as ET

out = open(sys.argv[1], "a", encoding="utf-8")
junit = "target/nextest/ci/junit.xml"
if os.path.exists(junit):
    root = ET.parse(junit).getroot()
    tests = int(root.get("tests", 0)); failures = int(root.get("failures", 0)); errors = int(root.get("errors", 0))
    verdict = "passed" if failures + errors == 0 else "FAILED"
    out.write(f"## Tests: {verdict}\n\n{tests} tests, {failures} failures, {errors} errors\n\n")
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            out.write(f"- failed: `{case.get('classname')}::{case.get('name')}`\n")
    out.write("\n")
else:
    out.write("## Tests\n\nno JUnit report (the test run did not get that far)\n\n")

markdown = sorted(glob.glob("target/gate*/**/*.md", recursive=True), key=os.path.getmtime)
for path in markdown[-10:]:
    out.write(f"### {path}\n\n")
    out.write(open(path, encoding="utf-8").read())
    out.write("\n\n")
if not markdown:
    reports = sorted(glob.glob("target/gate*/**/report.json", recursive=True), key=os.path.getmtime)
    if reports:
        out.write("## Gate runs\n\n| report | target | checks | failed |\n| --- | --- | --- | --- |\n")
    for path in reports[-20:]:
        try:
            report = json.load(open(path, encoding="utf-8"))
        except (OSError, ValueError) as err:
            out.write(f"| `{path}` | unreadable: {err} | | |\n")
            continue
        checks = report.get("checks", [])
        failed = [c.get("name", "?") for c in checks if str(c.get("outcome", {}).get("status", c.get("status", ""))).lower() == "failed"]
        out.write(f"| `{path}` | {report.get('target', '')} | {len(checks)} | {', '.join(failed) or '-'} |\n")
PY
