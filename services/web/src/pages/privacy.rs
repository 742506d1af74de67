//! Data-subject requests for administrators: ask for everything held about one person (by
//! contact id or email), follow the job's progress, and download the export: one JSON
//! file with the account service's sections and what every service's free text says
//! about the person. Who may is the API's answer (`DataExport`); this page only asks.

use askama::Template;
use axum::extract::Path;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::client::ApiFailure;
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
}

async fn page_with(
    ctx: super::super::Ctx,
    contact_id: String,
    email: String,
    errors: FormErrors,
) -> PageResult {
    if !ctx.me.reads("DataExport") {
        return Err(ctx.refuse(ApiFailure::Forbidden(
            "Data-subject requests are for administrators.".into(),
        )));
    }
    let data: Value = ctx
        .query(
            "{ dataExports(first: 100) { id contactId email status progress requestedBy createdAt finishedAt } }",
            json!({}),
        )
        .await?;
    let exports: Vec<ExportRow> =
        serde_json::from_value(data["dataExports"].clone()).unwrap_or_default();
    Ok(render(&PrivacyPage {
        chrome: ctx.chrome("Data-subject requests"),
        gathering: exports.iter().any(|x| x.status != "DONE"),
        exports,
        contact_id,
        email,
        errors,
    }))
}

/// `GET /app/privacy`: the requests and the form that makes one.
pub async fn page(Signed(ctx, _): Signed<InApp>) -> PageResult {
    page_with(ctx, String::new(), String::new(), FormErrors::default()).await
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
            page_with(ctx, contact_id, email, errors).await
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
