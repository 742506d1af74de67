//! `Lead`: a prospective customer not yet qualified; converting one creates (or reuses) an
//! account, creates a contact and optionally an opportunity, in one transaction.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use chrono::NaiveDate;
use crm_service_common::connection_types;
use crm_service_common::domain::{email, phone, text};
use crm_service_common::{ApiError, ApiResult};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, EntityTrait, ExprTrait, QueryFilter, Select};

use super::account::{Account, AccountInput};
use super::contact::{Contact, ContactInput};
use super::opportunity::{Opportunity, OpportunityInput};
use super::{
    FilterExt, RecordFilter, RecordInput, db, ensure_exists, optional, ordering, record_object,
    record_operations, required, unarchived,
};
use crate::domain::{
    AccountTier, LeadSource, LeadStatus, LifecycleStage, OpportunityStage, Segment, TierLimits,
};
use crate::entity::{account, contact, lead, opportunity, partner};
use crate::store::{self, current, now, set};

#[derive(Clone)]
pub struct Lead(pub lead::Model);

connection_types!(LeadConnection, LeadEdge, Lead);

/// One scoring rule's part of a lead's score.
#[derive(SimpleObject)]
pub struct LeadScoreReason {
    /// The rule ("Source", "Fit: email", "Fit: phone", "Recent activity").
    pub rule: String,
    /// What the rule found on this lead, in words.
    pub finding: String,
    pub points: i32,
}

record_object!(Lead {
    async fn first_name(&self) -> &str {
        &self.0.first_name
    }
    async fn last_name(&self) -> &str {
        &self.0.last_name
    }
    async fn company(&self) -> &str {
        &self.0.company
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn source(&self) -> LeadSource {
        self.0.source
    }
    async fn status(&self) -> LeadStatus {
        self.0.status
    }
    /// Lead score, 0–100: higher is warmer. It is the sum of `scoreReasons`, kept as the
    /// lead and the work on it change (it cannot be set).
    async fn score(&self) -> i32 {
        self.0.score
    }
    /// Why the lead scores what it does, rule by rule (source, fit, recent activity).
    async fn score_reasons(&self) -> Vec<LeadScoreReason> {
        crate::domain::lead_score(
            self.0.source,
            self.0.email.as_deref(),
            self.0.phone.as_deref(),
            self.0.recent_activities,
        )
        .into_iter()
        .map(|p| LeadScoreReason {
            rule: p.rule.into(),
            finding: p.finding,
            points: p.points,
        })
        .collect()
    }
    async fn owner_user_id(&self, ctx: &Context<'_>) -> Result<Option<ID>> {
        let owner = self.0.owner_user_id.clone().map(ID);
        Ok(crm_service_common::access::unmasked(ctx, &self.0, "ownerUserId", owner)
            .await?
            .flatten())
    }
    /// The distributor the lead is routed to; it reads the lead while it is.
    async fn routed_partner_id(&self) -> Option<ID> {
        self.0.routed_partner_id.clone().map(ID)
    }
    async fn routed_partner(&self, ctx: &Context<'_>) -> Result<Option<super::partner::Partner>> {
        Ok(match &self.0.routed_partner_id {
            Some(id) => super::load::<partner::Entity>(ctx, id)
                .await?
                .map(super::partner::Partner),
            None => None,
        })
    }
    async fn routed_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.routed_at
    }
    /// When the distributor must have accepted or declined by; unanswered, the lead
    /// returns to the pool then.
    async fn respond_by(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.respond_by
    }
    async fn accepted_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.accepted_at
    }
    /// Why the last distributor gave it back (or that it did not answer in time).
    async fn decline_reason(&self) -> Option<&str> {
        self.0.decline_reason.as_deref()
    }
    /// The distributors that could take this lead, those with room first: each with its
    /// routed leads in work and what its tier takes. For staff who route leads.
    async fn routing_suggestions(&self, ctx: &Context<'_>) -> Result<Option<Vec<RoutingSuggestion>>> {
        // Decided before counting: a reader the field is hidden from costs no query.
        if crm_service_common::access::unmasked(ctx, &self.0, "routingSuggestions", ())
            .await?
            .is_none()
        {
            return Ok(None);
        }
        Ok(Some(routing_suggestions(db(ctx)?).await?))
    }
    async fn converted_account_id(&self) -> Option<ID> {
        self.0.converted_account_id.clone().map(ID)
    }
    async fn converted_contact_id(&self) -> Option<ID> {
        self.0.converted_contact_id.clone().map(ID)
    }
    async fn converted_opportunity_id(&self) -> Option<ID> {
        self.0.converted_opportunity_id.clone().map(ID)
    }
    async fn converted_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.converted_at
    }
});

