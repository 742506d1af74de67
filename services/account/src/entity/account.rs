use sea_orm::entity::prelude::*;

#[allow(unused_imports)]
use crate::domain::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
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
    pub name: String,
    pub domain: Option<String>,
    /// The name's comparison key (`crm_service_common::normalise::company_key`).
    pub name_key: Option<String>,
    pub industry: Option<String>,
    pub segment: Segment,
    pub tier: AccountTier,
    pub lifecycle_stage: LifecycleStage,
    pub territory_id: Option<String>,
    pub owner_user_id: Option<String>,
    pub internal_note: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
