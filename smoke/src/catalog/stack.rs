//! The stack description: a TOML file describing a stack's pages, routes and health without
//! writing Rust.
//!
//! ```toml
//! version = 1
//! name = "mystack"
//!
//! [backend_marker]          # the header only the backend sets
//! header = "X-Backend"
//! value = "django"          # optional: any value counts when absent
//!
//! [health]                  # readiness and the `health.<name>` check
//! path = "/api/health/"
//! json = { "/status" = "ok" }
//!
//! [[pages]]                 # `pages.<name>`
//! name = "home"
//! path = "/"
//! contains = ["<title>My site</title>"]
//!
//! [[routes]]                # `routing.<name>`
//! name = "static_served_by_nginx"
//! path = "/static/app.css"
//! backend = false           # the marker header must be absent
//! content_type = "text/css"
//! ```
//!
//! Every table rejects unknown keys, so a typo fails loudly. The format grows by adding tables
//! (`[[hosts]]`, `[auth]`, `[[rate_limits]]`, ...) under the same `version`; a breaking change
//! bumps it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::check::{
    BasicAuthEnv, Category, Expect, HttpStep, Placeholder, Readiness, Request, Scenario, Scheme,
    Step, Suite, Template, VirtualHost, WebSocketStep,
};

/// The version this build reads.
pub const VERSION: u32 = 1;

/// Why a stack file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StackFileError {
    /// The file cannot be read.
    #[error(
        "failed to read the stack file `{path}`\n  caused by: {source}\n  (check the path given to `--stack`)"
    )]
    Read {
        /// The path given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the format.
    #[error(
        "failed to parse the stack file `{path}`\n  caused by: {message}\n  (the format is described in smoke/README.md, \"Stack description\")"
    )]
    Parse {
        /// The path given.
        path: String,
        /// The TOML error, with its line and column.
        message: String,
    },
    /// The file parses but says something impossible.
    #[error("invalid stack file `{path}`: {message}")]
    Invalid {
        /// The path given.
        path: String,
        /// What is wrong, naming the entry.
        message: String,
    },
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackFile {
    /// The format version, `1`.
    pub version: u32,
    /// The stack's name.
    pub name: String,
    /// The header that proves a response came from the backend.
    pub backend_marker: Option<BackendMarker>,
    /// The health endpoint.
    pub health: Option<HealthSpec>,
    /// Pages: `pages.<name>`.
    #[serde(default)]
    pub pages: Vec<RouteSpec>,
    /// Routes: `routing.<name>`.
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    /// Websocket routes: `websocket.<name>`.
    #[serde(default)]
    pub websockets: Vec<WebSocketSpec>,
    /// Basic auth in front of the base URL: `auth.required`.
    pub basic_auth: Option<BasicAuthSpec>,
    /// A rate limit on one path: `rate_limit.enforced`, `rate_limit.normal_traffic_passes`.
    pub rate_limit: Option<RateLimitSpec>,
    /// The "deployment in progress" page (inherited by hosts without their own).
    pub placeholder: Option<PlaceholderSpec>,
    /// Virtual hosts behind the same address: `<host>.<category>.<name>`.
    #[serde(default)]
    pub hosts: Vec<HostSpec>,
}

/// A virtual host: the same tables as the top level, for requests with its `Host`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// The short name prefixing its checks, `[a-z0-9_]+`, e.g. `staging`.
    pub name: String,
    /// The host name requests carry, e.g. `staging.multienv.test`.
    pub host: String,
    /// Its own marker header; the top-level one by default.
    pub backend_marker: Option<BackendMarker>,
    /// Its health endpoint.
    pub health: Option<HealthSpec>,
    /// Its pages.
    #[serde(default)]
    pub pages: Vec<RouteSpec>,
    /// Its routes.
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    /// Its websocket routes.
    #[serde(default)]
    pub websockets: Vec<WebSocketSpec>,
    /// Basic auth in front of it.
    pub basic_auth: Option<BasicAuthSpec>,
    /// A rate limit on one of its paths.
    pub rate_limit: Option<RateLimitSpec>,
    /// Its maintenance page; the top-level one by default.
    pub placeholder: Option<PlaceholderSpec>,
}