ordering!(LeadOrder, LeadOrderField, lead, default = CreatedAt, {
    CreatedAt => CreatedAt.created_at: Time,
    UpdatedAt => UpdatedAt.updated_at: Time,
    Score => Score.score: Int,
    LastName => LastName.last_name: Text,
    Company => Company.company: Text,
});

#[derive(InputObject, Default, Clone, Debug)]
pub struct LeadFilter {
    /// Matches name, company or email, case-insensitively.
    pub text: Option<String>,
    pub status: Option<LeadStatus>,
    pub source: Option<LeadSource>,
    pub min_score: Option<i32>,
    pub owner_user_id: Option<ID>,
    /// Leads routed to this distributor.
    pub routed_partner_id: Option<ID>,
    #[graphql(default)]
    pub include_archived: bool,
}

impl crm_service_common::search::Searchable<lead::Entity> for LeadFilter {
    fn for_text(text: String) -> Self {
        Self {
            text: Some(text),
            ..Self::default()
        }
    }
    fn searched(&self) -> Vec<lead::Column> {
        use lead::Column as C;
        vec![C::LastName, C::FirstName, C::Company, C::Email]
    }
}

impl RecordFilter<lead::Entity> for LeadFilter {
    /// The owner is an internal user's id, hidden from partners: not a filter for them.
    async fn restrict(self, who: &crm_service_common::principal::Principal) -> ApiResult<Self> {
        if self.owner_user_id.is_some()
            && crm_service_common::access::masks(who, "Lead")
                .await?
                .may_hide("ownerUserId")
        {
            return Err(crm_service_common::access::hidden_field(
                "filter.ownerUserId",
            ));
        }
        Ok(self)
    }

    fn select(self) -> Select<lead::Entity> {
        use lead::Column as C;
        let mut s = unarchived(lead::Entity::find(), self.include_archived);
        let searched = crm_service_common::search::Searchable::searched(&self);
        s = s.text_search(self.text.as_deref(), &searched);
        s = s.eq_if(C::Status, self.status);
        s = s.eq_if(C::Source, self.source);
        if let Some(v) = self.min_score {
            s = s.filter(Expr::col(C::Score).gte(v));
        }
        s = s.eq_if(C::OwnerUserId, self.owner_user_id.map(|v| v.0));
        s.eq_if(C::RoutedPartnerId, self.routed_partner_id.map(|v| v.0))
    }
}

/// Fields of a lead. On create, `firstName`, `lastName`, `company` and `source` are
/// required; status starts `NEW`. The score follows from the scoring rules (see
/// `Lead.scoreReasons`) and is not an input. Conversion happens with `convertLead`, not
/// by setting the status.
#[derive(InputObject, Default, Clone, Debug)]
pub struct LeadInput {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    pub email: MaybeUndefined<String>,
    pub phone: MaybeUndefined<String>,
    pub source: Option<LeadSource>,
    pub status: Option<LeadStatus>,
    pub owner_user_id: MaybeUndefined<ID>,
}

impl RecordInput<lead::Entity> for LeadInput {
    fn apply(&self, m: &mut lead::ActiveModel, creating: bool) -> ApiResult<()> {
        if let Some(v) = required(creating, "input.firstName", &self.first_name)? {
            set(&mut m.first_name, text("input.firstName", v, 100)?);
        }
        if let Some(v) = required(creating, "input.lastName", &self.last_name)? {
            set(&mut m.last_name, text("input.lastName", v, 100)?);
        }
        if let Some(v) = required(creating, "input.company", &self.company)? {
            set(&mut m.company, text("input.company", v, 200)?);
        }
        optional(&mut m.email, &self.email, |v| email("input.email", v))?;
        optional(&mut m.phone, &self.phone, |v| phone("input.phone", v))?;
        if let Some(v) = required(creating, "input.source", &self.source)? {
            set(&mut m.source, *v);
        }
        let current = m.status.try_as_ref().copied();
        match self.status {
            Some(LeadStatus::Converted) if current != Some(LeadStatus::Converted) => {
                return Err(ApiError::validation(
                    "input.status",
                    "use convertLead to convert a lead",
                ));
            }
            Some(v) if current == Some(LeadStatus::Converted) && v != LeadStatus::Converted => {
                return Err(ApiError::InvalidState {
                    message: "a converted lead cannot change status".into(),
                });
            }
            Some(v) => set(&mut m.status, v),
            None if creating => set(&mut m.status, LeadStatus::New),
            None => {}
        }
        optional(&mut m.owner_user_id, &self.owner_user_id, |v| {
            text("input.ownerUserId", v, 64)
        })?;
        if creating {
            set(&mut m.recent_activities, 0);
        }
        rescore(m);
        Ok(())
    }

