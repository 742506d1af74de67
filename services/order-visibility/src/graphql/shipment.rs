//! `Shipment`: a parcel of an order on its way, with its tracking history. Its status
//! moves only through `recordShipmentStatus`, which validates the move and keeps the
//! history.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use crm_service_common::connection_types;
use crm_service_common::db::{begin_write, commit};
use crm_service_common::domain::{Lifecycle, optional_text, text};
use crm_service_common::{ApiError, ApiResult};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, EntityTrait, ExprTrait, QueryFilter, QueryOrder, Select};

use super::order::Order;
use super::{
    FilterExt, RecordFilter, RecordInput, db, ensure_exists, load, optional, ordering,
    record_object, record_operations, required, unarchived,
};
use crate::domain::ShipmentStatus;
use crate::entity::{order, shipment, shipment_event};
use crate::store::{self, set};

#[derive(Clone)]
pub struct Shipment(pub shipment::Model);

connection_types!(ShipmentConnection, ShipmentEdge, Shipment);

/// One entry of a shipment's tracking history.
#[derive(SimpleObject, Clone, Debug)]
pub struct ShipmentStatusEvent {
    pub status: ShipmentStatus,
    /// When the carrier says it happened.
    pub occurred_at: DateTime<Utc>,
    pub location: Option<String>,
    pub note: Option<String>,
    /// When it was recorded here.
    pub recorded_at: DateTime<Utc>,
}

record_object!(Shipment {
    async fn order_id(&self) -> ID {
        ID(self.0.order_id.clone())
    }
    async fn order(&self, ctx: &Context<'_>) -> Result<Option<Order>> {
        Ok(load::<order::Entity>(ctx, &self.0.order_id).await?.map(Order))
    }
    async fn carrier(&self) -> &str {
        &self.0.carrier
    }
    async fn tracking_number(&self) -> Option<&str> {
        self.0.tracking_number.as_deref()
    }
    async fn status(&self) -> ShipmentStatus {
        self.0.status
    }
    /// The statuses this shipment may move to next.
    async fn next_statuses(&self) -> Vec<ShipmentStatus> {
        self.0.status.next().to_vec()
    }
    /// When it first went in transit.
    async fn shipped_at(&self) -> Option<DateTime<Utc>> {
        self.0.shipped_at
    }
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
    /// The tracking history, oldest first.
    async fn events(&self, ctx: &Context<'_>) -> Result<Vec<ShipmentStatusEvent>> {
        let rows = shipment_event::Entity::find()
            .filter(Expr::col(shipment_event::Column::ShipmentId).eq(self.0.id.clone()))
            .order_by_asc(shipment_event::Column::OccurredAt)
            .order_by_asc(shipment_event::Column::RecordedAt)
            .order_by_asc(shipment_event::Column::Id)
            .all(db(ctx)?)
            .await
            .map_err(ApiError::from)?;
        Ok(rows
            .into_iter()
            .map(|e| ShipmentStatusEvent {
                status: e.status,
                occurred_at: e.occurred_at,
                location: e.location,
                note: e.note,
                recorded_at: e.recorded_at,
            })
            .collect())
    }
});

ordering!(ShipmentOrder, ShipmentOrderField, shipment, default = CreatedAt, {
    CreatedAt => CreatedAt.created_at: Time,
    UpdatedAt => UpdatedAt.updated_at: Time,
});

#[derive(InputObject, Default, Clone, Debug)]
pub struct ShipmentFilter {
    /// Matches the tracking number or carrier, case-insensitively.
    pub text: Option<String>,
    pub order_id: Option<ID>,
    pub status: Option<ShipmentStatus>,
    #[graphql(default)]
    pub include_archived: bool,
}

impl RecordFilter<shipment::Entity> for ShipmentFilter {
    fn select(self) -> Select<shipment::Entity> {
        use shipment::Column as C;
        let mut s = unarchived(shipment::Entity::find(), self.include_archived);
        s = s.text_search(self.text.as_deref(), &[C::TrackingNumber, C::Carrier]);
        s = s.eq_if(C::OrderId, self.order_id.map(|v| v.0));
        s = s.eq_if(C::Status, self.status);
        s
    }
}

