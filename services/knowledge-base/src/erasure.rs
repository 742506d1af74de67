//! What an erasure scrubs here (`crm_service_common::erasure`): the person's email
//! addresses in readers' feedback, in articles (published and pending text) and in their
//! revisions. This service holds no record of the person itself.

use crm_service_common::ApiResult;
use crm_service_common::erasure::{self, Erasure, ErasureScope, may_hold_email};
use crm_service_common::events::{Consumer, EventBus, HttpFeed};
use sea_orm::{DatabaseConnection, DatabaseTransaction, EntityTrait};

use crate::entity::{article, article_feedback, article_revision};

/// The consumer's name (its checkpoint) of the account service's erasures.
pub const CONSUMER: &str = "kb-erasure";

pub struct ArticleErasure;

async fn scrub<E: EntityTrait>(
    txn: &DatabaseTransaction,
    erasure: &Erasure,
    column: E::Column,
) -> ApiResult<u64> {
    erasure::scrub_text::<E>(txn, erasure, column, may_hold_email(column)).await
}

impl ErasureScope for ArticleErasure {
    const SERVICE: &'static str = crate::SERVICE;

    async fn scrub(txn: &DatabaseTransaction, erasure: &Erasure) -> ApiResult<u64> {
        Ok(
            scrub::<article_feedback::Entity>(txn, erasure, article_feedback::Column::Comment)
                .await?
                + scrub::<article::Entity>(txn, erasure, article::Column::Title).await?
                + scrub::<article::Entity>(txn, erasure, article::Column::Body).await?
                + scrub::<article::Entity>(txn, erasure, article::Column::PendingTitle).await?
                + scrub::<article::Entity>(txn, erasure, article::Column::PendingBody).await?
                + scrub::<article_revision::Entity>(txn, erasure, article_revision::Column::Body)
                    .await?
                + scrub::<article_revision::Entity>(
                    txn,
                    erasure,
                    article_revision::Column::ReviewComment,
                )
                .await?,
        )
    }
}

/// The consumer that applies erasures, reading the account service's events.
pub fn consumer(
    db: DatabaseConnection,
    bus: EventBus,
    feed: HttpFeed,
) -> Consumer<erasure::Eraser<ArticleErasure>> {
    erasure::consumer(CONSUMER, db, bus, feed)
}
