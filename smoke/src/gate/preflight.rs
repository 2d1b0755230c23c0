//! Before a gate touches anything: is this machine able to run one?
//!
//! Asked in order, each with its own answer and fix, so that a machine without an engine is
//! never reported as "your compose file is broken":
//!
//! 1. a `docker` CLI on `PATH`;
//! 2. an engine that answers it;
//! 3. the Compose v2 plugin, recent enough for the `!override` tag test overrides use;
//! 4. buildx, when the gate will build images (Compose v2 builds through it).

use std::fmt;
use std::time::Duration;

use super::compose::{Output, docker};
use super::engine::{ENGINE_HOST_ENV, Endpoint, Engine};

/// The oldest Compose v2 that understands `ports: !override` (2.24.4).
pub const MIN_COMPOSE: (u64, u64, u64) = (2, 24, 4);

/// How long one probe may take; an engine that takes longer is as good as absent here.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// The fix printed for every missing piece on the machines this project targets.
const DEBIAN_FIX: &str =
    "on Debian 12, `bash ci/provision-engine.sh` installs and starts what is missing";

/// What answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The engine's version (`docker version`'s server version); empty for [`Need::Config`].
    pub engine: String,
    /// The Compose plugin's version.
    pub compose: String,
    /// buildx's version line, when it was asked for.
    pub buildx: Option<String>,
}

/// The first piece that is missing, with what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// No `docker` executable on `PATH`.
    Cli,
    /// The CLI is there but no engine answers it (not running, or no permission).
    Engine(String),
    /// `docker compose` is not the Compose v2 plugin.
    Compose(String),
    /// Compose v2 is there but older than [`MIN_COMPOSE`].
    ComposeTooOld(String),
    /// `docker buildx` does not answer, and the gate must build.
    Buildx(String),
}

impl Missing {
    /// One line per fact: what is missing, what was seen, what to do.
    pub fn explain(&self) -> String {
        let (what, seen, fix) = match self {
            Missing::Cli => (
                "no `docker` CLI is on PATH".to_owned(),
                String::new(),
                format!("install Docker Engine with the Compose v2 plugin ({DEBIAN_FIX})"),
            ),
            Missing::Engine(seen) => (
                "the `docker` CLI is installed but no Docker engine answers it".to_owned(),
                seen.clone(),
                format!(
                    "start the engine (`sudo systemctl start docker`, or `dockerd &`), check \
                     that this user may use its socket (the `docker` group) or that \
                     DOCKER_HOST names a live engine; {DEBIAN_FIX}"
                ),
            ),
            Missing::Compose(seen) => (
                "the Compose v2 plugin is missing: `docker compose version` does not answer"
                    .to_owned(),
                seen.clone(),
                format!(
                    "install the `docker-compose-plugin` (Docker's packages) or \
                     `docker-compose` v2 (Debian trixie); {DEBIAN_FIX}"
                ),
            ),
            Missing::ComposeTooOld(version) => (
                format!(
                    "Compose {version} is too old: the gate needs {}.{}.{} or newer for the \
                     `!override` tag of test overrides",
                    MIN_COMPOSE.0, MIN_COMPOSE.1, MIN_COMPOSE.2
                ),
                String::new(),
                format!("upgrade the Compose v2 plugin; {DEBIAN_FIX}"),
            ),
            Missing::Buildx(seen) => (
                "buildx is missing: `docker buildx version` does not answer, and Compose v2 \
                 builds images through it"
                    .to_owned(),
                seen.clone(),
                format!(
                    "install the buildx plugin, or pass `--no-build` with images built \
                     beforehand; {DEBIAN_FIX}"
                ),
            ),
        };
        let mut text = what;
        if !seen.trim().is_empty() {
            text.push_str(&format!("\n  it said: {}", first_lines(&seen, 3)));
        }
        text.push_str(&format!("\n  fix: {fix}"));
        text
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explain())
    }
}

/// What a command is about to do with the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Only read compose files (`docker compose config`): no engine.
    Config,
    /// Start containers from images that exist.
    Run,
    /// Build images, then start containers.
    Build,
}

/// Asks the machine, in order, and stops at the first missing piece.
pub async fn check(need: Need) -> Result<Found, Missing> {
    if !on_path("docker") {
        return Err(Missing::Cli);
    }
    // Asked at once, judged in order: the first missing piece is the one reported.
    // `docker version` exits non-zero, saying why, when no engine answers.
    let (engine, compose, buildx) = tokio::join!(
        async {
            if need >= Need::Run {
                Some(probe(&["version", "--format", "{{.Server.Version}}"]).await)
            } else {
                None
            }
        },
        probe(&["compose", "version", "--short"]),
        async {
            if need == Need::Build {
                Some(probe(&["buildx", "version"]).await)
            } else {
                None
            }
        },
    );
    let engine = match engine {
        Some(probed) => answered(probed).map_err(Missing::Engine)?,
        None => String::new(),
    };
    let compose = answered(compose).map_err(Missing::Compose)?;
    match parse_version(&compose) {
        Some(version) if version >= MIN_COMPOSE => {}
        Some(_) => return Err(Missing::ComposeTooOld(compose)),
        None => {
            return Err(Missing::Compose(format!(
                "`docker compose version --short` printed `{compose}`, not a version"
            )));
        }
    }
    let buildx = match buildx {
        Some(probed) => Some(answered(probed).map_err(Missing::Buildx)?),
        None => None,
    };
    Ok(Found {
        engine,
        compose,
        buildx,
    })
}

