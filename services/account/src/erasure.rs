//! The job that erases a person's data in the account service, in one transaction, and
//! publishes `person.erased` for the other services (`crm_service_common::erasure`).
//!
//! The person is every contact and lead the request names, and every other contact and
//! lead with one of their email addresses. Then:
//! 1. the field history of every record about them (the contacts and leads, their
//!    interactions, cases and the cases' comments, the tasks on them, the notifications
//!    about any of those) forgets its kept values;
//! 2. the contacts and leads become tombstones (names, email, phone, title, company and
//!    consents erased, archived), the free text of the records about them is blanked, and
//!    the evidence of their consent statements removed (the statements stay: proof of
//!    what they agreed to and withdrew, without the person);
//! 3. data exports about them keep their request but lose their document;
//! 4. their email addresses are scrubbed from every other free text of this service
//!    (account notes, opportunities, deal registrations, anything about someone else that
//!    mentions them), and from every kept value of any history;
//! 5. the erasure is recorded in the audit chain and in `erasures_applied`, the event is
//!    appended to the outbox, and the request keeps only ids and counts.

use crm_service_common::ApiResult;
use crm_service_common::audit::{self, value};
use crm_service_common::erasure::{self, Erasure, TOMBSTONE, tombstone};
use crm_service_common::events::outbox;
use crm_service_common::jobs::{Job, Outcome};
use crm_service_common::privacy::Terms;
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, ExprTrait,
    IntoActiveModel, QueryFilter, QuerySelect, Value as ColumnValue,
};
use serde::Deserialize;
use serde_json::json;

use crate::domain::{DataErasureStatus, DataExportStatus};
use crate::entity::*;
use crate::store::{self, set};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErasureRef {
    erasure_id: String,
}

/// Runs one erasure request (nothing when it is gone or done).
pub async fn run(txn: &DatabaseTransaction, job: &Job) -> ApiResult<Outcome> {
    let ErasureRef { erasure_id } = job.payload()?;
    let Some(request) = data_erasure::Entity::find_by_id(erasure_id)
        .one(txn)
        .await?
    else {
        return Ok(Outcome::Done);
    };
    if request.status == DataErasureStatus::Done {
        return Ok(Outcome::Done);
    }
    let person = Person::of(txn, &request).await?;
    let terms = Terms::new(person.emails.clone());
    let erasure = Erasure::new(
        &request.id,
        person.contact_ids.clone(),
        person.lead_ids.clone(),
        &terms,
    );
    let about = person.records_about(txn).await?;
    let mut changed = erasure::forget_history_of(txn, &about.all()).await?;
    changed += person.tombstone(txn, &about).await?;
    changed += forget_exports(txn, &person, &terms).await?;
    changed += scrub_mentions(txn, &erasure, &terms).await?;
    changed +=
        erasure::forget_values_naming(txn, &erasure, terms.mentioned_in(&[value::Column::Value]))
            .await?;
    let detail = json!({ "erasure": request.id, "requestedBy": request.requested_by });
    for id in &person.contact_ids {
        audit::record_erasure(txn, ("contacts", id), detail.clone()).await?;
    }
    for id in &person.lead_ids {
        audit::record_erasure(txn, ("leads", id), detail.clone()).await?;
    }
    erasure::record_applied(txn, &erasure, crate::SERVICE, changed).await?;
    outbox::append(txn, vec![erasure.event()]).await?;
    let mut done = request.into_active_model();
    set(&mut done.status, DataErasureStatus::Done);
    set(&mut done.email, None);
    set(
        &mut done.records,
        i32::try_from(changed).unwrap_or(i32::MAX),
    );
    set(
        &mut done.erased_ids,
        json!({ "contactIds": person.contact_ids, "leadIds": person.lead_ids }).to_string(),
    );
    set(&mut done.finished_at, Some(store::now()));
    done.update(txn).await?;
    Ok(Outcome::Done)
}

/// Whom a request erases.
struct Person {
    contact_ids: Vec<String>,
    lead_ids: Vec<String>,
    /// Every email address of theirs, lower-cased.
    emails: Vec<String>,
}

/// The records about a person (besides their contacts and leads).
struct About {
    interactions: Vec<String>,
    cases: Vec<String>,
    comments: Vec<String>,
    tasks: Vec<String>,
    notifications: Vec<String>,
    people: Vec<String>,
}

