//! What actually failed, before what to do about it.
//!
//! A check knows what it expected; when the answer differs, the reason is often not the
//! check's subject at all: the proxy refused the body (413), the backend crashed (5xx), the
//! request never reached the backend (the site's HTML answered), Django runs with `DEBUG` on,
//! the credentials were refused. [`failure`] classifies the answer first (who answered,
//! thanks to the backend marker; which status class), then picks the title and hint of that
//! class, and says each fact once. Only a plain mismatch keeps the check's own hint.

use crate::check::{BackendMarker, Mismatch, Response, describe_statuses, excerpt};
use crate::report::{Failure, FailureKind};

/// What a check saw.
#[derive(Debug)]
pub(crate) struct Seen<'a> {
    /// `METHOD URL`.
    pub request: &'a str,
    /// The answer.
    pub response: &'a Response,
    /// The expectations it did not meet.
    pub mismatches: Vec<Mismatch>,
    /// The statuses it expected (empty: any).
    pub expected_statuses: &'a [u16],
    /// The header only the backend sets.
    pub marker: Option<&'a BackendMarker>,
    /// The named credentials the request sent.
    pub credential: Option<&'a str>,
}

/// Who produced an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// The backend (its marker is on the answer).
    Backend,
    /// Not the backend: the proxy, or the static site behind it.
    Proxy,
    /// No marker is described, so nobody can tell.
    Unknown,
}

impl Who {
    fn of(response: &Response, marker: Option<&BackendMarker>) -> Who {
        match marker {
            Some(marker) if marker.on(response) => Who::Backend,
            Some(_) => Who::Proxy,
            None => Who::Unknown,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Who::Backend => "the backend",
            Who::Proxy => "the proxy",
            Who::Unknown => "the server",
        }
    }
}

/// Django's technical error pages, shown only with `DEBUG = True`.
fn is_django_debug_page(response: &Response) -> bool {
    let text = response.text();
    text.contains("You’re seeing this error because you have <code>DEBUG = True</code>")
        || text.contains("you have <code>DEBUG = True</code> in")
        || text.contains("Using the URLconf defined in")
        || (text.contains("Traceback") && text.contains("Django Version:"))
}

fn is_html(response: &Response) -> bool {
    response
        .content_type()
        .to_ascii_lowercase()
        .contains("html")
}

/// The expectations and what came back, each fact once: when the body is not JSON, every
/// JSON expectation says so, and one line is enough.
fn sides(mismatches: &[Mismatch]) -> (String, String) {
    let mut expected: Vec<&str> = Vec::new();
    let mut actual: Vec<&str> = Vec::new();
    for m in mismatches {
        if !expected.contains(&m.expected.as_str()) {
            expected.push(&m.expected);
        }
        if !actual.contains(&m.actual.as_str()) {
            actual.push(&m.actual);
        }
    }
    (expected.join("; "), actual.join("; "))
}

