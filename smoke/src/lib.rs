//! Smoke checks for Django-on-Docker-Compose stacks, as data.
//!
//! The same list of checks runs in two places: inside the release gate against a freshly
//! started stack ([`gate`]), and against a live site after a deploy or a rollback (the
//! `smoke run` command). Where things live:
//!
//! - [`check`]: the model: a check is a value (request plus expectations plus captures);
//!   a scenario is an ordered chain of steps sharing captured values.
//! - [`catalog`]: the built-in checks of the reference stack and the TOML stack description.
//! - [`runner`]: runs checks concurrently and scenarios in order, with a cleanup ledger.
//! - [`mailbox`]: reading the emails a run triggers (HTTP mail catcher or IMAP).
//! - [`qr`]: decoding the QR code a booking email carries.
//! - [`report`]: the human report, JSON, JUnit XML and the Markdown summary.
//! - [`secret`]: secrets that never appear in output.
//! - [`exit`]: the documented exit codes.
//! - [`gate`]: the release gate: builds, starts, migrates and checks a compose stack.
//! - [`init`]: a first gate file, test override and checks file guessed from compose files.

pub mod catalog;
pub mod check;
pub mod exit;
pub mod gate;
pub mod init;
pub mod mailbox;
pub mod qr;
pub mod report;
pub mod runner;
pub mod secret;
