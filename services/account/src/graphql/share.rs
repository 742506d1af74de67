//! `AccountShare`: why a partner may read an account. Rows with an order cause follow the
//! order service's events; internal users grant manual shares (optionally expiring) and
//! revoke them. Reading and granting are `ShareGrant` in the policy.

use async_graphql::{Context, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use crm_service_common::access::{self, Scope};
use crm_service_common::connection_types;
use crm_service_common::domain::optional_text;
use crm_service_common::principal::Principal;
use crm_service_common::{ApiError, ApiResult};
use sea_orm::sea_query::Expr;
use sea_orm::{EntityTrait, ExprTrait, QueryFilter, Select};

use super::account::Account;
use super::partner::Partner;
use super::{
    FilterExt, RecordFilter, db, ensure_exists, load, ordering, record_object, unarchived,
};
use crate::entity::{account, account_share, partner};
use crate::store;

#[derive(Clone)]
pub struct AccountShare(pub account_share::Model);

connection_types!(AccountShareConnection, AccountShareEdge, AccountShare);

record_object!(AccountShare {
    async fn account_id(&self) -> ID {
        ID(self.0.account_id.clone())
    }
    async fn account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        Ok(load::<account::Entity>(ctx, &self.0.account_id).await?.map(Account))
    }
    async fn partner_id(&self) -> ID {
        ID(self.0.partner_id.clone())
    }
    async fn partner(&self, ctx: &Context<'_>) -> Result<Option<Partner>> {
        Ok(load::<partner::Entity>(ctx, &self.0.partner_id).await?.map(Partner))
    }
    /// Why the partner may read the account: `buys_my_products`, `fulfils_its_orders` or
    /// `manual_share`.
    async fn cause(&self) -> &str {
        &self.0.cause
    }
    /// For an order cause, the order that causes it (`order:<id>`).
    async fn source(&self) -> Option<&str> {
        self.0.source.as_deref()
    }
    /// The internal user who granted a manual share.
    async fn granted_by(&self) -> Option<ID> {
        self.0.granted_by.clone().map(ID)
    }
    /// When a manual share stops granting (never, when null).
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// Whether the share grants access now (not revoked, not expired).
    async fn active(&self) -> bool {
        self.0.archived_at.is_none() && self.0.expires_at.is_none_or(|at| at > access::now())
    }
});

ordering!(AccountShareOrder, AccountShareOrderField, account_share, default = CreatedAt Desc, {
    CreatedAt => CreatedAt.created_at: Time,
});

#[derive(InputObject, Default, Clone, Debug)]
pub struct AccountShareFilter {
    pub account_id: Option<ID>,
    pub partner_id: Option<ID>,
    pub cause: Option<String>,
    /// Revoked manual shares are hidden unless true.
    #[graphql(default)]
    pub include_archived: bool,
}

impl RecordFilter<account_share::Entity> for AccountShareFilter {
    fn select(self) -> Select<account_share::Entity> {
        use account_share::Column as C;
        let mut s = unarchived(account_share::Entity::find(), self.include_archived);
        s = s.eq_if(C::AccountId, self.account_id.map(|v| v.0));
        s = s.eq_if(C::PartnerId, self.partner_id.map(|v| v.0));
        s = s.eq_if(C::Cause, self.cause);
        s
    }
}

#[derive(Default)]
pub struct AccountShareQuery;

#[Object]
impl AccountShareQuery {
    /// Share rows (the causes partners read accounts by), newest first.
    async fn account_shares(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<AccountShareFilter>,
        order_by: Option<AccountShareOrder>,
    ) -> Result<AccountShareConnection> {
        let explicit = order_by.is_some();
        let page = filter
            .unwrap_or_default()
            .page(
                ctx,
                AccountShareOrder::ordering(order_by),
                explicit,
                first,
                after,
            )
            .await?;
        Ok(page.map(AccountShare).into())
    }
}

/// A manual share to grant.
#[derive(InputObject, Clone, Debug)]
pub struct AccountShareInput {
    pub account_id: ID,
    pub partner_id: ID,
    /// When the share stops granting; it never expires when left out.
    pub expires_at: Option<DateTime<Utc>>,
    /// Why it is granted, for the audit trail (up to 500 characters).
    pub reason: Option<String>,
}

#[derive(Default)]
pub struct AccountShareMutation;

