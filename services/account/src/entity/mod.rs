//! sea-orm entities: the account service's tables, one module each. These are storage
//! shapes only; what clients see is defined in `graphql/`.

pub mod account;
pub mod account_share;
pub mod case;
pub mod case_comment;
pub mod consent_change;
pub mod contact;
pub mod data_erasure;
pub mod data_export;
pub mod deal_registration;
pub mod interaction;
pub mod lead;
pub mod notification;
pub mod opportunity;
pub mod opportunity_stage_change;
pub mod partner;
pub mod partner_territory;
pub mod task;
pub mod territory;
