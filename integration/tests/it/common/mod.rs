//! The shared harness: where the workspace is, and whether a container engine answers.
//!
//! Container tests call [`require_engine`] first. On a machine without a Docker engine (a
//! laptop without Docker) they print why they did nothing and pass; under CI (`CI` set) or
//! with `SMOKE_REQUIRE_ENGINE=1` a missing engine is a failure, so CI can never go green
//! by skipping them.

#![allow(dead_code)]

pub mod fake_site;
pub mod http_server;
pub mod smoke_cmd;
pub mod tls;
pub mod vhost_site;

pub use smoke_cmd::smoke_bin;

use std::path::PathBuf;
use std::sync::OnceLock;

/// The workspace root (where `Cargo.toml`, `fixtures/` and `target/` are): from the package
/// folder nextest gives at run time (remapped when the tests run from an archive in another
/// checkout), else the one they were compiled in.
pub fn workspace_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// What `smoke gate`'s own preflight says about this machine (CLI, engine, Compose v2,
/// buildx), asked once per test process: `None` when it can run a gate.
pub fn machine_not_ready() -> Option<&'static str> {
    static MISSING: OnceLock<Option<String>> = OnceLock::new();
    MISSING
        .get_or_init(|| {
            // On a thread of its own: callers may already be inside a tokio runtime.
            std::thread::spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for the preflight");
                runtime
                    .block_on(smoke::gate::preflight::check(
                        smoke::gate::preflight::Need::Build,
                    ))
                    .err()
                    .map(|missing| missing.explain())
            })
            .join()
            .expect("the preflight thread")
        })
        .as_deref()
}

/// Whether a Docker engine that can run a gate answers.
pub fn engine_answers() -> bool {
    machine_not_ready().is_none()
}

fn engine_required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
        || std::env::var_os("SMOKE_REQUIRE_ENGINE").is_some_and(|v| v == "1")
}

/// Returns `true` when the test may use containers. Returns `false` (after saying so) when the
/// machine cannot run a gate and none is required; panics when one is required.
#[track_caller]
pub fn require_engine(test: &str) -> bool {
    let Some(why) = machine_not_ready() else {
        return true;
    };
    if engine_required() {
        panic!(
            "`{test}` needs containers, and this machine cannot run them (CI or \
             SMOKE_REQUIRE_ENGINE=1 is set, so this is a failure):\n  {why}"
        );
    }
    eprintln!("SKIPPED `{test}`: it needs containers, and this machine cannot run them:\n  {why}");
    false
}

/// Where gate runs started by tests keep their folders.
pub fn gate_runs_dir() -> PathBuf {
    workspace_root().join("target").join("gate-tests")
}

/// The gate passed on `stack`, reported each of `checks` (its own, not only the built-ins),
/// and left nothing behind; every failure message carries the rendered report.
#[track_caller]
pub fn assert_gate_passed(outcome: &smoke::gate::GateOutcome, stack: &str, checks: &[&str]) {
    let rendered = smoke::gate::cli::render_with_checks(outcome);
    assert_eq!(
        outcome.verdict,
        smoke::gate::Verdict::Passed,
        "the gate failed on {stack}: {:?}\n{rendered}",
        outcome.failed()
    );
    for name in checks {
        assert!(
            outcome.report.check(name).is_some(),
            "`{name}` was not reported:\n{rendered}"
        );
    }
    assert!(
        outcome.report.leftovers.is_empty(),
        "left behind: {:?}",
        outcome.report.leftovers
    );
}

/// The loopback registry the release tests push to and pull from (`HOST:PORT`): Debian's
/// `docker-registry`, started by `ci/provision-registry.sh` when it is not running yet (never
/// installed by a test). `None`, with a SKIPPED line, when it is not installed; a failure
/// under CI, where `ci/provision-test-tools.sh` installs it.
#[track_caller]
pub fn require_registry(test: &str) -> Option<String> {
    let out = std::process::Command::new("bash")
        .current_dir(workspace_root())
        .args(["ci/provision-registry.sh", "--no-install"])
        .output()
        .unwrap_or_else(|err| panic!("failed to run ci/provision-registry.sh: {err}"));
    if out.status.success() {
        return Some(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if out.status.code() != Some(5) || engine_required() {
        panic!("`{test}` needs the release registry, which did not start:\n  {why}");
    }
    eprintln!("SKIPPED `{test}`: it needs the release registry:\n  {why}");
    None
}

/// The engine's id of an image reference (`docker image inspect`), or `None` when it has none.
pub fn image_id(reference: &str) -> Option<String> {
    let out = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("its address").port()
}
