//! The partitioned CI (`.github/workflows/pr.yml`, `ci/test-partition.sh`) runs the suite as N
//! slices, `--partition hash:K/N`, each on its own machine: together they must be the whole
//! suite, with no test in two slices. Asked of nextest itself (`cargo nextest list`), from the
//! archive the slices run when `SMOKE_NEXTEST_ARCHIVE` names it (nothing is compiled again),
//! else from this workspace's build.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use rstest::rstest;

use crate::common::workspace_root;

/// The tests `cargo nextest list` gives, one `binary test` line each.
fn list(partition: Option<&str>) -> BTreeSet<String> {
    // `cargo` as a person runs it (the rustup proxy on the PATH), not the toolchain's binary
    // nextest names in `CARGO`: cargo invoked another way sees the build as stale and
    // compiles the workspace again.
    let mut cmd = Command::new("cargo");
    cmd.current_dir(workspace_root())
        .args(["nextest", "list", "--message-format", "oneline"]);
    match std::env::var_os("SMOKE_NEXTEST_ARCHIVE") {
        Some(archive) => {
            cmd.arg("--archive-file")
                .arg(archive)
                .arg("--workspace-remap")
                .arg(workspace_root());
        }
        None => {
            cmd.arg("--workspace");
        }
    }
    if let Some(partition) = partition {
        cmd.args(["--partition", partition]);
    }
    // This test runs under nextest, which sets variables for this test (its package, its
    // libraries, its run): none of them is the listing's, and some make cargo rebuild.
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("NEXTEST")
            || key_text.starts_with("CARGO_PKG_")
            || (key_text.starts_with("RUSTUP_") && key_text != "RUSTUP_TOOLCHAIN")
            || [
                "CARGO",
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "LD_LIBRARY_PATH",
                "OUT_DIR",
                "RUST_RECURSION_COUNT",
            ]
            .contains(&key_text.as_ref())
        {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .output()
        .unwrap_or_else(|err| panic!("failed to run `cargo nextest list`: {err}"));
    assert!(
        out.status.success(),
        "`cargo nextest list {partition:?}` failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

#[rstest]
#[case::two(2)]
#[case::three(3)]
fn the_partitions_are_the_whole_suite_with_no_test_twice(#[case] n: usize) {
    let whole = list(None);
    assert!(
        whole
            .iter()
            .any(|t| t.contains("partition::the_partitions_are_the_whole_suite")),
        "the listing must hold this test; it held {} lines",
        whole.len()
    );
    let mut slice_of: BTreeMap<String, usize> = BTreeMap::new();
    for k in 1..=n {
        let slice = list(Some(&format!("hash:{k}/{n}")));
        assert!(!slice.is_empty(), "slice {k}/{n} is empty");
        for test in slice {
            if let Some(other) = slice_of.insert(test.clone(), k) {
                panic!("`{test}` is in slices {other} and {k} of {n}");
            }
        }
    }
    let union: BTreeSet<String> = slice_of.into_keys().collect();
    let missing: Vec<_> = whole.difference(&union).collect();
    let extra: Vec<_> = union.difference(&whole).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the {n} slices are not the suite: missing {missing:?}, not in the suite {extra:?}"
    );
}
