//! The checks file as written: every table and key, with what it means. Serde reads it (every
//! table rejects unknown keys, so a typo fails loudly) and schemars publishes it as a JSON
//! Schema (`smoke schema checks`) so that editors complete it. [`super::lower`] turns it into
//! a [`crate::check::Suite`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::check::Scheme;

/// A checks file: what to prove about a site. Data only; `smoke run --checks FILE` runs it
/// against any base URL, and the release gate runs it against the stack it started.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecksFile {
    /// The format version; this build reads 1.
    pub version: u32,
    /// The stack's name, for reports.
    pub name: String,
    /// Values every template may use as `{{name}}` (may use `{{run_id}}`, `{{env.NAME}}` and
    /// each other), e.g. a unique email address per run.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// Named credentials a request sends with `auth = "<name>"`.
    #[serde(default)]
    pub credentials: BTreeMap<String, CredentialSpec>,
    /// The header only the backend sets, so checks can tell who answered.
    #[serde(default)]
    pub backend_marker: Option<BackendMarkerSpec>,
    /// The health endpoint: readiness, and the check `health.<name>`.
    #[serde(default)]
    pub health: Option<HealthSpec>,
    /// Pages: each is the check `pages.<name>`.
    #[serde(default)]
    pub pages: Vec<RouteSpec>,
    /// Routes: each is the check `routing.<name>`.
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    /// Websocket routes: each is the check `websocket.<name>`.
    #[serde(default)]
    pub websockets: Vec<WebSocketSpec>,
    /// Basic auth in front of the base URL.
    #[serde(default)]
    pub basic_auth: Option<BasicAuthSpec>,
    /// A rate limit at the base URL.
    #[serde(default)]
    pub rate_limit: Option<RateLimitSpec>,
    /// The maintenance page served during deployments (inherited by hosts).
    #[serde(default)]
    pub placeholder: Option<PlaceholderSpec>,
    /// Virtual hosts behind the same address.
    #[serde(default)]
    pub hosts: Vec<HostSpec>,
    /// Independent checks, run concurrently; each is one step.
    #[serde(default)]
    pub checks: Vec<StepSpec>,
    /// Flows: ordered steps sharing captured values and a cookie jar.
    #[serde(default)]
    pub scenarios: Vec<ScenarioSpec>,
}

/// A virtual host: the same tables as the top level, its checks prefixed by its name.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Prefixes its checks: `staging.pages.home`.
    pub name: String,
    /// The host name, e.g. `staging.example.com`.
    pub host: String,
    #[serde(default)]
    pub backend_marker: Option<BackendMarkerSpec>,
    #[serde(default)]
    pub health: Option<HealthSpec>,
    #[serde(default)]
    pub pages: Vec<RouteSpec>,
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    #[serde(default)]
    pub websockets: Vec<WebSocketSpec>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuthSpec>,
    #[serde(default)]
    pub rate_limit: Option<RateLimitSpec>,
    #[serde(default)]
    pub placeholder: Option<PlaceholderSpec>,
}

/// Credentials: one header, or basic auth. Values are templates, usually reading a secret
/// (`{{secret.SMOKE_STAFF_TOKEN}}`); every rendered value is masked everywhere.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialSpec {
    /// The header's name, e.g. `Authorization`.
    #[serde(default)]
    pub header: Option<String>,
    /// The header's value, e.g. `Token {{secret.SMOKE_STAFF_TOKEN}}`.
    #[serde(default)]
    pub value: Option<String>,
    /// Basic auth instead of a header.
    #[serde(default)]
    pub basic: Option<BasicCredentialSpec>,
}

/// `basic = { user = "...", password = "{{secret.PASSWORD}}" }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicCredentialSpec {
    pub user: String,
    pub password: String,
}

/// Basic auth in front of a site, from two environment variables.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthSpec {
    /// The variable holding the user name.
    pub user_env: String,
    /// The variable holding the password (masked).
    pub password_env: String,
    /// What `auth.required` asks without credentials (default `/`).
    #[serde(default)]
    pub path: Option<String>,
}

/// A rate limit: a burst must see refusals, normal traffic must not.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    pub path: String,
    /// Exactly this many requests at once.
    pub burst: usize,
    /// The status of a refused request (default 429).
    #[serde(default = "default_refused")]
    pub refused_status: u16,
    /// How many spaced requests must pass (default 3).
    #[serde(default = "default_normal_requests")]
    pub normal_requests: usize,
    /// Their spacing in milliseconds (default 1000).
    #[serde(default = "default_normal_interval")]
    pub normal_interval_ms: u64,
}

