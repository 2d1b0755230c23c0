//! Reading reports back, for `smoke report`: a `report.json` written by `smoke run
//! --report-json` or `smoke gate` ([`read_json`]), the test counts of a JUnit XML file
//! ([`read_junit`]), and the small renderings scripts and job summaries consume, so that no
//! script parses a report by hand.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::RunReport;
use crate::secret::mask;

/// Why a report could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("failed to read the {what} `{path}`\n  caused by: {source}\n  (check the path)")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`{path}` is not a smoke report\n  caused by: {source}\n  (give a `report.json` written by `smoke run --report-json` or `smoke gate`)"
    )]
    NotAReport {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "`{path}` is not a JUnit XML report\n  caused by: {reason}\n  (give the JUnit file a test run wrote, e.g. nextest's `target/nextest/ci/junit.xml`)"
    )]
    NotJunit { path: PathBuf, reason: String },
    #[error(
        "the test `{test}` is in both `{first}` and `{second}`\n  (the partitions of a run must not overlap: give each `--partition hash:K/N` once, with one N)"
    )]
    Overlap {
        test: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error(
        "failed to write `{path}`\n  caused by: {reason}\n  (check that its folder exists and is writable)"
    )]
    Write { path: PathBuf, reason: String },
}

/// Writes [`merge_junit`] of `paths` to `out`.
pub fn write_merged_junit(paths: &[PathBuf], out: &Path) -> Result<(), ReadError> {
    let merged = merge_junit(paths)?;
    let failed = |reason: String| ReadError::Write {
        path: out.to_path_buf(),
        reason,
    };
    let file = std::fs::File::create(out).map_err(|err| failed(err.to_string()))?;
    merged
        .serialize(std::io::BufWriter::new(file))
        .map_err(|err| failed(chain(&err)))
}

/// Reads a report as [`super::write_json`] wrote it.
pub fn read_json(path: &Path) -> Result<RunReport, ReadError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
        what: "report",
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ReadError::NotAReport {
        path: path.to_path_buf(),
        source,
    })
}

/// The counts and failed tests of a JUnit XML report (nextest's, or `smoke`'s own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JunitSummary {
    /// `tests` of the root element.
    pub tests: usize,
    /// `failures` of the root element.
    pub failures: usize,
    /// `errors` of the root element.
    pub errors: usize,
    /// `classname::name` of every test case that failed or errored, in file order.
    pub failed: Vec<String>,
}

impl JunitSummary {
    /// The Markdown a job summary shows: a verdict heading, the counts, the failed tests.
    pub fn markdown(&self) -> String {
        let verdict = if self.failures + self.errors == 0 {
            "passed"
        } else {
            "FAILED"
        };
        let mut out = format!(
            "## Tests: {verdict}\n\n{} tests, {} failures, {} errors\n\n",
            self.tests, self.failures, self.errors
        );
        for name in &self.failed {
            let _ = writeln!(out, "- failed: `{name}`");
        }
        if !self.failed.is_empty() {
            out.push('\n');
        }
        out
    }
}

/// The test counts and failed tests of JUnit XML files, read as one run (see [`merge_junit`]).
pub fn read_junit(paths: &[PathBuf]) -> Result<JunitSummary, ReadError> {
    let report = merge_junit(paths)?;
    let failed = report
        .test_suites
        .iter()
        .flat_map(|suite| &suite.test_cases)
        .filter(|case| matches!(case.status, quick_junit::TestCaseStatus::NonSuccess { .. }))
        .map(case_id)
        .collect();
    Ok(JunitSummary {
        tests: report.tests,
        failures: report.failures,
        errors: report.errors,
        failed,
    })
}

/// `class::name`, as nextest's JUnit names a test (binary, then test).
fn case_id(case: &quick_junit::TestCase) -> String {
    match &case.classname {
        Some(class) => format!("{}::{}", class.as_str(), case.name.as_str()),
        None => case.name.as_str().to_owned(),
    }
}

