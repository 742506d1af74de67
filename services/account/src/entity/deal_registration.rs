use sea_orm::entity::prelude::*;

#[allow(unused_imports)]
use crate::domain::*;

/// A partner's registration of a deal it is working: the customer (an account it can see,
/// or a prospect by name and domain), what it expects to sell, and our decision on it.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "deal_registrations")]
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
    /// The registering organisation (from the writer, never from input).
    pub partner_id: String,
    pub submitted_by_user_id: String,
    /// The existing account the deal is with (one the partner may read), if any.
    pub account_id: Option<String>,
    pub prospect_name: String,
    pub prospect_domain: Option<String>,
    /// `crm_service_common::normalise` keys of the prospect's name and domain: what the
    /// conflict check compares.
    pub name_key: String,
    pub domain_key: Option<String>,
    /// The products and quantities, as JSON (`[{"productId": …, "quantity": …}]`).
    pub products: String,
    pub estimated_amount_minor: i64,
    pub currency: String,
    pub expected_close: Option<Date>,
    pub notes: Option<String>,
    pub status: RegistrationStatus,
    pub decision_reason: Option<String>,
    pub decided_by_user_id: Option<String>,
    pub decided_at: Option<DateTimeUtc>,
    /// The opportunity an approval created or linked.
    pub opportunity_id: Option<String>,
    /// Until when the approval protects the partner's claim on the deal.
    pub protected_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
