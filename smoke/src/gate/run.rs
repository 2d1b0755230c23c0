//! One gate run, phase by phase: build, up, migrate, healthy, checks, down.
//!
//! Whatever happens (a phase fails, a check fails, the process is asked to stop), the run ends
//! with evidence saved when something failed, the stack torn down, and a report in which every
//! check and every phase is accounted for.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::compose::tail;
use super::engine::Engine;
use super::evidence::{self, Evidence};
use super::infra::{self, Assertion};
use super::preflight::Need;
use super::spec::StackSpec;
use super::stack::{Endpoints, OperationResult, Stack, StackError};
use super::sweep;
use crate::catalog;
use crate::check::Suite;
use crate::mailbox::MailboxConfig;
use crate::report::{CheckResult, Failure, GateVerdict, Outcome, PhaseTiming, RunReport};
use crate::runner::{self, Progress, Selection, Target};
use crate::secret::mask;

/// How long the stack may take to answer its health endpoint after migrations: it is
/// already up and migrated, so this only covers workers finishing their start.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// How long readiness is waited for once an operation failed.
const READY_DEADLINE_AFTER_FAILED_OPERATION: Duration = Duration::from_secs(5);
/// The deadline of one request in a gate run. A gate shares a small CI machine with other
/// stacks, and a burst of 50 bookings queues in gunicorn; nginx itself gives the backend 30 s.
const GATE_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What to gate and how.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// A folder holding `gate.toml`, or the file itself.
    pub stack: PathBuf,
    /// Extra compose files layered on top (a broken variant, a site's own override).
    pub overrides: Vec<PathBuf>,
    /// Where each run keeps its folder (labels file, evidence, reports).
    pub runs_dir: PathBuf,
    /// Skip `docker compose build` (images built beforehand).
    pub skip_build: bool,
    /// Which smoke checks to run.
    pub selection: Selection,
    /// The browser for the browser checks [default: `SMOKE_BROWSER`, else Chromium on the
    /// PATH]. A gate whose checks need one and finds none stops before starting anything.
    pub browser: Option<PathBuf>,
    /// Keep the screenshots of passing browser checks too (a release record).
    pub screenshots: bool,
}

/// How the gate ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every check and assertion passed.
    Passed,
    /// The stack ran, and at least one check, assertion or operation failed.
    Failed,
    /// The stack description or compose files are not usable.
    Config(String),
    /// This machine cannot run a gate: no docker CLI, no engine answering, no Compose v2 (or
    /// too old), or no buildx when building. Nothing was started.
    MachineNotReady(String),
    /// The images did not build, or the stack did not start healthy.
    StackFailed(String),
    /// The stack started but never answered ready.
    NeverReady(String),
    /// The engine is on another machine and the stack publishes its ports on that machine's
    /// loopback: nothing here can reach them, so nothing was started.
    OutOfReach(String),
    /// The run was asked to stop; teardown ran.
    Interrupted,
}

impl Verdict {
    /// The verdict's name, as `report.json` and the teeth's `expect.toml` write it.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Config(_) => "config",
            Verdict::MachineNotReady(_) => "machine-not-ready",
            Verdict::StackFailed(_) => "stack-failed",
            Verdict::NeverReady(_) => "never-ready",
            Verdict::OutOfReach(_) => "out-of-reach",
            Verdict::Interrupted => "interrupted",
        }
    }

    /// Why, for the verdicts that are not about checks.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Config(why)
            | Verdict::MachineNotReady(why)
            | Verdict::StackFailed(why)
            | Verdict::NeverReady(why)
            | Verdict::OutOfReach(why) => Some(why),
            Verdict::Passed | Verdict::Failed | Verdict::Interrupted => None,
        }
    }

    /// The verdict as the report records it.
    pub fn recorded(&self) -> GateVerdict {
        GateVerdict {
            kind: self.kind().to_owned(),
            reason: self.reason().map(str::to_owned),
        }
    }
}

/// Everything a gate run produced.
#[derive(Debug, Clone)]
pub struct GateOutcome {
    pub verdict: Verdict,
    pub report: RunReport,
    /// The compose project name (unique per run).
    pub project: String,
    /// The run's folder.
    pub run_dir: Option<PathBuf>,
    /// Evidence saved before teardown, when something failed.
    pub evidence: Option<Evidence>,
}

