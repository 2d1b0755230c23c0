//! Sending a [`Request`] to the target and reading the answer, with bodies capped and transport
//! errors classified (DNS, refused, TLS, timeout, redirect loop) so a person reads what broke.

use std::collections::HashMap;
use std::error::Error as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::redirect::Policy;

use crate::check::{
    Auth, BackendMarker, BasicAuthEnv, Body, Captures, CredentialKind, MissingCapture, PartValue,
    Placeholder, Request, Response, Scheme, Suite, VirtualHost,
};
use crate::secret::{Secret, mask};

use super::Target;

/// How long an idle connection is kept for reuse: shorter than any server's keep-alive.
const POOL_IDLE: Duration = Duration::from_secs(1);

/// How many redirects a request follows before it is called a loop.
const MAX_REDIRECTS: usize = 10;

/// What kind of transport failure a request met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The host name does not resolve.
    Dns,
    /// Nothing listens on the port.
    Refused,
    /// The TLS handshake failed (untrusted certificate, wrong host, not TLS at all).
    Tls,
    /// No answer in time.
    Timeout,
    /// More than ten redirects, usually a loop.
    Redirects,
    /// A template used a value no step captured.
    Template,
    /// An absolute URL (a link) that points outside the site.
    Origin,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Whether asking again later may succeed (used by the readiness wait).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Refused | ErrorKind::Timeout | ErrorKind::Other
        )
    }
}

/// A request that got no HTTP answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// The failure class.
    pub kind: ErrorKind,
    /// One line: what failed, on which URL.
    pub message: String,
    /// The underlying causes, outermost first.
    pub causes: Vec<String>,
    /// What to do next.
    pub hint: Option<String>,
}

impl RequestError {
    /// The message followed by its `caused by:` chain and hint, one paragraph.
    pub fn paragraph(&self) -> String {
        let mut out = self.message.clone();
        for cause in &self.causes {
            out.push_str("\n  caused by: ");
            out.push_str(cause);
        }
        if let Some(hint) = &self.hint {
            out.push_str(&format!("\n  ({hint})"));
        }
        mask(&out)
    }
}

/// The HTTP side of a run: for the base URL and for each virtual host, one client that
/// follows redirects and one that does not. A scenario gets its own copy with a cookie jar
/// ([`Http::with_cookie_jar`]), so a login carries over to its next steps and nowhere else.
#[derive(Debug, Clone)]
pub struct Http {
    base: Site,
    hosts: HashMap<String, Site>,
    max_body: usize,
    timeout: Duration,
    ca_cert_pem: Option<Vec<u8>>,
    /// The base URL's socket addresses, which virtual host names resolve to.
    addrs: Vec<SocketAddr>,
    /// The public origin links in emails use, mapped onto the base URL.
    site_url: Option<url::Url>,
    /// What the clients were built from, to build a copy with a cookie jar.
    config: std::sync::Arc<Config>,
}

/// What [`Http::build`] needs, kept to build copies.
#[derive(Debug)]
struct Config {
    target: Target,
    hosts: Vec<VirtualHost>,
    basic_auth: Option<BasicAuthEnv>,
    placeholder: Option<Placeholder>,
    marker: Option<BackendMarker>,
}

/// Where one site's requests go and what they carry.
#[derive(Debug, Clone)]
struct Site {
    follow: reqwest::Client,
    direct: reqwest::Client,
    base_url: url::Url,
    http_url: Option<url::Url>,
    /// The host name shown in messages.
    label: String,
    credentials: Credentials,
    placeholder: Option<Placeholder>,
    marker: Option<BackendMarker>,
}

/// The basic auth credentials of a site.
#[derive(Debug, Clone)]
enum Credentials {
    /// None needed.
    None,
    /// `Authorization: Basic ...`, the whole header value a secret.
    Given(Secret),
    /// Needed, but this variable is not set.
    Missing(String),
}

