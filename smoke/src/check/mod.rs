//! The model: a check is a value, never a hand-written test function.
//!
//! A [`Step`] is one named thing to verify: usually an HTTP request plus the expectations its
//! response must meet ([`HttpStep`]), sometimes an email to wait for, an assertion on a value
//! captured earlier, a QR code to decode or a burst of concurrent requests ([`Action`]). Steps
//! may capture values (an id, a reference, a link read from an email) that later steps use
//! through `{{name}}` [`Template`]s. A [`Scenario`] is an ordered chain of steps sharing
//! captures and a cookie jar; a [`Suite`] is independent checks (run concurrently) plus
//! scenarios (each run in order, concurrently with the rest). The [`runner`](crate::runner)
//! executes all of it. Nothing here knows any particular app: the app is the data.

mod capture;
mod expect;

pub(crate) use capture::render_json as render_json_body;
pub use capture::{Capture, CaptureSource, Captures, MissingCapture, Template, Value};
pub use expect::{
    EXCERPT_LIMIT, Expect, Mismatch, Response, ValueCheck, describe_statuses, excerpt,
};

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which base URL a request goes to.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// The target's base URL (HTTPS on a real site).
    #[default]
    Base,
    /// The target's plain-HTTP URL; steps using it are skipped when none was given.
    Http,
}

/// Credentials a request sends, as named in the checks file's `[credentials]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The name requests use (`auth = "staff"`).
    pub name: String,
    /// What is sent.
    pub kind: CredentialKind,
}

/// How credentials are sent; every rendered value is masked everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialKind {
    /// One header, e.g. `Authorization: Token {{secret.SMOKE_STAFF_TOKEN}}`.
    Header {
        /// The header name.
        name: String,
        /// Its value (a template, usually reading a secret).
        value: Template,
    },
    /// HTTP basic auth.
    Basic {
        /// The user name.
        user: Template,
        /// The password.
        password: Template,
    },
}

impl Credential {
    /// The template names the credential reads.
    pub fn names(&self) -> Vec<String> {
        match &self.kind {
            CredentialKind::Header { value, .. } => value.names(),
            CredentialKind::Basic { user, password } => {
                let mut names = user.names();
                names.extend(password.names());
                names
            }
        }
    }
}

/// What a request authenticates with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// The site's own basic auth credentials when it has some, nothing else.
    #[default]
    Default,
    /// Nothing at all, not even the virtual host's basic auth credentials (to see the 401).
    Anonymous,
    /// Named credentials from the checks file.
    Credential(Credential),
}

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The form field name.
    pub name: String,
    /// Its value.
    pub value: PartValue,
}

/// A multipart part's value: text, or a file read from the checks file's folder.
#[derive(Debug, Clone, PartialEq)]
pub enum PartValue {
    /// A text field (a template).
    Text(Template),
    /// A file upload.
    File {
        /// The bytes, read when the checks file was loaded.
        bytes: Arc<Vec<u8>>,
        /// The file name sent.
        file_name: String,
        /// Its content type.
        content_type: String,
    },
}

/// A request body. Strings inside are templates.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Sent as `application/json`; every string value is rendered as a [`Template`].
    Json(serde_json::Value),
    /// Sent as is, after rendering.
    Text(Template),
    /// `application/x-www-form-urlencoded`.
    Form(Vec<(String, Template)>),
    /// `multipart/form-data`.
    Multipart(Vec<Part>),
    /// This many bytes of filler (`x`), to probe a request size limit.
    Filler(usize),
}

