//! Sign-in, sign-out and redeeming an invitation.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::super::session::same_secret;
use super::super::{
    Area, Chrome, FormErrors, SESSION_FIELDS, SessionAnswer, Web, render, safe_location,
};
use crm_contract::secrets::secret;

/// `/`: the signed-in user's home, or the sign-in page.
pub async fn root(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    if let Some(cookie) = web.session_cookie(&headers)
        && let Ok(Some(session)) = web.sessions.find(cookie).await
    {
        return Redirect::to(Area::of_kind(&session.kind).home()).into_response();
    }
    Redirect::to("/signin").into_response()
}

#[derive(Deserialize, Default)]
pub struct SignInQuery {
    #[serde(default)]
    next: String,
    /// Set after signing out: the page says so (a fixed sentence; no link writes it).
    #[serde(default)]
    signed_out: Option<String>,
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    chrome: Chrome,
    email: String,
    next: String,
    errors: FormErrors,
}

/// The form's CSRF secret: the one the browser already holds, or a new one.
fn form_secret(web: &Web, headers: &HeaderMap) -> (String, bool) {
    match web.form_cookie(headers) {
        Some(existing) if existing.len() >= 32 => (existing.to_owned(), false),
        _ => (secret(), true),
    }
}

fn with_form_cookie(
    web: &Web,
    headers: &HeaderMap,
    csrf: &str,
    fresh: bool,
    page: Response,
) -> Response {
    let mut page = page;
    if fresh
        && let Ok(value) = web
            .cookie(headers, web.form_cookie_name(headers), csrf, None)
            .parse()
    {
        page.headers_mut().append(header::SET_COOKIE, value);
    }
    page
}

