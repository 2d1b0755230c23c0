//! The rollback rehearsal, on every test run: deploy release N of the reference stack with
//! `ci/deploy.sh`, make bookings, deploy N+1 (the backend plus one migration, built from
//! `fixtures/releases/backend-next`), then `ci/rollback.sh` to N. With an additive migration
//! the database is kept and every booking survives, even one made under N+1; with a
//! destructive one the pre-deploy backup is restored and no booking made before the deploy is
//! lost. Smoke must be green after every step. Timings go to `target/rollback-timings.txt`.
//!
//! Releases go through the real loopback registry (`ci/provision-registry.sh`): each image,
//! and the release's smoke image, is pushed and recorded by digest in an annotated tag of a
//! throwaway tags repository, then every local copy is removed, so a deploy can only get its
//! images by pulling those digests. The deployed containers must run exactly the images
//! pulled by digest, and smoke after a deploy or a rollback is the release's own binary. A
//! registry that does not answer, or lacks a digest, stops a deploy or a rollback before
//! anything changes, with its own exit code (6, 7).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::{self, closed_port, image_id, smoke_bin, workspace_root};

/// The images a rehearsal deploys, besides the smoke image.
const DEPLOYED: [&str; 2] = ["azionelab/nginx", "azionelab/backend"];
const SMOKE_IMAGE: &str = "release-gate/smoke";

/// One rehearsal's stack, state folder, tags repository and images; all removed on drop.
#[derive(Debug)]
struct Rehearsal {
    project: String,
    state: PathBuf,
    /// The throwaway git repository holding the release tags (`DEPLOY_TAGS_REPO`).
    tags: PathBuf,
    registry: String,
    n: String,
    next: String,
    token: String,
    /// Local image tags made for the releases, removed before the first deploy.
    local: Vec<String>,
}

impl Rehearsal {
    /// Releases N and N+1 (the backend with a `change` migration: additive or destructive),
    /// pushed to `registry` and tagged, with no local copy of any of their images left.
    fn new(kind: &str, change: &str, registry: &str) -> Self {
        let id = random_hex(8);
        let project = format!("rollback-{kind}-{id}");
        let state = workspace_root().join("target/gate-rollback").join(&project);
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).expect("create the state folder");
        let tags = state.join("tags");
        git(&state, &["init", "-q", "tags"]);
        git(
            &tags,
            &[
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "release tags of the rehearsal",
            ],
        );
        let token = random_hex(40);
        let mut rehearsal = Rehearsal {
            project,
            state,
            tags,
            registry: registry.to_owned(),
            n: format!("1.0.0-rb{kind}.{id}"),
            next: format!("1.1.0-rb{kind}.{id}"),
            token,
            local: Vec::new(),
        };
        // Release N: the reference images, labelled so that their IDs are this rehearsal's
        // own (removing them removes them, not a tag of images other tests use); N+1: nginx
        // unchanged and the backend with one more migration.
        run_ok(
            Command::new("bash").arg("ci/build-images.sh"),
            "build the reference images",
        );
        let label = format!("org.example.rehearsal={}", rehearsal.project);
        for repo in DEPLOYED {
            let tag = format!("{repo}:{}", rehearsal.n);
            let mut cmd = Command::new("docker");
            cmd.args(["build", "-q", "--label", &label, "-t", &tag, "-"])
                .stdin(std::process::Stdio::piped());
            let mut child = cmd
                .current_dir(workspace_root())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("docker build starts");
            {
                use std::io::Write as _;
                let mut stdin = child.stdin.take().expect("stdin");
                writeln!(stdin, "FROM {repo}:0.1.0").expect("write the Dockerfile");
            }
            let out = child.wait_with_output().expect("docker build runs");
            assert!(
                out.status.success(),
                "failed to build {tag}\n{}",
                describe(&out)
            );
            rehearsal.local.push(tag);
        }
        let next_nginx = format!("azionelab/nginx:{}", rehearsal.next);
        run_ok(
            Command::new("docker").args(["tag", &rehearsal.local[0], &next_nginx]),
            "tag N+1",
        );
        rehearsal.local.push(next_nginx);
        let next_backend = format!("azionelab/backend:{}", rehearsal.next);
        run_ok(
            Command::new("docker").args([
                "build",
                "-q",
                "--label",
                &label,
                "--build-arg",
                &format!("CHANGE={change}"),
                "-t",
                &next_backend,
                "fixtures/releases/backend-next",
            ]),
            "build release N+1 of the backend",
        );
        rehearsal.local.push(next_backend);
        // The release's smoke: this test run's own build, shipped as ci/release-smoke.sh ships it.
        run_ok(
            Command::new("bash")
                .args(["ci/release-smoke.sh", &rehearsal.n])
                .env("RELEASE_SMOKE_BIN", smoke_bin()),
            "build the smoke image",
        );
        rehearsal
            .local
            .push(format!("{SMOKE_IMAGE}:{}", rehearsal.n));

