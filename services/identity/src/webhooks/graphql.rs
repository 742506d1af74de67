//! The webhooks API: an admin manages every organisation's webhooks, a partner admin its
//! own organisation's (the policy's `Webhook` rules, asked as for API keys); another
//! organisation's webhook answers exactly as a missing one.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use crm_service_common::access::Action;
use crm_service_common::principal::Principal;
use crm_service_common::{ApiError, ApiResult, clock};
use sea_orm::{ActiveModelTrait, ActiveValue::Set};

use super::WebhookSettings;
use super::catalog::{self, PING};
use super::consumer::Listening;
use super::deliver::{self, DeliverJob};
use super::domain::{self, Condition, Filter};
use super::store::{self, Delivery, Webhook, WebhookDeliveryState};
use crate::graphql::{
    ManagedScope, Partner, bound_organisation, check_role, directory, managed_scope, partner,
};

/// The type the policy's rules name.
const TYPE: &str = "Webhook";

/// A webhook: where deliveries go, which events it takes, and whose view they carry.
pub struct WebhookNode(Webhook);

/// A filter condition: the value at `field` of the record (as the webhook's principal sees
/// it) is one of `values`; `changed` matches the fields an update changed.
#[derive(SimpleObject, Clone)]
pub struct WebhookCondition {
    pub field: String,
    pub values: Vec<String>,
}

#[derive(InputObject)]
pub struct WebhookConditionInput {
    /// A field of the record or a dotted path into it (`status`, `lines.productId`,
    /// `shipments.status`), or `changed`.
    pub field: String,
    pub values: Vec<String>,
}

/// Whether a webhook sends.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum WebhookStatus {
    Active,
    /// Paused by its managers: nothing is scheduled for it.
    Paused,
    /// Its principal stopped (its owner was disabled or lost the right): nothing is sent
    /// until someone who may takes it over.
    Suspended,
}

#[Object(name = "Webhook")]
impl WebhookNode {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Where deliveries are posted; null for a change feed (read with `webhookChanges`).
    async fn url(&self) -> Option<&str> {
        self.0.url.as_deref()
    }
    /// A change feed: its deliveries are read with `webhookChanges`, never posted.
    async fn change_feed(&self) -> bool {
        self.0.is_feed()
    }
    /// The events it takes (`webhookEventTypes`); a ping is always sent.
    async fn events(&self) -> Vec<String> {
        self.0.event_list()
    }
    /// Every condition must hold for a delivery to be sent (none: all are).
    async fn filter(&self) -> Vec<WebhookCondition> {
        self.0
            .filter()
            .0
            .into_iter()
            .map(|c| WebhookCondition {
                field: c.field,
                values: c.values,
            })
            .collect()
    }
    /// The role its deliveries read as, in `organization` (none: the company).
    async fn role(&self) -> &str {
        &self.0.role
    }
    async fn organization(&self) -> Option<Partner> {
        partner(self.0.partner_id.clone())
    }
    /// Attempts per delivery before it moves to the dead-letter list.
    async fn max_attempts(&self) -> i32 {
        self.0.max_attempts
    }
    async fn status(&self) -> WebhookStatus {
        match (self.0.paused_at, self.0.suspended_at) {
            (Some(_), _) => WebhookStatus::Paused,
            (None, Some(_)) => WebhookStatus::Suspended,
            (None, None) => WebhookStatus::Active,
        }
    }
    async fn suspended_reason(&self) -> Option<&str> {
        self.0.suspended_reason.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// How many deliveries gave up after their last attempt (replayable).
    async fn dead_deliveries(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        let db = &directory(ctx)?.db;
        Ok(store::count_in(db, &self.0.id, WebhookDeliveryState::Dead).await?)
    }
    /// Its delivery history, newest first: at most `first` (1–100), older than the
    /// delivery `after` when given, in `state` when given.
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<ID>,
        state: Option<WebhookDeliveryState>,
    ) -> async_graphql::Result<Vec<WebhookDeliveryNode>> {
        let db = &directory(ctx)?.db;
        let before = match &after {
            Some(id) => Some(
                store::delivery(db, id)
                    .await?
                    .filter(|d| d.webhook_id == self.0.id)
                    .ok_or_else(|| {
                        ApiError::validation("after", "is not a delivery of this webhook")
                    })?,
            ),
            None => None,
        };
        Ok(store::deliveries(
            db,
            &self.0.id,
            state,
            first.clamp(1, 100) as u64,
            before.as_ref(),
        )
        .await?
        .into_iter()
        .map(WebhookDeliveryNode)
        .collect())
    }
}