/// The CA certificate given is not usable.
#[derive(Debug, thiserror::Error)]
#[error(
    "failed to use the CA certificate: {0} (pass a PEM file holding `-----BEGIN CERTIFICATE-----`)"
)]
pub struct BadCaCert(String);

/// Reads basic auth credentials from the run's variables, then the environment; the password
/// and the header value are registered as secrets at once.
fn credentials(
    env: Option<&BasicAuthEnv>,
    vars: &std::collections::BTreeMap<String, String>,
) -> Credentials {
    let Some(env) = env else {
        return Credentials::None;
    };
    let read = |name: &str| {
        vars.get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.is_empty())
    };
    let password = read(&env.password_env).map(Secret::new);
    match (read(&env.user_env), password) {
        (Some(user), Some(password)) => Credentials::Given(basic_header(&user, password.expose())),
        (None, _) => Credentials::Missing(env.user_env.clone()),
        (_, None) => Credentials::Missing(env.password_env.clone()),
    }
}

fn basic_header(user: &str, password: &str) -> Secret {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    Secret::new(format!("Basic {token}"))
}

impl Http {
    /// Builds the clients for `target`, without virtual hosts.
    pub fn new(target: &Target) -> Result<Http, BadCaCert> {
        Http::build(
            Config {
                target: target.clone(),
                hosts: Vec::new(),
                basic_auth: None,
                placeholder: None,
                marker: None,
            },
            None,
        )
    }

    /// Builds the clients for `target` and every virtual host of `suite`; reads the basic auth
    /// credentials from the run's variables and the environment.
    pub fn for_suite(target: &Target, suite: &Suite) -> Result<Http, BadCaCert> {
        Http::build(
            Config {
                target: target.clone(),
                hosts: suite.hosts.clone(),
                basic_auth: suite.basic_auth.clone(),
                placeholder: suite.placeholder.clone(),
                marker: suite.marker.clone(),
            },
            None,
        )
    }

    /// A copy whose clients share one new cookie jar (one per scenario).
    pub fn with_cookie_jar(&self) -> Http {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        // The same settings built once already, so this cannot fail; fall back to no jar.
        Http::rebuild(&self.config, Some(jar)).unwrap_or_else(|_| self.clone())
    }

    fn build(
        config: Config,
        jar: Option<std::sync::Arc<reqwest::cookie::Jar>>,
    ) -> Result<Http, BadCaCert> {
        Http::rebuild(&std::sync::Arc::new(config), jar)
    }

