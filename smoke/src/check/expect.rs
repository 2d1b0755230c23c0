//! Expectations on a response, and the response as the runner read it.
//!
//! Evaluation is pure: [`Expect::check`] compares a [`Response`] with what was expected and
//! returns a [`Mismatch`] holding both sides as text, ready for aligned `expected:` /
//! `actual:` lines.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::capture::{Captures, Template, json_template_names, render_json};

/// How much of a body a failure quotes.
pub const EXCERPT_LIMIT: usize = 400;

/// A response as the runner read it (body capped; see [`Response::truncated`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, at most the runner's cap.
    pub body: Vec<u8>,
    /// Why the body is incomplete, when it is (over the cap, or the connection closed early).
    pub truncated: Option<String>,
    /// From sending the request to the end of the body.
    pub latency: Duration,
    /// The URL asked (after redirects were followed, the last one).
    pub url: Option<url::Url>,
}

impl Response {
    /// A response for unit tests.
    pub fn for_test(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Self {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
                .collect(),
            body: body.to_vec(),
            truncated: None,
            latency: Duration::from_millis(5),
            url: None,
        }
    }

    /// The first value of a header (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `Content-Type`, or `(none)`.
    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("(none)")
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, or why it is not.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        if let Some(why) = &self.truncated {
            return Err(format!("the body is incomplete ({why})"));
        }
        serde_json::from_slice(&self.body).map_err(|_| {
            format!(
                "the body is not JSON (content type `{}`, starts with `{}`)",
                self.content_type(),
                excerpt(&self.body, 60)
            )
        })
    }

    /// A bounded, single-line-friendly excerpt of the body.
    pub fn excerpt(&self) -> Option<String> {
        (!self.body.is_empty()).then(|| excerpt(&self.body, EXCERPT_LIMIT))
    }
}

/// At most `limit` characters of `bytes` as text, with `…` when cut.
pub fn excerpt(bytes: &[u8], limit: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let mut out: String = text.chars().take(limit).collect();
    if text.chars().count() > limit {
        out.push('…');
    }
    out
}

/// Why an expectation was not met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What was expected, as text.
    pub expected: String,
    /// What came back, as text.
    pub actual: String,
}