    async fn check_references(&self, _ctx: &Context<'_>) -> ApiResult<()> {
        Ok(())
    }
}

/// A distributor a lead could go to, and its load.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct RoutingSuggestion {
    pub partner_id: ID,
    pub name: String,
    /// Leads routed to it and still in work (not converted, disqualified or given back).
    pub open_leads: i64,
    /// How many its tier takes at once.
    pub capacity: i64,
}

/// Routed leads still in work: routed, and neither converted nor disqualified.
fn in_work() -> sea_orm::sea_query::SimpleExpr {
    Expr::col(lead::Column::RoutedPartnerId)
        .is_not_null()
        .and(Expr::col(lead::Column::ArchivedAt).is_null())
        .and(
            Expr::col(lead::Column::Status)
                .is_not_in([LeadStatus::Converted, LeadStatus::Disqualified]),
        )
}

/// Every distributor with its load, the most room first.
async fn routing_suggestions<C: sea_orm::ConnectionTrait>(
    db: &C,
) -> ApiResult<Vec<RoutingSuggestion>> {
    use sea_orm::{QueryOrder, QuerySelect};
    let distributors = partner::Entity::find()
        .filter(Expr::col(partner::Column::Kind).eq(crate::domain::PartnerKind::Distributor))
        .filter(Expr::col(partner::Column::ArchivedAt).is_null())
        .order_by_asc(partner::Column::Name)
        .all(db)
        .await?;
    let loads: Vec<(Option<String>, i64)> = lead::Entity::find()
        .select_only()
        .column(lead::Column::RoutedPartnerId)
        .column_as(Expr::col(lead::Column::Id).count(), "n")
        .filter(in_work())
        .group_by(lead::Column::RoutedPartnerId)
        .into_tuple()
        .all(db)
        .await?;
    let mut found: Vec<RoutingSuggestion> = distributors
        .into_iter()
        .map(|p| RoutingSuggestion {
            open_leads: loads
                .iter()
                .find(|(id, _)| id.as_deref() == Some(p.id.as_str()))
                .map_or(0, |(_, n)| *n),
            capacity: p.tier.lead_capacity() as i64,
            partner_id: ID(p.id),
            name: p.name,
        })
        .collect();
    found.sort_by_key(|s| std::cmp::Reverse(s.capacity - s.open_leads));
    Ok(found)
}

#[derive(Default)]
pub struct LeadRoutingMutation;

