//! What each policy scope means on articles: audiences (stored as `|A|B|`), the
//! editorial status, and for partners the tiers (`|GOLD|PLATINUM|`, empty: every tier)
//! against the tier the caller carries.

use chrono::{DateTime, Utc};
use crm_service_common::ApiResult;
use crm_service_common::access::{Scope, Scoped};
use crm_service_common::principal::Principal;
use sea_orm::ExprTrait;
use sea_orm::sea_query::{Condition, Expr, SimpleExpr};

use crate::domain::{ArticleStatus, Audience};
use crate::entity::article;

/// Articles for any of `audiences`.
fn for_audiences(audiences: &[Audience]) -> SimpleExpr {
    let any = audiences.iter().fold(Condition::any(), |any, audience| {
        any.add(Expr::col(article::Column::Audiences).like(format!(
            "%|{}|%",
            crm_service_common::domain::label(*audience)
        )))
    });
    SimpleExpr::from(any)
}

fn published() -> SimpleExpr {
    Expr::col(article::Column::Status).eq(ArticleStatus::Published)
}

/// Articles for every tier, or for the caller's (a partner of no known tier reads the
/// untiered ones only).
fn for_tier(who: &Principal) -> SimpleExpr {
    let untiered = Expr::col(article::Column::Tiers).eq("");
    match who.partner_tier {
        Some(tier) => untiered.or(Expr::col(article::Column::Tiers)
            .like(format!("%|{}|%", crm_service_common::domain::label(tier)))),
        None => untiered,
    }
}

impl Scoped for article::Entity {
    const POLICY_TYPE: &'static str = "Article";

    async fn scope(
        scope: Scope,
        who: &Principal,
        _at: DateTime<Utc>,
    ) -> ApiResult<Option<SimpleExpr>> {
        Ok(match scope {
            Scope::InternalAndPublicArticles => {
                Some(for_audiences(&[Audience::Internal, Audience::Public]))
            }
            Scope::PublishedForSuppliers => Some(
                published()
                    .and(for_audiences(&[Audience::Supplier, Audience::Public]))
                    .and(for_tier(who)),
            ),
            Scope::PublishedForDistributors => Some(
                published()
                    .and(for_audiences(&[Audience::Distributor, Audience::Public]))
                    .and(for_tier(who)),
            ),
            _ => None,
        })
    }
}
