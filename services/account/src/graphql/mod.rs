//! The account service's GraphQL schema (an Apollo Federation v2 subgraph). Output types
//! wrap entity models and choose, field by field, what clients see; the building blocks
//! shared with the other services are in `crm_service_common::graphql`.

use async_graphql::{EmptySubscription, MergedObject, Schema};
pub(crate) use crm_service_common::graphql::*;
pub(crate) use crm_service_common::{ordering, record_object, record_operations};
use sea_orm::DatabaseConnection;

pub mod account;
pub mod audit;
pub mod case;
pub mod case_comment;
pub mod contact;
pub mod deal_registration;
pub mod erasure;
pub mod explain;
pub mod interaction;
pub mod lead;
pub mod notification;
pub mod opportunity;
pub mod partner;
pub mod privacy;
pub mod product_lines;
pub mod search;
pub mod share;
pub mod task;

/// The audit log and data-subject requests: one member of [`Query`], so the merged
/// root stays within the compiler's depth for nested futures.
#[derive(MergedObject, Default)]
pub struct TrustQuery(
    audit::AuditQuery,
    audit::AuditEntityQuery,
    audit::AuditLogEntityQuery,
    privacy::PrivacyQuery,
    privacy::DataSubjectEntityQuery,
    erasure::ErasureQuery,
    erasure::ErasureProgressEntityQuery,
);

#[derive(MergedObject, Default)]
pub struct Query(
    TrustQuery,
    account::AccountQuery,
    account::AccountEntityQuery,
    contact::ContactQuery,
    interaction::InteractionQuery,
    lead::LeadQuery,
    opportunity::OpportunityQuery,
    opportunity::ForecastQuery,
    case::CaseQuery,
    case::CaseEntityQuery,
    case_comment::CaseCommentQuery,
    task::TaskQuery,
    deal_registration::DealRegistrationQuery,
    notification::NotificationQuery,
    crm_service_common::jobs::graphql::JobQuery,
    partner::PartnerQuery,
    partner::PartnerEntityQuery,
    partner::TerritoryQuery,
    share::AccountShareQuery,
    explain::DirectoryUserEntityQuery,
    search::SearchQuery,
    search::SearchEntityQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    privacy::PrivacyMutation,
    erasure::ErasureMutation,
    account::AccountMutation,
    account::AccountImportMutation,
    contact::ContactMutation,
    contact::ContactImportMutation,
    interaction::InteractionMutation,
    lead::LeadMutation,
    lead::LeadConversionMutation,
    lead::LeadRoutingMutation,
    opportunity::OpportunityMutation,
    case::CaseMutation,
    case_comment::CaseCommentMutation,
    task::TaskMutation,
    deal_registration::DealRegistrationMutation,
    deal_registration::DealRegistrationReviewMutation,
    notification::NotificationMutation,
    crm_service_common::jobs::graphql::JobMutation,
    partner::PartnerMutation,
    partner::PartnerTerritoryMutation,
    partner::TerritoryMutation,
    share::AccountShareMutation,
);

pub type AccountSchema = Schema<Query, Mutation, EmptySubscription>;

/// Builds the schema over one database connection.
pub fn build_schema(db: DatabaseConnection) -> AccountSchema {
    subgraph_schema(db)
}

/// Per-request data: the loaders that batch look-ups by id into one query each.
pub fn prepare_request(
    db: &DatabaseConnection,
    who: &crm_service_common::principal::Principal,
    request: async_graphql::Request,
) -> async_graphql::Request {
    use crate::entity::*;
    let request = with_loader::<account::Entity>(request, db, who);
    let request = with_loader::<partner::Entity>(request, db, who);
    let request = with_loader::<case::Entity>(request, db, who);
    let request = request.data(async_graphql::dataloader::DataLoader::new(
        crate::graphql::contact::ConsentLoader::new(db),
        tokio::spawn,
    ));
    with_loader::<territory::Entity>(request, db, who)
}

/// The SDL this subgraph exports to composition (committed as `schema/account.graphql`).
pub fn sdl() -> String {
    subgraph_sdl::<Query, Mutation>()
}
