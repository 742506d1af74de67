//! sea-orm entities: the knowledge base's tables. Storage shapes only.

pub mod article;
pub mod article_product;
pub mod article_revision;
