//! Removing what killed gate runs left behind.
//!
//! testcontainers has no reaper for compose projects, so a run killed by SIGKILL (a nextest
//! timeout, an OOM kill) leaks its stack. Every gate run holds a lease (an exclusive lock on
//! a file in its run folder, which the kernel releases however the process ends) and labels
//! what it creates with the lease's path, its run id, process id, PID namespace, host name
//! and boot id. At the start of each run, a stack is torn down when its lease can be taken
//! (its run is gone), whatever PID namespace it ran in. Without a lease file to test, the pid
//! decides, only where the pid means something (same host, same PID namespace); a stack from
//! another machine or container sharing the engine is left alone. Found by label, never by a
//! name pattern, and never a live run's stack.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::compose::{
    COMPOSE_PROJECT_LABEL, CommandError, LABEL_BOOT, LABEL_HOST, LABEL_LEASE, LABEL_PID,
    LABEL_PIDNS, LABEL_RUN, docker,
};

/// The boot id of this machine, which tells a pid from an earlier boot apart.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// This process's PID namespace (`pid:[4026531836]`): a pid label is looked up in `/proc` only
/// when it was written in the same one.
pub fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// This machine's (or container's) host name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// A run's lease: an exclusive lock on a file in its run folder, held for as long as the run
/// lives and released by the kernel however it ends (SIGKILL included). Any process that sees
/// the file can test it, in any PID namespace.
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
    _file: File,
}

impl Lease {
    /// Creates the file (if needed) and locks it.
    pub fn take(path: &Path) -> std::io::Result<Lease> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        file.try_lock().map_err(|err| match err {
            std::fs::TryLockError::Error(err) => err,
            std::fs::TryLockError::WouldBlock => std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!("`{}` is held by another run", path.display()),
            ),
        })?;
        Ok(Lease {
            path: path.to_path_buf(),
            _file: file,
        })
    }

    /// Where the lease file is (the label points here).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What testing a lease file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaseState {
    /// Its run still holds it.
    Held,
    /// Nobody holds it: its run is gone.
    Free,
    /// No lease file here to test (another machine or container, or none was labelled).
    Unknown,
}

fn lease_state(path: &str) -> LeaseState {
    if path.is_empty() {
        return LeaseState::Unknown;
    }
    let Ok(file) = OpenOptions::new().write(true).open(path) else {
        return LeaseState::Unknown;
    };
    match file.try_lock() {
        // Dropping the file releases the lock at once.
        Ok(()) => LeaseState::Free,
        Err(std::fs::TryLockError::WouldBlock) => LeaseState::Held,
        Err(std::fs::TryLockError::Error(_)) => LeaseState::Unknown,
    }
}

/// Where this sweep runs: what a pid label must match to be looked up here.
#[derive(Debug, Clone)]
struct Here {
    boot: String,
    pidns: String,
    host: String,
}

impl Here {
    fn now() -> Here {
        Here {
            boot: boot_id(),
            pidns: pid_namespace(),
            host: host_name(),
        }
    }
}

fn process_alive(pid: &str) -> bool {
    match pid.parse::<u32>() {
        Ok(pid) => std::path::Path::new(&format!("/proc/{pid}")).exists(),
        // Without a readable pid we cannot tell; leave it alone.
        Err(_) => true,
    }
}

/// Owner labels of one resource (empty when a label is absent, as on older runs).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    run: String,
    project: String,
    pid: String,
    boot: String,
    lease: String,
    pidns: String,
    host: String,
}

impl Owner {
    fn is_stale(&self, here: &Here) -> bool {
        match lease_state(&self.lease) {
            LeaseState::Held => false,
            LeaseState::Free => true,
            LeaseState::Unknown => {
                let elsewhere = (!self.host.is_empty() && self.host != here.host)
                    || (!self.pidns.is_empty() && self.pidns != here.pidns);
                if elsewhere {
                    // Another machine or container sharing the engine: its pid means nothing
                    // here, and a live run must never be swept.
                    false
                } else {
                    self.boot != here.boot || !process_alive(&self.pid)
                }
            }
        }
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
            let mut next = || parts.next().unwrap_or_default().trim().to_owned();
            let (lease, pidns, host) = (next(), next(), next());
            (!id.is_empty() && !run.is_empty()).then_some((
                id,
                Owner {
                    run,
                    project,
                    pid,
                    boot,
                    lease,
                    pidns,
                    host,
                },
            ))
        })
        .collect()
}

