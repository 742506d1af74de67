//! What each policy scope means on articles: audiences (stored as `|A|B|`) and the
//! editorial status.

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

impl Scoped for article::Entity {
    const POLICY_TYPE: &'static str = "Article";

    async fn scope(
        scope: Scope,
        _who: &Principal,
        _at: DateTime<Utc>,
    ) -> ApiResult<Option<SimpleExpr>> {
        Ok(match scope {
            Scope::InternalAndPublicArticles => {
                Some(for_audiences(&[Audience::Internal, Audience::Public]))
            }
            Scope::PublishedForSuppliers => {
                Some(published().and(for_audiences(&[Audience::Supplier, Audience::Public])))
            }
            Scope::PublishedForDistributors => {
                Some(published().and(for_audiences(&[Audience::Distributor, Audience::Public])))
            }
            _ => None,
        })
    }
}
