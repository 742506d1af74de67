//! The gateway's HTTP door: the one public listener. Only `POST /graphql` with a JSON body
//! runs operations (a CSRF-safe content type: browsers cannot send it cross-site without a
//! preflight); bodies are bounded; batches are refused; each request gets an id that is
//! returned, logged and passed to the subgraphs.

use crm_contract::ErrorCode;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::engine::{Engine, EngineResponse, GraphQLRequest, RequestContext};
use super::metrics::Outcome;
use crate::rate_limit::{Admission, RateLimiter, RateStore};
use crm_contract::internal_auth::Caller;
use crm_contract::{Authenticated, ClientAddress, Door, Refusal};

/// Settings of the door (each with a safe default).
#[derive(Clone, Debug)]
pub struct DoorConfig {
    /// The largest request body accepted (HTTP 413 above).
    pub max_body_bytes: usize,
    /// The time one request may take, subgraph calls included (HTTP 504 above).
    pub request_timeout: Duration,
    /// Answer queries (never mutations) sent as `GET /graphql?query=…`. Off by default;
    /// when on, a GET must carry a preflight header (`apollo-require-preflight`,
    /// `x-apollo-operation-name` or `x-crm-preflight`), which a cross-site form or image
    /// cannot send.
    pub allow_get_queries: bool,
    /// Serve the GraphQL explorer (GraphiQL, vendored) at `/graphiql`: development only.
    pub explorer: bool,
    /// The bearer token `/metrics` asks for. Without one, `/metrics` is not served: the
    /// gateway's counters (refusals by code, latencies, plan-cache size) are not for every
    /// caller of the public port.
    pub metrics_token: Option<String>,
    /// Proxies (load balancers) whose `X-Forwarded-For` names the client; the client
    /// address is what the sign-in throttle counts by.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Budgets of operations and estimated cost per caller and client address (`None`:
    /// not limited). Refused: HTTP 429 with `Retry-After`; every answer carries the
    /// caller's `RateLimit-*` headers.
    pub rate_limits: Option<crate::rate_limit::RateLimits>,
}

impl Default for DoorConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            allow_get_queries: false,
            explorer: false,
            metrics_token: None,
            trusted_proxies: Vec::new(),
            rate_limits: Some(crate::rate_limit::RateLimits::default()),
        }
    }
}

/// Set (to `true`) by the process that serves the router when it starts to stop: open
/// event streams and WebSockets end then (graceful shutdown waits for every response to
/// finish, and a subscription's would not). Given to handlers as a request extension.
#[derive(Clone)]
pub struct Draining(pub tokio::sync::watch::Receiver<bool>);

/// The token one subgraph receives for a caller: `(subgraph, caller)`. The request's id
/// travels beside it in `x-request-id`.
pub type TokenMinter = Arc<dyn Fn(&str, &Caller) -> String + Send + Sync>;

pub(crate) struct Server {
    pub(crate) engine: Arc<Engine>,
    pub(crate) config: DoorConfig,
    pub(crate) mint: TokenMinter,
    /// Decides who calls; without one (a gateway serving a foreign supergraph with no
    /// directory) every caller is anonymous and credentials are refused, not ignored.
    pub(crate) authenticator: Option<Arc<dyn Door>>,
    client: reqwest::Client,
    pub(crate) limiter: Option<RateLimiter>,
    /// What subscriptions hear of changes from; `None`: subscriptions are not served.
    pub(crate) live: Option<super::live::Changes>,
    /// The lists `/export` streams.
    pub(crate) exports: super::export::ExportCatalog,
}

