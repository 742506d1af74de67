//! `Opportunity`: a potential sale moving through stages, with amount and probability.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Result};
use chrono::NaiveDate;
use crm_service_common::ApiError;
use crm_service_common::connection_types;
use crm_service_common::domain::{Currency, Money, percent, text};
use sea_orm::ExprTrait;
use sea_orm::sea_query::Expr;
use sea_orm::{EntityTrait, QueryFilter, Select};

use super::MoneyAmount;
use super::account::Account;
use super::product_lines::{self, ProductQuantity, ProductQuantityInput};
use super::{
    FilterExt, RecordFilter, RecordInput, ensure_exists, load, optional, ordering, record_object,
    record_operations, required, unarchived,
};
use crate::domain::{ForecastCategory, OpportunityStage};
use crate::entity::{account, opportunity, opportunity_stage_change, partner};
use crate::store::set;

#[derive(Clone)]
pub struct Opportunity(pub opportunity::Model);

connection_types!(
    OpportunityConnection,
    OpportunityEdge,
    Opportunity,
    counts_by: stage_counts => "stage"
);

record_object!(Opportunity {
    async fn account_id(&self) -> ID {
        ID(self.0.account_id.clone())
    }
    async fn account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        Ok(load::<account::Entity>(ctx, &self.0.account_id).await?.map(Account))
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn stage(&self) -> OpportunityStage {
        self.0.stage
    }
    async fn amount(&self) -> MoneyAmount {
        MoneyAmount::new(self.0.amount_minor, &self.0.currency)
    }
    /// Chance of closing, 0–100 %.
    async fn probability(&self) -> i32 {
        self.0.probability
    }
    /// amount × probability, the opportunity's weight in a forecast.
    async fn weighted_amount(&self) -> MoneyAmount {
        let weighted = (i128::from(self.0.amount_minor) * i128::from(self.0.probability) / 100) as i64;
        MoneyAmount::new(weighted, &self.0.currency)
    }
    async fn expected_close(&self) -> Option<NaiveDate> {
        self.0.expected_close
    }
    async fn forecast_category(&self) -> ForecastCategory {
        self.0.forecast_category
    }
    async fn owner_user_id(&self, ctx: &Context<'_>) -> Result<Option<ID>> {
        let owner = self.0.owner_user_id.clone().map(ID);
        Ok(crm_service_common::access::unmasked(ctx, &self.0, "ownerUserId", owner)
            .await?
            .flatten())
    }
    /// The partner organisation the deal is attributed to (an approved deal registration).
    async fn partner_id(&self) -> Option<ID> {
        self.0.partner_id.clone().map(ID)
    }
    async fn partner(&self, ctx: &Context<'_>) -> Result<Option<super::partner::Partner>> {
        Ok(match &self.0.partner_id {
            Some(id) => load::<partner::Entity>(ctx, id)
                .await?
                .map(super::partner::Partner),
            None => None,
        })
    }
    /// The deal registration that attributed it.
    async fn registration_id(&self) -> Option<ID> {
        self.0.registration_id.clone().map(ID)
    }
    /// Until when the partner's claim on the deal is protected.
    async fn protected_until(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.protected_until
    }
    /// The products the deal is for, with quantities: suppliers' expected demand is built
    /// from them (weighted by the probability, never showing the customer).
    async fn products(&self) -> Vec<ProductQuantity> {
        product_lines::shown(&self.0.products)
    }
    /// Open, and its expected close date has passed (the user's pipeline needs a new date
    /// or an outcome).
    async fn close_overdue(&self) -> bool {
        !self.0.stage.is_closed()
            && self
                .0
                .expected_close
                .is_some_and(|close| close < crm_service_common::clock::now().date_naive())
    }
    /// Every stage it entered, oldest first, with its amount and probability then.
    async fn stage_history(&self, ctx: &Context<'_>) -> Result<Vec<StageChange>> {
        use sea_orm::QueryOrder;
        let rows = opportunity_stage_change::Entity::find()
            .filter(Expr::col(opportunity_stage_change::Column::OpportunityId).eq(self.0.id.as_str()))
            .order_by_asc(opportunity_stage_change::Column::ChangedAt)
            .order_by_asc(opportunity_stage_change::Column::Id)
            .all(super::db(ctx)?)
            .await?;
        Ok(rows.into_iter().map(StageChange).collect())
    }
});

