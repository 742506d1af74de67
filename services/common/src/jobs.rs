//! Durable jobs: work that happens later or on a schedule (an SLA running out, a task's
//! reminder; later expiries, retention, retries, surveys). A job is a row of the service's
//! own `jobs` table, due at a time of the service's clock (`crate::clock`, which tests
//! move), and run by the service's [`JobRunner`].
//!
//! **Once per due job, with several replicas.** A runner claims a due job with a
//! conditional update (state and attempt count as read), so two replicas never both win
//! the same claim. The handler then runs in a transaction that also marks the job done,
//! conditioned on the claim still being this runner's: if the lease ran out meanwhile and
//! another replica took the job over, this runner's work rolls back whole. A handler's
//! database effects therefore happen once; a handler must still re-check the facts it acts
//! on (the case may have been resolved since the job was scheduled), which also makes a
//! job scheduled for a state that no longer holds harmless.
//!
//! **Scheduling is by key**: at most one job per key (`case-sla:case_1`); scheduling the
//! key again moves that job (new time, payload, attempts reset), unless it is running right
//! now, whose handler re-checks anyway.
//!
//! **Failures** are retried with exponential backoff (jitter derived from the job id, so
//! replicas spread out without a random source) and end as `DEAD` after `max_attempts`,
//! with the last error kept for the administrators' job page, which can retry them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Condition, OnConflict, StringLen};
use sea_orm::{ActiveValue::Set, DatabaseTransaction, ExprTrait, QueryOrder, QuerySelect};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use crate::{ApiError, ApiResult, clock};

crate::text_enum!(
    /// Where a job is: waiting for its time, being run by one replica, finished, or given
    /// up after its last attempt failed.
    JobState { Pending = "PENDING", Running = "RUNNING", Done = "DONE", Dead = "DEAD" }
);

pub mod job {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "jobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub kind: String,
        pub key: String,
        /// JSON.
        pub payload: String,
        pub state: super::JobState,
        pub run_at: DateTimeUtc,
        pub attempts: i32,
        pub max_attempts: i32,
        pub last_error: Option<String>,
        pub locked_by: Option<String>,
        pub locked_until: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub finished_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use job::Model as Job;

impl Job {
    /// The payload as the handler's type.
    pub fn payload<T: DeserializeOwned>(&self) -> ApiResult<T> {
        serde_json::from_str(&self.payload)
            .map_err(|e| ApiError::internal(format!("job {} payload: {e}", self.id)))
    }
}

/// A job to schedule.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub kind: &'static str,
    /// At most one job per key; scheduling the key again moves the job.
    pub key: String,
    pub run_at: DateTime<Utc>,
    pub payload: serde_json::Value,
    pub max_attempts: i32,
}

impl NewJob {
    pub fn new(
        kind: &'static str,
        key: impl Into<String>,
        run_at: DateTime<Utc>,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            kind,
            key: key.into(),
            run_at,
            payload,
            max_attempts: 8,
        }
    }
}

/// Schedules `job` (or moves the job with its key to the new time and payload), on `db`:
/// inside a transaction, the job exists if and only if the change that scheduled it
/// commits. One statement (an upsert), so concurrent writers never fail on the key.
pub async fn schedule<C: ConnectionTrait>(db: &C, job: NewJob) -> ApiResult<()> {
    use job::Column as J;
    let now = clock::now();
    let row = job::ActiveModel {
        id: Set(crate::domain::new_id("job")),
        kind: Set(job.kind.to_owned()),
        key: Set(job.key),
        payload: Set(job.payload.to_string()),
        state: Set(JobState::Pending),
        run_at: Set(job.run_at),
        attempts: Set(0),
        max_attempts: Set(job.max_attempts),
        last_error: Set(None),
        locked_by: Set(None),
        locked_until: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
    };
    // A running job is left alone: its handler re-checks what it acts on, and one that
    // finds its work not yet due schedules itself again (`Outcome::RunAgainAt`).
    let moved = OnConflict::column(J::Key)
        .update_columns([
            J::Kind,
            J::Payload,
            J::State,
            J::RunAt,
            J::Attempts,
            J::MaxAttempts,
            J::LastError,
            J::UpdatedAt,
            J::FinishedAt,
        ])
        .action_and_where(Expr::col((job::Entity, J::State)).ne(JobState::Running))
        .to_owned();
    job::Entity::insert(row)
        .on_conflict(moved)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// What a handler did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The work is done (or there was none left to do).
    Done,
    /// The work is not due yet after all (its time moved): run again then.
    RunAgainAt(DateTime<Utc>),
}

