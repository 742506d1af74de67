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
    /// Increases whenever the title or body changes.
    pub revision: i32,
    pub published_at: Option<DateTimeUtc>,
    pub tags: String,
    /// `|prd_1|prd_2|`: products of the order-visibility service.
    pub product_ids: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
