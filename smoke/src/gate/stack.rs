//! One stack's life in the gate: prepared (configuration resolved and validated, secrets
//! generated, labels attached), built, started through testcontainers, prepared by its
//! one-shot operations, and torn down: always, including on failure, panic and interruption.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::Rng;
use testcontainers::compose::DockerCompose;

use super::compose::{
    COMPOSE_PROJECT_LABEL, CommandError, ComposeConfig, LABEL_BOOT, LABEL_HOST, LABEL_LEASE,
    LABEL_PID, LABEL_PIDNS, LABEL_RUN, Output, Project,
};
use super::engine::{Engine, OutOfReach};
use super::spec::{Operation, StackSpec, interpolate, parse_env_file};
use super::sweep::{Lease, boot_id, host_name, pid_namespace};
use crate::secret::{self, Secret};

/// How long one-shot operations (migrate, collectstatic) may take.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(300);
/// How long image builds may take on a cold machine.
const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);

/// A failure of the stack lifecycle, as opposed to a failed check.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(
        "the compose files of `{stack}` do not make a valid project ({files}) (check them with `docker compose -f FILE config`)"
    )]
    Config {
        stack: String,
        files: String,
        #[source]
        source: CommandError,
    },
    #[error("failed to build the images of `{stack}`")]
    Build {
        stack: String,
        #[source]
        source: CommandError,
    },
    #[error("the stack `{stack}` did not start healthy")]
    Up {
        stack: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("failed to read `{what}` from the running stack")]
    Inspect {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "the compose files of `{stack}` publish fixed host ports: {ports}; parallel runs would collide, and the gate would test whatever already holds them (in the test override, replace them with `ports: !override` and `\"127.0.0.1::PORT\"` entries, or `ports: !reset []` for a service that must publish nothing)"
    )]
    FixedHostPorts { stack: String, ports: String },
    #[error(
        "`--no-build` was given but these images of `{stack}` are not on the engine: {images} (build them first: run the gate without `--no-build`, or `docker compose build`; nothing is pulled or built behind your back)"
    )]
    MissingImages { stack: String, images: String },
    #[error("`{service}` of `{stack}` cannot be reached from this machine")]
    OutOfReach {
        stack: String,
        service: String,
        #[source]
        source: OutOfReach,
    },
    #[error("failed to write `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The outcome of one one-shot operation.
#[derive(Debug, Clone)]
pub struct OperationResult {
    pub name: String,
    pub command: String,
    pub duration: Duration,
    pub output: Result<Output, String>,
    /// The `exports` it printed, for the checks.
    pub exports: BTreeMap<String, String>,
    /// The failed operation it waited for, when it was not run.
    pub not_run: Option<String>,
}

impl OperationResult {
    pub fn succeeded(&self) -> bool {
        self.not_run.is_none() && matches!(&self.output, Ok(out) if out.success)
    }

    /// The result of an operation skipped because `after` failed.
    fn not_run(name: &str, command: &[String], after: &str) -> OperationResult {
        OperationResult {
            name: name.to_owned(),
            command: shell_words::join(command.iter()),
            duration: Duration::ZERO,
            output: Err(format!(
                "not run: the operation `{after}` it runs after failed"
            )),
            exports: BTreeMap::new(),
            not_run: Some(after.to_owned()),
        }
    }

    /// Keeps the `KEY=VALUE` stdout lines named in `keys`; a named key the command did not
    /// print turns a success into a failure that says so.
    fn read_exports(&mut self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        let Ok(out) = &mut self.output else { return };
        if !out.success {
            return;
        }
        for line in out.stdout.lines() {
            if let Some((key, value)) = line.trim().split_once('=')
                && keys.iter().any(|k| k == key.trim())
            {
                self.exports
                    .insert(key.trim().to_owned(), value.trim().to_owned());
            }
        }
        let missing: Vec<&str> = keys
            .iter()
            .filter(|k| !self.exports.contains_key(*k))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            out.success = false;
            out.stderr.push_str(&format!(
                "\nsmoke: the command printed no `KEY=VALUE` line for {} on stdout (`exports` in gate.toml)",
                missing.join(", ")
            ));
        }
    }
}

/// Where users reach the started stack.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// On the stack's virtual host name (`public.host`) and the published port.
    pub https_url: Option<url::Url>,
    pub http_url: Option<url::Url>,
    /// Where `public.host` is connected to: the engine's, not DNS's, answer.
    pub public_ip: std::net::IpAddr,
    pub mail_api_url: Option<url::Url>,
    pub ca_cert_pem: Option<Vec<u8>>,
}

/// A stack being driven by the gate.
pub struct Stack {
    pub spec: StackSpec,
    pub run_id: String,
    pub project: Project,
    pub config: ComposeConfig,
    pub run_dir: PathBuf,
    pub staff_token: Secret,
    /// The infrastructure project (`[infra_project]`): up before, down after the app project.
    pub infra: Option<Project>,
    /// The engine the stack runs on, and where its published ports are reached.
    pub engine: Engine,
    compose: Option<DockerCompose>,
    torn_down: bool,
    /// Held for the run's whole life: how a later sweep tells it is alive (`sweep::Lease`).
    _lease: Lease,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("stack", &self.spec.name)
            .field("project", &self.project.name)
            .field("run_dir", &self.run_dir)
            .finish()
    }
}

