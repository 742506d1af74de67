//! The stored access policy: every edit is a new version in the `identity` schema
//! (`policy_versions`: the rules, who changed them, what changed), validated before it is
//! stored, installed in this process at once and published to Redis for the other
//! processes (`crm_service_common::policy_sync`).

use std::sync::Arc;

use crm_policies::{Policy, Rule};
use crm_service_common::policy_sync::{self, PolicyKeys, PolicySnapshot};
use crm_service_common::{ApiError, ApiResult};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, DatabaseConnection, QueryOrder, QuerySelect};
use tokio::sync::Mutex;

pub mod policy_version {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "policy_versions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i64,
        pub rules: String,
        pub change: String,
        pub created_by: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An edit of the rules.
#[derive(Clone, Debug)]
pub enum Edit {
    Add(Rule),
    Remove(Rule),
}

impl Edit {
    fn describe(&self) -> String {
        match self {
            Edit::Add(rule) => format!("added: {}", rule.line()),
            Edit::Remove(rule) => format!("removed: {}", rule.line()),
        }
    }
}

/// Where edits go besides this process: Redis, for separate processes.
struct Publisher {
    connection: redis::aio::ConnectionManager,
    keys: PolicyKeys,
}

#[derive(Clone)]
pub struct PolicyStore {
    db: DatabaseConnection,
    publisher: Arc<Mutex<Option<Publisher>>>,
}

impl PolicyStore {
    /// The store over a migrated identity database; the newest stored version is installed
    /// in this process (the bundled rules become version 1 on first start).
    pub async fn open(db: &DatabaseConnection) -> anyhow::Result<Self> {
        let store = Self {
            db: db.clone(),
            publisher: Arc::new(Mutex::new(None)),
        };
        let latest = match store.latest().await? {
            Some(latest) => latest,
            None => {
                let bundled = policy_version::ActiveModel {
                    version: Set(1),
                    rules: Set(crm_policies::RULES.to_owned()),
                    change: Set("the bundled policy".into()),
                    created_by: Set("system".into()),
                    created_at: Set(crm_service_common::record::now()),
                };
                // Two processes opening a fresh directory at once: one insert wins.
                let _ = policy_version::Entity::insert(bundled)
                    .exec_without_returning(db)
                    .await;
                store
                    .latest()
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("no policy version after storing one"))?
            }
        };
        policy_sync::install(&snapshot_of(&latest)).await?;
        Ok(store)
    }

    /// Publishes every edit (and the version in force now) to Redis under `namespace`.
    pub async fn publish_to(&self, redis_url: &str, namespace: Option<&str>) -> anyhow::Result<()> {
        let client = redis::Client::open(redis_url)?;
        let mut connection = redis::aio::ConnectionManager::new(client).await?;
        let keys = PolicyKeys::new(namespace);
        if let Some(latest) = self.latest().await? {
            policy_sync::publish(&mut connection, &keys, &snapshot_of(&latest)).await?;
        }
        *self.publisher.lock().await = Some(Publisher { connection, keys });
        Ok(())
    }

    async fn latest(&self) -> anyhow::Result<Option<policy_version::Model>> {
        Ok(policy_version::Entity::find()
            .order_by_desc(policy_version::Column::Version)
            .one(&self.db)
            .await?)
    }

    /// The policy in force: the newest stored version.
    pub async fn current(&self) -> ApiResult<Arc<Policy>> {
        crm_policies::current().await.map_err(ApiError::internal)
    }

    /// Applies an edit as a new version: validated first (a rule naming an unknown role,
    /// type, scope or effect is refused), stored with who made it, installed here and
    /// published. Edits are serialised, so two admins never build on the same version.
    pub async fn edit(&self, edit: Edit, by: &str) -> ApiResult<u64> {
        let mut publisher = self.publisher.lock().await;
        let latest = self
            .latest()
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::internal("no stored policy"))?;
        let current = Policy::stored(&latest.rules, version_of(&latest))
            .await
            .map_err(ApiError::internal)?;
        let rules = match &edit {
            Edit::Add(rule) => current.rules_with(rule),
            Edit::Remove(rule) => current.rules_without(rule),
        }
        .map_err(|e| ApiError::validation("rule", e.to_string()))?;
        let next = version_of(&latest) + 1;
        let policy = Policy::stored(&rules, next)
            .await
            .map_err(|e| ApiError::validation("rule", e.to_string()))?;
        let row = policy_version::ActiveModel {
            version: Set(i64::try_from(next).map_err(ApiError::internal)?),
            rules: Set(rules.clone()),
            change: Set(edit.describe()),
            created_by: Set(by.to_owned()),
            created_at: Set(crm_service_common::record::now()),
        };
        policy_version::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await?;
        crm_policies::install(Arc::new(policy));
        tracing::info!(version = next, by, change = %edit.describe(), "policy edited");
        if let Some(publisher) = publisher.as_mut() {
            let snapshot = PolicySnapshot {
                version: next,
                rules,
            };
            if let Err(error) =
                policy_sync::publish(&mut publisher.connection, &publisher.keys, &snapshot).await
            {
                // Stored and in force here; other processes converge on the next publish
                // or their periodic check once Redis answers again.
                tracing::warn!(%error, version = next, "could not publish the policy edit");
            }
        }
        Ok(next)
    }

    /// The newest versions first: who changed what, when.
    pub async fn history(&self, limit: u64) -> ApiResult<Vec<policy_version::Model>> {
        Ok(policy_version::Entity::find()
            .order_by_desc(policy_version::Column::Version)
            .limit(limit)
            .all(&self.db)
            .await?)
    }
}

