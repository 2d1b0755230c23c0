//! The report a person reads in a terminal or a CI log.

use std::fmt::Write as _;

use super::{CheckResult, Failure, Outcome, RunReport, human_duration};
use crate::secret::mask;

/// The label column for an outcome.
pub(crate) fn label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "PASS",
        Outcome::Failed(_) => "FAIL",
        Outcome::Skipped(_) => "SKIP",
    }
}

/// One line per check (the same line the live progress prints).
pub(crate) fn check_line(check: &CheckResult, width: usize) -> String {
    let mut line = format!(
        "  {} {:<width$} {:>7}",
        label(&check.outcome),
        check.name,
        human_duration(check.duration)
    );
    match &check.outcome {
        Outcome::Failed(failure) => {
            let _ = write!(line, "  {}", failure.title);
        }
        Outcome::Skipped(reason) => {
            let _ = write!(line, "  {reason}");
        }
        Outcome::Passed => {}
    }
    mask(&line)
}

/// A failure as an indented block: title, request, aligned `expected:` / `actual:`, excerpt,
/// hint.
pub fn render_failure(name: &str, failure: &Failure) -> String {
    let failure = failure.masked();
    let mut out = format!("{name}: {}\n", failure.title);
    if let Some(request) = &failure.request {
        let _ = writeln!(out, "  request:  {request}");
    }
    let _ = writeln!(out, "  expected: {}", failure.expected);
    let _ = writeln!(out, "  actual:   {}", failure.actual);
    if let Some(excerpt) = &failure.excerpt {
        let mut lines = excerpt.lines();
        if let Some(first) = lines.next() {
            let _ = writeln!(out, "  excerpt:  {first}");
        }
        for line in lines.take(8) {
            let _ = writeln!(out, "            {line}");
        }
    }
    if let Some(hint) = &failure.hint {
        let _ = writeln!(out, "  hint:     ({hint})");
    }
    for path in &failure.evidence {
        let _ = writeln!(out, "  evidence: {path}");
    }
    out
}

/// Every failed check in detail, each block after a blank line; empty when none failed.
pub fn render_failures(report: &RunReport) -> String {
    let mut out = String::new();
    for check in &report.checks {
        if let Outcome::Failed(failure) = &check.outcome {
            out.push('\n');
            out.push_str(&render_failure(&check.name, failure));
        }
    }
    out
}

/// The whole report: one line per check, then each failure in detail, the notes, and a verdict.
pub fn render_human(report: &RunReport) -> String {
    let width = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    let mut out = format!(
        "smoke run {} against {}\n",
        report.run_id,
        mask(&report.target)
    );
    if !report.phases.is_empty() {
        out.push('\n');
        for phase in &report.phases {
            let _ = writeln!(
                out,
                "  phase {:<10} {:>7}",
                phase.phase,
                human_duration(phase.duration)
            );
        }
    }
    out.push('\n');
    for check in &report.checks {
        out.push_str(&check_line(check, width));
        out.push('\n');
    }
    let failures = render_failures(report);
    if !failures.is_empty() {
        out.push_str("\nfailures:\n");
        out.push_str(&failures);
    }
    if !report.notes.is_empty() || !report.leftovers.is_empty() || report.interrupted {
        out.push('\n');
    }
    if report.interrupted {
        out.push_str("note: the run was interrupted; cleanup ran before exiting\n");
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {}", mask(note));
    }
    for leftover in &report.leftovers {
        let _ = writeln!(out, "leftover: {} (remove it by hand)", mask(leftover));
    }
    let (passed, failed, skipped) = report.counts();
    let verdict = if report.passed() { "ok" } else { "FAILED" };
    let _ = writeln!(
        out,
        "\nresult: {verdict}. {passed} passed, {failed} failed, {skipped} skipped in {}",
        human_duration(report.duration)
    );
    out
}