/// HTTP basic auth the site requires; the credentials come from the environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthSpec {
    /// The variable holding the user name.
    pub user_env: String,
    /// The variable holding the password.
    pub password_env: String,
    /// The path asked without credentials for `auth.required`; `/` by default.
    pub path: Option<String>,
}

/// A rate limit on one path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// The limited path, e.g. `/api/ping/`; the only one the checks send to.
    pub path: String,
    /// How many requests the burst sends at once (exactly that many).
    pub burst: usize,
    /// The status of a refused request; 429 by default.
    #[serde(default = "default_refused")]
    pub refused_status: u16,
    /// How many spaced requests make normal traffic; 3 by default.
    #[serde(default = "default_normal_requests")]
    pub normal_requests: usize,
    /// The pause between two of them, in milliseconds; 1000 by default.
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

/// The maintenance page served while a deployment is in progress.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceholderSpec {
    /// Its status; 503 by default.
    #[serde(default = "default_placeholder_status")]
    pub status: u16,
    /// A text its body contains.
    pub contains: String,
}

fn default_placeholder_status() -> u16 {
    503
}

/// A websocket route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketSpec {
    /// The check name after `websocket.`.
    pub name: String,
    /// The path of the upgrade, e.g. `/ws/echo/`.
    pub path: String,
    /// The text message sent; `{{run_id}}` is replaced by the run id.
    #[serde(default = "default_ws_send")]
    pub send: String,
    /// What an answer must contain.
    pub expect_contains: String,
    /// The subprotocol asked for, which the server must select.
    pub subprotocol: Option<String>,
    /// What a pass proves.
    pub proves: Option<String>,
    /// What to do when it fails.
    pub hint: Option<String>,
}

fn default_ws_send() -> String {
    "smoke {{run_id}}".to_owned()
}

/// The backend's marker header.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendMarker {
    /// Its name, e.g. `X-Backend`.
    pub header: String,
    /// Its value, when one is required.
    pub value: Option<String>,
}

/// The health endpoint: what a ready stack answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    /// The check name after `health.`; `ok` by default.
    pub name: Option<String>,
    /// The path, e.g. `/api/health/`.
    pub path: String,
    /// What a pass proves.
    pub proves: Option<String>,
    /// The expected status; 200 by default.
    pub status: Option<StatusSpec>,
    /// The expected content type prefix.
    pub content_type: Option<String>,
    /// JSON pointer → expected value.
    #[serde(default)]
    pub json: BTreeMap<String, toml::Value>,
    /// Text the body must contain.
    #[serde(default)]
    pub contains: Vec<String>,
    /// What to do when it fails.
    pub hint: Option<String>,
}

/// One status or several accepted ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StatusSpec {
    /// `status = 200`
    One(u16),
    /// `status = [401, 403]`
    Any(Vec<u16>),
}

impl StatusSpec {
    fn to_vec(&self) -> Vec<u16> {
        match self {
            StatusSpec::One(s) => vec![*s],
            StatusSpec::Any(s) => s.clone(),
        }
    }
}

/// A page or a route: one request and what its answer must be.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// The check name after the category, `[a-z0-9_]+`.
    pub name: String,
    /// The path (and query); `{{run_id}}` is replaced by the run id.
    pub path: String,
    /// What a pass proves (shown by `smoke list`).
    pub proves: Option<String>,
    /// `GET` by default.
    pub method: Option<String>,
    /// `base` (the base URL, default) or `http` (the `--http-url`).
    #[serde(default)]
    pub scheme: Scheme,
    /// The expected status: 200 by default, 301 when `redirect` is set.
    pub status: Option<StatusSpec>,
    /// `true`: the backend marker header must be present; `false`: absent.
    pub backend: Option<bool>,
    /// The expected `Location` prefix (redirects are then not followed).
    pub redirect: Option<String>,
    /// Whether redirects are followed; by default yes unless `redirect` is set.
    pub follow_redirects: Option<bool>,
    /// The expected content type prefix.
    pub content_type: Option<String>,
    /// Texts the body must contain.
    #[serde(default)]
    pub contains: Vec<String>,
    /// Texts the body must not contain.
    #[serde(default)]
    pub not_contains: Vec<String>,
    /// Header → exact expected value (case-insensitive).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Headers that must be present.
    #[serde(default)]
    pub headers_present: Vec<String>,
    /// Headers that must be absent.
    #[serde(default)]
    pub headers_absent: Vec<String>,
    /// JSON pointer → expected value.
    #[serde(default)]
    pub json: BTreeMap<String, toml::Value>,
    /// JSON pointers that must hold a value.
    #[serde(default)]
    pub json_exists: Vec<String>,
    /// The slowest acceptable answer, in milliseconds.
    pub max_latency_ms: Option<u64>,
    /// What to do when it fails.
    pub hint: Option<String>,
}

