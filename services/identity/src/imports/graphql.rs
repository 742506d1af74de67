//! The imports API: a signed-in caller (a user or an API key) stages a file, checks it
//! with a dry run, runs it, follows its progress and reads each row's outcome. An import
//! is its owner's alone: anyone else's reads as missing. What the rows may do is decided
//! row by row by the services that write them, as for the owner's own requests.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use crm_service_common::import::ImportOutcome;
use crm_service_common::principal::Principal;
use crm_service_common::{ApiError, ApiResult, clock};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::catalog;
use super::parse::{self, ImportFormat};
use super::run;
use super::store::{self, Import, ImportRow, ImportState, import, import_row};
use crate::graphql::{directory, signed_in};
use crate::webhooks::graphql::wake_runner;

/// The most text one `createImport` or `addImportRows` call takes; a larger file is sent
/// in parts (each a file of its own with the same header, or a JSON array).
const MAX_CONTENT_BYTES: usize = 32 * 1024 * 1024;

/// The record types an import writes.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ImportType {
    Account,
    Contact,
    Product,
    Order,
    OrderLine,
}

impl ImportType {
    fn kind(self) -> &'static catalog::ImportKind {
        let name = match self {
            Self::Account => "ACCOUNT",
            Self::Contact => "CONTACT",
            Self::Product => "PRODUCT",
            Self::Order => "ORDER",
            Self::OrderLine => "ORDER_LINE",
        };
        catalog::kind(name).expect("every import type is in the catalog")
    }

    fn of(name: &str) -> Option<Self> {
        [
            Self::Account,
            Self::Contact,
            Self::Product,
            Self::Order,
            Self::OrderLine,
        ]
        .into_iter()
        .find(|t| t.kind().name == name)
    }
}

/// An import of one file (in one or more parts) of one record type.
pub struct ImportNode(Import);

#[Object(name = "Import")]
impl ImportNode {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    #[graphql(name = "type")]
    async fn record_type(&self) -> Option<ImportType> {
        ImportType::of(&self.0.record_type)
    }
    async fn format(&self) -> Option<ImportFormat> {
        ImportFormat::parse(&self.0.format)
    }
    /// The name the owner gave it (the file's, say).
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn state(&self) -> ImportState {
        self.0.state
    }
    /// The current (or last) pass is a dry run: its counts say what a run would do, and
    /// nothing was kept.
    async fn dry_run(&self) -> bool {
        self.0.dry_run
    }
    /// The current (or last) pass leaves out new rows that look like existing records.
    async fn skip_duplicates(&self) -> bool {
        self.0.skip_duplicates
    }
    /// Rows staged.
    async fn row_count(&self) -> i64 {
        self.0.row_count
    }
    /// Rows the current pass has an outcome for.
    async fn processed(&self) -> i64 {
        self.0.processed
    }
    async fn created(&self) -> i64 {
        self.0.created
    }
    async fn updated(&self) -> i64 {
        self.0.updated
    }
    async fn unchanged(&self) -> i64 {
        self.0.unchanged
    }
    async fn refused(&self) -> i64 {
        self.0.refused
    }
    async fn skipped(&self) -> i64 {
        self.0.skipped
    }
    /// Rows that look like records the owner can read (created or skipped).
    async fn duplicates(&self) -> i64 {
        self.0.duplicates
    }
    /// Why the import failed, or the last error of a batch that is being retried.
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
    /// The rows with their outcomes, in file order: `outcome` keeps those with one
    /// outcome, `duplicatesOnly` those that look like existing records; `after` is the
    /// row number to go on after (`first` ≤ 500, default 100).
    async fn rows(
        &self,
        ctx: &Context<'_>,
        outcome: Option<ImportOutcome>,
        #[graphql(default)] duplicates_only: bool,
        first: Option<i32>,
        after: Option<i64>,
    ) -> Result<Vec<ImportRowNode>> {
        let first = first.unwrap_or(100);
        if !(1..=500).contains(&first) {
            return Err(ApiError::validation("first", "must be between 1 and 500").into());
        }
        let mut select = import_row::Entity::find()
            .filter(import_row::Column::ImportId.eq(self.0.id.as_str()))
            .filter(import_row::Column::Number.gt(after.unwrap_or(0)));
        if let Some(outcome) = outcome {
            select = select.filter(import_row::Column::Outcome.eq(outcome));
        }
        if duplicates_only {
            select = select.filter(import_row::Column::Duplicates.is_not_null());
        }
        Ok(select
            .order_by_asc(import_row::Column::Number)
            .limit(first as u64)
            .all(&directory(ctx)?.db)
            .await?
            .into_iter()
            .map(ImportRowNode)
            .collect())
    }
}

/// One row of an import and what became of it in the current (or last) pass.
pub struct ImportRowNode(ImportRow);

