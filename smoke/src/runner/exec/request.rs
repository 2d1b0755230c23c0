//! HTTP steps: the request (on one path or several), its expectations, its captures, the
//! assets an HTML answer references, and the undo record of what it created.

use std::sync::Arc;

use super::{Ctx, End, transport_failure};
use crate::check::{Captures, Expect, HttpStep, Request, Response, Template, Value};
use crate::report::{Failure, FailureKind};
use crate::runner::diagnose;
use crate::runner::http::{ErrorKind, Http, RequestError};
use crate::runner::ledger::Entry;

impl Ctx<'_> {
    pub(super) async fn http_step(
        &self,
        http: &Http,
        spec: &HttpStep,
        scenario: &str,
        captures: &Captures,
    ) -> End {
        let response = match self
            .ask(http, spec, &spec.request, scenario, captures)
            .await
        {
            Ok(response) => response,
            Err(end) => return end,
        };
        // The same request on the other paths, all held to the same expectations.
        let more = futures::future::join_all(spec.more_paths.iter().map(|path| {
            let request = Request {
                path: path.clone(),
                ..spec.request.clone()
            };
            async move { self.ask(http, spec, &request, scenario, captures).await }
        }))
        .await;
        if let Some(Err(end)) = more.into_iter().find(Result::is_err) {
            return end;
        }
        let mut values = Vec::new();
        for capture in &spec.captures {
            match capture.extract(&response) {
                Ok(value) => values.push((capture.name.clone(), Value::Text(value))),
                Err(why) => {
                    return End::Fail(Failure {
                        title: format!("failed to capture `{}` from the answer", capture.name),
                        request: Some(http.describe(&spec.request, captures)),
                        expected: format!("a value for `{}`", capture.name),
                        actual: why,
                        excerpt: response.excerpt(),
                        ..Failure::default()
                    });
                }
            }
        }
        if spec.assets
            && let Some(failure) = self
                .assets(http, &spec.request, &response, &spec.asset_headers)
                .await
        {
            return End::Fail(failure);
        }
        if let Some(count) = &spec.then_emails
            && let Some(end) = self
                .mail_count(count, captures, &http.describe(&spec.request, captures))
                .await
        {
            return end;
        }
        End::Pass(values)
    }

    /// Sends one request of the step and holds its answer to the step's expectations; `Err`
    /// is how the step ends when it does not meet them.
    async fn ask(
        &self,
        http: &Http,
        spec: &HttpStep,
        request: &Request,
        scenario: &str,
        captures: &Captures,
    ) -> Result<Response, End> {
        let described = http.describe(request, captures);
        let sent = match &spec.undo {
            Some(undo) => {
                self.send_creating(http, request, spec, undo, scenario, captures)
                    .await
            }
            None => http.send(request, captures).await,
        };
        let response = match sent {
            Ok(response) => response,
            Err(error) if error.kind == ErrorKind::Redirects => {
                return Err(End::Fail(
                    self.redirect_loop(http, request, captures, &error, described)
                        .await,
                ));
            }
            Err(error) => return Err(End::Fail(transport_failure(&error, described))),
        };
        if let Some(failure) = self.maintenance(http, request, &response, &described) {
            return Err(End::Fail(failure));
        }
        let mismatches: Vec<_> = spec
            .expects
            .iter()
            .filter_map(|e| e.check(&response, captures).err())
            .collect();
        let complete = response.truncated.is_none();
        if mismatches.is_empty() && complete {
            return Ok(response);
        }
        let expected_statuses: Vec<u16> = spec
            .expects
            .iter()
            .filter_map(|e| match e {
                Expect::Status(s) => Some(s.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        let seen = diagnose::Seen {
            request: &described,
            response: &response,
            mismatches,
            expected_statuses: &expected_statuses,
            marker: http.marker(request.host.as_deref()),
            credential: request.credential(),
        };
        Err(End::Fail(diagnose::failure(seen)))
    }

    /// A redirect loop, told with the first `Location` against the request URL.
    async fn redirect_loop(
        &self,
        http: &Http,
        request: &Request,
        captures: &Captures,
        error: &RequestError,
        described: String,
    ) -> Failure {
        let first = http
            .send(&request.clone().without_redirects(), captures)
            .await
            .ok();
        let asked = http.url(request, captures).ok();
        match (first, asked) {
            (Some(response), Some(asked)) => diagnose::redirect_loop(
                &described,
                &asked,
                &response,
                http.marker(request.host.as_deref()),
            ),
            _ => transport_failure(error, described),
        }
    }

    /// Sends a request that creates something, in a task of its own that records the undo in
    /// the ledger as soon as the answer names what was created (even with a wrong status). The
    /// task outlives this step: when Ctrl-C drops the run mid-request, the runner waits for it
    /// (see [`Ctx::settle`]) so that what the server created is still undone.
    async fn send_creating(
        &self,
        http: &Http,
        request: &Request,
        spec: &HttpStep,
        undo: &Request,
        scenario: &str,
        captures: &Captures,
    ) -> Result<Response, RequestError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let client = http.clone();
        let ledger = Arc::clone(&self.ledger);
        let request = request.clone();
        let step_captures = spec.captures.clone();
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
                        http: client.clone(),
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

    /// Fetches the same-origin scripts and stylesheets of an HTML answer: each must be served
    /// as itself. A single-page app's fallback answers a file that was not shipped with the
    /// index HTML and status 200, which only the content type gives away.
    async fn assets(
        &self,
        http: &Http,
        page: &Request,
        response: &Response,
        headers: &[(String, String)],
    ) -> Option<Failure> {
        if !response
            .content_type()
            .to_ascii_lowercase()
            .contains("html")
        {
            return None;
        }
        let base = response.url.clone()?;
        let assets = referenced_assets(&response.text(), &base);
        let checks = assets.iter().map(|(url, kind)| async move {
            let request = Request {
                path: Template::new(url.as_str()),
                absolute: true,
                ..Request::get("/").for_host(page.host.as_deref())
            };
            (url, *kind, http.send(&request, &Captures::new()).await)
        });
        for (url, kind, answer) in futures::future::join_all(checks).await {
            let (wanted, hint) = match kind {
                AssetKind::Script => (
                    "a JavaScript content type",
                    "the page references a script the build did not ship (or under another name): rebuild and deploy the frontend, and make the index and its bundle one release",
                ),
                AssetKind::Style => (
                    "`text/css`",
                    "the page references a stylesheet that is not shipped: rebuild and deploy the frontend",
                ),
            };
            let failure = |actual: String, excerpt: Option<String>| Failure {
                kind: FailureKind::Mismatch,
                title: format!("the page's {} `{}` is not served", kind.noun(), url.path()),
                request: Some(format!("GET {url} (referenced by the page)")),
                expected: format!("status 200 with {wanted}"),
                actual,
                excerpt,
                hint: Some(hint.to_owned()),
                ..Failure::default()
            };
            match answer {
                Err(error) => return Some(failure(error.message, None)),
                Ok(asset) => {
                    let content_type = asset.content_type().to_ascii_lowercase();
                    let right_type = match kind {
                        AssetKind::Script => {
                            content_type.contains("javascript")
                                || content_type.contains("ecmascript")
                        }
                        AssetKind::Style => content_type.starts_with("text/css"),
                    };
                    if asset.status != 200 || !right_type {
                        let actual = if content_type.contains("html") && asset.status == 200 {
                            format!(
                                "status 200 with `{}`: the site's HTML answered for it (a fallback serving the index)",
                                asset.content_type()
                            )
                        } else {
                            format!("status {} with `{}`", asset.status, asset.content_type())
                        };
                        return Some(failure(
                            actual,
                            asset
                                .excerpt()
                                .map(|e| crate::check::excerpt(e.as_bytes(), 120)),
                        ));
                    }
                    for (name, text) in headers {
                        let value = asset.header(name).unwrap_or_default();
                        if !value
                            .to_ascii_lowercase()
                            .contains(&text.to_ascii_lowercase())
                        {
                            return Some(Failure {
                                title: format!(
                                    "the page's {} `{}` is not served with `{name}: ...{text}...`",
                                    kind.noun(),
                                    url.path()
                                ),
                                expected: format!("`{name}` containing `{text}`"),
                                actual: if value.is_empty() {
                                    format!("no `{name}` header")
                                } else {
                                    format!("`{name}: {value}`")
                                },
                                hint: Some(
                                    "serve the build's content-hashed files with their own cache policy (e.g. an nginx `location` matching the hash in the name)".to_owned(),
                                ),
                                ..failure(String::new(), None)
                            });
                        }
                    }
                }
            }
        }
        None
    }
}

/// What a page references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AssetKind {
    Script,
    Style,
}

impl AssetKind {
    fn noun(self) -> &'static str {
        match self {
            AssetKind::Script => "script",
            AssetKind::Style => "stylesheet",
        }
    }
}

