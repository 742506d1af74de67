//! `Order`: what an account bought, who fulfils it, and where it is. Its status moves
//! through a validated state machine (`domain::OrderStatus`).

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result};
use chrono::{DateTime, Utc};
use crm_service_common::access::{Action, unmasked, visible};
use crm_service_common::domain::{Currency, Lifecycle, new_id, optional_text};
use crm_service_common::import::Importable;
use crm_service_common::import_operation;
use crm_service_common::principal::Principal;
use crm_service_common::{ApiError, connection_types};
use sea_orm::sea_query::{Condition, Expr, Query};
use sea_orm::{ActiveValue, EntityTrait, ExprTrait, QueryFilter, Select};

use super::order_line::{OrderLineConnection, OrderLineFilter, OrderLineOrder, list_order_lines};
use super::references::{Account, Partner};
use super::shipment::{ShipmentConnection, ShipmentFilter, ShipmentOrder, list_shipments};
use super::{
    FilterExt, MoneyAmount, RecordFilter, RecordInput, load, optional, ordering, record_object,
    record_operations, required, unarchived,
};
use crate::domain::{OrderStatus, order_number, reference};
use crate::entity::{order, order_line, product};
use crate::store::{current, now, set, transition};

#[derive(Clone)]
pub struct Order(pub order::Model);

connection_types!(OrderConnection, OrderEdge, Order, counts_by: status_counts => "status");

record_object!(Order {
    /// The order number, unique (e.g. the ERP's).
    async fn number(&self) -> &str {
        &self.0.number
    }
    async fn account_id(&self) -> ID {
        ID(self.0.account_id.clone())
    }
    /// The buying account (owned by the account service).
    /// The buying account, as the account service shows it to the caller.
    async fn account(&self) -> Option<Account> {
        Some(Account { id: ID(self.0.account_id.clone()) })
    }
    async fn status(&self) -> OrderStatus {
        self.0.status
    }
    /// The statuses this order may move to next.
    async fn next_statuses(&self) -> Vec<OrderStatus> {
        self.0.status.next().to_vec()
    }
    /// When the order was placed (null while it is a draft).
    async fn placed_at(&self) -> Option<DateTime<Utc>> {
        self.0.placed_at
    }
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// The sum of the lines that are not cancelled; masked for suppliers by the policy.
    async fn total(&self, ctx: &Context<'_>) -> Result<Option<MoneyAmount>> {
        let total = MoneyAmount::new(self.0.total_minor, &self.0.currency);
        Ok(unmasked(ctx, &self.0, "total", total).await?)
    }
    async fn fulfilling_distributor_id(&self) -> Option<ID> {
        self.0.fulfilling_distributor_id.clone().map(ID)
    }
    /// The distributor that fulfils the order (a partner of the account service).
    async fn fulfilling_distributor(&self) -> Option<Partner> {
        self.0.fulfilling_distributor_id.clone().map(|id| Partner { id: ID(id) })
    }
    /// Masked for partners by the policy.
    async fn internal_note(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(unmasked(ctx, &self.0, "internalNote", self.0.internal_note.as_deref()).await?.flatten())
    }

    /// The order's lines, in line-number order.
    async fn lines(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<OrderLineFilter>,
        order_by: Option<OrderLineOrder>,
    ) -> Result<OrderLineConnection> {
        let filter = OrderLineFilter { order_id: Some(ID(self.0.id.clone())), ..filter.unwrap_or_default() };
        list_order_lines(ctx, first, after, Some(filter), order_by).await
    }
    async fn shipments(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ShipmentFilter>,
        order_by: Option<ShipmentOrder>,
    ) -> Result<ShipmentConnection> {
        let filter = ShipmentFilter { order_id: Some(ID(self.0.id.clone())), ..filter.unwrap_or_default() };
        list_shipments(ctx, first, after, Some(filter), order_by).await
    }
});

ordering!(OrderOrder, OrderOrderField, order, default = CreatedAt Desc, {
    Number => Number.number: Text,
    CreatedAt => CreatedAt.created_at: Time,
    UpdatedAt => UpdatedAt.updated_at: Time,
    Total => TotalMinor.total_minor: Int,
});

