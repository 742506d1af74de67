//! Notifications that follow the order service's events: a supplier hears of a new line of
//! its product on a placed order; a distributor, and the account's owner, of a shipment
//! that reports an exception. Each is about the order's account (the account service can
//! check only its own records, so its recipient reads the note while it reads the account)
//! and names the order by its number, which its recipient reads too. A consumer of its own:
//! rebuilding the share rows replays the order feed without sending anything twice.

use crm_service_common::ApiResult;
use crm_service_common::events::{Consumer, Event, EventBus, EventHandler, HttpFeed};
use sea_orm::{DatabaseConnection, DatabaseTransaction, EntityTrait};

use crate::domain::{NotificationKind, RecordKind};
use crate::entity::account;
use crate::jobs::{notify, notify_organisation};

/// The consumer's name (its checkpoint); it reads the same producer as the share rows.
pub const CONSUMER: &str = "order-notifications";
pub use crate::shares::SOURCE;

/// Turns order events into notifications.
pub struct OrderNotifications;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LineAdded {
    order_number: String,
    account_id: String,
    product_name: String,
    supplier_partner_id: String,
    quantity: i64,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShipmentMoved {
    status: String,
    previous_status: Option<String>,
    carrier: Option<String>,
    tracking_number: Option<String>,
    fulfilling_distributor_id: Option<String>,
    /// Absent from events written before shipments named their order's account.
    order_number: Option<String>,
    account_id: Option<String>,
}

impl EventHandler for OrderNotifications {
    async fn apply(&self, txn: &DatabaseTransaction, event: &Event) -> ApiResult<()> {
        match event.event_type.as_str() {
            "order.line_added" => {
                let line: LineAdded = event.payload_as()?;
                notify_organisation(
                    txn,
                    &line.supplier_partner_id,
                    NotificationKind::LineAdded,
                    format!(
                        "New line on order {}: {} × {}",
                        line.order_number, line.quantity, line.product_name
                    ),
                    Some("Confirm it, or backorder it with the date you expect to ship.".into()),
                    RecordKind::Account,
                    &line.account_id,
                )
                .await
            }
            "shipment.status_changed" => {
                let moved: ShipmentMoved = event.payload_as()?;
                let exception = moved.status == "EXCEPTION"
                    && moved.previous_status.as_deref() != Some("EXCEPTION");
                let (Some(number), Some(account_id), true) =
                    (&moved.order_number, &moved.account_id, exception)
                else {
                    return Ok(());
                };
                let title = format!(
                    "A shipment of order {number} reports an exception{}",
                    match (&moved.carrier, &moved.tracking_number) {
                        (Some(carrier), Some(tracking)) => format!(" ({carrier} {tracking})"),
                        _ => String::new(),
                    }
                );
                let body = Some("Check with the carrier and tell the customer.".to_owned());
                if let Some(distributor) = &moved.fulfilling_distributor_id {
                    notify_organisation(
                        txn,
                        distributor,
                        NotificationKind::ShipmentException,
                        title.clone(),
                        body.clone(),
                        RecordKind::Account,
                        account_id,
                    )
                    .await?;
                }
                let owner = account::Entity::find_by_id(account_id.clone())
                    .one(txn)
                    .await?
                    .and_then(|a| a.owner_user_id);
                if let Some(owner) = owner {
                    notify(
                        txn,
                        &owner,
                        NotificationKind::ShipmentException,
                        title,
                        body,
                        RecordKind::Account,
                        account_id,
                    )
                    .await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The consumer that sends them, reading the order service's events from `bus` and, for
/// gaps, from its feed.
pub fn consumer(
    db: DatabaseConnection,
    bus: EventBus,
    feed: HttpFeed,
) -> Consumer<OrderNotifications> {
    Consumer::new(CONSUMER, SOURCE, db, bus, feed, OrderNotifications)
}
