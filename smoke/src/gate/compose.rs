//! Driving one compose project: the `docker compose` commands the gate needs besides `up`
//! (which goes through testcontainers, see [`super::stack`]).
//!
//! Every command gets the same project name, files and environment, so that what the gate
//! builds, runs, inspects and tears down is one project and nothing else. Output that reaches
//! a person passes through [`crate::secret::mask`] first.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncBufReadExt;
use tokio::process::Command;

use crate::secret::mask;

/// Labels put on everything a gate run creates, so that a later run can find what a killed
/// run left behind (by label, never by a name pattern).
pub const LABEL_RUN: &str = "io.smoke.gate.run";
pub const LABEL_PID: &str = "io.smoke.gate.pid";
pub const LABEL_BOOT: &str = "io.smoke.gate.boot";
/// The run's lease file (see `sweep::Lease`), locked for as long as the run lives.
pub const LABEL_LEASE: &str = "io.smoke.gate.lease";
/// The PID namespace and host name the pid label means something in.
pub const LABEL_PIDNS: &str = "io.smoke.gate.pidns";
pub const LABEL_HOST: &str = "io.smoke.gate.host";
pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";

/// A failed `docker` command: what was run, its status and (masked) output.
#[derive(Debug, thiserror::Error)]
#[error("`{command}` {status}{}", tail_of(.output))]
pub struct CommandError {
    pub command: String,
    pub status: String,
    pub output: String,
}

fn tail_of(output: &str) -> String {
    let tail = tail(output, 15);
    if tail.is_empty() {
        String::new()
    } else {
        format!(":\n  {}", tail.replace('\n', "\n  "))
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The output of a finished command.
#[derive(Debug, Clone)]
pub struct Output {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout and stderr together, masked.
    pub fn combined(&self) -> String {
        let mut text = self.stdout.clone();
        if !self.stderr.is_empty() {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&self.stderr);
        }
        mask(&text)
    }
}

/// One compose project: its name, files and environment.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub files: Vec<PathBuf>,
    pub env: BTreeMap<String, String>,
}

