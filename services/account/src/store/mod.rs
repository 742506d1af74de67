//! The account service's records on the shared record store (`crm_service_common::record`),
//! and the domain events its changes publish.

use crm_service_common::events::NewEvent;
use crm_service_common::record;
pub use crm_service_common::record::*;
use serde_json::json;

use crate::entity::*;

record!(
    account,
    "acc",
    events = account_events,
    after_write = crate::partner_accounts::account_written
);
record!(contact, "con");
record!(interaction, "int");
record!(lead, "lead");
record!(
    opportunity,
    "opp",
    events = opportunity_events,
    after_write = opportunity_written
);
record!(case, "case", after_write = crate::jobs::case_written);
record!(
    case_comment,
    "cmt",
    after_write = crate::jobs::comment_written
);
record!(task, "task", after_write = crate::jobs::task_written);
record!(
    deal_registration,
    "reg",
    after_write = crate::graphql::deal_registration::registration_written
);
record!(notification, "ntf", audited = false);
record!(data_export, "dsx");
// An erasure request is not field-audited: its email would be kept beside the chain, the
// one place erasure must not copy the person into. Its job records the erasure instead.
record!(data_erasure, "dse", audited = false);
record!(partner, "ptn", events = partner_events);
record!(territory, "ter", events = territory_events);
record!(
    account_share,
    "shr",
    after_write = crate::partner_accounts::share_written
);

/// `account.territory_changed`: distributors see accounts in their territories, so the
/// services that scope by territory must learn where an account is (and was).
pub fn account_events(before: Option<&account::Model>, after: &account::Model) -> Vec<NewEvent> {
    let previous = before.and_then(|b| b.territory_id.clone());
    if before.is_some() && previous == after.territory_id {
        return Vec::new();
    }
    if before.is_none() && after.territory_id.is_none() {
        return Vec::new();
    }
    vec![NewEvent::new(
        "Account",
        &after.id,
        "account.territory_changed",
        json!({
            "accountId": after.id,
            "territoryId": after.territory_id,
            "previousTerritoryId": previous,
        }),
    )]
}

/// `territory.changed`: which territories exist, by code (the order service's demand view
/// lays its grid out by them, in code order).
pub fn territory_events(
    before: Option<&territory::Model>,
    after: &territory::Model,
) -> Vec<NewEvent> {
    if before.is_some_and(|b| {
        b.archived_at.is_some() == after.archived_at.is_some() && b.code == after.code
    }) {
        return Vec::new();
    }
    vec![territory_changed(after)]
}

pub fn territory_changed(territory: &territory::Model) -> NewEvent {
    NewEvent::new(
        "Territory",
        &territory.id,
        "territory.changed",
        json!({
            "territoryId": territory.id,
            "code": territory.code,
            "archived": territory.archived_at.is_some(),
        }),
    )
}

/// `partner.changed`: which organisations exist, whether each is a supplier or a
/// distributor (other services check references and scope rows by it), and its programme
/// tier (the identity service carries it in a partner caller's identity).
pub fn partner_events(before: Option<&partner::Model>, after: &partner::Model) -> Vec<NewEvent> {
    let unchanged = before.is_some_and(|b| {
        b.name == after.name
            && b.kind == after.kind
            && b.tier == after.tier
            && b.archived_at == after.archived_at
    });
    if unchanged {
        return Vec::new();
    }
    vec![partner_changed(after)]
}

pub fn partner_changed(partner: &partner::Model) -> NewEvent {
    NewEvent::new(
        "Partner",
        &partner.id,
        "partner.changed",
        json!({
            "partnerId": partner.id,
            "name": partner.name,
            "kind": partner.kind,
            "tier": partner.tier,
            "archived": partner.archived_at.is_some(),
        }),
    )
}

/// `partner.territories_changed`: the full set of territories a partner now covers.
pub fn partner_territories_changed(partner_id: &str, territory_ids: &[String]) -> NewEvent {
    NewEvent::new(
        "Partner",
        partner_id,
        "partner.territories_changed",
        json!({ "partnerId": partner_id, "territoryIds": territory_ids }),
    )
}

