//! `smoke report`: the reports a run wrote, read back: the same human report and Markdown the
//! run printed and wrote, a table, the lines scripts read, a JUnit summary; and exit 2, with
//! what could be read still printed, for a file that is missing or not a report.

use super::scenario::full_run;
use super::{Ran, run};
use crate::common::fake_site::{FakeSite, Faults};
use crate::common::smoke_cmd::{redact, smoke};

fn report(args: &[&str]) -> Ran {
    let mut full = vec!["report"];
    full.extend_from_slice(args);
    run(&mut smoke(&full))
}

/// A failing run's JSON report and the Markdown it wrote itself.
struct Written {
    dir: tempfile::TempDir,
    ran: Ran,
}

impl Written {
    fn json(&self) -> String {
        self.dir.path().join("report.json").display().to_string()
    }

    fn markdown(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("report.md")).unwrap()
    }
}

fn failing_run(run_id: &str) -> Written {
    let site = FakeSite::start(Faults {
        static_with_marker: true,
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let md = dir.path().join("report.md");
    let ran = full_run(
        &site,
        &[
            "--run-id",
            run_id,
            "--report-json",
            json.to_str().unwrap(),
            "--report-markdown",
            md.to_str().unwrap(),
        ],
    );
    ran.assert_code(1);
    Written { dir, ran }
}

#[test]
fn report_prints_what_the_run_printed_and_wrote() {
    let written = failing_run("readback01");
    let id = Some("readback01");
    // Markdown, as `--report-markdown` wrote it (durations aside: the JSON keeps milliseconds).
    let markdown = report(&[&written.json(), "--markdown"]);
    markdown.assert_code(0);
    assert_eq!(
        redact(&markdown.stdout, id),
        redact(&written.markdown(), id)
    );
    insta::assert_snapshot!(
        "report_markdown_static_served_by_django",
        redact(&markdown.stdout, id)
    );
    // The human report, as `smoke run` printed it.
    let human = report(&[&written.json()]);
    human.assert_code(0);
    assert_eq!(redact(&human.stdout, id), redact(&written.ran.stdout, id));
}

#[test]
fn report_lines_and_table_for_scripts() {
    let written = failing_run("readback02");
    let json = written.json();
    let checks = report(&[&json, "--checks"]);
    checks.assert_code(0);
    let lines: Vec<&str> = checks.stdout.lines().collect();
    assert_eq!(lines.len(), super::reference_check_count(), "{checks:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("routing.static_served_by_nginx routing failed ")),
        "{checks:?}"
    );
    assert!(
        lines.iter().all(|l| l.split(' ').count() == 4),
        "{checks:?}"
    );
    // `smoke run` has no gate phases.
    let phases = report(&[&json, "--phases"]);
    phases.assert_code(0);
    assert!(phases.stdout.is_empty(), "{phases:?}");

    let table = report(&["--table", &json, &json]);
    table.assert_code(0);
    assert_eq!(
        table.stdout.matches("| ❌ failed |").count(),
        2,
        "{table:?}"
    );
    assert!(
        table.stdout.contains("`routing.static_served_by_nginx`"),
        "{table:?}"
    );
}

#[test]
fn report_junit_summarises_counts_and_failed_tests() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    std::fs::write(
        &junit,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="3" failures="1" errors="0">
  <testsuite name="integration::it" tests="3" disabled="0" errors="0" failures="1">
    <testcase name="cli::a" classname="integration::it"/>
    <testcase name="cli::b" classname="integration::it"><failure message="x">boom</failure></testcase>
    <testcase name="cli::c" classname="integration::it"><skipped/></testcase>
  </testsuite>
</testsuites>
"#,
    )
    .unwrap();
    let ran = report(&["--junit", junit.to_str().unwrap()]);
    ran.assert_code(0);
    insta::assert_snapshot!("report_junit_summary", ran.stdout);
    report(&["--junit", junit.to_str().unwrap(), "--phases"])
        .assert_code(2)
        .assert_stderr_contains("cannot be used with");
}

#[test]
fn report_of_a_missing_file_or_not_a_report_is_exit_2_and_prints_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(path("garbage.json"), "<html>not json</html>").unwrap();
    std::fs::write(path("other.json"), "{\"name\": \"not a report\"}").unwrap();
    std::fs::write(path("junit.xml"), "<testsuites").unwrap();

    report(&[&path("missing.json")])
        .assert_code(2)
        .assert_stderr_contains(&format!(
            "error: failed to read the report `{}`",
            path("missing.json")
        ));
    report(&[&path("garbage.json"), "--markdown"])
        .assert_code(2)
        .assert_stderr_contains("garbage.json` is not a smoke report")
        .assert_stderr_contains("caused by: expected value at line 1 column 1");
    report(&[&path("other.json"), "--checks"])
        .assert_code(2)
        .assert_stderr_contains("missing field `target`");
    report(&["--junit", &path("junit.xml")])
        .assert_code(2)
        .assert_stderr_contains("junit.xml` is not a JUnit XML report");
    report(&[])
        .assert_code(2)
        .assert_stderr_contains("<REPORT_JSON>");

    // The readable report is still printed; the table says which one was not.
    let written = failing_run("readback03");
    let both = report(&["--table", &written.json(), &path("garbage.json")]);
    both.assert_code(2)
        .assert_stdout_contains("| ❌ failed |")
        .assert_stdout_contains("| unreadable |")
        .assert_stderr_contains("is not a smoke report");
}
