//! `smoke gate` and `smoke init` on machines that cannot run a gate: each missing piece (the
//! docker CLI, an engine, Compose v2, a recent enough Compose, buildx) is named with its fix
//! and exit code 5, before anything is started, and never as a compose-file error (exit 2).
//!
//! The machine is shaped through `PATH`: an empty folder (no CLI), the real CLI pointed at a
//! socket nobody listens on (no engine), or a stand-in `docker` script that answers like a
//! machine with that piece missing (the pieces a test cannot uninstall).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{gate_runs_dir, smoke_bin, workspace_root};

const MACHINE_NOT_READY: i32 = smoke::gate::cli::MACHINE_NOT_READY as i32;

fn scratch(name: &str) -> PathBuf {
    let dir = gate_runs_dir().join(format!("preflight-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch folder");
    dir
}

/// A `docker` on `dir` that answers `version`, `compose version` and `buildx version` as
/// given (`None`: "not a docker command", exit 1), and fails loudly on anything else.
fn stand_in_docker(dir: &Path, engine: &str, compose: Option<&str>, buildx: Option<&str>) {
    let answer = |what: Option<&str>, name: &str| match what {
        Some(v) => format!("echo '{v}'"),
        None => format!("echo \"docker: '{name}' is not a docker command.\" >&2; exit 1"),
    };
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in\n  version) echo '{engine}' ;;\n  compose) {} ;;\n  buildx) {} ;;\n  *) echo \"the preflight must stop before: docker $*\" >&2; exit 99 ;;\nesac\n",
        answer(compose, "compose"),
        answer(buildx, "buildx"),
    );
    let path = dir.join("docker");
    std::fs::write(&path, script).expect("write the stand-in docker");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make it executable");
    }
}

