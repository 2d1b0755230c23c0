//! The one integration-test binary.
//!
//! - `cli`: the `smoke` command against real HTTP servers started on loopback in the test.
//! - `container`: the container chain itself (engine, base image, build, start).
//! - `gate`: the release gate on the bundled reference stack, its infrastructure assertions,
//!   parallel runs and teardown.
//! - `teeth`: one generated test per broken variant under `fixtures/broken/`.
//! - `fixture`: the reference stack's own test suite, in its backend container.
//! - `release`, `rollback`: the release gate script and the rehearsed rollback.
//! - `remote`: the gate on a second engine, named by `DOCKER_HOST`, reached at a
//!   non-loopback address.
//! - `preflight`: `smoke gate` and `smoke init` on machines missing the CLI, engine, Compose
//!   v2 or buildx.
//! - `lint`: the linters over workflows, Dockerfiles, compose files and scripts.
//! - `common`: the shared harness.

// A panic with a message is how an integration test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod common;
mod container;
mod fixture;
mod gate;
mod init;
mod lint;
mod partition;
mod preflight;
mod promises;
mod release;
mod remote;
mod rollback;
mod teeth;
