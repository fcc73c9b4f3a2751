//! Instruction tests for loads and stores.
