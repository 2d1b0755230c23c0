//! JUnit XML, one test suite per category, for CI test tabs.

use std::io;
use std::path::Path;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::{Outcome, RunReport, render_failure};
use crate::secret::mask;

/// Writes the report as JUnit XML: a `<testsuites name="smoke">` with one `<testsuite>` per
/// category and one `<testcase>` per check; failures carry the rendered failure as text.
pub fn write_junit(report: &RunReport, path: &Path) -> io::Result<()> {
    let mut junit = Report::new("smoke");
    junit.set_time(report.duration);
    let mut categories: Vec<&str> = Vec::new();
    for check in &report.checks {
        if !categories.contains(&check.category.as_str()) {
            categories.push(&check.category);
        }
    }
    for category in categories {
        let mut suite = TestSuite::new(category);
        for check in report.checks.iter().filter(|c| c.category == category) {
            let status = match &check.outcome {
                Outcome::Passed => TestCaseStatus::success(),
                Outcome::Failed(failure) => {
                    // A wrong answer is a failure; no answer to judge is an error.
                    let kind = if failure.kind.is_error() {
                        NonSuccessKind::Error
                    } else {
                        NonSuccessKind::Failure
                    };
                    let mut status = TestCaseStatus::non_success(kind);
                    status.set_message(mask(&failure.title));
                    status.set_description(render_failure(&check.name, failure));
                    status
                }
                Outcome::Skipped(reason) => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(mask(&reason.to_string()));
                    status
                }
            };
            let mut case = TestCase::new(check.name.clone(), status);
            case.set_classname(format!("smoke.{category}"));
            case.set_time(check.duration);
            // CI test tabs (GitHub, GitLab, Jenkins) link files named this way.
            if let Outcome::Failed(failure) = &check.outcome
                && !failure.evidence.is_empty()
            {
                let attachments: String = failure
                    .evidence
                    .iter()
                    .map(|path| format!("[[ATTACHMENT|{path}]]\n"))
                    .collect();
                case.set_system_out(attachments);
            }
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    let xml = junit.to_string().map_err(io::Error::other)?;
    std::fs::write(path, mask(&xml))
}
