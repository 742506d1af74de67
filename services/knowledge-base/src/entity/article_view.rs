use sea_orm::entity::prelude::*;

/// A reader read an article on a day (views are reader-days).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "article_views")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub article_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: Date,
    #[sea_orm(primary_key, auto_increment = false)]
    pub reader_id: String,
    pub reader_kind: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