pub async fn sign_in_form(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Response {
    let (csrf, fresh) = form_secret(&web, &headers);
    let mut chrome = Chrome::public("Sign in", &csrf);
    chrome.notice = query.signed_out.map(|_| "You are signed out.".to_owned());
    let page = render(&SignInPage {
        chrome,
        email: String::new(),
        next: safe_next(&query.next).unwrap_or_default(),
        errors: FormErrors::default(),
    });
    with_form_cookie(&web, &headers, &csrf, fresh, page)
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// A same-site path to return to after signing in (never another host).
fn safe_next(next: &str) -> Option<String> {
    (safe_location(next) && next.len() <= 500).then(|| next.to_owned())
}

pub async fn sign_in(
    State(web): State<Arc<Web>>,
    client: Option<axum::Extension<crm_contract::ClientAddress>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let (csrf, fresh) = form_secret(&web, &headers);
    let again = |errors: FormErrors, status: StatusCode| {
        let mut response = render(&SignInPage {
            chrome: Chrome::public("Sign in", &csrf),
            email: form.email.clone(),
            next: safe_next(&form.next).unwrap_or_default(),
            errors,
        });
        *response.status_mut() = status;
        with_form_cookie(&web, &headers, &csrf, fresh, response)
    };
    if fresh || !same_secret(&form.csrf, &csrf) {
        return again(
            FormErrors {
                general: Some("The form expired. Please sign in again.".into()),
                ..Default::default()
            },
            StatusCode::FORBIDDEN,
        );
    }
    if form.email.trim().is_empty() || form.password.is_empty() {
        let mut errors = FormErrors::default();
        if form.email.trim().is_empty() {
            errors.fields.push(super::super::client::FieldError {
                field: "email".into(),
                message: "Enter your email address.".into(),
            });
        }
        if form.password.is_empty() {
            errors.fields.push(super::super::client::FieldError {
                field: "password".into(),
                message: "Enter your password.".into(),
            });
        }
        return again(errors, StatusCode::UNPROCESSABLE_ENTITY);
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        sign_in: SessionAnswer,
    }
    let query = format!(
        "mutation($e: String!, $p: String!) {{ signIn(email: $e, password: $p) {{ {SESSION_FIELDS} }} }}"
    );
    let answer = web
        .api
        .for_client(client.map(|axum::Extension(address)| address))
        .run::<Data>(
            None,
            &query,
            json!({ "e": form.email.trim(), "p": form.password }),
        )
        .await;
    match answer {
        Ok(data) => open_session(&web, &headers, data.sign_in, &form.next).await,
        Err(failure) => again(
            FormErrors {
                general: Some(failure.message()),
                ..Default::default()
            },
            StatusCode::UNAUTHORIZED,
        ),
    }
}

/// Opens the web session of a fresh API session and goes to `next` (when it is in the
/// user's own area) or home.
async fn open_session(
    web: &Web,
    headers: &HeaderMap,
    answer: SessionAnswer,
    next: &str,
) -> Response {
    let api = answer.into_api_session();
    let area = Area::of_kind(&api.kind);
    match web.sessions.open(api).await {
        Ok((cookie_value, session)) => {
            // The caller is read once here, so the pages that follow are one pass each;
            // if it fails now, the first page asks again.
            if web.caller(&session).await.is_err() {
                tracing::warn!("the signed-in caller could not be read at sign-in");
            }
            let target = safe_next(next)
                .filter(|n| n == area.home() || n.starts_with(&format!("{}/", area.home())))
                .unwrap_or_else(|| area.home().to_owned());
            let mut response = Redirect::to(&target).into_response();
            let name = web.session_cookie_name(headers);
            if let Ok(value) = web.cookie(headers, name, &cookie_value, None).parse() {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(e) => web.broken(e),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Signs out: ends the API session (its tokens stop working) and the web session.
pub async fn sign_out(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(cookie_value) = web.session_cookie(&headers) else {
        return Redirect::to("/signin").into_response();
    };
    let Ok(Some(session)) = web.sessions.find(cookie_value).await else {
        return Redirect::to("/signin").into_response();
    };
    if !same_secret(&form.csrf, &session.csrf_token) {
        return super::super::error_page(
            Chrome::public("Form expired", ""),
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form is out of date. Go back, reload the page and try again.",
        );
    }
    if let Err(failure) = web
        .api
        .run_value(
            Some(&session.access_token),
            "mutation { signOut }",
            json!({}),
        )
        .await
    {
        tracing::info!(reason = %failure.message(), "signing out of the API session failed");
    }
    if let Err(e) = web.sessions.close(cookie_value).await {
        return web.broken(e);
    }
    let mut response = Redirect::to("/signin?signed_out=1").into_response();
    for name in [
        super::super::SESSION_COOKIE,
        super::super::SECURE_SESSION_COOKIE,
    ] {
        if let Ok(value) = web.cookie(&headers, name, "", Some(0)).parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    chrome: Chrome,
    token: String,
    display_name: String,
    errors: FormErrors,
}

#[derive(Deserialize)]
pub struct InviteQuery {
    #[serde(default)]
    token: String,
}

pub async fn invite_form(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Query(query): Query<InviteQuery>,
) -> Response {
    let (csrf, fresh) = form_secret(&web, &headers);
    let page = render(&InvitePage {
        chrome: Chrome::public("Accept your invitation", &csrf),
        token: query.token,
        display_name: String::new(),
        errors: FormErrors::default(),
    });
    with_form_cookie(&web, &headers, &csrf, fresh, page)
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    token: String,
    #[serde(default, rename = "displayName")]
    display_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    csrf: String,
}

pub async fn redeem_invitation(
    State(web): State<Arc<Web>>,
    headers: HeaderMap,
    Form(form): Form<InviteForm>,
) -> Response {
    let (csrf, fresh) = form_secret(&web, &headers);
    let again = |errors: FormErrors, status: StatusCode| {
        let mut response = render(&InvitePage {
            chrome: Chrome::public("Accept your invitation", &csrf),
            token: form.token.clone(),
            display_name: form.display_name.clone(),
            errors,
        });
        *response.status_mut() = status;
        with_form_cookie(&web, &headers, &csrf, fresh, response)
    };
    if fresh || !same_secret(&form.csrf, &csrf) {
        return again(
            FormErrors {
                general: Some("The form expired. Please try again.".into()),
                ..Default::default()
            },
            StatusCode::FORBIDDEN,
        );
    }
    if form.password != form.confirm {
        return again(
            FormErrors {
                fields: vec![super::super::client::FieldError {
                    field: "confirm".into(),
                    message: "The two passwords differ.".into(),
                }],
                general: None,
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        redeem_invitation: SessionAnswer,
    }
    let query = format!(
        "mutation($t: String!, $n: String!, $p: String!) {{ redeemInvitation(token: $t, displayName: $n, password: $p) {{ {SESSION_FIELDS} }} }}"
    );
    match web
        .api
        .run::<Data>(
            None,
            &query,
            json!({ "t": form.token.trim(), "n": form.display_name, "p": form.password }),
        )
        .await
    {
        Ok(data) => open_session(&web, &headers, data.redeem_invitation, "").await,
        Err(failure) => again(
            FormErrors::from_failure(failure).fold_unknown(&["displayName", "password"]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    }
}
