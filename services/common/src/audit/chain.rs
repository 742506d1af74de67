//! Sealing and verifying the audit chains of one service.
//!
//! An entry's hash is SHA-256 over the previous entry's hash and every column of the entry
//! (length-prefixed, so no two entries encode alike); the first entry of a chain follows the
//! empty hash. A chain's head (its last place and hash) is signed with the service's audit
//! key after every sealing round, and kept as a checkpoint every [`CHECKPOINT_EVERY`]
//! entries or [`CHECKPOINT_INTERVAL`]. Without the key, whoever edits the tables can alter,
//! delete or drop entries but cannot make the chain agree with a signed head again.

use std::sync::Arc;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::{at_text, checkpoint, entry, head, value};
use crate::{ApiResult, clock};

/// A new checkpoint is kept after this many entries…
pub const CHECKPOINT_EVERY: i64 = 100;
/// …or when the last one is this old and the chain has moved since.
pub const CHECKPOINT_INTERVAL: chrono::Duration = chrono::Duration::minutes(10);
/// How often a service seals its new entries: an entry is tamper-evident within about
/// this long of its change.
pub const SEAL_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Entries sealed per chain per round.
const SEAL_BATCH: u64 = 500;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random salt for one value's digest (16 bytes, hex).
pub fn new_salt() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).unwrap_or_else(|_| {
        // The system's random source failed: a v4 uuid's randomness still serves.
        bytes = *uuid::Uuid::new_v4().as_bytes();
    });
    hex(&bytes)
}

/// The digest an entry keeps of a value: SHA-256 over the salt and the value.
pub fn value_digest(salt: &str, value: &str) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(salt.as_bytes());
    ctx.update(b":");
    ctx.update(value.as_bytes());
    hex(ctx.finish().as_ref())
}

/// The hash of `e` at place `chain_seq` after `prev`.
pub fn entry_hash(prev: &str, chain_seq: i64, e: &entry::Model) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut part = |text: Option<&str>| match text {
        None => ctx.update(&[0]),
        Some(text) => {
            ctx.update(&[1]);
            ctx.update(&(text.len() as u64).to_be_bytes());
            ctx.update(text.as_bytes());
        }
    };
    let seq = chain_seq.to_string();
    let at = at_text(e.at);
    for text in [
        Some(prev),
        Some(seq.as_str()),
        Some(e.id.as_str()),
        Some(e.organisation.as_str()),
        Some(at.as_str()),
        Some(e.actor.as_str()),
        Some(e.actor_kind.as_str()),
        Some(e.credential.as_str()),
        Some(e.action.as_str()),
        Some(e.record_type.as_str()),
        Some(e.record_id.as_str()),
        e.field.as_deref(),
        e.old_digest.as_deref(),
        e.new_digest.as_deref(),
        e.detail.as_deref(),
    ] {
        part(text);
    }
    hex(ctx.finish().as_ref())
}

/// The text a head or checkpoint signature covers.
fn signed_text(
    service: &str,
    organisation: &str,
    chain_seq: i64,
    hash: &str,
    at: DateTime<Utc>,
) -> String {
    format!(
        "crm-audit/1\n{service}\n{organisation}\n{chain_seq}\n{hash}\n{}",
        at_text(at)
    )
}

/// The key a service signs its chains' heads with (Ed25519), and the service's name the
/// signatures cover (a head cannot be moved to another service's chain).
#[derive(Clone)]
pub struct AuditKey {
    service: String,
    pair: Arc<Ed25519KeyPair>,
    public: String,
}

impl AuditKey {
    /// From a PKCS#8 document in base64 (`CRM_AUDIT_SIGNING_KEY`).
    pub fn from_base64(service: &str, pkcs8: &str) -> anyhow::Result<Self> {
        let document = STANDARD
            .decode(pkcs8.trim())
            .map_err(|_| anyhow::anyhow!("the audit signing key is not base64"))?;
        let pair = Ed25519KeyPair::from_pkcs8(&document).map_err(|_| {
            anyhow::anyhow!("the audit signing key is not an Ed25519 PKCS#8 document")
        })?;
        Ok(Self {
            service: service.to_owned(),
            public: STANDARD.encode(pair.public_key().as_ref()),
            pair: Arc::new(pair),
        })
    }