/// One thing a response must meet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// The status is one of these.
    Status(Vec<u16>),
    /// The header is present with exactly this value (case-insensitive).
    HeaderEquals {
        /// Header name.
        name: String,
        /// Expected value.
        value: String,
    },
    /// The header is present and its value starts with `prefix` (case-insensitive), e.g.
    /// `WWW-Authenticate: Basic realm="staging"` for `Basic`.
    HeaderStartsWith {
        /// Header name.
        name: String,
        /// Expected start of the value.
        prefix: String,
    },
    /// The header is present.
    HeaderPresent(String),
    /// The header is absent.
    HeaderAbsent(String),
    /// The JSON value at `pointer` equals `value` (strings in `value` are templates).
    JsonEquals {
        /// A JSON pointer, e.g. `/status`.
        pointer: String,
        /// The expected value.
        value: serde_json::Value,
    },
    /// The body is JSON with a value at `pointer`.
    JsonExists(String),
    /// The body contains the text.
    BodyContains(String),
    /// The body does not contain the text.
    BodyNotContains(String),
    /// A redirect (3xx) whose `Location` starts with this (a template).
    RedirectTo(Template),
    /// A redirect (3xx) to the same resource under another scheme: `Location` has this scheme,
    /// the request's host (any port) and the request's path and query.
    RedirectKeepsResource(String),
    /// The header is present and contains the text (case-insensitive).
    HeaderContains {
        /// Header name.
        name: String,
        /// A text its value contains.
        value: String,
    },
    /// The JSON list at `at` has no item whose values at the pointers equal these.
    ListLacks {
        /// A JSON pointer to the list (empty: the body itself).
        at: String,
        /// (pointer inside an item, value) pairs, all of which an item must match.
        item: Vec<(String, serde_json::Value)>,
    },
    /// The JSON list at `at` has an item whose values at the pointers equal these.
    ListHas {
        /// A JSON pointer to the list (empty: the body itself).
        at: String,
        /// (pointer inside an item, value) pairs, all of which an item must match.
        item: Vec<(String, serde_json::Value)>,
    },
    /// Every item of the JSON list at `at` has a value at each pointer.
    ListItemsHave {
        /// A JSON pointer to the list (empty: the body itself).
        at: String,
        /// Pointers inside an item.
        pointers: Vec<String>,
    },
    /// The `Content-Type` starts with this (e.g. `text/html`).
    ContentType(String),
    /// The response took at most this long.
    MaxLatency(#[serde(with = "millis")] Duration),
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

impl Expect {
    /// Capture names used by the expectation.
    pub fn capture_names(&self) -> Vec<String> {
        match self {
            Expect::JsonEquals { value, .. } => json_template_names(value),
            Expect::RedirectTo(prefix) => prefix.names(),
            Expect::ListLacks { item, .. } | Expect::ListHas { item, .. } => item
                .iter()
                .flat_map(|(_, v)| json_template_names(v))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether `response` meets the expectation.
    pub fn check(&self, response: &Response, captures: &Captures) -> Result<(), Mismatch> {
        let fail = |expected: String, actual: String| Err(Mismatch { expected, actual });
        match self {
            Expect::Status(statuses) => {
                if statuses.contains(&response.status) {
                    return Ok(());
                }
                let expected = describe_statuses(statuses);
                fail(
                    format!("status {expected}"),
                    format!("status {}", response.status),
                )
            }
            Expect::HeaderEquals { name, value } => match response.header(name) {
                Some(actual) if actual.trim().eq_ignore_ascii_case(value) => Ok(()),
                Some(actual) => fail(format!("`{name}: {value}`"), format!("`{name}: {actual}`")),
                None => fail(format!("`{name}: {value}`"), format!("no `{name}` header")),
            },
            Expect::HeaderStartsWith { name, prefix } => match response.header(name) {
                Some(actual)
                    if actual
                        .trim()
                        .to_ascii_lowercase()
                        .starts_with(&prefix.to_ascii_lowercase()) =>
                {
                    Ok(())
                }
                Some(actual) => fail(
                    format!("`{name}: {prefix}…`"),
                    format!("`{name}: {actual}`"),
                ),
                None => fail(
                    format!("`{name}: {prefix}…`"),
                    format!("no `{name}` header"),
                ),
            },
            Expect::HeaderPresent(name) => match response.header(name) {
                Some(_) => Ok(()),
                None => fail(
                    format!("header `{name}` present"),
                    format!("no `{name}` header"),
                ),
            },
            Expect::HeaderAbsent(name) => match response.header(name) {
                None => Ok(()),
                Some(actual) => fail(
                    format!("header `{name}` absent"),
                    format!("`{name}: {actual}`"),
                ),
            },
            Expect::JsonEquals { pointer, value } => {
                let expected = render_json(value, captures).map_err(|e| Mismatch {
                    expected: format!("`{pointer}` = {value}"),
                    actual: e.to_string(),
                })?;
                let json = response.json().map_err(|why| Mismatch {
                    expected: format!("JSON with `{pointer}` = {expected}"),
                    actual: why,
                })?;
                match json.pointer(pointer) {
                    Some(actual) if json_matches(actual, &expected) => Ok(()),
                    Some(actual) => fail(
                        format!("`{pointer}` = {expected}"),
                        format!("`{pointer}` = {actual}"),
                    ),
                    None => fail(
                        format!("`{pointer}` = {expected}"),
                        format!(
                            "no value at `{pointer}` in {}",
                            excerpt(&response.body, 120)
                        ),
                    ),
                }
            }
            Expect::JsonExists(pointer) => {
                let json = response.json().map_err(|why| Mismatch {
                    expected: format!("JSON with a value at `{pointer}`"),
                    actual: why,
                })?;
                match json.pointer(pointer) {
                    Some(_) => Ok(()),
                    None => fail(
                        format!("a value at `{pointer}`"),
                        format!("none in {}", excerpt(&response.body, 120)),
                    ),
                }
            }
            Expect::BodyContains(needle) => {
                if let Some(why) = response
                    .truncated
                    .as_deref()
                    .filter(|_| !response.text().contains(needle))
                {
                    return fail(
                        format!("body containing `{needle}`"),
                        format!("the body is incomplete ({why})"),
                    );
                }
                if response.text().contains(needle) {
                    Ok(())
                } else {
                    fail(
                        format!("body containing `{needle}`"),
                        format!(
                            "{} bytes of `{}` without it",
                            response.body.len(),
                            response.content_type()
                        ),
                    )
                }
            }
            Expect::BodyNotContains(needle) => {
                if response.text().contains(needle) {
                    fail(
                        format!("body without `{needle}`"),
                        format!("the body contains `{needle}`"),
                    )
                } else {
                    Ok(())
                }
            }
            Expect::RedirectTo(prefix) => {
                let prefix = prefix.render(captures).map_err(|e| Mismatch {
                    expected: format!("a redirect to `{}`…", prefix.as_str()),
                    actual: e.to_string(),
                })?;
                let location = response.header("location");
                match location {
                    Some(to)
                        if (300..400).contains(&response.status) && to.starts_with(&prefix) =>
                    {
                        Ok(())
                    }
                    Some(to) => fail(
                        format!("a redirect to `{prefix}`…"),
                        format!("status {} to `{to}`", response.status),
                    ),
                    None => fail(
                        format!("a redirect to `{prefix}`…"),
                        format!("status {} without `Location`", response.status),
                    ),
                }
            }
            Expect::RedirectKeepsResource(scheme) => redirect_keeps_resource(scheme, response),
            Expect::HeaderContains { name, value } => match response.header(name) {
                Some(actual)
                    if actual
                        .to_ascii_lowercase()
                        .contains(&value.to_ascii_lowercase()) =>
                {
                    Ok(())
                }
                Some(actual) => fail(
                    format!("`{name}` containing `{value}`"),
                    format!("`{name}: {actual}`"),
                ),
                None => fail(
                    format!("`{name}` containing `{value}`"),
                    format!("no `{name}` header"),
                ),
            },
            Expect::ListLacks { at, item } | Expect::ListHas { at, item } => {
                let lacks = matches!(self, Expect::ListLacks { .. });
                list_item(at, item, lacks, response, captures)
            }
            Expect::ListItemsHave { at, pointers } => {
                let shown = format!(
                    "every item of the list at `{}` has {}",
                    list_label(at),
                    pointers
                        .iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let json = response.json().map_err(|why| Mismatch {
                    expected: shown.clone(),
                    actual: why,
                })?;
                let Some(items) = json.pointer(at).and_then(serde_json::Value::as_array) else {
                    return fail(
                        shown,
                        format!(
                            "no list at `{}` in {}",
                            list_label(at),
                            excerpt(&response.body, 120)
                        ),
                    );
                };
                for (index, item) in items.iter().enumerate() {
                    if let Some(missing) = pointers.iter().find(|p| item.pointer(p).is_none()) {
                        return fail(
                            shown,
                            format!(
                                "item {index} has no `{missing}`: {}",
                                excerpt(item.to_string().as_bytes(), 120)
                            ),
                        );
                    }
                }
                Ok(())
            }
            Expect::ContentType(prefix) => {
                let actual = response.content_type();
                if actual
                    .to_ascii_lowercase()
                    .starts_with(&prefix.to_ascii_lowercase())
                {
                    Ok(())
                } else {
                    fail(
                        format!("content type `{prefix}`"),
                        format!("content type `{actual}`"),
                    )
                }
            }
            Expect::MaxLatency(max) => {
                if response.latency <= *max {
                    Ok(())
                } else {
                    fail(
                        format!("at most {}ms", max.as_millis()),
                        format!("{}ms", response.latency.as_millis()),
                    )
                }
            }
        }
    }
}

/// One thing a captured value must meet (an `assert` step).
#[derive(Debug, Clone, PartialEq)]
pub enum ValueCheck {
    /// Equal to the rendered template.
    Equals(Template),
    /// Starts with the rendered template.
    StartsWith(Template),
    /// Contains the rendered template.
    Contains(Template),
    /// Does not contain the rendered template.
    NotContains(Template),
    /// Matches the regex.
    Matches(String),
}

impl ValueCheck {
    /// The template names it reads.
    pub fn names(&self) -> Vec<String> {
        match self {
            ValueCheck::Equals(t)
            | ValueCheck::StartsWith(t)
            | ValueCheck::Contains(t)
            | ValueCheck::NotContains(t) => t.names(),
            ValueCheck::Matches(_) => Vec::new(),
        }
    }

    /// Whether `value` meets it.
    pub fn check(&self, value: &str, captures: &Captures) -> Result<(), Mismatch> {
        let render = |t: &Template| {
            t.render(captures).map_err(|e| Mismatch {
                expected: format!("a value meeting `{}`", t.as_str()),
                actual: e.to_string(),
            })
        };
        let shown = excerpt(value.as_bytes(), 200);
        let (ok, expected) = match self {
            ValueCheck::Equals(t) => {
                let want = render(t)?;
                (value == want, format!("`{want}`"))
            }
            ValueCheck::StartsWith(t) => {
                let want = render(t)?;
                (
                    value.starts_with(&want),
                    format!("a value starting with `{want}`"),
                )
            }
            ValueCheck::Contains(t) => {
                let want = render(t)?;
                (
                    value.contains(&want),
                    format!("a value containing `{want}`"),
                )
            }
            ValueCheck::NotContains(t) => {
                let want = render(t)?;
                (!value.contains(&want), format!("a value without `{want}`"))
            }
            ValueCheck::Matches(pattern) => {
                let regex = regex::Regex::new(pattern).map_err(|e| Mismatch {
                    expected: format!("a value matching `{pattern}`"),
                    actual: format!("the regex is invalid: {e}"),
                })?;
                (
                    regex.is_match(value),
                    format!("a value matching `{pattern}`"),
                )
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Mismatch {
                expected,
                actual: format!("`{shown}`"),
            })
        }
    }
}

/// Statuses for people: `200`, `401 or 403`, `4xx`.
pub fn describe_statuses(statuses: &[u16]) -> String {
    let mut parts = Vec::new();
    let mut rest: Vec<u16> = statuses.to_vec();
    for class in 1..=5u16 {
        let range = class * 100..class * 100 + 100;
        if range.clone().all(|s| rest.contains(&s)) {
            parts.push(format!("{class}xx"));
            rest.retain(|s| !range.contains(s));
        }
    }
    parts.extend(rest.iter().map(u16::to_string));
    parts.join(" or ")
}

fn list_label(at: &str) -> &str {
    if at.is_empty() { "/" } else { at }
}

fn list_item(
    at: &str,
    item: &[(String, serde_json::Value)],
    lacks: bool,
    response: &Response,
    captures: &Captures,
) -> Result<(), Mismatch> {
    let mut wanted = Vec::new();
    for (pointer, value) in item {
        let value = render_json(value, captures).map_err(|e| Mismatch {
            expected: format!("an item with `{pointer}` = {value}"),
            actual: e.to_string(),
        })?;
        wanted.push((pointer.as_str(), value));
    }
    let described = wanted
        .iter()
        .map(|(p, v)| format!("`{p}` = {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let expected = if lacks {
        format!(
            "no item with {described} in the list at `{}`",
            list_label(at)
        )
    } else {
        format!(
            "an item with {described} in the list at `{}`",
            list_label(at)
        )
    };
    let json = response.json().map_err(|why| Mismatch {
        expected: expected.clone(),
        actual: why,
    })?;
    let Some(items) = json.pointer(at).and_then(serde_json::Value::as_array) else {
        return Err(Mismatch {
            expected,
            actual: format!(
                "no list at `{}` in {}",
                list_label(at),
                excerpt(&response.body, 120)
            ),
        });
    };
    let found = items.iter().position(|candidate| {
        wanted
            .iter()
            .all(|(p, v)| candidate.pointer(p).is_some_and(|a| json_matches(a, v)))
    });
    match (found, lacks) {
        (None, true) | (Some(_), false) => Ok(()),
        (Some(index), true) => Err(Mismatch {
            expected,
            actual: format!(
                "item {index} of {} matches: {}",
                items.len(),
                excerpt(items[index].to_string().as_bytes(), 120)
            ),
        }),
        (None, false) => Err(Mismatch {
            expected,
            actual: format!("none of {} items matches", items.len()),
        }),
    }
}

fn redirect_keeps_resource(scheme: &str, response: &Response) -> Result<(), Mismatch> {
    let expected = match &response.url {
        Some(url) => {
            let mut want = url.clone();
            let _ = want.set_scheme(scheme);
            let _ = want.set_port(None);
            format!("a redirect to `{want}` (any port)")
        }
        None => format!("a redirect to the same path over `{scheme}`"),
    };
    let fail = |actual: String| {
        Err(Mismatch {
            expected: expected.clone(),
            actual,
        })
    };
    if !(300..400).contains(&response.status) {
        return fail(format!("status {}", response.status));
    }
    let Some(location) = response.header("location") else {
        return fail(format!("status {} without `Location`", response.status));
    };
    let base = response.url.clone();
    let target = match &base {
        Some(base) => base.join(location),
        None => url::Url::parse(location),
    };
    let Ok(target) = target else {
        return fail(format!("`Location: {location}` is not a URL"));
    };
    let Some(asked) = base else {
        return if target.scheme() == scheme {
            Ok(())
        } else {
            fail(format!("`Location: {location}`"))
        };
    };
    let same = target.scheme() == scheme
        && target.host_str() == asked.host_str()
        && target.path() == asked.path()
        && target.query() == asked.query();
    if same {
        Ok(())
    } else {
        fail(format!("`Location: {location}`"))
    }
}

/// JSON equality that also accepts a number given as the string of it (ids captured as text).
fn json_matches(actual: &serde_json::Value, expected: &serde_json::Value) -> bool {
    actual == expected
        || match (actual, expected) {
            (serde_json::Value::Number(n), serde_json::Value::String(s))
            | (serde_json::Value::String(s), serde_json::Value::Number(n)) => n.to_string() == *s,
            _ => false,
        }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::check::Value;
    use rstest::rstest;

    fn json_response(status: u16, body: &str) -> Response {
        Response::for_test(
            status,
            &[
                ("Content-Type", "application/json"),
                ("X-Backend", "django"),
            ],
            body.as_bytes(),
        )
    }

    #[rstest]
    #[case(Expect::Status(vec![200]), json_response(200, "{}"))]
    #[case(Expect::Status(vec![401, 403]), json_response(403, "{}"))]
    #[case(Expect::HeaderEquals { name: "x-backend".into(), value: "Django".into() }, json_response(200, "{}"))]
    #[case(Expect::HeaderPresent("X-BACKEND".into()), json_response(200, "{}"))]
    #[case(Expect::HeaderAbsent("Strict-Transport-Security".into()), json_response(200, "{}"))]
    #[case(Expect::JsonEquals { pointer: "/status".into(), value: "ok".into() }, json_response(200, r#"{"status":"ok"}"#))]
    #[case(Expect::JsonEquals { pointer: "/id".into(), value: "7".into() }, json_response(200, r#"{"id":7}"#))]
    #[case(Expect::JsonExists("/email".into()), json_response(400, r#"{"email":["bad"]}"#))]
    #[case(Expect::BodyContains("azionelab".into()), json_response(200, "<meta content=\"azionelab\">"))]
    #[case(Expect::BodyNotContains("<html".into()), json_response(404, r#"{"detail":"x"}"#))]
    #[case(Expect::ContentType("application/json".into()), json_response(200, "{}"))]
    #[case(Expect::MaxLatency(Duration::from_secs(1)), json_response(200, "{}"))]
    #[case(
        Expect::RedirectTo(Template::new("https://")),
        Response::for_test(301, &[("Location", "https://example.test/")], b"")
    )]
    fn expectation_is_met(#[case] expect: Expect, #[case] response: Response) {
        assert_eq!(expect.check(&response, &Captures::new()), Ok(()));
    }

    #[rstest]
    #[case(Expect::Status(vec![200]), json_response(502, "{}"), "status 200", "status 502")]
    #[case(Expect::Status(vec![401, 403]), json_response(200, "{}"), "status 401 or 403", "status 200")]
    #[case(Expect::HeaderAbsent("X-Backend".into()), json_response(200, "{}"), "header `X-Backend` absent", "`X-Backend: django`")]
    #[case(Expect::HeaderPresent("X-Frame-Options".into()), json_response(200, "{}"), "header `X-Frame-Options` present", "no `X-Frame-Options` header")]
    #[case(
        Expect::JsonEquals { pointer: "/database".into(), value: "ok".into() },
        json_response(503, r#"{"database":"unreachable: timeout"}"#),
        "`/database` = \"ok\"",
        "`/database` = \"unreachable: timeout\""
    )]
    #[case(
        Expect::JsonEquals { pointer: "/status".into(), value: "ok".into() },
        Response::for_test(200, &[("Content-Type", "text/html")], b"<!doctype html><html>"),
        "JSON with `/status` = \"ok\"",
        "the body is not JSON (content type `text/html`, starts with `<!doctype html><html>`)"
    )]
    #[case(Expect::ContentType("text/css".into()), json_response(200, "{}"), "content type `text/css`", "content type `application/json`")]
    #[case(
        Expect::RedirectTo(Template::new("https://")),
        Response::for_test(200, &[], b"hi"),
        "a redirect to `https://`…",
        "status 200 without `Location`"
    )]
    #[case(
        Expect::RedirectTo(Template::new("https://")),
        Response::for_test(302, &[("Location", "http://x/")], b""),
        "a redirect to `https://`…",
        "status 302 to `http://x/`"
    )]
    fn expectation_mismatch_says_both_sides(
        #[case] expect: Expect,
        #[case] response: Response,
        #[case] expected: &str,
        #[case] actual: &str,
    ) {
        let mismatch = expect.check(&response, &Captures::new()).unwrap_err();
        assert_eq!(
            (mismatch.expected.as_str(), mismatch.actual.as_str()),
            (expected, actual)
        );
    }

    #[test]
    fn json_expectation_renders_captures() {
        let captures: Captures = [("reference".to_owned(), Value::Text("AB12".to_owned()))].into();
        let expect = Expect::JsonEquals {
            pointer: "/reference".into(),
            value: "{{reference}}".into(),
        };
        assert_eq!(
            expect.check(&json_response(201, r#"{"reference":"AB12"}"#), &captures),
            Ok(())
        );
        let wrong = expect
            .check(&json_response(201, r#"{"reference":"ZZ"}"#), &captures)
            .unwrap_err();
        assert_eq!(wrong.expected, "`/reference` = \"AB12\"");
    }

    #[test]
    fn body_expectations_on_truncated_bodies_say_so() {
        let mut response = Response::for_test(200, &[], b"<html>partial");
        response.truncated = Some("over the 1 MiB cap".into());
        let mismatch = Expect::BodyContains("</html>".into())
            .check(&response, &Captures::new())
            .unwrap_err();
        assert_eq!(
            mismatch.actual,
            "the body is incomplete (over the 1 MiB cap)"
        );
    }

    #[test]
    fn excerpt_is_bounded() {
        let long = "x".repeat(5000);
        let cut = excerpt(long.as_bytes(), 10);
        assert_eq!(cut, format!("{}…", "x".repeat(10)));
    }
}
