//! The `crm` binary's library: the command line, the all-in-one process and, from the
//! gateway issue on, the federation gateway itself. The gateway owns the `identity` schema.

pub mod bench;
pub mod federation;
pub mod identity;
pub mod limits;
pub mod policy;
pub mod scale;
pub mod system;
pub mod web;