#[Object]
impl LeadRoutingMutation {
    /// Routes a lead to a distributor with room for it: the distributor reads it and has
    /// 48 hours to accept or decline before it returns to the pool. Routing again moves it.
    async fn route_lead(
        &self,
        ctx: &Context<'_>,
        id: ID,
        version: i32,
        partner_id: ID,
    ) -> Result<Lead> {
        use crm_service_common::access::{self, Action};
        access::check_may(ctx, "Lead", Action::Update).await?;
        access::check_sets(ctx, "Lead", Action::Update, &["routedPartnerId"]).await?;
        let txn = crm_service_common::db::begin_write(db(ctx)?).await?;
        access::check_may_change::<lead::Entity, _>(ctx, &txn, &id, Action::Update).await?;
        let before = store::get::<lead::Entity, _>(&txn, &id).await?;
        if matches!(
            before.status,
            LeadStatus::Converted | LeadStatus::Disqualified
        ) {
            return Err(ApiError::InvalidState {
                message: "a converted or disqualified lead is not routed".into(),
            }
            .into());
        }
        let distributor = partner::Entity::find_by_id(partner_id.to_string())
            .one(&txn)
            .await?
            .filter(|p| {
                p.kind == crate::domain::PartnerKind::Distributor && p.archived_at.is_none()
            })
            .ok_or_else(|| ApiError::validation("partnerId", "is not a distributor"))?;
        let load = routing_suggestions(&txn)
            .await?
            .into_iter()
            .find(|s| *s.partner_id == distributor.id)
            .map_or(0, |s| s.open_leads);
        let already = before.routed_partner_id.as_deref() == Some(distributor.id.as_str());
        if !already && load >= distributor.tier.lead_capacity() as i64 {
            return Err(ApiError::validation(
                "partnerId",
                format!(
                    "{} already works {load} routed leads, the most its tier takes",
                    distributor.name
                ),
            )
            .into());
        }
        let at = now();
        let respond_by = at + chrono::Duration::hours(crate::domain::LEAD_RESPONSE_HOURS);
        let after = store::update_versioned::<lead::Entity, _>(
            &txn,
            &id,
            version,
            lead::ActiveModel {
                routed_partner_id: Set(Some(distributor.id.clone())),
                routed_at: Set(Some(at)),
                respond_by: Set(Some(respond_by)),
                accepted_at: Set(None),
                decline_reason: Set(None),
                ..Default::default()
            },
        )
        .await?;
        crate::jobs::schedule_lead_response(&txn, &after.id, respond_by).await?;
        if !already {
            // Everyone of the distributor hears of it (the account service knows the
            // organisation, not its users); it reads the note while the lead is routed to it.
            crate::jobs::notify_organisation(
                &txn,
                &distributor.id,
                crate::domain::NotificationKind::LeadRouted,
                format!(
                    "New lead for you: {} {}, {}",
                    after.first_name, after.last_name, after.company
                ),
                Some(format!(
                    "Accept or decline it by {} UTC, or it returns to our pool.",
                    respond_by.format("%Y-%m-%d %H:%M")
                )),
                crate::domain::RecordKind::Lead,
                &after.id,
            )
            .await?;
        }
        access::check_still_in_scope::<lead::Entity, _>(ctx, &txn, &after.id, Action::Update)
            .await?;
        crm_service_common::db::commit(txn).await?;
        Ok(Lead(after))
    }

    /// The routed distributor takes the lead: it moves to working (if new) and is its to
    /// work until it converts, disqualifies or gives it back.
    async fn accept_lead(&self, ctx: &Context<'_>, id: ID, version: i32) -> Result<Lead> {
        let before = routed_to_caller(ctx, &id, &["status"]).await?;
        let txn = crm_service_common::db::begin_write(db(ctx)?).await?;
        if before.accepted_at.is_some() {
            return Err(ApiError::InvalidState {
                message: "the lead is already accepted".into(),
            }
            .into());
        }
        let after = store::update_versioned::<lead::Entity, _>(
            &txn,
            &id,
            version,
            lead::ActiveModel {
                accepted_at: Set(Some(now())),
                status: Set(if before.status == LeadStatus::New {
                    LeadStatus::Working
                } else {
                    before.status
                }),
                ..Default::default()
            },
        )
        .await?;
        notify_owner(
            &txn,
            &after,
            crate::domain::NotificationKind::LeadAccepted,
            "accepted",
        )
        .await?;
        crm_service_common::db::commit(txn).await?;
        Ok(Lead(after))
    }

    /// The routed distributor gives the lead back, with a reason its owner reads; it
    /// returns to the pool and the distributor no longer reads it. Answers the lead's id.
    async fn decline_lead(
        &self,
        ctx: &Context<'_>,
        id: ID,
        version: i32,
        reason: String,
    ) -> Result<ID> {
        let reason = text("reason", &reason, 2_000)?;
        routed_to_caller(ctx, &id, &["declineReason"]).await?;
        let txn = crm_service_common::db::begin_write(db(ctx)?).await?;
        let after = return_to_pool(&txn, &id, version, reason).await?;
        notify_owner(
            &txn,
            &after,
            crate::domain::NotificationKind::LeadDeclined,
            "gave back",
        )
        .await?;
        crm_service_common::db::commit(txn).await?;
        Ok(id)
    }
}

