use sea_orm::entity::prelude::*;

use crate::domain::ArticleStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "articles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub external_id: Option<String>,
    /// The organisation that wrote `external_id` (a partner id; empty: the company).
    pub external_namespace: String,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub archived_at: Option<DateTimeUtc>,
    pub title: String,
    /// Markdown.
    pub body: String,
    /// `|PUBLIC|SUPPLIER|` (see `domain::encode_set`).
    pub audiences: String,
    pub status: ArticleStatus,
    /// The number of the revision the row's words are: the live one once published.
    pub revision: i32,
    pub published_at: Option<DateTimeUtc>,
    pub tags: String,
    /// `|prd_1|prd_2|`: products of the order-visibility service.
    pub product_ids: String,
    /// `|GOLD|PLATINUM|`: the partner tiers a partner audience is narrowed to (empty:
    /// every tier; staff are never narrowed).
    pub tiers: String,
    /// The working copy of a published article, waiting for review beside the live words
    /// (`None` when there is none). Never read by anyone who may read only live articles.
    pub pending_title: Option<String>,
    pub pending_body: Option<String>,
    pub pending_tags: Option<String>,
    pub pending_audiences: Option<String>,
    pub pending_tiers: Option<String>,
    pub pending_status: Option<ArticleStatus>,
    pub pending_revision: Option<i32>,
    /// The highest revision number given so far (the next saved version is one more).
    pub last_revision: i32,
    /// Who wrote the latest words saved on this row (the author of revision
    /// `last_revision`).
    pub edited_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
