//! The knowledge base's GraphQL schema (an Apollo Federation v2 subgraph).

use async_graphql::{EmptySubscription, MergedObject, Schema};
pub(crate) use crm_service_common::graphql::*;
pub(crate) use crm_service_common::{ordering, record_object, record_operations};
use sea_orm::DatabaseConnection;

pub mod article;
pub mod audit;
pub mod case_links;
pub mod feedback;
pub mod privacy;
pub mod references;
pub mod revision;
pub mod search;

#[derive(MergedObject, Default)]
pub struct Query(
    audit::AuditEntityQuery,
    audit::AuditLogEntityQuery,
    privacy::DataSubjectEntityQuery,
    privacy::ErasureProgressEntityQuery,
    article::ArticleQuery,
    references::ReferenceEntityQuery,
    search::SearchEntityQuery,
    case_links::CaseEntityQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    article::ArticleMutation,
    revision::ArticleReviewMutation,
    feedback::ArticleFeedbackMutation,
    case_links::CaseArticleMutation,
);

pub type KnowledgeBaseSchema = Schema<Query, Mutation, EmptySubscription>;

pub fn build_schema(db: DatabaseConnection) -> KnowledgeBaseSchema {
    crm_service_common::graphql::subgraph_schema_with(db, |builder| {
        builder.data(crate::store::rankings::SearchRankings::default())
    })
}

/// Per-request data: the loaders that batch look-ups by id into one query each.
pub fn prepare_request(
    db: &DatabaseConnection,
    who: &crm_service_common::principal::Principal,
    request: async_graphql::Request,
) -> async_graphql::Request {
    with_loader::<crate::entity::article::Entity>(request, db, who)
}

/// The SDL this subgraph exports to composition (`schema/knowledge_base.graphql`).
pub fn sdl() -> String {
    subgraph_sdl::<Query, Mutation>()
}
