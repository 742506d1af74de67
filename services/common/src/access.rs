//! Authorization inside a service: the one way a data path learns which rows of a type a
//! caller may read or write.
//!
//! The policy (`crm_policies`) answers, per role and domain, which **scopes** of a type the
//! caller may act on; each record type turns a scope into a SQL condition on its own table
//! ([`Scoped::scope`]), bound to the caller's claims. [`visible`] is the union of the
//! granted scopes: lists, single fetches, federation look-ups, nested fields, counts,
//! searches and writes all filter with it, so no path checks rows one by one and no path
//! forgets. No rule, no rows; a deny wins over every allow.

use async_graphql::Context;
use chrono::{DateTime, Utc};
use crm_contract::ErrorCode;
use sea_orm::sea_query::{Condition, Expr, SimpleExpr};
use sea_orm::{ActiveModelTrait, ConnectionTrait, ExprTrait};

pub use crm_policies::{Action, Decision, Domain, FieldLimit, Grant, Mask, Scope, Unless};

use crate::principal::{Principal, PrincipalKind};
use crate::record::Record;
use crate::{ApiError, ApiResult};

/// The policy domain a caller decides in. A partner-bound API key reaches the services as
/// its partner's kind (the gateway resolves it), so an integrator here is a company key.
pub fn domain(who: &Principal) -> Option<Domain> {
    match who.kind {
        PrincipalKind::Internal => Some(Domain::Internal),
        PrincipalKind::Supplier => Some(Domain::Supplier),
        PrincipalKind::Distributor => Some(Domain::Distributor),
        PrincipalKind::Integrator if who.partner_id.is_none() => Some(Domain::Internal),
        PrincipalKind::Integrator | PrincipalKind::Anonymous => None,
    }
}

/// What the policy decides for the caller (every role it holds) on a type and action. A
/// deny for any of its roles wins; otherwise the grants of all its roles add up.
pub async fn decide(who: &Principal, ty: &str, action: Action) -> ApiResult<Decision> {
    let Some(domain) = domain(who) else {
        return Ok(Decision::NoRule);
    };
    let policy = crm_policies::current().await.map_err(ApiError::internal)?;
    Ok(combine(
        who.roles
            .iter()
            .map(|role| policy.decide(domain, role, ty, action)),
    ))
}

/// Whether the policy in force grants `scope` on `ty` for `action` to any role of
/// `domain` (a manual share is worth storing only if some partner role reads by it).
pub async fn domain_is_granted(
    domain: Domain,
    ty: &str,
    action: Action,
    scope: Scope,
) -> ApiResult<bool> {
    let policy = crm_policies::current().await.map_err(ApiError::internal)?;
    Ok(domain.roles().iter().any(|role| {
        policy
            .decide(domain, role, ty, action)
            .scopes()
            .contains(&scope)
    }))
}

/// The decision of several roles: a deny wins, else the union of the grants.
pub fn combine(decisions: impl IntoIterator<Item = Decision>) -> Decision {
    let mut grants: Vec<Grant> = Vec::new();
    for decision in decisions {
        match decision {
            Decision::Denied { rule } => return Decision::Denied { rule },
            Decision::Allow(more) => grants.extend(more),
            Decision::NoRule => {}
        }
    }
    grants.sort();
    grants.dedup_by(|a, b| a.scope == b.scope);
    if grants.is_empty() {
        Decision::NoRule
    } else {
        Decision::Allow(grants)
    }
}

/// `value` when `allowed`, else nothing: a field rule that hides or masks a field.
pub fn shown<T>(allowed: bool, value: T) -> Option<T> {
    allowed.then_some(value)
}

/// The policy's read masks on one type for one caller: the fields every role of the caller
/// masks (a role that reads a field as it is shows it), each with its roles' masks.
#[derive(Clone, Debug, Default)]
pub struct Masks(std::collections::BTreeMap<String, Vec<Mask>>);

impl Masks {
    /// Whether the caller sees `field` of a record for which `holds` says which facts hold.
    pub fn shows(&self, field: &str, holds: impl Fn(Unless) -> bool) -> bool {
        self.0
            .get(field)
            .is_none_or(|masks| masks.iter().any(|m| holds(m.unless)))
    }