    /// A new key as a PKCS#8 document in base64 (what `crm audit new-key` prints and the
    /// embedded default keeps in its data directory).
    pub fn generate_base64() -> anyhow::Result<String> {
        let document = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("generating an Ed25519 key failed"))?;
        Ok(STANDARD.encode(document.as_ref()))
    }

    /// The public half in base64: what verifiers trust.
    pub fn public_base64(&self) -> &str {
        &self.public
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    fn sign(&self, organisation: &str, chain_seq: i64, hash: &str, at: DateTime<Utc>) -> String {
        let text = signed_text(&self.service, organisation, chain_seq, hash, at);
        STANDARD.encode(self.pair.sign(text.as_bytes()).as_ref())
    }
}

/// A signed place of a chain, as a head or checkpoint row keeps it.
struct Signed<'a> {
    chain_seq: i64,
    hash: &'a str,
    at: DateTime<Utc>,
    public_key: &'a str,
    signature: &'a str,
}

impl<'a> From<&'a head::Model> for Signed<'a> {
    fn from(h: &'a head::Model) -> Self {
        Signed {
            chain_seq: h.chain_seq,
            hash: &h.hash,
            at: h.signed_at,
            public_key: &h.public_key,
            signature: &h.signature,
        }
    }
}

impl<'a> From<&'a checkpoint::Model> for Signed<'a> {
    fn from(c: &'a checkpoint::Model) -> Self {
        Signed {
            chain_seq: c.chain_seq,
            hash: &c.hash,
            at: c.signed_at,
            public_key: &c.public_key,
            signature: &c.signature,
        }
    }
}

/// Whether a place of `organisation`'s chain was signed by one of `trusted` (public keys,
/// base64) for this service.
fn signed_by(trusted: &[String], service: &str, organisation: &str, place: Signed<'_>) -> bool {
    if !trusted.iter().any(|k| k == place.public_key) {
        return false;
    }
    let (Ok(key), Ok(signature)) = (
        STANDARD.decode(place.public_key),
        STANDARD.decode(place.signature),
    ) else {
        return false;
    };
    let text = signed_text(service, organisation, place.chain_seq, place.hash, place.at);
    UnparsedPublicKey::new(&ED25519, key)
        .verify(text.as_bytes(), &signature)
        .is_ok()
}

/// Seals every chain's new entries; returns how many were sealed.
pub async fn seal(db: &DatabaseConnection, key: &AuditKey) -> ApiResult<usize> {
    use entry::Column as C;
    let chains: Vec<String> = entry::Entity::find()
        .select_only()
        .column(C::Organisation)
        .filter(C::ChainSeq.is_null())
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let mut sealed = 0;
    for organisation in chains {
        loop {
            let n = seal_chain(db, key, &organisation).await?;
            sealed += n;
            if (n as u64) < SEAL_BATCH {
                break;
            }
        }
    }
    Ok(sealed)
}

/// A chain's last sealed place as one transaction found it, with the head row locked
/// until the transaction ends (PostgreSQL; SQLite has one writer anyway). Whoever
/// extends a chain takes it first, so that two writers (the sealer, the read log's
/// writer, another replica's) take turns instead of giving two entries one place.
struct Tip {
    /// Whether the chain had a head row when locked (else signing inserts one).
    exists: bool,
    seq: i64,
    hash: String,
}

/// An entry's place in its chain, as [`Tip::link`] gives it.
struct Link {
    chain_seq: i64,
    prev_hash: String,
    hash: String,
}