impl Project {
    /// A `docker compose` command for this project.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new("docker");
        if let Some(dir) = self.files.first().and_then(|f| f.parent()) {
            // The same working directory testcontainers uses, so relative paths agree.
            cmd.current_dir(dir);
        }
        cmd.arg("compose").arg("--project-name").arg(&self.name);
        for file in &self.files {
            cmd.arg("-f").arg(file);
        }
        cmd.args(args);
        cmd.envs(&self.env);
        cmd.stdin(Stdio::null());
        cmd.kill_on_drop(true);
        cmd
    }

    /// Runs a compose command to completion, capturing its output.
    pub async fn run<I, S>(&self, args: I, timeout: Duration) -> Result<Output, CommandError>
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<std::ffi::OsStr>,
    {
        let shown = describe(args.clone());
        run_command(
            self.command(args),
            &format!("docker compose {shown}"),
            timeout,
        )
        .await
    }

    /// Like [`Project::run`], but a non-zero exit is an error.
    pub async fn run_ok<I, S>(&self, args: I, timeout: Duration) -> Result<Output, CommandError>
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<std::ffi::OsStr>,
    {
        let shown = format!("docker compose {}", describe(args.clone()));
        succeeded(self.run(args, timeout).await?, shown)
    }

    /// The project's resolved configuration (`docker compose config`): this is also where a
    /// compose file that does not parse is caught.
    pub async fn config(&self) -> Result<ComposeConfig, CommandError> {
        let output = self
            .run_ok(["config", "--format", "json"], Duration::from_secs(60))
            .await?;
        serde_json::from_str(&output.stdout).map_err(|err| CommandError {
            command: "docker compose config --format json".into(),
            status: "printed JSON the gate cannot read".into(),
            output: err.to_string(),
        })
    }

    /// What [`Project::ps`] says of each service container (service, name, state, health,
    /// exit code, published ports), read from the engine itself: `docker ps` by the project's label,
    /// then `docker inspect`. Compose parses every compose file again for each `ps` (some
    /// 80 ms of CPU); this costs a quarter of that, for the waits that ask many times.
    pub async fn states(&self) -> Result<Vec<PsEntry>, CommandError> {
        let project = format!("label={COMPOSE_PROJECT_LABEL}={}", self.name);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ids = self
                .docker_ok(
                    [
                        "ps",
                        "--all",
                        "--quiet",
                        "--no-trunc",
                        "--filter",
                        &project,
                        // Not the containers of `compose run`, as `compose ps` leaves them out.
                        "--filter",
                        "label=com.docker.compose.oneoff=False",
                    ],
                    Duration::from_secs(30),
                )
                .await?;
            let ids: Vec<&str> = ids.stdout.split_whitespace().collect();
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut args = vec!["inspect", "--format", INSPECT_STATE];
            args.extend(&ids);
            match self.docker_ok(&args, Duration::from_secs(30)).await {
                Ok(output) => return Ok(output.stdout.lines().filter_map(parse_state).collect()),
                // A container removed between the two calls makes `inspect` fail: ask again.
                Err(_) if attempt < 3 => continue,
                Err(err) => return Err(err),
            }
        }
    }

    /// A `docker` command (not compose) in this project's environment.
    async fn docker_ok<I, S>(&self, args: I, timeout: Duration) -> Result<Output, CommandError>
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<std::ffi::OsStr>,
    {
        let shown = format!("docker {}", describe(args.clone()));
        let mut cmd = Command::new("docker");
        cmd.args(args).envs(&self.env).stdin(Stdio::null());
        succeeded(run_command(cmd, &shown, timeout).await?, shown)
    }

    /// The named variables of the stack, with their values (unknown names: empty).
    pub fn vars(&self, names: &[String]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|name| {
                (
                    name.clone(),
                    self.env.get(name).cloned().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Wakes a wait when any container of the project changes: created, started, died,
    /// its healthcheck's verdict (`docker events` by the project's label, running until
    /// dropped). A wait that would poll every few hundred milliseconds instead learns of a
    /// passing healthcheck the moment the engine does, and costs nothing meanwhile.
    pub fn changes(&self) -> Changes {
        let mut cmd = Command::new("docker");
        // Not the healthchecks' own `exec_*` events: three per check of every container.
        cmd.args([
            "events",
            "--format",
            "{{.Status}}",
            "--filter",
            "type=container",
        ])
        .args(
            ["create", "start", "die", "health_status", "destroy"]
                .iter()
                .flat_map(|event| ["--filter".to_owned(), format!("event={event}")]),
        )
        .arg("--filter")
        .arg(format!("label={COMPOSE_PROJECT_LABEL}={}", self.name))
        .envs(&self.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
        let lines = cmd.spawn().ok().and_then(|mut child| {
            let stdout = child.stdout.take()?;
            Some((child, tokio::io::BufReader::new(stdout).lines()))
        });
        Changes { lines }
    }

    /// `docker compose ps --all` as data.
    pub async fn ps(&self) -> Result<Vec<PsEntry>, CommandError> {
        let output = self
            .run_ok(["ps", "--all", "--format", "json"], Duration::from_secs(30))
            .await?;
        parse_ps(&output.stdout).map_err(|err| CommandError {
            command: "docker compose ps --all --format json".into(),
            status: "printed JSON the gate cannot read".into(),
            output: err.to_string(),
        })
    }

    /// Runs a one-shot command in a fresh container of `service` (`run --rm`).
    pub async fn run_rm(
        &self,
        service: &str,
        command: &[String],
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Output, CommandError> {
        self.one_shot(
            &["run", "--rm", "--no-deps", "-T"],
            service,
            command,
            env,
            timeout,
        )
        .await
    }

    /// Runs a one-shot command in the running container of `service` (`exec -T`). A fresh
    /// container (`run_rm`) costs some 0.7 s more per command: the gate runs its operations
    /// here when the service is up, as `ci/deploy.sh` does.
    pub async fn exec_env(
        &self,
        service: &str,
        command: &[String],
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Output, CommandError> {
        self.one_shot(&["exec", "-T"], service, command, env, timeout)
            .await
    }

    /// `docker compose VERB... [-e NAME]... SERVICE COMMAND...`: each variable passed by name
    /// only, its value in the environment, never on a command line.
    async fn one_shot(
        &self,
        verb: &[&str],
        service: &str,
        command: &[String],
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Output, CommandError> {
        let mut args: Vec<String> = verb.iter().map(|a| (*a).to_owned()).collect();
        for (key, _) in env {
            args.push("-e".into());
            args.push((*key).to_owned());
        }
        args.push(service.to_owned());
        args.extend(command.iter().cloned());
        let shown = format!("docker compose {}", describe(&args));
        let mut cmd = self.command(&args);
        for (key, value) in env {
            cmd.env(key, value);
        }
        run_command(cmd, &shown, timeout).await
    }

    /// Runs a command in the running container of `service` (`exec -T`).
    pub async fn exec(
        &self,
        service: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<Output, CommandError> {
        let mut args: Vec<String> = vec!["exec".into(), "-T".into(), service.to_owned()];
        args.extend(command.iter().cloned());
        self.run(&args, timeout).await
    }

    /// Kills every running container of the project (what `docker compose kill` does): a
    /// throwaway stack has nothing to shut down cleanly, and a
    /// graceful stop costs seconds per run (up to `--timeout` for a process that ignores
    /// SIGTERM). Failures are the `down` that follows's to report.
    pub async fn kill(&self) {
        // Straight to the engine, by the project's label: `compose kill` would parse every
        // compose file first, for the same signal.
        let project = format!("label={COMPOSE_PROJECT_LABEL}={}", self.name);
        let Ok(running) = self
            .docker_ok(
                ["ps", "--quiet", "--filter", &project],
                Duration::from_secs(30),
            )
            .await
        else {
            let _ = self.run(&["kill"], Duration::from_secs(30)).await;
            return;
        };
        let ids: Vec<&str> = running.stdout.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["kill"];
            args.extend(ids);
            // One that stopped meanwhile makes `kill` fail; `down` removes it all the same.
            let _ = self.docker_ok(&args, Duration::from_secs(30)).await;
        }
    }

    /// `docker compose down --volumes --remove-orphans`: containers, networks and volumes.
    pub async fn down(&self) -> Result<Output, CommandError> {
        self.run_ok(
            ["down", "--volumes", "--remove-orphans", "--timeout", "5"],
            Duration::from_secs(120),
        )
        .await
    }

    /// The same teardown, blocking: for drop guards, where no runtime may be available.
    pub fn down_blocking(&self) -> bool {
        let mut cmd = std::process::Command::new("docker");
        if let Some(dir) = self.files.first().and_then(|f| f.parent()) {
            cmd.current_dir(dir);
        }
        cmd.arg("compose").arg("--project-name").arg(&self.name);
        for file in &self.files {
            cmd.arg("-f").arg(file);
        }
        cmd.args(["down", "--volumes", "--remove-orphans", "--timeout", "5"])
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.status().map(|s| s.success()).unwrap_or(false)
    }
}

/// The parts of `docker compose config --format json` the gate reads.
#[derive(Debug, Clone, Deserialize)]
pub struct ComposeConfig {
    #[serde(default)]
    pub services: BTreeMap<String, ServiceConfig>,
    #[serde(default)]
    pub networks: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub volumes: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServiceConfig {
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub build: Option<serde_json::Value>,
    #[serde(default)]
    pub ports: Vec<serde_json::Value>,
    /// `no`, `always`, `unless-stopped`, `on-failure[:N]`; absent means `no`.
    #[serde(default)]
    pub restart: Option<String>,
    #[serde(default)]
    pub volumes: Vec<MountConfig>,
    /// The command, as compose normalises it (a list of words), or null when the image's
    /// own applies.
    #[serde(default)]
    pub command: Option<serde_json::Value>,
    /// The entrypoint, like `command`.
    #[serde(default)]
    pub entrypoint: Option<serde_json::Value>,
    /// The container's variables (`environment:` and `env_file:`), interpolated; a name
    /// passed through without a value is null.
    #[serde(default)]
    pub environment: BTreeMap<String, Option<String>>,
    /// `{ test = [...], interval, ..., disable }`, as written.
    #[serde(default)]
    pub healthcheck: Option<serde_json::Value>,
    /// Ports open to other services only (`expose:`).
    #[serde(default)]
    pub expose: Vec<serde_json::Value>,
}

/// One entry of a service's `volumes` in the resolved configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct MountConfig {
    /// `volume`, `bind`, `tmpfs`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The named volume (or host path); absent for an anonymous volume.
    #[serde(default)]
    pub source: Option<String>,
    /// The path inside the container.
    #[serde(default)]
    pub target: String,
}

/// One line of `docker compose ps --format json`.
#[derive(Debug, Clone, Deserialize)]
pub struct PsEntry {
    #[serde(rename = "Service")]
    pub service: String,
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(rename = "Image", default)]
    pub image: String,
    #[serde(rename = "State", default)]
    pub state: String,
    #[serde(rename = "Health", default)]
    pub health: String,
    #[serde(rename = "ExitCode", default)]
    pub exit_code: i64,
    #[serde(rename = "Publishers", default)]
    pub publishers: Option<Vec<Publisher>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Publisher {
    #[serde(rename = "URL", default)]
    pub url: String,
    #[serde(rename = "TargetPort", default)]
    pub target_port: u16,
    #[serde(rename = "PublishedPort", default)]
    pub published_port: u16,
    #[serde(rename = "Protocol", default)]
    pub protocol: String,
}

impl PsEntry {
    /// Host ports actually published (compose lists exposed-only ports with port 0).
    pub fn published(&self) -> Vec<&Publisher> {
        self.publishers
            .iter()
            .flatten()
            .filter(|p| p.published_port != 0)
            .collect()
    }
}

/// What `docker inspect` prints of a container for [`Project::states`], tab-separated. The
/// engine's templates fail on a missing key, and a container without a healthcheck has no
/// `Health`: `index` asks for it without failing.
const INSPECT_STATE: &str = "{{index .Config.Labels \"com.docker.compose.service\"}}\t{{.Name}}\t{{.Id}}\t{{.Config.Image}}\t{{.State.Status}}\t{{with index .State \"Health\"}}{{.Status}}{{end}}\t{{.State.ExitCode}}\t{{json .NetworkSettings.Ports}}";

fn parse_state(line: &str) -> Option<PsEntry> {
    let mut fields = line.split('\t');
    let mut next = || fields.next().map(str::to_owned);
    Some(PsEntry {
        service: next()?,
        name: next()?.trim_start_matches('/').to_owned(),
        id: next()?,
        image: next()?,
        state: next()?,
        health: next()?,
        exit_code: next()?.trim().parse().ok()?,
        publishers: next().map(|ports| publishers(&ports)),
    })
}

/// The engine's port map (`{"443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49153"}]}`) as
/// compose lists it: one publisher per binding.
fn publishers(ports: &str) -> Vec<Publisher> {
    #[derive(Deserialize)]
    struct Binding {
        #[serde(rename = "HostIp", default)]
        host_ip: String,
        #[serde(rename = "HostPort", default)]
        host_port: String,
    }
    let map: Option<BTreeMap<String, Option<Vec<Binding>>>> =
        serde_json::from_str(ports.trim()).unwrap_or_default();
    let mut found = Vec::new();
    for (port, bindings) in map.unwrap_or_default() {
        let (number, protocol) = port.split_once('/').unwrap_or((&port, "tcp"));
        let Ok(target_port) = number.parse() else {
            continue;
        };
        for binding in bindings.unwrap_or_default() {
            found.push(Publisher {
                url: binding.host_ip,
                target_port,
                published_port: binding.host_port.parse().unwrap_or(0),
                protocol: protocol.to_owned(),
            });
        }
    }
    found
}

/// See [`Project::changes`].
pub struct Changes {
    lines: Option<(
        tokio::process::Child,
        tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    )>,
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("watching", &self.lines.is_some())
            .finish()
    }
}

impl Changes {
    /// Returns at the next change of a container, or after `at_most` (also when the engine
    /// cannot stream its events: the wait then polls, as it would without them).
    pub async fn next(&mut self, at_most: Duration) {
        let Some((_, lines)) = &mut self.lines else {
            tokio::time::sleep(at_most).await;
            return;
        };
        match tokio::time::timeout(at_most, lines.next_line()).await {
            Ok(Ok(Some(_))) | Err(_) => {}
            // The stream ended: poll from now on.
            Ok(_) => {
                self.lines = None;
                tokio::time::sleep(at_most).await;
            }
        }
    }
}

/// Compose prints either one JSON array or one JSON object per line, depending on version.
pub fn parse_ps(text: &str) -> Result<Vec<PsEntry>, serde_json::Error> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed);
    }
    trimmed
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(serde_json::from_str)
        .collect()
}

/// Runs any command with a deadline, capturing output.
pub async fn run_command(
    mut cmd: Command,
    shown: &str,
    timeout: Duration,
) -> Result<Output, CommandError> {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|err| CommandError {
        command: shown.to_owned(),
        status: "could not start".into(),
        output: format!("{err} (is the `docker` CLI installed and on PATH?)"),
    })?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(Output {
            success: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
        Ok(Err(err)) => Err(CommandError {
            command: shown.to_owned(),
            status: "failed while running".into(),
            output: err.to_string(),
        }),
        Err(_) => Err(CommandError {
            command: shown.to_owned(),
            status: format!("did not finish within {}s", timeout.as_secs()),
            output: String::new(),
        }),
    }
}

/// A `docker` command (not compose) with the same capture and deadline.
pub async fn docker<I, S>(args: I, timeout: Duration) -> Result<Output, CommandError>
where
    I: IntoIterator<Item = S> + Clone,
    S: AsRef<std::ffi::OsStr>,
{
    let shown = format!("docker {}", describe(args.clone()));
    let mut cmd = Command::new("docker");
    cmd.args(args).stdin(Stdio::null());
    run_command(cmd, &shown, timeout).await
}

fn describe<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    // Quoted as a shell would need it, so a printed command can be pasted.
    mask(&shell_words::join(
        args.into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned()),
    ))
}

