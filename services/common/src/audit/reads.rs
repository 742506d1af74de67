//! The read log of partner access: every record a partner user or partner API key read,
//! with the fields the request resolved on it, the operation's name and the time, kept as
//! audit entries (action `read`) in the partner's own chain.
//!
//! **Where a read is seen.** Every record type's object (`record_object!`) carries an
//! object-wide guard, [`Seen`], that runs before each of its fields resolves, wherever
//! the object appears: lists, single fetches, nested fields, search hits and federation
//! `_entities` look-ups alike. For a partner's request it notes the record and the field
//! in the request's [`ReadCollector`]; for anyone else it does nothing.
//!
//! **Off the read path.** When the request is answered, its reads go to the service's
//! [`ReadLog`] writer over a bounded channel (never awaited); the writer inserts them in
//! batches, at most every [`FLUSH_EVERY`] or [`FLUSH_AT`] entries, and on [`flush_all`]
//! (the process's shutdown). Each batch goes into its chain already sealed
//! ([`chain::append_sealed`]): one insert per entry and one signed head per batch, where
//! inserting them for the sealer to link cost an update of every entry besides (about
//! two thirds of the read log's cost in the database at scale 1). A crash loses what was
//! not yet written: at most the last [`FLUSH_EVERY`] of reads. A writer that falls more
//! than [`BUFFER`] requests behind drops the newest and says how many in a warning.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::{mpsc, oneshot};

use super::{Actor, action, chain, entry, insertable, new_entry};

/// How long a read may wait to be written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Reads written at once when the writer is busy.
pub const FLUSH_AT: usize = 500;
/// Answered requests whose reads may wait for the writer.
pub const BUFFER: usize = 10_000;

/// The records one request read, with the fields resolved on each, in the order first
/// read. Noting a field allocates nothing when the record is the one noted last (a
/// record's fields resolve one after another) and once per record otherwise.
#[derive(Default)]
pub struct ReadCollector(Mutex<Vec<NotedRead>>);

struct NotedRead {
    table: &'static str,
    id: String,
    fields: Vec<async_graphql::Name>,
}

impl ReadCollector {
    fn note(&self, table: &'static str, id: &str, field: &async_graphql::Name) {
        let mut noted = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let same = |r: &NotedRead| r.table == table && r.id == id;
        let record = match noted.iter().rposition(same) {
            Some(at) => &mut noted[at],
            None => {
                noted.push(NotedRead {
                    table,
                    id: id.to_owned(),
                    fields: Vec::new(),
                });
                let last = noted.len() - 1;
                &mut noted[last]
            }
        };
        if !record.fields.contains(field) {
            record.fields.push(field.clone());
        }
    }

    /// The reads noted so far, by table and id, each with its fields in name order.
    fn take(&self) -> Vec<NotedRead> {
        let mut reads = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        reads.sort_unstable_by(|a, b| (a.table, &a.id).cmp(&(b.table, &b.id)));
        for read in &mut reads {
            read.fields.sort_unstable();
        }
        reads
    }
}

/// The guard every record object runs before each field: notes the read for a partner's
/// request (and never refuses).
pub struct Seen<'a> {
    table: &'static str,
    id: &'a str,
}

impl<'a> Seen<'a> {
    pub fn of<M>(model: &'a M) -> Self
    where
        M: sea_orm::ModelTrait,
        M::Entity: crate::record::Record + EntityTrait<Model = M>,
        <M::Entity as EntityTrait>::ActiveModel:
            sea_orm::ActiveModelTrait<Entity = M::Entity> + Send,
    {
        Self {
            table: sea_orm::EntityName::table_name(&M::Entity::default()),
            id: <M::Entity as crate::record::Record>::id(model),
        }
    }
}

impl async_graphql::Guard for Seen<'_> {
    async fn check(&self, ctx: &async_graphql::Context<'_>) -> async_graphql::Result<()> {
        if let Some(collector) = ctx.data_opt::<Arc<ReadCollector>>() {
            collector.note(self.table, self.id, &ctx.item.node.name.node);
        }
        Ok(())
    }
}