impl Tip {
    /// Links `e` after the tip, which moves to it.
    fn link(&mut self, e: &entry::Model) -> Link {
        let chain_seq = self.seq + 1;
        let hash = entry_hash(&self.hash, chain_seq, e);
        self.seq = chain_seq;
        Link {
            chain_seq,
            prev_hash: std::mem::replace(&mut self.hash, hash.clone()),
            hash,
        }
    }
}

async fn lock_tip(txn: &sea_orm::DatabaseTransaction, organisation: &str) -> ApiResult<Tip> {
    let mut find_head = head::Entity::find_by_id(organisation.to_owned());
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        find_head = find_head.lock_exclusive();
    }
    Ok(match find_head.one(txn).await? {
        Some(h) => Tip {
            exists: true,
            seq: h.chain_seq,
            hash: h.hash,
        },
        None => Tip {
            exists: false,
            seq: 0,
            hash: String::new(),
        },
    })
}

/// Signs `organisation`'s chain at the place `tip` has moved to in `txn`: the head moves
/// there, and a checkpoint is kept when one is due.
async fn sign_tip(
    txn: &sea_orm::DatabaseTransaction,
    key: &AuditKey,
    organisation: &str,
    tip: Tip,
) -> ApiResult<()> {
    let Tip { exists, seq, hash } = tip;
    let now = clock::now();
    let signature = key.sign(organisation, seq, &hash, now);
    let new_head = head::ActiveModel {
        organisation: Set(organisation.to_owned()),
        chain_seq: Set(seq),
        hash: Set(hash.clone()),
        signed_at: Set(now),
        public_key: Set(key.public.clone()),
        signature: Set(signature.clone()),
    };
    if exists {
        head::Entity::update(new_head).exec(txn).await?;
    } else {
        head::Entity::insert(new_head)
            .exec_without_returning(txn)
            .await?;
    }
    let last_checkpoint = checkpoint::Entity::find()
        .filter(checkpoint::Column::Organisation.eq(organisation))
        .order_by_desc(checkpoint::Column::ChainSeq)
        .one(txn)
        .await?;
    let due = last_checkpoint.is_none_or(|c| {
        seq - c.chain_seq >= CHECKPOINT_EVERY || now - c.signed_at >= CHECKPOINT_INTERVAL
    });
    if due {
        checkpoint::Entity::insert(checkpoint::ActiveModel {
            organisation: Set(organisation.to_owned()),
            chain_seq: Set(seq),
            hash: Set(hash),
            signed_at: Set(now),
            public_key: Set(key.public.clone()),
            signature: Set(signature),
        })
        .exec_without_returning(txn)
        .await?;
    }
    Ok(())
}

/// Seals up to a batch of one chain's new entries in one transaction, with the chain's
/// tip locked. Two replicas sealing at once take turns on the lock; the second finds the
/// entries sealed.
async fn seal_chain(
    db: &DatabaseConnection,
    key: &AuditKey,
    organisation: &str,
) -> ApiResult<usize> {
    use entry::Column as C;
    let txn = crate::db::begin_write(db).await?;
    let mut tip = lock_tip(&txn, organisation).await?;
    let batch = entry::Entity::find()
        .filter(C::Organisation.eq(organisation))
        .filter(C::ChainSeq.is_null())
        .order_by_asc(C::Seq)
        .limit(SEAL_BATCH)
        .all(&txn)
        .await?;
    if batch.is_empty() {
        txn.rollback().await.ok();
        return Ok(0);
    }
    for e in &batch {
        let link = tip.link(e);
        let done = entry::Entity::update_many()
            .col_expr(C::ChainSeq, Expr::val(link.chain_seq))
            .col_expr(C::PrevHash, Expr::val(link.prev_hash))
            .col_expr(C::Hash, Expr::val(link.hash))
            .filter(C::Seq.eq(e.seq))
            .filter(C::ChainSeq.is_null())
            .exec(&txn)
            .await?;
        if done.rows_affected == 0 {
            // Another sealer got here first (only possible before the chain had a head
            // to lock): leave this round to it.
            txn.rollback().await.ok();
            return Ok(0);
        }
    }
    sign_tip(&txn, key, organisation, tip).await?;
    crate::db::commit(txn).await?;
    Ok(batch.len())
}

