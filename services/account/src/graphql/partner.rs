//! `Partner` (a supplier or distributor organisation, a federation entity) and
//! `Territory` (a sales region that accounts belong to and distributors cover).

use async_graphql::{Context, ID, InputObject, Object, Result};
use crm_service_common::connection_types;
use crm_service_common::domain::text;
use crm_service_common::{ApiError, ApiResult};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ActiveValue::Set, EntityTrait, ExprTrait, QueryFilter, QueryOrder, Select};

use super::{
    FilterExt, RecordFilter, RecordInput, db, load, ordering, record_object, record_operations,
    required, unarchived,
};
use crate::domain::{PartnerKind, PartnerTier};
use crate::entity::{partner, partner_territory, territory};
use crate::store::{self, set};

#[derive(Clone)]
pub struct Partner(pub partner::Model);

connection_types!(PartnerConnection, PartnerEdge, Partner);

record_object!(Partner {
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn kind(&self) -> PartnerKind {
        self.0.kind
    }
    async fn tier(&self) -> PartnerTier {
        self.0.tier
    }
    /// The territories this partner covers, by code.
    async fn territories(&self, ctx: &Context<'_>) -> Result<Vec<Territory>> {
        Ok(territories_of(db(ctx)?, &self.0.id).await?.into_iter().map(Territory).collect())
    }
    /// How many of the accounts you may see lie in the territories this partner covers
    /// (what `in_my_territory` gives a distributor, counted in your own slice).
    async fn accounts_in_territories(&self, ctx: &Context<'_>) -> Result<u64> {
        use crate::entity::account;
        use sea_orm::{ColumnTrait, PaginatorTrait};
        let covered = Query::select()
            .column(partner_territory::Column::TerritoryId)
            .from(partner_territory::Entity)
            .and_where(Expr::col(partner_territory::Column::PartnerId).eq(self.0.id.as_str()))
            .to_owned();
        let visible = crm_service_common::access::visible_in::<account::Entity>(
            ctx,
            crm_service_common::access::Action::Read,
        )
        .await?;
        Ok(account::Entity::find()
            .filter(visible)
            .filter(account::Column::ArchivedAt.is_null())
            .filter(Expr::col(account::Column::TerritoryId).in_subquery(covered))
            .count(db(ctx)?)
            .await
            .map_err(ApiError::from)?)
    }
    /// How the partner works with us: its deal registrations and their outcome, the leads
    /// routed to it and how fast it takes them, its cases and our SLA on them. Every number
    /// is over the records you may read (a partner reads its own in full).
    async fn scorecard(&self, ctx: &Context<'_>) -> Result<Scorecard> {
        Ok(scorecard_of(ctx, &self.0.id).await?)
    }
});

/// A partner's scorecard (see `Partner.scorecard`).
#[derive(async_graphql::SimpleObject, Clone, Debug, Default)]
pub struct Scorecard {
    pub registrations_submitted: u64,
    /// Registrations an approval attributed a deal for (still protected or expired).
    pub registrations_approved: u64,
    /// Deals attributed to the partner that were won.
    pub deals_won: u64,
    /// The won deals' amounts, per currency.
    pub revenue_attributed: Vec<super::MoneyAmount>,
    /// Leads routed to it and waiting for its answer.
    pub leads_waiting: u64,
    /// Leads it accepted and works.
    pub leads_accepted: u64,
    /// The median time from routing to acceptance, in hours (none before a first one).
    pub median_hours_to_accept: Option<f64>,
    pub cases_opened: u64,
    pub cases_resolved: u64,
    /// Resolved cases whose SLA held (never escalated), in percent of the resolved ones.
    pub case_sla_met_percent: Option<f64>,
}