/// An HTTP request, relative to the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query, e.g. `/api/shows/{{show_id}}/`, or an absolute URL when `absolute`.
    pub path: Template,
    /// `path` is an absolute URL (a link read from an email); its origin must be the site's
    /// public URL or the base URL, and is sent to the base URL.
    pub absolute: bool,
    /// Extra headers.
    pub headers: Vec<(String, Template)>,
    /// The body, if any.
    pub body: Option<Body>,
    /// What it authenticates with.
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
            absolute: false,
            headers: Vec::new(),
            body: None,
            auth: Auth::Default,
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

    /// The same request with these credentials.
    pub fn with_credential(mut self, credential: Credential) -> Self {
        self.auth = Auth::Credential(credential);
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

    /// Whether a browser would send it with an `Origin` (and Django checks its CSRF token).
    pub fn is_unsafe(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS" | "TRACE")
    }

    /// Every template name the request uses, its credentials' included.
    pub fn capture_names(&self) -> Vec<String> {
        let mut names = self.path.names();
        for (_, value) in &self.headers {
            names.extend(value.names());
        }
        match &self.body {
            Some(Body::Json(value)) => names.extend(capture::json_template_names(value)),
            Some(Body::Text(text)) => names.extend(text.names()),
            Some(Body::Form(fields)) => names.extend(fields.iter().flat_map(|(_, v)| v.names())),
            Some(Body::Multipart(parts)) => {
                for part in parts {
                    if let PartValue::Text(text) = &part.value {
                        names.extend(text.names());
                    }
                }
            }
            Some(Body::Filler(_)) | None => {}
        }
        if let Auth::Credential(credential) = &self.auth {
            names.extend(credential.names());
        }
        names
    }

    /// The credentials' name, when it sends named credentials.
    pub fn credential(&self) -> Option<&str> {
        match &self.auth {
            Auth::Credential(c) => Some(&c.name),
            _ => None,
        }
    }
}

/// A request, what its response must meet, and what to capture from it.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpStep {
    /// What is sent.
    pub request: Request,
    /// More paths sent the same way and held to the same expectations (security headers on
    /// every kind of answer, several URLs that must all refuse).
    pub more_paths: Vec<Template>,
    /// What the response must meet, all of it.
    pub expects: Vec<Expect>,
    /// Values taken from the response for later steps.
    pub captures: Vec<Capture>,
    /// What undoes this step's effect (e.g. `DELETE /api/shows/{{show_id}}/`), recorded in the
    /// cleanup ledger as soon as the step's captures are known.
    pub undo: Option<Request>,
    /// After the response: how many emails must match (e.g. exactly one tickets email after a
    /// second confirmation).
    pub then_emails: Option<MailCount>,
    /// Fetch the same-origin scripts and stylesheets an HTML answer references: each must be
    /// served as itself (200, a script or style content type), not as the site's index.
    pub assets: bool,
    /// (header, text its value contains) on each of those assets (case-insensitive).
    pub asset_headers: Vec<(String, String)>,
}

impl HttpStep {
    /// A request with expectations, nothing captured.
    pub fn new(request: Request, expects: Vec<Expect>) -> Self {
        HttpStep {
            request,
            more_paths: Vec::new(),
            expects,
            captures: Vec::new(),
            undo: None,
            then_emails: None,
            assets: false,
            asset_headers: Vec::new(),
        }
    }

    /// Adds captures.
    pub fn with_captures(mut self, captures: Vec<Capture>) -> Self {
        self.captures = captures;
        self
    }

    /// Records `request` in the cleanup ledger once this step has run.
    pub fn with_undo(mut self, request: Request) -> Self {
        self.undo = Some(request);
        self
    }

    /// Requires that exactly `count` emails match afterwards.
    pub fn with_mail_count(mut self, query: MailTemplate, count: usize) -> Self {
        self.then_emails = Some(MailCount { query, count });
        self
    }