/// `output`, or the error naming `shown` when it exited non-zero.
fn succeeded(output: Output, shown: String) -> Result<Output, CommandError> {
    if output.success {
        Ok(output)
    } else {
        Err(CommandError {
            command: shown,
            status: exit_status(output.code),
            output: output.combined(),
        })
    }
}

fn exit_status(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("exited with status {code}"),
        None => "was killed by a signal".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_what_inspect_prints_with_and_without_a_healthcheck() {
        let healthy =
            parse_state("backend\t/p-backend-1\tabc\tapp/backend:1\trunning\thealthy\t0").unwrap();
        assert_eq!(
            (healthy.service.as_str(), healthy.name.as_str()),
            ("backend", "p-backend-1")
        );
        assert_eq!(
            (healthy.state.as_str(), healthy.health.as_str()),
            ("running", "healthy")
        );
        let published = parse_state(
            "nginx\t/p-nginx-1\tabc\tapp/nginx:1\trunning\t\t0\t{\"443/tcp\":[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"49153\"}],\"80/tcp\":null}",
        )
        .unwrap();
        let ports: Vec<(String, u16, u16)> = published
            .published()
            .iter()
            .map(|p| (p.url.clone(), p.target_port, p.published_port))
            .collect();
        assert_eq!(ports, vec![("127.0.0.1".to_owned(), 443, 49153)]);
        let exited = parse_state("certs\t/p-certs-1\tdef\tnginx:1\texited\t\t3\t{}").unwrap();
        assert_eq!((exited.health.as_str(), exited.exit_code), ("", 3));
        assert!(parse_state("template parsing error: ...").is_none());
    }

    #[test]
    fn ps_reads_both_json_shapes_and_ignores_exposed_only_ports() {
        let line = r#"{"Service":"nginx","Name":"p-nginx-1","ID":"abc","Image":"x:1","State":"running","Health":"healthy","ExitCode":0,"Publishers":[{"URL":"127.0.0.1","TargetPort":443,"PublishedPort":49153,"Protocol":"tcp"},{"URL":"","TargetPort":8080,"PublishedPort":0,"Protocol":"tcp"}]}"#;
        let lines = parse_ps(&format!("{line}\n{line}\n")).unwrap();
        let array = parse_ps(&format!("[{line}]")).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(array.len(), 1);
        let published = array[0].published();
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].published_port, 49153);
    }

    #[test]
    fn command_errors_show_the_tail_of_the_output() {
        let err = CommandError {
            command: "docker compose build".into(),
            status: "exited with status 1".into(),
            output: (1..=30)
                .map(|i| format!("line {i}"))
                .collect::<Vec<_>>()
                .join("\n"),
        };
        let text = err.to_string();
        assert!(text.starts_with("`docker compose build` exited with status 1:\n  line 16"));
        assert!(text.ends_with("line 30"));
    }
}
