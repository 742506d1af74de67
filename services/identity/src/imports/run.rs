//! Running an import: the job runner's `import.run` task. Each run sends batches of the
//! current pass, in row order, through the gateway as the import's owner (as it is now:
//! an owner who was disabled or whose key was revoked stops the import), for up to a
//! bounded time, then hands the job back to run again at once, so a long import never
//! outlives a claim and other jobs get their turn.
//!
//! **Resumable, nothing lost.** A batch is one transaction in the type's own service; its
//! outcomes and the import's progress are then recorded in one transaction here. If the
//! process stops between the two, the batch is sent again when the job runs again, and
//! since rows are upserts by external id, the records end as if it had been sent once
//! (rows it had created report `UNCHANGED` the second time). A batch the service refused
//! whole for its input (a value that is not of its field's type) is sent again row by
//! row, so only the rows at fault are refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_contract::internal_auth::Caller;
use crm_service_common::import::ImportOutcome;
use crm_service_common::jobs::{self, Job, NewJob, Outcome, Task};
use crm_service_common::subgraph::BoxFuture;
use crm_service_common::{ApiError, ApiResult, clock};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::catalog::{self, ImportKind};
use super::store::{self, Import, ImportRow, ImportState, RowOutcome, import};
use crate::store::Directory;

/// The job kind that runs an import's passes.
pub const RUN_JOB: &str = "import.run";

/// Rows per batch: one transaction in the writing service.
pub const BATCH_ROWS: u64 = 500;

/// How long one run of the job sends batches before it hands the job back.
const RUN_FOR: Duration = Duration::from_secs(20);

/// Writes through the gateway as a caller: the answer (`data` and `errors`) of the
/// mutation `document` with `variables`, planned and authorized as any request of that
/// caller is. The process that runs imports gives its gateway's engine.
pub trait Writer: Send + Sync + 'static {
    fn write<'a>(
        &'a self,
        caller: &'a Caller,
        document: &'a str,
        variables: Value,
    ) -> BoxFuture<'a, anyhow::Result<Value>>;
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunJob {
    import_id: String,
}

/// Schedules the job that runs `import`'s current pass (on `db`, inside the transaction
/// that started the pass).
pub async fn schedule<C: sea_orm::ConnectionTrait>(db: &C, import: &str) -> ApiResult<()> {
    let payload = serde_json::to_value(RunJob {
        import_id: import.to_owned(),
    })
    .map_err(ApiError::internal)?;
    jobs::schedule(
        db,
        NewJob::new(RUN_JOB, format!("import:{import}"), clock::now(), payload),
    )
    .await
}

/// The task: runs imports for the identity database.
pub struct Runner {
    pub db: DatabaseConnection,
    pub directory: Directory,
    pub writer: Arc<dyn Writer>,
}

impl Task for Runner {
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, ApiResult<Outcome>> {
        Box::pin(async move {
            let task: RunJob = job.payload()?;
            self.run_for(&task.import_id, RUN_FOR).await
        })
    }
}

/// What became of one batch.
enum Sent {
    Outcomes(Vec<RowOutcome>),
    /// The whole import must stop: its owner may not import this type, or can no longer
    /// act.
    Stop(String),
}

impl Runner {
    /// Sends batches of the import's current pass for up to `budget`.
    pub async fn run_for(&self, import_id: &str, budget: Duration) -> ApiResult<Outcome> {
        let started = Instant::now();
        loop {
            let Some(found) = store::import::Entity::find_by_id(import_id)
                .one(&self.db)
                .await?
            else {
                return Ok(Outcome::Done);
            };
            if !matches!(found.state, ImportState::Checking | ImportState::Running) {
                // Cancelled, or the pass already finished.
                return Ok(Outcome::Done);
            }
            let Some(kind) = catalog::kind(&found.record_type) else {
                self.stop(found, "this build does not import that type")
                    .await?;
                return Ok(Outcome::Done);
            };
            let rows = store::next_rows(&self.db, import_id, found.next_row, BATCH_ROWS).await?;
            if rows.is_empty() {
                self.finish(found).await?;
                return Ok(Outcome::Done);
            }
            let Some(caller) = self.directory.acting_caller(&found.owner).await? else {
                self.stop(
                    found,
                    "its owner can no longer act (disabled, or the key was revoked)",
                )
                .await?;
                return Ok(Outcome::Done);
            };
            match self.send(kind, &caller, &found, &rows).await {
                Ok(Sent::Outcomes(outcomes)) => self.record(found, &rows, outcomes).await?,
                Ok(Sent::Stop(reason)) => {
                    self.stop(found, &reason).await?;
                    return Ok(Outcome::Done);
                }
                Err(error) => {
                    // Kept on the import for its owner to read; the runner retries.
                    let mut row: import::ActiveModel = found.into();
                    row.last_error = Set(Some(error.message()));
                    row.updated_at = Set(clock::now());
                    row.update(&self.db).await?;
                    return Err(error);
                }
            }
            if started.elapsed() >= budget {
                return Ok(Outcome::RunAgainAt(clock::now()));
            }
        }
    }

