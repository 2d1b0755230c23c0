//! Infrastructure assertions read from the running stack, beside the HTTP smoke checks: what
//! is published, which images run, what the backend's own checks say, and whether the health
//! endpoint notices when its database goes away.

use std::time::{Duration, Instant};

use super::compose::{CommandError, ComposeConfig, Project, PsEntry, tail};
use super::engine::Engine;
use super::spec::{CommandAssertion, StackSpec};
use crate::report::Failure;
use crate::secret::mask;

/// One assertion's result; converted into a check result for the reports.
#[derive(Debug, Clone)]
pub struct Assertion {
    pub name: String,
    pub duration: Duration,
    pub failure: Option<Failure>,
}

impl Assertion {
    fn pass(name: &str, started: Instant) -> Assertion {
        Assertion {
            name: name.to_owned(),
            duration: started.elapsed(),
            failure: None,
        }
    }

    fn fail(name: &str, started: Instant, failure: Failure) -> Assertion {
        Assertion {
            name: name.to_owned(),
            duration: started.elapsed(),
            failure: Some(failure),
        }
    }

    fn broken(name: &str, started: Instant, err: &CommandError) -> Assertion {
        Assertion::fail(
            name,
            started,
            Failure {
                request: None,
                title: "the gate could not inspect the stack".into(),
                expected: "a readable `docker compose` answer".into(),
                actual: err.to_string(),
                excerpt: None,
                hint: Some(
                    "is the engine still running? see the evidence saved for this run".into(),
                ),
                ..Failure::default()
            },
        )
    }
}

pub const ONLY_PUBLIC_PUBLISH: &str = "infra.only_public_services_publish_ports";
pub const INTERNAL_UNREACHABLE: &str = "infra.internal_services_unreachable_from_host";
pub const NO_LATEST: &str = "infra.no_latest_tags";
pub const HEALTH_NOTICES_DB_DOWN: &str = "infra.health_fails_when_database_down";
pub const PENDING_MIGRATIONS: &str = "infra.health_reports_pending_migrations";
pub const RESTART_POLICIES: &str = "infra.restart_policies";
pub const NAMED_VOLUMES: &str = "infra.data_on_named_volumes";
pub const DATA_SURVIVES: &str = "infra.data_survives_recreation";
/// How long the health endpoint gets to answer 200 after the stateful services' recreation.
const BACK_WITHIN: Duration = Duration::from_secs(60);
/// How long the health endpoint gets to answer 200 after its dependency came back.
const RECOVERED_WITHIN: Duration = Duration::from_secs(90);

/// The built-in checks, with what each proves: `smoke gate --list-infra` and the docs.
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        ONLY_PUBLIC_PUBLISH,
        "only the public service publishes ports (test-only services: on 127.0.0.1)",
    ),
    (
        INTERNAL_UNREACHABLE,
        "the internal services cannot be reached from the host",
    ),
    (
        NO_LATEST,
        "every image has an explicit version tag, never `latest`",
    ),
    (
        RESTART_POLICIES,
        "every long-running service restarts by itself (`always`, `unless-stopped`, `on-failure`)",
    ),
    (
        NAMED_VOLUMES,
        "each `[[stateful]]` data directory is on a named volume",
    ),
    (
        PENDING_MIGRATIONS,
        "the health endpoint answers `health.before_migrations` before `migrate` has run",
    ),
    (
        HEALTH_NOTICES_DB_DOWN,
        "the health endpoint fails while `health.dependency` is stopped, and recovers",
    ),
    (
        DATA_SURVIVES,
        "recreating the `[[stateful]]` services keeps their data: the health endpoint answers 200 again",
    ),
];

/// `infra.service_<name>_<state>` for each required service: found in `entries` (the app
/// project's `ps`, then the infrastructure project's), running, not restarting, and healthy
/// when that is required.
pub fn required_services(
    spec: &StackSpec,
    entries: &[PsEntry],
    started: Instant,
) -> Vec<Assertion> {
    spec.required_services
        .iter()
        .map(|required| {
            let name = format!(
                "infra.service_{}_{}",
                required.name.replace(['-', '.'], "_"),
                required.state.as_str()
            );
            let expected = format!("`{}` {}", required.name, required.state.as_str());
            let found: Vec<&PsEntry> = entries
                .iter()
                .filter(|e| e.service == required.name)
                .collect();
            let Some(entry) = found
                .iter()
                .find(|e| e.state == "running")
                .or_else(|| found.first())
            else {
                return Assertion::fail(
                    &name,
                    started,
                    Failure {
                        request: None,
                        title: format!("the service `{}` does not exist", required.name),
                        expected,
                        actual: "no container for it".into(),
                        excerpt: None,
                        hint: Some(
                            "check the service name in `required_services` and the compose files"
                                .into(),
                        ),
                        ..Failure::default()
                    },
                );
            };
            let healthy = entry.health == "healthy";
            let ok = entry.state == "running"
                && (required.state == crate::gate::spec::ServiceState::Running || healthy);
            if ok {
                return Assertion::pass(&name, started);
            }
            let actual = match entry.state.as_str() {
                "exited" | "dead" => format!("{} (exit code {})", entry.state, entry.exit_code),
                "restarting" => format!("restarting (last exit code {})", entry.exit_code),
                "running" if entry.health.is_empty() => "running, without a healthcheck".into(),
                "running" => format!("running, {}", entry.health),
                other => other.to_owned(),
            };
            Assertion::fail(
                &name,
                started,
                Failure {
                    request: None,
                    title: format!(
                        "the service `{}` is not {}: {actual}",
                        required.name,
                        required.state.as_str()
                    ),
                    expected,
                    actual,
                    excerpt: None,
                    hint: Some(format!(
                        "read its logs: `docker compose logs {}`",
                        required.name
                    )),
                    ..Failure::default()
                },
            )
        })
        .collect()
}