impl GateOutcome {
    /// The names of failed checks, assertions and operations.
    pub fn failed(&self) -> Vec<&str> {
        self.report.failed_checks()
    }
}

/// Runs the gate; interrupted by Ctrl-C or SIGTERM.
pub async fn run_gate(options: &GateOptions, progress: &dyn Progress) -> GateOutcome {
    run_gate_until(options, progress, shutdown_signal()).await
}

/// Resolves on SIGINT or SIGTERM (a nextest timeout, CI cancelling a job).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Like [`run_gate`], interrupted when `interrupt` completes.
pub async fn run_gate_until(
    options: &GateOptions,
    progress: &dyn Progress,
    interrupt: impl Future<Output = ()>,
) -> GateOutcome {
    let started = Instant::now();
    let mut report = RunReport::default();

    let spec = match StackSpec::load(&options.stack) {
        Ok(spec) => spec,
        Err(err) => return config_failure(report, started, error_chain(&err)),
    };
    let suite = match catalog::load(&spec.checks_file()) {
        Ok(suite) => suite,
        Err(err) => return config_failure(report, started, error_chain(&err)),
    };
    if let Err(why) = options.selection.clone().validate(&suite) {
        return config_failure(report, started, why);
    }

    // Which engine, and where its published ports are reached: a malformed `DOCKER_HOST` is
    // a configuration error, an engine the lifecycle cannot list containers on is a machine
    // that cannot run a gate.
    let engine = match Engine::from_env() {
        Ok(engine) => engine,
        Err(err) => return config_failure(report, started, error_chain(&err)),
    };
    if let Some(why) = super::preflight::unsupported_transport(&engine) {
        return early_failure(report, started, Verdict::MachineNotReady(why));
    }

    // The files are read first (a typo in a path is reported on any machine), then the
    // machine is asked whether it can run a gate at all, before anything calls the engine.
    if let Err(missing) = super::preflight::check(if options.skip_build {
        Need::Run
    } else {
        Need::Build
    })
    .await
    {
        return early_failure(report, started, Verdict::MachineNotReady(missing.explain()));
    }

    // The browser checks need a browser: a gate never skips them, so a machine without one
    // is not ready, and says so before building anything.
    let resolved;
    let options = if suite
        .steps()
        .any(|s| s.needs_browser() && options.selection.includes(&s.category))
    {
        match runner::browser::find(options.browser.as_deref()) {
            Ok(Some(found)) => {
                resolved = GateOptions {
                    browser: Some(found),
                    ..options.clone()
                };
                &resolved
            }
            Ok(None) => {
                return early_failure(
                    report,
                    started,
                    Verdict::MachineNotReady(format!(
                        "the checks include browser checks and no browser was found: {}",
                        runner::browser::INSTALL_HINT
                    )),
                );
            }
            Err(why) => return early_failure(report, started, Verdict::MachineNotReady(why)),
        }
    } else {
        options
    };

    // What killed runs left is swept while this run's files are read (`compose config`):
    // the two touch nothing of each other's.
    let engine_described = engine.describe();
    let (swept, prepared) = tokio::join!(
        sweep::sweep_stale(),
        Stack::prepare(spec, &options.overrides, &options.runs_dir, engine)
    );
    match swept {
        Ok(swept) if !swept.projects.is_empty() => report.notes.push(format!(
            "removed stacks left by killed runs: {} ({} containers, {} networks, {} volumes)",
            swept.projects.join(", "),
            swept.containers,
            swept.networks,
            swept.volumes
        )),
        Ok(_) => {}
        Err(err) => report
            .notes
            .push(format!("failed to sweep stale stacks: {err}")),
    }

    progress.note(&format!("gate: {engine_described}"));
    let mut stack = match prepared {
        Ok(stack) => stack,
        Err(err @ StackError::OutOfReach { .. }) => {
            return early_failure(report, started, Verdict::OutOfReach(error_chain(&err)));
        }
        Err(err) => return config_failure(report, started, error_chain(&err)),
    };
    report.run_id = stack.run_id.clone();
    progress.note(&format!(
        "gate: project `{}` (run folder {})",
        stack.project.name,
        stack.run_dir.display()
    ));

    let mut phases = Phases::default();
    let verdict = {
        let work = drive(
            &mut stack,
            &suite,
            options,
            progress,
            &mut report,
            &mut phases,
        );
        tokio::pin!(work);
        tokio::pin!(interrupt);
        tokio::select! {
            verdict = &mut work => verdict,
            _ = &mut interrupt => {
                progress.note("gate: interrupted; tearing the stack down");
                Verdict::Interrupted
            }
        }
    };

    report.interrupted = verdict == Verdict::Interrupted;
    if report.interrupted {
        // Dropping the phase that was running does not stop a `docker compose up` started
        // through testcontainers; it would go on creating what the teardown removes.
        stop_child_processes().await;
    }
    let evidence = if verdict != Verdict::Passed && verdict != Verdict::Interrupted {
        progress.note("gate: saving evidence before teardown");
        Some(evidence::collect(&stack.project, &stack.run_dir.join("evidence")).await)
    } else {
        None
    };

    let down = Instant::now();
    if let Err(err) = stack.teardown().await {
        report.leftovers.push(format!("teardown failed: {err}"));
    }
    match sweep::leftovers(&stack.run_id).await {
        Ok(left) if !left.is_empty() => report.leftovers.extend(left),
        Ok(_) => {}
        Err(err) => report
            .leftovers
            .push(format!("failed to verify teardown: {err}")),
    }
    phases.push("down", down.elapsed());

    report.phases = phases.0;
    report.duration = started.elapsed();
    report.verdict = Some(verdict.recorded());
    // Always beside the evidence, whatever other reports the caller writes.
    if let Err(err) = crate::report::write_json(&report, &stack.run_dir.join("report.json")) {
        report
            .notes
            .push(format!("failed to write the run's report.json: {err}"));
    }
    GateOutcome {
        verdict,
        report,
        project: stack.project.name.clone(),
        run_dir: Some(stack.run_dir.clone()),
        evidence,
    }
}

