//! Which checks exist: the built-in AzioneLab suite and suites read from a stack description.
//!
//! - [`reference`]: the reference stack (`fixtures/azionelab/API.md`). Its pages, routes and
//!   health are declared in `reference.toml`, in the same format users write; its scenarios
//!   (booking, confirmation, check-in, capacity) are Rust values in [`azionelab`].
//! - [`from_stack_file`]: a user's own stack, described in TOML ([`stack`]).

pub mod azionelab;
pub mod stack;

use std::path::Path;

pub use stack::{StackFile, StackFileError};

use crate::check::Suite;

/// The reference stack's description, as shipped.
pub const REFERENCE_TOML: &str = include_str!("reference.toml");

/// The built-in AzioneLab suite.
pub fn reference() -> Suite {
    let mut suite = match stack::parse(REFERENCE_TOML, Path::new("<built-in reference.toml>")) {
        Ok(suite) => suite,
        // The file is compiled in and parsed by a unit test, so this cannot happen at run time.
        Err(error) => unreachable!("the built-in reference.toml is invalid: {error}"),
    };
    suite.checks.extend(azionelab::independent_checks());
    suite.scenarios.extend(azionelab::scenarios());
    suite
}

/// A suite read from a stack description file.
pub fn from_stack_file(path: &Path) -> Result<Suite, StackFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| StackFileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    stack::parse(&text, path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn reference_suite_has_the_documented_checks_once_each() {
        let suite = reference();
        let names: Vec<&str> = suite.steps().map(|s| s.name.as_str()).collect();
        let unique: HashSet<&str> = names.iter().copied().collect();
        assert_eq!(names.len(), unique.len(), "duplicate names in {names:?}");
        for name in [
            "pages.home",
            "pages.shows",
            "health.ok",
            "routing.admin_reaches_django",
            "routing.api_reaches_django",
            "routing.static_served_by_nginx",
            "routing.spa_fallback",
            "routing.unknown_api_is_json_404",
            "routing.http_redirects_to_https",
            "routing.security_headers",
            "booking.create_show",
            "booking.create",
            "booking.invalid_payload_400",
            "booking.capacity_enforced",
            "booking.cleanup",
            "confirmation.email_received",
            "confirmation.token_unguessable",
            "confirmation.confirm",
            "confirmation.idempotent",
            "confirmation.unknown_token_404",
            "confirmation.qr_email_received",
            "confirmation.qr_no_personal_data",
            "confirmation.qr_requires_token",
            "checkin.requires_staff",
            "checkin.first_scan_201",
            "checkin.second_scan_409",
            "checkin.invalid_code_rejected",
        ] {
            assert!(unique.contains(name), "missing {name}");
        }
        for step in suite.steps() {
            let (category, _) = step.name.split_once('.').unwrap_or_default();
            assert_eq!(category, step.category.as_str(), "{}", step.name);
        }
    }

    #[test]
    fn every_scenario_capture_is_produced_by_an_earlier_step_or_the_seed() {
        let seeded = ["run_id", "email", "visitor_name"];
        let suite = reference();
        for scenario in &suite.scenarios {
            let mut known: HashSet<String> = seeded.iter().map(|s| (*s).to_owned()).collect();
            for step in &scenario.steps {
                for name in step.reads() {
                    assert!(
                        known.contains(&name),
                        "{} reads `{name}` before any step writes it",
                        step.name
                    );
                }
                known.extend(step.writes());
            }
        }
        for step in &suite.checks {
            for name in step.reads() {
                assert!(
                    seeded.contains(&name.as_str()),
                    "{} reads `{name}`",
                    step.name
                );
            }
        }
    }
}