fn format_for(id_field: &str) -> String {
    format!(
        "{{{{{id_field}}}}}\t{{{{.Label \"{LABEL_RUN}\"}}}}\t{{{{.Label \"{COMPOSE_PROJECT_LABEL}\"}}}}\t{{{{.Label \"{LABEL_PID}\"}}}}\t{{{{.Label \"{LABEL_BOOT}\"}}}}\t{{{{.Label \"{LABEL_LEASE}\"}}}}\t{{{{.Label \"{LABEL_PIDNS}\"}}}}\t{{{{.Label \"{LABEL_HOST}\"}}}}"
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
    let here = Here::now();
    let filter = format!("label={LABEL_RUN}");
    let short = Duration::from_secs(30);

    let (ids, names) = (format_for(".ID"), format_for(".Name"));
    // The three listings at once: every gate run waits for them before it starts.
    let (containers, networks, volumes) = tokio::join!(
        docker(["ps", "-a", "--filter", &filter, "--format", &ids], short),
        docker(
            ["network", "ls", "--filter", &filter, "--format", &ids],
            short
        ),
        docker(
            ["volume", "ls", "--filter", &filter, "--format", &names],
            short
        ),
    );
    let (containers, networks, volumes) = (containers?, networks?, volumes?);

    let stale = |text: &str| -> Vec<(String, Owner)> {
        parse_owners(text)
            .into_iter()
            .filter(|(_, o)| o.is_stale(&here))
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
    let list = |kind: &'static str, command: &'static [&'static str]| {
        let mut args: Vec<&str> = command.to_vec();
        args.extend(["--filter", &filter]);
        async move {
            let out = docker(&args, short).await?;
            Ok::<_, CommandError>(
                out.stdout
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|id| format!("{kind} {id}"))
                    .collect::<Vec<_>>(),
            )
        }
    };
    // The three at once: teardown waits for this answer.
    let (containers, networks, volumes) = tokio::join!(
        list("container", &["ps", "-a", "-q"]),
        list("network", &["network", "ls", "-q"]),
        list("volume", &["volume", "ls", "-q"]),
    );
    Ok([containers?, networks?, volumes?].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch folder removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn here() -> Here {
        Here {
            boot: "boot-now".into(),
            pidns: "pid:[1]".into(),
            host: "ci-runner".into(),
        }
    }

    fn stale_ids(text: &str) -> Vec<String> {
        parse_owners(text)
            .into_iter()
            .filter(|(_, o)| o.is_stale(&here()))
            .map(|(id, _)| id)
            .collect()
    }

    #[test]
    fn without_a_lease_owners_from_an_earlier_boot_or_a_dead_process_here_are_stale() {
        let me = std::process::id().to_string();
        // Older labels (no lease, namespace or host) and new ones naming this host.
        let text = format!(
            "c1\trun-a\tproj-a\t{me}\tboot-now\nc2\trun-b\tproj-b\t{me}\tboot-old\nc3\trun-c\tproj-c\t999999999\tboot-now\nc4\t\t\t\t\nc5\trun-e\tproj-e\t999999999\tboot-now\t\tpid:[1]\tci-runner\n"
        );
        assert_eq!(
            parse_owners(&text).len(),
            4,
            "a line without a run label is not ours"
        );
        assert_eq!(stale_ids(&text), ["c2", "c3", "c5"]);
    }

    #[test]
    fn a_run_in_another_pid_namespace_or_on_another_host_is_never_swept_by_its_pid() {
        // Its pid means nothing here (999999999 is no process of ours), nor does its boot.
        let text = "c1\trun-a\tproj-a\t999999999\tboot-now\t\tpid:[2]\tci-runner\nc2\trun-b\tproj-b\t999999999\tboot-other\t\tpid:[1]\tlaptop\n";
        assert!(stale_ids(text).is_empty(), "{:?}", parse_owners(text));
    }

    #[test]
    fn a_held_lease_keeps_a_stack_whatever_its_pid_and_a_free_one_sweeps_it() {
        let dir = std::env::temp_dir().join(format!("smoke-lease-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = Dir(dir);
        let held = dir.path().join("held.lease");
        let lease = Lease::take(&held).unwrap();
        assert_eq!(lease.path(), held);
        let free = dir.path().join("free.lease");
        drop(Lease::take(&free).unwrap());
        // Labels that would make the pid rule sweep (dead pid) or keep (other namespace):
        // the lease decides.
        let text = format!(
            "c1\trun-a\tproj-a\t999999999\tboot-now\t{}\tpid:[1]\tci-runner\nc2\trun-b\tproj-b\t1\tboot-now\t{}\tpid:[2]\tother\n",
            held.display(),
            free.display()
        );
        assert_eq!(stale_ids(&text), ["c2"]);
        assert!(
            Lease::take(&held).is_err(),
            "a second run cannot take a held lease"
        );
        drop(lease);
        assert_eq!(stale_ids(&text), ["c1", "c2"], "released with its run");
    }

    #[test]
    fn the_format_asks_docker_for_the_labels() {
        assert_eq!(
            format_for(".ID"),
            "{{.ID}}\t{{.Label \"io.smoke.gate.run\"}}\t{{.Label \"com.docker.compose.project\"}}\t{{.Label \"io.smoke.gate.pid\"}}\t{{.Label \"io.smoke.gate.boot\"}}\t{{.Label \"io.smoke.gate.lease\"}}\t{{.Label \"io.smoke.gate.pidns\"}}\t{{.Label \"io.smoke.gate.host\"}}"
        );
    }
}
