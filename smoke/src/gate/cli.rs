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
/// Exit code when the engine is on another machine and the stack publishes its ports where
/// this machine cannot reach them (that machine's loopback); nothing was started. Not 6 or 7:
/// `ci/release-gate.sh` passes the gate's code through, and uses those for its registry.
pub const OUT_OF_REACH: u8 = 8;

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
    /// The browser for the browser checks [default: `SMOKE_BROWSER`, else `chromium` on the
    /// PATH]; the gate requires one when the checks have browser checks.
    #[arg(long, value_name = "PATH")]
    pub browser: Option<PathBuf>,
    /// Keep the screenshots of passing browser checks too, in the run folder's `evidence/`.
    #[arg(long)]
    pub screenshots: bool,
    /// Write the JSON report here [default: <run folder>/report.json].
    #[arg(long, value_name = "PATH")]
    pub report_json: Option<PathBuf>,
    /// Write the JUnit XML report here [default: <run folder>/junit.xml].
    #[arg(long, value_name = "PATH")]
    pub report_junit: Option<PathBuf>,
    /// Write the Markdown summary here (e.g. `$GITHUB_STEP_SUMMARY`).
    #[arg(long, value_name = "PATH")]
    pub report_markdown: Option<PathBuf>,
    /// Start nothing: print what the gate would do (compose files, images, operations) and
    /// exit. `--plan` alone prints JSON; `--plan=FORMAT` picks a format for scripts.
    #[arg(
        long,
        value_name = "FORMAT",
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "json"
    )]
    pub plan: Option<super::plan::PlanFormat>,
}