        let n = rehearsal.n.clone();
        let next = rehearsal.next.clone();
        let smoke = format!("{SMOKE_IMAGE}:{n}");
        rehearsal.publish(
            &n,
            &[
                &format!("azionelab/nginx:{n}"),
                &format!("azionelab/backend:{n}"),
                &smoke,
            ],
        );
        rehearsal.publish(
            &next,
            &[
                &format!("azionelab/nginx:{next}"),
                &format!("azionelab/backend:{next}"),
                &smoke,
            ],
        );
        // Nothing of the releases may come from this engine's cache.
        for tag in &rehearsal.local {
            run_ok(
                Command::new("docker").args(["image", "rm", tag]),
                "remove a local copy",
            );
        }
        for version in [&n, &next] {
            for repo in DEPLOYED {
                let reference = rehearsal.pulled(version, repo);
                assert_eq!(
                    image_id(&reference),
                    None,
                    "{reference} is still in the local cache after its tags were removed"
                );
            }
        }
        rehearsal
    }

    /// Pushes `images` (local `REPO:TAG`s) to the registry as release `version` with
    /// ci/lib/registry.sh, the code ci/release-gate.sh pushes with, and tags `v{version}` with
    /// the registry block it writes.
    fn publish(&self, version: &str, images: &[&str]) {
        let out = Command::new("bash")
            .current_dir(workspace_root())
            .args([
                "-c",
                r#"set -euo pipefail; SCRIPT=rehearsal; source ci/lib/registry.sh
registry_open "$1"; version=$2; shift 2
for image in "$@"; do registry_push "$image" "${image%:*}" "$version"; done | registry_block"#,
                "publish",
                &self.registry,
                version,
            ])
            .args(images)
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "failed to push release {version}\n{}",
            describe(&out)
        );
        let message = format!(
            "Release {version} (rollback rehearsal, not gated)\n\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        self.tag(version, &message);
    }

    /// Creates the annotated release tag `v{version}` with `message`.
    fn tag(&self, version: &str, message: &str) {
        let file = self.state.join(format!("message-{version}.txt"));
        std::fs::write(&file, message).expect("write the tag message");
        git(
            &self.tags,
            &[
                "tag",
                "-a",
                &format!("v{version}"),
                "-F",
                &file.display().to_string(),
            ],
        );
    }

    /// The registry reference `HOST:PORT/REPO@sha256:...` the tag of `version` records for `repo`.
    fn pulled(&self, version: &str, repo: &str) -> String {
        let message = git(
            &self.tags,
            &["tag", "-l", "--format=%(contents)", &format!("v{version}")],
        );
        let prefix = format!("{repo}@sha256:");
        let line = message
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with(&prefix))
            .unwrap_or_else(|| panic!("v{version} records no digest of {repo}:\n{message}"));
        format!("{}/{line}", self.registry)
    }

    /// The image ID each deployed service's container runs, by service.
    fn running_images(&self) -> Vec<(String, String, String)> {
        DEPLOYED
            .iter()
            .map(|repo| {
                let service = repo.rsplit('/').next().unwrap_or(repo);
                let out = self.compose(&["ps", "-q", service]);
                let container = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                assert!(!container.is_empty(), "no container runs {service}");
                let out = Command::new("docker")
                    .args([
                        "inspect",
                        "--format",
                        "{{.Image}} {{.State.Running}}",
                        &container,
                    ])
                    .output()
                    .expect("docker inspect runs");
                let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                let (image, running) = text.split_once(' ').unwrap_or((&text, ""));
                assert_eq!(
                    running, "true",
                    "the {service} container {container} is not running"
                );
                (service.to_owned(), container, image.to_owned())
            })
            .collect()
    }

    /// Every deployed container runs the image pulled by the digest `version`'s tag records.
    #[track_caller]
    fn assert_runs(&self, version: &str) {
        for ((service, container, image), repo) in self.running_images().into_iter().zip(DEPLOYED) {
            let reference = self.pulled(version, repo);
            let pulled = image_id(&reference)
                .unwrap_or_else(|| panic!("{reference} was not pulled for release {version}"));
            assert_eq!(
                image, pulled,
                "the {service} container {container} does not run {reference} of release {version}"
            );
        }
    }

    fn script(&self, script: &str, args: &[&str]) -> Output {
        self.script_with(script, args, &[])
    }

    fn script_with(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
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
            .env("DEPLOY_TAGS_REPO", &self.tags)
            .env("SMOKE_STAFF_TOKEN", &self.token)
            // Smoke is the release's own binary, taken from its smoke image.
            .env_remove("SMOKE_BIN")
            .env_remove("RELEASE_REGISTRY")
            .env_remove("GITHUB_STEP_SUMMARY")
            .envs(env.iter().copied())
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
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "pulled release {version} from {} by digest",
                self.registry
            )),
            "ci/deploy.sh {version} did not pull from the registry\n{}",
            describe(&out)
        );
        assert!(
            stderr.contains(&format!("releases/{version}/smoke")),
            "post-deploy smoke was not release {version}'s own binary\n{}",
            describe(&out)
        );
        self.assert_runs(version);
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
        let mut images = self.local.clone();
        for version in [&self.n, &self.next] {
            for repo in DEPLOYED.iter().chain([&SMOKE_IMAGE]) {
                if let Ok(message) =
                    std::fs::read_to_string(self.state.join(format!("message-{version}.txt")))
                {
                    let prefix = format!("{repo}@sha256:");
                    if let Some(line) = message
                        .lines()
                        .map(str::trim)
                        .find(|l| l.starts_with(&prefix))
                    {
                        images.push(format!("{}/{line}", self.registry));
                    }
                }
            }
        }
        for image in images {
            let _ = Command::new("docker")
                .args(["image", "rm", &image])
                .output();
        }
        let _ = std::fs::remove_dir_all(
            workspace_root()
                .join("target/release-artifacts")
                .join(&self.n),
        );
    }
}

