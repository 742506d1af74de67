//! The order-visibility service's GraphQL schema (an Apollo Federation v2 subgraph).

use async_graphql::{EmptySubscription, MergedObject, Schema};
pub(crate) use crm_service_common::graphql::*;
pub(crate) use crm_service_common::{ordering, record_object, record_operations};
use sea_orm::DatabaseConnection;

pub mod order;
pub mod order_line;
pub mod product;
pub mod references;
pub mod shipment;

#[derive(MergedObject, Default)]
pub struct Query(
    order::OrderQuery,
    order::OrderEntityQuery,
    order_line::OrderLineQuery,
    product::ProductQuery,
    product::ProductEntityQuery,
    shipment::ShipmentQuery,
    references::ReferenceEntityQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    order::OrderMutation,
    order_line::OrderLineMutation,
    product::ProductMutation,
    shipment::ShipmentMutation,
    shipment::ShipmentStatusMutation,
);

pub type OrderVisibilitySchema = Schema<Query, Mutation, EmptySubscription>;

pub fn build_schema(db: DatabaseConnection) -> OrderVisibilitySchema {
    subgraph_limits(Schema::build(
        Query::default(),
        Mutation::default(),
        EmptySubscription,
    ))
    .data(db)
    .finish()
}

/// Per-request data: the loaders that batch look-ups by id into one query each.
pub fn prepare_request(
    db: &DatabaseConnection,
    request: async_graphql::Request,
) -> async_graphql::Request {
    use crate::entity::*;
    let request = with_loader::<order::Entity>(request, db);
    with_loader::<product::Entity>(request, db)
}

/// The SDL this subgraph exports to composition (`schema/order_visibility.graphql`).
pub fn sdl() -> String {
    federation_sdl(
        &Schema::build(Query::default(), Mutation::default(), EmptySubscription)
            .enable_federation()
            .finish(),
    )
}