#[Object]
impl AccountShareMutation {
    /// Shares an account with a partner by hand (`manual_share`), optionally until
    /// `expiresAt`. Sales may share the accounts they own; management and admins any.
    async fn grant_account_share(
        &self,
        ctx: &Context<'_>,
        input: AccountShareInput,
    ) -> Result<AccountShare> {
        access::check_may(ctx, "ShareGrant", access::Action::Create).await?;
        ensure_exists::<account::Entity>(ctx, "input.accountId", &input.account_id).await?;
        // The partner is named by an internal user, who may read every partner.
        ensure_exists::<partner::Entity>(ctx, "input.partnerId", &input.partner_id).await?;
        gives_something(ctx, &input.partner_id).await?;
        if input.expires_at.is_some_and(|at| at <= access::now()) {
            return Err(ApiError::validation("input.expiresAt", "must be in the future").into());
        }
        let reason = optional_text("input.reason", input.reason.as_deref(), 500)?;
        let who = Principal::of(ctx).into_owned();
        let txn = crm_service_common::db::begin_write(db(ctx)?).await?;
        let mut row = crate::shares::new_share(
            &input.account_id,
            &input.partner_id,
            Scope::ManualShare,
            None,
            store::now(),
        );
        row.granted_by = sea_orm::ActiveValue::Set(Some(who.subject.clone()));
        row.expires_at = sea_orm::ActiveValue::Set(input.expires_at);
        row.reason = sea_orm::ActiveValue::Set(reason);
        let model = store::insert::<account_share::Entity, _>(&txn, row).await?;
        // In the audit log like its revocation, and the partner's accounts follow it.
        store::publish::<account_share::Entity, _>(&txn, None, &model).await?;
        access::check_still_in_scope::<account_share::Entity, _>(
            ctx,
            &txn,
            &model.id,
            access::Action::Create,
        )
        .await?;
        crm_service_common::db::commit(txn).await?;
        tracing::info!(share = %model.id, account = %model.account_id, partner = %model.partner_id, by = %who.subject, "granted a manual account share");
        Ok(AccountShare(model))
    }

    /// Revokes a manual share (it stays in the history, archived). Shares caused by
    /// orders follow the orders and cannot be revoked by hand.
    async fn revoke_account_share(
        &self,
        ctx: &Context<'_>,
        id: ID,
        version: i32,
    ) -> Result<AccountShare> {
        access::check_may(ctx, "ShareGrant", access::Action::Archive).await?;
        let txn = crm_service_common::db::begin_write(db(ctx)?).await?;
        access::check_may_change::<account_share::Entity, _>(
            ctx,
            &txn,
            &id,
            access::Action::Archive,
        )
        .await?;
        let current = store::get::<account_share::Entity, _>(&txn, &id).await?;
        if current.cause != Scope::ManualShare.name() {
            return Err(revoke_refused().into());
        }
        let model = store::archive::<account_share::Entity, _>(&txn, &id, version).await?;
        crm_service_common::db::commit(txn).await?;
        tracing::info!(share = %model.id, by = %Principal::of(ctx).subject, "revoked a manual account share");
        Ok(AccountShare(model))
    }
}

/// A manual share must give the partner something: some role of its side must be allowed
/// to read accounts in the `manual_share` scope under the policy in force (under
/// ACCESS-MATRIX.md, distributors; suppliers see accounts only through their products).
/// A share that grants nothing is refused rather than stored as a promise it cannot keep.
async fn gives_something(ctx: &Context<'_>, partner_id: &str) -> ApiResult<()> {
    let Some(found) = load::<partner::Entity>(ctx, partner_id).await? else {
        return Err(ApiError::validation(
            "input.partnerId",
            "refers to a record that does not exist",
        ));
    };
    let domain = match found.kind {
        crate::domain::PartnerKind::Supplier => access::Domain::Supplier,
        crate::domain::PartnerKind::Distributor => access::Domain::Distributor,
    };
    if access::domain_is_granted(domain, "Account", access::Action::Read, Scope::ManualShare)
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::validation(
            "input.partnerId",
            format!(
                "the access policy in force gives a {} nothing through a manual share",
                domain.as_str()
            ),
        ))
    }
}

fn revoke_refused() -> ApiError {
    ApiError::InvalidState {
        message: "this share follows the partner's orders; it ends when they change".into(),
    }
}

/// The share rows by which `partner_id` may read `account_id` at `now` (for explanations).
pub async fn causes_of(
    db: &sea_orm::DatabaseConnection,
    account_id: &str,
    partner_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<Vec<account_share::Model>> {
    use account_share::Column as C;
    Ok(account_share::Entity::find()
        .filter(Expr::col(C::AccountId).eq(account_id))
        .filter(Expr::col(C::PartnerId).eq(partner_id))
        .filter(crate::access::share_in_force(now))
        .all(db)
        .await?)
}