fn default_refused() -> u16 {
    429
}

fn default_normal_requests() -> usize {
    3
}

fn default_normal_interval() -> u64 {
    1000
}

/// The "deployment in progress" page.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceholderSpec {
    #[serde(default = "default_placeholder_status")]
    pub status: u16,
    pub contains: String,
}

fn default_placeholder_status() -> u16 {
    503
}

/// A websocket route.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebSocketSpec {
    pub name: String,
    pub path: String,
    #[serde(default = "default_ws_send")]
    pub send: String,
    pub expect_contains: String,
    #[serde(default)]
    pub subprotocol: Option<String>,
    #[serde(default)]
    pub proves: Option<String>,
    #[serde(default)]
    pub hint: Option<String>,
}

fn default_ws_send() -> String {
    "smoke {{run_id}}".to_owned()
}

/// The header only the backend sets.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendMarkerSpec {
    pub header: String,
    /// Its value when it must be one; any value counts without it.
    #[serde(default)]
    pub value: Option<String>,
}

/// The health endpoint.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    /// The check's name after `health.` (default `ok`).
    #[serde(default)]
    pub name: Option<String>,
    pub path: String,
    #[serde(default)]
    pub proves: Option<String>,
    #[serde(default)]
    pub status: Option<StatusSpec>,
    #[serde(default)]
    pub content_type: Option<String>,
    /// JSON pointer = value.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub json: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub contains: Vec<String>,
    #[serde(default)]
    pub hint: Option<String>,
}

/// One status (`200`), a class (`"4xx"`), or a list of them (`[401, 403]`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StatusSpec {
    One(StatusItem),
    Any(Vec<StatusItem>),
}

/// A status code or a class such as `"4xx"`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StatusItem {
    Code(u16),
    Class(String),
}

/// Defines a table with the expectation keys shared by routes and steps, plus its own.
macro_rules! with_expectations {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
            /// The status (default 200; 301 with `redirect`), a class (`"4xx"`) or a list.
            #[serde(default)]
            pub status: Option<StatusSpec>,
            /// `true`: the backend marker must be on the answer; `false`: absent.
            #[serde(default)]
            pub backend: Option<bool>,
            /// A redirect (not followed) whose `Location` starts with this.
            #[serde(default)]
            pub redirect: Option<String>,
            /// A redirect (not followed) to the same host, path and query over this scheme,
            /// e.g. `"https"`.
            #[serde(default)]
            pub redirects_to_scheme: Option<String>,
            /// The `Content-Type` starts with this.
            #[serde(default)]
            pub content_type: Option<String>,
            /// Texts the body contains.
            #[serde(default)]
            pub contains: Vec<String>,
            /// Texts the body does not contain.
            #[serde(default)]
            pub not_contains: Vec<String>,
            /// Header = exact value (case-insensitive).
            #[serde(default)]
            pub headers: BTreeMap<String, String>,
            /// Header = a text its value contains (case-insensitive).
            #[serde(default)]
            pub headers_contain: BTreeMap<String, String>,
            /// Headers that must be present.
            #[serde(default)]
            pub headers_present: Vec<String>,
            /// Headers that must be absent.
            #[serde(default)]
            pub headers_absent: Vec<String>,
            /// JSON pointer = value (strings are templates).
            #[serde(default)]
            #[schemars(with = "BTreeMap<String, serde_json::Value>")]
            pub json: BTreeMap<String, toml::Value>,
            /// JSON pointers that must hold a value.
            #[serde(default)]
            pub json_exists: Vec<String>,
            /// Where the list of `list_has`, `list_lacks` and `list_items_have` is (a JSON
            /// pointer; default: the body itself).
            #[serde(default)]
            pub list_at: Option<String>,
            /// The list has an item with these values (pointer inside an item = value).
            #[serde(default)]
            #[schemars(with = "BTreeMap<String, serde_json::Value>")]
            pub list_has: BTreeMap<String, toml::Value>,
            /// The list has no item with these values.
            #[serde(default)]
            #[schemars(with = "BTreeMap<String, serde_json::Value>")]
            pub list_lacks: BTreeMap<String, toml::Value>,
            /// Every item of the list has a value at each of these pointers.
            #[serde(default)]
            pub list_items_have: Vec<String>,
            /// The slowest acceptable answer, in milliseconds.
            #[serde(default)]
            pub max_latency_ms: Option<u64>,
        }

        impl $name {
            /// The expectation keys, for lowering.
            pub fn expectations(&self) -> Expectations<'_> {
                Expectations {
                    status: self.status.as_ref(),
                    backend: self.backend,
                    redirect: self.redirect.as_deref(),
                    redirects_to_scheme: self.redirects_to_scheme.as_deref(),
                    content_type: self.content_type.as_deref(),
                    contains: &self.contains,
                    not_contains: &self.not_contains,
                    headers: &self.headers,
                    headers_contain: &self.headers_contain,
                    headers_present: &self.headers_present,
                    headers_absent: &self.headers_absent,
                    json: &self.json,
                    json_exists: &self.json_exists,
                    list_at: self.list_at.as_deref(),
                    list_has: &self.list_has,
                    list_lacks: &self.list_lacks,
                    list_items_have: &self.list_items_have,
                    max_latency_ms: self.max_latency_ms,
                }
            }
        }
    };
}

