//! Sending deliveries: signed, bounded in time, and never to an address the deployment
//! does not allow. Every address a host name resolves to is checked when the connection is
//! made (so a name that resolves to a public address when the webhook is saved and to a
//! private one later is refused then); redirects are not followed and no proxy is used.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;

use super::domain::Networks;

/// The headers a receiver checks: `CRM-Signature` is `t=<unix seconds>,v1=<hex>`, the
/// HMAC-SHA256 of `<t>.<body>` under the webhook's secret. A receiver recomputes it and
/// refuses a timestamp older than it tolerates (replays).
pub const SIGNATURE_HEADER: &str = "crm-signature";
pub const TIMESTAMP_HEADER: &str = "crm-timestamp";
pub const DELIVERY_HEADER: &str = "crm-delivery";
pub const EVENT_HEADER: &str = "crm-event";
pub const WEBHOOK_HEADER: &str = "crm-webhook";

/// How long one attempt may take by default (connecting, sending, the answer's headers).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The signature of `body` sent at `timestamp` under `secret`: `t=…,v1=…`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body.as_bytes());
    let tag = context.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Whether `header` (`t=…,v1=…`) signs `body` under `secret`, compared in constant time:
/// what a receiver does (the tests' receiver does exactly this).
pub fn verify(secret: &str, header: &str, body: &str) -> Option<i64> {
    let mut timestamp = None;
    let mut tag = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => tag = Some(v),
            _ => {}
        }
    }
    let (timestamp, tag) = (timestamp?, tag?);
    let bytes: Option<Vec<u8>> = (0..tag.len())
        .step_by(2)
        .map(|i| {
            tag.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let message = format!("{timestamp}.{body}");
    hmac::verify(&key, message.as_bytes(), &bytes?)
        .ok()
        .map(|_| timestamp)
}

/// What one delivery sends besides its body.
pub struct Envelope<'a> {
    pub url: &'a str,
    pub secret: &'a str,
    pub webhook_id: &'a str,
    pub delivery_id: &'a str,
    pub event: &'a str,
    pub timestamp: i64,
}

/// How one attempt went.
#[derive(Debug)]
pub struct Posted {
    /// The endpoint's status (none: no answer).
    pub status: Option<u16>,
    /// Why it failed, in words for the delivery history (none: a 2xx answer).
    pub error: Option<String>,
    pub duration: Duration,
}

/// The deployment's outbound HTTP client for deliveries.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    networks: Networks,
    timeout: Duration,
}

impl Outbound {
    /// A client that reaches only public addresses and `networks`, giving each attempt
    /// `timeout`.
    pub fn new(networks: Networks, timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                networks: networks.clone(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("crm-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            client,
            networks,
            timeout,
        }
    }

    pub fn networks(&self) -> &Networks {
        &self.networks
    }

    /// Posts `body` to the envelope's URL, signed.
    pub async fn post(&self, envelope: &Envelope<'_>, body: String) -> Posted {
        let started = Instant::now();
        let failed = |error: String| Posted {
            status: None,
            error: Some(error),
            duration: started.elapsed(),
        };
        // An address written in the URL is never resolved, so it is checked here.
        let url = match reqwest::Url::parse(envelope.url) {
            Ok(url) => url,
            Err(_) => return failed("the URL no longer parses".into()),
        };
        let literal = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(std::net::IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(std::net::IpAddr::V6(v6)),
            _ => None,
        };
        if let Some(ip) = literal
            && !self.networks.allows(ip)
        {
            return failed(format!(
                "{ip} is a private or loopback address; deliveries may not reach it"
            ));
        }
        let signature = signature(envelope.secret, envelope.timestamp, &body);
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(TIMESTAMP_HEADER, envelope.timestamp.to_string())
            .header(DELIVERY_HEADER, envelope.delivery_id)
            .header(EVENT_HEADER, envelope.event)
            .header(WEBHOOK_HEADER, envelope.webhook_id)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => return failed(describe(&e, self.timeout)),
        };
        let status = response.status();
        // A little of what the endpoint said, for the history (bounded, and in time).
        let said = match tokio::time::timeout(Duration::from_secs(2), response.bytes()).await {
            Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                .trim()
                .to_owned(),
            _ => String::new(),
        };
        Posted {
            status: Some(status.as_u16()),
            error: (!status.is_success()).then(|| {
                if said.is_empty() {
                    format!("HTTP {}", status.as_u16())
                } else {
                    format!("HTTP {}: {said}", status.as_u16())
                }
            }),
            duration: started.elapsed(),
        }
    }
}

/// A failed request in words (never the client's debug text).
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    use std::error::Error as _;
    if error.is_timeout() {
        return format!("no answer within {} s", timeout.as_secs_f64());
    }
    // The resolver's refusal is the most useful thing to show.
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return refused.to_string();
        }
        source = cause.source();
    }
    if error.is_connect() {
        return "could not connect".into();
    }
    if error.is_redirect() {
        return "redirected; redirects are not followed".into();
    }
    "the request failed".into()
}

/// A host resolved only to addresses deliveries may not reach.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Resolves with the system's resolver and refuses the name when any address it resolves
/// to is not allowed: a name that mixes public and private addresses is refused whole.
struct GuardedResolver {
    networks: Networks,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let networks = self.networks.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            type Failure = Box<dyn std::error::Error + Send + Sync>;
            let unresolved =
                || -> Failure { Box::new(Refused(format!("{host} does not resolve"))) };
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| unresolved())?
                .collect();
            if addresses.is_empty() {
                return Err(unresolved());
            }
            if let Some(bad) = addresses.iter().find(|a| !networks.allows(a.ip())) {
                let refused: Failure = Box::new(Refused(format!(
                    "{host} resolves to {}, a private or loopback address; deliveries may not reach it",
                    bad.ip()
                )));
                return Err(refused);
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_for_its_body_and_secret_only() {
        let header = signature("whsec_test", 1_733_580_000, "{\"a\":1}");
        assert!(header.starts_with("t=1733580000,v1="));
        assert_eq!(
            verify("whsec_test", &header, "{\"a\":1}"),
            Some(1_733_580_000)
        );
        assert_eq!(verify("whsec_other", &header, "{\"a\":1}"), None);
        assert_eq!(verify("whsec_test", &header, "{\"a\":2}"), None);
        let replayed_later = header.replace("t=1733580000", "t=1733589999");
        assert_eq!(verify("whsec_test", &replayed_later, "{\"a\":1}"), None);
    }
}