/// The gateway's router: `/graphql` (with subscriptions over WebSocket and SSE when
/// `live` carries the services' changes), `/health`, `/ready`, `/metrics`, and the JWKS of
/// the access tokens it issues when it has a directory. Rate limits count in `rates` when
/// given (a store the gateways share), in this process otherwise.
pub fn router(
    engine: Arc<Engine>,
    config: DoorConfig,
    mint: TokenMinter,
    authenticator: Option<Arc<dyn Door>>,
    jwks: Option<serde_json::Value>,
    rates: Option<Box<dyn RateStore>>,
    live: Option<super::live::Changes>,
) -> Router {
    let limit = config.max_body_bytes;
    let limiter = config.rate_limits.clone().map(|limits| match rates {
        Some(store) => RateLimiter::new(limits, store),
        None => RateLimiter::in_memory(limits),
    });
    let live = live.filter(|_| engine.serves_subscriptions());
    let server = Arc::new(Server {
        exports: super::export::ExportCatalog::from_sdl(engine.public_sdl()),
        live,
        limiter,
        engine,
        config,
        mint,
        authenticator,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default(),
    });
    let explorer = server.config.explorer;
    let router = match jwks {
        Some(jwks) => Router::new().route(
            "/.well-known/jwks.json",
            get(move || async move { Json(jwks) }),
        ),
        None => Router::new(),
    };
    let router = router
        .route("/graphql", get(get_graphql).post(post_graphql))
        .route("/export", get(super::export::export))
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        // Our own check below gives the clear error; this bounds what axum buffers.
        .layer(DefaultBodyLimit::max(limit.saturating_add(1)))
        .with_state(server);
    if explorer {
        router
            .route("/graphiql", get(explorer_asset))
            .route("/graphiql/assets/{file}", get(explorer_asset))
    } else {
        router
    }
}

/// `app` (the router, with the web UI when there is one) with every request's
/// [`ClientAddress`] decided at the front: serve it with connect info.
pub fn front_door(app: Router, trusted_proxies: Vec<std::net::IpAddr>) -> Router {
    app.layer(axum::middleware::from_fn_with_state(
        Arc::new(trusted_proxies),
        client_address,
    ))
}

/// Decides each request's [`ClientAddress`]: one set in process (the web UI passing its
/// browser's) stays; otherwise the TCP peer, or, when the peer is a trusted proxy, the last
/// address in `X-Forwarded-For` that is not one. Wrap the whole app with it (served with
/// connect info) so that every handler reads the same answer.
pub async fn client_address(
    axum::extract::State(trusted): axum::extract::State<Arc<Vec<std::net::IpAddr>>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.extensions().get::<ClientAddress>().is_none() {
        let peer = request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|axum::extract::ConnectInfo(addr)| addr.ip());
        if let Some(peer) = peer {
            let forwarded = request
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
                .collect::<Vec<_>>();
            let mut address = peer;
            // Walk back from the nearest hop while it is one of ours.
            for hop in forwarded.iter().rev() {
                if !trusted.contains(&address) {
                    break;
                }
                address = *hop;
            }
            request.extensions_mut().insert(ClientAddress(address));
        }
    }
    next.run(request).await
}

/// The explorer's page and assets, vendored in `gateway/assets/graphiql` (no CDN).
async fn explorer_asset(file: Option<axum::extract::Path<String>>) -> Response {
    let name = file.map(|axum::extract::Path(f)| f).unwrap_or_default();
    let (content_type, body): (&str, &'static [u8]) = match name.as_str() {
        "" => (
            "text/html; charset=utf-8",
            include_bytes!("../../assets/graphiql/index.html"),
        ),
        "graphiql.min.js" => (
            "text/javascript",
            include_bytes!("../../assets/graphiql/graphiql.min.js"),
        ),
        "graphiql.min.css" => (
            "text/css",
            include_bytes!("../../assets/graphiql/graphiql.min.css"),
        ),
        "react.production.min.js" => (
            "text/javascript",
            include_bytes!("../../assets/graphiql/react.production.min.js"),
        ),
        "react-dom.production.min.js" => (
            "text/javascript",
            include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

pub(crate) fn error(
    status: StatusCode,
    code: ErrorCode,
    message: &str,
    request_id: &str,
) -> Response {
    let mut response = (
        status,
        Json(json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str(), "requestId": request_id } }] })),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// The request's id: a well-formed one the client sent (for correlation), or a new one.
pub(crate) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

