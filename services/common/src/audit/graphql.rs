//! The audit log in the API: a record's field history (`history` on each record type), and
//! the verification of the chains (`AuditVerification`, one federated entity to which
//! every data service adds its chains).

use async_graphql::{Context, Enum, SimpleObject};
use chrono::{DateTime, Utc};
use crm_contract::ErrorCode;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{action, entry};
use crate::access::{Action, Scope, Scoped, decide, masks};
use crate::graphql::db;
use crate::principal::{Principal, PrincipalKind};
use crate::{ApiError, ApiResult};

/// How a field came to hold its value.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// Its first value, when the record was created.
    Created,
    /// A later change.
    Changed,
}

/// One change of one field of a record, as the audit log keeps it.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(shareable)]
pub struct FieldChange {
    pub at: DateTime<Utc>,
    /// The field, as the API names it.
    pub field: String,
    pub kind: ChangeKind,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    /// The values are not shown: erased with the person they were about, or a reference
    /// to a record the caller is not shown.
    pub values_withheld: bool,
    /// Who changed it: a user's or API key's id, or `system`. Partners see the ids of their
    /// own organisation only (null for the company's people).
    pub actor: Option<String>,
    /// `internal`, `supplier`, `distributor`, `integrator` or `system`.
    pub actor_kind: String,
    /// How the actor signed in (`session:…`, `api_key:…`, `token`, `service`); shown with
    /// the actor.
    pub credential: Option<String>,
}

/// The most changes one `history` answers.
pub const MAX_HISTORY: i32 = 200;

/// Entries read to find a page of the changes the caller may see.
const HISTORY_SCAN: u64 = 5000;