/// Runs one job of its kind inside the transaction that marks it done.
pub type Handler =
    for<'a> fn(&'a DatabaseTransaction, &'a Job) -> BoxFuture<'a, ApiResult<Outcome>>;

/// Runs one job of its kind with no transaction around it: work that calls out (an HTTP
/// delivery) must not hold the database's write lock while it waits, and records what
/// happened in transactions of its own. Its effects outside the database happen at least
/// once: a replica whose lease ran out mid-task may have done them when another takes the
/// job over.
pub trait Task: Send + Sync + 'static {
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, ApiResult<Outcome>>;
}

/// How long a claim holds before another replica may take the job over (a replica that
/// died mid-job): far longer than any handler runs.
const LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// How many tasks a runner runs at once.
const TASK_SLOTS: usize = 8;

/// How many jobs one round runs at most, so a backlog does not starve the pause between
/// rounds.
const BATCH: usize = 100;

/// The wait before attempt `attempts + 1` of the job `id`: 10 s doubling per attempt up
/// to an hour, plus up to a fifth more derived from the id (spreading retries of jobs that
/// failed together without a random source).
pub fn backoff(id: &str, attempts: i32) -> chrono::Duration {
    let exponent = attempts.clamp(1, 16) as u32 - 1;
    let base = Ord::min(10_i64 << exponent, 3600);
    let spread = id.bytes().fold(attempts as u64, |h, b| {
        h.wrapping_mul(31).wrapping_add(b as u64)
    });
    let jitter_ms = (spread % 200) as i64 * base; // 0..200 × base ms = up to a fifth
    chrono::Duration::seconds(base) + chrono::Duration::milliseconds(jitter_ms)
}

/// A service's job runner: its handlers by kind, polling its `jobs` table.
#[derive(Clone)]
pub struct JobRunner {
    db: DatabaseConnection,
    worker: String,
    handlers: Arc<HashMap<&'static str, Handler>>,
    tasks: Arc<HashMap<&'static str, Arc<dyn Task>>>,
    /// How many tasks run at once (each waits on the network: one slow endpoint must not
    /// hold up the others); handlers run one at a time.
    task_slots: Arc<tokio::sync::Semaphore>,
    /// Wakes an idle runner before its next poll: work was just scheduled in this process.
    wake: Arc<tokio::sync::Notify>,
    /// The kinds after whose commit the database's freed space is wiped (erasures).
    wipes: Arc<std::collections::HashSet<&'static str>>,
    /// The kinds that run again and again (each handler says when), started with the
    /// runner.
    recurring: Arc<Vec<&'static str>>,
    poll: Duration,
}

impl JobRunner {
    pub fn new(db: DatabaseConnection, service: &str) -> Self {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        Self {
            db,
            worker: format!("{service}-{}", &suffix[..12]),
            handlers: Arc::new(HashMap::new()),
            tasks: Arc::default(),
            task_slots: Arc::new(tokio::sync::Semaphore::new(TASK_SLOTS)),
            wake: Arc::default(),
            wipes: Arc::default(),
            recurring: Arc::default(),
            poll: Duration::from_millis(500),
        }
    }

    /// Registers the handler of `kind`.
    pub fn handle(mut self, kind: &'static str, handler: Handler) -> Self {
        Arc::make_mut(&mut self.handlers).insert(kind, handler);
        self
    }