/// Fields of a shipment. On create, `orderId` and `carrier` are required; it starts as
/// LABEL_CREATED. Status moves go through `recordShipmentStatus`.
#[derive(InputObject, Default, Clone, Debug)]
pub struct ShipmentInput {
    pub order_id: Option<ID>,
    pub carrier: Option<String>,
    pub tracking_number: MaybeUndefined<String>,
}

impl RecordInput<shipment::Entity> for ShipmentInput {
    fn apply(&self, m: &mut shipment::ActiveModel, creating: bool) -> ApiResult<()> {
        if let Some(v) = required(creating, "input.orderId", &self.order_id)? {
            set(&mut m.order_id, v.0.clone());
        }
        if let Some(v) = required(creating, "input.carrier", &self.carrier)? {
            set(&mut m.carrier, text("input.carrier", v, 100)?);
        }
        optional(&mut m.tracking_number, &self.tracking_number, |v| {
            text("input.trackingNumber", v, 100)
        })?;
        if creating {
            set(&mut m.status, ShipmentStatus::LabelCreated);
            m.shipped_at = Set(None);
            m.delivered_at = Set(None);
        }
        Ok(())
    }

    async fn check_references(&self, ctx: &Context<'_>) -> ApiResult<()> {
        if let Some(id) = &self.order_id {
            ensure_exists::<order::Entity>(ctx, "input.orderId", id).await?;
        }
        Ok(())
    }
}

pub(crate) async fn list_shipments(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    filter: Option<ShipmentFilter>,
    order_by: Option<ShipmentOrder>,
) -> Result<ShipmentConnection> {
    ShipmentQuery
        .shipments(ctx, first, after, filter, order_by)
        .await
}

#[derive(Default)]
pub struct ShipmentStatusMutation;

#[Object]
impl ShipmentStatusMutation {
    /// Records that a shipment reached `status` (at `occurredAt`, default now): the move
    /// must be one the state machine allows, and it is added to the tracking history.
    #[allow(clippy::too_many_arguments)] // one per GraphQL argument
    async fn record_shipment_status(
        &self,
        ctx: &Context<'_>,
        id: ID,
        version: i32,
        status: ShipmentStatus,
        occurred_at: Option<DateTime<Utc>>,
        location: Option<String>,
        note: Option<String>,
    ) -> Result<Shipment> {
        let location = optional_text("location", location.as_deref(), 200)?;
        let note = optional_text("note", note.as_deref(), 1_000)?;
        let occurred_at = occurred_at.unwrap_or_else(store::now);
        let txn = begin_write(db(ctx)?).await?;
        {
            use crm_service_common::access::{self, Action};
            access::check_sets(ctx, "Shipment", Action::Update, &["status"]).await?;
            access::check_may_change::<shipment::Entity, _>(ctx, &txn, &id, Action::Update).await?;
        }
        let before = store::get::<shipment::Entity, _>(&txn, &id).await?;
        if before.version != version {
            return Err(ApiError::VersionConflict {
                current_version: before.version,
            }
            .into());
        }
        if before.status == status {
            return Err(ApiError::InvalidState {
                message: format!(
                    "the shipment is already {}",
                    crm_service_common::domain::label(status)
                ),
            }
            .into());
        }
        before.status.transition(status)?;
        let mut changes = shipment::ActiveModel {
            status: Set(status),
            ..Default::default()
        };
        if status == ShipmentStatus::InTransit && before.shipped_at.is_none() {
            changes.shipped_at = Set(Some(occurred_at));
        }
        if status == ShipmentStatus::Delivered {
            changes.delivered_at = Set(Some(occurred_at));
        }
        let after =
            store::update_versioned::<shipment::Entity, _>(&txn, &id, version, changes).await?;
        store::record_tracking(&txn, &after, occurred_at, location, note).await?;
        store::publish::<shipment::Entity, _>(&txn, Some(&before), &after).await?;
        commit(txn).await?;
        Ok(Shipment(after))
    }
}

record_operations!(
    ShipmentQuery, ShipmentMutation, Shipment, shipment, ShipmentInput,
    list: shipments(ShipmentFilter, ShipmentOrder) -> ShipmentConnection, one: shipment,
    mutations: create_shipment, update_shipment, upsert_shipment, archive_shipment
);