/// Inserts `entries` of `organisation`'s chain already sealed: linked after the chain's
/// tip, in the order given, in one transaction that also signs the new head. The read
/// log writes this way, so that its entries (most of a partner's chain) are written once
/// instead of inserted and then updated by the sealer. Entries of the chain still waiting
/// for the sealer are sealed after these, in their own order.
pub async fn append_sealed(
    db: &DatabaseConnection,
    key: &AuditKey,
    organisation: &str,
    entries: Vec<entry::Model>,
) -> ApiResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let txn = crate::db::begin_write(db).await?;
    let mut tip = lock_tip(&txn, organisation).await?;
    let mut rows = Vec::with_capacity(entries.len());
    for mut e in entries {
        let link = tip.link(&e);
        e.chain_seq = Some(link.chain_seq);
        e.prev_hash = Some(link.prev_hash);
        e.hash = Some(link.hash);
        rows.push(super::insertable(e));
    }
    entry::Entity::insert_many(rows)
        .exec_without_returning(&txn)
        .await?;
    sign_tip(&txn, key, organisation, tip).await?;
    crate::db::commit(txn).await
}

/// Seals new entries every `every` until dropped (a sealing round that fails is retried
/// on the next tick; nothing it did stays half-done). Once an hour (on the service's
/// clock) it also applies the read log's retention ([`prune_reads`]).
pub fn spawn_sealer(
    db: DatabaseConnection,
    key: AuditKey,
    every: std::time::Duration,
) -> SealerHandle {
    let retention = crate::retention::READ_LOG.from_env();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pruned_at: Option<DateTime<Utc>> = None;
        loop {
            tick.tick().await;
            if let Err(error) = seal(&db, &key).await {
                tracing::warn!(service = %key.service, message = %error.message(), "audit sealing failed; retrying");
                continue;
            }
            let now = crate::clock::now();
            let due = pruned_at.is_none_or(|at| now - at >= chrono::Duration::hours(1));
            if let (true, Some(cutoff)) = (due, retention.cutoff(now)) {
                match prune_reads(&db, &key, cutoff).await {
                    Ok(_) => pruned_at = Some(now),
                    Err(error) => {
                        tracing::warn!(service = %key.service, message = %error.message(), "read log retention failed; retrying")
                    }
                }
            }
        }
    });
    SealerHandle(task)
}

/// The chain name a retention signature covers: another namespace than the chain's own
/// heads and checkpoints, so neither can pass for the other.
fn pruned_chain(organisation: &str) -> String {
    format!("{organisation}#pruned")
}

/// Read entries sealed before `cutoff` lose their content (record, fields, actor,
/// credential): each keeps its place in the chain, its hash and its link, and gains a
/// signature over them by `key` saying retention removed it. Returns how many were pruned.
pub async fn prune_reads(
    db: &DatabaseConnection,
    key: &AuditKey,
    cutoff: DateTime<Utc>,
) -> ApiResult<usize> {
    use entry::Column as C;
    let mut pruned = 0;
    loop {
        let batch = entry::Entity::find()
            .filter(C::Action.eq(super::action::READ))
            .filter(C::At.lt(cutoff))
            .filter(C::ChainSeq.is_not_null())
            .filter(C::Hash.is_not_null())
            .filter(C::PrunedAt.is_null())
            .order_by_asc(C::At)
            .limit(SEAL_BATCH)
            .all(db)
            .await?;
        if batch.is_empty() {
            return Ok(pruned);
        }
        let txn = crate::db::begin_write(db).await?;
        let now = crate::clock::now();
        for e in &batch {
            let (Some(seq), Some(hash)) = (e.chain_seq, e.hash.as_deref()) else {
                continue;
            };
            let signature = key.sign(&pruned_chain(&e.organisation), seq, hash, now);
            entry::Entity::update_many()
                .col_expr(C::Action, Expr::val(super::action::PRUNED))
                .col_expr(C::Actor, Expr::val(""))
                .col_expr(C::ActorKind, Expr::val(""))
                .col_expr(C::Credential, Expr::val(""))
                .col_expr(C::RecordType, Expr::val(""))
                .col_expr(C::RecordId, Expr::val(""))
                .col_expr(C::Detail, Expr::val(Option::<String>::None))
                .col_expr(C::PrunedAt, Expr::val(now))
                .col_expr(C::PruneKey, Expr::val(key.public.clone()))
                .col_expr(C::PruneSignature, Expr::val(signature))
                .filter(C::Seq.eq(e.seq))
                .exec(&txn)
                .await?;
        }
        crate::db::commit(txn).await?;
        pruned += batch.len();
    }
}

