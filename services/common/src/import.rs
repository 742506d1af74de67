//! Bulk upsert: a batch of rows of one record type written by external id in **one
//! transaction**, each row under its own savepoint, so a refused row is reported (with the
//! field and the reason) and rolls back alone while every other row is kept. A dry run
//! does exactly the same work, policy checks and duplicate look-ups included, and then
//! rolls the whole transaction back: its report is what the real run would do on the data
//! as it is now.
//!
//! Every row goes through the type's one upsert ([`upsert_one`], the same code as the
//! `upsert<Type>` mutation): the caller's create or update right, its field rules, the
//! references it may see, and the scope check after the write. Rows that *look like* an
//! existing record (the one normaliser's keys: a company name or web domain, an email or a
//! phone) are reported with the ids of those records, compared only among the records the
//! caller may read and only on fields it may read, so a report never reveals a row or a
//! masked value. Imports of files (parsing, staging, progress, resuming) are the identity
//! service's: it sends these batches through the gateway as the importer.

use async_graphql::{Context, ID, InputObject, SimpleObject};
use sea_orm::sea_query::{Condition, Expr, SimpleExpr, StringLen};
use sea_orm::{
    ActiveModelTrait, DatabaseTransaction, ExprTrait, QueryFilter, QuerySelect, TransactionTrait,
};

use crate::access::{self, Action, Scoped};
use crate::graphql::RecordInput;
use crate::principal::Principal;
use crate::record::{self, ExternalKey};
use crate::{ApiError, ApiResult};

/// The most rows one batch may carry: a batch is one transaction, so it stays short.
pub const MAX_BATCH_ROWS: usize = 1000;

/// How many look-alike records a row reports at most.
const MAX_DUPLICATES: u64 = 5;

crate::text_enum!(
    /// What happened to one row (or, in a dry run, what would happen): `CREATED` (a new
    /// record, known from now on by the row's external id), `UPDATED`, `UNCHANGED` (the
    /// record already said what the row says), `REFUSED` (nothing written; the code, field
    /// and message say why), `SKIPPED_DUPLICATE` (not written: the row looks like records
    /// listed in `duplicates`, and the batch was asked to skip such rows).
    ImportOutcome {
        Created = "CREATED",
        Updated = "UPDATED",
        Unchanged = "UNCHANGED",
        Refused = "REFUSED",
        SkippedDuplicate = "SKIPPED_DUPLICATE",
    }
);

/// One row's outcome.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(shareable)]
pub struct ImportRowResult {
    /// The row's external id, as sent.
    pub external_id: String,
    pub outcome: ImportOutcome,
    /// The record written (or that would be, in a dry run of an update); null when
    /// refused, skipped, or created in a dry run.
    pub id: Option<ID>,
    /// Why a refused row was refused: the error code, the input field, the message.
    pub code: Option<String>,
    pub field: Option<String>,
    pub message: Option<String>,
    /// Records the caller may read that look like the one a creating row describes (same
    /// company name or web domain, same email or phone), at most five.
    pub duplicates: Vec<ID>,
}

/// A batch's outcome: one result per row, in the rows' order.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(shareable)]
pub struct ImportBatchResult {
    /// Nothing was kept: the report says what the real run would do.
    pub dry_run: bool,
    pub rows: Vec<ImportRowResult>,
}

/// A reference to another record by the external id the caller gave it (in the caller's
/// organisation), instead of by our id: `{field: "accountId", externalId: "ERP-17"}`.
#[derive(InputObject, Clone, Debug)]
pub struct ImportReference {
    /// The input field the reference fills (`accountId`, `orderId`, `productId`).
    pub field: String,
    pub external_id: String,
}

/// One row as a batch receives it.
pub struct ImportRow<I> {
    pub external_id: String,
    pub input: I,
    pub references: Vec<ImportReference>,
    /// The input fields the row sets (an explicit `null` counts), for the field rules.
    pub fields: Vec<String>,
}

