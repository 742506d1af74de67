//! The webhook tables and their queries.

use chrono::{DateTime, Utc};
use crm_service_common::{ApiError, ApiResult, clock};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::StringLen;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect};

use super::domain::Filter;

crm_service_common::text_enum!(
    /// Where a delivery is: being attempted (or waiting for its next attempt), received by
    /// the endpoint, given up after its last attempt (the dead-letter list, replayable),
    /// or withdrawn (the record left the principal's view before it could be sent, or the
    /// webhook stopped).
    WebhookDeliveryState {
        Pending = "PENDING",
        Delivered = "DELIVERED",
        Dead = "DEAD",
        Cancelled = "CANCELLED",
    }
);

pub mod webhook {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhooks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        /// Where deliveries are posted; none for a change feed (read, never posted).
        pub url: Option<String>,
        /// Comma-separated event names.
        pub events: String,
        /// JSON: the filter's conditions (`None`: every delivery passes).
        pub filter: Option<String>,
        /// The HMAC key deliveries are signed with.
        pub secret: String,
        /// The principal: a role, in an organisation (none: the company), answered for by
        /// `owner`.
        pub role: String,
        pub partner_id: Option<String>,
        pub owner: String,
        pub max_attempts: i32,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// Set while its managers have paused it: nothing is scheduled for it.
        pub paused_at: Option<DateTimeUtc>,
        /// Set when its principal stopped (the owner was disabled or lost the right to
        /// grant it): nothing is sent until someone who may takes it over.
        pub suspended_at: Option<DateTimeUtc>,
        pub suspended_reason: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod delivery {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_deliveries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub webhook_id: String,
        /// The webhook's order of its deliveries (their decisions' commit order).
        pub position: i64,
        /// What it was decided on: the id of the event that triggered it, or `ping:…`.
        pub trigger: String,
        pub event: String,
        pub record_type: Option<String>,
        pub record_id: Option<String>,
        /// Increases with every change of the record the webhook is told of: a receiver
        /// keeps the highest it has seen per record (deliveries may arrive out of order).
        pub sequence: i32,
        /// Comma-separated: the top-level fields an update changed.
        pub changes: Option<String>,
        pub state: super::WebhookDeliveryState,
        pub attempts: i32,
        pub last_status: Option<i32>,
        pub last_error: Option<String>,
        pub next_attempt_at: Option<DateTimeUtc>,
        /// The body of the last attempt.
        pub body: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub delivered_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod attempt {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_attempts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub delivery_id: String,
        pub attempt: i32,
        pub at: DateTimeUtc,
        /// The endpoint's HTTP status (none: no answer).
        pub status: Option<i32>,
        pub error: Option<String>,
        pub duration_ms: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod view {
    use sea_orm::entity::prelude::*;

    /// The last view of one record a webhook's principal was found to have: what the next
    /// one is compared with.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_views")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub webhook_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub record_id: String,
        pub record_type: String,
        /// JSON.
        pub view: String,
        pub sequence: i32,
        /// When the read that found it began: a read that began earlier is older and
        /// changes nothing.
        pub observed_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use delivery::Model as Delivery;
pub use webhook::Model as Webhook;

impl Webhook {
    pub fn event_list(&self) -> Vec<String> {
        self.events
            .split(',')
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn takes(&self, event: &str) -> bool {
        self.events.split(',').any(|e| e == event)
    }

    pub fn filter(&self) -> Filter {
        self.filter
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default()
    }

    /// Neither paused nor suspended.
    pub fn is_active(&self) -> bool {
        self.paused_at.is_none() && self.suspended_at.is_none()
    }

    /// A change feed: its deliveries are read (`webhookChanges`), never posted.
    pub fn is_feed(&self) -> bool {
        self.url.is_none()
    }
}

impl Delivery {
    pub fn change_list(&self) -> Vec<String> {
        self.changes
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// A fresh id with `prefix` (`whk`, `whd`, …).
pub fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..20]
    )
}

pub async fn webhook<C: ConnectionTrait>(db: &C, id: &str) -> ApiResult<Option<Webhook>> {
    Ok(webhook::Entity::find_by_id(id.to_owned()).one(db).await?)
}

/// Webhooks, newest first: all of them, or one organisation's (`Some(None)`: the
/// company's own).
pub async fn webhooks<C: ConnectionTrait>(
    db: &C,
    organisation: Option<Option<&str>>,
) -> ApiResult<Vec<Webhook>> {
    use webhook::Column as W;
    let mut select = webhook::Entity::find()
        .order_by_desc(W::CreatedAt)
        .order_by_asc(W::Id);
    select = match organisation {
        None => select,
        Some(Some(partner)) => select.filter(W::PartnerId.eq(partner)),
        Some(None) => select.filter(W::PartnerId.is_null()),
    };
    Ok(select.all(db).await?)
}

/// The active webhooks that take an event about records of `prefix` (`order`).
pub async fn listening<C: ConnectionTrait>(db: &C, prefix: &str) -> ApiResult<Vec<Webhook>> {
    use webhook::Column as W;
    let all = webhook::Entity::find()
        .filter(W::PausedAt.is_null())
        .filter(W::SuspendedAt.is_null())
        .filter(W::Events.contains(format!("{prefix}.")))
        .order_by_asc(W::Id)
        .all(db)
        .await?;
    Ok(all
        .into_iter()
        .filter(|w| {
            w.event_list()
                .iter()
                .any(|e| e.split_once('.').is_some_and(|(p, _)| p == prefix))
        })
        .collect())
}

pub async fn delivery<C: ConnectionTrait>(db: &C, id: &str) -> ApiResult<Option<Delivery>> {
    Ok(delivery::Entity::find_by_id(id.to_owned()).one(db).await?)
}

pub async fn delivery_of_trigger<C: ConnectionTrait>(
    db: &C,
    webhook_id: &str,
    trigger: &str,
) -> ApiResult<Option<Delivery>> {
    use delivery::Column as D;
    Ok(delivery::Entity::find()
        .filter(D::WebhookId.eq(webhook_id))
        .filter(D::Trigger.eq(trigger))
        .one(db)
        .await?)
}

/// A webhook's deliveries, newest first (in `state`, when given), at most `first`,
/// before the delivery `before` (a page's last id) when given.
pub async fn deliveries<C: ConnectionTrait>(
    db: &C,
    webhook_id: &str,
    state: Option<WebhookDeliveryState>,
    first: u64,
    before: Option<&Delivery>,
) -> ApiResult<Vec<Delivery>> {
    use delivery::Column as D;
    let mut select = delivery::Entity::find().filter(D::WebhookId.eq(webhook_id));
    if let Some(state) = state {
        select = select.filter(D::State.eq(state));
    }
    if let Some(before) = before {
        select = select.filter(D::Position.lt(before.position));
    }
    Ok(select
        .order_by_desc(D::Position)
        .limit(first)
        .all(db)
        .await?)
}

/// A webhook's deliveries after `position`, oldest first, at most `first`: its change feed.
pub async fn changes<C: ConnectionTrait>(
    db: &C,
    webhook_id: &str,
    position: i64,
    first: u64,
) -> ApiResult<Vec<Delivery>> {
    use delivery::Column as D;
    Ok(delivery::Entity::find()
        .filter(D::WebhookId.eq(webhook_id))
        .filter(D::Position.gt(position))
        .order_by_asc(D::Position)
        .limit(first)
        .all(db)
        .await?)
}

/// The position the next delivery of a webhook takes. Call it inside the transaction that
/// inserts the delivery, after taking the webhook's section
/// (`db::serialize_section(txn, &section(id))`), so that positions follow commit order.
pub async fn next_position<C: ConnectionTrait>(db: &C, webhook_id: &str) -> ApiResult<i64> {
    use delivery::Column as D;
    let last: Option<i64> = delivery::Entity::find()
        .select_only()
        .column(D::Position)
        .filter(D::WebhookId.eq(webhook_id))
        .order_by_desc(D::Position)
        .limit(1)
        .into_tuple()
        .one(db)
        .await?;
    Ok(last.unwrap_or(0) + 1)
}

/// The section (`db::serialize_section`) one webhook's deliveries are recorded under.
pub fn section(webhook_id: &str) -> String {
    format!("webhook:{webhook_id}")
}

/// How many of a webhook's deliveries are in `state`.
pub async fn count_in<C: ConnectionTrait>(
    db: &C,
    webhook_id: &str,
    state: WebhookDeliveryState,
) -> ApiResult<u64> {
    use delivery::Column as D;
    use sea_orm::PaginatorTrait;
    Ok(delivery::Entity::find()
        .filter(D::WebhookId.eq(webhook_id))
        .filter(D::State.eq(state))
        .count(db)
        .await?)
}

pub async fn attempts<C: ConnectionTrait>(
    db: &C,
    delivery_id: &str,
) -> ApiResult<Vec<attempt::Model>> {
    use attempt::Column as A;
    Ok(attempt::Entity::find()
        .filter(A::DeliveryId.eq(delivery_id))
        .order_by_asc(A::Attempt)
        .order_by_asc(A::At)
        .all(db)
        .await?)
}

/// Removes a webhook with its deliveries, their attempts and its views (jobs still
/// scheduled for it find no webhook and end).
pub async fn delete<C: ConnectionTrait>(db: &C, id: &str) -> ApiResult<()> {
    use delivery::Column as D;
    let deliveries = sea_orm::sea_query::Query::select()
        .column(D::Id)
        .from(delivery::Entity)
        .and_where(D::WebhookId.eq(id))
        .to_owned();
    attempt::Entity::delete_many()
        .filter(attempt::Column::DeliveryId.in_subquery(deliveries))
        .exec(db)
        .await?;
    delivery::Entity::delete_many()
        .filter(D::WebhookId.eq(id))
        .exec(db)
        .await?;
    view::Entity::delete_many()
        .filter(view::Column::WebhookId.eq(id))
        .exec(db)
        .await?;
    webhook::Entity::delete_by_id(id.to_owned())
        .exec(db)
        .await?;
    Ok(())
}

/// Marks a webhook suspended (its principal stopped), once.
pub async fn suspend<C: ConnectionTrait>(db: &C, id: &str, reason: &str) -> ApiResult<()> {
    use webhook::Column as W;
    let now = clock::now();
    webhook::Entity::update_many()
        .col_expr(W::SuspendedAt, Expr::value(now))
        .col_expr(W::SuspendedReason, Expr::value(reason))
        .col_expr(W::UpdatedAt, Expr::value(now))
        .filter(W::Id.eq(id))
        .filter(W::SuspendedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// A new delivery of `webhook_id` at `position`, decided on `trigger`, not yet attempted.
pub struct NewDelivery {
    pub webhook_id: String,
    pub position: i64,
    pub trigger: String,
    pub event: String,
    /// The record's type and id (none: a ping).
    pub record: Option<(String, String)>,
    pub sequence: i32,
    pub changes: Vec<String>,
    pub state: WebhookDeliveryState,
}

impl NewDelivery {
    /// Its row, made at `now` (delivered then, when it is born delivered: a change feed's).
    pub fn row(self, now: DateTime<Utc>) -> delivery::ActiveModel {
        let (record_type, record_id) = self.record.unzip();
        delivery::ActiveModel {
            id: Set(new_id("whd")),
            webhook_id: Set(self.webhook_id),
            position: Set(self.position),
            trigger: Set(self.trigger),
            event: Set(self.event),
            record_type: Set(record_type),
            record_id: Set(record_id),
            sequence: Set(self.sequence),
            changes: Set((!self.changes.is_empty()).then(|| self.changes.join(","))),
            state: Set(self.state),
            attempts: Set(0),
            last_status: Set(None),
            last_error: Set(None),
            next_attempt_at: Set(None),
            body: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            delivered_at: Set((self.state == WebhookDeliveryState::Delivered).then_some(now)),
        }
    }
}

/// Records one attempt of a delivery and what it left the delivery as.
pub async fn record_attempt<C: ConnectionTrait>(
    db: &C,
    delivery: &Delivery,
    outcome: Attempted,
) -> ApiResult<Delivery> {
    attempt::ActiveModel {
        id: Set(new_id("wha")),
        delivery_id: Set(delivery.id.clone()),
        attempt: Set(delivery.attempts + 1),
        at: Set(outcome.at),
        status: Set(outcome.status),
        error: Set(outcome.error.clone()),
        duration_ms: Set(outcome.duration_ms),
    }
    .insert(db)
    .await?;
    let mut row: delivery::ActiveModel = delivery.clone().into();
    row.attempts = Set(delivery.attempts + 1);
    row.last_status = Set(outcome.status);
    row.last_error = Set(outcome.error);
    row.body = Set(Some(outcome.body));
    row.state = Set(outcome.state);
    row.next_attempt_at = Set(outcome.next_attempt_at);
    row.updated_at = Set(clock::now());
    if outcome.state == WebhookDeliveryState::Delivered {
        row.delivered_at = Set(Some(outcome.at));
    }
    Ok(row.update(db).await?)
}

/// What one attempt did.
pub struct Attempted {
    pub at: DateTime<Utc>,
    pub status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
    pub body: String,
    pub state: WebhookDeliveryState,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Moves a delivery to `state` (withdrawn, dead, or back to pending for a replay).
pub async fn set_state<C: ConnectionTrait>(
    db: &C,
    delivery: &Delivery,
    state: WebhookDeliveryState,
    error: Option<String>,
) -> ApiResult<Delivery> {
    let mut row: delivery::ActiveModel = delivery.clone().into();
    row.state = Set(state);
    if error.is_some() {
        row.last_error = Set(error);
    }
    row.next_attempt_at = Set(None);
    row.updated_at = Set(clock::now());
    Ok(row.update(db).await?)
}

/// A webhook that must exist (`NOT_FOUND` otherwise).
pub async fn existing<C: ConnectionTrait>(db: &C, id: &str) -> ApiResult<Webhook> {
    webhook(db, id).await?.ok_or(ApiError::NotFound)
}
