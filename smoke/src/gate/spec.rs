//! The gate's description of a stack (`gate.toml`): which compose files make it, where its
//! configuration comes from, which service is public, which one-shot commands prepare it, and
//! which infrastructure assertions hold for it. Data, so that a team gates its own stack by
//! writing this file, not Rust.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The file name looked up in a stack folder.
pub const FILE_NAME: &str = "gate.toml";
/// The checks file used when the gate file names none.
pub const DEFAULT_CHECKS: &str = "checks.toml";

/// A stack description, as read from `gate.toml`, with paths made absolute.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StackSpec {
    /// A short name, used in project names and reports.
    pub name: String,
    /// Compose files, relative to the folder holding `gate.toml`; the first one's folder is
    /// the compose project directory.
    pub compose_files: Vec<PathBuf>,
    /// An env file whose variables are passed to compose (placeholders are fine: every
    /// variable named in `secrets.generate` is replaced by a fresh random value).
    #[serde(default)]
    pub env_file: Option<PathBuf>,
    /// Variables set on top of the env file; `${NAME}` refers to another variable, including
    /// a generated secret.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: Secrets,
    pub public: Public,
    #[serde(default)]
    pub internal_services: Vec<String>,
    /// Services that exist only in the test override (a mail catcher, a certificate
    /// generator): allowed to publish ports on 127.0.0.1.
    #[serde(default)]
    pub test_only_services: Vec<String>,
    #[serde(default)]
    pub mail: Option<Mail>,
    #[serde(default)]
    pub staff: Option<Staff>,
    /// One-shot commands run after `up` (migrations, collectstatic, fixture data), each
    /// checked; concurrently unless ordered with `after`.
    #[serde(default)]
    pub operations: Vec<Operation>,
    #[serde(default)]
    pub health: Health,
    /// Services whose data must outlive their containers (databases): each data directory
    /// must be on a named volume, and recreating the container must keep the data.
    #[serde(default)]
    pub stateful: Vec<Stateful>,
    /// Services that run once and exit (a certificate generator): exempt from the restart
    /// policy check.
    #[serde(default)]
    pub one_shot_services: Vec<String>,
    /// Built-in `infra.*` checks turned off for this stack: name = the reason, shown in
    /// every report.
    #[serde(default)]
    pub disable: BTreeMap<String, String>,
    /// Commands run in a service whose exit status is an assertion (`check --deploy`,
    /// `makemigrations --check`).
    #[serde(default)]
    pub command_assertions: Vec<CommandAssertion>,
    /// The checks file (relative path): what to prove once the stack is up; default
    /// `checks.toml` beside this file.
    #[serde(default)]
    pub checks: Option<PathBuf>,
    /// How long `up` waits for every service with a healthcheck to pass, in seconds (default
    /// 120), for the infrastructure project and then the stack each: past it, the stack did
    /// not start (exit 4). Raise it for a slow first start on a loaded CI machine.
    #[serde(default = "default_up_timeout")]
    pub up_timeout: u64,
    /// Services without an HTTP port that must be up: `infra.service_<name>_<state>`. Looked
    /// up in the app project, then in the infrastructure project.
    #[serde(default)]
    pub required_services: Vec<RequiredService>,
    /// A separate compose project started first and removed last (databases, caches, the
    /// external network the app project joins).
    #[serde(default)]
    pub infra_project: Option<InfraProject>,
    /// The folder holding `gate.toml`; filled in when loaded.
    #[serde(skip)]
    pub root: PathBuf,
}

fn default_up_timeout() -> u64 {
    120
}

/// A service that must be in a state once the stack is up.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequiredService {
    /// The compose service name.
    pub name: String,
    /// `healthy` (its healthcheck passes) or `running` (up, not restarting).
    pub state: ServiceState,
}

/// What "up" means for a required service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Running with a passing healthcheck.
    Healthy,
    /// Running (a healthcheck, if any, is not required to pass).
    Running,
}

impl ServiceState {
    /// `healthy` or `running`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Healthy => "healthy",
            ServiceState::Running => "running",
        }
    }
}