/// Why the gate cannot drive the engine `DOCKER_HOST` names, when it cannot: testcontainers
/// 0.27 lists the started containers through its own API client, which has no ssh transport
/// (`docker compose up` would start the stack, and listing it would fail).
pub fn unsupported_transport(engine: &Engine) -> Option<String> {
    let Endpoint::Ssh { host, .. } = &engine.endpoint else {
        return None;
    };
    Some(format!(
        "`DOCKER_HOST` is {}: the gate starts stacks through testcontainers, whose API client \
         speaks unix sockets and tcp, not ssh\n  fix: forward the engine's socket and name the \
         host its ports are published on: `ssh -nNT -L /tmp/engine.sock:/var/run/docker.sock \
         USER@{host} &` then `DOCKER_HOST=unix:///tmp/engine.sock {ENGINE_HOST_ENV}={host}` \
         (see \"A remote engine\" in README.md)",
        engine.docker_host_masked()
    ))
}

async fn probe(args: &[&str]) -> Result<Output, String> {
    docker(args, PROBE_TIMEOUT)
        .await
        .map_err(|err| err.to_string())
}

/// Whether an executable file named `program` is in one of `PATH`'s folders.
fn on_path(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        let candidate = dir.join(program);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        }
        #[cfg(not(unix))]
        {
            candidate.is_file() || candidate.with_extension("exe").is_file()
        }
    })
}

/// The trimmed stdout of a command that succeeded with something to say, or what it said.
fn answered(result: Result<Output, String>) -> Result<String, String> {
    let out = result?;
    let stdout = out.stdout.trim();
    if out.success && !stdout.is_empty() {
        Ok(stdout.to_owned())
    } else {
        let said = [out.stderr.trim(), stdout]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        Err(match out.code {
            Some(code) => format!("(exit {code}) {said}"),
            None => format!("(killed) {said}"),
        })
    }
}

/// `2.24.4`, `v2.24.4`, `2.24.4-desktop.1`, `2.20.2+ds1` → (2, 24, 4).
fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let text = text.trim().trim_start_matches('v');
    let core = text.split(['-', '+', ' ']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

fn first_lines(text: &str, n: usize) -> String {
    text.trim()
        .lines()
        .take(n)
        .collect::<Vec<_>>()
        .join("\n    ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_in_the_shapes_distributions_print() {
        assert_eq!(parse_version("2.24.4"), Some((2, 24, 4)));
        assert_eq!(parse_version("v2.29.7"), Some((2, 29, 7)));
        assert_eq!(parse_version("2.32.4-desktop.1"), Some((2, 32, 4)));
        assert_eq!(parse_version("2.20.2+ds1-0+deb12u1"), Some((2, 20, 2)));
        assert_eq!(parse_version("unknown flag: --short"), None);
        assert!(parse_version("2.20.2").unwrap() < MIN_COMPOSE);
        assert!(parse_version("2.24.4").unwrap() >= MIN_COMPOSE);
    }

    #[test]
    fn an_ssh_engine_is_refused_with_the_tunnel_that_works() {
        let ssh = Engine::resolve(Some("ssh://deploy@198.51.100.4"), None).unwrap();
        let why = unsupported_transport(&ssh).expect("ssh is refused");
        assert!(why.contains("ssh -nNT -L /tmp/engine.sock"), "{why}");
        assert!(why.contains("SMOKE_ENGINE_HOST=198.51.100.4"), "{why}");
        assert!(!why.contains("deploy"), "the user is masked: {why}");
        for value in ["unix:///tmp/x.sock", "tcp://198.51.100.4:2375"] {
            let engine = Engine::resolve(Some(value), None).unwrap();
            assert_eq!(unsupported_transport(&engine), None, "{value}");
        }
    }

    #[test]
    fn each_missing_piece_names_itself_and_the_fix() {
        let cases = [
            (Missing::Cli, "no `docker` CLI"),
            (
                Missing::Engine("Cannot connect to the Docker daemon".into()),
                "no Docker engine answers",
            ),
            (
                Missing::Compose("docker: 'compose' is not a docker command.".into()),
                "Compose v2 plugin is missing",
            ),
            (Missing::ComposeTooOld("2.20.2".into()), "too old"),
            (Missing::Buildx(String::new()), "buildx is missing"),
        ];
        for (missing, words) in cases {
            let text = missing.explain();
            assert!(text.contains(words), "{text}");
            assert!(text.contains("ci/provision-engine.sh"), "{text}");
            assert!(!text.contains("compose file"), "{text}");
        }
        assert!(
            Missing::Engine("Cannot connect".into())
                .explain()
                .contains("it said: Cannot connect")
        );
    }
}