/// One operation (or the staff command) to run, with its resolved variables.
struct Job<'a> {
    name: String,
    service: &'a str,
    command: &'a [String],
    env: Vec<(String, String)>,
    /// What must have succeeded for it to run.
    after: Vec<String>,
    /// What must have finished (succeeded or not) before it starts or is skipped.
    wait_for: Vec<String>,
    exports: &'a [String],
}

/// Where a stack's containers stand on the way to healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Every container is running (healthy where it has a healthcheck), or a one-shot that
    /// exited 0.
    Ready,
    /// What is not there yet (`backend` starting, `nginx` created, ...).
    Waiting(Vec<String>),
    /// A healthcheck failed or a container exited with an error: waiting cannot help.
    Failed(String),
}

/// Judges one `compose ps --all` listing.
pub fn judge_health(entries: &[super::compose::PsEntry]) -> Health {
    let mut waiting = Vec::new();
    for entry in entries {
        let who = format!("`{}` ({})", entry.service, entry.name);
        match (entry.state.as_str(), entry.health.as_str()) {
            (_, "unhealthy") => {
                return Health::Failed(format!("container {who} is unhealthy"));
            }
            ("exited" | "dead", _) if entry.exit_code != 0 => {
                return Health::Failed(format!(
                    "container {who} exited with status {}",
                    entry.exit_code
                ));
            }
            ("exited", _) => {}
            ("running", "" | "healthy") => {}
            (state, "") => waiting.push(format!("{who} {state}")),
            (_, health) => waiting.push(format!("{who} {health}")),
        }
    }
    if entries.is_empty() {
        waiting.push("no container yet".to_owned());
    }
    if waiting.is_empty() {
        Health::Ready
    } else {
        Health::Waiting(waiting)
    }
}

/// The compose project name images of `stack` are built under (by the gate and by
/// `ci/build-images.sh`): stable, so an unchanged build yields the same image.
pub fn build_project_name(stack: &str) -> String {
    format!("smokegate-build-{}", sanitize(stack))
}

/// The same for the stack's infrastructure project (`[infra_project]`).
pub fn infra_build_project_name(stack: &str) -> String {
    build_project_name(&format!("{stack}-infra"))
}

