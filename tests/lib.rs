//! Workspace-level end-to-end tests of the `crm` system live in this crate's test targets
//! (`all_in_one.rs`): they start the real processes' code in-process on port 0.
