//! `OrderLine`: one product on an order, with quantity, unit price and its own status
//! (the supplier confirms, backorders or ships it).

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Result};
use crm_service_common::connection_types;
use crm_service_common::domain::Lifecycle;
use crm_service_common::import::{ImportReference, Importable, referenced};
use crm_service_common::import_operation;
use sea_orm::{EntityTrait, Select};

use super::order::Order;
use super::product::Product;
use super::{
    FilterExt, MoneyAmount, RecordFilter, RecordInput, apply_price, ensure_exists, load, optional,
    ordering, record_object, record_operations, required, unarchived,
};
use crate::domain::{LineStatus, quantity};
use crate::entity::{order, order_line, product};
use crate::store::{set, transition};

#[derive(Clone)]
pub struct OrderLine(pub order_line::Model);

connection_types!(OrderLineConnection, OrderLineEdge, OrderLine);

record_object!(OrderLine {
    async fn order_id(&self) -> ID {
        ID(self.0.order_id.clone())
    }
    async fn order(&self, ctx: &Context<'_>) -> Result<Option<Order>> {
        Ok(load::<order::Entity>(ctx, &self.0.order_id).await?.map(Order))
    }
    async fn line_number(&self) -> Option<i32> {
        self.0.line_number
    }
    async fn product_id(&self) -> ID {
        ID(self.0.product_id.clone())
    }
    async fn product(&self, ctx: &Context<'_>) -> Result<Option<Product>> {
        Ok(load::<product::Entity>(ctx, &self.0.product_id).await?.map(Product))
    }
    async fn quantity(&self) -> i32 {
        self.0.quantity
    }
    /// Masked for suppliers by the policy.
    async fn unit_price(&self, ctx: &Context<'_>) -> Result<Option<MoneyAmount>> {
        let price = MoneyAmount::new(self.0.unit_price_minor, &self.0.currency);
        Ok(crm_service_common::access::unmasked(ctx, &self.0, "unitPrice", price).await?)
    }
    /// quantity × unit price; masked for suppliers by the policy.
    async fn amount(&self, ctx: &Context<'_>) -> Result<Option<MoneyAmount>> {
        let amount = MoneyAmount::new(
            i64::from(self.0.quantity).saturating_mul(self.0.unit_price_minor),
            &self.0.currency,
        );
        Ok(crm_service_common::access::unmasked(ctx, &self.0, "amount", amount).await?)
    }
    async fn status(&self) -> LineStatus {
        self.0.status
    }
    /// When the supplier expects to ship it (set when it confirms or backorders the line).
    async fn expected_date(&self) -> Option<chrono::NaiveDate> {
        self.0.expected_date
    }
    /// The statuses this line may move to next.
    async fn next_statuses(&self) -> Vec<LineStatus> {
        self.0.status.next().to_vec()
    }
});

ordering!(OrderLineOrder, OrderLineOrderField, order_line, default = CreatedAt, {
    CreatedAt => CreatedAt.created_at: Time,
    UpdatedAt => UpdatedAt.updated_at: Time,
    Quantity => Quantity.quantity: Int,
});

#[derive(InputObject, Default, Clone, Debug)]
pub struct OrderLineFilter {
    pub order_id: Option<ID>,
    pub product_id: Option<ID>,
    pub status: Option<LineStatus>,
    #[graphql(default)]
    pub include_archived: bool,
}

impl RecordFilter<order_line::Entity> for OrderLineFilter {
    fn select(self) -> Select<order_line::Entity> {
        use order_line::Column as C;
        let mut s = unarchived(order_line::Entity::find(), self.include_archived);
        s = s.eq_if(C::OrderId, self.order_id.map(|v| v.0));
        s = s.eq_if(C::ProductId, self.product_id.map(|v| v.0));
        s = s.eq_if(C::Status, self.status);
        s
    }
}

