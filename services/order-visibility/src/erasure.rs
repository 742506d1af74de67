//! What an erasure scrubs here (`crm_service_common::erasure`): the person's email
//! addresses in orders' internal notes and shipment events' notes. This service holds no
//! record of the person itself.

use crm_service_common::ApiResult;
use crm_service_common::erasure::{self, Erasure, ErasureScope, may_hold_email};
use crm_service_common::events::{Consumer, EventBus, HttpFeed};
use sea_orm::{DatabaseConnection, DatabaseTransaction};

use crate::entity::{order, shipment_event};

/// The consumer's name (its checkpoint) of the account service's erasures.
pub const CONSUMER: &str = "order-erasure";

pub struct OrderErasure;

impl ErasureScope for OrderErasure {
    const SERVICE: &'static str = crate::SERVICE;

    async fn scrub(txn: &DatabaseTransaction, erasure: &Erasure) -> ApiResult<u64> {
        let notes = order::Column::InternalNote;
        let events = shipment_event::Column::Note;
        Ok(
            erasure::scrub_text::<order::Entity>(txn, erasure, notes, may_hold_email(notes))
                .await?
                + erasure::scrub_text::<shipment_event::Entity>(
                    txn,
                    erasure,
                    events,
                    may_hold_email(events),
                )
                .await?,
        )
    }
}

/// The consumer that applies erasures, reading the account service's events.
pub fn consumer(
    db: DatabaseConnection,
    bus: EventBus,
    feed: HttpFeed,
) -> Consumer<erasure::Eraser<OrderErasure>> {
    erasure::consumer(CONSUMER, db, bus, feed)
}
