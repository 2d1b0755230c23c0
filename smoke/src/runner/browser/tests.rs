//! Browser checks against a real headless Chromium and a real HTTP server on loopback that
//! serves a small site, whole and broken in each of the ways a browser check guards against.
//!
//! Without Chromium (`bash ci/provision-test-tools.sh` installs it) the tests say so and
//! pass, unless `SMOKE_REQUIRE_BROWSER=1` is set (CI sets it).

use std::path::PathBuf;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::report::{Outcome, RunReport, SkipReason};
use crate::runner::{NoProgress, Selection, Target, run_until};

const INDEX: &str = r#"<!doctype html><html><head><meta charset="utf-8"><title>Shop</title>
<script src="/app.js" defer></script></head>
<body><h1>Shop</h1><ul id="list"><li class="muted">Loading</li></ul></body></html>"#;

const APP: &str = r#"fetch("/api/items/").then((r) => r.json()).then((items) => {
  const ul = document.getElementById("list");
  ul.replaceChildren(...items.map((i) => { const li = document.createElement("li"); li.className = "item"; li.textContent = i; return li; }));
});"#;

/// One check: the home page shows "Shop".
const HOME: &str =
    "[[checks]]\nname = \"browser.home\"\nbrowser = { path = \"/\", wait_text = \"Shop\" }\n";

const FORM: &str = r#"<!doctype html><html><head><meta charset="utf-8"><title>Form</title></head>
<body><form id="f"><input id="name" autocomplete="off"><button id="go">Go</button></form><p id="out" hidden></p>
<script>
document.getElementById("f").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = document.getElementById("name").value;
  const r = await fetch("/api/hello/", { method: "POST", body: name });
  const out = document.getElementById("out");
  out.textContent = await r.text();
  out.hidden = false;
});
</script></body></html>"#;

