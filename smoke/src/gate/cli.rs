//! `smoke gate`: the release gate as one command, on the bundled reference stack by default
//! or on any stack described by a `gate.toml`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::run::{GateOptions, GateOutcome, Verdict, run_gate};
use crate::exit;
use crate::report::{self, human_duration};
use crate::runner::{Selection, TerminalProgress};
use crate::secret::mask;

/// The stack gated when none is named: the reference stack shipped beside this crate.
pub fn bundled_stack() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/azionelab");
    std::fs::canonicalize(&path).unwrap_or(path)
}

/// Exit code when the stack could not be built or started (evidence is saved).
pub const STACK_FAILED: u8 = 4;
/// Exit code when this machine cannot run a gate (no docker CLI, engine, Compose v2 or
/// buildx); nothing was started.
pub const MACHINE_NOT_READY: u8 = 5;

/// Arguments of `smoke gate`.
#[derive(Debug, Clone, clap::Args)]
pub struct GateArgs {
    /// The stack to gate: a folder holding `gate.toml`, or the file itself
    /// [default: the bundled reference stack]
    pub stack: Option<PathBuf>,
    /// An extra compose file layered on top of the stack's own (repeatable).
    #[arg(long = "override", value_name = "FILE")]
    pub overrides: Vec<PathBuf>,
    /// Only these categories of smoke checks (comma-separated); infra assertions always run.
    #[arg(long, value_delimiter = ',', value_name = "CATEGORY")]
    pub category: Vec<String>,
    /// Do not build images (they were built beforehand).
    #[arg(long)]
    pub no_build: bool,
    /// Where each run keeps its folder (labels, evidence, reports).
    #[arg(long, value_name = "DIR", default_value = "target/gate")]
    pub runs_dir: PathBuf,
    /// Write the JSON report here [default: <run folder>/report.json].
    #[arg(long, value_name = "PATH")]
    pub report_json: Option<PathBuf>,
    /// Write the JUnit XML report here [default: <run folder>/junit.xml].
    #[arg(long, value_name = "PATH")]
    pub report_junit: Option<PathBuf>,
    /// Write the Markdown summary here (e.g. `$GITHUB_STEP_SUMMARY`).
    #[arg(long, value_name = "PATH")]
    pub report_markdown: Option<PathBuf>,
}

/// Runs `smoke gate` and returns the process exit code.
pub async fn main(args: GateArgs) -> ExitCode {
    let categories: Vec<String> = args.category.iter().map(|c| c.trim().to_owned()).collect();
    let options = GateOptions {
        stack: args.stack.clone().unwrap_or_else(bundled_stack),
        overrides: args.overrides.clone(),
        runs_dir: args.runs_dir.clone(),
        skip_build: args.no_build,
        selection: if categories.is_empty() {
            Selection::All
        } else {
            Selection::Categories(categories)
        },
    };
    let progress = TerminalProgress::with_width(48);
    let outcome = run_gate(&options, &progress).await;
    let written = write_reports(&args, &outcome);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(render(&outcome).as_bytes());
    for line in written {
        let _ = writeln!(out, "{line}");
    }
    exit::code(exit_code(&outcome.verdict))
}

/// The exit code for a verdict (documented in `smoke/README.md`).
pub fn exit_code(verdict: &Verdict) -> u8 {
    match verdict {
        Verdict::Passed => exit::SUCCESS,
        Verdict::Failed => exit::CHECK_FAILED,
        Verdict::Config(_) => exit::USAGE,
        Verdict::NeverReady(_) => exit::UNREACHABLE,
        Verdict::StackFailed(_) => STACK_FAILED,
        Verdict::MachineNotReady(_) => MACHINE_NOT_READY,
        Verdict::Interrupted => exit::INTERRUPTED,
    }
}

fn write_reports(args: &GateArgs, outcome: &GateOutcome) -> Vec<String> {
    let mut lines = Vec::new();
    let default = |name: &str| outcome.run_dir.as_ref().map(|dir| dir.join(name));
    // The run folder's report.json is written by the run itself.
    let json = args.report_json.clone();
    if let Some(path) = default("report.json").filter(|_| json.is_none()) {
        lines.push(format!("JSON report: {}", path.display()));
    }
    let junit = args.report_junit.clone().or_else(|| default("junit.xml"));
    let mut wrote = |kind: &str, path: &PathBuf, result: std::io::Result<()>| match result {
        Ok(()) => lines.push(format!("{kind} report: {}", path.display())),
        Err(err) => lines.push(format!(
            "error: failed to write the {kind} report `{}`: {err}",
            path.display()
        )),
    };
    if let Some(path) = json {
        wrote("JSON", &path, report::write_json(&outcome.report, &path));
    }
    if let Some(path) = junit {
        wrote("JUnit", &path, report::write_junit(&outcome.report, &path));
    }
    if let Some(path) = &args.report_markdown {
        wrote(
            "Markdown",
            path,
            report::write_markdown(&outcome.report, path),
        );
    }
    lines
}

/// The human verdict: the check report, the phase timings, the verdict, and evidence.
pub fn render(outcome: &GateOutcome) -> String {
    let mut text = String::new();
    if !outcome.report.checks.is_empty() {
        text.push_str(&report::render_human(&outcome.report));
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    if !outcome.report.phases.is_empty() {
        text.push_str("\nphases:");
        for phase in &outcome.report.phases {
            text.push_str(&format!(
                " {} {}",
                phase.phase,
                human_duration(phase.duration)
            ));
        }
        text.push_str(&format!(
            " (total {})\n",
            human_duration(outcome.report.duration)
        ));
    }
    for note in &outcome.report.notes {
        text.push_str(&format!("note: {note}\n"));
    }
    for left in &outcome.report.leftovers {
        text.push_str(&format!("warning: left behind: {left}\n"));
    }
    let verdict = match &outcome.verdict {
        Verdict::Passed => "gate: PASSED: the release may be tagged".to_owned(),
        Verdict::Failed => format!(
            "gate: FAILED: {} (no release tag)",
            outcome
                .failed()
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Verdict::Config(why) => format!("gate: error: the stack cannot be gated\n  {why}"),
        Verdict::MachineNotReady(why) => {
            format!("gate: error: this machine cannot run a gate (nothing was started)\n  {why}")
        }
        Verdict::StackFailed(why) => {
            format!("gate: FAILED: the stack did not come up (no release tag)\n  {why}")
        }
        Verdict::NeverReady(why) => {
            format!("gate: FAILED: the stack never became ready (no release tag)\n  {why}")
        }
        Verdict::Interrupted => "gate: interrupted; the stack was torn down".to_owned(),
    };
    text.push('\n');
    text.push_str(&verdict);
    text.push('\n');
    if let Some(evidence) = &outcome.evidence {
        text.push_str(&format!(
            "\nevidence saved in {}:\n{}\n",
            evidence.dir.display(),
            evidence.summary
        ));
    }
    mask(&text)
}
