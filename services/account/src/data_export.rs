//! The job that gathers a data-subject export's account part, one section per run so that
//! its progress shows while it works (each run commits its section and runs again at
//! once): the person (the contacts and leads with their emails, and the consent history),
//! their activity (interactions, cases with their comments, tasks on their records), and
//! the audit log about all of those (field history with its kept values, and the reads of
//! partners). Each step re-reads the request, so a retried run repeats its section whole;
//! the later sections take the person's records from the first one, so every section is
//! about the same people.

use crm_service_common::ApiResult;
use crm_service_common::audit::entry;
use crm_service_common::jobs::{Job, Outcome};
use crm_service_common::privacy::Terms;
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, ExprTrait, IntoActiveModel,
    QueryFilter, QueryOrder,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::DataExportStatus;
use crate::entity::*;
use crate::graphql::privacy::contacts_of;
use crate::store::{self, set};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportRef {
    export_id: String,
}

/// The sections, in order, with the progress each one completes.
const STEPS: [(&str, i32); 3] = [("person", 34), ("activity", 67), ("audit", 100)];

/// One run: the next section of the request, or nothing once it is done.
pub async fn step(txn: &DatabaseTransaction, job: &Job) -> ApiResult<Outcome> {
    let ExportRef { export_id } = job.payload()?;
    let Some(request) = data_export::Entity::find_by_id(export_id).one(txn).await? else {
        return Ok(Outcome::Done);
    };
    let Some(&(section, progress)) = STEPS.iter().find(|(_, p)| *p > request.progress) else {
        return Ok(Outcome::Done);
    };
    let mut document: serde_json::Map<String, Value> =
        serde_json::from_str(&request.document).unwrap_or_default();
    let mut terms = request.terms.clone();
    match section {
        "person" => {
            // Who the person is, once: the later sections read it from here.
            let contacts = contacts_of(txn, &request).await?;
            let contact_ids: Vec<String> = contacts.iter().map(|c| c.id.clone()).collect();
            let mut emails: Vec<String> = contacts
                .iter()
                .filter_map(|c| c.email.as_deref().map(str::to_lowercase))
                .chain(request.email.clone())
                .collect();
            emails.sort();
            emails.dedup();
            let leads = lead::Entity::find()
                .filter(
                    Expr::expr(Func::lower(Expr::col(lead::Column::Email))).is_in(emails.clone()),
                )
                .into_json()
                .all(txn)
                .await?;
            document.insert(
                "contacts".into(),
                json_of::<contact::Entity>(txn, contact::Column::Id, &contact_ids)
                    .await?
                    .into(),
            );
            document.insert("leads".into(), leads.into());
            document.insert(
                "consentHistory".into(),
                json_of::<consent_change::Entity>(
                    txn,
                    consent_change::Column::ContactId,
                    &contact_ids,
                )
                .await?
                .into(),
            );
            terms = Terms::new(emails).key();
        }
        "activity" => {
            let contact_ids = section_ids(&document, "contacts");
            let interactions =
                json_of::<interaction::Entity>(txn, interaction::Column::ContactId, &contact_ids)
                    .await?;
            let cases = json_of::<case::Entity>(txn, case::Column::ContactId, &contact_ids).await?;
            let case_ids = ids_in(&cases);
            let comments =
                json_of::<case_comment::Entity>(txn, case_comment::Column::CaseId, &case_ids)
                    .await?;
            let mut records = contact_ids;
            records.extend(section_ids(&document, "leads"));
            let tasks = json_of::<task::Entity>(txn, task::Column::RecordId, &records).await?;
            document.insert("interactions".into(), interactions.into());
            document.insert("cases".into(), cases.into());
            document.insert("caseComments".into(), comments.into());
            document.insert("tasks".into(), tasks.into());
        }
        _ => {
            // The records of the export so far: the audit log about each of them.
            let records: Vec<String> = [
                "contacts",
                "leads",
                "interactions",
                "cases",
                "caseComments",
                "tasks",
            ]
            .iter()
            .flat_map(|kind| section_ids(&document, kind))
            .collect();
            document.insert("auditLog".into(), audit_about(txn, &records).await?.into());
        }
    }
    let done = progress == 100;
    let mut change = request.clone().into_active_model();
    set(&mut change.document, Value::Object(document).to_string());
    set(&mut change.progress, progress);
    set(&mut change.terms, terms);
    set(
        &mut change.status,
        if done {
            DataExportStatus::Done
        } else {
            DataExportStatus::Running
        },
    );
    if done {
        set(&mut change.finished_at, Some(store::now()));
    }
    // Not a change anyone made: the request's creation is what the audit log keeps (the
    // gathered document would only copy the person's data into it).
    change.update(txn).await?;
    if done {
        Ok(Outcome::Done)
    } else {
        Ok(Outcome::RunAgainAt(store::now()))
    }
}

/// The rows of `E` whose `column` is one of `ids`, as JSON objects.
async fn json_of<E: EntityTrait>(
    txn: &DatabaseTransaction,
    column: E::Column,
    ids: &[String],
) -> ApiResult<Vec<Value>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        out.extend(
            E::find()
                .filter(column.is_in(chunk.iter().cloned()))
                .into_json()
                .all(txn)
                .await?,
        );
    }
    Ok(out)
}

/// The ids of the rows of one section gathered so far.
fn section_ids(document: &serde_json::Map<String, Value>, section: &str) -> Vec<String> {
    document
        .get(section)
        .and_then(Value::as_array)
        .map(|rows| ids_in(rows))
        .unwrap_or_default()
}

fn ids_in(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect()
}

/// The audit log about `records`: each field change with its kept values (erased values
/// are gone), and each partner read with the fields it was given.
async fn audit_about(txn: &DatabaseTransaction, records: &[String]) -> ApiResult<Vec<Value>> {
    let mut out = Vec::new();
    for chunk in records.chunks(500) {
        let entries = entry::Entity::find()
            .filter(entry::Column::RecordId.is_in(chunk.iter().cloned()))
            .order_by_asc(entry::Column::At)
            .order_by_asc(entry::Column::Seq)
            .all(txn)
            .await?;
        let mut values = crm_service_common::audit::kept_values(txn, &entries).await?;
        out.extend(entries.into_iter().map(|e| {
            let mut take = |side: &str| values.remove(&(e.id.clone(), side.to_owned()));
            let (old, new) = (take("old"), take("new"));
            let detail: Value = e
                .detail
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or(Value::Null);
            json!({
                "at": e.at,
                "action": e.action,
                "recordType": e.record_type,
                "recordId": e.record_id,
                "field": e.field,
                "oldValue": old,
                "newValue": new,
                "actor": e.actor,
                "actorKind": e.actor_kind,
                "organisation": e.organisation,
                "read": detail,
            })
        }));
    }
    Ok(out)
}