fn gate_with_path(path: &Path, extra_env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(smoke_bin())
        .current_dir(workspace_root())
        .arg("gate")
        .args(args)
        .arg("--runs-dir")
        .arg(gate_runs_dir())
        .env("PATH", path)
        .envs(extra_env.iter().copied())
        .output()
        .expect("`smoke gate` starts")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[track_caller]
fn assert_names(output: &Output, words: &str) {
    let text = text(output);
    assert_eq!(output.status.code(), Some(MACHINE_NOT_READY), "{text}");
    assert!(text.contains(words), "it must say `{words}`:\n{text}");
    assert!(
        text.contains("bash ci/provision-engine.sh"),
        "it must give the fix:\n{text}"
    );
    assert!(
        !text.contains("valid project") && !text.contains("panicked"),
        "{text}"
    );
    assert!(
        !text.contains("the preflight must stop before"),
        "nothing may run past the preflight:\n{text}"
    );
}

#[test]
fn a_machine_without_the_docker_cli_is_named_as_such() {
    let empty = scratch("no-cli");
    assert_names(
        &gate_with_path(&empty, &[], &[]),
        "no `docker` CLI is on PATH",
    );
}

#[test]
fn an_engine_that_does_not_answer_is_named_with_what_it_said() {
    let real_path = std::env::var("PATH").unwrap_or_default();
    let has_cli = std::env::split_paths(&real_path).any(|d| d.join("docker").is_file());
    let dir = scratch("no-engine");
    let path = if has_cli {
        // The real CLI, pointed at a socket nobody listens on.
        PathBuf::from(real_path)
    } else {
        std::fs::write(
            dir.join("docker"),
            "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///nowhere.sock. Is the docker daemon running?' >&2\nexit 1\n",
        )
        .expect("write the stand-in");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir.join("docker"), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        dir.clone()
    };
    let socket = format!("unix://{}", dir.join("nowhere.sock").display());
    let output = gate_with_path(&path, &[("DOCKER_HOST", socket.as_str())], &[]);
    assert_names(&output, "no Docker engine answers");
    assert!(
        text(&output).contains("it said:"),
        "it must quote the engine's answer:\n{}",
        text(&output)
    );
}

/// The first-run failure that started this: a docker CLI without the Compose v2 plugin was
/// reported as "the compose files ... do not make a valid project" (exit 2).
#[test]
fn a_cli_without_compose_v2_is_named_not_blamed_on_the_compose_file() {
    let dir = scratch("no-compose");
    stand_in_docker(
        &dir,
        "27.5.1",
        None,
        Some("github.com/docker/buildx 0.20.1"),
    );
    assert_names(
        &gate_with_path(&dir, &[], &[]),
        "the Compose v2 plugin is missing",
    );
}

#[test]
fn a_compose_too_old_for_override_tags_is_named_with_the_version_needed() {
    let dir = scratch("old-compose");
    stand_in_docker(&dir, "27.5.1", Some("2.20.2"), Some("buildx 0.20.1"));
    let output = gate_with_path(&dir, &[], &[]);
    assert_names(&output, "Compose 2.20.2 is too old");
    assert!(text(&output).contains("2.24.4"), "{}", text(&output));
}

#[test]
fn buildx_is_needed_to_build_and_not_with_no_build() {
    let dir = scratch("no-buildx");
    stand_in_docker(&dir, "27.5.1", Some("2.32.4"), None);
    assert_names(&gate_with_path(&dir, &[], &[]), "buildx is missing");
    // Without building, the preflight lets it through: the stand-in then stops the run at
    // its first real command, which is not a preflight error. (Only `health`: the browser
    // checks would need a browser this PATH does not have.)
    let output = gate_with_path(&dir, &[], &["--no-build", "--category", "health"]);
    assert_ne!(
        output.status.code(),
        Some(MACHINE_NOT_READY),
        "{}",
        text(&output)
    );
}

#[test]
fn init_names_a_missing_compose_plugin_and_needs_no_engine() {
    let dir = scratch("init-no-compose");
    stand_in_docker(&dir, "27.5.1", None, None);
    let compose = workspace_root().join("fixtures/init/tutorial/compose.yml");
    let output = Command::new(smoke_bin())
        .arg("init")
        .arg(&compose)
        .arg("--out")
        .arg(&dir)
        .env("PATH", &dir)
        .output()
        .expect("`smoke init` starts");
    assert_names(&output, "the Compose v2 plugin is missing");
    assert!(!dir.join("gate.toml").exists(), "nothing is written");
}

/// The reference stack has browser checks, which the gate never skips: a machine with a
/// working engine and no browser is not ready, and the gate says so before building anything.
#[test]
fn a_machine_without_a_browser_is_named_before_anything_starts() {
    let dir = scratch("no-browser");
    stand_in_docker(
        &dir,
        "27.5.1",
        Some("2.32.4"),
        Some("github.com/docker/buildx 0.20.1"),
    );
    let no_browser = Command::new(smoke_bin())
        .current_dir(workspace_root())
        .args(["gate", "--runs-dir"])
        .arg(gate_runs_dir())
        .env("PATH", &dir)
        .env_remove("SMOKE_BROWSER")
        .output()
        .expect("`smoke gate` starts");
    let named = dir.join("no-such-chromium");
    let missing = Command::new(smoke_bin())
        .current_dir(workspace_root())
        .args(["gate", "--browser"])
        .arg(&named)
        .arg("--runs-dir")
        .arg(gate_runs_dir())
        .env("PATH", &dir)
        .output()
        .expect("`smoke gate` starts");
    for (output, says) in [
        (&no_browser, "no browser was found".to_owned()),
        (
            &missing,
            format!("the browser `{}` does not exist", named.display()),
        ),
    ] {
        let text = text(output);
        assert_eq!(output.status.code(), Some(MACHINE_NOT_READY), "{text}");
        assert!(text.contains(&says), "it must say `{says}`:\n{text}");
        assert!(
            text.contains("apt-get install chromium"),
            "it must give the fix:\n{text}"
        );
        assert!(
            !text.contains("the preflight must stop before"),
            "nothing may run past the preflight:\n{text}"
        );
    }
}