    /// Whether `field` may read as null for the caller on some record: then it cannot be
    /// filtered, searched or sorted on, since the rows it selects would reveal it.
    pub fn may_hide(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    /// The masked fields of one record, with the rules and the reason.
    pub fn hidden(&self, holds: impl Fn(Unless, &str) -> bool) -> Vec<MaskedField> {
        self.0
            .iter()
            .filter(|(field, masks)| !masks.iter().any(|m| holds(m.unless, field)))
            .map(|(field, masks)| MaskedField {
                field: field.clone(),
                rules: masks.iter().map(|m| m.rule.clone()).collect(),
                reason: masks
                    .first()
                    .map(|m| m.unless.reason())
                    .unwrap_or_default()
                    .to_owned(),
            })
            .collect()
    }
}

/// A field of a record that reads as null for the caller, and why.
#[derive(async_graphql::SimpleObject, Clone, Debug, PartialEq, Eq)]
#[graphql(shareable)]
pub struct MaskedField {
    /// The field's name in the API.
    pub field: String,
    /// The policy's masks behind it (one per role of the caller), as written.
    pub rules: Vec<String>,
    /// Why, in words a person reads next to the empty field.
    pub reason: String,
}

/// The read masks of the policy in force on `ty` for `who`.
pub async fn masks(who: &Principal, ty: &str) -> ApiResult<Masks> {
    let Some(domain) = domain(who) else {
        return Ok(Masks::default());
    };
    let policy = crm_policies::current().await.map_err(ApiError::internal)?;
    let per_role: Vec<std::collections::BTreeMap<String, Mask>> = who
        .roles
        .iter()
        .filter(|role| domain.roles().contains(&role.as_str()))
        .map(|role| policy.masks_on(domain, role, ty).into_iter().collect())
        .collect();
    let Some((first, rest)) = per_role.split_first() else {
        return Ok(Masks::default());
    };
    let mut masked = std::collections::BTreeMap::new();
    for (field, mask) in first {
        let mut all = vec![mask.clone()];
        let mut every_role = true;
        for other in rest {
            match other.get(field) {
                Some(mask) => all.push(mask.clone()),
                None => every_role = false,
            }
        }
        if every_role {
            masked.insert(field.clone(), all);
        }
    }
    Ok(Masks(masked))
}

/// `value` when the policy's read masks let the request's caller see `field` of `model`
/// (the facts a mask waits for are the record's own: [`Scoped::holds`]).
pub async fn unmasked<M, T>(
    ctx: &Context<'_>,
    model: &M,
    field: &str,
    value: T,
) -> ApiResult<Option<T>>
where
    M: sea_orm::ModelTrait,
    M::Entity: Scoped + sea_orm::EntityTrait<Model = M>,
    <M::Entity as sea_orm::EntityTrait>::ActiveModel: ActiveModelTrait<Entity = M::Entity> + Send,
{
    let who = Principal::of(ctx);
    let masks = masks(&who, <M::Entity as Scoped>::POLICY_TYPE).await?;
    let shows = masks.shows(field, |unless| {
        <M::Entity as Scoped>::holds(model, &who, unless, field)
    });
    Ok(shown(shows, value))
}

/// A filter, search or ordering on a field the caller may not see: refused, since a
/// hidden field must not be probed through the rows it selects.
pub fn hidden_field(field: &str) -> ApiError {
    ApiError::validation(field, "is not available to you")
}

/// Refuses a list ordering by a field the policy may hide from `who` on `ty`: the order
/// of the rows would tell the hidden values apart. `ordering` is the ordering enum's
/// variant (`CreatedAt`), the field is its GraphQL name (`createdAt`).
pub async fn check_ordering(who: &Principal, ty: &str, ordering: &str) -> ApiResult<()> {
    let mut chars = ordering.chars();
    let field: String = chars
        .next()
        .map(|first| first.to_ascii_lowercase())
        .into_iter()
        .chain(chars)
        .collect();
    if masks(who, ty).await?.may_hide(&field) {
        return Err(hidden_field("orderBy.field"));
    }
    Ok(())
}

/// The time scopes are evaluated at (a share expires by it): the process's clock.
pub use crate::clock::now;

/// A record type the policy speaks of, and what each scope means on its table.
pub trait Scoped: Record
where
    Self::ActiveModel: ActiveModelTrait<Entity = Self> + Send,
{
    /// The type's name in the policy (`Account`, `OrderLine`, …).
    const POLICY_TYPE: &'static str;

    /// The fields (as the API names them) that decide whether partners see a row at all
    /// (an interaction's `partnerVisible`): a partner reads a row's history only from the
    /// last change of one of them on, so what was written while the row was internal
    /// stays internal.
    const PARTNER_VISIBILITY: &'static [&'static str] = &[];