/// One site of the file: the top level (`host == None`) or a `[[hosts]]` entry.
struct Site<'a> {
    host: Option<&'a HostSpec>,
    marker: Option<&'a BackendMarker>,
    health: Option<&'a HealthSpec>,
    pages: &'a [RouteSpec],
    routes: &'a [RouteSpec],
    websockets: &'a [WebSocketSpec],
    basic_auth: Option<&'a BasicAuthSpec>,
    rate_limit: Option<&'a RateLimitSpec>,
    placeholder: Option<Placeholder>,
}

impl Site<'_> {
    fn name(&self) -> Option<&str> {
        self.host.map(|h| h.name.as_str())
    }

    /// Where an error points: `` `[health]` `` or `` `[[hosts]]` `staging` `[health]` ``.
    fn at(&self, table: &str) -> String {
        match self.host {
            Some(host) => format!("`[[hosts]]` `{}`: `{table}`", host.name),
            None => format!("`{table}`"),
        }
    }

    /// `category.name`, prefixed by the host's name.
    fn step(&self, mut step: Step) -> Step {
        if let Some(host) = self.name() {
            step.name = format!("{host}.{}", step.name);
        }
        step
    }
}

/// Parses a stack description; `path` only names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<Suite, StackFileError> {
    let shown = path.display().to_string();
    let file: StackFile = toml::from_str(text).map_err(|e| StackFileError::Parse {
        path: shown.clone(),
        message: e.to_string().trim().replace('\n', "\n    "),
    })?;
    let invalid = |message: String| StackFileError::Invalid {
        path: shown.clone(),
        message,
    };
    if file.version != VERSION {
        return Err(invalid(format!(
            "unsupported `version = {}` (this smoke reads version {VERSION})",
            file.version
        )));
    }
    let top_placeholder = file.placeholder.as_ref().map(|p| Placeholder {
        status: p.status,
        contains: p.contains.clone(),
    });
    let mut sites = vec![Site {
        host: None,
        marker: file.backend_marker.as_ref(),
        health: file.health.as_ref(),
        pages: &file.pages,
        routes: &file.routes,
        websockets: &file.websockets,
        basic_auth: file.basic_auth.as_ref(),
        rate_limit: file.rate_limit.as_ref(),
        placeholder: top_placeholder.clone(),
    }];
    let mut hosts = Vec::new();
    for (index, host) in file.hosts.iter().enumerate() {
        let at = |m: String| invalid(format!("`[[hosts]]` #{} (`{}`): {m}", index + 1, host.name));
        check_name(&host.name).map_err(at)?;
        check_host(&host.host).map_err(at)?;
        if file.hosts[..index].iter().any(|h| h.name == host.name) {
            return Err(at("the name is used twice".to_owned()));
        }
        let placeholder = host
            .placeholder
            .as_ref()
            .map(|p| Placeholder {
                status: p.status,
                contains: p.contains.clone(),
            })
            .or_else(|| top_placeholder.clone());
        hosts.push(VirtualHost {
            name: host.name.clone(),
            host: host.host.to_ascii_lowercase(),
            basic_auth: host.basic_auth.as_ref().map(basic_auth_env),
            placeholder: placeholder.clone(),
        });
        sites.push(Site {
            host: Some(host),
            marker: host
                .backend_marker
                .as_ref()
                .or(file.backend_marker.as_ref()),
            health: host.health.as_ref(),
            pages: &host.pages,
            routes: &host.routes,
            websockets: &host.websockets,
            basic_auth: host.basic_auth.as_ref(),
            rate_limit: host.rate_limit.as_ref(),
            placeholder,
        });
    }
    let mut checks = Vec::new();
    let mut scenarios = Vec::new();
    let mut readiness = None;
    for site in &sites {
        site_checks(
            site,
            !file.hosts.is_empty(),
            &mut checks,
            &mut scenarios,
            &mut readiness,
        )
        .map_err(&invalid)?;
    }
    // Without a health endpoint, any answer from the root that is not a server error.
    let readiness = readiness.map_or_else(
        || Readiness {
            path: "/".to_owned(),
            expects: vec![Expect::Status((200..500).collect())],
            host: None,
        },
        |(readiness, _)| readiness,
    );
    let mut seen = std::collections::HashSet::new();
    for step in checks
        .iter()
        .chain(scenarios.iter().flat_map(|s: &Scenario| &s.steps))
    {
        if !seen.insert(step.name.clone()) {
            return Err(invalid(format!(
                "the check name `{}` is used twice",
                step.name
            )));
        }
    }
    Ok(Suite {
        name: file.name,
        readiness,
        checks,
        scenarios,
        hosts,
        placeholder: top_placeholder,
        basic_auth: file.basic_auth.as_ref().map(basic_auth_env),
    })
}

