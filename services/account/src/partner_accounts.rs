//! A partner's accounts kept one row per (partner, account), with the latest time each
//! share cause grants the pair and the account's name copied
//! (`crm_migrations::account::partner_accounts`), so a partner's page of accounts in name
//! order walks its rows and stops after a page ([`ordered`]). The share rows stay what
//! decides and explains access; these rows follow them in the transaction that writes
//! them: order-caused rows ([`crate::shares`]), territory rows
//! ([`crate::territory_shares`]), manual grants and revocations ([`share_written`]), and an
//! account's name ([`account_written`]).

use chrono::{DateTime, Utc};
use crm_migrations::account::partner_accounts::{self as table, TABLE};
use crm_service_common::ApiResult;
use crm_service_common::access::Scope;
use crm_service_common::scope_plan::OrderedScope;
use sea_orm::ConnectionTrait;
use sea_orm::ExprTrait;
use sea_orm::sea_query::{Alias, Condition, Expr};

use crate::entity::{account, account_share};

/// Makes the rows of the (partner, account) pairs `pairs` selects (a condition on
/// `partner_id` and `account_id`) equal to what the share rows not revoked imply, one
/// refresh at a time (else a grant or revocation another transaction was committing could
/// be lost).
pub async fn refresh<C: ConnectionTrait>(db: &C, pairs: Condition) -> ApiResult<()> {
    crm_service_common::db::rederive(db, TABLE, table::refresh(pairs)).await
}

/// How the kept rows differ from a refresh of every pair: (missing, extra) rows.
pub async fn drift<C: ConnectionTrait>(db: &C) -> ApiResult<(u64, u64)> {
    crm_service_common::db::drift(db, table::derived(Condition::all()), table::kept()).await
}

/// The pairs of these accounts, with any partner.
pub fn of_accounts(ids: impl IntoIterator<Item = String>) -> Condition {
    Condition::all().add(Expr::col(Alias::new("account_id")).is_in(ids))
}

/// The pairs of one partner.
pub fn of_partner(partner_id: &str) -> Condition {
    Condition::all().add(Expr::col(Alias::new("partner_id")).eq(partner_id))
}

/// After an account was written: its pairs follow its name and territory (its territory
/// share rows were just written by [`crate::territory_shares::account_written`]).
pub async fn account_written<C: ConnectionTrait>(
    db: &C,
    before: Option<&account::Model>,
    after: &account::Model,
) -> ApiResult<()> {
    crate::territory_shares::account_written(db, before, after).await?;
    let changed =
        before.is_none_or(|b| b.territory_id != after.territory_id || b.name != after.name);
    if changed {
        refresh(db, of_accounts([after.id.clone()])).await?;
    }
    Ok(())
}

/// After a share row was granted, changed or revoked through the API.
pub async fn share_written<C: ConnectionTrait>(
    db: &C,
    before: Option<&account_share::Model>,
    after: &account_share::Model,
) -> ApiResult<()> {
    let mut pairs = Condition::any().add(pair(&after.account_id, &after.partner_id));
    if let Some(b) = before {
        pairs = pairs.add(pair(&b.account_id, &b.partner_id));
    }
    refresh(db, pairs).await
}

fn pair(account_id: &str, partner_id: &str) -> Condition {
    Condition::all()
        .add(Expr::col(Alias::new("account_id")).eq(account_id))
        .add(Expr::col(Alias::new("partner_id")).eq(partner_id))
}

/// A partner's accounts granted by `causes` (share causes) at `at`, in name order: its rows
/// with one of the causes' times after `at`.
pub fn ordered(partner_id: &str, causes: &[Scope], at: DateTime<Utc>) -> OrderedScope {
    let mut in_force = Condition::any();
    for cause in causes {
        in_force = in_force
            .add(Expr::col((Alias::new(TABLE), Alias::new(table::until(cause.name())))).gt(at));
    }
    OrderedScope {
        table: TABLE,
        record: "account_id",
        sort_key: "account_name",
        condition: Condition::all()
            .add(Expr::col((Alias::new(TABLE), Alias::new("partner_id"))).eq(partner_id))
            .add(in_force),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_share_cause_has_a_column() {
        let names: Vec<&str> = crate::access::SHARE_CAUSES
            .iter()
            .map(|c| c.name())
            .collect();
        assert_eq!(names, table::CAUSES);
    }
}