/// Whether `who`'s reads are logged: a partner's users and keys, unless the process
/// runs with `CRM_READ_LOG=off` (a deployment that does not keep the read log, and the
/// benchmark's measure of what keeping it costs).
pub fn logged(who: &crate::principal::Principal) -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let enabled = *ENABLED.get_or_init(|| {
        !std::env::var("CRM_READ_LOG").is_ok_and(|v| v.trim().eq_ignore_ascii_case("off"))
    });
    enabled && who.partner().is_some()
}

/// What one request read, as handed to the writer.
struct RequestReads {
    actor: Actor,
    at: chrono::DateTime<chrono::Utc>,
    operation: Option<String>,
    reads: Vec<NotedRead>,
}

impl RequestReads {
    /// One read entry per record, with the fields resolved on it and the operation.
    fn into_entries(self) -> impl Iterator<Item = entry::Model> {
        let Self {
            actor,
            at,
            operation,
            reads,
        } = self;
        reads
            .into_iter()
            .map(move |NotedRead { table, id, fields }| {
                let fields: Vec<&str> = fields.iter().map(|f| f.as_str()).collect();
                let detail = serde_json::json!({
                    "fields": fields,
                    "operation": operation,
                });
                entry::Model {
                    detail: Some(detail.to_string()),
                    ..new_entry(
                        super::new_entry_id(),
                        &actor,
                        at,
                        action::READ,
                        (table, &id),
                    )
                }
            })
    }
}

enum Message {
    Reads(RequestReads),
    Flush(oneshot::Sender<()>),
}

/// A service's read-log writer (cheap to clone: a channel's sending end).
#[derive(Clone)]
pub struct ReadLog {
    tx: mpsc::Sender<Message>,
}

/// A writer as the process knows it: its channel, weakly (a writer ends, after writing
/// what it holds, when its service's router is dropped), and its task, so that
/// [`flush_all`] can wait for one that is finishing.
struct Writer {
    tx: mpsc::WeakSender<Message>,
    task: tokio::task::JoinHandle<()>,
}

static WRITERS: Mutex<Vec<Writer>> = Mutex::new(Vec::new());

impl ReadLog {
    /// Starts the writer of one service's read log over `db`.
    pub fn spawn(db: DatabaseConnection, service: &str) -> Self {
        let (tx, rx) = mpsc::channel(BUFFER);
        let key = chain::key_for(service)
            .inspect_err(|error| {
                tracing::error!(%service, %error, "no audit key: the read log is written unsealed");
            })
            .ok();
        let task = tokio::spawn(write_loop(db, key, service.to_owned(), rx));
        let mut writers = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
        writers.retain(|w| !w.task.is_finished());
        writers.push(Writer {
            tx: tx.downgrade(),
            task,
        });
        Self { tx }
    }

    /// Hands the reads one request collected to the writer (never waits). The entries
    /// are built by the writer, so the request pays for taking the noted reads only.
    pub fn record(&self, actor: &Actor, operation: Option<&str>, collector: &ReadCollector) {
        let reads = collector.take();
        if reads.is_empty() {
            return;
        }
        let count = reads.len();
        let batch = RequestReads {
            actor: actor.clone(),
            at: crate::clock::now(),
            operation: operation.map(|name| client_operation(name).to_owned()),
            reads,
        };
        if self.tx.try_send(Message::Reads(batch)).is_err() {
            tracing::warn!(
                reads = count,
                "the read log's writer is behind: these reads were not logged"
            );
        }
    }

    /// Writes every read handed over so far; returns when they are stored (or the
    /// writer has stopped).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            wait.await.ok();
        }
    }
}

/// The client's operation name in a subgraph request's: the gateway sends each step of
/// its plan as `<client's name>__<step>`.
pub fn client_operation(name: &str) -> &str {
    match name.rsplit_once("__") {
        Some((client, step)) if !step.is_empty() && step.bytes().all(|b| b.is_ascii_digit()) => {
            client
        }
        _ => name,
    }
}

