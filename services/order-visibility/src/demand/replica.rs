//! What the demand view knows of the account service, kept from its events: the territories
//! (`territory.changed`), each account's territory (`account.territory_changed`) and the product lines of open opportunities
//! (`opportunity.demand_changed`, a snapshot that replaces what was kept for the
//! opportunity). Applying an event twice, or replaying the feed from the start, ends in the
//! same rows. This service never reads the account service's tables.

use chrono::NaiveDate;
use crm_service_common::ApiResult;
use crm_service_common::events::{Consumer, Event, EventBus, EventHandler, HttpFeed};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{DatabaseConnection, DatabaseTransaction, EntityTrait, ExprTrait, QueryFilter};

use crate::entity::{account_territory, demand_territory, expected_demand};

/// The consumer's name (its checkpoint) and the producer it reads.
pub const CONSUMER: &str = "order-demand";
pub const SOURCE: &str = "account";

/// Applies the account service's events to the demand replica.
pub struct DemandReplica;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TerritoryChanged {
    account_id: String,
    territory_id: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TerritoryListed {
    territory_id: String,
    code: String,
    archived: bool,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DemandSnapshot {
    opportunity_id: String,
    account_id: String,
    open: bool,
    probability: i32,
    expected_close: Option<NaiveDate>,
    #[serde(default)]
    products: Vec<Line>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    product_id: String,
    quantity: i32,
}

impl EventHandler for DemandReplica {
    async fn apply(&self, txn: &DatabaseTransaction, event: &Event) -> ApiResult<()> {
        match event.event_type.as_str() {
            "account.territory_changed" => {
                let change: TerritoryChanged = event.payload_as()?;
                account_territory::Entity::insert(account_territory::ActiveModel {
                    account_id: Set(change.account_id),
                    territory_id: Set(change.territory_id),
                })
                .on_conflict(
                    OnConflict::column(account_territory::Column::AccountId)
                        .update_column(account_territory::Column::TerritoryId)
                        .to_owned(),
                )
                .exec_without_returning(txn)
                .await?;
                Ok(())
            }
            "territory.changed" => {
                let listed: TerritoryListed = event.payload_as()?;
                demand_territory::Entity::delete_many()
                    .filter(
                        Expr::col(demand_territory::Column::TerritoryId)
                            .eq(listed.territory_id.as_str()),
                    )
                    .exec(txn)
                    .await?;
                if !listed.archived {
                    demand_territory::Entity::insert(demand_territory::ActiveModel {
                        territory_id: Set(listed.territory_id),
                        code: Set(listed.code),
                    })
                    .exec_without_returning(txn)
                    .await?;
                }
                Ok(())
            }
            "opportunity.demand_changed" => {
                let snapshot: DemandSnapshot = event.payload_as()?;
                replace_demand(txn, snapshot).await
            }
            _ => Ok(()),
        }
    }

    fn wants(&self, event: &Event) -> bool {
        matches!(
            event.event_type.as_str(),
            "account.territory_changed" | "territory.changed" | "opportunity.demand_changed"
        )
    }
}

/// Replaces an opportunity's rows with its snapshot: none when it is closed, archived or
/// has no close date (a deal without a date is in nobody's plan).
async fn replace_demand(txn: &DatabaseTransaction, snapshot: DemandSnapshot) -> ApiResult<()> {
    expected_demand::Entity::delete_many()
        .filter(
            Expr::col(expected_demand::Column::OpportunityId).eq(snapshot.opportunity_id.as_str()),
        )
        .exec(txn)
        .await?;
    let Some(close) = snapshot.expected_close else {
        return Ok(());
    };
    if !snapshot.open || snapshot.products.is_empty() {
        return Ok(());
    }
    let rows = snapshot
        .products
        .into_iter()
        .map(|line| expected_demand::ActiveModel {
            opportunity_id: Set(snapshot.opportunity_id.clone()),
            product_id: Set(line.product_id),
            account_id: Set(snapshot.account_id.clone()),
            quantity: Set(line.quantity),
            probability: Set(snapshot.probability),
            expected_close: Set(close),
        });
    expected_demand::Entity::insert_many(rows)
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// The consumer that keeps the replica, reading the account service's events from `bus`
/// and, for gaps and rebuilds, from its feed.
pub fn consumer(db: DatabaseConnection, bus: EventBus, feed: HttpFeed) -> Consumer<DemandReplica> {
    Consumer::new(CONSUMER, SOURCE, db, bus, feed, DemandReplica)
}