#[Object(name = "ImportRow")]
impl ImportRowNode {
    /// Its row in the file as a spreadsheet numbers them (a CSV file's header is row 1),
    /// or its place in a JSON array (from 1).
    async fn number(&self) -> i64 {
        self.0.number
    }
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }
    /// Null until the pass reaches it.
    async fn outcome(&self) -> Option<ImportOutcome> {
        self.0.outcome
    }
    /// The record written (for a dry run's update: the record that would change).
    async fn record_id(&self) -> Option<ID> {
        self.0.record_id.clone().map(ID)
    }
    async fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }
    async fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }
    async fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }
    /// Records the owner can read that this row looks like.
    async fn duplicates(&self) -> Vec<ID> {
        self.0
            .duplicates
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .filter(|id| !id.is_empty())
            .map(|id| ID(id.to_owned()))
            .collect()
    }
    /// The row as it was read from the file: `{"input": …, "references": …}` (JSON).
    async fn data(&self) -> &str {
        &self.0.data
    }
}

#[derive(InputObject)]
pub struct CreateImportInput {
    #[graphql(name = "type")]
    pub record_type: ImportType,
    pub format: ImportFormat,
    /// The file's text (or its first part).
    pub content: String,
    pub name: Option<String>,
}

#[derive(Default)]
pub struct ImportQuery;

