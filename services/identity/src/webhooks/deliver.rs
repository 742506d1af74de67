//! Deciding and sending deliveries: the job runner's `webhook.deliver` task.
//!
//! One job per webhook and trigger (an event that may have changed a record, or a ping).
//! Its first run *decides*: it reads the record as the webhook's principal (through the
//! gateway, with the same policy as any request of that principal), compares that view
//! with the last one the webhook was found to have, and records a delivery only when the
//! view changed and the webhook takes that event and its filter passes. Every run then
//! *sends*: it reads the record again (so what is sent is what the principal may read
//! now, and a record that left its view is not sent), signs the body and posts it. A
//! failed attempt is retried by the runner with exponential backoff and jitter; after the
//! last one the delivery is dead (the dead-letter list), and can be replayed.

use std::collections::HashMap;
use std::sync::Arc;

use crm_contract::internal_auth::Caller;
use crm_service_common::jobs::{self, Job, NewJob, Outcome, Task};
use crm_service_common::subgraph::BoxFuture;
use crm_service_common::{ApiError, ApiResult, clock};
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::catalog::{self, Change, PING, RecordKind};
use super::domain::changed_fields;
use super::outbound::{Envelope, Outbound};
use super::store::{self, Attempted, Delivery, Webhook, WebhookDeliveryState, view};
use crate::store::{Binding, Directory};

/// The job kind that decides and sends one webhook's delivery of one trigger.
pub const DELIVER_JOB: &str = "webhook.deliver";

/// Reads through the gateway as a caller: the answer (`data` and `errors`) of `query` with
/// `variables`, planned and authorized as any request of that caller is. The process that
/// runs deliveries gives its gateway's engine.
pub trait Reader: Send + Sync + 'static {
    fn read<'a>(
        &'a self,
        caller: &'a Caller,
        query: &'a str,
        variables: Value,
    ) -> BoxFuture<'a, anyhow::Result<Value>>;
}

/// A delivery job's payload.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliverJob {
    pub webhook_id: String,
    pub trigger: String,
    pub record_type: Option<String>,
    pub record_id: Option<String>,
}

/// Schedules the job that decides (and sends) `webhook`'s delivery of `trigger`, on `db`
/// (inside the transaction that learnt of it). Scheduling the same trigger again (a
/// replay) runs it again from its first attempt.
pub async fn schedule<C: ConnectionTrait>(
    db: &C,
    webhook: &Webhook,
    job: DeliverJob,
) -> ApiResult<()> {
    let key = format!("webhook:{}:{}", job.webhook_id, job.trigger);
    let mut new = NewJob::new(
        DELIVER_JOB,
        key,
        clock::now(),
        serde_json::to_value(&job).map_err(ApiError::internal)?,
    );
    new.max_attempts = webhook.max_attempts;
    jobs::schedule(db, new).await
}

/// The `webhook.deliver` task.
pub struct Deliverer {
    pub db: DatabaseConnection,
    pub directory: Directory,
    pub reader: Arc<dyn Reader>,
    pub outbound: Outbound,
    /// One decision at a time per webhook and record in this process (its read included):
    /// concurrent attempts of two triggers of one record would otherwise read in one order
    /// and record in the other. Across processes, a read's start time decides instead.
    pub deciding: DecisionLocks,
}

/// Locks by webhook and record, dropped when nobody holds them.
#[derive(Default)]
pub struct DecisionLocks(
    std::sync::Mutex<HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>>,
);