    fn rebuild(
        config: &std::sync::Arc<Config>,
        jar: Option<std::sync::Arc<reqwest::cookie::Jar>>,
    ) -> Result<Http, BadCaCert> {
        let target = &config.target;
        let build = |policy: Policy, resolve: Option<(&str, &[SocketAddr])>| {
            let mut builder = reqwest::Client::builder()
                .user_agent(concat!("smoke/", env!("CARGO_PKG_VERSION")))
                .timeout(target.timeouts.request)
                .connect_timeout(target.timeouts.request)
                // A connection idle longer than this is not reused: a server closes idle
                // keep-alive connections on its own clock (nginx's `keepalive_timeout`, 5 s
                // for many), and a request sent as it does fails to send. A check that waited
                // for an email as long as nginx's timeout lost its cleanup that way.
                .pool_idle_timeout(POOL_IDLE)
                .redirect(policy);
            if let Some(jar) = &jar {
                builder = builder.cookie_provider(jar.clone());
            }
            if let Some((name, addrs)) = resolve {
                builder = builder.resolve_to_addrs(name, addrs);
            }
            if let Some(pem) = &target.ca_cert_pem {
                let certs = reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|e| BadCaCert(e.to_string()))?;
                if certs.is_empty() {
                    return Err(BadCaCert("the file holds no certificate".to_owned()));
                }
                for cert in certs {
                    builder = builder.add_root_certificate(cert);
                }
            }
            builder.build().map_err(|e| BadCaCert(chain(&e).join(": ")))
        };
        let base_url = with_trailing_slash(&target.base_url);
        let http_url = target.http_url.as_ref().map(with_trailing_slash);
        // A pinned address serves every name; without one, only virtual hosts need the base
        // URL's address (a base URL that does not resolve is reported by the requests).
        let pinned: Option<Vec<SocketAddr>> = target.connect_ip.map(|ip| {
            vec![SocketAddr::new(
                ip,
                base_url.port_or_known_default().unwrap_or(443),
            )]
        });
        let addrs = match &pinned {
            Some(pinned) => pinned.clone(),
            None if config.hosts.is_empty() => Vec::new(),
            None => resolve(&base_url),
        };
        let base_resolve = pinned
            .as_deref()
            .and_then(|addrs| Some((base_url.host_str()?, addrs)));
        let mut sites = HashMap::new();
        for host in &config.hosts {
            let on_host = |url: &url::Url| {
                let mut url = url.clone();
                // A base URL always has a host, so this cannot fail for a valid host name.
                let _ = url.set_host(Some(&host.host));
                url
            };
            let resolve = Some((host.host.as_str(), addrs.as_slice()));
            sites.insert(
                host.name.clone(),
                Site {
                    follow: build(Policy::limited(MAX_REDIRECTS), resolve)?,
                    direct: build(Policy::none(), resolve)?,
                    base_url: on_host(&base_url),
                    http_url: http_url.as_ref().map(on_host),
                    label: host.host.clone(),
                    credentials: credentials(host.basic_auth.as_ref(), &target.vars),
                    placeholder: host.placeholder.clone(),
                    marker: host.marker.clone().or_else(|| config.marker.clone()),
                },
            );
        }
        Ok(Http {
            base: Site {
                follow: build(Policy::limited(MAX_REDIRECTS), base_resolve)?,
                direct: build(Policy::none(), base_resolve)?,
                label: base_url.host_str().unwrap_or("?").to_owned(),
                base_url,
                http_url,
                credentials: credentials(config.basic_auth.as_ref(), &target.vars),
                placeholder: config.placeholder.clone(),
                marker: config.marker.clone(),
            },
            hosts: sites,
            max_body: target.max_body,
            timeout: target.timeouts.request,
            ca_cert_pem: target.ca_cert_pem.clone(),
            addrs,
            site_url: target.site_url.clone(),
            config: config.clone(),
        })
    }

    /// The host names a browser must map to an address to reach what these clients reach:
    /// the base URL's host when an address is pinned, and every virtual host.
    pub fn browser_resolve(&self) -> Vec<(String, std::net::IpAddr)> {
        let mut rules = Vec::new();
        if let Some(ip) = self.config.target.connect_ip
            && let Some(host) = self.base.base_url.host_str()
            && host.parse::<std::net::IpAddr>().is_err()
        {
            rules.push((host.to_owned(), ip));
        }
        if let Some(addr) = self.addrs.first() {
            for site in self.hosts.values() {
                rules.push((site.label.clone(), addr.ip()));
            }
        }
        rules
    }

    fn site(&self, host: Option<&str>) -> &Site {
        host.and_then(|h| self.hosts.get(h)).unwrap_or(&self.base)
    }

    /// The client that does not follow redirects for `host` (the base URL's for `None`), and
    /// that site's base URL: for callers polling an endpoint themselves, such as the gate.
    pub fn direct(&self, host: Option<&str>) -> (&reqwest::Client, &url::Url) {
        let site = self.site(host);
        (&site.direct, &site.base_url)
    }

    /// The host name requests for `host` carry (the base URL's for `None`).
    pub fn host_label(&self, host: Option<&str>) -> &str {
        &self.site(host).label
    }

    /// The variable to set when `host` needs basic auth credentials that were not given.
    pub fn missing_credentials(&self, host: Option<&str>) -> Option<&str> {
        match &self.site(host).credentials {
            Credentials::Missing(var) => Some(var),
            _ => None,
        }
    }

    /// The maintenance page of `host`, if one is described.
    pub fn placeholder(&self, host: Option<&str>) -> Option<&Placeholder> {
        self.site(host).placeholder.as_ref()
    }

    /// The header only `host`'s backend sets, if one is described.
    pub fn marker(&self, host: Option<&str>) -> Option<&BackendMarker> {
        self.site(host).marker.as_ref()
    }

    /// The `Authorization` (or other credential) header a request sends besides its headers.
    fn authorization(
        &self,
        request: &Request,
        captures: &Captures,
    ) -> Result<Option<(String, String)>, RequestError> {
        match &request.auth {
            Auth::Anonymous => Ok(None),
            Auth::Credential(credential) => {
                let (name, value) = match &credential.kind {
                    CredentialKind::Header { name, value } => {
                        let value = value.render(captures).map_err(template_error)?;
                        (name.clone(), Secret::new(value))
                    }
                    CredentialKind::Basic { user, password } => {
                        let user = user.render(captures).map_err(template_error)?;
                        let password =
                            Secret::new(password.render(captures).map_err(template_error)?);
                        (
                            "Authorization".to_owned(),
                            basic_header(&user, password.expose()),
                        )
                    }
                };
                Ok(Some((name, value.expose().to_owned())))
            }
            Auth::Default => Ok(match &self.site(request.host.as_deref()).credentials {
                Credentials::Given(header) => {
                    Some(("Authorization".to_owned(), header.expose().to_owned()))
                }
                _ => None,
            }),
        }
    }

    /// What a websocket connection to `request` needs: its `ws://` or `wss://` URL, where to
    /// connect, the TLS settings and the `Authorization` value.
    pub fn websocket_target(
        &self,
        request: &Request,
        captures: &Captures,
    ) -> Result<WebSocketTarget, RequestError> {
        let mut url = self.url(request, captures)?;
        let tls = url.scheme() == "https";
        let port = url.port_or_known_default().unwrap_or(80);
        let host = url.host_str().unwrap_or("localhost").to_owned();
        // `set_scheme` between special schemes cannot fail.
        let _ = url.set_scheme(if tls { "wss" } else { "ws" });
        let connect = match request
            .host
            .as_deref()
            .filter(|h| self.hosts.contains_key(*h))
        {
            Some(_) => self
                .addrs
                .iter()
                .map(|a| SocketAddr::new(a.ip(), port))
                .collect(),
            None => Vec::new(),
        };
        Ok(WebSocketTarget {
            url,
            host,
            port,
            connect,
            tls,
            ca_cert_pem: self.ca_cert_pem.clone(),
            authorization: self.authorization(request, captures)?.map(|(_, v)| v),
            timeout: self.timeout,
        })
    }

    /// The absolute URL of `request` (its path rendered), or why it cannot be built. An
    /// absolute URL (a link from an email) must be on the site's public origin or the base
    /// URL's; the public origin is mapped onto the base URL.
    pub fn url(&self, request: &Request, captures: &Captures) -> Result<url::Url, RequestError> {
        let path = request.path.render(captures).map_err(template_error)?;
        let site = self.site(request.host.as_deref());
        let base = match request.scheme {
            Scheme::Base => &site.base_url,
            Scheme::Http => site.http_url.as_ref().ok_or_else(|| RequestError {
                kind: ErrorKind::Other,
                message: "no HTTP base URL was given".to_owned(),
                causes: Vec::new(),
                hint: Some("pass `--http-url`".to_owned()),
            })?,
        };
        if request.absolute {
            return self.rebase(&path, base);
        }
        base.join(path.trim_start_matches('/'))
            .map_err(|e| RequestError {
                kind: ErrorKind::Other,
                message: format!("failed to build a URL from `{path}`"),
                causes: vec![e.to_string()],
                hint: None,
            })
    }

    fn rebase(&self, link: &str, base: &url::Url) -> Result<url::Url, RequestError> {
        let url = url::Url::parse(link.trim()).map_err(|e| RequestError {
            kind: ErrorKind::Origin,
            message: format!("`{link}` is not an absolute URL"),
            causes: vec![e.to_string()],
            hint: None,
        })?;
        let origin = url.origin();
        if origin == base.origin() {
            return Ok(url);
        }
        let public = self.site_url.clone().unwrap_or_else(|| base.clone());
        if origin == public.origin() {
            let mut rebased = base.clone();
            rebased.set_path(url.path());
            rebased.set_query(url.query());
            rebased.set_fragment(url.fragment());
            return Ok(rebased);
        }
        Err(RequestError {
            kind: ErrorKind::Origin,
            message: format!(
                "the link `{link}` points at `{}`, not at the site `{}`",
                origin.ascii_serialization(),
                public.origin().ascii_serialization()
            ),
            causes: Vec::new(),
            hint: Some(
                "links in emails are built from the site's public URL setting (e.g. `PUBLIC_SITE_URL`): set it to the address visitors use".to_owned(),
            ),
        })
    }

    /// `METHOD URL`, for reports.
    pub fn describe(&self, request: &Request, captures: &Captures) -> String {
        match self.url(request, captures) {
            Ok(url) => format!("{} {url}", request.method),
            Err(_) => match request.path.render(captures) {
                Ok(path) => format!("{} {path}", request.method),
                Err(_) => format!("{} {}", request.method, request.path.as_str()),
            },
        }
    }

    /// Sends `request` and reads at most the body cap of its answer.
    pub async fn send(
        &self,
        request: &Request,
        captures: &Captures,
    ) -> Result<Response, RequestError> {
        let url = self.url(request, captures)?;
        let method =
            reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|e| RequestError {
                kind: ErrorKind::Other,
                message: format!("invalid method `{}`", request.method),
                causes: vec![e.to_string()],
                hint: None,
            })?;
        let site = self.site(request.host.as_deref());
        let client = if request.follow_redirects {
            &site.follow
        } else {
            &site.direct
        };
        let mut builder = client.request(method, url.clone());
        let mut named: Vec<String> = Vec::new();
        for (name, value) in &request.headers {
            builder = builder.header(
                name.as_str(),
                value.render(captures).map_err(template_error)?,
            );
            named.push(name.to_ascii_lowercase());
        }
        if let Some((name, value)) = self.authorization(request, captures)? {
            builder = builder.header(name, value);
        }
        // As a browser does: an unsafe request says where it comes from, which is what
        // Django's CSRF protection compares with the host.
        if request.is_unsafe() {
            let origin = url.origin().ascii_serialization();
            if !named.iter().any(|n| n == "origin") {
                builder = builder.header("Origin", origin.clone());
            }
            if !named.iter().any(|n| n == "referer") {
                builder = builder.header("Referer", format!("{origin}{}", url.path()));
            }
        }
        match &request.body {
            Some(Body::Json(value)) => {
                let body =
                    crate::check::render_json_body(value, captures).map_err(template_error)?;
                builder = builder.json(&body);
            }
            Some(Body::Text(text)) => {
                builder = builder.body(text.render(captures).map_err(template_error)?);
            }
            Some(Body::Form(fields)) => {
                let mut rendered = Vec::new();
                for (name, value) in fields {
                    rendered.push((
                        name.clone(),
                        value.render(captures).map_err(template_error)?,
                    ));
                }
                builder = builder.form(&rendered);
            }
            Some(Body::Multipart(parts)) => {
                let mut form = reqwest::multipart::Form::new();
                for part in parts {
                    form = match &part.value {
                        PartValue::Text(text) => form.text(
                            part.name.clone(),
                            text.render(captures).map_err(template_error)?,
                        ),
                        PartValue::File {
                            bytes,
                            file_name,
                            content_type,
                        } => {
                            let file = reqwest::multipart::Part::bytes(bytes.as_ref().clone())
                                .file_name(file_name.clone())
                                .mime_str(content_type)
                                .map_err(|e| RequestError {
                                    kind: ErrorKind::Template,
                                    message: format!("invalid content type `{content_type}`"),
                                    causes: vec![e.to_string()],
                                    hint: None,
                                })?;
                            form.part(part.name.clone(), file)
                        }
                    };
                }
                builder = builder.multipart(form);
            }
            Some(Body::Filler(size)) => {
                let mut body = String::with_capacity(size + 16);
                body.push_str("{\"filler\": \"");
                body.push_str(&"x".repeat(size.saturating_sub(16)));
                body.push_str("\"}");
                builder = builder
                    .header("Content-Type", "application/json")
                    .body(body);
            }
            None => {}
        }
        let start = Instant::now();
        let mut response = builder
            .send()
            .await
            .map_err(|e| classify(&e, &request.method, &url, self.timeout))?;
        let status = response.status().as_u16();
        let final_url = response.url().clone();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let announced = response.content_length();
        let mut body = Vec::new();
        let mut truncated = None;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = self.max_body.saturating_sub(body.len());
                    if chunk.len() > room {
                        body.extend_from_slice(&chunk[..room]);
                        truncated = Some(format!(
                            "larger than the {} cap; only that much was read",
                            human_bytes(self.max_body)
                        ));
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    let why = if e.is_timeout() {
                        format!("reading it timed out after {:.1?}", self.timeout)
                    } else {
                        "the connection closed early".to_owned()
                    };
                    let of = announced
                        .map(|n| format!(" of the announced {n}"))
                        .unwrap_or_default();
                    truncated = Some(format!("{why}: got {} bytes{of}", body.len()));
                    break;
                }
            }
        }
        Ok(Response {
            status,
            headers,
            body,
            truncated,
            latency: start.elapsed(),
            url: Some(final_url),
        })
    }
}

