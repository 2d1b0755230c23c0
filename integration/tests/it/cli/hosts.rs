//! Virtual hosts behind one proxy (seed 001, `fixtures/multienv`): basic auth, a rate limit,
//! the "deployment in progress" page, a custom health path and a websocket route, each shown
//! passing on the healthy fake and failing, with its own title, on the fake broken that way.

use super::{Ran, run, smoke_run};
use crate::common::vhost_site::{STAGING_PASSWORD, STAGING_USER, VhostFaults, VhostSite};

/// The description a team with the multienv stack would write.
const STACK: &str = r#"
version = 1
name = "multienv"

[placeholder]
status = 503
contains = "Deployment in progress"

[[hosts]]
name = "staging"
host = "staging.multienv.test"
basic_auth = { user_env = "SMOKE_STAGING_USER", password_env = "SMOKE_STAGING_PASSWORD" }

[hosts.health]
path = "/api/v1/system/status/"
content_type = "application/json"
json = { "/status" = "ok", "/environment" = "staging" }

[[hosts.pages]]
name = "home"
path = "/"
contains = ["<title>multienv staging</title>"]

[[hosts.websockets]]
name = "echo"
path = "/ws/echo/"
send = "ping {{run_id}}"
expect_contains = "ping"

[[hosts]]
name = "prod"
host = "prod.multienv.test"

[hosts.health]
path = "/api/v1/system/status/"
json = { "/status" = "ok", "/environment" = "prod" }

[[hosts.pages]]
name = "home"
path = "/"
contains = ["<title>multienv prod</title>"]

[hosts.rate_limit]
path = "/api/ping/"
burst = 30
refused_status = 429
normal_requests = 2
normal_interval_ms = 300

[[hosts.websockets]]
name = "echo"
path = "/ws/echo/"
expect_contains = "smoke"
"#;

fn run_stack(site: &VhostSite, stack: &str, credentials: bool, extra: &[&str]) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stack.toml");
    std::fs::write(&path, stack).unwrap();
    let mut args = vec!["--stack", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut cmd = smoke_run(&site.url(), &args);
    if credentials {
        cmd.env("SMOKE_STAGING_USER", STAGING_USER)
            .env("SMOKE_STAGING_PASSWORD", STAGING_PASSWORD);
    } else {
        cmd.env_remove("SMOKE_STAGING_USER")
            .env_remove("SMOKE_STAGING_PASSWORD");
    }
    run(&mut cmd)
}

#[test]
fn every_virtual_host_check_passes_on_the_healthy_stack() {
    let site = VhostSite::start(VhostFaults::default());
    let ran = run_stack(&site, STACK, true, &[]);
    ran.assert_code(0);
    for check in [
        "staging.health.ok",
        "staging.auth.required",
        "staging.health.not_in_maintenance",
        "staging.pages.home",
        "staging.websocket.echo",
        "prod.health.ok",
        "prod.pages.home",
        "prod.rate_limit.normal_traffic_passes",
        "prod.rate_limit.enforced",
        "prod.websocket.echo",
    ] {
        ran.assert_check(check, "PASS");
    }
}

#[test]
fn staging_auth_required_fails_when_staging_answers_without_credentials() {
    let site = VhostSite::start(VhostFaults {
        no_auth: true,
        ..VhostFaults::default()
    });
    let ran = run_stack(&site, STACK, true, &["--category", "auth,pages"]);
    ran.assert_code(1)
        .assert_check("staging.auth.required", "FAIL")
        .assert_check("staging.pages.home", "PASS")
        .assert_stdout_contains("status 401");
}

#[test]
fn without_the_credentials_the_hosts_checks_are_skipped_naming_the_variable() {
    let site = VhostSite::start(VhostFaults::default());
    let ran = run_stack(&site, STACK, false, &[]);
    ran.assert_check("staging.pages.home", "SKIP")
        .assert_check("staging.websocket.echo", "SKIP")
        .assert_check("staging.auth.required", "PASS")
        .assert_check("prod.pages.home", "PASS")
        .assert_stdout_contains("set `SMOKE_STAGING_USER`");
}

#[test]
fn prod_rate_limit_enforced_fails_when_there_is_no_limit() {
    let site = VhostSite::start(VhostFaults {
        no_limit: true,
        ..VhostFaults::default()
    });
    let ran = run_stack(&site, STACK, true, &["--category", "rate_limit"]);
    ran.assert_code(1)
        .assert_check("prod.rate_limit.normal_traffic_passes", "PASS")
        .assert_check("prod.rate_limit.enforced", "FAIL")
        .assert_stdout_contains("rate limit not enforced: none of 30 requests at once was refused")
        .assert_stdout_contains("30 × 200");
}

