use sea_orm::entity::prelude::*;

#[allow(unused_imports)]
use crate::domain::*;

/// One consent statement about a person: for a purpose over a channel, granted or
/// withdrawn, where it came from and who recorded it. The latest per purpose and channel
/// is the contact's consent (the contact's `consent_*` columns hold it for the masks).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "consent_changes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub contact_id: String,
    pub purpose: ConsentPurpose,
    pub channel: ConsentChannel,
    pub granted: bool,
    pub source: ConsentSource,
    /// What the person agreed to, where (a form's name, a call's date): staff only.
    pub evidence: Option<String>,
    pub recorded_at: DateTimeUtc,
    /// Who recorded it: a user's or API key's id, or `system`.
    pub recorded_by: String,
    /// The recorder's kind (`internal`, `distributor`, …, `system`).
    pub recorder_kind: String,
    /// The recorder's organisation (a partner's id; empty: the company).
    pub recorder_organisation: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
