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

use crate::check::{Action, Captures, Category, Expect, Request, Scenario, Step, Suite, Value};
use crate::mailbox::MailboxConfig;
use crate::report::{CheckResult, Failure, Outcome, RunReport};
use crate::secret::{Secret, mask};

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
    /// The staff token (`Authorization: Token ...`); staff-only steps are skipped without it.
    pub staff_token: Option<Secret>,
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
    /// Variables looked up before the process environment (the basic auth credentials a gate
    /// run generated for its stack).
    pub vars: std::collections::BTreeMap<String, String>,
}

impl Target {
    /// A target with defaults and a fresh random run id.
    pub fn new(base_url: url::Url) -> Target {
        Target {
            base_url,
            http_url: None,
            ca_cert_pem: None,
            staff_token: None,
            mailbox: None,
            timeouts: Timeouts::default(),
            run_id: new_run_id(),
            max_body: DEFAULT_MAX_BODY,
            concurrency: 8,
            vars: std::collections::BTreeMap::new(),
        }
    }

    /// The email address the run books with: `smoke+<run-id>@example.test`.
    pub fn visitor_email(&self) -> String {
        format!("smoke+{}@example.test", self.run_id)
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
    Categories(Vec<Category>),
}

impl Selection {
    /// Whether checks of `category` are selected.
    pub fn includes(&self, category: Category) -> bool {
        match self {
            Selection::All => true,
            Selection::Categories(categories) => categories.contains(&category),
        }
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

/// Polls the suite's health endpoint until it meets its expectations, with a delay growing from
/// 100 ms to 2 s, until `deadline`. DNS, TLS and redirect-loop failures end the wait at once:
/// waiting does not fix them.
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
    let ctx = exec::Ctx::new(http, target.clone(), progress);
    let work = async {
        let checks = futures::stream::iter(plan.checks.iter()).for_each_concurrent(
            target.concurrency.max(1),
            |step| {
                let ctx = &ctx;
                async move {
                    let mut captures = seed(target);
                    ctx.run_step(step, "", &mut captures, &[], &HashMap::new())
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
                .map(|scenario| ctx.run_scenario(scenario, seed(target))),
        );
        futures::future::join(checks, scenarios).await;
        for scenario in last {
            ctx.run_scenario(scenario, seed(target)).await;
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
    report.leftovers = ctx.undo_all().await;
    let results = ctx.into_results();
    report.checks = plan
        .steps()
        .map(|step| {
            results.get(&step.name).cloned().unwrap_or_else(|| {
                let reason = if interrupted {
                    "the run was interrupted before it ran"
                } else {
                    "it was never run"
                };
                result(step, Outcome::skipped(reason), Duration::ZERO)
            })
        })
        .collect();
    report.interrupted = interrupted;
    report.notes = notes(&plan, target, &report);
    report.duration = start.elapsed();
    report
}

fn result(step: &Step, outcome: Outcome, duration: Duration) -> CheckResult {
    CheckResult {
        name: step.name.clone(),
        category: step.category.to_string(),
        outcome,
        duration,
    }
}

/// The captures every run starts with.
fn seed(target: &Target) -> Captures {
    [
        ("run_id", target.run_id.clone()),
        ("email", target.visitor_email()),
        ("visitor_name", format!("Smoke Visitor {}", target.run_id)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::Text(v)))
    .collect()
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
        .filter(|s| selection.includes(s.category))
        .cloned()
        .collect();
    let scenarios = suite
        .scenarios
        .iter()
        .filter_map(|scenario| {
            let mut wanted: HashSet<&str> = scenario
                .steps
                .iter()
                .filter(|s| selection.includes(s.category) && !matches!(s.action, Action::Cleanup))
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
            let creates = scenario.steps.iter().any(|s| {
                wanted.contains(s.name.as_str())
                    && matches!(&s.action, Action::Http(h) if h.cleanup.is_some())
            });
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

/// Plain remarks about what could not run and why.
fn notes(plan: &Plan, target: &Target, report: &RunReport) -> Vec<String> {
    let mut notes = Vec::new();
    let skipped = |why: &str| {
        report
            .checks
            .iter()
            .filter(|c| matches!(&c.outcome, Outcome::Skipped { reason } if reason.contains(why)))
            .count()
    };
    if target.staff_token.is_none() && plan.steps().any(Step::needs_staff) {
        notes.push(format!(
            "no staff token was given (set `SMOKE_STAFF_TOKEN`): {} staff-only checks were skipped, and the checks depending on them too",
            skipped("staff token")
        ));
    }
    if target.mailbox.is_none() && plan.steps().any(Step::needs_mailbox) {
        notes.push(format!(
            "no mailbox was given (pass `--mailbox`): {} checks that read emails were skipped, and the checks depending on them too",
            skipped("mailbox")
        ));
    }
    let mut credentials: Vec<&str> = report
        .checks
        .iter()
        .filter_map(|c| match &c.outcome {
            Outcome::Skipped { reason } if reason.starts_with("needs the basic auth") => {
                Some(reason.as_str())
            }
            _ => None,
        })
        .collect();
    credentials.dedup();
    for reason in credentials {
        let count = skipped(reason);
        notes.push(format!(
            "{count} checks were skipped: they {}",
            reason.replacen("needs", "need", 1)
        ));
    }
    let mut maintenance: Vec<&str> = report
        .checks
        .iter()
        .filter_map(|c| match &c.outcome {
            Outcome::Failed(failure) if failure.title.starts_with(exec::MAINTENANCE_TITLE) => {
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
    if target.http_url.is_none() && plan.steps().any(Step::needs_http_url) {
        notes.push("no HTTP base URL was given (pass `--http-url`): the HTTP-to-HTTPS redirect was not checked".to_owned());
    }
    notes
}

/// Expectations for the readiness of a stack described only by its health path.
pub fn default_readiness_expects() -> Vec<Expect> {
    vec![Expect::Status(vec![200])]
}

pub(crate) type Results = Mutex<HashMap<String, CheckResult>>;
