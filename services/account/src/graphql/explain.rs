//! "Why can I see this?" for accounts: the policy rules whose scope holds the account and
//! the share rows behind a partner's scopes (`Account.access`), and, for admins, the same
//! question asked for another user of the directory (`DirectoryUser.accessToAccount`).

use async_graphql::{ComplexObject, Context, ID, Object, Result, SimpleObject};
use crm_service_common::ErrorCode;
use crm_service_common::access::{self, AccessExplanation};
use crm_service_common::internal_auth::Caller;
use crm_service_common::principal::{Principal, PrincipalKind};
use crm_service_common::{ApiError, ApiResult};

use super::db;
use crate::entity::account;

/// Explains `who`'s access to an account, with the share causes behind it.
pub async fn explain_account(
    ctx: &Context<'_>,
    who: &Principal,
    account_id: &str,
) -> ApiResult<AccessExplanation> {
    access::explain::<account::Entity>(db(ctx)?, who, account_id, access::now()).await
}

/// A user of the directory (owned by the identity subgraph), extended here.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct DirectoryUser {
    pub id: ID,
    #[graphql(external)]
    pub kind: String,
    #[graphql(external)]
    pub roles: Vec<String>,
    #[graphql(external)]
    pub partner_id: Option<ID>,
}

#[ComplexObject]
impl DirectoryUser {
    /// Why this user can or cannot see the account: the matching rules and share causes,
    /// or the rule that denies it. Admins may ask about anyone, a partner admin about its
    /// organisation's users, everyone about themselves.
    #[graphql(requires = "kind roles partnerId")]
    async fn access_to_account(
        &self,
        ctx: &Context<'_>,
        account_id: ID,
    ) -> Result<AccessExplanation> {
        let caller = Principal::of(ctx);
        let allowed = caller.subject == self.id.as_str()
            || (caller.kind == PrincipalKind::Internal && caller.has_role("admin"))
            || (caller.has_role("partner_admin")
                && caller.partner_id.is_some()
                && caller.partner_id.as_deref() == self.partner_id.as_deref().map(|p| p.as_str()));
        if !allowed {
            return Err(ApiError::denied(
                ErrorCode::Forbidden,
                "you may not ask about this user's access",
            )
            .into());
        }
        let user = Principal::from_caller(&Caller {
            partner_tier: None,
            subject: self.id.0.clone(),
            kind: self.kind.clone(),
            partner_id: self.partner_id.as_ref().map(|p| p.0.clone()),
            roles: self.roles.clone(),
            policy_version: 0,
            session_id: None,
            source: None,
        });
        Ok(explain_account(ctx, &user, &account_id).await?)
    }
}

#[derive(Default)]
pub struct DirectoryUserEntityQuery;

#[Object]
impl DirectoryUserEntityQuery {
    /// Federation: a directory user with the fields `accessToAccount` requires.
    #[graphql(entity)]
    async fn find_directory_user_by_id(
        &self,
        #[graphql(key)] id: ID,
        kind: String,
        roles: Vec<String>,
        partner_id: Option<ID>,
    ) -> DirectoryUser {
        DirectoryUser {
            id,
            kind,
            roles,
            partner_id,
        }
    }
}