/// Stops the sealer when dropped (a round cut off mid-way rolls back).
pub struct SealerHandle(tokio::task::JoinHandle<()>);

impl Drop for SealerHandle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where a chain stops holding, and why.
#[derive(Clone, Debug, PartialEq, Eq, async_graphql::SimpleObject)]
#[graphql(shareable)]
pub struct ChainBreak {
    /// The chain place of the first entry that does not hold.
    pub chain_seq: i64,
    /// That entry's id, when it is there at all.
    pub entry_id: Option<String>,
    pub reason: String,
}

/// What verifying one chain found.
#[derive(Clone, Debug, PartialEq, Eq, async_graphql::SimpleObject)]
#[graphql(shareable)]
pub struct ChainReport {
    /// The service whose chain this is.
    pub service: String,
    /// The chain's organisation: a partner's id, empty for the company.
    pub organisation: String,
    /// Entries checked (sealed).
    pub entries: i64,
    /// Entries written but not yet sealed (sealed within seconds; not yet covered).
    pub pending: i64,
    /// Signed checkpoints checked.
    pub checkpoints: i64,
    /// The first entry that does not hold; none when the chain is intact.
    pub broken: Option<ChainBreak>,
}

impl ChainReport {
    pub fn intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// Verifies the chains of `organisations` (every chain when `None`) in this service's
/// tables against the `trusted` public keys.
pub async fn verify<C: ConnectionTrait>(
    db: &C,
    service: &str,
    trusted: &[String],
    organisations: Option<&[String]>,
) -> ApiResult<Vec<ChainReport>> {
    let chains = match organisations {
        Some(list) => list.to_vec(),
        None => {
            let mut all: Vec<String> = entry::Entity::find()
                .select_only()
                .column(entry::Column::Organisation)
                .distinct()
                .into_tuple()
                .all(db)
                .await?;
            let heads: Vec<String> = head::Entity::find()
                .select_only()
                .column(head::Column::Organisation)
                .into_tuple()
                .all(db)
                .await?;
            all.extend(heads);
            all.sort();
            all.dedup();
            all
        }
    };
    let mut reports = Vec::with_capacity(chains.len());
    for organisation in chains {
        reports.push(verify_chain(db, service, trusted, &organisation).await?);
    }
    Ok(reports)
}

/// Pages of entries read at once while verifying.
const VERIFY_PAGE: u64 = 1000;

async fn verify_chain<C: ConnectionTrait>(
    db: &C,
    service: &str,
    trusted: &[String],
    organisation: &str,
) -> ApiResult<ChainReport> {
    use entry::Column as C;
    let checkpoints = checkpoint::Entity::find()
        .filter(checkpoint::Column::Organisation.eq(organisation))
        .order_by_asc(checkpoint::Column::ChainSeq)
        .all(db)
        .await?;
    let head = head::Entity::find_by_id(organisation.to_owned())
        .one(db)
        .await?;
    let pending = entry::Entity::find()
        .filter(C::Organisation.eq(organisation))
        .filter(C::ChainSeq.is_null())
        .count(db)
        .await? as i64;
    let mut report = ChainReport {
        service: service.to_owned(),
        organisation: organisation.to_owned(),
        entries: 0,
        pending,
        checkpoints: checkpoints.len() as i64,
        broken: None,
    };
    let brk = |chain_seq: i64, entry_id: Option<&str>, reason: String| ChainBreak {
        chain_seq,
        entry_id: entry_id.map(str::to_owned),
        reason,
    };
    // Each checkpoint must be signed, and match the entry at its place (checked below).
    for c in &checkpoints {
        if !signed_by(trusted, service, organisation, c.into()) {
            report.broken = Some(brk(
                c.chain_seq,
                None,
                format!(
                    "the checkpoint at entry {} is not signed by a trusted key",
                    c.chain_seq
                ),
            ));
            return Ok(report);
        }
    }
    let mut next_checkpoint = checkpoints.iter().peekable();
    let mut expected: i64 = 1;
    let mut prev = String::new();
    loop {
        let page = entry::Entity::find()
            .filter(C::Organisation.eq(organisation))
            .filter(C::ChainSeq.gte(expected))
            .order_by_asc(C::ChainSeq)
            .limit(VERIFY_PAGE)
            .all(db)
            .await?;
        if page.is_empty() {
            break;
        }
        let ids: Vec<String> = page.iter().map(|e| e.id.clone()).collect();
        let values = value::Entity::find()
            .filter(value::Column::EntryId.is_in(ids))
            .all(db)
            .await?;
        let values: std::collections::HashMap<(String, String), value::Model> = values
            .into_iter()
            .map(|v| ((v.entry_id.clone(), v.side.clone()), v))
            .collect();
        for e in &page {
            let seq = e.chain_seq.unwrap_or_default();
            let broken = if seq != expected {
                Some(brk(
                    expected,
                    None,
                    format!("entry {expected} is missing (the chain goes on at entry {seq})"),
                ))
            } else if e.prev_hash.as_deref() != Some(prev.as_str()) {
                Some(brk(
                    seq,
                    Some(&e.id),
                    format!("entry {seq} does not follow entry {}", seq - 1),
                ))
            } else if let Some(pruned_at) = e.pruned_at {
                // What retention left: the signature must cover this place and hash.
                let place = Signed {
                    chain_seq: seq,
                    hash: e.hash.as_deref().unwrap_or_default(),
                    at: pruned_at,
                    public_key: e.prune_key.as_deref().unwrap_or_default(),
                    signature: e.prune_signature.as_deref().unwrap_or_default(),
                };
                (!signed_by(trusted, service, &pruned_chain(organisation), place)).then(|| {
                    brk(
                        seq,
                        Some(&e.id),
                        format!("entry {seq} was emptied without a signed retention record"),
                    )
                })
            } else if e.hash.as_deref() != Some(entry_hash(&prev, seq, e).as_str()) {
                Some(brk(
                    seq,
                    Some(&e.id),
                    format!("entry {seq} was changed after it was sealed"),
                ))
            } else {
                ["old", "new"].iter().find_map(|side| {
                    let digest = if *side == "old" {
                        &e.old_digest
                    } else {
                        &e.new_digest
                    };
                    let kept = values.get(&(e.id.clone(), (*side).to_owned()));
                    let holds = match (digest, kept) {
                        // Erased (or never personal): the digest alone is kept.
                        (_, None) => true,
                        (Some(digest), Some(v)) => value_digest(&v.salt, &v.value) == *digest,
                        (None, Some(_)) => false,
                    };
                    (!holds).then(|| {
                        brk(
                            seq,
                            Some(&e.id),
                            format!("the {side} value of entry {seq} was changed"),
                        )
                    })
                })
            };
            if broken.is_some() {
                report.broken = broken;
                return Ok(report);
            }
            // Entries are contiguous here, so a checkpoint's place is reached exactly.
            while let Some(c) = next_checkpoint.next_if(|c| c.chain_seq <= seq) {
                if e.hash.as_deref() != Some(c.hash.as_str()) {
                    report.broken = Some(brk(
                        c.chain_seq,
                        None,
                        format!(
                            "entry {} differs from the signed checkpoint at that place",
                            c.chain_seq
                        ),
                    ));
                    return Ok(report);
                }
            }
            prev = e.hash.clone().unwrap_or_default();
            expected += 1;
            report.entries += 1;
        }
    }
    let last = expected - 1;
    if let Some(c) = next_checkpoint.next() {
        report.broken = Some(brk(
            last + 1,
            None,
            format!(
                "entries {} to {} are missing (a signed checkpoint covers entry {})",
                last + 1,
                c.chain_seq,
                c.chain_seq
            ),
        ));
        return Ok(report);
    }
    report.broken = match head {
        None if last > 0 => Some(brk(1, None, "the chain has no signed head".to_owned())),
        None => None,
        Some(h) if !signed_by(trusted, service, organisation, (&h).into()) => Some(brk(
            h.chain_seq,
            None,
            "the chain's head is not signed by a trusted key".to_owned(),
        )),
        Some(h) if h.chain_seq > last => Some(brk(
            last + 1,
            None,
            format!(
                "entries {} to {} are missing (the signed head is at entry {})",
                last + 1,
                h.chain_seq,
                h.chain_seq
            ),
        )),
        Some(h) if h.chain_seq < last => Some(brk(
            h.chain_seq + 1,
            None,
            format!(
                "entries after {} are not covered by the signed head",
                h.chain_seq
            ),
        )),
        Some(h) if h.hash != prev => Some(brk(
            last,
            None,
            format!("entry {last} differs from the signed head"),
        )),
        Some(_) => None,
    };
    Ok(report)
}

/// The process's audit keys: the one it signs with (one key for all its services; each
/// signature names its service) and the public keys it trusts besides (earlier keys,
/// after a rotation).
struct Installed {
    signing: String,
    public: String,
    trusted: Vec<String>,
}

static KEYS: std::sync::RwLock<Option<Installed>> = std::sync::RwLock::new(None);

/// Sets the process's audit signing key (base64 PKCS#8) and the older public keys its
/// verifications still trust. A key installed earlier in the process stays trusted (its
/// sealers may still be running: several systems in one test process).
pub fn install(signing: &str, also_trusted: Vec<String>) -> anyhow::Result<()> {
    let key = AuditKey::from_base64("", signing)?;
    let mut keys = KEYS.write().unwrap_or_else(|e| e.into_inner());
    let mut trusted = also_trusted;
    if let Some(earlier) = keys.take() {
        trusted.push(earlier.public);
        trusted.extend(earlier.trusted);
    }
    trusted.retain(|k| *k != key.public);
    trusted.sort();
    trusted.dedup();
    *keys = Some(Installed {
        signing: signing.trim().to_owned(),
        public: key.public.clone(),
        trusted,
    });
    Ok(())
}

/// The signing key for `service`; a process that installed none (a service's own tests)
/// signs with a key of its own made on first use, which verifies for as long as it runs.
pub fn key_for(service: &str) -> anyhow::Result<AuditKey> {
    if let Some(installed) = KEYS.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return AuditKey::from_base64(service, &installed.signing);
    }
    let generated = AuditKey::generate_base64()?;
    let mut keys = KEYS.write().unwrap_or_else(|e| e.into_inner());
    if keys.is_none() {
        let public = AuditKey::from_base64(service, &generated)?.public;
        *keys = Some(Installed {
            signing: generated,
            public,
            trusted: Vec::new(),
        });
    }
    let signing = keys.as_ref().map(|k| k.signing.clone()).unwrap_or_default();
    AuditKey::from_base64(service, &signing)
}

/// The public keys a verification trusts: the process's own and the older ones.
pub fn trusted_keys() -> Vec<String> {
    match KEYS.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        Some(installed) => std::iter::once(installed.public.clone())
            .chain(installed.trusted.iter().cloned())
            .collect(),
        None => Vec::new(),
    }
}