/// The expectation keys of a route or a step, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    pub status: Option<&'a StatusSpec>,
    pub backend: Option<bool>,
    pub redirect: Option<&'a str>,
    pub redirects_to_scheme: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub contains: &'a [String],
    pub not_contains: &'a [String],
    pub headers: &'a BTreeMap<String, String>,
    pub headers_contain: &'a BTreeMap<String, String>,
    pub headers_present: &'a [String],
    pub headers_absent: &'a [String],
    pub json: &'a BTreeMap<String, toml::Value>,
    pub json_exists: &'a [String],
    pub list_at: Option<&'a str>,
    pub list_has: &'a BTreeMap<String, toml::Value>,
    pub list_lacks: &'a BTreeMap<String, toml::Value>,
    pub list_items_have: &'a [String],
    pub max_latency_ms: Option<u64>,
}

with_expectations! {
    /// A page or a route: one request (or the same one on several paths) and what its answer
    /// must be.
    #[derive(Debug, Clone, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct RouteSpec {
        /// The check's name after the category, `[a-z0-9_]+`.
        #[schemars(with = "String")]
        pub name: Spanned<String>,
        /// The path (and query); `{{run_id}}` and values are replaced.
        pub path: String,
        /// More paths held to the same expectations.
        #[serde(default)]
        pub paths: Vec<String>,
        /// What a pass proves, one sentence (shown by `smoke list`).
        #[serde(default)]
        pub proves: Option<String>,
        /// `GET` by default.
        #[serde(default)]
        pub method: Option<String>,
        /// `base` (default) or `http` (sent to `--http-url`).
        #[serde(default)]
        pub scheme: Scheme,
        /// Extra request headers (e.g. a foreign `Host`).
        #[serde(default)]
        pub request_headers: BTreeMap<String, String>,
        /// Follow redirects (default: yes, unless a redirect is expected).
        #[serde(default)]
        pub follow_redirects: Option<bool>,
        /// Fetch the same-origin scripts and stylesheets an HTML answer references (default:
        /// yes for pages); each must be served as itself, not as the site's index.
        #[serde(default)]
        pub assets: Option<bool>,
        /// Header = a text the value must contain, on each of those scripts and stylesheets,
        /// e.g. `{ "Cache-Control" = "immutable" }` for content-hashed bundles.
        #[serde(default)]
        pub asset_headers_contain: BTreeMap<String, String>,
        /// What to do when it fails.
        #[serde(default)]
        pub hint: Option<String>,
    }
}

with_expectations! {
    /// What an answer must meet (`expect = { ... }` of a step).
    #[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ExpectSpec {}
}

/// A flow: steps run in order, sharing captures and one cookie jar.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// A name for logs.
    pub name: String,
    /// The steps, in order.
    pub steps: Vec<StepSpec>,
}

