//! The audit log as its readers page through it (`Query.auditLog`): every service adds the
//! entries of its own tables to one federated `AuditLog`, and each reader gets the entries
//! the policy's `AuditEntry` read rule gives it, filtered in SQL:
//!
//! - **`all`** (admin, management): every entry, values included, filtered by actor,
//!   organisation, record type, record and action.
//! - **`own_org`** (a partner administrator): its own organisation's reads, and the
//!   changes its organisation and the company made to records the partner sees now. A
//!   field the partner may not read (masked for it on some record, or not a field of the
//!   type in the API) has no entries for it; where the policy masks a type's `version`
//!   from it (a supplier's accounts), the company's changes to that type don't show at
//!   all, as in each record's `history`. Values of references (`…Id`) are withheld, and
//!   the company's people appear as "the company".
//!
//! Entries are returned newest first; a page ends on a whole moment (every entry with the
//! last entry's time is on it), so `before: <that time>` continues without losing the rest
//! of a write whose fields share one time.

use std::collections::HashMap;

use async_graphql::{Enum, ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use crm_contract::ErrorCode;
use futures_util::future::BoxFuture;
use sea_orm::sea_query::{Alias, Condition, Expr, Query, SelectStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};

use super::{action, entry};
use crate::access::{Action, Scope, Scoped, decide, masks, visible};
use crate::principal::Principal;
use crate::{ApiError, ApiResult};

/// The policy type whose read rule decides who reads the audit log.
pub const POLICY_TYPE: &str = "AuditEntry";

/// The most entries one page answers (before it is completed to a whole moment).
pub const MAX_PAGE: i32 = 200;

/// What happened, per entry.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditAction {
    /// A record was created (one entry per field it was created with).
    Created,
    /// A field changed.
    Changed,
    /// A partner's user or key read the record.
    Read,
    /// The person the record is about was erased (or its text named them): the entry
    /// says which erasure, never what was there. Staff only.
    Erased,
}

impl AuditAction {
    fn stored(self) -> &'static str {
        match self {
            Self::Created => action::CREATED,
            Self::Changed => action::CHANGED,
            Self::Read => action::READ,
            Self::Erased => action::ERASED,
        }
    }

    fn of(stored: &str) -> Self {
        match stored {
            action::CREATED => Self::Created,
            action::READ => Self::Read,
            action::ERASED => Self::Erased,
            _ => Self::Changed,
        }
    }
}

/// Which entries to read; every part left out matches all.
#[derive(InputObject, Clone, Debug, Default, Serialize, Deserialize)]
#[graphql(shareable)]
pub struct AuditFilter {
    /// Who acted: a user's or API key's id (or `system`).
    pub actor: Option<ID>,
    /// Whose chain: a partner's id, or `company`.
    pub organisation: Option<ID>,
    /// The record's type as the API names it (`Contact`, `Order`, …).
    pub record_type: Option<String>,
    pub record_id: Option<ID>,
    pub action: Option<AuditAction>,
    /// Only entries strictly older than this (the `before` of the next page).
    pub before: Option<DateTime<Utc>>,
}

/// What an `AuditLog` asks every service: its filter and page size, as the entity's key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogQuery {
    pub filter: AuditFilter,
    pub first: i32,
}

impl LogQuery {
    /// A query for pages of `first` entries (at most [`MAX_PAGE`]).
    pub fn new(filter: AuditFilter, first: i32) -> ApiResult<Self> {
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(ApiError::validation(
                "first",
                format!("between 1 and {MAX_PAGE}"),
            ));
        }
        Ok(Self { filter, first })
    }

    /// The entity key that carries the query to every service.
    pub fn key(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(key: &str) -> ApiResult<Self> {
        let query: Self = serde_json::from_str(key)
            .map_err(|_| ApiError::validation("query", "not an audit log query"))?;
        Self::new(query.filter, query.first)
    }
}