async fn get_graphql(
    State(server): State<Arc<Server>>,
    client: Option<axum::Extension<ClientAddress>>,
    draining: Option<axum::Extension<Draining>>,
    headers: HeaderMap,
    upgrade: Result<
        axum::extract::ws::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
    params: Result<
        axum::extract::Query<std::collections::HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Response {
    let client = client.map(|axum::Extension(address)| address);
    if let Ok(upgrade) = upgrade {
        let draining = draining.map(|axum::Extension(draining)| draining);
        return super::streams::websocket(server, upgrade, &headers, client, draining);
    }
    let request_id = request_id(&headers);
    if !server.config.allow_get_queries {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            "send operations as POST with Content-Type: application/json",
            &request_id,
        );
    }
    let preflighted = [
        "apollo-require-preflight",
        "x-apollo-operation-name",
        "x-crm-preflight",
    ]
    .iter()
    .any(|name| headers.get(*name).is_some_and(|v| !v.is_empty()));
    if !preflighted {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::CsrfPreflightRequired,
            "a GET request needs a preflight header (x-crm-preflight: 1)",
            &request_id,
        );
    }
    let Ok(axum::extract::Query(params)) = params else {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "malformed query string",
            &request_id,
        );
    };
    let variables = match params.get("variables").map(|v| serde_json::from_str(v)) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "variables must be JSON",
                &request_id,
            );
        }
    };
    let request = GraphQLRequest {
        query: params.get("query").cloned().unwrap_or_default(),
        operation_name: params.get("operationName").cloned(),
        variables,
    };
    // Mutations change data: never over GET, whatever the settings (the engine refuses
    // them once it knows the operation's kind).
    run(&server, &headers, client, request, request_id, false).await
}

async fn post_graphql(
    State(server): State<Arc<Server>>,
    client: Option<axum::Extension<ClientAddress>>,
    draining: Option<axum::Extension<Draining>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let request_id = request_id(&headers);
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "send operations with Content-Type: application/json",
            &request_id,
        );
    }
    let Ok(body) = body else {
        return too_large(&server, &request_id);
    };
    if body.len() > server.config.max_body_bytes {
        return too_large(&server, &request_id);
    }
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let body = match decode_body(encoding.as_deref(), body, server.config.max_body_bytes) {
        Ok(body) => body,
        Err(refusal) => return refusal.response(&server, &request_id),
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BatchNotAllowed,
            "send one operation per request",
            &request_id,
        );
    }
    let request: GraphQLRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                &format!("the body is not a GraphQL request: {e}"),
                &request_id,
            );
        }
    };
    let client = client.map(|axum::Extension(address)| address);
    if super::streams::wants_event_stream(&headers) {
        let draining = draining.map(|axum::Extension(draining)| draining);
        return super::streams::event_stream(
            server, &headers, client, draining, request, request_id,
        )
        .await;
    }
    run(&server, &headers, client, request, request_id, true).await
}

/// Who calls: anonymous without credentials; refused (401, one message whatever the
/// reason, the reason logged) with credentials that do not check out.
pub(crate) async fn authenticate(
    server: &Server,
    headers: &HeaderMap,
    request_id: &str,
    started: std::time::Instant,
) -> Result<Authenticated, Response> {
    let authorization = authorization(headers);
    authenticate_with(server, authorization.as_deref(), request_id, started).await
}

/// The request's `Authorization` header (one that is not text is kept, as a credential
/// that does not check out).
pub(crate) fn authorization(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned())
}

