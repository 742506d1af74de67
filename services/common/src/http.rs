//! The HTTP surface every subgraph process shares: `POST /graphql` (JSON only, bounded
//! body, one operation per request), `GET /health` (the process is alive) and `GET /ready`
//! (its dependencies answer).

use crm_contract::ErrorCode;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::internal_auth::{InternalClaims, SubgraphAuth};

/// The largest request body a subgraph accepts.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub type ReadyCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;
pub type PrepareRequest = Arc<
    dyn Fn(async_graphql::Request, &crate::principal::Principal) -> async_graphql::Request
        + Send
        + Sync,
>;

struct AppState<E> {
    executor: E,
    prepare: PrepareRequest,
    ready: ReadyCheck,
    /// Where partners' reads are logged (services with an audit log).
    read_log: Option<crate::audit::reads::ReadLog>,
}

/// Builds the router of one subgraph. `prepare` attaches per-request data (data loaders).
pub fn subgraph_router<E>(executor: E, prepare: PrepareRequest, ready: ReadyCheck) -> Router
where
    E: async_graphql::Executor + Clone + Send + Sync + 'static,
{
    router_with_read_log(executor, prepare, ready, None)
}

fn router_with_read_log<E>(
    executor: E,
    prepare: PrepareRequest,
    ready: ReadyCheck,
    read_log: Option<crate::audit::reads::ReadLog>,
) -> Router
where
    E: async_graphql::Executor + Clone + Send + Sync + 'static,
{
    let state = Arc::new(AppState {
        executor,
        prepare,
        ready,
        read_log,
    });
    Router::new()
        .route("/graphql", post(graphql::<E>).get(get_not_allowed))
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready_handler::<E>))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The whole HTTP app of a service over its database: the subgraph, `/health`, `/ready`
/// (the database answers) and the event feed `GET /events` of `service`. Everything but
/// `/health` and `/ready` requires a gateway token for this service unless `auth` is
/// `Disabled`.
pub fn service_router<E>(
    executor: E,
    db: sea_orm::DatabaseConnection,
    service: &str,
    prepare: fn(
        &sea_orm::DatabaseConnection,
        &crate::principal::Principal,
        async_graphql::Request,
    ) -> async_graphql::Request,
    auth: SubgraphAuth,
) -> Router
where
    E: async_graphql::Executor + Clone + Send + Sync + 'static,
{
    let loader_db = db.clone();
    let read_log = crate::audit::reads::ReadLog::spawn(db.clone(), service);
    let prepare: PrepareRequest = Arc::new(move |request, who| prepare(&loader_db, who, request));
    let feed = crate::events::feed::router(db.clone(), service);
    let ready: ReadyCheck = Arc::new(move || {
        let db = db.clone();
        Box::pin(async move { db.ping().await.is_ok() })
    });
    gateway_only(
        router_with_read_log(executor, prepare, ready, Some(read_log)).merge(feed),
        auth,
    )
}

/// `router` answering only requests with a valid gateway token for this subgraph (but
/// `/health` and `/ready`), unless `auth` is `Disabled`.
pub fn gateway_only(router: Router, auth: SubgraphAuth) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        auth,
        require_gateway_token,
    ))
}

/// Refuses a request without a valid gateway token for this subgraph (401, code
/// `UNAUTHENTICATED`); a valid one's claims go into the request's extensions, where the
/// GraphQL handler hands them to resolvers.
async fn require_gateway_token(
    State(auth): State<SubgraphAuth>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if matches!(request.uri().path(), "/health" | "/ready") {
        return next.run(request).await;
    }
    let SubgraphAuth::Required(verifier) = &auth else {
        return next.run(request).await;
    };
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return error_body(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "this service answers the gateway only",
        );
    };
    if request.uri().path() == "/events" && verifier.opens_feed(token) {
        return next.run(request).await;
    }
    match verifier.verify(token) {
        Ok(claims) => {
            request.extensions_mut().insert(claims);
            next.run(request).await
        }
        Err(reason) => {
            tracing::warn!(%reason, "refused a request with an invalid gateway token");
            error_body(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                "this service answers the gateway only",
            )
        }
    }
}

fn error_body(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    (
        status,
        Json(
            json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] }),
        ),
    )
        .into_response()
}

async fn get_not_allowed() -> Response {
    error_body(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "send GraphQL operations as POST with Content-Type: application/json",
    )
}

async fn graphql<E: async_graphql::Executor>(
    State(state): State<Arc<AppState<E>>>,
    claims: Option<axum::Extension<InternalClaims>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        return error_body(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "send GraphQL operations as POST with Content-Type: application/json",
        );
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return error_body(
            StatusCode::BAD_REQUEST,
            ErrorCode::BatchNotAllowed,
            "batched requests are not supported",
        );
    }
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            return error_body(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                &format!("the body is not a GraphQL request: {err}"),
            );
        }
    };
    // The caller: the one the gateway's token names. A request without claims reaches here
    // only when gateway tokens are not checked (`SubgraphAuth::Disabled`, local tests):
    // whoever can reach such a port is trusted as the local operator.
    let who = match &claims {
        Some(axum::Extension(claims)) => crate::principal::Principal::from_caller(&claims.caller),
        None => crate::principal::Principal::local_operator(),
    };
    let actor = crate::audit::Actor::of(&who);
    let operation = request.operation_name.clone();
    // A partner's reads are collected while the request runs and logged after it.
    let reads = (state.read_log.is_some() && crate::audit::reads::logged(&who))
        .then(|| Arc::new(crate::audit::reads::ReadCollector::default()));
    let mut request = (state.prepare)(request, &who).data(who);
    if let Some(reads) = &reads {
        request = request.data(reads.clone());
    }
    // The gateway's request id, so this service's log lines (errors included) can be
    // matched with the gateway's.
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if let Some(axum::Extension(claims)) = claims {
        request = request.data(claims);
    }
    let span = tracing::info_span!("graphql", request_id = %request_id);
    // Every change the request makes is recorded as the caller's.
    let response = crate::audit::acting_as(
        actor.clone(),
        tracing::Instrument::instrument(state.executor.execute(request), span),
    )
    .await;
    if let (Some(log), Some(reads)) = (&state.read_log, &reads) {
        log.record(&actor, operation.as_deref(), reads);
    }
    Json(response).into_response()
}

async fn ready_handler<E>(State(state): State<Arc<AppState<E>>>) -> Response {
    if (state.ready)().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
