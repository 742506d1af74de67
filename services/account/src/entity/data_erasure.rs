use sea_orm::entity::prelude::*;

#[allow(unused_imports)]
use crate::domain::*;

/// A data-subject erasure: one person (a contact, a lead, or everyone with an email)
/// erased in every service. It keeps who asked and what was tombstoned, never what the
/// person's data was: the email asked for is cleared once the job ran.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "data_erasures")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub external_id: Option<String>,
    pub external_namespace: String,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub archived_at: Option<DateTimeUtc>,
    /// The contact asked for.
    pub contact_id: Option<String>,
    /// The lead asked for.
    pub lead_id: Option<String>,
    /// The email asked for, lower-cased, until the erasure ran.
    pub email: Option<String>,
    pub status: DataErasureStatus,
    /// How many of the account service's records the erasure changed.
    pub records: i32,
    /// The contacts and leads it tombstoned (a JSON object of two id arrays).
    pub erased_ids: String,
    pub requested_by: String,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
