use sea_orm::entity::prelude::*;

use crate::domain::RevisionState;

/// One saved version of an article: its words, who wrote them, and what review made of
/// them. Written by every article write that changes words (`store::article_written`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "article_revisions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub article_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub number: i32,
    pub title: String,
    pub body: String,
    pub tags: String,
    pub audiences: String,
    pub tiers: String,
    pub state: RevisionState,
    pub author_user_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub reviewer_user_id: Option<String>,
    pub reviewed_at: Option<DateTimeUtc>,
    pub review_comment: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