/// `opportunity.demand_changed`: the order service builds suppliers' expected demand from
/// the product lines of open opportunities, so it hears of every change to what goes into
/// it (the lines, the probability, the close date, the account, whether it is open).
pub fn opportunity_events(
    before: Option<&opportunity::Model>,
    after: &opportunity::Model,
) -> Vec<NewEvent> {
    let demand = |o: &opportunity::Model| {
        (
            o.account_id.clone(),
            o.stage.is_closed() || o.archived_at.is_some(),
            o.probability,
            o.expected_close,
            o.products.clone(),
        )
    };
    if before.is_some_and(|b| demand(b) == demand(after)) {
        return Vec::new();
    }
    vec![opportunity_demand_changed(after)]
}

/// The demand snapshot of one opportunity (a consumer replaces what it kept for it).
pub fn opportunity_demand_changed(o: &opportunity::Model) -> NewEvent {
    NewEvent::new(
        "Opportunity",
        &o.id,
        "opportunity.demand_changed",
        json!({
            "opportunityId": o.id,
            "accountId": o.account_id,
            "open": !o.stage.is_closed() && o.archived_at.is_none(),
            "probability": o.probability,
            "expectedClose": o.expected_close,
            "products": crate::graphql::product_lines::lines_in(&o.products),
        }),
    )
}

/// `contact.consent_changed`: what a person agreed to (or withdrew) for one purpose over
/// one channel, and where the statement came from; no personal values, so the event may
/// outlive an erasure of the person.
pub fn consent_changed(
    contact: &contact::Model,
    purpose: crate::domain::ConsentPurpose,
    channel: crate::domain::ConsentChannel,
    granted: bool,
    source: crate::domain::ConsentSource,
    at: chrono::DateTime<chrono::Utc>,
) -> NewEvent {
    NewEvent::new(
        "Contact",
        &contact.id,
        "contact.consent_changed",
        json!({
            "contactId": contact.id,
            "accountId": contact.account_id,
            "purpose": purpose,
            "channel": channel,
            "granted": granted,
            "source": source,
            "recordedAt": at,
        }),
    )
}

/// After an opportunity is written: a new stage (or a new opportunity) is kept in its
/// stage history, with the amount and probability it entered the stage with.
pub async fn opportunity_written<C: sea_orm::ConnectionTrait>(
    db: &C,
    before: Option<&opportunity::Model>,
    after: &opportunity::Model,
) -> crm_service_common::ApiResult<()> {
    use sea_orm::ActiveValue::Set;
    use sea_orm::EntityTrait;
    let from = before.map(|b| b.stage);
    if from == Some(after.stage) {
        return Ok(());
    }
    opportunity_stage_change::Entity::insert(opportunity_stage_change::ActiveModel {
        id: Set(crm_service_common::domain::new_id("stg")),
        opportunity_id: Set(after.id.clone()),
        from_stage: Set(from),
        to_stage: Set(after.stage),
        amount_minor: Set(after.amount_minor),
        currency: Set(after.currency.clone()),
        probability: Set(after.probability),
        changed_at: Set(after.updated_at),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Gives every account written before names had comparison keys its key (the migration
/// adds the column; the key is Rust's `company_key`, which SQL can't compute). Batches of
/// 500, so a large installation's first start after the upgrade is a bounded loop.
pub async fn fill_name_keys(db: &sea_orm::DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    use sea_orm::sea_query::Expr;
    use sea_orm::{EntityTrait, ExprTrait, QueryFilter, QuerySelect};
    loop {
        let missing: Vec<(String, String)> = account::Entity::find()
            .select_only()
            .column(account::Column::Id)
            .column(account::Column::Name)
            .filter(Expr::col(account::Column::NameKey).is_null())
            .limit(500)
            .into_tuple()
            .all(db)
            .await?;
        if missing.is_empty() {
            return Ok(());
        }
        for (id, name) in missing {
            account::Entity::update_many()
                .col_expr(
                    account::Column::NameKey,
                    Expr::value(crm_service_common::normalise::company_key(&name)),
                )
                .filter(Expr::col(account::Column::Id).eq(id))
                .exec(db)
                .await?;
        }
    }
}