/// [`authenticate`] with the credentials given another way (a WebSocket's first message).
pub(crate) async fn authenticate_with(
    server: &Server,
    authorization: Option<&str>,
    request_id: &str,
    started: std::time::Instant,
) -> Result<Authenticated, Response> {
    let refusal = match (&server.authenticator, authorization) {
        (_, None) => return Ok(Authenticated::anonymous()),
        (None, Some(_)) => Refusal::InvalidToken("this gateway has no directory"),
        (Some(authenticator), Some(authorization)) => {
            match authenticator.authenticate(authorization).await {
                Ok(authenticated) => return Ok(authenticated),
                Err(refusal) => refusal,
            }
        }
    };
    server.engine.metrics.record(
        Outcome::Refused(ErrorCode::Unauthenticated),
        started.elapsed(),
    );
    Err(match refusal {
        Refusal::InvalidToken(reason) => {
            tracing::info!(%request_id, reason, "refused a request with invalid credentials");
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                "invalid token",
                request_id,
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            response
        }
        Refusal::Unavailable(detail) => {
            tracing::error!(%request_id, %detail, "the directory could not be read");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                &format!("sign-in is unavailable; quote request id {request_id}"),
                request_id,
            )
        }
    })
}

/// Executes one request and answers it, with its id, metrics and log line.
async fn run(
    server: &Server,
    headers: &HeaderMap,
    client: Option<ClientAddress>,
    request: GraphQLRequest,
    request_id: String,
    allow_mutations: bool,
) -> Response {
    // The request's time starts at the door: checking credentials is part of it.
    let started = std::time::Instant::now();
    let authenticated = match authenticate(server, headers, &request_id, started).await {
        Ok(authenticated) => authenticated,
        Err(refusal) => return refusal,
    };
    let (answer, admission) = execute(
        server,
        &authenticated,
        client,
        &request,
        &request_id,
        allow_mutations,
        started,
    )
    .await;
    let mut response = (
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, "application/json")],
        answer.body,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    if let Some(admission) = admission {
        for (name, value) in admission.headers() {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
}

/// The answer to a caller over its rate budget.
pub(crate) fn rate_limited(refused: &Admission) -> EngineResponse {
    EngineResponse::refused(
        429,
        ErrorCode::RateLimited,
        vec![format!(
            "too many requests: try again in {} s",
            refused.retry_after.unwrap_or_default().as_secs().max(1)
        )],
    )
}

/// Executes one operation of an admitted caller once: its rate budget, the engine, the
/// timeout, metrics and log line. The answer, with the admission its headers describe.
pub(crate) async fn execute(
    server: &Server,
    authenticated: &Authenticated,
    client: Option<ClientAddress>,
    request: &GraphQLRequest,
    request_id: &str,
    allow_mutations: bool,
    started: std::time::Instant,
) -> (EngineResponse, Option<Admission>) {
    let request_id = request_id.to_owned();
    let mint = server.mint.clone();
    let source = client.map(|ClientAddress(ip)| ip.to_string());
    let mut caller = authenticated.caller.clone();
    if authenticated.kind == crm_contract::CallerKind::Anonymous {
        // Signing in is throttled per account and source: the identity service needs it.
        caller.source = source.clone();
    }
    let mint_token = |subgraph: &str| mint(subgraph, &caller);
    let context = RequestContext {
        request_id: &request_id,
        mint_token: &mint_token,
        allow_mutations,
        caller: authenticated.kind,
        anonymous_root_fields: server
            .authenticator
            .as_ref()
            .map(|door| door.anonymous_root_fields()),
        principal: Some(&caller),
    };
    let asks = server.limiter.as_ref().map(|limiter| {
        limiter.asks(
            authenticated.kind,
            &caller.subject,
            &caller.roles,
            source.as_deref(),
        )
    });
    let mut admission: Option<Admission> = None;
    let slot = &mut admission;
    let (limiter, asks) = (server.limiter.as_ref(), asks.as_deref());
    let admit = move |cost: u64| {
        let admission = slot;
        async move {
            let (Some(limiter), Some(asks)) = (limiter, asks) else {
                return Ok(());
            };
            *admission = limiter.admit(asks, cost).await;
            match admission {
                Some(refused) if !refused.admitted => Err(rate_limited(refused)),
                _ => Ok(()),
            }
        }
    };
    let outcome = tokio::time::timeout(
        server.config.request_timeout,
        server.engine.execute_admitted(request, &context, admit),
    )
    .await;
    let Ok(answer) = outcome else {
        server.engine.metrics.record(
            Outcome::Refused(ErrorCode::GatewayTimeout),
            started.elapsed(),
        );
        tracing::warn!(%request_id, timeout = ?server.config.request_timeout, "request timed out");
        let mut answer = EngineResponse::refused(
            504,
            ErrorCode::GatewayTimeout,
            vec!["the request took too long".into()],
        );
        if let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(&answer.body) {
            body["errors"][0]["extensions"]["requestId"] = json!(request_id);
            answer.body = body.to_string().into_bytes();
        }
        return (answer, admission);
    };
    server.engine.metrics.record(
        answer.refused.map_or(Outcome::Executed, Outcome::Refused),
        started.elapsed(),
    );
    // One line per request only when asked for (`RUST_LOG=…,crm_gateway=debug`): at the
    // default level a busy gateway would spend its time writing them.
    tracing::debug!(
        %request_id,
        operation = request.operation_name.as_deref().unwrap_or(""),
        status = answer.status,
        refused = answer.refused.map_or("", ErrorCode::as_str),
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "graphql"
    );
    (answer, admission)
}

/// Why a request body could not be decoded.
enum BodyRefusal {
    /// More than the limit once decompressed (a compression bomb gets no further).
    TooLarge,
    Unsupported(String),
    Corrupt,
}

impl BodyRefusal {
    fn response(self, server: &Server, request_id: &str) -> Response {
        match self {
            BodyRefusal::TooLarge => too_large(server, request_id),
            BodyRefusal::Unsupported(encoding) => error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                &format!("Content-Encoding {encoding:?} is not accepted (gzip, deflate or none)"),
                request_id,
            ),
            BodyRefusal::Corrupt => error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "the compressed body cannot be decompressed",
                request_id,
            ),
        }
    }
}

