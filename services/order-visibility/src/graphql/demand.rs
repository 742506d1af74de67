//! `supplierDemand`: the supplier demand view ([`crate::demand`]). A supplier reads its own
//! products' view (the policy's `Demand` rule, scoped like products); staff the policy lets
//! read it choose a supplier, or see every product.

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::NaiveDate;
use crm_service_common::access::{self, Action, condition_of, decide};
use crm_service_common::clock::now;
use crm_service_common::principal::Principal;
use sea_orm::sea_query::Expr;
use sea_orm::{EntityTrait, ExprTrait, QueryFilter, QueryOrder};

use super::db;
use crate::demand::suppress::{Figure, suppress};
use crate::demand::{self, HORIZON_WEEKS, LineTotals};
use crate::entity::product;

/// A number of expected units, or the fact that it is hidden.
#[derive(SimpleObject, Clone, Debug)]
pub struct DemandFigure {
    /// Σ quantity × probability, in units (two decimals); null when suppressed.
    pub value: Option<f64>,
    /// Built from fewer than `minimumAccounts` customers (none at all reads the same), or
    /// hidden so that a total can't give such a number away.
    pub suppressed: bool,
}

impl From<Figure> for DemandFigure {
    fn from(figure: Figure) -> Self {
        Self {
            value: figure.shown().map(|hundredths| hundredths as f64 / 100.0),
            suppressed: figure.shown().is_none(),
        }
    }
}

/// One product, week and territory.
#[derive(SimpleObject, Clone, Debug)]
pub struct DemandCell {
    /// The Monday of the week.
    pub week: NaiveDate,
    /// Null: accounts without a territory.
    pub territory_id: Option<ID>,
    /// Units on your lines due that week (not cancelled).
    pub ordered: i64,
    /// Of those, not shipped yet (open, confirmed or backordered).
    pub open: i64,
    pub backordered: i64,
    /// Expected units from open opportunities; null for a week outside the horizon.
    pub expected: Option<DemandFigure>,
}

/// One product's week, all territories.
#[derive(SimpleObject, Clone, Debug)]
pub struct DemandWeek {
    pub week: NaiveDate,
    pub ordered: i64,
    pub open: i64,
    pub backordered: i64,
    /// Null for a week outside the horizon.
    pub expected: Option<DemandFigure>,
}

/// One product's rows of the view.
#[derive(SimpleObject, Clone, Debug)]
pub struct DemandProduct {
    pub product_id: ID,
    pub sku: String,
    pub name: String,
    pub supplier_partner_id: ID,
    /// Expected units over the whole horizon, all territories (whatever the period).
    pub expected_total: DemandFigure,
    /// Per week of the period, all territories (whatever the territory filter).
    pub weeks: Vec<DemandWeek>,
    /// Per week of the period and territory.
    pub cells: Vec<DemandCell>,
}

/// The supplier demand view.
#[derive(SimpleObject, Clone, Debug)]
pub struct SupplierDemand {
    /// k: the fewest customers a shown expected number is built from.
    pub minimum_accounts: i32,
    /// The Mondays of the period shown.
    pub weeks: Vec<NaiveDate>,
    /// The Mondays of the weeks expected demand covers (this week and the next twelve;
    /// deals whose close date has passed count in this week).
    pub horizon: Vec<NaiveDate>,
    /// The territories of the grid (cells of accounts without one have a null territory).
    pub territory_ids: Vec<ID>,
    pub products: Vec<DemandProduct>,
}

#[derive(Default)]
pub struct DemandQuery;

