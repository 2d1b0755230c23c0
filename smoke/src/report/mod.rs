//! What a run found, and its renderings: the human report, JSON, JUnit XML and Markdown.
//!
//! Every text leaving this module goes through [`crate::secret::mask`], so a response that
//! echoes a token cannot leak it into a report.

pub(crate) mod human;
mod junit;
mod markdown;

pub use human::{render_failure, render_human};
pub use junit::write_junit;
pub use markdown::{render_markdown, write_markdown};

use std::io;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::secret::mask;

/// One run of a suite against one target.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    /// The base URL the run was against.
    pub target: String,
    /// The random id naming everything the run created.
    pub run_id: String,
    /// The whole run, wall clock.
    #[serde(serialize_with = "ser_ms", rename = "duration_ms")]
    pub duration: Duration,
    /// Phases timed by the gate (build, up, migrate, healthy, checks, down); empty for `smoke run`.
    pub phases: Vec<PhaseTiming>,
    /// Every check, in suite order; none is ever dropped.
    pub checks: Vec<CheckResult>,
    /// Plain remarks about the run (no staff token, no mailbox, ...).
    pub notes: Vec<String>,
    /// Whether the run was interrupted (Ctrl-C); cleanup still ran.
    pub interrupted: bool,
    /// What the cleanup could not undo, for a person to remove by hand.
    pub leftovers: Vec<String>,
}

/// How long one gate phase took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhaseTiming {
    /// `build`, `up`, `migrate`, `healthy`, `checks` or `down`.
    pub phase: String,
    /// How long it took.
    #[serde(serialize_with = "ser_ms", rename = "duration_ms")]
    pub duration: Duration,
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// The stable `category.name`.
    pub name: String,
    /// The category (`pages`, ..., or `infra` for the gate's own results).
    pub category: String,
    /// What happened.
    pub outcome: Outcome,
    /// How long the check took.
    #[serde(serialize_with = "ser_ms", rename = "duration_ms")]
    pub duration: Duration,
}

/// Passed, failed with details, or skipped with a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// Every expectation was met.
    Passed,
    /// Something was not as expected.
    Failed(Failure),
    /// Not run, and why (no staff token, a step it depends on failed, ...).
    Skipped {
        /// Why it did not run.
        reason: String,
    },
}

impl Outcome {
    /// A skip with its reason.
    pub fn skipped(reason: impl Into<String>) -> Self {
        Outcome::Skipped {
            reason: reason.into(),
        }
    }

    /// `passed`, `failed` or `skipped`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed(_) => "failed",
            Outcome::Skipped { .. } => "skipped",
        }
    }
}

/// What went wrong, told so a person can act on it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Failure {
    /// One short line.
    pub title: String,
    /// The request, e.g. `GET https://example.test/static/admin/css/base.css`.
    pub request: Option<String>,
    /// What was expected.
    pub expected: String,
    /// What came back.
    pub actual: String,
    /// A bounded excerpt of the body.
    pub excerpt: Option<String>,
    /// What to do next.
    pub hint: Option<String>,
}

impl Failure {
    /// The same failure with every registered secret masked.
    pub fn masked(&self) -> Failure {
        Failure {
            title: mask(&self.title),
            request: self.request.as_deref().map(mask),
            expected: mask(&self.expected),
            actual: mask(&self.actual),
            excerpt: self.excerpt.as_deref().map(mask),
            hint: self.hint.as_deref().map(mask),
        }
    }
}

impl RunReport {
    /// No check failed and the run was not interrupted.
    pub fn passed(&self) -> bool {
        !self.interrupted && self.failed_checks().is_empty()
    }

    /// The names of the failed checks.
    pub fn failed_checks(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
            .map(|c| c.name.as_str())
            .collect()
    }

    /// How many checks passed, failed and were skipped.
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |label| {
            self.checks
                .iter()
                .filter(|c| c.outcome.label() == label)
                .count()
        };
        (count("passed"), count("failed"), count("skipped"))
    }

    /// The result of the check `name`, if it was reported.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The report with every registered secret masked, everywhere.
    pub fn masked(&self) -> RunReport {
        RunReport {
            target: mask(&self.target),
            run_id: self.run_id.clone(),
            duration: self.duration,
            phases: self.phases.clone(),
            checks: self
                .checks
                .iter()
                .map(|c| CheckResult {
                    name: c.name.clone(),
                    category: c.category.clone(),
                    outcome: match &c.outcome {
                        Outcome::Failed(f) => Outcome::Failed(f.masked()),
                        Outcome::Skipped { reason } => Outcome::skipped(mask(reason)),
                        Outcome::Passed => Outcome::Passed,
                    },
                    duration: c.duration,
                })
                .collect(),
            notes: self.notes.iter().map(|n| mask(n)).collect(),
            interrupted: self.interrupted,
            leftovers: self.leftovers.iter().map(|n| mask(n)).collect(),
        }
    }
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Writes the report as JSON (secrets masked): `target`, `run_id`, `passed`, `duration_ms`,
/// `phases`, `checks` (each `name`, `category`, `outcome.status`, `duration_ms`), `notes`,
/// `interrupted`, `leftovers`.
pub fn write_json(report: &RunReport, path: &Path) -> io::Result<()> {
    #[derive(Serialize)]
    struct WithVerdict<'a> {
        passed: bool,
        #[serde(flatten)]
        report: &'a RunReport,
    }
    let masked = report.masked();
    let json = serde_json::to_string_pretty(&WithVerdict {
        passed: masked.passed(),
        report: &masked,
    })
    .map_err(io::Error::other)?;
    std::fs::write(path, json + "\n")
}

/// A duration for people: `850ms`, `2.4s`, `1m05s`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}
