//! `Contact`: a person at an account, with consent per purpose and channel.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Result, SimpleObject};
use chrono::{DateTime, Utc};
use crm_service_common::access::{Masks, hidden_field, masks, unmasked};
use crm_service_common::audit::Actor;
use crm_service_common::domain::{email, new_id, optional_text, phone, text};
use crm_service_common::events::outbox;
use crm_service_common::graphql::db;
use crm_service_common::import::{ImportReference, Importable, referenced};
use crm_service_common::import_operation;
use crm_service_common::normalise::{email_key, phone_key};
use crm_service_common::principal::{Principal, PrincipalKind};
use crm_service_common::{ApiError, ApiResult, connection_types};
use sea_orm::ActiveValue::Set;
use sea_orm::ExprTrait;
use sea_orm::sea_query::Expr;
use sea_orm::{EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};

use super::account::Account;
use super::{
    FilterExt, RecordFilter, RecordInput, ensure_exists, load, optional, ordering, record_object,
    record_operations, required, unarchived,
};
use crate::domain::{ConsentChannel, ConsentPurpose, ConsentSource};
use crate::entity::{account, consent_change, contact};
use crate::store::{consent_changed, now, set};

#[derive(Clone)]
pub struct Contact(pub contact::Model);

connection_types!(ContactConnection, ContactEdge, Contact);

/// Whether a person agreed to be contacted (or shared) for one purpose over one channel,
/// as the latest statement about it says.
#[derive(SimpleObject, Clone, Debug)]
pub struct Consent {
    pub purpose: ConsentPurpose,
    pub channel: ConsentChannel,
    pub granted: bool,
    /// Where the latest statement came from (null: recorded before consent history was
    /// kept, or never stated, which reads as not granted).
    pub source: Option<ConsentSource>,
    /// When the latest statement was recorded.
    pub recorded_at: Option<DateTime<Utc>>,
}

/// One consent statement in a person's consent history.
#[derive(SimpleObject, Clone, Debug)]
pub struct ConsentChange {
    pub purpose: ConsentPurpose,
    pub channel: ConsentChannel,
    pub granted: bool,
    pub source: ConsentSource,
    /// What the person agreed to and where (a form, a call): the company's staff only.
    pub evidence: Option<String>,
    pub recorded_at: DateTime<Utc>,
    /// Who recorded it: a user's or API key's id, or `system`. Partners see the ids of
    /// their own organisation only (null for the company's people).
    pub recorded_by: Option<String>,
    /// `internal`, `supplier`, `distributor`, `integrator` or `system`.
    pub recorder_kind: String,
}

/// A consent to record. `source` defaults to where the caller is: `STAFF` for the
/// company's people, `IMPORT` for API keys, `PARTNER` for partners (who can state no
/// other).
#[derive(InputObject, Clone, Debug)]
pub struct ConsentInput {
    pub purpose: ConsentPurpose,
    pub channel: ConsentChannel,
    pub granted: bool,
    pub source: Option<ConsentSource>,
    /// What the person agreed to and where (at most 1,000 characters).
    pub evidence: Option<String>,
}

/// The most statements `consentHistory` answers.
const MAX_CONSENT_HISTORY: i32 = 200;

