//! `smoke init`: a first gate file, test override and checks file, guessed from a stack's
//! compose files, so that a team starts from a file that names its own services instead of a
//! blank page.
//!
//! Two halves:
//!
//! - pure: [`analyse`] reads the resolved configuration (`docker compose config`) into
//!   [`Findings`], every decision with the reason it is a guess, and [`generate`] renders the
//!   three files from them. Unit-tested on captured configurations, no engine needed.
//! - I/O: [`init`] runs `docker compose config` (interpolated, and once more without
//!   interpolation to tell a variable from a literal), refuses to overwrite, and writes.
//!
//! Every guess a person must check is one `# REVIEW:` line at the top of the file it shaped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::gate::compose::{CommandError, ComposeConfig, ServiceConfig, run_command};
use crate::gate::spec;

/// The file name of the generated test override.
pub const OVERRIDE_FILE: &str = "compose.smoke.yml";

/// What the generator reads.
#[derive(Debug, Clone)]
pub struct Input {
    /// The compose project's name (`name:`, else its folder's).
    pub name: String,
    /// `docker compose config --format json`: interpolated, normalised.
    pub config: ComposeConfig,
    /// Each service's environment as written (`config --no-interpolate`), to tell a value
    /// taken from a variable (`${DJANGO_SECRET_KEY}`) from a literal.
    pub raw_environment: BTreeMap<String, BTreeMap<String, Option<String>>>,
    /// The compose files as the generated gate file names them (relative to its folder).
    pub compose_files: Vec<String>,
    /// The env file, likewise.
    pub env_file: Option<String>,
}

/// The three generated files.
#[derive(Debug, Clone)]
pub struct Generated {
    /// `gate.toml`.
    pub gate: String,
    /// `compose.smoke.yml`.
    pub test_override: String,
    /// `checks.toml`.
    pub checks: String,
    /// How many `# REVIEW:` lines the three hold.
    pub reviews: usize,
}

/// What was recognised in the configuration.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    pub public: PublicService,
    /// Services publishing nothing and not one-shot.
    pub internal: Vec<String>,
    pub one_shot: Vec<String>,
    /// Services with a healthcheck (`up --wait` waits for them).
    pub healthchecked: Vec<String>,
    /// Services other than the public one publishing ports in production.
    pub other_publishers: Vec<String>,
    pub databases: Vec<Database>,
    /// The Django service the operations and assertions run in.
    pub django: Option<String>,
    /// Other services that also look like Django.
    pub other_django: Vec<String>,
    /// Secret-looking variables the compose files interpolate.
    pub secrets: Vec<String>,
    /// `(service, variable)`: secret-looking container variables with a literal value.
    pub literal_secrets: Vec<(String, String)>,
    /// The health path found in a healthcheck, and whose.
    pub health_path: Option<(String, String)>,
    /// Where static files were seen (a volume or a variable), if anywhere.
    pub static_files: Option<String>,
    /// Services without a pinned image tag.
    pub unpinned: Vec<String>,
    /// Long-running services without a restart policy.
    pub no_restart: Vec<String>,
}

/// The public service and its container ports.
#[derive(Debug, Clone, Default)]
pub struct PublicService {
    pub service: String,
    /// Why this one, for the comment.
    pub why: String,
    /// Its container ports to publish on loopback in the test override (`80`, `53/udp`).
    pub ports: Vec<String>,
    pub https_port: Option<u16>,
    pub http_port: Option<u16>,
    /// Set when no port looked like HTTP or HTTPS, or nothing was published.
    pub port_guess: Option<String>,
}

/// A database service.
#[derive(Debug, Clone)]
pub struct Database {
    pub service: String,
    /// Its data directory inside the container.
    pub data: String,
    /// Whether a named volume holds it.
    pub on_named_volume: bool,
}

/// Names (service or image) that say "the proxy in front".
const FRONT_NAMES: &[&str] = &[
    "nginx", "caddy", "traefik", "haproxy", "envoy", "proxy", "frontend", "front", "gateway",
    "ingress",
];
const HTTPS_PORTS: &[u16] = &[443, 8443];
const HTTP_PORTS: &[u16] = &[80, 8080, 3000, 8000];

/// Reads the configuration into decisions.
pub fn analyse(input: &Input) -> Findings {
    let services = &input.config.services;
    let one_shot: Vec<String> = services
        .iter()
        .filter(|(name, s)| is_one_shot(name, s))
        .map(|(name, _)| name.clone())
        .collect();
    let is_one_shot = |name: &str| one_shot.iter().any(|n| n == name);
    let databases: Vec<Database> = services
        .iter()
        .filter(|(name, s)| database_kind(name, s).is_some())
        .map(|(name, s)| database(name, s))
        .collect();
    let is_database = |name: &str| databases.iter().any(|d| d.service == name);

    // Django: a WSGI/ASGI server or manage.py in the command beats a name.
    let mut candidates: Vec<(u8, &String)> = services
        .iter()
        .filter(|(name, _)| !is_one_shot(name) && !is_database(name))
        .filter_map(|(name, s)| django_score(name, s).map(|score| (score, name)))
        .collect();
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let django = candidates.first().map(|(_, name)| (*name).clone());
    let other_django = candidates
        .iter()
        .skip(1)
        .map(|(_, n)| (*n).clone())
        .collect();

    let publishers: Vec<&String> = services
        .iter()
        .filter(|(name, s)| !s.ports.is_empty() && !is_one_shot(name))
        .map(|(name, _)| name)
        .collect();
    let public = public_service(services, &publishers, django.as_deref());
    let other_publishers = publishers
        .iter()
        .filter(|n| ***n != public.service)
        .map(|n| (*n).clone())
        .collect();
    let internal = services
        .iter()
        .filter(|(name, s)| s.ports.is_empty() && !is_one_shot(name) && **name != public.service)
        .map(|(name, _)| name.clone())
        .collect();
    let healthchecked = services
        .iter()
        .filter(|(_, s)| healthcheck_test(s).is_some())
        .map(|(name, _)| name.clone())
        .collect();
    let unpinned = services
        .iter()
        .filter(|(_, s)| !image_pinned(s.image.as_deref()))
        .map(|(name, _)| name.clone())
        .collect();
    let no_restart = services
        .iter()
        .filter(|(name, s)| {
            !is_one_shot(name) && matches!(s.restart.as_deref(), None | Some("" | "no"))
        })
        .map(|(name, _)| name.clone())
        .collect();
    let (secrets, literal_secrets) = secrets(services, &input.raw_environment);

    // The health path: from the Django service's healthcheck, else the public one's, else any.
    let order = django
        .iter()
        .chain(std::iter::once(&public.service))
        .chain(services.keys());
    let health_path = order.filter(|name| !is_database(name)).find_map(|name| {
        let test = healthcheck_test(services.get(name)?)?;
        health_path_in(&test).map(|path| (path, name.clone()))
    });

    let static_files = services.iter().find_map(|(name, s)| {
        s.volumes
            .iter()
            .find(|m| {
                m.target.to_ascii_lowercase().contains("static")
                    || m.source
                        .as_deref()
                        .is_some_and(|v| v.to_ascii_lowercase().contains("static"))
            })
            .map(|m| match (m.kind.as_str(), &m.source) {
                ("volume", Some(source)) => format!("the `{source}` volume"),
                _ => format!("`{name}`'s mount on `{}`", m.target),
            })
            .or_else(|| {
                s.environment
                    .keys()
                    .find(|k| k.to_ascii_uppercase().contains("STATIC"))
                    .map(|k| format!("`{name}`'s `{k}`"))
            })
    });
    Findings {
        public,
        internal,
        one_shot: one_shot.clone(),
        healthchecked,
        other_publishers,
        databases: databases.clone(),
        django,
        other_django,
        secrets,
        literal_secrets,
        health_path,
        static_files,
        unpinned,
        no_restart,
    }
}

