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

use crate::check::{Category, Expect, HttpStep, Readiness, Request, Scheme, Step, Suite, Template};

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
    let mut checks = Vec::new();
    let readiness = match &file.health {
        Some(health) => {
            check_path(&health.path).map_err(|m| invalid(format!("`[health]`: {m}")))?;
            let mut expects = vec![Expect::Status(
                health.status.as_ref().map_or(vec![200], StatusSpec::to_vec),
            )];
            if let Some(ct) = &health.content_type {
                expects.push(Expect::ContentType(ct.clone()));
            }
            for (pointer, value) in &health.json {
                expects.push(
                    json_expect(pointer, value).map_err(|m| invalid(format!("`[health]`: {m}")))?,
                );
            }
            expects.extend(health.contains.iter().cloned().map(Expect::BodyContains));
            let name = health.name.clone().unwrap_or_else(|| "ok".to_owned());
            check_name(&name).map_err(|m| invalid(format!("`[health]`: {m}")))?;
            let proves = health
                .proves
                .clone()
                .unwrap_or_else(|| format!("`{}` says the stack is healthy", health.path));
            let mut step = Step::http(
                Category::Health,
                &name,
                &proves,
                HttpStep::new(Request::get(&health.path), expects.clone()),
            );
            step.hint.clone_from(&health.hint);
            checks.push(step);
            Readiness {
                path: health.path.clone(),
                expects,
            }
        }
        // Without a health endpoint, any answer from the root that is not a server error.
        None => Readiness {
            path: "/".to_owned(),
            expects: vec![Expect::Status((200..500).collect())],
        },
    };
    for (category, table, specs) in [
        (Category::Pages, "pages", &file.pages),
        (Category::Routing, "routes", &file.routes),
    ] {
        for (index, spec) in specs.iter().enumerate() {
            let at = |m: String| {
                invalid(format!(
                    "`[[{table}]]` #{} (`{}`): {m}",
                    index + 1,
                    spec.name
                ))
            };
            checks.push(route_step(category, spec, file.backend_marker.as_ref()).map_err(at)?);
        }
    }
    let mut seen = std::collections::HashSet::new();
    for step in &checks {
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
        scenarios: Vec::new(),
    })
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
    fn invalid_files_say_what_is_wrong(#[case] text: &str, #[case] expected: &str) {
        let error = parse_str(text).unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
        assert!(error.contains("`stack.toml`"), "{error}");
    }
}
