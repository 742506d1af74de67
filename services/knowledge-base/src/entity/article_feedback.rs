use sea_orm::entity::prelude::*;

/// One reader's answer to "did this article help?", changeable.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "article_feedback")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub article_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub reader_id: String,
    /// `internal`, `supplier`, `distributor` or `integrator`.
    pub reader_kind: String,
    pub reader_partner_id: Option<String>,
    pub helpful: bool,
    pub comment: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
