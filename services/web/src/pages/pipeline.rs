//! The pipeline: the board of open opportunities by stage (a card moves to another stage
//! with its version, by a form that works without scripts, or by dragging it), and the
//! forecast per period, category and currency with its chart and its numbers as a table.

use askama::Template;
use axum::extract::{Path, Query};
use chrono::{Datelike, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::client::ApiFailure;
use super::super::{Chrome, InApp, PageResult, Signed, render};
use super::app::OPPORTUNITY_STAGES;
use super::{
    Choice, Conn, Day, Label, Money, RecordMay, field, param, plausible_id, posted, words,
};

/// The stages a board shows as columns (the closed ones are counted below it).
const OPEN_STAGES: &[&str] = &["PROSPECTING", "QUALIFICATION", "PROPOSAL", "NEGOTIATION"];

#[derive(Deserialize, Default)]
pub struct BoardQuery {
    /// `me` (default) or `all`.
    owner: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Card {
    pub id: String,
    pub version: Option<i64>,
    pub name: String,
    pub stage: Label,
    pub amount: Money,
    pub weighted_amount: Money,
    pub probability: i64,
    pub expected_close: Day,
    pub close_overdue: bool,
    pub owner_user_id: Option<String>,
    pub account: Option<super::app::AccountRef>,
    pub may: RecordMay,
}

pub(crate) struct Column {
    pub stage: String,
    pub label: String,
    pub cards: Vec<Card>,
}

#[derive(Template)]
#[template(path = "app/pipeline.html")]
struct Board {
    chrome: Chrome,
    mine: bool,
    columns: Vec<Column>,
    stages: Vec<Choice>,
    won: i64,
    lost: i64,
    overdue: usize,
}

/// `/app/pipeline`: the open opportunities as a board by stage.
pub async fn board(Signed(ctx, _): Signed<InApp>, Query(query): Query<BoardQuery>) -> PageResult {
    let mine = param(&query.owner).as_deref() != Some("all");
    let owner = mine.then(|| ctx.me.id.clone());
    let data: Value = ctx
        .query(
            "query($owner: ID) { opportunities(first: 200, filter: { openOnly: true, ownerUserId: $owner }) { nodes { id version name stage amount { amount currency } weightedAmount { amount currency } probability expectedClose closeOverdue ownerUserId account { id name } may { update } } } closed: opportunities(first: 0, filter: { ownerUserId: $owner }) { stageCounts { value count } } }",
            json!({ "owner": owner }),
        )
        .await?;
    let cards: Conn<Card> =
        serde_json::from_value(data["opportunities"].clone()).unwrap_or_default();
    let count = |stage: &str| {
        data["closed"]["stageCounts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["value"] == stage)
            .and_then(|c| c["count"].as_i64())
            .unwrap_or(0)
    };
    let overdue = cards.nodes.iter().filter(|c| c.close_overdue).count();
    let columns = OPEN_STAGES
        .iter()
        .map(|stage| Column {
            stage: (*stage).to_owned(),
            label: words(stage),
            cards: cards
                .nodes
                .iter()
                .filter(|c| c.stage.0 == *stage)
                .cloned()
                .collect(),
        })
        .collect();
    Ok(render(&Board {
        chrome: ctx.chrome("Pipeline"),
        mine,
        columns,
        stages: OPPORTUNITY_STAGES
            .iter()
            .map(|s| Choice {
                value: (*s).to_owned(),
                label: words(s),
                selected: false,
            })
            .collect(),
        won: count("CLOSED_WON"),
        lost: count("CLOSED_LOST"),
        overdue,
    }))
}

/// `POST /app/opportunities/{id}/stage`: moves a card (with the version the board showed;
/// a deal someone else moved meanwhile answers in words, and nothing is lost).
pub async fn move_stage(
    Signed(ctx, _): Signed<InApp>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let fields = posted(&ctx, &body)?;
    let get = |name: &str| field(&fields, name);
    if !plausible_id(&id) {
        return Err(ctx.refuse(ApiFailure::NotFound));
    }
    let stage = get("stage");
    let back = if get("back") == "all" {
        "/app/pipeline?owner=all"
    } else {
        "/app/pipeline"
    };
    ctx.query::<Value>(
        "mutation($id: ID!, $v: Int!, $s: OpportunityStage!) { updateOpportunity(id: $id, version: $v, input: { stage: $s }) { id } }",
        json!({ "id": id, "v": get("version").parse::<i64>().unwrap_or(0), "s": stage }),
    )
    .await?;
    ctx.see_other(
        back,
        Some(&format!("Moved to {}.", words(stage).to_lowercase())),
    )
    .await
}

#[derive(Deserialize, Default)]
pub struct ForecastQuery {
    period: Option<String>,
    owner: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Row {
    period: String,
    forecast_category: String,
    currency: String,
    count: i64,
    amount: super::MoneyAmount,
    weighted_amount: super::MoneyAmount,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Total {
    pub currency: String,
    pub count: i64,
    pub amount: Money,
    pub weighted_amount: Money,
}

/// One line of the forecast table: a period and category in one currency.
pub(crate) struct Line {
    pub period: String,
    pub category: String,
    pub currency: String,
    pub count: i64,
    pub amount: Money,
    pub weighted: Money,
}

/// One bar group of the chart: a period's weighted and unweighted amounts (in the chart's
/// currency), as heights in the SVG's units.
pub(crate) struct Bar {
    pub period: String,
    pub x: i64,
    pub amount_height: i64,
    pub weighted_height: i64,
    pub amount: Money,
    pub weighted: Money,
}

#[derive(Template)]
#[template(path = "app/forecast.html")]
struct ForecastPage {
    chrome: Chrome,
    periods: Vec<Choice>,
    mine: bool,
    quarter: bool,
    lines: Vec<Line>,
    totals: Vec<Total>,
    chart_currency: String,
    bars: Vec<Bar>,
    chart_width: i64,
}

const CHART_HEIGHT: i64 = 160;

/// `/app/forecast`: this year and the next by month or quarter.
pub async fn forecast(
    Signed(ctx, _): Signed<InApp>,
    Query(query): Query<ForecastQuery>,
) -> PageResult {
    let quarter = param(&query.period).as_deref() == Some("QUARTER");
    let mine = param(&query.owner).as_deref() == Some("me");
    let year = Utc::now().year();
    let from = NaiveDate::from_ymd_opt(year, 1, 1);
    let to = NaiveDate::from_ymd_opt(year + 1, 12, 31);
    let data: Value = ctx
        .query(
            "query($p: ForecastPeriod!, $from: NaiveDate, $to: NaiveDate, $owner: ID) { forecast(period: $p, from: $from, to: $to, ownerUserId: $owner) { rows { period forecastCategory currency count amount { amount currency } weightedAmount { amount currency } } totals { currency count amount { amount currency } weightedAmount { amount currency } } } }",
            json!({ "p": if quarter { "QUARTER" } else { "MONTH" }, "from": from, "to": to,
                    "owner": mine.then(|| ctx.me.id.clone()) }),
        )
        .await?;
    let rows: Vec<Row> =
        serde_json::from_value(data["forecast"]["rows"].clone()).unwrap_or_default();
    let totals: Vec<Total> =
        serde_json::from_value(data["forecast"]["totals"].clone()).unwrap_or_default();
    // Rows by period and category, owners added up (the API keeps them apart).
    let mut lines: Vec<Line> = Vec::new();
    for row in &rows {
        let minor = |m: &super::MoneyAmount| decimal_minor(&m.amount);
        match lines.iter_mut().find(|l| {
            l.period == row.period
                && l.category == row.forecast_category
                && l.currency == row.currency
        }) {
            Some(line) => {
                line.count += row.count;
                add(&mut line.amount, minor(&row.amount), &row.currency);
                add(
                    &mut line.weighted,
                    minor(&row.weighted_amount),
                    &row.currency,
                );
            }
            None => lines.push(Line {
                period: row.period.clone(),
                category: row.forecast_category.clone(),
                currency: row.currency.clone(),
                count: row.count,
                amount: Money(Some(row.amount.clone())),
                weighted: Money(Some(row.weighted_amount.clone())),
            }),
        }
    }
    lines.sort_by(|a, b| {
        (&a.period, &a.currency, &a.category).cmp(&(&b.period, &b.currency, &b.category))
    });
    // The chart: the currency with the most opportunities, period by period.
    let chart_currency = totals
        .iter()
        .max_by_key(|t| t.count)
        .map(|t| t.currency.clone())
        .unwrap_or_default();
    let mut periods: Vec<(String, i64, i64)> = Vec::new();
    for row in rows.iter().filter(|r| r.currency == chart_currency) {
        let (a, w) = (
            decimal_minor(&row.amount.amount),
            decimal_minor(&row.weighted_amount.amount),
        );
        match periods.iter_mut().find(|p| p.0 == row.period) {
            Some(p) => {
                p.1 += a;
                p.2 += w;
            }
            None => periods.push((row.period.clone(), a, w)),
        }
    }
    periods.sort();
    let top = periods.iter().map(|p| p.1).max().unwrap_or(0).max(1);
    let money = |minor: i64| minor_money(minor, &chart_currency);
    let bars: Vec<Bar> = periods
        .iter()
        .enumerate()
        .map(|(n, (period, amount, weighted))| Bar {
            period: period.clone(),
            x: n as i64 * 56 + 8,
            amount_height: amount * CHART_HEIGHT / top,
            weighted_height: weighted * CHART_HEIGHT / top,
            amount: money(*amount),
            weighted: money(*weighted),
        })
        .collect();
    Ok(render(&ForecastPage {
        chrome: ctx.chrome("Forecast"),
        periods: [("MONTH", "By month"), ("QUARTER", "By quarter")]
            .iter()
            .map(|(v, l)| Choice {
                value: (*v).into(),
                label: (*l).into(),
                selected: (*v == "QUARTER") == quarter,
            })
            .collect(),
        mine,
        quarter,
        chart_width: (bars.len() as i64 * 56 + 16).max(120),
        bars,
        lines,
        totals,
        chart_currency,
    }))
}

/// A decimal amount ("1250.5") in minor units (two decimals).
fn decimal_minor(amount: &str) -> i64 {
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    let cents: String = fraction.chars().chain("00".chars()).take(2).collect();
    let sign = if whole.starts_with('-') { -1 } else { 1 };
    whole.trim_start_matches('-').parse::<i64>().unwrap_or(0) * 100 * sign
        + cents.parse::<i64>().unwrap_or(0) * sign
}

/// An amount in minor units (two decimals, never negative here) as the API writes it.
fn minor_money(minor: i64, currency: &str) -> Money {
    Money(Some(super::MoneyAmount {
        amount: format!("{}.{:02}", minor / 100, (minor % 100).abs()),
        currency: currency.to_owned(),
    }))
}

fn add(total: &mut Money, minor: i64, currency: &str) {
    let sum = total
        .0
        .as_ref()
        .map(|m| decimal_minor(&m.amount))
        .unwrap_or(0)
        + minor;
    *total = minor_money(sum, currency);
}

impl Line {
    pub fn category_words(&self) -> String {
        words(&self.category)
    }
}

#[cfg(test)]
mod tests {
    use super::decimal_minor;

    #[test]
    fn decimals_read_as_minor_units() {
        assert_eq!(decimal_minor("1250.5"), 125_050);
        assert_eq!(decimal_minor("7"), 700);
        assert_eq!(decimal_minor("0.05"), 5);
    }
}