#[derive(Debug, Default)]
struct Phases(Vec<PhaseTiming>);

impl Phases {
    fn push(&mut self, phase: &str, duration: Duration) {
        self.0.push(PhaseTiming {
            phase: phase.to_owned(),
            duration,
        });
    }
}

async fn drive(
    stack: &mut Stack,
    suite: &Suite,
    options: &GateOptions,
    progress: &dyn Progress,
    report: &mut RunReport,
    phases: &mut Phases,
) -> Verdict {
    // build
    let t = Instant::now();
    if options.skip_build {
        if let Err(err) = stack.require_images().await {
            phases.push("build", t.elapsed());
            return Verdict::StackFailed(error_chain(&err));
        }
    } else {
        progress.note("gate: building images");
        if let Err(err) = stack.build().await {
            phases.push("build", t.elapsed());
            return Verdict::StackFailed(error_chain(&err));
        }
    }
    phases.push("build", t.elapsed());

    // up, and beside it the command assertions that need only a running container of their
    // service (`while_starting`): the stack's healthchecks leave the machine idle for seconds.
    let t = Instant::now();
    progress.note("gate: starting the stack");
    let (spec, project) = (stack.spec.clone(), stack.project.clone());
    let early = async {
        tokio::join!(
            infra::command_assertions_while_starting(&spec, &project),
            super::stack::operations_while_starting(&spec, &project),
        )
    };
    tokio::pin!(early);
    let mut early_done: Option<(Vec<Assertion>, Vec<OperationResult>)> = None;
    let up = driving(stack.up(), early.as_mut(), &mut early_done).await;
    phases.push("up", t.elapsed());
    if let Err(err) = up {
        return Verdict::StackFailed(error_chain(&err));
    }

    let endpoints = match stack.endpoints().await {
        Ok(endpoints) => endpoints,
        Err(err @ StackError::OutOfReach { .. }) => {
            return Verdict::OutOfReach(error_chain(&err));
        }
        Err(err) => return Verdict::StackFailed(error_chain(&err)),
    };
    let mut target = match target_for(stack, &endpoints, options) {
        Some(target) => target,
        None => return Verdict::Config("`public` in gate.toml yields no URL".into()),
    };
    report.target = target.base_url.to_string();
    let health_path = stack
        .spec
        .health
        .path
        .clone()
        .unwrap_or_else(|| suite.readiness.path.clone());
    let health = health_probe(suite, &target).and_then(|(client, base)| {
        let url = base.join(health_path.trim_start_matches('/')).ok()?;
        Some((client, url))
    });
    let push = |report: &mut RunReport, assertion: &Assertion| {
        let result = assertion_result(&stack.spec, assertion);
        progress.finished(&result);
        report.checks.push(result);
    };

    // The browser the browser checks need starts now, beside the probe and the operations,
    // whose Python leaves a core idle at times, instead of with the checks.
    let browser_target = target.clone();
    let browser = runner::start_browser(suite, &browser_target, &options.selection);
    let mut empty_database = None;
    let (started_browser, operations) = tokio::join!(browser, async {
        // Before any operation: the health endpoint must say the migrations are pending. What it
        // answers then is what an empty database looks like, for `infra.data_survives_recreation`.
        if let Some((client, url)) = &health
            && stack.spec.disabled(infra::PENDING_MIGRATIONS).is_none()
            && let Some((assertion, answer)) =
                infra::health_before_migrations(&stack.spec, client, url, suite.marker.as_ref())
                    .await
        {
            push(report, &assertion);
            empty_database = answer;
        }

        // migrate (and the other one-shot operations)
        let t = Instant::now();
        progress.note("gate: running the one-shot operations");
        let mut operations = driving(stack.operations(), early.as_mut(), &mut early_done).await;
        // The operations that ran while the stack started are this phase's too: the checks need
        // what they made. (The `while_starting` command assertions, started with them, are
        // then waited for here too.)
        if stack.spec.operations.iter().any(|op| op.while_starting) {
            if early_done.is_none() {
                early_done = Some(early.as_mut().await);
            }
            if let Some((_, early_operations)) = &mut early_done {
                operations.append(early_operations);
            }
            let order = |name: &str| {
                stack
                    .spec
                    .operations
                    .iter()
                    .position(|op| op.name == name)
                    .unwrap_or(usize::MAX)
            };
            operations.sort_by_key(|op| order(&op.name));
        }
        phases.push("migrate", t.elapsed());
        operations
    });
    target.browser_session = started_browser;
    for op in &operations {
        let result = operation_result(op);
        progress.finished(&result);
        report.checks.push(result);
        // Fixture data the public API cannot make, for the checks (`{{env.KEY}}`).
        for (key, value) in &op.exports {
            target.vars.insert(key.clone(), value.clone());
        }
    }

    // healthy
    let t = Instant::now();
    // A failed operation (a migration that did not apply, say) already makes the gate red and
    // usually keeps the stack from ever being ready: the checks run after a short wait, not
    // the whole deadline of a stack that is merely slow.
    let failed_operation = operations.iter().find(|op| !op.succeeded());
    let deadline = if failed_operation.is_some() {
        READY_DEADLINE_AFTER_FAILED_OPERATION
    } else {
        READY_DEADLINE
    };
    let ready = runner::wait_ready(&target, suite, deadline).await;
    phases.push("healthy", t.elapsed());
    // Not ready is already a red gate, but the checks still run (they fail fast against a
    // stack that answers wrongly), so the report shows everything that is broken at once.
    let not_ready = ready.err().map(|not_ready| not_ready.to_string());
    if not_ready.is_some() {
        progress.note(
            "gate: the stack never became ready; running the checks anyway to report everything",
        );
        if let Some(op) = failed_operation {
            report.notes.push(format!(
                "readiness was waited for {}s only, not {}s: the operation `{}` had failed",
                deadline.as_secs(),
                READY_DEADLINE.as_secs(),
                op.name
            ));
        }
    }

    // checks: the smoke suite beside the read-only assertions, then the destructive ones.
    let t = Instant::now();
    let never = std::future::pending::<()>();
    // The `while_starting` command assertions not finished by now (no operation ran while
    // starting) finish beside the checks.
    let early = async {
        match early_done.take() {
            Some((done, _)) => done,
            None => (&mut early).await.0,
        }
    };
    let (smoke, assertions, early) = tokio::join!(
        runner::run_until(suite, &target, &options.selection, progress, never),
        infra::read_only(
            &stack.spec,
            &stack.engine,
            &stack.project,
            stack.infra.as_ref(),
            &stack.config
        ),
        early,
    );
    report.checks.extend(smoke.checks);
    report.notes.extend(smoke.notes);
    report.leftovers.extend(smoke.leftovers);
    for assertion in assertions.iter().chain(&early) {
        push(report, assertion);
    }
    let destructive = [infra::HEALTH_NOTICES_DB_DOWN, infra::DATA_SURVIVES];
    if not_ready.is_some() {
        // Stopping or recreating services proves nothing about a health endpoint that never
        // said "ok".
        for name in destructive {
            report.checks.push(CheckResult {
                name: name.to_owned(),
                category: "infra".into(),
                outcome: Outcome::Skipped(crate::report::SkipReason::NotReady),
                duration: Duration::ZERO,
            });
        }
    } else if let Some((client, health_url)) = &health {
        let disturbing = infra::disturbing(
            &stack.spec,
            &stack.project,
            client,
            health_url,
            empty_database.as_ref(),
        )
        .await;
        for assertion in &disturbing {
            push(report, assertion);
        }
    }
    // A built-in check turned off in gate.toml is reported as such, with its reason.
    for (name, reason) in &stack.spec.disable {
        if !report.checks.iter().any(|c| &c.name == name) {
            report.checks.push(CheckResult {
                name: name.clone(),
                category: "infra".into(),
                outcome: Outcome::Skipped(crate::report::SkipReason::Disabled {
                    reason: reason.clone(),
                }),
                duration: Duration::ZERO,
            });
        }
    }
    phases.push("checks", t.elapsed());

    match not_ready {
        Some(why) => Verdict::NeverReady(why),
        None if report.passed() => Verdict::Passed,
        None => Verdict::Failed,
    }
}