    /// Sends `rows` as one batch; a batch refused whole for its input is sent again row
    /// by row.
    async fn send(
        &self,
        kind: &ImportKind,
        caller: &Caller,
        found: &Import,
        rows: &[ImportRow],
    ) -> ApiResult<Sent> {
        match self.send_batch(kind, caller, found, rows).await? {
            Answer::Rows(outcomes) => return Ok(Sent::Outcomes(outcomes)),
            Answer::Stop(reason) => return Ok(Sent::Stop(reason)),
            Answer::BadInput(_) if rows.len() > 1 => {}
            Answer::BadInput(refusal) => {
                return Ok(Sent::Outcomes(vec![refusal.of(&rows[0])]));
            }
        }
        let mut outcomes = Vec::with_capacity(rows.len());
        for row in rows {
            match self
                .send_batch(kind, caller, found, std::slice::from_ref(row))
                .await?
            {
                Answer::Rows(mut one) => outcomes.append(&mut one),
                Answer::Stop(reason) => return Ok(Sent::Stop(reason)),
                Answer::BadInput(refusal) => outcomes.push(refusal.of(row)),
            }
        }
        Ok(Sent::Outcomes(outcomes))
    }

    async fn send_batch(
        &self,
        kind: &ImportKind,
        caller: &Caller,
        found: &Import,
        rows: &[ImportRow],
    ) -> ApiResult<Answer> {
        let mut sent = Vec::with_capacity(rows.len());
        for row in rows {
            let data: Value = serde_json::from_str(&row.data).map_err(ApiError::internal)?;
            sent.push(json!({
                "externalId": row.external_id,
                "input": data["input"],
                "references": data["references"],
            }));
        }
        let answer = self
            .writer
            .write(
                caller,
                &kind.document(),
                json!({
                    "rows": sent,
                    "dryRun": found.dry_run,
                    "skipDuplicates": found.skip_duplicates,
                }),
            )
            .await
            .map_err(|e| ApiError::internal(format!("import {}: {e:#}", found.id)))?;
        let results = answer["data"]["batch"]["rows"].as_array();
        if let Some(results) = results {
            if results.len() != rows.len() {
                return Err(ApiError::internal(format!(
                    "import {}: {} results for {} rows",
                    found.id,
                    results.len(),
                    rows.len()
                )));
            }
            return rows
                .iter()
                .zip(results)
                .map(|(row, result)| outcome_of(row, result))
                .collect::<ApiResult<Vec<_>>>()
                .map(Answer::Rows);
        }
        let first = &answer["errors"][0];
        let code = first["extensions"]["code"].as_str().unwrap_or_default();
        let message = first["message"].as_str().unwrap_or_default().to_owned();
        match code {
            "FORBIDDEN" | "UNAUTHENTICATED" => Ok(Answer::Stop(format!(
                "the owner may not import {}s: {message}",
                kind.name.to_lowercase().replace('_', " ")
            ))),
            // The rows' values are not of their fields' types: the gateway or the service
            // refused the batch before anything ran (a service's own coercion errors carry
            // no code of ours, and reach us as `DOWNSTREAM_SERVICE_ERROR`).
            "BAD_USER_INPUT" | "VALIDATION" | "DOWNSTREAM_SERVICE_ERROR" | "" => {
                Ok(Answer::BadInput(Refusal {
                    code: "BAD_USER_INPUT".to_owned(),
                    message: row_message(&message),
                }))
            }
            _ => Err(ApiError::internal(format!(
                "import {}: the batch failed: {}",
                found.id, answer["errors"]
            ))),
        }
    }