    /// The rows of `scope` for `who` at time `at`, as a condition on this type's table;
    /// `None` when the scope means nothing for this type or the caller lacks the claim it
    /// needs (then it grants no rows). A scope defined through another type's visibility
    /// ("on visible accounts") asks [`visible`] for that type, so the two never disagree.
    fn scope(
        scope: Scope,
        who: &Principal,
        at: DateTime<Utc>,
    ) -> impl std::future::Future<Output = ApiResult<Option<SimpleExpr>>> + Send;

    /// The conditions of several granted scopes at once (their union is what the caller
    /// sees). By default one per scope; a type whose scopes are rows of one table (an
    /// account's share causes) answers them as one condition, so the database joins that
    /// table once instead of once per scope under an `OR`, which it cannot run as a
    /// semi-join.
    fn scopes(
        scopes: Vec<Scope>,
        who: &Principal,
        at: DateTime<Utc>,
    ) -> impl std::future::Future<Output = ApiResult<Vec<SimpleExpr>>> + Send {
        async move {
            let mut conditions = Vec::with_capacity(scopes.len());
            for scope in scopes {
                conditions.extend(Self::scope(scope, who, at).await?);
            }
            Ok(conditions)
        }
    }

    /// The ids of the rows in the union of `scopes`, read from where the scopes are kept (a
    /// partner's share rows, a supplier's order lines) instead of by testing this table's
    /// rows one by one; `None` when a scope has no such form. Exactly the rows the scopes'
    /// conditions hold at `at`: a sparse page uses these ids in place of the conditions
    /// (see [`crate::scope_plan`]). It may depend on the caller's partner and the scopes
    /// only (the plan remembers dense scopes by them).
    fn scope_ids(
        scopes: &[Scope],
        who: &Principal,
        at: DateTime<Utc>,
    ) -> Option<sea_orm::sea_query::SelectStatement> {
        let _ = (scopes, who, at);
        None
    }

    /// Where the union of `scopes` is kept one row per record with the sort key of the
    /// ordering named `ordering` (an `XOrderField` variant: `Name`, `CreatedAt`) copied
    /// beside it, so a page in that order walks those rows and stops after a page; `None`
    /// when there is no such copy for these scopes and this ordering. Exactly the rows the
    /// scopes' conditions hold at `at` (see [`crate::scope_plan::OrderedScope`]).
    fn ordered_scope(
        scopes: &[Scope],
        who: &Principal,
        at: DateTime<Utc>,
        ordering: &str,
    ) -> Option<crate::scope_plan::OrderedScope> {
        let _ = (scopes, who, at, ordering);
        None
    }

    /// Whether the fact a read mask waits for (`unless`) holds for `model`'s `field` read by
    /// `who`. Every type knows whose external id it holds; a type with facts of its own
    /// (consents, partner visibility, authorship) adds them.
    fn holds(model: &Self::Model, who: &Principal, unless: Unless, field: &str) -> bool {
        let _ = field;
        unless == Unless::OwnNamespace && own_namespace::<Self>(model, who)
    }

    /// The facts behind `who`'s access to the visible record `id`, for explanations (an
    /// account's share rows, say). Most types have none beyond the rule.
    fn causes(
        db: &sea_orm::DatabaseConnection,
        who: &Principal,
        id: &str,
        at: DateTime<Utc>,
    ) -> impl std::future::Future<Output = ApiResult<Vec<String>>> + Send {
        let _ = (db, who, id, at);
        async { Ok(Vec::new()) }
    }
}

/// Whether `model`'s external id was written by `who`'s organisation.
pub fn own_namespace<E: Scoped>(model: &E::Model, who: &Principal) -> bool
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    E::external_namespace(model) == crate::record::namespace_of(who)
}

/// A condition no row meets.
pub fn no_rows() -> SimpleExpr {
    Expr::val(1).eq(0)
}

/// A condition every row meets.
pub fn all_rows() -> SimpleExpr {
    Expr::val(1).eq(1)
}

/// What one granted scope means on `E`'s table (`all` is every row).
async fn grant_condition<E: Scoped>(
    scope: Scope,
    who: &Principal,
    at: DateTime<Utc>,
) -> ApiResult<Option<SimpleExpr>>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    if scope == Scope::All {
        Ok(Some(all_rows()))
    } else {
        E::scope(scope, who, at).await
    }
}

