//! The one runner: executes a [`Suite`] against a [`Target`] and reports every check.
//!
//! Independent checks run concurrently; each scenario runs its steps in order, concurrently with
//! the rest. A step whose prerequisites (the steps producing the captures it reads, and those
//! it names in `after`) did not pass is reported as skipped "because `<step>` failed": every
//! selected check is always reported, never silently dropped. What a run creates is recorded in
//! a [`ledger::Ledger`] and undone by each scenario's cleanup step, and by the runner itself on
//! Ctrl-C or when a scenario stops early.
//!
//! [`wait_ready`] polls the suite's health endpoint with a deadline and a growing delay, and
//! says what it last saw when the deadline passes.

pub mod browser;
mod diagnose;
mod exec;
pub mod http;
pub mod ledger;
mod ws;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt as _;

use crate::check::{Action, Captures, Expect, Request, Scenario, Step, Suite, Template, Value};
use crate::mailbox::MailboxConfig;
use crate::report::{CheckResult, Failure, FailureKind, Outcome, RunReport, SkipReason};
use crate::secret::mask;

pub use http::{ErrorKind, Http, RequestError};

/// How long to wait for what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// One HTTP request, connect to last body byte.
    pub request: Duration,
    /// One email to arrive.
    pub mail: Duration,
    /// The target to become ready (health endpoint).
    pub ready: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            request: Duration::from_secs(10),
            mail: Duration::from_secs(60),
            ready: Duration::from_secs(30),
        }
    }
}

/// The largest body read by default; bigger ones are cut and flagged.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

/// Where and how a run happens.
#[derive(Debug, Clone)]
pub struct Target {
    /// The site, e.g. `https://azionelab.example/`.
    pub base_url: url::Url,
    /// The same site over plain HTTP, for the redirect check; skipped when absent.
    pub http_url: Option<url::Url>,
    /// An extra CA certificate (PEM) to trust, for self-signed stacks.
    pub ca_cert_pem: Option<Vec<u8>>,
    /// The public origin the site builds its links with (`{{site_url}}`), when it is not the
    /// base URL's (in the gate, the stack's `PUBLIC_SITE_URL` has no ephemeral port).
    pub site_url: Option<url::Url>,
    /// Where the emails are read; mailbox steps are skipped without it.
    pub mailbox: Option<MailboxConfig>,
    /// Deadlines.
    pub timeouts: Timeouts,
    /// Names what this run creates (`smoke <run-id>`, `smoke+<run-id>@example.test`).
    pub run_id: String,
    /// The most of a body read, in bytes.
    pub max_body: usize,
    /// How many independent checks run at once.
    pub concurrency: usize,
    /// Variables looked up before the process environment by `{{env.NAME}}`, `{{secret.NAME}}`
    /// and basic auth: a gate run's stack variables, generated secrets and fixture outputs;
    /// `smoke run --var`.
    pub vars: std::collections::BTreeMap<String, String>,
    /// Where to connect whatever the URLs' host names resolve to, as `curl --resolve` does:
    /// the gate's loopback address (so `public.host` can be the production name a virtual
    /// host answers to), or `smoke run --connect-to` (a server DNS does not point at yet).
    /// `None`: the names are resolved.
    pub connect_ip: Option<std::net::IpAddr>,
    /// The browser the browser checks run in; they are skipped without one.
    pub browser: Option<std::path::PathBuf>,
    /// Where screenshots and browser logs are kept (the run's evidence folder).
    pub evidence_dir: std::path::PathBuf,
    /// Keep the screenshots of passing browser checks too (a release record).
    pub screenshots: bool,
    /// A browser already started for this run ([`start_browser`]), e.g. by the gate while the
    /// stack migrates; the run closes it at its end. `None`: started with the first checks.
    pub browser_session: Option<StartedBrowser>,
}

/// A browser started ahead of a run, for [`Target::browser_session`].
#[derive(Clone)]
pub struct StartedBrowser(std::sync::Arc<browser::Session>);

impl StartedBrowser {
    fn session(&self) -> std::sync::Arc<browser::Session> {
        self.0.clone()
    }

    /// Closes it: for a caller that started one and then did not run the checks.
    pub async fn close(&self) {
        self.0.close().await;
    }
}

impl std::fmt::Debug for StartedBrowser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StartedBrowser")
    }
}