async fn scorecard_of(ctx: &Context<'_>, partner_id: &str) -> ApiResult<Scorecard> {
    use crate::domain::{CaseStatus, OpportunityStage};
    use crate::entity::{case, deal_registration, lead, opportunity};
    use crm_service_common::access::{Action, visible_in};
    use sea_orm::{PaginatorTrait, QuerySelect};
    let db = db(ctx)?;
    let registrations = || async {
        ApiResult::Ok(
            deal_registration::Entity::find()
                .filter(visible_in::<deal_registration::Entity>(ctx, Action::Read).await?)
                .filter(Expr::col(deal_registration::Column::PartnerId).eq(partner_id)),
        )
    };
    let registrations_submitted = registrations().await?.count(db).await?;
    let registrations_approved = registrations()
        .await?
        .filter(Expr::col(deal_registration::Column::OpportunityId).is_not_null())
        .count(db)
        .await?;
    let won: Vec<(String, i64)> = opportunity::Entity::find()
        .filter(visible_in::<opportunity::Entity>(ctx, Action::Read).await?)
        .filter(Expr::col(opportunity::Column::PartnerId).eq(partner_id))
        .filter(Expr::col(opportunity::Column::Stage).eq(OpportunityStage::ClosedWon))
        .select_only()
        .column(opportunity::Column::Currency)
        .column(opportunity::Column::AmountMinor)
        .into_tuple()
        .all(db)
        .await?;
    let mut revenue: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for (currency, amount) in &won {
        *revenue.entry(currency.clone()).or_default() += amount;
    }
    // (routed at, accepted at) of each lead routed to the partner.
    type Routing = (
        Option<chrono::DateTime<chrono::Utc>>,
        Option<chrono::DateTime<chrono::Utc>>,
    );
    let leads: Vec<Routing> = lead::Entity::find()
        .filter(visible_in::<lead::Entity>(ctx, Action::Read).await?)
        .filter(Expr::col(lead::Column::RoutedPartnerId).eq(partner_id))
        .filter(Expr::col(lead::Column::ArchivedAt).is_null())
        .select_only()
        .column(lead::Column::RoutedAt)
        .column(lead::Column::AcceptedAt)
        .into_tuple()
        .all(db)
        .await?;
    let mut hours: Vec<f64> = leads
        .iter()
        .filter_map(|(routed, accepted)| {
            Some(
                (accepted.as_ref()?.to_owned() - routed.as_ref()?.to_owned()).num_minutes() as f64
                    / 60.0,
            )
        })
        .collect();
    hours.sort_by(f64::total_cmp);
    let median = match hours.len() {
        0 => None,
        n if n % 2 == 1 => Some(hours[n / 2]),
        n => Some((hours[n / 2 - 1] + hours[n / 2]) / 2.0),
    };
    let cases: Vec<(CaseStatus, Option<chrono::DateTime<chrono::Utc>>)> = case::Entity::find()
        .filter(visible_in::<case::Entity>(ctx, Action::Read).await?)
        .filter(Expr::col(case::Column::PartnerId).eq(partner_id))
        .select_only()
        .column(case::Column::Status)
        .column(case::Column::EscalatedAt)
        .into_tuple()
        .all(db)
        .await?;
    let resolved: Vec<_> = cases
        .iter()
        .filter(|(status, _)| !status.is_open())
        .collect();
    let met = resolved
        .iter()
        .filter(|(_, escalated)| escalated.is_none())
        .count();
    Ok(Scorecard {
        registrations_submitted,
        registrations_approved,
        deals_won: won.len() as u64,
        revenue_attributed: revenue
            .into_iter()
            .map(|(currency, minor)| super::MoneyAmount::new(minor, &currency))
            .collect(),
        leads_waiting: leads
            .iter()
            .filter(|(_, accepted)| accepted.is_none())
            .count() as u64,
        leads_accepted: leads
            .iter()
            .filter(|(_, accepted)| accepted.is_some())
            .count() as u64,
        median_hours_to_accept: median.map(|h| (h * 10.0).round() / 10.0),
        cases_opened: cases.len() as u64,
        cases_resolved: resolved.len() as u64,
        case_sla_met_percent: (!resolved.is_empty())
            .then(|| (met as f64 * 1000.0 / resolved.len() as f64).round() / 10.0),
    })
}

async fn territories_of(
    db: &sea_orm::DatabaseConnection,
    partner_id: &str,
) -> ApiResult<Vec<territory::Model>> {
    let ids = Query::select()
        .column(partner_territory::Column::TerritoryId)
        .from(partner_territory::Entity)
        .and_where(Expr::col(partner_territory::Column::PartnerId).eq(partner_id))
        .to_owned();
    Ok(territory::Entity::find()
        .filter(Expr::col(territory::Column::Id).in_subquery(ids))
        .order_by_asc(territory::Column::Code)
        .all(db)
        .await?)
}

