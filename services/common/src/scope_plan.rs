//! How a scoped page reaches its rows: by walking the page's sort order and testing each
//! row against the scope (fast when the scope holds many of the rows), or by collecting
//! the scope's ids first and sorting only those (fast when it holds few).
//!
//! A database chooses between the two from statistics that assume visible rows are spread
//! evenly, and at scale it chose wrongly for small scopes: the smallest supplier's first
//! page of accounts (4,029 of 1M) walked 12k rows of the sort index, testing each (24 ms
//! p50 on PostgreSQL), and with a page of 21 its orders page walked for 252 ms. So the
//! service decides, from a capped count: it reads at most `sparse_at_most + 1` ids of the
//! scope from where the scope is kept ([`Scoped::scope_ids`]); when that many are not
//! there the scope is sparse, and the page's query asks for `id IN (those ids)` in place of
//! the scope's condition, which the database answers by primary key. The ids are the
//! scope itself, read by the same request at the same time `at` from the same rows the
//! condition tests, so the two forms hold the same rows (the read matrix test reads every
//! list of every persona both ways and compares them). Against the condition kept beside
//! the ids as well, this halves the work of a sparse page: each collected row is fetched
//! once instead of fetched and probed again.
//!
//! A dense answer is remembered per (type, partner, scopes) for [`DENSE_FOR`], so a large
//! scope pays for the capped read once in a while, not on every page.
//!
//! Both ways read rows the page does not show: the walk tests ~`page ÷ density` rows, the
//! collection fetches the whole scope to sort it. Where a type keeps its scope one row per
//! record with the page's sort key copied ([`OrderedScope`]: a partner's accounts with
//! their names, a supplier's orders with their creation times), the page walks those rows
//! in sort order instead and reads one page of them, for any size of scope. The copies are
//! written in the transaction that changes what they copy; the read matrix test reads every
//! list of every persona through the copies and through the conditions and compares them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseConnection, ExprTrait};

use crate::access::{Decision, Scope, Scoped};
use crate::error::ApiResult;
use crate::principal::Principal;

/// The largest scope collected first. Walking the sort order costs about
/// `page × table rows ÷ scope rows` probes and collecting costs `scope rows` fetches: they
/// meet near √(page × table rows), 7,000 for a page of 50 over 1M rows. Below the meeting
/// point collecting wins by more the smaller the scope, so the cap sits under it.
pub const DEFAULT_SPARSE_AT_MOST: u64 = 5_000;

/// How long a scope found dense is taken as dense without reading it again.
pub const DENSE_FOR: Duration = Duration::from_secs(30);

/// The most (type, partner, scopes) answers remembered.
const REMEMBERED: usize = 4_096;

/// The largest scope collected first, for the whole process (`crm --sparse-scope-at-most`;
/// 0 walks every page). One setting per process because it tunes the plan, never the rows.
static SPARSE_AT_MOST: AtomicU64 = AtomicU64::new(DEFAULT_SPARSE_AT_MOST);

/// Sets the largest scope collected first (0: never collect) and forgets what was found
/// dense under the old setting.
pub fn set_sparse_at_most(at_most: u64) {
    SPARSE_AT_MOST.store(at_most, AtomicOrdering::Relaxed);
    *DENSE.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

pub fn sparse_at_most() -> u64 {
    SPARSE_AT_MOST.load(AtomicOrdering::Relaxed)
}

/// Whether pages walk [`OrderedScope`]s where a type keeps one (`crm
/// --no-ordered-scopes` turns it off; the read matrix test and the benchmark compare).
static ORDERED_WALKS: AtomicBool = AtomicBool::new(true);

pub fn set_ordered_walks(on: bool) {
    ORDERED_WALKS.store(on, AtomicOrdering::Relaxed);
}

pub fn ordered_walks() -> bool {
    ORDERED_WALKS.load(AtomicOrdering::Relaxed)
}

/// A type's scope kept one row per record, with a copy of one ordering's sort key: the
/// table, its column naming the record, its copy of the key, and the condition that picks
/// the caller's rows in force. The copy holds the record's own value at every commit, so
/// ordering by it orders the records.
pub struct OrderedScope {
    pub table: &'static str,
    pub record: &'static str,
    pub sort_key: &'static str,
    pub condition: sea_orm::sea_query::Condition,
}

/// The ordered scope a page of `E` in the ordering `ordering` may walk for `decision`,
/// when the type keeps one for the granted scopes (and walks are on).
pub fn ordered<E: Scoped>(
    decision: &Decision,
    who: &Principal,
    at: DateTime<Utc>,
    ordering: &str,
) -> Option<OrderedScope>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    if !ordered_walks() {
        return None;
    }
    E::ordered_scope(&limited_scopes(decision)?, who, at, ordering)
}

