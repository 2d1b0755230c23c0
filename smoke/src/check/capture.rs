//! Templates (`{{name}}` placeholders) and the values captured from responses that fill them.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Response;

/// A captured value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Text: an id, a reference, a token.
    Text(String),
    /// Bytes: a PNG attachment.
    Bytes(Vec<u8>),
}

/// The values captured so far in one scenario, by name.
pub type Captures = HashMap<String, Value>;

/// A template used a capture that no step produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no value captured for `{{{{{0}}}}}`")]
pub struct MissingCapture(pub String);

/// Text with `{{name}}` placeholders filled from [`Captures`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Template(String);

impl Template {
    /// A template; text without `{{` is used as is.
    pub fn new(text: impl Into<String>) -> Self {
        Template(text.into())
    }

    /// The raw template text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The placeholder names, in order of appearance.
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = self.0.as_str();
        while let Some(start) = rest.find("{{") {
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else { break };
            names.push(after[..end].trim().to_owned());
            rest = &after[end + 2..];
        }
        names
    }

    /// The text with every placeholder replaced; bytes captures are not text and count as
    /// missing.
    pub fn render(&self, captures: &Captures) -> Result<String, MissingCapture> {
        let mut out = String::with_capacity(self.0.len());
        let mut rest = self.0.as_str();
        while let Some(start) = rest.find("{{") {
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else { break };
            let name = after[..end].trim();
            match captures.get(name) {
                Some(Value::Text(value)) => {
                    out.push_str(&rest[..start]);
                    out.push_str(value);
                }
                _ => return Err(MissingCapture(name.to_owned())),
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

impl From<&str> for Template {
    fn from(text: &str) -> Self {
        Template::new(text)
    }
}

/// The placeholder names in every string of a JSON value.
pub(crate) fn json_template_names(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::String(s) => Template::new(s.as_str()).names(),
        serde_json::Value::Array(items) => items.iter().flat_map(json_template_names).collect(),
        serde_json::Value::Object(map) => map.values().flat_map(json_template_names).collect(),
        _ => Vec::new(),
    }
}

/// Renders every string in a JSON value. A string that is exactly one placeholder whose value
/// is an integer becomes a JSON number, so `{"show": "{{show_id}}"}` sends `{"show": 42}`.
pub(crate) fn render_json(
    value: &serde_json::Value,
    captures: &Captures,
) -> Result<serde_json::Value, MissingCapture> {
    Ok(match value {
        serde_json::Value::String(s) => {
            let template = Template::new(s.as_str());
            let rendered = template.render(captures)?;
            let whole = s.starts_with("{{") && s.ends_with("}}") && template.names().len() == 1;
            match rendered.parse::<i64>() {
                Ok(number) if whole => serde_json::Value::from(number),
                _ => serde_json::Value::String(rendered),
            }
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .map(|v| render_json(v, captures))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(v, captures)?)))
                .collect::<Result<_, MissingCapture>>()?,
        ),
        other => other.clone(),
    })
}

/// Where a captured value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureSource {
    /// A JSON pointer into the body (`/id`); numbers are captured as their text.
    JsonPointer(String),
    /// A response header.
    Header(String),
    /// The first group of a regex over the body.
    BodyRegex(String),
    /// A cookie the response sets (`Set-Cookie`).
    Cookie(String),
}

/// "Store this part of the response as `name`."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// The capture name used in later templates.
    pub name: String,
    /// Where it comes from.
    pub source: CaptureSource,
}

impl Capture {
    /// Captures the value at a JSON pointer.
    pub fn json(name: &str, pointer: &str) -> Self {
        Capture {
            name: name.to_owned(),
            source: CaptureSource::JsonPointer(pointer.to_owned()),
        }
    }

