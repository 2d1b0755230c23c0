//! The model: a check is a value, never a hand-written test function.
//!
//! A [`Step`] is one named, categorised thing to verify: usually an HTTP request plus the
//! expectations its response must meet ([`HttpStep`]), sometimes an email to wait for, a QR
//! code to decode or a burst of concurrent requests ([`Action`]). Steps may capture values
//! (a show id, a booking reference, a token read from an email) that later steps use through
//! `{{name}}` [`Template`]s. A [`Scenario`] is an ordered chain of steps sharing captures; a
//! [`Suite`] is independent checks (run concurrently) plus scenarios (each run in order,
//! concurrently with the rest). The [`runner`](crate::runner) executes all of it.

mod capture;
mod expect;

pub(crate) use capture::render_json as render_json_body;
pub use capture::{Capture, CaptureSource, Captures, MissingCapture, Template, Value};
pub use expect::{EXCERPT_LIMIT, Expect, Mismatch, Response, excerpt};

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a check is about. Reports and `--category` use the lowercase names.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// The site's HTML pages answer.
    Pages,
    /// The health endpoint says the backend, its database and migrations are fine.
    Health,
    /// Requests are served by the right tier (nginx or Django), redirects and headers.
    Routing,
    /// Shows and bookings: creation, validation, capacity, cleanup.
    Booking,
    /// The confirmation email, its token, and the tickets email with the QR code.
    Confirmation,
    /// Scanning the QR code at the door.
    Checkin,
    /// HTTP basic auth in front of a virtual host.
    Auth,
    /// A rate limit: enforced under a burst, never refusing normal traffic.
    #[serde(rename = "rate_limit")]
    #[value(name = "rate_limit")]
    RateLimit,
    /// Websocket routes: the upgrade passes the proxy and messages flow.
    Websocket,
    /// Results the release gate adds about the stack itself (never run by the runner).
    #[value(skip)]
    Infra,
}

impl Category {
    /// The categories the runner runs, in report order.
    pub const RUNNABLE: [Category; 9] = [
        Category::Pages,
        Category::Health,
        Category::Routing,
        Category::Booking,
        Category::Confirmation,
        Category::Checkin,
        Category::Auth,
        Category::RateLimit,
        Category::Websocket,
    ];

    /// The lowercase name used in check names, reports and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Pages => "pages",
            Category::Health => "health",
            Category::Routing => "routing",
            Category::Booking => "booking",
            Category::Confirmation => "confirmation",
            Category::Checkin => "checkin",
            Category::Auth => "auth",
            Category::RateLimit => "rate_limit",
            Category::Websocket => "websocket",
            Category::Infra => "infra",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a category name that does not exist.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "unknown category `{0}` (expected one of: pages, health, routing, booking, confirmation, checkin, auth, rate_limit, websocket)"
)]
pub struct UnknownCategory(pub String);

impl FromStr for Category {
    type Err = UnknownCategory;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::RUNNABLE
            .into_iter()
            .chain([Category::Infra])
            .find(|c| c.as_str() == s.trim())
            .ok_or_else(|| UnknownCategory(s.trim().to_owned()))
    }
}

/// Which base URL a request goes to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// The target's base URL (HTTPS on a real site).
    #[default]
    Base,
    /// The target's plain-HTTP URL; steps using it are skipped when none was given.
    Http,
}

/// Whether a request carries the staff token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// `Authorization: Token <staff token>`; the step is skipped when no token was given.
    Staff,
    /// Nothing at all, not even the virtual host's basic auth credentials (to see the 401).
    Anonymous,
}

/// A request body. Strings inside a JSON body are templates too.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Sent as `application/json`; every string value is rendered as a [`Template`].
    Json(serde_json::Value),
    /// Sent as is, after rendering.
    Text(Template),
}

/// An HTTP request, relative to the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query, e.g. `/api/shows/{{show_id}}/`.
    pub path: Template,
    /// Extra headers.
    pub headers: Vec<(String, Template)>,
    /// The body, if any.
    pub body: Option<Body>,
    /// Whether the staff token is sent.
    pub auth: Auth,
    /// Which base URL the path is joined to.
    pub scheme: Scheme,
    /// Whether redirects are followed (at most ten; a loop fails the step). Checks that expect
    /// a redirect set this to `false` to see it.
    pub follow_redirects: bool,
    /// The virtual host (its [`VirtualHost::name`]) the request is for; `None`: the base URL.
    pub host: Option<String>,
}

impl Request {
    /// A `GET` of `path` that follows redirects.
    pub fn get(path: &str) -> Self {
        Request {
            method: "GET".to_owned(),
            path: Template::new(path),
            headers: Vec::new(),
            body: None,
            auth: Auth::None,
            scheme: Scheme::Base,
            follow_redirects: true,
            host: None,
        }
    }

