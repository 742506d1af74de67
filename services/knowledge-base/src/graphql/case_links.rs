//! Articles and cases: an article linked to a case (the account service's, referred to by
//! id), marked when it solved it; shown on both pages; and, for a case, the articles that
//! match its subject, those that solved more cases first. Links are the support desk's:
//! the policy's `CaseArticleLink` rules say who reads them (departments that read every
//! case, so a case id given to this service directly reveals nothing they could not read)
//! and who links; every article shown is one the caller may read.

use std::collections::HashMap;

use async_graphql::{ComplexObject, Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use crm_service_common::access::{self, Action};
use crm_service_common::domain::reference;
use crm_service_common::principal::Principal;
use crm_service_common::{ApiError, ApiResult};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect};

use super::article::Article;
use super::db;
use crate::domain::SearchQuery;
use crate::entity::{article, case_article};
use crate::store;

/// At most this many articles are suggested for a case.
const MAX_SUGGESTED: i32 = 10;

/// A case (owned by the account service); this service adds its linked and suggested
/// articles.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Case {
    pub id: ID,
    /// The account service's subject of the case, for the suggestions.
    #[graphql(external)]
    pub subject: Option<String>,
}

/// An article linked to a case.
#[derive(SimpleObject)]
pub struct CaseArticle {
    article: Article,
    /// The article solved the case.
    solved: bool,
    linked_at: DateTime<Utc>,
}

/// A case an article is linked to.
#[derive(SimpleObject)]
pub struct ArticleCase {
    case: Case,
    solved: bool,
    linked_at: DateTime<Utc>,
}

/// An article suggested for a case.
#[derive(SimpleObject)]
pub struct SuggestedArticle {
    article: Article,
    /// How many cases it solved (links marked solved).
    solved_cases: u64,
}

async fn may_read_links(ctx: &Context<'_>) -> ApiResult<bool> {
    access::may(ctx, "CaseArticleLink", Action::Read).await
}

/// The linked articles of `case_id` the caller may read, solved first.
async fn articles_of(ctx: &Context<'_>, case_id: &str) -> ApiResult<Vec<CaseArticle>> {
    let db = db(ctx)?;
    let links = case_article::Entity::find()
        .filter(case_article::Column::CaseId.eq(case_id))
        .order_by_desc(case_article::Column::Solved)
        .order_by_desc(case_article::Column::LinkedAt)
        .limit(200)
        .all(db)
        .await?;
    let ids: Vec<String> = links.iter().map(|l| l.article_id.clone()).collect();
    let visible = access::visible_in::<article::Entity>(ctx, Action::Read).await?;
    let mut articles: HashMap<String, article::Model> =
        store::get_many_where::<article::Entity, _>(db, &ids, visible)
            .await?
            .into_iter()
            .map(|a| (a.id.clone(), a))
            .collect();
    Ok(links
        .into_iter()
        .filter_map(|l| {
            articles.remove(&l.article_id).map(|a| CaseArticle {
                article: Article(a),
                solved: l.solved,
                linked_at: l.linked_at,
            })
        })
        .collect())
}

/// The cases `article` is linked to, for callers who read links (solved first).
pub async fn cases_of(
    ctx: &Context<'_>,
    article: &article::Model,
) -> ApiResult<Option<Vec<ArticleCase>>> {
    if !may_read_links(ctx).await? {
        return Ok(None);
    }
    let links = case_article::Entity::find()
        .filter(case_article::Column::ArticleId.eq(article.id.clone()))
        .order_by_desc(case_article::Column::Solved)
        .order_by_desc(case_article::Column::LinkedAt)
        .limit(200)
        .all(db(ctx)?)
        .await?;
    Ok(Some(
        links
            .into_iter()
            .map(|l| ArticleCase {
                case: Case {
                    id: ID(l.case_id),
                    subject: None,
                },
                solved: l.solved,
                linked_at: l.linked_at,
            })
            .collect(),
    ))
}

