//! The UI's GraphQL client: every page asks the gateway's own router, in process, with
//! the signed-in user's access token — the same door, limits, planner and policy as any
//! external client, so a page can never show more than the API allows.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Why an operation did not give data; pages turn each into a message a person can act on.
#[derive(Debug, Clone)]
pub enum ApiFailure {
    /// The credentials stopped working (expired, signed out elsewhere, user disabled).
    SignedOut,
    /// The record does not exist or is outside the caller's slice (the API answers the
    /// same for both).
    NotFound,
    /// The caller's role may not do this.
    Forbidden(String),
    /// Input the API refused, per field (`title`, `expiresAt`), or for the whole form.
    Invalid(Vec<FieldError>),
    /// A refused change that is not about one field (a state transition).
    Refused(String),
    /// The record moved on since the version the change was based on (someone else saved
    /// it meanwhile); the form says so in words and keeps what was typed.
    Conflict(String),
    /// Something broke; the message is safe to show (a reference id, no internals).
    Broken(String),
}

#[derive(Debug, Clone)]
pub struct FieldError {
    /// The input field without its `input.` prefix; empty for the whole form.
    pub field: String,
    pub message: String,
}

impl ApiFailure {
    /// A sentence for a banner.
    pub fn message(&self) -> String {
        match self {
            Self::SignedOut => "Your session ended. Sign in again.".into(),
            Self::NotFound => "Not found.".into(),
            Self::Forbidden(message) | Self::Refused(message) | Self::Broken(message) => {
                message.clone()
            }
            Self::Conflict(_) => "This was changed by someone else while you had it open, so your change was not saved. Look at it again and make your change once more.".into(),
            Self::Invalid(errors) => errors
                .iter()
                .map(|e| {
                    if e.field.is_empty() {
                        e.message.clone()
                    } else {
                        format!("{}: {}", e.field, e.message)
                    }
                })
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

/// The gateway's public router, called in process.
#[derive(Clone)]
pub struct Api {
    router: Router,
    /// The browser's address, passed on for the operations a signed-out visitor sends
    /// (the gateway throttles sign-in by account and address).
    client: Option<crm_contract::ClientAddress>,
}

impl Api {
    pub fn new(router: Router) -> Self {
        Self {
            router,
            client: None,
        }
    }

    /// The same API, called on behalf of the browser at `client`.
    pub fn for_client(&self, client: Option<crm_contract::ClientAddress>) -> Self {
        Self {
            router: self.router.clone(),
            client,
        }
    }

    /// Runs one operation as the holder of `bearer` and decodes `data` into `T`.
    pub async fn run<T: DeserializeOwned>(
        &self,
        bearer: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<T, ApiFailure> {
        let data = self.run_value(bearer, query, variables).await?;
        serde_json::from_value(data).map_err(|e| {
            tracing::error!(error = %e, "the UI could not read the API's answer");
            ApiFailure::Broken("The answer could not be read; try again later.".into())
        })
    }

    /// A list exported as the holder of `bearer` (`GET /export` with `params`): the
    /// gateway's streamed answer passed on as it comes (type, file name, body), or the
    /// refusal as a failure.
    pub async fn export(
        &self,
        bearer: &str,
        params: &[(&str, String)],
    ) -> Result<axum::response::Response, ApiFailure> {
        let query = serde_urlencoded::to_string(params)
            .map_err(|e| ApiFailure::Broken(format!("export parameters: {e}")))?;
        let mut request = Request::get(format!("/export?{query}"))
            .header(header::AUTHORIZATION, format!("Bearer {bearer}"))
            .header("x-crm-client", "web")
            .body(Body::empty())
            .map_err(|e| ApiFailure::Broken(format!("request not built: {e}")))?;
        if let Some(client) = self.client {
            request.extensions_mut().insert(client);
        }
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .map_err(|never| match never {})?;
        match response.status() {
            StatusCode::OK => {
                let (parts, body) = response.into_parts();
                let mut passed = axum::response::Response::new(body);
                for name in [
                    header::CONTENT_TYPE,
                    header::CONTENT_DISPOSITION,
                    header::CACHE_CONTROL,
                ] {
                    if let Some(value) = parts.headers.get(&name) {
                        passed.headers_mut().insert(name, value.clone());
                    }
                }
                Ok(passed)
            }
            StatusCode::UNAUTHORIZED => Err(ApiFailure::SignedOut),
            status => {
                let bytes = axum::body::to_bytes(response.into_body(), 1024 * 1024)
                    .await
                    .unwrap_or_default();
                let answer: Value = serde_json::from_slice(&bytes).unwrap_or_default();
                let message = answer["errors"][0]["message"]
                    .as_str()
                    .map_or_else(|| format!("The export failed ({status})."), str::to_owned);
                Err(ApiFailure::Refused(message))
            }
        }
    }

    /// Runs one operation and returns its `data`, or the first error as a failure
    /// (every validation error, when the API refused input).
    pub async fn run_value(
        &self,
        bearer: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<Value, ApiFailure> {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let mut request = Request::post("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-crm-client", "web");
        if let Some(bearer) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {bearer}"));
        }
        let mut request = request
            .body(Body::from(body))
            .map_err(|e| ApiFailure::Broken(format!("request not built: {e}")))?;
        if let Some(client) = self.client {
            request.extensions_mut().insert(client);
        }
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .map_err(|never| match never {})?;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
            .await
            .map_err(|_| ApiFailure::Broken("The answer was too large.".into()))?;
        if status == StatusCode::UNAUTHORIZED {
            return Err(ApiFailure::SignedOut);
        }
        let answer: Value = serde_json::from_slice(&bytes).map_err(|_| {
            ApiFailure::Broken(format!("The service answered {status}; try again later."))
        })?;
        if let Some(errors) = answer["errors"].as_array().filter(|e| !e.is_empty()) {
            return Err(failure_of(errors));
        }
        Ok(answer.get("data").cloned().unwrap_or(Value::Null))
    }
}

fn failure_of(errors: &[Value]) -> ApiFailure {
    let code = |e: &Value| e["extensions"]["code"].as_str().unwrap_or("").to_owned();
    let message = |e: &Value| e["message"].as_str().unwrap_or("refused").to_owned();
    let invalid: Vec<FieldError> = errors
        .iter()
        .filter(|e| matches!(code(e).as_str(), "VALIDATION" | "DUPLICATE"))
        .map(|e| {
            let field = e["extensions"]["field"].as_str().unwrap_or("");
            let field = field.strip_prefix("input.").unwrap_or(field).to_owned();
            // The API's message starts with the field path; next to the field, the rest
            // reads better ("must be 1 to 200 characters").
            let full = message(e);
            let path = e["extensions"]["field"].as_str().unwrap_or("");
            let text = full
                .strip_prefix(path)
                .map(str::trim)
                .filter(|rest| !rest.is_empty() && !path.is_empty())
                .map(str::to_owned)
                .unwrap_or(full);
            FieldError {
                field,
                message: text,
            }
        })
        .collect();
    if !invalid.is_empty() {
        return ApiFailure::Invalid(invalid);
    }
    let first = &errors[0];
    match code(first).as_str() {
        "UNAUTHENTICATED" | "INVALID_TOKEN" => ApiFailure::SignedOut,
        "NOT_FOUND" => ApiFailure::NotFound,
        "FORBIDDEN" => ApiFailure::Forbidden(message(first)),
        "VERSION_CONFLICT" => ApiFailure::Conflict(message(first)),
        "INTERNAL" | "SUBGRAPH_ERROR" | "" => {
            tracing::warn!(answer = %first, "the API failed a UI request");
            ApiFailure::Broken("Something went wrong on our side; try again in a moment.".into())
        }
        _ => ApiFailure::Refused(message(first)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_keep_their_field_and_lose_the_path_prefix() {
        let failure = failure_of(&[json!({
            "message": "input.title must be 1 to 200 characters",
            "extensions": { "code": "VALIDATION", "field": "input.title" }
        })]);
        let ApiFailure::Invalid(errors) = failure else {
            panic!("not a validation failure")
        };
        assert_eq!(errors[0].field, "title");
        assert_eq!(errors[0].message, "must be 1 to 200 characters");
        assert!(matches!(
            failure_of(&[json!({ "message": "not found", "extensions": { "code": "NOT_FOUND" } })]),
            ApiFailure::NotFound
        ));
        // Internal details never reach a page.
        let ApiFailure::Broken(message) =
            failure_of(&[json!({ "message": "relation \"x\" does not exist" })])
        else {
            panic!("not broken")
        };
        assert!(!message.contains("relation"));
    }
}
