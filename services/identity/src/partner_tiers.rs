//! The partner organisations' programme tiers, kept from the account service's
//! `partner.changed` events (this service never reads the account service's tables).
//! The door puts a partner caller's tier in the caller it sends every service, so the
//! knowledge base narrows articles by tier without reading partners. A change moves the
//! directory's generation: the door forgets the callers it remembered, here at once and
//! in other processes by the directory's change signal.

use crm_service_common::ApiResult;
use crm_service_common::events::{Consumer, Event, EventBus, EventHandler, HttpFeed};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait};

/// The consumer's name (its checkpoint) and the producer it reads.
pub const CONSUMER: &str = "identity-partner-tiers";
pub const SOURCE: &str = "account";

pub mod partner_tier {
    use sea_orm::entity::prelude::*;

    /// One partner organisation's tier, as last announced.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "partner_tiers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub partner_id: String,
        pub tier: String,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartnerChanged {
    partner_id: String,
    /// Absent in events written before tiers were announced.
    tier: Option<String>,
}

/// Applies `partner.changed` to the tiers.
pub struct PartnerTiers;

impl EventHandler for PartnerTiers {
    async fn apply(&self, txn: &DatabaseTransaction, event: &Event) -> ApiResult<()> {
        if event.event_type != "partner.changed" {
            return Ok(());
        }
        let change: PartnerChanged = event.payload_as()?;
        let Some(tier) = change.tier else {
            return Ok(());
        };
        partner_tier::Entity::insert(partner_tier::ActiveModel {
            partner_id: Set(change.partner_id),
            tier: Set(tier),
            updated_at: Set(event.occurred_at),
        })
        .on_conflict(
            OnConflict::column(partner_tier::Column::PartnerId)
                .update_columns([partner_tier::Column::Tier, partner_tier::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
        // The door re-reads callers from here on (a caller read while this commits is
        // remembered at most `door::REMEMBER_SECONDS`).
        crate::store::directory_changed();
        Ok(())
    }

    fn wants(&self, event: &Event) -> bool {
        event.event_type == "partner.changed"
    }
}

/// A partner organisation's tier (`None`: never announced).
pub async fn tier_of<C: ConnectionTrait>(db: &C, partner_id: &str) -> ApiResult<Option<String>> {
    Ok(partner_tier::Entity::find_by_id(partner_id.to_owned())
        .one(db)
        .await?
        .map(|t| t.tier))
}

/// The consumer that keeps the tiers, reading the account service's events from `bus` and,
/// for gaps and rebuilds, from its feed.
pub fn consumer(db: DatabaseConnection, bus: EventBus, feed: HttpFeed) -> Consumer<PartnerTiers> {
    Consumer::new(CONSUMER, SOURCE, db, bus, feed, PartnerTiers)
}
