//! How a policy edit reaches every process. The gateway stores each edit as a new version
//! and publishes the whole snapshot to Redis: the snapshot and its version under two keys,
//! then a message on a channel. A process follows by listening on the channel **and** by
//! reading the version key every `period`, because pub/sub drops messages (a subscriber
//! that reconnects misses what was sent meanwhile); either way it fetches the snapshot and
//! installs it when it is newer than its own. In the all-in-one, the edit is installed in
//! the process directly and Redis is not needed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// One stored policy: its version and its rules (CSV with the role hierarchy).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySnapshot {
    pub version: u64,
    pub rules: String,
}

/// The Redis keys and channel of one deployment (namespace).
#[derive(Clone, Debug)]
pub struct PolicyKeys {
    pub version: String,
    pub snapshot: String,
    pub channel: String,
}

impl PolicyKeys {
    pub fn new(namespace: Option<&str>) -> Self {
        let namespace = namespace.filter(|n| !n.is_empty()).unwrap_or("crm");
        Self {
            version: format!("{namespace}:policy:version"),
            snapshot: format!("{namespace}:policy:snapshot"),
            channel: format!("{namespace}:policy:changed"),
        }
    }
}

/// Writes a snapshot to Redis (snapshot, then version, then the message): a follower that
/// sees the version always finds a snapshot at least that new.
pub async fn publish(
    connection: &mut redis::aio::ConnectionManager,
    keys: &PolicyKeys,
    snapshot: &PolicySnapshot,
) -> anyhow::Result<()> {
    let body = serde_json::to_string(snapshot)?;
    redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(&keys.snapshot)
        .arg(body)
        .ignore()
        .cmd("SET")
        .arg(&keys.version)
        .arg(snapshot.version)
        .ignore()
        .cmd("PUBLISH")
        .arg(&keys.channel)
        .arg(snapshot.version)
        .ignore()
        .query_async::<()>(connection)
        .await
        .context("publishing the policy snapshot")
}

/// Installs `snapshot` in this process when it is newer than the installed policy.
/// Returns whether it did.
pub async fn install(snapshot: &PolicySnapshot) -> anyhow::Result<bool> {
    if snapshot.version <= crm_policies::current_version() {
        return Ok(false);
    }
    let policy = crm_policies::Policy::stored(&snapshot.rules, snapshot.version)
        .await
        .with_context(|| format!("policy version {} is invalid", snapshot.version))?;
    let installed = crm_policies::install(Arc::new(policy));
    if installed {
        tracing::info!(version = snapshot.version, "installed a new policy version");
    }
    Ok(installed)
}

/// Reads the version key and, when it is newer than this process's policy, the snapshot.
pub async fn check_once(
    connection: &mut redis::aio::ConnectionManager,
    keys: &PolicyKeys,
) -> anyhow::Result<bool> {
    let version: Option<u64> = redis::cmd("GET")
        .arg(&keys.version)
        .query_async(connection)
        .await?;
    if version.is_none_or(|v| v <= crm_policies::current_version()) {
        return Ok(false);
    }
    let body: Option<String> = redis::cmd("GET")
        .arg(&keys.snapshot)
        .query_async(connection)
        .await?;
    let Some(body) = body else {
        return Ok(false);
    };
    install(&serde_json::from_str(&body)?).await
}

/// Follows the policy published under `keys` until dropped: a check at start, on every
/// message, and every `period`.
pub struct PolicyFollower {
    _task: crate::signal::SignalTask,
}

pub async fn follow(
    redis_url: &str,
    keys: PolicyKeys,
    period: Duration,
) -> anyhow::Result<PolicyFollower> {
    let client = redis::Client::open(redis_url).context("parsing REDIS_URL")?;
    let mut connection = redis::aio::ConnectionManager::new(client.clone())
        .await
        .context("connecting to Redis for the policy")?;
    if let Err(error) = check_once(&mut connection, &keys).await {
        tracing::warn!(%error, "could not read the published policy; keeping the current one");
    }
    let task =
        crate::signal::on_message_or_period(client, keys.channel.clone(), period, move |_| {
            let (mut connection, keys) = (connection.clone(), keys.clone());
            async move {
                if let Err(error) = check_once(&mut connection, &keys).await {
                    tracing::warn!(%error, "policy check failed; retrying");
                }
            }
        });
    Ok(PolicyFollower { _task: task })
}
