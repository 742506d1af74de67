//! Territory coverage kept as share rows: a distributor may read an account *because* the
//! account lies in a territory it covers (cause `in_my_territory`, source
//! `territory:<id>`). With every cause a share row, a partner's accounts are one `EXISTS`
//! over its share rows, which the database runs as a semi-join walking the page's sort
//! order. Before, the territory condition sat beside the share `EXISTS` under an `OR`, and
//! PostgreSQL cannot semi-join under `OR`: at scale 1 it hashed all 155k of the
//! distributor's fulfilled-order rows before returning the first account (72 ms p50).
//!
//! The rows follow the two facts they come from, in the transaction that changes them: an
//! account's territory ([`account_written`]) and a partner's coverage
//! ([`coverage_changed`]). [`rebuild`] makes them from those facts alone, so a seed, a
//! migration of an older database and a repair all end in the same rows.

use chrono::{DateTime, Utc};
use crm_service_common::ApiResult;
use crm_service_common::access::Scope;
use sea_orm::sea_query::Expr;
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, ExprTrait, QueryFilter, Statement, Value};

use crate::entity::{account, account_share};

/// The source a territory share row names.
pub fn source_of(territory_id: &str) -> String {
    format!("territory:{territory_id}")
}

/// Inserts a territory share row for every (account, covering partner) pair that `pairs`
/// (a condition on `accounts a` and `partner_territories pt`, with its values) selects.
async fn insert_pairs<C: ConnectionTrait>(
    db: &C,
    pairs: &str,
    mut values: Vec<Value>,
    now: DateTime<Utc>,
) -> ApiResult<u64> {
    let backend = db.get_database_backend();
    // PostgreSQL numbers its placeholders (the time's comes after the condition's values);
    // SQLite binds `?` in order of appearance: the time twice, then the condition's values.
    let (at, bound) = match backend {
        DbBackend::Postgres => {
            let at = placeholder(backend, values.len() + 1);
            values.push(now.into());
            (at, values)
        }
        _ => {
            let mut bound: Vec<Value> = vec![now.into(), now.into()];
            bound.append(&mut values);
            ("?".to_owned(), bound)
        }
    };
    let sql = crm_migrations::account::territory_share_rows_sql(backend, &at, pairs);
    let result = db
        .execute_raw(Statement::from_sql_and_values(backend, sql, bound))
        .await?;
    Ok(result.rows_affected())
}

/// The placeholder of the `n`th (1-based) value of a condition.
fn placeholder(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    }
}

/// Deletes territory share rows matching `condition` (besides the cause).
async fn delete_where<C: ConnectionTrait>(
    db: &C,
    condition: sea_orm::sea_query::SimpleExpr,
) -> ApiResult<u64> {
    let result = account_share::Entity::delete_many()
        .filter(Expr::col(account_share::Column::Cause).eq(Scope::InMyTerritory.name()))
        .filter(condition)
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Keeps an account's territory share rows when it is created or changes territory.
pub async fn account_written<C: ConnectionTrait>(
    db: &C,
    before: Option<&account::Model>,
    after: &account::Model,
) -> ApiResult<()> {
    if before.is_some_and(|b| b.territory_id == after.territory_id) {
        return Ok(());
    }
    if before.is_some() {
        delete_where(
            db,
            Expr::col(account_share::Column::AccountId).eq(after.id.as_str()),
        )
        .await?;
    }
    if after.territory_id.is_some() {
        let p = placeholder(db.get_database_backend(), 1);
        insert_pairs(
            db,
            &format!("a.id = {p}"),
            vec![after.id.clone().into()],
            crate::store::now(),
        )
        .await?;
    }
    Ok(())
}

/// Keeps a partner's territory share rows when its coverage changes from `before` to
/// `after` (territory ids): rows of territories it left go, rows of the accounts in the
/// territories it took on come.
pub async fn coverage_changed<C: ConnectionTrait>(
    db: &C,
    partner_id: &str,
    before: &[String],
    after: &[String],
) -> ApiResult<()> {
    let left: Vec<String> = before
        .iter()
        .filter(|t| !after.contains(t))
        .map(|t| source_of(t))
        .collect();
    if !left.is_empty() {
        delete_where(
            db,
            Expr::col(account_share::Column::PartnerId)
                .eq(partner_id)
                .and(Expr::col(account_share::Column::Source).is_in(left)),
        )
        .await?;
    }
    let backend = db.get_database_backend();
    for territory in after.iter().filter(|t| !before.contains(t)) {
        insert_pairs(
            db,
            &format!(
                "pt.partner_id = {} AND pt.territory_id = {}",
                placeholder(backend, 1),
                placeholder(backend, 2)
            ),
            vec![partner_id.into(), territory.as_str().into()],
            crate::store::now(),
        )
        .await?;
    }
    crate::partner_accounts::refresh(db, crate::partner_accounts::of_partner(partner_id)).await
}

/// Makes the territory share rows from scratch from the accounts' territories and the
/// partners' coverage. Returns how many rows it wrote.
pub async fn rebuild<C: ConnectionTrait>(db: &C) -> ApiResult<u64> {
    delete_where(db, Expr::val(1).eq(1)).await?;
    let rows = insert_pairs(db, "1 = 1", Vec::new(), crate::store::now()).await?;
    crate::partner_accounts::refresh(db, sea_orm::sea_query::Condition::all()).await?;
    Ok(rows)
}