/// The failure for an answer that did not meet its expectations.
pub(crate) fn failure(seen: Seen<'_>) -> Failure {
    let response = seen.response;
    let status = response.status;
    let who = Who::of(response, seen.marker);
    let status_expected = seen.expected_statuses.contains(&status);
    let statuses = if seen.expected_statuses.is_empty() {
        "any status".to_owned()
    } else {
        format!("status {}", describe_statuses(seen.expected_statuses))
    };
    let excerpt = response.excerpt();
    let make =
        |kind, title: String, expected: String, actual: String, hint: Option<String>| Failure {
            kind,
            title,
            request: Some(seen.request.to_owned()),
            expected,
            actual,
            excerpt: excerpt.clone(),
            hint,
            ..Failure::default()
        };
    let with_who = |status: u16| match who {
        Who::Unknown => format!("status {status}"),
        _ => format!("status {status} from {}", who.name()),
    };

    if let Some(why) = &response.truncated
        && seen.mismatches.is_empty()
    {
        return make(
            FailureKind::Mismatch,
            format!("the body is incomplete: {why}"),
            "a complete body".to_owned(),
            format!("the body is incomplete ({why})"),
            Some("a proxy or the backend cut the answer; check their logs and limits".to_owned()),
        );
    }
    if who == Who::Backend && is_html(response) && is_django_debug_page(response) {
        let (expected, _) = sides(&seen.mismatches);
        return make(
            FailureKind::Mismatch,
            format!("Django answered its DEBUG error page (status {status}): DEBUG is on"),
            expected,
            format!("status {status} with Django's technical error page (`DEBUG = True`)"),
            Some(
                "turn DEBUG off in production: the page leaks settings, code and URL patterns"
                    .to_owned(),
            ),
        );
    }
    if !status_expected {
        if status == 413 {
            let hint = match who {
                Who::Backend => {
                    "Django refused the body: raise `DATA_UPLOAD_MAX_MEMORY_SIZE` (or `FILE_UPLOAD_MAX_MEMORY_SIZE`) if such bodies are legitimate"
                }
                _ => {
                    "the proxy refuses request bodies of this size: set `client_max_body_size` for this location in nginx to what the app accepts"
                }
            };
            return make(
                FailureKind::Mismatch,
                format!(
                    "the request body was refused as too large ({})",
                    with_who(status)
                ),
                statuses,
                format!("status 413 (Request Entity Too Large) from {}", who.name()),
                Some(hint.to_owned()),
            );
        }
        if status >= 500 {
            let (title, hint) = match (who, status) {
                (Who::Backend, _) => (
                    format!("the backend failed: status {status}"),
                    "the backend raised an error: read its log for this request (`docker compose logs` of the backend service)",
                ),
                (Who::Proxy | Who::Unknown, 502 | 504) => (
                    format!("the proxy could not get an answer from the backend: status {status}"),
                    "is the backend running and healthy? does the proxy's `proxy_pass` name it? read both logs",
                ),
                (Who::Proxy, _) => (
                    format!("the proxy answered status {status}"),
                    "the proxy itself failed or refused (overloaded, rate-limited, no upstream): read its log",
                ),
                (Who::Unknown, _) => (
                    format!("server error: status {status}"),
                    "look at the logs of the proxy and the backend for this request",
                ),
            };
            return make(
                FailureKind::ServerError,
                title,
                statuses,
                format!("status {status}"),
                Some(hint.to_owned()),
            );
        }
        if matches!(status, 401 | 403) {
            let (title, hint) = match seen.credential {
                Some(credential) => (
                    format!("refused with the `{credential}` credentials: {}", with_who(status)),
                    format!(
                        "are the `{credential}` credentials right and allowed to do this? (the gate makes them with its operations; after a deploy, check the variable that holds them)"
                    ),
                ),
                None => (
                    format!("refused without credentials: {}", with_who(status)),
                    "this should be open to anyone: a permission, an authentication class or the proxy asks for credentials".to_owned(),
                ),
            };
            return make(
                FailureKind::Mismatch,
                title,
                statuses,
                with_who(status),
                Some(hint),
            );
        }
        if status == 404 && who == Who::Proxy {
            let what = if is_html(response) {
                "an HTML 404 without the backend marker"
            } else {
                "a 404 without the backend marker"
            };
            return make(
                FailureKind::Mismatch,
                "the proxy answered 404: the request did not reach the backend".to_owned(),
                statuses,
                format!("status 404: {what}"),
                Some("no proxy location sends this path to the backend, or the file is not where the proxy serves it from".to_owned()),
            );
        }
    }
    if status_expected || seen.expected_statuses.is_empty() || status < 400 {
        // The answer's status is fine (or a redirect): now who answered and in what form.
        let not_json = seen
            .mismatches
            .iter()
            .any(|m| m.actual.starts_with("the body is not JSON"));
        if not_json {
            let (expected, _) = sides(&seen.mismatches);
            let (title, hint) = match (who, is_html(response)) {
                (Who::Proxy, true) => (
                    "the site's HTML answered where the backend's JSON was expected".to_owned(),
                    "the path is not proxied to the backend: a fallback (`try_files ... /index.html`) or another location answers it",
                ),
                (Who::Backend, true) => (
                    "the backend answered HTML where JSON was expected".to_owned(),
                    "a Django HTML page (an error page, a CSRF failure, a template view) answered: is the URL the API's?",
                ),
                (_, true) => (
                    "HTML where JSON was expected".to_owned(),
                    "is this path routed to the backend? a proxy may be answering with the site index",
                ),
                _ => (
                    "the body is not JSON".to_owned(),
                    "the endpoint must answer JSON",
                ),
            };
            return make(
                FailureKind::Mismatch,
                title,
                expected,
                format!("{} with `{}`", with_who(status), response.content_type()),
                Some(hint.to_owned()),
            );
        }
    }
    let (expected, actual) = sides(&seen.mismatches);
    let title = if !status_expected && !seen.expected_statuses.is_empty() {
        format!(
            "unexpected status {status} (expected {})",
            describe_statuses(seen.expected_statuses)
        )
    } else {
        format!(
            "unexpected answer: {}",
            seen.mismatches.first().map_or("?", |m| m.actual.as_str())
        )
    };
    make(FailureKind::Mismatch, title, expected, actual, None)
}