/// The infrastructure compose project.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InfraProject {
    /// Its compose files, relative to the folder holding `gate.toml`.
    pub compose_files: Vec<PathBuf>,
    /// A short name for its project (`<app project>-<name>`); `infra` by default.
    #[serde(default)]
    pub name: Option<String>,
    /// The variable through which both projects get the external network's per-run name;
    /// `INFRA_NETWORK` by default.
    #[serde(default = "default_network_env")]
    pub network_env: String,
}

fn default_network_env() -> String {
    "INFRA_NETWORK".to_owned()
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// Variables that get a fresh random value per run, masked everywhere: a name (64 hex
    /// characters), or `{ name = "X", hex_chars = 40 }` for a value of another length.
    #[serde(default)]
    pub generate: Vec<GeneratedSecret>,
}

/// One generated secret.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum GeneratedSecret {
    /// 64 lowercase hex characters.
    Name(String),
    /// `hex_chars` lowercase hex characters.
    Sized {
        name: String,
        #[serde(default = "default_hex_chars")]
        hex_chars: usize,
    },
}

fn default_hex_chars() -> usize {
    64
}

impl GeneratedSecret {
    /// The variable's name.
    pub fn name(&self) -> &str {
        match self {
            GeneratedSecret::Name(name) | GeneratedSecret::Sized { name, .. } => name,
        }
    }

    /// How many hex characters its value has.
    pub fn hex_chars(&self) -> usize {
        match self {
            GeneratedSecret::Name(_) => 64,
            GeneratedSecret::Sized { hex_chars, .. } => *hex_chars,
        }
    }
}

/// A string or a list of strings, as written (the schema of `after`).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A string or a list of strings.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// A service holding data that must survive the recreation of its container.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stateful {
    /// The compose service name.
    pub service: String,
    /// The directories inside the container where it keeps its data (e.g. PostgreSQL's
    /// `PGDATA`, `/var/lib/postgresql/data`).
    pub data: Vec<String>,
}

/// The one service users reach.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Public {
    pub service: String,
    /// The container port serving HTTPS, when TLS is configured.
    #[serde(default)]
    pub https_port: Option<u16>,
    /// The container port serving plain HTTP.
    #[serde(default)]
    pub http_port: Option<u16>,
    /// Where the public service keeps the (throwaway) certificate to trust.
    #[serde(default)]
    pub ca_cert: Option<String>,
    /// The host name to use in URLs (the certificate's name).
    #[serde(default = "default_host")]
    pub host: String,
    /// The public origin the stack builds its links with (its `PUBLIC_SITE_URL`, without
    /// the ephemeral port), e.g. `https://localhost`; links on it are sent to the stack.
    #[serde(default)]
    pub site_url: Option<String>,
}

fn default_host() -> String {
    "localhost".to_owned()
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mail {
    pub service: String,
    pub api_port: u16,
    /// How long an email step waits for its message, in seconds (default 30): the catcher is
    /// beside the stack, so a message not there by then is not coming.
    #[serde(default = "default_mail_timeout")]
    pub timeout: u64,
}

fn default_mail_timeout() -> u64 {
    30
}

/// How to make the staff account the smoke checks use.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Staff {
    pub service: String,
    pub command: Vec<String>,
    /// The variable through which the generated token reaches the command.
    pub token_env: String,
    /// The operation that must have finished first (usually `migrate`).
    #[serde(default)]
    pub after: Option<String>,
    /// More variables of the stack (e.g. a generated `SMOKE_STAFF_PASSWORD`) passed to the
    /// command by name.
    #[serde(default)]
    pub env: Vec<String>,
}