/// Awaits `main`, driving `side` meanwhile: once `side` finishes, its output is kept in
/// `done` (and `side` is not polled again).
async fn driving<T, S: Future>(
    main: impl Future<Output = T>,
    mut side: std::pin::Pin<&mut S>,
    done: &mut Option<S::Output>,
) -> T {
    tokio::pin!(main);
    loop {
        tokio::select! {
            out = &mut main => return out,
            out = &mut side, if done.is_none() => *done = Some(out),
        }
    }
}

fn target_for(stack: &Stack, endpoints: &Endpoints, options: &GateOptions) -> Option<Target> {
    let base_url = endpoints
        .https_url
        .clone()
        .or_else(|| endpoints.http_url.clone())?;
    let mut target = Target::new(base_url);
    // `public.host` is a name for Host and TLS, not for DNS: every request (and the browser,
    // through its host resolver rules) goes to where the engine published the public port.
    target.connect_ip = Some(endpoints.public_ip);
    target.http_url = endpoints.https_url.as_ref().and(endpoints.http_url.clone());
    target.ca_cert_pem = endpoints.ca_cert_pem.clone();
    target.site_url = stack
        .spec
        .public
        .site_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok());
    target.mailbox = endpoints
        .mail_api_url
        .clone()
        .map(|api_url| MailboxConfig::Http { api_url });
    target.run_id = format!("{}{}", stack.run_id, &runner::new_run_id()[..4]);
    target.timeouts.request = GATE_REQUEST_TIMEOUT;
    target.browser.clone_from(&options.browser);
    target.evidence_dir = stack.run_dir.join("evidence");
    target.screenshots = options.screenshots;
    if let Some(mail) = &stack.spec.mail {
        target.timeouts.mail = Duration::from_secs(mail.timeout);
    }
    // The stack's own variables (its `[env]`, generated secrets) carry the credentials a stack
    // description names, e.g. `SMOKE_STAGING_PASSWORD = "${STAGING_BASIC_AUTH_PASSWORD}"`.
    target.vars = stack.project.env.clone();
    if let Some(staff) = &stack.spec.staff {
        target.vars.insert(
            staff.token_env.clone(),
            stack.staff_token.expose().to_owned(),
        );
    }
    Some(target)
}

