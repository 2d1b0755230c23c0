//! Evidence of a failed stack, kept before teardown destroys it.
//!
//! `compose down --volumes` removes the containers and with them their logs. So when anything
//! fails (a phase, a check, startup itself), the gate saves `compose ps`, each service's log
//! tail and health history under the run's folder first, and prints a summary into the
//! failing output, so that a red run explains itself without a rerun.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::compose::{Project, docker};
use crate::secret::mask;

/// How many log lines per service go into the saved files and the printed summary.
const SAVED_TAIL: usize = 400;
const PRINTED_TAIL: usize = 25;

/// Where the evidence went and a printable summary of it.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub dir: PathBuf,
    pub summary: String,
}

/// Collects `ps`, logs and health history of every service into `dir`. Never fails: a piece
/// that cannot be collected is noted in its place.
pub async fn collect(project: &Project, dir: &Path) -> Evidence {
    let _ = std::fs::create_dir_all(dir);
    let mut summary = String::new();
    let timeout = Duration::from_secs(60);

    let ps_text = match project.run(["ps", "--all"], timeout).await {
        Ok(out) => out.combined(),
        Err(err) => format!("(failed to run `docker compose ps`: {err})"),
    };
    write(dir, "ps.txt", &ps_text);
    let _ = writeln!(
        summary,
        "services (docker compose ps --all):\n{}",
        indent(&ps_text)
    );

    let entries = project.ps().await.unwrap_or_default();
    for entry in &entries {
        let service = &entry.service;
        let logs = match project
            .run(
                [
                    "logs",
                    "--no-color",
                    "--timestamps",
                    "--tail",
                    &SAVED_TAIL.to_string(),
                    service,
                ],
                timeout,
            )
            .await
        {
            Ok(out) => strip_ansi(&out.combined()),
            Err(err) => format!("(failed to read the logs of `{service}`: {err})"),
        };
        write(dir, &format!("{service}.log"), &logs);

        let health = if entry.id.is_empty() {
            String::new()
        } else {
            match docker(
                ["inspect", "--format", "{{json .State.Health}}", &entry.id],
                timeout,
            )
            .await
            {
                Ok(out) if out.success => mask(out.stdout.trim()),
                Ok(out) => format!("(docker inspect failed: {})", out.combined().trim()),
                Err(err) => format!("(docker inspect failed: {err})"),
            }
        };
        if !health.is_empty() && health != "null" {
            write(dir, &format!("{service}.health.json"), &health);
        }

        let _ = writeln!(
            summary,
            "--- `{service}`: state {}{}, exit code {} (last {PRINTED_TAIL} log lines; all in {}) ---",
            entry.state,
            if entry.health.is_empty() {
                String::new()
            } else {
                format!(" ({})", entry.health)
            },
            entry.exit_code,
            dir.join(format!("{service}.log")).display(),
        );
        let lines: Vec<&str> = logs.lines().collect();
        let _ = writeln!(
            summary,
            "{}",
            indent(&lines[lines.len().saturating_sub(PRINTED_TAIL)..].join("\n"))
        );
        if let Some(last) = last_health_output(&health) {
            let _ = writeln!(summary, "  last healthcheck output: {last}");
        }
    }
    write(dir, "summary.txt", &summary);
    Evidence {
        dir: dir.to_path_buf(),
        summary,
    }
}

fn last_health_output(health_json: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(health_json).ok()?;
    let log = value.get("Log")?.as_array()?;
    let last = log.last()?;
    let output = last.get("Output")?.as_str()?.trim();
    let code = last
        .get("ExitCode")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(-1);
    Some(format!(
        "exit {code}: {}",
        output.lines().last().unwrap_or("")
    ))
}

fn write(dir: &Path, name: &str, text: &str) {
    let _ = std::fs::write(dir.join(name), mask(text));
}

/// Removes terminal control sequences (`ESC [ ... letter`) that compose writes even with
/// `--no-color`, so saved logs read as plain text.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for next in chars.by_ref() {
                    if next.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_control_sequences_are_stripped() {
        assert_eq!(strip_ansi("\u{1b}[2Kmail-1  | up\u{1b}[0m"), "mail-1  | up");
    }

    #[test]
    fn the_last_healthcheck_is_summarised() {
        let json = r#"{"Status":"unhealthy","FailingStreak":3,"Log":[{"ExitCode":0,"Output":"ok"},{"ExitCode":1,"Output":"curl: (7) Failed to connect\n"}]}"#;
        assert_eq!(
            last_health_output(json).as_deref(),
            Some("exit 1: curl: (7) Failed to connect")
        );
        assert_eq!(last_health_output("null"), None);
    }
}
