//! `smoke` CLI tests against loopback servers: every bad input gets a one-paragraph error and
//! its documented exit code, and every check passes on the healthy fake AzioneLab and fails on
//! the fake broken the way it guards against.
//!
//! - this file: usage errors and unreachable targets (exit 2 and 3), `smoke list`.
//! - `scenario`: full runs on the fake AzioneLab (exit 0 and 1), each check's teeth.
//! - `reports`: the human report snapshot, JSON, JUnit, Markdown, and secret masking.
//! - `report_cmd`: `smoke report`, the reports read back for people and scripts.
//! - `plan`: `smoke gate --plan`, what the gate would do, for the CI scripts.
//! - `tls`: a self-signed stack with and without `--ca-cert`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hosts;
mod plan;
mod report_cmd;
mod reports;
mod scenario;
mod tls;

use std::sync::Arc;

use crate::common::fake_site::{FakeSite, Faults};
use crate::common::http_server::{Reply, closed_port, serve};
use crate::common::smoke_cmd::smoke;

/// Output of a finished command, for assertions that print everything when they fail.
pub(crate) struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Ran {
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n{self:?}");
        self
    }

    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{self:?}"
        );
        self
    }

    #[track_caller]
    pub fn assert_stdout_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{self:?}"
        );
        self
    }

    /// The report line of a check: `  PASS  name ...`.
    #[track_caller]
    pub fn line(&self, check: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(check))
            .unwrap_or_else(|| panic!("no report line for {check}\n{self:?}"))
    }

    #[track_caller]
    pub fn assert_check(&self, check: &str, label: &str) -> &Self {
        let line = self.line(check);
        assert!(
            line.trim_start().starts_with(label),
            "{check} is not {label}: {line}\n{self:?}"
        );
        self
    }

    /// Never a panic or a backtrace.
    #[track_caller]
    pub fn assert_no_panic(&self) -> &Self {
        for text in [&self.stdout, &self.stderr] {
            assert!(
                !text.contains("panicked") && !text.contains("RUST_BACKTRACE"),
                "{self:?}"
            );
        }
        self
    }
}

pub(crate) fn run(cmd: &mut assert_cmd::Command) -> Ran {
    let output = cmd.output().expect("run smoke");
    let ran = Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    ran.assert_no_panic();
    ran
}

/// The reference stack's checks file, which the fake AzioneLab site implements.
pub(crate) fn reference_checks() -> String {
    crate::common::workspace_root()
        .join("fixtures/azionelab/checks.toml")
        .display()
        .to_string()
}

/// How many checks the reference checks file holds.
pub(crate) fn reference_check_count() -> usize {
    smoke::catalog::load(std::path::Path::new(&reference_checks()))
        .expect("the reference checks file loads")
        .steps()
        .count()
}

/// How many of those are browser steps, which the fake sites skip (`SMOKE_BROWSER=none`).
pub(crate) fn reference_browser_count() -> usize {
    smoke::catalog::load(std::path::Path::new(&reference_checks()))
        .expect("the reference checks file loads")
        .steps()
        .filter(|s| s.needs_browser())
        .count()
}

/// `smoke run` of the reference checks (a later `--checks` wins) with short deadlines, so
/// failure paths stay fast.
pub(crate) fn smoke_run(base_url: &str, extra: &[&str]) -> assert_cmd::Command {
    let checks = reference_checks();
    let mut args = vec![
        "run",
        "--checks",
        checks.as_str(),
        "--base-url",
        base_url,
        "--request-timeout",
        "2s",
        "--ready-timeout",
        "2s",
        "--mail-timeout",
        "2s",
    ];
    args.extend_from_slice(extra);
    let mut command = smoke(&args);
    // What the gate's fixture command and secrets give the reference checks; the fake site
    // takes these. The staff token stays per test: its absence is a tested case.
    command
        .env("SMOKE_USER_TOKEN", crate::common::fake_site::USER_TOKEN)
        .env(
            "SMOKE_STAFF_PASSWORD",
            crate::common::fake_site::STAFF_PASSWORD,
        )
        .env("PAST_SHOW_ID", "900001")
        .env("UNPUBLISHED_SHOW_ID", "900002");
    command
}

#[test]
fn run_exits_2_on_a_malformed_url() {
    run(&mut smoke(&["run", "--base-url", "not a url"]))
        .assert_code(2)
        .assert_stderr_contains("`not a url` is not a URL");
}

#[test]
fn run_exits_2_on_a_url_that_is_not_http() {
    run(&mut smoke(&["run", "--base-url", "ftp://example.test/"]))
        .assert_code(2)
        .assert_stderr_contains("is not an HTTP(S) URL");
}

#[test]
fn run_exits_2_on_an_unknown_category() {
    run(&mut smoke_run(
        "http://127.0.0.1:9/",
        &["--category", "pages,bogus"],
    ))
    .assert_code(2)
    .assert_stderr_contains("unknown category `bogus`")
    .assert_stderr_contains("checkin");
}

#[test]
fn run_exits_2_without_a_checks_file_and_says_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    run(smoke(&["run", "--base-url", "http://127.0.0.1:9/"]).current_dir(dir.path()))
        .assert_code(2)
        .assert_stderr_contains("no checks file: pass `--checks FILE`");
}