ordering!(PartnerOrder, PartnerOrderField, partner, default = Name, {
    Name => Name.name: Text,
    CreatedAt => CreatedAt.created_at: Time,
    UpdatedAt => UpdatedAt.updated_at: Time,
});

#[derive(InputObject, Default, Clone, Debug)]
pub struct PartnerFilter {
    /// Matches the name, case-insensitively.
    pub text: Option<String>,
    pub kind: Option<PartnerKind>,
    pub tier: Option<PartnerTier>,
    /// Partners that cover this territory.
    pub territory_id: Option<ID>,
    #[graphql(default)]
    pub include_archived: bool,
}

impl RecordFilter<partner::Entity> for PartnerFilter {
    fn select(self) -> Select<partner::Entity> {
        use partner::Column as C;
        let mut s = unarchived(partner::Entity::find(), self.include_archived);
        s = s.text_search(self.text.as_deref(), &[C::Name]);
        s = s.eq_if(C::Kind, self.kind);
        s = s.eq_if(C::Tier, self.tier);
        if let Some(v) = self.territory_id {
            let covering = Query::select()
                .column(partner_territory::Column::PartnerId)
                .from(partner_territory::Entity)
                .and_where(Expr::col(partner_territory::Column::TerritoryId).eq(v.0))
                .to_owned();
            s = s.filter(Expr::col(C::Id).in_subquery(covering));
        }
        s
    }
}

/// Fields of a partner. On create, `name`, `kind` and `tier` are required. Territories are
/// set with `setPartnerTerritories`.
#[derive(InputObject, Default, Clone, Debug)]
pub struct PartnerInput {
    pub name: Option<String>,
    pub kind: Option<PartnerKind>,
    pub tier: Option<PartnerTier>,
}

impl RecordInput<partner::Entity> for PartnerInput {
    fn apply(&self, m: &mut partner::ActiveModel, creating: bool) -> ApiResult<()> {
        if let Some(v) = required(creating, "input.name", &self.name)? {
            set(&mut m.name, text("input.name", v, 200)?);
        }
        if let Some(v) = required(creating, "input.kind", &self.kind)? {
            // A partner's kind is what its users' rules, its products, orders and share
            // rows were decided by: it is chosen once. (A partner that also distributes is
            // a second partner of the other kind.)
            if !creating && m.kind.try_as_ref() != Some(v) {
                return Err(ApiError::validation(
                    "input.kind",
                    "can't change once the partner exists: create a partner of the other kind",
                ));
            }
            set(&mut m.kind, *v);
        }
        if let Some(v) = required(creating, "input.tier", &self.tier)? {
            set(&mut m.tier, *v);
        }
        Ok(())
    }

    async fn check_references(&self, _ctx: &Context<'_>) -> ApiResult<()> {
        Ok(())
    }
}

record_operations!(
    PartnerQuery, PartnerMutation, Partner, partner, PartnerInput,
    list: partners(PartnerFilter, PartnerOrder) -> PartnerConnection, one: partner,
    mutations: create_partner, update_partner, upsert_partner, archive_partner
);

#[derive(Default)]
pub struct PartnerEntityQuery;

#[Object]
impl PartnerEntityQuery {
    /// Federation entity look-up; a batch of keys is loaded with one query.
    #[graphql(entity)]
    async fn find_partner_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Partner>> {
        Ok(load::<partner::Entity>(ctx, &id).await?.map(Partner))
    }
}

#[derive(Default)]
pub struct PartnerTerritoryMutation;

