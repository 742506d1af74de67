//! The outbox table of one service: events are appended by the writes that cause them
//! and leave through the relay.

use sea_orm::ExprTrait;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::{Event, NewEvent};
use crate::ApiResult;
use crate::db::{begin_write, commit};

pub mod outbox_event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox_events")]
    pub struct Model {
        /// Insertion order (not commit order: that is what `position` is for).
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub event_id: String,
        pub aggregate_type: String,
        pub aggregate_id: String,
        pub event_type: String,
        /// JSON text.
        pub payload: String,
        pub occurred_at: DateTimeUtc,
        /// Assigned by the relay once the event is committed; dense from 1.
        pub position: Option<i64>,
        pub published_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use outbox_event::{Column, Entity as Outbox};

/// Told whenever this process appends events, so that its relays look at once instead of
/// at their next poll (the appending transaction commits a moment later: a relay woken by
/// it looks again shortly after).
pub fn appended() -> &'static tokio::sync::Notify {
    static APPENDED: std::sync::LazyLock<tokio::sync::Notify> =
        std::sync::LazyLock::new(tokio::sync::Notify::new);
    &APPENDED
}

/// Appends events on `db` (the caller's transaction, so they commit with the change).
pub async fn append<C: ConnectionTrait>(db: &C, events: Vec<NewEvent>) -> ApiResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    // Before the rows exist, and harmless: a relay woken now finds nothing yet and looks
    // again over the next few milliseconds, while this transaction commits.
    appended().notify_waiters();
    let now = crate::record::now();
    let mut rows = events.into_iter().map(|e| outbox_event::ActiveModel {
        seq: NotSet,
        event_id: Set(uuid::Uuid::new_v4().to_string()),
        aggregate_type: Set(e.aggregate_type.to_owned()),
        aggregate_id: Set(e.aggregate_id),
        event_type: Set(e.event_type.to_owned()),
        payload: Set(e.payload.to_string()),
        occurred_at: Set(now),
        position: Set(None),
        published_at: Set(None),
    });
    // In statements of at most 500 rows: one statement binds 8 values a row, and SQLite
    // refuses more than 32,766 (a seed or a bulk import writes thousands at once).
    loop {
        let chunk: Vec<_> = rows.by_ref().take(500).collect();
        if chunk.is_empty() {
            return Ok(());
        }
        Outbox::insert_many(chunk)
            .exec_without_returning(db)
            .await?;
    }
}

/// Gives up to `limit` committed, unpositioned events the next positions, in insertion
/// order. On PostgreSQL an advisory lock per source makes this one writer at a time
/// even with several replicas; SQLite has one writer anyway.
pub async fn assign_positions(db: &DatabaseConnection, source: &str, limit: u64) -> ApiResult<u64> {
    // Look before taking the write lock: an idle relay polls often and must not contend
    // with the service's own writers.
    let any_pending = Outbox::find()
        .select_only()
        .column(Column::Seq)
        .filter(Expr::col(Column::Position).is_null())
        .limit(1)
        .into_tuple::<i64>()
        .one(db)
        .await?
        .is_some();
    if !any_pending {
        return Ok(0);
    }
    let txn = begin_write(db).await?;
    crate::db::serialize_section(&txn, &format!("outbox:{source}")).await?;
    let pending: Vec<i64> = Outbox::find()
        .select_only()
        .column(Column::Seq)
        .filter(Expr::col(Column::Position).is_null())
        .order_by_asc(Column::Seq)
        .limit(limit)
        .into_tuple()
        .all(&txn)
        .await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let last: Option<i64> = Outbox::find()
        .select_only()
        .column_as(Expr::col(Column::Position).max(), "last")
        .into_tuple()
        .one(&txn)
        .await?
        .flatten();
    let mut position = last.unwrap_or(0);
    for seq in &pending {
        position += 1;
        Outbox::update_many()
            .col_expr(Column::Position, Expr::val(position))
            .filter(Expr::col(Column::Seq).eq(*seq))
            .exec(&txn)
            .await?;
    }
    commit(txn).await?;
    Ok(pending.len() as u64)
}

/// Positioned events not yet marked published, in position order.
pub async fn unpublished(
    db: &DatabaseConnection,
    source: &str,
    limit: u64,
) -> ApiResult<Vec<Event>> {
    let rows = Outbox::find()
        .filter(Expr::col(Column::Position).is_not_null())
        .filter(Expr::col(Column::PublishedAt).is_null())
        .order_by_asc(Column::Position)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|m| to_event(m, source)).collect())
}

/// Marks every event up to `position` published.
pub async fn mark_published(db: &DatabaseConnection, position: i64) -> ApiResult<()> {
    Outbox::update_many()
        .col_expr(Column::PublishedAt, Expr::val(crate::clock::now()))
        .filter(Expr::col(Column::Position).lte(position))
        .filter(Expr::col(Column::PublishedAt).is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// The feed: positioned events after `after`, in position order.
pub async fn page(
    db: &DatabaseConnection,
    source: &str,
    after: i64,
    limit: u64,
) -> ApiResult<Vec<Event>> {
    let rows = Outbox::find()
        .filter(Expr::col(Column::Position).gt(after))
        .order_by_asc(Column::Position)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|m| to_event(m, source)).collect())
}

/// Every event recorded, positioned or not, in insertion order (for tests and audits).
pub async fn all(db: &DatabaseConnection, source: &str) -> ApiResult<Vec<Event>> {
    let rows = Outbox::find().order_by_asc(Column::Seq).all(db).await?;
    Ok(rows.into_iter().map(|m| to_event(m, source)).collect())
}

fn to_event(m: outbox_event::Model, source: &str) -> Event {
    Event {
        position: m.position.unwrap_or(0),
        id: m.event_id,
        source: source.to_owned(),
        aggregate_type: m.aggregate_type,
        aggregate_id: m.aggregate_id,
        event_type: m.event_type,
        // The payload was written from a `serde_json::Value`, so it parses back.
        payload: serde_json::from_str(&m.payload).unwrap_or(serde_json::Value::Null),
        occurred_at: m.occurred_at,
    }
}
