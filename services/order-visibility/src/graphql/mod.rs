//! The order-visibility service's GraphQL schema (an Apollo Federation v2 subgraph).

use async_graphql::{EmptySubscription, MergedObject, Schema};
pub(crate) use crm_service_common::graphql::*;
pub(crate) use crm_service_common::{ordering, record_object, record_operations};
use sea_orm::DatabaseConnection;

pub mod audit;
pub mod demand;
pub mod order;
pub mod order_line;
pub mod privacy;
pub mod product;
pub mod references;
pub mod search;
pub mod shipment;

#[derive(MergedObject, Default)]
pub struct Query(
    audit::AuditEntityQuery,
    audit::AuditLogEntityQuery,
    privacy::DataSubjectEntityQuery,
    privacy::ErasureProgressEntityQuery,
    demand::DemandQuery,
    order::OrderQuery,
    order::OrderEntityQuery,
    order_line::OrderLineQuery,
    product::ProductQuery,
    product::ProductEntityQuery,
    shipment::ShipmentQuery,
    references::ReferenceEntityQuery,
    search::SearchEntityQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    order::OrderMutation,
    order::OrderImportMutation,
    order_line::OrderLineMutation,
    order_line::OrderLineImportMutation,
    product::ProductMutation,
    product::ProductImportMutation,
    shipment::ShipmentMutation,
    shipment::ShipmentStatusMutation,
);

/// Sets a price (`currency` and minor units) from input: the amount is read in the given
/// currency or, on an update that leaves the currency out, in the record's.
pub(crate) fn apply_price(
    currency_column: &mut sea_orm::ActiveValue<String>,
    minor_column: &mut sea_orm::ActiveValue<i64>,
    currency: &Option<String>,
    amount: &Option<String>,
    creating: bool,
) -> crm_service_common::ApiResult<()> {
    use crm_service_common::domain::{Currency, Money};
    use crm_service_common::record::{current, set};
    let currency = match required(creating, "input.currency", currency)? {
        Some(code) => Some(Currency::parse("input.currency", code)?),
        None => None,
    };
    if let Some(c) = currency {
        set(currency_column, c.code().to_owned());
    }
    if let Some(amount) = required(creating, "input.unitPrice", amount)? {
        let currency = match currency {
            Some(c) => c,
            None => Currency::parse(
                "input.currency",
                &current(currency_column).unwrap_or_default(),
            )?,
        };
        set(
            minor_column,
            Money::parse("input.unitPrice", amount, currency)?.minor,
        );
    }
    Ok(())
}

pub type OrderVisibilitySchema = Schema<Query, Mutation, EmptySubscription>;

pub fn build_schema(db: DatabaseConnection) -> OrderVisibilitySchema {
    subgraph_schema(db)
}

/// Per-request data: the loaders that batch look-ups by id into one query each.
pub fn prepare_request(
    db: &DatabaseConnection,
    who: &crm_service_common::principal::Principal,
    request: async_graphql::Request,
) -> async_graphql::Request {
    use crate::entity::*;
    let request = with_loader::<order::Entity>(request, db, who);
    with_loader::<product::Entity>(request, db, who)
}

/// The SDL this subgraph exports to composition (`schema/order_visibility.graphql`).
pub fn sdl() -> String {
    subgraph_sdl::<Query, Mutation>()
}