/// One delivery: what it was about, and how its attempts went.
pub struct WebhookDeliveryNode(Delivery);

/// One attempt of a delivery.
#[derive(SimpleObject)]
pub struct WebhookAttempt {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    /// The endpoint's HTTP status (none: it did not answer).
    pub status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
}

#[Object(name = "WebhookDelivery")]
impl WebhookDeliveryNode {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn webhook_id(&self) -> ID {
        ID(self.0.webhook_id.clone())
    }
    /// Its place in the webhook's order of deliveries (their decisions' commit order).
    async fn position(&self) -> i64 {
        self.0.position
    }
    /// `order.updated`, `webhook.ping`, …
    async fn event(&self) -> &str {
        &self.0.event
    }
    async fn record_type(&self) -> Option<&str> {
        self.0.record_type.as_deref()
    }
    async fn record_id(&self) -> Option<ID> {
        self.0.record_id.clone().map(ID)
    }
    /// The change's place among the record's changes the webhook was told of.
    async fn sequence(&self) -> i32 {
        self.0.sequence
    }
    /// The top-level fields an update changed.
    async fn changes(&self) -> Vec<String> {
        self.0.change_list()
    }
    async fn state(&self) -> WebhookDeliveryState {
        self.0.state
    }
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    async fn last_status(&self) -> Option<i32> {
        self.0.last_status
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// When the next attempt is due (pending deliveries that failed before).
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_attempt_at
    }
    /// The body of the last attempt, as it was sent.
    async fn body(&self) -> Option<&str> {
        self.0.body.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
    /// Every attempt, first first.
    async fn attempt_history(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<WebhookAttempt>> {
        let db = &directory(ctx)?.db;
        Ok(store::attempts(db, &self.0.id)
            .await?
            .into_iter()
            .map(|a| WebhookAttempt {
                attempt: a.attempt,
                at: a.at,
                status: a.status,
                error: a.error,
                duration_ms: a.duration_ms,
            })
            .collect())
    }
}

/// A page of a webhook's changes.
#[derive(SimpleObject)]
pub struct WebhookChanges {
    pub entries: Vec<WebhookDeliveryNode>,
    /// Where the next page starts.
    pub cursor: String,
    /// More changes follow this page now.
    pub has_more: bool,
}

/// An event a webhook may take.
#[derive(SimpleObject)]
pub struct WebhookEventType {
    pub name: String,
    pub description: String,
}

/// A webhook with its signing secret: shown when it is made and when it is rotated,
/// never otherwise.
#[derive(SimpleObject)]
pub struct CreatedWebhook {
    pub webhook: WebhookNode,
    /// The HMAC-SHA256 key of the `CRM-Signature` header.
    pub secret: String,
}

#[derive(InputObject)]
pub struct CreateWebhookInput {
    pub name: String,
    /// An `http` or `https` URL on the public internet (or a network the deployment
    /// allows). Left out: a change feed, whose deliveries are read with `webhookChanges`
    /// instead of posted.
    pub url: Option<String>,
    /// The events it takes (`webhookEventTypes`).
    pub events: Vec<String>,
    pub filter: Option<Vec<WebhookConditionInput>>,
    /// The role its deliveries read as: a department role (the company's webhooks) or a
    /// partner role (a partner's).
    pub role: String,
    /// The organisation it reads for; a partner admin's webhooks are always its own
    /// partner's.
    pub partner_id: Option<ID>,
    /// Attempts per delivery, 1–20 (8 when left out).
    pub max_attempts: Option<i32>,
}

/// What to change; what is left out stays.
#[derive(InputObject)]
pub struct UpdateWebhookInput {
    pub name: Option<String>,
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// The whole new filter (an empty list: none).
    pub filter: Option<Vec<WebhookConditionInput>>,
    pub max_attempts: Option<i32>,
    /// Pause (nothing is scheduled while paused) or resume.
    pub paused: Option<bool>,
}

fn settings<'a>(ctx: &Context<'a>) -> ApiResult<&'a WebhookSettings> {
    ctx.data::<WebhookSettings>()
        .map_err(|_| ApiError::internal("the identity subgraph has no webhook settings"))
}

