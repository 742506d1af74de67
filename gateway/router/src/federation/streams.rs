//! The streaming transports of `/graphql`: server-sent events (the graphql-sse protocol's
//! distinct-connections mode: `POST` with `Accept: text/event-stream`) and WebSocket (the
//! graphql-transport-ws protocol). Both run subscriptions ([`super::live`]) and, once
//! each, queries and mutations, through the same door, limits and engine as a plain POST.
//!
//! Credentials are never taken from cookies: a WebSocket is signed in by its first message
//! (`connection_init` with `{"Authorization": "Bearer …"}`) or by the upgrade request's
//! `Authorization` header, so a page of another site cannot open one in a user's name.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_contract::internal_auth::Caller;
use crm_contract::{Authenticated, CallerKind, ClientAddress, ErrorCode, Refusal};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::engine::{EngineResponse, GraphQLRequest, RequestContext};
use super::live::{self, Emit, Ended, LiveReader};
use super::server::{self, Draining, Server};

/// An idle event stream sends a comment this often (proxies close silent connections).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How long a new WebSocket may take to send `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many operations one WebSocket runs at once.
const MAX_OPERATIONS: usize = 100;

/// The WebSocket subprotocol served.
const PROTOCOL: &str = "graphql-transport-ws";

/// What one operation over a stream gives: one answer, or a subscription's events.
enum Started {
    Once(EngineResponse),
    Stream(mpsc::Receiver<Emit>),
}

/// Reads as a subscriber: the door is asked again before every read, with the credentials
/// the stream was opened with.
struct SubscriberReader {
    server: Arc<Server>,
    authorization: Option<String>,
    request_id: String,
}

impl SubscriberReader {
    /// Who the door says the subscriber is now, or why the stream ends.
    async fn admitted(&self) -> Result<Authenticated, Ended> {
        let ended = |code: ErrorCode, message: &str| Ended {
            code,
            message: message.to_owned(),
        };
        let (Some(door), Some(authorization)) = (&self.server.authenticator, &self.authorization)
        else {
            return Err(ended(ErrorCode::Unauthenticated, "sign in to subscribe"));
        };
        let authenticated = door
            .authenticate(authorization)
            .await
            .map_err(|refusal| match refusal {
                Refusal::InvalidToken(_) => ended(
                    ErrorCode::Unauthenticated,
                    "your sign-in has ended (signed out, disabled, or the key was revoked or has expired): sign in and subscribe again",
                ),
                Refusal::Unavailable(_) => ended(
                    ErrorCode::Unavailable,
                    "sign-in cannot be checked now: subscribe again later",
                ),
            })?;
        if authenticated.kind == CallerKind::Anonymous {
            return Err(ended(ErrorCode::Unauthenticated, "sign in to subscribe"));
        }
        Ok(authenticated)
    }
}

impl LiveReader for SubscriberReader {
    fn check(&self) -> std::pin::Pin<Box<dyn Future<Output = Result<(), Ended>> + Send + '_>> {
        Box::pin(async move { self.admitted().await.map(|_| ()) })
    }

    fn read<'a>(
        &'a self,
        query: &'a str,
        variables: Value,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Value, Ended>> + Send + 'a>> {
        Box::pin(async move {
            let authenticated = self.admitted().await?;
            let caller: &Caller = &authenticated.caller;
            let mint = |subgraph: &str| (self.server.mint)(subgraph, caller);
            let context = RequestContext {
                request_id: &self.request_id,
                mint_token: &mint,
                allow_mutations: false,
                caller: authenticated.kind,
                anonymous_root_fields: None,
                principal: Some(caller),
            };
            let request = GraphQLRequest {
                query: query.to_owned(),
                operation_name: None,
                variables: Some(variables),
            };
            let answer = self.server.engine.execute(&request, &context).await;
            let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            if let Some(code) = answer.refused {
                let message = body["errors"][0]["message"]
                    .as_str()
                    .unwrap_or("the subscription cannot be read")
                    .to_owned();
                return Err(Ended { code, message });
            }
            Ok(body)
        })
    }
}

