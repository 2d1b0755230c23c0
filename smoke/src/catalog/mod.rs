//! Which checks exist: a checks file (TOML, data only) read into a [`Suite`].
//!
//! - [`schema`]: the file as written, every key documented, and its JSON Schema;
//! - [`lower`](self::lower): from the file to the model the runner runs, validated;
//! - [`suggest`]: the closest known name to a misspelt one.
//!
//! The core knows no app: an app's pages, routes, flows and promises are a checks file beside
//! its stack (`fixtures/azionelab/checks.toml` is the reference stack's).

mod lower;
pub mod schema;
mod suggest;

use std::path::Path;

pub use lower::VERSION;
pub use suggest::closest;

use crate::check::Suite;

/// Why a checks file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ChecksFileError {
    /// The file cannot be read.
    #[error(
        "failed to read the checks file `{path}`\n  caused by: {source}\n  (check the path given to `--checks`, or `checks` in gate.toml)"
    )]
    Read {
        /// The path given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the format.
    #[error(
        "failed to parse the checks file `{path}`\n  caused by: {message}\n  (the format is in smoke/README.md, \"The checks file\"; `smoke schema checks` prints its JSON Schema)"
    )]
    Parse {
        /// The path given.
        path: String,
        /// The TOML error, with its line, column and key.
        message: String,
    },
    /// The file parses but says something impossible.
    #[error("invalid checks file `{path}`: {message}")]
    Invalid {
        /// The path given.
        path: String,
        /// What is wrong, naming the entry and its line.
        message: String,
    },
}

/// Reads a checks file.
pub fn load(path: &Path) -> Result<Suite, ChecksFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ChecksFileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, path)
}

/// Parses a checks file; `path` names it in errors, and its folder holds the files it
/// uploads.
pub fn parse(text: &str, path: &Path) -> Result<Suite, ChecksFileError> {
    let shown = path.display().to_string();
    let file: schema::ChecksFile = toml::from_str(text).map_err(|e| ChecksFileError::Parse {
        path: shown.clone(),
        message: suggest::explain_unknown_field(e.to_string().trim()).replace('\n', "\n    "),
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    lower::lower(file, &lower::Source { text, dir }).map_err(|message| ChecksFileError::Invalid {
        path: shown,
        message,
    })
}

/// The JSON Schema of the checks file, for editors.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(schema::ChecksFile)).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
