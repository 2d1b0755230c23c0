//! The release gate on the bundled reference stack: it passes every check, reports every
//! phase, runs three at once without collisions, refuses unusable input clearly, and leaves
//! nothing behind, even when interrupted or killed.

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use smoke::gate::{GateOptions, Verdict, run_gate, sweep};
use smoke::runner::{NoProgress, Selection};

use crate::common::{self, gate_runs_dir, smoke_bin, workspace_root};

fn reference_options() -> GateOptions {
    GateOptions {
        stack: smoke::gate::cli::bundled_stack(),
        overrides: Vec::new(),
        runs_dir: gate_runs_dir(),
        skip_build: false,
        selection: Selection::All,
        browser: None,
        screenshots: false,
    }
}

/// Every check name the reference gate must report: the built-in suite, the infrastructure
/// assertions and the one-shot operations.
fn expected_check_names() -> BTreeSet<String> {
    let checks = smoke::gate::cli::bundled_stack().join("checks.toml");
    let mut names: BTreeSet<String> = smoke::catalog::load(&checks)
        .expect("the reference checks file loads")
        .steps()
        .map(|s| s.name.clone())
        .collect();
    for name in [
        "infra.only_public_services_publish_ports",
        "infra.internal_services_unreachable_from_host",
        "infra.no_latest_tags",
        "infra.check_deploy_clean",
        "infra.migrations_in_sync",
        "infra.health_fails_when_database_down",
        "operations.migrate",
        "operations.collectstatic",
        "operations.staff",
    ] {
        names.insert(name.to_owned());
    }
    names
}

fn project_containers(project: &str) -> Vec<String> {
    project_resources(project)
        .into_iter()
        .filter(|r| r.starts_with("container "))
        .collect()
}

/// Containers, networks and volumes of a compose project, found by compose's own label.
fn project_resources(project: &str) -> Vec<String> {
    let filter = format!("label=com.docker.compose.project={project}");
    let mut found = Vec::new();
    for (kind, args) in [
        ("container", ["ps", "-a", "-q"].as_slice()),
        ("network", ["network", "ls", "-q"].as_slice()),
        ("volume", ["volume", "ls", "-q"].as_slice()),
    ] {
        let out = Command::new("docker")
            .args(args)
            .args(["--filter", &filter])
            .output()
            .expect("docker answers");
        found.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|id| format!("{kind} {id}")),
        );
    }
    found
}