#[track_caller]
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=rehearsal",
            "-c",
            "user.email=rehearsal@localhost",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {} failed in {}\n{}",
        args.join(" "),
        dir.display(),
        describe(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
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
    let test = "rollback_after_an_additive_migration_keeps_the_database_and_every_booking";
    if !common::require_engine(test) {
        return;
    }
    let Some(registry) = common::require_registry(test) else {
        return;
    };
    let started = Instant::now();
    let r = Rehearsal::new("additive", "additive", &registry);
    r.deploy(&r.n);
    let before = r.book("before", 2);
    r.deploy(&r.next);
    let during = r.book("during", 1);

    // A rollback that cannot reach the registry stops before anything: N+1 keeps running.
    let up = r.running_images();
    let down = format!("127.0.0.1:{}", closed_port());
    let out = r.script_with("ci/rollback.sh", &[], &[("RELEASE_REGISTRY", &down)]);
    assert_eq!(out.status.code(), Some(6), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("the registry {down} does not answer")),
        "{}",
        describe(&out)
    );
    assert_eq!(
        r.running_images(),
        up,
        "a refused rollback changed the running release"
    );
    // The rollback must pull N's backend again: its local copy goes now.
    let n_backend = r.pulled(&r.n, "azionelab/backend");
    run_ok(
        Command::new("docker").args(["image", "rm", &n_backend]),
        "remove N's backend",
    );

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
    assert!(
        stderr.contains(&format!("pulled release {} from {registry} by digest", r.n))
            && stderr.contains(&format!("releases/{}/smoke", r.n)),
        "the rollback did not pull N by digest and smoke it with N's own binary\n{}",
        describe(&out)
    );
    r.assert_runs(&r.n);

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
    let test =
        "rollback_after_a_destructive_migration_restores_the_backup_and_loses_no_earlier_booking";
    if !common::require_engine(test) {
        return;
    }
    let Some(registry) = common::require_registry(test) else {
        return;
    };
    let started = Instant::now();
    let r = Rehearsal::new("destructive", "destructive", &registry);
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
    r.assert_runs(&r.n);

    let after = r.references();
    for reference in &before {
        assert!(
            after.contains(reference),
            "booking {reference}, made before the deploy, was lost; left: {after:?}"
        );
    }
    record_timing("destructive", started.elapsed(), rollback);
}

