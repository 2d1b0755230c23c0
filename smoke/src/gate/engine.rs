//! The engine a gate drives, as `DOCKER_HOST` names it, and the one answer to "where are its
//! published ports reached from here?".
//!
//! A published port is open on the engine's machine, not on this one: `127.0.0.1::443` on a
//! remote engine is that machine's loopback. So every place that reaches a published port (the
//! HTTP client and the browser, which keep the stack's virtual host name for `Host` and TLS;
//! the mail API; the infrastructure assertions) asks [`Engine::reach`] for the address.
//!
//! The engine's host comes from `DOCKER_HOST`: unset, `unix://` or `npipe://` is this machine
//! (loopback); `tcp://H:P` and `ssh://[USER@]H[:P]` are `H`, resolved once. `SMOKE_ENGINE_HOST`
//! overrides it when the ports are reached at another address than the API (a NAT, a VPN name,
//! an ssh-forwarded socket whose engine is elsewhere).
//!
//! Why `DOCKER_HOST` and nothing else: the gate's lifecycle owner, testcontainers 0.27, runs
//! `docker compose` (which follows `DOCKER_HOST`, `DOCKER_CONTEXT` and the current context) and
//! then lists the project's containers through its own API client, which follows `tc.host` in
//! `~/.testcontainers.properties`, then `DOCKER_HOST`, and speaks only `unix`, `npipe`, `tcp`,
//! `http` and `https`. A docker context, a `tc.host` or an `ssh://` engine would make the two
//! disagree or fail half-way, so they are refused here with what to do instead.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs as _};
use std::path::{Path, PathBuf};

/// Overrides the address published ports are reached at.
pub const ENGINE_HOST_ENV: &str = "SMOKE_ENGINE_HOST";

/// How the engine's API is reached, as `DOCKER_HOST` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `DOCKER_HOST` unset or empty: the CLI's default socket on this machine.
    Default,
    /// `unix:///path/docker.sock`: a socket on this machine.
    Unix(PathBuf),
    /// `npipe:////./pipe/name`: a named pipe on this (Windows) machine.
    Npipe(String),
    /// `tcp://H:P` (also `http://`, `https://`): an engine's API over the network.
    Tcp { host: String, port: Option<u16> },
    /// `ssh://[USER@]H[:P]`: the CLI runs `docker system dial-stdio` on `H` over ssh.
    Ssh { host: String, port: Option<u16> },
}

/// A `DOCKER_HOST` or `SMOKE_ENGINE_HOST` the gate cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error(
        "`DOCKER_HOST` is `{value}`: {why} (write `unix:///path/to/docker.sock`, `tcp://HOST:PORT` or `ssh://[USER@]HOST[:PORT]`, or unset it for this machine's engine)"
    )]
    BadDockerHost { value: String, why: String },
    #[error(
        "`{ENGINE_HOST_ENV}` is `{value}`: {why} (write a host name or an IP address, without scheme or port)"
    )]
    BadOverride { value: String, why: String },
    #[error(
        "the engine's host `{host}` (from {from}) does not resolve{why} (check the name, or set `{ENGINE_HOST_ENV}` to the address its published ports are reached at)"
    )]
    Unresolved {
        host: String,
        from: &'static str,
        why: String,
    },
    #[error(
        "{what}, but the gate follows `DOCKER_HOST` only: testcontainers, which starts and lists the stack, would talk to another engine than `docker compose` (set `DOCKER_HOST` to the engine's endpoint, e.g. `DOCKER_HOST=$(docker context inspect --format '{{{{.Endpoints.docker.Host}}}}')`, and unset the context)"
    )]
    Context { what: String },
    #[error(
        "`tc.host` in `{file}` is `{value}` and overrides `DOCKER_HOST` for testcontainers only: the stack would be listed on another engine than `docker compose` starts it on (remove the line, or make it match)"
    )]
    TestcontainersHost { file: String, value: String },
}

