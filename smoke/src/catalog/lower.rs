//! From the checks file as written ([`super::schema`]) to the model the runner runs
//! ([`crate::check::Suite`]): names and paths validated, expectations built, templates checked
//! against what earlier steps capture, files read. Every error names the entry (and its line
//! when known) and, for a misspelt name, the closest known one.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::schema::{
    BasicAuthSpec, BrowserActionSpec, BrowserSpec, CaptureSpec, ChecksFile, EmailSpec, ExpectSpec,
    Expectations, HealthSpec, HostSpec, PartSpec, RateLimitSpec, RequestSpec, RouteSpec,
    StatusItem, StatusSpec, StepSpec, WebSocketSpec,
};
use super::suggest::closest;
use crate::check::{
    Action, AssertStep, Auth, BackendMarker, BasicAuthEnv, Body, BrowserAction, BrowserStep,
    BurstStep, Capture, CaptureSource, Credential, CredentialKind, EmailSource, EmailStep, Expect,
    HttpStep, MailCount, MailTemplate, Part, PartValue, Placeholder, QrSource, QrStep, Readiness,
    Request, Scenario, Step, Suite, Template, ValueCheck, VirtualHost, WebSocketStep,
};
use crate::runner::{BUILT_IN_VALUES, variable};

/// The version this build reads.
pub const VERSION: u32 = 1;

/// What lowering needs besides the file: its text (for line numbers) and folder (for files).
pub(super) struct Source<'a> {
    pub text: &'a str,
    pub dir: &'a Path,
}

impl Source<'_> {
    fn line<T>(&self, spanned: &Spanned<T>) -> usize {
        let start = spanned.span().start.min(self.text.len());
        self.text[..start].matches('\n').count() + 1
    }
}

/// One site of the file: the top level (`host == None`) or a `[[hosts]]` entry.
struct Site<'a> {
    host: Option<&'a HostSpec>,
    marker: Option<BackendMarker>,
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

fn marker(spec: Option<&super::schema::BackendMarkerSpec>) -> Option<BackendMarker> {
    spec.map(|m| BackendMarker {
        header: m.header.clone(),
        value: m.value.clone(),
    })
}

