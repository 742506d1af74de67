//! Products with quantities, as deal registrations and opportunities name them: by product
//! id (the product's own fields come from the order-visibility service) and how many.
//! Stored as JSON on the record; validated once, here.

use async_graphql::{ID, InputObject, SimpleObject};
use crm_service_common::domain::reference;
use crm_service_common::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};

/// One product and its quantity, as stored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProductLine {
    pub product_id: String,
    pub quantity: i32,
}

/// A product and how many of it.
#[derive(SimpleObject, Clone, Debug)]
pub struct ProductQuantity {
    pub product_id: ID,
    pub quantity: i32,
}

/// A product and how many of it (1 to 1,000,000).
#[derive(InputObject, Clone, Debug)]
pub struct ProductQuantityInput {
    pub product_id: ID,
    pub quantity: i32,
}

/// The lines stored in `json` (written by [`lines_json`], so always well formed).
pub fn lines_in(json: &str) -> Vec<ProductLine> {
    serde_json::from_str(json).unwrap_or_default()
}

/// The lines as the API shows them.
pub fn shown(json: &str) -> Vec<ProductQuantity> {
    lines_in(json)
        .into_iter()
        .map(|l| ProductQuantity {
            product_id: ID(l.product_id),
            quantity: l.quantity,
        })
        .collect()
}

/// The lines as stored: each a product id and a quantity of 1 to 1,000,000, no product
/// twice, at least `min` and at most `max` of them. `field` names the input in errors.
pub fn lines_json(
    field: &str,
    lines: &[ProductQuantityInput],
    min: usize,
    max: usize,
) -> ApiResult<String> {
    if lines.len() < min {
        return Err(ApiError::validation(field, "names at least one product"));
    }
    if lines.len() > max {
        return Err(ApiError::validation(
            field,
            format!("names at most {max} products"),
        ));
    }
    let mut stored: Vec<ProductLine> = Vec::with_capacity(lines.len());
    for (n, line) in lines.iter().enumerate() {
        let id = reference(&format!("{field}.{n}.productId"), &line.product_id)?;
        if !id.starts_with("prd_") {
            return Err(ApiError::validation(
                format!("{field}.{n}.productId"),
                "refers to a product that does not exist",
            ));
        }
        if !(1..=1_000_000).contains(&line.quantity) {
            return Err(ApiError::validation(
                format!("{field}.{n}.quantity"),
                "must be between 1 and 1000000",
            ));
        }
        if stored.iter().any(|l| l.product_id == id) {
            return Err(ApiError::validation(
                format!("{field}.{n}.productId"),
                "is named twice",
            ));
        }
        stored.push(ProductLine {
            product_id: id,
            quantity: line.quantity,
        });
    }
    serde_json::to_string(&stored).map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, quantity: i32) -> ProductQuantityInput {
        ProductQuantityInput {
            product_id: ID(id.into()),
            quantity,
        }
    }

    #[test]
    fn lines_are_checked_and_kept_in_order() {
        let json =
            lines_json("p", &[line("prd_b", 2), line("prd_a", 1)], 1, 5).expect("valid lines");
        assert_eq!(
            lines_in(&json),
            vec![
                ProductLine {
                    product_id: "prd_b".into(),
                    quantity: 2
                },
                ProductLine {
                    product_id: "prd_a".into(),
                    quantity: 1
                },
            ]
        );
        assert_eq!(lines_json("p", &[], 0, 5).expect("no lines"), "[]");
        let refused =
            |lines: &[ProductQuantityInput]| lines_json("p", lines, 1, 2).expect_err("refused");
        assert!(matches!(refused(&[]), ApiError::Validation { .. }));
        assert!(matches!(
            refused(&[line("acc_x", 1)]),
            ApiError::Validation { .. }
        ));
        assert!(matches!(
            refused(&[line("prd_x", 0)]),
            ApiError::Validation { .. }
        ));
        assert!(matches!(
            refused(&[line("prd_x", 1), line("prd_x", 2)]),
            ApiError::Validation { .. }
        ));
        assert!(matches!(
            refused(&[line("prd_x", 1), line("prd_y", 1), line("prd_z", 1)]),
            ApiError::Validation { .. }
        ));
    }
}
