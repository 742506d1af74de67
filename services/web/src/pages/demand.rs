//! The supplier demand view, in the portal for a supplier (its own products) and in the
//! app for staff the policy lets read it (choosing a supplier). Per product and week: the
//! supplier's own lines (ordered, open, backordered) and expected demand from open
//! opportunities, all territories and per territory. Expected numbers the API suppressed
//! (fewer than k customers, or hidden so a total can't give one away) read "hidden"; the
//! CSV download carries exactly the numbers of the page.

use askama::Template;
use axum::extract::Query;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::client::ApiFailure;
use super::super::{Area, Chrome, Ctx, PageResult, Side, Signed, render};
use super::{Choice, param, plausible_id};

/// The period lengths offered, in weeks.
const PERIODS: &[i64] = &[4, 8, 13, 26];

#[derive(Deserialize, Default, Clone)]
pub struct DemandQuery {
    supplier: Option<String>,
    from: Option<String>,
    weeks: Option<String>,
    territory: Option<String>,
    product: Option<String>,
}

#[derive(Deserialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Figure {
    pub value: Option<f64>,
    pub suppressed: bool,
}

impl Figure {
    pub fn text(&self) -> String {
        match self.value {
            Some(v) if !self.suppressed => format!("{v:.2}"),
            _ => "hidden".into(),
        }
    }
    pub fn hidden(&self) -> bool {
        self.suppressed
    }
}

/// One week of a product, of one territory (a cell) or of all of them (no territory
/// field: the week's row).
#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Units {
    pub week: String,
    #[serde(default)]
    pub territory_id: Option<String>,
    pub ordered: i64,
    pub open: i64,
    pub backordered: i64,
    pub expected: Option<Figure>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Product {
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub expected_total: Figure,
    pub weeks: Vec<Units>,
    pub cells: Vec<Units>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct View {
    pub minimum_accounts: i64,
    pub weeks: Vec<String>,
    pub horizon: Vec<String>,
    pub products: Vec<Product>,
}

#[derive(Deserialize, Clone)]
pub(crate) struct Territory {
    pub id: String,
    pub name: String,
}

/// One row of a product's table: a week, its own lines and expected demand (of the chosen
/// territory when one is chosen, else all), and the expected demand per territory column.
pub(crate) struct Row {
    pub week: String,
    pub ordered: i64,
    pub open: i64,
    pub backordered: i64,
    pub expected: Option<Figure>,
    pub all_territories: Option<Figure>,
    pub by_territory: Vec<Option<Figure>>,
}

pub(crate) struct ProductTable {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub total: Figure,
    pub rows: Vec<Row>,
}

#[derive(Template)]
#[template(path = "demand.html")]
struct DemandPage {
    chrome: Chrome,
    base: &'static str,
    k: i64,
    horizon_from: String,
    horizon_to: String,
    from: String,
    suppliers: Vec<Choice>,
    periods: Vec<Choice>,
    territories: Vec<Choice>,
    products: Vec<Choice>,
    /// The territory columns (none when one territory is chosen).
    columns: Vec<String>,
    territory_chosen: Option<String>,
    tables: Vec<ProductTable>,
    csv: String,
}

fn base(area: Area) -> &'static str {
    match area {
        Area::App => "/app/demand",
        Area::Portal => "/portal/demand",
    }
}

/// What the page and its CSV both read: the view, the territories' names, the products
/// and (for staff) the suppliers to choose from.
struct Loaded {
    view: View,
    territories: Vec<Territory>,
    choosable: Vec<(String, String)>,
    suppliers: Vec<(String, String)>,
    supplier: Option<String>,
    query: DemandQuery,
}

