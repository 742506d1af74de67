//! The paged feed of a producer's events (`GET /events?after=N&limit=M`), and the client a
//! consumer reads it with. It lets a consumer rebuild from position 0 or fill a gap the
//! bus no longer holds.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};

use super::{Event, outbox};
use crate::{ApiError, ApiResult};

pub const MAX_FEED_PAGE: u64 = 1_000;

#[derive(Deserialize)]
struct FeedParams {
    after: Option<i64>,
    limit: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct FeedPage {
    pub source: String,
    pub events: Vec<Event>,
}

#[derive(Clone)]
struct FeedState {
    db: DatabaseConnection,
    source: String,
}

/// The router serving `source`'s feed from its outbox.
pub fn router(db: DatabaseConnection, source: &str) -> Router {
    Router::new()
        .route("/events", get(serve_page))
        .with_state(FeedState {
            db,
            source: source.to_owned(),
        })
}

async fn serve_page(
    State(state): State<FeedState>,
    params: Result<Query<FeedParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(params)) = params else {
        return (
            StatusCode::BAD_REQUEST,
            "after and limit must be whole numbers",
        )
            .into_response();
    };
    let after = params.after.unwrap_or(0).max(0);
    let limit = params.limit.unwrap_or(100).clamp(1, MAX_FEED_PAGE);
    match outbox::page(&state.db, &state.source, after, limit).await {
        Ok(events) => Json(FeedPage {
            source: state.source.clone(),
            events,
        })
        .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.message()).into_response(),
    }
}

/// Makes a bearer token for one feed request (a producer that answers the gateway only
/// wants a fresh gateway token on every request).
pub type FeedToken = std::sync::Arc<dyn Fn() -> String + Send + Sync>;

/// Reads a producer's feed over HTTP.
#[derive(Clone)]
pub struct HttpFeed {
    client: reqwest::Client,
    /// The producer's base URL, e.g. `http://127.0.0.1:4102`.
    base_url: String,
    token: Option<FeedToken>,
}

impl HttpFeed {
    pub fn new(base_url: &str) -> Self {
        Self {
            client: reqwest::Client::new(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: None,
        }
    }

    /// The same feed, read with a bearer token from `token` on every request.
    pub fn with_token(mut self, token: FeedToken) -> Self {
        self.token = Some(token);
        self
    }

    pub async fn page(&self, after: i64, limit: u64) -> ApiResult<Vec<Event>> {
        let url = format!("{}/events?after={after}&limit={limit}", self.base_url);
        let mut request = self.client.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token());
        }
        let response = request
            .send()
            .await
            .map_err(|e| ApiError::internal(format!("reading the event feed {url}: {e}")))?;
        if !response.status().is_success() {
            return Err(ApiError::internal(format!(
                "the event feed {url} answered {}",
                response.status()
            )));
        }
        let page: FeedPage = response
            .json()
            .await
            .map_err(|e| ApiError::internal(format!("decoding the event feed {url}: {e}")))?;
        Ok(page.events)
    }
}