impl About {
    fn all(&self) -> Vec<String> {
        [
            &self.people,
            &self.interactions,
            &self.cases,
            &self.comments,
            &self.tasks,
            &self.notifications,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }
}

fn lower_email<C: ColumnTrait>(column: C) -> sea_orm::sea_query::SimpleExpr {
    Expr::expr(Func::lower(Expr::col(column)))
}

impl Person {
    /// The contacts and leads the request names, and every one sharing an email with
    /// them.
    async fn of(txn: &DatabaseTransaction, request: &data_erasure::Model) -> ApiResult<Self> {
        let mut emails: Vec<String> = request.email.iter().cloned().collect();
        if let Some(id) = &request.contact_id {
            emails.extend(
                contact::Entity::find_by_id(id.clone())
                    .one(txn)
                    .await?
                    .and_then(|c| c.email),
            );
        }
        if let Some(id) = &request.lead_id {
            emails.extend(
                lead::Entity::find_by_id(id.clone())
                    .one(txn)
                    .await?
                    .and_then(|l| l.email),
            );
        }
        let emails: Vec<String> = Terms::new(emails).0;
        let contacts: Vec<(String, Option<String>)> = contact::Entity::find()
            .select_only()
            .columns([contact::Column::Id, contact::Column::Email])
            .filter(
                Condition::any()
                    .add(contact::Column::Id.is_in(request.contact_id.clone()))
                    .add(lower_email(contact::Column::Email).is_in(emails.clone())),
            )
            .into_tuple()
            .all(txn)
            .await?;
        let leads: Vec<(String, Option<String>)> = lead::Entity::find()
            .select_only()
            .columns([lead::Column::Id, lead::Column::Email])
            .filter(
                Condition::any()
                    .add(lead::Column::Id.is_in(request.lead_id.clone()))
                    .add(lower_email(lead::Column::Email).is_in(emails.clone())),
            )
            .into_tuple()
            .all(txn)
            .await?;
        let all_emails = contacts
            .iter()
            .chain(&leads)
            .filter_map(|(_, email)| email.clone())
            .chain(emails);
        Ok(Self {
            emails: Terms::new(all_emails).0,
            contact_ids: contacts.into_iter().map(|(id, _)| id).collect(),
            lead_ids: leads.into_iter().map(|(id, _)| id).collect(),
        })
    }

    async fn records_about(&self, txn: &DatabaseTransaction) -> ApiResult<About> {
        let interactions = ids_of::<interaction::Entity>(
            txn,
            interaction::Column::Id,
            interaction::Column::ContactId,
            &self.contact_ids,
        )
        .await?;
        let cases = ids_of::<case::Entity>(
            txn,
            case::Column::Id,
            case::Column::ContactId,
            &self.contact_ids,
        )
        .await?;
        let comments = ids_of::<case_comment::Entity>(
            txn,
            case_comment::Column::Id,
            case_comment::Column::CaseId,
            &cases,
        )
        .await?;
        let mut people = self.contact_ids.clone();
        people.extend(self.lead_ids.iter().cloned());
        let tasks =
            ids_of::<task::Entity>(txn, task::Column::Id, task::Column::RecordId, &people).await?;
        let subjects: Vec<String> = [&people, &interactions, &cases, &comments, &tasks]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let notifications = ids_of::<notification::Entity>(
            txn,
            notification::Column::Id,
            notification::Column::RecordId,
            &subjects,
        )
        .await?;
        Ok(About {
            interactions,
            cases,
            comments,
            tasks,
            notifications,
            people,
        })
    }

