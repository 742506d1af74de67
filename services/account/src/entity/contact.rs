use sea_orm::entity::prelude::*;

#[allow(unused_imports)]
use crate::domain::*;

/// The digits of `phone` in SQL both databases run, written exactly as the index on it
/// (migration `m20261207_000001_contact_keys`) so that look-ups by number use the index.
pub const PHONE_DIGITS: &str = "replace(replace(replace(replace(replace(replace(phone, ' ', ''), '-', ''), '(', ''), ')', ''), '.', ''), '+', '')";

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
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
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub title: Option<String>,
    pub consent_marketing_email: bool,
    pub consent_marketing_phone: bool,
    pub consent_partner_sharing_email: bool,
    pub consent_partner_sharing_phone: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Every purpose and channel a contact's consent is kept for, in the order the API lists
/// them.
pub const CONSENTS: [(ConsentPurpose, ConsentChannel); 4] = [
    (ConsentPurpose::Marketing, ConsentChannel::Email),
    (ConsentPurpose::Marketing, ConsentChannel::Phone),
    (ConsentPurpose::PartnerSharing, ConsentChannel::Email),
    (ConsentPurpose::PartnerSharing, ConsentChannel::Phone),
];

/// The column that holds a contact's consent for `purpose` over `channel`: the latest
/// statement's answer, which the masks read.
pub fn consent_column(purpose: ConsentPurpose, channel: ConsentChannel) -> Column {
    match (purpose, channel) {
        (ConsentPurpose::Marketing, ConsentChannel::Email) => Column::ConsentMarketingEmail,
        (ConsentPurpose::Marketing, ConsentChannel::Phone) => Column::ConsentMarketingPhone,
        (ConsentPurpose::PartnerSharing, ConsentChannel::Email) => {
            Column::ConsentPartnerSharingEmail
        }
        (ConsentPurpose::PartnerSharing, ConsentChannel::Phone) => {
            Column::ConsentPartnerSharingPhone
        }
    }
}

impl Model {
    /// Whether the person consents now to `purpose` over `channel`.
    pub fn consents_to(&self, purpose: ConsentPurpose, channel: ConsentChannel) -> bool {
        matches!(
            self.get(consent_column(purpose, channel)),
            sea_orm::Value::Bool(Some(true))
        )
    }
}