async fn load(ctx: &Ctx, query: DemandQuery) -> Result<Loaded, super::super::PageError> {
    if !ctx.me.reads("Demand") {
        return Err(ctx.refuse(ApiFailure::Forbidden(
            "The demand view is for suppliers and for staff who plan with them.".into(),
        )));
    }
    let staff = ctx.area == Area::App;
    let weeks = param(&query.weeks)
        .and_then(|w| w.parse::<i64>().ok())
        .filter(|w| PERIODS.contains(w))
        .unwrap_or(13);
    let from =
        param(&query.from).filter(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok());
    let territory = param(&query.territory).filter(|t| plausible_id(t));
    let product = param(&query.product).filter(|p| plausible_id(p));
    #[derive(Deserialize)]
    struct Named {
        id: String,
        name: String,
    }
    #[derive(Deserialize)]
    struct Nodes<T> {
        nodes: Vec<T>,
    }
    let supplier = if staff {
        param(&query.supplier).filter(|s| plausible_id(s))
    } else {
        None
    };
    // One request: the view, the territories' names, for staff the suppliers (all of them
    // at once unless one is chosen) and, when the view is of one product, the products to
    // choose from (otherwise the view lists them all already).
    let data: Value = ctx
        .query(
            &format!(
                "query($s: ID, $f: NaiveDate, $w: Int, $t: ID, $p: ID) {{ \
                 supplierDemand(supplierId: $s, from: $f, weeks: $w, territoryId: $t, productId: $p) {{ \
                   minimumAccounts weeks horizon products {{ productId sku name \
                     expectedTotal {{ value suppressed }} \
                     weeks {{ week ordered open backordered expected {{ value suppressed }} }} \
                     cells {{ week territoryId ordered open backordered expected {{ value suppressed }} }} }} }} \
                 territories(first: 200, orderBy: {{ field: NAME, direction: ASC }}) {{ nodes {{ id name }} }} {} {} }}",
                if product.is_some() {
                    "choosable: supplierDemand(supplierId: $s, weeks: 1) { products { productId sku name } }"
                } else {
                    ""
                },
                if staff {
                    "partners(first: 200, filter: { kind: SUPPLIER }, orderBy: { field: NAME, direction: ASC }) { nodes { id name } }"
                } else {
                    ""
                }
            ),
            json!({ "s": supplier, "f": from, "w": weeks, "t": territory, "p": product }),
        )
        .await?;
    let suppliers: Vec<(String, String)> =
        serde_json::from_value::<Nodes<Named>>(data["partners"].clone())
            .map(|n| n.nodes.into_iter().map(|p| (p.id, p.name)).collect())
            .unwrap_or_default();
    let view: View = serde_json::from_value(data["supplierDemand"].clone()).map_err(|e| {
        ctx.refuse(ApiFailure::Broken(format!(
            "the demand view could not be read: {e}"
        )))
    })?;
    let territories: Nodes<Territory> =
        serde_json::from_value(data["territories"].clone()).unwrap_or(Nodes { nodes: vec![] });
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Choosable {
        product_id: String,
        sku: String,
        name: String,
    }
    let choosable: Vec<(String, String)> = match product {
        Some(_) => serde_json::from_value::<Vec<Choosable>>(data["choosable"]["products"].clone())
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.product_id, format!("{} · {}", p.sku, p.name)))
            .collect(),
        None => view
            .products
            .iter()
            .map(|p| (p.product_id.clone(), format!("{} · {}", p.sku, p.name)))
            .collect(),
    };
    Ok(Loaded {
        view,
        territories: territories.nodes,
        choosable,
        suppliers,
        supplier,
        query: DemandQuery {
            from,
            weeks: Some(weeks.to_string()),
            territory,
            product,
            supplier: None,
        },
    })
}

fn territory_name(territories: &[Territory], id: &Option<String>) -> String {
    match id {
        Some(id) => territories
            .iter()
            .find(|t| &t.id == id)
            .map_or_else(|| id.clone(), |t| t.name.clone()),
        None => "No territory".into(),
    }
}

/// The shown rows of each product.
fn tables(loaded: &Loaded) -> (Vec<String>, Vec<ProductTable>) {
    let chosen = loaded.query.territory.clone();
    // The grid's territories as the API listed them (cells of accounts without one last).
    let mut grid: Vec<Option<String>> = Vec::new();
    if let Some(p) = loaded.view.products.first() {
        for c in &p.cells {
            if !grid.contains(&c.territory_id) {
                grid.push(c.territory_id.clone());
            }
        }
    }
    let columns = if chosen.is_some() {
        Vec::new()
    } else {
        grid.iter()
            .map(|t| territory_name(&loaded.territories, t))
            .collect()
    };
    let tables = loaded
        .view
        .products
        .iter()
        .map(|p| ProductTable {
            id: p.product_id.clone(),
            sku: p.sku.clone(),
            name: p.name.clone(),
            total: p.expected_total.clone(),
            rows: p
                .weeks
                .iter()
                .map(|w| {
                    let cells: Vec<&Units> = p.cells.iter().filter(|c| c.week == w.week).collect();
                    match (&chosen, cells.first()) {
                        (Some(_), Some(cell)) => Row {
                            week: w.week.clone(),
                            ordered: cell.ordered,
                            open: cell.open,
                            backordered: cell.backordered,
                            expected: cell.expected.clone(),
                            all_territories: w.expected.clone(),
                            by_territory: Vec::new(),
                        },
                        _ => Row {
                            week: w.week.clone(),
                            ordered: w.ordered,
                            open: w.open,
                            backordered: w.backordered,
                            expected: w.expected.clone(),
                            all_territories: None,
                            by_territory: grid
                                .iter()
                                .map(|t| {
                                    cells
                                        .iter()
                                        .find(|c| &c.territory_id == t)
                                        .and_then(|c| c.expected.clone())
                                })
                                .collect(),
                        },
                    }
                })
                .collect(),
        })
        .collect();
    (columns, tables)
}

