//! Logging an interaction on an account: the form on the account page of the app (staff
//! who write interactions) and of the portal (distributors; theirs are always shared with
//! partners). The API decides who may write on which account.

use askama::Template;
use axum::extract::Path;
use crm_contract::clock::Clock as _;
use serde_json::{Value, json};

use super::super::client::ApiFailure;
use super::super::{Area, Ctx, FormErrors, PageResult, Side, Signed};
use super::{Choice, plausible_id, words};

pub(crate) const CHANNELS: &[&str] = &["EMAIL", "PHONE", "MEETING", "CHAT", "WEB", "SOCIAL"];
const DIRECTIONS: &[&str] = &["OUTBOUND", "INBOUND"];
/// The input fields the form shows (API errors on others read as the form's own).
const FIELDS: &[&str] = &["channel", "direction", "subject", "body", "partnerVisible"];

/// The form as posted (or empty), with the API's errors when it refused it.
#[derive(Default)]
pub(crate) struct InteractionForm {
    pub channel: String,
    pub direction: String,
    pub subject: String,
    pub body: String,
    pub partner_visible: bool,
    pub errors: FormErrors,
}

/// The form's markup, rendered into the account page that shows it.
#[derive(Template)]
#[template(path = "interaction_form.html")]
pub(crate) struct InteractionFormView<'a> {
    pub action: String,
    pub csrf: &'a str,
    /// Staff choose whether partners see it; a partner's is always shared.
    pub internal: bool,
    pub form: &'a InteractionForm,
    pub channels: Vec<Choice>,
    pub directions: Vec<Choice>,
}

impl InteractionForm {
    /// The form's HTML for the account `account_id` on `ctx`'s side.
    pub fn html(&self, ctx: &Ctx, account_id: &str) -> String {
        let pick = |values: &[&str], chosen: &str| -> Vec<Choice> {
            values
                .iter()
                .map(|v| Choice {
                    value: (*v).to_owned(),
                    label: words(v),
                    selected: *v == chosen,
                })
                .collect()
        };
        let view = InteractionFormView {
            action: format!("{}/accounts/{account_id}", ctx.area.home()),
            csrf: &ctx.session.csrf_token,
            internal: ctx.area == Area::App,
            form: self,
            channels: pick(CHANNELS, &self.channel),
            directions: pick(DIRECTIONS, &self.direction),
        };
        view.render().unwrap_or_else(|e| {
            tracing::error!(error = %e, "the interaction form did not render");
            String::new()
        })
    }
}

/// `POST /app|portal/accounts/{id}`: logs the interaction, back to the account page.
pub async fn log<S: Side>(
    Signed(ctx, _): Signed<S>,
    Path(id): Path<String>,
    body: String,
) -> PageResult {
    let mut form = InteractionForm::default();
    let mut csrf = String::new();
    for (key, value) in
        serde_urlencoded::from_str::<Vec<(String, String)>>(&body).unwrap_or_default()
    {
        match key.as_str() {
            "csrf" => csrf = value,
            "channel" => form.channel = value,
            "direction" => form.direction = value,
            "subject" => form.subject = value,
            "body" => form.body = value,
            "partnerVisible" => form.partner_visible = value == "true",
            _ => {}
        }
    }
    ctx.check_csrf(&csrf)?;
    if !plausible_id(&id) {
        return Err(ctx.refuse(ApiFailure::NotFound));
    }
    let internal = ctx.area == Area::App;
    let notes = form.body.trim();
    let mut input = json!({
        "accountId": id,
        "channel": form.channel,
        "direction": form.direction,
        "subject": form.subject.trim(),
        "body": (!notes.is_empty()).then_some(notes),
        "occurredAt": crm_contract::clock::SystemClock.now().to_rfc3339(),
    });
    // Staff choose; the API makes a partner's own interactions partner-visible (the field
    // is not one a partner may set).
    if internal {
        input["partnerVisible"] = json!(form.partner_visible);
    }
    match ctx
        .api::<Value>(
            "mutation($input: InteractionInput!) { createInteraction(input: $input) { id } }",
            json!({ "input": input }),
        )
        .await
    {
        Ok(_) => {
            ctx.see_other(
                &format!("{}/accounts/{id}", ctx.area.home()),
                Some("Interaction logged."),
            )
            .await
        }
        Err(ApiFailure::SignedOut) => Err(ctx.refuse(ApiFailure::SignedOut)),
        Err(failure) => {
            form.errors = FormErrors::from_failure(failure).fold_unknown(FIELDS);
            match ctx.area {
                Area::App => super::app::account_page(ctx, &id, form, None).await,
                Area::Portal => super::portal::account_page(ctx, &id, form).await,
            }
        }
    }
}
