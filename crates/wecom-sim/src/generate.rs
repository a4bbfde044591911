//! Deterministic synthetic org generator.
