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
            // Evidence files (a screenshot, a log) as links, which a rendered report opens
            // beside the run's uploaded folder.
            let links: String = failure
                .evidence
                .iter()
                .map(|path| {
                    let name = Path::new(path)
                        .file_name()
                        .map_or_else(|| path.clone(), |n| n.to_string_lossy().into_owned());
                    format!("- evidence: [{name}]({})\n", path.replace(' ', "%20"))
                })
                .collect();
            let _ = write!(
                out,
                "\n<details><summary><code>{}</code></summary>\n\n```text\n{}```\n\n{links}</details>\n",
                check.name,
                render_failure(&check.name, failure).replace("```", "'''"),
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::super::{CheckResult, Failure, Outcome, RunReport};

    /// A failed browser check with its screenshot and log.
    fn report() -> RunReport {
        RunReport {
            target: "https://shop.example/".into(),
            run_id: "0a1b2c3d4e".into(),
            checks: vec![CheckResult {
                name: "browser.shows".into(),
                category: "browser".into(),
                outcome: Outcome::Failed(Failure {
                    title: "the page logged 1 error".into(),
                    actual: "- uncaught exception: TypeError".into(),
                    evidence: vec![
                        "target/gate/run/evidence/browser.shows.png".into(),
                        "target/gate/run/evidence/browser.shows.log".into(),
                    ],
                    ..Failure::default()
                }),
                duration: Duration::from_millis(900),
            }],
            ..RunReport::default()
        }
    }

    #[test]
    fn a_failure_links_its_evidence() {
        let markdown = super::render_markdown(&report());
        assert!(
            markdown.contains(
                "- evidence: [browser.shows.png](target/gate/run/evidence/browser.shows.png)\n"
            ),
            "{markdown}"
        );
        assert!(
            markdown.contains("[browser.shows.log](target/gate/run/evidence/browser.shows.log)"),
            "{markdown}"
        );
    }

    #[test]
    fn junit_attaches_the_evidence() {
        let dir = std::env::temp_dir().join(format!("smoke-junit-evidence-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("junit.xml");
        super::super::write_junit(&report(), &path).unwrap();
        let xml = std::fs::read_to_string(&path).unwrap();
        assert!(
            xml.contains("[[ATTACHMENT|target/gate/run/evidence/browser.shows.png]]"),
            "{xml}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