/// Lowers a parsed file.
pub(super) fn lower(file: ChecksFile, source: &Source<'_>) -> Result<Suite, String> {
    if file.version != VERSION {
        return Err(format!(
            "unsupported `version = {}` (this smoke reads version {VERSION})",
            file.version
        ));
    }
    let top_placeholder = file.placeholder.as_ref().map(|p| Placeholder {
        status: p.status,
        contains: p.contains.clone(),
    });
    let top_marker = marker(file.backend_marker.as_ref());
    let mut sites = vec![Site {
        host: None,
        marker: top_marker.clone(),
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
        let at = |m: String| format!("`[[hosts]]` #{} (`{}`): {m}", index + 1, host.name);
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
        let host_marker = marker(host.backend_marker.as_ref()).or_else(|| top_marker.clone());
        hosts.push(VirtualHost {
            name: host.name.clone(),
            host: host.host.to_ascii_lowercase(),
            basic_auth: host.basic_auth.as_ref().map(basic_auth_env),
            placeholder: placeholder.clone(),
            marker: host_marker.clone(),
        });
        sites.push(Site {
            host: Some(host),
            marker: host_marker,
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
            source,
            &mut checks,
            &mut scenarios,
            &mut readiness,
        )?;
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

    let mut values = Vec::new();
    for (name, value) in &file.values {
        check_value_name(name).map_err(|m| format!("`[values]`: {m}"))?;
        values.push((name.clone(), Template::new(value.as_str())));
    }
    let credentials = credentials(&file)?;
    let steps = Lowering {
        source,
        credentials: &credentials,
        hosts: &hosts,
        marker: top_marker.as_ref(),
    };
    for spec in &file.checks {
        checks.push(steps.step(spec, "`[[checks]]`")?);
    }
    for (index, scenario) in file.scenarios.iter().enumerate() {
        check_name(&scenario.name).map_err(|m| format!("`[[scenarios]]` #{}: {m}", index + 1))?;
        if file.scenarios[..index]
            .iter()
            .any(|s| s.name == scenario.name)
        {
            return Err(format!(
                "`[[scenarios]]` `{}`: the name is used twice",
                scenario.name
            ));
        }
        let at = format!("`[[scenarios]]` `{}`", scenario.name);
        let mut lowered = Vec::new();
        for spec in &scenario.steps {
            lowered.push(steps.step(spec, &at)?);
        }
        if lowered.is_empty() {
            return Err(format!("{at}: no `[[scenarios.steps]]`"));
        }
        scenarios.push(Scenario {
            name: scenario.name.clone(),
            steps: lowered,
        });
    }

    let suite = Suite {
        name: file.name,
        readiness,
        values,
        checks,
        scenarios,
        hosts,
        placeholder: top_placeholder,
        basic_auth: file.basic_auth.as_ref().map(basic_auth_env),
        marker: top_marker,
    };
    check_names_and_reads(&suite)?;
    Ok(suite)
}

/// Names are unique; `after` names an earlier step of the same scenario; every template name
/// is a built-in value, a `[values]` entry, a variable, or captured by an earlier step.
fn check_names_and_reads(suite: &Suite) -> Result<(), String> {
    let mut seen = HashSet::new();
    for step in suite.steps() {
        if !seen.insert(step.name.clone()) {
            return Err(format!("the check name `{}` is used twice", step.name));
        }
    }
    let mut known: Vec<String> = BUILT_IN_VALUES.iter().map(|s| (*s).to_owned()).collect();
    known.extend(suite.values.iter().map(|(n, _)| n.clone()));
    for (name, template) in &suite.values {
        for read in template.names() {
            if variable(&read).is_none() && !known.contains(&read) {
                return Err(format!(
                    "`[values]` `{name}` reads `{{{{{read}}}}}`, which is not a value{}",
                    suggestion(&read, &known)
                ));
            }
        }
    }
    let unknown = |step: &Step, read: &str, available: &[String]| {
        format!(
            "`{}` reads `{{{{{read}}}}}`, which no earlier step captures and no value defines{}",
            step.name,
            suggestion(read, available)
        )
    };
    for step in &suite.checks {
        for read in step.reads() {
            if variable(&read).is_none() && !known.contains(&read) {
                return Err(unknown(step, &read, &known));
            }
        }
        if let Some(after) = step.after.first() {
            return Err(format!(
                "`{}`: `after = [\"{after}\"]` only works between steps of one scenario",
                step.name
            ));
        }
    }
    for scenario in &suite.scenarios {
        let mut available = known.clone();
        let mut earlier: Vec<&str> = Vec::new();
        for step in &scenario.steps {
            for read in step.reads() {
                if variable(&read).is_none() && !available.contains(&read) {
                    return Err(unknown(step, &read, &available));
                }
            }
            for after in &step.after {
                if !earlier.contains(&after.as_str()) {
                    let names: Vec<String> = earlier.iter().map(|s| (*s).to_owned()).collect();
                    return Err(format!(
                        "`{}`: `after` names `{after}`, which is not an earlier step of the scenario `{}`{}",
                        step.name,
                        scenario.name,
                        suggestion(after, &names)
                    ));
                }
            }
            available.extend(step.writes());
            earlier.push(&step.name);
        }
    }
    Ok(())
}

fn suggestion(name: &str, known: &[String]) -> String {
    match closest(name, known.iter().map(String::as_str)) {
        Some(best) => format!(" (did you mean `{best}`?)"),
        None => String::new(),
    }
}

/// The named credentials; `staff` exists by default as Django REST framework's token header.
fn credentials(file: &ChecksFile) -> Result<BTreeMap<String, Credential>, String> {
    let mut out = BTreeMap::new();
    out.insert(
        "staff".to_owned(),
        Credential {
            name: "staff".to_owned(),
            kind: CredentialKind::Header {
                name: "Authorization".to_owned(),
                value: Template::new("Token {{secret.SMOKE_STAFF_TOKEN}}"),
            },
        },
    );
    for (name, spec) in &file.credentials {
        let at = |m: &str| format!("`[credentials.{name}]`: {m}");
        check_name(name).map_err(|m| at(&m))?;
        if name == "anonymous" {
            return Err(at(
                "`anonymous` is reserved: it sends no credentials at all",
            ));
        }
        let kind = match (&spec.header, &spec.value, &spec.basic) {
            (Some(header), Some(value), None) => CredentialKind::Header {
                name: header.clone(),
                value: Template::new(value.as_str()),
            },
            (None, None, Some(basic)) => CredentialKind::Basic {
                user: Template::new(basic.user.as_str()),
                password: Template::new(basic.password.as_str()),
            },
            _ => {
                return Err(at(
                    "give either `header` and `value`, or `basic = { user = ..., password = ... }`",
                ));
            }
        };
        out.insert(
            name.clone(),
            Credential {
                name: name.clone(),
                kind,
            },
        );
    }
    Ok(out)
}

/// Lowers steps with what the whole file defines.
struct Lowering<'a> {
    source: &'a Source<'a>,
    credentials: &'a BTreeMap<String, Credential>,
    hosts: &'a [VirtualHost],
    marker: Option<&'a BackendMarker>,
}

impl Lowering<'_> {
    fn step(&self, spec: &StepSpec, within: &str) -> Result<Step, String> {
        let line = self.source.line(&spec.name);
        let name = spec.name.get_ref();
        let at = |m: String| format!("{within} line {line} (`{name}`): {m}");
        let (category, short) = split_name(name).map_err(at)?;
        let kinds: Vec<&str> = [
            ("request", spec.request.is_some()),
            ("email", spec.email.is_some()),
            ("assert", spec.assert.is_some()),
            ("qr", spec.qr.is_some()),
            ("burst", spec.burst.is_some()),
            ("token", spec.token.is_some()),
            ("browser", spec.browser.is_some()),
            ("cleanup", spec.cleanup == Some(true)),
        ]
        .into_iter()
        .filter_map(|(k, on)| on.then_some(k))
        .collect();
        let kind = match kinds.as_slice() {
            [kind] => *kind,
            [] => {
                return Err(at(
                    "says nothing to do: give one of `request`, `email`, `assert`, `qr`, `burst`, `token`, `browser`, `cleanup = true`"
                        .to_owned(),
                ));
            }
            many => {
                return Err(at(format!(
                    "gives {}: a step does one thing",
                    many.iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                )));
            }
        };
        let request_only = [
            ("expect", spec.expect.is_some()),
            ("capture", !spec.capture.is_empty()),
            ("undo", spec.undo.is_some()),
            ("then_emails", spec.then_emails.is_some()),
            ("assets", spec.assets.is_some()),
        ];
        if kind != "request"
            && let Some((key, _)) = request_only.iter().find(|(_, on)| *on)
        {
            return Err(at(format!("`{key}` goes with `request`, not `{kind}`")));
        }
        let action = match kind {
            "request" => {
                let request = spec
                    .request
                    .as_ref()
                    .map_or_else(Default::default, Clone::clone);
                Action::Http(Box::new(
                    self.http_step(
                        &request,
                        spec.expect.as_ref(),
                        &spec.capture,
                        spec.undo.as_ref(),
                        spec,
                    )
                    .map_err(at)?,
                ))
            }
            "email" => Action::Email(self.email(spec.email.as_ref().ok_or("")?).map_err(at)?),
            "assert" => {
                let assert = spec.assert.as_ref().ok_or("")?;
                let mut checks = Vec::new();
                if let Some(t) = &assert.equals {
                    checks.push(ValueCheck::Equals(Template::new(t.as_str())));
                }
                if let Some(t) = &assert.starts_with {
                    checks.push(ValueCheck::StartsWith(Template::new(t.as_str())));
                }
                if let Some(t) = &assert.contains {
                    checks.push(ValueCheck::Contains(Template::new(t.as_str())));
                }
                if let Some(t) = &assert.not_contains {
                    checks.push(ValueCheck::NotContains(Template::new(t.as_str())));
                }
                if let Some(pattern) = &assert.matches {
                    regex::Regex::new(pattern)
                        .map_err(|e| at(format!("`matches` is not a valid regex: {e}")))?;
                    checks.push(ValueCheck::Matches(pattern.clone()));
                }
                if checks.is_empty() {
                    return Err(at(
                        "`assert` needs one of `equals`, `starts_with`, `contains`, `not_contains`, `matches`"
                            .to_owned(),
                    ));
                }
                Action::Assert(AssertStep {
                    value: Template::new(assert.value.as_str()),
                    checks,
                })
            }
            "qr" => {
                let qr = spec.qr.as_ref().ok_or("")?;
                let source = match (&qr.from, &qr.url, &qr.path) {
                    (Some(from), None, None) => QrSource::Capture(from.clone()),
                    (None, Some(url), None) => QrSource::Request(Request {
                        absolute: true,
                        ..Request::get(url)
                    }),
                    (None, None, Some(path)) => {
                        check_path(path).map_err(at)?;
                        QrSource::Request(Request::get(path))
                    }
                    _ => {
                        return Err(at(
                            "`qr` needs exactly one of `from` (a captured image), `url` or `path`"
                                .to_owned(),
                        ));
                    }
                };
                if let Some(capture) = &qr.capture {
                    check_value_name(capture).map_err(at)?;
                }
                Action::Qr(QrStep {
                    source,
                    capture: qr.capture.clone(),
                    not_revealing: qr
                        .not_revealing
                        .iter()
                        .map(|t| Template::new(t.as_str()))
                        .collect(),
                    equals: qr.equals.as_ref().map(|t| Template::new(t.as_str())),
                })
            }
            "burst" => {
                let burst = spec.burst.as_ref().ok_or("")?;
                if !(2..=1000).contains(&burst.count) {
                    return Err(at(format!(
                        "`burst.count = {}` must be between 2 and 1000",
                        burst.count
                    )));
                }
                let mut statuses = Vec::new();
                for (status, count) in &burst.statuses {
                    let status: u16 = status
                        .parse()
                        .ok()
                        .filter(|s| (100..600).contains(s))
                        .ok_or_else(|| {
                            at(format!("`burst.statuses`: `{status}` is not a status"))
                        })?;
                    statuses.push((status, *count));
                }
                let total: usize = statuses.iter().map(|(_, n)| n).sum();
                if total != burst.count {
                    return Err(at(format!(
                        "`burst.statuses` add up to {total}, not `count = {}`",
                        burst.count
                    )));
                }
                let then = match &burst.then {
                    Some(then) => Some(Box::new(
                        self.http_step(
                            &then.request,
                            then.expect.as_ref(),
                            &BTreeMap::new(),
                            None,
                            spec,
                        )
                        .map_err(&at)?,
                    )),
                    None => None,
                };
                Action::Burst(BurstStep {
                    request: self.request(&burst.request).map_err(&at)?,
                    count: burst.count,
                    statuses,
                    then,
                })
            }
            "token" => {
                let token = spec.token.as_ref().ok_or("")?;
                Action::Token {
                    value: Template::new(token.value.as_str()),
                    min_bytes: token.min_bytes,
                }
            }
            "browser" => Action::Browser(Box::new(
                self.browser(spec.browser.as_ref().ok_or("")?).map_err(at)?,
            )),
            _ => Action::Cleanup,
        };
        let proves = spec
            .proves
            .clone()
            .unwrap_or_else(|| format!("`{name}` passes"));
        let mut step = Step::new(category, short, &proves, action);
        step.after.clone_from(&spec.after);
        step.hint.clone_from(&spec.hint);
        Ok(step)
    }

    fn http_step(
        &self,
        request: &RequestSpec,
        expect: Option<&ExpectSpec>,
        capture: &BTreeMap<String, CaptureSpec>,
        undo: Option<&RequestSpec>,
        spec: &StepSpec,
    ) -> Result<HttpStep, String> {
        let default = ExpectSpec::default();
        let expect = expect.unwrap_or(&default);
        let mut lowered = self.request(request)?;
        let expectations = expect.expectations();
        if expectations.redirect.is_some() || expectations.redirects_to_scheme.is_some() {
            lowered.follow_redirects = request.follow_redirects.unwrap_or(false);
        }
        let marker = request
            .host
            .as_ref()
            .and_then(|h| self.hosts.iter().find(|v| &v.name == h))
            .and_then(|h| h.marker.as_ref())
            .or(self.marker);
        let mut step = HttpStep::new(lowered, expects(&expectations, marker)?);
        for path in &request.paths {
            check_path(path)?;
            step.more_paths.push(Template::new(path.as_str()));
        }
        for (name, source) in capture {
            check_value_name(name)?;
            let sources: Vec<CaptureSource> = [
                source
                    .json
                    .clone()
                    .map(|p| check_pointer(&p).map(|()| CaptureSource::JsonPointer(p))),
                source.header.clone().map(|h| Ok(CaptureSource::Header(h))),
                source.cookie.clone().map(|c| Ok(CaptureSource::Cookie(c))),
                source.regex.clone().map(|r| {
                    regex::Regex::new(&r)
                        .map(|_| CaptureSource::BodyRegex(r))
                        .map_err(|e| format!("`capture.{name}.regex` is not a valid regex: {e}"))
                }),
            ]
            .into_iter()
            .flatten()
            .collect::<Result<_, _>>()?;
            let [source] = <[CaptureSource; 1]>::try_from(sources).map_err(|_| {
                format!("`capture.{name}` needs exactly one of `json`, `header`, `cookie`, `regex`")
            })?;
            step.captures.push(Capture {
                name: name.clone(),
                source,
            });
        }
        if let Some(undo) = undo {
            step.undo = Some(self.request(undo)?);
        }
        if let Some(count) = &spec.then_emails {
            step.then_emails = Some(MailCount {
                query: MailTemplate {
                    to: Template::new(count.to.as_str()),
                    subject_contains: Template::new(count.subject_contains.as_str()),
                },
                count: count.count,
            });
        }
        step.assets = spec.assets.unwrap_or(false);
        Ok(step)
    }

    fn request(&self, spec: &RequestSpec) -> Result<Request, String> {
        let (path, absolute) = match (&spec.path, &spec.url) {
            (Some(path), None) => {
                check_path(path)?;
                (path.clone(), false)
            }
            (None, Some(url)) => (url.clone(), true),
            (None, None) => return Err("the request needs a `path` or a `url`".to_owned()),
            (Some(_), Some(_)) => {
                return Err("the request gives both `path` and `url`: give one".to_owned());
            }
        };
        let bodies = [
            spec.json.is_some(),
            spec.form.is_some(),
            spec.multipart.is_some(),
            spec.body.is_some(),
            spec.body_size.is_some(),
        ];
        if bodies.iter().filter(|b| **b).count() > 1 {
            return Err(
                "the request gives more than one body: `json`, `form`, `multipart`, `body` and `body_size` exclude each other"
                    .to_owned(),
            );
        }
        let body = if let Some(json) = &spec.json {
            Some(Body::Json(
                serde_json::to_value(json).map_err(|e| format!("the JSON body: {e}"))?,
            ))
        } else if let Some(form) = &spec.form {
            Some(Body::Form(
                form.iter()
                    .map(|(k, v)| (k.clone(), Template::new(v.as_str())))
                    .collect(),
            ))
        } else if let Some(parts) = &spec.multipart {
            let mut lowered = Vec::new();
            for (name, part) in parts {
                let value = match part {
                    PartSpec::Text(text) => PartValue::Text(Template::new(text.as_str())),
                    PartSpec::File(file) => {
                        let path = self.source.dir.join(&file.file);
                        let bytes = std::fs::read(&path).map_err(|e| {
                            format!(
                                "`multipart.{name}`: failed to read `{}`: {e} (files are relative to the checks file's folder)",
                                path.display()
                            )
                        })?;
                        let file_name = file.file_name.clone().unwrap_or_else(|| {
                            Path::new(&file.file)
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_else(|| "upload".to_owned())
                        });
                        PartValue::File {
                            bytes: Arc::new(bytes),
                            content_type: file
                                .content_type
                                .clone()
                                .unwrap_or_else(|| guess_content_type(&file_name).to_owned()),
                            file_name,
                        }
                    }
                };
                lowered.push(Part {
                    name: name.clone(),
                    value,
                });
            }
            Some(Body::Multipart(lowered))
        } else if let Some(text) = &spec.body {
            Some(Body::Text(Template::new(text.as_str())))
        } else {
            spec.body_size.map(Body::Filler)
        };
        let method = spec
            .method
            .clone()
            .map(|m| m.to_ascii_uppercase())
            .unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.to_owned());
        if let Some(host) = &spec.host
            && !self.hosts.iter().any(|h| &h.name == host)
        {
            let names: Vec<String> = self.hosts.iter().map(|h| h.name.clone()).collect();
            return Err(format!(
                "`host = \"{host}\"` names no `[[hosts]]`{}",
                suggestion(host, &names)
            ));
        }
        let auth = match spec.auth.as_deref() {
            None => Auth::Default,
            Some("anonymous") => Auth::Anonymous,
            Some(name) => match self.credentials.get(name) {
                Some(credential) => Auth::Credential(credential.clone()),
                None => {
                    let mut names: Vec<String> = self.credentials.keys().cloned().collect();
                    names.push("anonymous".to_owned());
                    return Err(format!(
                        "`auth = \"{name}\"` names no `[credentials.{name}]`{}",
                        suggestion(name, &names)
                    ));
                }
            },
        };
        Ok(Request {
            method,
            path: Template::new(path.as_str()),
            absolute,
            headers: spec
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Template::new(v.as_str())))
                .collect(),
            body,
            auth,
            scheme: spec.scheme,
            follow_redirects: spec.follow_redirects.unwrap_or(true),
            host: spec.host.clone(),
        })
    }

    fn browser(&self, spec: &BrowserSpec) -> Result<BrowserStep, String> {
        let request = self.request(&RequestSpec {
            path: spec.path.clone(),
            url: spec.url.clone(),
            host: spec.host.clone(),
            ..RequestSpec::default()
        })?;
        let mut waits = Vec::new();
        match (&spec.wait_for, &spec.wait_text) {
            (Some(selector), text) => waits.push(BrowserAction::WaitFor {
                selector: selector.clone(),
                text: text.as_deref().map(Template::new),
            }),
            (None, Some(text)) => waits.push(BrowserAction::WaitText(Template::new(text.as_str()))),
            (None, None) => {}
        }
        let mut actions = Vec::new();
        for (index, action) in spec.actions.iter().enumerate() {
            actions.push(browser_action(action).map_err(|e| format!("`actions[{index}]`: {e}"))?);
        }
        if waits.is_empty() && actions.is_empty() {
            return Err(
                "`browser` needs `wait_for` or `wait_text` (what the page must show), or `actions`"
                    .to_owned(),
            );
        }
        for pattern in &spec.allow_errors {
            regex::Regex::new(pattern)
                .map_err(|e| format!("`allow_errors`: `{pattern}` is not a valid regex: {e}"))?;
        }
        let timeout_ms = spec.timeout_ms.unwrap_or(15_000);
        if !(100..=600_000).contains(&timeout_ms) {
            return Err(format!(
                "`timeout_ms = {timeout_ms}` must be between 100 and 600000"
            ));
        }
        Ok(BrowserStep {
            request,
            waits,
            actions,
            timeout: Duration::from_millis(timeout_ms),
            allow_errors: spec.allow_errors.clone(),
        })
    }

    fn email(&self, spec: &EmailSpec) -> Result<EmailStep, String> {
        let mut captures = Vec::new();
        for (name, source) in &spec.capture {
            check_value_name(name)?;
            let source = match (
                &source.text,
                &source.html,
                &source.attachment,
                &source.content_type,
            ) {
                (Some(pattern), None, None, None) | (None, Some(pattern), None, None) => {
                    regex::Regex::new(pattern)
                        .map_err(|e| format!("`email.capture.{name}` is not a valid regex: {e}"))?;
                    if source.text.is_some() {
                        EmailSource::Text(pattern.clone())
                    } else {
                        EmailSource::Html(pattern.clone())
                    }
                }
                (None, None, prefix, content_type)
                    if prefix.is_some() || content_type.is_some() =>
                {
                    EmailSource::Attachment {
                        name_prefix: prefix.as_ref().map(|p| Template::new(p.as_str())),
                        content_type: content_type.clone(),
                    }
                }
                _ => {
                    return Err(format!(
                        "`email.capture.{name}` needs `text` or `html` (a regex), or `attachment` and/or `content_type`"
                    ));
                }
            };
            captures.push((name.clone(), source));
        }
        Ok(EmailStep {
            query: MailTemplate {
                to: Template::new(spec.to.as_str()),
                subject_contains: Template::new(spec.subject_contains.as_str()),
            },
            captures,
        })
    }
}

