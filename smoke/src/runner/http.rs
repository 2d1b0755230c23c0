//! Sending a [`Request`] to the target and reading the answer, with bodies capped and transport
//! errors classified (DNS, refused, TLS, timeout, redirect loop) so a person reads what broke.

use std::error::Error as _;
use std::time::{Duration, Instant};

use reqwest::redirect::Policy;

use crate::check::{Auth, Body, Captures, MissingCapture, Request, Response, Scheme};
use crate::secret::{Secret, mask};

use super::Target;

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

/// The HTTP side of a run: one client that follows redirects, one that does not.
#[derive(Debug, Clone)]
pub struct Http {
    follow: reqwest::Client,
    direct: reqwest::Client,
    base_url: url::Url,
    http_url: Option<url::Url>,
    staff_token: Option<Secret>,
    max_body: usize,
    timeout: Duration,
}

/// The CA certificate given is not usable.
#[derive(Debug, thiserror::Error)]
#[error(
    "failed to use the CA certificate: {0} (pass a PEM file holding `-----BEGIN CERTIFICATE-----`)"
)]
pub struct BadCaCert(String);

impl Http {
    /// Builds the clients for `target`.
    pub fn new(target: &Target) -> Result<Http, BadCaCert> {
        let build = |policy: Policy| -> Result<reqwest::Client, BadCaCert> {
            let mut builder = reqwest::Client::builder()
                .user_agent(concat!("smoke/", env!("CARGO_PKG_VERSION")))
                .timeout(target.timeouts.request)
                .connect_timeout(target.timeouts.request)
                .redirect(policy);
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
        Ok(Http {
            follow: build(Policy::limited(MAX_REDIRECTS))?,
            direct: build(Policy::none())?,
            base_url: with_trailing_slash(&target.base_url),
            http_url: target.http_url.as_ref().map(with_trailing_slash),
            staff_token: target.staff_token.clone(),
            max_body: target.max_body,
            timeout: target.timeouts.request,
        })
    }

    /// The absolute URL of `request` (its path rendered), or why it cannot be built.
    pub fn url(&self, request: &Request, captures: &Captures) -> Result<url::Url, RequestError> {
        let path = request.path.render(captures).map_err(template_error)?;
        let base = match request.scheme {
            Scheme::Base => &self.base_url,
            Scheme::Http => self.http_url.as_ref().ok_or_else(|| RequestError {
                kind: ErrorKind::Other,
                message: "no HTTP base URL was given".to_owned(),
                causes: Vec::new(),
                hint: Some("pass `--http-url`".to_owned()),
            })?,
        };
        base.join(path.trim_start_matches('/'))
            .map_err(|e| RequestError {
                kind: ErrorKind::Other,
                message: format!("failed to build a URL from `{path}`"),
                causes: vec![e.to_string()],
                hint: None,
            })
    }

    /// `METHOD URL`, for reports.
    pub fn describe(&self, request: &Request, captures: &Captures) -> String {
        match self.url(request, captures) {
            Ok(url) => format!("{} {url}", request.method),
            Err(_) => format!("{} {}", request.method, request.path.as_str()),
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
        let client = if request.follow_redirects {
            &self.follow
        } else {
            &self.direct
        };
        let mut builder = client.request(method, url.clone());
        for (name, value) in &request.headers {
            builder = builder.header(
                name.as_str(),
                value.render(captures).map_err(template_error)?,
            );
        }
        if let (Auth::Staff, Some(token)) = (request.auth, &self.staff_token) {
            builder = builder.header("Authorization", format!("Token {}", token.expose()));
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
            None => {}
        }
        let start = Instant::now();
        let mut response = builder
            .send()
            .await
            .map_err(|e| classify(&e, &request.method, &url, self.timeout))?;
        let status = response.status().as_u16();
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
        })
    }
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