/// What a record type adds to its input for bulk upserts: references by external id,
/// and how to find existing records that look like the one a row describes.
pub trait Importable<E>: RecordInput<E> + Send + Sync
where
    E: Scoped,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    /// Fills the input field `reference.field` with the id of the record the caller knows
    /// by `reference.externalId` (see [`referenced`]). Types without references refuse.
    fn resolve(
        &mut self,
        ctx: &Context<'_>,
        txn: &DatabaseTransaction,
        reference: &ImportReference,
    ) -> impl std::future::Future<Output = ApiResult<()>> + Send {
        let _ = (ctx, txn);
        let field = format!("references.{}", reference.field);
        async move {
            Err(ApiError::validation(
                field,
                "is not a reference this type takes",
            ))
        }
    }

    /// A condition matching the records this new row would duplicate (by the one
    /// normaliser's keys), using only fields `masks` lets the caller read; `None` when the
    /// row carries no key to compare.
    fn looks_like(&self, masks: &access::Masks) -> Option<SimpleExpr> {
        let _ = masks;
        None
    }
}

/// The id of the `E` record the caller knows by `reference.externalId`, when it may read
/// it; otherwise a refusal that reads the same whether the record is missing or hidden.
pub async fn referenced<E>(
    ctx: &Context<'_>,
    txn: &DatabaseTransaction,
    reference: &ImportReference,
) -> ApiResult<async_graphql::ID>
where
    E: Scoped,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let field = format!("references.{}", reference.field);
    let who = Principal::of(ctx);
    let key = ExternalKey::of(&who, &field, &reference.external_id)?;
    let missing = || {
        ApiError::validation(
            &field,
            format!(
                "no record you can see has the external id {:?}",
                reference.external_id
            ),
        )
    };
    let found = record::find_by_external_id::<E, _>(txn, &key)
        .await?
        .ok_or_else(missing)?;
    let visible = access::visible_in::<E>(ctx, Action::Read).await?;
    let id = E::id(&found).to_owned();
    if record::get_many_where::<E, _>(txn, std::slice::from_ref(&id), visible)
        .await?
        .is_empty()
    {
        return Err(missing());
    }
    Ok(async_graphql::ID(id))
}

/// What [`upsert_one`] did.
pub struct Upserted<M> {
    pub record: M,
    pub outcome: ImportOutcome,
}

/// Creates the record the caller knows by `external_id`, or updates it, on `txn`: the
/// `upsert<Type>` mutation's one implementation. `fields` are the input fields the caller
/// sets (checked against its field rules).
pub async fn upsert_one<E, I>(
    ctx: &Context<'_>,
    txn: &DatabaseTransaction,
    external_id: &str,
    input: &I,
    fields: &[String],
) -> ApiResult<Upserted<E::Model>>
where
    E: Scoped,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    I: RecordInput<E> + Sync,
{
    let ty = E::POLICY_TYPE;
    let who = Principal::of(ctx);
    let known = ExternalKey::of(&who, "externalId", external_id)?;
    let existing = record::find_by_external_id::<E, _>(txn, &known).await?;
    let action = match &existing {
        Some(existing) => {
            access::check_may(ctx, ty, Action::Update).await?;
            access::check_sets(ctx, ty, Action::Update, fields).await?;
            access::check_may_change::<E, _>(ctx, txn, E::id(existing), Action::Update).await?;
            Action::Update
        }
        None => {
            access::check_may(ctx, ty, Action::Create).await?;
            access::check_sets(ctx, ty, Action::Create, fields).await?;
            Action::Create
        }
    };
    // References are checked once the caller may write at all (as for create and
    // update), so a caller without the right learns nothing from them.
    input.check_references(ctx).await?;
    let model = record::upsert::<E, _>(txn, &known, |m, c| input.write(m, &who, c)).await?;
    input.after_write(txn, &who, &model).await?;
    access::check_still_in_scope::<E, _>(ctx, txn, E::id(&model), action).await?;
    let outcome = match &existing {
        None => ImportOutcome::Created,
        Some(before) if E::version(before) == E::version(&model) => ImportOutcome::Unchanged,
        Some(_) => ImportOutcome::Updated,
    };
    Ok(Upserted {
        record: model,
        outcome,
    })
}

