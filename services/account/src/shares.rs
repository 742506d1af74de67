//! Share rows kept from the order service's domain events: a supplier may read an account
//! *because* one of its orders has a line of the supplier's product, a distributor
//! *because* it fulfils one of its orders. Each order's rows are replaced as a whole from
//! the order snapshot an event carries, so applying an event twice, or replaying the feed
//! from the start (`rebuild`), ends in the same rows. This service never reads the order
//! service's tables.

use crm_service_common::ApiResult;
use crm_service_common::access::Scope;
use crm_service_common::events::{Consumer, Event, EventBus, EventHandler, HttpFeed};
use sea_orm::ExprTrait;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QuerySelect,
};

use crate::entity::account_share;
use crate::store::{self, Record};

/// The consumer's name (its checkpoint) and the producer it reads.
pub const CONSUMER: &str = "account-shares";
pub const SOURCE: &str = "order_visibility";

/// The causes that follow orders (manual shares are granted by people).
pub const ORDER_CAUSES: [Scope; 2] = [Scope::BuysMyProducts, Scope::FulfilsItsOrders];

/// Applies order events to the share rows.
pub struct OrderShares;

impl EventHandler for OrderShares {
    async fn apply(&self, txn: &DatabaseTransaction, event: &Event) -> ApiResult<()> {
        if !matches!(event.event_type.as_str(), "order.placed" | "order.changed") {
            return Ok(());
        }
        let snapshot: OrderSnapshot = event.payload_as()?;
        replace_order_shares(txn, &snapshot).await
    }
}

#[derive(serde::Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct OrderSnapshot {
    order_id: String,
    account_id: String,
    fulfilling_distributor_id: Option<String>,
    #[serde(default)]
    supplier_partner_ids: Vec<String>,
}

pub fn source_of(order_id: &str) -> String {
    format!("order:{order_id}")
}

/// The partners an order gives its account to, and why: each supplier of one of its
/// products, and the distributor that fulfils it.
fn causes_of(order: &OrderSnapshot) -> Vec<(String, Scope)> {
    let mut rows: Vec<(String, Scope)> = order
        .supplier_partner_ids
        .iter()
        .map(|p| (p.clone(), Scope::BuysMyProducts))
        .collect();
    if let Some(distributor) = &order.fulfilling_distributor_id {
        rows.push((distributor.clone(), Scope::FulfilsItsOrders));
    }
    rows
}

async fn replace_order_shares<C: ConnectionTrait>(db: &C, order: &OrderSnapshot) -> ApiResult<()> {
    let source = source_of(&order.order_id);
    // The accounts whose pairs change: the order's, and the one its rows named before (an
    // order moved to another account).
    let mut accounts: Vec<String> = account_share::Entity::find()
        .select_only()
        .column(account_share::Column::AccountId)
        .filter(Expr::col(account_share::Column::Source).eq(source.clone()))
        .into_tuple()
        .all(db)
        .await?;
    accounts.push(order.account_id.clone());
    accounts.sort();
    accounts.dedup();
    account_share::Entity::delete_many()
        .filter(Expr::col(account_share::Column::Source).eq(source.clone()))
        .exec(db)
        .await?;
    let rows = causes_of(order);
    if !rows.is_empty() {
        let now = store::now();
        let models = rows.into_iter().map(|(partner_id, cause)| {
            new_share(
                &order.account_id,
                &partner_id,
                cause,
                Some(source.clone()),
                now,
            )
        });
        account_share::Entity::insert_many(models)
            .exec_without_returning(db)
            .await?;
    }
    crate::partner_accounts::refresh(db, crate::partner_accounts::of_accounts(accounts)).await
}