#[test]
fn smoke_gate_passes_on_the_reference_stack_and_leaves_nothing_behind() {
    if !common::require_engine("smoke_gate_passes_on_the_reference_stack_and_leaves_nothing_behind")
    {
        return;
    }
    let dir = gate_runs_dir().join("cli-reference");
    std::fs::create_dir_all(&dir).expect("create the report folder");
    let json = dir.join("report.json");
    let junit = dir.join("junit.xml");
    let output = Command::new(smoke_bin())
        .current_dir(workspace_root())
        .args(["gate", "--runs-dir"])
        .arg(gate_runs_dir())
        .arg("--report-json")
        .arg(&json)
        .arg("--report-junit")
        .arg(&junit)
        .output()
        .expect("`smoke gate` starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "`smoke gate` did not pass on the reference stack\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    assert!(
        stdout.contains("gate: PASSED"),
        "no verdict line:\n{stdout}"
    );
    // One output: each check line as it happened, then phases, counts and verdict, once.
    let both = format!("{stderr}{stdout}");
    for once in [
        "PASS health.ok ",
        "PASS infra.data_survives_recreation ",
        "phases: build",
        "checks: ",
        "gate: PASSED",
    ] {
        assert_eq!(
            both.matches(once).count(),
            1,
            "`{once}` must be printed exactly once:\n--- stderr ---\n{stderr}\n--- stdout ---\n{stdout}"
        );
    }

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report exists"))
            .expect("the JSON report parses");
    assert_eq!(report["verdict"]["kind"], "passed", "{report}");
    assert_eq!(report["passed"], true, "{report}");
    let reported: BTreeSet<String> = report["checks"]
        .as_array()
        .expect("checks is a list")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    let missing: Vec<String> = expected_check_names()
        .into_iter()
        .filter(|n| !reported.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "checks missing from the report: {missing:?}"
    );
    let not_passed: Vec<String> = report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["outcome"]["status"] != "passed")
        .map(|c| format!("{} ({})", c["name"], c["outcome"]["status"]))
        .collect();
    assert!(
        not_passed.is_empty(),
        "on the reference stack every check must pass, not: {not_passed:?}"
    );
    let phases: Vec<&str> = report["phases"]
        .as_array()
        .expect("phases is a list")
        .iter()
        .filter_map(|p| p["phase"].as_str())
        .collect();
    assert_eq!(
        phases,
        ["build", "up", "migrate", "healthy", "checks", "down"]
    );
    assert!(
        std::fs::read_to_string(&junit)
            .expect("the JUnit report exists")
            .contains("<testsuites")
    );

    let run_id = report["run_id"].as_str().expect("run_id");
    let left = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(sweep::leftovers(run_id))
        .expect("docker answers");
    assert!(left.is_empty(), "the gate left these behind: {left:?}");
    // Nor images: `nginx` and `certs` share one image, each built with its own labels; the one
    // that did not get the tag must not stay behind, untagged. Other tests build the same
    // project meanwhile, and each prunes right after its build: looked at until none is seen.
    let dangling = || {
        let out = std::process::Command::new("docker")
            .args([
                "images",
                "--quiet",
                "--filter",
                "dangling=true",
                "--filter",
                "label=com.docker.compose.project=smokegate-build-azionelab",
            ])
            .output()
            .expect("docker answers");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let mut left = dangling();
    for _ in 0..20 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        left = dangling();
    }
    assert!(
        left.is_empty(),
        "the gate's build left untagged images behind: {left}"
    );
}

#[tokio::test]
async fn three_gates_at_once_all_pass_without_colliding() {
    if !common::require_engine("three_gates_at_once_all_pass_without_colliding") {
        return;
    }
    let mut options = reference_options();
    options.skip_build = true;
    let (a, b, c) = tokio::join!(
        run_gate(&options, &NoProgress),
        run_gate(&options, &NoProgress),
        run_gate(&options, &NoProgress)
    );
    let outcomes = [a, b, c];
    for outcome in &outcomes {
        assert_eq!(
            outcome.verdict,
            Verdict::Passed,
            "a parallel gate run failed: {:?}\n{}",
            outcome.failed(),
            smoke::gate::cli::render_with_checks(outcome)
        );
        assert!(
            outcome.report.leftovers.is_empty(),
            "left behind: {:?}",
            outcome.report.leftovers
        );
    }
    let projects: BTreeSet<&str> = outcomes.iter().map(|o| o.project.as_str()).collect();
    let targets: BTreeSet<&str> = outcomes.iter().map(|o| o.report.target.as_str()).collect();
    assert_eq!(projects.len(), 3, "projects collided: {projects:?}");
    assert_eq!(targets.len(), 3, "host ports collided: {targets:?}");
}

#[tokio::test]
async fn gate_passes_on_the_multienv_stack() {
    if !common::require_engine("gate_passes_on_the_multienv_stack") {
        return;
    }
    let options = GateOptions {
        stack: workspace_root().join("fixtures/multienv"),
        ..reference_options()
    };
    let outcome = run_gate(&options, &NoProgress).await;
    // Its own checks ran: per-host auth, rate limit and websockets, and the worker services.
    common::assert_gate_passed(
        &outcome,
        "the multienv stack",
        &[
            "staging.auth.required",
            "prod.rate_limit.enforced",
            "prod.websocket.echo",
            "infra.service_celery_worker_running",
        ],
    );
}