fn words(value: Option<&serde_json::Value>) -> Vec<String> {
    match value {
        Some(serde_json::Value::String(text)) => {
            text.split_whitespace().map(str::to_owned).collect()
        }
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str())
            .flat_map(|s| s.split_whitespace())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The command and entrypoint as one lowercase line.
fn command_line(s: &ServiceConfig) -> String {
    let mut all = words(s.entrypoint.as_ref());
    all.extend(words(s.command.as_ref()));
    all.join(" ").to_ascii_lowercase()
}

/// The name split into lowercase words (`celery-worker` → `celery`, `worker`).
fn name_words(name: &str) -> Vec<String> {
    name.to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn is_one_shot(name: &str, s: &ServiceConfig) -> bool {
    const NAMES: &[&str] = &[
        "migrate",
        "migrations",
        "migration",
        "certs",
        "cert",
        "certificates",
        "init",
        "setup",
        "seed",
        "bootstrap",
        "collectstatic",
        "createsuperuser",
    ];
    if name_words(name).iter().any(|w| NAMES.contains(&w.as_str())) {
        return true;
    }
    let restarts = !matches!(s.restart.as_deref(), None | Some("" | "no"));
    let line = command_line(s);
    let exits = [
        "manage.py migrate",
        "collectstatic",
        "loaddata",
        "createsuperuser",
        "openssl req",
    ]
    .iter()
    .any(|c| line.contains(c));
    !restarts && exits
}

/// `postgres` or `mysql` when the name or image says so.
fn database_kind(name: &str, s: &ServiceConfig) -> Option<&'static str> {
    let text = format!("{name} {}", s.image.as_deref().unwrap_or("")).to_ascii_lowercase();
    if text.contains("postgres") || text.contains("postgis") {
        Some("postgres")
    } else if text.contains("mysql") || text.contains("mariadb") {
        Some("mysql")
    } else {
        None
    }
}

fn database(name: &str, s: &ServiceConfig) -> Database {
    let data = match database_kind(name, s) {
        Some("postgres") => s
            .environment
            .get("PGDATA")
            .cloned()
            .flatten()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "/var/lib/postgresql/data".to_owned()),
        _ => "/var/lib/mysql".to_owned(),
    };
    let data = data.trim_end_matches('/').to_owned();
    let on_named_volume = s.volumes.iter().any(|m| {
        let target = m.target.trim_end_matches('/');
        m.kind == "volume"
            && m.source.as_deref().is_some_and(|v| !v.is_empty())
            && (data == target || data.starts_with(&format!("{target}/")))
    });
    Database {
        service: name.to_owned(),
        data,
        on_named_volume,
    }
}

/// 2: the command runs a WSGI/ASGI server or `manage.py`; 1: the name or image says so.
fn django_score(name: &str, s: &ServiceConfig) -> Option<u8> {
    let line = command_line(s);
    if line.contains("celery") {
        return None;
    }
    if ["gunicorn", "daphne", "uvicorn", "hypercorn", "manage.py"]
        .iter()
        .any(|w| line.contains(w))
    {
        return Some(2);
    }
    let image = s.image.as_deref().unwrap_or("").to_ascii_lowercase();
    let named: Vec<String> = name_words(name)
        .into_iter()
        .chain(name_words(&image))
        .collect();
    if named.iter().any(|w| FRONT_NAMES.contains(&w.as_str())) {
        return None;
    }
    let text = format!("{name} {image}").to_ascii_lowercase();
    ["django", "backend", "web", "api"]
        .iter()
        .any(|w| text.contains(w))
        .then_some(1)
}

/// The container ports a service publishes: `80`, `53/udp`.
fn published_ports(s: &ServiceConfig) -> Vec<(u16, String)> {
    let mut ports: Vec<(u16, String)> = Vec::new();
    for entry in &s.ports {
        let (target, protocol) = match entry {
            serde_json::Value::Object(map) => (
                map.get("target").and_then(serde_json::Value::as_u64),
                map.get("protocol")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("tcp")
                    .to_owned(),
            ),
            serde_json::Value::String(text) => {
                let (spec, protocol) = text.split_once('/').unwrap_or((text, "tcp"));
                let target = spec.rsplit(':').next().and_then(|p| p.parse().ok());
                (target, protocol.to_owned())
            }
            _ => (None, String::new()),
        };
        if let Some(port) = target.and_then(|t| u16::try_from(t).ok())
            && !ports.contains(&(port, protocol.clone()))
        {
            ports.push((port, protocol));
        }
    }
    ports
}

fn exposed_ports(s: &ServiceConfig) -> Vec<u16> {
    s.expose
        .iter()
        .filter_map(|v| match v {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(t) => t.split('/').next()?.split('-').next()?.parse().ok(),
            _ => None,
        })
        .filter_map(|p| u16::try_from(p).ok())
        .collect()
}