fn basic_auth_env(spec: &BasicAuthSpec) -> BasicAuthEnv {
    BasicAuthEnv {
        user_env: spec.user_env.clone(),
        password_env: spec.password_env.clone(),
    }
}

/// The checks of one site. `readiness` keeps the best health endpoint seen so far: the top
/// level's, else the first host's without basic auth, else the first host's.
fn site_checks(
    site: &Site<'_>,
    has_hosts: bool,
    checks: &mut Vec<Step>,
    scenarios: &mut Vec<Scenario>,
    readiness: &mut Option<(Readiness, u8)>,
) -> Result<(), String> {
    let host = site.name();
    if let Some(health) = site.health {
        let at = |m: String| format!("{}: {m}", site.at("[health]"));
        check_path(&health.path).map_err(at)?;
        let mut expects = vec![Expect::Status(
            health.status.as_ref().map_or(vec![200], StatusSpec::to_vec),
        )];
        if let Some(ct) = &health.content_type {
            expects.push(Expect::ContentType(ct.clone()));
        }
        for (pointer, value) in &health.json {
            expects.push(json_expect(pointer, value).map_err(at)?);
        }
        expects.extend(health.contains.iter().cloned().map(Expect::BodyContains));
        let name = health.name.clone().unwrap_or_else(|| "ok".to_owned());
        check_name(&name).map_err(at)?;
        let proves = health
            .proves
            .clone()
            .unwrap_or_else(|| format!("`{}` says the stack is healthy", health.path));
        let mut step = Step::http(
            Category::Health,
            &name,
            &proves,
            HttpStep::new(Request::get(&health.path).for_host(host), expects.clone()),
        );
        step.hint.clone_from(&health.hint);
        checks.push(site.step(step));
        // Lower ranks win: the top level, then hosts without basic auth, then the others.
        let rank = match (site.host, site.basic_auth) {
            (None, _) => 0,
            (Some(_), None) => 1,
            (Some(_), Some(_)) => 2,
        };
        if readiness.as_ref().is_none_or(|(_, best)| rank < *best) {
            *readiness = Some((
                Readiness {
                    path: health.path.clone(),
                    expects,
                    host: host.map(str::to_owned),
                },
                rank,
            ));
        }
    }
    if let Some(auth) = site.basic_auth {
        let at = |m: String| format!("{}: {m}", site.at("[basic_auth]"));
        for var in [&auth.user_env, &auth.password_env] {
            check_env_name(var).map_err(at)?;
        }
        let path = auth.path.clone().unwrap_or_else(|| "/".to_owned());
        check_path(&path).map_err(at)?;
        let mut request = Request::get(&path).for_host(host);
        request.auth = crate::check::Auth::Anonymous;
        request.follow_redirects = false;
        let step = Step::http(
            Category::Auth,
            "required",
            &format!("`{path}` without credentials is refused with a basic auth challenge"),
            HttpStep::new(
                request,
                vec![
                    Expect::Status(vec![401]),
                    Expect::HeaderStartsWith {
                        name: "WWW-Authenticate".to_owned(),
                        prefix: "Basic".to_owned(),
                    },
                ],
            ),
        )
        .with_hint("protect the whole server with `auth_basic \"...\"; auth_basic_user_file ...;` in nginx");
        checks.push(site.step(step));
    }
    // The top level of a file with virtual hosts may be only defaults (the proxy's default
    // server answers nothing useful): its maintenance check exists when it has checks.
    let top_level_only_defaults = site.host.is_none()
        && site.health.is_none()
        && site.pages.is_empty()
        && site.routes.is_empty()
        && site.websockets.is_empty()
        && site.basic_auth.is_none()
        && site.rate_limit.is_none();
    if site.placeholder.is_some() && !(top_level_only_defaults && has_hosts) {
        let step = Step::http(
            Category::Health,
            "not_in_maintenance",
            "`/` is the site, not the \"deployment in progress\" page",
            HttpStep::new(
                Request::get("/").for_host(host),
                vec![Expect::Status((200..500).collect())],
            ),
        )
        .with_hint(
            "finish or roll back the deployment; the proxy still serves the maintenance page",
        );
        checks.push(site.step(step));
    }
    for (category, table, specs) in [
        (Category::Pages, "[[pages]]", site.pages),
        (Category::Routing, "[[routes]]", site.routes),
    ] {
        for (index, spec) in specs.iter().enumerate() {
            let at =
                |m: String| format!("{} #{} (`{}`): {m}", site.at(table), index + 1, spec.name);
            let mut step = route_step(category, spec, site.marker).map_err(at)?;
            if let crate::check::Action::Http(http) = &mut step.action {
                http.request.host = host.map(str::to_owned);
            }
            checks.push(site.step(step));
        }
    }
    for (index, spec) in site.websockets.iter().enumerate() {
        let at = |m: String| {
            format!(
                "{} #{} (`{}`): {m}",
                site.at("[[websockets]]"),
                index + 1,
                spec.name
            )
        };
        check_name(&spec.name).map_err(at)?;
        check_path(&spec.path).map_err(at)?;
        if spec.expect_contains.is_empty() {
            return Err(at("`expect_contains` is empty".to_owned()));
        }
        let proves = spec.proves.clone().unwrap_or_else(|| {
            format!(
                "`{}` upgrades to a websocket through the proxy and answers a message",
                spec.path
            )
        });
        let mut step = Step::new(
            Category::Websocket,
            &spec.name,
            &proves,
            crate::check::Action::WebSocket(WebSocketStep {
                request: Request::get(&spec.path).for_host(host),
                send: Template::new(spec.send.as_str()),
                expect_contains: Template::new(spec.expect_contains.as_str()),
                subprotocol: spec.subprotocol.clone(),
            }),
        );
        step.hint.clone_from(&spec.hint);
        checks.push(site.step(step));
    }
    if let Some(limit) = site.rate_limit {
        let at = |m: String| format!("{}: {m}", site.at("[rate_limit]"));
        check_path(&limit.path).map_err(at)?;
        if !(2..=1000).contains(&limit.burst) {
            return Err(at(format!(
                "`burst = {}` must be between 2 and 1000",
                limit.burst
            )));
        }
        if limit.normal_requests == 0 || limit.normal_requests > 20 {
            return Err(at(format!(
                "`normal_requests = {}` must be between 1 and 20",
                limit.normal_requests
            )));
        }
        if !(400..=599).contains(&limit.refused_status) {
            return Err(at(format!(
                "`refused_status = {}` must be a 4xx or 5xx status",
                limit.refused_status
            )));
        }
        let request = Request::get(&limit.path).for_host(host);
        let normal = Step::new(
            Category::RateLimit,
            "normal_traffic_passes",
            &format!(
                "{} requests to `{}`, {} ms apart, are all served",
                limit.normal_requests, limit.path, limit.normal_interval_ms
            ),
            crate::check::Action::SpacedRequests {
                request: request.clone(),
                count: limit.normal_requests,
                interval: Duration::from_millis(limit.normal_interval_ms),
                refused_status: limit.refused_status,
            },
        )
        .with_hint("the limit is too strict for normal traffic: raise its rate or its burst");
        let enforced = Step::new(
            Category::RateLimit,
            "enforced",
            &format!(
                "{} requests to `{}` at once see at least one {} and no server error",
                limit.burst, limit.path, limit.refused_status
            ),
            crate::check::Action::RateLimitBurst {
                request,
                burst: limit.burst,
                refused_status: limit.refused_status,
            },
        )
        .with_hint(&format!(
            "limit the location with `limit_req zone=...;` and `limit_req_status {};` in nginx",
            limit.refused_status
        ));
        scenarios.push(Scenario {
            name: format!(
                "{}rate_limit",
                host.map(|h| format!("{h}.")).unwrap_or_default()
            ),
            steps: vec![site.step(normal), site.step(enforced)],
        });
    }
    Ok(())
}