/// An opportunity entering a stage.
pub struct StageChange(opportunity_stage_change::Model);

#[async_graphql::Object]
impl StageChange {
    /// The stage it left; null when it was created in `toStage`.
    async fn from_stage(&self) -> Option<OpportunityStage> {
        self.0.from_stage
    }
    async fn to_stage(&self) -> OpportunityStage {
        self.0.to_stage
    }
    async fn changed_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.changed_at
    }
    async fn amount(&self) -> MoneyAmount {
        MoneyAmount::new(self.0.amount_minor, &self.0.currency)
    }
    async fn probability(&self) -> i32 {
        self.0.probability
    }
}

ordering!(OpportunityOrder, OpportunityOrderField, opportunity, default = Name, {
    Name => Name.name: Text,
    Amount => AmountMinor.amount_minor: Int,
    Probability => Probability.probability: Int,
    CreatedAt => CreatedAt.created_at: Time,
    UpdatedAt => UpdatedAt.updated_at: Time,
});

#[derive(InputObject, Default, Clone, Debug)]
pub struct OpportunityFilter {
    /// Matches the name, case-insensitively.
    pub text: Option<String>,
    pub account_id: Option<ID>,
    pub stage: Option<OpportunityStage>,
    pub forecast_category: Option<ForecastCategory>,
    pub owner_user_id: Option<ID>,
    /// Deals attributed to this partner organisation.
    pub partner_id: Option<ID>,
    pub expected_close_from: Option<NaiveDate>,
    pub expected_close_to: Option<NaiveDate>,
    /// Only open (not closed won or lost) opportunities.
    pub open_only: Option<bool>,
    /// Only open ones whose expected close date has passed.
    pub close_overdue: Option<bool>,
    #[graphql(default)]
    pub include_archived: bool,
}

impl crm_service_common::search::Searchable<opportunity::Entity> for OpportunityFilter {
    fn for_text(text: String) -> Self {
        Self {
            text: Some(text),
            ..Self::default()
        }
    }
    fn searched(&self) -> Vec<opportunity::Column> {
        use opportunity::Column as C;
        vec![C::Name]
    }
}

impl RecordFilter<opportunity::Entity> for OpportunityFilter {
    /// The owner is an internal user's id, hidden from partners: not a filter for them.
    async fn restrict(
        self,
        who: &crm_service_common::principal::Principal,
    ) -> crm_service_common::ApiResult<Self> {
        if self.owner_user_id.is_some()
            && crm_service_common::access::masks(who, "Opportunity")
                .await?
                .may_hide("ownerUserId")
        {
            return Err(crm_service_common::access::hidden_field(
                "filter.ownerUserId",
            ));
        }
        Ok(self)
    }

    fn select(self) -> Select<opportunity::Entity> {
        use opportunity::Column as C;
        let mut s = unarchived(opportunity::Entity::find(), self.include_archived);
        s = s.text_search(self.text.as_deref(), &[C::Name]);
        s = s.eq_if(C::AccountId, self.account_id.map(|v| v.0));
        s = s.eq_if(C::Stage, self.stage);
        s = s.eq_if(C::ForecastCategory, self.forecast_category);
        s = s.eq_if(C::OwnerUserId, self.owner_user_id.map(|v| v.0));
        s = s.eq_if(C::PartnerId, self.partner_id.map(|v| v.0));
        if let Some(v) = self.expected_close_from {
            s = s.filter(Expr::col(C::ExpectedClose).gte(v));
        }
        if let Some(v) = self.expected_close_to {
            s = s.filter(Expr::col(C::ExpectedClose).lte(v));
        }
        if self.open_only == Some(true) || self.close_overdue == Some(true) {
            s = s.filter(
                Expr::col(C::Stage)
                    .is_not_in([OpportunityStage::ClosedWon, OpportunityStage::ClosedLost]),
            );
        }
        if self.close_overdue == Some(true) {
            let today = crm_service_common::clock::now().date_naive();
            s = s.filter(Expr::col(C::ExpectedClose).lt(today));
        }
        s
    }
}