/// `allow` on a command assertion: the reference stack with DEBUG on fails `check --deploy`
/// with `security.W018`; allowing exactly that id makes the assertion pass, while the HTTP
/// check DEBUG breaks still fails.
#[tokio::test]
async fn an_allowed_system_check_id_passes_check_deploy() {
    if !common::require_engine("an_allowed_system_check_id_passes_check_deploy") {
        return;
    }
    let reference = workspace_root().join("fixtures/azionelab");
    let abs = |p: &str| reference.join(p).display().to_string();
    let gate = std::fs::read_to_string(reference.join("gate.toml")).expect("read gate.toml");
    let edits = [
        (
            "compose_files = [\"infra/docker/compose.yml\", \"infra/docker/compose.test.yml\"]",
            format!(
                "compose_files = [{:?}, {:?}]\nchecks = {:?}",
                abs("infra/docker/compose.yml"),
                abs("infra/docker/compose.test.yml"),
                abs("checks.toml")
            ),
        ),
        (
            "env_file = \".env.example\"",
            format!("env_file = {:?}", abs(".env.example")),
        ),
        (
            "name = \"infra.check_deploy_clean\"",
            "name = \"infra.check_deploy_clean\"\nallow = { \"security.W018\" = \"a test of allow\" }"
                .to_owned(),
        ),
    ];
    let mut text = gate;
    for (from, to) in &edits {
        assert!(
            text.contains(from),
            "fixtures/azionelab/gate.toml no longer has `{from}`"
        );
        text = text.replacen(from, to, 1);
    }
    let dir = gate_runs_dir().join("allow-stack");
    std::fs::create_dir_all(&dir).expect("create the stack folder");
    std::fs::write(dir.join("gate.toml"), text).expect("write gate.toml");

    let options = GateOptions {
        stack: dir,
        overrides: vec![workspace_root().join("fixtures/broken/debug-on/compose.override.yml")],
        skip_build: true,
        ..reference_options()
    };
    let outcome = run_gate(&options, &NoProgress).await;
    let failed = outcome.failed();
    assert!(
        !failed.contains(&"infra.check_deploy_clean"),
        "the allowed id still failed the assertion:\n{}",
        smoke::gate::cli::render_with_checks(&outcome)
    );
    assert!(
        failed.contains(&"routing.unknown_api_is_json_404"),
        "the variant did not apply:\n{}",
        smoke::gate::cli::render_with_checks(&outcome)
    );
    assert!(
        outcome.report.leftovers.is_empty(),
        "{:?}",
        outcome.report.leftovers
    );
}

#[tokio::test]
async fn gate_passes_on_the_stage_stack() {
    if !common::require_engine("gate_passes_on_the_stage_stack") {
        return;
    }
    let options = GateOptions {
        stack: workspace_root().join("fixtures/stage"),
        ..reference_options()
    };
    let outcome = run_gate(&options, &NoProgress).await;
    // Its own checks ran: the sign-up flow through the emailed link to the avatar served
    // back, WhiteNoise behind the Next.js proxy, Daphne, and the media volume.
    common::assert_gate_passed(
        &outcome,
        "the stage stack",
        &[
            "accounts.verify",
            "accounts.avatar_served",
            "routing.static_by_whitenoise",
            "routing.served_by_daphne",
            "infra.media_on_volume",
        ],
    );
}

/// `smoke gate` on a scratch stack made of `files` (name, text) beside a valid checks file,
/// so what is under test is the only thing wrong; returns its exit code and stdout.
fn gate_on_scratch_stack(name: &str, files: &[(&str, &str)]) -> (Option<i32>, String) {
    gate_on_scratch_stack_with(name, files, &[])
}

