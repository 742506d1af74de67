//! An article's history and its review: every saved version (`ArticleRevision`), the
//! diff between two, and the mutations that approve, reject and restore. Revisions are
//! editorial: only callers the policy lets read `ArticleRevision` see them (staff; a
//! partner reads live words only), and only of articles they may read.

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use crm_service_common::access::{self, Action};
use crm_service_common::principal::Principal;
use crm_service_common::{ApiError, ApiResult, ErrorCode};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use super::article::Article;
use super::db;
use crate::domain::{
    ArticleStatus, Audience, DiffChange, RevisionState, decode_set, diff_lines, parse_audiences,
};
use crate::entity::{article, article_revision};
use crate::store::{self, Words, clear_pending, set};

/// At most this many revisions are listed per article (newest first).
const MAX_LISTED: u64 = 200;

/// Lines of unchanged text shown around each change of a diff.
const DIFF_CONTEXT: usize = 3;

/// One saved version of an article.
#[derive(Clone)]
pub struct ArticleRevision(pub article_revision::Model);

#[Object]
impl ArticleRevision {
    /// 1 for the first words saved, one more for each later save.
    async fn number(&self) -> i32 {
        self.0.number
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// The body, in Markdown.
    async fn body(&self) -> &str {
        &self.0.body
    }
    async fn tags(&self) -> Vec<String> {
        decode_set(&self.0.tags)
    }
    async fn audiences(&self) -> Vec<Audience> {
        parse_audiences(&self.0.audiences)
    }
    async fn tiers(&self) -> Vec<crm_service_common::domain::PartnerTier> {
        crate::domain::parse_tiers(&self.0.tiers)
    }
    async fn state(&self) -> RevisionState {
        self.0.state
    }
    /// Who wrote these words (an internal user id).
    async fn author_user_id(&self) -> Option<ID> {
        self.0.author_user_id.clone().map(ID)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Who approved or rejected it.
    async fn reviewer_user_id(&self) -> Option<ID> {
        self.0.reviewer_user_id.clone().map(ID)
    }
    async fn reviewed_at(&self) -> Option<DateTime<Utc>> {
        self.0.reviewed_at
    }
    async fn review_comment(&self) -> Option<&str> {
        self.0.review_comment.as_deref()
    }
    /// What changed from revision `against` (default: the live revision when this one
    /// is newer than it, else the one before) to this one.
    async fn changes(&self, ctx: &Context<'_>, against: Option<i32>) -> Result<RevisionChanges> {
        let db = db(ctx)?;
        let against = match against {
            Some(n) => Some(n),
            None => default_base(db, &self.0).await?,
        };
        let base = match against {
            Some(n) => Some(
                revision(db, &self.0.article_id, n)
                    .await?
                    .ok_or_else(|| ApiError::validation("against", "no such revision"))?,
            ),
            None => None,
        };
        Ok(RevisionChanges::between(base.as_ref(), &self.0))
    }
}

/// The revision a reviewer compares `r` with: the latest published one before it, else
/// the one just before it (`None` for a first revision).
async fn default_base<C: ConnectionTrait>(
    db: &C,
    r: &article_revision::Model,
) -> ApiResult<Option<i32>> {
    use article_revision::Column as R;
    let published: Option<article_revision::Model> = article_revision::Entity::find()
        .filter(R::ArticleId.eq(r.article_id.clone()))
        .filter(R::Number.lt(r.number))
        .filter(R::State.eq(RevisionState::Published))
        .order_by_desc(R::Number)
        .one(db)
        .await?;
    Ok(published
        .map(|p| p.number)
        .or((r.number > 1).then_some(r.number - 1)))
}

/// The diff of two revisions, field by field (a field that did not change has no lines).
#[derive(SimpleObject)]
pub struct RevisionChanges {
    /// The revision compared with (null: none, every line is new).
    against: Option<i32>,
    title: Vec<DiffLine>,
    audiences: Vec<DiffLine>,
    /// The partner tiers the audiences are narrowed to.
    tiers: Vec<DiffLine>,
    tags: Vec<DiffLine>,
    body: Vec<DiffLine>,
}

/// A stored set (`|A|B|`) as one value per line, for a line diff.
fn listed(stored: &str) -> String {
    decode_set(stored).join("\n") + "\n"
}

impl RevisionChanges {
    fn between(base: Option<&article_revision::Model>, r: &article_revision::Model) -> Self {
        let of = |pick: fn(&article_revision::Model) -> String| {
            let old = base.map(pick).unwrap_or_default();
            diff_lines(&old, &pick(r), DIFF_CONTEXT)
                .into_iter()
                .map(DiffLine::from)
                .collect()
        };

        Self {
            against: base.map(|b| b.number),
            title: of(|m| m.title.clone() + "\n"),
            audiences: of(|m| listed(&m.audiences)),
            tiers: of(|m| listed(&m.tiers)),
            tags: of(|m| listed(&m.tags)),
            body: of(|m| m.body.clone()),
        }
    }
}

#[derive(SimpleObject)]
pub struct DiffLine {
    change: DiffChange,
    /// The line's number in the older text (null for an added line).
    old_line: Option<u32>,
    /// The line's number in the newer text (null for a removed line).
    new_line: Option<u32>,
    text: String,
}

impl From<crate::domain::DiffLine> for DiffLine {
    fn from(l: crate::domain::DiffLine) -> Self {
        Self {
            change: l.change,
            old_line: l.old_line,
            new_line: l.new_line,
            text: l.text,
        }
    }
}

/// Whether the caller may read revisions at all (of the articles it may read).
pub async fn may_read(ctx: &Context<'_>) -> ApiResult<bool> {
    access::may(ctx, "ArticleRevision", Action::Read).await
}

async fn revision<C: ConnectionTrait>(
    db: &C,
    article_id: &str,
    number: i32,
) -> ApiResult<Option<article_revision::Model>> {
    Ok(
        article_revision::Entity::find_by_id((article_id.to_owned(), number))
            .one(db)
            .await?,
    )
}

/// The revisions of `article_id`, newest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    article_id: &str,
) -> ApiResult<Vec<article_revision::Model>> {
    use sea_orm::QuerySelect;
    Ok(article_revision::Entity::find()
        .filter(article_revision::Column::ArticleId.eq(article_id))
        .order_by_desc(article_revision::Column::Number)
        .limit(MAX_LISTED)
        .all(db)
        .await?)
}

/// One revision of an article the caller reads, when it may read revisions.
pub async fn one(
    ctx: &Context<'_>,
    article: &article::Model,
    number: i32,
) -> ApiResult<Option<ArticleRevision>> {
    if !may_read(ctx).await? {
        return Ok(None);
    }
    Ok(revision(db(ctx)?, &article.id, number)
        .await?
        .map(ArticleRevision))
}

/// The authors of the words not yet live: the revisions after the latest published one,
/// up to `number`.
async fn unpublished_authors<C: ConnectionTrait>(
    db: &C,
    article_id: &str,
    number: i32,
) -> ApiResult<Vec<String>> {
    let mut authors = Vec::new();
    for r in list(db, article_id).await? {
        if r.number > number {
            continue;
        }
        if r.state == RevisionState::Published {
            break;
        }
        authors.extend(r.author_user_id);
    }
    Ok(authors)
}

/// Why `who` may not review `article` now (`None`: it may, given it may update it).
async fn review_refusal<C: ConnectionTrait>(
    db: &C,
    who: &Principal,
    article: &article::Model,
) -> ApiResult<Option<(i32, ApiError)>> {
    let Some((number, state)) = store::working_revision(article) else {
        return Ok(Some((
            0,
            ApiError::InvalidState {
                message: "nothing of this article awaits review".into(),
            },
        )));
    };
    if state != RevisionState::Review {
        return Ok(Some((
            number,
            ApiError::InvalidState {
                message: format!("revision {number} is a draft: submit it for review first"),
            },
        )));
    }
    if unpublished_authors(db, &article.id, number)
        .await?
        .iter()
        .any(|a| a.as_str() == who.subject.as_str())
    {
        return Ok(Some((
            number,
            ApiError::denied(
                ErrorCode::Forbidden,
                "a revision is reviewed by a writer who wrote none of its words",
            ),
        )));
    }
    Ok(None)
}

/// Whether the caller may approve or reject `article`'s revision in review now.
pub async fn may_review(ctx: &Context<'_>, article: &article::Model) -> ApiResult<bool> {
    let db = db(ctx)?;
    if !access::may_on::<article::Entity, _>(ctx, db, &article.id)
        .await?
        .update
    {
        return Ok(false);
    }
    Ok(review_refusal(db, &Principal::of(ctx), article)
        .await?
        .is_none())
}

#[derive(Clone, Copy, PartialEq)]
enum Verdict {
    Approve,
    Reject,
}

async fn review(
    ctx: &Context<'_>,
    id: &ID,
    version: i32,
    comment: Option<String>,
    verdict: Verdict,
) -> ApiResult<Article> {
    access::check_may(ctx, "Article", Action::Update).await?;
    let comment = crm_service_common::domain::optional_text("comment", comment.as_deref(), 2000)?;
    if verdict == Verdict::Reject && comment.is_none() {
        return Err(ApiError::validation(
            "comment",
            "say what the writer should change",
        ));
    }
    let who = Principal::of(ctx);
    let txn = crm_service_common::db::begin_write(db(ctx)?).await?;
    access::check_may_change::<article::Entity, _>(ctx, &txn, id, Action::Update).await?;
    let current = store::get::<article::Entity, _>(&txn, id).await?;
    if current.version != version {
        return Err(ApiError::VersionConflict {
            current_version: current.version,
        });
    }
    let number = match review_refusal(&txn, &who, &current).await? {
        Some((_, refusal)) => return Err(refusal),
        None => store::working_revision(&current).map_or(0, |(n, _)| n),
    };
    let pending = current.pending_revision.is_some();
    let model = store::update::<article::Entity, _>(&txn, id, version, |m, _| {
        match (verdict, pending) {
            (Verdict::Approve, true) => {
                let words = Words::of_active(m)
                    .ok_or_else(|| ApiError::validation("id", "unreadable article"))?;
                words.set_row(m);
                clear_pending(m);
                set(&mut m.revision, number);
                set(&mut m.published_at, Some(store::now()));
            }
            (Verdict::Approve, false) => {
                set(&mut m.status, ArticleStatus::Published);
                set(&mut m.published_at, Some(store::now()));
            }
            (Verdict::Reject, true) => set(&mut m.pending_status, Some(ArticleStatus::Draft)),
            (Verdict::Reject, false) => set(&mut m.status, ArticleStatus::Draft),
        }
        Ok(())
    })
    .await?;
    let state = match verdict {
        Verdict::Approve => RevisionState::Published,
        Verdict::Reject => RevisionState::Rejected,
    };
    article_revision::Entity::update(article_revision::ActiveModel {
        article_id: sea_orm::ActiveValue::Unchanged(model.id.clone()),
        number: sea_orm::ActiveValue::Unchanged(number),
        state: sea_orm::ActiveValue::Set(state),
        reviewer_user_id: sea_orm::ActiveValue::Set(Some(who.subject.to_string())),
        reviewed_at: sea_orm::ActiveValue::Set(Some(store::now())),
        review_comment: sea_orm::ActiveValue::Set(comment),
        ..Default::default()
    })
    .exec(&txn)
    .await?;
    access::check_still_in_scope::<article::Entity, _>(ctx, &txn, &model.id, Action::Update)
        .await?;
    crm_service_common::db::commit(txn).await?;
    Ok(Article(model))
}

#[derive(Default)]
pub struct ArticleReviewMutation;

#[Object]
impl ArticleReviewMutation {
    /// Publishes the article's revision in review: its words go live (a published
    /// article's live words are replaced). The reviewer may write the article and wrote
    /// none of the words not yet live; `version` is the article's.
    async fn approve_article(
        &self,
        ctx: &Context<'_>,
        id: ID,
        version: i32,
        comment: Option<String>,
    ) -> Result<Article> {
        Ok(review(ctx, &id, version, comment, Verdict::Approve).await?)
    }