#[test]
fn the_maintenance_page_fails_checks_with_the_deployment_in_progress_title() {
    let site = VhostSite::start(VhostFaults {
        maintenance: true,
        ..VhostFaults::default()
    });
    // Readiness asks prod (no basic auth), which is fine.
    let ran = run_stack(&site, STACK, true, &[]);
    ran.assert_code(1)
        .assert_check("staging.health.not_in_maintenance", "FAIL")
        .assert_check("staging.pages.home", "FAIL")
        .assert_check("staging.health.ok", "FAIL")
        .assert_check("staging.websocket.echo", "FAIL")
        .assert_check("prod.health.not_in_maintenance", "PASS")
        .assert_check("prod.pages.home", "PASS")
        .assert_stdout_contains(
            "deployment in progress: staging.multienv.test serves the maintenance page",
        );
    assert!(
        !ran.stdout.contains("unexpected response: status 503"),
        "the maintenance page is not a generic mismatch\n{ran:?}"
    );
    let notes = ran
        .stdout
        .matches("deployment in progress: staging.multienv.test serves the maintenance page:")
        .count();
    assert_eq!(notes, 1, "one note per host\n{ran:?}");
}

#[test]
fn websocket_fails_with_upgrade_refused_when_the_proxy_drops_the_upgrade() {
    let site = VhostSite::start(VhostFaults {
        no_upgrade: true,
        ..VhostFaults::default()
    });
    let ran = run_stack(&site, STACK, true, &["--category", "websocket"]);
    ran.assert_code(1)
        .assert_check("staging.websocket.echo", "FAIL")
        .assert_check("prod.websocket.echo", "FAIL")
        .assert_stdout_contains("websocket upgrade refused: status 404")
        .assert_stdout_contains("proxy_set_header Upgrade");
}

#[test]
fn websocket_fails_with_no_echo_when_nothing_answers() {
    let site = VhostSite::start(VhostFaults {
        silent_websocket: true,
        ..VhostFaults::default()
    });
    let ran = run_stack(
        &site,
        STACK,
        true,
        &["--category", "websocket", "--request-timeout", "1s"],
    );
    ran.assert_code(1)
        .assert_check("prod.websocket.echo", "FAIL")
        .assert_stdout_contains("no echo within 1s");
}

#[test]
fn the_basic_auth_password_is_never_printed_nor_written() {
    let site = VhostSite::start(VhostFaults::default());
    let dir = tempfile::tempdir().unwrap();
    let reports: Vec<_> = ["json", "junit", "markdown"]
        .iter()
        .map(|kind| (kind, dir.path().join(format!("report.{kind}"))))
        .collect();
    // A staging route whose answer echoes the request headers, `Authorization` included,
    // and fails, so that the excerpt would show them.
    let stack = STACK.replace(
        "[[hosts]]\nname = \"prod\"",
        "[[hosts.routes]]\nname = \"echo\"\npath = \"/echo-headers/\"\ncontains = [\"never there\"]\n\n[[hosts]]\nname = \"prod\"",
    );
    let mut extra = vec!["--category".to_owned(), "routing".to_owned()];
    for (kind, path) in &reports {
        extra.push(format!("--report-{kind}"));
        extra.push(path.to_str().unwrap().to_owned());
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let ran = run_stack(&site, &stack, true, &extra);
    ran.assert_code(1)
        .assert_check("staging.routing.echo", "FAIL")
        .assert_stdout_contains("****");
    let token = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{STAGING_USER}:{STAGING_PASSWORD}"),
    );
    let mut texts = vec![ran.stdout.clone(), ran.stderr.clone()];
    for (_, path) in &reports {
        texts.push(std::fs::read_to_string(path).unwrap());
    }
    for text in texts {
        assert!(!text.contains(STAGING_PASSWORD), "password leaked\n{text}");
        assert!(!text.contains(&token), "credentials leaked\n{text}");
    }
}

/// `--connect-to`: the production name in the URL (Host, and SNI over TLS), the connection to
/// a chosen address; the gate does the same with its loopback port, so `public.host` can be
/// the name a virtual host answers to.
#[test]
fn connect_to_checks_a_named_host_at_an_address_dns_does_not_give() {
    const PROD_ONLY: &str = r#"
version = 1
name = "prod-by-name"

[health]
path = "/api/v1/system/status/"
json = { "/status" = "ok", "/environment" = "prod" }

[[pages]]
name = "home"
path = "/"
contains = ["<title>multienv prod</title>"]
"#;
    let site = VhostSite::start(VhostFaults::default());
    let port = url::Url::parse(&site.url())
        .unwrap()
        .port()
        .expect("the fake site's port");
    let named = format!("http://prod.multienv.test:{port}/");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checks.toml");
    std::fs::write(&path, PROD_ONLY).unwrap();
    let checks = path.to_str().unwrap();

    let pinned = run(&mut smoke_run(
        &named,
        &["--checks", checks, "--connect-to", "127.0.0.1"],
    ));
    pinned.assert_code(0);
    pinned.assert_check("health.ok", "PASS");
    pinned.assert_check("pages.home", "PASS");

    let resolved = run(&mut smoke_run(
        &named,
        &["--checks", checks, "--ready-timeout", "2s"],
    ));
    resolved.assert_code(3);
}
