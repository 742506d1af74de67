use sea_orm::entity::prelude::*;

use crate::domain::OrderStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
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
    pub number: String,
    /// An account of the account service.
    pub account_id: String,
    pub status: OrderStatus,
    pub placed_at: Option<DateTimeUtc>,
    pub currency: String,
    /// The sum of its lines that are not cancelled, kept by every line write.
    pub total_minor: i64,
    /// A partner of the account service (kind DISTRIBUTOR).
    pub fulfilling_distributor_id: Option<String>,
    pub internal_note: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
