//! `Account`: a customer organisation, a federation entity (`@key(fields: "id")`).

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result};
use crm_service_common::access::Masks;
use crm_service_common::access::{hidden_field, masks, unmasked};
use crm_service_common::domain::{optional_text, text};
use crm_service_common::import::{ImportReference, Importable, referenced};
use crm_service_common::import_operation;
use crm_service_common::normalise::{company_key, domain_key};
use crm_service_common::principal::Principal;
use crm_service_common::{ApiResult, connection_types};
use sea_orm::{EntityTrait, Select};

use super::{
    FilterExt, RecordFilter, RecordInput, ensure_exists, load, optional, ordering, record_object,
    record_operations, required, unarchived,
};
use super::{case, contact, interaction, opportunity, partner::Territory};
use crate::domain::{AccountTier, LifecycleStage, Segment, web_domain};
use crate::entity::{account, territory};
use crate::store::set;

#[derive(Clone)]
pub struct Account(pub account::Model);

connection_types!(AccountConnection, AccountEdge, Account);

record_object!(Account {
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The web domain, e.g. `example.com` (masked for suppliers by the policy).
    async fn domain(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(unmasked(ctx, &self.0, "domain", self.0.domain.as_deref()).await?.flatten())
    }
    async fn industry(&self) -> Option<&str> {
        self.0.industry.as_deref()
    }
    async fn segment(&self) -> Segment {
        self.0.segment
    }
    /// Masked for suppliers by the policy.
    async fn tier(&self, ctx: &Context<'_>) -> Result<Option<AccountTier>> {
        Ok(unmasked(ctx, &self.0, "tier", self.0.tier).await?)
    }
    /// Masked for suppliers by the policy.
    async fn lifecycle_stage(&self, ctx: &Context<'_>) -> Result<Option<LifecycleStage>> {
        Ok(unmasked(ctx, &self.0, "lifecycleStage", self.0.lifecycle_stage).await?)
    }
    async fn territory(&self, ctx: &Context<'_>) -> Result<Option<Territory>> {
        let Some(id) = &self.0.territory_id else { return Ok(None) };
        Ok(load::<territory::Entity>(ctx, id).await?.map(Territory))
    }
    /// The id of the user who owns the account (users live in the identity directory);
    /// masked for partners by the policy.
    async fn owner_user_id(&self, ctx: &Context<'_>) -> Result<Option<ID>> {
        let owner = self.0.owner_user_id.clone().map(ID);
        Ok(unmasked(ctx, &self.0, "ownerUserId", owner).await?.flatten())
    }
    /// Whether you may share this account with a partner (a manual sharing grant): the
    /// policy's write scopes of sharing grants, applied to this account.
    async fn shareable(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(crate::access::may_share(&Principal::of(ctx), &self.0).await?)
    }
    /// Masked for partners by the policy.
    async fn internal_note(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(unmasked(ctx, &self.0, "internalNote", self.0.internal_note.as_deref()).await?.flatten())
    }

    /// The people at this account.
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<contact::ContactFilter>,
        order_by: Option<contact::ContactOrder>,
    ) -> Result<contact::ContactConnection> {
        let filter = contact::ContactFilter { account_id: Some(ID(self.0.id.clone())), ..filter.unwrap_or_default() };
        contact::list_contacts(ctx, first, after, Some(filter), order_by).await
    }
    /// Every interaction with this account, newest first unless ordered otherwise.
    async fn interactions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<interaction::InteractionFilter>,
        order_by: Option<interaction::InteractionOrder>,
    ) -> Result<interaction::InteractionConnection> {
        let filter = interaction::InteractionFilter { account_id: Some(ID(self.0.id.clone())), ..filter.unwrap_or_default() };
        interaction::list_interactions(ctx, first, after, Some(filter), order_by).await
    }
    async fn opportunities(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<opportunity::OpportunityFilter>,
        order_by: Option<opportunity::OpportunityOrder>,
    ) -> Result<opportunity::OpportunityConnection> {
        let filter = opportunity::OpportunityFilter { account_id: Some(ID(self.0.id.clone())), ..filter.unwrap_or_default() };
        opportunity::list_opportunities(ctx, first, after, Some(filter), order_by).await
    }
    async fn cases(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<case::CaseFilter>,
        order_by: Option<case::CaseOrder>,
    ) -> Result<case::CaseConnection> {
        let filter = case::CaseFilter { account_id: Some(ID(self.0.id.clone())), ..filter.unwrap_or_default() };
        case::list_cases(ctx, first, after, Some(filter), order_by).await
    }
});