/// The client and base URL the gate polls health with: the readiness virtual host's, so its
/// name resolves to the public service (like `curl --resolve`) and the stack's CA is trusted.
fn health_probe(suite: &Suite, target: &Target) -> Option<(reqwest::Client, url::Url)> {
    let http = runner::Http::for_suite(target, suite).ok()?;
    let (client, base) = http.direct(suite.readiness.host.as_deref());
    Some((client.clone(), base.clone()))
}

fn operation_result(op: &OperationResult) -> CheckResult {
    let outcome = match &op.output {
        _ if op.not_run.is_some() => Outcome::Skipped(crate::report::SkipReason::Prerequisite {
            step: format!("operations.{}", op.not_run.as_deref().unwrap_or_default()),
            outcome: "failed".into(),
        }),
        Ok(out) if out.success => Outcome::Passed,
        Ok(out) => Outcome::Failed(Failure {
            title: format!("the one-shot operation `{}` failed", op.name),
            request: Some(op.command.clone()),
            expected: "exit status 0".into(),
            actual: match out.code {
                Some(code) => format!("exit status {code}"),
                None => "killed by a signal".into(),
            },
            excerpt: Some(tail(&out.combined(), 25)),
            hint: Some(format!(
                "run `{}` by hand against the stack to see the whole output",
                op.command
            )),
            ..Failure::default()
        }),
        Err(err) => Outcome::Failed(Failure {
            title: format!("the one-shot operation `{}` could not run", op.name),
            request: Some(op.command.clone()),
            expected: "exit status 0".into(),
            actual: err.clone(),
            excerpt: None,
            hint: None,
            ..Failure::default()
        }),
    };
    CheckResult {
        name: format!("operations.{}", op.name),
        category: "operations".into(),
        outcome,
        duration: op.duration,
    }
}

