//! Retention of closed cases (`CRM_CASE_RETENTION_DAYS`, `crm_service_common::retention`):
//! a recurring job blanks the cases resolved or closed longer ago than the setting — their
//! subject and description, their comments, the notifications about them — and forgets
//! the kept values of their history, the way an erasure does (`crate::erasure`), and
//! records each in the audit chain. The case itself stays (its account, status, dates and
//! SLA figures still count in reports); what it said about people goes.

use crm_service_common::ApiResult;
use crm_service_common::audit;
use crm_service_common::erasure::{self, TOMBSTONE};
use crm_service_common::jobs::{Job, Outcome};
use crm_service_common::retention::CLOSED_CASES;
use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;

use crate::domain::CaseStatus;
use crate::entity::{case, case_comment, notification};
use crate::erasure::ids_of;
use crate::store;

/// The recurring job.
pub const CASE_RETENTION: &str = "retention.cases";

/// Cases blanked per run (a run with a full batch runs again at once).
const BATCH: u64 = 500;

/// One run: the next batch of closed cases past their retention, then the next day.
pub async fn apply(txn: &DatabaseTransaction, _job: &Job) -> ApiResult<Outcome> {
    let now = store::now();
    let tomorrow = Outcome::RunAgainAt(now + chrono::Duration::days(1));
    let Some(cutoff) = CLOSED_CASES.from_env().cutoff(now) else {
        return Ok(tomorrow);
    };
    if blank_closed_cases(txn, cutoff).await? as u64 == BATCH {
        Ok(Outcome::RunAgainAt(now))
    } else {
        Ok(tomorrow)
    }
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