fn version_of(row: &policy_version::Model) -> u64 {
    u64::try_from(row.version).unwrap_or(0)
}

fn snapshot_of(row: &policy_version::Model) -> PolicySnapshot {
    PolicySnapshot {
        version: version_of(row),
        rules: row.rules.clone(),
    }
}

/// The policy as the identity subgraph shows it to admins.
pub mod graphql {
    use async_graphql::{Context, InputObject, Object, SimpleObject};
    use crm_policies::Rule;
    use crm_service_common::principal::{Principal, PrincipalKind};
    use crm_service_common::{ApiError, ApiResult};

    use super::{Edit, PolicyStore, policy_version};

    /// One rule: `role` in `domain` may (`allow`) or may not (`deny`) do `action` on
    /// `type`, for the rows of `scope`.
    #[derive(SimpleObject, InputObject, Clone, Debug)]
    #[graphql(input_name = "PolicyRuleInput")]
    pub struct PolicyRule {
        pub role: String,
        pub domain: String,
        #[graphql(name = "type")]
        pub ty: String,
        pub action: String,
        pub scope: String,
        pub effect: String,
    }

    impl From<Rule> for PolicyRule {
        fn from(r: Rule) -> Self {
            Self {
                role: r.role,
                domain: r.domain,
                ty: r.ty,
                action: r.action,
                scope: r.scope,
                effect: r.effect,
            }
        }
    }

    impl PolicyRule {
        fn rule(&self) -> Rule {
            let clean = |s: &str| s.trim().to_owned();
            Rule {
                role: clean(&self.role),
                domain: clean(&self.domain),
                ty: clean(&self.ty),
                action: clean(&self.action),
                scope: clean(&self.scope),
                effect: clean(&self.effect),
            }
        }
    }

    /// The policy in force.
    #[derive(SimpleObject)]
    pub struct PolicyView {
        pub version: u64,
        pub rules: Vec<PolicyRule>,
    }

    /// One stored version: what changed, who changed it, when.
    #[derive(SimpleObject)]
    pub struct PolicyChange {
        pub version: i64,
        pub change: String,
        pub created_by: String,
        pub created_at: chrono::DateTime<chrono::Utc>,
    }

    impl From<policy_version::Model> for PolicyChange {
        fn from(m: policy_version::Model) -> Self {
            Self {
                version: m.version,
                change: m.change,
                created_by: m.created_by,
                created_at: m.created_at,
            }
        }
    }

    fn store<'a>(ctx: &Context<'a>) -> ApiResult<&'a PolicyStore> {
        ctx.data::<PolicyStore>()
            .map_err(|_| ApiError::internal("the identity subgraph has no policy store"))
    }

    /// Only the company's admins read and edit the policy.
    fn admin(ctx: &Context<'_>) -> ApiResult<String> {
        let who = Principal::of(ctx);
        if who.kind == PrincipalKind::Internal && who.has_role("admin") {
            Ok(who.subject.clone())
        } else {
            Err(ApiError::denied(
                crm_service_common::ErrorCode::Forbidden,
                "only an admin reads and edits the access policy",
            ))
        }
    }

    pub async fn view(ctx: &Context<'_>) -> ApiResult<PolicyView> {
        admin(ctx)?;
        let policy = store(ctx)?.current().await?;
        Ok(PolicyView {
            version: policy.version(),
            rules: policy.rules().into_iter().map(PolicyRule::from).collect(),
        })
    }

    pub async fn history(ctx: &Context<'_>, first: Option<i32>) -> ApiResult<Vec<PolicyChange>> {
        admin(ctx)?;
        let limit = u64::try_from(first.unwrap_or(50).clamp(1, 200)).unwrap_or(50);
        Ok(store(ctx)?
            .history(limit)
            .await?
            .into_iter()
            .map(PolicyChange::from)
            .collect())
    }

    pub async fn edit(ctx: &Context<'_>, add: bool, rule: PolicyRule) -> ApiResult<PolicyView> {
        let by = admin(ctx)?;
        let rule = rule.rule();
        let edit = if add {
            Edit::Add(rule)
        } else {
            Edit::Remove(rule)
        };
        store(ctx)?.edit(edit, &by).await?;
        view(ctx).await
    }

    #[derive(Default)]
    pub struct PolicyQuery;

    #[Object]
    impl PolicyQuery {
        /// The access policy in force (admins only).
        async fn policy(&self, ctx: &Context<'_>) -> async_graphql::Result<PolicyView> {
            Ok(view(ctx).await?)
        }

        /// Policy versions, newest first: what changed, who changed it, when (admins only).
        async fn policy_history(
            &self,
            ctx: &Context<'_>,
            first: Option<i32>,
        ) -> async_graphql::Result<Vec<PolicyChange>> {
            Ok(history(ctx, first).await?)
        }
    }

    #[derive(Default)]
    pub struct PolicyMutation;

    #[Object]
    impl PolicyMutation {
        /// Adds a rule as a new policy version, in force everywhere within seconds.
        async fn add_policy_rule(
            &self,
            ctx: &Context<'_>,
            rule: PolicyRule,
        ) -> async_graphql::Result<PolicyView> {
            Ok(edit(ctx, true, rule).await?)
        }

        /// Removes a rule as a new policy version.
        async fn remove_policy_rule(
            &self,
            ctx: &Context<'_>,
            rule: PolicyRule,
        ) -> async_graphql::Result<PolicyView> {
            Ok(edit(ctx, false, rule).await?)
        }
    }
}