/// The lead, when it is routed to the caller's organisation and the caller may answer
/// for it with these fields; a lead routed elsewhere answers like a missing one.
async fn routed_to_caller(ctx: &Context<'_>, id: &str, fields: &[&str]) -> ApiResult<lead::Model> {
    use crm_service_common::access::{self, Action};
    access::check_may(ctx, "Lead", Action::Update).await?;
    access::check_sets(ctx, "Lead", Action::Update, fields).await?;
    let who = crm_service_common::principal::Principal::of(ctx);
    let lead = super::get_optional::<lead::Entity>(ctx, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    match (&lead.routed_partner_id, who.partner()) {
        (Some(routed), Some(own)) if routed == own => Ok(lead),
        _ => Err(ApiError::InvalidState {
            message: "only the distributor the lead is routed to answers for it".into(),
        }),
    }
}

/// Takes a lead back from its distributor: no longer routed, with why.
pub async fn return_to_pool<C: sea_orm::ConnectionTrait>(
    db: &C,
    id: &str,
    version: i32,
    reason: String,
) -> ApiResult<lead::Model> {
    store::update_versioned::<lead::Entity, _>(
        db,
        id,
        version,
        lead::ActiveModel {
            routed_partner_id: Set(None),
            routed_at: Set(None),
            respond_by: Set(None),
            accepted_at: Set(None),
            decline_reason: Set(Some(reason)),
            ..Default::default()
        },
    )
    .await
}

/// Tells the lead's owner what its distributor did.
pub async fn notify_owner<C: sea_orm::ConnectionTrait>(
    db: &C,
    lead: &lead::Model,
    kind: crate::domain::NotificationKind,
    did: &str,
) -> ApiResult<()> {
    let Some(owner) = &lead.owner_user_id else {
        return Ok(());
    };
    crate::jobs::notify(
        db,
        owner,
        kind,
        format!(
            "Distributor {did} the lead {} {} ({})",
            lead.first_name, lead.last_name, lead.company
        ),
        lead.decline_reason.clone(),
        crate::domain::RecordKind::Lead,
        &lead.id,
    )
    .await
}

record_operations!(
    LeadQuery, LeadMutation, Lead, lead, LeadInput,
    list: leads(LeadFilter, LeadOrder) -> LeadConnection, one: lead,
    mutations: create_lead, update_lead, upsert_lead, archive_lead
);

/// How to convert a lead.
#[derive(InputObject, Default, Clone, Debug)]
pub struct ConvertLeadInput {
    /// Attach the contact to this existing account instead of creating one.
    pub account_id: Option<ID>,
    /// Name of the new account (default: the lead's company).
    pub account_name: Option<String>,
    /// Segment of the new account (default SMB).
    pub segment: Option<Segment>,
    /// Create an opportunity too.
    pub opportunity: Option<ConvertOpportunityInput>,
}

#[derive(InputObject, Clone, Debug)]
pub struct ConvertOpportunityInput {
    pub name: String,
    pub amount: String,
    pub currency: String,
    pub expected_close: Option<NaiveDate>,
}

/// What a conversion produced.
#[derive(SimpleObject)]
pub struct ConvertLeadResult {
    pub lead: Lead,
    pub account: Account,
    pub contact: Contact,
    pub opportunity: Option<Opportunity>,
}

#[derive(Default)]
pub struct LeadConversionMutation;

#[Object]
impl LeadConversionMutation {
    /// Converts a lead into an account (new or existing), a contact and optionally an
    /// opportunity, all or nothing. A lead converts once; a disqualified one not at all.
    async fn convert_lead(
        &self,
        ctx: &Context<'_>,
        id: ID,
        version: i32,
        #[graphql(default)] input: ConvertLeadInput,
    ) -> Result<ConvertLeadResult> {
        use crm_service_common::access;
        use crm_service_common::access::Action;
        access::check_may(ctx, "Lead", Action::Update).await?;
        for ty in ["Account", "Contact", "Opportunity"] {
            access::check_may(ctx, ty, Action::Create).await?;
        }
        if let Some(account_id) = &input.account_id {
            ensure_exists::<account::Entity>(ctx, "input.accountId", account_id).await?;
        }
        let txn = crm_service_common::db::begin_write(db(ctx)?).await?;
        access::check_may_change::<lead::Entity, _>(ctx, &txn, &id, Action::Update).await?;
        let current = store::get::<lead::Entity, _>(&txn, &id).await?;
        if current.version != version {
            return Err(ApiError::VersionConflict {
                current_version: current.version,
            }
            .into());
        }
        match current.status {
            LeadStatus::Converted => {
                return Err(ApiError::InvalidState {
                    message: "the lead is already converted".into(),
                }
                .into());
            }
            LeadStatus::Disqualified => {
                return Err(ApiError::InvalidState {
                    message: "a disqualified lead cannot be converted".into(),
                }
                .into());
            }
            _ => {}
        }

        let account = match &input.account_id {
            Some(account_id) => store::get::<account::Entity, _>(&txn, account_id).await?,
            None => {
                let account_input = AccountInput {
                    name: Some(
                        input
                            .account_name
                            .clone()
                            .unwrap_or_else(|| current.company.clone()),
                    ),
                    segment: Some(input.segment.unwrap_or(Segment::Smb)),
                    tier: Some(AccountTier::Standard),
                    lifecycle_stage: Some(LifecycleStage::Prospect),
                    owner_user_id: maybe(current.owner_user_id.clone().map(ID)),
                    ..Default::default()
                };
                // The account's name comes from `input.accountName` (or the lead's company).
                store::create::<account::Entity, _>(&txn, None, |m, c| {
                    account_input.apply(m, c).map_err(|e| match e {
                        ApiError::Validation { field, message } if field == "input.name" => {
                            ApiError::Validation {
                                field: "input.accountName".into(),
                                message,
                            }
                        }
                        other => other,
                    })
                })
                .await?
            }
        };
        let contact_input = ContactInput {
            account_id: Some(ID(account.id.clone())),
            first_name: Some(current.first_name.clone()),
            last_name: Some(current.last_name.clone()),
            email: maybe(current.email.clone()),
            phone: maybe(current.phone.clone()),
            ..Default::default()
        };
        let contact =
            store::create::<contact::Entity, _>(&txn, None, |m, c| contact_input.apply(m, c))
                .await?;
        let opportunity = match &input.opportunity {
            Some(o) => {
                let opportunity_input = OpportunityInput {
                    account_id: Some(ID(account.id.clone())),
                    name: Some(o.name.clone()),
                    stage: Some(OpportunityStage::Qualification),
                    amount: Some(o.amount.clone()),
                    currency: Some(o.currency.clone()),
                    expected_close: maybe(o.expected_close),
                    owner_user_id: maybe(current.owner_user_id.clone().map(ID)),
                    ..Default::default()
                };
                let apply = |m: &mut opportunity::ActiveModel, c| {
                    opportunity_input.apply(m, c).map_err(|e| match e {
                        ApiError::Validation { field, message } => ApiError::Validation {
                            field: field.replacen("input.", "input.opportunity.", 1),
                            message,
                        },
                        other => other,
                    })
                };
                Some(store::create::<opportunity::Entity, _>(&txn, None, apply).await?)
            }
            None => None,
        };
        let changes = lead::ActiveModel {
            status: Set(LeadStatus::Converted),
            converted_account_id: Set(Some(account.id.clone())),
            converted_contact_id: Set(Some(contact.id.clone())),
            converted_opportunity_id: Set(opportunity.as_ref().map(|o| o.id.clone())),
            converted_at: Set(Some(now())),
            ..Default::default()
        };
        let lead = store::update_versioned::<lead::Entity, _>(&txn, &id, version, changes).await?;
        // What the conversion wrote must all be the caller's to change (a sales user converts
        // into accounts, contacts and opportunities it owns); otherwise nothing is kept.
        access::check_still_in_scope::<lead::Entity, _>(ctx, &txn, &lead.id, Action::Update)
            .await?;
        access::check_still_in_scope::<account::Entity, _>(ctx, &txn, &account.id, Action::Update)
            .await?;
        access::check_still_in_scope::<contact::Entity, _>(ctx, &txn, &contact.id, Action::Create)
            .await?;
        if let Some(opportunity) = &opportunity {
            access::check_still_in_scope::<opportunity::Entity, _>(
                ctx,
                &txn,
                &opportunity.id,
                Action::Create,
            )
            .await?;
        }
        crm_service_common::db::commit(txn).await?;
        Ok(ConvertLeadResult {
            lead: Lead(lead),
            account: Account(account),
            contact: Contact(contact),
            opportunity: opportunity.map(Opportunity),
        })
    }
}

/// An optional value as input: absent stays undefined (nothing to set).
fn maybe<T>(value: Option<T>) -> MaybeUndefined<T> {
    value.map_or(MaybeUndefined::Undefined, MaybeUndefined::Value)
}

/// Sets a lead's score from its fields by the scoring rules.
pub(crate) fn rescore(m: &mut lead::ActiveModel) {
    let Some(source) = current(&m.source) else {
        return;
    };
    let parts = crate::domain::lead_score(
        source,
        current(&m.email).flatten().as_deref(),
        current(&m.phone).flatten().as_deref(),
        current(&m.recent_activities).unwrap_or(0),
    );
    set(&mut m.score, crate::domain::score_total(&parts));
}