#[test]
fn deploy_stops_before_changing_anything_when_the_registry_is_down_or_lacks_a_digest() {
    let test = "deploy_stops_before_changing_anything_when_the_registry_is_down_or_lacks_a_digest";
    if !common::require_engine(test) {
        return;
    }
    let Some(registry) = common::require_registry(test) else {
        return;
    };
    let r = Rehearsal::new("registry", "additive", &registry);
    r.deploy(&r.n);
    let up = r.running_images();
    let current = || std::fs::read_to_string(r.state.join("current")).unwrap_or_default();

    // The registry does not answer: exit 6, nothing stopped, release N still current.
    let down = format!("127.0.0.1:{}", closed_port());
    let out = r.script_with("ci/deploy.sh", &[&r.next], &[("RELEASE_REGISTRY", &down)]);
    assert_eq!(out.status.code(), Some(6), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("the registry {down} does not answer"))
            && stderr.contains("nothing was changed"),
        "{}",
        describe(&out)
    );
    assert!(
        !stderr.contains("backed up"),
        "a refused deploy took a backup\n{}",
        describe(&out)
    );
    assert_eq!(
        r.running_images(),
        up,
        "a deploy to an unreachable registry changed the running release"
    );
    assert_eq!(current().trim(), r.n);

    // A release whose backend digest was never pushed: exit 7, naming it; N keeps running.
    let bad = format!("{}-missing", r.next);
    let never_pushed = format!("sha256:{}", random_hex(64));
    let nginx = r.pulled(&r.n, "azionelab/nginx");
    let nginx = nginx.trim_start_matches(&format!("{registry}/"));
    r.tag(
        &bad,
        &format!(
            "Release {bad} (a digest that is not in the registry)\n\nRegistry: {registry}\nRegistry digests (ci/deploy.sh pulls these and nothing else):\n  {nginx}\n  azionelab/backend@{never_pushed}\n"
        ),
    );
    let out = r.script("ci/deploy.sh", &[&bad]);
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("has no image azionelab/backend@{never_pushed}")),
        "the missing digest is not named\n{}",
        describe(&out)
    );
    assert_eq!(
        r.running_images(),
        up,
        "a deploy of a missing digest changed the running release"
    );
    assert_eq!(current().trim(), r.n);
}

/// A second `docker-registry` that requires a login (htpasswd, bcrypt), on a free loopback
/// port, with its own folder; killed and removed on drop.
#[derive(Debug)]
struct AuthRegistry {
    dir: PathBuf,
    address: String,
    child: std::process::Child,
}