fn html(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn js(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/javascript")], body).into_response()
}

/// The site: `/` and `/form/` work; every other page is broken in one way.
async fn serve() -> url::Url {
    let app = Router::new()
        .route("/", get(|| async { html(INDEX) }))
        .route("/app.js", get(|| async { js(APP) }))
        .route(
            "/api/items/",
            get(|| async { axum::Json(vec!["apples", "pears"]).into_response() }),
        )
        .route("/form/", get(|| async { html(FORM) }))
        .route(
            "/api/hello/",
            post(|body: String| async move { format!("hello {body}") }),
        )
        .route(
            "/throws/",
            get(|| async { html(r#"<!doctype html><h1>Shop</h1><script>null.render()</script>"#) }),
        )
        .route(
            "/console/",
            get(|| async {
                html(r#"<!doctype html><h1>Shop</h1><script>console.error("boom", 42)</script>"#)
            }),
        )
        .route(
            "/missing-script/",
            get(|| async { html(r#"<!doctype html><h1>Shop</h1><script src="/gone.4f2a9c1b.js"></script>"#) }),
        )
        // The SPA fallback: an unknown script answered with the index page, 200 text/html.
        .route(
            "/fallback-script/",
            get(|| async { html(r#"<!doctype html><h1>Shop</h1><script src="/old.js"></script>"#) }),
        )
        .route("/old.js", get(|| async { html(INDEX) }))
        .route(
            "/wrong-api/",
            get(|| async {
                html(r#"<!doctype html><h1>Shop</h1><script>fetch("/api/item/").then(() => {})</script>"#)
            }),
        )
        .route(
            "/other-origin/",
            get(|| async {
                html(r#"<!doctype html><h1>Shop</h1><script>fetch("http://api.invalid/items/").catch(() => {})</script>"#)
            }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found").into_response() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url::Url::parse(&format!("http://{addr}/")).expect("a URL")
}

/// The browser, or `None` (after saying why) when there is none.
fn browser(test: &str) -> Option<PathBuf> {
    match super::find(None) {
        Ok(Some(path)) => Some(path),
        other => {
            let why = match other {
                Err(e) => e,
                _ => format!("no browser is installed: {}", super::INSTALL_HINT),
            };
            if std::env::var_os("SMOKE_REQUIRE_BROWSER").is_some_and(|v| v == "1") {
                panic!("`{test}` needs a real browser: {why}; SMOKE_REQUIRE_BROWSER=1 is set");
            }
            eprintln!("SKIPPED `{test}`: it needs a real browser and {why}.");
            None
        }
    }
}

/// Runs the checks file `checks` (its `[[checks]]` only) against the site.
async fn run(test: &str, checks: &str, screenshots: bool) -> Option<(RunReport, PathBuf)> {
    let executable = browser(test)?;
    let base = serve().await;
    let evidence =
        std::env::temp_dir().join(format!("smoke-browser-test-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&evidence);
    let mut target = Target::new(base);
    target.browser = Some(executable);
    target.evidence_dir = evidence.clone();
    target.screenshots = screenshots;
    Some((run_on(&target, checks).await, evidence))
}

/// Runs the `[[checks]]` entries `checks` against `target`.
async fn run_on(target: &Target, checks: &str) -> RunReport {
    let text = format!("version = 1\nname = \"shop\"\n{checks}");
    let suite = crate::catalog::parse(&text, std::path::Path::new("checks.toml"))
        .expect("the test's checks parse");
    run_until(
        &suite,
        target,
        &Selection::All,
        &NoProgress,
        std::future::pending(),
    )
    .await
}

fn outcome<'a>(report: &'a RunReport, name: &str) -> &'a Outcome {
    &report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {report:#?}"))
        .outcome
}

/// The failure of `name`, which must have failed.
fn failure_of(report: &RunReport, name: &str) -> String {
    match outcome(report, name) {
        Outcome::Failed(f) => format!("{}\n{}\n{}", f.title, f.actual, f.evidence.join("\n")),
        other => panic!("`{name}` should have failed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_rendered_page_passes_and_each_breakage_fails_with_a_screenshot() {
    let checks = r##"
[[checks]]
name = "browser.home"
browser = { path = "/", wait_for = "#list li.item", wait_text = "pears" }
[[checks]]
name = "browser.throws"
browser = { path = "/throws/", wait_text = "Shop" }
[[checks]]
name = "browser.console"
browser = { path = "/console/", wait_text = "Shop" }
[[checks]]
name = "browser.missing_script"
browser = { path = "/missing-script/", wait_text = "Shop" }
[[checks]]
name = "browser.fallback_script"
browser = { path = "/fallback-script/", wait_text = "Shop" }
[[checks]]
name = "browser.wrong_api"
browser = { path = "/wrong-api/", wait_text = "Shop" }
[[checks]]
name = "browser.other_origin"
browser = { path = "/other-origin/", wait_text = "Shop" }
[[checks]]
name = "browser.allowed"
browser = { path = "/console/", wait_text = "Shop", allow_errors = ["boom"] }
[[checks]]
name = "browser.never_shown"
browser = { path = "/", wait_for = "#list li.item", wait_text = "cherries", timeout_ms = 8000 }
"##;
    let Some((report, evidence)) = run("rendered", checks, false).await else {
        return;
    };
    assert!(
        matches!(outcome(&report, "browser.home"), Outcome::Passed),
        "{report:#?}"
    );
    assert!(
        matches!(outcome(&report, "browser.allowed"), Outcome::Passed),
        "{report:#?}"
    );
    for (name, says) in [
        ("browser.throws", "uncaught exception: TypeError"),
        ("browser.console", "console error: boom 42"),
        ("browser.missing_script", "script answered 404"),
        ("browser.fallback_script", "was answered with HTML"),
        (
            "browser.wrong_api",
            "request answered 404: http://127.0.0.1",
        ),
        ("browser.other_origin", "failed: http://api.invalid/items/"),
        (
            "browser.never_shown",
            "did not show \"cherries\" within 8.0s",
        ),
    ] {
        let failure = failure_of(&report, name);
        assert!(failure.contains(says), "`{name}`: {failure}");
        let png = evidence.join(format!("{name}.png"));
        let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert!(bytes.starts_with(b"\x89PNG"), "`{name}`: not a PNG");
        let log =
            std::fs::read_to_string(evidence.join(format!("{name}.log"))).expect("the log is kept");
        assert!(log.contains("browser visit of"), "{log}");
        assert!(failure.contains(&png.display().to_string()), "{failure}");
    }
    // A passing check keeps nothing unless asked.
    assert!(!evidence.join("browser.home.png").exists());
    let _ = std::fs::remove_dir_all(&evidence);
}

#[tokio::test]
async fn actions_type_click_and_wait_and_passing_screenshots_are_kept_on_request() {
    let checks = r##"
[values]
who = "visitor {{run_id}}"
[[checks]]
name = "browser.form"
browser = { path = "/form/", actions = [ { fill = "#name", value = "{{who}}" }, { click = "#go" }, { wait_for = "#out", text = "hello visitor" } ] }
[[checks]]
name = "browser.form_enter"
browser = { path = "/form/", actions = [ { fill = "#name", value = "key" }, { press = "Enter" }, { wait_text = "hello key" } ] }
[[checks]]
name = "browser.click_missing"
browser = { path = "/form/", timeout_ms = 8000, actions = [ { click = "#nowhere" } ] }
[[checks]]
name = "browser.bad_selector"
browser = { path = "/form/", wait_for = "li[" }
"##;
    let Some((report, evidence)) = run("actions", checks, true).await else {
        return;
    };
    for name in ["browser.form", "browser.form_enter"] {
        assert!(
            matches!(outcome(&report, name), Outcome::Passed),
            "`{name}`: {report:#?}"
        );
        assert!(
            evidence.join(format!("{name}.png")).exists(),
            "`--screenshots` keeps a passing check's screenshot"
        );
    }
    let failure = failure_of(&report, "browser.click_missing");
    assert!(
        failure.contains("`#nowhere` did not become visible"),
        "{failure}"
    );
    let failure = failure_of(&report, "browser.bad_selector");
    assert!(failure.contains("not a valid CSS selector"), "{failure}");
    let _ = std::fs::remove_dir_all(&evidence);
}

#[tokio::test]
async fn without_a_browser_the_browser_checks_are_skipped_with_a_note() {
    let target = Target::new(serve().await);
    let report = run_on(&target, HOME).await;
    assert_eq!(
        outcome(&report, "browser.home"),
        &Outcome::Skipped(SkipReason::NeedsBrowser)
    );
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("no browser: 1 browser checks")
                && n.contains("apt-get install chromium")),
        "{:?}",
        report.notes
    );
}

/// An HTTPS listener for axum with a certificate for `shop.test`.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    /// Before the first handshake, change the machine's network (a bridge of this name) and
    /// let the browser's connection wait a moment.
    hold_first: Option<String>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Some(name) = self.hold_first.take() {
                let change = tokio::task::spawn_blocking(move || change_the_network(&name));
                tokio::time::sleep(std::time::Duration::from_millis(3000)).await;
                let _ = change.await;
            }
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Serves `page` over HTTPS as `https://shop.test:PORT/`; returns that URL and the
/// certificate (PEM).
async fn serve_https(page: String, hold_first: Option<String>) -> (url::Url, Vec<u8>) {
    use tokio_rustls::rustls;
    let key = rcgen::KeyPair::generate().expect("a key");
    let cert = rcgen::CertificateParams::new(vec!["shop.test".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("a certificate");
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .expect("a TLS config");
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let port = tcp.local_addr().expect("local address").port();
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)),
        hold_first,
    };
    let page: &'static str = Box::leak(page.into_boxed_str());
    let app = Router::new().route("/", get(move || async move { html(page) }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (
        url::Url::parse(&format!("https://shop.test:{port}/")).expect("a URL"),
        cert.pem().into_bytes(),
    )
}

#[tokio::test]
async fn an_https_page_loading_a_script_over_http_fails_as_mixed_content() {
    let Some(executable) = browser("mixed") else {
        return;
    };
    // The script exists over plain HTTP on the same name; an HTTPS page must not load it.
    let plain = serve().await;
    let page = format!(
        r#"<!doctype html><h1>Shop</h1><script src="http://shop.test:{}/app.js"></script>"#,
        plain.port().expect("a port")
    );
    let (base, pem) = serve_https(page, None).await;
    let evidence =
        std::env::temp_dir().join(format!("smoke-browser-test-mixed-{}", std::process::id()));
    let mut target = Target::new(base);
    target.browser = Some(executable);
    target.connect_ip = Some(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    target.ca_cert_pem = Some(pem);
    target.evidence_dir = evidence.clone();
    let report = run_on(&target, &HOME.replace("browser.home", "browser.mixed")).await;
    let failure = failure_of(&report, "browser.mixed");
    assert!(failure.contains("mixed content"), "{failure}");
    let _ = std::fs::remove_dir_all(&evidence);
}

/// The protocol's event kinds reach the journal on separate streams, so their order across
/// kinds is not guaranteed: an end read before its start must not leave the request "in
/// flight" (the visit would then wait for the deadline and pass 15 s late).
mod journal_order {
    use std::sync::Arc;

    use chromiumoxide::cdp::browser_protocol::network::{
        EventLoadingFailed, EventLoadingFinished, EventRequestWillBeSent,
    };

    use super::super::{Event, Journal, record};

    fn sent(id: &str, url: &str, kind: &str) -> Event {
        let event: EventRequestWillBeSent = serde_json::from_value(serde_json::json!({
            "requestId": id, "loaderId": "L", "documentURL": "https://site.test/",
            "request": {"url": url, "method": "GET", "headers": {}, "initialPriority": "High",
                        "referrerPolicy": "no-referrer"},
            "timestamp": 1.0, "wallTime": 1.0, "initiator": {"type": "script"},
            "redirectHasExtraInfo": false, "type": kind
        }))
        .expect("a requestWillBeSent event");
        Event::Request(Arc::new(event))
    }

    fn finished(id: &str) -> Event {
        let event: EventLoadingFinished = serde_json::from_value(
            serde_json::json!({"requestId": id, "timestamp": 2.0, "encodedDataLength": 10.0}),
        )
        .expect("a loadingFinished event");
        Event::Finished(Arc::new(event))
    }

    fn failed(id: &str) -> Event {
        let event: EventLoadingFailed = serde_json::from_value(serde_json::json!({
            "requestId": id, "timestamp": 2.0, "type": "Fetch", "errorText": "net::ERR_FAILED"
        }))
        .expect("a loadingFailed event");
        Event::Failed(Arc::new(event))
    }

    fn journal() -> Journal {
        Journal::new(&url::Url::parse("https://site.test/").unwrap())
    }

    #[test]
    fn an_end_seen_before_its_start_leaves_nothing_in_flight() {
        let mut j = journal();
        record(&mut j, &finished("1"));
        record(&mut j, &sent("1", "https://site.test/api/shows/", "Fetch"));
        record(&mut j, &failed("2"));
        record(&mut j, &sent("2", "https://site.test/api/other/", "Fetch"));
        assert!(j.in_flight.is_empty(), "still in flight: {:?}", j.in_flight);
    }

    #[test]
    fn a_request_without_its_end_stays_in_flight_and_a_stream_does_not() {
        let mut j = journal();
        record(&mut j, &sent("1", "https://site.test/api/shows/", "Fetch"));
        record(
            &mut j,
            &sent("2", "https://site.test/events/", "EventSource"),
        );
        assert_eq!(j.in_flight.iter().collect::<Vec<_>>(), ["1"]);
        record(&mut j, &finished("1"));
        assert!(j.in_flight.is_empty());
    }

    #[tokio::test]
    async fn a_request_still_loading_at_the_deadline_is_a_problem() {
        let j = std::sync::Mutex::new(journal());
        record(
            &mut j.lock().unwrap(),
            &sent("1", "https://site.test/api/slow/", "Fetch"),
        );
        super::super::quiesce(&j, std::time::Instant::now(), true).await;
        let problems = j.into_inner().unwrap().problems;
        assert_eq!(
            problems,
            ["still loading at the check's deadline: https://site.test/api/slow/"]
        );
    }
}

/// Debian's `chromium-headless-shell` launcher runs the browser without `exec`; the gate must
/// hold the browser's own process, so the launcher is looked through, and nothing else is.
#[test]
fn a_launcher_script_is_looked_through_only_when_it_runs_the_headless_shell() {
    let dir = std::env::temp_dir().join(format!("smoke-launcher-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let other = dir.join("chromium");
    std::fs::write(
        &other,
        "#!/bin/sh\nexec /usr/lib/chromium/chromium \"$@\"\n",
    )
    .unwrap();
    assert_eq!(super::unwrap_launcher(&other), None);
    let wrapper = dir.join("chromium-headless-shell");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh -e\n{} \"$@\"\n", super::DEBIAN_HEADLESS_SHELL),
    )
    .unwrap();
    let binary_there = std::path::Path::new(super::DEBIAN_HEADLESS_SHELL).is_file();
    assert_eq!(
        super::unwrap_launcher(&wrapper),
        binary_there.then(|| PathBuf::from(super::DEBIAN_HEADLESS_SHELL))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_spoiled_visit_is_made_again_after_pauses_that_double() {
    let pauses: Vec<u128> = (1..10)
        .map_while(super::network_change_pause)
        .map(|p| p.as_millis())
        .collect();
    assert_eq!(pauses, [500, 1000, 2000, 4000, 4000]);
}

/// Makes a real change of this machine's network, as a `compose up` next door does when it
/// creates a network: a bridge with an address, up for half a second, then removed. `Err`
/// says why it cannot (not root, no `ip`).
fn change_the_network(name: &str) -> Result<(), String> {
    let ip = |args: &[&str]| -> Result<(), String> {
        let out = std::process::Command::new("ip")
            .args(args)
            .output()
            .map_err(|e| format!("`ip` did not run: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`ip {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    ip(&["link", "add", name, "type", "bridge"])?;
    let changed = ip(&["addr", "add", "198.18.254.1/32", "dev", name])
        .and_then(|()| ip(&["link", "set", name, "up"]));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let removed = ip(&["link", "del", name]);
    changed.and(removed)
}

/// On a machine running containers, a connection the browser is still making when the
/// machine's network changes (here: its TLS handshake, held by the server) is aborted with
/// `net::ERR_NETWORK_CHANGED`, whatever the site. The visit is made again and passes, and its
/// log says why it was made twice.
#[tokio::test]
async fn a_visit_the_machines_network_change_spoiled_is_made_again_and_passes() {
    let Some(executable) = browser("network_change") else {
        return;
    };
    let name = format!("smk{}", std::process::id() % 100_000);
    if let Err(why) = change_the_network(&name) {
        eprintln!("SKIPPED `network_change`: it changes this machine's network and {why}.");
        return;
    }
    let (base, pem) = serve_https("<!doctype html><h1>Shop</h1>".to_owned(), Some(name)).await;
    let evidence =
        std::env::temp_dir().join(format!("smoke-browser-test-network-{}", std::process::id()));
    let mut target = Target::new(base);
    target.browser = Some(executable);
    target.connect_ip = Some(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    target.ca_cert_pem = Some(pem);
    target.evidence_dir = evidence.clone();
    target.screenshots = true;
    let report = run_on(&target, HOME).await;
    let log = std::fs::read_to_string(evidence.join("browser.home.log")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&evidence);
    assert!(
        matches!(outcome(&report, "browser.home"), Outcome::Passed),
        "{report:#?}"
    );
    assert!(
        log.contains("attempt 1: the machine's network changed under the browser")
            && log.contains("net::ERR_NETWORK_CHANGED"),
        "the first visit was not spoiled, so this test proves nothing about visiting again:\n{log}"
    );
}