    /// The same request, for the virtual host named `host`.
    pub fn for_host(mut self, host: Option<&str>) -> Self {
        self.host = host.map(str::to_owned);
        self
    }

    /// A request with a JSON body.
    pub fn json(method: &str, path: &str, body: serde_json::Value) -> Self {
        Request {
            method: method.to_owned(),
            body: Some(Body::Json(body)),
            ..Request::get(path)
        }
    }

    /// The same request with the staff token.
    pub fn with_staff(mut self) -> Self {
        self.auth = Auth::Staff;
        self
    }

    /// The same request, not following redirects.
    pub fn without_redirects(mut self) -> Self {
        self.follow_redirects = false;
        self
    }

    /// The same request, sent to the plain-HTTP URL.
    pub fn over_http(mut self) -> Self {
        self.scheme = Scheme::Http;
        self
    }

    /// Every capture name the request uses.
    pub fn capture_names(&self) -> Vec<String> {
        let mut names = self.path.names();
        for (_, value) in &self.headers {
            names.extend(value.names());
        }
        match &self.body {
            Some(Body::Json(value)) => names.extend(capture::json_template_names(value)),
            Some(Body::Text(text)) => names.extend(text.names()),
            None => {}
        }
        names
    }
}

/// A request, what its response must meet, and what to capture from it.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpStep {
    /// What is sent.
    pub request: Request,
    /// What the response must meet, all of it.
    pub expects: Vec<Expect>,
    /// Values taken from the response for later steps.
    pub captures: Vec<Capture>,
    /// What undoes this step's effect (e.g. `DELETE /api/shows/{{show_id}}/`), recorded in the
    /// cleanup ledger as soon as the step's captures are known.
    pub cleanup: Option<Request>,
    /// After the response: how many emails must match (e.g. exactly one tickets email after a
    /// second confirmation).
    pub then_mail_count: Option<MailCount>,
}

impl HttpStep {
    /// A request with expectations, nothing captured.
    pub fn new(request: Request, expects: Vec<Expect>) -> Self {
        HttpStep {
            request,
            expects,
            captures: Vec::new(),
            cleanup: None,
            then_mail_count: None,
        }
    }

    /// Adds captures.
    pub fn with_captures(mut self, captures: Vec<Capture>) -> Self {
        self.captures = captures;
        self
    }

    /// Records `request` in the cleanup ledger once this step has run.
    pub fn with_cleanup(mut self, request: Request) -> Self {
        self.cleanup = Some(request);
        self
    }

    /// Requires that exactly `count` emails match afterwards.
    pub fn with_mail_count(mut self, query: MailTemplate, count: usize) -> Self {
        self.then_mail_count = Some(MailCount { query, count });
        self
    }
}

/// Which email to look for; both fields are templates.
#[derive(Debug, Clone, PartialEq)]
pub struct MailTemplate {
    /// The recipient address.
    pub to: Template,
    /// A substring of the subject.
    pub subject_contains: Template,
}

/// "Exactly `count` emails match `query`."
#[derive(Debug, Clone, PartialEq)]
pub struct MailCount {
    /// Which emails.
    pub query: MailTemplate,
    /// How many.
    pub count: usize,
}

/// Waits for an email and captures from it.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailStep {
    /// Which email.
    pub query: MailTemplate,
    /// Regex captures on the text body: (capture name, regex with one group).
    pub text_captures: Vec<(String, String)>,
    /// Capture the bytes of the first attachment whose file name starts with the prefix and
    /// whose content type is `image/png`: (capture name, file name prefix template).
    pub png_attachment: Option<(String, Template)>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// One request and its expectations.
    Http(HttpStep),
    /// Wait for an email (needs a mailbox).
    Email(EmailStep),
    /// The captured token decodes (URL-safe base64) to at least `min_bytes` bytes.
    TokenStrength {
        /// The capture holding the token.
        token: String,
        /// The least number of random bytes.
        min_bytes: usize,
    },
    /// Decode the QR code in a captured PNG, store its payload, and check that it reveals
    /// none of the needles (raw or encoded).
    QrNoPersonalData {
        /// The capture holding the PNG bytes.
        png: String,
        /// Where the decoded payload goes.
        into: String,
        /// Personal data that must not appear (templates: the visitor's name and email).
        needles: Vec<Template>,
    },
    /// `count` copies of `request` at once (`{{i}}` is the copy's index); the statuses must be
    /// distributed exactly as `statuses` says, no 5xx; then `verify` runs.
    Burst {
        /// The request sent `count` times.
        request: Request,
        /// How many at once.
        count: usize,
        /// (status, how many) pairs that must add up to `count`.
        statuses: Vec<(u16, usize)>,
        /// A follow-up request (e.g. `seats_left` is 0).
        verify: Option<HttpStep>,
    },
    /// Undo what this scenario recorded in the cleanup ledger.
    Cleanup,
    /// A websocket upgrade through the proxy, one message sent, an answer containing a text.
    WebSocket(WebSocketStep),
    /// Exactly `burst` copies of `request` at once: at least one must be refused with
    /// `refused_status`, none may be another 5xx.
    RateLimitBurst {
        /// The request sent `burst` times.
        request: Request,
        /// How many at once, never more.
        burst: usize,
        /// The status of a refused request (429, or nginx's default 503).
        refused_status: u16,
    },
    /// `count` copies of `request`, one every `interval`: none may be refused or a 5xx.
    SpacedRequests {
        /// The request.
        request: Request,
        /// How many.
        count: usize,
        /// The pause between two.
        interval: Duration,
        /// The status a refusal would have.
        refused_status: u16,
    },
}