/// The same-origin scripts (`<script src>`, `<link rel=modulepreload>`) and stylesheets
/// (`<link rel=stylesheet>`) an HTML page references, resolved against its URL.
fn referenced_assets(html: &str, base: &url::Url) -> Vec<(url::Url, AssetKind)> {
    let tag = regex::Regex::new(r"(?is)<(script|link)\b([^>]*)>").ok();
    let attr = |attrs: &str, name: &str| {
        let re = regex::Regex::new(&format!(
            r#"(?is)\b{name}\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))"#
        ))
        .ok()?;
        let c = re.captures(attrs)?;
        c.get(1)
            .or_else(|| c.get(2))
            .or_else(|| c.get(3))
            .map(|m| m.as_str().to_owned())
    };
    let mut found = Vec::new();
    let Some(tag) = tag else { return found };
    for c in tag.captures_iter(html) {
        let (element, attrs) = (c[1].to_ascii_lowercase(), &c[2]);
        let (reference, kind) = if element == "script" {
            match attr(attrs, "src") {
                Some(src) => (src, AssetKind::Script),
                None => continue,
            }
        } else {
            let rel = attr(attrs, "rel").unwrap_or_default().to_ascii_lowercase();
            let kind = if rel.split_whitespace().any(|r| r == "stylesheet") {
                AssetKind::Style
            } else if rel.split_whitespace().any(|r| r == "modulepreload") {
                AssetKind::Script
            } else {
                continue;
            };
            match attr(attrs, "href") {
                Some(href) => (href, kind),
                None => continue,
            }
        };
        if let Ok(url) = base.join(&reference)
            && url.origin() == base.origin()
            && !found.iter().any(|(u, _)| u == &url)
        {
            found.push((url, kind));
        }
    }
    found
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_same_origin_scripts_and_stylesheets() {
        let base = url::Url::parse("https://site.test:8443/shows/").unwrap();
        let html = r#"<html><head>
            <link rel="stylesheet" href="/site.css">
            <link rel=icon href="/favicon.ico">
            <link rel="modulepreload" href="chunk.js">
            <script src='/assets/app.3f9a.js' defer></script>
            <script>inline()</script>
            <script src="https://cdn.example/lib.js"></script>
        </head></html>"#;
        let found: Vec<(String, AssetKind)> = referenced_assets(html, &base)
            .into_iter()
            .map(|(u, k)| (u.to_string(), k))
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "https://site.test:8443/site.css".to_owned(),
                    AssetKind::Style
                ),
                (
                    "https://site.test:8443/shows/chunk.js".to_owned(),
                    AssetKind::Script
                ),
                (
                    "https://site.test:8443/assets/app.3f9a.js".to_owned(),
                    AssetKind::Script
                ),
            ]
        );
    }

    /// A page whose bundle is served with the long cache policy (`/good/`) and one whose
    /// bundle is not (`/bad/`), on loopback.
    async fn cached_site() -> url::Url {
        use axum::http::header;
        use axum::response::IntoResponse;
        use axum::routing::get;
        let page = |script: &'static str| {
            move || async move {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    format!("<!doctype html><script src=\"{script}\"></script><h1>Shop</h1>"),
                )
                    .into_response()
            }
        };
        let app = axum::Router::new()
            .route("/good/", get(page("/app.3f9a0c1d.js")))
            .route("/bad/", get(page("/app.77aa0c1d.js")))
            .route(
                "/app.3f9a0c1d.js",
                get(|| async {
                    (
                        [
                            (header::CONTENT_TYPE, "text/javascript"),
                            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                        ],
                        "1",
                    )
                        .into_response()
                }),
            )
            .route(
                "/app.77aa0c1d.js",
                get(|| async {
                    (
                        [
                            (header::CONTENT_TYPE, "text/javascript"),
                            (header::CACHE_CONTROL, "no-cache"),
                        ],
                        "1",
                    )
                        .into_response()
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        url::Url::parse(&format!("http://{addr}/")).unwrap()
    }

    #[tokio::test]
    async fn asset_headers_hold_every_bundle_of_the_page_to_its_cache_policy() {
        let text = r#"
version = 1
name = "shop"
[[pages]]
name = "good"
path = "/good/"
asset_headers_contain = { "Cache-Control" = "immutable" }
[[pages]]
name = "bad"
path = "/bad/"
asset_headers_contain = { "Cache-Control" = "immutable" }
"#;
        let suite = crate::catalog::parse(text, std::path::Path::new("checks.toml")).unwrap();
        let target = crate::runner::Target::new(cached_site().await);
        let report = crate::runner::run_until(
            &suite,
            &target,
            &crate::runner::Selection::All,
            &crate::runner::NoProgress,
            std::future::pending(),
        )
        .await;
        let outcome = |name: &str| {
            report
                .checks
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.outcome.clone())
                .unwrap()
        };
        assert_eq!(outcome("pages.good"), crate::report::Outcome::Passed);
        match outcome("pages.bad") {
            crate::report::Outcome::Failed(f) => {
                assert!(f.title.contains("`/app.77aa0c1d.js`"), "{f:?}");
                assert_eq!(f.actual, "`Cache-Control: no-cache`", "{f:?}");
            }
            other => panic!("`pages.bad` should fail: {other:?}"),
        }
    }
}