    /// Sends the article's revision in review back to its writers as a draft, with a
    /// `comment` saying why (required). The live words, if any, stay live.
    async fn reject_article(
        &self,
        ctx: &Context<'_>,
        id: ID,
        version: i32,
        comment: String,
    ) -> Result<Article> {
        Ok(review(ctx, &id, version, Some(comment), Verdict::Reject).await?)
    }

    /// Starts a new draft revision with the words of revision `number` (a published
    /// article stays live until the draft is approved).
    async fn restore_article_revision(
        &self,
        ctx: &Context<'_>,
        id: ID,
        version: i32,
        number: i32,
    ) -> Result<Article> {
        let Some(article) = crate::graphql::get_optional::<article::Entity>(ctx, &id).await? else {
            return Err(ApiError::NotFound.into());
        };
        let Some(old) = one(ctx, &article, number).await? else {
            return Err(ApiError::NotFound.into());
        };
        // Words under review or retired come back to the writer's desk; a published
        // article's restored words are its new working copy.
        let status = match article.status {
            ArticleStatus::Review | ArticleStatus::Archived => Some(ArticleStatus::Draft),
            ArticleStatus::Draft | ArticleStatus::Published => None,
        };
        let input = super::article::ArticleInput {
            title: Some(old.0.title),
            body: Some(old.0.body),
            audiences: Some(parse_audiences(&old.0.audiences)),
            tags: Some(decode_set(&old.0.tags)),
            tiers: Some(crate::domain::parse_tiers(&old.0.tiers)),
            status,
            product_ids: None,
        };
        super::article::update(ctx, id, version, input).await
    }
}
