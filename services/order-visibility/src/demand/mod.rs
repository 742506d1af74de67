//! The supplier demand view: what a supplier needs to plan stock, per product, week and
//! territory. Two kinds of numbers:
//! - **its own lines** (rows it may read one by one): ordered, open and backordered
//!   quantities, each line in the week it is due (the supplier's expected date when it gave
//!   one, else the week the order was placed);
//! - **expected demand** from open opportunities that name its products (rows it may not
//!   read): Σ quantity × probability, in the week of the expected close (overdue deals in
//!   the first week), over a fixed horizon of [`HORIZON_WEEKS`] weeks from this week,
//!   published only in groups of at least k accounts ([`suppress`]).
//!
//! Opportunities reach this service as events ([`replica`]); it never reads the account
//! service's tables.

pub mod replica;
pub mod suppress;

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use crm_service_common::access::{Action, visible_ids};
use crm_service_common::principal::Principal;
use crm_service_common::{ApiError, ApiResult};
use sea_orm::sea_query::{Expr, Func, Query, SelectStatement, SimpleExpr};
use sea_orm::{ConnectionTrait, DatabaseConnection, ExprTrait};

use crate::domain::{LineStatus, OrderStatus};
use crate::entity::{account_territory, demand_territory, expected_demand, order, order_line};
use suppress::Contribution;

/// Expected demand covers this week and the next twelve.
pub const HORIZON_WEEKS: usize = 13;

/// The longest period of own lines one view shows.
pub const MAX_WEEKS: i32 = 26;

