//! Executing one step: the HTTP request and its expectations, emails, QR codes, bursts and
//! cleanup, each ending passed, failed (with a [`Failure`] a person can act on) or skipped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine as _;

use super::http::{ErrorKind, Http, RequestError};
use super::ledger::{Entry, Ledger};
use super::{Progress, Results, Target, result};
use crate::check::{
    Action, Captures, EmailStep, HttpStep, MailTemplate, Placeholder, Request, Response, Scenario,
    Step, Template, Value, WebSocketStep,
};
use crate::mailbox::{MailQuery, Mailbox};
use crate::report::{CheckResult, Failure, Outcome};
use crate::secret::mask;

/// How a step ended, with the values it captured when it passed.
enum End {
    Pass(Vec<(String, Value)>),
    Fail(Failure),
    /// Failed, but what it captured is still good for later steps (a QR code that leaks
    /// personal data still holds a check-in code worth scanning).
    FailKeep(Failure, Vec<(String, Value)>),
    Skip(String),
}

/// The label of a step that failed but whose captures later steps may use.
const KEPT: &str = "failed, captures kept";

fn with_hint(mut failure: Failure, step: &Step) -> Failure {
    if failure.hint.is_none() {
        failure.hint.clone_from(&step.hint);
    }
    failure.masked()
}

