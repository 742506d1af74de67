use sea_orm::entity::prelude::*;

#[allow(unused_imports)]
use crate::domain::*;

/// A data-subject access request: everything held about one person, gathered by a job
/// (the account service's part) and completed at download by every other service's part.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "data_exports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub external_id: Option<String>,
    pub external_namespace: String,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub archived_at: Option<DateTimeUtc>,
    /// The contact asked for (or none: by email).
    pub contact_id: Option<String>,
    /// The email asked for, lower-cased (or none: by contact).
    pub email: Option<String>,
    pub status: DataExportStatus,
    /// Percent of the account service's part gathered.
    pub progress: i32,
    /// The sections gathered so far, as a JSON object.
    pub document: String,
    /// The emails that identify the person in other services' free text (a JSON array).
    pub terms: String,
    pub requested_by: String,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