impl DecisionLocks {
    async fn lock(&self, key: String) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if locks.len() > 1024 {
                locks.retain(|_, lock| lock.strong_count() > 0);
            }
            match locks.get(&key).and_then(std::sync::Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(key, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

impl Task for Deliverer {
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, ApiResult<Outcome>> {
        Box::pin(self.deliver(job))
    }
}

/// Why a delivery was withdrawn, in the history's words.
const LEFT_VIEW: &str = "the record left the webhook's view before it could be sent";

impl Deliverer {
    async fn deliver(&self, job: &Job) -> ApiResult<Outcome> {
        let task: DeliverJob = job.payload()?;
        let Some(webhook) = store::webhook(&self.db, &task.webhook_id).await? else {
            return Ok(Outcome::Done); // deleted since
        };
        let existing = store::delivery_of_trigger(&self.db, &webhook.id, &task.trigger).await?;
        if existing
            .as_ref()
            .is_some_and(|d| d.state != WebhookDeliveryState::Pending)
        {
            return Ok(Outcome::Done);
        }
        if !webhook.is_active() {
            if let Some(delivery) = existing {
                let why = match webhook.paused_at {
                    Some(_) => "the webhook was paused",
                    None => "the webhook is suspended",
                };
                store::set_state(
                    &self.db,
                    &delivery,
                    WebhookDeliveryState::Cancelled,
                    Some(why.into()),
                )
                .await?;
            }
            return Ok(Outcome::Done);
        }
        let Some(caller) = self.principal(&webhook).await? else {
            let reason = "its owner may no longer grant it (disabled, or without the right to manage webhooks of its organisation)";
            store::suspend(&self.db, &webhook.id, reason).await?;
            if let Some(delivery) = existing {
                store::set_state(
                    &self.db,
                    &delivery,
                    WebhookDeliveryState::Cancelled,
                    Some(format!("the webhook stopped: {reason}")),
                )
                .await?;
            }
            return Ok(Outcome::Done);
        };
        let delivery = match existing {
            Some(delivery) => delivery,
            None => match self.decide(&webhook, &caller, &task).await? {
                Some(delivery) => delivery,
                None => return Ok(Outcome::Done),
            },
        };
        // A change feed's decision is its delivery: it is read, never posted.
        let Some(url) = webhook.url.as_deref() else {
            return Ok(Outcome::Done);
        };
        let Some(data) = self.data_now(&caller, &delivery).await? else {
            store::set_state(
                &self.db,
                &delivery,
                WebhookDeliveryState::Cancelled,
                Some(LEFT_VIEW.into()),
            )
            .await?;
            return Ok(Outcome::Done);
        };
        let body = body(&delivery, data);
        let now = clock::now();
        let posted = self
            .outbound
            .post(
                &Envelope {
                    url,
                    secret: &webhook.secret,
                    webhook_id: &webhook.id,
                    delivery_id: &delivery.id,
                    event: &delivery.event,
                    timestamp: now.timestamp(),
                },
                body.clone(),
            )
            .await;
        let state = match (&posted.error, job.attempts >= job.max_attempts) {
            (None, _) => WebhookDeliveryState::Delivered,
            (Some(_), true) => WebhookDeliveryState::Dead,
            (Some(_), false) => WebhookDeliveryState::Pending,
        };
        store::record_attempt(
            &self.db,
            &delivery,
            Attempted {
                at: now,
                status: posted.status.map(i32::from),
                error: posted.error.clone(),
                duration_ms: i32::try_from(posted.duration.as_millis()).unwrap_or(i32::MAX),
                body,
                state,
                next_attempt_at: (state == WebhookDeliveryState::Pending)
                    .then(|| clock::now() + jobs::backoff(&job.id, job.attempts)),
            },
        )
        .await?;
        match posted.error {
            None => Ok(Outcome::Done),
            Some(error) => Err(ApiError::InvalidState {
                message: format!("delivery {} to {url}: {error}", delivery.id),
            }),
        }
    }

    /// The caller the webhook acts as, or `None` when it stopped.
    async fn principal(&self, webhook: &Webhook) -> ApiResult<Option<Caller>> {
        self.directory
            .binding_caller(Binding {
                ty: "Webhook",
                subject: &webhook.id,
                role: &webhook.role,
                partner_id: webhook.partner_id.as_deref(),
                owner: &webhook.owner,
            })
            .await
    }

    /// Reads one record as `caller`: `None` when it can't see it.
    async fn view(&self, caller: &Caller, kind: &RecordKind, id: &str) -> ApiResult<Option<Value>> {
        let answer = self
            .reader
            .read(caller, kind.document, json!({ "id": id }))
            .await
            .map_err(|e| ApiError::internal(format!("reading {} {id}: {e:#}", kind.type_name)))?;
        // Refusals the policy gives (a record or field out of reach) are part of the
        // view; anything else (a service down) is retried rather than taken for a change.
        let unexpected: Vec<&Value> = answer["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter(|e| {
                        !matches!(
                            e["extensions"]["code"].as_str(),
                            Some("NOT_FOUND" | "FORBIDDEN")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !unexpected.is_empty() {
            return Err(ApiError::internal(format!(
                "reading {} {id}: {}",
                kind.type_name,
                Value::from(unexpected.into_iter().cloned().collect::<Vec<_>>())
            )));
        }
        let record = &answer["data"][kind.root];
        Ok((!record.is_null()).then(|| record.clone()))
    }

    /// Decides whether the trigger makes a delivery: the record's view now against the
    /// last one found, one decision at a time per webhook and record.
    async fn decide(
        &self,
        webhook: &Webhook,
        caller: &Caller,
        task: &DeliverJob,
    ) -> ApiResult<Option<Delivery>> {
        let (Some(record_type), Some(record_id)) = (&task.record_type, &task.record_id) else {
            return Ok(None);
        };
        let Some(kind) = catalog::kind_named(record_type) else {
            return Ok(None);
        };
        let _deciding = self
            .deciding
            .lock(format!("{}:{record_id}", webhook.id))
            .await;
        // Taken before the read: a read that began later sees at least as much.
        let observed_at = clock::now();
        let after = self
            .view(caller, kind, record_id)
            .await?
            .unwrap_or(Value::Null);
        let txn = crm_service_common::db::begin_write(&self.db).await?;
        // One decision at a time per webhook: its views change in order, and its
        // deliveries take positions in commit order (a change feed's cursor).
        crm_service_common::db::serialize_section(&txn, &store::section(&webhook.id)).await?;
        let previous = view::Entity::find_by_id((webhook.id.clone(), record_id.clone()))
            .one(&txn)
            .await?;
        if previous
            .as_ref()
            .is_some_and(|p| p.observed_at > observed_at)
        {
            return Ok(None); // a newer read decided already
        }
        let before = previous
            .as_ref()
            .and_then(|p| serde_json::from_str(&p.view).ok())
            .unwrap_or(Value::Null);
        if before == after {
            return Ok(None);
        }
        let change = match (before.is_null(), after.is_null()) {
            (true, _) => Change::Added,
            (false, false) => Change::Updated,
            (false, true) => Change::Removed,
        };
        let changes = match change {
            Change::Updated => changed_fields(&before, &after),
            Change::Added | Change::Removed => Vec::new(),
        };
        let sequence = previous.as_ref().map_or(0, |p| p.sequence) + 1;
        let now = clock::now();
        let row = view::ActiveModel {
            webhook_id: Set(webhook.id.clone()),
            record_id: Set(record_id.clone()),
            record_type: Set(kind.type_name.to_owned()),
            view: Set(after.to_string()),
            sequence: Set(sequence),
            observed_at: Set(observed_at),
            updated_at: Set(now),
        };
        match previous {
            Some(_) => row.update(&txn).await.map(|_| ())?,
            None => view::Entity::insert(row)
                .exec_without_returning(&txn)
                .await
                .map(|_| ())?,
        }
        let event = catalog::event_name(kind, change);
        let seen = if change == Change::Removed {
            &before
        } else {
            &after
        };
        let delivery = if webhook.takes(&event) && webhook.filter().matches(seen, &changes) {
            // A change feed's entry is delivered once it is recorded.
            let state = match webhook.is_feed() {
                true => WebhookDeliveryState::Delivered,
                false => WebhookDeliveryState::Pending,
            };
            let delivery = store::NewDelivery {
                webhook_id: webhook.id.clone(),
                position: store::next_position(&txn, &webhook.id).await?,
                trigger: task.trigger.clone(),
                event,
                record: Some((kind.type_name.to_owned(), record_id.clone())),
                sequence,
                changes,
                state,
            }
            .row(now)
            .insert(&txn)
            .await?;
            Some(delivery)
        } else {
            None
        };
        crm_service_common::db::commit(txn).await?;
        Ok(delivery)
    }

    /// What the delivery carries now: the record as the principal sees it now (`None`:
    /// it no longer does), null for a removal, a greeting for a ping.
    async fn data_now(&self, caller: &Caller, delivery: &Delivery) -> ApiResult<Option<Value>> {
        if delivery.event == PING {
            return Ok(Some(
                json!({ "message": "a test delivery: your endpoint is reachable and the signature checks" }),
            ));
        }
        let (Some(kind), Some(id)) = (
            delivery
                .record_type
                .as_deref()
                .and_then(catalog::kind_named),
            delivery.record_id.as_deref(),
        ) else {
            return Ok(Some(Value::Null));
        };
        if catalog::parse_event(&delivery.event).is_some_and(|(_, c)| c == Change::Removed) {
            return Ok(Some(Value::Null));
        }
        self.view(caller, kind, id).await
    }
}

/// A delivery's body: what happened, to which record, as which change of the webhook's
/// view (`sequence`), and the record as its principal sees it.
pub fn body(delivery: &Delivery, data: Value) -> String {
    let record = match (&delivery.record_type, &delivery.record_id) {
        (Some(ty), Some(id)) => json!({ "type": ty, "id": id }),
        _ => Value::Null,
    };
    json!({
        "id": delivery.id,
        "webhookId": delivery.webhook_id,
        "event": delivery.event,
        "createdAt": delivery.created_at,
        "record": record,
        "sequence": delivery.sequence,
        "changes": delivery.change_list(),
        "data": data,
    })
    .to_string()
}