fn query_string(loaded: &Loaded) -> String {
    let q = &loaded.query;
    serde_urlencoded::to_string(
        [
            ("supplier", loaded.supplier.clone()),
            ("from", q.from.clone()),
            ("weeks", q.weeks.clone()),
            ("territory", q.territory.clone()),
            ("product", q.product.clone()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect::<Vec<_>>(),
    )
    .unwrap_or_default()
}

/// `/portal/demand`, `/app/demand`: the view.
pub async fn page<S: Side>(
    Signed(ctx, _): Signed<S>,
    Query(query): Query<DemandQuery>,
) -> PageResult {
    let loaded = load(&ctx, query).await?;
    let (columns, tables) = tables(&loaded);
    let weeks = loaded.query.weeks.clone().unwrap_or_default();
    let pick = |options: &[(String, String)], current: &Option<String>| -> Vec<Choice> {
        options
            .iter()
            .map(|(value, label)| Choice {
                value: value.clone(),
                label: label.clone(),
                selected: current.as_deref() == Some(value.as_str()),
            })
            .collect()
    };
    let territory_options: Vec<(String, String)> = loaded
        .territories
        .iter()
        .map(|t| (t.id.clone(), t.name.clone()))
        .collect();
    let periods: Vec<(String, String)> = PERIODS
        .iter()
        .map(|w| (w.to_string(), format!("{w} weeks")))
        .collect();
    let base = base(ctx.area);
    Ok(render(&DemandPage {
        chrome: ctx.chrome("Demand"),
        base,
        k: loaded.view.minimum_accounts,
        horizon_from: loaded.view.horizon.first().cloned().unwrap_or_default(),
        horizon_to: loaded.view.horizon.last().cloned().unwrap_or_default(),
        from: loaded
            .query
            .from
            .clone()
            .or_else(|| loaded.view.weeks.first().cloned())
            .unwrap_or_default(),
        suppliers: pick(&loaded.suppliers, &loaded.supplier),
        periods: pick(&periods, &Some(weeks)),
        territories: pick(&territory_options, &loaded.query.territory),
        products: pick(&loaded.choosable, &loaded.query.product),
        columns,
        territory_chosen: loaded
            .query
            .territory
            .as_ref()
            .map(|t| territory_name(&loaded.territories, &Some(t.clone()))),
        tables,
        csv: format!("{base}.csv?{}", query_string(&loaded)),
    }))
}

/// One CSV field, quoted when it must be (and never read as a formula by a spreadsheet).
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

fn figure_fields(figure: &Option<Figure>) -> [String; 2] {
    match figure {
        None => [String::new(), String::new()],
        Some(f) if f.suppressed => [String::new(), "yes".into()],
        Some(f) => [
            f.value.map(|v| format!("{v:.2}")).unwrap_or_default(),
            "no".into(),
        ],
    }
}

/// `/portal/demand.csv`, `/app/demand.csv`: the same numbers as the page, one row per
/// product and week (territory "all"), per product, week and territory, and per product
/// over the horizon.
pub async fn csv<S: Side>(
    Signed(ctx, _): Signed<S>,
    Query(query): Query<DemandQuery>,
) -> PageResult {
    let loaded = load(&ctx, query).await?;
    let mut out = String::from(
        "sku,product,week,territory,ordered,open,backordered,expected,expected_hidden\r\n",
    );
    // One row: the product, the week ("horizon" for its total), the territory ("all"), the
    // own-line units (none for the total) and the expected figure.
    let mut row = |p: &Product,
                   week: &str,
                   territory: String,
                   units: Option<[i64; 3]>,
                   figure: &Option<Figure>| {
        let [expected, hidden] = figure_fields(figure);
        let units = units.map_or_else(
            || [String::new(), String::new(), String::new()],
            |u| u.map(|n| n.to_string()),
        );
        let fields = [p.sku.clone(), p.name.clone(), week.to_owned(), territory]
            .into_iter()
            .chain(units)
            .chain([expected, hidden]);
        out.push_str(&fields.map(|f| csv_field(&f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    };
    for p in &loaded.view.products {
        row(
            p,
            "horizon",
            "all".into(),
            None,
            &Some(p.expected_total.clone()),
        );
        for w in &p.weeks {
            let units = [w.ordered, w.open, w.backordered];
            row(p, &w.week, "all".into(), Some(units), &w.expected);
        }
        for c in &p.cells {
            let territory = territory_name(&loaded.territories, &c.territory_id);
            let units = [c.ordered, c.open, c.backordered];
            row(p, &c.week, territory, Some(units), &c.expected);
        }
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"demand.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}
