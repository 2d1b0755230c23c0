//! The documented exit codes of `smoke` (see `smoke/README.md`).
//!
//! One code per failure class, so a deploy script can tell "the site is broken" (roll back)
//! from "the command was wrong" (fix the pipeline) from "the site is not there" (retry or
//! page someone).

use std::process::ExitCode;

/// Every check passed (skipped checks are listed, and do not fail the run).
pub const SUCCESS: u8 = 0;
/// At least one check failed.
pub const CHECK_FAILED: u8 = 1;
/// Usage or configuration error: bad option, malformed URL, unknown category, unreadable or
/// invalid stack file or CA certificate. Also what clap uses for its own usage errors.
pub const USAGE: u8 = 2;
/// The target is unreachable (DNS, connection refused, TLS, timeout) or never became ready
/// before the readiness deadline.
pub const UNREACHABLE: u8 = 3;
/// The run was interrupted (Ctrl-C); cleanup ran first. 130 is what shells report for a
/// process stopped by SIGINT, so scripts that already test for it keep working.
pub const INTERRUPTED: u8 = 130;

/// Converts a code above into a process exit code.
pub fn code(value: u8) -> ExitCode {
    ExitCode::from(value)
}