/// The tag given to an image a service builds without naming it (`image:`), so that every
/// run uses the one image the stable build project made, and never a `latest`.
pub const UNNAMED_BUILD_TAG: &str = "gate";

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// Each `service host_port->container_port` that one of `services` publishes on a fixed host
/// port (`"8080:80"`); an ephemeral one (`"127.0.0.1::80"`, `published` absent, empty or `0`)
/// is fine. Only the services the gate publishes on purpose (the public one, the test-only
/// ones) are a configuration error: any other publishing at all is what
/// `infra.only_public_services_publish_ports` reports as a failed check.
pub fn fixed_host_ports(config: &ComposeConfig, services: &[&str]) -> Vec<String> {
    let mut fixed = Vec::new();
    for (name, service) in &config.services {
        if !services.contains(&name.as_str()) {
            continue;
        }
        for port in &service.ports {
            let published = match port.get("published") {
                Some(serde_json::Value::String(p)) => p.trim().to_owned(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            if published.is_empty() || published == "0" {
                continue;
            }
            let target = port
                .get("target")
                .map(|t| t.to_string().trim_matches('"').to_owned())
                .unwrap_or_else(|| "?".into());
            fixed.push(format!("`{name}` {published}->{target}"));
        }
    }
    fixed
}

/// The first port one of `services` publishes where this machine cannot reach it (a remote
/// engine's loopback), from the resolved configuration: known before anything starts.
pub fn out_of_reach(
    config: &ComposeConfig,
    services: &[&str],
    engine: &Engine,
) -> Option<(String, OutOfReach)> {
    config
        .services
        .iter()
        .filter(|(name, _)| services.contains(&name.as_str()))
        .flat_map(|(name, service)| service.ports.iter().map(move |port| (name, port)))
        .find_map(|(name, port)| {
            let host_ip = port
                .get("host_ip")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            let target = port
                .get("target")
                .and_then(serde_json::Value::as_u64)
                .and_then(|t| u16::try_from(t).ok())
                .unwrap_or(0);
            // The host port is ephemeral and not known yet: 0 stands for it.
            engine
                .reach(host_ip, 0, target)
                .err()
                .map(|err| (name.clone(), err))
        })
}

impl Stack {
    /// Resolves the configuration (catching a compose file that does not parse), generates
    /// this run's secrets and attaches the ownership labels. Starts nothing.
    pub async fn prepare(
        spec: StackSpec,
        overrides: &[PathBuf],
        runs_dir: &Path,
        engine: Engine,
    ) -> Result<Stack, StackError> {
        let run_id = random_hex(4);
        let project_name = format!("smokegate-{}-{run_id}", sanitize(&spec.name));
        // Absolute: compose resolves relative paths from the project directory, not from here.
        let runs_dir = std::path::absolute(runs_dir).unwrap_or_else(|_| runs_dir.to_path_buf());
        let run_dir = runs_dir.join(&project_name);
        std::fs::create_dir_all(&run_dir).map_err(|source| StackError::Io {
            path: run_dir.clone(),
            source,
        })?;
        let lease_path = run_dir.join("lease");
        let lease = Lease::take(&lease_path).map_err(|source| StackError::Io {
            path: lease_path,
            source,
        })?;
        let owner = Ownership {
            run_id: run_id.clone(),
            lease: lease.path().display().to_string(),
        };

        let mut env = resolve_env(&spec)?;
        // The external network's name, unique per run so parallel gates never share it; both
        // projects interpolate it (the infra project creates it, the app project joins it).
        if let Some(infra) = &spec.infra_project {
            env.insert(infra.network_env.clone(), format!("{project_name}_edge"));
        }
        let infra = match &spec.infra_project {
            Some(infra_spec) => {
                let mut infra = Project {
                    name: format!(
                        "{project_name}-{}",
                        sanitize(infra_spec.name.as_deref().unwrap_or("infra"))
                    ),
                    files: spec.infra_compose_files(),
                    env: env.clone(),
                };
                label_project(
                    &mut infra,
                    &format!("{} (infrastructure project)", spec.name),
                    &run_dir.join("compose.infra.labels.yml"),
                    &owner,
                    &infra_build_project_name(&spec.name),
                )
                .await?;
                Some(infra)
            }
            None => None,
        };
        let mut files = spec.compose_files();
        files.extend(
            overrides
                .iter()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
        );
        let mut project = Project {
            name: project_name,
            files,
            env,
        };
        let config = label_project(
            &mut project,
            &spec.name,
            &run_dir.join("compose.labels.yml"),
            &owner,
            &build_project_name(&spec.name),
        )
        .await?;

        let published: Vec<&str> = std::iter::once(spec.public.service.as_str())
            .chain(spec.test_only_services.iter().map(String::as_str))
            .collect();
        let fixed = fixed_host_ports(&config, &published);
        if !fixed.is_empty() {
            return Err(StackError::FixedHostPorts {
                stack: spec.name.clone(),
                ports: fixed.join(", "),
            });
        }
        // Before anything starts: a remote engine's loopback is out of reach, and waiting for
        // it would only end in a timeout that says nothing.
        if let Some((service, source)) = out_of_reach(&config, &published, &engine) {
            return Err(StackError::OutOfReach {
                stack: spec.name.clone(),
                service,
                source,
            });
        }

        let staff_token = Secret::new(random_hex(20));
        Ok(Stack {
            spec,
            run_id,
            project,
            config,
            run_dir,
            staff_token,
            infra,
            engine,
            compose: None,
            torn_down: false,
            _lease: lease,
        })
    }

    /// Builds the images the project builds (and the infrastructure project's), under the
    /// stack's build project name rather than the run's: compose stamps the project name into
    /// every image it builds, so a per-run name would make each gate re-label (and so replace)
    /// the images, leaving the previous ones dangling. Under a stable name an unchanged build
    /// is the same image.
    pub async fn build(&self) -> Result<(), StackError> {
        let builds = |project: &Project, stack: String, build_name: String| {
            let builder = Project {
                name: build_name,
                files: project.files.clone(),
                env: project.env.clone(),
            };
            async move {
                builder
                    .run_ok(["build"], BUILD_TIMEOUT)
                    .await
                    .map_err(|source| StackError::Build { stack, source })?;
                // Services sharing one `image:` each build it with their own labels, and the
                // tag goes to one of them; a changed build replaces the previous images. What
                // this build project left untagged goes (in use by a container: kept).
                let _ = super::compose::docker(
                    [
                        "image",
                        "prune",
                        "--force",
                        "--filter",
                        &format!("label={COMPOSE_PROJECT_LABEL}={}", builder.name),
                    ],
                    Duration::from_secs(60),
                )
                .await;
                Ok(())
            }
        };
        if let Some(infra) = &self.infra {
            builds(
                infra,
                format!("{} (infrastructure project)", self.spec.name),
                infra_build_project_name(&self.spec.name),
            )
            .await?;
        }
        if self.config.services.values().any(|s| s.build.is_some()) {
            builds(
                &self.project,
                self.spec.name.clone(),
                build_project_name(&self.spec.name),
            )
            .await?;
        }
        Ok(())
    }

    /// With `--no-build`: every image the project runs must already be on the engine, or
    /// `up` would build (or pull) it behind the user's back while the phase table says
    /// `build 0ms`. Names the missing ones.
    pub async fn require_images(&self) -> Result<(), StackError> {
        let build_project = build_project_name(&self.spec.name);
        let images = self.config.services.iter().filter_map(|(service, config)| {
            let image = match (&config.image, &config.build) {
                (Some(image), _) => image.clone(),
                (None, Some(_)) => {
                    format!("{build_project}-{}:{UNNAMED_BUILD_TAG}", sanitize(service))
                }
                (None, None) => return None,
            };
            Some(async move {
                let found = super::compose::docker(
                    ["image", "inspect", "--format", "{{.Id}}", image.as_str()],
                    Duration::from_secs(30),
                )
                .await
                .is_ok_and(|out| out.success);
                (!found).then(|| format!("`{image}` (service `{service}`)"))
            })
        });
        // All asked at once, named in the services' order.
        let missing: Vec<String> = futures::future::join_all(images)
            .await
            .into_iter()
            .flatten()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(StackError::MissingImages {
                stack: self.spec.name.clone(),
                images: missing.join(", "),
            })
        }
    }

    /// Starts the stack through testcontainers and waits for its healthchecks.
    pub async fn up(&mut self) -> Result<(), StackError> {
        let wait_timeout = self.spec.up_timeout.to_string();
        if let Some(infra) = &self.infra {
            infra
                .run_ok(
                    ["up", "-d", "--wait", "--wait-timeout", &wait_timeout],
                    BUILD_TIMEOUT,
                )
                .await
                .map_err(|source| StackError::Up {
                    stack: format!(
                        "{} (infrastructure project `{}`)",
                        self.spec.name, infra.name
                    ),
                    source: Box::new(source),
                })?;
        }
        let mut compose = DockerCompose::with_local_client(self.project.files.as_slice())
            .with_project_name(self.project.name.clone())
            .with_env_vars(self.project.env.clone().into_iter().collect())
            .with_build(false)
            // testcontainers (0.27, 0.28) waits with a hard-coded `--wait-timeout 60`: a
            // hidden cap on a loaded machine. It creates and starts the stack; the wait is
            // ours, below, with the gate file's `up_timeout`.
            .with_wait(false);
        compose.with_remove_volumes(true);
        // `up -d` itself waits for `depends_on` healthchecks, with no deadline of its own.
        let deadline = Duration::from_secs(self.spec.up_timeout);
        let result = match tokio::time::timeout(deadline, compose.up()).await {
            Ok(result) => result.map_err(|err| -> Box<dyn std::error::Error + Send + Sync> {
                Box::new(err)
            }),
            Err(_) => Err(format!(
                "`docker compose up` did not start every service within `up_timeout` ({}s): a `depends_on` healthcheck never passed (raise `up_timeout` in gate.toml if it only needs longer)",
                deadline.as_secs()
            )
            .into()),
        };
        // Keep the handle even when `up` failed: its containers hold the logs the evidence
        // needs, and teardown goes through it.
        self.compose = Some(compose);
        result.map_err(|source| StackError::Up {
            stack: self.spec.name.clone(),
            source,
        })?;
        // Going around testcontainers, which has no wait with a chosen deadline: `compose ps`
        // until every healthcheck passes, one fails, or `up_timeout` is past. (Not a second
        // `up --wait`: `up` would start the one-shot containers that already ran again.)
        self.wait_healthy(Duration::from_secs(self.spec.up_timeout))
            .await
            .map_err(|source| StackError::Up {
                stack: self.spec.name.clone(),
                source: source.into(),
            })
    }

    /// Looks at the stack's containers, again each time one changes, until [`judge_health`]
    /// says ready, failed, or `deadline` is past (naming what was still waited for).
    async fn wait_healthy(&self, deadline: Duration) -> Result<(), String> {
        let started = std::time::Instant::now();
        // Watched before the first look, so that no change falls between the two.
        let mut changes = self.project.changes();
        loop {
            let waiting = match self.project.states().await {
                Ok(entries) => match judge_health(&entries) {
                    Health::Ready => return Ok(()),
                    Health::Failed(why) => return Err(why),
                    Health::Waiting(waiting) => waiting,
                },
                Err(err) => vec![format!("`docker compose ps` failed: {err}")],
            };
            if started.elapsed() >= deadline {
                return Err(format!(
                    "not healthy within `up_timeout` ({}s): {} (raise `up_timeout` in gate.toml if it only needs longer)",
                    deadline.as_secs(),
                    waiting.join(", ")
                ));
            }
            // A healthcheck's verdict wakes the wait at once; the second is only a safety net.
            changes.next(Duration::from_secs(1)).await;
        }
    }

    /// Runs the spec's one-shot operations and the `[staff]` command, each as soon as the
    /// operations it comes `after` have finished (not in waves: `fixtures` starts when
    /// `migrate` is done, whatever `collectstatic` is still doing); `[staff]` without `after`
    /// waits for every operation. One whose prerequisite failed is not run. Results come in
    /// the order the gate file declares them, staff last.
    pub async fn operations(&self) -> Vec<OperationResult> {
        use futures::stream::{FuturesUnordered, StreamExt};

        let mut jobs: Vec<Job<'_>> = self
            .spec
            .operations
            .iter()
            // Those run while the stack starts: `operations_while_starting`.
            .filter(|op| !op.while_starting)
            .map(|op| Job {
                name: op.name.clone(),
                service: &op.service,
                command: &op.command,
                env: self.project.vars(&op.env),
                after: op.after.clone(),
                wait_for: op.after.clone(),
                exports: &op.exports,
            })
            .collect();
        if let Some(staff) = &self.spec.staff {
            let mut env = self.project.vars(&staff.env);
            env.push((
                staff.token_env.clone(),
                self.staff_token.expose().to_owned(),
            ));
            jobs.push(Job {
                name: "staff".to_owned(),
                service: &staff.service,
                command: &staff.command,
                env,
                after: staff.after.iter().cloned().collect(),
                // Without `after`, it waits for every operation (failed or not), as it always
                // did: it may need the tables and was never told which operation makes them.
                wait_for: match &staff.after {
                    Some(after) => vec![after.clone()],
                    None => self
                        .spec
                        .operations
                        .iter()
                        .filter(|op| !op.while_starting)
                        .map(|op| op.name.clone())
                        .collect(),
                },
                exports: &[],
            });
        }
        let order: Vec<String> = jobs.iter().map(|job| job.name.clone()).collect();
        // The services that are running, to run the operations in (a service that is not, a
        // one-shot `migrate` service say, gets a fresh container).
        let up: BTreeSet<String> = match self.project.states().await {
            Ok(entries) => entries
                .into_iter()
                .filter(|e| e.state == "running")
                .map(|e| e.service)
                .collect(),
            Err(_) => BTreeSet::new(),
        };

        let mut results: Vec<OperationResult> = Vec::new();
        let mut pending = jobs;
        let mut running = FuturesUnordered::new();
        loop {
            // Start (or skip) everything whose prerequisites have all finished; skipping one
            // finishes it, which may release others, hence the inner loop.
            loop {
                let (ready, waiting): (Vec<Job<'_>>, Vec<Job<'_>>) =
                    pending.into_iter().partition(|job| {
                        job.wait_for
                            .iter()
                            .all(|name| results.iter().any(|r| &r.name == name))
                    });
                pending = waiting;
                let mut skipped = false;
                for job in ready {
                    let failed = job
                        .after
                        .iter()
                        .find(|after| results.iter().any(|r| &r.name == *after && !r.succeeded()));
                    match failed {
                        Some(after) => {
                            results.push(OperationResult::not_run(&job.name, job.command, after));
                            skipped = true;
                        }
                        None => running.push(self.job(job, &up)),
                    }
                }
                if !skipped {
                    break;
                }
            }
            match running.next().await {
                Some(result) => results.push(result),
                // Nothing running and nothing startable: done (an `after` naming no operation
                // is refused when the gate file is read).
                None => break,
            }
        }
        results.sort_by_key(|r| order.iter().position(|name| name == &r.name));
        results
    }

    async fn job(&self, job: Job<'_>, up: &BTreeSet<String>) -> OperationResult {
        let env: Vec<(&str, &str)> = job
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut result = run_operation(
            &self.project,
            &job.name,
            job.service,
            up.contains(job.service),
            job.command,
            &env,
        )
        .await;
        result.read_exports(job.exports);
        result
    }

    /// The URLs of the started stack (ephemeral host ports, on the engine's host) and the
    /// certificate to trust.
    pub async fn endpoints(&self) -> Result<Endpoints, StackError> {
        let public = &self.spec.public;
        // Read from the engine's port map (`docker inspect`) rather than testcontainers':
        // it says on which address each port is published (a remote engine's loopback is out
        // of reach), and it comes through the docker CLI, so through the same `DOCKER_HOST`
        // as `up`.
        let entries = self
            .project
            .states()
            .await
            .map_err(|err| StackError::Inspect {
                what: "the published ports (`docker inspect`)".into(),
                source: Box::new(err),
            })?;
        let reach = |service: &str, port: u16| self.published(&entries, service, port);
        let https = public
            .https_port
            .map(|port| reach(&public.service, port))
            .transpose()?;
        let http = public
            .http_port
            .map(|port| reach(&public.service, port))
            .transpose()?;
        let mail = match &self.spec.mail {
            Some(mail) => Some(reach(&mail.service, mail.api_port)?),
            None => None,
        };
        let ca_cert_pem = match (&public.ca_cert, https) {
            (Some(path), Some(_)) => {
                let out = self
                    .project
                    .exec(
                        &public.service,
                        &["cat".to_owned(), path.clone()],
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|err| StackError::Inspect {
                        what: format!("{path} in `{}`", public.service),
                        source: Box::new(err),
                    })?;
                if !out.success || !out.stdout.contains("BEGIN CERTIFICATE") {
                    return Err(StackError::Inspect {
                        what: format!("{path} in `{}`", public.service),
                        source: format!("no PEM certificate there: {}", out.combined().trim())
                            .into(),
                    });
                }
                Some(out.stdout.into_bytes())
            }
            _ => None,
        };
        let url = |scheme: &str, addr: std::net::SocketAddr| {
            url::Url::parse(&format!("{scheme}://{}:{}/", public.host, addr.port())).ok()
        };
        Ok(Endpoints {
            https_url: https.and_then(|a| url("https", a)),
            http_url: http.and_then(|a| url("http", a)),
            public_ip: https.or(http).map_or(self.engine.addr, |a| a.ip()),
            // The mail API has no virtual host: its address itself.
            mail_api_url: mail.and_then(|a| url::Url::parse(&format!("http://{a}/")).ok()),
            ca_cert_pem,
        })
    }

    /// Where this machine reaches `service`'s container `port`, as `ps` lists it.
    fn published(
        &self,
        entries: &[super::compose::PsEntry],
        service: &str,
        port: u16,
    ) -> Result<std::net::SocketAddr, StackError> {
        let publisher = entries
            .iter()
            .filter(|e| e.service == service)
            .flat_map(|e| e.published())
            .filter(|p| p.target_port == port && (p.protocol.is_empty() || p.protocol == "tcp"))
            // IPv4 first, as the loopback and all-interfaces entries come in pairs.
            .min_by_key(|p| p.url.contains(':'))
            .ok_or_else(|| StackError::Inspect {
                what: format!("the host port of `{service}:{port}`"),
                source: format!(
                    "the engine lists no published port for `{service}` port {port} (is it in the test override's `ports:`?)"
                )
                .into(),
            })?;
        self.engine
            .reach(&publisher.url, publisher.published_port, port)
            .map_err(|source| StackError::OutOfReach {
                stack: self.spec.name.clone(),
                service: service.to_owned(),
                source,
            })
    }

    /// Tears the stack down: containers, networks and volumes. Idempotent.
    pub async fn teardown(&mut self) -> Result<(), CommandError> {
        if self.torn_down {
            return Ok(());
        }
        // Killed, not stopped: the evidence is saved, and nothing of a throwaway stack needs
        // a clean shutdown (its volumes go with it).
        self.project.kill().await;
        if let Some(infra) = &self.infra {
            infra.kill().await;
        }
        let mut down = true;
        if let Some(compose) = self.compose.take() {
            // Through testcontainers first. It names the project only; our own `down`, with
            // the files, also removes orphans (`run --rm` leftovers of an interrupted run), so
            // it runs when anything of this run is still there (always with an infrastructure
            // project, whose network the app's containers joined).
            let _ = compose.down().await;
            down = self.infra.is_some()
                || !matches!(super::sweep::leftovers(&self.run_id).await, Ok(left) if left.is_empty());
        }
        if down {
            self.project.down().await?;
        }
        // Last: the app project's containers had joined its network.
        if let Some(infra) = &self.infra {
            infra.down().await?;
        }
        self.torn_down = true;
        Ok(())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // A panic or an early return must not leak the stack.
        if !self.torn_down {
            self.project.down_blocking();
            if let Some(infra) = &self.infra {
                infra.down_blocking();
            }
        }
    }
}

/// Runs one operation in `service`: `exec` in its running container, else `run --rm`.
async fn run_operation(
    project: &Project,
    name: &str,
    service: &str,
    running: bool,
    command: &[String],
    env: &[(&str, &str)],
) -> OperationResult {
    let started = Instant::now();
    let output = if running {
        project
            .exec_env(service, command, env, OPERATION_TIMEOUT)
            .await
    } else {
        project
            .run_rm(service, command, env, OPERATION_TIMEOUT)
            .await
    }
    .map_err(|err| err.to_string());
    let mut shown = vec!["docker".to_owned(), "compose".to_owned()];
    shown.push("-p".into());
    shown.push(project.name.clone());
    for file in &project.files {
        shown.push("-f".into());
        shown.push(file.display().to_string());
    }
    if running {
        shown.extend(["exec", "-T"].map(String::from));
    } else {
        shown.extend(["run", "--rm", "--no-deps", "-T"].map(String::from));
    }
    for (key, _) in env {
        shown.push("-e".into());
        shown.push((*key).to_owned());
    }
    shown.push(service.to_owned());
    shown.extend(command.iter().cloned());
    OperationResult {
        name: name.to_owned(),
        command: crate::secret::mask(&shell_words::join(&shown)),
        duration: started.elapsed(),
        output,
        exports: BTreeMap::new(),
        not_run: None,
    }
}

/// Waits until a container of each of `services` is running (or has exited: it will not
/// run again), looking again each time one of the project's containers changes, for at most
/// `deadline`. Returns the services running at the end.
pub async fn wait_running(
    project: &Project,
    services: &[&str],
    deadline: Duration,
) -> BTreeSet<String> {
    let started = Instant::now();
    let mut changes = project.changes();
    let mut running = BTreeSet::new();
    loop {
        let settled = match project.states().await {
            Ok(entries) => {
                running = entries
                    .iter()
                    .filter(|e| e.state == "running")
                    .map(|e| e.service.clone())
                    .collect();
                services.iter().all(|service| {
                    entries.iter().any(|e| {
                        e.service == *service
                            && matches!(e.state.as_str(), "running" | "exited" | "dead")
                    })
                })
            }
            Err(_) => false,
        };
        if settled || started.elapsed() >= deadline {
            return running;
        }
        changes.next(Duration::from_secs(1)).await;
    }
}

/// The operations marked `while_starting`, each run as soon as a container of its service is
/// running, while `up` still waits for the stack's healthchecks (none of them has `after`,
/// and none is waited for by another: the gate file is refused otherwise).
pub async fn operations_while_starting(
    spec: &StackSpec,
    project: &Project,
) -> Vec<OperationResult> {
    let early: Vec<&Operation> = spec
        .operations
        .iter()
        .filter(|op| op.while_starting)
        .collect();
    if early.is_empty() {
        return Vec::new();
    }
    let mut services: Vec<&str> = early.iter().map(|op| op.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let running = wait_running(project, &services, Duration::from_secs(spec.up_timeout)).await;
    futures::future::join_all(early.into_iter().map(|op| {
        let env = project.vars(&op.env);
        let running = running.contains(&op.service);
        async move {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let mut result =
                run_operation(project, &op.name, &op.service, running, &op.command, &env).await;
            result.read_exports(&op.exports);
            result
        }
    }))
    .await
}

/// Resolves a project's configuration (where a compose file that does not parse is caught),
/// then adds a compose file labelling everything it creates with this run's ownership.
async fn label_project(
    project: &mut Project,
    stack: &str,
    labels_file: &Path,
    owner: &Ownership,
    build_project: &str,
) -> Result<ComposeConfig, StackError> {
    let config = project
        .config()
        .await
        .map_err(|source| StackError::Config {
            stack: stack.to_owned(),
            files: project
                .files
                .iter()
                .map(|f| format!("`{}`", f.display()))
                .collect::<Vec<_>>()
                .join(", "),
            source,
        })?;
    std::fs::write(labels_file, labels_override(&config, owner, build_project)).map_err(
        |source| StackError::Io {
            path: labels_file.to_path_buf(),
            source,
        },
    )?;
    project.files.push(labels_file.to_path_buf());
    Ok(config)
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The variables passed to compose: the env file, then generated secrets, then the spec's
/// `env` (interpolated), then the optional build CA bundle.
fn resolve_env(spec: &StackSpec) -> Result<BTreeMap<String, String>, StackError> {
    let mut vars = match spec.env_file() {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| StackError::Io {
                path: path.clone(),
                source,
            })?;
            parse_env_file(&text)
        }
        None => BTreeMap::new(),
    };
    for generated in &spec.secrets.generate {
        // 64 characters by default: long enough for Django's SECRET_KEY check (50+) and any
        // password.
        let hex = random_hex(generated.hex_chars().div_ceil(2));
        let value = hex[..generated.hex_chars()].to_owned();
        secret::register(&value);
        vars.insert(generated.name().to_owned(), value);
    }
    for (key, value) in &spec.env {
        let resolved = interpolate(value, &vars);
        vars.insert(key.clone(), resolved);
    }
    if !vars.contains_key("BUILD_CA_BUNDLE") {
        match std::env::var("BUILD_CA_BUNDLE") {
            Ok(bundle) if !bundle.is_empty() => {
                vars.insert("BUILD_CA_BUNDLE".into(), bundle);
            }
            _ => {
                let host_bundle = Path::new("/etc/ssl/certs/ca-certificates.crt");
                if host_bundle.is_file() {
                    vars.insert("BUILD_CA_BUNDLE".into(), host_bundle.display().to_string());
                }
            }
        }
    }
    Ok(vars)
}

/// Who owns what a run creates, as its labels say.
#[derive(Debug, Clone)]
struct Ownership {
    run_id: String,
    /// The lease file's path.
    lease: String,
}

/// A compose override (JSON is YAML) that labels every service, network and volume with the
/// run's ownership, so the sweep can find them if this process dies.
fn labels_override(config: &ComposeConfig, owner: &Ownership, build_project: &str) -> String {
    let labels = serde_json::json!({
        LABEL_RUN: owner.run_id,
        LABEL_PID: std::process::id().to_string(),
        LABEL_BOOT: boot_id(),
        LABEL_LEASE: owner.lease,
        LABEL_PIDNS: pid_namespace(),
        LABEL_HOST: host_name(),
    });
    let not_external = |value: &serde_json::Value| {
        !value
            .get("external")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    };
    let services: serde_json::Map<String, serde_json::Value> = config
        .services
        .iter()
        .map(|(name, service)| {
            let mut entry = serde_json::json!({ "labels": labels });
            // Built without a name: compose would name it after the run's project.
            if service.build.is_some() && service.image.is_none() {
                entry["image"] = serde_json::Value::String(format!(
                    "{build_project}-{}:{UNNAMED_BUILD_TAG}",
                    sanitize(name)
                ));
            }
            (name.clone(), entry)
        })
        .collect();
    let networks: serde_json::Map<String, serde_json::Value> = config
        .networks
        .iter()
        .filter(|(_, v)| not_external(v))
        .map(|(name, _)| (name.clone(), serde_json::json!({ "labels": labels })))
        .collect();
    let volumes: serde_json::Map<String, serde_json::Value> = config
        .volumes
        .iter()
        .filter(|(_, v)| not_external(v))
        .map(|(name, _)| (name.clone(), serde_json::json!({ "labels": labels })))
        .collect();
    let mut doc = serde_json::json!({ "services": services });
    if !networks.is_empty() {
        doc["networks"] = serde_json::Value::Object(networks);
    }
    if !volumes.is_empty() {
        doc["volumes"] = serde_json::Value::Object(volumes);
    }
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_host_ports_are_found_and_ephemeral_ones_pass() {
        // As `docker compose config --format json` prints `"80:80"`, `"127.0.0.1::443"`
        // and `"127.0.0.1:5432:5432"`.
        let config: ComposeConfig = serde_json::from_value(serde_json::json!({
            "services": {
                "nginx": {"ports": [
                    {"mode": "ingress", "target": 80, "published": "80", "protocol": "tcp"},
                    {"mode": "ingress", "host_ip": "127.0.0.1", "target": 443, "protocol": "tcp"},
                ]},
                "db": {"ports": [{"host_ip": "127.0.0.1", "target": 5432, "published": "5432"}]},
                "mail": {"ports": [{"target": 1080, "published": ""}, {"target": 1025, "published": "0"}]},
            }
        }))
        .unwrap();
        assert_eq!(
            fixed_host_ports(&config, &["nginx", "mail", "db"]),
            ["`db` 5432->5432", "`nginx` 80->80"]
        );
        // Another service's ports are `infra.only_public_services_publish_ports`' to report.
        assert_eq!(fixed_host_ports(&config, &["nginx"]), ["`nginx` 80->80"]);
    }

    #[test]
    fn a_remote_engines_loopback_is_out_of_reach_before_anything_starts() {
        // As `docker compose config --format json` prints `"127.0.0.1::443"`,
        // `"${SMOKE_PUBLISH_IP}::443"` with it set, and `"::443"`.
        let config = |host_ip: &str| -> ComposeConfig {
            serde_json::from_value(serde_json::json!({
                "services": {
                    "nginx": {"ports": [{"host_ip": host_ip, "target": 443, "protocol": "tcp"}]},
                    "db": {"ports": [{"host_ip": "127.0.0.1", "target": 5432}]},
                }
            }))
            .unwrap()
        };
        let here = Engine::resolve(None, None).unwrap();
        let remote = Engine::resolve(Some("tcp://192.0.2.10:2376"), None).unwrap();
        assert!(out_of_reach(&config("127.0.0.1"), &["nginx"], &here).is_none());
        let (service, err) = out_of_reach(&config("127.0.0.1"), &["nginx"], &remote)
            .expect("loopback on a remote engine");
        assert_eq!(service, "nginx");
        assert_eq!(err.target, 443);
        // Only the services the gate reaches count: `db` on loopback is an infra check's.
        assert!(out_of_reach(&config("192.0.2.10"), &["nginx"], &remote).is_none());
        assert!(out_of_reach(&config(""), &["nginx"], &remote).is_none());
    }

    fn test_owner() -> Ownership {
        Ownership {
            run_id: "abcd1234".into(),
            lease: "/runs/smokegate-demo-abcd1234/lease".into(),
        }
    }

    #[test]
    fn labels_cover_services_networks_and_owned_volumes() {
        let config: ComposeConfig = serde_json::from_value(serde_json::json!({
            "services": {"nginx": {"image": "n:1"}, "backend": {"image": "b:1"}},
            "networks": {"internal": {"internal": true}, "infra": {"external": true}},
            "volumes": {"postgres_data": {}}
        }))
        .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&labels_override(
            &config,
            &test_owner(),
            "smokegate-build-demo",
        ))
        .unwrap();
        assert_eq!(doc["services"]["nginx"]["labels"][LABEL_RUN], "abcd1234");
        assert_eq!(
            doc["services"]["nginx"]["labels"][LABEL_LEASE],
            "/runs/smokegate-demo-abcd1234/lease"
        );
        assert_eq!(
            doc["services"]["nginx"]["labels"][LABEL_PIDNS],
            pid_namespace()
        );
        assert_eq!(
            doc["services"]["backend"]["labels"][LABEL_PID],
            std::process::id().to_string()
        );
        assert!(doc["networks"]["internal"]["labels"].is_object());
        assert!(
            doc["networks"].get("infra").is_none(),
            "an external network is not ours to label"
        );
        assert!(doc["volumes"]["postgres_data"]["labels"].is_object());
    }

    #[test]
    fn a_service_built_without_a_name_uses_the_build_projects_image_not_latest() {
        let config: ComposeConfig = serde_json::from_value(serde_json::json!({
            "services": {
                "web": {"build": {"context": "."}},
                "nginx": {"image": "site/nginx:1.2.0", "build": {"context": "nginx"}},
                "db": {"image": "postgres:16.4"}
            }
        }))
        .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&labels_override(
            &config,
            &test_owner(),
            &build_project_name("Demo"),
        ))
        .unwrap();
        assert_eq!(
            doc["services"]["web"]["image"],
            "smokegate-build-demo-web:gate"
        );
        assert!(
            doc["services"]["nginx"].get("image").is_none(),
            "a named image keeps its name"
        );
        assert!(doc["services"]["db"].get("image").is_none());
        assert_eq!(
            infra_build_project_name("Demo"),
            "smokegate-build-demo-infra"
        );
    }

    #[test]
    fn health_is_judged_from_compose_ps() {
        let ps = |lines: &str| crate::gate::compose::parse_ps(lines).unwrap();
        let ready = ps(concat!(
            r#"{"Service":"nginx","Name":"p-nginx-1","State":"running","Health":"healthy","ExitCode":0}"#,
            "\n",
            r#"{"Service":"mail","Name":"p-mail-1","State":"running","Health":"","ExitCode":0}"#,
            "\n",
            r#"{"Service":"certs","Name":"p-certs-1","State":"exited","Health":"","ExitCode":0}"#
        ));
        assert_eq!(judge_health(&ready), Health::Ready);
        let starting = ps(
            r#"{"Service":"backend","Name":"p-backend-1","State":"running","Health":"starting","ExitCode":0}"#,
        );
        assert_eq!(
            judge_health(&starting),
            Health::Waiting(vec!["`backend` (p-backend-1) starting".into()])
        );
        let unhealthy = ps(
            r#"{"Service":"backend","Name":"p-backend-1","State":"running","Health":"unhealthy","ExitCode":0}"#,
        );
        assert!(
            matches!(judge_health(&unhealthy), Health::Failed(why) if why.contains("unhealthy"))
        );
        let crashed = ps(
            r#"{"Service":"backend","Name":"p-backend-1","State":"exited","Health":"","ExitCode":3}"#,
        );
        assert!(matches!(judge_health(&crashed), Health::Failed(why) if why.contains("status 3")));
        assert!(matches!(judge_health(&[]), Health::Waiting(_)));
    }

    #[test]
    fn project_names_are_compose_safe() {
        assert_eq!(sanitize("AzioneLab Stage_2"), "azionelab-stage-2");
    }
}
