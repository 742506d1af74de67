//! sea-orm entities: the knowledge base's tables. Storage shapes only.

pub mod article;
pub mod article_feedback;
pub mod article_product;
pub mod article_revision;
pub mod article_view;
pub mod case_article;