#[Object]
impl PartnerTerritoryMutation {
    /// Replaces the set of territories a partner covers; `version` is the partner's.
    async fn set_partner_territories(
        &self,
        ctx: &Context<'_>,
        partner_id: ID,
        version: i32,
        territory_ids: Vec<ID>,
    ) -> Result<Partner> {
        let db = db(ctx)?;
        let mut wanted: Vec<String> = territory_ids.into_iter().map(|id| id.0).collect();
        wanted.sort();
        wanted.dedup();
        let found = store::get_many::<territory::Entity, _>(db, &wanted).await?;
        if found.len() != wanted.len() || found.iter().any(|t| t.archived_at.is_some()) {
            return Err(ApiError::validation(
                "territoryIds",
                "refers to a territory that does not exist",
            )
            .into());
        }
        let txn = crm_service_common::db::begin_write(db).await?;
        crm_service_common::access::check_may_change::<partner::Entity, _>(
            ctx,
            &txn,
            &partner_id,
            crm_service_common::access::Action::Update,
        )
        .await?;
        // Bump the partner's version first: it fails on a stale version before any change.
        let changes = partner::ActiveModel {
            version: sea_orm::ActiveValue::NotSet,
            ..Default::default()
        };
        let model =
            store::update_versioned::<partner::Entity, _>(&txn, &partner_id, version, changes)
                .await?;
        let covered: Vec<String> = partner_territory::Entity::find()
            .filter(Expr::col(partner_territory::Column::PartnerId).eq(partner_id.0.clone()))
            .all(&txn)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(|c| c.territory_id)
            .collect();
        partner_territory::Entity::delete_many()
            .filter(Expr::col(partner_territory::Column::PartnerId).eq(partner_id.0.clone()))
            .exec(&txn)
            .await
            .map_err(ApiError::from)?;
        crm_service_common::events::outbox::append(
            &txn,
            vec![store::partner_territories_changed(&partner_id, &wanted)],
        )
        .await?;
        if !wanted.is_empty() {
            let rows = wanted
                .iter()
                .map(|territory_id| partner_territory::ActiveModel {
                    partner_id: Set(partner_id.0.clone()),
                    territory_id: Set(territory_id.clone()),
                });
            partner_territory::Entity::insert_many(rows)
                .exec_without_returning(&txn)
                .await
                .map_err(ApiError::from)?;
        }
        // After the new coverage is written: the new rows are made from it.
        crate::territory_shares::coverage_changed(&txn, &partner_id.0, &covered, &wanted).await?;
        crm_service_common::db::commit(txn).await?;
        Ok(Partner(model))
    }
}

#[derive(Clone)]
pub struct Territory(pub territory::Model);

connection_types!(TerritoryConnection, TerritoryEdge, Territory);

record_object!(Territory {
    /// A short stable code such as `DE-NORTH`.
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
});

ordering!(TerritoryOrder, TerritoryOrderField, territory, default = Code, {
    Code => Code.code: Text,
    Name => Name.name: Text,
});

#[derive(InputObject, Default, Clone, Debug)]
pub struct TerritoryFilter {
    /// Matches code or name, case-insensitively.
    pub text: Option<String>,
    #[graphql(default)]
    pub include_archived: bool,
}

impl RecordFilter<territory::Entity> for TerritoryFilter {
    fn select(self) -> Select<territory::Entity> {
        use territory::Column as C;
        let mut s = unarchived(territory::Entity::find(), self.include_archived);
        s = s.text_search(self.text.as_deref(), &[C::Code, C::Name]);
        s
    }
}

/// Fields of a territory. On create, `code` and `name` are required.
#[derive(InputObject, Default, Clone, Debug)]
pub struct TerritoryInput {
    /// Upper-case letters, digits and dashes, e.g. `DE-NORTH`.
    pub code: Option<String>,
    pub name: Option<String>,
}

impl RecordInput<territory::Entity> for TerritoryInput {
    fn apply(&self, m: &mut territory::ActiveModel, creating: bool) -> ApiResult<()> {
        if let Some(v) = required(creating, "input.code", &self.code)? {
            let code = v.trim().to_ascii_uppercase();
            if code.is_empty()
                || code.len() > 32
                || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(ApiError::validation(
                    "input.code",
                    "must be 1 to 32 letters, digits or dashes",
                ));
            }
            set(&mut m.code, code);
        }
        if let Some(v) = required(creating, "input.name", &self.name)? {
            set(&mut m.name, text("input.name", v, 200)?);
        }
        Ok(())
    }

    async fn check_references(&self, _ctx: &Context<'_>) -> ApiResult<()> {
        Ok(())
    }
}

record_operations!(
    TerritoryQuery, TerritoryMutation, Territory, territory, TerritoryInput,
    list: territories(TerritoryFilter, TerritoryOrder) -> TerritoryConnection, one: territory,
    mutations: create_territory, update_territory, upsert_territory, archive_territory
);