/// Starts one operation sent over a stream by a caller the door let in.
async fn start(
    server: &Arc<Server>,
    authenticated: &Authenticated,
    authorization: Option<&str>,
    client: Option<ClientAddress>,
    request: GraphQLRequest,
    request_id: String,
) -> Started {
    let started = std::time::Instant::now();
    let live = match server.engine.prepare_live(&request, authenticated.kind) {
        Ok(Some(live)) => live,
        Ok(None) => {
            let (answer, _) = server::execute(
                server,
                authenticated,
                client,
                &request,
                &request_id,
                true,
                started,
            )
            .await;
            return Started::Once(answer);
        }
        Err(refused) => return Started::Once(refused),
    };
    let Some(changes) = &server.live else {
        return Started::Once(EngineResponse::refused(
            400,
            ErrorCode::BadRequest,
            vec!["this gateway does not serve subscriptions".into()],
        ));
    };
    if authenticated.kind == CallerKind::Anonymous {
        return Started::Once(EngineResponse::refused(
            401,
            ErrorCode::Unauthenticated,
            vec!["sign in to subscribe".into()],
        ));
    }
    // Starting a subscription spends one operation of the caller's budget.
    if let Some(limiter) = &server.limiter {
        let source = client.map(|ClientAddress(ip)| ip.to_string());
        let caller = &authenticated.caller;
        let asks = limiter.asks(
            authenticated.kind,
            &caller.subject,
            &caller.roles,
            source.as_deref(),
        );
        if let Some(refused) = limiter.admit(&asks, 1).await
            && !refused.admitted
        {
            return Started::Once(server::rate_limited(&refused));
        }
    }
    tracing::debug!(%request_id, field = live.field(), "subscription started");
    let reader = SubscriberReader {
        server: server.clone(),
        authorization: authorization.map(str::to_owned),
        request_id,
    };
    Started::Stream(live::run(live, Arc::new(reader), changes.subscribe()))
}

/// Whether a POST asks for server-sent events.
pub(crate) fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// Answers a POST that asks for `text/event-stream`: a refusal as the usual JSON answer
/// with its status; otherwise `next` events (one for a query or mutation) and `complete`.
pub(crate) async fn event_stream(
    server: Arc<Server>,
    headers: &HeaderMap,
    client: Option<ClientAddress>,
    draining: Option<Draining>,
    request: GraphQLRequest,
    request_id: String,
) -> Response {
    let started = std::time::Instant::now();
    let authenticated = match server::authenticate(&server, headers, &request_id, started).await {
        Ok(authenticated) => authenticated,
        Err(refusal) => return refusal,
    };
    let authorization = server::authorization(headers);
    let events = match start(
        &server,
        &authenticated,
        authorization.as_deref(),
        client,
        request,
        request_id.clone(),
    )
    .await
    {
        Started::Once(answer) if answer.refused.is_some() => {
            let mut response = (
                StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_REQUEST),
                [(header::CONTENT_TYPE, "application/json")],
                answer.body,
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert("x-request-id", value);
            }
            return response;
        }
        Started::Once(answer) => {
            let (sender, receiver) = mpsc::channel(1);
            let body = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            let _ = sender.try_send(Emit::Next(body));
            receiver
        }
        Started::Stream(events) => events,
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(sse_events(events, draining)),
    )
        .into_response();
    let headers = response.headers_mut();
    // Proxies that buffer (nginx) would hold events back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", value);
    }
    response
}

