//! A webhook receiver for the tests: a real HTTP server on a port of its own that records
//! every request and answers as its plan says, and reads back the deliveries it got, each
//! checked against the webhook's signing secret as a receiver should.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use crm_identity::webhooks::outbound;
use serde_json::Value;

/// What a receiver answers its next request with.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Ok,
    Fail(u16),
    /// Answers only after the delivery's timeout (1 s here) has passed.
    Hang,
}

#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("a {name} header"))
    }
}

/// A webhook receiver on a port of its own: it records every request and answers as its
/// plan says (then 200).
#[derive(Clone, Default)]
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
    plan: Arc<Mutex<VecDeque<Answer>>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let receiver = Receiver {
            url: format!("http://{}/hooks/crm", listener.local_addr().expect("addr")),
            ..Default::default()
        };
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    pub fn then(&self, answers: &[Answer]) {
        self.plan
            .lock()
            .expect("plan")
            .extend(answers.iter().copied());
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().expect("got").clone()
    }
}

async fn answer(State(receiver): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    receiver
        .got
        .lock()
        .expect("got")
        .push(Received { headers, body });
    let next = receiver.plan.lock().expect("plan").pop_front();
    match next.unwrap_or(Answer::Ok) {
        Answer::Ok => StatusCode::OK,
        Answer::Fail(status) => StatusCode::from_u16(status).expect("a status"),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(4)).await;
            StatusCode::OK
        }
    }
}

/// Every delivery `receiver` got (the attempts of one delivery once: its last), in the order
/// they first arrived, each checked against the webhook's `secret` and its headers.
pub fn deliveries(receiver: &Receiver, secret: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for got in receiver.received() {
        let timestamp = outbound::verify(secret, got.header("crm-signature"), &got.body)
            .expect("every delivery is signed with the webhook's secret");
        assert_eq!(got.header("crm-timestamp"), timestamp.to_string());
        let body = got.json();
        assert_eq!(got.header("crm-delivery"), body["id"]);
        assert_eq!(got.header("crm-event"), body["event"]);
        match out.iter_mut().find(|d| d["id"] == body["id"]) {
            Some(again) => *again = body,
            None => out.push(body),
        }
    }
    out
}

/// The settings of a test system whose webhooks post to receivers on loopback (which
/// deliveries may not reach by default), each attempt given `timeout`.
pub fn loopback_webhooks(timeout: Duration) -> crm_system::GatewaySettings {
    let mut settings = crm_system::GatewaySettings::default();
    settings.identity.webhooks = crm_identity::webhooks::WebhookSettings {
        allowed_networks: crm_identity::webhooks::Networks::parse("127.0.0.0/8").expect("net"),
        timeout,
    };
    settings
}