/// A new share row (not granted by anyone, not expiring, no reason: a manual grant sets
/// those).
pub fn new_share(
    account_id: &str,
    partner_id: &str,
    cause: Scope,
    source: Option<String>,
    now: chrono::DateTime<chrono::Utc>,
) -> account_share::ActiveModel {
    let mut row = <account_share::Entity as Record>::new_active(
        crm_service_common::domain::new_id(<account_share::Entity as Record>::PREFIX),
        None,
        now,
    );
    row.account_id = Set(account_id.to_owned());
    row.partner_id = Set(partner_id.to_owned());
    row.cause = Set(cause.name().to_owned());
    row.source = Set(source);
    row.granted_by = Set(None);
    row.expires_at = Set(None);
    row.reason = Set(None);
    row
}

/// The consumer that keeps the share rows, reading the order service's events from `bus`
/// and, for gaps and rebuilds, from its feed.
pub fn consumer(db: DatabaseConnection, bus: EventBus, feed: HttpFeed) -> Consumer<OrderShares> {
    Consumer::new(CONSUMER, SOURCE, db, bus, feed, OrderShares)
}

/// Rebuilds the order-caused share rows from scratch: forgets them and the consumer's
/// checkpoint, then replays the producer's whole feed. Manual shares are untouched.
/// Returns how many events were applied.
pub async fn rebuild(db: &DatabaseConnection, bus: EventBus, feed: HttpFeed) -> ApiResult<usize> {
    use crm_service_common::events::consumer::event_checkpoint;
    let txn = crm_service_common::db::begin_write(db).await?;
    account_share::Entity::delete_many()
        .filter(
            Expr::col(account_share::Column::Cause)
                .is_in(ORDER_CAUSES.iter().map(|c| c.name().to_owned())),
        )
        .exec(&txn)
        .await?;
    crate::partner_accounts::refresh(&txn, sea_orm::sea_query::Condition::all()).await?;
    event_checkpoint::Entity::delete_many()
        .filter(Expr::col(event_checkpoint::Column::Consumer).eq(CONSUMER))
        .filter(Expr::col(event_checkpoint::Column::Source).eq(SOURCE))
        .exec(&txn)
        .await?;
    crm_service_common::db::commit(txn).await?;
    consumer(db.clone(), bus, feed).catch_up().await
}

/// How the live order-caused share rows differ from those the producer's feed implies.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drift {
    /// Rows the feed implies that are not kept: (account, partner, cause, source).
    pub missing: Vec<(String, String, String, String)>,
    /// Rows kept that the feed does not imply.
    pub extra: Vec<(String, String, String, String)>,
}

impl Drift {
    pub fn is_none(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty()
    }
}

/// Compares the live order-caused share rows with a rebuild from the producer's whole
/// feed, made in memory (nothing is written): the latest snapshot of each order implies its
/// rows. Run it when the consumer has caught up (events still in flight read as drift).
pub async fn drift(db: &DatabaseConnection, feed: &HttpFeed) -> ApiResult<Drift> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut latest: BTreeMap<String, OrderSnapshot> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = feed.page(after, 1_000).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for event in page {
            if matches!(event.event_type.as_str(), "order.placed" | "order.changed") {
                let snapshot: OrderSnapshot = event.payload_as()?;
                latest.insert(snapshot.order_id.clone(), snapshot);
            }
        }
    }
    let mut expected = BTreeSet::new();
    for order in latest.values() {
        let source = source_of(&order.order_id);
        for (partner, cause) in causes_of(order) {
            expected.insert((
                order.account_id.clone(),
                partner,
                cause.name().to_owned(),
                source.clone(),
            ));
        }
    }
    let live: BTreeSet<_> = account_share::Entity::find()
        .filter(
            Expr::col(account_share::Column::Cause)
                .is_in(ORDER_CAUSES.iter().map(|c| c.name().to_owned())),
        )
        .all(db)
        .await?
        .into_iter()
        .map(|r| {
            (
                r.account_id,
                r.partner_id,
                r.cause,
                r.source.unwrap_or_default(),
            )
        })
        .collect();
    Ok(Drift {
        missing: expected.difference(&live).cloned().collect(),
        extra: live.difference(&expected).cloned().collect(),
    })
}