/// Starts the browser a run of `suite` against `target` will need, ahead of the run: `None`
/// when it needs none (no browser step selected, or no browser to run them in), or when
/// it could not start (the run then tries again, and reports why, at its first browser step).
pub async fn start_browser(
    suite: &Suite,
    target: &Target,
    selection: &Selection,
) -> Option<StartedBrowser> {
    target.browser.as_ref()?;
    if !suite
        .steps()
        .any(|s| s.needs_browser() && selection.includes(&s.category))
    {
        return None;
    }
    let http = Http::for_suite(target, suite).ok()?;
    exec::launch(target, &http).await.ok().map(StartedBrowser)
}

impl Target {
    /// A target with defaults and a fresh random run id.
    pub fn new(base_url: url::Url) -> Target {
        Target {
            base_url,
            http_url: None,
            ca_cert_pem: None,
            site_url: None,
            mailbox: None,
            timeouts: Timeouts::default(),
            run_id: new_run_id(),
            max_body: DEFAULT_MAX_BODY,
            concurrency: 8,
            vars: std::collections::BTreeMap::new(),
            connect_ip: None,
            browser: None,
            evidence_dir: std::path::PathBuf::from("smoke-evidence"),
            screenshots: false,
            browser_session: None,
        }
    }

    /// The public origin links are built with: `site_url`, else the base URL's origin.
    pub fn public_origin(&self) -> String {
        let url = self.site_url.as_ref().unwrap_or(&self.base_url);
        url.as_str().trim_end_matches('/').to_owned()
    }

    /// A variable: the run's own, then the process environment; empty counts as unset.
    pub fn var(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.trim().is_empty())
    }
}

/// A random run id: 10 lowercase hex characters, so concurrent runs never share names.
pub fn new_run_id() -> String {
    format!("{:010x}", rand::random::<u64>() & 0xff_ffff_ffff)
}

/// Which checks to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Selection {
    /// Every check.
    #[default]
    All,
    /// The checks of these categories (and the steps they depend on).
    Categories(Vec<String>),
}

impl Selection {
    /// Whether checks of `category` are selected.
    pub fn includes(&self, category: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::Categories(categories) => categories.iter().any(|c| c == category),
        }
    }

    /// The selection, or an error naming the categories `suite` does not have.
    pub fn validate(self, suite: &Suite) -> Result<Selection, String> {
        if let Selection::Categories(categories) = &self {
            let known = suite.categories();
            let unknown: Vec<&String> = categories
                .iter()
                .filter(|c| !known.contains(&c.as_str()))
                .collect();
            if !unknown.is_empty() {
                return Err(format!(
                    "unknown category {} (the checks have: {})",
                    unknown
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    known.join(", ")
                ));
            }
        }
        Ok(self)
    }
}

/// Live progress: told about each check as it finishes.
pub trait Progress: Send + Sync {
    /// A check finished.
    fn finished(&self, result: &CheckResult);
    /// A remark about the run (waiting for readiness, cleaning up after Ctrl-C).
    fn note(&self, _message: &str) {}
}

/// Progress that prints nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn finished(&self, _result: &CheckResult) {}
}

/// Progress printed to standard error, one line per check with its duration.
#[derive(Debug)]
pub struct TerminalProgress {
    width: usize,
}

impl TerminalProgress {
    /// Lines aligned for the names in `suite`.
    pub fn new(suite: &Suite) -> Self {
        TerminalProgress {
            width: suite.steps().map(|s| s.name.len()).max().unwrap_or(0),
        }
    }

    /// Lines aligned for names up to `width` characters.
    pub fn with_width(width: usize) -> Self {
        TerminalProgress { width }
    }
}

impl Progress for TerminalProgress {
    fn finished(&self, result: &CheckResult) {
        let line = crate::report::human::check_line(result, self.width);
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    fn note(&self, message: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{}", mask(message));
    }
}

/// The target did not become ready before the deadline, or cannot be reached at all.
#[derive(Debug, Clone)]
pub struct NotReady {
    /// The readiness URL.
    pub url: String,
    /// How long was waited.
    pub waited: Duration,
    /// What the last attempt saw.
    pub last_seen: String,
    /// The transport failure class, when there was no HTTP answer.
    pub kind: Option<ErrorKind>,
    /// The causes of the last failure.
    pub causes: Vec<String>,
    /// What to do next.
    pub hint: Option<String>,
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gave_up = match self.kind {
            Some(kind) if !kind.is_transient() => "failed to reach".to_owned(),
            _ => format!(
                "failed to see a ready answer within {:.1?} from",
                self.waited
            ),
        };
        let mut text = format!("{gave_up} `{}`\n  last seen: {}", self.url, self.last_seen);
        for cause in &self.causes {
            text.push_str("\n  caused by: ");
            text.push_str(cause);
        }
        if let Some(hint) = &self.hint {
            text.push_str(&format!("\n  ({hint})"));
        }
        f.write_str(&mask(&text))
    }
}

