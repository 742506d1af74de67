//! The order-visibility vocabulary: statuses with their state machines, and the formats
//! of SKUs and order numbers. No I/O here.

use crm_service_common::domain::Lifecycle;
pub use crm_service_common::domain::reference;
use crm_service_common::{ApiError, ApiResult, text_enum};
use sea_orm::sea_query::StringLen;

text_enum!(
    /// Where an order is. DRAFT → PLACED → CONFIRMED → IN_FULFILLMENT → SHIPPED →
    /// DELIVERED, with ON_HOLD beside CONFIRMED and CANCELLED until fulfilment starts.
    OrderStatus {
        Draft = "DRAFT", Placed = "PLACED", Confirmed = "CONFIRMED", OnHold = "ON_HOLD",
        InFulfillment = "IN_FULFILLMENT", Shipped = "SHIPPED", Delivered = "DELIVERED",
        Cancelled = "CANCELLED",
    }
);

impl Lifecycle for OrderStatus {
    const NOUN: &'static str = "an order";
    fn next(self) -> &'static [Self] {
        use OrderStatus::*;
        match self {
            Draft => &[Placed, Cancelled],
            Placed => &[Confirmed, OnHold, Cancelled],
            Confirmed => &[InFulfillment, OnHold, Cancelled],
            OnHold => &[Confirmed, Cancelled],
            InFulfillment => &[Shipped],
            Shipped => &[Delivered],
            Delivered | Cancelled => &[],
        }
    }
}

impl OrderStatus {
    /// A closed order takes no more changes to its lines or shipments.
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Delivered | Self::Cancelled)
    }
}

text_enum!(
    /// Where one order line is: the supplier confirms or backorders it, then it ships.
    LineStatus {
        Open = "OPEN", Confirmed = "CONFIRMED", Backordered = "BACKORDERED",
        Shipped = "SHIPPED", Delivered = "DELIVERED", Cancelled = "CANCELLED",
    }
);

impl Lifecycle for LineStatus {
    const NOUN: &'static str = "an order line";
    fn next(self) -> &'static [Self] {
        use LineStatus::*;
        match self {
            Open => &[Confirmed, Backordered, Cancelled],
            Backordered => &[Confirmed, Cancelled],
            Confirmed => &[Shipped, Cancelled],
            Shipped => &[Delivered],
            Delivered | Cancelled => &[],
        }
    }
}

text_enum!(
    /// Where a shipment is, as the carrier reports it.
    ShipmentStatus {
        LabelCreated = "LABEL_CREATED", InTransit = "IN_TRANSIT",
        OutForDelivery = "OUT_FOR_DELIVERY", Delivered = "DELIVERED",
        Exception = "EXCEPTION", Returned = "RETURNED",
    }
);

impl Lifecycle for ShipmentStatus {
    const NOUN: &'static str = "a shipment";
    fn next(self) -> &'static [Self] {
        use ShipmentStatus::*;
        match self {
            LabelCreated => &[InTransit, Exception],
            InTransit => &[OutForDelivery, Delivered, Exception],
            OutForDelivery => &[Delivered, Exception],
            Exception => &[InTransit, Returned],
            Delivered | Returned => &[],
        }
    }
}

/// A stock-keeping unit: 2–64 characters of A–Z, 0–9, `-`, `_` or `.`, stored upper-case.
pub fn sku(field: &str, value: &str) -> ApiResult<String> {
    code(field, value, 2, 64, "a SKU")
}

/// An order number: 3–32 characters of A–Z, 0–9, `-`, `_` or `.`, stored upper-case.
pub fn order_number(field: &str, value: &str) -> ApiResult<String> {
    code(field, value, 3, 32, "an order number")
}

fn code(field: &str, value: &str, min: usize, max: usize, what: &str) -> ApiResult<String> {
    let value = value.trim().to_ascii_uppercase();
    let valid = (min..=max).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(value)
    } else {
        Err(ApiError::validation(
            field,
            format!("must be {what}: {min} to {max} characters of A-Z, 0-9, '-', '_' or '.'"),
        ))
    }
}

/// A quantity on an order line: 1 to 1,000,000 units.
pub fn quantity(field: &str, value: i32) -> ApiResult<i32> {
    if (1..=1_000_000).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::validation(field, "must be between 1 and 1000000"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_allowed_order_transition_passes_and_the_rest_are_refused() {
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                let allowed = from == to || from.next().contains(to);
                assert_eq!(from.transition(*to).is_ok(), allowed, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn a_refused_transition_names_the_allowed_moves() {
        let err = OrderStatus::Shipped
            .transition(OrderStatus::Placed)
            .expect_err("shipped orders do not go back");
        assert_eq!(
            err.message(),
            "an order cannot go from SHIPPED to PLACED (allowed: DELIVERED)"
        );
        let err = LineStatus::Cancelled
            .transition(LineStatus::Open)
            .expect_err("cancelled is final");
        assert!(
            err.message().contains("none: it is final"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn codes_are_normalised_and_checked() {
        assert_eq!(sku("sku", " ab-12.x ").ok().as_deref(), Some("AB-12.X"));
        assert!(sku("sku", "a").is_err());
        assert!(sku("sku", "has space").is_err());
        assert!(order_number("number", "SO-1").is_ok());
        assert!(quantity("q", 0).is_err());
        assert!(reference("accountId", "acc_123").is_ok());
        assert!(reference("accountId", "x'; drop").is_err());
    }
}