/// The body as JSON bytes: as sent, or gzip / deflate decompressed. The body limit holds
/// for the decompressed size too, and decompression stops one byte past it.
fn decode_body(encoding: Option<&str>, body: Bytes, limit: usize) -> Result<Bytes, BodyRefusal> {
    use std::io::Read;
    let reader: Box<dyn Read + '_> = match encoding {
        None | Some("identity") | Some("") => return Ok(body),
        Some("gzip") | Some("x-gzip") => Box::new(flate2::read::GzDecoder::new(&body[..])),
        Some("deflate") => Box::new(flate2::read::ZlibDecoder::new(&body[..])),
        Some(other) => return Err(BodyRefusal::Unsupported(other.to_owned())),
    };
    let mut decoded = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut decoded)
        .map_err(|_| BodyRefusal::Corrupt)?;
    if decoded.len() > limit {
        return Err(BodyRefusal::TooLarge);
    }
    Ok(Bytes::from(decoded))
}

fn too_large(server: &Server, request_id: &str) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        &format!(
            "the request body is larger than {} bytes (decompressed)",
            server.config.max_body_bytes
        ),
        request_id,
    )
}

/// Prometheus metrics, for the holder of the metrics token only (no token configured:
/// not served, the same 404 as any unknown path). The token is compared in constant time.
async fn metrics(State(server): State<Arc<Server>>, headers: HeaderMap) -> Response {
    let Some(expected) = &server.config.metrics_token else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !crm_contract::secrets::same_secret(given, expected) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        server.engine.metrics.render(server.engine.cached_plans()),
    )
        .into_response()
}

/// Ready when every subgraph answers `{ __typename }` (with a token of its own).
async fn ready(State(server): State<Arc<Server>>) -> Response {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let mut unreachable = Vec::new();
    for (name, url) in server.engine.subgraphs() {
        let answered = server
            .client
            .post(url)
            .header(
                "authorization",
                format!("Bearer {}", (server.mint)(name, &Caller::anonymous())),
            )
            .header("x-request-id", &request_id)
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if !answered {
            unreachable.push(name.clone());
        }
    }
    if unreachable.is_empty() {
        (StatusCode::OK, Json(json!({ "ready": true }))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "unreachable": unreachable })),
        )
            .into_response()
    }
}
