//! The event bus: one append-only stream per source, addressed by position. Redis Streams
//! in production; an in-process stand-in with the same semantics in the all-in-one.
//!
//! Publishing is idempotent by position (a stream never takes a position it already
//! holds), so the relay may publish again after a crash without duplicating anything.
//! A stream keeps a bounded tail; a consumer that fell further behind reads the gap from
//! the producer's feed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Notify;

use super::Event;
use crate::{ApiError, ApiResult};

/// How many events a stream keeps (Redis trims approximately to this).
pub const STREAM_RETENTION: usize = 100_000;

#[derive(Clone)]
pub enum EventBus {
    Memory(MemoryBus),
    Redis(RedisBus),
}

impl EventBus {
    /// Redis Streams at `redis_url`, or the in-process stand-in without one. Stream keys
    /// start with `namespace` (default `crm`): one namespace per deployment, because
    /// positions restart at 1 with a new database and a stream never takes a position
    /// twice.
    pub async fn connect(redis_url: Option<&str>, namespace: Option<&str>) -> anyhow::Result<Self> {
        let namespace = namespace.filter(|n| !n.is_empty()).unwrap_or("crm");
        match redis_url.filter(|u| !u.is_empty()) {
            Some(url) => Ok(Self::Redis(RedisBus::connect(url, namespace).await?)),
            None => Ok(Self::Memory(MemoryBus::default())),
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Self::Memory(_) => "in-process streams",
            Self::Redis(_) => "Redis Streams",
        }
    }

    /// Appends events (in position order) to their source's stream, skipping positions the
    /// stream already holds.
    pub async fn publish(&self, source: &str, events: &[Event]) -> ApiResult<()> {
        match self {
            Self::Memory(bus) => {
                bus.publish(source, events);
                Ok(())
            }
            Self::Redis(bus) => bus.publish(source, events).await,
        }
    }

    /// The position of the last event `source`'s stream holds (0 when it holds none): a
    /// reader that only wants what comes next starts after it.
    pub async fn head(&self, source: &str) -> ApiResult<i64> {
        match self {
            Self::Memory(bus) => Ok(bus.head(source)),
            Self::Redis(bus) => bus.head(source).await,
        }
    }

    /// Up to `limit` events after position `after`, waiting up to `wait` for the first.
    /// The first event returned may be later than `after + 1` when the stream no longer
    /// holds the gap: the consumer then reads the feed.
    pub async fn read(
        &self,
        source: &str,
        after: i64,
        limit: usize,
        wait: Duration,
    ) -> ApiResult<Vec<Event>> {
        match self {
            Self::Memory(bus) => Ok(bus.read(source, after, limit, wait).await),
            Self::Redis(bus) => bus.read(source, after, limit, wait).await,
        }
    }
}

/// The in-process stand-in for Redis Streams.
#[derive(Clone, Default)]
pub struct MemoryBus {
    streams: Arc<Mutex<HashMap<String, VecDeque<Event>>>>,
    appended: Arc<Notify>,
    retention: Option<usize>,
}

impl MemoryBus {
    /// A bus whose streams keep only the last `retention` events (tests use a small one to
    /// force consumers onto the feed).
    pub fn with_retention(retention: usize) -> Self {
        Self {
            retention: Some(retention.max(1)),
            ..Self::default()
        }
    }

    fn publish(&self, source: &str, events: &[Event]) {
        {
            let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
            let stream = streams.entry(source.to_owned()).or_default();
            for event in events {
                if stream
                    .back()
                    .is_some_and(|last| last.position >= event.position)
                {
                    continue;
                }
                stream.push_back(event.clone());
            }
            let keep = self.retention.unwrap_or(STREAM_RETENTION);
            while stream.len() > keep {
                stream.pop_front();
            }
        }
        self.appended.notify_waiters();
    }

    async fn read(&self, source: &str, after: i64, limit: usize, wait: Duration) -> Vec<Event> {
        let notified = self.appended.notified();
        tokio::pin!(notified);
        // Register for the wake-up before looking, so an append in between is not missed.
        notified.as_mut().enable();
        let found = self.take(source, after, limit);
        if !found.is_empty() || wait.is_zero() {
            return found;
        }
        let _ = tokio::time::timeout(wait, notified).await;
        self.take(source, after, limit)
    }

