//! The account service's retention (`crm_service_common::retention`), one recurring job:
//! - closed cases (`CRM_CASE_RETENTION_DAYS`): the cases resolved or closed longer ago
//!   than the setting lose their subject and description, their comments and the
//!   notifications about them, and the kept values of their history, the way an erasure
//!   blanks them (`crate::erasure`); each is recorded in the audit chain. The case itself
//!   stays (its account, status, dates and SLA figures still count in reports); what it
//!   said about people goes.
//! - data exports (`CRM_EXPORT_RETENTION_DAYS`): a finished export's document (a person's
//!   whole data in one place) is dropped after the setting; the request stays, `EXPIRED`.

use crm_service_common::ApiResult;
use crm_service_common::audit;
use crm_service_common::erasure::{self, TOMBSTONE};
use crm_service_common::jobs::{Job, Outcome};
use crm_service_common::retention::{CLOSED_CASES, EXPORTS};
use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;

use crate::domain::{CaseStatus, DataExportStatus};
use crate::entity::{case, case_comment, data_export, notification};
use crate::erasure::ids_of;
use crate::store;

/// The recurring job.
pub const RETENTION: &str = "retention";

/// Cases blanked per run (a run with a full batch runs again at once).
const BATCH: u64 = 500;

/// One run: the exports past their retention, and the next batch of closed cases past
/// theirs; then again at once (a full batch) or the next day.
pub async fn apply(txn: &DatabaseTransaction, _job: &Job) -> ApiResult<Outcome> {
    let now = store::now();
    if let Some(cutoff) = EXPORTS.from_env().cutoff(now) {
        expire_exports(txn, cutoff).await?;
    }
    let full = match CLOSED_CASES.from_env().cutoff(now) {
        Some(cutoff) => blank_closed_cases(txn, cutoff).await? as u64 == BATCH,
        None => false,
    };
    Ok(Outcome::RunAgainAt(if full {
        now
    } else {
        now + chrono::Duration::days(1)
    }))
}

/// Drops the documents of the exports finished before `cutoff`; returns how many.
pub async fn expire_exports(
    txn: &DatabaseTransaction,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> ApiResult<u64> {
    use sea_orm::sea_query::Expr;
    let update = data_export::Entity::update_many()
        .col_expr(
            data_export::Column::Status,
            Expr::val(DataExportStatus::Expired),
        )
        .col_expr(data_export::Column::Document, Expr::val("{}"));
    Ok(erasure::touched(update)
        .filter(data_export::Column::Status.eq(DataExportStatus::Done))
        .filter(data_export::Column::FinishedAt.lt(cutoff))
        .exec(txn)
        .await?
        .rows_affected)
}

/// Blanks up to a batch of the cases resolved or closed before `cutoff` (not blanked
/// yet); returns how many.
pub async fn blank_closed_cases(
    txn: &DatabaseTransaction,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> ApiResult<usize> {
    let resolved_before = Condition::any()
        .add(case::Column::ResolvedAt.lt(cutoff))
        .add(
            Condition::all()
                .add(case::Column::ResolvedAt.is_null())
                .add(case::Column::UpdatedAt.lt(cutoff)),
        );
    let cases: Vec<String> = case::Entity::find()
        .select_only()
        .column(case::Column::Id)
        .filter(case::Column::Status.is_in([CaseStatus::Resolved, CaseStatus::Closed]))
        .filter(resolved_before)
        .filter(case::Column::Subject.ne(TOMBSTONE))
        .order_by_asc(case::Column::Id)
        .limit(BATCH)
        .into_tuple()
        .all(txn)
        .await?;
    if cases.is_empty() {
        return Ok(0);
    }
    let comments = ids_of::<case_comment::Entity>(
        txn,
        case_comment::Column::Id,
        case_comment::Column::CaseId,
        &cases,
    )
    .await?;
    let mut about: Vec<String> = cases.iter().chain(&comments).cloned().collect();
    let notifications = ids_of::<notification::Entity>(
        txn,
        notification::Column::Id,
        notification::Column::RecordId,
        &about,
    )
    .await?;
    about.extend(notifications.iter().cloned());
    erasure::forget_history_of(txn, &about).await?;
    crate::erasure::blank_cases(txn, &cases, &comments, &notifications).await?;
    let detail = json!({ "retention": CLOSED_CASES.variable, "cutoff": cutoff });
    for id in &cases {
        audit::record_erasure(txn, ("cases", id), detail.clone()).await?;
    }
    Ok(cases.len())
}
