//! Full runs of the built-in suite against the fake AzioneLab: all green when it is healthy,
//! and each check failing when the fake is broken the way that check guards against.

use rstest::rstest;

use super::{Ran, run, smoke_run};
use crate::common::fake_site::{FakeSite, Faults, STAFF_TOKEN, http_redirector};

/// A full run with staff token, mailbox and HTTP URL.
pub(crate) fn full_run(site: &FakeSite, extra: &[&str]) -> Ran {
    let redirector = http_redirector(site.url(), false);
    let mailbox = site.mailbox_url();
    let mut args = vec!["--mailbox", mailbox.as_str(), "--http-url"];
    let http_url = redirector.url();
    args.push(&http_url);
    args.extend_from_slice(extra);
    run(smoke_run(&site.url(), &args).env("SMOKE_STAFF_TOKEN", STAFF_TOKEN))
}

#[test]
fn run_exits_0_when_every_check_passes_and_leaves_nothing_behind() {
    let site = FakeSite::start(Faults::default());
    let ran = full_run(&site, &[]);
    ran.assert_code(0).assert_stdout_contains(&format!(
        "result: ok. {} passed, 0 failed, {} skipped",
        super::reference_check_count() - super::reference_browser_count(),
        super::reference_browser_count()
    ));
    assert!(
        site.show_titles().is_empty(),
        "shows left behind: {:?}",
        site.show_titles()
    );
    // The only note: the browser checks the fake site skips.
    let notes: Vec<&str> = ran
        .stdout
        .lines()
        .filter(|l| l.starts_with("note:"))
        .collect();
    assert!(
        notes.iter().all(|n| n.starts_with("note: no browser:")),
        "{ran:?}"
    );
}

#[test]
fn run_without_staff_token_skips_staff_steps_and_says_so() {
    let site = FakeSite::start(Faults::default());
    let ran = run(&mut smoke_run(
        &site.url(),
        &["--mailbox", &site.mailbox_url()],
    ));
    ran.assert_code(0)
        .assert_check("booking.create_show", "SKIP")
        .assert_stdout_contains("needs the environment variable `SMOKE_STAFF_TOKEN` (set it)")
        .assert_check("booking.create", "SKIP")
        .assert_stdout_contains("because `booking.create_show` was skipped")
        .assert_stdout_contains("note: `SMOKE_STAFF_TOKEN` is not set: ")
        .assert_check("pages.home", "PASS");
}

#[test]
fn run_with_categories_runs_those_and_the_steps_they_depend_on() {
    let site = FakeSite::start(Faults::default());
    let ran = full_run(&site, &["--category", "checkin"]);
    ran.assert_code(0)
        .assert_check("checkin.second_scan_409", "PASS")
        .assert_check("booking.create", "PASS");
    assert!(!ran.stdout.contains("routing."), "{ran:?}");
    assert!(!ran.stdout.contains("capacity"), "{ran:?}");
    assert!(site.show_titles().is_empty());
}

#[rstest]
#[case::static_served_by_django(Faults { static_with_marker: true, ..Faults::default() }, "routing.static_served_by_nginx", "header `X-Backend` absent")]
#[case::admin_not_proxied(Faults { admin_not_proxied: true, ..Faults::default() }, "routing.admin_reaches_django", "`X-Backend: django`")]
#[case::unknown_api_serves_index(Faults { unknown_api_serves_index: true, ..Faults::default() }, "routing.unknown_api_is_json_404", "status 404")]
#[case::missing_frame_options(Faults { missing_frame_options: true, ..Faults::default() }, "routing.security_headers", "`X-Frame-Options: DENY`")]
#[case::short_token(Faults { short_token: true, ..Faults::default() }, "confirmation.token_unguessable", "`{{token}}` is guessable")]
#[case::qr_reveals_email(Faults { qr_reveals_email: true, ..Faults::default() }, "confirmation.qr_no_personal_data", "the QR code reveals personal data")]
#[case::second_confirm_resends(Faults { second_confirm_resends: true, ..Faults::default() }, "confirmation.idempotent", "exactly 1 matching email(s)")]
#[case::second_scan_accepted(Faults { second_scan_accepted: true, ..Faults::default() }, "checkin.second_scan_409", "status 409")]
#[case::oversells(Faults { oversells: true, ..Faults::default() }, "booking.capacity_enforced", "10 × 201, 40 × 409")]
#[case::checkin_without_auth(Faults { checkin_without_auth: true, ..Faults::default() }, "checkin.requires_staff", "status 401 or 403")]
#[case::html_where_json_expected(Faults { api_serves_html: true, ..Faults::default() }, "routing.api_reaches_django", "content type `text/html")]
#[case::server_error(Faults { home_502: true, ..Faults::default() }, "pages.home", "could not get an answer from the backend: status 502")]
#[case::huge_body(Faults { huge_home: true, ..Faults::default() }, "pages.home", "larger than the 1 MiB cap")]
#[case::truncated_body(Faults { truncated_home: true, ..Faults::default() }, "pages.home", "the connection closed early")]
#[case::redirect_loop(Faults { shows_redirect_loop: true, ..Faults::default() }, "pages.shows", "redirect loop: `Location` is the request URL itself")]
#[case::confirm_500(Faults { confirm_500: true, ..Faults::default() }, "confirmation.unknown_token_404", "the backend failed: status 500")]
fn run_exits_1_and_names_the_check_when_the_site_is_broken(
    #[case] faults: Faults,
    #[case] check: &str,
    #[case] detail: &str,
) {
    let site = FakeSite::start(faults);
    let ran = full_run(&site, &[]);
    ran.assert_code(1)
        .assert_check(check, "FAIL")
        .assert_stdout_contains(detail);
    assert!(
        site.show_titles().is_empty(),
        "shows left behind: {:?}\n{ran:?}",
        site.show_titles()
    );
}