/// The engine: how its API is reached, and where its published ports are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    /// `DOCKER_HOST` as given (unmasked: [`Engine::describe`] masks it).
    pub docker_host: Option<String>,
    pub endpoint: Endpoint,
    /// The engine's host: a name or address, as written.
    pub host: String,
    /// What `host` resolved to: the address published ports on all interfaces are reached at.
    pub addr: IpAddr,
    /// Whether `host` came from `SMOKE_ENGINE_HOST`.
    pub overridden: bool,
}

/// A port published where this machine cannot reach it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "container port {target} is published on `{published}`, the engine's own loopback, and the engine is not on this machine (its ports are reached at `{engine_host}`): nothing here can connect to it (publish on the engine host's address instead, e.g. `\"${{SMOKE_PUBLISH_IP:-127.0.0.1}}::{target}\"` in the test override with `SMOKE_PUBLISH_IP={engine_addr}`)"
)]
pub struct OutOfReach {
    pub published: String,
    pub port: u16,
    pub target: u16,
    pub engine_host: String,
    pub engine_addr: IpAddr,
}

impl Engine {
    /// The engine this process talks to: `DOCKER_HOST`, `SMOKE_ENGINE_HOST`, and the docker
    /// context and `tc.host` that would contradict them. Resolves the host name.
    pub fn from_env() -> Result<Engine, EngineError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let docker_host = var("DOCKER_HOST");
        if let Some(context) = var("DOCKER_CONTEXT").filter(|c| c != "default") {
            return Err(EngineError::Context {
                what: format!("`DOCKER_CONTEXT` is `{context}`"),
            });
        }
        let docker_config = var("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| Path::new(&h).join(".docker")));
        if docker_host.is_none()
            && let Some(context) = docker_config.and_then(|dir| current_context(&dir))
        {
            return Err(EngineError::Context {
                what: format!(
                    "the docker CLI's current context is `{context}` (`docker context use`)"
                ),
            });
        }
        if let Some(home) = var("HOME") {
            let file = Path::new(&home).join(".testcontainers.properties");
            if let Some(value) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|text| property(&text, "tc.host"))
                && Some(value.as_str()) != docker_host.as_deref()
            {
                return Err(EngineError::TestcontainersHost {
                    file: file.display().to_string(),
                    value: mask_credentials(&value),
                });
            }
        }
        let override_host = var(ENGINE_HOST_ENV);
        Engine::resolve(docker_host.as_deref(), override_host.as_deref())
    }

    /// Parses and resolves `DOCKER_HOST` and the override (no environment read).
    pub fn resolve(
        docker_host: Option<&str>,
        override_host: Option<&str>,
    ) -> Result<Engine, EngineError> {
        let docker_host = docker_host.map(str::trim).filter(|v| !v.is_empty());
        let endpoint = match docker_host {
            Some(value) => parse_docker_host(value)?,
            None => Endpoint::Default,
        };
        let (host, addr, overridden) = match override_host.map(str::trim).filter(|v| !v.is_empty())
        {
            Some(value) => {
                let host = parse_override(value)?;
                let addr = lookup(&host, ENGINE_HOST_ENV)?;
                (host, addr, true)
            }
            None => match &endpoint {
                Endpoint::Default | Endpoint::Unix(_) | Endpoint::Npipe(_) => (
                    Ipv4Addr::LOCALHOST.to_string(),
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    false,
                ),
                Endpoint::Tcp { host, .. } | Endpoint::Ssh { host, .. } => {
                    (host.clone(), lookup(host, "DOCKER_HOST")?, false)
                }
            },
        };
        Ok(Engine {
            docker_host: docker_host.map(str::to_owned),
            endpoint,
            host,
            addr,
            overridden,
        })
    }

    /// Whether the engine's published ports are on another machine than this one.
    pub fn is_remote(&self) -> bool {
        !self.addr.is_loopback()
    }

    /// Where this machine connects to reach `port` (container port `target`), published by
    /// the engine on `published` (compose's `host_ip` / `ps`' `URL`: empty for all
    /// interfaces).
    ///
    /// All interfaces: the engine's host. Loopback: this machine's loopback when the engine
    /// is here, out of reach when it is not. A specific address: that address, unless
    /// `SMOKE_ENGINE_HOST` says where ports are reached.
    pub fn reach(&self, published: &str, port: u16, target: u16) -> Result<SocketAddr, OutOfReach> {
        let published_ip = published
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()
            .filter(|ip| !ip.is_unspecified());
        match published_ip {
            Some(ip) if ip.is_loopback() && self.is_remote() => Err(OutOfReach {
                published: published.to_owned(),
                port,
                target,
                engine_host: self.host.clone(),
                engine_addr: self.addr,
            }),
            _ if self.overridden => Ok(SocketAddr::new(self.addr, port)),
            Some(ip) => Ok(SocketAddr::new(ip, port)),
            None => Ok(SocketAddr::new(self.addr, port)),
        }
    }

    /// Whether a test-only service publishing on `published` stays off other networks:
    /// loopback, or, for an engine elsewhere, the one address the gate reaches it at.
    pub fn private_address(&self, published: &str) -> bool {
        match published.trim().parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || (self.is_remote() && ip == self.addr),
            Err(_) => false,
        }
    }

    /// `DOCKER_HOST` with any user or password masked, for output.
    pub fn docker_host_masked(&self) -> String {
        match &self.docker_host {
            Some(value) => mask_credentials(value),
            None => "unset (this machine's default socket)".to_owned(),
        }
    }

    /// One line for `smoke doctor` and the gate's progress: which engine, and where its
    /// published ports are reached.
    pub fn describe(&self) -> String {
        let reached = if self.overridden {
            format!("{} ({ENGINE_HOST_ENV})", self.host)
        } else if self.host == self.addr.to_string() {
            self.host.clone()
        } else {
            format!("{} ({})", self.host, self.addr)
        };
        format!(
            "engine `DOCKER_HOST` {}; published ports reached on {reached}{}",
            self.docker_host_masked(),
            if self.is_remote() {
                ", not this machine's loopback (a port published on the engine's loopback is out of reach)"
            } else {
                ", this machine's loopback"
            }
        )
    }
}

