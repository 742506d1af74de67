use sea_orm::entity::prelude::*;

/// Which products an article is linked to: the index behind `Product.articles`, kept in
/// step with `articles.product_ids` by every article write.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "article_products")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub article_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
