//! The consumers that turn other services' events into delivery jobs: one per kind of
//! record, reading its producer's events. An event of a record schedules a decision for
//! every active webhook that takes events about that kind; what is sent is decided later,
//! from the record as each webhook's principal sees it (`deliver`).

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crm_service_common::ApiResult;
use crm_service_common::events::{Consumer, Event, EventBus, EventHandler, HttpFeed};
use sea_orm::{DatabaseConnection, DatabaseTransaction};

use super::catalog::RecordKind;
use super::deliver::{DeliverJob, schedule};
use super::store;

/// Which kinds of records some active webhook takes events about, as last read: a kind
/// nobody listens to is passed over without a transaction per event. Read again every
/// second and at once after a change made in this process, so a webhook made elsewhere
/// hears of changes from about a second after it was made.
#[derive(Clone, Default)]
pub struct Listening(Arc<RwLock<HashSet<&'static str>>>);

impl Listening {
    pub fn contains(&self, prefix: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(prefix)
    }

    /// Reads which kinds are listened to now.
    pub async fn refresh(&self, db: &DatabaseConnection) -> ApiResult<()> {
        let mut now = HashSet::new();
        for kind in super::catalog::RECORDS {
            if !store::listening(db, kind.prefix).await?.is_empty() {
                now.insert(kind.prefix);
            }
        }
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = now;
        Ok(())
    }

    /// Refreshes every `every` until the handle is dropped.
    pub fn follow(&self, db: DatabaseConnection, every: Duration) -> tokio::task::JoinHandle<()> {
        let listening = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = listening.refresh(&db).await {
                    tracing::warn!(message = %e.message(), "reading which webhooks listen failed");
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}

/// Schedules the deliveries one event of `kind` may make.
pub struct Triggers {
    kind: &'static RecordKind,
    listening: Listening,
    /// Wakes the delivery runner once the decisions are committed.
    wake: std::sync::Arc<tokio::sync::Notify>,
}

impl EventHandler for Triggers {
    async fn apply(&self, txn: &DatabaseTransaction, event: &Event) -> ApiResult<()> {
        for webhook in store::listening(txn, self.kind.prefix).await? {
            schedule(
                txn,
                &webhook,
                DeliverJob {
                    webhook_id: webhook.id.clone(),
                    trigger: event.id.clone(),
                    record_type: Some(self.kind.type_name.to_owned()),
                    record_id: Some(event.aggregate_id.clone()),
                },
            )
            .await?;
        }
        Ok(())
    }

    fn wants(&self, event: &Event) -> bool {
        event.aggregate_type == self.kind.type_name && self.listening.contains(self.kind.prefix)
    }

    fn applied(&self, _event: &Event) {
        self.wake.notify_one();
    }
}

/// The consumer of `kind`'s producer, reading `bus` and, for gaps and rebuilds, `feed`.
pub fn consumer(
    kind: &'static RecordKind,
    db: DatabaseConnection,
    bus: EventBus,
    feed: HttpFeed,
    listening: Listening,
    wake: std::sync::Arc<tokio::sync::Notify>,
) -> Consumer<Triggers> {
    Consumer::new(
        kind.consumer,
        kind.source,
        db,
        bus,
        feed,
        Triggers {
            kind,
            listening,
            wake,
        },
    )
}