/// Parses a `DOCKER_HOST` value.
pub fn parse_docker_host(value: &str) -> Result<Endpoint, EngineError> {
    let bad = |why: &str| EngineError::BadDockerHost {
        value: mask_credentials(value),
        why: why.to_owned(),
    };
    let Some((scheme, rest)) = value.split_once("://") else {
        return Err(bad("no scheme"));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "unix" => {
            if rest.is_empty() || !rest.starts_with('/') {
                return Err(bad("a unix socket needs an absolute path"));
            }
            Ok(Endpoint::Unix(PathBuf::from(rest)))
        }
        "npipe" => {
            if rest.trim_matches('/').is_empty() {
                return Err(bad("a named pipe needs a name"));
            }
            Ok(Endpoint::Npipe(rest.to_owned()))
        }
        "tcp" | "http" | "https" | "ssh" => {
            // `tcp` is no special scheme to the URL parser; `ssh` neither. Parse as http to
            // get its host and port rules, keeping what was written in errors.
            let named = rest.split('/').next().unwrap_or_default();
            let named = named.rsplit_once('@').map_or(named, |(_, h)| h);
            if named.is_empty() || named.starts_with(':') {
                return Err(bad("no host"));
            }
            let url = url::Url::parse(&format!("http://{rest}"))
                .map_err(|e| bad(&format!("not a valid address ({e})")))?;
            let host = match url.host() {
                Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
                Some(url::Host::Ipv4(ip)) => ip.to_string(),
                Some(url::Host::Ipv6(ip)) => ip.to_string(),
                _ => return Err(bad("no host")),
            };
            // The parser hides a port equal to http's default (80), and takes `host:` as no
            // port at all: read what was written after the host's last `:`.
            let authority = rest.split('/').next().unwrap_or_default();
            let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let written = authority
                .rsplit_once(':')
                .filter(|(_, after)| !after.contains(']'))
                .map(|(_, after)| after);
            let port = match written {
                Some("") => return Err(bad("a `:` with no port after it")),
                Some(_) => url.port_or_known_default(),
                None => None,
            };
            if scheme.eq_ignore_ascii_case("ssh") {
                Ok(Endpoint::Ssh { host, port })
            } else {
                if !url.username().is_empty() {
                    return Err(bad("a tcp address carries no user"));
                }
                Ok(Endpoint::Tcp { host, port })
            }
        }
        other => Err(bad(&format!(
            "`{other}://` is not an engine address the docker CLI and testcontainers both speak"
        ))),
    }
}