/// The union of the scopes a decision grants, as a condition on `E`'s table.
pub async fn condition_of<E: Scoped>(
    decision: &Decision,
    who: &Principal,
    at: DateTime<Utc>,
) -> ApiResult<Condition>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let Decision::Allow(grants) = decision else {
        return Ok(Condition::all().add(no_rows()));
    };
    if decision.grants_all() {
        return Ok(Condition::all().add(all_rows()));
    }
    let mut any = Condition::any();
    let scopes = grants.iter().map(|g| g.scope).collect();
    let conditions = E::scopes(scopes, who, at).await?;
    let granted = conditions.len();
    for condition in conditions {
        any = any.add(condition);
    }
    if granted == 0 {
        return Ok(Condition::all().add(no_rows()));
    }
    Ok(any)
}

/// The rows of `E` the caller may act on with `action`, as a condition on `E`'s table:
/// `visible_<type>(principal)` for every type, the one filter of every data path.
pub async fn visible<E: Scoped>(
    who: &Principal,
    action: Action,
    at: DateTime<Utc>,
) -> ApiResult<Condition>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let decision = decide(who, E::POLICY_TYPE, action).await?;
    condition_of::<E>(&decision, who, at).await
}

/// [`visible`] for the request's caller at the request's time.
pub async fn visible_in<E: Scoped>(ctx: &Context<'_>, action: Action) -> ApiResult<Condition>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    visible::<E>(&Principal::of(ctx), action, now()).await
}

/// Whether the caller may do `action` on some rows of `ty` at all (a mutation that
/// creates rows checks this before it validates anything).
pub async fn may(ctx: &Context<'_>, ty: &str, action: Action) -> ApiResult<bool> {
    Ok(decide(&Principal::of(ctx), ty, action).await?.is_allowed())
}

/// Whether the row `id` of `E` is in `condition` (read on `db`, inside a transaction when
/// given one).
async fn row_in<E: Scoped, C: ConnectionTrait>(
    db: &C,
    id: &str,
    condition: Condition,
) -> ApiResult<bool>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    Ok(
        !crate::record::get_many_where::<E, C>(db, &[id.to_owned()], condition)
            .await?
            .is_empty(),
    )
}

/// What the caller may do with one record it can see, from the policy's update and archive
/// scopes: the UI offers an action only where this says so (it never re-codes the policy).
#[derive(async_graphql::SimpleObject, Clone, Debug, Default, PartialEq, Eq)]
#[graphql(shareable)]
pub struct RecordMay {
    /// The record is in one of the caller's update scopes for its type.
    pub update: bool,
    /// When the caller may update it: the only input fields an update may set (the
    /// policy's field rules), or null for every field the type's input has.
    pub update_fields: Option<Vec<String>>,
    /// The record is in one of the caller's archive scopes for its type.
    pub archive: bool,
}

/// What the caller may do with the `E` record `id` (nothing, for a record it cannot see).
pub async fn may_on<E: Scoped, C: ConnectionTrait>(
    ctx: &Context<'_>,
    db: &C,
    id: &str,
) -> ApiResult<RecordMay>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let update = row_in::<E, C>(db, id, visible_in::<E>(ctx, Action::Update).await?).await?;
    let update_fields = if update {
        match field_limit(&Principal::of(ctx), E::POLICY_TYPE, Action::Update).await? {
            FieldLimit::Any => None,
            FieldLimit::Only(fields) => Some(fields.into_iter().collect()),
        }
    } else {
        Some(Vec::new())
    };
    Ok(RecordMay {
        update,
        update_fields,
        archive: row_in::<E, C>(db, id, visible_in::<E>(ctx, Action::Archive).await?).await?,
    })
}

/// Before updating or archiving the record `id`: `NOT_FOUND` when the caller cannot see it
/// (exactly as for a record that does not exist), `FORBIDDEN` when it can see it but not
/// do `action` to it.
pub async fn check_may_change<E: Scoped, C: ConnectionTrait>(
    ctx: &Context<'_>,
    db: &C,
    id: &str,
    action: Action,
) -> ApiResult<()>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    if !row_in::<E, C>(db, id, visible_in::<E>(ctx, Action::Read).await?).await? {
        return Err(ApiError::NotFound);
    }
    if !row_in::<E, C>(db, id, visible_in::<E>(ctx, action).await?).await? {
        return Err(forbidden(E::POLICY_TYPE));
    }
    Ok(())
}

