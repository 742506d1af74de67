//! `Contact`: a person at an account, with consent per purpose and channel.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Result, SimpleObject};
use crm_service_common::access::{hidden_field, masks, unmasked};
use crm_service_common::domain::{email, optional_text, phone, text};
use crm_service_common::principal::Principal;
use crm_service_common::{ApiResult, connection_types};
use sea_orm::ExprTrait;
use sea_orm::sea_query::Expr;
use sea_orm::{EntityTrait, QueryFilter, Select};

use super::account::Account;
use super::{
    FilterExt, RecordFilter, RecordInput, ensure_exists, load, optional, ordering, record_object,
    record_operations, required, unarchived,
};
use crate::domain::{ConsentChannel, ConsentPurpose};
use crate::entity::{account, contact};
use crate::store::set;

#[derive(Clone)]
pub struct Contact(pub contact::Model);

connection_types!(ContactConnection, ContactEdge, Contact);

/// Whether a person agreed to be contacted (or shared) for one purpose over one channel.
#[derive(SimpleObject, Clone, Debug)]
pub struct Consent {
    pub purpose: ConsentPurpose,
    pub channel: ConsentChannel,
    pub granted: bool,
}

#[derive(InputObject, Clone, Debug)]
pub struct ConsentInput {
    pub purpose: ConsentPurpose,
    pub channel: ConsentChannel,
    pub granted: bool,
}

record_object!(Contact {
    async fn account_id(&self) -> ID {
        ID(self.0.account_id.clone())
    }
    async fn account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        Ok(load::<account::Entity>(ctx, &self.0.account_id).await?.map(Account))
    }
    async fn first_name(&self) -> &str {
        &self.0.first_name
    }
    async fn last_name(&self) -> &str {
        &self.0.last_name
    }
    async fn full_name(&self) -> String {
        format!("{} {}", self.0.first_name, self.0.last_name)
    }
    /// Null for partners unless the person consented to partner sharing by email, and
    /// for marketing unless they consented to marketing by email.
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(unmasked(ctx, &self.0, "email", self.0.email.as_deref()).await?.flatten())
    }
    /// Null for partners unless the person consented to partner sharing by phone, and
    /// for marketing unless they consented to marketing by phone.
    async fn phone(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(unmasked(ctx, &self.0, "phone", self.0.phone.as_deref()).await?.flatten())
    }
    async fn title(&self) -> Option<&str> {
        self.0.title.as_deref()
    }
    /// Consent for every purpose and channel (absent consent is `granted: false`).
    async fn consents(&self) -> Vec<Consent> {
        let m = &self.0;
        vec![
            Consent { purpose: ConsentPurpose::Marketing, channel: ConsentChannel::Email, granted: m.consent_marketing_email },
            Consent { purpose: ConsentPurpose::Marketing, channel: ConsentChannel::Phone, granted: m.consent_marketing_phone },
            Consent { purpose: ConsentPurpose::PartnerSharing, channel: ConsentChannel::Email, granted: m.consent_partner_sharing_email },
            Consent { purpose: ConsentPurpose::PartnerSharing, channel: ConsentChannel::Phone, granted: m.consent_partner_sharing_phone },
        ]
    }
});

ordering!(ContactOrder, ContactOrderField, contact, default = LastName, {
    LastName => LastName.last_name: Text,
    CreatedAt => CreatedAt.created_at: Time,
    UpdatedAt => UpdatedAt.updated_at: Time,
});

#[derive(InputObject, Default, Clone, Debug)]
pub struct ContactFilter {
    /// Matches first name, last name or email, case-insensitively.
    pub text: Option<String>,
    pub account_id: Option<ID>,
    pub email: Option<String>,
    #[graphql(default)]
    pub include_archived: bool,
    /// Set for callers to whom emails may be masked: text matches names only.
    #[graphql(skip)]
    pub names_only: bool,
}