/// Fields of an opportunity. On create, `accountId`, `name`, `stage`, `amount` and
/// `currency` are required; `probability` and `forecastCategory` default from the stage.
#[derive(InputObject, Default, Clone, Debug)]
pub struct OpportunityInput {
    pub account_id: Option<ID>,
    pub name: Option<String>,
    pub stage: Option<OpportunityStage>,
    /// A non-negative decimal string, e.g. `"1250.00"`.
    pub amount: Option<String>,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: Option<String>,
    pub probability: Option<i32>,
    pub expected_close: MaybeUndefined<NaiveDate>,
    pub forecast_category: Option<ForecastCategory>,
    pub owner_user_id: MaybeUndefined<ID>,
    /// The product line items; an empty list removes them.
    pub products: Option<Vec<ProductQuantityInput>>,
}

/// At most this many product lines on one opportunity.
const MAX_PRODUCT_LINES: usize = 50;

impl RecordInput<opportunity::Entity> for OpportunityInput {
    fn apply(
        &self,
        m: &mut opportunity::ActiveModel,
        creating: bool,
    ) -> crm_service_common::ApiResult<()> {
        if let Some(v) = required(creating, "input.accountId", &self.account_id)? {
            set(&mut m.account_id, v.0.clone());
        }
        if let Some(v) = required(creating, "input.name", &self.name)? {
            set(&mut m.name, text("input.name", v, 200)?);
        }
        let stage = required(creating, "input.stage", &self.stage)?.copied();
        if let Some(v) = stage {
            set(&mut m.stage, v);
        }
        // Amount and currency travel together: changing the currency re-reads the amount.
        let currency_code = match (&self.currency, m.currency.try_as_ref()) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(current)) => Some(current.clone()),
            (None, None) => None,
        };
        if creating && self.currency.is_none() {
            return Err(ApiError::validation("input.currency", "is required"));
        }
        if let Some(code) = currency_code.as_deref() {
            let currency = Currency::parse("input.currency", code)?;
            set(&mut m.currency, currency.code().to_owned());
            if let Some(amount) = required(creating, "input.amount", &self.amount)? {
                set(
                    &mut m.amount_minor,
                    Money::parse("input.amount", amount, currency)?.minor,
                );
            } else if self.currency.is_some() && !creating {
                return Err(ApiError::validation(
                    "input.amount",
                    "is required when the currency changes",
                ));
            }
        }
        match (self.probability, stage) {
            (Some(p), _) => set(&mut m.probability, percent("input.probability", p)?),
            (None, Some(stage)) => set(&mut m.probability, stage.default_probability()),
            (None, None) => {}
        }
        match (self.forecast_category, stage) {
            (Some(f), _) => set(&mut m.forecast_category, f),
            (None, Some(stage)) => set(&mut m.forecast_category, stage.default_forecast()),
            (None, None) => {}
        }
        optional(&mut m.expected_close, &self.expected_close, |v| Ok(*v))?;
        optional(&mut m.owner_user_id, &self.owner_user_id, |v| {
            text("input.ownerUserId", v, 64)
        })?;
        match &self.products {
            Some(lines) => set(
                &mut m.products,
                product_lines::lines_json("input.products", lines, 0, MAX_PRODUCT_LINES)?,
            ),
            None if creating => set(&mut m.products, "[]".to_owned()),
            None => {}
        }
        Ok(())
    }

    async fn check_references(&self, ctx: &Context<'_>) -> crm_service_common::ApiResult<()> {
        if let Some(id) = &self.account_id {
            ensure_exists::<account::Entity>(ctx, "input.accountId", id).await?;
        }
        Ok(())
    }
}