/// After a create or update, inside its transaction: the record as written must still be
/// in the caller's scope for `action` (a sales user cannot hand an account to someone
/// else's ownership, a partner cannot move a row out of its own scope). An error rolls the
/// write back.
pub async fn check_still_in_scope<E: Scoped, C: ConnectionTrait>(
    ctx: &Context<'_>,
    db: &C,
    id: &str,
    action: Action,
) -> ApiResult<()>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    if row_in::<E, C>(db, id, visible_in::<E>(ctx, action).await?).await? {
        Ok(())
    } else {
        Err(forbidden(E::POLICY_TYPE))
    }
}

/// Refuses `action` on a type the caller may not do it to at all.
pub async fn check_may(ctx: &Context<'_>, ty: &'static str, action: Action) -> ApiResult<()> {
    if may(ctx, ty, action).await? {
        Ok(())
    } else {
        Err(forbidden(ty))
    }
}

pub fn forbidden(ty: &str) -> ApiError {
    ApiError::denied(
        ErrorCode::Forbidden,
        format!("you may not change this {ty} (or create one like it)"),
    )
}

/// The input fields `who` may set when it does `action` (create or update) to `ty`: the
/// policy's field rules for every role it holds (the widest wins).
pub async fn field_limit(who: &Principal, ty: &str, action: Action) -> ApiResult<FieldLimit> {
    let Some(domain) = domain(who) else {
        return Ok(FieldLimit::Only(Default::default()));
    };
    let policy = crm_policies::current().await.map_err(ApiError::internal)?;
    Ok(FieldLimit::union(
        who.roles
            .iter()
            .filter(|role| policy.decide(domain, role, ty, action).is_allowed())
            .map(|role| policy.field_limit(domain, role, ty, action))
            .collect::<Vec<_>>(),
    ))
}

/// Refuses a create or update whose `input` argument sets a field the policy's field rules
/// do not let the caller set, naming the first such field. The whole mutation is refused:
/// nothing of it is kept. The fields are those the request sent (an explicit `null` that
/// clears a field counts), read from the operation, not from the parsed input.
pub async fn check_fields(ctx: &Context<'_>, ty: &'static str, action: Action) -> ApiResult<()> {
    let fields = input_fields(ctx)?;
    check_sets(ctx, ty, action, &fields).await
}

/// Refuses a create or update that sets one of `fields` the policy's field rules do not
/// let the caller set (a mutation with its own arguments names the fields it changes).
pub async fn check_sets(
    ctx: &Context<'_>,
    ty: &'static str,
    action: Action,
    fields: &[impl AsRef<str>],
) -> ApiResult<()> {
    let limit = field_limit(&Principal::of(ctx), ty, action).await?;
    if limit == FieldLimit::Any {
        return Ok(());
    }
    for field in fields {
        let field = field.as_ref();
        if !limit.allows(field) {
            return Err(ApiError::denied_field(
                ErrorCode::Forbidden,
                &format!("input.{field}"),
                format!("you may not set {field} of a {ty}"),
            ));
        }
    }
    Ok(())
}

/// The fields the operation's `input` argument sets, as sent.
pub fn input_fields(ctx: &Context<'_>) -> ApiResult<Vec<String>> {
    let arguments = ctx
        .field()
        .arguments()
        .map_err(|e| ApiError::validation("input", &e.message))?;
    Ok(arguments
        .into_iter()
        .filter(|(name, _)| name.as_str() == "input")
        .flat_map(|(_, value)| match value {
            async_graphql::Value::Object(fields) => {
                fields.keys().map(|k| k.to_string()).collect::<Vec<_>>()
            }
            _ => Vec::new(),
        })
        .collect())
}

/// The ids of the `E` rows the caller may act on with `action`, as a sub-query (for a
/// scope defined through another type's visibility).
pub async fn visible_ids<E: Scoped>(
    who: &Principal,
    action: Action,
    at: DateTime<Utc>,
) -> ApiResult<sea_orm::sea_query::SelectStatement>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let condition = visible::<E>(who, action, at).await?;
    Ok(sea_orm::sea_query::Query::select()
        .column("id")
        .from(E::default())
        .cond_where(condition)
        .to_owned())
}

