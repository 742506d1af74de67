//! sea-orm queries shared by every record type of every service: fetch by id or external
//! id, insert, optimistic-locked update, archive and idempotent upsert. Per-type list
//! filters live next to each type's GraphQL inputs and end up in `graphql::list`.
//!
//! A record type may publish domain events ([`Record::events`]); `create`, `update`,
//! `upsert` and `archive` append them to the outbox on the same connection, so inside a
//! transaction the event is written if and only if the change commits.

use chrono::{DateTime, Utc};

use crate::events::{NewEvent, outbox};
use crate::{ApiError, ApiResult};
use sea_orm::ExprTrait;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
};

/// The current time at the precision both databases keep (microseconds), so a value read
/// back equals the value written: the process's clock.
pub use crate::clock::now;

/// What every record table has in common (see `migrations::util::record_table`).
pub trait Record:
    EntityTrait<Model: IntoActiveModel<Self::ActiveModel> + Clone + Send + Sync>
where
    Self::ActiveModel: ActiveModelTrait<Entity = Self> + Send,
{
    /// The id prefix, e.g. `acc`.
    const PREFIX: &'static str;
    /// Whether the audit log records this type's field changes (notifications, say, are
    /// messages about changes recorded elsewhere).
    const AUDITED: bool = true;
    fn id(model: &Self::Model) -> &str;
    fn version(model: &Self::Model) -> i32;
    fn is_archived(model: &Self::Model) -> bool;
    /// The organisation that wrote the record's external id (empty: the company).
    fn external_namespace(model: &Self::Model) -> &str;
    /// A new active model with the common columns set and everything else unset.
    fn new_active(
        id: String,
        external: Option<ExternalKey>,
        now: DateTime<Utc>,
    ) -> Self::ActiveModel;
    /// Marks the record archived.
    fn archive_active(now: DateTime<Utc>) -> Self::ActiveModel;
    /// The domain events that other services must learn about when a record goes from
    /// `before` (`None`: it was just created) to `after`. Most types publish none.
    fn events(before: Option<&Self::Model>, after: &Self::Model) -> Vec<NewEvent> {
        let _ = (before, after);
        Vec::new()
    }
    /// Runs after a create, update, upsert or archive that changed something, on the same
    /// connection (inside the write's transaction): by default it appends [`Record::events`]
    /// to the outbox. A type whose change touches its aggregate (an order line updating its
    /// order's total, say) does that here; an error rolls the whole write back.
    fn after_write<C: ConnectionTrait>(
        db: &C,
        before: Option<&Self::Model>,
        after: &Self::Model,
    ) -> impl std::future::Future<Output = ApiResult<()>> + Send {
        let events = Self::events(before, after);
        async move { outbox::append(db, events).await }
    }
}

/// Implements [`Record`] for an entity module whose table has the common columns
/// (`migrations::util::record_table`): `record!(account, "acc")`, optionally with
/// `events = path::to::fn` publishing domain events.
#[macro_export]
macro_rules! record {
    ($module:ident, $prefix:literal $(, events = $events:path)? $(, after_write = $hook:path)? $(, audited = $audited:literal)?) => {
        impl $crate::record::Record for $module::Entity {
            const PREFIX: &'static str = $prefix;
            $(const AUDITED: bool = $audited;)?
            fn id(model: &$module::Model) -> &str {
                &model.id
            }
            fn version(model: &$module::Model) -> i32 {
                model.version
            }
            fn is_archived(model: &$module::Model) -> bool {
                model.archived_at.is_some()
            }
            fn external_namespace(model: &$module::Model) -> &str {
                &model.external_namespace
            }
            fn new_active(
                id: String,
                external: Option<$crate::record::ExternalKey>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $module::ActiveModel {
                use sea_orm::ActiveValue::Set;
                let (external_namespace, external_id) = match external {
                    Some(key) => (key.namespace, Some(key.id)),
                    None => (String::new(), None),
                };
                $module::ActiveModel {
                    id: Set(id),
                    external_id: Set(external_id),
                    external_namespace: Set(external_namespace),
                    version: Set(1),
                    created_at: Set(now),
                    updated_at: Set(now),
                    archived_at: Set(None),
                    ..Default::default()
                }
            }
            fn archive_active(now: chrono::DateTime<chrono::Utc>) -> $module::ActiveModel {
                $module::ActiveModel {
                    archived_at: sea_orm::ActiveValue::Set(Some(now)),
                    ..Default::default()
                }
            }
            $(
            fn events(
                before: Option<&$module::Model>,
                after: &$module::Model,
            ) -> Vec<$crate::events::NewEvent> {
                $events(before, after)
            }
            )?
            $(
            fn after_write<C: sea_orm::ConnectionTrait>(
                db: &C,
                before: Option<&$module::Model>,
                after: &$module::Model,
            ) -> impl std::future::Future<Output = $crate::ApiResult<()>> + Send {
                // The hook adds to what a write does; the type's events still go out.
                async move {
                    $crate::events::outbox::append(
                        db,
                        <$module::Entity as $crate::record::Record>::events(before, after),
                    )
                    .await?;
                    $hook(db, before, after).await
                }
            }
            )?
        }
    };
}

/// An integrator's own id for a record, within the namespace of the organisation that
/// wrote it (`external_namespace`: a partner's id, empty for the company and its keys). Two
/// organisations may use the same id for different records; neither can learn of the
/// other's through a duplicate or a look-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalKey {
    pub namespace: String,
    pub id: String,
}