fn looks_front(name: &str, s: &ServiceConfig) -> bool {
    let image = s.image.as_deref().unwrap_or("");
    name_words(name)
        .into_iter()
        .chain(name_words(image))
        .any(|w| FRONT_NAMES.contains(&w.as_str()))
}

fn public_service(
    services: &BTreeMap<String, ServiceConfig>,
    publishers: &[&String],
    django: Option<&str>,
) -> PublicService {
    let front = publishers.iter().find(|name| {
        services
            .get(name.as_str())
            .is_some_and(|s| looks_front(name, s))
    });
    let (service, why) = match (publishers, front) {
        ([], _) => {
            // Nothing published: the proxy-looking service, else Django, on an exposed port.
            let chosen = services
                .iter()
                .find(|(name, s)| looks_front(name, s))
                .map(|(name, _)| name.as_str())
                .or(django)
                .or_else(|| services.keys().next().map(String::as_str))
                .unwrap_or("web");
            (
                chosen.to_owned(),
                "no service publishes ports; this one looked like the entry point".to_owned(),
            )
        }
        ([only], _) => (
            (*only).clone(),
            "the only service publishing ports".to_owned(),
        ),
        (all, Some(front)) => (
            (*front).clone(),
            format!(
                "its name or image looks like the proxy in front, among the services publishing ports ({})",
                list_names(all)
            ),
        ),
        (all, None) => (
            all[0].clone(),
            format!(
                "the first by name of the services publishing ports ({}); none looks like a proxy",
                list_names(all)
            ),
        ),
    };
    let config = services.get(&service);
    let mut ports = config.map(published_ports).unwrap_or_default();
    let mut port_guess = None;
    if ports.is_empty() {
        let exposed = config.map(exposed_ports).unwrap_or_default();
        let port = exposed
            .iter()
            .copied()
            .find(|p| HTTP_PORTS.contains(p) || HTTPS_PORTS.contains(p))
            .or(exposed.first().copied())
            .unwrap_or(80);
        ports.push((port, "tcp".to_owned()));
        port_guess = Some(format!(
            "`{service}` publishes no port: the test override publishes its port {port} (a guess)"
        ));
    }
    let tcp: Vec<u16> = ports
        .iter()
        .filter(|(_, proto)| proto == "tcp")
        .map(|(p, _)| *p)
        .collect();
    let https_port = HTTPS_PORTS.iter().copied().find(|p| tcp.contains(p));
    let mut http_port = HTTP_PORTS.iter().copied().find(|p| tcp.contains(p));
    if https_port.is_none() && http_port.is_none() {
        http_port = tcp.first().copied().or(Some(80));
        port_guess.get_or_insert_with(|| {
            format!(
                "`http_port = {}` is a guess: none of `{service}`'s ports is a usual HTTP or HTTPS port",
                http_port.unwrap_or(80)
            )
        });
    }
    PublicService {
        service,
        why,
        ports: ports
            .iter()
            .map(|(p, proto)| {
                if proto == "tcp" {
                    p.to_string()
                } else {
                    format!("{p}/{proto}")
                }
            })
            .collect(),
        https_port,
        http_port,
        port_guess,
    }
}

/// The healthcheck's test as one line, unless there is none or it is disabled.
fn healthcheck_test(s: &ServiceConfig) -> Option<String> {
    let check = s.healthcheck.as_ref()?;
    if check.get("disable").and_then(serde_json::Value::as_bool) == Some(true) {
        return None;
    }
    let test = words(check.get("test"));
    match test.first().map(String::as_str) {
        None | Some("NONE") => None,
        _ => Some(test.join(" ")),
    }
}

/// A URL path containing "health" in a healthcheck command (`curl -f http://localhost:8000/health/`).
fn health_path_in(test: &str) -> Option<String> {
    let pattern = regex::Regex::new(
        r#"(?:https?://[^/\s'"]+|\b(?:localhost|127\.0\.0\.1|0\.0\.0\.0)(?::\d+)?)(/[^\s'"?#]*health[^\s'"?#]*)"#,
    )
    .ok()?;
    pattern
        .captures(test)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_owned())
}

fn image_pinned(image: Option<&str>) -> bool {
    let Some(image) = image else {
        return false;
    };
    if image.contains('@') {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':')
        .is_some_and(|(_, tag)| !tag.is_empty() && tag != "latest")
}

/// Whether a variable's name says it holds a secret.
pub fn looks_secret(name: &str) -> bool {
    const WORDS: &[&str] = &[
        "SECRET",
        "SECRETKEY",
        "PASSWORD",
        "PASSWD",
        "PASS",
        "PWD",
        "TOKEN",
        "KEY",
        "APIKEY",
    ];
    name.to_ascii_uppercase()
        .split('_')
        .any(|w| WORDS.contains(&w))
}

/// The variables a compose value interpolates: `${A}`, `${A:-x}`, `${A:?msg}`, `$A`, nested
/// defaults included; `$$` is a literal dollar.
pub fn referenced_variables(value: &str) -> Vec<String> {
    let bytes = value.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => {
                let start = i + 2;
                let end = start
                    + bytes[start..]
                        .iter()
                        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                        .count();
                if end > start {
                    names.push(value[start..end].to_owned());
                }
                i = end;
            }
            Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {
                let start = i + 1;
                let end = start
                    + bytes[start..]
                        .iter()
                        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                        .count();
                names.push(value[start..end].to_owned());
                i = end;
            }
            _ => i += 1,
        }
    }
    names
}