/// Articles the caller may read that share a word with `subject`, not linked to the case
/// yet, ranked by the cases they solved, then by how well they match (each article's own
/// words: no statistics over articles the caller can't see).
async fn suggestions(
    ctx: &Context<'_>,
    case_id: &str,
    subject: &str,
    first: i32,
) -> ApiResult<Vec<SuggestedArticle>> {
    let Some(query) = SearchQuery::parse(Some(subject)) else {
        return Ok(Vec::new());
    };
    let db = db(ctx)?;
    let linked = sea_orm::sea_query::Query::select()
        .column(case_article::Column::ArticleId)
        .from(case_article::Entity)
        .and_where(Expr::col(case_article::Column::CaseId).eq(case_id))
        .to_owned();
    let candidates: Vec<article::Model> =
        crate::graphql::unarchived(article::Entity::find(), false)
            .filter(store::match_any_condition(
                db.get_database_backend(),
                &query,
            ))
            .filter(access::visible_in::<article::Entity>(ctx, Action::Read).await?)
            .filter(Expr::col(article::Column::Id).not_in_subquery(linked))
            .limit(100)
            .all(db)
            .await?;
    let ids: Vec<String> = candidates.iter().map(|a| a.id.clone()).collect();
    let solved: HashMap<String, i64> = case_article::Entity::find()
        .select_only()
        .column(case_article::Column::ArticleId)
        .column_as(case_article::Column::CaseId.count(), "solved")
        .filter(case_article::Column::Solved.eq(true))
        .filter(case_article::Column::ArticleId.is_in(ids))
        .group_by(case_article::Column::ArticleId)
        .into_tuple::<(String, i64)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let mut ranked: Vec<(i64, i64, article::Model)> = candidates
        .into_iter()
        .map(|a| {
            let cases = solved.get(&a.id).copied().unwrap_or(0);
            let tags = a.tags.replace('|', " ");
            (cases, query.local_score(&a.title, &tags, &a.body), a)
        })
        .collect();
    ranked.sort_by(|x, y| {
        y.0.cmp(&x.0)
            .then(y.1.cmp(&x.1))
            .then_with(|| x.2.id.cmp(&y.2.id))
    });
    Ok(ranked
        .into_iter()
        .take(first.clamp(1, MAX_SUGGESTED) as usize)
        .map(|(cases, _, a)| SuggestedArticle {
            article: Article(a),
            solved_cases: cases as u64,
        })
        .collect())
}

#[ComplexObject]
impl Case {
    /// The articles linked to this case that the caller may read, solved first (null
    /// for callers the policy does not let read links).
    async fn articles(&self, ctx: &Context<'_>) -> Result<Option<Vec<CaseArticle>>> {
        if !may_read_links(ctx).await? {
            return Ok(None);
        }
        Ok(Some(articles_of(ctx, &self.id).await?))
    }

    /// Articles that may solve this case: the caller's readable articles sharing a word
    /// with its subject and not linked yet, those that solved more cases first (1–10,
    /// default 5; null for callers the policy does not let read links).
    #[graphql(requires = "subject")]
    async fn suggested_articles(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 5)] first: i32,
    ) -> Result<Option<Vec<SuggestedArticle>>> {
        if !may_read_links(ctx).await? {
            return Ok(None);
        }
        let subject = self.subject.clone().unwrap_or_default();
        Ok(Some(suggestions(ctx, &self.id, &subject, first).await?))
    }
}

#[derive(Default)]
pub struct CaseEntityQuery;

#[Object]
impl CaseEntityQuery {
    /// Federation: this service's fields of a case, by key (the subject is provided by
    /// the account service for the suggestions).
    #[graphql(entity)]
    async fn find_case_by_id(&self, #[graphql(key)] id: ID, subject: Option<String>) -> Case {
        Case { id, subject }
    }
}

#[derive(Default)]
pub struct CaseArticleMutation;

#[Object]
impl CaseArticleMutation {
    /// Links an article the caller may read to a case (again: changes `solved`).
    async fn link_article_to_case(
        &self,
        ctx: &Context<'_>,
        case_id: ID,
        article_id: ID,
        #[graphql(default)] solved: bool,
    ) -> Result<Article> {
        access::check_may(ctx, "CaseArticleLink", Action::Create).await?;
        let case_id = reference("caseId", &case_id)?;
        let article = crate::graphql::get_optional::<article::Entity>(ctx, &article_id)
            .await?
            .ok_or(ApiError::NotFound)?;
        let who = Principal::of(ctx);
        case_article::Entity::insert(case_article::ActiveModel {
            case_id: Set(case_id),
            article_id: Set(article.id.clone()),
            solved: Set(solved),
            linked_by: Set(Some(who.subject.to_string())),
            linked_at: Set(store::now()),
        })
        .on_conflict(
            OnConflict::columns([
                case_article::Column::CaseId,
                case_article::Column::ArticleId,
            ])
            .update_column(case_article::Column::Solved)
            .to_owned(),
        )
        .exec_without_returning(db(ctx)?)
        .await
        .map_err(ApiError::from)?;
        Ok(Article(article))
    }

    /// Removes an article's link to a case; `false` when there was none.
    async fn unlink_article_from_case(
        &self,
        ctx: &Context<'_>,
        case_id: ID,
        article_id: ID,
    ) -> Result<bool> {
        access::check_may(ctx, "CaseArticleLink", Action::Archive).await?;
        let removed = case_article::Entity::delete_many()
            .filter(case_article::Column::CaseId.eq(case_id.to_string()))
            .filter(case_article::Column::ArticleId.eq(article_id.to_string()))
            .exec(db(ctx)?)
            .await
            .map_err(ApiError::from)?;
        Ok(removed.rows_affected > 0)
    }
}