/// The distinct scopes `decision` grants, in order, when it allows some rows but not all:
/// what a scope plan may replace the conditions of.
fn limited_scopes(decision: &Decision) -> Option<Vec<Scope>> {
    let Decision::Allow(grants) = decision else {
        return None;
    };
    if decision.grants_all() {
        return None;
    }
    let mut scopes: Vec<Scope> = grants.iter().map(|g| g.scope).collect();
    scopes.sort();
    scopes.dedup();
    Some(scopes)
}

/// `select` joined with the rows of `walk` (one per record in scope), and the copies to
/// sort and continue the page by.
pub fn walk<E: sea_orm::EntityTrait>(
    mut select: sea_orm::Select<E>,
    walk: OrderedScope,
) -> (sea_orm::Select<E>, crate::pagination::SortColumns) {
    use sea_orm::QuerySelect;
    let table = Alias::new(walk.table);
    QuerySelect::query(&mut select)
        .inner_join(
            table.clone(),
            Expr::col((table.clone(), Alias::new(walk.record)))
                .equals((E::default(), Alias::new("id"))),
        )
        .cond_where(walk.condition);
    let sort = crate::pagination::SortColumns {
        key: Expr::col((table.clone(), Alias::new(walk.sort_key))),
        id: Expr::col((table, Alias::new(walk.record))),
    };
    (select, sort)
}

static DENSE: Mutex<Option<HashMap<String, Instant>>> = Mutex::new(None);

fn dense_key(ty: &str, who: &Principal, scopes: &[Scope]) -> String {
    format!("{ty}|{}|{scopes:?}", who.partner().unwrap_or(""))
}

fn known_dense(key: &str) -> bool {
    let guard = DENSE.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .as_ref()
        .and_then(|m| m.get(key))
        .is_some_and(|until| *until > Instant::now())
}

fn remember_dense(key: String) {
    let mut guard = DENSE.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    let now = Instant::now();
    crm_contract::bounded::make_room(map, REMEMBERED, |_, until| *until > now);
    map.insert(key, now + DENSE_FOR);
}

/// The ids of the `E` rows the scopes `decision` grants `who` hold, when they are sparse:
/// at most [`sparse_at_most`] distinct ids, or `None` (use the scopes' condition and walk
/// the sort order: the scopes are dense, unbounded, or have no collected form).
pub async fn sparse_ids<E: Scoped>(
    db: &DatabaseConnection,
    decision: &Decision,
    who: &Principal,
    at: DateTime<Utc>,
) -> ApiResult<Option<Vec<String>>>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let at_most = sparse_at_most();
    if at_most == 0 {
        return Ok(None);
    }
    let Some(scopes) = limited_scopes(decision) else {
        return Ok(None);
    };
    let Some(ids) = E::scope_ids(&scopes, who, at) else {
        return Ok(None);
    };
    let key = dense_key(E::POLICY_TYPE, who, &scopes);
    if known_dense(&key) {
        return Ok(None);
    }
    // Rows, not distinct ids: an id kept twice (two causes, two lines) counts twice, which
    // only makes a borderline scope read as dense. `DISTINCT` would read the whole scope.
    let capped = Query::select()
        .column(sea_orm::sea_query::Asterisk)
        .from_subquery(ids, Alias::new("kept"))
        .limit(at_most + 1)
        .to_owned();
    let rows = db.query_all(&capped).await?;
    if rows.len() as u64 > at_most {
        remember_dense(key);
        return Ok(None);
    }
    let mut found = rows
        .iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect::<Result<Vec<_>, _>>()?;
    found.sort_unstable();
    found.dedup();
    Ok(Some(found))
}

/// `select` (already filtered by everything but the scope) limited to the scope's `ids`,
/// to be fetched by id and only then sorted. On PostgreSQL the limited rows are a
/// sub-query the database plans on its own: given `id IN (…)` beside `ORDER BY … LIMIT`,
/// it still chose to walk the sort index and test each row against the list (the smallest
/// supplier's orders: 104 ms for a page of 50 at scale 1, 31,695 rows walked), and
/// `OFFSET 0` keeps it from folding the sub-query into the page. SQLite looks ids up by
/// key on its own.
pub fn by_ids<E: sea_orm::EntityTrait>(
    backend: sea_orm::DbBackend,
    select: sea_orm::Select<E>,
    ids: Vec<String>,
) -> sea_orm::Select<E> {
    use sea_orm::{QueryFilter, QuerySelect, QueryTrait};
    let limited = select.filter(Expr::col((E::default(), Alias::new("id"))).is_in(ids));
    if backend != sea_orm::DbBackend::Postgres {
        return limited;
    }
    let mut fenced = limited.into_query();
    fenced.offset(0);
    let mut page = E::find();
    QuerySelect::query(&mut page)
        .from_clear()
        .from_subquery(fenced, E::default());
    page
}