/// A one-shot command run in the running container of a service (`docker compose exec -T`), or
/// in a fresh one (`docker compose run --rm`) when the service is not running.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    /// Reported as `operations.<name>`.
    pub name: String,
    pub service: String,
    pub command: Vec<String>,
    /// Operations that must have succeeded first (`"migrate"` or `["migrate", ...]`);
    /// without it, operations run concurrently.
    #[serde(default, deserialize_with = "one_or_many")]
    #[schemars(with = "OneOrMany")]
    pub after: Vec<String>,
    /// Variables of the stack (its env file, `[env]`, generated secrets) passed to the
    /// command by name; their values never appear on a command line.
    #[serde(default)]
    pub env: Vec<String>,
    /// `KEY=VALUE` lines of the command's stdout to keep: each named key must be printed,
    /// and becomes `{{env.KEY}}` for the checks (fixture data the public API cannot make).
    #[serde(default)]
    pub exports: Vec<String>,
    /// Run it as soon as the service's container is running, while the rest of the stack is
    /// still starting (default: once the stack is up, after the health endpoint said the
    /// migrations are pending). For an operation that needs no database, e.g.
    /// `collectstatic` onto a volume: it then runs while the stack's healthchecks leave the
    /// machine idle. It cannot have `after`, nor be named in another's.
    #[serde(default)]
    pub while_starting: bool,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// The health path; default: the checks file's `[health]` path.
    #[serde(default)]
    pub path: Option<String>,
    /// The status the health endpoint must answer after `up` and before the operations
    /// (`migrate`) run, e.g. 503: proves it reports pending migrations
    /// (`infra.health_reports_pending_migrations`).
    #[serde(default)]
    pub before_migrations: Option<u16>,
    /// The service to stop to prove the health endpoint notices (usually the database).
    #[serde(default)]
    pub dependency: Option<String>,
    /// What the health endpoint must answer while `dependency` is stopped.
    #[serde(default = "default_down_status")]
    pub down_status: u16,
}

fn default_down_status() -> u16 {
    503
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandAssertion {
    pub name: String,
    pub service: String,
    pub command: Vec<String>,
    /// What to do when it fails.
    #[serde(default)]
    pub hint: Option<String>,
    /// Django system-check ids (`security.W008`) the stack accepts, each with its reason
    /// (`{ "security.W008" = "TLS ends at the load balancer" }`). When the command fails and
    /// every id in its output is allowed, the assertion passes; an id not listed fails it.
    #[serde(default)]
    pub allow: BTreeMap<String, String>,
    /// Run it as soon as the service's container is running, while the rest of the stack is
    /// still starting (default: with the checks, once the stack is up and migrated). For a
    /// command that reads only code and settings (`check --deploy`, `makemigrations
    /// --check`): it then runs while the stack's healthchecks leave the machine idle, and
    /// costs the gate no time of its own. A command that reads the database must not.
    #[serde(default)]
    pub while_starting: bool,
}

impl CommandAssertion {
    /// Whether a failed run's output is only made of allowed system-check ids: `Ok` with the
    /// ids seen, or `Err` with the ids not allowed (empty when the output names none, so a
    /// crash is never taken for allowed warnings).
    pub fn allowed(&self, output: &str) -> Result<Vec<String>, Vec<String>> {
        static ID: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
        let id = ID.get_or_init(|| {
            regex::Regex::new(r"\(([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*\.[CEWID]\d{3})\)").ok()
        });
        let mut seen: Vec<String> = id
            .iter()
            .flat_map(|id| id.captures_iter(output))
            .map(|c| c[1].to_owned())
            .collect();
        seen.sort();
        seen.dedup();
        let refused: Vec<String> = seen
            .iter()
            .filter(|i| !self.allow.contains_key(*i))
            .cloned()
            .collect();
        if self.allow.is_empty() || seen.is_empty() || !refused.is_empty() {
            Err(refused)
        } else {
            Ok(seen)
        }
    }
}

/// Why a stack description could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(
        "failed to read the stack description `{path}` (give a folder holding `gate.toml`, or the file itself)"
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse the stack description `{path}`")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("the stack description `{path}` is not usable: {problem}")]
    Invalid { path: PathBuf, problem: String },
}

/// The JSON Schema of the gate file, for editors.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(StackSpec)).unwrap_or_default()
}

impl StackSpec {
    /// Reads `gate.toml` from a stack folder (or the file itself).
    pub fn load(path: &Path) -> Result<StackSpec, SpecError> {
        let file = if path.is_dir() {
            path.join(FILE_NAME)
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file).map_err(|source| SpecError::Read {
            path: file.clone(),
            source,
        })?;
        let mut spec: StackSpec = toml::from_str(&text).map_err(|source| SpecError::Parse {
            path: file.clone(),
            source: Box::new(source),
        })?;
        let root = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        spec.root = std::path::absolute(&root).unwrap_or(root);
        spec.validate(&file)?;
        Ok(spec)
    }

