//! The import tables and their queries.

use crm_service_common::import::ImportOutcome;
use crm_service_common::{ApiError, ApiResult, clock};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, OnConflict, StringLen};
use sea_orm::{ActiveValue::Set, ConnectionTrait, ExprTrait, QueryOrder, QuerySelect};

use super::parse::ParsedRow;

crm_service_common::text_enum!(
    /// Where an import is: its rows staged (more parts may be added), a dry run going on or
    /// finished, the real run going on or finished, stopped by its owner, or failed (its
    /// owner can no longer act, or may not import this type at all).
    ImportState {
        Staged = "STAGED",
        Checking = "CHECKING",
        Checked = "CHECKED",
        Running = "RUNNING",
        Done = "DONE",
        Cancelled = "CANCELLED",
        Failed = "FAILED",
    }
);

pub mod import {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "imports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// The user or API key that started it: its rows are written as it, as it is when
        /// each batch is sent.
        pub owner: String,
        pub partner_id: Option<String>,
        pub record_type: String,
        pub format: String,
        pub name: Option<String>,
        pub state: super::ImportState,
        /// The current (or last) pass was a dry run.
        pub dry_run: bool,
        pub skip_duplicates: bool,
        pub row_count: i64,
        pub next_row: i64,
        pub processed: i64,
        pub created: i64,
        pub updated: i64,
        pub unchanged: i64,
        pub refused: i64,
        pub skipped: i64,
        pub duplicates: i64,
        pub last_error: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub finished_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod import_row {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "import_rows")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub import_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub number: i64,
        pub external_id: String,
        /// JSON: the row's `input` and `references`, as the batch sends them.
        pub data: String,
        pub outcome: Option<crm_service_common::import::ImportOutcome>,
        pub record_id: Option<String>,
        pub code: Option<String>,
        pub field: Option<String>,
        pub message: Option<String>,
        /// Comma-separated ids of records the row looks like.
        pub duplicates: Option<String>,
        pub refused_on_upload: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use import::Model as Import;
pub use import_row::Model as ImportRow;

/// The import `id` when `owner` started it (anyone else's reads as missing).
pub async fn owned<C: ConnectionTrait>(db: &C, id: &str, owner: &str) -> ApiResult<Import> {
    import::Entity::find_by_id(id)
        .filter(import::Column::Owner.eq(owner))
        .one(db)
        .await?
        .ok_or(ApiError::NotFound)
}

/// `owner`'s imports, newest first.
pub async fn of_owner<C: ConnectionTrait>(
    db: &C,
    owner: &str,
    limit: u64,
) -> ApiResult<Vec<Import>> {
    Ok(import::Entity::find()
        .filter(import::Column::Owner.eq(owner))
        .order_by_desc(import::Column::CreatedAt)
        .order_by_desc(import::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// Stages `rows` of `import` (rows refused on upload get their outcome at once).
pub async fn stage<C: ConnectionTrait>(
    db: &C,
    import: &str,
    rows: Vec<ParsedRow>,
) -> ApiResult<()> {
    // Bounded statements: SQLite takes at most 32766 parameters in one.
    for chunk in rows.chunks(500) {
        let models = chunk.iter().map(|row| {
            let refused = row.refused.as_ref();
            import_row::ActiveModel {
                import_id: Set(import.to_owned()),
                number: Set(row.number),
                external_id: Set(row.external_id.chars().take(255).collect()),
                data: Set(row.data.to_string()),
                outcome: Set(refused.map(|_| ImportOutcome::Refused)),
                record_id: Set(None),
                code: Set(refused.map(|_| "VALIDATION".to_owned())),
                field: Set(refused.map(|(field, _)| field.clone())),
                message: Set(refused.map(|(field, reason)| format!("{field} {reason}"))),
                duplicates: Set(None),
                refused_on_upload: Set(refused.is_some()),
            }
        });
        import_row::Entity::insert_many(models)
            .on_conflict(
                OnConflict::columns([import_row::Column::ImportId, import_row::Column::Number])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// The next rows of the current pass to send: at most `limit`, numbered from `from` on,
/// leaving out those refused on upload.
pub async fn next_rows<C: ConnectionTrait>(
    db: &C,
    import: &str,
    from: i64,
    limit: u64,
) -> ApiResult<Vec<ImportRow>> {
    Ok(import_row::Entity::find()
        .filter(import_row::Column::ImportId.eq(import))
        .filter(import_row::Column::Number.gte(from))
        .filter(import_row::Column::RefusedOnUpload.eq(false))
        .order_by_asc(import_row::Column::Number)
        .limit(limit)
        .all(db)
        .await?)
}

/// The highest row number staged so far (0: none).
pub async fn last_number<C: ConnectionTrait>(db: &C, import: &str) -> ApiResult<i64> {
    let last: Option<Option<i64>> = import_row::Entity::find()
        .select_only()
        .column_as(import_row::Column::Number.max(), "last")
        .filter(import_row::Column::ImportId.eq(import))
        .into_tuple()
        .one(db)
        .await?;
    Ok(last.flatten().unwrap_or(0))
}

/// One row's outcome, as the batch reported it.
#[derive(Clone, Debug)]
pub struct RowOutcome {
    pub number: i64,
    pub outcome: ImportOutcome,
    pub record_id: Option<String>,
    pub code: Option<String>,
    pub field: Option<String>,
    pub message: Option<String>,
    pub duplicates: Vec<String>,
}

/// Records a batch's outcomes in one statement (a `CASE` on the row number per column;
/// a batch is at most 500 rows, far below SQLite's parameter limit).
pub async fn record_outcomes<C: ConnectionTrait>(
    db: &C,
    import: &str,
    outcomes: &[RowOutcome],
) -> ApiResult<()> {
    use import_row::Column as R;
    use sea_orm::sea_query::{CaseStatement, SimpleExpr};
    if outcomes.is_empty() {
        return Ok(());
    }
    let by_row = |value: &dyn Fn(&RowOutcome) -> sea_orm::Value| -> SimpleExpr {
        let mut case = CaseStatement::new();
        for outcome in outcomes {
            case = case.case(
                Expr::col(R::Number).eq(outcome.number),
                Expr::val(value(outcome)),
            );
        }
        case.into()
    };
    import_row::Entity::update_many()
        .col_expr(R::Outcome, by_row(&|o| o.outcome.into()))
        .col_expr(R::RecordId, by_row(&|o| o.record_id.clone().into()))
        .col_expr(R::Code, by_row(&|o| o.code.clone().into()))
        .col_expr(R::Field, by_row(&|o| o.field.clone().into()))
        .col_expr(R::Message, by_row(&|o| o.message.clone().into()))
        .col_expr(
            R::Duplicates,
            by_row(&|o| {
                (!o.duplicates.is_empty())
                    .then(|| o.duplicates.join(","))
                    .into()
            }),
        )
        .filter(R::ImportId.eq(import))
        .filter(R::Number.is_in(outcomes.iter().map(|o| o.number)))
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets what the rows a finished run wrote said: they are records now (where erasure
/// and retention reach them); refused and skipped rows keep theirs for the report until
/// the import is deleted.
pub async fn forget_written<C: ConnectionTrait>(db: &C, import: &str) -> ApiResult<()> {
    use import_row::Column as R;
    import_row::Entity::update_many()
        .col_expr(R::Data, Expr::val("{}"))
        .filter(R::ImportId.eq(import))
        .filter(R::Outcome.is_in([
            ImportOutcome::Created,
            ImportOutcome::Updated,
            ImportOutcome::Unchanged,
        ]))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes an import and its rows.
pub async fn delete<C: ConnectionTrait>(db: &C, import: &str) -> ApiResult<()> {
    import_row::Entity::delete_many()
        .filter(import_row::Column::ImportId.eq(import))
        .exec(db)
        .await?;
    import::Entity::delete_by_id(import).exec(db).await?;
    Ok(())
}

/// Starts a pass over every row: outcomes of rows that are sent are cleared, the counts
/// start again from the rows refused on upload.
pub async fn start_pass<C: ConnectionTrait>(
    db: &C,
    found: Import,
    state: ImportState,
    dry_run: bool,
    skip_duplicates: bool,
) -> ApiResult<Import> {
    use import_row::Column as R;
    import_row::Entity::update_many()
        .col_expr(R::Outcome, Expr::val(Option::<ImportOutcome>::None))
        .col_expr(R::RecordId, Expr::val(Option::<String>::None))
        .col_expr(R::Code, Expr::val(Option::<String>::None))
        .col_expr(R::Field, Expr::val(Option::<String>::None))
        .col_expr(R::Message, Expr::val(Option::<String>::None))
        .col_expr(R::Duplicates, Expr::val(Option::<String>::None))
        .filter(R::ImportId.eq(found.id.as_str()))
        .filter(R::RefusedOnUpload.eq(false))
        .exec(db)
        .await?;
    let refused_on_upload = import_row::Entity::find()
        .filter(R::ImportId.eq(found.id.as_str()))
        .filter(R::RefusedOnUpload.eq(true))
        .count(db)
        .await? as i64;
    let now = clock::now();
    let mut row: import::ActiveModel = found.into();
    row.state = Set(state);
    row.dry_run = Set(dry_run);
    row.skip_duplicates = Set(skip_duplicates);
    row.next_row = Set(0);
    row.processed = Set(refused_on_upload);
    row.created = Set(0);
    row.updated = Set(0);
    row.unchanged = Set(0);
    row.refused = Set(refused_on_upload);
    row.skipped = Set(0);
    row.duplicates = Set(0);
    row.last_error = Set(None);
    row.updated_at = Set(now);
    row.finished_at = Set(None);
    Ok(row.update(db).await?)
}