/// Why a caller may (or may not) read one record: the policy rules whose scope holds the
/// row, or the rule that denies the type, or that no rule allows it. A record that does
/// not exist explains as not visible with no rule, the same as one out of scope.
#[derive(async_graphql::SimpleObject, Clone, Debug, Default)]
#[graphql(shareable)]
pub struct AccessExplanation {
    /// Whether the caller may read the record.
    pub visible: bool,
    /// The allowing rules (as written in the policy) whose scope holds the record.
    pub rules: Vec<String>,
    /// The rule that denies the type to the caller, if one does.
    pub denied_by: Option<String>,
    /// Why, as facts the scope rests on (e.g. `buys_my_products: order ord_1`).
    pub causes: Vec<String>,
    /// The policy version the answer was decided with.
    pub policy_version: u64,
    /// The same in plain words.
    pub summary: String,
    /// The fields of the record that read as null for the caller, with the rule and the
    /// reason (so a page can say "email not shared by the person" instead of a blank).
    pub masked: Vec<MaskedField>,
}

/// Explains `who`'s read access to the `E` record `id`, scope by scope, at time `at`, with
/// the causes behind it ([`Scoped::causes`]).
pub async fn explain<E: Scoped>(
    db: &sea_orm::DatabaseConnection,
    who: &Principal,
    id: &str,
    at: DateTime<Utc>,
) -> ApiResult<AccessExplanation>
where
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let policy_version = crm_policies::current_version();
    let decision = decide(who, E::POLICY_TYPE, Action::Read).await?;
    let plural = crm_policies::plural(E::POLICY_TYPE).to_lowercase();
    let grants = match decision {
        Decision::Denied { rule } => {
            return Ok(AccessExplanation {
                summary: format!("The policy denies you {plural}: {rule}."),
                denied_by: Some(rule),
                policy_version,
                ..Default::default()
            });
        }
        Decision::NoRule => {
            return Ok(AccessExplanation {
                summary: format!("No rule of the policy lets you see {plural}."),
                policy_version,
                ..Default::default()
            });
        }
        Decision::Allow(grants) => grants,
    };
    let mut matching = Vec::new();
    for grant in grants {
        if let Some(condition) = grant_condition::<E>(grant.scope, who, at).await?
            && row_in::<E, _>(db, id, Condition::all().add(condition)).await?
        {
            matching.push(grant);
        }
    }
    let summary = if matching.is_empty() {
        format!(
            "You cannot see this record: it is in none of the {plural} the policy lets you see."
        )
    } else {
        format!(
            "You can see it as one of {}.",
            matching
                .iter()
                .map(|g| g.scope.describe())
                .collect::<Vec<_>>()
                .join(", and as one of ")
        )
    };
    let (causes, masked) = if matching.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let masked =
            match crate::record::get_many_where::<E, _>(db, &[id.to_owned()], Condition::all())
                .await?
                .first()
            {
                Some(model) => masks(who, E::POLICY_TYPE)
                    .await?
                    .hidden(|unless, field| E::holds(model, who, unless, field)),
                None => Vec::new(),
            };
        (E::causes(db, who, id, at).await?, masked)
    };
    Ok(AccessExplanation {
        visible: !matching.is_empty(),
        rules: matching.into_iter().map(|g| g.rule).collect(),
        denied_by: None,
        causes,
        policy_version,
        summary,
        masked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(scope: Scope) -> Grant {
        Grant {
            scope,
            rule: scope.name().into(),
        }
    }

    #[test]
    fn a_deny_of_any_role_wins_and_grants_of_several_roles_add_up() {
        let both = combine([
            Decision::Allow(vec![grant(Scope::Owned)]),
            Decision::NoRule,
            Decision::Allow(vec![grant(Scope::Owned), grant(Scope::All)]),
        ]);
        assert_eq!(both.scopes(), vec![Scope::All, Scope::Owned]);
        let denied = combine([
            Decision::Allow(vec![grant(Scope::All)]),
            Decision::Denied { rule: "r".into() },
        ]);
        assert!(!denied.is_allowed());
        assert_eq!(combine([]), Decision::NoRule);
    }

    #[test]
    fn callers_without_a_domain_decide_nothing() {
        let mut who = Principal::anonymous();
        assert_eq!(domain(&who), None);
        who.kind = PrincipalKind::Integrator;
        who.partner_id = Some("ptn_1".into());
        assert_eq!(
            domain(&who),
            None,
            "a partner key must arrive as its partner's kind"
        );
        who.partner_id = None;
        assert_eq!(domain(&who), Some(Domain::Internal));
    }
}