fn check_host(host: &str) -> Result<(), String> {
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && !host.starts_with(['.', '-'])
        && !host.ends_with(['.', '-']);
    if valid {
        Ok(())
    } else {
        Err(format!(
            "the host `{host}` must be a host name like `staging.example.test` (no scheme, port or path)"
        ))
    }
}

fn check_env_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        Ok(())
    } else {
        Err(format!(
            "the variable name `{name}` must be uppercase letters, digits and `_`"
        ))
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Ok(())
    } else {
        Err(format!(
            "the name `{name}` must be lowercase letters, digits and `_`"
        ))
    }
}

fn check_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(format!("the path `{path}` must start with `/`"))
    }
}

fn json_expect(pointer: &str, value: &toml::Value) -> Result<Expect, String> {
    if !pointer.starts_with('/') {
        return Err(format!("the JSON pointer `{pointer}` must start with `/`"));
    }
    let value =
        serde_json::to_value(value).map_err(|e| format!("the value for `{pointer}`: {e}"))?;
    Ok(Expect::JsonEquals {
        pointer: pointer.to_owned(),
        value,
    })
}

fn route_step(
    category: Category,
    spec: &RouteSpec,
    marker: Option<&BackendMarker>,
) -> Result<Step, String> {
    check_name(&spec.name)?;
    check_path(&spec.path)?;
    let default_status = if spec.redirect.is_some() {
        vec![301]
    } else {
        vec![200]
    };
    let mut expects = vec![Expect::Status(
        spec.status
            .as_ref()
            .map_or(default_status, StatusSpec::to_vec),
    )];
    if let Some(backend) = spec.backend {
        let marker =
            marker.ok_or("`backend` needs a `[backend_marker]` table naming the header")?;
        expects.push(match (backend, &marker.value) {
            (true, Some(value)) => Expect::HeaderEquals {
                name: marker.header.clone(),
                value: value.clone(),
            },
            (true, None) => Expect::HeaderPresent(marker.header.clone()),
            (false, _) => Expect::HeaderAbsent(marker.header.clone()),
        });
    }
    if let Some(prefix) = &spec.redirect {
        expects.push(Expect::RedirectTo(Template::new(prefix.as_str())));
    }
    if let Some(ct) = &spec.content_type {
        expects.push(Expect::ContentType(ct.clone()));
    }
    expects.extend(spec.contains.iter().cloned().map(Expect::BodyContains));
    expects.extend(
        spec.not_contains
            .iter()
            .cloned()
            .map(Expect::BodyNotContains),
    );
    for (name, value) in &spec.headers {
        expects.push(Expect::HeaderEquals {
            name: name.clone(),
            value: value.clone(),
        });
    }
    expects.extend(
        spec.headers_present
            .iter()
            .cloned()
            .map(Expect::HeaderPresent),
    );
    expects.extend(
        spec.headers_absent
            .iter()
            .cloned()
            .map(Expect::HeaderAbsent),
    );
    for (pointer, value) in &spec.json {
        expects.push(json_expect(pointer, value)?);
    }
    for pointer in &spec.json_exists {
        if !pointer.starts_with('/') {
            return Err(format!("the JSON pointer `{pointer}` must start with `/`"));
        }
        expects.push(Expect::JsonExists(pointer.clone()));
    }
    let mut request = Request::get(&spec.path);
    if let Some(method) = &spec.method {
        request.method = method.to_ascii_uppercase();
    }
    request.scheme = spec.scheme;
    request.follow_redirects = spec.follow_redirects.unwrap_or(spec.redirect.is_none());
    let proves = spec
        .proves
        .clone()
        .unwrap_or_else(|| format!("`{}` answers as described", spec.path));
    let mut step = Step::http(
        category,
        &spec.name,
        &proves,
        HttpStep::new(request, expects),
    );
    step.max_latency = spec.max_latency_ms.map(Duration::from_millis);
    step.hint.clone_from(&spec.hint);
    Ok(step)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn parse_str(text: &str) -> Result<Suite, StackFileError> {
        parse(text, Path::new("stack.toml"))
    }

    #[test]
    fn reference_description_parses() {
        let suite = parse_str(super::super::REFERENCE_TOML).unwrap();
        assert_eq!(suite.readiness.path, "/api/health/");
        assert!(
            suite
                .checks
                .iter()
                .any(|s| s.name == "routing.static_served_by_nginx")
        );
    }

    #[test]
    fn a_route_becomes_a_routing_check_with_its_expectations() {
        let suite = parse_str(
            r#"
            version = 1
            name = "s"
            backend_marker = { header = "X-Served-By", value = "app" }
            [[routes]]
            name = "old_blog_moved"
            path = "/blog/"
            redirect = "https://blog.example/"
            backend = false
            "#,
        )
        .unwrap();
        let step = &suite.checks[0];
        assert_eq!(step.name, "routing.old_blog_moved");
        let crate::check::Action::Http(http) = &step.action else {
            panic!("not http")
        };
        assert!(!http.request.follow_redirects);
        assert_eq!(
            http.expects,
            vec![
                Expect::Status(vec![301]),
                Expect::HeaderAbsent("X-Served-By".into()),
                Expect::RedirectTo(Template::new("https://blog.example/")),
            ]
        );
        assert_eq!(suite.readiness.path, "/");
    }

    const HOSTS: &str = r#"
        version = 1
        name = "multienv"
        placeholder = { contains = "Deployment in progress" }
        [[hosts]]
        name = "staging"
        host = "Staging.Multienv.test"
        basic_auth = { user_env = "SMOKE_STAGING_USER", password_env = "SMOKE_STAGING_PASSWORD" }
        health = { path = "/api/v1/system/status/", json = { "/status" = "ok" } }
        [[hosts.pages]]
        name = "home"
        path = "/"
        [[hosts]]
        name = "prod"
        host = "prod.multienv.test"
        health = { path = "/api/v1/system/status/" }
        rate_limit = { path = "/api/ping/", burst = 30 }
        [[hosts.websockets]]
        name = "echo"
        path = "/ws/echo/"
        expect_contains = "ping"
    "#;

    #[test]
    fn hosts_prefix_their_checks_and_carry_their_settings() {
        let suite = parse_str(HOSTS).unwrap();
        let names: Vec<&str> = suite.steps().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "staging.health.ok",
                "staging.auth.required",
                "staging.health.not_in_maintenance",
                "staging.pages.home",
                "prod.health.ok",
                "prod.health.not_in_maintenance",
                "prod.websocket.echo",
                "prod.rate_limit.normal_traffic_passes",
                "prod.rate_limit.enforced",
            ]
        );
        for step in suite.steps() {
            let host = step.name.split('.').next().unwrap();
            assert_eq!(step.host(), Some(host), "{}", step.name);
            assert_eq!(step.name.split('.').nth(1), Some(step.category.as_str()));
        }
        let staging = &suite.hosts[0];
        assert_eq!(staging.host, "staging.multienv.test");
        assert_eq!(
            staging.basic_auth.as_ref().unwrap().password_env,
            "SMOKE_STAGING_PASSWORD"
        );
        // Hosts inherit the top-level placeholder, with its default status.
        assert_eq!(
            suite.hosts[1].placeholder,
            Some(Placeholder {
                status: 503,
                contains: "Deployment in progress".into()
            })
        );
        // Readiness asks the first host without basic auth.
        assert_eq!(suite.readiness.host.as_deref(), Some("prod"));
        assert_eq!(suite.readiness.path, "/api/v1/system/status/");
    }

    #[test]
    fn the_auth_check_sends_no_credentials_and_wants_a_basic_challenge() {
        let suite = parse_str(HOSTS).unwrap();
        let step = suite
            .steps()
            .find(|s| s.name == "staging.auth.required")
            .unwrap();
        assert!(!step.sends_credentials());
        let crate::check::Action::Http(http) = &step.action else {
            panic!("not http")
        };
        assert_eq!(http.request.auth, crate::check::Auth::Anonymous);
        assert!(http.expects.contains(&Expect::HeaderStartsWith {
            name: "WWW-Authenticate".into(),
            prefix: "Basic".into()
        }));
    }

    #[rstest]
    #[case(r#"Basic realm="staging""#, true)]
    #[case("basic realm=x", true)]
    #[case("Bearer", false)]
    fn basic_challenge_expectation(#[case] value: &str, #[case] ok: bool) {
        let expect = Expect::HeaderStartsWith {
            name: "WWW-Authenticate".into(),
            prefix: "Basic".into(),
        };
        let response = crate::check::Response::for_test(401, &[("WWW-Authenticate", value)], b"");
        assert_eq!(expect.check(&response, &Default::default()).is_ok(), ok);
    }

    #[rstest]
    #[case(503, "<h1>Deployment in progress</h1>", true)]
    #[case(503, "upstream down", false)]
    #[case(200, "Deployment in progress", false)]
    fn placeholder_matches_status_and_text(
        #[case] status: u16,
        #[case] body: &str,
        #[case] matches: bool,
    ) {
        let placeholder = Placeholder {
            status: 503,
            contains: "Deployment in progress".into(),
        };
        let response = crate::check::Response::for_test(status, &[], body.as_bytes());
        assert_eq!(placeholder.matches(&response), matches);
    }

    #[rstest]
    #[case(
        "version = 1\nname = \"s\"\n[[pages]]\nname = \"home\"\npath = \"/\"\ncolour = \"red\"",
        "unknown field `colour`"
    )]
    #[case("version = 2\nname = \"s\"", "unsupported `version = 2`")]
    #[case(
        "version = 1\nname = \"s\"\n[[pages]]\nname = \"Home\"\npath = \"/\"",
        "must be lowercase"
    )]
    #[case(
        "version = 1\nname = \"s\"\n[[routes]]\nname = \"x\"\npath = \"x\"",
        "must start with `/`"
    )]
    #[case(
        "version = 1\nname = \"s\"\n[[routes]]\nname = \"x\"\npath = \"/\"\nbackend = true",
        "needs a `[backend_marker]`"
    )]
    #[case(
        "version = 1\nname = \"s\"\n[[routes]]\nname = \"x\"\npath = \"/\"\n[[routes]]\nname = \"x\"\npath = \"/a\"",
        "used twice"
    )]
    #[case("version = [", "failed to parse")]
    #[case(
        "version = 1\nname = \"s\"\n[[hosts]]\nname = \"a\"\nhost = \"https://a.test/\"",
        "must be a host name"
    )]
    #[case(
        "version = 1\nname = \"s\"\n[[hosts]]\nname = \"a\"\nhost = \"a.test\"\n[[hosts]]\nname = \"a\"\nhost = \"b.test\"",
        "`[[hosts]]` #2 (`a`): the name is used twice"
    )]
    #[case(
        "version = 1\nname = \"s\"\n[[hosts]]\nname = \"a\"\nhost = \"a.test\"\nbasic_auth = { user_env = \"u\", password_env = \"P\" }",
        "`[[hosts]]` `a`: `[basic_auth]`: the variable name `u` must be uppercase"
    )]
    #[case(
        "version = 1\nname = \"s\"\n[rate_limit]\npath = \"/p/\"\nburst = 1",
        "`burst = 1` must be between 2 and 1000"
    )]
    #[case(
        "version = 1\nname = \"s\"\n[[hosts]]\nname = \"a\"\nhost = \"a.test\"\n[hosts.rate_limit]\npath = \"/p/\"\nburst = 5\nrate = 3",
        "unknown field `rate`"
    )]
    #[case(
        "version = 1\nname = \"s\"\n[[websockets]]\nname = \"e\"\npath = \"/ws/\"\nexpect_contains = \"\"",
        "`expect_contains` is empty"
    )]
    #[case(
        "version = 1\nname = \"s\"\n[placeholder]\nstatus = 503",
        "missing field `contains`"
    )]
    fn invalid_files_say_what_is_wrong(#[case] text: &str, #[case] expected: &str) {
        let error = parse_str(text).unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
        assert!(error.contains("`stack.toml`"), "{error}");
    }
}