/// The history of `model`'s fields that the caller may see, newest first, at most
/// `first` changes. A field hidden from the caller (masked for this record, or not a
/// field of the type in the API) has no history for it either; references to other
/// records keep their values for the company's staff only, since a partner must not learn
/// the ids of records it cannot see.
pub async fn history<M>(ctx: &Context<'_>, model: &M, first: i32) -> ApiResult<Vec<FieldChange>>
where
    M: sea_orm::ModelTrait,
    M::Entity: Scoped + EntityTrait<Model = M>,
    <M::Entity as EntityTrait>::ActiveModel: ActiveModelTrait<Entity = M::Entity> + Send,
{
    if !(1..=MAX_HISTORY).contains(&first) {
        return Err(ApiError::validation(
            "first",
            format!("between 1 and {MAX_HISTORY}"),
        ));
    }
    let who = Principal::of(ctx);
    let ty = <M::Entity as Scoped>::POLICY_TYPE;
    let masks = masks(&who, ty).await?;
    let api_type = ctx.schema_env.registry.types.get(ty);
    let shown = |field: &str| {
        api_type.is_some_and(|t| t.field_by_name(field).is_some())
            && masks.shows(field, |unless| {
                <M::Entity as Scoped>::holds(model, &who, unless, field)
            })
    };
    // Where the policy masks the record's version, it masks its history: a change the
    // caller can't see must not show (a supplier reading an account, a partner an
    // article).
    if !shown("version") {
        return Ok(Vec::new());
    }
    let company = who.partner().is_none();
    let all: Vec<entry::Model> = entry::Entity::find()
        .filter(entry::Column::RecordId.eq(<M::Entity as crate::record::Record>::id(model)))
        .order_by_desc(entry::Column::At)
        .order_by_desc(entry::Column::Seq)
        .limit(HISTORY_SCAN)
        .all(db(ctx)?)
        .await?;
    // A partner reads the history from the row's last change of partner visibility on.
    let visibility = <M::Entity as Scoped>::PARTNER_VISIBILITY;
    let since = all
        .iter()
        .filter(|e| !company && e.field.as_deref().is_some_and(|f| visibility.contains(&f)))
        .map(|e| e.at)
        .max();
    let entries: Vec<entry::Model> = all
        .into_iter()
        .filter(|e| since.is_none_or(|since| e.at >= since))
        .filter(|e| e.field.as_deref().is_some_and(shown))
        .take(first as usize)
        .collect();
    let mut values = super::kept_values(db(ctx)?, &entries).await?;
    Ok(entries
        .into_iter()
        .map(|e| {
            // The write that shared the row: what it replaced was written while internal.
            let (old, new, withheld) =
                super::shown_values(&e, &mut values, !company, since == Some(e.at));
            let own = company || who.partner() == Some(e.organisation.as_str());
            FieldChange {
                at: e.at,
                field: e.field.unwrap_or_default(),
                kind: if e.action == action::CREATED {
                    ChangeKind::Created
                } else {
                    ChangeKind::Changed
                },
                old_value: old,
                new_value: new,
                values_withheld: withheld,
                actor: own.then_some(e.actor),
                actor_kind: e.actor_kind,
                credential: own.then_some(e.credential),
            }
        })
        .collect())
}

/// Which chains a caller asks to verify: `all`, `company`, or a partner's id.
pub const ALL_CHAINS: &str = "all";
pub const COMPANY_CHAIN: &str = "company";

/// The chains `who` may verify for the request `organisation` (`None`: every chain),
/// by the policy's `AuditChain` read rule: staff with `all` verify any chain, a partner
/// administrator (`own_org`) its own organisation's only. Anything else is refused
/// without saying whether the organisation exists.
pub async fn chains_for(who: &Principal, organisation: &str) -> ApiResult<Option<Vec<String>>> {
    let decision = decide(who, "AuditChain", Action::Read).await?;
    if decision.grants_all() {
        return Ok(match organisation {
            ALL_CHAINS => None,
            COMPANY_CHAIN => Some(vec![String::new()]),
            partner => Some(vec![partner.to_owned()]),
        });
    }
    let own = who
        .partner()
        .filter(|_| decision.scopes().contains(&Scope::OwnOrg));
    match own {
        Some(partner) if partner == organisation => Ok(Some(vec![partner.to_owned()])),
        _ => Err(ApiError::denied(
            ErrorCode::Forbidden,
            "you may verify your own organisation's audit log only".to_owned(),
        )),
    }
}

/// The request's `organisation` argument as the entity's key: a partner administrator's
/// own organisation when left out, every chain for staff.
pub fn requested(who: &Principal, organisation: Option<String>) -> String {
    match organisation {
        Some(o) => o,
        None => match who.kind {
            PrincipalKind::Supplier | PrincipalKind::Distributor => {
                who.partner().unwrap_or(ALL_CHAINS).to_owned()
            }
            _ => ALL_CHAINS.to_owned(),
        },
    }
}

/// One service's verified chains.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(shareable)]
pub struct ServiceChains {
    pub service: String,
    /// Every chain holds.
    pub intact: bool,
    pub chains: Vec<super::chain::ChainReport>,
}

/// Verifies the chains `who` asked for in this service's tables.
pub async fn verify_here(
    ctx: &Context<'_>,
    service: &str,
    organisation: &str,
) -> ApiResult<ServiceChains> {
    let who = Principal::of(ctx);
    let chains = chains_for(&who, organisation).await?;
    let trusted = super::chain::trusted_keys();
    let chains = super::chain::verify(db(ctx)?, service, &trusted, chains.as_deref()).await?;
    Ok(ServiceChains {
        service: service.to_owned(),
        intact: chains.iter().all(super::chain::ChainReport::intact),
        chains,
    })
}

/// Declares the `AuditVerification` entity (keyed by `organisation`) and this service's
/// field on it, `$field`, verifying the chains of `$service`.
#[macro_export]
macro_rules! audit_verification_entity {
    ($field:ident, $service:expr) => {
        /// A verification of the audit log's chains: every service adds its own.
        #[derive(async_graphql::SimpleObject, Clone, Debug)]
        #[graphql(complex)]
        pub struct AuditVerification {
            /// Whose chains: a partner's id, `company`, or `all`.
            pub organisation: String,
        }

        #[async_graphql::ComplexObject]
        impl AuditVerification {
            /// This service's chains, recomputed now.
            async fn $field(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<$crate::audit::graphql::ServiceChains> {
                Ok($crate::audit::graphql::verify_here(ctx, $service, &self.organisation).await?)
            }
        }

        #[derive(Default)]
        pub struct AuditEntityQuery;

        #[async_graphql::Object]
        impl AuditEntityQuery {
            /// Federation: a verification of the chains of `organisation`.
            #[graphql(entity)]
            async fn find_audit_verification_by_organisation(
                &self,
                organisation: String,
            ) -> AuditVerification {
                AuditVerification { organisation }
            }
        }
    };
}