/// The names of the checks the gate itself adds for a stack, beside its checks file: the
/// operations, the built-in `infra.*` checks that apply to it, its command assertions and
/// required services. A check turned off with `disable` is still named (it is reported).
pub fn gate_check_names(spec: &StackSpec) -> Vec<String> {
    let mut names: Vec<String> = spec
        .operations
        .iter()
        .map(|op| format!("operations.{}", op.name))
        .collect();
    if spec.staff.is_some() {
        names.push("operations.staff".into());
    }
    for (name, _) in BUILT_IN {
        let applies = match *name {
            PENDING_MIGRATIONS => spec.health.before_migrations.is_some(),
            HEALTH_NOTICES_DB_DOWN => spec.health.dependency.is_some(),
            DATA_SURVIVES | NAMED_VOLUMES => !spec.stateful.is_empty(),
            _ => true,
        };
        if applies {
            names.push((*name).to_owned());
        }
    }
    names.extend(spec.command_assertions.iter().map(|a| a.name.clone()));
    names.extend(spec.required_services.iter().map(|r| {
        format!(
            "infra.service_{}_{}",
            r.name.replace(['-', '.'], "_"),
            r.state.as_str()
        )
    }));
    names
}

/// `` `a`, `b` ``.
fn backticked<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> String {
    names
        .into_iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The assertions that only read the stack; safe to run beside the smoke checks.
pub async fn read_only(
    spec: &StackSpec,
    engine: &Engine,
    project: &Project,
    infra: Option<&Project>,
    config: &ComposeConfig,
) -> Vec<Assertion> {
    let started = Instant::now();
    let ps = project.ps().await;
    if !spec.required_services.is_empty() {
        // The app project's services first, then the infrastructure project's.
        let mut entries = ps.as_ref().map(Vec::clone).unwrap_or_default();
        if let Some(infra) = infra
            && let Ok(more) = infra.ps().await
        {
            entries.extend(more);
        }
        let mut required = required_services(spec, &entries, started);
        if let Err(err) = &ps {
            for assertion in &mut required {
                if assertion.failure.is_some() {
                    *assertion = Assertion::broken(&assertion.name, started, err);
                }
            }
        }
        return read_only_rest(spec, engine, project, config, ps, started, required).await;
    }
    read_only_rest(spec, engine, project, config, ps, started, Vec::new()).await
}

async fn read_only_rest(
    spec: &StackSpec,
    engine: &Engine,
    project: &Project,
    config: &ComposeConfig,
    ps: Result<Vec<PsEntry>, CommandError>,
    started: Instant,
    required: Vec<Assertion>,
) -> Vec<Assertion> {
    let mut results: Vec<Assertion> = match &ps {
        Ok(entries) => vec![
            published_ports(spec, engine, entries, started),
            internal_unreachable(spec, engine, entries, started).await,
            no_latest(config, entries, started),
        ],
        Err(err) => [ONLY_PUBLIC_PUBLISH, INTERNAL_UNREACHABLE, NO_LATEST]
            .iter()
            .map(|name| Assertion::broken(name, started, err))
            .collect(),
    };
    // These read the configuration only, so they stand even when `ps` failed.
    results.push(restart_policies(spec, config, started));
    if !spec.stateful.is_empty() {
        results.push(named_volumes(spec, config, started));
    }
    let later = spec.command_assertions.iter().filter(|a| !a.while_starting);
    results.extend(command_assertions(project, later).await);
    results.extend(required);
    results
}

/// Runs each `[[command_assertions]]` entry in its running service (`exec -T`, 2 minutes at
/// most), all at once.
async fn command_assertions<'a>(
    project: &Project,
    assertions: impl Iterator<Item = &'a CommandAssertion>,
) -> Vec<Assertion> {
    futures::future::join_all(assertions.map(|assertion| async move {
        let started = Instant::now();
        match project
            .exec(
                &assertion.service,
                &assertion.command,
                Duration::from_secs(120),
            )
            .await
        {
            Ok(out) if out.success => Assertion::pass(&assertion.name, started),
            Ok(out) if assertion.allowed(&out.combined()).is_ok() => {
                Assertion::pass(&assertion.name, started)
            }
            Ok(out) => Assertion::fail(
                &assertion.name,
                started,
                Failure {
                    request: None,
                    title: format!(
                        "`{}` failed in `{}`",
                        assertion.command.join(" "),
                        assertion.service
                    ),
                    expected: if assertion.allow.is_empty() {
                        "exit status 0".into()
                    } else {
                        format!(
                            "exit status 0, or only the allowed ids {}",
                            backticked(assertion.allow.keys())
                        )
                    },
                    actual: {
                        let status = match out.code {
                            Some(code) => format!("exit status {code}"),
                            None => "killed by a signal".into(),
                        };
                        match assertion.allowed(&out.combined()) {
                            Err(refused) if !refused.is_empty() => {
                                format!("{status}, reporting {}", backticked(&refused))
                            }
                            _ => status,
                        }
                    },
                    excerpt: Some(tail(&out.combined(), 20)),
                    hint: assertion.hint.clone(),
                    ..Failure::default()
                },
            ),
            Err(err) => Assertion::broken(&assertion.name, started, &err),
        }
    }))
    .await
}

