//! The audit log of a service: who changed which field of which record from what to what,
//! when and through which credential, kept in the service's own `audit_entries` in the
//! same transaction as the change (so a change and its entry commit together or not at
//! all).
//!
//! **Chains.** Entries are chained per organisation (the acting caller's: a partner's id,
//! or empty for the company and the system): the sealer ([`chain::seal`], a background
//! round every second) gives each new entry the next place in its chain and a SHA-256
//! over its content and the previous entry's hash, and signs the chain's new head
//! (Ed25519). Every hundred entries or ten minutes the head is also kept as a checkpoint.
//! Writing stays one insert (no lock on a chain head inside the caller's transaction);
//! an entry is tamper-evident from the moment it is sealed. [`chain::verify`] recomputes a
//! chain and names the first entry that is missing, altered or not covered by a signed
//! head; `crm audit verify` and `Query.auditVerification` run it.
//!
//! **Values beside the chain.** An entry commits to a salted digest of each value
//! (`audit_values`: salt and value). Erasure deletes the value row: the digest, without
//! its salt, no longer tells anything about the value, and the chain still verifies.
//!
//! **Who acted.** The HTTP layer runs each request [`acting_as`] its caller; writes made
//! outside a request (event consumers, jobs, seeding) are the system's.

pub mod chain;
pub mod graphql;
pub mod log;
pub mod reads;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait, Iterable};

use crate::ApiResult;
use crate::principal::{Principal, PrincipalKind};
use crate::record::Record;

tokio::task_local! {
    static ACTOR: Actor;
}

/// Who made a change, as the audit log keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// The user's or API key's id (`system` for the service itself).
    pub subject: String,
    /// `internal`, `supplier`, `distributor`, `integrator`, `anonymous` or `system`.
    pub kind: String,
    /// The acting organisation: a partner's id, empty for the company.
    pub organisation: String,
    /// How the caller proved who it is: `session:<id>`, `api_key:<id>`, `token` (a signed
    /// token without a session) or `service`.
    pub credential: String,
}

impl Actor {
    pub fn of(who: &Principal) -> Self {
        let credential = match (&who.session_id, who.kind) {
            (Some(session), _) => format!("session:{session}"),
            (None, _) if who.subject.starts_with("key_") => format!("api_key:{}", who.subject),
            (None, PrincipalKind::Anonymous) => "none".to_owned(),
            (None, _) => "token".to_owned(),
        };
        Self {
            subject: who.subject.clone(),
            kind: who.kind.as_str().to_owned(),
            organisation: who.partner().unwrap_or_default().to_owned(),
            credential,
        }
    }

    /// The service itself (event consumers, jobs, seeding).
    pub fn system() -> Self {
        Self {
            subject: "system".to_owned(),
            kind: "system".to_owned(),
            organisation: String::new(),
            credential: "service".to_owned(),
        }
    }
}

/// Runs `work` with `actor` as the author of every change it makes.
pub async fn acting_as<F: std::future::Future>(actor: Actor, work: F) -> F::Output {
    ACTOR.scope(actor, work).await
}

/// The author of changes made now: the request's caller, else the system.
pub fn current_actor() -> Actor {
    ACTOR
        .try_with(Clone::clone)
        .unwrap_or_else(|_| Actor::system())
}

/// What happened to a record, per entry.
pub mod action {
    /// A field's first value, when the record was created.
    pub const CREATED: &str = "created";
    /// A field's value changed.
    pub const CHANGED: &str = "changed";
    /// A partner read the record (`detail` names the fields).
    pub const READ: &str = "read";
    /// The person the record is (or its free text mentioned) was erased: `detail` says
    /// which erasure and how much it changed, never what was there.
    pub const ERASED: &str = "erased";
    /// What is left of a read past the read log's retention: its place in the chain.
    pub const PRUNED: &str = "pruned";
}

