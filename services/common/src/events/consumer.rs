//! A consumer of one producer's events. Each event is applied and the checkpoint moved in
//! one transaction of the consumer's own database, so a consumer stopped at any point
//! resumes exactly after the last event it applied.

use std::future::Future;
use std::time::Duration;

use sea_orm::ExprTrait;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QuerySelect,
};
use tokio::task::JoinHandle;

use super::{Event, EventBus, HttpFeed};
use crate::db::{begin_write, commit};
use crate::{ApiError, ApiResult};

pub mod event_checkpoint {
    use sea_orm::entity::prelude::*;

    /// How far one consumer has applied one source's events.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_checkpoints")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub source: String,
        pub position: i64,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use event_checkpoint::{Column, Entity as Checkpoint};

/// What a consumer does with one event, inside the transaction that also moves its
/// checkpoint. It must only write through `txn`.
pub trait EventHandler: Send + Sync + 'static {
    fn apply(
        &self,
        txn: &DatabaseTransaction,
        event: &Event,
    ) -> impl Future<Output = ApiResult<()>> + Send;

    /// Whether the handler acts on `event` at all. Events it does not want are passed
    /// over without a transaction each: the checkpoint moves over a run of them at once.
    fn wants(&self, _event: &Event) -> bool {
        true
    }

    /// Whether the database's freed space is wiped once `event` is applied (an erasure:
    /// [`crate::db::wipe_freed`]).
    fn wipes_after(&self, _event: &Event) -> bool {
        false
    }

    /// Called once `event`'s transaction committed: what it wrote is visible now (a job
    /// runner told to look at once, say).
    fn applied(&self, _event: &Event) {}
}

pub struct Consumer<H> {
    name: String,
    source: String,
    db: DatabaseConnection,
    bus: EventBus,
    feed: HttpFeed,
    handler: H,
    batch: usize,
}

impl<H: EventHandler> Consumer<H> {
    /// `name` identifies the consumer's checkpoint; `source` is the producing service.
    pub fn new(
        name: &str,
        source: &str,
        db: DatabaseConnection,
        bus: EventBus,
        feed: HttpFeed,
        handler: H,
    ) -> Self {
        Self {
            name: name.to_owned(),
            source: source.to_owned(),
            db,
            bus,
            feed,
            handler,
            batch: 100,
        }
    }

    /// The position of the last event applied (0 before the first).
    pub async fn checkpoint(&self) -> ApiResult<i64> {
        checkpoint_of(&self.db, &self.name, &self.source).await
    }

    /// Reads the feed from the checkpoint until it is exhausted; returns how many events
    /// were applied. Rebuilding from scratch is this, from checkpoint 0.
    pub async fn catch_up(&self) -> ApiResult<usize> {
        let mut applied = 0;
        loop {
            let after = self.checkpoint().await?;
            let events = self.feed.page(after, self.batch as u64).await?;
            if events.is_empty() {
                return Ok(applied);
            }
            applied += self.apply_all(&events).await?;
        }
    }

    /// Applies what the bus has after the checkpoint (waiting up to `wait` for something),
    /// reading the feed instead where the bus no longer holds the next position.
    pub async fn poll_once(&self, wait: Duration) -> ApiResult<usize> {
        let after = self.checkpoint().await?;
        let mut events = self.bus.read(&self.source, after, self.batch, wait).await?;
        if events.first().is_some_and(|e| e.position > after + 1) {
            events = self.feed.page(after, self.batch as u64).await?;
        }
        self.apply_all(&events).await
    }

    async fn apply_all(&self, events: &[Event]) -> ApiResult<usize> {
        let mut applied = 0;
        // A run of events the handler does not want: (first, last) position.
        let mut passed: Option<(i64, i64)> = None;
        for event in events {
            if self.handler.wants(event) {
                if let Some(run) = passed.take() {
                    self.pass_over(run).await?;
                }
                if self.apply_one(event).await? {
                    applied += 1;
                }
            } else {
                passed = Some(match passed {
                    Some((first, _)) => (first, event.position),
                    None => (event.position, event.position),
                });
            }
        }
        if let Some(run) = passed {
            self.pass_over(run).await?;
        }
        Ok(applied)
    }