#[derive(InputObject, Default, Clone, Debug)]
pub struct OrderFilter {
    /// Matches the order number, case-insensitively.
    pub text: Option<String>,
    pub account_id: Option<ID>,
    pub status: Option<OrderStatus>,
    pub fulfilling_distributor_id: Option<ID>,
    /// Orders with at least one line of a product this supplier supplies.
    pub supplier_partner_id: Option<ID>,
    /// Orders with at least one line of this product.
    pub product_id: Option<ID>,
    pub placed_after: Option<DateTime<Utc>>,
    pub placed_before: Option<DateTime<Utc>>,
    #[graphql(default)]
    pub include_archived: bool,
    /// The lines the caller may read, when a filter reaches into lines.
    #[graphql(skip)]
    pub visible_lines: Option<Condition>,
}

impl crm_service_common::search::Searchable<order::Entity> for OrderFilter {
    fn for_text(text: String) -> Self {
        Self {
            text: Some(text),
            ..Self::default()
        }
    }
    fn searched(&self) -> Vec<order::Column> {
        use order::Column as C;
        vec![C::Number]
    }
}

impl RecordFilter<order::Entity> for OrderFilter {
    /// A supplier filtering by another supplier's product must match none of that
    /// product's lines (it cannot see them), so it finds, counts and groups nothing.
    async fn within_reach(mut self, who: &Principal) -> crm_service_common::ApiResult<Self> {
        if self.supplier_partner_id.is_some() || self.product_id.is_some() {
            self.visible_lines = Some(
                visible::<order_line::Entity>(who, Action::Read, crm_service_common::access::now())
                    .await?,
            );
        }
        Ok(self)
    }

    fn select(self) -> Select<order::Entity> {
        use order::Column as C;
        let mut s = unarchived(order::Entity::find(), self.include_archived);
        s = s.text_search(self.text.as_deref(), &[C::Number]);
        s = s.eq_if(C::AccountId, self.account_id.map(|v| v.0));
        s = s.eq_if(C::Status, self.status);
        s = s.eq_if(
            C::FulfillingDistributorId,
            self.fulfilling_distributor_id.map(|v| v.0),
        );
        if let Some(supplier) = self.supplier_partner_id {
            let products = Query::select()
                .column(product::Column::Id)
                .from(product::Entity)
                .and_where(Expr::col(product::Column::SupplierPartnerId).eq(supplier.0))
                .to_owned();
            s = s.filter(Expr::col(C::Id).in_subquery(lines_with(
                Expr::col(order_line::Column::ProductId).in_subquery(products),
                self.visible_lines.clone(),
            )));
        }
        if let Some(product_id) = self.product_id {
            s = s.filter(Expr::col(C::Id).in_subquery(lines_with(
                Expr::col(order_line::Column::ProductId).eq(product_id.0),
                self.visible_lines.clone(),
            )));
        }
        if let Some(v) = self.placed_after {
            s = s.filter(Expr::col(C::PlacedAt).gte(v));
        }
        if let Some(v) = self.placed_before {
            s = s.filter(Expr::col(C::PlacedAt).lt(v));
        }
        s
    }
}

/// The ids of orders with a (not archived) line matching `condition`, among the lines in
/// `visible` (the caller's, when given; `within_reach` always gives them for a list).
fn lines_with(
    condition: sea_orm::sea_query::SimpleExpr,
    visible: Option<Condition>,
) -> sea_orm::sea_query::SelectStatement {
    let mut lines = Query::select()
        .column(order_line::Column::OrderId)
        .from(order_line::Entity)
        .and_where(condition)
        .and_where(Expr::col(order_line::Column::ArchivedAt).is_null())
        .to_owned();
    if let Some(visible) = visible {
        lines.cond_where(visible);
    }
    lines
}

