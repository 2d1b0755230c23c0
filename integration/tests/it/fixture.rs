//! The reference stack's own canonical check, as its seed gives it: Django's test suite runs
//! inside the backend container against the stack's PostgreSQL. The gate proves the stack
//! from outside; this proves the backend's own tests (capacity under concurrency,
//! confirmation, QR, check-in, health) still pass.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{self, workspace_root};

/// Tears the project down however the test ends; `run` leaves its dependencies running.
struct Down {
    dir: PathBuf,
    compose: Vec<String>,
}

impl Down {
    fn now(&self) -> std::process::Output {
        Command::new("docker")
            .current_dir(&self.dir)
            .args(&self.compose)
            .args(["down", "--volumes", "--remove-orphans", "--timeout", "5"])
            .output()
            .expect("docker compose runs")
    }
}

impl Drop for Down {
    fn drop(&mut self) {
        let _ = self.now();
    }
}

#[test]
fn django_tests_pass_in_the_backend_container() {
    if !common::require_engine("django_tests_pass_in_the_backend_container") {
        return;
    }
    let stack = workspace_root().join("fixtures/azionelab");
    let project = format!("fixture-django-tests-{}", std::process::id());
    let compose: Vec<String> = [
        "compose",
        "--project-name",
        &project,
        "--env-file",
        ".env.example",
        "-f",
        "infra/docker/compose.yml",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let down = Down {
        dir: stack.clone(),
        compose: compose.clone(),
    };
    let output = Command::new("docker")
        .current_dir(&stack)
        .args(&compose)
        .args([
            "run",
            "--rm",
            "-T",
            "backend",
            "python",
            "manage.py",
            "test",
            "--noinput",
        ])
        .output()
        .expect("docker compose runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`manage.py test` failed in the backend container:\n{stderr}"
    );
    assert!(
        stderr.contains("\nOK"),
        "Django's test runner did not report OK:\n{stderr}"
    );
    let teardown = down.now();
    assert!(
        teardown.status.success(),
        "failed to tear `{project}` down: {}",
        String::from_utf8_lossy(&teardown.stderr)
    );
    let left = Command::new("docker")
        .args(["ps", "-a", "-q", "--filter"])
        .arg(format!("label=com.docker.compose.project={project}"))
        .output()
        .expect("docker ps runs");
    assert!(
        left.stdout.is_empty(),
        "containers of `{project}` remain after teardown"
    );
}