fn assertion_result(spec: &StackSpec, assertion: &Assertion) -> CheckResult {
    if let Some(reason) = spec.disabled(&assertion.name) {
        return CheckResult {
            name: assertion.name.clone(),
            category: "infra".into(),
            outcome: Outcome::Skipped(crate::report::SkipReason::Disabled {
                reason: reason.to_owned(),
            }),
            duration: Duration::ZERO,
        };
    }
    let outcome = match &assertion.failure {
        None => Outcome::Passed,
        Some(failure) => Outcome::Failed(failure.clone()),
    };
    CheckResult {
        name: assertion.name.clone(),
        category: "infra".into(),
        outcome,
        duration: assertion.duration,
    }
}

fn config_failure(report: RunReport, started: Instant, why: String) -> GateOutcome {
    early_failure(report, started, Verdict::Config(why))
}

/// A run that ended before it had a project or a run folder.
fn early_failure(mut report: RunReport, started: Instant, verdict: Verdict) -> GateOutcome {
    report.duration = started.elapsed();
    report.verdict = Some(verdict.recorded());
    GateOutcome {
        verdict,
        report,
        project: String::new(),
        run_dir: None,
        evidence: None,
    }
}

/// Sends SIGTERM to this process's children (the `docker compose` commands still running)
/// and waits for them to go, for at most 10 s.
async fn stop_child_processes() {
    let children = child_pids();
    if children.is_empty() {
        return;
    }
    let mut kill = tokio::process::Command::new("kill");
    kill.arg("-TERM").args(children.iter().map(u32::to_string));
    let _ = kill.output().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut delay = Duration::from_millis(50);
    while children
        .iter()
        .any(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
        && Instant::now() < deadline
    {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// The pids whose parent is this process, read from `/proc` (empty where there is none).
fn child_pids() -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                // The parent pid is the second field after the parenthesised command name.
                .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.to_owned()))
                .and_then(|rest| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(me)
        })
        .collect()
}

/// An error and its causes, one per line, masked.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors print their source inside their own message; say each thing once.
        if !text.contains(cause_text.trim()) {
            text.push_str("\n  caused by: ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    mask(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_pids_finds_a_running_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep starts");
        let found = child_pids().contains(&child.id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            found,
            "`sleep` (pid {}) was not listed as a child",
            child.id()
        );
    }

    #[tokio::test]
    async fn stopping_children_ends_them() {
        let mut child = tokio::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep starts");
        stop_child_processes().await;
        let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .expect("the child ended within 5 s")
            .expect("wait works");
        assert!(!status.success());
    }
}