/// One action of a browser step: exactly one key says what it is.
fn browser_action(spec: &BrowserActionSpec) -> Result<BrowserAction, String> {
    let keys: Vec<&str> = [
        ("click", spec.click.is_some()),
        ("fill", spec.fill.is_some()),
        ("press", spec.press.is_some()),
        ("wait_for", spec.wait_for.is_some()),
        ("wait_text", spec.wait_text.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, on)| on.then_some(k))
    .collect();
    let stray = |key: &str, on: bool, with: &str| {
        if on {
            Err(format!("`{key}` goes with `{with}`"))
        } else {
            Ok(())
        }
    };
    let action = match keys.as_slice() {
        ["click"] => BrowserAction::Click(spec.click.clone().unwrap_or_default()),
        ["fill"] => BrowserAction::Fill {
            selector: spec.fill.clone().unwrap_or_default(),
            value: Template::new(
                spec.value
                    .as_deref()
                    .ok_or("`fill` needs `value`, the text to type")?,
            ),
        },
        ["press"] => BrowserAction::Press(spec.press.clone().unwrap_or_default()),
        ["wait_for"] => BrowserAction::WaitFor {
            selector: spec.wait_for.clone().unwrap_or_default(),
            text: spec.text.as_deref().map(Template::new),
        },
        ["wait_text"] => {
            BrowserAction::WaitText(Template::new(spec.wait_text.as_deref().unwrap_or_default()))
        }
        [] => {
            return Err(
                "says nothing to do: give one of `click`, `fill`, `press`, `wait_for`, `wait_text`"
                    .to_owned(),
            );
        }
        many => {
            return Err(format!(
                "gives {}: an action does one thing",
                many.iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ));
        }
    };
    stray("value", spec.value.is_some() && spec.fill.is_none(), "fill")?;
    stray(
        "text",
        spec.text.is_some() && spec.wait_for.is_none(),
        "wait_for",
    )?;
    if let BrowserAction::Click(s)
    | BrowserAction::Fill { selector: s, .. }
    | BrowserAction::WaitFor { selector: s, .. } = &action
        && s.trim().is_empty()
    {
        return Err("the CSS selector is empty".to_owned());
    }
    if let BrowserAction::Press(key) = &action
        && !crate::runner::browser::is_key(key)
    {
        return Err(format!(
            "`press = \"{key}\"` is not a key this build knows: {}",
            crate::runner::browser::KEYS.join(", ")
        ));
    }
    Ok(action)
}