/// One step (a check): exactly one of `request`, `email`, `assert`, `qr`, `burst`, `token`,
/// `browser`, `cleanup`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// `category.name`, both `[a-z0-9_]+`: the stable name reports and `--category` use.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// What a pass proves, one sentence.
    #[serde(default)]
    pub proves: Option<String>,
    /// What to do when its own expectations are not met.
    #[serde(default)]
    pub hint: Option<String>,
    /// Steps that must have passed first, besides those producing what it reads.
    #[serde(default)]
    pub after: Vec<String>,
    /// An HTTP request.
    #[serde(default)]
    pub request: Option<RequestSpec>,
    /// What the request's answer must meet (default: status 200).
    #[serde(default)]
    pub expect: Option<ExpectSpec>,
    /// Values taken from the answer: name = `{ json = "/id" }`, `{ header = "Location" }`,
    /// `{ cookie = "csrftoken" }` or `{ regex = '...' }` (group 1 over the body).
    #[serde(default)]
    pub capture: BTreeMap<String, CaptureSpec>,
    /// The request that undoes what this one created, recorded as soon as its captures exist.
    #[serde(default)]
    pub undo: Option<RequestSpec>,
    /// After the answer, exactly `count` emails match.
    #[serde(default)]
    pub then_emails: Option<MailCountSpec>,
    /// Fetch the scripts and stylesheets an HTML answer references.
    #[serde(default)]
    pub assets: Option<bool>,
    /// Wait for an email and capture from it.
    #[serde(default)]
    pub email: Option<EmailSpec>,
    /// Check a value captured earlier.
    #[serde(default)]
    pub assert: Option<AssertSpec>,
    /// Decode a QR code.
    #[serde(default)]
    pub qr: Option<QrSpec>,
    /// Many copies of one request at once.
    #[serde(default)]
    pub burst: Option<BurstSpec>,
    /// A value must be random enough.
    #[serde(default)]
    pub token: Option<TokenSpec>,
    /// Open a page in a real browser (headless Chromium).
    #[serde(default)]
    pub browser: Option<BrowserSpec>,
    /// `true`: undo what this scenario recorded so far.
    #[serde(default)]
    pub cleanup: Option<bool>,
}

/// An HTTP request.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// `GET` by default (`POST` with a body).
    #[serde(default)]
    pub method: Option<String>,
    /// The path and query, a template.
    #[serde(default)]
    pub path: Option<String>,
    /// An absolute URL instead (a link from an email); the site's public origin is sent to
    /// the base URL, any other origin fails the step.
    #[serde(default)]
    pub url: Option<String>,
    /// More paths sent the same way, held to the same expectations.
    #[serde(default)]
    pub paths: Vec<String>,
    /// `base` (default) or `http` (sent to `--http-url`).
    #[serde(default)]
    pub scheme: Scheme,
    /// A virtual host's name.
    #[serde(default)]
    pub host: Option<String>,
    /// Credentials: a name from `[credentials]` (`staff` defaults to
    /// `Authorization: Token {{secret.SMOKE_STAFF_TOKEN}}`), or `anonymous` (not even the
    /// site's basic auth).
    #[serde(default)]
    pub auth: Option<String>,
    /// Extra headers (templates).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body; strings are templates, and a string that is exactly one placeholder
    /// holding an integer is sent as a number.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<toml::Value>,
    /// A form body (`application/x-www-form-urlencoded`).
    #[serde(default)]
    pub form: Option<BTreeMap<String, String>>,
    /// A multipart body: field = text, or `{ file = "files/a.png", content_type =
    /// "image/png" }` read from the checks file's folder.
    #[serde(default)]
    pub multipart: Option<BTreeMap<String, PartSpec>>,
    /// A text body.
    #[serde(default)]
    pub body: Option<String>,
    /// A JSON body of this many bytes of filler, to probe a body size limit.
    #[serde(default)]
    pub body_size: Option<usize>,
    /// Follow redirects (default yes).
    #[serde(default)]
    pub follow_redirects: Option<bool>,
}

/// A multipart field: text, or a file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PartSpec {
    Text(String),
    File(FilePartSpec),
}

/// A file upload.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilePartSpec {
    /// Relative to the checks file's folder.
    pub file: String,
    /// Its content type (default: from the extension).
    #[serde(default)]
    pub content_type: Option<String>,
    /// The file name sent (default: the file's).
    #[serde(default)]
    pub file_name: Option<String>,
}

/// Where a captured value comes from: exactly one key.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureSpec {
    /// A JSON pointer into the body.
    #[serde(default)]
    pub json: Option<String>,
    /// A response header.
    #[serde(default)]
    pub header: Option<String>,
    /// A cookie the answer sets.
    #[serde(default)]
    pub cookie: Option<String>,
    /// A regex over the body; group 1 (or the whole match) is captured.
    #[serde(default)]
    pub regex: Option<String>,
}

/// "Exactly `count` emails match."
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MailCountSpec {
    pub to: String,
    pub subject_contains: String,
    pub count: usize,
}

