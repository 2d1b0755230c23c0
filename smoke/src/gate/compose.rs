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
        let output = self.run(args, timeout).await?;
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

    /// `docker compose kill`: a throwaway stack has nothing to shut down cleanly, and a
    /// graceful stop costs seconds per run (up to `--timeout` for a process that ignores
    /// SIGTERM). Failures are the `down` that follows's to report.
    pub async fn kill(&self) {
        let _ = self.run(&["kill"], Duration::from_secs(30)).await;
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