/// Reads JUnit XML files (the partitions of one test run, each from its own machine) as one
/// report: suites of the same name become one, with every test case and the counts
/// recomputed; the run's time is the longest partition's (they ran side by side). A test case
/// found in two files is an error: partitions must not overlap (nextest's setup scripts, which
/// every partition runs, excepted).
pub fn merge_junit(paths: &[PathBuf]) -> Result<quick_junit::Report, ReadError> {
    let mut name = None;
    let mut time: Option<std::time::Duration> = None;
    let mut suites: Vec<quick_junit::TestSuite> = Vec::new();
    let mut seen: std::collections::BTreeMap<String, PathBuf> = Default::default();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
            what: "JUnit report",
            path: path.to_path_buf(),
            source,
        })?;
        let report = quick_junit::Report::deserialize_from_str(&text).map_err(|err| {
            ReadError::NotJunit {
                path: path.to_path_buf(),
                reason: chain(&err),
            }
        })?;
        name.get_or_insert_with(|| report.name.clone());
        time = time.max(report.time);
        for suite in report.test_suites {
            for case in &suite.test_cases {
                let id = case_id(case);
                // Every slice runs nextest's setup scripts (`@setup-script:NAME`) itself.
                if id.starts_with("@setup-script:") {
                    continue;
                }
                if let Some(first) = seen.insert(id.clone(), path.clone()) {
                    return Err(ReadError::Overlap {
                        test: id,
                        first,
                        second: path.clone(),
                    });
                }
            }
            let merged = match suites.iter_mut().position(|s| s.name == suite.name) {
                Some(at) => &mut suites[at],
                None => {
                    suites.push(quick_junit::TestSuite::new(suite.name.clone()));
                    let at = suites.len() - 1;
                    &mut suites[at]
                }
            };
            merged.time = match (merged.time, suite.time) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            merged.add_test_cases(suite.test_cases);
        }
    }
    let mut report = quick_junit::Report::new(name.unwrap_or_else(|| "merged".into()));
    if let Some(time) = time {
        report.set_time(time);
    }
    report.add_test_suites(suites);
    Ok(report)
}

/// An error and its causes on one line (quick-junit's errors keep the detail in a source).
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// Seconds with millisecond precision, as `awk` and `sort -n` read them.
fn seconds(duration: std::time::Duration) -> String {
    format!("{:.3}", duration.as_secs_f64())
}

/// `PHASE SECONDS` lines: the gate's phases, in the order they ran (none for `smoke run`).
pub fn phase_lines(report: &RunReport) -> String {
    report
        .phases
        .iter()
        .map(|p| format!("{} {}\n", p.phase, seconds(p.duration)))
        .collect()
}

/// `NAME CATEGORY STATUS SECONDS` lines: every check, in report order; the status is
/// `passed`, `failed` or `skipped`.
pub fn check_lines(report: &RunReport) -> String {
    report
        .checks
        .iter()
        .map(|c| {
            format!(
                "{} {} {} {}\n",
                c.name,
                c.category,
                c.outcome.label(),
                seconds(c.duration)
            )
        })
        .collect()
}