/// A redirect loop, told with the first `Location` against the request URL: a `Location`
/// equal to the request URL is the sign of a backend that does not know the request came over
/// HTTPS (the proxy dropped `X-Forwarded-Proto`).
pub(crate) fn redirect_loop(
    request: &str,
    asked: &url::Url,
    first: &Response,
    marker: Option<&BackendMarker>,
) -> Failure {
    let location = first.header("location").unwrap_or("");
    let target = asked.join(location).ok();
    let same = target.as_ref().is_some_and(|t| t == asked);
    let who = match Who::of(first, marker) {
        Who::Unknown => String::new(),
        who => format!(" from {}", who.name()),
    };
    let (title, hint) = if same {
        (
            "redirect loop: `Location` is the request URL itself".to_owned(),
            if asked.scheme() == "https" {
                "the backend redirects HTTPS requests to HTTPS: it does not see they came over HTTPS. The proxy must send `X-Forwarded-Proto $scheme` (nginx: `proxy_set_header X-Forwarded-Proto $scheme;`) and Django trust it (`SECURE_PROXY_SSL_HEADER`)"
            } else {
                "the answer redirects to the URL it answers: check the redirect rules of the proxy and the app"
            },
        )
    } else {
        (
            "redirect loop: more than 10 redirects".to_owned(),
            "follow the `Location` headers with `curl -sIL`: two rules send requests back and forth",
        )
    };
    Failure {
        kind: FailureKind::Transport,
        title,
        request: Some(request.to_owned()),
        expected: "an answer after at most 10 redirects".to_owned(),
        actual: format!(
            "status {}{who} with `Location: {location}` for `{asked}`",
            first.status
        ),
        excerpt: first.excerpt().map(|e| excerpt(e.as_bytes(), 200)),
        hint: Some(hint.to_owned()),
        ..Failure::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::check::{Captures, Expect};

    fn marker() -> BackendMarker {
        BackendMarker {
            header: "X-Backend".into(),
            value: Some("django".into()),
        }
    }

    fn judge(expects: &[Expect], response: &Response, credential: Option<&str>) -> Failure {
        let mismatches = expects
            .iter()
            .filter_map(|e| e.check(response, &Captures::new()).err())
            .collect();
        let statuses: Vec<u16> = expects
            .iter()
            .filter_map(|e| match e {
                Expect::Status(s) => Some(s.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        let marker = marker();
        failure(Seen {
            request: "POST https://site.test/api/bookings/",
            response,
            mismatches,
            expected_statuses: &statuses,
            marker: Some(&marker),
            credential,
        })
    }

    fn json_expects() -> Vec<Expect> {
        vec![
            Expect::Status(vec![201]),
            Expect::ContentType("application/json".into()),
            Expect::JsonEquals {
                pointer: "/status".into(),
                value: "pending".into(),
            },
            Expect::JsonExists("/reference".into()),
        ]
    }

    fn rendered(failure: &Failure) -> String {
        crate::report::render_failure("booking.create", failure)
    }

    #[test]
    fn a_413_from_the_proxy_says_so_and_names_client_max_body_size() {
        let response = Response::for_test(
            413,
            &[("Content-Type", "text/html")],
            b"<html><head><title>413 Request Entity Too Large</title></head></html>",
        );
        insta::assert_snapshot!(rendered(&judge(&json_expects(), &response, None)));
    }

    #[test]
    fn a_502_says_the_proxy_could_not_reach_the_backend_once() {
        let response = Response::for_test(
            502,
            &[("Content-Type", "text/html")],
            b"<html><head><title>502 Bad Gateway</title></head></html>",
        );
        let failure = judge(&json_expects(), &response, None);
        assert_eq!(failure.kind, FailureKind::ServerError);
        assert!(!rendered(&failure).contains("not JSON"));
        insta::assert_snapshot!(rendered(&failure));
    }

    #[test]
    fn a_django_debug_404_is_blamed_on_debug_not_on_the_fallback() {
        let response = Response::for_test(
            404,
            &[("Content-Type", "text/html"), ("X-Backend", "django")],
            b"<html><body>Using the URLconf defined in <code>azionelab.urls</code> ... You\xe2\x80\x99re seeing this error because you have <code>DEBUG = True</code> in your Django settings file.</body></html>",
        );
        insta::assert_snapshot!(rendered(&judge(
            &[
                Expect::Status(vec![404]),
                Expect::ContentType("application/json".into())
            ],
            &response,
            None
        )));
    }

    #[test]
    fn the_site_index_answering_an_api_path_is_the_fallback() {
        let response = Response::for_test(
            200,
            &[("Content-Type", "text/html")],
            b"<!doctype html><meta name=\"app\" content=\"azionelab\">",
        );
        insta::assert_snapshot!(rendered(&judge(
            &[
                Expect::Status(vec![200]),
                Expect::JsonEquals {
                    pointer: "/a".into(),
                    value: 1.into()
                },
                Expect::JsonExists("/b".into()),
            ],
            &response,
            None
        )));
    }

    #[test]
    fn a_403_with_credentials_questions_the_credentials() {
        let response = Response::for_test(
            403,
            &[
                ("Content-Type", "application/json"),
                ("X-Backend", "django"),
            ],
            br#"{"detail":"You do not have permission to perform this action."}"#,
        );
        insta::assert_snapshot!(rendered(&judge(&json_expects(), &response, Some("staff"))));
    }

    #[test]
    fn a_plain_mismatch_keeps_the_checks_own_hint() {
        let response = Response::for_test(
            201,
            &[
                ("Content-Type", "application/json"),
                ("X-Backend", "django"),
            ],
            br#"{"status":"confirmed","reference":"AB"}"#,
        );
        let failure = judge(&json_expects(), &response, None);
        assert_eq!(
            failure.hint, None,
            "the step's own hint is added by the runner"
        );
        assert_eq!(
            failure.title,
            "unexpected answer: `/status` = \"confirmed\""
        );
    }

    #[test]
    fn a_redirect_to_itself_points_at_x_forwarded_proto() {
        let asked = url::Url::parse("https://localhost:8443/api/shows/").unwrap();
        let first = Response::for_test(
            301,
            &[
                ("Location", "https://localhost:8443/api/shows/"),
                ("X-Backend", "django"),
            ],
            b"",
        );
        let marker = marker();
        insta::assert_snapshot!(rendered(&redirect_loop(
            "GET https://localhost:8443/api/shows/",
            &asked,
            &first,
            Some(&marker)
        )));
    }
}