/// Flushes every read-log writer of the process (its shutdown, and tests that read the
/// log right after a request).
pub async fn flush_all() {
    let mut running = Vec::new();
    let mut finishing = Vec::new();
    {
        let mut writers = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
        for w in std::mem::take(&mut *writers) {
            match w.tx.upgrade() {
                Some(tx) => {
                    running.push(ReadLog { tx });
                    writers.push(w);
                }
                // Its router is gone: it writes what it holds and ends.
                None => finishing.push(w.task),
            }
        }
    }
    for writer in running {
        writer.flush().await;
    }
    for task in finishing {
        task.await.ok();
    }
}

async fn write_loop(
    db: DatabaseConnection,
    key: Option<chain::AuditKey>,
    service: String,
    mut rx: mpsc::Receiver<Message>,
) {
    let mut pending: Vec<entry::Model> = Vec::new();
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let message = if pending.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout(FLUSH_EVERY, rx.recv()).await {
                Ok(message) => message,
                // Time to write what waits.
                Err(_) => {
                    pending =
                        write(&db, key.as_ref(), &service, std::mem::take(&mut pending)).await;
                    continue;
                }
            }
        };
        match message {
            Some(Message::Reads(reads)) => {
                pending.extend(reads.into_entries());
                if pending.len() >= FLUSH_AT {
                    pending =
                        write(&db, key.as_ref(), &service, std::mem::take(&mut pending)).await;
                }
            }
            Some(Message::Flush(done)) => {
                waiting.push(done);
                pending = write(&db, key.as_ref(), &service, std::mem::take(&mut pending)).await;
                for done in waiting.drain(..) {
                    done.send(()).ok();
                }
            }
            None => {
                let lost = write(&db, key.as_ref(), &service, pending).await;
                if !lost.is_empty() {
                    tracing::warn!(%service, reads = lost.len(), "the read log's writer stopped: these reads were not logged");
                }
                return;
            }
        }
    }
}

/// Writes the waiting reads, each chain's in batches of at most [`FLUSH_AT`] (sealed when
/// the service has its audit key); returns what is left after a failure (logged), to try
/// again on the next round, up to [`BUFFER`] reads, past which the newest are dropped.
async fn write(
    db: &DatabaseConnection,
    key: Option<&chain::AuditKey>,
    service: &str,
    pending: Vec<entry::Model>,
) -> Vec<entry::Model> {
    let mut by_chain: BTreeMap<String, Vec<entry::Model>> = BTreeMap::new();
    for e in pending {
        by_chain.entry(e.organisation.clone()).or_default().push(e);
    }
    let mut left = Vec::new();
    for (organisation, mut entries) in by_chain {
        while !entries.is_empty() {
            let rest = entries.split_off(entries.len().min(FLUSH_AT));
            let batch = std::mem::replace(&mut entries, rest);
            let count = batch.len();
            let written = match key {
                Some(key) => chain::append_sealed(db, key, &organisation, batch.clone()).await,
                None => entry::Entity::insert_many(batch.iter().cloned().map(insertable))
                    .exec_without_returning(db)
                    .await
                    .map(|_| ())
                    .map_err(Into::into),
            };
            if let Err(error) = written {
                tracing::warn!(%service, reads = count, message = %error.message(), "writing the read log failed; retrying later");
                left.extend(batch);
                left.append(&mut entries);
            }
        }
    }
    left.truncate(BUFFER);
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_operation_name_is_read_back_from_the_gateways() {
        assert_eq!(client_operation("PortalAccounts__0"), "PortalAccounts");
        assert_eq!(client_operation("Portal__Accounts__12"), "Portal__Accounts");
        assert_eq!(client_operation("Plain"), "Plain");
        assert_eq!(client_operation("Odd__x"), "Odd__x");
    }
}