ordering!(AccountOrder, AccountOrderField, account, default = Name, {
    Name => Name.name: Text,
    CreatedAt => CreatedAt.created_at: Time,
    UpdatedAt => UpdatedAt.updated_at: Time,
});

#[derive(InputObject, Default, Clone, Debug)]
pub struct AccountFilter {
    /// Matches name or domain, case-insensitively.
    pub text: Option<String>,
    pub segment: Option<Segment>,
    pub tier: Option<AccountTier>,
    pub lifecycle_stage: Option<LifecycleStage>,
    pub territory_id: Option<ID>,
    pub owner_user_id: Option<ID>,
    pub industry: Option<String>,
    #[graphql(default)]
    pub include_archived: bool,
    /// Set for callers who may not see the domain: text matches the name only.
    #[graphql(skip)]
    pub name_only: bool,
}

impl crm_service_common::search::Searchable<account::Entity> for AccountFilter {
    fn for_text(text: String) -> Self {
        Self {
            text: Some(text),
            ..Self::default()
        }
    }
    fn searched(&self) -> Vec<account::Column> {
        use account::Column as C;
        if self.name_only {
            vec![C::Name]
        } else {
            vec![C::Name, C::Domain]
        }
    }
}

impl RecordFilter<account::Entity> for AccountFilter {
    async fn restrict(mut self, who: &Principal) -> ApiResult<Self> {
        let masks = masks(who, "Account").await?;
        for (field, used) in [
            ("tier", self.tier.is_some()),
            ("lifecycleStage", self.lifecycle_stage.is_some()),
            ("ownerUserId", self.owner_user_id.is_some()),
        ] {
            if used && masks.may_hide(field) {
                return Err(hidden_field(&format!("filter.{field}")));
            }
        }
        // The text search reads the domain too, unless the caller may not see it.
        self.name_only = masks.may_hide("domain");
        Ok(self)
    }

    fn select(self) -> Select<account::Entity> {
        use account::Column as C;
        let mut s = unarchived(account::Entity::find(), self.include_archived);
        let searched = crm_service_common::search::Searchable::searched(&self);
        s = s.text_search(self.text.as_deref(), &searched);
        s = s.eq_if(C::Segment, self.segment);
        s = s.eq_if(C::Tier, self.tier);
        s = s.eq_if(C::LifecycleStage, self.lifecycle_stage);
        s = s.eq_if(C::TerritoryId, self.territory_id.map(|v| v.0));
        s = s.eq_if(C::OwnerUserId, self.owner_user_id.map(|v| v.0));
        s = s.eq_if(C::Industry, self.industry);
        s
    }
}

/// Fields of an account. On create, `name`, `segment`, `tier` and `lifecycleStage` are
/// required; on update, fields left out stay as they are and `null` clears optional ones.
#[derive(InputObject, Default, Clone, Debug)]
pub struct AccountInput {
    pub name: Option<String>,
    pub domain: MaybeUndefined<String>,
    pub industry: MaybeUndefined<String>,
    pub segment: Option<Segment>,
    pub tier: Option<AccountTier>,
    pub lifecycle_stage: Option<LifecycleStage>,
    pub territory_id: MaybeUndefined<ID>,
    pub owner_user_id: MaybeUndefined<ID>,
    pub internal_note: MaybeUndefined<String>,
}