/// Wakes this process's delivery runner (when it runs here) after a delivery was
/// scheduled: a ping or a replay goes out at once instead of at the runner's next poll.
pub struct Wake(pub std::sync::Arc<tokio::sync::Notify>);

pub(crate) fn wake_runner(ctx: &Context<'_>) {
    if let Ok(Wake(wake)) = ctx.data::<Wake>() {
        wake.notify_one();
    }
}

/// A change here is heard by this process's consumers at once.
async fn listeners_changed(ctx: &Context<'_>) {
    if let (Ok(listening), Ok(directory)) = (ctx.data::<Listening>(), directory(ctx)) {
        listening.refresh(&directory.db).await.ok();
    }
}

/// The webhook `id` if the caller manages it for `action` (`NOT_FOUND` otherwise, as for
/// one that does not exist).
async fn managed(ctx: &Context<'_>, id: &str, action: Action) -> ApiResult<Webhook> {
    let scope = managed_scope(&Principal::of(ctx), TYPE, action).await?;
    let webhook = store::existing(&directory(ctx)?.db, id).await?;
    match scope {
        ManagedScope::All => Ok(webhook),
        ManagedScope::Partner(own) if webhook.partner_id.as_deref() == Some(own.as_str()) => {
            Ok(webhook)
        }
        ManagedScope::Partner(_) => Err(ApiError::NotFound),
    }
}

fn conditions(raw: Vec<WebhookConditionInput>) -> Vec<Condition> {
    raw.into_iter()
        .map(|c| Condition {
            field: c.field,
            values: c.values,
        })
        .collect()
}

fn filter_json(filter: &Filter) -> ApiResult<Option<String>> {
    if filter.0.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(filter)
        .map(Some)
        .map_err(ApiError::internal)
}