    fn reads(&self) -> Vec<String> {
        let mut names = self.request.capture_names();
        names.extend(self.more_paths.iter().flat_map(Template::names));
        for expect in &self.expects {
            names.extend(expect.capture_names());
        }
        if let Some(count) = &self.then_emails {
            names.extend(count.query.names());
        }
        if let Some(undo) = &self.undo {
            // The undo request's own captures come from this step; its credentials do not.
            if let Auth::Credential(credential) = &undo.auth {
                names.extend(credential.names());
            }
        }
        names
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

impl MailTemplate {
    fn names(&self) -> Vec<String> {
        let mut names = self.to.names();
        names.extend(self.subject_contains.names());
        names
    }
}

/// "Exactly `count` emails match `query`."
#[derive(Debug, Clone, PartialEq)]
pub struct MailCount {
    /// Which emails.
    pub query: MailTemplate,
    /// How many.
    pub count: usize,
}

/// Where a value captured from an email comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum EmailSource {
    /// The first group of a regex over the text body.
    Text(String),
    /// The first group of a regex over the HTML body.
    Html(String),
    /// The bytes of the first attachment whose file name starts with the prefix (when given)
    /// and whose content type starts with the type (when given).
    Attachment {
        /// The file name's start, a template.
        name_prefix: Option<Template>,
        /// The content type's start, e.g. `image/png`.
        content_type: Option<String>,
    },
}

/// Waits for an email and captures from it.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailStep {
    /// Which email.
    pub query: MailTemplate,
    /// What to capture: (capture name, where from).
    pub captures: Vec<(String, EmailSource)>,
}

/// An assertion on a value captured earlier (a link's origin, a code's shape).
#[derive(Debug, Clone, PartialEq)]
pub struct AssertStep {
    /// The value, a template.
    pub value: Template,
    /// What it must meet, all of it.
    pub checks: Vec<ValueCheck>,
}

/// Where a QR code's image comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum QrSource {
    /// A bytes capture (an email attachment).
    Capture(String),
    /// An image fetched with a request (a link from an email).
    Request(Request),
}

/// Decodes a QR code, optionally captures its payload, and checks what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct QrStep {
    /// The image.
    pub source: QrSource,
    /// Where the decoded payload goes.
    pub capture: Option<String>,
    /// Values the payload must not reveal, raw or encoded (the visitor's name and email).
    pub not_revealing: Vec<Template>,
    /// A value the payload must equal (the code of another copy of the ticket).
    pub equals: Option<Template>,
}

/// `count` copies of a request at once.
#[derive(Debug, Clone, PartialEq)]
pub struct BurstStep {
    /// The request sent `count` times (`{{i}}` is the copy's index).
    pub request: Request,
    /// How many at once.
    pub count: usize,
    /// (status, how many) pairs that must add up to `count`.
    pub statuses: Vec<(u16, usize)>,
    /// A follow-up request (e.g. no seat is left).
    pub then: Option<Box<HttpStep>>,
}

/// A page opened in a real browser (headless Chromium): it must render what `waits` name,
/// survive its `actions`, and log no error on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct BrowserStep {
    /// The page: a `GET` of a path, or of an absolute link on the site's public origin.
    pub request: Request,
    /// What the page must show once loaded, in order, before the actions.
    pub waits: Vec<BrowserAction>,
    /// What a visitor does next, in order (clicks, typing, more waits).
    pub actions: Vec<BrowserAction>,
    /// The deadline of the whole visit.
    pub timeout: Duration,
    /// Console and network errors matching one of these regexes are logged, not failed.
    pub allow_errors: Vec<String>,
}

/// One thing a visitor does or sees in a browser check.
#[derive(Debug, Clone, PartialEq)]
pub enum BrowserAction {
    /// An element matching the CSS selector becomes visible, with the text when given.
    WaitFor {
        /// The CSS selector.
        selector: String,
        /// A text the element's content must contain (a template).
        text: Option<Template>,
    },
    /// The page's visible text contains this (a template).
    WaitText(Template),
    /// A real mouse click in the middle of the element (which must be visible and enabled).
    Click(String),
    /// Types the value into the field, as keystrokes.
    Fill {
        /// The field's CSS selector.
        selector: String,
        /// What to type (a template).
        value: Template,
    },
    /// Presses a key (`Enter`, `Tab`, ...) in the focused element.
    Press(String),
}