/// [`gate_on_scratch_stack`] with extra `smoke gate` arguments.
fn gate_on_scratch_stack_with(
    name: &str,
    files: &[(&str, &str)],
    args: &[&str],
) -> (Option<i32>, String) {
    let dir = gate_runs_dir().join(name);
    std::fs::create_dir_all(&dir).expect("create a scratch stack folder");
    for (file, text) in files {
        std::fs::write(dir.join(file), text).expect("write a scratch stack file");
    }
    std::fs::copy(
        workspace_root().join("fixtures/azionelab/checks.toml"),
        dir.join("checks.toml"),
    )
    .expect("copy a checks file");
    let output = Command::new(smoke_bin())
        .arg("gate")
        .arg(&dir)
        .arg("--runs-dir")
        .arg(gate_runs_dir())
        .args(args)
        .output()
        .expect("`smoke gate` starts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(!stdout.contains("panicked"), "{stdout}");
    (output.status.code(), stdout)
}

/// `up_timeout` is the stack's deadline for its healthchecks, not testcontainers' hidden 60 s:
/// a service that stays `starting` fails the gate once the stack's own deadline is past.
#[test]
fn up_waits_for_healthchecks_as_long_as_the_gate_file_says() {
    if !common::require_engine("up_waits_for_healthchecks_as_long_as_the_gate_file_says") {
        return;
    }
    let started = Instant::now();
    let (code, stdout) = gate_on_scratch_stack_with(
        "up-timeout",
        &[
            (
                "compose.yml",
                "services:\n  web:\n    image: debian:bookworm-slim\n    command: [\"sleep\", \"infinity\"]\n    init: true\n    ports: [\"127.0.0.1::80\"]\n    healthcheck:\n      test: [\"CMD\", \"false\"]\n      interval: 1s\n      retries: 10000\n",
            ),
            (
                "gate.toml",
                "name = \"up-timeout\"\ncompose_files = [\"compose.yml\"]\nup_timeout = 5\n[public]\nservice = \"web\"\nhttp_port = 80\n",
            ),
        ],
        &["--no-build"],
    );
    let took = started.elapsed();
    assert_eq!(code, Some(4), "{stdout}");
    assert!(
        stdout.contains("did not come up")
            && stdout.contains("not healthy within `up_timeout` (5s)")
            && stdout.contains("`web`"),
        "it must say the stack did not come up, the deadline and the service:\n{stdout}"
    );
    assert!(
        took < Duration::from_secs(45),
        "with `up_timeout = 5` the gate gave up after {took:?}, not within the gate file's deadline:\n{stdout}"
    );
}

#[test]
fn no_build_never_builds_and_names_each_missing_image() {
    if !common::require_engine("no_build_never_builds_and_names_each_missing_image") {
        return;
    }
    let (code, stdout) = gate_on_scratch_stack_with(
        "no-build-missing",
        &[
            (
                "compose.yml",
                "services:\n  web:\n    build: .\n    ports: [\"127.0.0.1::80\"]\n  db:\n    image: smoke-test/never-built:0.0.1\n",
            ),
            ("Dockerfile", "FROM debian:bookworm-slim\n"),
            (
                "gate.toml",
                "name = \"no-build\"\ncompose_files = [\"compose.yml\"]\n[public]\nservice = \"web\"\nhttp_port = 80\n",
            ),
        ],
        &["--no-build"],
    );
    assert_eq!(code, Some(4), "{stdout}");
    for image in [
        "`smoke-test/never-built:0.0.1` (service `db`)",
        "`smokegate-build-no-build-web:gate` (service `web`)",
    ] {
        assert!(stdout.contains(image), "it must name {image}:\n{stdout}");
    }
    assert!(stdout.contains("--no-build"), "{stdout}");
    let built = Command::new("docker")
        .args(["image", "inspect", "smokegate-build-no-build-web:gate"])
        .output()
        .expect("docker starts");
    assert!(!built.status.success(), "`--no-build` built an image");
}

#[test]
fn gate_refuses_a_stack_that_publishes_a_fixed_host_port() {
    if !common::require_engine("gate_refuses_a_stack_that_publishes_a_fixed_host_port") {
        return;
    }
    // The trap of a test override merged without `!override`: production's port stays.
    let (code, stdout) = gate_on_scratch_stack(
        "fixed-port-stack",
        &[
            (
                "compose.yml",
                "services:\n  web:\n    image: debian:bookworm-slim\n    ports:\n      - \"18080:80\"\n",
            ),
            (
                "compose.test.yml",
                "services:\n  web:\n    ports:\n      - \"127.0.0.1::80\"\n",
            ),
            (
                "gate.toml",
                "name = \"fixed-port\"\ncompose_files = [\"compose.yml\", \"compose.test.yml\"]\n[public]\nservice = \"web\"\nhttp_port = 80\n",
            ),
        ],
    );
    assert_eq!(
        code,
        Some(2),
        "a fixed host port is a configuration error:\n{stdout}"
    );
    assert!(
        stdout.contains("`web` 18080->80") && stdout.contains("ports: !override"),
        "the error must name the port and the fix:\n{stdout}"
    );
}

#[test]
fn gate_refuses_a_compose_file_that_does_not_parse() {
    let (code, stdout) = gate_on_scratch_stack(
        "unparsable-stack",
        &[
            ("compose.yml", "services:\n  web:\n    image: [unclosed\n"),
            (
                "gate.toml",
                "name = \"broken-yaml\"\ncompose_files = [\"compose.yml\"]\n[public]\nservice = \"web\"\nhttp_port = 80\n[health]\npath = \"/health/\"\n",
            ),
        ],
    );
    assert_eq!(
        code,
        Some(2),
        "a compose file that does not parse is a usage error:\n{stdout}"
    );
    assert!(
        stdout.contains("do not make a valid project"),
        "the error must say what is wrong:\n{stdout}"
    );
    assert!(
        stdout.contains("compose.yml"),
        "the error must name the file:\n{stdout}"
    );
}

#[test]
fn gate_refuses_a_missing_stack_description() {
    let output = Command::new(smoke_bin())
        .args(["gate", "/nonexistent/stack", "--runs-dir"])
        .arg(gate_runs_dir())
        .output()
        .expect("`smoke gate` starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("failed to read the stack description `/nonexistent/stack` (give a folder holding `gate.toml`"),
        "{stdout}"
    );
}

/// Starts `smoke gate` in the background and returns once its stack has containers.
fn start_gate_and_wait_for_containers() -> (std::process::Child, String) {
    let mut child = Command::new(smoke_bin())
        .current_dir(workspace_root())
        .args(["gate", "--no-build", "--runs-dir"])
        .arg(gate_runs_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("`smoke gate` starts");
    // The first line naming the project tells us what to watch.
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(rest) = line.strip_prefix("gate: project `")
                && let Some(project) = rest.split('`').next()
            {
                let _ = tx.send(project.to_owned());
            }
        }
    });
    let project = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("`smoke gate` names its project on stderr");
    let deadline = Instant::now() + Duration::from_secs(180);
    while project_containers(&project).len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the stack `{project}` never got its containers"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    (child, project)
}