    /// Moves the checkpoint over a run of events the handler does not want (`first` to
    /// `last`), in one transaction; a run that does not follow the checkpoint is refused
    /// (it would skip an event), one already behind it changes nothing.
    async fn pass_over(&self, (first, last): (i64, i64)) -> ApiResult<()> {
        let txn = begin_write(&self.db).await?;
        let at = checkpoint_of(&txn, &self.name, &self.source).await?;
        if last <= at {
            return Ok(());
        }
        if first > at + 1 {
            return Err(ApiError::internal(format!(
                "consumer {} of {}: events from position {first} do not follow checkpoint {at}",
                self.name, self.source
            )));
        }
        self.move_checkpoint(&txn, last).await?;
        commit(txn).await
    }

    async fn move_checkpoint(&self, txn: &DatabaseTransaction, position: i64) -> ApiResult<()> {
        Checkpoint::insert(event_checkpoint::ActiveModel {
            consumer: Set(self.name.clone()),
            source: Set(self.source.clone()),
            position: Set(position),
            updated_at: Set(crate::record::now()),
        })
        .on_conflict(
            OnConflict::columns([Column::Consumer, Column::Source])
                .update_columns([Column::Position, Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
        Ok(())
    }

    /// Applies one event unless it is at or below the checkpoint. Returns whether it was
    /// applied. An event past the next position is refused (it would skip one).
    pub async fn apply_one(&self, event: &Event) -> ApiResult<bool> {
        let txn = begin_write(&self.db).await?;
        let at = checkpoint_of(&txn, &self.name, &self.source).await?;
        if event.position <= at {
            return Ok(false);
        }
        if event.position != at + 1 {
            return Err(ApiError::internal(format!(
                "consumer {} of {}: event at position {} does not follow checkpoint {at}",
                self.name, self.source, event.position
            )));
        }
        self.handler.apply(&txn, event).await?;
        self.move_checkpoint(&txn, event.position).await?;
        commit(txn).await?;
        self.handler.applied(event);
        if self.handler.wipes_after(event) {
            crate::db::wipe_freed(&self.db).await;
        }
        Ok(true)
    }

    /// Runs until the handle is dropped: catch up from the feed, then follow the bus. A
    /// failure (producer down, handler error) pauses and starts again from the checkpoint.
    pub fn spawn(self) -> ConsumerHandle {
        let task = tokio::spawn(async move {
            let mut caught_up = false;
            loop {
                let round = if caught_up {
                    self.poll_once(Duration::from_secs(1)).await
                } else {
                    self.catch_up().await
                };
                match round {
                    Ok(_) => caught_up = true,
                    Err(_) => {
                        caught_up = false;
                        tracing::warn!(consumer = %self.name, source = %self.source, "event consumer round failed; retrying from its checkpoint");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        ConsumerHandle(task)
    }
}

/// The position of the last event of `source` that `consumer` applied (0 before the first).
pub async fn checkpoint_of<C: ConnectionTrait>(
    db: &C,
    consumer: &str,
    source: &str,
) -> ApiResult<i64> {
    let position: Option<i64> = Checkpoint::find()
        .select_only()
        .column(Column::Position)
        .filter(Expr::col(Column::Consumer).eq(consumer))
        .filter(Expr::col(Column::Source).eq(source))
        .into_tuple()
        .one(db)
        .await?;
    Ok(position.unwrap_or(0))
}

/// Stops the consumer when dropped (a stop mid-event rolls that event back).
pub struct ConsumerHandle(JoinHandle<()>);

impl Drop for ConsumerHandle {
    fn drop(&mut self) {
        self.0.abort();
    }
}
