//! The `smoke` binary starts and knows its commands.
//!
//! Also why this file exists: cargo builds a package's binaries (`target/<profile>/smoke`)
//! only for that package's integration tests, so this test makes `cargo nextest run` build
//! the fresh binary that the CLI tests in `integration/tests/it/cli/` run.

use std::process::Command;

#[test]
fn smoke_help_lists_the_commands() {
    let output = Command::new(env!("CARGO_BIN_EXE_smoke"))
        .arg("--help")
        .output();
    let output = match output {
        Ok(output) => output,
        Err(error) => panic!("failed to run `smoke --help`: {error}"),
    };
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("run") && help.contains("list"), "{help}");
}