#[test]
fn run_exits_1_when_the_mailbox_never_receives_the_email_and_still_cleans_up() {
    let site = FakeSite::start(Faults {
        no_emails: true,
        ..Faults::default()
    });
    let ran = full_run(&site, &["--mail-timeout", "400ms"]);
    ran.assert_code(1)
        .assert_check("confirmation.email_received", "FAIL")
        .assert_stdout_contains("never arrived")
        .assert_check("confirmation.confirm", "SKIP")
        .assert_stdout_contains("because `confirmation.email_received` failed")
        .assert_check("booking.cleanup", "PASS");
    assert!(site.show_titles().is_empty());
}

#[test]
fn run_exits_1_when_the_http_site_does_not_redirect() {
    let site = FakeSite::start(Faults::default());
    let redirector = http_redirector(site.url(), true);
    let ran = run(&mut smoke_run(
        &site.url(),
        &["--category", "routing", "--http-url", &redirector.url()],
    ));
    ran.assert_code(1)
        .assert_check("routing.http_redirects_to_https", "FAIL")
        .assert_stdout_contains("status 301");
}

#[test]
fn two_concurrent_runs_against_one_site_do_not_collide() {
    let site = FakeSite::start(Faults::default());
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| full_run(&site, &["--category", "booking,confirmation,checkin"]));
        let b = scope.spawn(|| full_run(&site, &["--category", "booking,confirmation,checkin"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    a.assert_code(0);
    b.assert_code(0);
    assert!(site.show_titles().is_empty());
}

#[test]
fn a_stack_file_describes_another_stack() {
    let site = FakeSite::start(Faults {
        static_with_marker: true,
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stack.toml");
    std::fs::write(
        &path,
        r#"
version = 1
name = "other"
backend_marker = { header = "X-Backend" }

[health]
path = "/api/health/live/"
json = { "/status" = "ok" }

[[pages]]
name = "home"
path = "/"
contains = ["AzioneLab"]

[[routes]]
name = "static_from_nginx"
path = "/static/admin/css/base.css"
backend = false
"#,
    )
    .unwrap();
    let ran = run(&mut smoke_run(
        &site.url(),
        &["--stack", path.to_str().unwrap()],
    ));
    ran.assert_code(1)
        .assert_check("health.ok", "PASS")
        .assert_check("pages.home", "PASS")
        .assert_check("routing.static_from_nginx", "FAIL");
    assert!(!ran.stdout.contains("booking"), "{ran:?}");
}

#[test]
fn ctrl_c_cleans_up_what_the_run_created_then_exits_130() {
    let site = FakeSite::start(Faults {
        hang_confirm: true,
        ..Faults::default()
    });
    let child = std::process::Command::new(crate::common::smoke_cmd::smoke_bin())
        .args([
            "run",
            "--checks",
            &super::reference_checks(),
            "--base-url",
            &site.url(),
            "--mailbox",
            &site.mailbox_url(),
            "--request-timeout",
            "30s",
        ])
        .env("SMOKE_STAFF_TOKEN", STAFF_TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until the run has created its shows and hangs on the confirmation.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let confirming = |site: &FakeSite| {
        site.requests()
            .iter()
            .any(|r| r == "POST /api/bookings/confirm/")
    };
    while site.show_titles().is_empty() || !confirming(&site) {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never reached the confirmation: {:?}",
            site.requests()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("note: the run was interrupted; cleanup ran before exiting"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the run was interrupted before it ran"),
        "{stdout}"
    );
    assert!(
        site.show_titles().is_empty(),
        "shows left behind: {:?}",
        site.show_titles()
    );
}
