//! Subscriptions hear of changes: a tail of the services' event streams on the bus, from
//! the position each stream had when the gateway started, turned into signals for every
//! running subscription ([`crm_gateway::federation::live`]). A tail keeps no checkpoint: a
//! subscription lives as long as its connection, and one that may have missed events (the
//! bus lost its tail, or Redis was away) is told to read everything it watches again.

use std::time::Duration;

use crm_gateway::federation::live::{self, Changes, Signal};
use crm_service_common::events::EventBus;

/// The services whose events change what subscriptions follow: orders (with their lines
/// and shipments) and notifications.
pub const SOURCES: [&str; 2] = ["order_visibility", "account"];

/// Follows the tails of [`SOURCES`] on `bus`, and this process's view of the directory,
/// until the handle is dropped.
pub fn follow(bus: EventBus) -> (Changes, LiveTail) {
    let changes = live::changes();
    let mut tasks: Vec<_> = SOURCES
        .iter()
        .map(|source| tokio::spawn(tail(bus.clone(), source, changes.clone())))
        .collect();
    tasks.push(tokio::spawn(directory(changes.clone())));
    (changes, LiveTail(tasks))
}

/// How often the directory's generation is looked at: a disabled user's or a revoked
/// key's streams end within this (or at their next event, whichever is first).
const DIRECTORY_LOOK: Duration = Duration::from_millis(250);

/// Tells every stream to ask the door again when the directory changed (here, or in
/// another process that announced it).
async fn directory(changes: Changes) {
    let mut seen = crm_identity::store::directory_generation();
    loop {
        tokio::time::sleep(DIRECTORY_LOOK).await;
        let now = crm_identity::store::directory_generation();
        if now != seen {
            seen = now;
            let _ = changes.send(Signal::Credentials);
        }
    }
}

/// The running tails; they stop when dropped.
pub struct LiveTail(Vec<tokio::task::JoinHandle<()>>);

impl Drop for LiveTail {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

async fn tail(bus: EventBus, source: &'static str, changes: Changes) {
    let mut after = loop {
        match bus.head(source).await {
            Ok(head) => break head,
            Err(e) => {
                tracing::warn!(source, message = %e.message(), "reading the event stream's head failed; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut missed = false;
    loop {
        match bus.read(source, after, 512, Duration::from_secs(1)).await {
            Ok(events) => {
                // A first event past the next position: the stream no longer holds what
                // came between.
                if missed || events.first().is_some_and(|e| e.position > after + 1) {
                    let _ = changes.send(Signal::Resync);
                    missed = false;
                }
                for event in events {
                    after = after.max(event.position);
                    let _ = changes.send(Signal::Changed {
                        record_type: event.aggregate_type,
                        id: event.aggregate_id,
                    });
                }
            }
            Err(e) => {
                tracing::warn!(source, message = %e.message(), "reading the event stream failed; subscriptions will read again");
                missed = true;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