    /// Takes the value from `response`, or says why it cannot.
    pub fn extract(&self, response: &Response) -> Result<String, String> {
        match &self.source {
            CaptureSource::JsonPointer(pointer) => {
                let json = response
                    .json()
                    .map_err(|e| format!("cannot capture `{}`: {e}", self.name))?;
                match json.pointer(pointer) {
                    Some(serde_json::Value::String(s)) => Ok(s.clone()),
                    Some(serde_json::Value::Null) | None => Err(format!(
                        "cannot capture `{}`: the JSON body has no value at `{pointer}`",
                        self.name
                    )),
                    Some(other) => Ok(other.to_string()),
                }
            }
            CaptureSource::Header(header) => response
                .header(header)
                .map(str::to_owned)
                .ok_or_else(|| format!("cannot capture `{}`: no `{header}` header", self.name)),
            CaptureSource::Cookie(cookie) => response
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
                .find_map(|(_, v)| {
                    let pair = v.split(';').next()?.trim();
                    let (name, value) = pair.split_once('=')?;
                    (name.trim() == cookie).then(|| value.trim().trim_matches('"').to_owned())
                })
                .ok_or_else(|| {
                    format!(
                        "cannot capture `{}`: the answer sets no `{cookie}` cookie",
                        self.name
                    )
                }),
            CaptureSource::BodyRegex(pattern) => {
                let regex = regex::Regex::new(pattern)
                    .map_err(|e| format!("cannot capture `{}`: invalid regex: {e}", self.name))?;
                regex
                    .captures(&response.text())
                    .and_then(|c| c.get(1))
                    .map(|m| m.as_str().to_owned())
                    .ok_or_else(|| {
                        format!(
                            "cannot capture `{}`: the body does not match `{pattern}`",
                            self.name
                        )
                    })
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn captures(pairs: &[(&str, &str)]) -> Captures {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::Text((*v).to_owned())))
            .collect()
    }

    #[rstest]
    #[case("/api/shows/", &[], "/api/shows/")]
    #[case("/api/shows/{{show_id}}/", &[("show_id", "42")], "/api/shows/42/")]
    #[case("{{ a }}-{{b}}", &[("a", "x"), ("b", "y")], "x-y")]
    #[case("unclosed {{a", &[("a", "x")], "unclosed {{a")]
    fn template_renders_placeholders(
        #[case] template: &str,
        #[case] pairs: &[(&str, &str)],
        #[case] expected: &str,
    ) {
        assert_eq!(
            Template::new(template).render(&captures(pairs)),
            Ok(expected.to_owned())
        );
    }

    #[test]
    fn template_reports_the_missing_capture() {
        let err = Template::new("/x/{{show_id}}/")
            .render(&Captures::new())
            .unwrap_err();
        assert_eq!(err, MissingCapture("show_id".to_owned()));
        assert_eq!(err.to_string(), "no value captured for `{{show_id}}`");
    }

    #[test]
    fn json_body_turns_whole_numeric_placeholders_into_numbers() {
        let body = serde_json::json!({"show": "{{id}}", "name": "n {{id}}", "seats": 1});
        let rendered = render_json(&body, &captures(&[("id", "7")])).unwrap();
        assert_eq!(
            rendered,
            serde_json::json!({"show": 7, "name": "n 7", "seats": 1})
        );
    }

    #[rstest]
    #[case(Capture::json("id", "/id"), br#"{"id": 42}"#.as_slice(), Ok("42"))]
    #[case(Capture::json("r", "/reference"), br#"{"reference": "AB12"}"#.as_slice(), Ok("AB12"))]
    #[case(Capture::json("id", "/id"), br#"{"other": 1}"#.as_slice(), Err("no value at `/id`"))]
    #[case(Capture::json("id", "/id"), b"<html>".as_slice(), Err("not JSON"))]
    #[case(
        Capture { name: "t".into(), source: CaptureSource::BodyRegex("token=([A-Za-z0-9_-]+)".into()) },
        b"go to /confirm/?token=abc_-9 now".as_slice(),
        Ok("abc_-9")
    )]
    fn capture_extracts_or_explains(
        #[case] capture: Capture,
        #[case] body: &[u8],
        #[case] expected: Result<&str, &str>,
    ) {
        let response = Response::for_test(200, &[("content-type", "application/json")], body);
        match (capture.extract(&response), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(got), Err(want)) => assert!(got.contains(want), "{got:?} should contain {want:?}"),
            (got, want) => panic!("got {got:?}, wanted {want:?}"),
        }
    }
}
