//! The promise inventories: beside each example stack, `promises.toml` maps every promise of
//! its contract to the checks that prove it and the broken variants that show those checks
//! fail. A promise without a check or a variant, a check that proves no promise, a check no
//! variant makes fail (unless `[unbroken]` says why), or a variant that fails none of its
//! promise's checks is a failure here. No containers: this reads files only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Inventory {
    promise: Vec<Promise>,
    /// Check name = why no variant breaks it alone.
    #[serde(default)]
    unbroken: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Promise {
    says: String,
    checks: Vec<String>,
    variants: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Variant {
    must_fail: Vec<String>,
    /// `stack-failed` when the stack never gets to the checks: such a variant proves a
    /// promise about starting up, whatever its checks.
    #[serde(default)]
    verdict: Option<String>,
    #[serde(default = "reference")]
    stack: String,
}

fn reference() -> String {
    "azionelab".into()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// Every check the gate reports for a stack: its checks file's and the gate's own.
fn check_names(stack: &Path) -> BTreeSet<String> {
    let spec = smoke::gate::spec::StackSpec::load(stack).expect("the gate file loads");
    let suite = smoke::catalog::load(&spec.checks_file()).expect("the checks file loads");
    let mut names: BTreeSet<String> = suite.steps().map(|s| s.name.clone()).collect();
    names.extend(smoke::gate::infra::gate_check_names(&spec));
    names
}

/// The variants of a stack: folder name → the checks it must fail, or `None` when the stack
/// never gets to the checks.
fn variants_of(stack: &str) -> BTreeMap<String, Option<Vec<String>>> {
    let mut variants = BTreeMap::new();
    for entry in std::fs::read_dir(fixtures().join("broken")).expect("read fixtures/broken") {
        let dir = entry.expect("a folder entry").path();
        let Ok(text) = std::fs::read_to_string(dir.join("expect.toml")) else {
            continue;
        };
        let variant: Variant = toml::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join("expect.toml").display()));
        if variant.stack == stack {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let stops_the_stack = variant.verdict.as_deref() == Some("stack-failed");
            variants.insert(name, (!stops_the_stack).then_some(variant.must_fail));
        }
    }
    variants
}

#[rstest::rstest]
#[case("azionelab")]
#[case("multienv")]
fn every_promise_has_checks_and_variants_that_fail_them(#[case] stack: &str) {
    let dir = fixtures().join(stack);
    let file = dir.join("promises.toml");
    let text = std::fs::read_to_string(&file).expect("promises.toml beside the stack");
    let inventory: Inventory =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let checks = check_names(&dir);
    let variants = variants_of(stack);
    let mut problems = Vec::new();

    let mut proven = BTreeSet::new();
    let mut used_variants = BTreeSet::new();
    for promise in &inventory.promise {
        if promise.checks.is_empty() {
            problems.push(format!("promise `{}` names no check", promise.says));
        }
        for check in &promise.checks {
            if checks.contains(check) {
                proven.insert(check.clone());
            } else {
                problems.push(format!(
                    "promise `{}` names `{check}`, which the stack does not run",
                    promise.says
                ));
            }
        }
        let unbroken = promise
            .checks
            .iter()
            .all(|c| inventory.unbroken.contains_key(c));
        if promise.variants.is_empty() && !unbroken {
            problems.push(format!("promise `{}` names no variant", promise.says));
        }
        for variant in &promise.variants {
            used_variants.insert(variant.clone());
            match variants.get(variant) {
                None => problems.push(format!(
                    "promise `{}` names the variant `{variant}`, which is not a `{stack}` variant under fixtures/broken/",
                    promise.says
                )),
                Some(Some(must_fail)) if !must_fail.iter().any(|c| promise.checks.contains(c)) => {
                    problems.push(format!(
                        "variant `{variant}` fails none of the checks of promise `{}` (it fails {must_fail:?})",
                        promise.says
                    ))
                }
                Some(_) => {}
            }
        }
    }
    for check in checks.difference(&proven) {
        problems.push(format!(
            "`{check}` proves no promise: add it to a promise or remove it"
        ));
    }
    let failed_by_some: BTreeSet<&String> = variants.values().flatten().flatten().collect();
    for check in &checks {
        if !failed_by_some.contains(check) && !inventory.unbroken.contains_key(check) {
            problems.push(format!(
                "no variant makes `{check}` fail: add one under fixtures/broken/, or say why in `[unbroken]`"
            ));
        }
    }
    for check in inventory.unbroken.keys() {
        if !checks.contains(check) {
            problems.push(format!(
                "`[unbroken]` names `{check}`, which the stack does not run"
            ));
        }
    }
    for variant in variants.keys() {
        if !used_variants.contains(variant) {
            problems.push(format!("variant `{variant}` proves no promise"));
        }
    }
    eprintln!(
        "{stack}: {} promises, {} checks, {} variants ({} checks without a variant, each with a reason)",
        inventory.promise.len(),
        checks.len(),
        variants.len(),
        inventory.unbroken.len()
    );
    assert!(
        problems.is_empty(),
        "fixtures/{stack}/promises.toml:\n  {}",
        problems.join("\n  ")
    );
}