impl BrowserAction {
    /// The template names it reads.
    pub fn reads(&self) -> Vec<String> {
        match self {
            BrowserAction::WaitFor {
                text: Some(text), ..
            }
            | BrowserAction::WaitText(text)
            | BrowserAction::Fill { value: text, .. } => text.names(),
            _ => Vec::new(),
        }
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// One request (or the same one on several paths) and its expectations.
    Http(Box<HttpStep>),
    /// Wait for an email (needs a mailbox).
    Email(EmailStep),
    /// Check a captured value.
    Assert(AssertStep),
    /// The value decodes (URL-safe base64) to at least `min_bytes` bytes.
    Token {
        /// The value, a template.
        value: Template,
        /// The least number of random bytes.
        min_bytes: usize,
    },
    /// Decode a QR code.
    Qr(QrStep),
    /// Concurrent copies of one request; the statuses must be distributed exactly.
    Burst(BurstStep),
    /// Undo what this scenario recorded in the cleanup ledger.
    Cleanup,
    /// A websocket upgrade through the proxy, one message sent, an answer containing a text.
    WebSocket(WebSocketStep),
    /// A page in a real browser.
    Browser(Box<BrowserStep>),
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
    /// The header only its backend sets.
    pub marker: Option<BackendMarker>,
}

/// Where basic auth credentials come from: two environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuthEnv {
    /// The variable holding the user name.
    pub user_env: String,
    /// The variable holding the password (masked everywhere once read).
    pub password_env: String,
}

/// The header only the backend sets, so an answer tells who produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendMarker {
    /// Its name, e.g. `X-Backend`.
    pub header: String,
    /// Its value when it must be one, e.g. `django`.
    pub value: Option<String>,
}

