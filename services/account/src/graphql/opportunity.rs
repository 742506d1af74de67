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
use super::{
    FilterExt, RecordFilter, RecordInput, ensure_exists, load, optional, ordering, record_object,
    record_operations, required, unarchived,
};
use crate::domain::{ForecastCategory, OpportunityStage};
use crate::entity::{account, opportunity};
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
    async fn owner_user_id(&self) -> Option<ID> {
        self.0.owner_user_id.clone().map(ID)
    }
});

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
    pub expected_close_from: Option<NaiveDate>,
    pub expected_close_to: Option<NaiveDate>,
    /// Only open (not closed won or lost) opportunities.
    pub open_only: Option<bool>,
    #[graphql(default)]
    pub include_archived: bool,
}

impl RecordFilter<opportunity::Entity> for OpportunityFilter {
    fn select(self) -> Select<opportunity::Entity> {
        use opportunity::Column as C;
        let mut s = unarchived(opportunity::Entity::find(), self.include_archived);
        s = s.text_search(self.text.as_deref(), &[C::Name]);
        s = s.eq_if(C::AccountId, self.account_id.map(|v| v.0));
        s = s.eq_if(C::Stage, self.stage);
        s = s.eq_if(C::ForecastCategory, self.forecast_category);
        s = s.eq_if(C::OwnerUserId, self.owner_user_id.map(|v| v.0));
        if let Some(v) = self.expected_close_from {
            s = s.filter(Expr::col(C::ExpectedClose).gte(v));
        }
        if let Some(v) = self.expected_close_to {
            s = s.filter(Expr::col(C::ExpectedClose).lte(v));
        }
        if self.open_only == Some(true) {
            s = s.filter(
                Expr::col(C::Stage)
                    .is_not_in([OpportunityStage::ClosedWon, OpportunityStage::ClosedLost]),
            );
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
}

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
