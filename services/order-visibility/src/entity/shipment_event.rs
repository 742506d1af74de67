use sea_orm::entity::prelude::*;

use crate::domain::ShipmentStatus;

/// One status a shipment reached, and when (its tracking history). Append-only.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "shipment_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub shipment_id: String,
    pub status: ShipmentStatus,
    /// When the carrier says it happened.
    pub occurred_at: DateTimeUtc,
    pub location: Option<String>,
    pub note: Option<String>,
    /// When we learnt it.
    pub recorded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
