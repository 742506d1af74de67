//! What every subgraph's GraphQL layer shares: the limits and SDL export of a federation
//! subgraph, the batching record loader, list and fetch helpers, input helpers, and the
//! macros that declare the standard fields and operations of a record type. Output types
//! wrap entity models and choose, field by field, what clients see.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, MaybeUndefined, ObjectType, SchemaBuilder, SubscriptionType};
use sea_orm::{ActiveModelTrait, DatabaseConnection, Select};

use crate::access::{self, Action, Scoped};
use crate::pagination::{Ordering, Page, PageRequest, fetch_page, fetch_page_sorted_by};
use crate::principal::Principal;
use crate::record as store;
use crate::scope_plan;
use crate::{ApiError, ApiResult};

/// The limits every subgraph applies, so a single request stays bounded even when a
/// caller reaches the subgraph directly (the gateway has its own, stricter ones).
pub fn subgraph_limits<Q, M, S>(builder: SchemaBuilder<Q, M, S>) -> SchemaBuilder<Q, M, S>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    builder
        .enable_federation()
        .limit_depth(16)
        .limit_complexity(20_000)
        .limit_recursive_depth(32)
}

/// A subgraph's schema over its database, with [`subgraph_limits`].
pub fn subgraph_schema<Q, M>(
    db: DatabaseConnection,
) -> async_graphql::Schema<Q, M, async_graphql::EmptySubscription>
where
    Q: ObjectType + Default + 'static,
    M: ObjectType + Default + 'static,
{
    subgraph_schema_with(db, |builder| builder)
}

/// [`subgraph_schema`] with data of the service's own kept beside the database (what lives
/// as long as the service, per database).
pub fn subgraph_schema_with<Q, M>(
    db: DatabaseConnection,
    extend: impl FnOnce(
        async_graphql::SchemaBuilder<Q, M, async_graphql::EmptySubscription>,
    ) -> async_graphql::SchemaBuilder<Q, M, async_graphql::EmptySubscription>,
) -> async_graphql::Schema<Q, M, async_graphql::EmptySubscription>
where
    Q: ObjectType + Default + 'static,
    M: ObjectType + Default + 'static,
{
    extend(subgraph_limits(async_graphql::Schema::build(
        Q::default(),
        M::default(),
        async_graphql::EmptySubscription,
    )))
    .data(db)
    .finish()
}

/// The federation SDL of a subgraph's root types (committed under `schema/`).
pub fn subgraph_sdl<Q, M>() -> String
where
    Q: ObjectType + Default + 'static,
    M: ObjectType + Default + 'static,
{
    federation_sdl(
        &async_graphql::Schema::build(Q::default(), M::default(), async_graphql::EmptySubscription)
            .enable_federation()
            .finish(),
    )
}

/// The federation SDL a subgraph exports to composition (committed under `schema/`).
pub fn federation_sdl<Q, M, S>(schema: &async_graphql::Schema<Q, M, S>) -> String
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    schema.sdl_with_options(
        async_graphql::SDLExportOptions::new()
            .federation()
            .compose_directive(),
    )
}

/// An amount as a decimal string (`"1250.00"`) with its ISO 4217 currency.
/// The same value type in every subgraph, hence shareable.
#[derive(async_graphql::SimpleObject, Clone, Debug)]
#[graphql(shareable)]
pub struct MoneyAmount {
    pub amount: String,
    pub currency: String,
}

impl MoneyAmount {
    pub fn new(minor: i64, currency: &str) -> Self {
        let amount = crate::domain::Money::from_minor(minor, currency)
            .map(|m| m.amount())
            .unwrap_or_else(|| minor.to_string());
        Self {
            amount,
            currency: currency.to_owned(),
        }
    }
}

/// Adds a batching loader of the `E` records `who` may read to a request.
pub fn with_loader<E>(
    request: async_graphql::Request,
    db: &DatabaseConnection,
    who: &Principal,
) -> async_graphql::Request
where
    E: Scoped + 'static,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    request.data(DataLoader::new(
        RecordLoader::<E>::new(db, who),
        tokio::spawn,
    ))
}

pub fn db<'a>(ctx: &Context<'a>) -> ApiResult<&'a DatabaseConnection> {
    ctx.data::<DatabaseConnection>()
        .map_err(|e| ApiError::internal(e.message))
}

