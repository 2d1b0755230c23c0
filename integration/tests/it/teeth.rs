//! The gate has teeth: one generated test per broken variant of the reference stack under
//! `fixtures/broken/`. Each folder holds a compose override (and the files it mounts) and an
//! `expect.toml` naming the checks that must fail; adding a case is adding a folder.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use smoke::gate::{GateOptions, run_gate};
use smoke::runner::{NoProgress, Selection};

use crate::common::{self, gate_runs_dir};

/// What a broken variant declares about itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expectation {
    /// What the variant breaks, in a sentence.
    breaks: String,
    /// Checks that must fail.
    must_fail: Vec<String>,
    /// Checks allowed to fail too, as a consequence (`category.*` matches a category).
    #[serde(default)]
    may_fail: Vec<String>,
    /// The gate's verdict: `failed` (default), `stack-failed` or `never-ready`.
    #[serde(default = "failed")]
    verdict: String,
    /// The stack under `fixtures/` this variant breaks (default: the reference stack).
    #[serde(default = "reference_stack")]
    stack: String,
}

fn reference_stack() -> String {
    "azionelab".into()
}

/// Every check name the stack's suite reports: the built-in reference suite, or the stack
/// description its `gate.toml` names.
fn suite_check_names(stack: &Path) -> Vec<String> {
    let spec = smoke::gate::spec::StackSpec::load(stack)
        .unwrap_or_else(|err| panic!("`{}` has no usable gate.toml: {err}", stack.display()));
    let file = spec.checks_file();
    let suite = smoke::catalog::load(&file)
        .unwrap_or_else(|err| panic!("`{}` is not a usable checks file: {err}", file.display()));
    suite.steps().map(|s| s.name.clone()).collect()
}

fn failed() -> String {
    "failed".into()
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(category) => name.split('.').next() == Some(category),
        None => pattern == name,
    }
}

fn overrides_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the variant folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("compose.") && (n.ends_with(".yml") || n.ends_with(".yaml"))
            })
        })
        .collect();
    files.sort();
    files
}

#[rstest::rstest]
#[tokio::test]
async fn gate_fails_on_broken_variant(
    #[files("../fixtures/broken/*/expect.toml")] expect_file: PathBuf,
) {
    let dir = expect_file
        .parent()
        .expect("expect.toml has a folder")
        .to_path_buf();
    let variant = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("?")
        .to_owned();
    if !common::require_engine(&format!("gate_fails_on_broken_variant({variant})")) {
        return;
    }
    let expectation: Expectation =
        toml::from_str(&std::fs::read_to_string(&expect_file).expect("read expect.toml"))
            .unwrap_or_else(|err| {
                panic!(
                    "`{}` is not a valid expectation: {err}",
                    expect_file.display()
                )
            });
    let overrides = overrides_in(&dir);
    assert!(
        !overrides.is_empty(),
        "`{variant}` has no compose.*.yml override"
    );

    let stack = common::workspace_root()
        .join("fixtures")
        .join(&expectation.stack);
    let options = GateOptions {
        stack: stack.clone(),
        overrides,
        runs_dir: gate_runs_dir(),
        skip_build: true,
        selection: Selection::All,
        browser: None,
        screenshots: false,
    };
    let outcome = run_gate(&options, &NoProgress).await;
    let shown = smoke::gate::cli::render_with_checks(&outcome);
    let context = format!("variant `{variant}` ({})\n{shown}", expectation.breaks);

    let verdict = outcome.verdict.kind();
    assert_eq!(
        verdict, expectation.verdict,
        "the gate's verdict on {context}"
    );
    assert!(
        outcome.report.leftovers.is_empty(),
        "left behind: {:?}\n{context}",
        outcome.report.leftovers
    );
    assert!(
        outcome.evidence.is_some(),
        "a red gate must save evidence before teardown\n{context}"
    );
    if expectation.verdict == "stack-failed" {
        // Nothing ran; the evidence must show the service that kept the stack down.
        let summary = &outcome
            .evidence
            .as_ref()
            .map(|e| e.summary.clone())
            .unwrap_or_default();
        assert!(
            summary.contains("`backend`"),
            "the evidence does not show the backend:\n{summary}"
        );
        return;
    }

    let failed: BTreeSet<&str> = outcome.failed().into_iter().collect();
    let missing: Vec<&String> = expectation
        .must_fail
        .iter()
        .filter(|n| !failed.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "these checks should have failed but did not: {missing:?}\n{context}"
    );
    let unexpected: Vec<&&str> = failed
        .iter()
        .filter(|name| {
            !expectation
                .must_fail
                .iter()
                .chain(&expectation.may_fail)
                .any(|p| matches(p, name))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "these checks failed but the variant does not break them: {unexpected:?}\n{context}"
    );
    // A browser check that failed kept what the visitor saw: a screenshot and the page's log,
    // named in its failure.
    for check in &outcome.report.checks {
        if let smoke::report::Outcome::Failed(failure) = &check.outcome
            && check.category == "browser"
        {
            for ext in [".png", ".log"] {
                let kept = failure.evidence.iter().find(|p| p.ends_with(ext));
                assert!(
                    kept.is_some_and(|p| std::path::Path::new(p).is_file()),
                    "`{}` failed without its {ext} evidence: {:?}\n{context}",
                    check.name,
                    failure.evidence
                );
            }
        }
    }
    // Every check is still reported, not only the first failure.
    let reported: BTreeSet<String> = outcome
        .report
        .checks
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let unreported: Vec<String> = suite_check_names(&stack)
        .into_iter()
        .filter(|n| !reported.contains(n))
        .collect();
    assert!(
        unreported.is_empty(),
        "checks missing from the report: {unreported:?}\n{context}"
    );
}
