//! The release gate: build the stack's images, start it with testcontainers, run its one-shot
//! operations (migrations, collectstatic), wait until healthy, run the smoke checks and the
//! infrastructure assertions, keep evidence of any failure, and tear everything down.
//!
//! - [`spec`]: the stack description the gate reads (`gate.toml`).
//! - [`compose`]: the `docker compose` commands besides `up`.
//! - [`stack`]: one stack's lifecycle.
//! - [`plan`]: what a gate would do, without starting anything (`smoke gate --plan`).
//! - [`infra`]: assertions read from the running stack.
//! - [`evidence`]: what is saved before teardown when something failed.
//! - [`engine`]: the engine `DOCKER_HOST` names, and where its published ports are reached.
//! - [`preflight`]: whether this machine can run a gate at all (CLI, engine, Compose v2, buildx).
//! - [`sweep`]: removing stacks that killed runs left behind.

pub mod cli;
pub mod compose;
pub mod engine;
pub mod evidence;
pub mod infra;
pub mod plan;
pub mod preflight;
pub mod run;
pub mod spec;
pub mod stack;
pub mod sweep;

pub use cli::{GateArgs, main};
pub use run::{GateOptions, GateOutcome, Verdict, run_gate, run_gate_until};