/// Loads the records of one type a caller may read by id, many keys in one statement: a
/// key the caller may not see loads nothing, exactly like a key that does not exist.
pub struct RecordLoader<E> {
    db: DatabaseConnection,
    who: Principal,
    entity: PhantomData<fn() -> E>,
}

impl<E> RecordLoader<E> {
    pub fn new(db: &DatabaseConnection, who: &Principal) -> Self {
        Self {
            db: db.clone(),
            who: who.clone(),
            entity: PhantomData,
        }
    }
}

impl<E> Loader<String> for RecordLoader<E>
where
    E: Scoped + 'static,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    type Value = E::Model;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, E::Model>, Self::Error> {
        let visible = access::visible::<E>(&self.who, Action::Read, access::now())
            .await
            .map_err(Arc::new)?;
        let rows = store::get_many_where::<E, _>(&self.db, keys, visible)
            .await
            .map_err(Arc::new)?;
        Ok(rows
            .into_iter()
            .map(|m| (E::id(&m).to_owned(), m))
            .collect())
    }
}

/// Loads one record through the request's loader (batched with its siblings).
pub async fn load<E>(ctx: &Context<'_>, id: &str) -> ApiResult<Option<E::Model>>
where
    E: Scoped + 'static,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let loader = ctx
        .data::<DataLoader<RecordLoader<E>>>()
        .map_err(|e| ApiError::internal(e.message))?;
    loader
        .load_one(id.to_owned())
        .await
        .map_err(|e| ApiError::internal(e.message()))
}

/// Runs one page of a list query over the rows the caller may read (its `totalCount`
/// counts those rows only).
pub async fn list<E>(
    ctx: &Context<'_>,
    select: Select<E>,
    ordering: Ordering<E>,
    first: Option<i32>,
    after: Option<String>,
) -> ApiResult<Page<E::Model>>
where
    E: Scoped,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    use sea_orm::QueryFilter;
    let request = PageRequest::parse(first, after.as_deref())?;
    let db = db(ctx)?;
    let who = Principal::of(ctx);
    let at = access::now();
    let decision = access::decide(&who, E::POLICY_TYPE, Action::Read).await?;
    // A scope kept with this ordering's sort key is walked in that order; a sparse scope's
    // own ids stand for its condition (the read matrix reads every list each way and
    // compares).
    if let Some(walk) = scope_plan::ordered::<E>(&decision, &who, at, ordering.name) {
        let (select, sort) = scope_plan::walk(select, walk);
        return fetch_page_sorted_by(db, select, &ordering, &request, sort).await;
    }
    let select = match scope_plan::sparse_ids::<E>(db, &decision, &who, at).await? {
        Some(ids) => scope_plan::by_ids(db.get_database_backend(), select, ids),
        None => select.filter(access::condition_of::<E>(&decision, &who, at).await?),
    };
    let mut page = fetch_page(db, select, &ordering, &request).await?;
    page.total.estimable = decision.grants_all();
    Ok(page)
}

/// Makes sure a referenced record of this service exists, is not archived and is one the
/// caller may read (a record it may not see is answered as one that does not exist).
pub async fn ensure_exists<E>(ctx: &Context<'_>, field: &str, id: &str) -> ApiResult<()>
where
    E: Scoped,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    match get_optional::<E>(ctx, id).await? {
        Some(model) if E::is_archived(&model) => {
            Err(ApiError::validation(field, "refers to an archived record"))
        }
        Some(_) => Ok(()),
        None => Err(ApiError::validation(
            field,
            "refers to a record that does not exist",
        )),
    }
}

/// A required value: present, or an error when creating (updates may leave it out).
pub fn required<'a, T>(
    creating: bool,
    field: &str,
    value: &'a Option<T>,
) -> ApiResult<Option<&'a T>> {
    match value {
        Some(v) => Ok(Some(v)),
        None if creating => Err(ApiError::validation(field, "is required")),
        None => Ok(None),
    }
}

/// An optional column from a nullable input: left alone when undefined, cleared by `null`,
/// validated and set otherwise.
pub fn optional<T, V>(
    target: &mut sea_orm::ActiveValue<Option<V>>,
    value: &MaybeUndefined<T>,
    parse: impl Fn(&T) -> ApiResult<V>,
) -> ApiResult<()>
where
    V: PartialEq + Clone,
    Option<V>: Into<sea_orm::Value>,
    sea_orm::Value: From<Option<V>>,
{
    match value {
        MaybeUndefined::Undefined => {}
        MaybeUndefined::Null => store::set(target, None),
        MaybeUndefined::Value(v) => store::set(target, Some(parse(v)?)),
    }
    Ok(())
}

