use sea_orm::entity::prelude::*;

#[allow(unused_imports)]
use crate::domain::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub external_id: Option<String>,
    /// The organisation that wrote `external_id` (a partner id; empty: the company).
    pub external_namespace: String,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub archived_at: Option<DateTimeUtc>,
    /// The user it is for; empty when it is for everyone of `recipient_partner_id`.
    pub recipient_user_id: String,
    /// A partner organisation whose users all read it (a lead routed to a distributor,
    /// say), when it is not for one user.
    pub recipient_partner_id: Option<String>,
    pub kind: NotificationKind,
    pub title: String,
    pub body: Option<String>,
    /// The record it is about: a recipient who can no longer read it no longer sees it.
    pub record_type: RecordKind,
    pub record_id: String,
    pub read_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
