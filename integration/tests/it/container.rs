//! Tests of the container chain.