    /// Tombstones the person's contacts and leads and blanks the free text about them.
    async fn tombstone(&self, txn: &DatabaseTransaction, about: &About) -> ApiResult<u64> {
        let no = || ColumnValue::from(false);
        let mut changed = tombstone::<contact::Entity>(
            txn,
            contact::Column::Id,
            &self.contact_ids,
            &[
                (contact::Column::FirstName, erased()),
                (contact::Column::LastName, ColumnValue::from(String::new())),
                (contact::Column::Email, none()),
                (contact::Column::Phone, none()),
                (contact::Column::Title, none()),
            ]
            .into_iter()
            .chain(
                contact::CONSENTS
                    .map(|(purpose, channel)| (contact::consent_column(purpose, channel), no())),
            )
            .collect::<Vec<_>>(),
        )
        .await?;
        changed += tombstone::<lead::Entity>(
            txn,
            lead::Column::Id,
            &self.lead_ids,
            &[
                (lead::Column::FirstName, erased()),
                (lead::Column::LastName, ColumnValue::from(String::new())),
                (lead::Column::Company, erased()),
                (lead::Column::Email, none()),
                (lead::Column::Phone, none()),
                (lead::Column::DeclineReason, none()),
            ],
        )
        .await?;
        archive::<contact::Entity>(
            txn,
            contact::Column::Id,
            contact::Column::ArchivedAt,
            &self.contact_ids,
        )
        .await?;
        archive::<lead::Entity>(
            txn,
            lead::Column::Id,
            lead::Column::ArchivedAt,
            &self.lead_ids,
        )
        .await?;
        changed += tombstone::<consent_change::Entity>(
            txn,
            consent_change::Column::ContactId,
            &self.contact_ids,
            &[(consent_change::Column::Evidence, none())],
        )
        .await?;
        changed += tombstone::<interaction::Entity>(
            txn,
            interaction::Column::Id,
            &about.interactions,
            &[
                (interaction::Column::Subject, erased()),
                (interaction::Column::Body, none()),
            ],
        )
        .await?;
        changed += tombstone::<task::Entity>(
            txn,
            task::Column::Id,
            &about.tasks,
            &[
                (task::Column::Title, erased()),
                (task::Column::Notes, none()),
            ],
        )
        .await?;
        changed += blank_cases(txn, &about.cases, &about.comments, &about.notifications).await?;
        Ok(changed)
    }
}

fn erased() -> ColumnValue {
    ColumnValue::from(TOMBSTONE.to_owned())
}

fn none() -> ColumnValue {
    ColumnValue::from(Option::<String>::None)
}

/// Blanks the text of `cases`, of `comments` and of `notifications` (an erasure's and
/// the closed-case retention's part alike). Returns the rows changed.
pub(crate) async fn blank_cases(
    txn: &DatabaseTransaction,
    cases: &[String],
    comments: &[String],
    notifications: &[String],
) -> ApiResult<u64> {
    Ok(tombstone::<case::Entity>(
        txn,
        case::Column::Id,
        cases,
        &[
            (case::Column::Subject, erased()),
            (case::Column::Description, none()),
        ],
    )
    .await?
        + tombstone::<case_comment::Entity>(
            txn,
            case_comment::Column::Id,
            comments,
            &[(case_comment::Column::Body, erased())],
        )
        .await?
        + tombstone::<notification::Entity>(
            txn,
            notification::Column::Id,
            notifications,
            &[
                (notification::Column::Title, erased()),
                (notification::Column::Body, none()),
            ],
        )
        .await?)
}

/// The ids (`id`) of the rows of `E` whose `key` is one of `keys`.
pub(crate) async fn ids_of<E: EntityTrait>(
    txn: &DatabaseTransaction,
    id: E::Column,
    key: E::Column,
    keys: &[String],
) -> ApiResult<Vec<String>> {
    let mut out = Vec::new();
    for chunk in keys.chunks(500) {
        let ids: Vec<String> = E::find()
            .select_only()
            .column(id)
            .filter(key.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(txn)
            .await?;
        out.extend(ids);
    }
    Ok(out)
}

/// Archives the rows of `E` among `ids` that are not archived yet.
async fn archive<E: EntityTrait>(
    txn: &DatabaseTransaction,
    id: E::Column,
    archived_at: E::Column,
    ids: &[String],
) -> ApiResult<()> {
    for chunk in ids.chunks(500) {
        E::update_many()
            .col_expr(archived_at, Expr::val(store::now()))
            .filter(id.is_in(chunk.iter().cloned()))
            .filter(archived_at.is_null())
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// The data exports about the person keep their request and lose what they gathered.
async fn forget_exports(
    txn: &DatabaseTransaction,
    person: &Person,
    terms: &Terms,
) -> ApiResult<u64> {
    let about = Condition::any()
        .add(data_export::Column::ContactId.is_in(person.contact_ids.clone()))
        .add(lower_email(data_export::Column::Email).is_in(person.emails.clone()))
        .add(terms.mentioned_in(&[data_export::Column::Terms]));
    let update = data_export::Entity::update_many()
        .col_expr(
            data_export::Column::Status,
            Expr::val(DataExportStatus::Erased),
        )
        .col_expr(data_export::Column::Document, Expr::val("{}"))
        .col_expr(data_export::Column::Terms, Expr::val("[]"))
        .col_expr(
            data_export::Column::Email,
            Expr::val(Option::<String>::None),
        );
    Ok(erasure::touched(update)
        .filter(about)
        .exec(txn)
        .await?
        .rows_affected)
}

/// Scrubs the person's email addresses from every free text of this service.
async fn scrub_mentions(
    txn: &DatabaseTransaction,
    erasure: &Erasure,
    terms: &Terms,
) -> ApiResult<u64> {
    macro_rules! scrub {
        ($($entity:ident :: $column:ident),* $(,)?) => {{
            let mut changed = 0;
            $(
                changed += erasure::scrub_text::<$entity::Entity>(
                    txn,
                    erasure,
                    $entity::Column::$column,
                    terms.mentioned_in(&[$entity::Column::$column]),
                )
                .await?;
            )*
            changed
        }};
    }
    Ok(scrub!(
        account::InternalNote,
        contact::Title,
        lead::DeclineReason,
        opportunity::Name,
        deal_registration::ProspectName,
        deal_registration::Notes,
        deal_registration::DecisionReason,
        interaction::Subject,
        interaction::Body,
        case::Subject,
        case::Description,
        case_comment::Body,
        task::Title,
        task::Notes,
        notification::Title,
        notification::Body,
        consent_change::Evidence,
    ))
}
