//! What a run found, and its renderings: the human report, JSON, JUnit XML and Markdown.
//!
//! Every text leaving this module goes through [`crate::secret::mask`], so a response that
//! echoes a token cannot leak it into a report.

pub(crate) mod human;
mod junit;
mod markdown;
mod read;

pub use human::{render_failure, render_human};
pub use junit::write_junit;
pub use markdown::{render_markdown, write_markdown};
pub use read::{
    JunitSummary, ReadError, check_lines, merge_junit, phase_lines, read_json, read_junit,
    render_table, write_merged_junit,
};

use std::io;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::mask;

/// One run of a suite against one target. Read back from `report.json` by [`read_json`]
/// (its extra `passed` key is recomputed, not read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// The base URL the run was against.
    pub target: String,
    /// The random id naming everything the run created.
    pub run_id: String,
    /// The whole run, wall clock.
    #[serde(
        serialize_with = "ser_ms",
        deserialize_with = "de_ms",
        rename = "duration_ms"
    )]
    pub duration: Duration,
    /// Phases timed by the gate (build, up, migrate, healthy, checks, down); empty for `smoke run`.
    #[serde(default)]
    pub phases: Vec<PhaseTiming>,
    /// Every check, in suite order; none is ever dropped.
    pub checks: Vec<CheckResult>,
    /// Plain remarks about the run (no staff token, no mailbox, ...).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Whether the run was interrupted (Ctrl-C); cleanup still ran.
    #[serde(default)]
    pub interrupted: bool,
    /// What the cleanup could not undo, for a person to remove by hand.
    #[serde(default)]
    pub leftovers: Vec<String>,
    /// How a gate run ended (`smoke gate` only): more than its checks say, since a stack can
    /// fail to start or never become ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<GateVerdict>,
}

/// How a gate run ended, as `report.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateVerdict {
    /// `passed`, `failed`, `config`, `machine-not-ready`, `stack-failed`, `never-ready`,
    /// `out-of-reach` or `interrupted`.
    pub kind: String,
    /// Why, for the kinds that are not about checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How long one gate phase took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseTiming {
    /// `build`, `up`, `migrate`, `healthy`, `checks` or `down`.
    pub phase: String,
    /// How long it took.
    #[serde(
        serialize_with = "ser_ms",
        deserialize_with = "de_ms",
        rename = "duration_ms"
    )]
    pub duration: Duration,
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The stable `category.name`.
    pub name: String,
    /// The category (`pages`, ..., or `infra` for the gate's own results).
    pub category: String,
    /// What happened.
    pub outcome: Outcome,
    /// How long the check took.
    #[serde(
        serialize_with = "ser_ms",
        deserialize_with = "de_ms",
        rename = "duration_ms"
    )]
    pub duration: Duration,
}

/// Passed, failed with details, or skipped with a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every expectation was met.
    Passed,
    /// Something was not as expected.
    Failed(Failure),
    /// Not run, and why (no credentials, a step it depends on failed, ...).
    Skipped(SkipReason),
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("status", self.label())?;
        match self {
            Outcome::Passed => {}
            Outcome::Failed(failure) => {
                map.serialize_entry("kind", &failure.kind)?;
                map.serialize_entry("title", &failure.title)?;
                map.serialize_entry("request", &failure.request)?;
                map.serialize_entry("expected", &failure.expected)?;
                map.serialize_entry("actual", &failure.actual)?;
                map.serialize_entry("excerpt", &failure.excerpt)?;
                map.serialize_entry("hint", &failure.hint)?;
                map.serialize_entry("evidence", &failure.evidence)?;
            }
            Outcome::Skipped(reason) => {
                map.serialize_entry("reason", &reason.to_string())?;
                map.serialize_entry("skip", reason)?;
            }
        }
        map.end()
    }
}

/// The inverse of `Outcome`'s serialisation: `status`, then the failure's fields beside it
/// (failed) or the `skip` reason (skipped).
impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        #[derive(Deserialize)]
        struct Written {
            status: String,
            #[serde(default)]
            kind: FailureKind,
            #[serde(default)]
            title: String,
            #[serde(default)]
            request: Option<String>,
            #[serde(default)]
            expected: String,
            #[serde(default)]
            actual: String,
            #[serde(default)]
            excerpt: Option<String>,
            #[serde(default)]
            hint: Option<String>,
            #[serde(default)]
            evidence: Vec<String>,
            #[serde(default)]
            skip: Option<SkipReason>,
        }
        let written = Written::deserialize(d)?;
        match written.status.as_str() {
            "passed" => Ok(Outcome::Passed),
            "failed" => Ok(Outcome::Failed(Failure {
                kind: written.kind,
                title: written.title,
                request: written.request,
                expected: written.expected,
                actual: written.actual,
                excerpt: written.excerpt,
                hint: written.hint,
                evidence: written.evidence,
            })),
            "skipped" => written
                .skip
                .map(Outcome::Skipped)
                .ok_or_else(|| D::Error::missing_field("skip")),
            other => Err(D::Error::unknown_variant(
                other,
                &["passed", "failed", "skipped"],
            )),
        }
    }
}