/// Fields of an order line. On create, `orderId`, `productId`, `quantity`, `unitPrice`
/// and `currency` (the order's) are required and the status starts OPEN; on update a new
/// `status` must be a move the state machine allows. A closed order's lines do not change.
#[derive(InputObject, Default, Clone, Debug)]
pub struct OrderLineInput {
    pub order_id: Option<ID>,
    pub line_number: MaybeUndefined<i32>,
    pub product_id: Option<ID>,
    pub quantity: Option<i32>,
    /// A decimal string, e.g. `"12.50"`.
    pub unit_price: Option<String>,
    pub currency: Option<String>,
    pub status: Option<LineStatus>,
    /// When the line is expected to ship (today or later); a backordered line needs one.
    pub expected_date: MaybeUndefined<chrono::NaiveDate>,
}

impl RecordInput<order_line::Entity> for OrderLineInput {
    fn apply(
        &self,
        m: &mut order_line::ActiveModel,
        creating: bool,
    ) -> crm_service_common::ApiResult<()> {
        if let Some(v) = required(creating, "input.orderId", &self.order_id)? {
            set(&mut m.order_id, v.0.clone());
        }
        optional(&mut m.line_number, &self.line_number, |v| {
            if (1..=100_000).contains(v) {
                Ok(*v)
            } else {
                Err(crm_service_common::ApiError::validation(
                    "input.lineNumber",
                    "must be between 1 and 100000",
                ))
            }
        })?;
        if let Some(v) = required(creating, "input.productId", &self.product_id)? {
            set(&mut m.product_id, v.0.clone());
        }
        if let Some(v) = required(creating, "input.quantity", &self.quantity)? {
            set(&mut m.quantity, quantity("input.quantity", *v)?);
        }
        apply_price(
            &mut m.currency,
            &mut m.unit_price_minor,
            &self.currency,
            &self.unit_price,
            creating,
        )?;
        if creating {
            set(&mut m.status, self.status.unwrap_or(LineStatus::Open));
        } else if let Some(to) = self.status {
            transition(&mut m.status, to)?;
        }
        optional(&mut m.expected_date, &self.expected_date, |v| {
            if *v < crate::store::now().date_naive() {
                Err(crm_service_common::ApiError::validation(
                    "input.expectedDate",
                    "is in the past",
                ))
            } else {
                Ok(*v)
            }
        })?;
        let backordered = crate::store::current(&m.status) == Some(LineStatus::Backordered);
        if backordered && crate::store::current(&m.expected_date).flatten().is_none() {
            return Err(crm_service_common::ApiError::validation(
                "input.expectedDate",
                "is required for a backordered line: say when it will ship",
            ));
        }
        Ok(())
    }

    async fn check_references(&self, ctx: &Context<'_>) -> crm_service_common::ApiResult<()> {
        if let Some(id) = &self.order_id {
            ensure_exists::<order::Entity>(ctx, "input.orderId", id).await?;
        }
        if let Some(id) = &self.product_id {
            ensure_exists::<product::Entity>(ctx, "input.productId", id).await?;
        }
        Ok(())
    }
}

pub(crate) async fn list_order_lines(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    filter: Option<OrderLineFilter>,
    order_by: Option<OrderLineOrder>,
) -> Result<OrderLineConnection> {
    OrderLineQuery
        .order_lines(ctx, first, after, filter, order_by)
        .await
}

impl Importable<order_line::Entity> for OrderLineInput {
    async fn resolve(
        &mut self,
        ctx: &Context<'_>,
        txn: &sea_orm::DatabaseTransaction,
        reference: &ImportReference,
    ) -> crm_service_common::ApiResult<()> {
        match reference.field.as_str() {
            "orderId" => {
                self.order_id = Some(referenced::<order::Entity>(ctx, txn, reference).await?)
            }
            "productId" => {
                self.product_id = Some(referenced::<product::Entity>(ctx, txn, reference).await?)
            }
            other => {
                return Err(crm_service_common::ApiError::validation(
                    format!("references.{other}"),
                    "is not a reference an order line takes (orderId, productId)",
                ));
            }
        }
        Ok(())
    }
}

import_operation!(
    OrderLineImportMutation,
    order_line,
    OrderLineInput,
    OrderLineImportRow,
    import_order_lines
);

record_operations!(
    OrderLineQuery, OrderLineMutation, OrderLine, order_line, OrderLineInput,
    list: order_lines(OrderLineFilter, OrderLineOrder) -> OrderLineConnection, one: order_line,
    mutations: create_order_line, update_order_line, upsert_order_line, archive_order_line
);
