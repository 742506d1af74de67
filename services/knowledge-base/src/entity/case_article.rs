use sea_orm::entity::prelude::*;

/// An article linked to a case (of the account service, referred to by id only), marked
/// when it solved the case.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "case_articles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub case_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub article_id: String,
    pub solved: bool,
    pub linked_by: Option<String>,
    pub linked_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
