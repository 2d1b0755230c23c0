//! Secrets (staff tokens, mailbox passwords, generated stack passwords) that must never appear
//! in output, reports or error messages.
//!
//! A [`Secret`] prints as `****` through `Debug` and `Display`; its value is only reachable
//! through [`Secret::expose`]. Every secret made through [`Secret::new`] is also registered
//! in a process-wide list so that [`mask`] can scrub any text (a response excerpt that echoes a
//! header, a compose log) before it is printed or written to a report.

use std::fmt;
use std::sync::{LazyLock, RwLock};

/// What a masked value is replaced with.
pub const MASK: &str = "****";

/// Values shorter than this are not registered for scrubbing: masking `"1"` everywhere would
/// destroy reports while protecting nothing.
const MIN_MASKED_LEN: usize = 4;

static REGISTRY: LazyLock<RwLock<Vec<String>>> = LazyLock::new(|| RwLock::new(Vec::new()));

/// A secret value. Cloning keeps it registered; the registry lives for the whole process.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value` and registers it so that [`mask`] scrubs it from any text.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        register(&value);
        Secret(value)
    }

    /// The real value, for the one place that must send it (a header, a login).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// Registers a value to be scrubbed by [`mask`] without wrapping it.
pub fn register(value: &str) {
    if value.len() < MIN_MASKED_LEN {
        return;
    }
    let mut registry = REGISTRY
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !registry.iter().any(|known| known == value) {
        registry.push(value.to_owned());
        // Longest first, so that a secret containing another is masked whole.
        registry.sort_by_key(|known| std::cmp::Reverse(known.len()));
    }
}

/// Returns `text` with every registered secret replaced by [`MASK`].
pub fn mask(text: &str) -> String {
    let registry = REGISTRY
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut out = text.to_owned();
    for value in registry.iter() {
        if out.contains(value.as_str()) {
            out = out.replace(value.as_str(), MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("hunter2-staff-token");
        assert_eq!(format!("{secret:?} {secret}"), "**** ****");
        assert_eq!(secret.expose(), "hunter2-staff-token");
    }

    #[test]
    fn mask_scrubs_registered_values_longest_first() {
        register("abcd");
        register("abcdefgh-longer");
        assert_eq!(mask("x abcdefgh-longer y abcd z"), "x **** y **** z");
    }

    #[test]
    fn short_values_are_not_registered() {
        register("ab");
        assert_eq!(mask("ab cab"), "ab cab");
    }
}