    /// Registers the task of `kind` (run outside a transaction; see [`Task`]).
    pub fn handle_task(mut self, kind: &'static str, task: Arc<dyn Task>) -> Self {
        Arc::make_mut(&mut self.tasks).insert(kind, task);
        self
    }

    /// After a job of `kind` commits, the database's freed space is wiped
    /// ([`crate::db::wipe_freed`]): what the job removed leaves no copy behind.
    pub fn wipe_after(mut self, kind: &'static str) -> Self {
        Arc::make_mut(&mut self.wipes).insert(kind);
        self
    }

    /// A kind that recurs: once the runner starts there is always one job of it
    /// (`recurring:<kind>`), whose handler answers when it runs next
    /// (`Outcome::RunAgainAt`).
    pub fn recurring(mut self, kind: &'static str) -> Self {
        Arc::make_mut(&mut self.recurring).push(kind);
        self
    }

    /// Schedules each recurring kind now unless its job is pending or running already.
    pub async fn start_recurring(&self) -> ApiResult<()> {
        use job::Column as J;
        for kind in self.recurring.iter() {
            let key = format!("recurring:{kind}");
            let live = job::Entity::find()
                .filter(Expr::col(J::Key).eq(key.as_str()))
                .filter(Expr::col(J::State).is_in([JobState::Pending, JobState::Running]))
                .one(&self.db)
                .await?;
            if live.is_none() {
                schedule(
                    &self.db,
                    NewJob::new(kind, key, clock::now(), serde_json::Value::Null),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Wakes this runner with `wake` as well as by its poll (give it to whatever schedules
    /// jobs in this process, to be notified once the job is committed).
    pub fn woken_by(mut self, wake: Arc<tokio::sync::Notify>) -> Self {
        self.wake = wake;
        self
    }

    /// How often an idle runner looks for due jobs (500 ms by default).
    pub fn poll_every(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// This runner's name in `locked_by`.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// Runs the jobs due now (by the service's clock), up to a batch; returns how many ran
    /// (succeeded or failed).
    pub async fn run_due(&self) -> ApiResult<usize> {
        let mut ran = 0;
        while ran < BATCH {
            // A task is claimed only when a slot is free for it; the claim waits otherwise.
            let slot =
                match self.tasks.is_empty() {
                    true => None,
                    false => {
                        Some(self.task_slots.clone().acquire_owned().await.map_err(|_| {
                            ApiError::internal("the job runner's task slots closed")
                        })?)
                    }
                };
            let Some(job) = self.claim_next().await? else {
                break;
            };
            match (slot, self.tasks.contains_key(job.kind.as_str())) {
                (Some(slot), true) => {
                    let runner = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = runner.execute(job).await {
                            tracing::warn!(worker = %runner.worker, message = %e.message(), "recording a task's outcome failed; its lease will run out and it runs again");
                        }
                        drop(slot);
                    });
                }
                _ => self.execute(job).await?,
            }
            ran += 1;
        }
        Ok(ran)
    }

    /// Claims the earliest due job: a pending one whose time has come, or a running one
    /// whose claim ran out. `None` when none is due.
    async fn claim_next(&self) -> ApiResult<Option<Job>> {
        use job::Column as J;
        // Another replica may win the claim of the job we read; then read the next.
        for _ in 0..BATCH {
            let now = clock::now();
            let due = Condition::any()
                .add(
                    Condition::all()
                        .add(Expr::col(J::State).eq(JobState::Pending))
                        .add(Expr::col(J::RunAt).lte(now)),
                )
                .add(
                    Condition::all()
                        .add(Expr::col(J::State).eq(JobState::Running))
                        .add(Expr::col(J::LockedUntil).lt(now)),
                );
            let Some(candidate) = job::Entity::find()
                .filter(due)
                .order_by_asc(J::RunAt)
                .order_by_asc(J::Id)
                .one(&self.db)
                .await?
            else {
                return Ok(None);
            };
            let claimed = job::Entity::update_many()
                .col_expr(J::State, Expr::val(JobState::Running))
                .col_expr(J::LockedBy, Expr::val(self.worker.clone()))
                .col_expr(J::LockedUntil, Expr::val(now + LEASE))
                .col_expr(J::Attempts, Expr::col(J::Attempts).add(1))
                .col_expr(J::UpdatedAt, Expr::val(now))
                .filter(Expr::col(J::Id).eq(candidate.id.as_str()))
                .filter(Expr::col(J::State).eq(candidate.state))
                .filter(Expr::col(J::Attempts).eq(candidate.attempts))
                .exec(&self.db)
                .await?;
            if claimed.rows_affected == 1 {
                return Ok(Some(Job {
                    state: JobState::Running,
                    attempts: candidate.attempts + 1,
                    locked_by: Some(self.worker.clone()),
                    locked_until: Some(now + LEASE),
                    ..candidate
                }));
            }
        }
        Ok(None)
    }

    /// Runs a claimed job and records how it went.
    async fn execute(&self, job: Job) -> ApiResult<()> {
        let handler = self.handlers.get(job.kind.as_str()).copied();
        let task = self.tasks.get(job.kind.as_str()).cloned();
        if handler.is_none() && task.is_none() {
            // A kind this build does not know (a newer replica scheduled it during a
            // rolling deploy): hand it back untouched for a replica that does.
            return self
                .finish(
                    &self.db,
                    &job,
                    JobState::Pending,
                    clock::now() + chrono::Duration::minutes(1),
                    Some(format!("no handler for {} in {}", job.kind, self.worker)),
                    job.attempts - 1,
                )
                .await
                .map(|_| ());
        }
        if job.attempts > job.max_attempts {
            // Claimed again after its last attempt's lease ran out (the replica died).
            let error = "the last attempt did not finish (its replica stopped)".to_owned();
            return self
                .finish(
                    &self.db,
                    &job,
                    JobState::Dead,
                    job.run_at,
                    Some(error),
                    job.attempts,
                )
                .await
                .map(|_| ());
        }
        let (Some(handler), None) = (handler, task.clone()) else {
            let result = match task {
                Some(task) => task.run(&job).await,
                None => Err(ApiError::internal(
                    "a job kind with neither handler nor task",
                )),
            };
            return match result {
                Ok(outcome) => {
                    let (state, run_at, attempts) = match outcome {
                        Outcome::Done => (JobState::Done, job.run_at, job.attempts),
                        Outcome::RunAgainAt(at) => (JobState::Pending, at, 0),
                    };
                    // A claim taken over meanwhile leaves the job to its new runner.
                    self.finish(&self.db, &job, state, run_at, None, attempts)
                        .await
                        .map(|_| ())
                }
                Err(error) => self.failed(&job, error).await,
            };
        };
        let txn = crate::db::begin_write(&self.db).await?;
        let result = handler(&txn, &job).await;
        match result {
            Ok(outcome) => {
                let (state, run_at) = match outcome {
                    Outcome::Done => (JobState::Done, job.run_at),
                    Outcome::RunAgainAt(at) => (JobState::Pending, at),
                };
                let attempts = if state == JobState::Pending {
                    0
                } else {
                    job.attempts
                };
                if self
                    .finish(&txn, &job, state, run_at, None, attempts)
                    .await?
                {
                    crate::db::commit(txn).await?;
                    if self.wipes.contains(job.kind.as_str()) {
                        crate::db::wipe_freed(&self.db).await;
                    }
                } else {
                    // The claim was taken over: this attempt's work must not count.
                    txn.rollback().await.ok();
                }
            }
            Err(error) => {
                txn.rollback().await.ok();
                self.failed(&job, error).await?;
            }
        }
        Ok(())
    }

    /// Records a failed attempt: the job waits for its next one (backing off), or is dead
    /// after its last.
    async fn failed(&self, job: &Job, error: ApiError) -> ApiResult<()> {
        let message = error.message();
        tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, %message, "job failed");
        let (state, run_at) = if job.attempts >= job.max_attempts {
            (JobState::Dead, job.run_at)
        } else {
            (
                JobState::Pending,
                clock::now() + backoff(&job.id, job.attempts),
            )
        };
        self.finish(&self.db, job, state, run_at, Some(message), job.attempts)
            .await
            .map(|_| ())
    }

    /// Releases this runner's claim on `job` with its new state; false when the claim is
    /// no longer this runner's.
    async fn finish<C: ConnectionTrait>(
        &self,
        db: &C,
        job: &Job,
        state: JobState,
        run_at: DateTime<Utc>,
        error: Option<String>,
        attempts: i32,
    ) -> ApiResult<bool> {
        use job::Column as J;
        let now = clock::now();
        let finished = matches!(state, JobState::Done | JobState::Dead).then_some(now);
        let mut update = job::Entity::update_many()
            .col_expr(J::State, Expr::val(state))
            .col_expr(J::RunAt, Expr::val(run_at))
            .col_expr(J::Attempts, Expr::val(attempts))
            .col_expr(J::LockedBy, Expr::val(Option::<String>::None))
            .col_expr(J::LockedUntil, Expr::val(Option::<DateTime<Utc>>::None))
            .col_expr(J::UpdatedAt, Expr::val(now))
            .col_expr(J::FinishedAt, Expr::val(finished));
        if error.is_some() || state == JobState::Done {
            update = update.col_expr(J::LastError, Expr::val(error));
        }
        let released = update
            .filter(Expr::col(J::Id).eq(job.id.as_str()))
            .filter(Expr::col(J::LockedBy).eq(self.worker.as_str()))
            .filter(Expr::col(J::Attempts).eq(job.attempts))
            .exec(db)
            .await?;
        Ok(released.rows_affected == 1)
    }

    /// Runs rounds until dropped: every `poll` when idle, back to back while jobs are due,
    /// with a growing pause while the database fails.
    pub fn spawn(self) -> JobRunnerHandle {
        let task = tokio::spawn(async move {
            let mut failures: u32 = 0;
            while let Err(error) = self.start_recurring().await {
                tracing::warn!(worker = %self.worker, message = %error.message(), "scheduling the recurring jobs failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            loop {
                match self.run_due().await {
                    Ok(n) => {
                        failures = 0;
                        if n < BATCH {
                            tokio::select! {
                                _ = tokio::time::sleep(self.poll) => {}
                                _ = self.wake.notified() => {}
                            }
                        }
                    }
                    Err(_) => {
                        failures = failures.saturating_add(1);
                        let pause = Duration::from_millis(200) * Ord::min(failures, 25);
                        tracing::warn!(worker = %self.worker, ?pause, "job round failed; retrying");
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        });
        JobRunnerHandle(task)
    }
}

/// Stops the runner when dropped. A stop mid-job is safe: the job's transaction rolls
/// back and its claim runs out, after which a runner takes it again.
pub struct JobRunnerHandle(JoinHandle<()>);

impl Drop for JobRunnerHandle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The jobs in `state` (all when `None`), most recently changed first: the administrators'
/// view.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    state: Option<JobState>,
    limit: u64,
) -> ApiResult<Vec<Job>> {
    use job::Column as J;
    let mut select = job::Entity::find();
    if let Some(state) = state {
        select = select.filter(Expr::col(J::State).eq(state));
    }
    Ok(select
        .order_by_desc(J::UpdatedAt)
        .order_by_asc(J::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// Puts a dead job back to run now, with its attempts reset.
pub async fn retry<C: ConnectionTrait>(db: &C, id: &str) -> ApiResult<Job> {
    use job::Column as J;
    let now = clock::now();
    let moved = job::Entity::update_many()
        .col_expr(J::State, Expr::val(JobState::Pending))
        .col_expr(J::RunAt, Expr::val(now))
        .col_expr(J::Attempts, Expr::val(0))
        .col_expr(J::UpdatedAt, Expr::val(now))
        .col_expr(J::FinishedAt, Expr::val(Option::<DateTime<Utc>>::None))
        .filter(Expr::col(J::Id).eq(id))
        .filter(Expr::col(J::State).eq(JobState::Dead))
        .exec(db)
        .await?;
    let job = job::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .ok_or(ApiError::NotFound)?;
    if moved.rows_affected == 0 {
        return Err(ApiError::InvalidState {
            message: format!(
                "only a dead job can be retried; this one is {}",
                crate::domain::label(job.state)
            ),
        });
    }
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour_with_bounded_jitter() {
        let first = backoff("job_a", 1);
        assert!(first >= chrono::Duration::seconds(10) && first < chrono::Duration::seconds(12));
        let third = backoff("job_a", 3);
        assert!(third >= chrono::Duration::seconds(40) && third < chrono::Duration::seconds(48));
        let late = backoff("job_a", 15);
        assert!(late >= chrono::Duration::hours(1) && late < chrono::Duration::minutes(72));
        // Two jobs that failed together retry at different times.
        assert_ne!(backoff("job_a", 2), backoff("job_b", 2));
    }
}

/// The administrators' view of a service's jobs (`jobs` and `retryJob`), through the
/// policy's `Job` rules (no rule: refused).
pub mod graphql {
    use async_graphql::{Context, ID, Object, Result};
    use chrono::{DateTime, Utc};

    use super::JobState;
    use crate::access::{self, Action};

    pub struct JobNode(pub super::Job);

    /// A deferred or scheduled piece of work of the service, and how its runs went.
    #[Object(name = "Job")]
    impl JobNode {
        async fn id(&self) -> ID {
            ID(self.0.id.clone())
        }
        /// What it does, e.g. `case.sla` (a case's SLA check).
        async fn kind(&self) -> &str {
            &self.0.kind
        }
        /// One job per key: what it is about, e.g. `case-sla:case_1`.
        async fn key(&self) -> &str {
            &self.0.key
        }
        async fn state(&self) -> JobState {
            self.0.state
        }
        /// When it is due (or was, once done).
        async fn run_at(&self) -> DateTime<Utc> {
            self.0.run_at
        }
        /// Attempts of the current run (reset when it is scheduled again).
        async fn attempts(&self) -> i32 {
            self.0.attempts
        }
        async fn max_attempts(&self) -> i32 {
            self.0.max_attempts
        }
        /// Why the last attempt failed, if it did.
        async fn last_error(&self) -> Option<&str> {
            self.0.last_error.as_deref()
        }
        async fn created_at(&self) -> DateTime<Utc> {
            self.0.created_at
        }
        async fn updated_at(&self) -> DateTime<Utc> {
            self.0.updated_at
        }
        async fn finished_at(&self) -> Option<DateTime<Utc>> {
            self.0.finished_at
        }
    }

    #[derive(Default)]
    pub struct JobQuery;

    #[Object]
    impl JobQuery {
        /// The service's jobs, most recently changed first (at most `first`, ≤ 200):
        /// administrators only.
        async fn jobs(
            &self,
            ctx: &Context<'_>,
            state: Option<JobState>,
            #[graphql(default = 50)] first: i32,
        ) -> Result<Vec<JobNode>> {
            if !access::may(ctx, "Job", Action::Read).await? {
                return Err(crate::ApiError::denied(
                    crate::ErrorCode::Forbidden,
                    "you may not read this service's jobs".to_owned(),
                )
                .into());
            }
            let limit = first.clamp(1, 200) as u64;
            Ok(super::list(crate::graphql::db(ctx)?, state, limit)
                .await?
                .into_iter()
                .map(JobNode)
                .collect())
        }
    }

    #[derive(Default)]
    pub struct JobMutation;

    #[Object]
    impl JobMutation {
        /// Runs a dead job again from its first attempt.
        async fn retry_job(&self, ctx: &Context<'_>, id: ID) -> Result<JobNode> {
            access::check_may(ctx, "Job", Action::Update).await?;
            Ok(JobNode(super::retry(crate::graphql::db(ctx)?, &id).await?))
        }
    }
}
