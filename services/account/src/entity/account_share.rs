use sea_orm::entity::prelude::*;

/// Why a partner may read an account: one row per (account, partner, cause, source).
/// Rows with an order cause follow the order service's events (`source` is the order id);
/// manual shares are granted by an internal user (`source` is empty), may expire, and are
/// archived when revoked, so their history stays.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "account_shares")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub external_id: Option<String>,
    /// The organisation that wrote `external_id` (a partner id; empty: the company).
    pub external_namespace: String,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub archived_at: Option<DateTimeUtc>,
    pub account_id: String,
    pub partner_id: String,
    /// A scope name: `buys_my_products`, `fulfils_its_orders` or `manual_share`.
    pub cause: String,
    pub source: Option<String>,
    pub granted_by: Option<String>,
    pub expires_at: Option<DateTimeUtc>,
    pub reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