/// Runs `smoke gate` and returns the process exit code.
pub async fn main(args: GateArgs) -> ExitCode {
    if let Some(format) = args.plan {
        return super::plan::main(&args, format).await;
    }
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
        browser: args.browser.clone(),
        screenshots: args.screenshots,
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
        Verdict::OutOfReach(_) => OUT_OF_REACH,
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

/// [`render`] preceded by one line per check: the whole run for a reader who did not see its
/// progress (a test's failure message).
pub fn render_with_checks(outcome: &GateOutcome) -> String {
    let width = outcome
        .report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for check in &outcome.report.checks {
        text.push_str(&report::human::check_line(check, width));
        text.push('\n');
    }
    text.push_str(&render(outcome));
    text
}

/// What `smoke gate` prints once the run is over. The check lines were already printed as
/// they happened (progress, on stderr), so this says each remaining thing once: every
/// failure in detail, the notes, what was left behind, the phase timings with the counts,
/// the verdict, and where the evidence is.
pub fn render(outcome: &GateOutcome) -> String {
    let report = &outcome.report;
    let mut text = String::new();
    let failures = report::human::render_failures(report);
    if !failures.is_empty() {
        text.push_str("\nfailures:\n");
        text.push_str(&failures);
    }
    if !report.notes.is_empty() || !report.leftovers.is_empty() {
        text.push('\n');
    }
    for note in &report.notes {
        text.push_str(&format!("note: {note}\n"));
    }
    for left in &report.leftovers {
        text.push_str(&format!(
            "warning: left behind: {left} (remove it by hand)\n"
        ));
    }
    if !report.phases.is_empty() {
        text.push_str("\nphases:");
        for phase in &report.phases {
            text.push_str(&format!(
                " {} {}",
                phase.phase,
                human_duration(phase.duration)
            ));
        }
        text.push_str(&format!(" (total {})\n", human_duration(report.duration)));
    }
    if !report.checks.is_empty() {
        let (passed, failed, skipped) = report.counts();
        text.push_str(&format!(
            "checks: {passed} passed, {failed} failed, {skipped} skipped\n"
        ));
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
        Verdict::OutOfReach(why) => format!(
            "gate: error: the stack's ports would be out of this machine's reach (no release tag)\n  {why}"
        ),
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::gate::evidence::Evidence;
    use crate::report::{CheckResult, Failure, Outcome, PhaseTiming, RunReport, SkipReason};

    fn check(name: &str, outcome: Outcome, ms: u64) -> CheckResult {
        CheckResult {
            name: name.to_owned(),
            category: name.split('.').next().unwrap_or_default().to_owned(),
            outcome,
            duration: Duration::from_millis(ms),
        }
    }

    fn phases(spans: &[(&str, u64)]) -> Vec<PhaseTiming> {
        spans
            .iter()
            .map(|(phase, ms)| PhaseTiming {
                phase: (*phase).to_owned(),
                duration: Duration::from_millis(*ms),
            })
            .collect()
    }

    fn outcome(verdict: Verdict, checks: Vec<CheckResult>, notes: &[&str]) -> GateOutcome {
        let failed = verdict != Verdict::Passed && verdict != Verdict::Interrupted;
        GateOutcome {
            report: RunReport {
                target: "https://localhost:49153/".into(),
                run_id: "0a1b2c3d".into(),
                duration: Duration::from_millis(21_400),
                phases: phases(&[
                    ("build", 900),
                    ("up", 9_800),
                    ("migrate", 3_100),
                    ("healthy", 60),
                    ("checks", 4_700),
                    ("down", 2_800),
                ]),
                checks,
                notes: notes.iter().map(|n| (*n).to_owned()).collect(),
                verdict: Some(verdict.recorded()),
                ..RunReport::default()
            },
            verdict,
            project: "smokegate-azionelab-0a1b2c3d".into(),
            run_dir: Some(PathBuf::from("target/gate/smokegate-azionelab-0a1b2c3d")),
            evidence: failed.then(|| Evidence {
                dir: PathBuf::from("target/gate/smokegate-azionelab-0a1b2c3d/evidence"),
                summary: "services (docker compose ps --all):\n  backend  Up 20 seconds (healthy)"
                    .into(),
            }),
        }
    }

    fn passing() -> Vec<CheckResult> {
        vec![
            check("operations.migrate", Outcome::Passed, 3_100),
            check("health.ok", Outcome::Passed, 120),
            check("pages.home", Outcome::Passed, 40),
            check(
                "infra.only_public_services_publish_ports",
                Outcome::Passed,
                230,
            ),
        ]
    }

    #[test]
    fn a_passing_gate_prints_phases_counts_and_verdict_once() {
        let text = render(&outcome(Verdict::Passed, passing(), &[]));
        assert!(
            !text.contains("  PASS "),
            "check lines are progress only:\n{text}"
        );
        insta::assert_snapshot!("gate_output_passed", text);
    }

    #[test]
    fn a_failed_check_is_printed_in_detail_once_with_the_evidence() {
        let mut checks = passing();
        checks.push(check(
            "routing.admin_reaches_django",
            Outcome::Failed(Failure {
                title: "unexpected status 404 (expected 200)".into(),
                request: Some("GET https://localhost:49153/admin/login/".into()),
                expected: "status 200; content type `text/html`".into(),
                actual: "status 404; content type `text/html`".into(),
                excerpt: Some("<h1>Not Found</h1>".into()),
                hint: Some("proxy `/admin/` to Django".into()),
                ..Failure::default()
            }),
            45,
        ));
        let text = render(&outcome(
            Verdict::Failed,
            checks,
            &["removed stacks left by killed runs: smokegate-azionelab-99999999"],
        ));
        assert_eq!(text.matches("unexpected status 404").count(), 1, "{text}");
        insta::assert_snapshot!("gate_output_check_failed", text);
    }

    #[test]
    fn a_stack_that_never_became_ready_says_what_was_last_seen() {
        let checks = vec![
            check(
                "health.ok",
                Outcome::Failed(Failure {
                    title: "unexpected status 400 (expected 200)".into(),
                    request: Some("GET https://localhost:49153/api/health/".into()),
                    expected: "status 200".into(),
                    actual: "status 400".into(),
                    excerpt: Some("Bad Request (400)".into()),
                    ..Failure::default()
                }),
                30,
            ),
            check(
                "infra.data_survives_recreation",
                Outcome::Skipped(SkipReason::NotReady),
                0,
            ),
        ];
        let text = render(&outcome(
            Verdict::NeverReady(
                "failed to see a ready answer within 5.1s from `https://localhost:49153/api/health/`\n  last seen: status 400, the same answer 6 times in a row over 5.1s: waiting does not change it".into(),
            ),
            checks,
            &[],
        ));
        insta::assert_snapshot!("gate_output_never_ready", text);
    }

    #[test]
    fn a_stack_that_did_not_come_up_prints_why_and_the_evidence() {
        let mut gate = outcome(
            Verdict::StackFailed(
                "`docker compose up --wait` exited with status 1:\n  container smokegate-azionelab-0a1b2c3d-backend-1 is unhealthy".into(),
            ),
            Vec::new(),
            &[],
        );
        gate.report.phases.truncate(2);
        gate.report.phases.push(PhaseTiming {
            phase: "down".into(),
            duration: Duration::from_millis(2_500),
        });
        insta::assert_snapshot!("gate_output_stack_failed", render(&gate));
    }
}