/// Declares an `XOrderField` enum and `XOrder` input and turns them into an [`Ordering`].
/// The default ordering is `default = Field` (ascending) or `default = Field Desc`.
#[macro_export]
macro_rules! ordering {
    ($input:ident, $field_enum:ident, $module:ident, default = $default:ident,
     { $($variant:ident => $column:ident . $attr:ident : $kind:ident),+ $(,)? }) => {
        $crate::ordering!($input, $field_enum, $module, default = $default Asc, {
            $($variant => $column . $attr : $kind),+
        });
    };
    ($input:ident, $field_enum:ident, $module:ident, default = $default:ident $direction:ident,
     { $($variant:ident => $column:ident . $attr:ident : $kind:ident),+ $(,)? }) => {
        #[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq)]
        pub enum $field_enum { $($variant),+ }

        #[derive(async_graphql::InputObject, Clone, Debug)]
        pub struct $input {
            pub field: $field_enum,
            #[graphql(default)]
            pub direction: $crate::pagination::SortDirection,
        }

        impl $input {
            pub fn ordering(order: Option<Self>) -> $crate::pagination::Ordering<$module::Entity> {
                use $crate::pagination::{Ordering, SortKey};
                let order = order.unwrap_or(Self {
                    field: $field_enum::$default,
                    direction: $crate::pagination::SortDirection::$direction,
                });
                match order.field {
                    $( $field_enum::$variant => Ordering {
                        name: stringify!($variant),
                        column: $module::Column::$column,
                        id_column: $module::Column::Id,
                        direction: order.direction,
                        key_of: |m| SortKey::$kind(m.$attr.clone().into()),
                        id_of: |m| m.id.clone(),
                    }, )+
                }
            }
        }
    };
}

/// Explains the caller's access to the record `id` whose model is `M` (the `access` field
/// every record type has).
pub async fn explain_record<M>(
    ctx: &Context<'_>,
    _model: &M,
    id: &str,
) -> ApiResult<access::AccessExplanation>
where
    M: sea_orm::ModelTrait,
    M::Entity: Scoped,
    <M::Entity as sea_orm::EntityTrait>::ActiveModel: ActiveModelTrait<Entity = M::Entity> + Send,
{
    access::explain::<M::Entity>(db(ctx)?, &Principal::of(ctx), id, access::now()).await
}

/// What the caller may do with a record (`may { update archive }`).
pub async fn may_on_record<M>(
    ctx: &Context<'_>,
    _model: &M,
    id: &str,
) -> ApiResult<access::RecordMay>
where
    M: sea_orm::ModelTrait,
    M::Entity: Scoped,
    <M::Entity as sea_orm::EntityTrait>::ActiveModel: ActiveModelTrait<Entity = M::Entity> + Send,
{
    access::may_on::<M::Entity, _>(ctx, db(ctx)?, id).await
}