/// A websocket check: upgrade, send one text message, expect an answer containing a text.
#[derive(Debug, Clone, PartialEq)]
pub struct WebSocketStep {
    /// The upgrade request (`GET`, its path, its virtual host); `ws://` or `wss://` follows the
    /// base URL's scheme.
    pub request: Request,
    /// The text message sent after the upgrade.
    pub send: Template,
    /// What one received message must contain.
    pub expect_contains: Template,
    /// The subprotocol asked for (`Sec-WebSocket-Protocol`), which the answer must select.
    pub subprotocol: Option<String>,
}

/// A virtual host served at the target's address: requests for it go to
/// `{scheme}://{host}:{port of the base URL}/` with `host` resolved to the base URL's address,
/// so the `Host` header and the TLS server name are the virtual host's (like `curl --resolve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualHost {
    /// The short name prefixing its checks, e.g. `staging`.
    pub name: String,
    /// The host name, e.g. `staging.multienv.test`.
    pub host: String,
    /// The basic auth credentials every request to it sends, read from the environment.
    pub basic_auth: Option<BasicAuthEnv>,
    /// The "deployment in progress" page it may serve.
    pub placeholder: Option<Placeholder>,
}

/// Where basic auth credentials come from: two environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuthEnv {
    /// The variable holding the user name.
    pub user_env: String,
    /// The variable holding the password (masked everywhere once read).
    pub password_env: String,
}

/// The maintenance page a stack serves while it is being deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// Its status, e.g. 503.
    pub status: u16,
    /// A text its body contains, e.g. `Deployment in progress`.
    pub contains: String,
}

impl Placeholder {
    /// Whether `response` is this placeholder page.
    pub fn matches(&self, response: &Response) -> bool {
        response.status == self.status && response.text().contains(&self.contains)
    }
}

/// One named check: a step of a scenario or an independent check.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The stable, dotted `category.name`.
    pub name: String,
    /// Its category.
    pub category: Category,
    /// What a pass proves, one sentence (shown by `smoke list`).
    pub proves: String,
    /// Steps that must have passed first (besides those producing the captures it uses).
    pub after: Vec<String>,
    /// The largest acceptable latency for each request, if any.
    pub max_latency: Option<Duration>,
    /// What to do.
    pub action: Action,
    /// What to tell the user when it fails.
    pub hint: Option<String>,
}

impl Step {
    /// A step named `category.name`.
    pub fn new(category: Category, name: &str, proves: &str, action: Action) -> Self {
        Step {
            name: format!("{category}.{name}"),
            category,
            proves: proves.to_owned(),
            after: Vec::new(),
            max_latency: None,
            action,
            hint: None,
        }
    }

    /// An HTTP step.
    pub fn http(category: Category, name: &str, proves: &str, step: HttpStep) -> Self {
        Step::new(category, name, proves, Action::Http(step))
    }

    /// Adds the hint shown on failure.
    pub fn with_hint(mut self, hint: &str) -> Self {
        self.hint = Some(hint.to_owned());
        self
    }

    /// Runs only after `names` passed.
    pub fn after(mut self, names: &[&str]) -> Self {
        self.after.extend(names.iter().map(|n| (*n).to_owned()));
        self
    }

    /// Whether the step needs the staff token.
    pub fn needs_staff(&self) -> bool {
        match &self.action {
            Action::Http(http) => http.request.auth == Auth::Staff,
            Action::Burst { request, .. } => request.auth == Auth::Staff,
            Action::Cleanup => true,
            _ => false,
        }
    }

    /// Whether the step needs a mailbox.
    pub fn needs_mailbox(&self) -> bool {
        match &self.action {
            Action::Email(_) => true,
            Action::Http(http) => http.then_mail_count.is_some(),
            _ => false,
        }
    }