/// Fields of an order. On create, `accountId` and `currency` are required; `number` is
/// generated when left out and `status` starts as PLACED unless DRAFT is asked for. On
/// update, a new `status` must be a move the state machine allows.
#[derive(InputObject, Default, Clone, Debug)]
pub struct OrderInput {
    pub number: Option<String>,
    pub account_id: Option<ID>,
    pub status: Option<OrderStatus>,
    /// When it was placed, for orders imported from another system (defaults to the
    /// moment the order becomes PLACED).
    pub placed_at: Option<DateTime<Utc>>,
    pub currency: Option<String>,
    pub fulfilling_distributor_id: MaybeUndefined<ID>,
    pub internal_note: MaybeUndefined<String>,
}

impl RecordInput<order::Entity> for OrderInput {
    fn apply(
        &self,
        m: &mut order::ActiveModel,
        creating: bool,
    ) -> crm_service_common::ApiResult<()> {
        match (&self.number, creating) {
            (Some(v), _) => set(&mut m.number, order_number("input.number", v)?),
            (None, true) => set(
                &mut m.number,
                format!("SO-{}", &new_id("x")[2..14].to_ascii_uppercase()),
            ),
            (None, false) => {}
        }
        if let Some(v) = required(creating, "input.accountId", &self.account_id)? {
            set(&mut m.account_id, reference("input.accountId", v)?);
        }
        if let Some(code) = required(creating, "input.currency", &self.currency)? {
            let code = Currency::parse("input.currency", code)?.code().to_owned();
            if let ActiveValue::Unchanged(current) = &m.currency
                && *current != code
            {
                return Err(ApiError::validation(
                    "input.currency",
                    "cannot change once the order exists",
                ));
            }
            set(&mut m.currency, code);
        }
        if creating {
            set(&mut m.total_minor, 0);
            let status = self.status.unwrap_or(OrderStatus::Placed);
            if !matches!(status, OrderStatus::Draft | OrderStatus::Placed) {
                return Err(ApiError::validation(
                    "input.status",
                    "a new order is DRAFT or PLACED",
                ));
            }
            set(&mut m.status, status);
            m.placed_at = ActiveValue::Set(None);
        } else if let Some(to) = self.status {
            transition(&mut m.status, to)?;
        }
        let status = current(&m.status);
        let placed_at = current(&m.placed_at).flatten();
        if let Some(at) = self.placed_at {
            if status == Some(OrderStatus::Draft) {
                return Err(ApiError::validation(
                    "input.placedAt",
                    "a draft has not been placed",
                ));
            }
            set(&mut m.placed_at, Some(at));
        } else if placed_at.is_none() && status.is_some_and(|s| s != OrderStatus::Draft) {
            set(&mut m.placed_at, Some(now()));
        }
        optional(
            &mut m.fulfilling_distributor_id,
            &self.fulfilling_distributor_id,
            |v| reference("input.fulfillingDistributorId", v),
        )?;
        optional(&mut m.internal_note, &self.internal_note, |v| {
            optional_text("input.internalNote", Some(v), 10_000).map(Option::unwrap_or_default)
        })?;
        Ok(())
    }

    async fn check_references(&self, _ctx: &Context<'_>) -> crm_service_common::ApiResult<()> {
        Ok(())
    }
}

#[derive(Default)]
pub struct OrderEntityQuery;

#[Object]
impl OrderEntityQuery {
    /// Federation entity look-up; a batch of keys is loaded with one query.
    #[graphql(entity)]
    async fn find_order_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Order>> {
        Ok(load::<order::Entity>(ctx, &id).await?.map(Order))
    }
}

pub(crate) async fn list_orders(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    filter: Option<OrderFilter>,
    order_by: Option<OrderOrder>,
) -> Result<OrderConnection> {
    OrderQuery.orders(ctx, first, after, filter, order_by).await
}

/// Orders refer to their account by our id (the account service keeps accounts' external
/// ids); they have no look-alike check: an order number is the organisation's own.
impl Importable<order::Entity> for OrderInput {}

import_operation!(
    OrderImportMutation,
    order,
    OrderInput,
    OrderImportRow,
    import_orders
);

record_operations!(
    OrderQuery, OrderMutation, Order, order, OrderInput,
    list: orders(OrderFilter, OrderOrder) -> OrderConnection, one: order,
    mutations: create_order, update_order, upsert_order, archive_order
);