impl std::error::Error for NotReady {}

/// How many identical definitive answers in a row, over at least [`UNCHANGING_FOR`], end the
/// wait for readiness early.
const UNCHANGING_ANSWERS: u32 = 5;
const UNCHANGING_FOR: Duration = Duration::from_secs(5);

/// A client error that waiting does not fix: not 408 (timeout), 425 (too early) or 429 (rate
/// limited), which may pass.
fn definitive(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 408 | 425 | 429)
}

/// Polls the suite's health endpoint until it meets its expectations, with a delay growing from
/// 100 ms to 2 s, until `deadline`. DNS, TLS and redirect-loop failures end the wait at once:
/// waiting does not fix them; so does the same definitive 4xx answer, byte for byte, 5 times
/// in a row over at least 5 s.
pub async fn wait_ready(
    target: &Target,
    suite: &Suite,
    deadline: Duration,
) -> Result<(), NotReady> {
    let start = Instant::now();
    let request = Request::get(&suite.readiness.path).for_host(suite.readiness.host.as_deref());
    let empty = Captures::new();
    let http = Http::for_suite(target, suite);
    let url = match &http {
        Ok(http) => http
            .url(&request, &empty)
            .map_or_else(|_| suite.readiness.path.clone(), |u| u.to_string()),
        Err(_) => suite.readiness.path.clone(),
    };
    let not_ready = |last_seen: String, kind, causes, hint| NotReady {
        url: url.clone(),
        waited: start.elapsed(),
        last_seen,
        kind,
        causes,
        hint,
    };
    let http =
        http.map_err(|e| not_ready(e.to_string(), Some(ErrorKind::Other), Vec::new(), None))?;
    // Without the basic auth credentials of the readiness host, its 401 is an answer too.
    let expects = if http
        .missing_credentials(suite.readiness.host.as_deref())
        .is_some()
    {
        vec![Expect::Status((200..500).collect())]
    } else {
        suite.readiness.expects.clone()
    };
    let mut delay = Duration::from_millis(100);
    // The same definitive client-error answer, how many times in a row, since when.
    let mut same: Option<(u16, Vec<u8>, u32, Instant)> = None;
    loop {
        let (last_seen, kind, causes, hint) = match http.send(&request, &empty).await {
            Ok(response) => {
                let mismatches: Vec<_> = expects
                    .iter()
                    .filter_map(|e| e.check(&response, &empty).err())
                    .collect();
                if mismatches.is_empty() {
                    return Ok(());
                }
                if definitive(response.status) {
                    same = match same.take() {
                        Some((status, body, count, since))
                            if status == response.status && body == response.body =>
                        {
                            Some((status, body, count + 1, since))
                        }
                        _ => Some((response.status, response.body.clone(), 1, Instant::now())),
                    };
                } else {
                    same = None;
                }
                if let Some((status, _, count, since)) = &same
                    && *count >= UNCHANGING_ANSWERS
                    && since.elapsed() >= UNCHANGING_FOR
                {
                    let mut seen = format!(
                        "status {status}, the same answer {count} times in a row over {:.1?}: waiting does not change it",
                        since.elapsed()
                    );
                    if let Some(excerpt) = response.excerpt() {
                        seen.push_str(&format!(
                            " (body: {})",
                            crate::check::excerpt(excerpt.as_bytes(), 200)
                        ));
                    }
                    let hint = match status {
                        401 | 403 => {
                            "the health path needs credentials the run does not have, or refuses them"
                        }
                        404 | 410 => {
                            "is the base URL the site's root? does the health path exist, and does the proxy route it to the backend?"
                        }
                        _ => {
                            "the health request itself is refused: check the health path, the Host and the proxy's rules"
                        }
                    };
                    return Err(not_ready(seen, None, Vec::new(), Some(hint.to_owned())));
                }
                let host = suite.readiness.host.as_deref();
                if let Some(placeholder) = http.placeholder(host)
                    && placeholder.matches(&response)
                {
                    let seen = format!(
                        "{} {} serves the maintenance page (status {})",
                        exec::MAINTENANCE_TITLE,
                        http.host_label(host),
                        response.status
                    );
                    let hint = "a deployment is running: wait for it to finish, or raise `--ready-timeout`";
                    let remaining = deadline.saturating_sub(start.elapsed());
                    if remaining.is_zero() {
                        return Err(not_ready(seen, None, Vec::new(), Some(hint.to_owned())));
                    }
                    tokio::time::sleep(delay.min(remaining)).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                    continue;
                }
                let mut seen = mismatches
                    .iter()
                    .map(|m| m.actual.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
                if let Some(excerpt) = response.excerpt() {
                    seen.push_str(&format!(
                        " (body: {})",
                        crate::check::excerpt(excerpt.as_bytes(), 200)
                    ));
                }
                let hint = if response.status >= 500 {
                    "the health endpoint names the failing part; check the backend's logs"
                } else {
                    "is the base URL the site's root? does the health path exist?"
                };
                (seen, None, Vec::new(), Some(hint.to_owned()))
            }
            Err(error) => {
                if !error.kind.is_transient() {
                    return Err(not_ready(
                        error.message,
                        Some(error.kind),
                        error.causes,
                        error.hint,
                    ));
                }
                (error.message, Some(error.kind), error.causes, error.hint)
            }
        };
        let remaining = deadline.saturating_sub(start.elapsed());
        if remaining.is_zero() {
            return Err(not_ready(last_seen, kind, causes, hint));
        }
        tokio::time::sleep(delay.min(remaining)).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// Runs the selected checks; Ctrl-C stops the run, runs the cleanup, and returns a report
/// marked interrupted.
pub async fn run(
    suite: &Suite,
    target: &Target,
    selection: &Selection,
    progress: &dyn Progress,
) -> RunReport {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handler: never interrupt rather than interrupt at once.
            std::future::pending::<()>().await;
        }
    };
    run_until(suite, target, selection, progress, ctrl_c).await
}

/// Like [`run`], interrupted when `interrupt` completes instead of on Ctrl-C (the gate passes
/// its own signal handling; tests pass a timer).
pub async fn run_until(
    suite: &Suite,
    target: &Target,
    selection: &Selection,
    progress: &dyn Progress,
    interrupt: impl Future<Output = ()>,
) -> RunReport {
    let start = Instant::now();
    let plan = plan(suite, selection);
    let mut report = RunReport {
        target: target.base_url.to_string(),
        run_id: target.run_id.clone(),
        ..RunReport::default()
    };
    let http = match Http::for_suite(target, suite) {
        Ok(http) => http,
        Err(error) => {
            report.checks = plan
                .steps()
                .map(|step| {
                    result(
                        step,
                        Outcome::Failed(Failure {
                            kind: FailureKind::Setup,
                            title: error.to_string(),
                            ..Failure::default()
                        }),
                        Duration::ZERO,
                    )
                })
                .collect();
            report.duration = start.elapsed();
            return report;
        }
    };
    let seeded = seed(suite, target);
    let ctx = exec::Ctx::new(http, target.clone(), progress);
    let work = async {
        let checks = futures::stream::iter(plan.checks.iter()).for_each_concurrent(
            target.concurrency.max(1),
            |step| {
                let ctx = &ctx;
                let seeded = &seeded;
                async move {
                    let mut captures = seeded.clone();
                    ctx.run_step(step, "", &ctx.http, &mut captures, &[], &HashMap::new())
                        .await;
                }
            },
        );
        // Rate-limit scenarios run last, one after the other: their burst must not refuse
        // the other checks, nor their normal traffic be refused by another burst.
        let (last, now): (Vec<&Scenario>, Vec<&Scenario>) = plan.scenarios.iter().partition(|s| {
            s.steps
                .iter()
                .any(|step| matches!(step.action, Action::RateLimitBurst { .. }))
        });
        let scenarios = futures::future::join_all(
            now.into_iter()
                .map(|scenario| ctx.run_scenario(scenario, seeded.clone())),
        );
        // The browser starts (about a second) while the first checks run, not when the first
        // browser step comes.
        let browser = async {
            if target.browser.is_some() && plan.steps().any(Step::needs_browser) {
                ctx.warm_browser().await;
            }
        };
        futures::future::join3(checks, scenarios, browser).await;
        for scenario in last {
            ctx.run_scenario(scenario, seeded.clone()).await;
        }
    };
    let interrupted = tokio::select! {
        () = work => false,
        () = interrupt => true,
    };
    if interrupted {
        progress.note("interrupted: cleaning up what this run created, then exiting");
    }
    // What a scenario recorded but did not undo (interrupted, or it has no cleanup step).
    ctx.settle().await;
    ctx.close_browser().await;
    report.leftovers = ctx.undo_all().await;
    let results = ctx.into_results();
    report.checks = plan
        .steps()
        .map(|step| {
            results.get(&step.name).cloned().unwrap_or_else(|| {
                let reason = if interrupted {
                    SkipReason::Interrupted
                } else {
                    SkipReason::NeverRun
                };
                result(step, Outcome::Skipped(reason), Duration::ZERO)
            })
        })
        .collect();
    report.interrupted = interrupted;
    report.notes = notes(&report);
    let browsed = plan.steps().any(|s| {
        s.needs_browser()
            && matches!(
                results.get(&s.name).map(|r| &r.outcome),
                Some(Outcome::Passed | Outcome::Failed(_))
            )
    });
    if browsed && target.screenshots {
        report.notes.push(format!(
            "browser screenshots and logs kept in {}",
            target.evidence_dir.display()
        ));
    }
    report.duration = start.elapsed();
    report
}

fn result(step: &Step, outcome: Outcome, duration: Duration) -> CheckResult {
    CheckResult {
        name: step.name.clone(),
        category: step.category.clone(),
        outcome,
        duration,
    }
}

/// The names every run provides before any step ran.
pub const BUILT_IN_VALUES: [&str; 4] = ["run_id", "base_url", "site_url", "host"];

/// The captures every run starts with: the built-in values, the variables the suite reads
/// (`{{env.NAME}}`, `{{secret.NAME}}`, masked), then the suite's `[values]` in order.
fn seed(suite: &Suite, target: &Target) -> Captures {
    let mut captures: Captures = [
        ("run_id", target.run_id.clone()),
        ("base_url", target.base_url.to_string()),
        ("site_url", target.public_origin()),
        (
            "host",
            target.base_url.host_str().unwrap_or_default().to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::Text(v)))
    .collect();
    let mut names: Vec<String> = suite.steps().flat_map(Step::reads).collect();
    names.extend(suite.values.iter().flat_map(|(_, t)| t.names()));
    names.sort();
    names.dedup();
    for name in names {
        if let Some((secret, var)) = variable(&name)
            && let Some(value) = target.var(var)
        {
            if secret {
                crate::secret::register(&value);
            }
            captures.insert(name.clone(), Value::Text(value));
        }
    }
    for (name, template) in &suite.values {
        if let Ok(value) = template.render(&captures) {
            captures.insert(name.clone(), Value::Text(value));
        }
    }
    captures
}

/// `Some((is_secret, VARIABLE))` for `env.VARIABLE` and `secret.VARIABLE`.
pub fn variable(name: &str) -> Option<(bool, &str)> {
    if let Some(var) = name.strip_prefix("env.") {
        Some((false, var))
    } else {
        name.strip_prefix("secret.").map(|var| (true, var))
    }
}

/// Renders `template` with the values a run starts with (no step has captured anything):
/// for the gate, which reads the same `[values]` when it drives a stack.
pub fn render_seeded(suite: &Suite, target: &Target, template: &Template) -> Option<String> {
    template.render(&seed(suite, target)).ok()
}

/// The selected steps, plus the steps they depend on and the cleanup of what those create.
#[derive(Debug)]
struct Plan {
    checks: Vec<Step>,
    scenarios: Vec<Scenario>,
}

impl Plan {
    fn steps(&self) -> impl Iterator<Item = &Step> {
        self.checks
            .iter()
            .chain(self.scenarios.iter().flat_map(|s| s.steps.iter()))
    }
}

fn plan(suite: &Suite, selection: &Selection) -> Plan {
    let checks = suite
        .checks
        .iter()
        .filter(|s| selection.includes(&s.category))
        .cloned()
        .collect();
    let scenarios = suite
        .scenarios
        .iter()
        .filter_map(|scenario| {
            let mut wanted: HashSet<&str> = scenario
                .steps
                .iter()
                .filter(|s| selection.includes(&s.category) && !matches!(s.action, Action::Cleanup))
                .map(|s| s.name.as_str())
                .collect();
            // Walk backwards so each wanted step pulls in what it depends on.
            for (index, step) in scenario.steps.iter().enumerate().rev() {
                if !wanted.contains(step.name.as_str()) {
                    continue;
                }
                for dep in prerequisites(&scenario.steps[..index], step) {
                    wanted.insert(dep);
                }
            }
            if wanted.is_empty() {
                return None;
            }
            let creates = scenario
                .steps
                .iter()
                .any(|s| wanted.contains(s.name.as_str()) && s.creates());
            let steps = scenario
                .steps
                .iter()
                .filter(|s| {
                    wanted.contains(s.name.as_str())
                        || (creates && matches!(s.action, Action::Cleanup))
                })
                .cloned()
                .collect();
            Some(Scenario {
                name: scenario.name.clone(),
                steps,
            })
        })
        .collect();
    Plan { checks, scenarios }
}

/// The earlier steps `step` depends on: those it names in `after` and the last producer of each
/// capture it reads.
fn prerequisites<'a>(earlier: &'a [Step], step: &Step) -> Vec<&'a str> {
    let mut deps: Vec<&str> = earlier
        .iter()
        .filter(|s| step.after.contains(&s.name))
        .map(|s| s.name.as_str())
        .collect();
    for name in step.reads() {
        if let Some(producer) = earlier.iter().rev().find(|s| s.writes().contains(&name)) {
            deps.push(&producer.name);
        }
    }
    deps.sort_unstable();
    deps.dedup();
    deps
}

