//! The rollback rehearsal, on every test run: deploy release N of the reference stack with
//! `ci/deploy.sh`, make bookings, deploy N+1 (the backend plus one migration, built from
//! `fixtures/releases/backend-next`), then `ci/rollback.sh` to N. With an additive migration
//! the database is kept and every booking survives, even one made under N+1; with a
//! destructive one the pre-deploy backup is restored and no booking made before the deploy is
//! lost. Smoke must be green after every step. Timings go to `target/rollback-timings.txt`.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::{self, smoke_bin, workspace_root};

/// One rehearsal's stack, state folder and image tags; all removed on drop.
#[derive(Debug)]
struct Rehearsal {
    project: String,
    state: PathBuf,
    n: String,
    next: String,
    token: String,
}

impl Rehearsal {
    fn new(kind: &str) -> Self {
        let id = random_hex(8);
        let project = format!("rollback-{kind}-{id}");
        let state = workspace_root().join("target/gate-rollback").join(&project);
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).expect("create the state folder");
        let token = random_hex(40);
        let rehearsal = Rehearsal {
            project,
            state,
            n: format!("1.0.0-rb{kind}.{id}"),
            next: format!("1.1.0-rb{kind}.{id}"),
            token,
        };
        // Release N: the reference images under an explicit version; N+1: nginx unchanged
        // and the backend with one more migration.
        run_ok(
            Command::new("bash").arg("ci/build-images.sh"),
            "build the reference images",
        );
        for repo in ["azionelab/nginx", "azionelab/backend"] {
            run_ok(
                Command::new("docker").args([
                    "tag",
                    &format!("{repo}:0.1.0"),
                    &format!("{repo}:{}", rehearsal.n),
                ]),
                "tag N",
            );
        }
        run_ok(
            Command::new("docker").args([
                "tag",
                "azionelab/nginx:0.1.0",
                &format!("azionelab/nginx:{}", rehearsal.next),
            ]),
            "tag N+1",
        );
        run_ok(
            Command::new("docker").args([
                "build",
                "-q",
                "--build-arg",
                &format!("CHANGE={kind}"),
                "-t",
                &format!("azionelab/backend:{}", rehearsal.next),
                "fixtures/releases/backend-next",
            ]),
            "build release N+1 of the backend",
        );
        rehearsal
    }

    fn script(&self, script: &str, args: &[&str]) -> Output {
        Command::new("bash")
            .current_dir(workspace_root())
            .arg(script)
            .args(args)
            .env("DEPLOY_PROJECT", &self.project)
            .env(
                "DEPLOY_COMPOSE_FILES",
                "fixtures/azionelab/infra/docker/compose.yml fixtures/azionelab/infra/docker/compose.test.yml",
            )
            .env("DEPLOY_ENV_FILE", "fixtures/azionelab/.env.example")
            .env("DEPLOY_STATE_DIR", &self.state)
            .env("DEPLOY_URL", "auto")
            .env("SMOKE_STAFF_TOKEN", &self.token)
            .env("SMOKE_BIN", smoke_bin())
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .unwrap_or_else(|err| panic!("failed to start {script}: {err}"))
    }

    #[track_caller]
    fn deploy(&self, version: &str) {
        let out = self.script("ci/deploy.sh", &[version]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "ci/deploy.sh {version} failed\n{}",
            describe(&out)
        );
    }

    fn compose(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(["compose", "-p", &self.project])
            .args(args)
            .output()
            .expect("docker compose runs")
    }

    fn base_url(&self) -> String {
        let out = self.compose(&["port", "nginx", "443"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let port = text
            .trim()
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        format!("https://localhost:{port}")
    }

    fn curl(&self, path: &str, body: &str, staff: bool) -> String {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sSk",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
            body,
        ]);
        if staff {
            cmd.args(["-H", &format!("Authorization: Token {}", self.token)]);
        }
        let out = cmd
            .arg(format!("{}{path}", self.base_url()))
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Makes a show and `count` bookings through the public API; returns their references.
    fn book(&self, label: &str, count: usize) -> Vec<String> {
        let show = self.curl(
            "/api/shows/",
            &format!(r#"{{"title": "Rehearsal {label}", "starts_at": "2031-01-01T20:00:00Z", "capacity": 50, "listed": false}}"#),
            true,
        );
        let show: serde_json::Value =
            serde_json::from_str(&show).unwrap_or_else(|_| panic!("no show created: {show}"));
        let id = show["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no show id in {show}"));
        (0..count)
            .map(|i| {
                let booking = self.curl(
                    "/api/bookings/",
                    &format!(r#"{{"show": {id}, "name": "Guest {label} {i}", "email": "guest{i}@example.org", "seats": 1}}"#),
                    false,
                );
                let value: serde_json::Value =
                    serde_json::from_str(&booking).unwrap_or_else(|_| panic!("no booking created: {booking}"));
                value["reference"].as_str().unwrap_or_else(|| panic!("no reference in {booking}")).to_owned()
            })
            .collect()
    }

    /// The references of every booking in the live database.
    fn references(&self) -> Vec<String> {
        let out = self.compose(&[
            "exec",
            "-T",
            "postgres",
            "sh",
            "-c",
            r#"psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -Atc 'SELECT reference FROM bookings_booking ORDER BY reference'"#,
        ]);
        assert!(
            out.status.success(),
            "failed to read the bookings\n{}",
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Rehearsal {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "--remove-orphans"]);
        for tag in [
            format!("azionelab/nginx:{}", self.n),
            format!("azionelab/backend:{}", self.n),
            format!("azionelab/nginx:{}", self.next),
            format!("azionelab/backend:{}", self.next),
        ] {
            let _ = Command::new("docker").args(["image", "rm", &tag]).output();
        }
    }
}

/// Random lowercase hex (std's randomly seeded hasher; no crate needed for a test id).
fn random_hex(len: usize) -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut text = String::new();
    while text.len() < len {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(text.len());
        text.push_str(&format!("{:016x}", hasher.finish()));
    }
    text.truncate(len);
    text
}

