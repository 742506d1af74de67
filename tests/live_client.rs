//! Real subscription clients: a graphql-transport-ws WebSocket and a graphql-sse event
//! stream (`POST /graphql`, `Accept: text/event-stream`), each reading on a task of its own
//! so the test waits for events with a deadline.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// What a subscription's stream said.
#[derive(Clone, Debug, PartialEq)]
pub enum Said {
    /// An event (a GraphQL response: `data`, maybe `errors`).
    Next(Value),
    /// The operation was refused before it started (graphql-transport-ws `error`).
    Refused(Value),
    /// The stream is over.
    Complete,
    /// The server closed the WebSocket with this code and reason.
    Closed(u16, String),
}

/// One subscription over one connection.
pub struct Live {
    /// What the stream said, each with when it arrived.
    said: mpsc::UnboundedReceiver<(std::time::Instant, Said)>,
    /// Sends a client message on the WebSocket (none for SSE).
    send: Option<mpsc::UnboundedSender<Message>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Live {
    /// Opens a WebSocket to `url`'s `/graphql`, signs in with `bearer` in
    /// `connection_init`, and subscribes with id `1`.
    pub async fn websocket(url: &str, bearer: Option<&str>, query: &str, variables: Value) -> Self {
        let mut request = format!("{}/graphql", url.replacen("http", "ws", 1))
            .into_client_request()
            .expect("a WebSocket request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().expect("a header"),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the WebSocket opens");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some("graphql-transport-ws")
        );
        let (mut sink, mut stream) = socket.split();
        let init = match bearer {
            Some(bearer) => {
                json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {bearer}") } })
            }
            None => json!({ "type": "connection_init" }),
        };
        sink.send(Message::Text(init.to_string().into()))
            .await
            .expect("connection_init");
        let (said_tx, said) = mpsc::unbounded_channel();
        let (send, mut outgoing) = mpsc::unbounded_channel::<Message>();
        let subscribe = json!({ "type": "subscribe", "id": "1", "payload": { "query": query, "variables": variables } });
        let task = tokio::spawn(async move {
            let mut subscribed = false;
            loop {
                tokio::select! {
                    message = outgoing.recv() => {
                        let Some(message) = message else { return };
                        if sink.send(message).await.is_err() { return; }
                    }
                    message = stream.next() => {
                        let message = match message {
                            Some(Ok(message)) => message,
                            _ => return,
                        };
                        let body: Value = match &message {
                            Message::Text(text) => serde_json::from_str(text.as_str()).unwrap_or(Value::Null),
                            Message::Close(frame) => {
                                let (code, reason) = frame.as_ref().map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                                let _ = said_tx.send((std::time::Instant::now(), Said::Closed(code, reason)));
                                return;
                            }
                            _ => continue,
                        };
                        let said = match body["type"].as_str() {
                            Some("connection_ack") if !subscribed => {
                                subscribed = true;
                                if sink.send(Message::Text(subscribe.to_string().into())).await.is_err() { return; }
                                continue;
                            }
                            Some("next") => Said::Next(body["payload"].clone()),
                            Some("error") => Said::Refused(body["payload"].clone()),
                            Some("complete") => Said::Complete,
                            Some("ping") => {
                                let _ = sink.send(Message::Text(json!({ "type": "pong" }).to_string().into())).await;
                                continue;
                            }
                            _ => continue,
                        };
                        if said_tx.send((std::time::Instant::now(), said)).is_err() { return; }
                    }
                }
            }
        });
        Self {
            said,
            send: Some(send),
            task,
        }
    }

    /// Posts the subscription to `url`'s `/graphql` asking for server-sent events. A
    /// refusal (any answer that is not an event stream) is returned as its status and body.
    pub async fn event_stream(
        url: &str,
        bearer: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<Self, (u16, Value)> {
        let mut request = reqwest::Client::new()
            .post(format!("{url}/graphql"))
            .header("accept", "text/event-stream")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let mut response = request.send().await.expect("the stream opens");
        let is_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_stream {
            let status = response.status().as_u16();
            return Err((status, response.json().await.unwrap_or(Value::Null)));
        }
        let (said_tx, said) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let mut event = "";
                    let mut data = String::new();
                    for line in block.lines() {
                        if let Some(name) = line.strip_prefix("event:") {
                            event = if name.trim() == "next" {
                                "next"
                            } else if name.trim() == "complete" {
                                "complete"
                            } else {
                                ""
                            };
                        } else if let Some(value) = line.strip_prefix("data:") {
                            data.push_str(value.trim_start());
                        }
                    }
                    let said = match event {
                        "next" => Said::Next(serde_json::from_str(&data).unwrap_or(Value::Null)),
                        "complete" => Said::Complete,
                        _ => continue, // a keep-alive comment
                    };
                    if said_tx.send((std::time::Instant::now(), said)).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Self {
            said,
            send: None,
            task,
        })
    }

    /// What the stream says next, waiting up to `within`; `None` when it said nothing.
    pub async fn next(&mut self, within: Duration) -> Option<Said> {
        self.next_arrived(within).await.map(|(_, said)| said)
    }

    /// [`Live::next`] with when it arrived at the client.
    pub async fn next_arrived(&mut self, within: Duration) -> Option<(std::time::Instant, Said)> {
        tokio::time::timeout(within, self.said.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next event's payload, or a panic naming `what` when something else came.
    pub async fn event(&mut self, within: Duration, what: &str) -> Value {
        match self.next(within).await {
            Some(Said::Next(payload)) => payload,
            other => panic!("{what}: expected an event, got {other:?}"),
        }
    }

    /// Asserts the stream says nothing for `quiet`.
    pub async fn silent(&mut self, quiet: Duration, what: &str) {
        if let Some(said) = self.next(quiet).await {
            panic!("{what}: expected nothing, got {said:?}");
        }
    }

    /// Ends the subscription from the client's side (graphql-transport-ws `complete`).
    pub fn complete(&self) {
        if let Some(send) = &self.send {
            let _ = send.send(Message::Text(
                json!({ "type": "complete", "id": "1" }).to_string().into(),
            ));
        }
    }

    /// Sends a raw protocol message (for protocol tests).
    pub fn send_raw(&self, message: Value) {
        if let Some(send) = &self.send {
            let _ = send.send(Message::Text(message.to_string().into()));
        }
    }
}