/// One entry of the audit log, as its reader may see it.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(shareable)]
pub struct AuditLogEntry {
    pub at: DateTime<Utc>,
    /// The service that keeps the entry.
    pub service: String,
    /// The acting organisation: a partner's id, null for the company.
    pub organisation: Option<String>,
    /// Who acted; null where the reader is not shown (the company's people, to partners).
    pub actor: Option<String>,
    /// `internal`, `supplier`, `distributor`, `integrator` or `system`.
    pub actor_kind: String,
    /// How the actor signed in (`session:…`, `api_key:…`, `token`, `service`); shown with
    /// the actor.
    pub credential: Option<String>,
    pub action: AuditAction,
    /// The record's type as the API names it.
    pub record_type: String,
    pub record_id: String,
    /// The changed field (changes only).
    pub field: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    /// The values are not shown: erased with the person they were about, or a reference
    /// to a record the reader is not shown.
    pub values_withheld: bool,
    /// The fields a read returned (reads only).
    pub fields_read: Vec<String>,
    /// The client's operation name of a read (reads only, when it named one).
    pub operation: Option<String>,
    /// The entry has its place in its organisation's hash chain (within a second of being
    /// written).
    pub sealed: bool,
}

/// One service's page of the audit log.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(shareable)]
pub struct AuditLogPage {
    pub service: String,
    /// Newest first.
    pub entries: Vec<AuditLogEntry>,
    /// Older entries match too: ask again with `before` the last entry's time.
    pub has_more: bool,
}

/// A record type of a service whose changes and reads the log keeps: its table, its
/// names, and the ids of its rows a caller reads now (as a subquery).
pub struct Audited {
    pub table: &'static str,
    pub api_type: &'static str,
    pub policy_type: &'static str,
    /// The fields that decide whether partners see a row ([`Scoped::PARTNER_VISIBILITY`]).
    partner_visibility: &'static [&'static str],
    visible: for<'a> fn(&'a Principal, DateTime<Utc>) -> BoxFuture<'a, ApiResult<SelectStatement>>,
}

/// `E` as an audited type named `api_type` in the API.
pub fn audited<E: Scoped>(api_type: &'static str) -> Audited
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    Audited {
        table: E::default().table_name(),
        api_type,
        policy_type: E::POLICY_TYPE,
        partner_visibility: E::PARTNER_VISIBILITY,
        visible: readable_ids::<E>,
    }
}

fn readable_ids<E: Scoped>(
    who: &Principal,
    at: DateTime<Utc>,
) -> BoxFuture<'_, ApiResult<SelectStatement>>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    Box::pin(async move {
        let condition = visible::<E>(who, Action::Read, at).await?;
        Ok(Query::select()
            .column((E::default(), Alias::new("id")))
            .from(E::default())
            .cond_where(condition)
            .to_owned())
    })
}

