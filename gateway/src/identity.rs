//! The identity directory (the gateway's own `identity` schema). For now: the users the
//! demo seeds, internal staff per department and users per partner organisation.
//! Credentials, sessions, API keys and invitations come with the identity work.

pub mod tokens;

use anyhow::Context;
use crm_account::domain::PartnerKind;
use crm_account::seed::{INTERNAL_USERS, SeededPartner};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, DatabaseConnection, PaginatorTrait};

pub const SERVICE: &str = "identity";

pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub email: String,
        pub display_name: String,
        pub kind: String,
        pub partner_id: Option<String>,
        pub roles: String,
        pub disabled: bool,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The internal staff's email domain in the demo.
pub const INTERNAL_DOMAIN: &str = "crm.example";

/// One demo login, as printed at start-up.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoUser {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub kind: &'static str,
    pub partner_id: Option<String>,
    pub roles: String,
}

/// The demo directory: internal users per department, and an admin and a user per partner.
pub fn demo_users(partners: &[SeededPartner]) -> Vec<DemoUser> {
    let mut users: Vec<DemoUser> = INTERNAL_USERS
        .iter()
        .map(|(id, persona)| {
            let role = persona.trim_end_matches(|c: char| c.is_ascii_digit());
            DemoUser {
                id: (*id).to_owned(),
                email: format!("{persona}@{INTERNAL_DOMAIN}"),
                display_name: format!("{}{} (demo)", role[..1].to_uppercase(), &role[1..]),
                kind: "internal",
                partner_id: None,
                roles: role.to_owned(),
            }
        })
        .collect();
    for partner in partners {
        let kind = match partner.kind {
            PartnerKind::Supplier => "supplier",
            PartnerKind::Distributor => "distributor",
        };
        for (suffix, role) in [("admin", "partner_admin"), ("user", "partner_user")] {
            users.push(DemoUser {
                id: format!("usr_{}_{suffix}", partner.persona),
                email: format!("{}-{suffix}@{}", partner.persona, partner.email_domain),
                display_name: format!("{} {suffix}", partner.name),
                kind,
                partner_id: Some(partner.id.clone()),
                roles: role.to_owned(),
            });
        }
    }
    users
}

pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    use crm_migrations::MigratorTrait;
    crm_migrations::identity::Migrator::up(db, None)
        .await
        .context("migrating the identity schema")
}

pub async fn is_seeded(db: &DatabaseConnection) -> anyhow::Result<bool> {
    Ok(user::Entity::find().count(db).await? > 0)
}

pub async fn seed(db: &DatabaseConnection, users: &[DemoUser]) -> anyhow::Result<()> {
    let created_at = chrono::DateTime::parse_from_rfc3339("2026-01-05T09:00:00Z")?.to_utc();
    let rows = users.iter().map(|u| user::ActiveModel {
        id: Set(u.id.clone()),
        email: Set(u.email.clone()),
        display_name: Set(u.display_name.clone()),
        kind: Set(u.kind.to_owned()),
        partner_id: Set(u.partner_id.clone()),
        roles: Set(u.roles.clone()),
        disabled: Set(false),
        created_at: Set(created_at),
    });
    user::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await
        .context("seeding demo users")?;
    Ok(())
}

/// Reads the demo users back, for printing the logins of an already seeded system.
pub async fn all_users(db: &DatabaseConnection) -> anyhow::Result<Vec<user::Model>> {
    use sea_orm::QueryOrder;
    Ok(user::Entity::find()
        .order_by_asc(user::Column::Email)
        .all(db)
        .await?)
}