fn guess_content_type(file_name: &str) -> &'static str {
    let lower = file_name.to_ascii_lowercase();
    let ext = lower.rsplit('.').next().unwrap_or("");
    match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
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
    source: &Source<'_>,
    checks: &mut Vec<Step>,
    scenarios: &mut Vec<Scenario>,
    readiness: &mut Option<(Readiness, u8)>,
) -> Result<(), String> {
    let host = site.name();
    if let Some(health) = site.health {
        let at = |m: String| format!("{}: {m}", site.at("[health]"));
        check_path(&health.path).map_err(at)?;
        let mut expects = vec![Expect::Status(
            health
                .status
                .as_ref()
                .map_or(Ok(vec![200]), statuses)
                .map_err(at)?,
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
            "health",
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
        request.auth = Auth::Anonymous;
        request.follow_redirects = false;
        let step = Step::http(
            "auth",
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
            "health",
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
        ("pages", "[[pages]]", site.pages),
        ("routing", "[[routes]]", site.routes),
    ] {
        for spec in specs {
            let at = |m: String| {
                format!(
                    "{} line {} (`{}`): {m}",
                    site.at(table),
                    source.line(&spec.name),
                    spec.name.get_ref()
                )
            };
            let mut step = route_step(category, spec, site.marker.as_ref()).map_err(at)?;
            if let Action::Http(http) = &mut step.action {
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
            "websocket",
            &spec.name,
            &proves,
            Action::WebSocket(WebSocketStep {
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
            "rate_limit",
            "normal_traffic_passes",
            &format!(
                "{} requests to `{}`, {} ms apart, are all served",
                limit.normal_requests, limit.path, limit.normal_interval_ms
            ),
            Action::SpacedRequests {
                request: request.clone(),
                count: limit.normal_requests,
                interval: Duration::from_millis(limit.normal_interval_ms),
                refused_status: limit.refused_status,
            },
        )
        .with_hint("the limit is too strict for normal traffic: raise its rate or its burst");
        let enforced = Step::new(
            "rate_limit",
            "enforced",
            &format!(
                "{} requests to `{}` at once see at least one {} and no server error",
                limit.burst, limit.path, limit.refused_status
            ),
            Action::RateLimitBurst {
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

fn route_step(
    category: &str,
    spec: &RouteSpec,
    marker: Option<&BackendMarker>,
) -> Result<Step, String> {
    let name = spec.name.get_ref();
    check_name(name)?;
    check_path(&spec.path)?;
    let expectations = spec.expectations();
    let redirects = expectations.redirect.is_some() || expectations.redirects_to_scheme.is_some();
    let mut request = Request::get(&spec.path);
    if let Some(method) = &spec.method {
        request.method = method.to_ascii_uppercase();
    }
    request.scheme = spec.scheme;
    request.follow_redirects = spec.follow_redirects.unwrap_or(!redirects);
    request.headers = spec
        .request_headers
        .iter()
        .map(|(k, v)| (k.clone(), Template::new(v.as_str())))
        .collect();
    let proves = spec
        .proves
        .clone()
        .unwrap_or_else(|| format!("`{}` answers as described", spec.path));
    let mut http = HttpStep::new(request, expects(&expectations, marker)?);
    for path in &spec.paths {
        check_path(path)?;
        http.more_paths.push(Template::new(path.as_str()));
    }
    http.assets = spec.assets.unwrap_or(category == "pages");
    if !spec.asset_headers_contain.is_empty() && !http.assets {
        return Err(
            "`asset_headers_contain` needs `assets = true`: it holds the page's scripts and stylesheets to it"
                .to_owned(),
        );
    }
    http.asset_headers = spec
        .asset_headers_contain
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut step = Step::http(category, name, &proves, http);
    step.hint.clone_from(&spec.hint);
    Ok(step)
}

/// The expectations of a route or a step.
fn expects(e: &Expectations<'_>, marker: Option<&BackendMarker>) -> Result<Vec<Expect>, String> {
    let redirects = e.redirect.is_some() || e.redirects_to_scheme.is_some();
    let default_status = if redirects { vec![301] } else { vec![200] };
    let mut expects = vec![Expect::Status(
        e.status.map_or(Ok(default_status), statuses)?,
    )];
    if let Some(backend) = e.backend {
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
    if let Some(prefix) = e.redirect {
        expects.push(Expect::RedirectTo(Template::new(prefix)));
    }
    if let Some(scheme) = e.redirects_to_scheme {
        if !matches!(scheme, "http" | "https") {
            return Err(format!(
                "`redirects_to_scheme = \"{scheme}\"` must be `http` or `https`"
            ));
        }
        expects.push(Expect::RedirectKeepsResource(scheme.to_owned()));
    }
    if let Some(ct) = e.content_type {
        expects.push(Expect::ContentType(ct.to_owned()));
    }
    expects.extend(e.contains.iter().cloned().map(Expect::BodyContains));
    expects.extend(e.not_contains.iter().cloned().map(Expect::BodyNotContains));
    for (name, value) in e.headers {
        expects.push(Expect::HeaderEquals {
            name: name.clone(),
            value: value.clone(),
        });
    }
    for (name, value) in e.headers_contain {
        expects.push(Expect::HeaderContains {
            name: name.clone(),
            value: value.clone(),
        });
    }
    expects.extend(e.headers_present.iter().cloned().map(Expect::HeaderPresent));
    expects.extend(e.headers_absent.iter().cloned().map(Expect::HeaderAbsent));
    for (pointer, value) in e.json {
        expects.push(json_expect(pointer, value)?);
    }
    for pointer in e.json_exists {
        check_pointer(pointer)?;
        expects.push(Expect::JsonExists(pointer.clone()));
    }
    let at = e.list_at.unwrap_or("").to_owned();
    if !at.is_empty() {
        check_pointer(&at)?;
    }
    let item =
        |map: &BTreeMap<String, toml::Value>| -> Result<Vec<(String, serde_json::Value)>, String> {
            map.iter()
                .map(|(pointer, value)| {
                    check_pointer(pointer)?;
                    Ok((
                        pointer.clone(),
                        serde_json::to_value(value)
                            .map_err(|e| format!("the value for `{pointer}`: {e}"))?,
                    ))
                })
                .collect()
        };
    if !e.list_has.is_empty() {
        expects.push(Expect::ListHas {
            at: at.clone(),
            item: item(e.list_has)?,
        });
    }
    if !e.list_lacks.is_empty() {
        expects.push(Expect::ListLacks {
            at: at.clone(),
            item: item(e.list_lacks)?,
        });
    }
    if !e.list_items_have.is_empty() {
        for pointer in e.list_items_have {
            check_pointer(pointer)?;
        }
        expects.push(Expect::ListItemsHave {
            at,
            pointers: e.list_items_have.to_vec(),
        });
    }
    if let Some(ms) = e.max_latency_ms {
        expects.push(Expect::MaxLatency(Duration::from_millis(ms)));
    }
    Ok(expects)
}

fn statuses(spec: &StatusSpec) -> Result<Vec<u16>, String> {
    let items: Vec<&StatusItem> = match spec {
        StatusSpec::One(item) => vec![item],
        StatusSpec::Any(items) => items.iter().collect(),
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            StatusItem::Code(code) if (100..600).contains(code) => out.push(*code),
            StatusItem::Code(code) => return Err(format!("`{code}` is not an HTTP status")),
            StatusItem::Class(class) => {
                let digit = class
                    .strip_suffix("xx")
                    .and_then(|d| d.parse::<u16>().ok())
                    .filter(|d| (1..=5).contains(d))
                    .ok_or_else(|| {
                        format!("`\"{class}\"` is not a status class (write `\"4xx\"`)")
                    })?;
                out.extend(digit * 100..digit * 100 + 100);
            }
        }
    }
    if out.is_empty() {
        return Err("`status = []` accepts nothing".to_owned());
    }
    Ok(out)
}

/// `category.name`, both `[a-z0-9_]+`.
fn split_name(name: &str) -> Result<(&str, &str), String> {
    let (category, short) = name.split_once('.').ok_or_else(|| {
        format!("the name `{name}` must be `category.name`, e.g. `booking.create`")
    })?;
    check_name(category)?;
    check_name(short)?;
    Ok((category, short))
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

pub(super) fn check_name(name: &str) -> Result<(), String> {
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

fn check_value_name(name: &str) -> Result<(), String> {
    if BUILT_IN_VALUES.contains(&name) || name == "i" {
        return Err(format!("`{name}` is a built-in value: choose another name"));
    }
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!(
            "the value name `{name}` must be letters, digits and `_`"
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

fn check_pointer(pointer: &str) -> Result<(), String> {
    if pointer.starts_with('/') {
        Ok(())
    } else {
        Err(format!("the JSON pointer `{pointer}` must start with `/`"))
    }
}

fn json_expect(pointer: &str, value: &toml::Value) -> Result<Expect, String> {
    check_pointer(pointer)?;
    let value =
        serde_json::to_value(value).map_err(|e| format!("the value for `{pointer}`: {e}"))?;
    Ok(Expect::JsonEquals {
        pointer: pointer.to_owned(),
        value,
    })
}
