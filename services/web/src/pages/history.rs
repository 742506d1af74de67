//! A record's field history, loaded into its page after it (`hx-get` on load), in the app
//! and the portal alike: the API answers only the fields the caller may read on that
//! record (and nothing where the policy masks its history), so the panel shows what it is
//! given.

use askama::Template;
use axum::extract::Path;
use axum::response::{Html, IntoResponse};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::{Side, Signed};
use super::{When, actor_words, plausible_id};

/// The record kinds with a history panel: the path segment the pages use, and the root
/// field that fetches one record.
const KINDS: &[(&str, &str)] = &[
    ("accounts", "account"),
    ("contacts", "contact"),
    ("leads", "lead"),
    ("opportunities", "opportunity"),
    ("cases", "case"),
    ("orders", "order"),
    ("kb", "article"),
    ("registrations", "dealRegistration"),
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Change {
    at: chrono::DateTime<chrono::Utc>,
    field: String,
    kind: String,
    old_value: Option<String>,
    new_value: Option<String>,
    values_withheld: bool,
    actor: Option<String>,
    actor_kind: String,
    credential: Option<String>,
}

/// One row of the panel.
struct Row {
    when: When,
    /// The API's name of the field (`lastName`), and the words a person reads.
    field: String,
    label: String,
    created: bool,
    old: String,
    new: String,
    withheld: bool,
    who: String,
    via: String,
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPanel {
    rows: Vec<Row>,
    /// The API answered (false: the record is gone or the request failed).
    answered: bool,
}

/// A field's API name in words: `lastName` → "Last name".
fn label(field: &str) -> String {
    let mut out = String::with_capacity(field.len() + 4);
    for (i, c) in field.chars().enumerate() {
        if i == 0 {
            out.extend(c.to_uppercase());
        } else if c.is_uppercase() {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// How the actor signed in, in words.
fn via(credential: Option<&str>) -> String {
    match credential {
        Some(c) if c.starts_with("session:") => "signed-in session".into(),
        Some(c) if c.starts_with("api_key:") => format!("API key {}", &c["api_key:".len()..]),
        Some("token") => "access token".into(),
        Some("service") => "the service itself".into(),
        _ => String::new(),
    }
}

/// `GET /app/history/{kind}/{id}` and `/portal/history/{kind}/{id}`: the panel.
pub async fn panel<S: Side>(
    Signed(ctx, _): Signed<S>,
    Path((kind, id)): Path<(String, String)>,
) -> axum::response::Response {
    let root = KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, root)| *root);
    let data = match root {
        Some(root) if plausible_id(&id) => ctx
            .api::<Value>(
                &format!(
                    "query($id: ID!) {{ record: {root}(id: $id) {{ history(first: 100) {{ at field kind oldValue newValue valuesWithheld actor actorKind credential }} }} }}"
                ),
                json!({ "id": id }),
            )
            .await
            .ok(),
        _ => None,
    };
    let changes: Option<Vec<Change>> = data
        .as_ref()
        .and_then(|d| serde_json::from_value(d["record"]["history"].clone()).ok());
    let answered = changes.is_some();
    let rows = changes
        .unwrap_or_default()
        .into_iter()
        .map(|c| Row {
            when: When(Some(c.at)),
            label: label(&c.field),
            field: c.field.clone(),
            created: c.kind == "CREATED",
            old: c.old_value.clone().unwrap_or_else(|| "—".into()),
            new: c.new_value.clone().unwrap_or_else(|| "—".into()),
            withheld: c.values_withheld,
            who: actor_words(c.actor.as_deref(), &c.actor_kind),
            via: via(c.credential.as_deref()),
        })
        .collect();
    match (HistoryPanel { rows, answered }).render() {
        Ok(html) => Html(html).into_response(),
        Err(_) => Html(String::new()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_as_words() {
        assert_eq!(label("lastName"), "Last name");
        assert_eq!(label("title"), "Title");
        assert_eq!(label("ownerUserId"), "Owner user id");
    }
}
