//! Domain events: how a service tells the others about a change it made.
//!
//! The path of one event:
//! 1. **outbox**: the write that changes a record appends the event to the service's own
//!    `outbox_events` table in the same transaction, so the event exists if and only if
//!    the change committed.
//! 2. **relay**: a background task gives committed events a dense, gap-free `position` in
//!    commit-visible order, then publishes them to the event bus (Redis Streams when
//!    `REDIS_URL` is set, an in-process stream otherwise) and marks them published. A crash
//!    between publishing and marking publishes again: delivery is at least once, and the
//!    bus drops a position it already holds.
//! 3. **feed**: every producer serves its events by position (`GET /events?after=N`), so a
//!    consumer can rebuild from scratch or fill a gap the bus no longer holds.
//! 4. **consumer**: applies each event and stores its checkpoint in one transaction of its
//!    own database; an event at or below the checkpoint is skipped. A consumer that stops
//!    anywhere resumes without losing or double-applying an event.
//!
//! Events of one aggregate (an order with its lines and shipments, say) are published in
//! the order their transactions committed, because each write locks the aggregate's row.

pub mod bus;
pub mod consumer;
pub mod feed;
pub mod outbox;
pub mod relay;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use bus::EventBus;
pub use consumer::{Consumer, EventHandler};
pub use feed::HttpFeed;
pub use relay::Relay;

/// An event as a write records it; the outbox adds its id, time and position.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// What kind of thing changed, e.g. `Order`.
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    /// What happened, e.g. `order.placed`.
    pub event_type: &'static str,
    pub payload: serde_json::Value,
}

impl NewEvent {
    pub fn new(
        aggregate_type: &'static str,
        aggregate_id: impl Into<String>,
        event_type: &'static str,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            aggregate_type,
            aggregate_id: aggregate_id.into(),
            event_type,
            payload,
        }
    }
}

/// A published event, as the bus and the feed carry it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Dense and increasing per source, starting at 1: the consumer's checkpoint.
    pub position: i64,
    /// Unique across sources.
    pub id: String,
    /// The producing service, e.g. `order_visibility`.
    pub source: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub payload: serde_json::Value,
    pub occurred_at: DateTime<Utc>,
}

impl Event {
    /// The payload read as `T`; a payload of another shape is this service's bug (or a
    /// producer it does not understand), an internal error that stops its consumer.
    pub fn payload_as<T: serde::de::DeserializeOwned>(&self) -> crate::ApiResult<T> {
        serde_json::from_value(self.payload.clone()).map_err(|e| {
            crate::ApiError::internal(format!(
                "a {} event this service can't read: {e}",
                self.event_type
            ))
        })
    }
}