/// Where and how to open a websocket.
#[derive(Debug, Clone)]
pub struct WebSocketTarget {
    /// `ws://` or `wss://` URL, naming the (virtual) host.
    pub url: url::Url,
    /// The host name (the TLS server name).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The addresses to connect to instead of resolving `host` (virtual hosts); empty: resolve.
    pub connect: Vec<SocketAddr>,
    /// Whether TLS is spoken.
    pub tls: bool,
    /// An extra CA certificate to trust.
    pub ca_cert_pem: Option<Vec<u8>>,
    /// The `Authorization` header value, when one is sent.
    pub authorization: Option<String>,
    /// The deadline of the connection, the upgrade, and the answer each.
    pub timeout: Duration,
}

/// The socket addresses of a URL's host and port (none when it does not resolve).
fn resolve(url: &url::Url) -> Vec<SocketAddr> {
    use std::net::ToSocketAddrs as _;
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return Vec::new();
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port)
        .to_socket_addrs()
        .map(Iterator::collect)
        .unwrap_or_default()
}

fn template_error(e: MissingCapture) -> RequestError {
    RequestError {
        kind: ErrorKind::Template,
        message: format!("failed to build the request: {e}"),
        causes: Vec::new(),
        hint: None,
    }
}

fn with_trailing_slash(url: &url::Url) -> url::Url {
    let mut url = url.clone();
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// The error and its sources, each once.
fn chain(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.iter().any(|seen| seen.contains(&text)) {
            out.push(text);
        }
        source = cause.source();
    }
    out
}