/// What every step of a run shares.
pub(super) struct Ctx<'p> {
    http: Http,
    target: Target,
    ledger: Arc<Ledger>,
    in_flight: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    mailbox: tokio::sync::OnceCell<Result<Mailbox, String>>,
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

    /// Runs a scenario's steps in order, skipping those whose prerequisites did not pass.
    pub(super) async fn run_scenario(&self, scenario: &Scenario, mut captures: Captures) {
        let mut outcomes: HashMap<String, &'static str> = HashMap::new();
        for (index, step) in scenario.steps.iter().enumerate() {
            let prerequisites = super::prerequisites(&scenario.steps[..index], step);
            let label = self
                .run_step(
                    step,
                    &scenario.name,
                    &mut captures,
                    &prerequisites,
                    &outcomes,
                )
                .await;
            outcomes.insert(step.name.clone(), label);
        }
    }

    /// Runs one step (or skips it), records its result, and returns `passed`, `failed` or
    /// `skipped`.
    pub(super) async fn run_step(
        &self,
        step: &Step,
        scenario: &str,
        captures: &mut Captures,
        prerequisites: &[&str],
        outcomes: &HashMap<String, &'static str>,
    ) -> &'static str {
        let start = Instant::now();
        let mut kept = false;
        let end = match self.why_skip(step, captures, prerequisites, outcomes) {
            Some(reason) => End::Skip(reason),
            None => self.execute(step, scenario, captures).await,
        };
        let outcome = match end {
            End::Pass(values) => {
                captures.extend(values);
                Outcome::Passed
            }
            End::Fail(failure) => Outcome::Failed(with_hint(failure, step)),
            End::FailKeep(failure, values) => {
                captures.extend(values);
                kept = true;
                Outcome::Failed(with_hint(failure, step))
            }
            End::Skip(reason) => Outcome::skipped(mask(&reason)),
        };
        let label = if kept { KEPT } else { outcome.label() };
        self.record(result(step, outcome, start.elapsed()));
        label
    }

    fn why_skip(
        &self,
        step: &Step,
        captures: &Captures,
        prerequisites: &[&str],
        outcomes: &HashMap<String, &'static str>,
    ) -> Option<String> {
        for dep in prerequisites {
            match outcomes.get(*dep).copied() {
                Some("passed" | KEPT) => {}
                Some("failed") => return Some(format!("because `{dep}` failed")),
                Some(_) => return Some(format!("because `{dep}` was skipped")),
                None => return Some(format!("because `{dep}` did not run")),
            }
        }
        if let Some(name) = step
            .reads()
            .into_iter()
            .find(|name| !captures.contains_key(name))
        {
            return Some(format!("no step captured `{name}`"));
        }
        if step.needs_staff() && self.target.staff_token.is_none() {
            return Some("needs a staff token (set `SMOKE_STAFF_TOKEN`)".to_owned());
        }
        if step.needs_mailbox() && self.target.mailbox.is_none() {
            return Some("needs a mailbox (pass `--mailbox URL`)".to_owned());
        }
        if step.sends_credentials()
            && let Some(var) = self.http.missing_credentials(step.host())
        {
            return Some(format!(
                "needs the basic auth credentials of `{}` (set `{var}`)",
                self.http.host_label(step.host())
            ));
        }
        if step.needs_http_url() && self.target.http_url.is_none() {
            return Some("needs the site's HTTP URL (pass `--http-url URL`)".to_owned());
        }
        None
    }

    async fn execute(&self, step: &Step, scenario: &str, captures: &Captures) -> End {
        match &step.action {
            Action::Http(http) => self.http_step(step, http, scenario, captures).await,
            Action::Email(email) => self.email_step(email, captures).await,
            Action::TokenStrength { token, min_bytes } => {
                token_strength(captures, token, *min_bytes)
            }
            Action::QrNoPersonalData { png, into, needles } => {
                qr_step(captures, png, into, needles)
            }
            Action::Burst {
                request,
                count,
                statuses,
                verify,
            } => {
                self.burst(step, request, *count, statuses, verify.as_ref(), captures)
                    .await
            }
            Action::Cleanup => self.cleanup(scenario).await,
            Action::WebSocket(ws) => self.websocket(ws, captures).await,
            Action::RateLimitBurst {
                request,
                burst,
                refused_status,
            } => {
                self.rate_limit_burst(request, *burst, *refused_status, captures)
                    .await
            }
            Action::SpacedRequests {
                request,
                count,
                interval,
                refused_status,
            } => {
                self.spaced(request, *count, *interval, *refused_status, captures)
                    .await
            }
        }
    }

    /// The "deployment in progress" failure, when `response` is the host's maintenance page.
    fn maintenance(
        &self,
        request: &Request,
        response: &Response,
        described: &str,
    ) -> Option<Failure> {
        let host = request.host.as_deref();
        let placeholder = self.http.placeholder(host)?;
        placeholder.matches(response).then(|| {
            let mut failure =
                placeholder_failure(self.http.host_label(host), placeholder, response);
            failure.request = Some(described.to_owned());
            failure
        })
    }

    async fn websocket(&self, ws: &WebSocketStep, captures: &Captures) -> End {
        let rendered = (|| {
            Ok::<_, crate::check::MissingCapture>((
                ws.send.render(captures)?,
                ws.expect_contains.render(captures)?,
            ))
        })();
        let (send, expect_contains) = match rendered {
            Ok(both) => both,
            Err(e) => return End::Skip(e.to_string()),
        };
        let target = match self.http.websocket_target(&ws.request, captures) {
            Ok(target) => target,
            Err(error) => {
                return End::Fail(transport_failure(
                    &error,
                    format!("websocket {}", ws.request.path.as_str()),
                ));
            }
        };
        let host = ws.request.host.as_deref();
        let label = self.http.host_label(host);
        let exchange = super::ws::Exchange {
            target,
            send,
            expect_contains,
            subprotocol: ws.subprotocol.as_deref(),
            placeholder: self.http.placeholder(host).map(|p| (p, label)),
        };
        match super::ws::check(exchange).await {
            Ok(()) => End::Pass(Vec::new()),
            Err(failure) => End::Fail(failure),
        }
    }

    /// Exactly `burst` requests at once: at least one refused, no other 5xx.
    async fn rate_limit_burst(
        &self,
        request: &Request,
        burst: usize,
        refused_status: u16,
        captures: &Captures,
    ) -> End {
        let described = format!(
            "{burst} × {} at once",
            self.http.describe(request, captures)
        );
        let answers =
            futures::future::join_all((0..burst).map(|_| self.http.send(request, captures))).await;
        let mut by_status: std::collections::BTreeMap<u16, usize> =
            std::collections::BTreeMap::new();
        let mut errors = Vec::new();
        for answer in &answers {
            match answer {
                Ok(response) => {
                    if let Some(failure) = self.maintenance(request, response, &described) {
                        return End::Fail(failure);
                    }
                    *by_status.entry(response.status).or_default() += 1;
                }
                Err(error) => errors.push(error.message.clone()),
            }
        }
        let mut actual = tally(&by_status);
        if !errors.is_empty() {
            actual.push_str(&format!(
                "; {} without an answer ({})",
                errors.len(),
                errors[0]
            ));
        }
        let refused = by_status.get(&refused_status).copied().unwrap_or(0);
        let server_errors: usize = by_status
            .range(500..)
            .filter(|(s, _)| **s != refused_status)
            .map(|(_, n)| n)
            .sum();
        let expected =
            format!("at least one status {refused_status}, no other 5xx, every request answered");
        let excerpt = answers
            .iter()
            .flatten()
            .find(|r| r.status >= 500 && r.status != refused_status)
            .and_then(Response::excerpt);
        let title = if server_errors > 0 {
            format!("server errors under a burst of {burst}")
        } else if !errors.is_empty() {
            format!("requests of a burst of {burst} got no answer")
        } else if refused == 0 {
            format!("rate limit not enforced: none of {burst} requests at once was refused")
        } else {
            return End::Pass(Vec::new());
        };
        End::Fail(Failure {
            title,
            request: Some(described),
            expected,
            actual,
            excerpt,
            hint: None,
        })
    }

    /// `count` requests, `interval` apart: none refused, none a 5xx.
    async fn spaced(
        &self,
        request: &Request,
        count: usize,
        interval: std::time::Duration,
        refused_status: u16,
        captures: &Captures,
    ) -> End {
        let described = format!(
            "{count} × {}, {} ms apart",
            self.http.describe(request, captures),
            interval.as_millis()
        );
        let mut statuses = Vec::new();
        for i in 0..count {
            if i > 0 {
                tokio::time::sleep(interval).await;
            }
            let response = match self.http.send(request, captures).await {
                Ok(response) => response,
                Err(error) => return End::Fail(transport_failure(&error, described)),
            };
            if let Some(failure) = self.maintenance(request, &response, &described) {
                return End::Fail(failure);
            }
            statuses.push(response.status.to_string());
            if response.status == refused_status || response.status >= 500 {
                let title = if response.status == refused_status {
                    format!(
                        "normal traffic refused: request {} of {count} got {refused_status}",
                        i + 1
                    )
                } else {
                    format!("server error: status {}", response.status)
                };
                return End::Fail(Failure {
                    title,
                    request: Some(described),
                    expected: format!("{count} answers, none {refused_status} or 5xx"),
                    actual: format!("statuses {}", statuses.join(", ")),
                    excerpt: response.excerpt(),
                    hint: None,
                });
            }
        }
        End::Pass(Vec::new())
    }

    async fn http_step(
        &self,
        step: &Step,
        http: &HttpStep,
        scenario: &str,
        captures: &Captures,
    ) -> End {
        let described = self.http.describe(&http.request, captures);
        let sent = match &http.cleanup {
            Some(undo) => self.send_creating(http, undo, scenario, captures).await,
            None => self.http.send(&http.request, captures).await,
        };
        let response = match sent {
            Ok(response) => response,
            Err(error) => return End::Fail(transport_failure(&error, described)),
        };
        if let Some(failure) = self.maintenance(&http.request, &response, &described) {
            return End::Fail(failure);
        }
        let mut expects = http.expects.clone();
        if let Some(max) = step.max_latency {
            expects.push(crate::check::Expect::MaxLatency(max));
        }
        if let Some(failure) = mismatch_failure(&expects, &response, captures, &described) {
            return End::Fail(failure);
        }
        let mut values = Vec::new();
        for capture in &http.captures {
            match capture.extract(&response) {
                Ok(value) => values.push((capture.name.clone(), Value::Text(value))),
                Err(why) => {
                    return End::Fail(Failure {
                        title: format!("failed to capture `{}` from the response", capture.name),
                        request: Some(described),
                        expected: format!("a value for `{}`", capture.name),
                        actual: why,
                        excerpt: response.excerpt(),
                        hint: None,
                    });
                }
            }
        }
        if let Some(count) = &http.then_mail_count {
            let query = match mail_query(&count.query, captures) {
                Ok(query) => query,
                Err(why) => return End::Skip(why),
            };
            let mailbox = match self.mailbox().await {
                Ok(mailbox) => mailbox,
                Err(why) => return End::Fail(mailbox_failure(why)),
            };
            match mailbox.count(&query).await {
                Ok(n) if n == count.count => {}
                Ok(n) => {
                    return End::Fail(Failure {
                        title: format!("{n} emails match {query}, not {}", count.count),
                        request: Some(described),
                        expected: format!("exactly {} matching email(s)", count.count),
                        actual: format!("{n}"),
                        excerpt: None,
                        hint: Some("the second call must not send the email again".to_owned()),
                    });
                }
                Err(error) => return End::Fail(mailbox_failure(error.to_string())),
            }
        }
        End::Pass(values)
    }

    /// Sends a request that creates something, in a task of its own that records the undo in
    /// the ledger as soon as the answer names what was created (even with a wrong status). The
    /// task outlives this step: when Ctrl-C drops the run mid-request, the runner waits for it
    /// (see [`Ctx::settle`]) so that what the server created is still undone.
    async fn send_creating(
        &self,
        http: &HttpStep,
        undo: &Request,
        scenario: &str,
        captures: &Captures,
    ) -> Result<Response, RequestError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let client = self.http.clone();
        let ledger = Arc::clone(&self.ledger);
        let request = http.request.clone();
        let step_captures = http.captures.clone();
        let undo = undo.clone();
        let scenario = scenario.to_owned();
        let captures = captures.clone();
        let task = tokio::spawn(async move {
            let sent = client.send(&request, &captures).await;
            if let Ok(response) = &sent {
                let mut scratch = captures.clone();
                for capture in &step_captures {
                    if let Ok(value) = capture.extract(response) {
                        scratch.insert(capture.name.clone(), Value::Text(value));
                    }
                }
                if undo.path.render(&scratch).is_ok() {
                    ledger.record(Entry {
                        scenario,
                        what: client.describe(&undo, &scratch),
                        undo,
                        captures: scratch,
                    });
                }
            }
            let _ = tx.send(sent);
        });
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
        rx.await.unwrap_or_else(|_| {
            Err(RequestError {
                kind: ErrorKind::Other,
                message: "failed to send the request: its task stopped".to_owned(),
                causes: Vec::new(),
                hint: None,
            })
        })
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

    async fn mailbox(&self) -> Result<&Mailbox, String> {
        let opened = self
            .mailbox
            .get_or_init(|| async {
                let Some(config) = &self.target.mailbox else {
                    return Err("no mailbox was given".to_owned());
                };
                let opened = match config {
                    crate::mailbox::MailboxConfig::Http { api_url } => {
                        Mailbox::open_http(api_url, self.target.ca_cert_pem.as_deref()).await
                    }
                    other => Mailbox::open(other).await,
                };
                opened.map_err(|e| mask(&e.to_string()))
            })
            .await;
        opened.as_ref().map_err(Clone::clone)
    }

    async fn email_step(&self, email: &EmailStep, captures: &Captures) -> End {
        let query = match mail_query(&email.query, captures) {
            Ok(query) => query,
            Err(why) => return End::Skip(why),
        };
        let mailbox = match self.mailbox().await {
            Ok(mailbox) => mailbox,
            Err(why) => return End::Fail(mailbox_failure(why)),
        };
        let found = match mailbox.wait_for(&query, self.target.timeouts.mail).await {
            Ok(found) => found,
            Err(error) => {
                return End::Fail(Failure {
                    title: "the email never arrived".to_owned(),
                    request: Some(format!("wait up to {:.0?} for {query}", self.target.timeouts.mail)),
                    expected: format!("{query}"),
                    actual: error.to_string(),
                    excerpt: None,
                    hint: Some(
                        "is the backend's email configured (host, port, sender)? look at its logs and the mailbox"
                            .to_owned(),
                    ),
                });
            }
        };
        let body = format!("{}\n{}", found.text, found.html.as_deref().unwrap_or(""));
        let mut values = Vec::new();
        for (name, pattern) in &email.text_captures {
            let captured = regex::Regex::new(pattern).ok().and_then(|re| {
                re.captures(&body)
                    .and_then(|c| c.get(1))
                    .map(|m| m.as_str().to_owned())
            });
            match captured {
                Some(value) => values.push((name.clone(), Value::Text(value))),
                None => {
                    return End::Fail(Failure {
                        title: format!("failed to find `{name}` in the email"),
                        request: Some(format!("email `{}`", found.subject)),
                        expected: format!("text matching `{pattern}`"),
                        actual: "no match".to_owned(),
                        excerpt: Some(crate::check::excerpt(
                            found.text.as_bytes(),
                            crate::check::EXCERPT_LIMIT,
                        )),
                        hint: None,
                    });
                }
            }
        }
        if let Some((name, prefix)) = &email.png_attachment {
            let prefix = match prefix.render(captures) {
                Ok(prefix) => prefix,
                Err(e) => return End::Skip(e.to_string()),
            };
            let png = found.attachments.iter().find(|a| {
                a.filename.starts_with(&prefix)
                    && a.content_type.to_ascii_lowercase().starts_with("image/png")
            });
            match png {
                Some(attachment) => {
                    values.push((name.clone(), Value::Bytes(attachment.bytes.clone())))
                }
                None => {
                    let seen = found
                        .attachments
                        .iter()
                        .map(|a| format!("`{}` ({})", a.filename, a.content_type))
                        .collect::<Vec<_>>();
                    return End::Fail(Failure {
                        title: "the email carries no QR code attachment".to_owned(),
                        request: Some(format!("email `{}`", found.subject)),
                        expected: format!("a PNG attachment `{prefix}…`"),
                        actual: if seen.is_empty() {
                            "no attachment".to_owned()
                        } else {
                            seen.join(", ")
                        },
                        excerpt: None,
                        hint: None,
                    });
                }
            }
        }
        End::Pass(values)
    }

    async fn burst(
        &self,
        step: &Step,
        request: &Request,
        count: usize,
        statuses: &[(u16, usize)],
        verify: Option<&HttpStep>,
        captures: &Captures,
    ) -> End {
        let described = format!(
            "{count} × {} at once",
            self.http.describe(request, captures)
        );
        let sends = (0..count).map(|i| {
            let mut mine = captures.clone();
            mine.insert("i".to_owned(), Value::Text(i.to_string()));
            async move { self.http.send(request, &mine).await }
        });
        let answers = futures::future::join_all(sends).await;
        let mut by_status: std::collections::BTreeMap<u16, usize> =
            std::collections::BTreeMap::new();
        let mut errors = Vec::new();
        for answer in &answers {
            match answer {
                Ok(response) => *by_status.entry(response.status).or_default() += 1,
                Err(error) => errors.push(error.message.clone()),
            }
        }
        let tally = |map: &std::collections::BTreeMap<u16, usize>| {
            map.iter()
                .map(|(s, n)| format!("{n} × {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let expected: std::collections::BTreeMap<u16, usize> = statuses.iter().copied().collect();
        if by_status != expected || !errors.is_empty() {
            let mut actual = tally(&by_status);
            if !errors.is_empty() {
                actual.push_str(&format!(
                    "; {} without an answer ({})",
                    errors.len(),
                    errors[0]
                ));
            }
            let server_errors: usize = by_status.range(500..).map(|(_, n)| n).sum();
            let hint = if server_errors > 0 {
                "5xx under concurrency: look for database errors in the backend's logs"
            } else {
                "capacity must be enforced in one transaction with a row lock (`select_for_update`)"
            };
            let excerpt = answers
                .iter()
                .flatten()
                .find(|r| r.status >= 500)
                .and_then(Response::excerpt);
            return End::Fail(Failure {
                title: "concurrent bookings were not handled as expected".to_owned(),
                request: Some(described),
                expected: tally(&expected),
                actual,
                excerpt,
                hint: Some(hint.to_owned()),
            });
        }
        if let Some(verify) = verify {
            return self.http_step(step, verify, "", captures).await;
        }
        End::Pass(Vec::new())
    }

    async fn cleanup(&self, scenario: &str) -> End {
        let entries = self.ledger.take_scenario(scenario);
        if entries.is_empty() {
            return End::Skip(
                "nothing to clean up: no step of this scenario created anything".to_owned(),
            );
        }
        let leftovers = self.undo(entries).await;
        match leftovers.first() {
            None => End::Pass(Vec::new()),
            Some(first) => End::Fail(Failure {
                title: format!(
                    "failed to undo {} thing(s) this run created",
                    leftovers.len()
                ),
                request: None,
                expected: "status 204 (or 404: already gone)".to_owned(),
                actual: first.clone(),
                excerpt: None,
                hint: Some(
                    "remove them by hand; they are listed at the end of the report".to_owned(),
                ),
            }),
        }
    }

    /// Undoes every entry; returns a description of each that could not be undone.
    async fn undo(&self, entries: Vec<Entry>) -> Vec<String> {
        let mut leftovers = Vec::new();
        for entry in entries {
            match self.http.send(&entry.undo, &entry.captures).await {
                Ok(response) if matches!(response.status, 200 | 202 | 204 | 404) => {}
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
}

fn tally(map: &std::collections::BTreeMap<u16, usize>) -> String {
    map.iter()
        .map(|(s, n)| format!("{n} × {s}"))
        .collect::<Vec<_>>()
        .join(", ")
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
        title: format!("{MAINTENANCE_TITLE} {host} serves the maintenance page"),
        request: None,
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
    }
}

fn mail_query(query: &MailTemplate, captures: &Captures) -> Result<MailQuery, String> {
    Ok(MailQuery {
        to: query.to.render(captures).map_err(|e| e.to_string())?,
        subject_contains: query
            .subject_contains
            .render(captures)
            .map_err(|e| e.to_string())?,
    })
}

fn mailbox_failure(why: String) -> Failure {
    Failure {
        title: "failed to read the mailbox".to_owned(),
        request: None,
        expected: "a readable mailbox".to_owned(),
        actual: why,
        excerpt: None,
        hint: Some("check `--mailbox` and `SMOKE_IMAP_PASSWORD`".to_owned()),
    }
}

/// A request that got no answer, as a failure.
fn transport_failure(error: &RequestError, request: String) -> Failure {
    let actual = match error.causes.last() {
        Some(cause) => format!("{} ({cause})", error.message),
        None => error.message.clone(),
    };
    let title = match error.kind {
        ErrorKind::Dns => "the host name does not resolve",
        ErrorKind::Refused => "connection refused",
        ErrorKind::Tls => "the TLS handshake failed",
        ErrorKind::Timeout => "no answer in time",
        ErrorKind::Redirects => "too many redirects (a loop?)",
        ErrorKind::Template => "the request could not be built",
        ErrorKind::Other => "no HTTP answer",
    };
    Failure {
        title: title.to_owned(),
        request: Some(request),
        expected: "an HTTP answer".to_owned(),
        actual,
        excerpt: None,
        hint: error.hint.clone(),
    }
}

/// The first unmet expectation as a failure (all of them listed when several).
fn mismatch_failure(
    expects: &[crate::check::Expect],
    response: &Response,
    captures: &Captures,
    request: &str,
) -> Option<Failure> {
    let mut mismatches: Vec<_> = expects
        .iter()
        .filter_map(|e| e.check(response, captures).err())
        .collect();
    // A body cut short (over the cap, or the connection closed) fails whatever else matched:
    // what was not read was not checked.
    if let Some(why) = response
        .truncated
        .as_ref()
        .filter(|_| mismatches.is_empty())
    {
        mismatches.push(crate::check::Mismatch {
            expected: "a complete body".to_owned(),
            actual: format!("the body is incomplete ({why})"),
        });
    }
    let first = mismatches.first()?;
    let (expected, actual) = if mismatches.len() == 1 {
        (first.expected.clone(), first.actual.clone())
    } else {
        (
            mismatches
                .iter()
                .map(|m| m.expected.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            mismatches
                .iter()
                .map(|m| m.actual.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        )
    };
    let not_json = mismatches
        .iter()
        .any(|m| m.actual.starts_with("the body is not JSON"));
    let (title, hint) = if response.status >= 500
        && !expects
            .iter()
            .any(|e| matches!(e, crate::check::Expect::Status(s) if s.contains(&response.status)))
    {
        (
            format!("server error: status {}", response.status),
            Some("look at the backend's logs for this request".to_owned()),
        )
    } else if let Some(why) = &response.truncated {
        (
            format!("the body is incomplete: {why}"),
            Some("a proxy or the backend cut the response; check their logs and limits".to_owned()),
        )
    } else if not_json {
        (
            "HTML where JSON was expected".replace(
                "HTML",
                if response.content_type().contains("html") {
                    "HTML"
                } else {
                    "non-JSON"
                },
            ),
            Some(
                "is this path routed to Django? a proxy may be answering with the site index"
                    .to_owned(),
            ),
        )
    } else {
        (format!("unexpected response: {}", first.actual), None)
    };
    Some(Failure {
        title,
        request: Some(request.to_owned()),
        expected,
        actual,
        excerpt: response.excerpt(),
        hint,
    })
}

fn token_strength(captures: &Captures, token: &str, min_bytes: usize) -> End {
    let Some(Value::Text(value)) = captures.get(token) else {
        return End::Skip(format!("no value captured for `{token}`"));
    };
    let trimmed = value.trim_end_matches('=');
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed);
    match decoded {
        Ok(bytes) if bytes.len() >= min_bytes => End::Pass(Vec::new()),
        Ok(bytes) => End::Fail(Failure {
            title: "the confirmation token is guessable".to_owned(),
            request: None,
            expected: format!(
                "URL-safe base64 of at least {min_bytes} random bytes ({} bits)",
                min_bytes * 8
            ),
            actual: format!("{} bytes ({} bits)", bytes.len(), bytes.len() * 8),
            excerpt: None,
            hint: Some("use `secrets.token_urlsafe(32)`".to_owned()),
        }),
        Err(_) => End::Fail(Failure {
            title: "the confirmation token is not URL-safe base64".to_owned(),
            request: None,
            expected: format!("URL-safe base64 of at least {min_bytes} random bytes"),
            actual: format!("a {}-character token that does not decode", value.len()),
            excerpt: None,
            hint: Some("use `secrets.token_urlsafe(32)`".to_owned()),
        }),
    }
}

fn qr_step(captures: &Captures, png: &str, into: &str, needles: &[Template]) -> End {
    let Some(Value::Bytes(bytes)) = captures.get(png) else {
        return End::Skip(format!("no value captured for `{png}`"));
    };
    let payload = match crate::qr::decode_png(bytes) {
        Ok(payload) => payload,
        Err(error) => {
            return End::Fail(Failure {
                title: "failed to decode the QR code".to_owned(),
                request: None,
                expected: "a PNG holding one QR code".to_owned(),
                actual: error.to_string(),
                excerpt: None,
                hint: None,
            });
        }
    };
    let needles: Vec<String> = needles
        .iter()
        .filter_map(|n| n.render(captures).ok())
        .collect();
    let refs: Vec<&str> = needles.iter().map(String::as_str).collect();
    let values = vec![(into.to_owned(), Value::Text(payload.clone()))];
    if let Some(explanation) = crate::qr::reveals_personal_data(&payload, &refs) {
        return End::FailKeep(
            Failure {
                title: "the QR code reveals personal data".to_owned(),
                request: None,
                expected: "an opaque signed code, no name or email (not even encoded)".to_owned(),
                actual: explanation,
                excerpt: Some(crate::check::excerpt(payload.as_bytes(), 200)),
                hint: Some(
                    "sign a random per-booking id with `django.core.signing`, nothing else"
                        .to_owned(),
                ),
            },
            values,
        );
    }
    End::Pass(values)
}