fn parse_override(value: &str) -> Result<String, EngineError> {
    let bad = |why: &str| EngineError::BadOverride {
        value: value.to_owned(),
        why: why.to_owned(),
    };
    if value.contains("://") || value.contains('/') || value.contains('@') {
        return Err(bad("a host, not a URL"));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(bad("a host has no spaces"));
    }
    let unbracketed = value.trim_start_matches('[').trim_end_matches(']');
    if unbracketed.parse::<IpAddr>().is_ok() {
        return Ok(unbracketed.to_owned());
    }
    if value.contains(':') || value.contains('[') {
        return Err(bad("a host, without a port"));
    }
    Ok(value.to_owned())
}

/// The host's address, IPv4 first (what compose publishes on by default).
fn lookup(host: &str, from: &'static str) -> Result<IpAddr, EngineError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    let unresolved = |why: String| EngineError::Unresolved {
        host: host.to_owned(),
        from,
        why,
    };
    let addrs: Vec<SocketAddr> = (host, 0)
        .to_socket_addrs()
        .map_err(|e| unresolved(format!(": {e}")))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .map(SocketAddr::ip)
        .ok_or_else(|| unresolved(String::new()))
}

/// `ssh://deploy:pw@host:22` → `ssh://****@host:22`: the user names an account on the
/// engine's machine.
pub fn mask_credentials(value: &str) -> String {
    match value.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{}{}", crate::secret::MASK, &rest[at..]),
                None => value.to_owned(),
            }
        }
        None => value.to_owned(),
    }
}

/// The docker CLI's current context from its `config.json`, when it is not the default.
fn current_context(config_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config_dir.join("config.json")).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    doc.get("currentContext")?
        .as_str()
        .filter(|c| !c.is_empty() && *c != "default")
        .map(str::to_owned)
}