impl ExternalKey {
    /// `value` (validated, as the input field `field`) in `who`'s namespace.
    pub fn of(who: &crate::principal::Principal, field: &str, value: &str) -> ApiResult<Self> {
        Ok(Self {
            namespace: namespace_of(who).to_owned(),
            id: crate::domain::external_id(field, value)?,
        })
    }
}

/// The external-id namespace of `who`: its partner's id, or empty for the company.
pub fn namespace_of(who: &crate::principal::Principal) -> &str {
    who.partner().unwrap_or_default()
}

fn id_is(id: &str) -> sea_orm::sea_query::SimpleExpr {
    Expr::col("id").eq(id)
}

/// Fetches one record by id, archived or not.
pub async fn get<E: Record, C: ConnectionTrait>(db: &C, id: &str) -> ApiResult<E::Model>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    E::find()
        .filter(id_is(id))
        .one(db)
        .await?
        .ok_or(ApiError::NotFound)
}

/// Fetches many records by id in one statement (archived ones included: a reference to an
/// archived record still resolves).
pub async fn get_many<E: Record, C: ConnectionTrait>(
    db: &C,
    ids: &[String],
) -> ApiResult<Vec<E::Model>>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    get_many_where::<E, C>(db, ids, sea_orm::sea_query::Condition::all()).await
}

/// Fetches the records among `ids` that meet `condition` (the caller's visibility), in one
/// statement.
pub async fn get_many_where<E: Record, C: ConnectionTrait>(
    db: &C,
    ids: &[String],
    condition: sea_orm::sea_query::Condition,
) -> ApiResult<Vec<E::Model>>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(E::find()
        .filter(Expr::col("id").is_in(ids.iter().cloned()))
        .filter(condition)
        .all(db)
        .await?)
}

/// The record known by `key` in its namespace (never one of another organisation's).
pub async fn find_by_external_id<E: Record, C: ConnectionTrait>(
    db: &C,
    key: &ExternalKey,
) -> ApiResult<Option<E::Model>>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    Ok(E::find()
        .filter(Expr::col("external_namespace").eq(key.namespace.as_str()))
        .filter(Expr::col("external_id").eq(key.id.as_str()))
        .one(db)
        .await?)
}

/// Inserts a fully built active model and returns the stored row.
pub async fn insert<E: Record, C: ConnectionTrait>(
    db: &C,
    model: E::ActiveModel,
) -> ApiResult<E::Model>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let id = match model.get_primary_key_value() {
        Some(sea_orm::sea_query::ValueTuple::One(sea_orm::Value::String(Some(id)))) => {
            id.to_string()
        }
        _ => return Err(ApiError::internal("insert without an id")),
    };
    E::insert(model).exec_without_returning(db).await?;
    get::<E, C>(db, &id).await
}

/// Applies `changes` only if the record is still at `expected_version`; bumps the version.
/// This is the raw write: it publishes no events (callers that use it directly publish
/// their own with [`publish`] or `outbox::append`).
/// A record that moved on answers `VERSION_CONFLICT` with its current version, so no update
/// is ever lost silently.
pub async fn update_versioned<E: Record, C: ConnectionTrait>(
    db: &C,
    id: &str,
    expected_version: i32,
    changes: E::ActiveModel,
) -> ApiResult<E::Model>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let result = E::update_many()
        .set(changes)
        .col_expr("version", Expr::col("version").add(1))
        .col_expr("updated_at", Expr::val(now()))
        .filter(id_is(id))
        .filter(Expr::col("version").eq(expected_version))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        let current = get::<E, C>(db, id).await?;
        return Err(ApiError::VersionConflict {
            current_version: E::version(&current),
        });
    }
    get::<E, C>(db, id).await
}

