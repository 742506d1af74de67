use sea_orm::entity::prelude::*;

/// One product line of an open opportunity of the account service, kept from
/// `opportunity.demand_changed`: what suppliers' expected demand is summed from. Never
/// served row by row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "expected_demand")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub opportunity_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: String,
    pub account_id: String,
    pub quantity: i32,
    /// The opportunity's chance of closing, 0–100 %.
    pub probability: i32,
    pub expected_close: Date,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
