//! Imports of files: CSV or JSON rows of accounts, contacts, products, orders or order
//! lines, created or updated by the external ids the importer gave them.
//!
//! **How.** A file is read and staged here (`createImport`, more parts with
//! `addImportRows`); a dry run (`checkImport`) and the run (`runImport`) are passes of
//! the job runner over the staged rows, in batches sent through the gateway *as the
//! import's owner* to the type's bulk upsert (`importAccounts`, …). Each batch is one
//! transaction in the type's own service, with a savepoint per row: a refused row is
//! reported with its field and reason and nothing else is lost, and every row passes the
//! same policy checks as the owner's own `upsert` would. Progress is recorded after each
//! batch, so a stopped process goes on where it was (see [`run`]).
//!
//! **Duplicates.** A creating row that looks like records the owner can read (the one
//! normaliser's keys of company names, web domains, emails and phones) is reported with
//! their ids; a run may skip such rows.

pub mod catalog;
pub mod graphql;
pub mod parse;
pub mod run;
pub mod store;

pub use run::{RUN_JOB, Runner, Writer};