/// Why a check did not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SkipReason {
    /// A step it depends on did not pass.
    Prerequisite {
        /// That step.
        step: String,
        /// `failed`, `skipped` or `not run`.
        outcome: String,
    },
    /// No earlier step captured a value it reads.
    MissingCapture {
        /// The capture's name.
        name: String,
    },
    /// An environment variable it reads (`{{env.X}}`, `{{secret.X}}`, credentials) is unset.
    NeedsVariable {
        /// The variable.
        name: String,
    },
    /// It reads emails and no mailbox was given.
    NeedsMailbox,
    /// It runs in a browser and none was found.
    NeedsBrowser,
    /// It asks the plain-HTTP URL and none was given.
    NeedsHttpUrl,
    /// The virtual host's basic auth credentials are unset.
    NeedsBasicAuth {
        /// The host.
        host: String,
        /// The unset variable.
        variable: String,
    },
    /// A cleanup step with nothing recorded to undo.
    NothingToCleanUp,
    /// The run was interrupted before it ran.
    Interrupted,
    /// It was never run (a scenario stopped early).
    NeverRun,
    /// The stack never became ready, so a check that needs a healthy stack was not run.
    NotReady,
    /// Turned off by the stack's configuration, with its stated reason.
    Disabled {
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::Prerequisite { step, outcome } => write!(f, "because `{step}` {outcome}"),
            SkipReason::MissingCapture { name } => write!(f, "no step captured `{name}`"),
            SkipReason::NeedsVariable { name } => {
                write!(f, "needs the environment variable `{name}` (set it)")
            }
            SkipReason::NeedsMailbox => f.write_str("needs a mailbox (pass `--mailbox URL`)"),
            SkipReason::NeedsBrowser => {
                f.write_str("needs a browser (install Chromium or pass `--browser PATH`)")
            }
            SkipReason::NeedsHttpUrl => {
                f.write_str("needs the site's HTTP URL (pass `--http-url URL`)")
            }
            SkipReason::NeedsBasicAuth { host, variable } => write!(
                f,
                "needs the basic auth credentials of `{host}` (set `{variable}`)"
            ),
            SkipReason::NothingToCleanUp => {
                f.write_str("nothing to clean up: no step of this scenario created anything")
            }
            SkipReason::Interrupted => f.write_str("the run was interrupted before it ran"),
            SkipReason::NeverRun => f.write_str("it was never run"),
            SkipReason::NotReady => f.write_str("the stack never became ready"),
            SkipReason::Disabled { reason } => write!(f, "turned off: {reason}"),
        }
    }
}

/// What kind of failure: a wrong answer, or no answer to judge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The answer was not what was expected.
    #[default]
    Mismatch,
    /// The answer was a server error.
    ServerError,
    /// The site served its maintenance page.
    Maintenance,
    /// No answer: DNS, refused, TLS, timeout, a redirect loop (JUnit: an error).
    Transport,
    /// The check could not be run as described (a bad template, an uninspectable stack).
    Setup,
}

impl FailureKind {
    /// Whether the check could not even ask (JUnit `<error>` rather than `<failure>`).
    pub fn is_error(self) -> bool {
        matches!(self, FailureKind::Transport | FailureKind::Setup)
    }
}

impl Outcome {
    /// A skip with its reason.
    pub fn skipped(reason: SkipReason) -> Self {
        Outcome::Skipped(reason)
    }

    /// `passed`, `failed` or `skipped`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed(_) => "failed",
            Outcome::Skipped(_) => "skipped",
        }
    }
}

/// What went wrong, told so a person can act on it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Failure {
    /// A wrong answer or no answer.
    pub kind: FailureKind,
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
    /// Files kept as evidence (a screenshot, a log), relative to the run folder or absolute.
    pub evidence: Vec<String>,
}

impl Failure {
    /// The same failure with every registered secret masked.
    pub fn masked(&self) -> Failure {
        Failure {
            kind: self.kind,
            evidence: self.evidence.clone(),
            title: mask(&self.title),
            request: self.request.as_deref().map(mask),
            expected: mask(&self.expected),
            actual: mask(&self.actual),
            excerpt: self.excerpt.as_deref().map(mask),
            hint: self.hint.as_deref().map(mask),
        }
    }
}

impl SkipReason {
    /// The same reason with every registered secret masked.
    pub fn masked(&self) -> SkipReason {
        match self {
            SkipReason::Disabled { reason } => SkipReason::Disabled {
                reason: mask(reason),
            },
            other => other.clone(),
        }
    }
}

impl RunReport {
    /// No check failed, the run was not interrupted, and (for a gate) its verdict is a pass.
    pub fn passed(&self) -> bool {
        !self.interrupted
            && self.failed_checks().is_empty()
            && self.verdict.as_ref().is_none_or(|v| v.kind == "passed")
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
                        Outcome::Skipped(reason) => Outcome::Skipped(reason.masked()),
                        Outcome::Passed => Outcome::Passed,
                    },
                    duration: c.duration,
                })
                .collect(),
            notes: self.notes.iter().map(|n| mask(n)).collect(),
            interrupted: self.interrupted,
            leftovers: self.leftovers.iter().map(|n| mask(n)).collect(),
            verdict: self.verdict.as_ref().map(|v| GateVerdict {
                kind: v.kind.clone(),
                reason: v.reason.as_deref().map(mask),
            }),
        }
    }
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn de_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// Writes the report as JSON (secrets masked): `target`, `run_id`, `passed`, `duration_ms`,
/// `phases`, `checks` (each `name`, `category`, `outcome.status`, `duration_ms`), `notes`,
/// `interrupted`, `leftovers`, and for a gate `verdict` (`kind`, `reason`).
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