/// Plain remarks about what could not run and why, one per cause.
fn notes(report: &RunReport) -> Vec<String> {
    let mut notes = Vec::new();
    let mut causes: Vec<(SkipReason, usize)> = Vec::new();
    for check in &report.checks {
        if let Outcome::Skipped(reason) = &check.outcome
            && matches!(
                reason,
                SkipReason::NeedsVariable { .. }
                    | SkipReason::NeedsMailbox
                    | SkipReason::NeedsBrowser
                    | SkipReason::NeedsBasicAuth { .. }
                    | SkipReason::NeedsHttpUrl
            )
        {
            match causes.iter_mut().find(|(r, _)| r == reason) {
                Some((_, count)) => *count += 1,
                None => causes.push((reason.clone(), 1)),
            }
        }
    }
    let dependents = report
        .checks
        .iter()
        .filter(|c| {
            matches!(
                &c.outcome,
                Outcome::Skipped(SkipReason::Prerequisite { .. })
            )
        })
        .count();
    let and_dependents = if dependents > 0 {
        ", and the checks depending on them too"
    } else {
        ""
    };
    for (reason, count) in causes {
        let note = match reason {
            SkipReason::NeedsVariable { name } => format!(
                "`{name}` is not set: {count} checks that need it were skipped{and_dependents}"
            ),
            SkipReason::NeedsMailbox => format!(
                "no mailbox was given (pass `--mailbox`): {count} checks that read emails were skipped{and_dependents}"
            ),
            SkipReason::NeedsBrowser => format!(
                "no browser: {count} browser checks were skipped{and_dependents} ({})",
                browser::INSTALL_HINT
            ),
            SkipReason::NeedsBasicAuth { host, variable } => format!(
                "{count} checks were skipped: they need the basic auth credentials of `{host}` (set `{variable}`)"
            ),
            SkipReason::NeedsHttpUrl => format!(
                "no HTTP base URL was given (pass `--http-url`): {count} checks of plain HTTP were skipped"
            ),
            _ => continue,
        };
        notes.push(note);
    }
    let mut maintenance: Vec<&str> = report
        .checks
        .iter()
        .filter_map(|c| match &c.outcome {
            Outcome::Failed(failure) if failure.kind == FailureKind::Maintenance => {
                Some(failure.title.as_str())
            }
            _ => None,
        })
        .collect();
    maintenance.sort_unstable();
    maintenance.dedup();
    for title in maintenance {
        let count = report
            .checks
            .iter()
            .filter(|c| matches!(&c.outcome, Outcome::Failed(f) if f.title == title))
            .count();
        notes.push(format!(
            "{title}: {count} checks failed because of it (wait for the deployment to finish, then run again)"
        ));
    }
    notes
}

/// Expectations for the readiness of a stack described only by its health path.
pub fn default_readiness_expects() -> Vec<Expect> {
    vec![Expect::Status(vec![200])]
}

pub(crate) type Results = Mutex<HashMap<String, CheckResult>>;
