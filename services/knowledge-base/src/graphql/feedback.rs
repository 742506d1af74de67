//! What readers make of articles: "did this help?" with an optional comment (one answer
//! per reader, changeable) and views (reader-days). Anyone who reads an article may answer
//! and be counted; the answers and counts are editorial, read by the departments the
//! policy lets read `ArticleFeedback` (never by partners: a partner's feedback is seen by
//! staff only), broken down by the kind of reader.

use std::collections::BTreeMap;

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use crm_service_common::access::{self, Action};
use crm_service_common::principal::{Principal, PrincipalKind};
use crm_service_common::{ApiError, ApiResult};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::article::Article;
use super::db;
use crate::entity::{article, article_feedback, article_view};
use crate::store;

/// At most this many comments are listed per article (newest first).
const MAX_COMMENTS: u64 = 50;

/// Readers' answers and views of one article, per kind of reader.
#[derive(SimpleObject, Default)]
pub struct ArticleFeedbackSummary {
    /// Reader-days: each reader counts once a day however often it opens the article.
    views: u64,
    helpful: u64,
    not_helpful: u64,
    /// The same per kind of reader (`internal`, `supplier`, `distributor`, `integrator`).
    by_reader_kind: Vec<ReaderKindFeedback>,
    /// The answers with a comment, newest first (at most 50).
    comments: Vec<FeedbackComment>,
}

#[derive(SimpleObject, Default, Clone)]
pub struct ReaderKindFeedback {
    reader_kind: String,
    views: u64,
    helpful: u64,
    not_helpful: u64,
}

#[derive(SimpleObject)]
pub struct FeedbackComment {
    helpful: bool,
    comment: String,
    reader_kind: String,
    /// The partner organisation of a partner's answer (never the user).
    reader_partner_id: Option<ID>,
    updated_at: DateTime<Utc>,
}

/// The caller's own answer.
#[derive(SimpleObject)]
pub struct MyFeedback {
    helpful: bool,
    comment: Option<String>,
    updated_at: DateTime<Utc>,
}

/// The readers' feedback on `article` for a caller who may read it (`None` otherwise).
pub async fn summary(
    ctx: &Context<'_>,
    article: &article::Model,
) -> ApiResult<Option<ArticleFeedbackSummary>> {
    if !access::may(ctx, "ArticleFeedback", Action::Read).await? {
        return Ok(None);
    }
    let db = db(ctx)?;
    let mut kinds: BTreeMap<String, ReaderKindFeedback> = BTreeMap::new();
    let entry = |kinds: &mut BTreeMap<String, ReaderKindFeedback>, kind: &str| {
        kinds
            .entry(kind.to_owned())
            .or_insert_with(|| ReaderKindFeedback {
                reader_kind: kind.to_owned(),
                ..ReaderKindFeedback::default()
            })
            .clone()
    };
    let views: Vec<(String, i64)> = article_view::Entity::find()
        .select_only()
        .column(article_view::Column::ReaderKind)
        .column_as(article_view::Column::ReaderId.count(), "views")
        .filter(article_view::Column::ArticleId.eq(article.id.clone()))
        .group_by(article_view::Column::ReaderKind)
        .into_tuple()
        .all(db)
        .await?;
    for (kind, n) in views {
        let mut row = entry(&mut kinds, &kind);
        row.views = n as u64;
        kinds.insert(kind, row);
    }
    let answers = article_feedback::Entity::find()
        .filter(article_feedback::Column::ArticleId.eq(article.id.clone()))
        .order_by_desc(article_feedback::Column::UpdatedAt)
        .all(db)
        .await?;
    let mut comments = Vec::new();
    for answer in answers {
        let mut row = entry(&mut kinds, &answer.reader_kind);
        if answer.helpful {
            row.helpful += 1;
        } else {
            row.not_helpful += 1;
        }
        kinds.insert(answer.reader_kind.clone(), row);
        if let Some(comment) = answer.comment
            && (comments.len() as u64) < MAX_COMMENTS
        {
            comments.push(FeedbackComment {
                helpful: answer.helpful,
                comment,
                reader_kind: answer.reader_kind,
                reader_partner_id: answer.reader_partner_id.map(ID),
                updated_at: answer.updated_at,
            });
        }
    }
    let by_reader_kind: Vec<ReaderKindFeedback> = kinds.into_values().collect();
    Ok(Some(ArticleFeedbackSummary {
        views: by_reader_kind.iter().map(|k| k.views).sum(),
        helpful: by_reader_kind.iter().map(|k| k.helpful).sum(),
        not_helpful: by_reader_kind.iter().map(|k| k.not_helpful).sum(),
        by_reader_kind,
        comments,
    }))
}

