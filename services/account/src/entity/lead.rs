use sea_orm::entity::prelude::*;

#[allow(unused_imports)]
use crate::domain::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "leads")]
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
    pub first_name: String,
    pub last_name: String,
    pub company: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub source: LeadSource,
    pub status: LeadStatus,
    pub score: i32,
    /// Tasks on the lead completed in the last `LEAD_ACTIVITY_DAYS` days (kept by the
    /// task writes and the `lead.rescore` job; the score's activity rule counts them).
    pub recent_activities: i32,
    pub owner_user_id: Option<String>,
    pub converted_account_id: Option<String>,
    pub converted_contact_id: Option<String>,
    pub converted_opportunity_id: Option<String>,
    pub converted_at: Option<DateTimeUtc>,
    /// The distributor the lead is routed to (it reads it and answers while it is).
    pub routed_partner_id: Option<String>,
    pub routed_at: Option<DateTimeUtc>,
    /// When the partner must have accepted or declined by (the job runner returns it to
    /// the pool then).
    pub respond_by: Option<DateTimeUtc>,
    pub accepted_at: Option<DateTimeUtc>,
    /// Why the last partner gave it back (or that it did not answer in time).
    pub decline_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