impl BackendMarker {
    /// Whether `response` carries the marker.
    pub fn on(&self, response: &Response) -> bool {
        match (response.header(&self.header), &self.value) {
            (Some(actual), Some(value)) => actual.trim().eq_ignore_ascii_case(value),
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
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
    /// The stable, dotted name: `category.name`, prefixed by a virtual host's name.
    pub name: String,
    /// Its category, a name from the data (`pages`, `booking`, ...).
    pub category: String,
    /// What a pass proves, one sentence (shown by `smoke list`).
    pub proves: String,
    /// Steps that must have passed first (besides those producing the captures it uses).
    pub after: Vec<String>,
    /// What to do.
    pub action: Action,
    /// What to tell the user when its own expectations are not met.
    pub hint: Option<String>,
}

impl Step {
    /// A step named `category.name`.
    pub fn new(category: &str, name: &str, proves: &str, action: Action) -> Self {
        Step {
            name: format!("{category}.{name}"),
            category: category.to_owned(),
            proves: proves.to_owned(),
            after: Vec::new(),
            action,
            hint: None,
        }
    }

    /// An HTTP step.
    pub fn http(category: &str, name: &str, proves: &str, step: HttpStep) -> Self {
        Step::new(category, name, proves, Action::Http(Box::new(step)))
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

    /// The requests the step sends (the first one decides its host and scheme).
    pub fn requests(&self) -> Vec<&Request> {
        match &self.action {
            Action::Http(http) => vec![&http.request],
            Action::Burst(burst) => {
                let mut requests = vec![&burst.request];
                requests.extend(burst.then.iter().map(|t| &t.request));
                requests
            }
            Action::RateLimitBurst { request, .. } | Action::SpacedRequests { request, .. } => {
                vec![request]
            }
            Action::WebSocket(ws) => vec![&ws.request],
            Action::Browser(browser) => vec![&browser.request],
            Action::Qr(QrStep {
                source: QrSource::Request(request),
                ..
            }) => vec![request],
            _ => Vec::new(),
        }
    }

    /// The named credentials the step's requests send.
    pub fn credentials(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .requests()
            .into_iter()
            .filter_map(Request::credential)
            .collect();
        names.dedup();
        names
    }

    /// Whether the step needs a browser.
    pub fn needs_browser(&self) -> bool {
        matches!(self.action, Action::Browser(_))
    }

    /// Whether the step needs a mailbox.
    pub fn needs_mailbox(&self) -> bool {
        match &self.action {
            Action::Email(_) => true,
            Action::Http(http) => http.then_emails.is_some(),
            _ => false,
        }
    }

    /// The virtual host the step's requests go to, if any.
    pub fn host(&self) -> Option<&str> {
        self.requests().first().and_then(|r| r.host.as_deref())
    }

    /// Whether the step's requests send the virtual host's basic auth credentials.
    pub fn sends_credentials(&self) -> bool {
        self.requests()
            .first()
            .is_some_and(|r| r.host.is_some() && r.auth == Auth::Default)
    }

    /// Whether the step needs the plain-HTTP URL.
    pub fn needs_http_url(&self) -> bool {
        self.requests().iter().any(|r| r.scheme == Scheme::Http)
    }

    /// The template names the step reads.
    pub fn reads(&self) -> Vec<String> {
        let mut names = match &self.action {
            Action::Http(http) => http.reads(),
            Action::Email(email) => {
                let mut names = email.query.names();
                for (_, source) in &email.captures {
                    if let EmailSource::Attachment {
                        name_prefix: Some(prefix),
                        ..
                    } = source
                    {
                        names.extend(prefix.names());
                    }
                }
                names
            }
            Action::Assert(assert) => {
                let mut names = assert.value.names();
                names.extend(assert.checks.iter().flat_map(ValueCheck::names));
                names
            }
            Action::Token { value, .. } => value.names(),
            Action::Qr(qr) => {
                let mut names = match &qr.source {
                    QrSource::Capture(name) => vec![name.clone()],
                    QrSource::Request(request) => request.capture_names(),
                };
                names.extend(qr.not_revealing.iter().flat_map(Template::names));
                names.extend(qr.equals.iter().flat_map(Template::names));
                names
            }
            Action::Burst(burst) => {
                let mut names = burst.request.capture_names();
                names.extend(burst.then.iter().flat_map(|t| t.reads()));
                names
            }
            Action::WebSocket(ws) => {
                let mut names = ws.request.capture_names();
                names.extend(ws.send.names());
                names.extend(ws.expect_contains.names());
                names
            }
            Action::Browser(browser) => {
                let mut names = browser.request.capture_names();
                names.extend(
                    browser
                        .waits
                        .iter()
                        .chain(&browser.actions)
                        .flat_map(BrowserAction::reads),
                );
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
            Action::Email(email) => email.captures.iter().map(|(n, _)| n.clone()).collect(),
            Action::Qr(qr) => qr.capture.iter().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the step records something in the cleanup ledger.
    pub fn creates(&self) -> bool {
        matches!(&self.action, Action::Http(h) if h.undo.is_some())
    }
}

/// An ordered chain of steps sharing captures and a cookie jar.
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
    /// Values every template may use, rendered in order at the start of a run (`[values]`).
    pub values: Vec<(String, Template)>,
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
    /// The header only the backend sets at the base URL.
    pub marker: Option<BackendMarker>,
}

impl Suite {
    /// Every step in report order: independent checks first, then each scenario's steps.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.checks
            .iter()
            .chain(self.scenarios.iter().flat_map(|s| s.steps.iter()))
    }

    /// The categories of the suite's steps, in report order.
    pub fn categories(&self) -> Vec<&str> {
        let mut categories: Vec<&str> = Vec::new();
        for step in self.steps() {
            if !categories.contains(&step.category.as_str()) {
                categories.push(&step.category);
            }
        }
        categories
    }
}