/// A `key=value` (or `key: value`) line of a Java properties file.
fn property(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with('!') {
            return None;
        }
        let (k, v) = line.split_once(['=', ':'])?;
        (k.trim() == key).then(|| v.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(docker_host: Option<&str>, over: Option<&str>) -> Engine {
        Engine::resolve(docker_host, over).unwrap_or_else(|e| panic!("{docker_host:?}: {e}"))
    }

    #[test]
    fn every_docker_host_form_names_its_engine_host() {
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for value in [
            None,
            Some(""),
            Some("unix:///var/run/docker.sock"),
            Some("unix:///tmp/other/docker.sock"),
            Some("npipe:////./pipe/docker_engine"),
        ] {
            let e = engine(value, None);
            assert_eq!(e.addr, local, "{value:?}");
            assert!(!e.is_remote(), "{value:?}");
        }
        assert_eq!(
            engine(Some("unix:///tmp/other.sock"), None).endpoint,
            Endpoint::Unix(PathBuf::from("/tmp/other.sock"))
        );
        let tcp = engine(Some("tcp://192.0.2.10:2376"), None);
        assert_eq!(
            tcp.endpoint,
            Endpoint::Tcp {
                host: "192.0.2.10".into(),
                port: Some(2376)
            }
        );
        assert_eq!(tcp.addr, "192.0.2.10".parse::<IpAddr>().unwrap());
        assert!(tcp.is_remote());
        let v6 = engine(Some("tcp://[2001:db8::7]:2375"), None);
        assert_eq!(v6.addr, "2001:db8::7".parse::<IpAddr>().unwrap());
        assert_eq!(
            engine(Some("tcp://192.0.2.10:80"), None).endpoint,
            Endpoint::Tcp {
                host: "192.0.2.10".into(),
                port: Some(80)
            }
        );
        let ssh = engine(Some("ssh://deploy@198.51.100.4"), None);
        assert_eq!(
            ssh.endpoint,
            Endpoint::Ssh {
                host: "198.51.100.4".into(),
                port: None
            }
        );
        assert!(ssh.is_remote());
        let ssh_port = engine(Some("ssh://me:pw@198.51.100.4:2222"), None);
        assert_eq!(
            ssh_port.endpoint,
            Endpoint::Ssh {
                host: "198.51.100.4".into(),
                port: Some(2222)
            }
        );
        // A name resolves; `localhost` is this machine whatever family comes first.
        let named = engine(Some("tcp://localhost:2375"), None);
        assert!(named.addr.is_loopback());
        assert!(!named.is_remote());
        assert_eq!(named.host, "localhost");
    }

    #[test]
    fn the_override_wins_over_docker_host() {
        let e = engine(Some("unix:///tmp/tunnel.sock"), Some("203.0.113.9"));
        assert_eq!(e.addr, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert!(e.overridden && e.is_remote());
        let e = engine(Some("tcp://192.0.2.10:2376"), Some("[::1]"));
        assert!(!e.is_remote());
        assert!(
            e.describe().contains("SMOKE_ENGINE_HOST"),
            "{}",
            e.describe()
        );
    }

    #[test]
    fn malformed_values_are_clear_errors() {
        for (value, words) in [
            ("localhost:2375", "no scheme"),
            ("/var/run/docker.sock", "no scheme"),
            ("ftp://host", "`ftp://` is not an engine address"),
            ("fd://", "`fd://` is not an engine address"),
            ("tcp://", "no host"),
            ("tcp://:2375", "no host"),
            ("tcp://host:99999", "not a valid address"),
            ("tcp://host:port", "not a valid address"),
            ("tcp://host:", "no port after it"),
            ("tcp://me@host:2375", "carries no user"),
            ("ssh://", "no host"),
            ("unix://", "absolute path"),
            ("unix://relative.sock", "absolute path"),
            ("npipe://", "needs a name"),
        ] {
            let err = Engine::resolve(Some(value), None)
                .expect_err(value)
                .to_string();
            assert!(err.contains(words), "{value}: {err}");
            assert!(err.contains("`DOCKER_HOST` is"), "{value}: {err}");
            assert!(err.contains("tcp://HOST:PORT"), "{value}: {err}");
        }
        for (value, words) in [
            ("tcp://h", "not a URL"),
            ("h:2375", "without a port"),
            ("user@h", "not a URL"),
            ("a b", "no spaces"),
        ] {
            let err = Engine::resolve(None, Some(value))
                .expect_err(value)
                .to_string();
            assert!(err.contains(words), "{value}: {err}");
            assert!(err.contains("SMOKE_ENGINE_HOST"), "{value}: {err}");
        }
        let err = Engine::resolve(Some("tcp://no-such-engine.invalid:2375"), None)
            .expect_err("an .invalid name never resolves")
            .to_string();
        assert!(err.contains("does not resolve"), "{err}");
        assert!(err.contains("no-such-engine.invalid"), "{err}");
    }

    #[test]
    fn credentials_are_masked_in_errors_and_descriptions() {
        let e = engine(Some("ssh://deploy@198.51.100.4:22"), None);
        assert_eq!(e.docker_host_masked(), "ssh://****@198.51.100.4:22");
        assert!(!e.describe().contains("deploy"), "{}", e.describe());
        let err = Engine::resolve(Some("ssh://deploy:hunter2@"), None)
            .expect_err("no host")
            .to_string();
        assert!(!err.contains("hunter2") && !err.contains("deploy"), "{err}");
        assert_eq!(
            mask_credentials("tcp://192.0.2.1:2375/path@x"),
            "tcp://192.0.2.1:2375/path@x"
        );
    }

    #[test]
    fn published_ports_are_reached_where_the_engine_publishes_them() {
        let here = engine(None, None);
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            here.reach("127.0.0.1", 49153, 443),
            Ok(addr("127.0.0.1:49153"))
        );
        assert_eq!(here.reach("", 49153, 443), Ok(addr("127.0.0.1:49153")));
        assert_eq!(
            here.reach("0.0.0.0", 49153, 443),
            Ok(addr("127.0.0.1:49153"))
        );
        assert_eq!(here.reach("::1", 49153, 443), Ok(addr("[::1]:49153")));

        let remote = engine(Some("tcp://192.0.2.10:2376"), None);
        assert_eq!(remote.reach("", 49153, 443), Ok(addr("192.0.2.10:49153")));
        assert_eq!(remote.reach("::", 49153, 443), Ok(addr("192.0.2.10:49153")));
        assert_eq!(
            remote.reach("192.0.2.11", 49153, 443),
            Ok(addr("192.0.2.11:49153"))
        );
        let err = remote.reach("127.0.0.1", 49153, 443).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("the engine's own loopback"), "{text}");
        assert!(text.contains("SMOKE_PUBLISH_IP=192.0.2.10"), "{text}");

        // Behind a NAT or tunnel the override says where every port is reached.
        let nat = engine(Some("tcp://10.0.0.5:2376"), Some("203.0.113.9"));
        assert_eq!(
            nat.reach("10.0.0.5", 49153, 443),
            Ok(addr("203.0.113.9:49153"))
        );
        assert!(nat.reach("127.0.0.1", 49153, 443).is_err());
        let tunnel = engine(Some("unix:///tmp/tunnel.sock"), Some("127.0.0.1"));
        assert_eq!(
            tunnel.reach("127.0.0.1", 49153, 443),
            Ok(addr("127.0.0.1:49153"))
        );
    }

    #[test]
    fn test_only_services_stay_on_private_addresses() {
        let here = engine(None, None);
        assert!(here.private_address("127.0.0.1"));
        assert!(!here.private_address(""));
        assert!(!here.private_address("0.0.0.0"));
        assert!(!here.private_address("192.0.2.2"));
        let remote = engine(Some("tcp://192.0.2.10:2376"), None);
        assert!(remote.private_address("192.0.2.10"));
        assert!(!remote.private_address("0.0.0.0"));
    }

    #[test]
    fn contexts_and_testcontainers_properties_are_read() {
        let dir = std::env::temp_dir().join(format!("smoke-engine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), r#"{"currentContext":"prod"}"#).unwrap();
        assert_eq!(current_context(&dir).as_deref(), Some("prod"));
        std::fs::write(dir.join("config.json"), r#"{"currentContext":"default"}"#).unwrap();
        assert_eq!(current_context(&dir), None);
        std::fs::write(dir.join("config.json"), r#"{"auths":{}}"#).unwrap();
        assert_eq!(current_context(&dir), None);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            property(
                "# c\ndocker.host=unix:///a\ntc.host = tcp://b:2375\n",
                "tc.host"
            )
            .as_deref(),
            Some("tcp://b:2375")
        );
        assert_eq!(property("docker.host=unix:///a\n", "tc.host"), None);
    }
}