    /// The virtual host the step's requests go to, if any.
    pub fn host(&self) -> Option<&str> {
        match &self.action {
            Action::Http(http) => http.request.host.as_deref(),
            Action::Burst { request, .. }
            | Action::RateLimitBurst { request, .. }
            | Action::SpacedRequests { request, .. } => request.host.as_deref(),
            Action::WebSocket(ws) => ws.request.host.as_deref(),
            _ => None,
        }
    }

    /// Whether the step's requests send the virtual host's basic auth credentials.
    pub fn sends_credentials(&self) -> bool {
        let request = match &self.action {
            Action::Http(http) => &http.request,
            Action::Burst { request, .. }
            | Action::RateLimitBurst { request, .. }
            | Action::SpacedRequests { request, .. } => request,
            Action::WebSocket(ws) => &ws.request,
            _ => return false,
        };
        request.host.is_some() && request.auth != Auth::Anonymous
    }

    /// Whether the step needs the plain-HTTP URL.
    pub fn needs_http_url(&self) -> bool {
        matches!(&self.action, Action::Http(http) if http.request.scheme == Scheme::Http)
    }

    /// The capture names the step reads.
    pub fn reads(&self) -> Vec<String> {
        let mut names = match &self.action {
            Action::Http(http) => http_step_reads(http),
            Action::Email(email) => {
                let mut names = email.query.to.names();
                names.extend(email.query.subject_contains.names());
                if let Some((_, prefix)) = &email.png_attachment {
                    names.extend(prefix.names());
                }
                names
            }
            Action::TokenStrength { token, .. } => vec![token.clone()],
            Action::QrNoPersonalData { png, needles, .. } => {
                let mut names = vec![png.clone()];
                names.extend(needles.iter().flat_map(Template::names));
                names
            }
            Action::Burst {
                request, verify, ..
            } => {
                let mut names = request.capture_names();
                names.extend(verify.iter().flat_map(http_step_reads));
                names
            }
            Action::WebSocket(ws) => {
                let mut names = ws.request.capture_names();
                names.extend(ws.send.names());
                names.extend(ws.expect_contains.names());
                names
            }
            Action::RateLimitBurst { request, .. } | Action::SpacedRequests { request, .. } => {
                request.capture_names()
            }
            Action::Cleanup => Vec::new(),
        };
        names.retain(|n| n != "i");
        names.sort();
        names.dedup();
        names
    }

    /// The capture names the step writes.
    pub fn writes(&self) -> Vec<String> {
        match &self.action {
            Action::Http(http) => http.captures.iter().map(|c| c.name.clone()).collect(),
            Action::Email(email) => email
                .text_captures
                .iter()
                .map(|(n, _)| n.clone())
                .chain(email.png_attachment.iter().map(|(n, _)| n.clone()))
                .collect(),
            Action::QrNoPersonalData { into, .. } => vec![into.clone()],
            _ => Vec::new(),
        }
    }
}

fn http_step_reads(http: &HttpStep) -> Vec<String> {
    let mut names = http.request.capture_names();
    for expect in &http.expects {
        names.extend(expect.capture_names());
    }
    if let Some(count) = &http.then_mail_count {
        names.extend(count.query.to.names());
        names.extend(count.query.subject_contains.names());
    }
    names
}

/// An ordered chain of steps sharing captures.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// A name for logs.
    pub name: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// How readiness is judged: a `GET` of `path` (on `host`, when set) meeting `expects`.
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    /// The health path, e.g. `/api/health/`.
    pub path: String,
    /// What a ready answer looks like.
    pub expects: Vec<Expect>,
    /// The virtual host asked, when the stack has no top-level health endpoint.
    pub host: Option<String>,
}

/// Everything the runner can run against one kind of stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    /// The stack's name (e.g. `azionelab`).
    pub name: String,
    /// How to tell the stack is ready.
    pub readiness: Readiness,
    /// Independent checks, run concurrently.
    pub checks: Vec<Step>,
    /// Ordered chains, each run in order, concurrently with the rest.
    pub scenarios: Vec<Scenario>,
    /// The virtual hosts requests may name.
    pub hosts: Vec<VirtualHost>,
    /// The maintenance page of the base URL (virtual hosts without their own inherit it).
    pub placeholder: Option<Placeholder>,
    /// The basic auth credentials requests to the base URL send.
    pub basic_auth: Option<BasicAuthEnv>,
}

impl Suite {
    /// Every step in report order: independent checks first, then each scenario's steps.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.checks
            .iter()
            .chain(self.scenarios.iter().flat_map(|s| s.steps.iter()))
    }
}
