//! sea-orm entities: the order-visibility service's tables. Storage shapes only; what
//! clients see is defined in `graphql/`.

pub mod account_territory;
pub mod demand_territory;
pub mod expected_demand;
pub mod order;
pub mod order_line;
pub mod product;
pub mod shipment;
pub mod shipment_event;