/// The ids of records the caller may read that a new row looks like (at most five).
async fn duplicates_of<E, I>(
    ctx: &Context<'_>,
    txn: &DatabaseTransaction,
    input: &I,
    masks: &access::Masks,
) -> ApiResult<Vec<ID>>
where
    E: Scoped,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    I: Importable<E>,
{
    let Some(looks_like) = input.looks_like(masks) else {
        return Ok(Vec::new());
    };
    let visible = access::visible_in::<E>(ctx, Action::Read).await?;
    let ids: Vec<String> = E::find()
        .select_only()
        .column_as(Expr::col("id"), "id")
        .filter(visible)
        .filter(Condition::all().add(looks_like))
        .filter(Expr::col("archived_at").is_null())
        .limit(MAX_DUPLICATES)
        .into_tuple()
        .all(txn)
        .await?;
    Ok(ids.into_iter().map(ID).collect())
}

/// Writes (or, with `dry_run`, tries and rolls back) `rows` as the caller, in one
/// transaction with a savepoint per row. A refused row is reported and rolled back alone;
/// an internal error (the database went away) fails the whole batch, which nothing of is
/// kept, so the batch can be sent again.
pub async fn import_batch<E, I>(
    ctx: &Context<'_>,
    rows: Vec<ImportRow<I>>,
    dry_run: bool,
    skip_duplicates: bool,
) -> ApiResult<ImportBatchResult>
where
    E: Scoped,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    I: Importable<E>,
{
    if rows.len() > MAX_BATCH_ROWS {
        return Err(ApiError::validation(
            "rows",
            format!(
                "has {} rows; a batch takes at most {MAX_BATCH_ROWS}",
                rows.len()
            ),
        ));
    }
    let ty = E::POLICY_TYPE;
    // A caller that may neither create nor update this type is refused whole, before
    // anything about the rows is looked at.
    if !access::may(ctx, ty, Action::Create).await? && !access::may(ctx, ty, Action::Update).await?
    {
        return Err(access::forbidden(ty));
    }
    let who = Principal::of(ctx);
    let masks = access::masks(&who, ty).await?;
    let txn = crate::db::begin_write(crate::graphql::db(ctx)?).await?;
    let mut results = Vec::with_capacity(rows.len());
    for row in rows {
        let savepoint = txn.begin().await?;
        let external_id = row.external_id.clone();
        match import_row::<E, I>(ctx, &savepoint, row, &masks, skip_duplicates).await {
            Ok((result, keep)) => {
                if keep {
                    savepoint.commit().await?;
                } else {
                    savepoint.rollback().await?;
                }
                results.push(result);
            }
            Err(error) => {
                savepoint.rollback().await?;
                if matches!(error, ApiError::Internal { .. }) {
                    return Err(error);
                }
                results.push(refused(external_id, &error));
            }
        }
    }
    if dry_run {
        // What a dry run would create has no id yet.
        for result in &mut results {
            if result.outcome == ImportOutcome::Created {
                result.id = None;
            }
        }
        txn.rollback().await?;
    } else {
        crate::db::commit(txn).await?;
    }
    Ok(ImportBatchResult {
        dry_run,
        rows: results,
    })
}

/// One row on its savepoint: its result, and whether to keep what it wrote.
async fn import_row<E, I>(
    ctx: &Context<'_>,
    savepoint: &DatabaseTransaction,
    row: ImportRow<I>,
    masks: &access::Masks,
    skip_duplicates: bool,
) -> ApiResult<(ImportRowResult, bool)>
where
    E: Scoped,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    I: Importable<E>,
{
    let ImportRow {
        external_id,
        mut input,
        references,
        mut fields,
    } = row;
    for reference in &references {
        input.resolve(ctx, savepoint, reference).await?;
        fields.push(reference.field.clone());
    }
    let who = Principal::of(ctx);
    let key = ExternalKey::of(&who, "externalId", &external_id)?;
    let creating = record::find_by_external_id::<E, _>(savepoint, &key)
        .await?
        .is_none();
    let duplicates = if creating {
        duplicates_of::<E, I>(ctx, savepoint, &input, masks).await?
    } else {
        Vec::new()
    };
    if creating && skip_duplicates && !duplicates.is_empty() {
        // Nothing is written, but the caller's right to create is still what decides
        // whether the row was acceptable at all.
        access::check_may(ctx, E::POLICY_TYPE, Action::Create).await?;
        return Ok((
            ImportRowResult {
                external_id,
                outcome: ImportOutcome::SkippedDuplicate,
                id: None,
                code: None,
                field: None,
                message: None,
                duplicates,
            },
            false,
        ));
    }
    let upserted = upsert_one::<E, I>(ctx, savepoint, &external_id, &input, &fields).await?;
    let id = E::id(&upserted.record).to_owned();
    Ok((
        ImportRowResult {
            external_id,
            outcome: upserted.outcome,
            id: Some(ID(id)),
            code: None,
            field: None,
            message: None,
            duplicates,
        },
        true,
    ))
}