/// The caller's own answer on `article`.
pub async fn mine(ctx: &Context<'_>, article: &article::Model) -> ApiResult<Option<MyFeedback>> {
    let who = Principal::of(ctx);
    Ok(
        article_feedback::Entity::find_by_id((article.id.clone(), who.subject.to_string()))
            .one(db(ctx)?)
            .await?
            .map(|f| MyFeedback {
                helpful: f.helpful,
                comment: f.comment,
                updated_at: f.updated_at,
            }),
    )
}

/// The article `id` as the caller reads it, for a signed-in caller (`NOT_FOUND` otherwise,
/// exactly as for an article that does not exist).
async fn readable(ctx: &Context<'_>, id: &ID) -> ApiResult<article::Model> {
    let who = Principal::of(ctx);
    if who.kind == PrincipalKind::Anonymous {
        return Err(ApiError::NotFound);
    }
    crate::graphql::get_optional::<article::Entity>(ctx, id)
        .await?
        .ok_or(ApiError::NotFound)
}

#[derive(Default)]
pub struct ArticleFeedbackMutation;

#[Object]
impl ArticleFeedbackMutation {
    /// Answers "did this article help?" for the caller (a second answer replaces the
    /// first), with an optional comment of up to 2,000 characters. Only staff read the
    /// answers.
    async fn give_article_feedback(
        &self,
        ctx: &Context<'_>,
        article_id: ID,
        helpful: bool,
        comment: Option<String>,
    ) -> Result<Article> {
        access::check_may(ctx, "ArticleFeedback", Action::Create).await?;
        let comment =
            crm_service_common::domain::optional_text("comment", comment.as_deref(), 2000)?;
        let article = readable(ctx, &article_id).await?;
        let who = Principal::of(ctx);
        article_feedback::Entity::insert(article_feedback::ActiveModel {
            article_id: Set(article.id.clone()),
            reader_id: Set(who.subject.to_string()),
            reader_kind: Set(who.kind.as_str().to_owned()),
            reader_partner_id: Set(who.partner().map(str::to_owned)),
            helpful: Set(helpful),
            comment: Set(comment),
            updated_at: Set(store::now()),
        })
        .on_conflict(
            OnConflict::columns([
                article_feedback::Column::ArticleId,
                article_feedback::Column::ReaderId,
            ])
            .update_columns([
                article_feedback::Column::Helpful,
                article_feedback::Column::Comment,
                article_feedback::Column::UpdatedAt,
            ])
            .to_owned(),
        )
        .exec_without_returning(db(ctx)?)
        .await
        .map_err(ApiError::from)?;
        Ok(Article(article))
    }

    /// Counts the caller as a reader of the article today (once a day, however often it
    /// is called). The web pages call it when an article is shown.
    async fn record_article_view(&self, ctx: &Context<'_>, article_id: ID) -> Result<bool> {
        let article = readable(ctx, &article_id).await?;
        let who = Principal::of(ctx);
        article_view::Entity::insert(article_view::ActiveModel {
            article_id: Set(article.id),
            day: Set(store::now().date_naive()),
            reader_id: Set(who.subject.to_string()),
            reader_kind: Set(who.kind.as_str().to_owned()),
        })
        .on_conflict(
            OnConflict::columns([
                article_view::Column::ArticleId,
                article_view::Column::Day,
                article_view::Column::ReaderId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(db(ctx)?)
        .await
        .or_else(|e| match e {
            // Already counted today (SQLite reports an ignored insert as no rows).
            sea_orm::DbErr::RecordNotInserted => Ok(0),
            other => Err(ApiError::from(other)),
        })?;
        Ok(true)
    }
}
