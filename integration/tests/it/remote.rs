//! `smoke gate` on an engine that is not this machine's default one: a second `dockerd` of the
//! test's own (`ci/second-engine.sh`) on another socket, named by `DOCKER_HOST`, whose
//! published ports are reached at a non-loopback address (its bridge's), as a remote engine's
//! are. The reference images are loaded into it (`docker save | docker load`: there is no
//! registry for them), the reference stack is gated there, and the test proves that the run
//! happened on that engine, that nothing of it touched the first one, and that nothing is left.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{self, gate_runs_dir, smoke_bin, workspace_root};

/// A second engine, stopped and removed (with its bridge, FORWARD rule and folders) when the
/// guard drops: on success, on a failed assertion and on panic. A kill of the test process is
/// covered by the watchdog `ci/second-engine.sh` leaves beside the engine.
struct SecondEngine {
    dir: PathBuf,
    docker_host: String,
    /// The bridge's address: where the engine's published ports are reached.
    addr: String,
}

impl SecondEngine {
    fn start() -> SecondEngine {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = PathBuf::from(format!(
            "/tmp/smoke-second-engine-{}-{nanos:08x}",
            std::process::id()
        ));
        let out = Command::new("bash")
            .current_dir(workspace_root())
            .arg("ci/second-engine.sh")
            .arg("start")
            .arg(&dir)
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .output()
            .expect("bash runs ci/second-engine.sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let values: BTreeMap<&str, &str> =
            stdout.lines().filter_map(|l| l.split_once('=')).collect();
        let engine = SecondEngine {
            dir,
            docker_host: values
                .get("DOCKER_HOST")
                .copied()
                .unwrap_or_default()
                .to_owned(),
            addr: values
                .get("ENGINE_ADDR")
                .copied()
                .unwrap_or_default()
                .to_owned(),
        };
        assert!(
            out.status.success() && !engine.docker_host.is_empty() && !engine.addr.is_empty(),
            "the second engine did not start ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        engine
    }

    /// `docker ARGS` against this engine.
    fn docker(&self, args: &[&str]) -> Output {
        docker_on(Some(&self.docker_host), args)
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        let out = Command::new("bash")
            .current_dir(workspace_root())
            .arg("ci/second-engine.sh")
            .arg("stop")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output();
        if let Ok(out) = out
            && !out.status.success()
        {
            eprintln!(
                "stopping the second engine failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// `docker ARGS` on `docker_host`, or on the engine this process was given.
fn docker_on(docker_host: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new("docker");
    cmd.args(args).stdin(Stdio::null());
    if let Some(host) = docker_host {
        cmd.env("DOCKER_HOST", host);
    }
    let out = cmd.output().expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "`docker {}` failed on {}: {}",
        args.join(" "),
        docker_host.unwrap_or("the first engine"),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The images the reference stack runs, as `smoke gate --plan` lists them (test-only ones too).
fn reference_images(stack: &Path) -> Vec<String> {
    let out = Command::new(smoke_bin())
        .args(["gate", "--plan"])
        .arg(stack)
        .output()
        .expect("`smoke gate --plan` runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the plan is JSON");
    let mut images: Vec<String> = plan["project"]["images"]
        .as_array()
        .expect("the plan lists images")
        .iter()
        .filter_map(|i| i["image"].as_str().map(str::to_owned))
        .collect();
    images.sort();
    images.dedup();
    images
}

/// `smoke gate` on the reference stack against `engine`, with `env` on top.
fn gate_on(engine: &SecondEngine, env: &[(&str, &str)]) -> (Output, Duration) {
    let mut cmd = Command::new(smoke_bin());
    cmd.current_dir(workspace_root())
        .args(["gate", "fixtures/azionelab", "--no-build", "--runs-dir"])
        .arg(gate_runs_dir().join("remote"))
        .env("DOCKER_HOST", &engine.docker_host)
        .env_remove("DOCKER_CONTEXT")
        .env_remove("SMOKE_ENGINE_HOST")
        .env_remove("SMOKE_PUBLISH_IP")
        .stdin(Stdio::null());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let started = Instant::now();
    let out = cmd.output().expect("`smoke gate` starts");
    (out, started.elapsed())
}

fn project_of(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|line| {
        let rest = line.strip_prefix("gate: project `")?;
        Some(rest.split('`').next()?.to_owned())
    })
}

/// What the engine did with the project's containers since `since` (unix seconds).
fn container_events(docker_host: Option<&str>, since: u64, project: &str) -> Vec<String> {
    let until = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() + 1)
        .unwrap_or_default();
    lines(&docker_on(
        docker_host,
        &[
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &until.to_string(),
            "--filter",
            "type=container",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
            "--format",
            "{{.Action}}",
        ],
    ))
}

#[test]
fn smoke_gate_passes_on_a_second_engine_reached_at_a_non_loopback_address() {
    let test = "smoke_gate_passes_on_a_second_engine_reached_at_a_non_loopback_address";
    if !common::require_engine(test) {
        return;
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        assert!(
            std::env::var_os("CI").is_none(),
            "`{test}` starts a second dockerd, which needs root, and CI is set"
        );
        eprintln!("SKIPPED `{test}`: a second dockerd needs root");
        return;
    }
    let stack = workspace_root().join("fixtures/azionelab");
    let images = reference_images(&stack);
    for image in &images {
        let found = Command::new("docker")
            .args(["image", "inspect", "--format", "{{.Id}}", image])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "`{image}` is not on the first engine: build the reference images first (`bash ci/build-images.sh`)"
        );
    }

    let started = Instant::now();
    let engine = SecondEngine::start();
    let engine_start = started.elapsed();
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();

    // A remote engine's loopback is out of reach: a clear error and its own exit code, before
    // anything starts (not a readiness timeout). Asked first: it needs no image.
    let (out, _) = gate_on(&engine, &[("SMOKE_ENGINE_HOST", &engine.addr)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(8),
        "ports published on the engine's loopback must be refused with exit 8\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    assert!(
        stdout.contains("the engine's own loopback") && stdout.contains("SMOKE_PUBLISH_IP="),
        "{stdout}"
    );
    assert!(
        engine.docker(&["ps", "-aq"]).stdout.is_empty(),
        "nothing may start when the ports are out of reach"
    );

    let loading = Instant::now();
    let mut save = Command::new("docker")
        .arg("save")
        .args(&images)
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker save starts");
    let load = Command::new("docker")
        .arg("load")
        .env("DOCKER_HOST", &engine.docker_host)
        .stdin(save.stdout.take().expect("save's stdout"))
        .output()
        .expect("docker load runs");
    let saved = save.wait().expect("docker save ends");
    assert!(
        saved.success() && load.status.success(),
        "loading the images into the second engine failed: {}",
        String::from_utf8_lossy(&load.stderr)
    );
    let load_time = loading.elapsed();

    // Published on the engine host's address, reached there with `localhost` kept for Host,
    // TLS and the browser: anything still aimed at 127.0.0.1 finds nothing listening.
    let (out, gate_time) = gate_on(
        &engine,
        &[
            ("SMOKE_ENGINE_HOST", &engine.addr),
            ("SMOKE_PUBLISH_IP", &engine.addr),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let both = format!("--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "the gate did not pass on the second engine\n{both}"
    );
    assert!(
        stderr.contains(&format!(
            "gate: engine `DOCKER_HOST` {}; published ports reached on {}",
            engine.docker_host, engine.addr
        )),
        "the gate must name the engine and where its ports are reached\n{both}"
    );
    let project = project_of(&stderr).expect("the gate names its project");
    let report_path = gate_runs_dir()
        .join("remote")
        .join(&project)
        .join("report.json");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&report_path).expect("the run's report.json exists"),
    )
    .expect("report.json parses");
    assert_eq!(report["verdict"]["kind"], "passed", "{both}");
    let target = report["target"].as_str().unwrap_or_default();
    assert!(
        target.starts_with("https://localhost:"),
        "the virtual host name stays in the URL: `{target}`"
    );
    for name in [
        "infra.only_public_services_publish_ports",
        "infra.internal_services_unreachable_from_host",
        "browser.home",
    ] {
        let status = report["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == name)
            .map(|c| c["outcome"]["status"].clone());
        assert_eq!(
            status,
            Some(serde_json::json!("passed")),
            "`{name}` on the second engine\n{both}"
        );
    }

    // It ran there, and only there; and nothing of it is left.
    let second = container_events(Some(&engine.docker_host), since, &project);
    assert!(
        second.iter().any(|a| a == "create") && second.iter().any(|a| a == "destroy"),
        "the second engine never created and removed the stack's containers: {second:?}"
    );
    let first = container_events(None, since, &project);
    assert!(
        first.is_empty(),
        "the first engine saw the project `{project}`: {first:?}"
    );
    assert!(
        engine.docker(&["ps", "-aq"]).stdout.is_empty(),
        "containers left on the second engine"
    );
    assert!(
        engine.docker(&["volume", "ls", "-q"]).stdout.is_empty(),
        "volumes left on the second engine: {:?}",
        lines(&engine.docker(&["volume", "ls", "-q"]))
    );
    let networks = lines(&engine.docker(&["network", "ls", "--format", "{{.Name}}"]));
    assert!(
        networks
            .iter()
            .all(|n| ["bridge", "host", "none"].contains(&n.as_str())),
        "networks left on the second engine: {networks:?}"
    );
    for what in [
        vec!["ps", "-aq"],
        vec!["network", "ls", "-q"],
        vec!["volume", "ls", "-q"],
    ] {
        let mut args = what.clone();
        let label = format!("label=com.docker.compose.project={project}");
        args.extend(["--filter", label.as_str()]);
        assert!(
            docker_on(None, &args).stdout.is_empty(),
            "`docker {}` on the first engine found the project",
            args.join(" ")
        );
    }

    let dir = engine.dir.clone();
    drop(engine);
    assert!(!dir.exists(), "`{}` is left after stopping", dir.display());
    eprintln!(
        "second engine: started in {:.1}s; {} images loaded in {:.1}s; gate {:.1}s",
        engine_start.as_secs_f64(),
        images.len(),
        load_time.as_secs_f64(),
        gate_time.as_secs_f64()
    );
}