fn refused(external_id: String, error: &ApiError) -> ImportRowResult {
    let field = match error {
        ApiError::Validation { field, .. } | ApiError::Duplicate { field } => Some(field.clone()),
        ApiError::Denied { field, .. } => field.clone(),
        _ => None,
    };
    ImportRowResult {
        external_id,
        outcome: ImportOutcome::Refused,
        id: None,
        code: Some(error.code().as_str().to_owned()),
        field,
        message: Some(error.message()),
        duplicates: Vec::new(),
    }
}

/// The input fields each row of the `rows` argument sets, as sent (an explicit `null`
/// counts), in the rows' order.
pub fn row_fields(ctx: &Context<'_>) -> ApiResult<Vec<Vec<String>>> {
    let arguments = ctx
        .field()
        .arguments()
        .map_err(|e| ApiError::validation("rows", &e.message))?;
    let rows = arguments
        .into_iter()
        .find(|(name, _)| name.as_str() == "rows")
        .map(|(_, value)| value);
    let Some(async_graphql::Value::List(rows)) = rows else {
        return Ok(Vec::new());
    };
    Ok(rows
        .into_iter()
        .map(|row| match row {
            async_graphql::Value::Object(mut row) => match row.shift_remove("input") {
                Some(async_graphql::Value::Object(input)) => {
                    input.keys().map(|k| k.to_string()).collect()
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        })
        .collect())
}

/// The bulk-upsert mutation of one record type: `import_operation!(AccountImportMutation,
/// account, AccountInput, AccountImportRow, import_accounts)`.
#[macro_export]
macro_rules! import_operation {
    ($mutation:ident, $module:ident, $input:ty, $row:ident, $name:ident) => {
        /// One row of a bulk upsert: the record's external id (in the caller's
        /// organisation), its fields, and references to other records by their external ids.
        #[derive(async_graphql::InputObject)]
        pub struct $row {
            pub external_id: String,
            pub input: $input,
            #[graphql(default)]
            pub references: Vec<$crate::import::ImportReference>,
        }

        #[derive(Default)]
        pub struct $mutation;

        #[async_graphql::Object]
        impl $mutation {
            /// Creates or updates up to 1000 records by external id in one transaction, each
            /// row as `upsert` would: a refused row is reported and written alone back, the
            /// others are kept. `dryRun` reports and keeps nothing; `skipDuplicates` leaves
            /// out new rows that look like records the caller can read.
            async fn $name(
                &self,
                ctx: &async_graphql::Context<'_>,
                rows: Vec<$row>,
                #[graphql(default)] dry_run: bool,
                #[graphql(default)] skip_duplicates: bool,
            ) -> async_graphql::Result<$crate::import::ImportBatchResult> {
                let fields = $crate::import::row_fields(ctx)?;
                let rows = rows
                    .into_iter()
                    .zip(fields.into_iter().chain(std::iter::repeat_with(Vec::new)))
                    .map(|(row, fields)| $crate::import::ImportRow {
                        external_id: row.external_id,
                        input: row.input,
                        references: row.references,
                        fields,
                    })
                    .collect();
                Ok($crate::import::import_batch::<$module::Entity, $input>(
                    ctx,
                    rows,
                    dry_run,
                    skip_duplicates,
                )
                .await?)
            }
        }
    };
}
