//! Executing one step: deciding whether it can run ([`Ctx::why_skip`]), running it, and
//! recording its result. Each kind of step has its own module:
//!
//! - [`request`]: HTTP requests, their expectations, captures, assets and undo records;
//! - [`mail`]: waiting for an email and capturing from it;
//! - [`burst`]: concurrent bursts, rate limits and spaced requests;
//! - [`value`]: assertions on captured values, token strength, QR codes.
//!
//! Every step ends passed, failed (with a [`Failure`] a person can act on) or skipped (with a
//! [`SkipReason`]).

mod browser;
mod burst;
mod mail;
mod request;
mod value;

pub(in crate::runner) use browser::launch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::http::{ErrorKind, Http, RequestError};
use super::ledger::{Entry, Ledger};
use super::{Progress, Results, Target, result, variable};
use crate::check::{Action, Captures, Placeholder, Request, Response, Scenario, Step, Value};
use crate::mailbox::Mailbox;
use crate::report::{CheckResult, Failure, FailureKind, Outcome, SkipReason};

/// How a step ended, with the values it captured when it passed.
enum End {
    Pass(Vec<(String, Value)>),
    Fail(Failure),
    /// Failed, but what it captured is still good for later steps (a QR code that leaks
    /// personal data still holds a check-in code worth scanning).
    FailKeep(Failure, Vec<(String, Value)>),
    Skip(SkipReason),
}

/// How a step ended, as later steps of its scenario see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Label {
    Passed,
    Failed,
    /// Failed, but what it captured is good for later steps.
    FailedKept,
    Skipped,
}

/// The step's own hint applies to its own expectations; a failure classified otherwise (a
/// transport error, a 413, a 5xx, a redirect loop) already carries the hint of its class.
fn with_hint(mut failure: Failure, step: &Step) -> Failure {
    if failure.hint.is_none() && failure.kind == FailureKind::Mismatch {
        failure.hint.clone_from(&step.hint);
    }
    failure.masked()
}

/// What every step of a run shares.
pub(super) struct Ctx<'p> {
    pub(super) http: Http,
    target: Target,
    ledger: Arc<Ledger>,
    in_flight: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    mailbox: tokio::sync::OnceCell<Result<Mailbox, String>>,
    browser: tokio::sync::OnceCell<Result<Arc<crate::runner::browser::Session>, String>>,
    results: Results,
    progress: &'p dyn Progress,
}

impl<'p> Ctx<'p> {
    pub(super) fn new(http: Http, target: Target, progress: &'p dyn Progress) -> Self {
        Ctx {
            http,
            target,
            ledger: Arc::default(),
            in_flight: Mutex::default(),
            mailbox: tokio::sync::OnceCell::new(),
            browser: tokio::sync::OnceCell::new(),
            results: Results::default(),
            progress,
        }
    }

