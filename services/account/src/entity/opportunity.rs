use sea_orm::entity::prelude::*;

#[allow(unused_imports)]
use crate::domain::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "opportunities")]
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
    pub name: String,
    pub stage: OpportunityStage,
    pub amount_minor: i64,
    pub currency: String,
    pub probability: i32,
    pub expected_close: Option<Date>,
    pub forecast_category: ForecastCategory,
    pub owner_user_id: Option<String>,
    /// The partner organisation the deal is attributed to (an approved deal registration).
    pub partner_id: Option<String>,
    /// The registration that attributed it.
    pub registration_id: Option<String>,
    /// Until when the partner's claim is protected (it then expires unless won or extended).
    pub protected_until: Option<DateTimeUtc>,
    /// The product line items, as JSON (`[{"productId": …, "quantity": …}]`).
    pub products: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