/// Archives a record (records are never deleted); archiving twice is harmless.
pub async fn archive<E: Record, C: ConnectionTrait>(
    db: &C,
    id: &str,
    expected_version: i32,
) -> ApiResult<E::Model>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let before = get::<E, C>(db, id).await?;
    let after =
        update_versioned::<E, C>(db, id, expected_version, E::archive_active(now())).await?;
    publish::<E, C>(db, Some(&before), &after).await?;
    Ok(after)
}

/// Records one change in the audit log and runs [`Record::after_write`] for it, on the
/// same connection (so in the same transaction as the change when there is one).
pub async fn publish<E: Record, C: ConnectionTrait>(
    db: &C,
    before: Option<&E::Model>,
    after: &E::Model,
) -> ApiResult<()>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    crate::audit::record_write::<E, C>(db, before, after).await?;
    E::after_write(db, before, after).await
}

/// Creates a record from `apply` on a fresh model, optionally under an external id.
pub async fn create<E: Record, C: ConnectionTrait>(
    db: &C,
    external_id: Option<ExternalKey>,
    apply: impl Fn(&mut E::ActiveModel, bool) -> ApiResult<()>,
) -> ApiResult<E::Model>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let mut model = E::new_active(crate::domain::new_id(E::PREFIX), external_id, now());
    apply(&mut model, true)?;
    let created = insert::<E, C>(db, model).await?;
    publish::<E, C>(db, None, &created).await?;
    Ok(created)
}

/// Updates a record by id from `apply`, checked against `expected_version`. An update that
/// changes nothing leaves the version where it was.
pub async fn update<E: Record, C: ConnectionTrait>(
    db: &C,
    id: &str,
    expected_version: i32,
    apply: impl Fn(&mut E::ActiveModel, bool) -> ApiResult<()>,
) -> ApiResult<E::Model>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let current = get::<E, C>(db, id).await?;
    if E::version(&current) != expected_version {
        return Err(ApiError::VersionConflict {
            current_version: E::version(&current),
        });
    }
    let mut model = current.clone().into_active_model();
    apply(&mut model, false)?;
    if !model.is_changed() {
        return Ok(current);
    }
    let updated = update_versioned::<E, C>(db, id, expected_version, model).await?;
    publish::<E, C>(db, Some(&current), &updated).await?;
    Ok(updated)
}

/// Creates or updates the record an integrator knows by `external_id`. Sending the same
/// input twice leaves one record at the same version: the second call changes nothing.
pub async fn upsert<E: Record, C: ConnectionTrait>(
    db: &C,
    external_id: &ExternalKey,
    apply: impl Fn(&mut E::ActiveModel, bool) -> ApiResult<()>,
) -> ApiResult<E::Model>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    for _attempt in 0..2 {
        if let Some(existing) = find_by_external_id::<E, C>(db, external_id).await? {
            let mut model = existing.clone().into_active_model();
            apply(&mut model, false)?;
            if !model.is_changed() {
                return Ok(existing);
            }
            let updated =
                update_versioned::<E, C>(db, E::id(&existing), E::version(&existing), model)
                    .await?;
            publish::<E, C>(db, Some(&existing), &updated).await?;
            return Ok(updated);
        }
        match create::<E, C>(db, Some(external_id.clone()), &apply).await {
            // Another writer inserted the same external id between our look-up and insert:
            // go round once more and update theirs.
            Err(ApiError::Duplicate { .. }) => continue,
            other => return other,
        }
    }
    Err(ApiError::Duplicate {
        field: "externalId".into(),
    })
}

/// Sets `target` only when the value differs, so unchanged input does not bump versions.
pub fn set<T>(target: &mut sea_orm::ActiveValue<T>, value: T)
where
    T: Into<sea_orm::Value> + PartialEq + Clone,
    sea_orm::Value: From<T>,
{
    let same = matches!(target, sea_orm::ActiveValue::Set(v) | sea_orm::ActiveValue::Unchanged(v) if *v == value);
    if !same {
        *target = Set(value);
    }
}

/// The value a column of an active model holds: the one just set, else the one loaded.
pub fn current<T>(value: &sea_orm::ActiveValue<T>) -> Option<T>
where
    T: Into<sea_orm::Value> + Clone,
{
    match value {
        sea_orm::ActiveValue::Set(v) | sea_orm::ActiveValue::Unchanged(v) => Some(v.clone()),
        sea_orm::ActiveValue::NotSet => None,
    }
}

/// Moves a status column to `to` through its state machine (from the value it holds).
pub fn transition<S>(target: &mut sea_orm::ActiveValue<S>, to: S) -> ApiResult<()>
where
    S: crate::domain::Lifecycle + Into<sea_orm::Value>,
    sea_orm::Value: From<S>,
{
    let from = current(target).unwrap_or(to);
    set(target, from.transition(to)?);
    Ok(())
}