/// The fields of `api_type` a partner reads on every record of it (neither masked on any
/// record nor missing from the API), as the log names fields.
fn always_shown(
    registry: &async_graphql::registry::Registry,
    api_type: &str,
    masks: &crate::access::Masks,
) -> Vec<String> {
    registry
        .types
        .get(api_type)
        .and_then(|t| t.fields())
        .map(|fields| {
            fields
                .keys()
                .filter(|f| !masks.may_hide(f))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Who reads the log, by the policy's `AuditEntry` read rule.
pub enum Reader {
    /// Every entry (`all`).
    Staff,
    /// A partner administrator (`own_org`): its organisation's entries and the company's
    /// changes to what it sees.
    PartnerAdmin(String),
}

/// How `who` reads the log; anyone without the rule is refused.
pub async fn reader(who: &Principal) -> ApiResult<Reader> {
    let decision = decide(who, POLICY_TYPE, Action::Read).await?;
    if decision.grants_all() {
        return Ok(Reader::Staff);
    }
    match who
        .partner()
        .filter(|_| decision.scopes().contains(&Scope::OwnOrg))
    {
        Some(partner) => Ok(Reader::PartnerAdmin(partner.to_owned())),
        None => Err(ApiError::denied(
            ErrorCode::Forbidden,
            "you may not read the audit log".to_owned(),
        )),
    }
}

/// What a partner administrator of `partner` reads of one type's entries.
async fn partner_condition(
    registry: &async_graphql::registry::Registry,
    who: &Principal,
    partner: &str,
    ty: &Audited,
) -> ApiResult<Condition> {
    let type_masks = masks(who, ty.policy_type).await?;
    let shown = always_shown(registry, ty.api_type, &type_masks);
    let ids = (ty.visible)(who, crate::clock::now()).await?;
    // Changes: of fields it reads on every record, of records it sees now, made by its
    // own organisation or (where the type's history shows to it at all) by the company.
    let mut authors = Condition::any().add(entry::Column::Organisation.eq(partner));
    if shown.iter().any(|f| f == "version") {
        authors = authors.add(entry::Column::Organisation.eq(""));
    }
    let mut changes = Condition::all()
        .add(entry::Column::Action.ne(action::READ))
        .add(entry::Column::Field.is_in(shown))
        .add(Expr::col(entry::Column::RecordId).in_subquery(ids))
        .add(authors);
    // Only what was written since the row's partner visibility last changed: what was
    // written while it was internal stays internal.
    if !ty.partner_visibility.is_empty() {
        let later = Alias::new("later");
        let flip = Query::select()
            .expr(Expr::val(1))
            .from_as(entry::Entity, later.clone())
            .and_where(
                Expr::col((later.clone(), entry::Column::RecordId))
                    .equals((entry::Entity, entry::Column::RecordId)),
            )
            .and_where(
                Expr::col((later.clone(), entry::Column::Field))
                    .is_in(ty.partner_visibility.iter().copied()),
            )
            .and_where(
                Expr::col((later, entry::Column::At))
                    .gt(Expr::col((entry::Entity, entry::Column::At))),
            )
            .to_owned();
        changes = changes.add(Expr::exists(flip).not());
    }
    // Reads: its own organisation's, which name the fields it was given.
    let reads = Condition::all()
        .add(entry::Column::Action.eq(action::READ))
        .add(entry::Column::Organisation.eq(partner));
    Ok(Condition::all()
        .add(entry::Column::RecordType.eq(ty.table))
        .add(Condition::any().add(changes).add(reads)))
}

/// A page of this service's entries for the request's caller.
pub async fn page(
    ctx: &async_graphql::Context<'_>,
    service: &str,
    types: &[Audited],
    key: &str,
) -> ApiResult<AuditLogPage> {
    let LogQuery { filter, first } = LogQuery::parse(key)?;
    let who = Principal::of(ctx);
    let partner = match reader(&who).await? {
        Reader::Staff => None,
        Reader::PartnerAdmin(partner) => Some(partner),
    };
    let partner = partner.as_deref();
    let staff = partner.is_none();
    // What retention left of old reads is a place in the chain, not an entry to read.
    let mut condition = Condition::all().add(entry::Column::Action.ne(action::PRUNED));
    if let Some(partner) = partner {
        let mut readable = Condition::any();
        for ty in types {
            readable =
                readable.add(partner_condition(&ctx.schema_env.registry, &who, partner, ty).await?);
        }
        condition = condition.add(readable);
        // The actor of the company's entries is not shown to a partner: it can't select
        // by it either.
        if filter.actor.is_some() {
            condition = condition.add(entry::Column::Organisation.eq(partner));
        }
    }
    if let Some(actor) = &filter.actor {
        condition = condition.add(entry::Column::Actor.eq(actor.as_str()));
    }
    if let Some(organisation) = &filter.organisation {
        let chain = if organisation.as_str() == super::graphql::COMPANY_CHAIN {
            ""
        } else {
            organisation.as_str()
        };
        condition = condition.add(entry::Column::Organisation.eq(chain));
    }
    if let Some(record_type) = &filter.record_type {
        let table = types
            .iter()
            .find(|t| t.api_type == record_type)
            .map(|t| t.table)
            .unwrap_or(record_type.as_str());
        condition = condition.add(entry::Column::RecordType.eq(table));
    }
    if let Some(id) = &filter.record_id {
        condition = condition.add(entry::Column::RecordId.eq(id.as_str()));
    }
    if let Some(action) = filter.action {
        condition = condition.add(entry::Column::Action.eq(action.stored()));
    }
    if let Some(before) = filter.before {
        condition = condition.add(entry::Column::At.lt(before));
    }
    let db = crate::graphql::db(ctx)?;
    let mut entries: Vec<entry::Model> = entry::Entity::find()
        .filter(condition.clone())
        .order_by_desc(entry::Column::At)
        .order_by_desc(entry::Column::Seq)
        .limit(first as u64 + 1)
        .all(db)
        .await?;
    let has_more = entries.len() > first as usize;
    entries.truncate(first as usize);
    // The page ends on a whole moment: the rest of the last entry's time comes with it.
    if has_more && let Some(last) = entries.last() {
        let (at, seq) = (last.at, last.seq);
        let rest = entry::Entity::find()
            .filter(condition)
            .filter(entry::Column::At.eq(at))
            .filter(entry::Column::Seq.lt(seq))
            .order_by_desc(entry::Column::Seq)
            .all(db)
            .await?;
        entries.extend(rest);
    }
    let mut values = super::kept_values(db, &entries).await?;
    // For a partner: when each row on the page was last shared or unshared, since what a
    // sharing write replaced was written while the row was internal.
    let mut shared_at: HashMap<String, DateTime<Utc>> = HashMap::new();
    if partner.is_some() {
        for ty in types.iter().filter(|t| !t.partner_visibility.is_empty()) {
            let ids = entries
                .iter()
                .filter(|e| e.record_type == ty.table)
                .map(|e| e.record_id.clone());
            let flips = entry::Entity::find()
                .filter(entry::Column::RecordId.is_in(ids))
                .filter(entry::Column::Field.is_in(ty.partner_visibility.iter().copied()))
                .all(db)
                .await?;
            for flip in flips {
                let at = shared_at.entry(flip.record_id).or_insert(flip.at);
                *at = Ord::max(*at, flip.at);
            }
        }
    }
    let api_type = |table: &str| {
        types
            .iter()
            .find(|t| t.table == table)
            .map(|t| t.api_type.to_owned())
            .unwrap_or_else(|| table.to_owned())
    };
    let entries = entries
        .into_iter()
        .map(|e| {
            let (old, new, withheld) = super::shown_values(
                &e,
                &mut values,
                partner.is_some(),
                shared_at.get(&e.record_id) == Some(&e.at),
            );
            let own = staff || partner == Some(e.organisation.as_str());
            let detail: serde_json::Value = e
                .detail
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or_default();
            AuditLogEntry {
                at: e.at,
                service: service.to_owned(),
                organisation: (!e.organisation.is_empty()).then_some(e.organisation),
                actor: own.then_some(e.actor),
                actor_kind: e.actor_kind,
                credential: own.then_some(e.credential),
                action: AuditAction::of(&e.action),
                record_type: api_type(&e.record_type),
                record_id: e.record_id,
                field: e.field,
                old_value: old,
                new_value: new,
                values_withheld: withheld,
                fields_read: detail["fields"]
                    .as_array()
                    .map(|f| {
                        f.iter()
                            .filter_map(|f| f.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                operation: detail["operation"].as_str().map(str::to_owned),
                sealed: e.chain_seq.is_some(),
            }
        })
        .collect();
    Ok(AuditLogPage {
        service: service.to_owned(),
        entries,
        has_more,
    })
}

/// Declares the `AuditLog` entity (keyed by its query) and this service's field on it,
/// `$field`, answering from `$service`'s entries of the types `$types` lists.
#[macro_export]
macro_rules! audit_log_entity {
    ($field:ident, $service:expr, $types:path) => {
        /// A page of the audit log: every service adds its own entries.
        #[derive(async_graphql::SimpleObject, Clone, Debug)]
        #[graphql(complex)]
        pub struct AuditLog {
            /// The filter and page size, as every service reads them.
            pub query: String,
        }

        #[async_graphql::ComplexObject]
        impl AuditLog {
            /// This service's entries.
            async fn $field(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<$crate::audit::log::AuditLogPage> {
                Ok($crate::audit::log::page(ctx, $service, &$types(), &self.query).await?)
            }
        }

        #[derive(Default)]
        pub struct AuditLogEntityQuery;

        #[async_graphql::Object]
        impl AuditLogEntityQuery {
            /// Federation: a page of the audit log for `query`.
            #[graphql(entity)]
            async fn find_audit_log_by_query(&self, query: String) -> AuditLog {
                AuditLog { query }
            }
        }
    };
}
