//! The relay of one producer: positions committed outbox events, publishes them to the
//! bus in position order, then marks them published.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::task::JoinHandle;

use super::{EventBus, outbox};
use crate::ApiResult;

/// How many events one round handles.
const BATCH: u64 = 500;

/// After this process appends an event, the relay looks again after each of these waits
/// until it finds it committed (most transactions commit within a few milliseconds of
/// their last statement), before falling back to its idle poll.
const FOLLOW_UPS: [Duration; 4] = [
    Duration::from_millis(1),
    Duration::from_millis(5),
    Duration::from_millis(20),
    Duration::from_millis(50),
];

#[derive(Clone)]
pub struct Relay {
    db: DatabaseConnection,
    source: String,
    bus: EventBus,
    idle_poll: Duration,
}

impl Relay {
    pub fn new(db: DatabaseConnection, source: &str, bus: EventBus) -> Self {
        Self {
            db,
            source: source.to_owned(),
            bus,
            idle_poll: Duration::from_millis(100),
        }
    }

    /// One round: position what committed, publish what is positioned but unpublished.
    /// Returns how many events were published.
    pub async fn run_once(&self) -> ApiResult<usize> {
        outbox::assign_positions(&self.db, &self.source, BATCH).await?;
        let pending = outbox::unpublished(&self.db, &self.source, BATCH).await?;
        let Some(last) = pending.last().map(|e| e.position) else {
            return Ok(0);
        };
        // Publish first, mark second: a crash in between publishes again (at least once),
        // and the bus skips positions it already holds.
        self.bus.publish(&self.source, &pending).await?;
        outbox::mark_published(&self.db, last).await?;
        Ok(pending.len())
    }

    /// Runs rounds until dropped: back to back while there is work; when there is none,
    /// every `idle_poll` or as soon as this process appends an event (then a few times
    /// over the next milliseconds, while the appending transaction commits); with a growing
    /// pause while the database or the bus fails.
    pub fn spawn(self) -> RelayHandle {
        let task = tokio::spawn(async move {
            let mut failures: u32 = 0;
            // Which of the quick looks after an append comes next, when one is due.
            let mut follow_up: Option<usize> = None;
            loop {
                let appended = outbox::appended().notified();
                tokio::pin!(appended);
                // Registered before the round, so an append during it is not missed.
                appended.as_mut().enable();
                match self.run_once().await {
                    Ok(n) => {
                        failures = 0;
                        if n > 0 {
                            follow_up = None;
                            continue;
                        }
                        match follow_up {
                            Some(i) if i < FOLLOW_UPS.len() => {
                                tokio::time::sleep(FOLLOW_UPS[i]).await;
                                follow_up = Some(i + 1);
                            }
                            _ => {
                                follow_up = None;
                                tokio::select! {
                                    _ = tokio::time::sleep(self.idle_poll) => {}
                                    _ = appended => follow_up = Some(0),
                                }
                            }
                        }
                    }
                    Err(_) => {
                        // The error was logged where it happened (ApiError::internal).
                        failures = failures.saturating_add(1);
                        let pause = Duration::from_millis(200) * failures.min(25);
                        tracing::warn!(source = %self.source, ?pause, "event relay round failed; retrying");
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        });
        RelayHandle(task)
    }
}

/// Stops the relay when dropped (a stop mid-round is safe: delivery is at least once).
pub struct RelayHandle(JoinHandle<()>);

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.0.abort();
    }
}