/// Wait for an email.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailSpec {
    /// The recipient, a template (usually a value unique to the run).
    pub to: String,
    /// A text of the subject, a template.
    #[serde(default)]
    pub subject_contains: String,
    /// name = `{ text = '...' }` or `{ html = '...' }` (regex, group 1), or `{ attachment =
    /// "ticket-{{reference}}", content_type = "image/png" }` (its bytes).
    #[serde(default)]
    pub capture: BTreeMap<String, EmailCaptureSpec>,
}

/// Where a value captured from an email comes from.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailCaptureSpec {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
    /// The start of an attachment's file name, a template.
    #[serde(default)]
    pub attachment: Option<String>,
    /// The start of an attachment's content type.
    #[serde(default)]
    pub content_type: Option<String>,
}

/// What a captured value must meet.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertSpec {
    /// The value, a template (e.g. `{{link}}`).
    pub value: String,
    #[serde(default)]
    pub equals: Option<String>,
    #[serde(default)]
    pub starts_with: Option<String>,
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(default)]
    pub not_contains: Option<String>,
    /// A regex it must match.
    #[serde(default)]
    pub matches: Option<String>,
}

/// Decode a QR code from a captured attachment (`from`) or a URL (`url` or `path`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QrSpec {
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    /// Where the decoded payload goes.
    #[serde(default)]
    pub capture: Option<String>,
    /// Values the payload must not reveal, raw or encoded (templates).
    #[serde(default)]
    pub not_revealing: Vec<String>,
    /// A value the payload must equal (a template).
    #[serde(default)]
    pub equals: Option<String>,
}

/// Many copies of one request at once.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BurstSpec {
    pub count: usize,
    /// `{{i}}` is each copy's index.
    pub request: RequestSpec,
    /// status = how many; they must add up to `count`.
    pub statuses: BTreeMap<String, usize>,
    /// A follow-up request and what its answer must meet.
    #[serde(default)]
    pub then: Option<ThenSpec>,
}

/// A follow-up request.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThenSpec {
    pub request: RequestSpec,
    #[serde(default)]
    pub expect: Option<ExpectSpec>,
}

/// A value must decode (URL-safe base64) to at least `min_bytes` bytes.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    pub value: String,
    pub min_bytes: usize,
}

/// A page in a real browser: opened, waited for, acted on. It fails on console errors,
/// uncaught exceptions, same-origin requests answered 4xx/5xx (or a script or stylesheet
/// answered as HTML), failed requests, and mixed content; a failure keeps a screenshot and the
/// page's console and network log.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrowserSpec {
    /// The path (and query) to open, a template.
    #[serde(default)]
    pub path: Option<String>,
    /// An absolute URL instead (a link from an email); the site's public origin is opened at
    /// the base URL, any other origin fails the step.
    #[serde(default)]
    pub url: Option<String>,
    /// A virtual host's name.
    #[serde(default)]
    pub host: Option<String>,
    /// A CSS selector that must become visible once the page loaded (e.g. `#shows li`).
    #[serde(default)]
    pub wait_for: Option<String>,
    /// A text the page must show (inside `wait_for`'s element when both are given).
    #[serde(default)]
    pub wait_text: Option<String>,
    /// What a visitor does next, in order: each is one of `{ click = "SELECTOR" }`,
    /// `{ fill = "SELECTOR", value = "..." }`, `{ press = "Enter" }`, `{ wait_for =
    /// "SELECTOR" }` (with an optional `text`), `{ wait_text = "..." }`.
    #[serde(default)]
    pub actions: Vec<BrowserActionSpec>,
    /// The deadline of the whole visit in milliseconds (default 15000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Regexes of console or network errors that are logged but do not fail the step (a
    /// third-party script's noise).
    #[serde(default)]
    pub allow_errors: Vec<String>,
}

/// One action of a browser step: exactly one of `click`, `fill`, `press`, `wait_for`,
/// `wait_text`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrowserActionSpec {
    /// Click the element (a real mouse click in its middle).
    #[serde(default)]
    pub click: Option<String>,
    /// Type `value` into the field.
    #[serde(default)]
    pub fill: Option<String>,
    /// What `fill` types, a template.
    #[serde(default)]
    pub value: Option<String>,
    /// Press a key in the focused element (`Enter`, `Tab`).
    #[serde(default)]
    pub press: Option<String>,
    /// Wait until an element matching this CSS selector is visible.
    #[serde(default)]
    pub wait_for: Option<String>,
    /// With `wait_for`: a text the element must contain. Alone: a text the page must show.
    #[serde(default)]
    pub text: Option<String>,
    /// Wait until the page shows this text.
    #[serde(default)]
    pub wait_text: Option<String>,
}
