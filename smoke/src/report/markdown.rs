//! The Markdown summary, suitable for `$GITHUB_STEP_SUMMARY`.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::{Outcome, RunReport, human_duration, render_failure};
use crate::secret::mask;

/// The report as Markdown: a verdict line, a table of checks, failures in details blocks.
pub fn render_markdown(report: &RunReport) -> String {
    let (passed, failed, skipped) = report.counts();
    let verdict = if report.passed() {
        "✅ passed"
    } else {
        "❌ failed"
    };
    let mut out = format!(
        "## smoke: {verdict}\n\n`{}` (run `{}`): {passed} passed, {failed} failed, {skipped} skipped in {}\n\n",
        mask(&report.target),
        report.run_id,
        human_duration(report.duration)
    );
    if !report.phases.is_empty() {
        out.push_str("| phase | duration |\n| --- | --- |\n");
        for phase in &report.phases {
            let _ = writeln!(
                out,
                "| {} | {} |",
                phase.phase,
                human_duration(phase.duration)
            );
        }
        out.push('\n');
    }
    out.push_str("| check | result | duration | detail |\n| --- | --- | --- | --- |\n");
    for check in &report.checks {
        let (result, detail) = match &check.outcome {
            Outcome::Passed => ("✅ pass", String::new()),
            Outcome::Failed(f) => ("❌ fail", f.title.clone()),
            Outcome::Skipped(reason) => ("⏭️ skip", reason.to_string()),
        };
        let detail = mask(&detail).replace('|', "\\|").replace('\n', " ");
        let _ = writeln!(
            out,
            "| `{}` | {result} | {} | {detail} |",
            check.name,
            human_duration(check.duration)
        );
    }
    for check in &report.checks {
        if let Outcome::Failed(failure) = &check.outcome {
            let _ = write!(
                out,
                "\n<details><summary><code>{}</code></summary>\n\n```text\n{}```\n\n</details>\n",
                check.name,
                render_failure(&check.name, failure).replace("```", "'''")
            );
        }
    }
    if !report.notes.is_empty() || !report.leftovers.is_empty() {
        out.push('\n');
    }
    for note in &report.notes {
        let _ = writeln!(out, "> **note:** {}", mask(note));
    }
    for leftover in &report.leftovers {
        let _ = writeln!(
            out,
            "> **leftover:** {} (remove it by hand)",
            mask(leftover)
        );
    }
    out
}

/// Writes [`render_markdown`] to `path`, appending when the file exists (as
/// `$GITHUB_STEP_SUMMARY` expects).
pub fn write_markdown(report: &RunReport, path: &Path) -> io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(render_markdown(report).as_bytes())
}