#[test]
fn an_interrupted_gate_tears_its_stack_down() {
    if !common::require_engine("an_interrupted_gate_tears_its_stack_down") {
        return;
    }
    let (mut child, project) = start_gate_and_wait_for_containers();
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs")
            .success()
    );
    let status = child.wait().expect("`smoke gate` exits");
    assert_eq!(status.code(), Some(130), "an interrupted gate exits 130");
    let left = project_resources(&project);
    assert!(
        left.is_empty(),
        "the interrupted gate left resources of `{project}`: {left:?}"
    );
}

#[test]
fn a_killed_gate_is_swept_by_the_next_run() {
    if !common::require_engine("a_killed_gate_is_swept_by_the_next_run") {
        return;
    }
    let (mut child, project) = start_gate_and_wait_for_containers();
    // As a nextest timeout does: SIGKILL to the whole process group, compose children included.
    let group = format!("-{}", child.id());
    assert!(
        Command::new("kill")
            .args(["-KILL", "--", &group])
            .status()
            .expect("kill runs")
            .success()
    );
    let _ = child.wait();
    assert!(
        !project_containers(&project).is_empty(),
        "a SIGKILLed gate cannot clean up; its containers should remain until swept"
    );
    let swept = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(sweep::sweep_stale())
        .expect("the sweep runs");
    assert!(
        swept.projects.contains(&project),
        "the sweep did not name `{project}`: {swept:?}"
    );
    let left = project_resources(&project);
    assert!(
        left.is_empty(),
        "the sweep left resources of `{project}`: {left:?}"
    );
}