#[track_caller]
fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd
        .current_dir(workspace_root())
        .output()
        .unwrap_or_else(|err| panic!("failed to {what}: {err}"));
    assert!(out.status.success(), "failed to {what}\n{}", describe(&out));
}

fn describe(out: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn record_timing(kind: &str, rehearsal: Duration, rollback: Duration) {
    use std::io::Write as _;
    let line = format!(
        "{kind}: rehearsal (deploy N, bookings, deploy N+1, roll back, smoke) {:.1}s; rollback started -> smoke green {:.1}s\n",
        rehearsal.as_secs_f64(),
        rollback.as_secs_f64()
    );
    eprint!("{line}");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(workspace_root().join("target/rollback-timings.txt"))
    {
        let _ = file.write_all(line.as_bytes());
    }
}

#[test]
fn rollback_after_an_additive_migration_keeps_the_database_and_every_booking() {
    if !common::require_engine(
        "rollback_after_an_additive_migration_keeps_the_database_and_every_booking",
    ) {
        return;
    }
    let started = Instant::now();
    let r = Rehearsal::new("additive");
    r.deploy(&r.n);
    let before = r.book("before", 2);
    r.deploy(&r.next);
    let during = r.book("during", 1);

    let rollback_started = Instant::now();
    let out = r.script("ci/rollback.sh", &[]);
    let rollback = rollback_started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "ci/rollback.sh failed\n{}",
        describe(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("keeping the database"),
        "an additive migration must not restore the backup\n{}",
        describe(&out)
    );
    assert!(stderr.contains("smoke green"), "{}", describe(&out));

    let after = r.references();
    for reference in before.iter().chain(&during) {
        assert!(
            after.contains(reference),
            "booking {reference} was lost by the rollback; left: {after:?}"
        );
    }
    record_timing("additive", started.elapsed(), rollback);
}

#[test]
fn rollback_after_a_destructive_migration_restores_the_backup_and_loses_no_earlier_booking() {
    if !common::require_engine(
        "rollback_after_a_destructive_migration_restores_the_backup_and_loses_no_earlier_booking",
    ) {
        return;
    }
    let started = Instant::now();
    let r = Rehearsal::new("destructive");
    r.deploy(&r.n);
    let before = r.book("before", 2);
    r.deploy(&r.next);

    let rollback_started = Instant::now();
    let out = r.script("ci/rollback.sh", &[]);
    let rollback = rollback_started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "ci/rollback.sh failed\n{}",
        describe(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("restoring the database") && stderr.contains("9001_release_destructive"),
        "a destructive migration must restore the backup, naming the migration\n{}",
        describe(&out)
    );
    assert!(stderr.contains("smoke green"), "{}", describe(&out));

    let after = r.references();
    for reference in &before {
        assert!(
            after.contains(reference),
            "booking {reference}, made before the deploy, was lost; left: {after:?}"
        );
    }
    record_timing("destructive", started.elapsed(), rollback);
}