    /// Records a batch's outcomes and moves the pass on, in one transaction.
    async fn record(
        &self,
        found: Import,
        rows: &[ImportRow],
        outcomes: Vec<RowOutcome>,
    ) -> ApiResult<()> {
        let txn = crm_service_common::db::begin_write(&self.db).await?;
        store::record_outcomes(&txn, &found.id, &outcomes).await?;
        let count = |outcome: ImportOutcome| {
            outcomes.iter().filter(|o| o.outcome == outcome).count() as i64
        };
        let duplicates = outcomes.iter().filter(|o| !o.duplicates.is_empty()).count() as i64;
        let next_row = rows.last().map_or(found.next_row, |row| row.number + 1);
        let mut row: import::ActiveModel = found.clone().into();
        row.next_row = Set(next_row);
        row.processed = Set(found.processed + outcomes.len() as i64);
        row.created = Set(found.created + count(ImportOutcome::Created));
        row.updated = Set(found.updated + count(ImportOutcome::Updated));
        row.unchanged = Set(found.unchanged + count(ImportOutcome::Unchanged));
        row.refused = Set(found.refused + count(ImportOutcome::Refused));
        row.skipped = Set(found.skipped + count(ImportOutcome::SkippedDuplicate));
        row.duplicates = Set(found.duplicates + duplicates);
        row.last_error = Set(None);
        row.updated_at = Set(clock::now());
        // The batch is written, so it is recorded even when the import was cancelled
        // meanwhile (a cancel stops the *next* batch; the state is left as it is); only a
        // second recording of the same batch (another replica took the job over) is not.
        let updated = import::Entity::update_many()
            .set(row)
            .filter(import::Column::Id.eq(found.id.as_str()))
            .filter(import::Column::NextRow.eq(found.next_row))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 1 {
            txn.commit().await?;
        }
        Ok(())
    }

    async fn finish(&self, found: Import) -> ApiResult<()> {
        let state = if found.dry_run {
            ImportState::Checked
        } else {
            store::forget_written(&self.db, &found.id).await?;
            ImportState::Done
        };
        self.set_state(found, state, None).await
    }

    async fn stop(&self, found: Import, reason: &str) -> ApiResult<()> {
        self.set_state(found, ImportState::Failed, Some(reason.to_owned()))
            .await
    }

    async fn set_state(
        &self,
        found: Import,
        state: ImportState,
        error: Option<String>,
    ) -> ApiResult<()> {
        let now = clock::now();
        let current = found.state;
        let mut row: import::ActiveModel = found.clone().into();
        row.state = Set(state);
        row.last_error = Set(error);
        row.updated_at = Set(now);
        row.finished_at = Set(Some(now));
        import::Entity::update_many()
            .set(row)
            .filter(import::Column::Id.eq(found.id.as_str()))
            .filter(import::Column::State.eq(current))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

/// The service's answer to one batch.
enum Answer {
    Rows(Vec<RowOutcome>),
    Stop(String),
    BadInput(Refusal),
}

/// A batch refused whole for its input: what a single row sent alone is refused with.
struct Refusal {
    code: String,
    message: String,
}

impl Refusal {
    fn of(&self, row: &ImportRow) -> RowOutcome {
        RowOutcome {
            number: row.number,
            outcome: ImportOutcome::Refused,
            record_id: None,
            code: Some(self.code.clone()),
            field: None,
            message: Some(self.message.clone()),
            duplicates: Vec::new(),
        }
    }
}

/// A variable error names the batch's variable (`$rows`, `rows.0.input.segment`): what a
/// person reads is the part about the value (`input.segment`).
fn row_message(message: &str) -> String {
    message
        .replace("$rows", "the row")
        .replace("rows.0.", "")
        .replace("rows[0].", "")
}

fn outcome_of(row: &ImportRow, result: &Value) -> ApiResult<RowOutcome> {
    let outcome = result["outcome"]
        .as_str()
        .and_then(|text| {
            ImportOutcome::ALL
                .iter()
                .copied()
                .find(|o| crm_service_common::domain::label(*o) == text)
        })
        .ok_or_else(|| ApiError::internal(format!("an import row outcome {result}")))?;
    let text = |key: &str| result[key].as_str().map(str::to_owned);
    Ok(RowOutcome {
        number: row.number,
        outcome,
        record_id: text("id"),
        code: text("code"),
        field: text("field"),
        message: text("message"),
        duplicates: result["duplicates"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}