/// The `[[command_assertions]]` marked `while_starting`, each run as soon as a container of
/// its service is running (`compose ps`, every 500 ms, for `up_timeout` at most), while `up`
/// still waits for the stack's healthchecks. Run beside `up`, and dropped with it when the
/// stack fails to start.
pub async fn command_assertions_while_starting(
    spec: &StackSpec,
    project: &Project,
) -> Vec<Assertion> {
    let early: Vec<&CommandAssertion> = spec
        .command_assertions
        .iter()
        .filter(|a| a.while_starting)
        .collect();
    if early.is_empty() {
        return Vec::new();
    }
    let mut services: Vec<&str> = early.iter().map(|a| a.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    super::stack::wait_running(project, &services, Duration::from_secs(spec.up_timeout)).await;
    // A service not running by the deadline: its assertions run anyway, and `exec` says why
    // they cannot.
    command_assertions(project, early.into_iter()).await
}

fn published_ports(
    spec: &StackSpec,
    engine: &Engine,
    entries: &[PsEntry],
    started: Instant,
) -> Assertion {
    let mut offenders = Vec::new();
    for entry in entries {
        let published = entry.published();
        if published.is_empty() || entry.service == spec.public.service {
            continue;
        }
        let test_only = spec.test_only_services.contains(&entry.service);
        for p in published {
            // Loopback, or for an engine on another machine the one address it is reached at.
            if !test_only || !engine.private_address(&p.url) {
                offenders.push(format!(
                    "`{}` publishes {}:{} -> {}/{}",
                    entry.service,
                    if p.url.is_empty() { "0.0.0.0" } else { &p.url },
                    p.published_port,
                    p.target_port,
                    p.protocol
                ));
            }
        }
    }
    if offenders.is_empty() {
        Assertion::pass(ONLY_PUBLIC_PUBLISH, started)
    } else {
        Assertion::fail(
            ONLY_PUBLIC_PUBLISH,
            started,
            Failure {
                request: None,
                title: "a service other than the public proxy publishes ports".into(),
                expected: format!(
                    "only `{}` publishes host ports (test-only services on 127.0.0.1)",
                    spec.public.service
                ),
                actual: offenders.join("; "),
                excerpt: None,
                hint: Some("remove the `ports:` of that service; internal services stay on the compose network".into()),
                ..Failure::default()
            },
        )
    }
}

async fn internal_unreachable(
    spec: &StackSpec,
    engine: &Engine,
    entries: &[PsEntry],
    started: Instant,
) -> Assertion {
    let mut reachable = Vec::new();
    for entry in entries
        .iter()
        .filter(|e| spec.internal_services.contains(&e.service))
    {
        for p in entry.published() {
            // Where the engine published it; a remote engine's loopback cannot be tried from
            // here (and publishing at all already fails `infra.only_public_services_publish_ports`).
            let Ok(addr) = engine.reach(&p.url, p.published_port, p.target_port) else {
                continue;
            };
            let connect = tokio::time::timeout(
                Duration::from_secs(2),
                tokio::net::TcpStream::connect(&addr),
            )
            .await;
            if matches!(connect, Ok(Ok(_))) {
                reachable.push(format!(
                    "`{}` port {} answers at {addr}",
                    entry.service, p.target_port
                ));
            }
        }
    }
    let missing: Vec<&String> = spec
        .internal_services
        .iter()
        .filter(|name| !entries.iter().any(|e| &e.service == *name))
        .collect();
    if !reachable.is_empty() {
        return Assertion::fail(
            INTERNAL_UNREACHABLE,
            started,
            Failure {
                request: None,
                title: "an internal service is reachable from the host".into(),
                expected: format!(
                    "no connection from the host to {}",
                    spec.internal_services.join(", ")
                ),
                actual: reachable.join("; "),
                excerpt: None,
                hint: Some(
                    "an internal service must not publish ports; reach it through the proxy".into(),
                ),
                ..Failure::default()
            },
        );
    }
    if !missing.is_empty() {
        return Assertion::fail(
            INTERNAL_UNREACHABLE,
            started,
            Failure {
                request: None,
                title: "an internal service named in gate.toml is not running".into(),
                expected: format!("running services {}", spec.internal_services.join(", ")),
                actual: format!(
                    "missing: {}",
                    missing
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                excerpt: None,
                hint: Some(
                    "check `internal_services` in gate.toml against the compose file".into(),
                ),
                ..Failure::default()
            },
        );
    }
    Assertion::pass(INTERNAL_UNREACHABLE, started)
}

/// Whether an image reference carries an explicit tag or digest other than `latest`.
pub fn explicitly_versioned(image: &str) -> bool {
    if image.contains("@sha256:") {
        return true;
    }
    // The tag is after the last `:` that follows the last `/` (a registry port is not a tag).
    let last_segment = image.rsplit('/').next().unwrap_or(image);
    match last_segment.rsplit_once(':') {
        Some((_, tag)) => !tag.is_empty() && tag != "latest",
        None => false,
    }
}

fn no_latest(config: &ComposeConfig, entries: &[PsEntry], started: Instant) -> Assertion {
    let mut offenders = Vec::new();
    for (service, svc) in &config.services {
        match &svc.image {
            Some(image) if !explicitly_versioned(image) => {
                offenders.push(format!("`{service}` uses `{image}`"));
            }
            None => offenders.push(format!(
                "`{service}` has no `image:` (compose would tag its build `latest`)"
            )),
            _ => {}
        }
    }
    for entry in entries {
        if !entry.image.is_empty() && !explicitly_versioned(&entry.image) {
            let line = format!("`{}` runs `{}`", entry.service, entry.image);
            if !offenders
                .iter()
                .any(|o| o.starts_with(&format!("`{}`", entry.service)))
            {
                offenders.push(line);
            }
        }
    }
    if offenders.is_empty() {
        Assertion::pass(NO_LATEST, started)
    } else {
        Assertion::fail(
            NO_LATEST,
            started,
            Failure {
                request: None,
                title: "an image is not explicitly versioned".into(),
                expected: "every service's image has an explicit tag other than `latest`".into(),
                actual: offenders.join("; "),
                excerpt: None,
                hint: Some(
                    "give each service `image: name:VERSION`; rollbacks need immutable tags".into(),
                ),
                ..Failure::default()
            },
        )
    }
}

/// Every long-running service of the stack restarts by itself after a crash or a reboot.
pub fn restart_policies(spec: &StackSpec, config: &ComposeConfig, started: Instant) -> Assertion {
    let offenders: Vec<String> = config
        .services
        .iter()
        .filter(|(name, _)| {
            !spec.test_only_services.contains(name) && !spec.one_shot_services.contains(name)
        })
        .filter_map(|(name, service)| {
            let policy = service.restart.as_deref().unwrap_or("no");
            let restarts =
                matches!(policy, "always" | "unless-stopped") || policy.starts_with("on-failure");
            (!restarts).then(|| format!("`{name}` has `restart: {policy}`"))
        })
        .collect();
    if offenders.is_empty() {
        return Assertion::pass(RESTART_POLICIES, started);
    }
    Assertion::fail(
        RESTART_POLICIES,
        started,
        Failure {
            title: "a long-running service is not restarted after a crash or a reboot".into(),
            expected: "`restart: unless-stopped` (or `always`, `on-failure`) on every long-running service".into(),
            actual: offenders.join("; "),
            hint: Some(
                "add `restart: unless-stopped` to the service; a service that runs once and exits belongs in `one_shot_services` in gate.toml".into(),
            ),
            ..Failure::default()
        },
    )
}

/// Each declared data directory of a stateful service is on a named volume: not in the
/// container's writable layer, not on an anonymous volume, so it outlives the container.
pub fn named_volumes(spec: &StackSpec, config: &ComposeConfig, started: Instant) -> Assertion {
    let mut offenders = Vec::new();
    for stateful in &spec.stateful {
        let Some(service) = config.services.get(&stateful.service) else {
            offenders.push(format!(
                "`{}` (named in `[[stateful]]`) is not a service of the stack",
                stateful.service
            ));
            continue;
        };
        for dir in &stateful.data {
            let dir = dir.trim_end_matches('/');
            let covering = service.volumes.iter().find(|m| {
                let target = m.target.trim_end_matches('/');
                dir == target || dir.starts_with(&format!("{target}/"))
            });
            match covering {
                Some(m) if m.kind == "volume" && m.source.as_deref().is_some_and(|s| !s.is_empty()) => {}
                Some(m) if m.kind == "volume" => offenders.push(format!(
                    "`{}`: `{dir}` is on an anonymous volume, which a new container does not get back",
                    stateful.service
                )),
                Some(m) => offenders.push(format!(
                    "`{}`: `{dir}` is on a `{}` mount ({}), not a named volume",
                    stateful.service,
                    m.kind,
                    m.source.as_deref().unwrap_or("?")
                )),
                None => {
                    let mounted: Vec<String> = service
                        .volumes
                        .iter()
                        .map(|m| format!("{} -> {}", m.source.as_deref().unwrap_or("(anonymous)"), m.target))
                        .collect();
                    offenders.push(format!(
                        "`{}`: nothing is mounted at `{dir}`, so its data lives in the container (mounts: {})",
                        stateful.service,
                        if mounted.is_empty() { "none".to_owned() } else { mounted.join(", ") }
                    ));
                }
            }
        }
    }
    if offenders.is_empty() {
        return Assertion::pass(NAMED_VOLUMES, started);
    }
    Assertion::fail(
        NAMED_VOLUMES,
        started,
        Failure {
            title: "a data directory is not on a named volume".into(),
            expected: "every `[[stateful]]` data directory mounted from a named volume".into(),
            actual: offenders.join("; "),
            hint: Some(
                "mount a named volume at the exact data directory (e.g. `pgdata:/var/lib/postgresql/data`; check PGDATA)".into(),
            ),
            ..Failure::default()
        },
    )
}

/// Before `migrate` runs, the health endpoint must already say the release is not ready.
pub async fn health_before_migrations(
    spec: &StackSpec,
    client: &reqwest::Client,
    health_url: &url::Url,
    marker: Option<&crate::check::BackendMarker>,
) -> Option<(Assertion, Option<Answer>)> {
    let want = spec.health.before_migrations?;
    let started = Instant::now();
    // The backend may still be warming up behind the proxy: wait for an answer it gave.
    let deadline = Duration::from_secs(30);
    let mut last;
    loop {
        match client
            .get(health_url.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status().as_u16();
                let from_backend = match marker {
                    Some(marker) => response
                        .headers()
                        .get(marker.header.as_str())
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| {
                            marker
                                .value
                                .as_deref()
                                .is_none_or(|want| v.eq_ignore_ascii_case(want))
                        }),
                    None => !matches!(status, 502 | 504),
                };
                let body = response.text().await.unwrap_or_default();
                last = format!("status {status}: {}", mask(&truncate(&body, 200)));
                if from_backend {
                    if status == want {
                        return Some((
                            Assertion::pass(PENDING_MIGRATIONS, started),
                            Some(Answer { status, body }),
                        ));
                    }
                    return Some((
                        Assertion::fail(
                            PENDING_MIGRATIONS,
                            started,
                            Failure {
                                title: "the health endpoint did not report the pending migrations"
                                    .into(),
                                request: Some(format!(
                                    "GET {} (before `migrate`)",
                                    health_url.path()
                                )),
                                expected: format!("status {want} while migrations are pending"),
                                actual: last,
                                hint: Some(if (200..300).contains(&status) {
                                    "either the migrations already ran (a start command that migrates: keep `migrate` an explicit step) or the health view does not look for unapplied migrations (`MigrationExecutor(...).migration_plan(...)`)".into()
                                } else {
                                    format!("answer {want} while migrations are pending")
                                }),
                                ..Failure::default()
                            },
                        ),
                        None,
                    ));
                }
            }
            Err(err) => last = format!("no answer: {err}"),
        }
        if started.elapsed() >= deadline {
            return Some((Assertion::fail(
                PENDING_MIGRATIONS,
                started,
                Failure {
                    title: "the backend did not answer its health endpoint before `migrate`".into(),
                    request: Some(format!("GET {}", health_url.path())),
                    expected: format!("status {want} from the backend"),
                    actual: format!("after {}s, last seen {last}", deadline.as_secs()),
                    hint: Some("the container's healthcheck must pass before migrations; see the logs in the evidence".into()),
                    ..Failure::default()
                },
            ), None));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Recreates the stateful services' containers (new containers, anonymous volumes renewed,
/// as a redeploy or a host move would) and expects the health endpoint back at 200: data on a
/// volume survives; data in a container does not (the migrations show as pending).
///
/// `empty` is what the endpoint answered before `migrate`, on an empty database: the same
/// answer again, [`SAME_ANSWERS`] times in a row, means the data is gone, and waiting the
/// rest of the deadline cannot change that.
pub async fn data_survives_recreation(
    spec: &StackSpec,
    project: &Project,
    client: &reqwest::Client,
    health_url: &url::Url,
    empty: Option<&Answer>,
) -> Option<Assertion> {
    if spec.stateful.is_empty() {
        return None;
    }
    let started = Instant::now();
    if let Err(err) = recreate_stateful(spec, project).await {
        return Some(Assertion::broken(DATA_SURVIVES, started, &err));
    }
    let back = poll(
        client,
        health_url,
        BACK_WITHIN,
        |status| status == 200,
        empty_again(empty),
    )
    .await;
    Some(match back {
        Ok(_) => Assertion::pass(DATA_SURVIVES, started),
        Err(last) => Assertion::fail(
            DATA_SURVIVES,
            started,
            not_back(spec, health_url, BACK_WITHIN, last),
        ),
    })
}

/// Recreates the stateful services: new containers on the same named volumes, anonymous ones
/// renewed, as a redeploy or a host move would.
async fn recreate_stateful(spec: &StackSpec, project: &Project) -> Result<(), CommandError> {
    let mut args: Vec<String> = [
        "up",
        "--detach",
        "--force-recreate",
        "--renew-anon-volumes",
        "--no-deps",
        "--no-build",
    ]
    .map(String::from)
    .to_vec();
    // No `--wait`: the old container is gone once `up -d` returns, and what must come back is
    // the health endpoint with the data (polled after), not the container's own healthcheck,
    // whose first run after the recreation is one `interval` away (seconds of nothing).
    args.extend(spec.stateful.iter().map(|s| s.service.clone()));
    project
        .run_ok(&args, Duration::from_secs(120))
        .await
        .map(|_| ())
}

/// [`DATA_SURVIVES`] failed: after the recreation the endpoint never answered 200 (`last`).
fn not_back(spec: &StackSpec, health_url: &url::Url, within: Duration, last: String) -> Failure {
    let services: Vec<&str> = spec.stateful.iter().map(|s| s.service.as_str()).collect();
    Failure {
        title: format!(
            "after recreating `{}`, the health endpoint did not come back",
            services.join("`, `")
        ),
        request: Some(format!("GET {}", health_url.path())),
        expected: format!(
            "status 200 again within {}s, with the data the stack had",
            within.as_secs()
        ),
        actual: last,
        hint: Some(
            "the data lived in the container: mount a named volume at the service's data directory; if the answer names pending migrations, the database came back empty".into(),
        ),
        ..Failure::default()
    }
}

/// [`HEALTH_NOTICES_DB_DOWN`] failed: with `dependency` stopped, the endpoint kept answering
/// something else than `want` (`last`).
fn not_noticed(dependency: &str, want: u16, health_url: &url::Url, last: String) -> Failure {
    Failure {
        request: None,
        title: format!("the health endpoint did not notice `{dependency}` was stopped"),
        expected: format!(
            "`GET {}` answers {want} while `{dependency}` is stopped",
            health_url.path()
        ),
        actual: last,
        excerpt: None,
        hint: Some(
            "the health view must query the database on every call and answer 503 when it cannot"
                .into(),
        ),
        ..Failure::default()
    }
}

/// [`HEALTH_NOTICES_DB_DOWN`] failed: `dependency` came back, the endpoint did not (`last`).
fn not_recovered(dependency: &str, health_url: &url::Url, last: String) -> Failure {
    Failure {
        request: None,
        title: format!("the health endpoint did not recover after `{dependency}` came back"),
        expected: format!(
            "`GET {}` answers 200 again within {}s",
            health_url.path(),
            RECOVERED_WITHIN.as_secs()
        ),
        actual: last,
        excerpt: None,
        hint: Some(
            "the backend must reconnect to the database by itself (stale connections?)".into(),
        ),
        ..Failure::default()
    }
}

/// The checks that disturb the stack, run after every other: [`HEALTH_NOTICES_DB_DOWN`]
/// and [`DATA_SURVIVES`], each unless `gate.toml` turns it off; in one outage
/// ([`outage_then_recreation`]) when both run and the dependency is a stateful service.
pub async fn disturbing(
    spec: &StackSpec,
    project: &Project,
    client: &reqwest::Client,
    health_url: &url::Url,
    empty: Option<&Answer>,
) -> Vec<Assertion> {
    let health = spec.disabled(HEALTH_NOTICES_DB_DOWN).is_none();
    let data = spec.disabled(DATA_SURVIVES).is_none();
    if health
        && data
        && let Some(both) = outage_then_recreation(spec, project, client, health_url, empty).await
    {
        return both.into();
    }
    let mut results = Vec::new();
    if health {
        results.extend(health_notices_dependency(spec, project, client, health_url).await);
    }
    if data {
        results.extend(data_survives_recreation(spec, project, client, health_url, empty).await);
    }
    results
}

/// [`HEALTH_NOTICES_DB_DOWN`] and [`DATA_SURVIVES`] in one outage, when the health endpoint's
/// dependency is a stateful service (`None` otherwise): it is stopped (the endpoint must
/// answer `down_status`), then brought back recreated on its volumes (the endpoint must
/// answer 200 again, with the data). The recreation is the restart the first check needs,
/// and a harder one (a new container at a new address), so the gate pays for one stop and
/// one start of the database instead of two of each.
///
/// Coming back with an empty database fails only [`DATA_SURVIVES`]: the endpoint then
/// rightly names pending migrations. Not coming back at all fails both, as the two checks run
/// one after the other would.
pub async fn outage_then_recreation(
    spec: &StackSpec,
    project: &Project,
    client: &reqwest::Client,
    health_url: &url::Url,
    empty: Option<&Answer>,
) -> Option<[Assertion; 2]> {
    let dependency = spec.health.dependency.as_ref()?;
    if !spec.stateful.iter().any(|s| &s.service == dependency) {
        return None;
    }
    let started = Instant::now();
    let want = spec.health.down_status;
    if let Err(err) = project
        .run_ok(["stop", dependency.as_str()], Duration::from_secs(60))
        .await
    {
        return Some([
            Assertion::broken(HEALTH_NOTICES_DB_DOWN, started, &err),
            Assertion::broken(DATA_SURVIVES, started, &err),
        ]);
    }
    let down = poll_until(client, health_url, Duration::from_secs(20), |status| {
        status == want
    })
    .await;
    let recreated = Instant::now();
    if let Err(err) = recreate_stateful(spec, project).await {
        let health = match down {
            Err(last) => Assertion::fail(
                HEALTH_NOTICES_DB_DOWN,
                started,
                not_noticed(dependency, want, health_url, last),
            ),
            Ok(_) => Assertion::broken(HEALTH_NOTICES_DB_DOWN, started, &err),
        };
        return Some([health, Assertion::broken(DATA_SURVIVES, recreated, &err)]);
    }
    let emptied = std::sync::atomic::AtomicBool::new(false);
    let empty_rule = empty_again(empty);
    let back = poll(
        client,
        health_url,
        RECOVERED_WITHIN,
        |status| status == 200,
        |status, body| {
            let why = empty_rule(status, body);
            if why.is_some() {
                emptied.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            why
        },
    )
    .await;
    let data = match &back {
        Ok(_) => Assertion::pass(DATA_SURVIVES, recreated),
        Err(last) => Assertion::fail(
            DATA_SURVIVES,
            recreated,
            not_back(spec, health_url, RECOVERED_WITHIN, last.clone()),
        ),
    };
    let came_back_empty = emptied.load(std::sync::atomic::Ordering::Relaxed);
    let health = match (down, back) {
        (Err(last), _) => Assertion::fail(
            HEALTH_NOTICES_DB_DOWN,
            started,
            not_noticed(dependency, want, health_url, last),
        ),
        (Ok(_), Err(last)) if !came_back_empty => Assertion::fail(
            HEALTH_NOTICES_DB_DOWN,
            started,
            not_recovered(dependency, health_url, last),
        ),
        (Ok(_), _) => Assertion::pass(HEALTH_NOTICES_DB_DOWN, started),
    };
    Some([health, data])
}

/// Stops the health endpoint's dependency, expects the endpoint to say so, starts it again and
/// expects recovery. Destructive: run it after the smoke checks.
pub async fn health_notices_dependency(
    spec: &StackSpec,
    project: &Project,
    client: &reqwest::Client,
    health_url: &url::Url,
) -> Option<Assertion> {
    let dependency = spec.health.dependency.as_ref()?;
    let started = Instant::now();
    let want = spec.health.down_status;
    if let Err(err) = project
        .run_ok(["stop", dependency.as_str()], Duration::from_secs(60))
        .await
    {
        return Some(Assertion::broken(HEALTH_NOTICES_DB_DOWN, started, &err));
    }
    // `stop` has returned: the dependency is gone. A backend whose database host no longer
    // resolves may take seconds to answer; one still saying 200 after 20 s would tell a load
    // balancer the same for as long as the outage lasts.
    let down = poll_until(client, health_url, Duration::from_secs(20), |status| {
        status == want
    })
    .await;
    let start = project
        .run_ok(["start", dependency.as_str()], Duration::from_secs(60))
        .await;
    let recovered = match &start {
        Ok(_) => poll_until(client, health_url, RECOVERED_WITHIN, |status| status == 200).await,
        Err(err) => Err(format!("`docker compose start {dependency}` failed: {err}")),
    };
    let failure = match (down, recovered) {
        (Ok(_), Ok(_)) => None,
        (Err(last), _) => Some(not_noticed(dependency, want, health_url, last)),
        (Ok(_), Err(last)) => Some(not_recovered(dependency, health_url, last)),
    };
    Some(match failure {
        None => Assertion::pass(HEALTH_NOTICES_DB_DOWN, started),
        Some(failure) => Assertion::fail(HEALTH_NOTICES_DB_DOWN, started, failure),
    })
}

/// Polls `url` until `accept(status)`, with backoff; `Err` says what was last seen.
pub async fn poll_until(
    client: &reqwest::Client,
    url: &url::Url,
    deadline: Duration,
    accept: impl Fn(u16) -> bool,
) -> Result<u16, String> {
    poll(client, url, deadline, accept, |_, _| None).await
}

/// The give-up rule of [`data_survives_recreation`]: the endpoint answers exactly what it
/// answered on the empty database, before `migrate`.
fn empty_again(empty: Option<&Answer>) -> impl Fn(u16, &str) -> Option<String> + '_ {
    move |status, body| {
        empty
            .is_some_and(|empty| empty.status == status && empty.body == body)
            .then(|| {
                "it answers what it answered before `migrate`, on an empty database".to_owned()
            })
    }
}

/// One answer of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// How many identical answers in a row a `give_up` rule needs before the poll stops early.
pub const SAME_ANSWERS: u32 = 3;

/// [`poll_until`], stopping early once `give_up` has said why for [`SAME_ANSWERS`] identical
/// answers in a row (an answer that cannot change: waiting out the deadline proves nothing).
pub async fn poll(
    client: &reqwest::Client,
    url: &url::Url,
    deadline: Duration,
    accept: impl Fn(u16) -> bool,
    give_up: impl Fn(u16, &str) -> Option<String>,
) -> Result<u16, String> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut same = 0;
    loop {
        let last = match client
            .get(url.clone())
            .timeout(Duration::from_secs(15))
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                if accept(status) {
                    return Ok(status);
                }
                let last = format!("status {status}: {}", mask(&truncate(&body, 200)));
                match give_up(status, &body) {
                    Some(why) => {
                        same += 1;
                        if same >= SAME_ANSWERS {
                            return Err(format!(
                                "gave up after {same} identical answers in {:.1}s: {why}; last seen {last}",
                                started.elapsed().as_secs_f64()
                            ));
                        }
                    }
                    None => same = 0,
                }
                last
            }
            Err(err) => {
                same = 0;
                format!("no answer: {err}")
            }
        };
        if started.elapsed() >= deadline {
            return Err(format!("after {}s, last seen {last}", deadline.as_secs()));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

fn truncate(text: &str, max: usize) -> String {
    let trimmed = text.trim();
    match trimmed.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {

    use std::path::PathBuf;

    fn entry(service: &str, state: &str, health: &str, exit_code: i64) -> PsEntry {
        serde_json::from_value(serde_json::json!({
            "Service": service, "State": state, "Health": health, "ExitCode": exit_code
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[rstest]
    #[case("running", "healthy", "healthy", None)]
    #[case("running", "", "running", None)]
    #[case("running", "starting", "healthy", Some("running, starting"))]
    #[case("exited", "", "running", Some("exited (exit code 1)"))]
    #[case("restarting", "", "running", Some("restarting (last exit code 1)"))]
    fn required_services_name_the_state_and_exit_code(
        #[case] state: &str,
        #[case] health: &str,
        #[case] want: &str,
        #[case] failure: Option<&str>,
    ) {
        let mut spec: StackSpec = toml::from_str(&format!(
            "name = \"m\"\ncompose_files = [\"c.yml\"]\nrequired_services = [{{ name = \"celery-worker\", state = \"{want}\" }}]\n[public]\nservice = \"nginx\"\nhttp_port = 80\n[health]\npath = \"/\"\n"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        spec.root = PathBuf::from(".");
        let results = required_services(
            &spec,
            &[entry("celery-worker", state, health, 1)],
            Instant::now(),
        );
        assert_eq!(
            results[0].name,
            format!("infra.service_celery_worker_{want}")
        );
        match failure {
            None => assert!(results[0].failure.is_none(), "{:?}", results[0].failure),
            Some(actual) => {
                let failure = results[0].failure.as_ref().map(|f| f.actual.clone());
                assert_eq!(failure.as_deref(), Some(actual));
            }
        }
    }

    #[test]
    fn a_missing_required_service_fails() {
        let spec: StackSpec = toml::from_str(
            "name = \"m\"\ncompose_files = [\"c.yml\"]\nrequired_services = [{ name = \"redis\", state = \"healthy\" }]\n[public]\nservice = \"nginx\"\nhttp_port = 80\n[health]\npath = \"/\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let results = required_services(&spec, &[], Instant::now());
        assert!(
            results[0]
                .failure
                .as_ref()
                .is_some_and(|f| f.title.contains("does not exist"))
        );
    }

    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("azionelab/backend:0.1.0", true)]
    #[case("registry:5000/team/app:1.2", true)]
    #[case("registry:5000/team/app", false)]
    #[case("nginx", false)]
    #[case("nginx:latest", false)]
    #[case("nginx:", false)]
    #[case("nginx@sha256:0123", true)]
    fn image_versioning(#[case] image: &str, #[case] versioned: bool) {
        assert_eq!(explicitly_versioned(image), versioned, "{image}");
    }

    /// A loopback server answering `GET /health` with the next of `answers` (the last one
    /// again once they run out), counting the requests.
    async fn health_server(
        answers: Vec<(u16, &'static str)>,
    ) -> (url::Url, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let app = axum::Router::new().route(
            "/health",
            axum::routing::get(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let (status, body) = answers[n.min(answers.len() - 1)];
                async move {
                    (
                        axum::http::StatusCode::from_u16(status)
                            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
                        body,
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|err| panic!("failed to bind a loopback port: {err}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = url::Url::parse(&format!("http://127.0.0.1:{port}/health"))
            .unwrap_or_else(|err| panic!("{err}"));
        (url, seen)
    }

    /// Polls `url` for a 200 for at most `deadline` with `data_survives_recreation`'s rule,
    /// the empty-database answer being `503 pending migrations: 12`.
    async fn poll_for_recovery(url: &url::Url, deadline: Duration) -> Result<u16, String> {
        let empty = Answer {
            status: 503,
            body: "pending migrations: 12".into(),
        };
        poll(
            &reqwest::Client::new(),
            url,
            deadline,
            |status| status == 200,
            empty_again(Some(&empty)),
        )
        .await
    }

    #[tokio::test]
    async fn a_poll_gives_up_early_on_an_answer_that_cannot_change() {
        let (url, seen) = health_server(vec![(503, "pending migrations: 12")]).await;
        let started = Instant::now();
        let result = poll_for_recovery(&url, Duration::from_secs(60)).await;
        let err = result.expect_err("an empty database never comes back");
        assert!(err.contains("gave up after 3 identical answers"), "{err}");
        assert!(err.contains("pending migrations: 12"), "{err}");
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn other_answers_in_between_reset_the_count_and_a_recovery_passes() {
        // Starting (a different body), the empty answer twice, starting again, then back.
        let (url, _) = health_server(vec![
            (503, "database unavailable"),
            (503, "pending migrations: 12"),
            (503, "pending migrations: 12"),
            (503, "database unavailable"),
            (503, "pending migrations: 12"),
            (200, "ok"),
        ])
        .await;
        let result = poll_for_recovery(&url, Duration::from_secs(30)).await;
        assert_eq!(result, Ok(200));
    }

    #[tokio::test]
    async fn without_a_give_up_rule_the_poll_waits_its_deadline_and_says_what_it_saw() {
        let (url, _) = health_server(vec![(200, "ok")]).await;
        let started = Instant::now();
        let result = poll_until(
            &reqwest::Client::new(),
            &url,
            Duration::from_secs(1),
            |status| status == 503,
        )
        .await;
        let err = result.expect_err("the endpoint never says 503");
        assert!(
            err.starts_with("after 1s, last seen status 200: ok"),
            "{err}"
        );
        assert!(started.elapsed() >= Duration::from_secs(1));
    }
}
