//! `smoke` CLI tests against loopback servers.