    fn validate(&self, file: &Path) -> Result<(), SpecError> {
        let invalid = |problem: String| SpecError::Invalid {
            path: file.to_path_buf(),
            problem,
        };
        if self.compose_files.is_empty() {
            return Err(invalid("`compose_files` is empty".into()));
        }
        for compose in self.compose_files() {
            if !compose.is_file() {
                return Err(invalid(format!(
                    "the compose file `{}` does not exist",
                    compose.display()
                )));
            }
        }
        if self.public.https_port.is_none() && self.public.http_port.is_none() {
            return Err(invalid(
                "`public` names neither `https_port` nor `http_port`".into(),
            ));
        }
        if let Some(infra) = &self.infra_project {
            if infra.compose_files.is_empty() {
                return Err(invalid("`infra_project.compose_files` is empty".into()));
            }
            for compose in self.infra_compose_files() {
                if !compose.is_file() {
                    return Err(invalid(format!(
                        "the infrastructure compose file `{}` does not exist",
                        compose.display()
                    )));
                }
            }
        }
        for (index, service) in self.required_services.iter().enumerate() {
            if self.required_services[..index]
                .iter()
                .any(|s| s.name == service.name)
            {
                return Err(invalid(format!(
                    "`required_services` names `{}` twice",
                    service.name
                )));
            }
        }
        for (index, op) in self.operations.iter().enumerate() {
            if self.operations[..index].iter().any(|o| o.name == op.name) {
                return Err(invalid(format!("`operations` names `{}` twice", op.name)));
            }
            if op.while_starting && !op.after.is_empty() {
                return Err(invalid(format!(
                    "operation `{}` runs `while_starting`, before any other operation: it cannot have `after`",
                    op.name
                )));
            }
            for after in &op.after {
                if self
                    .operations
                    .iter()
                    .any(|o| &o.name == after && o.while_starting)
                {
                    return Err(invalid(format!(
                        "operation `{}`: `after` names `{after}`, which runs `while_starting` and is not waited for (drop its `while_starting`)",
                        op.name
                    )));
                }
                if !self.operations.iter().any(|o| &o.name == after) {
                    return Err(invalid(format!(
                        "operation `{}`: `after` names no operation `{after}`",
                        op.name
                    )));
                }
                if after == &op.name {
                    return Err(invalid(format!(
                        "operation `{}` cannot run after itself",
                        op.name
                    )));
                }
            }
        }
        if let Some(cycle) = self.operation_cycle() {
            return Err(invalid(format!(
                "the operations' `after` form a cycle: {}",
                cycle.join(" -> ")
            )));
        }
        for secret in &self.secrets.generate {
            if secret.hex_chars() < 16 {
                return Err(invalid(format!(
                    "`secrets.generate`: `{}` needs at least 16 hex characters",
                    secret.name()
                )));
            }
        }
        for name in self.disable.keys() {
            let known = crate::gate::infra::BUILT_IN.iter().any(|(n, _)| n == name)
                || self.command_assertions.iter().any(|a| &a.name == name);
            if !known {
                let names: Vec<&str> = crate::gate::infra::BUILT_IN
                    .iter()
                    .map(|(n, _)| *n)
                    .collect();
                return Err(invalid(format!(
                    "`disable` names `{name}`, which is no built-in check of the gate (they are: {})",
                    names.join(", ")
                )));
            }
        }
        if let Some(staff) = &self.staff
            && let Some(after) = &staff.after
        {
            match self.operations.iter().find(|op| &op.name == after) {
                None => {
                    return Err(invalid(format!(
                        "`staff.after` names no operation `{after}`"
                    )));
                }
                Some(op) if op.while_starting => {
                    return Err(invalid(format!(
                        "`staff.after` names `{after}`, which runs `while_starting` and is not waited for (drop its `while_starting`)"
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// A chain of operation names that loops through `after`, if any.
    fn operation_cycle(&self) -> Option<Vec<String>> {
        fn visit<'a>(
            spec: &'a StackSpec,
            name: &'a str,
            path: &mut Vec<&'a str>,
        ) -> Option<Vec<String>> {
            if let Some(at) = path.iter().position(|n| *n == name) {
                let mut cycle: Vec<String> = path[at..].iter().map(|n| (*n).to_owned()).collect();
                cycle.push(name.to_owned());
                return Some(cycle);
            }
            let op = spec.operations.iter().find(|o| o.name == name)?;
            path.push(name);
            for after in &op.after {
                if let Some(cycle) = visit(spec, after, path) {
                    return Some(cycle);
                }
            }
            path.pop();
            None
        }
        self.operations
            .iter()
            .find_map(|op| visit(self, &op.name, &mut Vec::new()))
    }

    /// The reason a built-in check is turned off, if it is.
    pub fn disabled(&self, check: &str) -> Option<&str> {
        self.disable.get(check).map(String::as_str)
    }

    /// The compose files, absolute.
    pub fn compose_files(&self) -> Vec<PathBuf> {
        self.compose_files
            .iter()
            .map(|f| self.root.join(f))
            .collect()
    }

    /// The infrastructure project's compose files, absolute.
    pub fn infra_compose_files(&self) -> Vec<PathBuf> {
        self.infra_project
            .iter()
            .flat_map(|infra| infra.compose_files.iter().map(|f| self.root.join(f)))
            .collect()
    }

    /// The env file, absolute.
    pub fn env_file(&self) -> Option<PathBuf> {
        self.env_file.as_ref().map(|f| self.root.join(f))
    }

    /// The checks file, absolute: `checks`, else `checks.toml` beside the gate file.
    pub fn checks_file(&self) -> PathBuf {
        self.root
            .join(self.checks.as_deref().unwrap_or(Path::new(DEFAULT_CHECKS)))
    }
}

/// Parses an env file (`KEY=VALUE` lines, `#` comments, optional quotes) as compose does for
/// the simple cases an `.env.example` uses.
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        vars.insert(key.trim().to_owned(), value.to_owned());
    }
    vars
}

/// Replaces `${NAME}` in `value` with `vars[NAME]` (unknown names become empty, as in compose).
pub fn interpolate(value: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                out.push_str(vars.get(name).map(String::as_str).unwrap_or(""));
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn allowed_system_check_ids_pass_and_any_other_fails() {
        let assertion: CommandAssertion = toml::from_str(
            "name = \"infra.check_deploy_clean\"\nservice = \"web\"\ncommand = [\"python\"]\n\
             [allow]\n\"security.W008\" = \"TLS ends at the load balancer\"\n",
        )
        .unwrap();
        let only_allowed = "System check identified some issues:\n\nWARNINGS:\n?: (security.W008) Your SECURE_SSL_REDIRECT setting is not set to True.\n\nSystem check identified 1 issue (0 silenced).\n";
        assert_eq!(
            assertion.allowed(only_allowed),
            Ok(vec!["security.W008".to_owned()])
        );
        let another = format!(
            "{only_allowed}?: (security.W004) You have not set SECURE_HSTS_SECONDS.\nshows.Show: (models.W042) Auto-created primary key.\n"
        );
        assert_eq!(
            assertion.allowed(&another),
            Err(vec!["models.W042".to_owned(), "security.W004".to_owned()])
        );
        // A crash names no id: never taken for allowed warnings.
        assert_eq!(
            assertion.allowed("Traceback (most recent call last):\nImportError: x\n"),
            Err(vec![])
        );
        // Without `allow`, nothing is allowed.
        let strict = CommandAssertion {
            allow: BTreeMap::new(),
            ..assertion
        };
        assert!(strict.allowed(only_allowed).is_err());
    }

    #[test]
    fn required_services_and_the_infra_project_parse() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("app.yml"), "services: {}\n").unwrap_or_default();
        std::fs::write(dir.join("infra.yml"), "services: {}\n").unwrap_or_default();
        let file = dir.join("gate.toml");
        std::fs::write(
            &file,
            r#"
name = "m"
compose_files = ["app.yml"]
required_services = [{ name = "redis", state = "healthy" }, { name = "celery-beat", state = "running" }]
[infra_project]
compose_files = ["infra.yml"]
[public]
service = "nginx"
http_port = 80
[health]
path = "/api/v1/system/status/"
"#,
        )
        .unwrap_or_default();
        let spec = StackSpec::load(&file).map_err(|e| e.to_string());
        let spec = match spec {
            Ok(spec) => spec,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(spec.required_services[0].state, ServiceState::Healthy);
        assert_eq!(spec.required_services[1].name, "celery-beat");
        let infra = spec.infra_project.as_ref().map(|i| i.network_env.as_str());
        assert_eq!(infra, Some("INFRA_NETWORK"));
        assert!(spec.infra_compose_files()[0].ends_with("infra.yml"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An operation run `while_starting` is waited for by nothing and waits for nothing.
    #[rstest]
    #[case::with_after(
        "[[operations]]\nname = \"migrate\"\nservice = \"web\"\ncommand = [\"m\"]\n[[operations]]\nname = \"static\"\nservice = \"web\"\ncommand = [\"s\"]\nafter = \"migrate\"\nwhile_starting = true\n",
        "operation `static` runs `while_starting`, before any other operation: it cannot have `after`"
    )]
    #[case::waited_for(
        "[[operations]]\nname = \"static\"\nservice = \"web\"\ncommand = [\"s\"]\nwhile_starting = true\n[[operations]]\nname = \"migrate\"\nservice = \"web\"\ncommand = [\"m\"]\nafter = \"static\"\n",
        "operation `migrate`: `after` names `static`, which runs `while_starting`"
    )]
    #[case::waited_for_by_staff(
        "[staff]\nservice = \"web\"\ncommand = [\"e\"]\ntoken_env = \"T\"\nafter = \"static\"\n[[operations]]\nname = \"static\"\nservice = \"web\"\ncommand = [\"s\"]\nwhile_starting = true\n",
        "`staff.after` names `static`, which runs `while_starting`"
    )]
    fn an_operation_while_starting_is_ordered_with_no_other(
        #[case] operations: &str,
        #[case] refused: &str,
    ) {
        let dir = tempfile_dir();
        std::fs::write(dir.join("app.yml"), "services: {}\n").unwrap_or_default();
        let file = dir.join("gate.toml");
        std::fs::write(
            &file,
            format!(
                "name = \"m\"\ncompose_files = [\"app.yml\"]\n[public]\nservice = \"nginx\"\nhttp_port = 80\n{operations}"
            ),
        )
        .unwrap_or_default();
        let error = StackSpec::load(&file)
            .map(|_| ())
            .map_err(|e| format!("{e:#}"));
        let _ = std::fs::remove_dir_all(&dir);
        match error {
            Err(why) => assert!(why.contains(refused), "{why}"),
            Ok(()) => panic!("accepted: {operations}"),
        }
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "smoke-spec-test-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    #[rstest]
    #[case("A=1", "A", "1")]
    #[case("export A=1", "A", "1")]
    #[case("A=\"quoted value\"", "A", "quoted value")]
    #[case("A='single'", "A", "single")]
    #[case("  A = spaced ", "A", "spaced")]
    #[case("A=with=equals", "A", "with=equals")]
    fn env_file_lines(#[case] line: &str, #[case] key: &str, #[case] value: &str) {
        let vars = parse_env_file(&format!("# comment\n\n{line}\n"));
        assert_eq!(vars.get(key).map(String::as_str), Some(value), "{line}");
    }

    #[rstest]
    #[case("postgres://u:${P}@db/x", "postgres://u:s3cr3t@db/x")]
    #[case("${P}${P}", "s3cr3ts3cr3t")]
    #[case("${MISSING}-x", "-x")]
    #[case("no vars", "no vars")]
    #[case("${unterminated", "${unterminated")]
    fn interpolation(#[case] input: &str, #[case] expected: &str) {
        let vars = BTreeMap::from([("P".to_owned(), "s3cr3t".to_owned())]);
        assert_eq!(interpolate(input, &vars), expected);
    }
}