/// One Markdown table, a row per report: its verdict, target, counts and failed checks; a
/// report that could not be read is a row saying why.
pub fn render_table(reports: &[(PathBuf, Result<RunReport, String>)]) -> String {
    let mut out = String::from(
        "| report | verdict | target | passed | failed | skipped | failed checks |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    let cell = |text: &str| mask(text).replace('|', "\\|").replace('\n', " ");
    for (path, report) in reports {
        let path = cell(&path.display().to_string());
        match report {
            Ok(report) => {
                let (passed, failed, skipped) = report.counts();
                let verdict = match (&report.verdict, report.passed()) {
                    (_, true) => "✅ passed".to_owned(),
                    (Some(verdict), false) => format!("❌ {}", verdict.kind),
                    (None, false) if report.interrupted => "❌ interrupted".to_owned(),
                    (None, false) => "❌ failed".to_owned(),
                };
                let names = report.failed_checks();
                let names = if names.is_empty() {
                    "-".to_owned()
                } else {
                    names
                        .iter()
                        .map(|n| format!("`{}`", cell(n)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let target = if report.target.is_empty() {
                    "-".to_owned()
                } else {
                    cell(&report.target)
                };
                let _ = writeln!(
                    out,
                    "| `{path}` | {verdict} | {target} | {passed} | {failed} | {skipped} | {names} |"
                );
            }
            Err(why) => {
                let first = why.lines().next().unwrap_or_default();
                let _ = writeln!(out, "| `{path}` | unreadable | {} | | | | |", cell(first));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::{
        CheckResult, Failure, FailureKind, GateVerdict, Outcome, PhaseTiming, SkipReason,
        write_json,
    };

    fn check(name: &str, outcome: Outcome, ms: u64) -> CheckResult {
        CheckResult {
            name: name.to_owned(),
            category: name.split('.').next().unwrap_or_default().to_owned(),
            outcome,
            duration: Duration::from_millis(ms),
        }
    }

    /// A gate report holding every outcome and every skip reason `write_json` can write.
    fn gate_report() -> RunReport {
        let skips = [
            SkipReason::Prerequisite {
                step: "booking.create".into(),
                outcome: "failed".into(),
            },
            SkipReason::MissingCapture {
                name: "booking_ref".into(),
            },
            SkipReason::NeedsVariable {
                name: "SMOKE_USER_TOKEN".into(),
            },
            SkipReason::NeedsMailbox,
            SkipReason::NeedsBrowser,
            SkipReason::NeedsHttpUrl,
            SkipReason::NeedsBasicAuth {
                host: "staging".into(),
                variable: "SMOKE_STAGING_PASSWORD".into(),
            },
            SkipReason::NothingToCleanUp,
            SkipReason::Interrupted,
            SkipReason::NeverRun,
            SkipReason::NotReady,
            SkipReason::Disabled {
                reason: "TLS ends at the load balancer".into(),
            },
        ];
        let mut checks = vec![
            check("operations.migrate", Outcome::Passed, 3_100),
            check(
                "routing.static_served_by_nginx",
                Outcome::Failed(Failure {
                    kind: FailureKind::Mismatch,
                    title: "unexpected answer: `X-Backend: django`".into(),
                    request: Some("GET https://localhost:49153/static/app.css".into()),
                    expected: "header `X-Backend` absent".into(),
                    actual: "`X-Backend: django`".into(),
                    excerpt: Some("{\"detail\": \"Not found.\"}".into()),
                    hint: Some("serve `/static/` from nginx".into()),
                    evidence: vec!["evidence/nginx.log".into()],
                }),
                40,
            ),
            check(
                "health.ok",
                Outcome::Failed(Failure {
                    kind: FailureKind::Transport,
                    title: "connection refused".into(),
                    ..Failure::default()
                }),
                2,
            ),
        ];
        for (i, skip) in skips.into_iter().enumerate() {
            checks.push(check(
                &format!("booking.skipped_{i}"),
                Outcome::Skipped(skip),
                0,
            ));
        }
        RunReport {
            target: "https://localhost:49153/".into(),
            run_id: "0a1b2c3d".into(),
            duration: Duration::from_millis(21_400),
            phases: [("build", 900), ("up", 9_800), ("migrate", 3_100)]
                .into_iter()
                .map(|(phase, ms)| PhaseTiming {
                    phase: phase.into(),
                    duration: Duration::from_millis(ms),
                })
                .collect(),
            checks,
            notes: vec!["no staff token".into()],
            interrupted: false,
            leftovers: vec!["volume `x`".into()],
            verdict: Some(GateVerdict {
                kind: "failed".into(),
                reason: None,
            }),
        }
    }

    #[test]
    fn a_written_report_reads_back_as_the_same_report() {
        let dir = tempfile_dir();
        for report in [gate_report(), RunReport::default()] {
            let path = dir.join("report.json");
            write_json(&report, &path).unwrap();
            let back = read_json(&path).unwrap();
            assert_eq!(back, report);
            // And writes the same file again: the shape is kept, `passed` included.
            let again = dir.join("again.json");
            write_json(&back, &again).unwrap();
            assert_eq!(
                std::fs::read_to_string(&again).unwrap(),
                std::fs::read_to_string(&path).unwrap()
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn what_is_not_a_report_is_an_error_naming_the_file() {
        let dir = tempfile_dir();
        let cases = [
            ("garbage.json", "not json at all", "is not a smoke report"),
            ("object.json", "{\"name\": \"x\"}", "missing field `target`"),
            (
                "status.json",
                "{\"target\":\"\",\"run_id\":\"\",\"duration_ms\":0,\"checks\":[{\"name\":\"a.b\",\"category\":\"a\",\"duration_ms\":1,\"outcome\":{\"status\":\"maybe\"}}]}",
                "unknown variant `maybe`",
            ),
        ];
        for (name, text, words) in cases {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            let err = read_json(&path).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(words), "{err}");
        }
        let err = read_json(&dir.join("missing.json"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("failed to read the report `"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn phases_and_checks_print_one_line_each() {
        let report = gate_report();
        assert_eq!(
            phase_lines(&report),
            "build 0.900\nup 9.800\nmigrate 3.100\n"
        );
        let lines = check_lines(&report);
        assert!(lines.starts_with("operations.migrate operations passed 3.100\n"));
        assert!(lines.contains("\nrouting.static_served_by_nginx routing failed 0.040\n"));
        assert_eq!(lines.lines().count(), report.checks.len());
    }

    #[test]
    fn the_table_has_a_row_per_report_and_one_for_an_unreadable_one() {
        let passed = RunReport {
            target: "http://127.0.0.1:8000/".into(),
            checks: vec![check("pages.home", Outcome::Passed, 3)],
            ..RunReport::default()
        };
        let table = render_table(&[
            (PathBuf::from("a/report.json"), Ok(gate_report())),
            (PathBuf::from("b/report.json"), Ok(passed)),
            (
                PathBuf::from("c/report.json"),
                Err("`c/report.json` is not a smoke report\n  caused by: x".into()),
            ),
        ]);
        insta::assert_snapshot!("report_table", table);
    }

    #[test]
    fn partitions_merge_into_one_run_and_may_not_overlap() {
        let dir = tempfile_dir();
        let part = |k: usize, cases: &str| {
            let path = dir.join(format!("junit-{k}.xml"));
            std::fs::write(
                &path,
                format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="2" failures="0" errors="0" time="{k}.5">
  <testsuite name="integration::it" tests="2" disabled="0" errors="0" failures="0">{cases}</testsuite>
</testsuites>
"#
                ),
            )
            .unwrap();
            path
        };
        let one = part(
            1,
            r#"<testcase name="cli::a" classname="integration::it"/><testcase name="gate::b" classname="integration::it"><failure message="boom">x</failure></testcase><testcase name="preflight" classname="@setup-script:preflight"/>"#,
        );
        let two = part(
            2,
            r#"<testcase name="cli::c" classname="integration::it"/><testcase name="preflight" classname="@setup-script:preflight"/>"#,
        );
        let merged = merge_junit(&[one.clone(), two.clone()]).unwrap();
        assert_eq!(
            (merged.tests, merged.failures),
            (5, 1),
            "each slice's setup script stays"
        );
        assert_eq!(merged.test_suites.len(), 1, "one suite per name");
        assert_eq!(merged.time, Some(std::time::Duration::from_millis(2500)));
        let summary = read_junit(&[one.clone(), two.clone()]).unwrap();
        assert_eq!(summary.failed, ["integration::it::gate::b"]);
        let out = dir.join("merged.xml");
        write_merged_junit(&[one.clone(), two], &out).unwrap();
        assert_eq!(read_junit(std::slice::from_ref(&out)).unwrap().tests, 5);
        let again = part(
            3,
            r#"<testcase name="cli::a" classname="integration::it"/>"#,
        );
        let err = merge_junit(&[one, again]).unwrap_err().to_string();
        assert!(
            err.contains("`integration::it::cli::a` is in both"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn junit_counts_and_failed_tests_are_read() {
        let dir = tempfile_dir();
        let path = dir.join("junit.xml");
        std::fs::write(
            &path,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="3" failures="1" errors="1">
  <testsuite name="integration::it" tests="3" disabled="0" errors="1" failures="1">
    <testcase name="cli::ok" classname="integration::it"/>
    <testcase name="cli::bad" classname="integration::it"><failure message="boom">x</failure></testcase>
    <testcase name="gate::err" classname="integration::it"><error message="killed"/></testcase>
  </testsuite>
</testsuites>
"#,
        )
        .unwrap();
        let summary = read_junit(std::slice::from_ref(&path)).unwrap();
        assert_eq!(
            summary.markdown(),
            "## Tests: FAILED\n\n3 tests, 1 failures, 1 errors\n\n\
             - failed: `integration::it::cli::bad`\n- failed: `integration::it::gate::err`\n\n"
        );
        std::fs::write(&path, "<testsuites").unwrap();
        let err = read_junit(std::slice::from_ref(&path))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a JUnit XML report"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "smoke-read-test-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let _ = std::fs::create_dir_all(&dir);
        dir
    }
}