/// The secret-looking variables the compose files interpolate into containers, and the
/// secret-looking container variables that are literals (which no generated secret reaches).
fn secrets(
    services: &BTreeMap<String, ServiceConfig>,
    raw: &BTreeMap<String, BTreeMap<String, Option<String>>>,
) -> (Vec<String>, Vec<(String, String)>) {
    let mut generate = BTreeSet::new();
    let mut literal = Vec::new();
    for (service, config) in services {
        let raw_env = raw.get(service);
        for key in config.environment.keys() {
            let written = raw_env.and_then(|env| env.get(key));
            match written {
                // `environment: [NAME]`: passed through from compose's own environment.
                Some(None) if looks_secret(key) => {
                    generate.insert(key.clone());
                }
                Some(None) => {}
                Some(Some(value)) => {
                    let refs = referenced_variables(value);
                    let secret_refs: Vec<&String> =
                        refs.iter().filter(|r| looks_secret(r)).collect();
                    generate.extend(secret_refs.iter().map(|r| (*r).clone()));
                    let whole = value.trim_start().starts_with("${") && refs.len() == 1;
                    if looks_secret(key) && secret_refs.is_empty() {
                        if whole {
                            // `SECRET_KEY: ${DJANGO_SK}`: the variable holds the secret.
                            generate.extend(refs);
                        } else if refs.is_empty() && !value.is_empty() {
                            literal.push((service.clone(), key.clone()));
                        }
                    }
                }
                None => {}
            }
        }
    }
    (generate.into_iter().collect(), literal)
}