pub mod entry {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_entries")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub id: String,
        pub organisation: String,
        pub at: DateTimeUtc,
        pub actor: String,
        pub actor_kind: String,
        pub credential: String,
        pub action: String,
        pub record_type: String,
        pub record_id: String,
        pub field: Option<String>,
        pub old_digest: Option<String>,
        pub new_digest: Option<String>,
        /// What a read returned (its fields and operation), as JSON.
        pub detail: Option<String>,
        pub chain_seq: Option<i64>,
        pub prev_hash: Option<String>,
        pub hash: Option<String>,
        /// When retention removed the entry's content (a read past its time): the row
        /// keeps its place, hash and link, and the signature below covers them.
        pub pruned_at: Option<DateTimeUtc>,
        /// The public key (base64) of the retention signature.
        pub prune_key: Option<String>,
        pub prune_signature: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod value {
    use sea_orm::entity::prelude::*;

    /// A personal value an entry commits to, with the salt of its digest. Erasure
    /// deletes the row; the entry keeps only the digest.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_values")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub entry_id: String,
        /// `old` or `new`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub side: String,
        pub salt: String,
        pub value: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A signed position of one chain (its head, or a checkpoint kept for good).
pub mod head {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_heads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub organisation: String,
        pub chain_seq: i64,
        pub hash: String,
        pub signed_at: DateTimeUtc,
        pub public_key: String,
        pub signature: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod checkpoint {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_checkpoints")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub organisation: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub chain_seq: i64,
        pub hash: String,
        pub signed_at: DateTimeUtc,
        pub public_key: String,
        pub signature: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The columns no entry records: the row's identity and bookkeeping the record layer
/// keeps itself, and the organisation an external id belongs to (part of the id's key).
const UNRECORDED: &[&str] = &[
    "id",
    "version",
    "created_at",
    "updated_at",
    "external_namespace",
];

/// A column's name as the API spells its field (`lifecycle_stage` → `lifecycleStage`).
pub fn field_name(column: &str) -> String {
    let mut out = String::with_capacity(column.len());
    let mut upper = false;
    for c in column.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A column's value as text (`None`: null).
pub fn text_of(value: &sea_orm::Value) -> Option<String> {
    use sea_orm::Value as V;
    if *value == value.as_null() {
        return None;
    }
    Some(match value {
        V::Bool(Some(v)) => v.to_string(),
        V::TinyInt(Some(v)) => v.to_string(),
        V::SmallInt(Some(v)) => v.to_string(),
        V::Int(Some(v)) => v.to_string(),
        V::BigInt(Some(v)) => v.to_string(),
        V::Unsigned(Some(v)) => v.to_string(),
        V::BigUnsigned(Some(v)) => v.to_string(),
        V::Float(Some(v)) => v.to_string(),
        V::Double(Some(v)) => v.to_string(),
        V::String(Some(v)) => v.clone(),
        V::Json(Some(v)) => v.to_string(),
        V::ChronoDateTimeUtc(Some(v)) => v.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        V::ChronoDate(Some(v)) => v.to_string(),
        // Any other type as its SQL literal, unquoted.
        other => other.to_string().trim_matches('\'').to_owned(),
    })
}

/// One field's change, before it is written.
struct Change {
    field: String,
    old: Option<String>,
    new: Option<String>,
}

/// The field changes from `before` (`None`: created) to `after`.
fn changes<E: Record>(before: Option<&E::Model>, after: &E::Model) -> Vec<Change>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    use sea_orm::{IdenStatic, ModelTrait};
    E::Column::iter()
        .filter(|column| !UNRECORDED.contains(&column.as_str()))
        .filter_map(|column| {
            let new = text_of(&after.get(column));
            let old = before.and_then(|b| text_of(&b.get(column)));
            let changed = match before {
                Some(_) => old != new,
                None => new.is_some(),
            };
            changed.then(|| Change {
                field: field_name(column.as_str()),
                old,
                new,
            })
        })
        .collect()
}

/// A new, not yet sealed entry `id` by `actor` about one record (its type and id),
/// recording nothing else yet: the caller sets the field and digests of a change, or the
/// detail of a read. Its `seq` is a placeholder until [`insertable`] hands it over.
fn new_entry(
    id: String,
    actor: &Actor,
    at: DateTime<Utc>,
    action: &str,
    (record_type, record_id): (&str, &str),
) -> entry::Model {
    entry::Model {
        seq: 0,
        id,
        organisation: actor.organisation.clone(),
        at,
        actor: actor.subject.clone(),
        actor_kind: actor.kind.clone(),
        credential: actor.credential.clone(),
        action: action.to_owned(),
        record_type: record_type.to_owned(),
        record_id: record_id.to_owned(),
        field: None,
        old_digest: None,
        new_digest: None,
        detail: None,
        chain_seq: None,
        prev_hash: None,
        hash: None,
        pruned_at: None,
        prune_key: None,
        prune_signature: None,
    }
}

/// A new entry's id, ordered by time: entries are written in time order (a partner's reads
/// thousands a second at scale), so a time-ordered id keeps the unique index's inserts at
/// its right edge where a random one lands on a random leaf, which at millions of entries is
/// a page read and a page write per entry. The id tells nothing its reader cannot read in
/// the entry's own `at`.
fn new_entry_id() -> String {
    format!("aud_{}", uuid::Uuid::now_v7().simple())
}

/// The row that inserts `e`: every column but its insertion place, `seq`, which is the
/// database's to give.
fn insertable(e: entry::Model) -> entry::ActiveModel {
    let mut row = entry::ActiveModel::from(e).reset_all();
    row.seq = sea_orm::ActiveValue::NotSet;
    row
}

/// Records the field changes of one write (`before` `None`: a creation) as entries by the
/// current actor, on `db` (inside the write's transaction when there is one).
pub async fn record_write<E: Record, C: ConnectionTrait>(
    db: &C,
    before: Option<&E::Model>,
    after: &E::Model,
) -> ApiResult<()>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    if !E::AUDITED {
        return Ok(());
    }
    let changes = changes::<E>(before, after);
    if changes.is_empty() {
        return Ok(());
    }
    let actor = current_actor();
    let at = crate::clock::now();
    let action = if before.is_some() {
        action::CHANGED
    } else {
        action::CREATED
    };
    let record_type = E::default().table_name();
    let mut entries = Vec::with_capacity(changes.len());
    let mut values = Vec::new();
    for change in changes {
        let id = new_entry_id();
        let entry = new_entry(id.clone(), &actor, at, action, (record_type, E::id(after)));
        let mut digest_of = |side: &str, value: Option<String>| {
            value.map(|value| {
                let salt = chain::new_salt();
                let digest = chain::value_digest(&salt, &value);
                values.push(value::ActiveModel {
                    entry_id: Set(id.clone()),
                    side: Set(side.to_owned()),
                    salt: Set(salt),
                    value: Set(value),
                });
                digest
            })
        };
        let old_digest = digest_of("old", change.old);
        let new_digest = digest_of("new", change.new);
        entries.push(insertable(entry::Model {
            field: Some(change.field),
            old_digest,
            new_digest,
            ..entry
        }));
    }
    entry::Entity::insert_many(entries)
        .exec_without_returning(db)
        .await?;
    if !values.is_empty() {
        value::Entity::insert_many(values)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Records that an erasure changed a record (its type and id), by the current actor,
/// with `detail` (never a value that was erased).
pub async fn record_erasure<C: ConnectionTrait>(
    db: &C,
    record: (&str, &str),
    detail: serde_json::Value,
) -> ApiResult<()> {
    let entry = new_entry(
        new_entry_id(),
        &current_actor(),
        crate::clock::now(),
        action::ERASED,
        record,
    );
    insertable(entry::Model {
        detail: Some(detail.to_string()),
        ..entry
    })
    .insert(db)
    .await?;
    Ok(())
}

/// The values kept for `entries` (by entry id and side, `old` or `new`); an erased value
/// has none.
pub async fn kept_values<C: ConnectionTrait>(
    db: &C,
    entries: &[entry::Model],
) -> ApiResult<std::collections::HashMap<(String, String), String>> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let mut values = std::collections::HashMap::new();
    for chunk in entries.chunks(500) {
        values.extend(
            value::Entity::find()
                .filter(value::Column::EntryId.is_in(chunk.iter().map(|e| e.id.clone())))
                .all(db)
                .await?
                .into_iter()
                .map(|v| ((v.entry_id, v.side), v.value)),
        );
    }
    Ok(values)
}

/// An entry's kept values as one reader sees them: `(old, new, withheld)`. Values are
/// withheld whole when one was erased (with the person it was about) and, for a partner
/// (`partner`), when the field is a reference to another record (its id could name a
/// record the partner can't see); `drop_old` leaves out the old value alone (what a write
/// that shared a row replaced).
pub fn shown_values(
    e: &entry::Model,
    kept: &mut std::collections::HashMap<(String, String), String>,
    partner: bool,
    drop_old: bool,
) -> (Option<String>, Option<String>, bool) {
    let mut take = |side: &str| kept.remove(&(e.id.clone(), side.to_owned()));
    let (old, new) = (take("old"), take("new"));
    let erased =
        (e.old_digest.is_some() && old.is_none()) || (e.new_digest.is_some() && new.is_none());
    let reference = e
        .field
        .as_deref()
        .is_some_and(|f| f.ends_with("Id") && f != "externalId");
    if erased || (reference && partner) {
        return (None, None, true);
    }
    (old.filter(|_| !drop_old), new, false)
}

/// The time an entry was written, as its hash reads it.
pub fn at_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_read_as_the_api_spells_fields() {
        assert_eq!(field_name("lifecycle_stage"), "lifecycleStage");
        assert_eq!(field_name("name"), "name");
        assert_eq!(
            field_name("consent_marketing_email"),
            "consentMarketingEmail"
        );
    }

    #[test]
    fn values_read_as_text_and_nulls_as_none() {
        assert_eq!(text_of(&sea_orm::Value::String(None)), None);
        assert_eq!(
            text_of(&sea_orm::Value::Bool(Some(true))).as_deref(),
            Some("true")
        );
        assert_eq!(
            text_of(&sea_orm::Value::String(Some("Acme".into()))).as_deref(),
            Some("Acme")
        );
        assert_eq!(
            text_of(&sea_orm::Value::BigInt(Some(-12))).as_deref(),
            Some("-12")
        );
    }

    #[test]
    fn a_request_acts_as_its_caller_and_anything_else_as_the_system() {
        let who = Principal {
            session_id: Some("ses_1".into()),
            partner_id: Some("ptn_1".into()),
            kind: PrincipalKind::Distributor,
            ..Principal::local_operator()
        };
        let actor = Actor::of(&who);
        assert_eq!(actor.credential, "session:ses_1");
        assert_eq!(actor.organisation, "ptn_1");
        let inside = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(acting_as(actor.clone(), async { current_actor() }));
        assert_eq!(inside, actor);
        assert_eq!(current_actor(), Actor::system());
    }
}
