//! Data-subject requests for administrators: ask for everything held about one person (by
//! contact id or email), follow the job's progress, and download the export: one JSON
//! file with the account service's sections and what every service's free text says
//! about the person; and erase a person (by contact, lead or email) in every service,
//! following each service's part until all are done. Who may is the API's answer
//! (`DataExport`, `DataErasure`); this page only asks.

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::client::{ApiFailure, FieldError};
use super::super::{Chrome, FormErrors, InApp, PageResult, Signed, render};
use super::{When, field, plausible_id, posted, words};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportRow {
    id: String,
    contact_id: Option<String>,
    email: Option<String>,
    status: String,
    progress: i64,
    requested_by: String,
    created_at: When,
    finished_at: When,
}

/// One service's part of an erasure, once applied.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErasurePart {
    records: i64,
    applied_at: When,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ErasureParts {
    account: Option<ErasurePart>,
    order_visibility: Option<ErasurePart>,
    knowledge_base: Option<ErasurePart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErasureRow {
    id: String,
    contact_id: Option<String>,
    lead_id: Option<String>,
    email: Option<String>,
    status: String,
    erased_contact_ids: Vec<String>,
    erased_lead_ids: Vec<String>,
    requested_by: String,
    created_at: When,
    #[serde(default)]
    progress: ErasureParts,
}

impl ErasureRow {
    /// Each service's part: its name and, once applied, how much it changed and when.
    fn parts(&self) -> [(&'static str, Option<&ErasurePart>); 3] {
        [
            ("Accounts", self.progress.account.as_ref()),
            ("Orders", self.progress.order_visibility.as_ref()),
            ("Knowledge base", self.progress.knowledge_base.as_ref()),
        ]
    }

    fn complete(&self) -> bool {
        self.parts().iter().all(|(_, part)| part.is_some())
    }
}

/// The erase form as typed (or prefilled from a record's page).
#[derive(Default)]
struct EraseForm {
    contact_id: String,
    lead_id: String,
    email: String,
    errors: FormErrors,
}

#[derive(Template)]
#[template(path = "app/privacy.html")]
struct PrivacyPage {
    chrome: Chrome,
    exports: Vec<ExportRow>,
    /// An export is still being gathered: the list refreshes itself until none is.
    gathering: bool,
    contact_id: String,
    email: String,
    errors: FormErrors,
    /// The caller may erase people (else the erasure section is not shown).
    may_erase: bool,
    erasures: Vec<ErasureRow>,
    /// An erasure is not yet applied everywhere: the list refreshes itself until it is.
    erasing: bool,
    erase: EraseForm,
}

const PART: &str = "records appliedAt";

async fn page_with(
    ctx: super::super::Ctx,
    contact_id: String,
    email: String,
    errors: FormErrors,
    erase: EraseForm,
) -> PageResult {
    if !ctx.me.reads("DataExport") {
        return Err(ctx.refuse(ApiFailure::Forbidden(
            "Data-subject requests are for administrators.".into(),
        )));
    }
    let may_erase = ctx.me.reads("DataErasure");
    let erasures = if may_erase {
        format!(
            "dataErasures(first: 100) {{ id contactId leadId email status erasedContactIds erasedLeadIds requestedBy createdAt \
             progress {{ account {{ {PART} }} orderVisibility {{ {PART} }} knowledgeBase {{ {PART} }} }} }}"
        )
    } else {
        String::new()
    };
    let data: Value = ctx
        .query(
            &format!(
                "{{ dataExports(first: 100) {{ id contactId email status progress requestedBy createdAt finishedAt }} {erasures} }}"
            ),
            json!({}),
        )
        .await?;
    let exports: Vec<ExportRow> =
        serde_json::from_value(data["dataExports"].clone()).unwrap_or_default();
    let erasures: Vec<ErasureRow> =
        serde_json::from_value(data["dataErasures"].clone()).unwrap_or_default();
    Ok(render(&PrivacyPage {
        chrome: ctx.chrome("Data-subject requests"),
        gathering: exports
            .iter()
            .any(|x| x.status == "PENDING" || x.status == "RUNNING"),
        exports,
        contact_id,
        email,
        errors,
        may_erase,
        erasing: erasures.iter().any(|x| !x.complete()),
        erasures,
        erase,
    }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Prefill {
    erase_contact: Option<String>,
    erase_lead: Option<String>,
}

/// `GET /app/privacy`: the requests and the forms that make them (the erase form
/// prefilled with `?eraseContact=` or `?eraseLead=` from a record's page).
pub async fn page(
    Signed(ctx, _): Signed<InApp>,
    prefill: Result<Query<Prefill>, axum::extract::rejection::QueryRejection>,
) -> PageResult {
    // A query string of another shape prefills nothing.
    let Prefill {
        erase_contact,
        erase_lead,
    } = prefill.map(|Query(p)| p).unwrap_or_default();
    let erase = EraseForm {
        contact_id: erase_contact
            .filter(|id| plausible_id(id))
            .unwrap_or_default(),
        lead_id: erase_lead.filter(|id| plausible_id(id)).unwrap_or_default(),
        ..EraseForm::default()
    };
    page_with(
        ctx,
        String::new(),
        String::new(),
        FormErrors::default(),
        erase,
    )
    .await
}

/// `POST /app/privacy/erasures`: erases one person, once the administrator confirmed it.
pub async fn erase(Signed(ctx, _): Signed<InApp>, body: String) -> PageResult {
    let fields = posted(&ctx, &body)?;
    let form = EraseForm {
        contact_id: field(&fields, "contactId").trim().to_owned(),
        lead_id: field(&fields, "leadId").trim().to_owned(),
        email: field(&fields, "email").trim().to_owned(),
        errors: FormErrors::default(),
    };
    if field(&fields, "confirm") != "erase" {
        let errors = FormErrors {
            fields: vec![FieldError {
                field: "confirm".into(),
                message: "Tick the box: an erasure can't be undone.".into(),
            }],
            general: None,
        };
        return page_with(
            ctx,
            String::new(),
            String::new(),
            FormErrors::default(),
            EraseForm { errors, ..form },
        )
        .await;
    }
    let given = |text: &String| (!text.is_empty()).then(|| text.clone());
    let input = json!({
        "contactId": given(&form.contact_id),
        "leadId": given(&form.lead_id),
        "email": given(&form.email),
    });
    match ctx
        .api::<Value>(
            "mutation($input: DataErasureInput!) { eraseDataSubject(input: $input) { id } }",
            json!({ "input": input }),
        )
        .await
    {
        Ok(_) => {
            ctx.see_other(
                "/app/privacy#erasures",
                Some("Erasure started: every service erases the person now."),
            )
            .await
        }
        Err(failure @ ApiFailure::SignedOut) => Err(ctx.refuse(failure)),
        Err(failure) => {
            let errors =
                FormErrors::from_failure(failure).fold_unknown(&["contactId", "leadId", "email"]);
            page_with(
                ctx,
                String::new(),
                String::new(),
                FormErrors::default(),
                EraseForm { errors, ..form },
            )
            .await
        }
    }
}

/// `POST /app/privacy`: asks for one person's export.
pub async fn request(Signed(ctx, _): Signed<InApp>, body: String) -> PageResult {
    let fields = posted(&ctx, &body)?;
    let contact_id = field(&fields, "contactId").trim().to_owned();
    let email = field(&fields, "email").trim().to_owned();
    let input = json!({
        "contactId": (!contact_id.is_empty()).then_some(&contact_id),
        "email": (!email.is_empty()).then_some(&email),
    });
    match ctx
        .api::<Value>(
            "mutation($input: DataExportInput!) { requestDataExport(input: $input) { id } }",
            json!({ "input": input }),
        )
        .await
    {
        Ok(_) => {
            ctx.see_other(
                "/app/privacy",
                Some("Export requested: it is being gathered now."),
            )
            .await
        }
        Err(failure @ ApiFailure::SignedOut) => Err(ctx.refuse(failure)),
        Err(failure) => {
            let errors = FormErrors::from_failure(failure).fold_unknown(&["contactId", "email"]);
            page_with(ctx, contact_id, email, errors, EraseForm::default()).await
        }
    }
}

/// `GET /app/privacy/exports/{id}`: the whole export as one JSON file.
pub async fn download(Signed(ctx, _): Signed<InApp>, Path(id): Path<String>) -> PageResult {
    if !plausible_id(&id) {
        return Err(ctx.refuse(ApiFailure::NotFound));
    }
    let part = "service records document";
    let data: Value = ctx
        .query(
            &format!(
                "query($id: ID!) {{ dataExport(id: $id) {{ id contactId email status progress requestedBy createdAt finishedAt document subject {{ account {{ {part} }} orderVisibility {{ {part} }} knowledgeBase {{ {part} }} }} }} }}"
            ),
            json!({ "id": id }),
        )
        .await?;
    let export = &data["dataExport"];
    if export.is_null() {
        return Err(ctx.refuse(ApiFailure::NotFound));
    }
    if export["status"] == "ERASED" {
        return Err(ctx.refuse(ApiFailure::Refused(
            "The person was erased: the export's document went with them.".into(),
        )));
    }
    if export["status"] == "EXPIRED" {
        return Err(ctx.refuse(ApiFailure::Refused(
            "The export expired: its document is kept for a limited time. Request it again.".into(),
        )));
    }
    if export["status"] != "DONE" {
        return Err(ctx.refuse(ApiFailure::Refused(format!(
            "The export is still being gathered ({}%).",
            export["progress"]
        ))));
    }
    let parse = |text: &Value| -> Value {
        text.as_str()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(Value::Null)
    };
    let mentions: serde_json::Map<String, Value> = ["account", "orderVisibility", "knowledgeBase"]
        .iter()
        .map(|s| ((*s).to_owned(), parse(&export["subject"][s]["document"])))
        .collect();
    let file = json!({
        "request": {
            "id": export["id"],
            "contactId": export["contactId"],
            "email": export["email"],
            "requestedBy": export["requestedBy"],
            "requestedAt": export["createdAt"],
            "finishedAt": export["finishedAt"],
        },
        "records": parse(&export["document"]),
        "mentions": mentions,
    });
    let body = serde_json::to_string_pretty(&file).unwrap_or_default();
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"data-export-{id}.json\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

impl ExportRow {
    fn status_words(&self) -> String {
        words(&self.status)
    }
}