pub(crate) async fn list_opportunities(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    filter: Option<OpportunityFilter>,
    order_by: Option<OpportunityOrder>,
) -> Result<OpportunityConnection> {
    OpportunityQuery
        .opportunities(ctx, first, after, filter, order_by)
        .await
}

record_operations!(
    OpportunityQuery, OpportunityMutation, Opportunity, opportunity, OpportunityInput,
    list: opportunities(OpportunityFilter, OpportunityOrder) -> OpportunityConnection, one: opportunity,
    mutations: create_opportunity, update_opportunity, upsert_opportunity, archive_opportunity
);

/// The periods a forecast rolls up by.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ForecastPeriod {
    Month,
    Quarter,
}

/// One cell of a forecast: the opportunities of one period, owner, forecast category and
/// currency (amounts are never added across currencies).
#[derive(async_graphql::SimpleObject, Clone, Debug)]
pub struct ForecastRow {
    /// `2026-12` for a month, `2026-Q4` for a quarter.
    pub period: String,
    pub owner_user_id: Option<ID>,
    pub forecast_category: ForecastCategory,
    pub currency: String,
    pub count: i64,
    /// Σ amount.
    pub amount: MoneyAmount,
    /// Σ amount × probability.
    pub weighted_amount: MoneyAmount,
}

/// A forecast: its cells, and the totals per currency over all of them.
#[derive(async_graphql::SimpleObject, Clone, Debug)]
pub struct Forecast {
    pub rows: Vec<ForecastRow>,
    pub totals: Vec<ForecastTotal>,
}

/// The forecast's total in one currency (weighted from the exact products, rounded once).
#[derive(async_graphql::SimpleObject, Clone, Debug)]
pub struct ForecastTotal {
    pub currency: String,
    pub count: i64,
    pub amount: MoneyAmount,
    pub weighted_amount: MoneyAmount,
}

#[derive(Default)]
pub struct ForecastQuery;

