//! The cleanup ledger: what a run created, so it can be undone even when a step fails halfway
//! or the run is interrupted.
//!
//! An entry is recorded as soon as the step that created something knows its id, before any
//! later step can fail. Each scenario's `Cleanup` step undoes its own entries; whatever is left
//! when the run ends (interrupted, or a scenario never reached its cleanup) is undone by the
//! runner itself.

use std::sync::Mutex;

use super::Http;
use crate::check::{Captures, Request};

/// One thing to undo.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The scenario that created it.
    pub scenario: String,
    /// What it is, for people (`show 42 "smoke 1a2b3c4d"`).
    pub what: String,
    /// The request that undoes it.
    pub undo: Request,
    /// The captures the undo request needs.
    pub captures: Captures,
    /// The client it is sent with (the scenario's, with its cookies).
    pub http: Http,
}

/// Shared by every task of a run.
#[derive(Debug, Default)]
pub struct Ledger {
    entries: Mutex<Vec<Entry>>,
}

impl Ledger {
    /// Records an entry.
    pub fn record(&self, entry: Entry) {
        self.lock().push(entry);
    }

    /// Removes and returns the entries of `scenario`, newest first (undo in reverse order).
    pub fn take_scenario(&self, scenario: &str) -> Vec<Entry> {
        let mut entries = self.lock();
        let (mine, rest): (Vec<_>, Vec<_>) =
            entries.drain(..).partition(|e| e.scenario == scenario);
        *entries = rest;
        mine.into_iter().rev().collect()
    }

    /// Removes and returns every entry, newest first.
    pub fn take_all(&self) -> Vec<Entry> {
        let mut entries = self.lock();
        entries.drain(..).rev().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        // A panic elsewhere must not stop the cleanup.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
