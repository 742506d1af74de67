use sea_orm::entity::prelude::*;

#[allow(unused_imports)]
use crate::domain::*;

/// One stage an opportunity entered (none before: it was created in `to_stage`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "opportunity_stage_changes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub opportunity_id: String,
    pub from_stage: Option<OpportunityStage>,
    pub to_stage: OpportunityStage,
    pub amount_minor: i64,
    pub currency: String,
    pub probability: i32,
    pub changed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