    fn head(&self, source: &str) -> i64 {
        let streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams
            .get(source)
            .and_then(|stream| stream.back())
            .map_or(0, |last| last.position)
    }

    fn take(&self, source: &str, after: i64, limit: usize) -> Vec<Event> {
        let streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams
            .get(source)
            .map(|stream| {
                stream
                    .iter()
                    .filter(|e| e.position > after)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Redis Streams: one stream per source (`<namespace>:events:<source>`), entry id
/// `<position>-0`.
#[derive(Clone)]
pub struct RedisBus {
    connection: redis::aio::ConnectionManager,
    namespace: String,
}

fn unavailable(error: redis::RedisError) -> ApiError {
    tracing::warn!(%error, "event bus (Redis) call failed");
    ApiError::internal("the event bus is unavailable")
}

impl RedisBus {
    pub async fn connect(url: &str, namespace: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("parsing REDIS_URL")?;
        let connection = redis::aio::ConnectionManager::new(client)
            .await
            .context("connecting to Redis (REDIS_URL)")?;
        Ok(Self {
            connection,
            namespace: namespace.to_owned(),
        })
    }

    fn stream_key(&self, source: &str) -> String {
        format!("{}:events:{source}", self.namespace)
    }

    fn xadd(key: &str, event: &Event) -> ApiResult<redis::Cmd> {
        let body = serde_json::to_string(event).map_err(|e| ApiError::internal(e.to_string()))?;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(key)
            .arg("MAXLEN")
            .arg("~")
            .arg(STREAM_RETENTION)
            .arg(format!("{}-0", event.position))
            .arg("event")
            .arg(body);
        Ok(cmd)
    }

    /// "The ID specified in XADD is equal or smaller than the target stream top item": the
    /// stream already holds this position (a re-publish).
    fn already_held(error: &redis::RedisError) -> bool {
        error.to_string().contains("equal or smaller")
    }

    async fn publish(&self, source: &str, events: &[Event]) -> ApiResult<()> {
        let key = self.stream_key(source);
        let mut connection = self.connection.clone();
        // One round trip for the batch; a batch that overlaps what the stream holds (after
        // a relay crash) goes again one event at a time, skipping the held positions.
        let mut pipeline = redis::pipe();
        for event in events {
            pipeline.add_command(Self::xadd(&key, event)?);
        }
        match pipeline.query_async::<()>(&mut connection).await {
            Ok(()) => return Ok(()),
            Err(e) if Self::already_held(&e) => {}
            Err(e) => return Err(unavailable(e)),
        }
        for event in events {
            match Self::xadd(&key, event)?
                .query_async::<String>(&mut connection)
                .await
            {
                Ok(_) => {}
                Err(e) if Self::already_held(&e) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(())
    }

    async fn head(&self, source: &str) -> ApiResult<i64> {
        let mut connection = self.connection.clone();
        let last: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.stream_key(source))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(last
            .ids
            .first()
            .and_then(|entry| entry.id.split('-').next()?.parse().ok())
            .unwrap_or(0))
    }

    async fn read(
        &self,
        source: &str,
        after: i64,
        limit: usize,
        wait: Duration,
    ) -> ApiResult<Vec<Event>> {
        let key = self.stream_key(source);
        let mut connection = self.connection.clone();
        // Polling (no XREAD BLOCK): a blocking read would hold the shared multiplexed
        // connection that the relay publishes on.
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(limit)
                .arg("STREAMS")
                .arg(&key)
                .arg(format!("{after}-0"))
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            let mut events = Vec::new();
            for stream in reply.map(|r| r.keys).unwrap_or_default() {
                for entry in stream.ids {
                    let body: String = entry.get("event").unwrap_or_default();
                    match serde_json::from_str::<Event>(&body) {
                        Ok(event) => events.push(event),
                        Err(error) => {
                            tracing::warn!(%error, id = %entry.id, "unreadable event on the bus");
                            return Err(ApiError::internal("an unreadable event is on the bus"));
                        }
                    }
                }
            }
            if !events.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(events);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