#[Object]
impl DemandQuery {
    /// What a supplier needs to plan stock: its own lines (ordered, open, backordered) and
    /// expected demand from open opportunities naming its products, per product, week and
    /// territory. Expected numbers carry no customer and are shown only when built from at
    /// least `minimumAccounts` customers. `from` picks the first week (default: this one),
    /// `weeks` how many (1–26, default 13); `territoryId` and `productId` choose which
    /// cells and products are listed, never what a total sums. Staff choose a supplier
    /// with `supplierId`.
    async fn supplier_demand(
        &self,
        ctx: &Context<'_>,
        supplier_id: Option<ID>,
        from: Option<NaiveDate>,
        weeks: Option<i32>,
        territory_id: Option<ID>,
        product_id: Option<ID>,
    ) -> Result<SupplierDemand> {
        let who = Principal::of(ctx);
        let at = now();
        let decision = decide(&who, "Demand", Action::Read).await?;
        if !decision.is_allowed() {
            return Err(access::forbidden("Demand").into());
        }
        let period = demand::period(from, weeks, at.date_naive())?;
        let this_week = demand::monday_of(at.date_naive());
        let horizon = demand::mondays(this_week, HORIZON_WEEKS);
        let db = db(ctx)?;
        let mut products = product::Entity::find()
            .filter(condition_of::<product::Entity>(&decision, &who, at).await?)
            .filter(Expr::col(product::Column::ArchivedAt).is_null());
        if let Some(supplier) = &supplier_id {
            products = products
                .filter(Expr::col(product::Column::SupplierPartnerId).eq(supplier.as_str()));
        }
        if let Some(product) = &product_id {
            products = products.filter(Expr::col(product::Column::Id).eq(product.as_str()));
        }
        let products = products
            .order_by_asc(product::Column::Sku)
            .order_by_asc(product::Column::Id)
            .all(db)
            .await?;
        let ids: Vec<String> = products.iter().map(|p| p.id.clone()).collect();
        let grid = demand::territories(db).await?;
        // An account in a territory that is no longer listed counts as without one.
        let listed = |t: Option<String>| t.filter(|t| grid.contains(t));
        let mut lines: std::collections::BTreeMap<demand::Cell, LineTotals> = Default::default();
        for ((product, week, territory), own) in
            demand::line_totals(db, &who, at, &ids, &period).await?
        {
            *lines.entry((product, week, listed(territory))).or_default() += own;
        }
        let mut expected = demand::expected(db, &ids, this_week).await?;
        for contributions in expected.values_mut() {
            for c in contributions.iter_mut() {
                c.territory = listed(c.territory.take());
            }
        }
        let k = demand::minimum_accounts();
        let mut territories: Vec<Option<String>> = grid.iter().cloned().map(Some).collect();
        territories.push(None);
        let shown_territories: Vec<Option<String>> = match &territory_id {
            Some(t) => territories
                .iter()
                .filter(|g| g.as_deref() == Some(t.as_str()))
                .cloned()
                .collect(),
            None => territories.clone(),
        };
        let mut out = Vec::with_capacity(products.len());
        for p in products {
            let published = suppress(expected.get(&p.id).map_or(&[][..], |c| c.as_slice()), k);
            let in_horizon = |week: NaiveDate| horizon.iter().position(|h| *h == week);
            let mut cells = Vec::new();
            let mut week_rows = Vec::new();
            for (w, monday) in period.iter().enumerate() {
                let h = in_horizon(*monday);
                let mut week_lines = LineTotals::default();
                for territory in &territories {
                    let own = lines
                        .get(&(p.id.clone(), w, territory.clone()))
                        .copied()
                        .unwrap_or_default();
                    week_lines += own;
                    if !shown_territories.contains(territory) {
                        continue;
                    }
                    cells.push(DemandCell {
                        week: *monday,
                        territory_id: territory.clone().map(ID),
                        ordered: own.ordered,
                        open: own.open,
                        backordered: own.backordered,
                        expected: h.map(|h| {
                            published
                                .cells
                                .get(&(h, territory.clone()))
                                .copied()
                                .unwrap_or(Figure::Suppressed)
                                .into()
                        }),
                    });
                }
                week_rows.push(DemandWeek {
                    week: *monday,
                    ordered: week_lines.ordered,
                    open: week_lines.open,
                    backordered: week_lines.backordered,
                    expected: h.map(|h| {
                        published
                            .weeks
                            .get(&h)
                            .copied()
                            .unwrap_or(Figure::Suppressed)
                            .into()
                    }),
                });
            }
            out.push(DemandProduct {
                product_id: ID(p.id),
                sku: p.sku,
                name: p.name,
                supplier_partner_id: ID(p.supplier_partner_id),
                expected_total: published.total.unwrap_or(Figure::Suppressed).into(),
                weeks: week_rows,
                cells,
            });
        }
        Ok(SupplierDemand {
            minimum_accounts: k as i32,
            weeks: period,
            horizon,
            territory_ids: grid.into_iter().map(ID).collect(),
            products: out,
        })
    }
}