fn list_names<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A TOML string.
fn q(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// A TOML array of strings.
fn q_list<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<String> = items.iter().map(|s| q(s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// The REVIEW lines of each file.
#[derive(Debug, Default)]
struct Reviews {
    gate: Vec<String>,
    test_override: Vec<String>,
    checks: Vec<String>,
}

fn reviews(input: &Input, f: &Findings) -> Reviews {
    let mut r = Reviews::default();
    let public = &f.public;
    r.gate.push(format!(
        "the public service is `{}`: {}.",
        public.service, public.why
    ));
    if let Some(guess) = &public.port_guess {
        r.gate.push(format!("{guess}."));
    }
    if public.https_port.is_some() {
        r.gate.push(format!(
            "`https_port = {}`: the gate must trust the certificate; set `public.ca_cert` (its path in `{}`) and `public.host`, and make the test override provide a throwaway certificate.",
            public.https_port.unwrap_or(443),
            public.service
        ));
    }
    if !f.internal.is_empty() {
        r.gate.push(format!(
            "`internal_services` are the services publishing nothing: {}.",
            list_names(&f.internal)
        ));
    }
    if !f.one_shot.is_empty() {
        r.gate.push(format!(
            "`one_shot_services` guessed from names and commands: {}.",
            list_names(&f.one_shot)
        ));
    }
    if !f.secrets.is_empty() {
        r.gate.push(format!(
            "`secrets.generate` are the secret-looking variables the compose files interpolate ({}); drop any that must keep its real value (a third party's API key).",
            list_names(&f.secrets)
        ));
    }
    for (service, key) in &f.literal_secrets {
        r.gate.push(format!(
            "`{service}`'s `{key}` is a literal (compose file or `env_file:`): no generated secret reaches it; write `{key}: ${{{key}}}` under `environment:`."
        ));
    }
    match &f.django {
        Some(django) => {
            r.gate.push(format!(
                "`{django}` is taken for the Django service (operations, `check --deploy`){}.",
                if f.other_django.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; also looking like Django: {} (one `migrate` per database)",
                        list_names(&f.other_django)
                    )
                }
            ));
            if f.healthchecked.contains(django) {
                r.gate.push(format!(
                    "`{django}` has a healthcheck and `up --wait` runs before `migrate`: it must not need the migrations."
                ));
            }
            r.gate.push(match &f.static_files {
                Some(seen) => format!(
                    "`collectstatic` runs as an operation because static files live on {seen}; remove it if the image collects them at build."
                ),
                None => "no static volume: the image is taken to collect static files at build (e.g. WhiteNoise); add a `collectstatic` operation if it does not.".to_owned(),
            });
        }
        None => r.gate.push(
            "no Django service recognised: add `[[operations]]` (migrate) and `[[command_assertions]]` (check --deploy) by hand.".to_owned(),
        ),
    }
    if let Some(db) = f.databases.first() {
        r.gate.push(format!(
            "`health.dependency = \"{}\"`: the health endpoint must answer 503 while it is stopped; remove it if the health view does not use the database.",
            db.service
        ));
    }
    for db in f.databases.iter().filter(|d| !d.on_named_volume) {
        r.gate.push(format!(
            "`{}` keeps `{}` on no named volume: `infra.data_on_named_volumes` fails until one is mounted there.",
            db.service, db.data
        ));
    }
    if !f.unpinned.is_empty() {
        r.gate.push(format!(
            "no pinned image tag on {}: `infra.no_latest_tags` fails until each has `image: name:version`.",
            list_names(&f.unpinned)
        ));
    }
    if !f.no_restart.is_empty() {
        r.gate.push(format!(
            "no restart policy on {}: `infra.restart_policies` fails until each has `restart: unless-stopped`.",
            list_names(&f.no_restart)
        ));
    }
    if input.env_file.is_none() {
        r.gate.push(
            "no `env_file`: the variables the compose files require must then come from the environment `smoke gate` runs in.".to_owned(),
        );
    }

    for other in &f.other_publishers {
        r.test_override.push(format!(
            "`{other}` publishes ports in production; reset here so parallel runs never collide, which also hides them from `infra.only_public_services_publish_ports`: remove them from production instead, or keep this for a test-only service."
        ));
    }

    match &f.health_path {
        Some((path, service)) => r.checks.push(format!(
            "the health path `{path}` comes from `{service}`'s healthcheck; readiness waits for it to answer 200."
        )),
        None => r.checks.push(
            "the health path `/health/` is a guess (no healthcheck names one): readiness waits for it to answer 200, so point it at the stack's health view.".to_owned(),
        ),
    }
    r.checks
        .push("`pages.home` expects `/` to answer 200.".to_owned());
    r.checks.push(
        "`browser.home` only waits for the page's body: name what the page must show once its scripts ran.".to_owned(),
    );
    r.checks
        .push("`routing.admin_reaches_django` assumes the Django admin at `/admin/`.".to_owned());
    if let Some(seen) = &f.static_files {
        r.checks.push(format!(
            "`routing.static_served` assumes collected admin files under `/static/` (static files seen: {seen})."
        ));
    }
    r.checks.push(
        "`routing.unknown_api_is_404` assumes Django owns `/api/`; remove it if the stack has no API.".to_owned(),
    );
    r
}

/// The opening comment of a generated file.
fn header(out: &mut String, input: &Input, what: &str, reviews: &[String]) {
    let mut from = list_names(&input.compose_files);
    if let Some(env) = &input.env_file {
        from.push_str(&format!(" with the variables of `{env}`"));
    }
    out.push_str(&format!(
        "# Generated by `smoke init` from {from} (`docker compose config`): {what}\n"
    ));
    out.push_str(
        "# A starting point made of guesses: check each REVIEW line, then run `smoke gate`.\n#\n",
    );
    if reviews.is_empty() {
        out.push_str("# Nothing here is a guess.\n");
    }
    for line in reviews {
        out.push_str(&format!("# REVIEW: {line}\n"));
    }
    out.push('\n');
}

/// The three files.
pub fn generate(input: &Input) -> Generated {
    let findings = analyse(input);
    let reviews = reviews(input, &findings);
    Generated {
        gate: render_gate(input, &findings, &reviews.gate),
        test_override: render_override(input, &findings, &reviews.test_override),
        checks: render_checks(input, &findings, &reviews.checks),
        reviews: reviews.gate.len() + reviews.test_override.len() + reviews.checks.len(),
    }
}

fn render_gate(input: &Input, f: &Findings, reviews: &[String]) -> String {
    let mut out = String::new();
    header(
        &mut out,
        input,
        "how `smoke gate` drives the stack (smoke/README.md, \"The gate file\").",
        reviews,
    );
    out.push_str(&format!("name = {}\n", q(&input.name)));
    out.push_str(
        "# The production compose files, then the test override written beside this file.\n",
    );
    let mut files = input.compose_files.clone();
    files.push(OVERRIDE_FILE.to_owned());
    out.push_str(&format!("compose_files = {}\n", q_list(&files)));
    if let Some(env) = &input.env_file {
        out.push_str("# Only for compose's `${VAR}` substitution; containers see what `environment:` says.\n");
        out.push_str(&format!("env_file = {}\n", q(env)));
    }
    if !f.internal.is_empty() {
        out.push_str("# They publish no port: must never be reachable from the host.\n");
        out.push_str(&format!("internal_services = {}\n", q_list(&f.internal)));
    }
    if !f.one_shot.is_empty() {
        out.push_str("# Run once and exit: exempt from the restart policy check.\n");
        out.push_str(&format!("one_shot_services = {}\n", q_list(&f.one_shot)));
    }
    if !f.healthchecked.is_empty() {
        out.push_str(&format!(
            "# With a healthcheck (`up --wait` waits until healthy): {}.\n",
            f.healthchecked.join(", ")
        ));
    }
    if !f.secrets.is_empty() {
        out.push_str("\n# Fresh random values per run, masked in every output; they reach a container only\n# through its `environment:` (`NAME: ${NAME}`).\n[secrets]\n");
        out.push_str(&format!("generate = {}\n", q_list(&f.secrets)));
    }
    let public = &f.public;
    out.push_str(&format!(
        "\n# `{}`: {}. The test override publishes its ports on ephemeral 127.0.0.1 ports.\n[public]\n",
        public.service, public.why
    ));
    out.push_str(&format!("service = {}\n", q(&public.service)));
    if let Some(port) = public.https_port {
        out.push_str(&format!("https_port = {port}\n"));
    }
    if let Some(port) = public.http_port {
        out.push_str(&format!("http_port = {port}\n"));
    }
    if let Some(django) = &f.django {
        out.push_str("\n# One-shot commands run once the stack is up (`docker compose exec`); each must exit 0.\n# They run concurrently: order one after another with `after = \"migrate\"`.\n");
        let mut operations = vec![("migrate", ["python", "manage.py", "migrate", "--noinput"])];
        // A shared static volume is filled at run time; without one, the image collects at
        // build (WhiteNoise) and a read-only or root-owned STATIC_ROOT makes it fail here.
        if f.static_files.is_some() {
            operations.push((
                "collectstatic",
                ["python", "manage.py", "collectstatic", "--noinput"],
            ));
        }
        for (name, command) in operations {
            out.push_str(&format!(
                "[[operations]]\nname = {}\nservice = {}\ncommand = {}\n",
                q(name),
                q(django),
                q_list(&command)
            ));
            // It needs no database: it runs while the stack's healthchecks are still waited for.
            if name == "collectstatic" {
                out.push_str("while_starting = true\n");
            }
            out.push('\n');
        }
        out.pop();
    }
    if let Some(db) = f.databases.first() {
        out.push_str(&format!(
            "\n# The path is the checks file's `[health]`. `{}` is stopped during the gate: the health\n# endpoint must answer 503 meanwhile, then recover.\n[health]\ndependency = {}\n",
            db.service,
            q(&db.service)
        ));
    }
    for db in &f.databases {
        out.push_str(&format!(
            "\n# The database's data must be on a named volume and outlive its container.\n[[stateful]]\nservice = {}\ndata = {}\n",
            q(&db.service),
            q_list(&[db.data.as_str()])
        ));
    }
    if let Some(django) = &f.django {
        out.push_str(&format!(
            "\n# It reads only code and settings: it runs as soon as the container does (`while_starting`).\n[[command_assertions]]\nname = \"infra.check_deploy_clean\"\nservice = {}\ncommand = {}\nhint = {}\nwhile_starting = true\n",
            q(django),
            q_list(&["python", "manage.py", "check", "--deploy", "--fail-level", "WARNING"]),
            q("fix what `manage.py check --deploy` reports with the production settings")
        ));
    }
    out
}

fn render_override(input: &Input, f: &Findings, reviews: &[String]) -> String {
    let mut out = String::new();
    header(
        &mut out,
        input,
        "the test override `smoke gate` layers on the production files. `!override` and `!reset` need Compose 2.24.4 or newer.",
        reviews,
    );
    out.push_str("services:\n");
    out.push_str(&format!(
        "  {}:\n    # Ephemeral host ports on loopback instead of production's, so parallel runs never collide.\n    # For an engine on another machine, SMOKE_PUBLISH_IP is that machine's address.\n    ports: !override\n",
        f.public.service
    ));
    for port in &f.public.ports {
        out.push_str(&format!(
            "      - \"${{SMOKE_PUBLISH_IP:-127.0.0.1}}::{port}\"\n"
        ));
    }
    for other in &f.other_publishers {
        out.push_str(&format!("  {other}:\n    ports: !reset []\n"));
    }
    out
}

fn render_checks(input: &Input, f: &Findings, reviews: &[String]) -> String {
    let mut out = String::new();
    header(
        &mut out,
        input,
        "what `smoke gate` and `smoke run --checks` prove (smoke/README.md, \"The checks file\").",
        reviews,
    );
    out.push_str(&format!("version = 1\nname = {}\n", q(&input.name)));
    let (path, comment) = match &f.health_path {
        Some((path, service)) => (path.as_str(), format!("From `{service}`'s healthcheck.")),
        None => (
            "/health/",
            "A guess: no healthcheck names a health path.".to_owned(),
        ),
    };
    out.push_str(&format!(
        "\n# Readiness waits for this path; `health.ok` checks it. {comment}\n[health]\npath = {}\nproves = \"the health endpoint answers 200\"\n",
        q(path)
    ));
    out.push_str(
        "\n[[pages]]\nname = \"home\"\npath = \"/\"\nproves = \"the home page answers\"\n",
    );
    out.push_str(
        "\n# The home page in a real browser (headless Chromium): it fails on a console error, an\n# uncaught exception, a failed request or mixed content. Name what the page must show once\n# its scripts ran (e.g. `wait_for = \"#app h1\"`) to prove more than that it loads.\n[[checks]]\nname = \"browser.home\"\nproves = \"the home page loads in a browser with no error\"\nbrowser = { path = \"/\", wait_for = \"body\" }\n",
    );
    out.push_str(&format!(
        "\n[[routes]]\nname = \"admin_reaches_django\"\npath = \"/admin/login/\"\nproves = \"`/admin/` reaches Django and serves the admin login page\"\ncontent_type = \"text/html\"\ncontains = {}\nhint = \"proxy `/admin/` to Django\"\n",
        q_list(&["id=\"login-form\""])
    ));
    if let Some(seen) = &f.static_files {
        out.push_str(&format!(
            "\n# Static files seen: {seen}.\n[[routes]]\nname = \"static_served\"\npath = \"/static/admin/css/base.css\"\nproves = \"the collected static files are served\"\ncontent_type = \"text/css\"\nhint = {}\n",
            q("run `collectstatic` and serve `/static/` from where it writes (STATIC_ROOT)")
        ));
    }
    out.push_str(
        "\n[[routes]]\nname = \"unknown_api_is_404\"\npath = \"/api/smoke-no-such-endpoint-{{run_id}}/\"\nproves = \"an unknown `/api/` path answers 404, not a page of the site\"\nstatus = 404\n",
    );
    out
}

// ---------------------------------------------------------------------------------------------
// I/O: running compose, refusing to overwrite, writing.

/// What `smoke init` was asked.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The stack's production compose files.
    pub compose_files: Vec<PathBuf>,
    /// Where to write [default: the first compose file's folder].
    pub out: Option<PathBuf>,
    /// The env file compose substitutes `${VAR}` from (the gate file will name it).
    pub env_file: Option<PathBuf>,
    /// Replace existing files.
    pub force: bool,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Written {
    /// The folder.
    pub dir: PathBuf,
    /// The files, gate file first.
    pub files: Vec<PathBuf>,
    /// How many `# REVIEW:` lines they hold.
    pub reviews: usize,
}

/// Why `smoke init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("the compose file `{0}` does not exist (give the stack's production compose files)")]
    MissingCompose(PathBuf),
    #[error("failed to read the env file `{path}`\n  caused by: {source}")]
    EnvFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`docker compose config` cannot read the compose files\n  caused by: {0}\n  (fix the compose file; a variable required with `${{NAME:?...}}` needs a value: pass the stack's env file with `--env-file .env.example`)"
    )]
    Compose(CommandError),
    #[error("this machine cannot read compose files: {0}")]
    MachineNotReady(crate::gate::preflight::Missing),
    #[error("refusing to overwrite {} (pass `--force` to replace them)", list_paths(.0))]
    Exists(Vec<PathBuf>),
    #[error("failed to write `{path}`\n  caused by: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the compose files and writes the gate file, the test override and the checks file.
