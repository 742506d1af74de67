//! A counter that processes share through Redis, for changes every process must react to
//! quickly but whose content they read elsewhere (e.g. "the directory changed: forget what
//! the door remembers"). A change increments the counter and publishes a message; a
//! follower reacts to the message **and** reads the counter every `period`, because
//! pub/sub drops messages (a subscriber that reconnects misses what was sent meanwhile).
//! So a change reaches every follower by message, or within `period` when the message is
//! lost. The policy (`policy_sync`) follows the same pattern with its snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use tokio::task::JoinHandle;

/// The Redis key of a counter and the channel its changes are announced on.
#[derive(Clone, Debug)]
pub struct SignalKeys {
    pub counter: String,
    pub channel: String,
}

impl SignalKeys {
    /// `{namespace}:{name}:count` and `{namespace}:{name}:changed`.
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        let namespace = namespace.filter(|n| !n.is_empty()).unwrap_or("crm");
        Self {
            counter: format!("{namespace}:{name}:count"),
            channel: format!("{namespace}:{name}:changed"),
        }
    }
}

/// A background task that ends when dropped.
pub struct SignalTask(JoinHandle<()>);

impl Drop for SignalTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Announces a change every time `changed` is notified (changes that arrive while one is
/// being announced are announced once more after it, never lost).
pub async fn announce(
    redis_url: &str,
    keys: SignalKeys,
    changed: &'static tokio::sync::Notify,
) -> anyhow::Result<SignalTask> {
    let client = redis::Client::open(redis_url).context("parsing REDIS_URL")?;
    let mut connection = redis::aio::ConnectionManager::new(client)
        .await
        .context("connecting to Redis to announce changes")?;
    Ok(SignalTask(tokio::spawn(async move {
        loop {
            changed.notified().await;
            let announced = redis::pipe()
                .atomic()
                .cmd("INCR")
                .arg(&keys.counter)
                .ignore()
                .cmd("PUBLISH")
                .arg(&keys.channel)
                .arg(1)
                .ignore()
                .query_async::<()>(&mut connection)
                .await;
            if let Err(error) = announced {
                // Announced again with the next change, or read from the counter by
                // followers once Redis is back.
                tracing::warn!(%error, channel = %keys.channel, "could not announce a change");
                tokio::time::sleep(Duration::from_millis(200)).await;
                changed.notify_one();
            }
        }
    })))
}

/// Calls `on_change` whenever the counter moves (on a message, or when read every
/// `period`), starting from its value now.
pub async fn follow(
    redis_url: &str,
    keys: SignalKeys,
    period: Duration,
    on_change: impl Fn() + Send + Sync + 'static,
) -> anyhow::Result<SignalTask> {
    let client = redis::Client::open(redis_url).context("parsing REDIS_URL")?;
    let mut connection = redis::aio::ConnectionManager::new(client.clone())
        .await
        .context("connecting to Redis to follow changes")?;
    let seen = read_counter(&mut connection, &keys.counter)
        .await
        .ok()
        .flatten()
        .unwrap_or(0);
    let seen = Arc::new(AtomicU64::new(seen));
    let on_change = Arc::new(on_change);
    let counter = keys.counter.clone();
    Ok(on_message_or_period(
        client,
        keys.channel,
        period,
        move |message| {
            let (mut connection, counter, seen, on_change) = (
                connection.clone(),
                counter.clone(),
                seen.clone(),
                on_change.clone(),
            );
            async move {
                match read_counter(&mut connection, &counter).await {
                    Ok(now) => {
                        let now = now.unwrap_or(0);
                        if seen.swap(now, Ordering::SeqCst) != now || message {
                            on_change();
                        }
                    }
                    // Redis is away: a message still means a change.
                    Err(_) if message => on_change(),
                    Err(_) => {}
                }
            }
        },
    ))
}

/// Runs `on_wake` on every message on `channel` (with `true`) and every `period` (with
/// `false`), subscribing again whenever the subscription ends (Redis restarted), until
/// dropped. Pub/sub drops messages, so what `on_wake` does must also work from the
/// periodic call alone.
pub fn on_message_or_period<F, Fut>(
    client: redis::Client,
    channel: String,
    period: Duration,
    mut on_wake: F,
) -> SignalTask
where
    F: FnMut(bool) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    SignalTask(tokio::spawn(async move {
        loop {
            let mut pubsub = match client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                    Ok(()) => Some(pubsub),
                    Err(_) => None,
                },
                Err(_) => None,
            };
            loop {
                let message = match pubsub.as_mut() {
                    Some(pubsub) => {
                        let mut messages = pubsub.on_message();
                        tokio::select! {
                            message = messages.next() => message.map(|_| true),
                            () = tokio::time::sleep(period) => Some(false),
                        }
                    }
                    None => {
                        tokio::time::sleep(period).await;
                        Some(false)
                    }
                };
                on_wake(message == Some(true)).await;
                if message.is_none() || pubsub.is_none() {
                    break;
                }
            }
        }
    }))
}

async fn read_counter(
    connection: &mut redis::aio::ConnectionManager,
    counter: &str,
) -> redis::RedisResult<Option<u64>> {
    redis::cmd("GET").arg(counter).query_async(connection).await
}