impl AuthRegistry {
    fn start(user: &str, password: &str) -> Self {
        let dir = workspace_root()
            .join("target/gate-rollback")
            .join(format!("auth-registry-{}", random_hex(8)));
        std::fs::create_dir_all(dir.join("storage")).expect("create the registry folder");
        let out = Command::new("python3")
            .args([
                "-W",
                "ignore",
                "-c",
                "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
                password,
            ])
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "no bcrypt hash\n{}", describe(&out));
        let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        std::fs::write(dir.join("htpasswd"), format!("{user}:{hash}\n")).expect("write htpasswd");
        let address = format!("127.0.0.1:{}", closed_port());
        std::fs::write(
            dir.join("config.yml"),
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\nauth:\n  htpasswd:\n    realm: release-test\n    path: {}\n",
                dir.join("storage").display(),
                dir.join("htpasswd").display()
            ),
        )
        .expect("write the registry config");
        let log = std::fs::File::create(dir.join("registry.log")).expect("create the log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let registry = AuthRegistry {
            dir,
            address,
            child,
        };
        // Readiness: /v2/ answers 401 (a login is required), with a deadline.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = String::new();
        while Instant::now() < deadline {
            let out = Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg(format!("http://{}/v2/", registry.address))
                .output()
                .expect("curl runs");
            last = String::from_utf8_lossy(&out.stdout).into_owned();
            if last == "401" {
                return registry;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "the registry with a login never answered 401 on {} (last: {last})",
            registry.address
        );
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn deploy_logs_in_with_credentials_it_masks_and_keeps_nowhere() {
    let test = "deploy_logs_in_with_credentials_it_masks_and_keeps_nowhere";
    if !common::require_engine(test) {
        return;
    }
    if common::require_registry(test).is_none() {
        return;
    }
    let password = format!("pw-{}", random_hex(24));
    let registry = AuthRegistry::start("releaser", &password);
    let state = registry.dir.join("state");
    let tags = registry.dir.join("tags");
    let tmp = registry.dir.join("tmp");
    std::fs::create_dir_all(&state).expect("state folder");
    std::fs::create_dir_all(&tmp).expect("tmp folder");
    git(&registry.dir, &["init", "-q", "tags"]);
    git(&tags, &["commit", "-q", "--allow-empty", "-m", "tags"]);
    let digest = format!("sha256:{}", random_hex(64));
    let message = registry.dir.join("message.txt");
    std::fs::write(
        &message,
        format!(
            "Release 9.0.0\n\nRegistry: {}\nRegistry digests (ci/deploy.sh pulls these and nothing else):\n  azionelab/nginx@{digest}\n  azionelab/backend@{digest}\n",
            registry.address
        ),
    )
    .expect("write the tag message");
    git(
        &tags,
        &["tag", "-a", "v9.0.0", "-F", &message.display().to_string()],
    );
    let deploy = |password: &str| {
        Command::new("bash")
            .current_dir(workspace_root())
            .args(["ci/deploy.sh", "9.0.0"])
            .env("DEPLOY_PROJECT", format!("auth-{}", random_hex(6)))
            .env("DEPLOY_ENV_FILE", "fixtures/azionelab/.env.example")
            .env("DEPLOY_STATE_DIR", &state)
            .env("DEPLOY_TAGS_REPO", &tags)
            .env("DEPLOY_URL", "auto")
            .env("RELEASE_REGISTRY_USER", "releaser")
            .env("RELEASE_REGISTRY_PASSWORD", password)
            .env("TMPDIR", &tmp)
            .env_remove("RELEASE_REGISTRY")
            .output()
            .expect("ci/deploy.sh starts")
    };

    // A wrong password: exit 6, the login refused, the password nowhere in the output.
    let wrong = format!("wrong-{}", random_hex(24));
    let out = deploy(&wrong);
    assert_eq!(out.status.code(), Some(6), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused the login of `releaser`"),
        "{}",
        describe(&out)
    );
    assert!(
        !describe(&out).contains(&wrong),
        "the password was printed\n{}",
        describe(&out)
    );

    // The right one: the login works, so the pull reaches the registry, which lacks the digest.
    let out = deploy(&password);
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("has no image azionelab/nginx@{digest}")),
        "{}",
        describe(&out)
    );
    assert!(
        !describe(&out).contains(&password),
        "the password was printed\n{}",
        describe(&out)
    );
    // The throwaway login folder is gone, and the user's own docker config never saw it.
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .expect("tmp folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "the login outlived the deploy: {left:?}");
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let config = std::fs::read_to_string(home.join(".docker/config.json")).unwrap_or_default();
    assert!(
        !config.contains(&registry.address),
        "the login was written to ~/.docker/config.json"
    );
}