#[async_graphql::Object]
impl ForecastQuery {
    /// The forecast of the opportunities you may read whose expected close falls in
    /// [`from`, `to`] (both optional), rolled up per period, owner, forecast category and
    /// currency, weighted and unweighted. Opportunities without a close date are left out.
    async fn forecast(
        &self,
        ctx: &Context<'_>,
        period: ForecastPeriod,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        owner_user_id: Option<ID>,
    ) -> Result<Forecast> {
        use crm_service_common::access::{Action, visible_in};
        use opportunity::Column as C;
        use sea_orm::{QueryOrder, QuerySelect};
        let mut select = unarchived(opportunity::Entity::find(), false)
            .filter(visible_in::<opportunity::Entity>(ctx, Action::Read).await?)
            .filter(Expr::col(C::ExpectedClose).is_not_null());
        if let Some(from) = from {
            select = select.filter(Expr::col(C::ExpectedClose).gte(from));
        }
        if let Some(to) = to {
            select = select.filter(Expr::col(C::ExpectedClose).lte(to));
        }
        // A caller the owner is hidden from (a partner, for its attributed deals) gets the
        // forecast without the owner dimension, and may not ask by owner.
        let who = crm_service_common::principal::Principal::of(ctx);
        let hide_owner = crm_service_common::access::masks(&who, "Opportunity")
            .await?
            .may_hide("ownerUserId");
        if hide_owner && owner_user_id.is_some() {
            return Err(crm_service_common::access::hidden_field("ownerUserId").into());
        }
        select = select.eq_if(C::OwnerUserId, owner_user_id.map(|v| v.0));
        // Grouped by day in SQL (the same on both databases), rolled up to periods here:
        // a few thousand days at most, whatever the number of opportunities.
        #[derive(sea_orm::FromQueryResult)]
        struct Day {
            expected_close: Option<NaiveDate>,
            owner_user_id: Option<String>,
            forecast_category: ForecastCategory,
            currency: String,
            count: i64,
            amount: i64,
            weighted: i64,
        }
        let days: Vec<Day> = select
            .select_only()
            .column(C::ExpectedClose)
            .column(C::OwnerUserId)
            .column(C::ForecastCategory)
            .column(C::Currency)
            .column_as(Expr::col(C::Id).count(), "count")
            // PostgreSQL sums integers as numeric: cast back, both databases alike.
            .column_as(Expr::col(C::AmountMinor).sum().cast_as("BIGINT"), "amount")
            .column_as(
                Expr::col(C::AmountMinor)
                    .mul(Expr::col(C::Probability))
                    .sum()
                    .cast_as("BIGINT"),
                "weighted",
            )
            .group_by(C::ExpectedClose)
            .group_by(C::OwnerUserId)
            .group_by(C::ForecastCategory)
            .group_by(C::Currency)
            .order_by_asc(C::ExpectedClose)
            .into_model::<Day>()
            .all(super::db(ctx)?)
            .await?;
        let mut rows: std::collections::BTreeMap<CellKey, Cell> = std::collections::BTreeMap::new();
        for day in days {
            let Some(date) = day.expected_close else {
                continue;
            };
            let label = period_of(date, period);
            let key = (
                label,
                day.owner_user_id.clone().filter(|_| !hide_owner),
                crm_service_common::domain::label(day.forecast_category),
                day.currency.clone(),
            );
            let row = rows.entry(key).or_insert((day.forecast_category, 0, 0, 0));
            row.1 += day.count;
            row.2 += day.amount;
            row.3 += i128::from(day.weighted);
        }
        let mut totals: std::collections::BTreeMap<String, (i64, i64, i128)> =
            std::collections::BTreeMap::new();
        for ((_, _, _, currency), (_, count, amount, weighted)) in &rows {
            let total = totals.entry(currency.clone()).or_default();
            total.0 += count;
            total.1 += amount;
            total.2 += weighted;
        }
        Ok(Forecast {
            rows: rows
                .into_iter()
                .map(
                    |((period, owner, _, currency), (category, count, amount, weighted))| {
                        ForecastRow {
                            period,
                            owner_user_id: owner.map(ID),
                            forecast_category: category,
                            count,
                            amount: MoneyAmount::new(amount, &currency),
                            weighted_amount: MoneyAmount::new((weighted / 100) as i64, &currency),
                            currency,
                        }
                    },
                )
                .collect(),
            totals: totals
                .into_iter()
                .map(|(currency, (count, amount, weighted))| ForecastTotal {
                    count,
                    amount: MoneyAmount::new(amount, &currency),
                    weighted_amount: MoneyAmount::new((weighted / 100) as i64, &currency),
                    currency,
                })
                .collect(),
        })
    }
}

/// A forecast cell's key: period, owner, category (as text, for ordering) and currency.
type CellKey = (String, Option<String>, String, String);
/// A forecast cell's sums: category, count, amount and Σ amount × probability (minor units).
type Cell = (ForecastCategory, i64, i64, i128);

/// The period a close date falls in: `2026-12` or `2026-Q4`.
pub fn period_of(date: NaiveDate, period: ForecastPeriod) -> String {
    use chrono::Datelike;
    match period {
        ForecastPeriod::Month => format!("{}-{:02}", date.year(), date.month()),
        ForecastPeriod::Quarter => format!("{}-Q{}", date.year(), (date.month() - 1) / 3 + 1),
    }
}
