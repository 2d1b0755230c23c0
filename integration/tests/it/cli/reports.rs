//! The reports: the human one as a redacted snapshot, JSON and JUnit checked structurally,
//! Markdown for step summaries, and no secret anywhere.

use super::scenario::full_run;
use super::{run, smoke_run};
use crate::common::fake_site::{FakeSite, Faults, STAFF_TOKEN, http_redirector};
use crate::common::smoke_cmd::redact;

#[test]
fn human_report_lists_every_check_and_explains_the_failure() {
    let site = FakeSite::start(Faults {
        static_with_marker: true,
        ..Faults::default()
    });
    let ran = full_run(&site, &["--run-id", "snapshot01"]);
    ran.assert_code(1);
    insta::assert_snapshot!(
        "human_report_static_served_by_django",
        redact(&ran.stdout, Some("snapshot01"))
    );
}

#[test]
fn live_progress_prints_one_line_per_check_on_stderr() {
    let site = FakeSite::start(Faults::default());
    let ran = full_run(&site, &["--category", "routing"]);
    ran.assert_code(0);
    let lines = ran
        .stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("PASS"))
        .count();
    let routing = smoke::catalog::load(std::path::Path::new(&super::reference_checks()))
        .expect("the reference checks file loads")
        .steps()
        .filter(|s| s.category == "routing")
        .count();
    assert_eq!(lines, routing, "{ran:?}");
    let quiet = full_run(&site, &["--category", "routing", "--quiet"]);
    assert!(!quiet.stderr.contains("PASS"), "{quiet:?}");
}

#[test]
fn json_junit_and_markdown_reports_hold_every_check() {
    let site = FakeSite::start(Faults {
        second_scan_accepted: true,
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let junit = dir.path().join("junit.xml");
    let markdown = dir.path().join("summary.md");
    std::fs::write(&markdown, "# earlier step\n").unwrap();
    let ran = full_run(
        &site,
        &[
            "--report-json",
            json.to_str().unwrap(),
            "--report-junit",
            junit.to_str().unwrap(),
            "--report-markdown",
            markdown.to_str().unwrap(),
        ],
    );
    ran.assert_code(1);

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["passed"], false);
    assert_eq!(report["interrupted"], false);
    assert!(report["run_id"].as_str().is_some_and(|id| id.len() == 10));
    let checks = report["checks"].as_array().unwrap();
    let total = super::reference_check_count();
    assert_eq!(checks.len(), total);
    let failed: Vec<&serde_json::Value> = checks
        .iter()
        .filter(|c| c["outcome"]["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{report:#}");
    let failure = failed[0];
    assert_eq!(failure["name"], "checkin.second_scan_409");
    assert_eq!(failure["category"], "checkin");
    assert_eq!(failure["outcome"]["expected"], "status 409");
    assert_eq!(failure["outcome"]["actual"], "status 201");
    assert!(
        failure["outcome"]["request"]
            .as_str()
            .unwrap()
            .starts_with("POST http://127.0.0.1:")
    );
    assert!(failure["duration_ms"].is_u64());
    // Only the step ordered after the failed one is skipped.
    let skipped: Vec<&str> = checks
        .iter()
        .filter(|c| c["outcome"]["status"] == "skipped")
        .filter_map(|c| c["name"].as_str())
        .filter(|name| !name.starts_with("browser."))
        .collect();
    assert_eq!(skipped, ["checkin.tampered_code_rejected"], "{report:#}");

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(&format!(
            r#"<testsuites name="smoke" tests="{total}" failures="1""#
        )),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), total, "{xml}");
    assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
    assert!(
        xml.contains(r#"<testcase name="checkin.second_scan_409" classname="smoke.checkin""#),
        "{xml}"
    );
    for category in [
        "pages",
        "health",
        "routing",
        "booking",
        "confirmation",
        "checkin",
    ] {
        assert!(
            xml.contains(&format!(r#"<testsuite name="{category}""#)),
            "{category}: {xml}"
        );
    }

    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(
        md.starts_with("# earlier step\n"),
        "the summary is appended to: {md}"
    );
    assert!(md.contains("## smoke: ❌ failed"), "{md}");
    assert!(
        md.contains("| `checkin.second_scan_409` | ❌ fail |"),
        "{md}"
    );
    assert!(
        md.contains("<details><summary><code>checkin.second_scan_409</code></summary>"),
        "{md}"
    );
}

#[test]
fn the_staff_token_never_appears_in_output_or_reports() {
    let site = FakeSite::start(Faults {
        echo_authorization: true,
        ..Faults::default()
    });
    let redirector = http_redirector(site.url(), false);
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<_> = ["r.json", "r.xml", "r.md"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    let ran = run(smoke_run(
        &site.url(),
        &[
            "--mailbox",
            &site.mailbox_url(),
            "--http-url",
            &redirector.url(),
            "--report-json",
            paths[0].to_str().unwrap(),
            "--report-junit",
            paths[1].to_str().unwrap(),
            "--report-markdown",
            paths[2].to_str().unwrap(),
        ],
    )
    .env("SMOKE_STAFF_TOKEN", STAFF_TOKEN));
    // The fake echoed the header into a failing response: the excerpt is shown, masked.
    ran.assert_code(1)
        .assert_check("checkin.invalid_code_rejected", "FAIL")
        .assert_stdout_contains("Authorization: ****");
    assert!(
        !ran.stdout.contains(STAFF_TOKEN) && !ran.stderr.contains(STAFF_TOKEN),
        "{ran:?}"
    );
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            !text.contains(STAFF_TOKEN),
            "{} leaks the token:\n{text}",
            path.display()
        );
        assert!(
            text.contains("****"),
            "{} lost the masked excerpt:\n{text}",
            path.display()
        );
    }
}

#[test]
fn report_write_failure_is_a_usage_error() {
    let site = FakeSite::start(Faults::default());
    run(&mut smoke_run(
        &site.url(),
        &[
            "--category",
            "health",
            "--report-json",
            "/nonexistent-dir/report.json",
        ],
    ))
    .assert_code(2)
    .assert_stderr_contains("failed to write the JSON report `/nonexistent-dir/report.json`");
}
