//! Removing what killed gate runs left behind.
//!
//! testcontainers has no reaper for compose projects, so a run killed by SIGKILL (a nextest
//! timeout, an OOM kill) leaks its stack. Every gate run labels what it creates with its run
//! id, its process id and the machine's boot id; at the start of each run, stacks whose
//! process is gone (or whose boot id is from an earlier boot) are torn down. Found by label,
//! never by a name pattern, and never a live run's stack.

use std::collections::BTreeMap;
use std::time::Duration;

use super::compose::{
    COMPOSE_PROJECT_LABEL, CommandError, LABEL_BOOT, LABEL_PID, LABEL_RUN, docker,
};

/// The boot id of this machine, which tells a pid from an earlier boot apart.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn process_alive(pid: &str) -> bool {
    match pid.parse::<u32>() {
        Ok(pid) => std::path::Path::new(&format!("/proc/{pid}")).exists(),
        // Without a readable pid we cannot tell; leave it alone.
        Err(_) => true,
    }
}

/// Owner labels of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    run: String,
    project: String,
    pid: String,
    boot: String,
}

impl Owner {
    fn is_stale(&self, current_boot: &str) -> bool {
        self.boot != current_boot || !process_alive(&self.pid)
    }
}

fn parse_owners(text: &str) -> Vec<(String, Owner)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split('\t');
            let id = parts.next()?.trim().to_owned();
            let run = parts.next()?.trim().to_owned();
            let project = parts.next()?.trim().to_owned();
            let pid = parts.next()?.trim().to_owned();
            let boot = parts.next()?.trim().to_owned();
            (!id.is_empty() && !run.is_empty()).then_some((
                id,
                Owner {
                    run,
                    project,
                    pid,
                    boot,
                },
            ))
        })
        .collect()
}

fn format_for(id_field: &str) -> String {
    format!(
        "{{{{{id_field}}}}}\t{{{{.Label \"{LABEL_RUN}\"}}}}\t{{{{.Label \"{COMPOSE_PROJECT_LABEL}\"}}}}\t{{{{.Label \"{LABEL_PID}\"}}}}\t{{{{.Label \"{LABEL_BOOT}\"}}}}"
    )
}

/// What a sweep removed.
#[derive(Debug, Default, Clone)]
pub struct Swept {
    pub projects: Vec<String>,
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
}

/// Tears down every labelled stack whose owning process is gone.
pub async fn sweep_stale() -> Result<Swept, CommandError> {
    let boot = boot_id();
    let filter = format!("label={LABEL_RUN}");
    let short = Duration::from_secs(30);

    let containers = docker(
        [
            "ps",
            "-a",
            "--filter",
            &filter,
            "--format",
            &format_for(".ID"),
        ],
        short,
    )
    .await?;
    let networks = docker(
        [
            "network",
            "ls",
            "--filter",
            &filter,
            "--format",
            &format_for(".ID"),
        ],
        short,
    )
    .await?;
    let volumes = docker(
        [
            "volume",
            "ls",
            "--filter",
            &filter,
            "--format",
            &format_for(".Name"),
        ],
        short,
    )
    .await?;

    let stale = |text: &str| -> Vec<(String, Owner)> {
        parse_owners(text)
            .into_iter()
            .filter(|(_, o)| o.is_stale(&boot))
            .collect()
    };
    let stale_containers = stale(&containers.stdout);
    let stale_networks = stale(&networks.stdout);
    let stale_volumes = stale(&volumes.stdout);

    let mut projects: BTreeMap<String, ()> = BTreeMap::new();
    for (_, owner) in stale_containers
        .iter()
        .chain(&stale_networks)
        .chain(&stale_volumes)
    {
        if !owner.project.is_empty() {
            projects.insert(owner.project.clone(), ());
        }
    }

    let mut swept = Swept::default();
    for (id, _) in &stale_containers {
        if docker(["rm", "--force", "--volumes", id], short)
            .await?
            .success
        {
            swept.containers += 1;
        }
    }
    // Networks and volumes go after their containers; a failure here (still in use by a
    // container outside our labels) is left for the next sweep rather than forced.
    for (id, _) in &stale_networks {
        if docker(["network", "rm", id], short).await?.success {
            swept.networks += 1;
        }
    }
    for (name, _) in &stale_volumes {
        if docker(["volume", "rm", "--force", name], short)
            .await?
            .success
        {
            swept.volumes += 1;
        }
    }
    swept.projects = projects.into_keys().collect();
    Ok(swept)
}

/// Whether anything labelled as belonging to `run` still exists (for tests of teardown).
pub async fn leftovers(run: &str) -> Result<Vec<String>, CommandError> {
    let filter = format!("label={LABEL_RUN}={run}");
    let short = Duration::from_secs(30);
    let mut found = Vec::new();
    for (kind, args) in [
        ("container", vec!["ps", "-a", "-q"]),
        ("network", vec!["network", "ls", "-q"]),
        ("volume", vec!["volume", "ls", "-q"]),
    ] {
        let mut args: Vec<&str> = args;
        args.extend(["--filter", &filter]);
        let out = docker(&args, short).await?;
        found.extend(
            out.stdout
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|id| format!("{kind} {id}")),
        );
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_from_an_earlier_boot_or_a_dead_process_are_stale() {
        let me = std::process::id().to_string();
        let text = format!(
            "c1\trun-a\tproj-a\t{me}\tboot-now\nc2\trun-b\tproj-b\t{me}\tboot-old\nc3\trun-c\tproj-c\t999999999\tboot-now\nc4\t\t\t\t\n"
        );
        let owners = parse_owners(&text);
        assert_eq!(owners.len(), 3, "a line without a run label is not ours");
        let stale: Vec<&str> = owners
            .iter()
            .filter(|(_, o)| o.is_stale("boot-now"))
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(stale, ["c2", "c3"]);
    }

    #[test]
    fn the_format_asks_docker_for_the_labels() {
        assert_eq!(
            format_for(".ID"),
            "{{.ID}}\t{{.Label \"io.smoke.gate.run\"}}\t{{.Label \"com.docker.compose.project\"}}\t{{.Label \"io.smoke.gate.pid\"}}\t{{.Label \"io.smoke.gate.boot\"}}"
        );
    }
}
