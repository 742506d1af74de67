//! Integrators' webhooks: an endpoint that is told when a record changes *as the
//! webhook's principal sees it*.
//!
//! **The principal.** A webhook is bound, like an API key, to a role in one organisation
//! (a partner, or the company), and answered for by its owner: an admin makes webhooks for
//! any organisation, a partner admin for its own. It acts as that principal whenever it
//! reads, and stops when the principal would: when its owner is disabled or loses the
//! right to manage webhooks of that organisation, it is suspended until someone who may
//! takes it over.
//!
//! **What is sent.** Every payload is the answer of one query for the record, run through
//! the gateway as the principal at the time of each attempt, so it carries exactly the
//! fields and child rows (an order's lines, its shipments) the principal may read then.
//! Deliveries are decided by comparing that view with the last one found: a change the
//! principal can't see changes nothing it sees, so nothing is sent, and the events
//! (`order.added`, `order.updated` with the fields that changed, `order.removed`) describe
//! the view, never the hidden change behind it. A filter is evaluated over the same view.
//!
//! **How it is sent.** Signed (HMAC-SHA256 over the timestamp and the body, the timestamp
//! in a header), at least once, not ordered (each carries a per-record `sequence`), retried
//! on the job runner with exponential backoff and jitter, dead after the webhook's
//! `maxAttempts` and replayable; never to a private or loopback address unless the
//! deployment allows its network. Deliveries run where a gateway with the directory runs
//! (it reads through its engine).

pub mod catalog;
pub mod consumer;
pub mod deliver;
pub mod domain;
pub mod graphql;
pub mod outbound;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use crm_service_common::events::consumer::ConsumerHandle;
use crm_service_common::events::{EventBus, HttpFeed};
use crm_service_common::jobs::{JobRunner, JobRunnerHandle};

pub use consumer::Listening;
pub use deliver::{DELIVER_JOB, Reader};
pub use domain::Networks;

/// How this deployment delivers.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Networks deliveries may reach besides the public internet (`CRM_WEBHOOK_ALLOWED_NETWORKS`).
    pub allowed_networks: Networks,
    /// How long one attempt may take (`CRM_WEBHOOK_TIMEOUT_SECONDS`).
    pub timeout: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allowed_networks: Networks::default(),
            timeout: outbound::DEFAULT_TIMEOUT,
        }
    }
}

/// The running delivery side: the consumers that schedule, the runner that delivers, and
/// what keeps the consumers' view of who listens fresh. Stops when dropped.
pub struct Deliveries {
    _runner: JobRunnerHandle,
    _consumers: Vec<ConsumerHandle>,
    listening: tokio::task::JoinHandle<()>,
}

impl Drop for Deliveries {
    fn drop(&mut self) {
        self.listening.abort();
    }
}

/// Starts delivering for the identity database `identity`: reading with `reader`, hearing
/// of changes on `bus` (and each producer's feed, from `feed`; a kind whose producer's feed
/// is not known is not heard of).
pub fn start(
    identity: &crate::Identity,
    reader: Arc<dyn Reader>,
    writer: Arc<dyn crate::imports::Writer>,
    bus: EventBus,
    feed: impl Fn(&catalog::RecordKind) -> anyhow::Result<Option<HttpFeed>>,
) -> anyhow::Result<Deliveries> {
    let db = identity.directory.db.clone();
    let settings = &identity.webhooks;
    let deliverer = deliver::Deliverer {
        db: db.clone(),
        directory: identity.directory.clone(),
        reader,
        outbound: outbound::Outbound::new(settings.allowed_networks.clone(), settings.timeout),
        deciding: Default::default(),
    };
    // The identity database's one job runner (a runner hands back kinds it does not
    // know): webhook deliveries and imports.
    let importer = crate::imports::Runner {
        db: db.clone(),
        directory: identity.directory.clone(),
        writer,
    };
    let runner = JobRunner::new(db.clone(), "identity")
        .handle_task(DELIVER_JOB, Arc::new(deliverer))
        .handle_task(crate::imports::RUN_JOB, Arc::new(importer))
        .poll_every(Duration::from_millis(200))
        .woken_by(identity.webhook_wake.clone())
        .spawn();
    let mut consumers = Vec::new();
    for kind in catalog::RECORDS {
        let Some(feed) = feed(kind)? else {
            // A gateway that does not reach the producer (a foreign supergraph, a partial
            // deployment) delivers nothing about its records.
            tracing::warn!(
                source = kind.source,
                "webhooks will not hear of {} changes: the producer's feed is not known here",
                kind.type_name
            );
            continue;
        };
        consumers.push(
            consumer::consumer(
                kind,
                db.clone(),
                bus.clone(),
                feed,
                identity.webhook_listeners.clone(),
                identity.webhook_wake.clone(),
            )
            .spawn(),
        );
    }
    Ok(Deliveries {
        _runner: runner,
        _consumers: consumers,
        listening: identity
            .webhook_listeners
            .follow(db, Duration::from_secs(1)),
    })
}
