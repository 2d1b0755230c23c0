//! Running the `smoke` binary: where it is, a command with a clean environment, and redaction
//! of what varies between runs (ports, run ids, durations) for snapshots.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

/// The `smoke` binary: where nextest says it is (`NEXTEST_BIN_EXE_smoke`, also when the tests
/// run from an archive on another machine), else next to the test executable
/// (`target/<profile>/smoke`).
pub fn smoke_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("NEXTEST_BIN_EXE_smoke").map(PathBuf::from)
        && bin.exists()
    {
        return bin;
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/it-<hash> → target/<profile>/smoke
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let bin = profile_dir.join(format!("smoke{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "the `smoke` binary is not built at `{}` (run the tests with `cargo nextest run` from the \
         workspace root, or `cargo build -p smoke` first)",
        bin.display()
    );
    bin
}

/// `smoke ARGS...` without the caller's `SMOKE_*` variables.
pub fn smoke(args: &[&str]) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(smoke_bin());
    // The fake sites imitate the reference stack's API, not its frontend's scripts: the
    // browser checks are proven against real stacks (the gate, the teeth) and real pages
    // (smoke's browser tests), and skipped here.
    cmd.env_remove("SMOKE_STAFF_TOKEN")
        .env_remove("SMOKE_IMAP_PASSWORD")
        .env("SMOKE_BROWSER", "none")
        .env("NO_COLOR", "1");
    cmd.args(args);
    cmd.timeout(std::time::Duration::from_secs(60));
    cmd
}

/// Replaces ports, run ids and durations with `[PORT]`, `[ID]` and `[TIME]`.
pub fn redact(text: &str, run_id: Option<&str>) -> String {
    let mut out = text.to_owned();
    if let Some(id) = run_id {
        out = out.replace(id, "[ID]");
    }
    let rules = [
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (r"\b\d+(\.\d+)?(ms|s)\b", "[TIME]"),
        (r"\b\d+m\d{2}s\b", "[TIME]"),
        (r"smoke run [0-9a-f]{10}\b", "smoke run [ID]"),
        (r"BK\d{6}", "[REF]"),
    ];
    for (pattern, replacement) in rules {
        out = regex::Regex::new(pattern)
            .expect("regex")
            .replace_all(&out, replacement)
            .into_owned();
    }
    // Durations are right-aligned in a column; their width varies.
    regex::Regex::new(r" +\[TIME\]")
        .expect("regex")
        .replace_all(&out, " [TIME]")
        .into_owned()
}