pub async fn init(options: &InitOptions) -> Result<Written, InitError> {
    let mut files = Vec::new();
    for file in &options.compose_files {
        if !file.is_file() {
            return Err(InitError::MissingCompose(file.clone()));
        }
        files.push(normalize(file));
    }
    let Some(first) = files.first() else {
        return Err(InitError::MissingCompose(PathBuf::new()));
    };
    let dir = match &options.out {
        Some(out) => normalize(out),
        None => first.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let targets = [
        dir.join(spec::FILE_NAME),
        dir.join(OVERRIDE_FILE),
        dir.join(spec::DEFAULT_CHECKS),
    ];
    let existing: Vec<PathBuf> = targets.iter().filter(|t| t.exists()).cloned().collect();
    if !options.force && !existing.is_empty() {
        return Err(InitError::Exists(existing));
    }
    let env = match &options.env_file {
        Some(path) => spec::parse_env_file(&std::fs::read_to_string(path).map_err(|source| {
            InitError::EnvFile {
                path: path.clone(),
                source,
            }
        })?),
        None => BTreeMap::new(),
    };
    crate::gate::preflight::check(crate::gate::preflight::Need::Config)
        .await
        .map_err(InitError::MachineNotReady)?;
    let resolved = compose_config(&files, &env, true)
        .await
        .map_err(InitError::Compose)?;
    let written = compose_config(&files, &env, false)
        .await
        .map_err(InitError::Compose)?;
    let input = input_from(
        &resolved,
        &written,
        files.iter().map(|f| relative(f, &dir)).collect(),
        options
            .env_file
            .as_deref()
            .map(|e| relative(&normalize(e), &dir)),
    )
    .map_err(InitError::Compose)?;
    let generated = generate(&input);
    std::fs::create_dir_all(&dir).map_err(|source| InitError::Write {
        path: dir.clone(),
        source,
    })?;
    for (path, text) in
        targets
            .iter()
            .zip([&generated.gate, &generated.test_override, &generated.checks])
    {
        std::fs::write(path, text).map_err(|source| InitError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(Written {
        dir,
        files: targets.to_vec(),
        reviews: generated.reviews,
    })
}

/// The services' environments as written, from `config --no-interpolate`.
#[derive(Debug, Deserialize)]
struct Uninterpolated {
    #[serde(default)]
    services: BTreeMap<String, UninterpolatedService>,
}

#[derive(Debug, Deserialize)]
struct UninterpolatedService {
    #[serde(default)]
    environment: BTreeMap<String, Option<String>>,
}

/// The generator's input from the two `config` outputs.
pub fn input_from(
    resolved: &serde_json::Value,
    written: &serde_json::Value,
    compose_files: Vec<String>,
    env_file: Option<String>,
) -> Result<Input, CommandError> {
    let unreadable = |err: serde_json::Error| CommandError {
        command: "docker compose config --format json".into(),
        status: "printed JSON `smoke init` cannot read".into(),
        output: err.to_string(),
    };
    let config = ComposeConfig::deserialize(resolved).map_err(unreadable)?;
    let raw = Uninterpolated::deserialize(written).map_err(unreadable)?;
    let name = resolved
        .get("name")
        .and_then(serde_json::Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or("stack")
        .to_owned();
    Ok(Input {
        name,
        config,
        raw_environment: raw
            .services
            .into_iter()
            .map(|(name, s)| (name, s.environment))
            .collect(),
        compose_files,
        env_file,
    })
}

/// `docker compose -f ... config --format json`, from the first file's folder as the gate
/// runs it. Not [`crate::gate::compose::Project::config`]: that one names the project, and
/// the name compose gives it (`name:` or the folder) is the stack's name here.
async fn compose_config(
    files: &[PathBuf],
    env: &BTreeMap<String, String>,
    interpolate: bool,
) -> Result<serde_json::Value, CommandError> {
    let mut cmd = tokio::process::Command::new("docker");
    if let Some(dir) = files.first().and_then(|f| f.parent()) {
        cmd.current_dir(dir);
    }
    cmd.arg("compose");
    let mut shown = String::from("docker compose");
    for file in files {
        cmd.arg("-f").arg(file);
        shown.push_str(&format!(" -f {}", file.display()));
    }
    let mut args = vec!["config", "--format", "json"];
    if !interpolate {
        args.push("--no-interpolate");
    }
    cmd.args(&args).envs(env).stdin(std::process::Stdio::null());
    shown.push(' ');
    shown.push_str(&args.join(" "));
    let output = run_command(cmd, &shown, Duration::from_secs(60)).await?;
    if !output.success {
        return Err(CommandError {
            command: shown,
            status: match output.code {
                Some(code) => format!("exited with status {code}"),
                None => "was killed by a signal".into(),
            },
            output: output.stderr.trim().to_owned(),
        });
    }
    serde_json::from_str(&output.stdout).map_err(|err| CommandError {
        command: shown,
        status: "printed JSON `smoke init` cannot read".into(),
        output: err.to_string(),
    })
}

/// Absolute, with `.` and `..` folded (lexically: paths given on a command line).
fn normalize(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` as seen from `base` (both normalised), with `/`; absolute when they share nothing.
fn relative(path: &Path, base: &Path) -> String {
    let path: Vec<Component<'_>> = path.components().collect();
    let base: Vec<Component<'_>> = base.components().collect();
    let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    if common <= 1 {
        // Nothing but the root in common: an absolute path reads better than a climb to `/`.
        return PathBuf::from_iter(&path).display().to_string();
    }
    let mut parts: Vec<String> = vec!["..".to_owned(); base.len() - common];
    parts.extend(
        path[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn tutorial() -> Input {
        let resolved: serde_json::Value =
            serde_json::from_str(include_str!("../../fixtures/init/tutorial/config.json")).unwrap();
        let written: serde_json::Value = serde_json::from_str(include_str!(
            "../../fixtures/init/tutorial/config.no-interpolate.json"
        ))
        .unwrap();
        input_from(
            &resolved,
            &written,
            vec!["compose.yml".into()],
            Some(".env.example".into()),
        )
        .unwrap()
    }

    /// An input from compose-like JSON: `{"services": {...}}`, interpolated and as written.
    fn input(json: serde_json::Value) -> Input {
        input_from(&json, &json, vec!["compose.yml".into()], None).unwrap()
    }

    fn snapshot(name: &str, text: &str) {
        insta::with_settings!({
            snapshot_path => "../../fixtures/init/snapshots",
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(name, text);
        });
    }

    #[test]
    fn tutorial_gate_file() {
        snapshot("tutorial_gate", &generate(&tutorial()).gate);
    }

    #[test]
    fn tutorial_test_override() {
        snapshot("tutorial_override", &generate(&tutorial()).test_override);
    }

    #[test]
    fn tutorial_checks_file() {
        snapshot("tutorial_checks", &generate(&tutorial()).checks);
    }

    #[test]
    fn the_tutorial_files_parse_as_gate_and_checks_files() {
        let generated = generate(&tutorial());
        let spec: Result<spec::StackSpec, _> = toml::from_str(&generated.gate);
        assert!(spec.is_ok(), "{spec:?}\n{}", generated.gate);
        let suite = crate::catalog::parse(&generated.checks, Path::new("checks.toml"));
        assert!(suite.is_ok(), "{suite:?}\n{}", generated.checks);
        let reviews = [&generated.gate, &generated.test_override, &generated.checks]
            .iter()
            .map(|t| t.matches("# REVIEW: ").count())
            .sum::<usize>();
        assert_eq!(reviews, generated.reviews);
    }

    #[test]
    fn tutorial_findings() {
        let f = analyse(&tutorial());
        assert_eq!(f.public.service, "nginx");
        assert_eq!(f.public.http_port, Some(80));
        assert_eq!(f.public.https_port, None);
        assert_eq!(f.internal, ["db", "web"]);
        assert_eq!(f.django.as_deref(), Some("web"));
        assert_eq!(f.secrets, ["DJANGO_SECRET_KEY", "POSTGRES_PASSWORD"]);
        assert_eq!(f.databases[0].data, "/var/lib/postgresql/data");
        assert!(f.databases[0].on_named_volume);
        assert!(f.static_files.is_some());
    }

    #[test]
    fn a_proxy_is_preferred_among_several_publishers_and_the_others_are_reset() {
        let f = analyse(&input(serde_json::json!({"services": {
            "adminer": {"image": "adminer:4", "ports": [{"target": 8080, "published": "8081"}]},
            "edge": {"image": "caddy:2.8", "ports": [
                {"target": 443, "published": "443"}, {"target": 80, "published": "80"},
                {"target": 443, "published": "443", "protocol": "udp"}]},
            "mail": {"image": "maildev/maildev:2.1.0", "ports": [{"target": 1080, "published": "1080"}]},
        }})));
        assert_eq!(f.public.service, "edge");
        assert_eq!(f.public.https_port, Some(443));
        assert_eq!(f.public.http_port, Some(80));
        assert_eq!(f.public.ports, ["443", "80", "443/udp"]);
        assert_eq!(f.other_publishers, ["adminer", "mail"]);
        let text = generate(&input(serde_json::json!({"services": {
            "adminer": {"image": "adminer:4", "ports": [{"target": 8080}]},
            "edge": {"image": "caddy:2.8", "ports": [{"target": 80}]},
        }})))
        .test_override;
        assert!(
            text.contains("  adminer:\n    ports: !reset []\n"),
            "{text}"
        );
    }

    #[test]
    fn without_a_proxy_the_first_publisher_wins_and_odd_ports_are_a_guess() {
        let f = analyse(&input(serde_json::json!({"services": {
            "app": {"image": "x/app:1", "command": ["gunicorn", "x.wsgi"], "ports": [{"target": 5000}]},
            "zeta": {"image": "x/z:1", "ports": [{"target": 9000}]},
        }})));
        assert_eq!(f.public.service, "app");
        assert_eq!(f.public.http_port, Some(5000));
        assert!(f.public.port_guess.is_some());
        assert_eq!(f.django.as_deref(), Some("app"));
    }

    #[test]
    fn one_shots_databases_and_mysql_data() {
        let f = analyse(&input(serde_json::json!({"services": {
            "migrate": {"image": "x/web:1", "command": ["python", "manage.py", "migrate"]},
            "certs": {"image": "alpine:3.20", "restart": "no"},
            "database": {"image": "mariadb:11", "volumes": [{"type": "bind", "source": "./data", "target": "/var/lib/mysql"}]},
            "pg": {"image": "postgres:16", "environment": {"PGDATA": "/var/lib/postgresql/data/pgdata"},
                   "volumes": [{"type": "volume", "source": "pg", "target": "/var/lib/postgresql/data"}]},
            "worker": {"image": "x/web:1", "command": "celery -A x worker", "restart": "always"},
            "web": {"image": "x/web:1", "command": "daphne x.asgi:application", "restart": "always", "ports": [{"target": 8000}]},
        }})));
        assert_eq!(f.one_shot, ["certs", "migrate"]);
        assert_eq!(f.django.as_deref(), Some("web"));
        let data: Vec<(&str, &str, bool)> = f
            .databases
            .iter()
            .map(|d| (d.service.as_str(), d.data.as_str(), d.on_named_volume))
            .collect();
        assert_eq!(
            data,
            [
                ("database", "/var/lib/mysql", false),
                ("pg", "/var/lib/postgresql/data/pgdata", true)
            ]
        );
        assert_eq!(f.internal, ["database", "pg", "worker"]);
        assert_eq!(f.no_restart, ["database", "pg"]);
    }

    #[test]
    fn secrets_come_from_interpolated_variables_and_literals_are_flagged() {
        let resolved = serde_json::json!({"services": {"web": {"environment": {
            "SECRET_KEY": "abc", "DATABASE_URL": "postgres://u:pw@db/x", "API_TOKEN": "t",
            "DEBUG": "0", "STRIPE_KEY": "k", "PASSTHROUGH_PASSWORD": null,
        }}}});
        let written = serde_json::json!({"services": {"web": {"environment": {
            "SECRET_KEY": "${DJANGO_SK:?set it}", "DATABASE_URL": "postgres://u:${DB_PASSWORD}@db/x",
            "API_TOKEN": "literal", "DEBUG": "${DEBUG:-0}", "STRIPE_KEY": "$$notavar",
            "PASSTHROUGH_PASSWORD": null,
        }}}});
        let input = input_from(&resolved, &written, vec!["c.yml".into()], None).unwrap();
        let f = analyse(&input);
        assert_eq!(
            f.secrets,
            ["DB_PASSWORD", "DJANGO_SK", "PASSTHROUGH_PASSWORD"]
        );
        assert_eq!(
            f.literal_secrets,
            [
                ("web".to_owned(), "API_TOKEN".to_owned()),
                ("web".to_owned(), "STRIPE_KEY".to_owned())
            ]
        );
    }

    #[test]
    fn variable_references() {
        assert_eq!(
            referenced_variables("${A:-${B}}/$C$$D ${E:?x} $ {F}"),
            ["A", "B", "C", "E"]
        );
        assert!(looks_secret("DJANGO_SECRET_KEY"));
        assert!(looks_secret("POSTGRES_PASSWORD"));
        assert!(!looks_secret("MONKEY_BUSINESS"));
        assert!(!looks_secret("DJANGO_ALLOWED_HOSTS"));
    }

    #[test]
    fn health_paths_are_read_from_urls_in_healthchecks() {
        assert_eq!(
            health_path_in("CMD curl -fsS http://localhost:8000/api/health/"),
            Some("/api/health/".to_owned())
        );
        assert_eq!(
            health_path_in("CMD-SHELL wget -qO- 127.0.0.1:8000/healthz || exit 1"),
            Some("/healthz".to_owned())
        );
        assert_eq!(health_path_in("CMD python /app/healthcheck.py"), None);
    }

    #[test]
    fn relative_paths_climb_from_the_output_folder() {
        assert_eq!(
            relative(Path::new("/a/b/c/compose.yml"), Path::new("/a/b")),
            "c/compose.yml"
        );
        assert_eq!(
            relative(Path::new("/a/b/.env"), Path::new("/a/b/c/d")),
            "../../.env"
        );
        assert_eq!(
            relative(Path::new("/srv/x/compose.yml"), Path::new("/tmp/out")),
            "/srv/x/compose.yml"
        );
        assert_eq!(
            normalize(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
    }

    #[test]
    fn pinned_images() {
        assert!(image_pinned(Some("postgres:15")));
        assert!(image_pinned(Some("registry:5000/x/y:1.2")));
        assert!(image_pinned(Some("x@sha256:abc")));
        assert!(!image_pinned(Some("registry:5000/x/y")));
        assert!(!image_pinned(Some("nginx:latest")));
        assert!(!image_pinned(None));
    }
}
