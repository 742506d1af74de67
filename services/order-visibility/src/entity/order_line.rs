use sea_orm::entity::prelude::*;

use crate::domain::LineStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "order_lines")]
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
    pub order_id: String,
    pub line_number: Option<i32>,
    pub product_id: String,
    pub quantity: i32,
    pub unit_price_minor: i64,
    pub currency: String,
    pub status: LineStatus,
    /// When the supplier expects to ship it (its answer when confirming or backordering).
    pub expected_date: Option<Date>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