/// Declares the `#[Object]` of a record type: the standard fields every record has, then
/// the type's own. (The fields must be in the tokens the `Object` macro sees, hence one
/// macro around the whole impl.)
#[macro_export]
macro_rules! record_object {
    ($node:ident { $($body:tt)* }) => {
        // Every field runs the read log's guard first: a partner's read of this record
        // is noted wherever the object appears (`crate::audit::reads`).
        #[async_graphql::Object(guard = $crate::audit::reads::Seen::of(&self.0))]
        impl $node {
            async fn id(&self) -> async_graphql::ID {
                async_graphql::ID(self.0.id.clone())
            }
            /// The integrator's own id for this record, unique per type within the
            /// organisation that wrote it. A partner reads only its own organisation's.
            async fn external_id(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<Option<&str>> {
                Ok($crate::access::unmasked(ctx, &self.0, "externalId", self.0.external_id.as_deref())
                    .await?
                    .flatten())
            }
            /// Increases with every change; send it back with an update. Null where the
            /// policy masks the record's history from the caller (a supplier reading an
            /// account or an order: a change it can't see must not show as a new version).
            async fn version(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<Option<i32>> {
                Ok($crate::access::unmasked(ctx, &self.0, "version", self.0.version).await?)
            }
            /// Null where the policy masks it from the caller.
            async fn created_at(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<Option<chrono::DateTime<chrono::Utc>>> {
                Ok($crate::access::unmasked(ctx, &self.0, "createdAt", self.0.created_at).await?)
            }
            /// Null where the policy masks it from the caller.
            async fn updated_at(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<Option<chrono::DateTime<chrono::Utc>>> {
                Ok($crate::access::unmasked(ctx, &self.0, "updatedAt", self.0.updated_at).await?)
            }
            /// Set when the record was archived; archived records are hidden from lists
            /// unless `filter.includeArchived` is true.
            async fn archived_at(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<Option<chrono::DateTime<chrono::Utc>>> {
                Ok($crate::access::unmasked(ctx, &self.0, "archivedAt", self.0.archived_at)
                    .await?
                    .flatten())
            }
            /// Why you can see this record: the policy rules whose scope holds it, and the
            /// facts behind them (for accounts, the share causes).
            async fn access(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<$crate::access::AccessExplanation> {
                Ok($crate::graphql::explain_record(ctx, &self.0, &self.0.id).await?)
            }
            /// What you may do with this record, from the policy's write scopes: the web
            /// UI offers only these actions.
            async fn may(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<$crate::access::RecordMay> {
                Ok($crate::graphql::may_on_record(ctx, &self.0, &self.0.id).await?)
            }
            /// Who changed which of this record's fields, from what to what, newest first
            /// (at most `first`, 1–200): the fields you may read only, and nothing where
            /// the policy masks the record's version from you. Empty for types the audit
            /// log does not record (notifications).
            async fn history(
                &self,
                ctx: &async_graphql::Context<'_>,
                #[graphql(default = 50)] first: i32,
            ) -> async_graphql::Result<Vec<$crate::audit::graphql::FieldChange>> {
                Ok($crate::audit::graphql::history(ctx, &self.0, first).await?)
            }

            $($body)*
        }
    };
}

/// Applies the filter every list shares: hide archived records unless asked.
pub fn unarchived<E: sea_orm::EntityTrait>(select: Select<E>, include_archived: bool) -> Select<E> {
    use sea_orm::{ExprTrait, QueryFilter};
    if include_archived {
        select
    } else {
        select.filter(sea_orm::sea_query::Expr::col("archived_at").is_null())
    }
}

/// Fetches one record by id for a `x(id)` query: `None` when there is none or the caller
/// may not read it (the two answers are the same).
pub async fn get_optional<E>(ctx: &Context<'_>, id: &str) -> ApiResult<Option<E::Model>>
where
    E: Scoped,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let visible = access::visible_in::<E>(ctx, Action::Read).await?;
    Ok(
        store::get_many_where::<E, _>(db(ctx)?, &[id.to_owned()], visible)
            .await?
            .into_iter()
            .next(),
    )
}

/// Validation and reference checks of one record type's input.
pub trait RecordInput<E: sea_orm::EntityTrait> {
    /// Validates the input and sets the changed columns; `creating` makes required fields
    /// required.
    fn apply(&self, model: &mut E::ActiveModel, creating: bool) -> ApiResult<()>;
    /// Checks that referenced records of this service exist.
    fn check_references(
        &self,
        ctx: &Context<'_>,
    ) -> impl std::future::Future<Output = ApiResult<()>> + Send;
    /// Sets the fields that come from the caller, never from input: authorship and the
    /// writer's organisation. Most types have none.
    fn stamp(&self, model: &mut E::ActiveModel, who: &Principal, creating: bool) {
        let _ = (model, who, creating);
    }
    /// Runs after the record is written, in the write's transaction, with the record as
    /// written: for what the input says beyond the record's own columns (a consent
    /// statement's source and evidence, kept in its history). Most types have nothing.
    fn after_write(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        who: &Principal,
        record: &E::Model,
    ) -> impl std::future::Future<Output = ApiResult<()>> + Send {
        let _ = (txn, who, record);
        std::future::ready(Ok(()))
    }
    /// [`apply`](Self::apply), then [`stamp`](Self::stamp): what every write sets.
    fn write(&self, model: &mut E::ActiveModel, who: &Principal, creating: bool) -> ApiResult<()> {
        self.apply(model, creating)?;
        self.stamp(model, who, creating);
        Ok(())
    }
}

/// The list, single-fetch and write operations every record type has.
#[macro_export]
macro_rules! record_operations {
    (
        $query:ident, $mutation:ident, $node:ident, $module:ident, $input:ty,
        list: $plural:ident($filter:ty, $order:ty) -> $connection:ty, one: $singular:ident,
        mutations: $create:ident, $update:ident, $upsert:ident, $archive:ident
    ) => {
        #[derive(Default)]
        pub struct $query;

        #[async_graphql::Object]
        impl $query {
            /// A page of records (`first` ≤ 200, default 50) matching `filter`, in `orderBy` order.
            async fn $plural(
                &self,
                ctx: &async_graphql::Context<'_>,
                first: Option<i32>,
                after: Option<String>,
                filter: Option<$filter>,
                order_by: Option<$order>,
            ) -> async_graphql::Result<$connection> {
                use $crate::graphql::RecordFilter;
                let explicit = order_by.is_some();
                let ordering = <$order>::ordering(order_by);
                let who = $crate::principal::Principal::of(ctx);
                $crate::access::check_ordering(
                    &who,
                    <$module::Entity as $crate::access::Scoped>::POLICY_TYPE,
                    ordering.name,
                )
                .await?;
                let page = filter
                    .unwrap_or_default()
                    .restrict(&who)
                    .await?
                    .within_reach(&who)
                    .await?
                    .page(ctx, ordering, explicit, first, after)
                    .await?;
                Ok(page.map($node).into())
            }

            /// One record by id, or null when there is none.
            async fn $singular(
                &self,
                ctx: &async_graphql::Context<'_>,
                id: async_graphql::ID,
            ) -> async_graphql::Result<Option<$node>> {
                Ok($crate::graphql::get_optional::<$module::Entity>(ctx, &id)
                    .await?
                    .map($node))
            }
        }

        #[derive(Default)]
        pub struct $mutation;

        #[async_graphql::Object]
        impl $mutation {
            /// Creates a record; `externalId` optionally records the integrator's own id.
            async fn $create(
                &self,
                ctx: &async_graphql::Context<'_>,
                input: $input,
                external_id: Option<String>,
            ) -> async_graphql::Result<$node> {
                use $crate::access::{self, Action, Scoped};
                use $crate::graphql::RecordInput;
                let ty = <$module::Entity as Scoped>::POLICY_TYPE;
                access::check_may(ctx, ty, Action::Create).await?;
                access::check_fields(ctx, ty, Action::Create).await?;
                input.check_references(ctx).await?;
                let who = $crate::principal::Principal::of(ctx);
                let external_id = external_id
                    .map(|v| $crate::record::ExternalKey::of(&who, "externalId", &v))
                    .transpose()?;
                let txn = $crate::db::begin_write($crate::graphql::db(ctx)?).await?;
                let model =
                    $crate::record::create::<$module::Entity, _>(&txn, external_id, |m, c| {
                        input.write(m, &who, c)
                    })
                    .await?;
                input.after_write(&txn, &who, &model).await?;
                access::check_still_in_scope::<$module::Entity, _>(
                    ctx,
                    &txn,
                    &model.id,
                    Action::Create,
                )
                .await?;
                $crate::db::commit(txn).await?;
                Ok($node(model))
            }

            /// Changes a record; `version` is the version the change was based on, and a
            /// record that moved on since answers `VERSION_CONFLICT`.
            async fn $update(
                &self,
                ctx: &async_graphql::Context<'_>,
                id: async_graphql::ID,
                version: i32,
                input: $input,
            ) -> async_graphql::Result<$node> {
                use $crate::access::{self, Action, Scoped};
                use $crate::graphql::RecordInput;
                let ty = <$module::Entity as Scoped>::POLICY_TYPE;
                access::check_may(ctx, ty, Action::Update).await?;
                access::check_fields(ctx, ty, Action::Update).await?;
                input.check_references(ctx).await?;
                let who = $crate::principal::Principal::of(ctx);
                let txn = $crate::db::begin_write($crate::graphql::db(ctx)?).await?;
                access::check_may_change::<$module::Entity, _>(ctx, &txn, &id, Action::Update)
                    .await?;
                let model =
                    $crate::record::update::<$module::Entity, _>(&txn, &id, version, |m, c| {
                        input.write(m, &who, c)
                    })
                    .await?;
                input.after_write(&txn, &who, &model).await?;
                access::check_still_in_scope::<$module::Entity, _>(
                    ctx,
                    &txn,
                    &model.id,
                    Action::Update,
                )
                .await?;
                $crate::db::commit(txn).await?;
                Ok($node(model))
            }

            /// Creates the record known by `externalId`, or updates it; sending the same
            /// input again changes nothing (the version stays).
            async fn $upsert(
                &self,
                ctx: &async_graphql::Context<'_>,
                external_id: String,
                input: $input,
            ) -> async_graphql::Result<$node> {
                let fields = $crate::access::input_fields(ctx)?;
                let txn = $crate::db::begin_write($crate::graphql::db(ctx)?).await?;
                let upserted = $crate::import::upsert_one::<$module::Entity, $input>(
                    ctx,
                    &txn,
                    &external_id,
                    &input,
                    &fields,
                )
                .await?;
                $crate::db::commit(txn).await?;
                Ok($node(upserted.record))
            }

            /// Archives a record: it stays readable by id but leaves lists.
            async fn $archive(
                &self,
                ctx: &async_graphql::Context<'_>,
                id: async_graphql::ID,
                version: i32,
            ) -> async_graphql::Result<$node> {
                use $crate::access::{self, Action, Scoped};
                access::check_may(
                    ctx,
                    <$module::Entity as Scoped>::POLICY_TYPE,
                    Action::Archive,
                )
                .await?;
                let txn = $crate::db::begin_write($crate::graphql::db(ctx)?).await?;
                access::check_may_change::<$module::Entity, _>(ctx, &txn, &id, Action::Archive)
                    .await?;
                let model =
                    $crate::record::archive::<$module::Entity, _>(&txn, &id, version).await?;
                $crate::db::commit(txn).await?;
                Ok($node(model))
            }
        }
    };
}

/// A list filter of one record type: how it narrows the rows and, by default, how a page
/// of them is read. A filter with its own way of ranking (full-text relevance) overrides
/// `page`.
pub trait RecordFilter<E>: Default + Send + Sized
where
    E: Scoped,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    fn select(self) -> Select<E>;

    /// The filter as `who` may use it: a filter or search on a field hidden from the
    /// caller is refused or narrowed here (field rules). Orderings are checked against
    /// the masks for every list alike (`access::check_ordering`).
    fn restrict(
        self,
        who: &Principal,
    ) -> impl std::future::Future<Output = ApiResult<Self>> + Send {
        let _ = who;
        async move { Ok(self) }
    }

    /// Narrows the parts of the filter that reach into child rows (an order's lines) to
    /// the children `who` may read: rows must never be selected, counted or grouped by
    /// child rows the caller cannot see. Filters without such parts keep the default.
    fn within_reach(
        self,
        who: &Principal,
    ) -> impl std::future::Future<Output = ApiResult<Self>> + Send {
        let _ = who;
        async move { Ok(self) }
    }

    /// One page in `ordering` (`explicit`: the client asked for that ordering, rather
    /// than getting the type's default).
    fn page<'a>(
        self,
        ctx: &'a Context<'_>,
        ordering: Ordering<E>,
        explicit: bool,
        first: Option<i32>,
        after: Option<String>,
    ) -> impl std::future::Future<Output = ApiResult<Page<E::Model>>> + Send + 'a
    where
        Self: 'a,
    {
        let _ = explicit;
        let select = self.select();
        async move { list(ctx, select, ordering, first, after).await }
    }
}

/// The two shapes every list filter is made of.
pub trait FilterExt<E: sea_orm::EntityTrait>: Sized {
    /// `column = value` when a value was given.
    fn eq_if<V: Into<sea_orm::Value>>(self, column: E::Column, value: Option<V>) -> Self;
    /// Case-insensitive match of every word of `text` (up to 8) in one of `columns`, when
    /// non-blank text was given ("anna smith" finds first name Anna, last name Smith).
    fn text_search(self, text: Option<&str>, columns: &[E::Column]) -> Self;
}

impl<E: sea_orm::EntityTrait> FilterExt<E> for Select<E> {
    fn eq_if<V: Into<sea_orm::Value>>(self, column: E::Column, value: Option<V>) -> Self {
        use sea_orm::{ExprTrait, QueryFilter};
        match value {
            Some(v) => self.filter(sea_orm::sea_query::Expr::col(column).eq(v.into())),
            None => self,
        }
    }

    fn text_search(self, text: Option<&str>, columns: &[E::Column]) -> Self {
        use sea_orm::QueryFilter;
        match text.and_then(|text| crate::search::matches(columns, text)) {
            Some(condition) => self.filter(condition),
            None => self,
        }
    }
}