#[test]
fn run_exits_2_when_the_stack_file_is_unreadable() {
    run(&mut smoke_run(
        "http://127.0.0.1:9/",
        &["--checks", "/nonexistent/checks.toml"],
    ))
    .assert_code(2)
    .assert_stderr_contains("failed to read the checks file `/nonexistent/checks.toml`")
    .assert_stderr_contains("caused by:");
}

#[test]
fn run_exits_2_when_the_stack_file_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stack.toml");
    std::fs::write(
        &path,
        "version = 1\nname = \"x\"\n[[routes]]\nname = \"a\"\npath = \"/\"\nstatuss = 200\n",
    )
    .unwrap();
    run(&mut smoke_run(
        "http://127.0.0.1:9/",
        &["--checks", path.to_str().unwrap()],
    ))
    .assert_code(2)
    .assert_stderr_contains("failed to parse the checks file")
    .assert_stderr_contains("line 6")
    .assert_stderr_contains("unknown field `statuss`")
    .assert_stderr_contains("(did you mean `status`?)");
}

#[test]
fn run_exits_2_when_the_ca_certificate_is_not_pem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "this is not a certificate").unwrap();
    run(&mut smoke_run(
        "https://127.0.0.1:9/",
        &["--ca-cert", path.to_str().unwrap()],
    ))
    .assert_code(2)
    .assert_stderr_contains("failed to use the CA certificate");
}

#[test]
fn run_exits_2_on_an_unsupported_mailbox_url() {
    run(&mut smoke_run(
        "http://127.0.0.1:9/",
        &["--mailbox", "pop3://mail.example.test/"],
    ))
    .assert_code(2)
    .assert_stderr_contains("failed to use `--mailbox`");
}

#[test]
fn run_exits_3_when_the_host_does_not_resolve() {
    run(&mut smoke_run("http://smoke-no-such-host.invalid/", &[]))
        .assert_code(3)
        .assert_stderr_contains("failed to resolve the host `smoke-no-such-host.invalid`");
}

#[test]
fn run_exits_3_when_the_connection_is_refused() {
    let url = format!("http://127.0.0.1:{}/", closed_port());
    run(&mut smoke_run(&url, &["--ready-timeout", "500ms"]))
        .assert_code(3)
        .assert_stderr_contains("connection refused")
        .assert_stderr_contains("(is the site up and listening on that port?)");
}

#[test]
fn run_exits_3_when_the_server_never_answers() {
    let server = serve(Arc::new(|_: &_| Reply::Hang));
    run(&mut smoke_run(
        &server.url(),
        &["--request-timeout", "300ms", "--ready-timeout", "1s"],
    ))
    .assert_code(3)
    .assert_stderr_contains("the server never answered");
}

#[test]
fn run_exits_3_when_health_never_becomes_ok_and_says_what_it_last_saw() {
    let site = FakeSite::start(Faults {
        database_down: true,
        ..Faults::default()
    });
    run(&mut smoke_run(&site.url(), &["--ready-timeout", "700ms"]))
        .assert_code(3)
        .assert_stderr_contains("failed to see a ready answer within")
        .assert_stderr_contains("last seen: status 503")
        .assert_stderr_contains("unreachable: connection refused");
}

#[test]
fn readiness_gives_up_early_on_an_answer_that_does_not_change() {
    let server = serve(Arc::new(|_: &_| {
        Reply::json(404, &serde_json::json!({"detail": "Not found."}))
    }));
    let started = std::time::Instant::now();
    run(&mut smoke_run(&server.url(), &["--ready-timeout", "60s"]))
        .assert_code(3)
        .assert_stderr_contains("status 404, the same answer")
        .assert_stderr_contains("times in a row")
        .assert_stderr_contains("waiting does not change it")
        .assert_stderr_contains("does the health path exist");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "it waited {:?} for an answer that cannot change",
        started.elapsed()
    );
}

#[test]
fn run_exits_3_when_health_answers_html() {
    let server = serve(Arc::new(|_: &_| Reply::html(200, "<html>hello</html>")));
    run(&mut smoke_run(&server.url(), &["--ready-timeout", "300ms"]))
        .assert_code(3)
        .assert_stderr_contains("the body is not JSON (content type `text/html");
}

#[test]
fn list_prints_every_check_with_its_category_and_what_it_proves() {
    let checks = reference_checks();
    let ran = run(&mut smoke(&["list", "--checks", &checks]));
    ran.assert_code(0);
    for name in [
        "routing.static_served_by_nginx",
        "booking.capacity_enforced",
        "confirmation.qr_no_personal_data",
        "checkin.second_scan_409",
        "booking.cleanup",
    ] {
        ran.assert_stdout_contains(name);
    }
    ran.assert_stdout_contains("`/static/` is served by nginx");
}

#[test]
fn list_with_a_stack_file_lists_its_checks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stack.toml");
    std::fs::write(
        &path,
        "version = 1\nname = \"x\"\n[[pages]]\nname = \"about\"\npath = \"/about/\"\n",
    )
    .unwrap();
    let ran = run(&mut smoke(&["list", "--stack", path.to_str().unwrap()]));
    ran.assert_code(0).assert_stdout_contains("pages.about");
    assert!(!ran.stdout.contains("booking."), "{ran:?}");
}