/// Resolves when the gateway starts to stop (never without a signal).
async fn drained(draining: &mut Option<Draining>) {
    match draining {
        Some(Draining(stop)) => {
            if stop.wait_for(|stopping| *stopping).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// The SSE body: `event: next` per event, a comment when idle, `event: complete` last.
fn sse_events(
    events: mpsc::Receiver<Emit>,
    draining: Option<Draining>,
) -> impl futures_util::Stream<Item = Result<String, std::convert::Infallible>> {
    enum State {
        Open(mpsc::Receiver<Emit>, Option<Draining>),
        Ending,
        Done,
    }
    const COMPLETE: &str = "event: complete\ndata:\n\n";
    let next = |event: &Value| format!("event: next\ndata: {event}\n\n");
    futures_util::stream::unfold(State::Open(events, draining), move |state| async move {
        let (chunk, state) = match state {
            State::Open(mut events, mut draining) => {
                let received = tokio::select! {
                    _ = drained(&mut draining) => return Some((Ok(next(&Ended::stopping().payload())), State::Ending)),
                    received = tokio::time::timeout(KEEP_ALIVE, events.recv()) => received,
                };
                match received {
                    Err(_) => (":\n\n".to_owned(), State::Open(events, draining)),
                    Ok(Some(Emit::Next(event))) => (next(&event), State::Open(events, draining)),
                    Ok(Some(Emit::End(event))) => (next(&event), State::Ending),
                    Ok(None) => (COMPLETE.to_owned(), State::Done),
                }
            }
            State::Ending => (COMPLETE.to_owned(), State::Done),
            State::Done => return None,
        };
        Some((Ok(chunk), state))
    })
}

/// Upgrades `GET /graphql` to a graphql-transport-ws WebSocket.
pub(crate) fn websocket(
    server: Arc<Server>,
    upgrade: WebSocketUpgrade,
    headers: &HeaderMap,
    client: Option<ClientAddress>,
    draining: Option<Draining>,
) -> Response {
    let request_id = server::request_id(headers);
    let upgrade = upgrade.protocols([PROTOCOL]);
    if upgrade.selected_protocol().is_none() {
        return server::error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            &format!("open the WebSocket with the {PROTOCOL} subprotocol"),
            &request_id,
        );
    }
    let authorization = server::authorization(headers);
    let limit = server.config.max_body_bytes;
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| {
            session(socket, server, authorization, client, draining, request_id)
        })
}

/// A message of the protocol, as clients send it.
#[derive(serde::Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    #[serde(default)]
    payload: Value,
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

fn text(message: Value) -> Message {
    Message::Text(message.to_string().into())
}

/// One WebSocket, from `connection_init` to its close.
async fn session(
    socket: WebSocket,
    server: Arc<Server>,
    upgrade_authorization: Option<String>,
    client: Option<ClientAddress>,
    mut draining: Option<Draining>,
    request_id: String,
) {
    let (mut sink, mut incoming) = socket.split();
    let (out, mut outgoing) = mpsc::channel::<Message>(256);
    let writer = tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            let last = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || last {
                break;
            }
        }
    });
    // The first message must be `connection_init`, in time.
    let first = tokio::time::timeout(INIT_TIMEOUT, next_text(&mut incoming)).await;
    let init = match first {
        Err(_) => {
            let _ = out
                .send(close(4408, "Connection initialisation timeout"))
                .await;
            drop(out);
            let _ = writer.await;
            return;
        }
        Ok(None) => return,
        Ok(Some(Ok(init))) if init.kind == "connection_init" => init,
        Ok(Some(_)) => {
            let _ = out.send(close(4401, "Unauthorized")).await;
            drop(out);
            let _ = writer.await;
            return;
        }
    };
    let authorization = init
        .payload
        .get("Authorization")
        .or_else(|| init.payload.get("authorization"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or(upgrade_authorization);
    let authenticated = match server::authenticate_with(
        &server,
        authorization.as_deref(),
        &request_id,
        std::time::Instant::now(),
    )
    .await
    {
        Ok(authenticated) => authenticated,
        Err(_) => {
            let _ = out.send(close(4403, "Forbidden")).await;
            drop(out);
            let _ = writer.await;
            return;
        }
    };
    let _ = out.send(text(json!({ "type": "connection_ack" }))).await;
    let authenticated = Arc::new(authenticated);
    let mut operations: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    // Numbers each operation's request id (ids the client gives may repeat once done).
    let mut started = 0usize;
    let reason = loop {
        let message = tokio::select! {
            _ = drained(&mut draining) => break Some((1001, "the gateway is stopping".into())),
            message = next_text(&mut incoming) => message,
        };
        let message = match message {
            None => break None,
            Some(Err(reason)) => break Some(reason),
            Some(Ok(message)) => message,
        };
        match message.kind.as_str() {
            "ping" => {
                let _ = out.send(text(json!({ "type": "pong" }))).await;
            }
            "pong" => {}
            "connection_init" => break Some((4429, "Too many initialisation requests".into())),
            "subscribe" => {
                let Some(id) = message.id.filter(|id| !id.is_empty() && id.len() <= 128) else {
                    break Some((4400, "subscribe needs an id".into()));
                };
                operations.retain(|_, task| !task.is_finished());
                if operations.contains_key(&id) {
                    break Some((4409, format!("Subscriber for {id} already exists")));
                }
                if operations.len() >= MAX_OPERATIONS {
                    let error = json!({ "message": format!("at most {MAX_OPERATIONS} operations run at once on one connection"), "extensions": { "code": ErrorCode::BadRequest.as_str() } });
                    let _ = out
                        .send(text(
                            json!({ "type": "error", "id": id, "payload": [error] }),
                        ))
                        .await;
                    continue;
                }
                let request: GraphQLRequest = match serde_json::from_value(message.payload) {
                    Ok(request) => request,
                    Err(e) => {
                        break Some((
                            4400,
                            format!("the subscribe payload is not a GraphQL request: {e}"),
                        ));
                    }
                };
                started += 1;
                let operation = operation(
                    server.clone(),
                    authenticated.clone(),
                    authorization.clone(),
                    client,
                    request,
                    format!("{request_id}-{started}"),
                    id.clone(),
                    out.clone(),
                );
                operations.insert(id, tokio::spawn(operation));
            }
            "complete" => {
                if let Some(task) = message.id.and_then(|id| operations.remove(&id)) {
                    task.abort();
                }
            }
            other => break Some((4400, format!("unknown message type {other:?}"))),
        }
    };
    for (_, task) in operations.drain() {
        task.abort();
    }
    if let Some((code, reason)) = reason {
        let _ = out.send(close(code, &reason)).await;
    }
    drop(out);
    let _ = writer.await;
}

/// The next protocol message: `None` when the socket closed, `Err` with the close code and
/// reason when the client broke the protocol.
async fn next_text(
    incoming: &mut futures_util::stream::SplitStream<WebSocket>,
) -> Option<Result<Incoming, (u16, String)>> {
    loop {
        match incoming.next().await? {
            Ok(Message::Text(body)) => {
                return Some(
                    serde_json::from_str::<Incoming>(body.as_str())
                        .map_err(|e| (4400, format!("not a graphql-transport-ws message: {e}"))),
                );
            }
            Ok(Message::Binary(_)) => {
                return Some(Err((
                    4400,
                    "binary messages are not part of the protocol".into(),
                )));
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) | Err(_) => return None,
        }
    }
}

/// Runs one `subscribe` of a WebSocket to its end: `error` when refused, otherwise `next`
/// per event and `complete` last.
#[allow(clippy::too_many_arguments)]
async fn operation(
    server: Arc<Server>,
    authenticated: Arc<Authenticated>,
    authorization: Option<String>,
    client: Option<ClientAddress>,
    request: GraphQLRequest,
    request_id: String,
    id: String,
    out: mpsc::Sender<Message>,
) {
    let next = |payload: Value| text(json!({ "type": "next", "id": id, "payload": payload }));
    match start(
        &server,
        &authenticated,
        authorization.as_deref(),
        client,
        request,
        request_id,
    )
    .await
    {
        Started::Once(answer) if answer.refused.is_some() => {
            let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            let errors = body["errors"].clone();
            let _ = out
                .send(text(
                    json!({ "type": "error", "id": id, "payload": errors }),
                ))
                .await;
            return;
        }
        Started::Once(answer) => {
            let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            if out.send(next(body)).await.is_err() {
                return;
            }
        }
        Started::Stream(mut events) => {
            while let Some(event) = events.recv().await {
                let (payload, last) = match event {
                    Emit::Next(payload) => (payload, false),
                    Emit::End(payload) => (payload, true),
                };
                if out.send(next(payload)).await.is_err() {
                    return;
                }
                if last {
                    break;
                }
            }
        }
    }
    let _ = out
        .send(text(json!({ "type": "complete", "id": id })))
        .await;
}
