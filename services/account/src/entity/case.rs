use sea_orm::entity::prelude::*;

#[allow(unused_imports)]
use crate::domain::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "cases")]
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
    pub account_id: String,
    pub contact_id: Option<String>,
    pub partner_id: Option<String>,
    /// The partner's user who opened it (none when our staff did): it hears of our replies.
    pub opened_by_user_id: Option<String>,
    pub subject: String,
    pub description: Option<String>,
    pub status: CaseStatus,
    pub priority: CasePriority,
    pub channel: Channel,
    pub sla_due_at: Option<DateTimeUtc>,
    pub owner_user_id: Option<String>,
    /// Set while the case waits on the customer (`PENDING`): the SLA clock stands still.
    pub sla_paused_at: Option<DateTimeUtc>,
    /// When the job runner escalated the case for a breached SLA.
    pub escalated_at: Option<DateTimeUtc>,
    /// When it was last resolved.
    pub resolved_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