impl crm_service_common::search::Searchable<contact::Entity> for ContactFilter {
    fn for_text(text: String) -> Self {
        Self {
            text: Some(text),
            ..Self::default()
        }
    }
    fn searched(&self) -> Vec<contact::Column> {
        use contact::Column as C;
        // Last name first: people are looked up by it, and ties read alphabetically.
        if self.names_only {
            vec![C::LastName, C::FirstName]
        } else {
            vec![C::LastName, C::FirstName, C::Email]
        }
    }
}

impl RecordFilter<contact::Entity> for ContactFilter {
    async fn restrict(mut self, who: &Principal) -> ApiResult<Self> {
        if masks(who, "Contact").await?.may_hide("email") {
            if self.email.is_some() {
                return Err(hidden_field("filter.email"));
            }
            self.names_only = true;
        }
        Ok(self)
    }

    fn select(self) -> Select<contact::Entity> {
        use contact::Column as C;
        let mut s = unarchived(contact::Entity::find(), self.include_archived);
        let searched = crm_service_common::search::Searchable::searched(&self);
        s = s.text_search(self.text.as_deref(), &searched);
        s = s.eq_if(C::AccountId, self.account_id.map(|v| v.0));
        if let Some(v) = self.email {
            s = s.filter(Expr::col(C::Email).eq(v.trim().to_owned()));
        }
        s
    }
}

/// Fields of a contact. On create, `accountId`, `firstName` and `lastName` are required.
#[derive(InputObject, Default, Clone, Debug)]
pub struct ContactInput {
    pub account_id: Option<ID>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: MaybeUndefined<String>,
    pub phone: MaybeUndefined<String>,
    pub title: MaybeUndefined<String>,
    /// Consents to record; purposes and channels left out keep their current value.
    pub consents: Option<Vec<ConsentInput>>,
}

impl RecordInput<contact::Entity> for ContactInput {
    fn apply(
        &self,
        m: &mut contact::ActiveModel,
        creating: bool,
    ) -> crm_service_common::ApiResult<()> {
        if let Some(v) = required(creating, "input.accountId", &self.account_id)? {
            set(&mut m.account_id, v.0.clone());
        }
        if let Some(v) = required(creating, "input.firstName", &self.first_name)? {
            set(&mut m.first_name, text("input.firstName", v, 100)?);
        }
        if let Some(v) = required(creating, "input.lastName", &self.last_name)? {
            set(&mut m.last_name, text("input.lastName", v, 100)?);
        }
        optional(&mut m.email, &self.email, |v| email("input.email", v))?;
        optional(&mut m.phone, &self.phone, |v| phone("input.phone", v))?;
        optional(&mut m.title, &self.title, |v| {
            optional_text("input.title", Some(v), 200).map(Option::unwrap_or_default)
        })?;
        for consent in self.consents.iter().flatten() {
            let target = match (consent.purpose, consent.channel) {
                (ConsentPurpose::Marketing, ConsentChannel::Email) => {
                    &mut m.consent_marketing_email
                }
                (ConsentPurpose::Marketing, ConsentChannel::Phone) => {
                    &mut m.consent_marketing_phone
                }
                (ConsentPurpose::PartnerSharing, ConsentChannel::Email) => {
                    &mut m.consent_partner_sharing_email
                }
                (ConsentPurpose::PartnerSharing, ConsentChannel::Phone) => {
                    &mut m.consent_partner_sharing_phone
                }
            };
            set(target, consent.granted);
        }
        Ok(())
    }

    async fn check_references(&self, ctx: &Context<'_>) -> crm_service_common::ApiResult<()> {
        if let Some(id) = &self.account_id {
            ensure_exists::<account::Entity>(ctx, "input.accountId", id).await?;
        }
        Ok(())
    }
}

pub(crate) async fn list_contacts(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    filter: Option<ContactFilter>,
    order_by: Option<ContactOrder>,
) -> Result<ContactConnection> {
    ContactQuery
        .contacts(ctx, first, after, filter, order_by)
        .await
}

record_operations!(
    ContactQuery, ContactMutation, Contact, contact, ContactInput,
    list: contacts(ContactFilter, ContactOrder) -> ContactConnection, one: contact,
    mutations: create_contact, update_contact, upsert_contact, archive_contact
);