#[Object]
impl ImportQuery {
    /// One of the caller's imports.
    async fn import(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ImportNode>> {
        let who = Principal::of(ctx);
        signed_in(&who)?;
        match store::owned(&directory(ctx)?.db, &id, &who.subject).await {
            Ok(found) => Ok(Some(ImportNode(found))),
            Err(ApiError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The caller's imports, newest first (`first` ≤ 100, default 20).
    async fn imports(&self, ctx: &Context<'_>, first: Option<i32>) -> Result<Vec<ImportNode>> {
        let who = Principal::of(ctx);
        signed_in(&who)?;
        let first = first.unwrap_or(20);
        if !(1..=100).contains(&first) {
            return Err(ApiError::validation("first", "must be between 1 and 100").into());
        }
        Ok(
            store::of_owner(&directory(ctx)?.db, &who.subject, first as u64)
                .await?
                .into_iter()
                .map(ImportNode)
                .collect(),
        )
    }
}

#[derive(Default)]
pub struct ImportMutation;

#[Object]
impl ImportMutation {
    /// Stages a file of rows of one type (nothing is written yet): a file that can't be
    /// read is refused whole, with the line and the reason. Then `checkImport` (a dry run)
    /// or `runImport`.
    async fn create_import(
        &self,
        ctx: &Context<'_>,
        input: CreateImportInput,
    ) -> Result<ImportNode> {
        let who = Principal::of(ctx);
        signed_in(&who)?;
        let kind = input.record_type.kind();
        let name = input
            .name
            .as_deref()
            .map(|n| crm_service_common::domain::text("input.name", n, 200))
            .transpose()?;
        let first = match input.format {
            ImportFormat::Csv => 2,
            ImportFormat::Json => 1,
        };
        let rows = parse::rows(kind, input.format, checked_size(&input.content)?, first)?;
        let db = &directory(ctx)?.db;
        let now = clock::now();
        let txn = crm_service_common::db::begin_write(db).await?;
        let id = crm_service_common::domain::new_id("imp");
        let row_count = rows.len() as i64;
        store::stage(&txn, &id, rows).await?;
        let created = import::ActiveModel {
            id: Set(id),
            owner: Set(who.subject.clone()),
            partner_id: Set(who.partner_id.clone()),
            record_type: Set(kind.name.to_owned()),
            format: Set(input.format.as_str().to_owned()),
            name: Set(name),
            state: Set(ImportState::Staged),
            dry_run: Set(false),
            skip_duplicates: Set(false),
            row_count: Set(row_count),
            next_row: Set(0),
            processed: Set(0),
            created: Set(0),
            updated: Set(0),
            unchanged: Set(0),
            refused: Set(0),
            skipped: Set(0),
            duplicates: Set(0),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            finished_at: Set(None),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(ImportNode(created))
    }

    /// Adds a further part of the file to a staged import: CSV with the same header as the
    /// first part, or a JSON array. Its rows are numbered on from the last.
    async fn add_import_rows(
        &self,
        ctx: &Context<'_>,
        id: ID,
        content: String,
    ) -> Result<ImportNode> {
        let who = Principal::of(ctx);
        signed_in(&who)?;
        let db = &directory(ctx)?.db;
        let txn = crm_service_common::db::begin_write(db).await?;
        let found = store::owned(&txn, &id, &who.subject).await?;
        if found.state != ImportState::Staged {
            return Err(ApiError::InvalidState {
                message: "rows can be added only before the import is checked or run".into(),
            }
            .into());
        }
        let kind = catalog::kind(&found.record_type)
            .ok_or_else(|| ApiError::internal("an import of an unknown type"))?;
        let format = ImportFormat::parse(&found.format)
            .ok_or_else(|| ApiError::internal("an import of an unknown format"))?;
        let last = store::last_number(&txn, &found.id).await?;
        let rows = parse::rows(kind, format, checked_size(&content)?, last + 1)?;
        let total = found.row_count + rows.len() as i64;
        if total > parse::MAX_ROWS as i64 {
            return Err(ApiError::validation(
                "content",
                format!("makes the import longer than {} rows", parse::MAX_ROWS),
            )
            .into());
        }
        store::stage(&txn, &found.id, rows).await?;
        let mut row: import::ActiveModel = found.into();
        row.row_count = Set(total);
        row.updated_at = Set(clock::now());
        let updated = row.update(&txn).await?;
        txn.commit().await?;
        Ok(ImportNode(updated))
    }

    /// Starts a dry run: every row is tried as its owner and rolled back, and each row's
    /// outcome says what a run would do (created, updated, unchanged, refused with the
    /// reason, looks like existing records).
    async fn check_import(&self, ctx: &Context<'_>, id: ID) -> Result<ImportNode> {
        Ok(start(ctx, &id, ImportState::Checking, true, false).await?)
    }

    /// Starts the real run: batches of rows, each batch one transaction in the type's
    /// service; a refused row is reported and the others are kept. `skipDuplicates`
    /// leaves out new rows that look like records the owner can read. A run that was
    /// cancelled or failed goes on where it stopped (with its own `skipDuplicates`).
    async fn run_import(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default)] skip_duplicates: bool,
    ) -> Result<ImportNode> {
        Ok(start(ctx, &id, ImportState::Running, false, skip_duplicates).await?)
    }

    /// Deletes an import and every row kept of it (the file's contents included); one
    /// that is being checked or run is cancelled first. Returns its id.
    async fn delete_import(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let who = Principal::of(ctx);
        signed_in(&who)?;
        let db = &directory(ctx)?.db;
        let txn = crm_service_common::db::begin_write(db).await?;
        let found = store::owned(&txn, &id, &who.subject).await?;
        if matches!(found.state, ImportState::Checking | ImportState::Running) {
            return Err(ApiError::InvalidState {
                message: "cancel the import before deleting it".into(),
            }
            .into());
        }
        store::delete(&txn, &found.id).await?;
        txn.commit().await?;
        Ok(id)
    }

    /// Stops an import: no further batch is sent (batches already written stay written;
    /// `runImport` goes on from where it stopped).
    async fn cancel_import(&self, ctx: &Context<'_>, id: ID) -> Result<ImportNode> {
        let who = Principal::of(ctx);
        signed_in(&who)?;
        let db = &directory(ctx)?.db;
        let found = store::owned(db, &id, &who.subject).await?;
        if matches!(
            found.state,
            ImportState::Done | ImportState::Cancelled | ImportState::Failed
        ) {
            return Err(ApiError::InvalidState {
                message: format!(
                    "the import is {} already",
                    crm_service_common::domain::label(found.state).to_lowercase()
                ),
            }
            .into());
        }
        let now = clock::now();
        let mut row: import::ActiveModel = found.into();
        row.state = Set(ImportState::Cancelled);
        row.updated_at = Set(now);
        row.finished_at = Set(Some(now));
        Ok(ImportNode(row.update(db).await?))
    }
}

/// Starts a pass (`Checking` or `Running`) of the caller's import `id`.
async fn start(
    ctx: &Context<'_>,
    id: &str,
    state: ImportState,
    dry_run: bool,
    skip_duplicates: bool,
) -> ApiResult<ImportNode> {
    let who = Principal::of(ctx);
    signed_in(&who)?;
    let db = &directory(ctx)?.db;
    let txn = crm_service_common::db::begin_write(db).await?;
    let found = store::owned(&txn, id, &who.subject).await?;
    if matches!(
        found.state,
        ImportState::Checking | ImportState::Running | ImportState::Done
    ) {
        return Err(ApiError::InvalidState {
            message: format!(
                "the import is {}; a finished run is not run again (import the file anew)",
                crm_service_common::domain::label(found.state).to_lowercase()
            ),
        });
    }
    // A stopped run (cancelled, or failed because its owner could not act) goes on where
    // it stopped; anything else starts a pass over every row.
    let resumes = !dry_run
        && !found.dry_run
        && matches!(found.state, ImportState::Cancelled | ImportState::Failed);
    let started = if resumes {
        let mut row: import::ActiveModel = found.into();
        row.state = Set(ImportState::Running);
        row.last_error = Set(None);
        row.finished_at = Set(None);
        row.updated_at = Set(clock::now());
        row.update(&txn).await?
    } else {
        store::start_pass(&txn, found, state, dry_run, skip_duplicates).await?
    };
    run::schedule(&txn, &started.id).await?;
    txn.commit().await?;
    wake_runner(ctx);
    Ok(ImportNode(started))
}

fn checked_size(content: &str) -> ApiResult<&str> {
    if content.len() > MAX_CONTENT_BYTES {
        return Err(ApiError::validation(
            "content",
            format!(
                "is longer than {} MiB: send the file in parts (addImportRows)",
                MAX_CONTENT_BYTES / 1024 / 1024
            ),
        ));
    }
    Ok(content)
}