    pub(super) fn into_results(self) -> HashMap<String, CheckResult> {
        self.results
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record(&self, result: CheckResult) {
        self.progress.finished(&result);
        self.results
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(result.name.clone(), result);
    }

    /// Runs a scenario's steps in order with one cookie jar, skipping those whose
    /// prerequisites did not pass.
    pub(super) async fn run_scenario(&self, scenario: &Scenario, mut captures: Captures) {
        let http = self.http.with_cookie_jar();
        let mut outcomes: HashMap<String, Label> = HashMap::new();
        for (index, step) in scenario.steps.iter().enumerate() {
            let prerequisites = super::prerequisites(&scenario.steps[..index], step);
            let label = self
                .run_step(
                    step,
                    &scenario.name,
                    &http,
                    &mut captures,
                    &prerequisites,
                    &outcomes,
                )
                .await;
            outcomes.insert(step.name.clone(), label);
        }
    }

    /// Runs one step (or skips it), records its result, and says how it ended.
    pub(super) async fn run_step(
        &self,
        step: &Step,
        scenario: &str,
        http: &Http,
        captures: &mut Captures,
        prerequisites: &[&str],
        outcomes: &HashMap<String, Label>,
    ) -> Label {
        let start = Instant::now();
        let end = match self.why_skip(step, http, captures, prerequisites, outcomes) {
            Some(reason) => End::Skip(reason),
            None => self.execute(step, scenario, http, captures).await,
        };
        let (outcome, label) = match end {
            End::Pass(values) => {
                captures.extend(values);
                (Outcome::Passed, Label::Passed)
            }
            End::Fail(failure) => (Outcome::Failed(with_hint(failure, step)), Label::Failed),
            End::FailKeep(failure, values) => {
                captures.extend(values);
                (Outcome::Failed(with_hint(failure, step)), Label::FailedKept)
            }
            End::Skip(reason) => (Outcome::Skipped(reason.masked()), Label::Skipped),
        };
        self.record(result(step, outcome, start.elapsed()));
        label
    }

    fn why_skip(
        &self,
        step: &Step,
        http: &Http,
        captures: &Captures,
        prerequisites: &[&str],
        outcomes: &HashMap<String, Label>,
    ) -> Option<SkipReason> {
        for dep in prerequisites {
            let outcome = match outcomes.get(*dep).copied() {
                Some(Label::Passed | Label::FailedKept) => continue,
                Some(Label::Failed) => "failed",
                Some(Label::Skipped) => "was skipped",
                None => "did not run",
            };
            return Some(SkipReason::Prerequisite {
                step: (*dep).to_owned(),
                outcome: outcome.to_owned(),
            });
        }
        if let Some(name) = step
            .reads()
            .into_iter()
            .find(|name| !captures.contains_key(name))
        {
            return Some(match variable(&name) {
                Some((_, var)) => SkipReason::NeedsVariable {
                    name: var.to_owned(),
                },
                None => SkipReason::MissingCapture { name },
            });
        }
        if step.needs_mailbox() && self.target.mailbox.is_none() {
            return Some(SkipReason::NeedsMailbox);
        }
        if step.needs_browser() && self.target.browser.is_none() {
            return Some(SkipReason::NeedsBrowser);
        }
        if step.sends_credentials()
            && let Some(var) = http.missing_credentials(step.host())
        {
            return Some(SkipReason::NeedsBasicAuth {
                host: http.host_label(step.host()).to_owned(),
                variable: var.to_owned(),
            });
        }
        if step.needs_http_url() && self.target.http_url.is_none() {
            return Some(SkipReason::NeedsHttpUrl);
        }
        None
    }

    async fn execute(&self, step: &Step, scenario: &str, http: &Http, captures: &Captures) -> End {
        match &step.action {
            Action::Http(spec) => self.http_step(http, spec, scenario, captures).await,
            Action::Email(email) => self.email_step(email, captures).await,
            Action::Assert(assert) => value::assert(assert, captures),
            Action::Token { value, min_bytes } => {
                value::token_strength(captures, value, *min_bytes)
            }
            Action::Qr(qr) => self.qr_step(http, qr, captures).await,
            Action::Burst(burst) => self.burst(http, burst, captures).await,
            Action::Cleanup => self.cleanup(scenario).await,
            Action::WebSocket(ws) => self.websocket(http, ws, captures).await,
            Action::Browser(browser) => {
                self.browser_step(http, &step.name, browser, captures).await
            }
            Action::RateLimitBurst {
                request,
                burst,
                refused_status,
            } => {
                self.rate_limit_burst(http, request, *burst, *refused_status, captures)
                    .await
            }
            Action::SpacedRequests {
                request,
                count,
                interval,
                refused_status,
            } => {
                self.spaced(http, request, *count, *interval, *refused_status, captures)
                    .await
            }
        }
    }

    /// The "deployment in progress" failure, when `response` is the host's maintenance page.
    fn maintenance(
        &self,
        http: &Http,
        request: &Request,
        response: &Response,
        described: &str,
    ) -> Option<Failure> {
        let host = request.host.as_deref();
        let placeholder = http.placeholder(host)?;
        placeholder.matches(response).then(|| {
            let mut failure = placeholder_failure(http.host_label(host), placeholder, response);
            failure.request = Some(described.to_owned());
            failure
        })
    }

    async fn websocket(
        &self,
        http: &Http,
        ws: &crate::check::WebSocketStep,
        captures: &Captures,
    ) -> End {
        let rendered = (|| {
            Ok::<_, crate::check::MissingCapture>((
                ws.send.render(captures)?,
                ws.expect_contains.render(captures)?,
            ))
        })();
        let (send, expect_contains) = match rendered {
            Ok(both) => both,
            Err(e) => return End::Skip(SkipReason::MissingCapture { name: e.0 }),
        };
        let target = match http.websocket_target(&ws.request, captures) {
            Ok(target) => target,
            Err(error) => {
                return End::Fail(transport_failure(
                    &error,
                    format!("websocket {}", ws.request.path.as_str()),
                ));
            }
        };
        let host = ws.request.host.as_deref();
        let label = http.host_label(host);
        let exchange = super::ws::Exchange {
            target,
            send,
            expect_contains,
            subprotocol: ws.subprotocol.as_deref(),
            placeholder: http.placeholder(host).map(|p| (p, label)),
        };
        match super::ws::check(exchange).await {
            Ok(()) => End::Pass(Vec::new()),
            Err(failure) => End::Fail(failure),
        }
    }

    async fn cleanup(&self, scenario: &str) -> End {
        let entries = self.ledger.take_scenario(scenario);
        if entries.is_empty() {
            return End::Skip(SkipReason::NothingToCleanUp);
        }
        let leftovers = self.undo(entries).await;
        match leftovers.first() {
            None => End::Pass(Vec::new()),
            Some(first) => End::Fail(Failure {
                title: format!(
                    "failed to undo {} thing(s) this run created",
                    leftovers.len()
                ),
                expected: "status 2xx (or 404: already gone)".to_owned(),
                actual: first.clone(),
                hint: Some(
                    "remove them by hand; they are listed at the end of the report".to_owned(),
                ),
                ..Failure::default()
            }),
        }
    }

    /// Undoes every entry; returns a description of each that could not be undone.
    async fn undo(&self, entries: Vec<Entry>) -> Vec<String> {
        let mut leftovers = Vec::new();
        for entry in entries {
            match entry.http.send(&entry.undo, &entry.captures).await {
                Ok(response) if (200..300).contains(&response.status) || response.status == 404 => {
                }
                Ok(response) => {
                    leftovers.push(format!("{}: status {}", entry.what, response.status))
                }
                Err(error) => leftovers.push(format!("{}: {}", entry.what, error.message)),
            }
        }
        leftovers
    }

    /// Undoes whatever is still recorded (an interrupted run, a scenario stopped early).
    pub(super) async fn undo_all(&self) -> Vec<String> {
        let entries = self.ledger.take_all();
        if entries.is_empty() {
            return Vec::new();
        }
        self.undo(entries).await
    }

    /// Waits for the requests that create something and are still in flight.
    pub(super) async fn settle(&self) {
        let tasks: Vec<_> = self
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// The title every check shares when the host answered with its maintenance page.
pub(super) const MAINTENANCE_TITLE: &str = "deployment in progress:";

/// A response that is the maintenance page, as a failure naming the host.
pub(super) fn placeholder_failure(
    host: &str,
    placeholder: &Placeholder,
    response: &Response,
) -> Failure {
    Failure {
        kind: FailureKind::Maintenance,
        title: format!("{MAINTENANCE_TITLE} {host} serves the maintenance page"),
        expected: "the site, not the maintenance page".to_owned(),
        actual: format!(
            "status {} containing `{}`",
            response.status, placeholder.contains
        ),
        excerpt: response.excerpt(),
        hint: Some(
            "a deployment is running or stopped half-way: wait for it to finish (or roll it back), then run again"
                .to_owned(),
        ),
        ..Failure::default()
    }
}

/// A request that got no answer (or could not be built), as a failure.
pub(super) fn transport_failure(error: &RequestError, request: String) -> Failure {
    let actual = match error.causes.last() {
        Some(cause) => format!("{} ({cause})", error.message),
        None => error.message.clone(),
    };
    let (kind, title) = match error.kind {
        ErrorKind::Dns => (FailureKind::Transport, "the host name does not resolve"),
        ErrorKind::Refused => (FailureKind::Transport, "connection refused"),
        ErrorKind::Tls => (FailureKind::Transport, "the TLS handshake failed"),
        ErrorKind::Timeout => (FailureKind::Transport, "no answer in time"),
        ErrorKind::Redirects => (FailureKind::Transport, "too many redirects (a loop?)"),
        ErrorKind::Template => (FailureKind::Setup, "the request could not be built"),
        ErrorKind::Origin => (FailureKind::Mismatch, "the link points outside the site"),
        ErrorKind::Other => (FailureKind::Transport, "no HTTP answer"),
    };
    Failure {
        kind,
        title: title.to_owned(),
        request: Some(request),
        expected: if error.kind == ErrorKind::Origin {
            "a link to the site".to_owned()
        } else {
            "an HTTP answer".to_owned()
        },
        actual,
        hint: error.hint.clone(),
        ..Failure::default()
    }
}