/// Names the transport failure so the message says what to fix.
fn classify(
    error: &reqwest::Error,
    method: &str,
    url: &url::Url,
    timeout: Duration,
) -> RequestError {
    let causes = chain(error);
    let all = causes.join(": ").to_ascii_lowercase();
    let host = url.host_str().unwrap_or("?").to_owned();
    let refused = {
        let mut source = error.source();
        let mut found = false;
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                found |= io.kind() == std::io::ErrorKind::ConnectionRefused;
            }
            source = cause.source();
        }
        found || all.contains("connection refused")
    };
    let (kind, message, hint) = if error.is_redirect() {
        (
            ErrorKind::Redirects,
            format!(
                "failed to follow the redirects of `{method} {url}`: more than {MAX_REDIRECTS} (a redirect loop?)"
            ),
            Some("check the `Location` headers the site sends, e.g. with `curl -sI`".to_owned()),
        )
    } else if error.is_timeout() {
        (
            ErrorKind::Timeout,
            format!(
                "failed to get an answer to `{method} {url}` within {timeout:.1?}: the server never answered"
            ),
            Some(
                "is the server overloaded or stuck? raise `--request-timeout` if it is just slow"
                    .to_owned(),
            ),
        )
    } else if all.contains("dns error")
        || all.contains("failed to lookup address")
        || all.contains("name or service not known")
    {
        (
            ErrorKind::Dns,
            format!("failed to resolve the host `{host}` of `{url}`"),
            Some("check the spelling of the base URL and the DNS record".to_owned()),
        )
    } else if refused {
        (
            ErrorKind::Refused,
            format!("failed to connect to `{url}`: connection refused"),
            Some("is the site up and listening on that port?".to_owned()),
        )
    } else if all.contains("unknownissuer")
        || all.contains("unknown issuer")
        || all.contains("self-signed")
        || all.contains("self signed")
    {
        (
            ErrorKind::Tls,
            format!(
                "failed to verify the TLS certificate of `{host}`: the certificate is untrusted (unknown issuer)"
            ),
            Some(
                "pass the CA certificate with `--ca-cert PATH` for a self-signed stack".to_owned(),
            ),
        )
    } else if all.contains("notvalidforname") || all.contains("not valid for name") {
        (
            ErrorKind::Tls,
            format!(
                "failed to verify the TLS certificate of `{host}`: it is not valid for that host name (wrong host)"
            ),
            Some("use the host name the certificate was issued for".to_owned()),
        )
    } else if all.contains("certificate")
        || all.contains("tls")
        || all.contains("handshake")
        || all.contains("corrupt message")
    {
        (
            ErrorKind::Tls,
            format!("failed to establish TLS with `{host}`"),
            Some("does the port speak HTTPS? is the certificate valid and current?".to_owned()),
        )
    } else {
        (
            ErrorKind::Other,
            format!("failed to send `{method} {url}`"),
            None,
        )
    };
    RequestError {
        kind,
        message: mask(&message),
        causes: causes.iter().skip(1).map(|c| mask(c)).collect(),
        hint,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// A keep-alive HTTP/1.1 server on loopback that counts the connections it accepted.
    async fn counting_server() -> (url::Url, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    loop {
                        let Ok(n) = socket.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                            if socket.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (
            url::Url::parse(&format!("http://{addr}/")).unwrap(),
            accepted,
        )
    }

    /// A connection left idle is not reused past `POOL_IDLE`: a server that closes it on its
    /// own keep-alive clock would otherwise fail the next request as it is sent.
    #[tokio::test]
    async fn an_idle_connection_is_not_reused_after_the_pool_idle_time() {
        let (base, accepted) = counting_server().await;
        let suite = crate::catalog::parse(
            "version = 1\nname = \"t\"\n",
            std::path::Path::new("checks.toml"),
        )
        .unwrap();
        let target = crate::runner::Target::new(base.clone());
        let http = super::Http::for_suite(&target, &suite).unwrap();
        let (client, base) = http.direct(None);
        for _ in 0..2 {
            let answer = client.get(base.clone()).send().await.unwrap();
            assert_eq!(answer.text().await.unwrap(), "ok");
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "back to back: one connection"
        );
        tokio::time::sleep(super::POOL_IDLE + std::time::Duration::from_millis(500)).await;
        let answer = client.get(base.clone()).send().await.unwrap();
        assert_eq!(answer.text().await.unwrap(), "ok");
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "after an idle pause: a fresh connection"
        );
    }
}