/// k: the fewest accounts a published expected-demand number is built from
/// (`CRM_DEMAND_MIN_ACCOUNTS`, 2 to 1000; 5 when unset or out of range).
pub fn minimum_accounts() -> usize {
    static K: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *K.get_or_init(|| {
        std::env::var("CRM_DEMAND_MIN_ACCOUNTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|k| (2..=1000).contains(k))
            .unwrap_or(5)
    })
}

/// The Monday of `day`'s ISO week.
pub fn monday_of(day: NaiveDate) -> NaiveDate {
    day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

/// `n` consecutive Mondays from `first`.
pub fn mondays(first: NaiveDate, n: usize) -> Vec<NaiveDate> {
    (0..n).map(|i| first + Duration::weeks(i as i64)).collect()
}

fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// The index of the week `value` falls in among `weeks` (consecutive Mondays), as SQL;
/// `overdue_first` puts anything before the first week into it. Null outside.
fn week_index<V>(
    value: SimpleExpr,
    weeks: &[NaiveDate],
    bound: impl Fn(NaiveDate) -> V,
    overdue_first: bool,
) -> SimpleExpr
where
    V: Into<sea_orm::Value>,
{
    let mut case = sea_orm::sea_query::CaseStatement::new();
    for (i, monday) in weeks.iter().enumerate() {
        let end = *monday + Duration::weeks(1);
        let within = if i == 0 && overdue_first {
            value.clone().lt(Expr::val(bound(end)))
        } else {
            value
                .clone()
                .gte(Expr::val(bound(*monday)))
                .and(value.clone().lt(Expr::val(bound(end))))
        };
        case = case.case(within, Expr::val(i as i32));
    }
    case.finally(Expr::null()).into()
}

/// Own-line quantities of one cell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineTotals {
    /// Every line not cancelled.
    pub ordered: i64,
    /// Not shipped yet: open, confirmed or backordered.
    pub open: i64,
    pub backordered: i64,
}

impl std::ops::AddAssign for LineTotals {
    fn add_assign(&mut self, other: Self) {
        self.ordered += other.ordered;
        self.open += other.open;
        self.backordered += other.backordered;
    }
}

/// A cell of a product: the week's index and the territory.
pub type Cell = (String, usize, Option<String>);

/// Σ quantity of the lines where `condition` holds.
fn sum_where(condition: SimpleExpr) -> SimpleExpr {
    Func::sum(
        Expr::case(
            condition,
            Expr::col((order_line::Entity, order_line::Column::Quantity)),
        )
        .finally(Expr::val(0)),
    )
    .into()
}

/// The caller's own lines of `products` in `weeks`, per product, week and territory: only
/// lines the policy lets `who` read, of placed orders.
pub async fn line_totals(
    db: &DatabaseConnection,
    who: &Principal,
    at: DateTime<Utc>,
    products: &[String],
    weeks: &[NaiveDate],
) -> ApiResult<BTreeMap<Cell, LineTotals>> {
    if products.is_empty() || weeks.is_empty() {
        return Ok(BTreeMap::new());
    }
    let visible = visible_ids::<order_line::Entity>(who, Action::Read, at).await?;
    let expected_date = Expr::col((order_line::Entity, order_line::Column::ExpectedDate));
    let placed_at = Expr::col((order::Entity, order::Column::PlacedAt));
    let week: SimpleExpr = Expr::case(
        expected_date.clone().is_not_null(),
        week_index(expected_date.clone(), weeks, |d| d, false),
    )
    .finally(week_index(placed_at.clone(), weeks, start_of, false))
    .into();
    let status = || Expr::col((order_line::Entity, order_line::Column::Status));
    let first = weeks[0];
    let end = weeks[weeks.len() - 1] + Duration::weeks(1);
    let in_period = expected_date
        .clone()
        .gte(first)
        .and(expected_date.clone().lt(end))
        .or(expected_date
            .is_null()
            .and(placed_at.clone().gte(start_of(first)))
            .and(placed_at.lt(start_of(end))));
    let query: SelectStatement = Query::select()
        .expr_as(
            Expr::col((order_line::Entity, order_line::Column::ProductId)),
            "product_id",
        )
        .expr_as(week, "week")
        .expr_as(
            Expr::col((
                account_territory::Entity,
                account_territory::Column::TerritoryId,
            )),
            "territory_id",
        )
        .expr_as(sum_where(status().ne(LineStatus::Cancelled)), "ordered")
        .expr_as(
            sum_where(status().is_in([
                LineStatus::Open,
                LineStatus::Confirmed,
                LineStatus::Backordered,
            ])),
            "open",
        )
        .expr_as(
            sum_where(status().eq(LineStatus::Backordered)),
            "backordered",
        )
        .from(order_line::Entity)
        .inner_join(
            order::Entity,
            Expr::col((order::Entity, order::Column::Id))
                .equals((order_line::Entity, order_line::Column::OrderId)),
        )
        .left_join(
            account_territory::Entity,
            Expr::col((
                account_territory::Entity,
                account_territory::Column::AccountId,
            ))
            .equals((order::Entity, order::Column::AccountId)),
        )
        .and_where(
            Expr::col((order_line::Entity, order_line::Column::ProductId))
                .is_in(products.iter().cloned()),
        )
        .and_where(Expr::col((order_line::Entity, order_line::Column::Id)).in_subquery(visible))
        .and_where(Expr::col((order_line::Entity, order_line::Column::ArchivedAt)).is_null())
        .and_where(Expr::col((order::Entity, order::Column::ArchivedAt)).is_null())
        .and_where(
            Expr::col((order::Entity, order::Column::Status))
                .is_not_in([OrderStatus::Draft, OrderStatus::Cancelled]),
        )
        .and_where(in_period)
        .add_group_by([Expr::cust("1"), Expr::cust("2"), Expr::cust("3")])
        .to_owned();
    let mut totals = BTreeMap::new();
    for row in db.query_all(&query).await? {
        let week: Option<i32> = row.try_get("", "week")?;
        let Some(week) = week else { continue };
        totals.insert(
            (
                row.try_get::<String>("", "product_id")?,
                week as usize,
                row.try_get::<Option<String>>("", "territory_id")?,
            ),
            LineTotals {
                ordered: row.try_get::<Option<i64>>("", "ordered")?.unwrap_or(0),
                open: row.try_get::<Option<i64>>("", "open")?.unwrap_or(0),
                backordered: row.try_get::<Option<i64>>("", "backordered")?.unwrap_or(0),
            },
        );
    }
    Ok(totals)
}

/// The expected demand for `products` over the horizon starting `first_monday`, per
/// product, as each account's weighted quantity per cell (read without the caller's
/// filter on purpose: opportunities are summed, never shown; [`suppress`] decides what of
/// it may be published).
pub async fn expected(
    db: &DatabaseConnection,
    products: &[String],
    first_monday: NaiveDate,
) -> ApiResult<BTreeMap<String, Vec<Contribution>>> {
    if products.is_empty() {
        return Ok(BTreeMap::new());
    }
    let horizon = mondays(first_monday, HORIZON_WEEKS);
    let close = Expr::col((
        expected_demand::Entity,
        expected_demand::Column::ExpectedClose,
    ));
    let end = first_monday + Duration::weeks(HORIZON_WEEKS as i64);
    let query = Query::select()
        .expr_as(
            Expr::col((expected_demand::Entity, expected_demand::Column::ProductId)),
            "product_id",
        )
        .expr_as(week_index(close.clone(), &horizon, |d| d, true), "week")
        .expr_as(
            Expr::col((
                account_territory::Entity,
                account_territory::Column::TerritoryId,
            )),
            "territory_id",
        )
        .expr_as(
            Expr::col((expected_demand::Entity, expected_demand::Column::AccountId)),
            "account_id",
        )
        .expr_as(
            Func::sum(
                Expr::col((expected_demand::Entity, expected_demand::Column::Quantity)).mul(
                    Expr::col((
                        expected_demand::Entity,
                        expected_demand::Column::Probability,
                    )),
                ),
            ),
            "weighted",
        )
        .from(expected_demand::Entity)
        .left_join(
            account_territory::Entity,
            Expr::col((
                account_territory::Entity,
                account_territory::Column::AccountId,
            ))
            .equals((expected_demand::Entity, expected_demand::Column::AccountId)),
        )
        .and_where(
            Expr::col((expected_demand::Entity, expected_demand::Column::ProductId))
                .is_in(products.iter().cloned()),
        )
        .and_where(close.lt(end))
        .add_group_by([
            Expr::cust("1"),
            Expr::cust("2"),
            Expr::cust("3"),
            Expr::cust("4"),
        ])
        .to_owned();
    let mut by_product: BTreeMap<String, Vec<Contribution>> = BTreeMap::new();
    for row in db.query_all(&query).await? {
        let week: Option<i32> = row.try_get("", "week")?;
        let Some(week) = week else { continue };
        by_product
            .entry(row.try_get("", "product_id")?)
            .or_default()
            .push(Contribution {
                week: week as usize,
                territory: row.try_get("", "territory_id")?,
                account: row.try_get("", "account_id")?,
                weighted: row.try_get::<Option<i64>>("", "weighted")?.unwrap_or(0),
            });
    }
    Ok(by_product)
}

/// The territories the view's grid has: every territory that is not archived (readers of
/// the view read the territory list anyway), in code order.
pub async fn territories(db: &DatabaseConnection) -> ApiResult<Vec<String>> {
    use sea_orm::{EntityTrait, QueryOrder, QuerySelect};
    Ok(demand_territory::Entity::find()
        .select_only()
        .column(demand_territory::Column::TerritoryId)
        .order_by_asc(demand_territory::Column::Code)
        .order_by_asc(demand_territory::Column::TerritoryId)
        .into_tuple()
        .all(db)
        .await?)
}

/// The period a view shows: `weeks` Mondays from `from`'s week (this week by default).
pub fn period(
    from: Option<NaiveDate>,
    weeks: Option<i32>,
    today: NaiveDate,
) -> ApiResult<Vec<NaiveDate>> {
    let n = weeks.unwrap_or(HORIZON_WEEKS as i32);
    if !(1..=MAX_WEEKS).contains(&n) {
        return Err(ApiError::validation(
            "weeks",
            format!("must be between 1 and {MAX_WEEKS}"),
        ));
    }
    Ok(mondays(monday_of(from.unwrap_or(today)), n as usize))
}