/// A signing secret: `whsec_` and 32 random bytes.
fn new_secret() -> String {
    format!("whsec_{}", crate::store::secret())
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// The webhooks I manage, newest first: every organisation's (an admin) or my own
    /// organisation's (a partner admin).
    async fn webhooks(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WebhookNode>> {
        let organisation = match managed_scope(&Principal::of(ctx), TYPE, Action::Read).await? {
            ManagedScope::All => None,
            ManagedScope::Partner(own) => Some(own),
        };
        let db = &directory(ctx)?.db;
        Ok(store::webhooks(db, organisation.as_deref().map(Some))
            .await?
            .into_iter()
            .map(WebhookNode)
            .collect())
    }

    /// One webhook I manage (null: none such, or not mine to manage).
    async fn webhook(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<WebhookNode>> {
        match managed(ctx, &id, Action::Read).await {
            Ok(webhook) => Ok(Some(WebhookNode(webhook))),
            Err(ApiError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// One delivery of a webhook I manage (null otherwise).
    async fn webhook_delivery(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<WebhookDeliveryNode>> {
        // The right first: whether a delivery exists is not for a caller who manages none.
        managed_scope(&Principal::of(ctx), TYPE, Action::Read).await?;
        let db = &directory(ctx)?.db;
        let Some(delivery) = store::delivery(db, &id).await? else {
            return Ok(None);
        };
        match managed(ctx, &delivery.webhook_id, Action::Read).await {
            Ok(_) => Ok(Some(WebhookDeliveryNode(delivery))),
            Err(ApiError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A webhook's changes in the order they were decided, oldest first, after the cursor
    /// `after` (from the start when left out), at most `first` (1–500): how an integrator
    /// follows its slice incrementally. Each entry names the record, whether it was added
    /// to, changed in or removed from the principal's view (with the fields that changed),
    /// and the record's sequence; read the records themselves with the usual queries. The
    /// answer's `cursor` continues where this page ended (keep it; a page with `hasMore`
    /// false is the end for now).
    async fn webhook_changes(
        &self,
        ctx: &Context<'_>,
        webhook_id: ID,
        after: Option<String>,
        #[graphql(default = 100)] first: i32,
    ) -> async_graphql::Result<WebhookChanges> {
        let webhook = managed(ctx, &webhook_id, Action::Read).await?;
        let position = match &after {
            Some(cursor) => feed_position(&webhook.id, cursor)?,
            None => 0,
        };
        let first = first.clamp(1, 500) as u64;
        let db = &directory(ctx)?.db;
        let mut entries = store::changes(db, &webhook.id, position, first + 1).await?;
        let has_more = entries.len() as u64 > first;
        entries.truncate(first as usize);
        let last = entries.last().map_or(position, |d| d.position);
        Ok(WebhookChanges {
            entries: entries.into_iter().map(WebhookDeliveryNode).collect(),
            cursor: feed_cursor(&webhook.id, last),
            has_more,
        })
    }

    /// The events a webhook may take, with what each means.
    async fn webhook_event_types(&self) -> Vec<WebhookEventType> {
        catalog::event_types()
            .into_iter()
            .map(|(name, description)| WebhookEventType { name, description })
            .collect()
    }
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Makes a webhook. Its signing secret is in the answer (and again only when rotated).
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookInput,
    ) -> async_graphql::Result<CreatedWebhook> {
        let principal = Principal::of(ctx);
        let scope = managed_scope(&principal, TYPE, Action::Create).await?;
        let partner_id = bound_organisation(scope, input.partner_id)?;
        check_role(partner_id.is_some(), &input.role)?;
        let name = domain::name("input.name", &input.name)?;
        let url = match &input.url {
            Some(url) => Some(domain::endpoint(
                "input.url",
                url,
                &settings(ctx)?.allowed_networks,
            )?),
            None => None,
        };
        let events = domain::events("input.events", &input.events)?;
        let filter = Filter::parse(
            "input.filter",
            conditions(input.filter.unwrap_or_default()),
            &domain::kinds_of(&events),
        )?;
        let max_attempts = domain::max_attempts("input.maxAttempts", input.max_attempts)?;
        let directory = directory(ctx)?;
        // A key's webhook is answered for by the person who answers for the key.
        let owner = match directory.api_key(&principal.subject).await? {
            Some(key) => key.created_by,
            None => principal.subject.clone(),
        };
        let db = &directory.db;
        let txn = crm_service_common::db::begin_write(db).await?;
        crm_service_common::db::serialize_section(
            &txn,
            &format!("webhooks-of:{}", partner_id.as_deref().unwrap_or("")),
        )
        .await?;
        if store::webhooks(&txn, Some(partner_id.as_deref()))
            .await?
            .len()
            >= domain::MAX_WEBHOOKS_PER_ORGANISATION
        {
            return Err(ApiError::InvalidState {
                message: format!(
                    "an organisation keeps at most {} webhooks; delete one first",
                    domain::MAX_WEBHOOKS_PER_ORGANISATION
                ),
            }
            .into());
        }
        let now = clock::now();
        let secret = new_secret();
        let webhook = store::webhook::ActiveModel {
            id: Set(store::new_id("whk")),
            name: Set(name),
            url: Set(url),
            events: Set(events.join(",")),
            filter: Set(filter_json(&filter)?),
            secret: Set(secret.clone()),
            role: Set(input.role),
            partner_id: Set(partner_id),
            owner: Set(owner),
            max_attempts: Set(max_attempts),
            created_at: Set(now),
            updated_at: Set(now),
            paused_at: Set(None),
            suspended_at: Set(None),
            suspended_reason: Set(None),
        }
        .insert(&txn)
        .await
        .map_err(ApiError::from)?;
        txn.commit().await.map_err(ApiError::from)?;
        listeners_changed(ctx).await;
        Ok(CreatedWebhook {
            webhook: WebhookNode(webhook),
            secret,
        })
    }

    /// Changes a webhook's settings, or pauses and resumes it.
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateWebhookInput,
    ) -> async_graphql::Result<WebhookNode> {
        let webhook = managed(ctx, &id, Action::Update).await?;
        let mut row: store::webhook::ActiveModel = webhook.clone().into();
        if let Some(name) = &input.name {
            row.name = Set(domain::name("input.name", name)?);
        }
        if let Some(url) = &input.url {
            if webhook.is_feed() {
                return Err(ApiError::validation(
                    "input.url",
                    "a change feed is read, not posted: make a webhook with a URL instead",
                )
                .into());
            }
            row.url = Set(Some(domain::endpoint(
                "input.url",
                url,
                &settings(ctx)?.allowed_networks,
            )?));
        }
        let events = match &input.events {
            Some(events) => domain::events("input.events", events)?,
            None => webhook.event_list(),
        };
        row.events = Set(events.join(","));
        let filter = match input.filter {
            Some(raw) => {
                Filter::parse("input.filter", conditions(raw), &domain::kinds_of(&events))?
            }
            None => Filter::parse(
                "input.filter",
                webhook.filter().0,
                &domain::kinds_of(&events),
            )
            .map_err(|_| {
                ApiError::validation(
                    "input.filter",
                    "the filter names fields of events no longer taken; send a new filter",
                )
            })?,
        };
        row.filter = Set(filter_json(&filter)?);
        if input.max_attempts.is_some() {
            row.max_attempts = Set(domain::max_attempts(
                "input.maxAttempts",
                input.max_attempts,
            )?);
        }
        let now = clock::now();
        match input.paused {
            Some(true) if webhook.paused_at.is_none() => row.paused_at = Set(Some(now)),
            Some(false) => row.paused_at = Set(None),
            _ => {}
        }
        row.updated_at = Set(now);
        let webhook = row
            .update(&directory(ctx)?.db)
            .await
            .map_err(ApiError::from)?;
        listeners_changed(ctx).await;
        Ok(WebhookNode(webhook))
    }

    /// A new signing secret (the old one stops signing at once).
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<CreatedWebhook> {
        let webhook = managed(ctx, &id, Action::Update).await?;
        let secret = new_secret();
        let mut row: store::webhook::ActiveModel = webhook.into();
        row.secret = Set(secret.clone());
        row.updated_at = Set(clock::now());
        let webhook = row
            .update(&directory(ctx)?.db)
            .await
            .map_err(ApiError::from)?;
        Ok(CreatedWebhook {
            webhook: WebhookNode(webhook),
            secret,
        })
    }

    /// Deletes a webhook with its delivery history; what was still to be sent is not.
    async fn delete_webhook(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let webhook = managed(ctx, &id, Action::Archive).await?;
        let db = &directory(ctx)?.db;
        let txn = crm_service_common::db::begin_write(db).await?;
        store::delete(&txn, &webhook.id).await?;
        txn.commit().await.map_err(ApiError::from)?;
        listeners_changed(ctx).await;
        Ok(id)
    }

    /// Makes the caller the owner of a webhook of an organisation it manages, so that it
    /// keeps sending after its owner left or lost the right (a suspended webhook resumes).
    async fn take_over_webhook(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<WebhookNode> {
        let who = Principal::of(ctx);
        let webhook = managed(ctx, &id, Action::Update).await?;
        let directory = directory(ctx)?;
        let owner = match directory.api_key(&who.subject).await? {
            Some(key) => key.created_by,
            None => who.subject.clone(),
        };
        let mut row: store::webhook::ActiveModel = webhook.into();
        row.owner = Set(owner);
        row.suspended_at = Set(None);
        row.suspended_reason = Set(None);
        row.updated_at = Set(clock::now());
        let webhook = row.update(&directory.db).await.map_err(ApiError::from)?;
        listeners_changed(ctx).await;
        Ok(WebhookNode(webhook))
    }

    /// Sends a test delivery (`webhook.ping`) now.
    async fn ping_webhook(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<WebhookDeliveryNode> {
        let webhook = managed(ctx, &id, Action::Update).await?;
        not_a_feed(&webhook, "ping")?;
        let db = &directory(ctx)?.db;
        let now = clock::now();
        let trigger = format!("ping:{}", uuid::Uuid::new_v4().simple());
        let txn = crm_service_common::db::begin_write(db).await?;
        crm_service_common::db::serialize_section(&txn, &store::section(&webhook.id)).await?;
        let delivery = store::NewDelivery {
            webhook_id: webhook.id.clone(),
            position: store::next_position(&txn, &webhook.id).await?,
            trigger: trigger.clone(),
            event: PING.to_owned(),
            record: None,
            sequence: 0,
            changes: Vec::new(),
            state: WebhookDeliveryState::Pending,
        }
        .row(now)
        .insert(&txn)
        .await
        .map_err(ApiError::from)?;
        deliver::schedule(
            &txn,
            &webhook,
            DeliverJob {
                webhook_id: webhook.id.clone(),
                trigger,
                record_type: None,
                record_id: None,
            },
        )
        .await?;
        txn.commit().await.map_err(ApiError::from)?;
        wake_runner(ctx);
        Ok(WebhookDeliveryNode(delivery))
    }

    /// Sends a delivery again from its first attempt: a dead one (the dead-letter list),
    /// or any other the endpoint asks for again. What is sent is the record as the
    /// webhook's principal sees it now.
    async fn replay_webhook_delivery(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<WebhookDeliveryNode> {
        managed_scope(&Principal::of(ctx), TYPE, Action::Update).await?;
        let db = &directory(ctx)?.db;
        let delivery = store::delivery(db, &id).await?.ok_or(ApiError::NotFound)?;
        let webhook = managed(ctx, &delivery.webhook_id, Action::Update).await?;
        not_a_feed(&webhook, "replay")?;
        let txn = crm_service_common::db::begin_write(db).await?;
        let delivery = replay(&txn, &webhook, &delivery).await?;
        txn.commit().await.map_err(ApiError::from)?;
        wake_runner(ctx);
        Ok(WebhookDeliveryNode(delivery))
    }

    /// Replays every dead delivery of a webhook; answers how many.
    async fn replay_dead_webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        webhook_id: ID,
    ) -> async_graphql::Result<i32> {
        let webhook = managed(ctx, &webhook_id, Action::Update).await?;
        not_a_feed(&webhook, "replay")?;
        let db = &directory(ctx)?.db;
        let txn = crm_service_common::db::begin_write(db).await?;
        let dead = store::deliveries(
            &txn,
            &webhook.id,
            Some(WebhookDeliveryState::Dead),
            10_000,
            None,
        )
        .await?;
        for delivery in &dead {
            replay(&txn, &webhook, delivery).await?;
        }
        txn.commit().await.map_err(ApiError::from)?;
        wake_runner(ctx);
        Ok(i32::try_from(dead.len()).unwrap_or(i32::MAX))
    }
}

/// Refuses `what` (a ping, a replay) for a change feed, which is read, never posted.
fn not_a_feed(webhook: &Webhook, what: &str) -> ApiResult<()> {
    match webhook.is_feed() {
        true => Err(ApiError::InvalidState {
            message: format!(
                "a change feed is read with webhookChanges, not posted: nothing to {what}"
            ),
        }),
        false => Ok(()),
    }
}

/// A change feed's cursor: the webhook and the position read up to, opaque to clients.
fn feed_cursor(webhook_id: &str, position: i64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("whc:{webhook_id}:{position}"))
}

/// The position a cursor of `webhook_id`'s feed was read up to.
fn feed_position(webhook_id: &str, cursor: &str) -> ApiResult<i64> {
    use base64::Engine as _;
    let invalid = || ApiError::validation("after", "is not a cursor of this webhook's changes");
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(invalid)?;
    let rest = text.strip_prefix("whc:").ok_or_else(invalid)?;
    let (id, position) = rest.rsplit_once(':').ok_or_else(invalid)?;
    if id != webhook_id {
        return Err(invalid());
    }
    position
        .parse::<i64>()
        .ok()
        .filter(|p| *p >= 0)
        .ok_or_else(invalid)
}

/// Puts a delivery back to be sent from its first attempt.
async fn replay<C: sea_orm::ConnectionTrait>(
    db: &C,
    webhook: &Webhook,
    delivery: &Delivery,
) -> ApiResult<Delivery> {
    if delivery.state == WebhookDeliveryState::Pending && delivery.attempts == 0 {
        return Ok(delivery.clone()); // not sent yet: nothing to replay
    }
    let delivery = store::set_state(db, delivery, WebhookDeliveryState::Pending, None).await?;
    deliver::schedule(
        db,
        webhook,
        DeliverJob {
            webhook_id: webhook.id.clone(),
            trigger: delivery.trigger.clone(),
            record_type: delivery.record_type.clone(),
            record_id: delivery.record_id.clone(),
        },
    )
    .await?;
    Ok(delivery)
}