/// A contact's consent statements, newest first (at most `limit`).
async fn consent_statements<C: sea_orm::ConnectionTrait>(
    db: &C,
    contact_id: &str,
    limit: Option<u64>,
) -> ApiResult<Vec<consent_change::Model>> {
    Ok(consent_change::Entity::find()
        .filter(Expr::col(consent_change::Column::ContactId).eq(contact_id))
        .order_by_desc(consent_change::Column::RecordedAt)
        .order_by_desc(consent_change::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// Loads the consent statements of many contacts in one query (newest first per
/// contact): what `Contact.consents` reads on a page of contacts. The contacts themselves
/// were read through the policy; their statements come with them.
pub struct ConsentLoader {
    db: sea_orm::DatabaseConnection,
}

impl ConsentLoader {
    pub fn new(db: &sea_orm::DatabaseConnection) -> Self {
        Self { db: db.clone() }
    }
}

impl Loader<String> for ConsentLoader {
    type Value = Vec<consent_change::Model>;
    type Error = std::sync::Arc<ApiError>;

    async fn load(
        &self,
        keys: &[String],
    ) -> std::result::Result<HashMap<String, Self::Value>, Self::Error> {
        let rows = consent_change::Entity::find()
            .filter(Expr::col(consent_change::Column::ContactId).is_in(keys.iter().cloned()))
            .order_by_desc(consent_change::Column::RecordedAt)
            .order_by_desc(consent_change::Column::Id)
            .all(&self.db)
            .await
            .map_err(|e| std::sync::Arc::new(ApiError::from(e)))?;
        let mut by_contact: HashMap<String, Self::Value> = HashMap::new();
        for row in rows {
            by_contact
                .entry(row.contact_id.clone())
                .or_default()
                .push(row);
        }
        Ok(by_contact)
    }
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
    /// Consent for every purpose and channel (absent consent is `granted: false`), with
    /// where and when the latest statement of each was recorded.
    async fn consents(&self, ctx: &Context<'_>) -> Result<Vec<Consent>> {
        // A page of contacts loads its statements in one query (every request carries
        // the loader: `prepare_request`).
        let statements = ctx
            .data::<DataLoader<ConsentLoader>>()
            .map_err(|e| ApiError::internal(e.message))?
            .load_one(self.0.id.clone())
            .await
            .map_err(|e| ApiError::internal(e.message()))?
            .unwrap_or_default();
        Ok(contact::CONSENTS
            .iter()
            .map(|&(purpose, channel)| {
                let latest = statements
                    .iter()
                    .find(|s| s.purpose == purpose && s.channel == channel);
                Consent {
                    purpose,
                    channel,
                    granted: self.0.consents_to(purpose, channel),
                    source: latest.map(|s| s.source),
                    recorded_at: latest.map(|s| s.recorded_at),
                }
            })
            .collect())
    }
    /// Every consent statement about the person, newest first.
    async fn consent_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
    ) -> Result<Vec<ConsentChange>> {
        if !(1..=MAX_CONSENT_HISTORY).contains(&first) {
            return Err(ApiError::validation(
                "first",
                format!("between 1 and {MAX_CONSENT_HISTORY}"),
            )
            .into());
        }
        let who = Principal::of(ctx);
        let company = who.partner().is_none();
        let statements = consent_statements(db(ctx)?, &self.0.id, Some(first as u64)).await?;
        Ok(statements
            .into_iter()
            .map(|s| {
                let own = company || who.partner() == Some(s.recorder_organisation.as_str());
                ConsentChange {
                    purpose: s.purpose,
                    channel: s.channel,
                    granted: s.granted,
                    source: s.source,
                    evidence: if company { s.evidence } else { None },
                    recorded_at: s.recorded_at,
                    recorded_by: own.then_some(s.recorded_by),
                    recorder_kind: s.recorder_kind,
                }
            })
            .collect())
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
        let mut stated = std::collections::HashSet::new();
        for consent in self.consents.iter().flatten() {
            if !stated.insert((consent.purpose, consent.channel)) {
                return Err(ApiError::validation(
                    "input.consents",
                    "names the same purpose and channel twice",
                ));
            }
            optional_text(
                "input.consents.evidence",
                consent.evidence.as_deref(),
                1_000,
            )?;
            // Only a changed consent is set, so restating one does not bump the version.
            let column = contact::consent_column(consent.purpose, consent.channel);
            let granted = sea_orm::Value::from(consent.granted);
            let held = sea_orm::ActiveModelTrait::get(m, column);
            if held.into_value() != Some(granted.clone()) {
                sea_orm::ActiveModelTrait::set(m, column, granted);
            }
        }
        Ok(())
    }

    /// Keeps each consent the input states in the person's consent history (with its
    /// source and evidence) when it differs from the latest statement, and tells other
    /// services by a `contact.consent_changed` event.
    async fn after_write(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        who: &Principal,
        record: &contact::Model,
    ) -> ApiResult<()> {
        let Some(consents) = &self.consents else {
            return Ok(());
        };
        let statements = consent_statements(txn, &record.id, None).await?;
        let recorder = Actor::of(who);
        let at = now();
        let mut rows = Vec::new();
        let mut events = Vec::new();
        for consent in consents {
            let source = match (who.partner(), who.kind, consent.source) {
                (Some(_), _, None | Some(ConsentSource::Partner)) => ConsentSource::Partner,
                (Some(_), _, Some(_)) => {
                    return Err(ApiError::validation(
                        "input.consents.source",
                        "a partner records the consents it collected: PARTNER",
                    ));
                }
                (None, _, Some(source)) => source,
                (None, PrincipalKind::Integrator, None) => ConsentSource::Import,
                (None, _, None) => ConsentSource::Staff,
            };
            let latest = statements
                .iter()
                .find(|s| s.purpose == consent.purpose && s.channel == consent.channel);
            if latest.is_some_and(|s| s.granted == consent.granted) {
                continue;
            }
            rows.push(consent_change::ActiveModel {
                id: Set(new_id("cns")),
                contact_id: Set(record.id.clone()),
                purpose: Set(consent.purpose),
                channel: Set(consent.channel),
                granted: Set(consent.granted),
                source: Set(source),
                evidence: Set(optional_text(
                    "input.consents.evidence",
                    consent.evidence.as_deref(),
                    1_000,
                )?),
                recorded_at: Set(at),
                recorded_by: Set(recorder.subject.clone()),
                recorder_kind: Set(recorder.kind.clone()),
                recorder_organisation: Set(recorder.organisation.clone()),
            });
            events.push(consent_changed(
                record,
                consent.purpose,
                consent.channel,
                consent.granted,
                source,
                at,
            ));
        }
        if !rows.is_empty() {
            consent_change::Entity::insert_many(rows)
                .exec_without_returning(txn)
                .await?;
        }
        outbox::append(txn, events).await
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

impl Importable<contact::Entity> for ContactInput {
    async fn resolve(
        &mut self,
        ctx: &Context<'_>,
        txn: &sea_orm::DatabaseTransaction,
        reference: &ImportReference,
    ) -> ApiResult<()> {
        match reference.field.as_str() {
            "accountId" => {
                self.account_id = Some(referenced::<account::Entity>(ctx, txn, reference).await?);
                Ok(())
            }
            other => Err(ApiError::validation(
                format!("references.{other}"),
                "is not a reference a contact takes (accountId)",
            )),
        }
    }

    /// The same person: the email's key or the phone's digits (each when the caller may
    /// read it), compared through the indexes on those expressions.
    fn looks_like(&self, masks: &Masks) -> Option<sea_orm::sea_query::SimpleExpr> {
        let mut any = Vec::new();
        if let MaybeUndefined::Value(email) = &self.email
            && !masks.may_hide("email")
        {
            any.push(
                sea_orm::sea_query::Func::lower(Expr::col(contact::Column::Email))
                    .eq(email_key(email)),
            );
        }
        if let MaybeUndefined::Value(phone) = &self.phone
            && !masks.may_hide("phone")
        {
            let digits = phone_key(phone);
            if !digits.is_empty() {
                // The key is ASCII digits only, so it is written into the statement as
                // is (the expression must read as the index's for the index to be used).
                any.push(Expr::cust(format!(
                    "{} = '{digits}'",
                    contact::PHONE_DIGITS
                )));
            }
        }
        any.into_iter().reduce(|a, b| a.or(b))
    }
}

import_operation!(
    ContactImportMutation,
    contact,
    ContactInput,
    ContactImportRow,
    import_contacts
);

record_operations!(
    ContactQuery, ContactMutation, Contact, contact, ContactInput,
    list: contacts(ContactFilter, ContactOrder) -> ContactConnection, one: contact,
    mutations: create_contact, update_contact, upsert_contact, archive_contact
);
