//! A self-signed HTTPS stack: untrusted without `--ca-cert`, green with it, and a certificate
//! for another host name is refused.

use super::{run, smoke_run};
use crate::common::fake_site::{FakeSite, Faults};
use crate::common::tls::tls_fixture;

#[test]
fn run_exits_3_when_the_certificate_is_untrusted() {
    let tls = tls_fixture(&["127.0.0.1", "localhost"]);
    let site = FakeSite::start_tls(Faults::default(), tls.acceptor);
    run(&mut smoke_run(&site.server.https_url(), &[]))
        .assert_code(3)
        .assert_stderr_contains("the certificate is untrusted")
        .assert_stderr_contains("--ca-cert");
}

#[test]
fn run_trusts_a_self_signed_stack_given_its_ca_certificate() {
    let tls = tls_fixture(&["127.0.0.1", "localhost"]);
    let site = FakeSite::start_tls(Faults::default(), tls.acceptor);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &tls.ca_pem).unwrap();
    run(&mut smoke_run(
        &site.server.https_url(),
        &[
            "--ca-cert",
            ca.to_str().unwrap(),
            "--category",
            "pages,health,routing",
        ],
    ))
    .assert_code(0)
    .assert_check("routing.static_served_by_nginx", "PASS");
}

#[test]
fn run_exits_3_when_the_certificate_is_for_another_host() {
    let tls = tls_fixture(&["elsewhere.test"]);
    let site = FakeSite::start_tls(Faults::default(), tls.acceptor);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &tls.ca_pem).unwrap();
    run(&mut smoke_run(
        &site.server.https_url(),
        &["--ca-cert", ca.to_str().unwrap()],
    ))
    .assert_code(3)
    .assert_stderr_contains("not valid for that host name");
}