impl RecordInput<account::Entity> for AccountInput {
    fn apply(
        &self,
        m: &mut account::ActiveModel,
        creating: bool,
    ) -> crm_service_common::ApiResult<()> {
        if let Some(v) = required(creating, "input.name", &self.name)? {
            let name = text("input.name", v, 200)?;
            set(&mut m.name_key, Some(company_key(&name)));
            set(&mut m.name, name);
        }
        optional(&mut m.domain, &self.domain, |v| {
            web_domain("input.domain", v)
        })?;
        optional(&mut m.industry, &self.industry, |v| {
            text("input.industry", v, 100)
        })?;
        if let Some(v) = required(creating, "input.segment", &self.segment)? {
            set(&mut m.segment, *v);
        }
        if let Some(v) = required(creating, "input.tier", &self.tier)? {
            set(&mut m.tier, *v);
        }
        if let Some(v) = required(creating, "input.lifecycleStage", &self.lifecycle_stage)? {
            set(&mut m.lifecycle_stage, *v);
        }
        optional(&mut m.territory_id, &self.territory_id, |v| Ok(v.0.clone()))?;
        optional(&mut m.owner_user_id, &self.owner_user_id, |v| {
            text("input.ownerUserId", v, 64)
        })?;
        optional(&mut m.internal_note, &self.internal_note, |v| {
            optional_text("input.internalNote", Some(v), 10_000).map(Option::unwrap_or_default)
        })?;
        Ok(())
    }

    async fn check_references(&self, ctx: &Context<'_>) -> crm_service_common::ApiResult<()> {
        if let MaybeUndefined::Value(id) = &self.territory_id {
            ensure_exists::<territory::Entity>(ctx, "input.territoryId", id).await?;
        }
        Ok(())
    }
}

#[derive(Default)]
pub struct AccountEntityQuery;

#[Object]
impl AccountEntityQuery {
    /// Federation entity look-up; a batch of keys is loaded with one query.
    #[graphql(entity)]
    async fn find_account_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Account>> {
        Ok(load::<account::Entity>(ctx, &id).await?.map(Account))
    }
}

impl Importable<account::Entity> for AccountInput {
    async fn resolve(
        &mut self,
        ctx: &Context<'_>,
        txn: &sea_orm::DatabaseTransaction,
        reference: &ImportReference,
    ) -> crm_service_common::ApiResult<()> {
        match reference.field.as_str() {
            "territoryId" => {
                self.territory_id = MaybeUndefined::Value(
                    referenced::<territory::Entity>(ctx, txn, reference).await?,
                );
                Ok(())
            }
            other => Err(crm_service_common::ApiError::validation(
                format!("references.{other}"),
                "is not a reference an account takes (territoryId)",
            )),
        }
    }

    /// The same company: its name's key, or its web domain (when the caller may read
    /// domains).
    fn looks_like(&self, masks: &Masks) -> Option<sea_orm::sea_query::SimpleExpr> {
        use sea_orm::ExprTrait;
        use sea_orm::sea_query::Expr;
        let mut any = Vec::new();
        if let Some(name) = &self.name
            && !masks.may_hide("name")
        {
            let key = company_key(name);
            if !key.is_empty() {
                any.push(Expr::col(account::Column::NameKey).eq(key));
            }
        }
        if let MaybeUndefined::Value(domain) = &self.domain
            && !masks.may_hide("domain")
            && let Some(key) = domain_key(domain)
        {
            // Stored as typed apart from case, so with or without its `www.`.
            any.push(Expr::col(account::Column::Domain).is_in([format!("www.{key}"), key]));
        }
        any.into_iter().reduce(|a, b| a.or(b))
    }
}

import_operation!(
    AccountImportMutation,
    account,
    AccountInput,
    AccountImportRow,
    import_accounts
);

record_operations!(
    AccountQuery, AccountMutation, Account, account, AccountInput,
    list: accounts(AccountFilter, AccountOrder) -> AccountConnection, one: account,
    mutations: create_account, update_account, upsert_account, archive_account
);
