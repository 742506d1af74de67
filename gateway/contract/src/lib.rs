//! What the federation router and the subgraph services agree on, and nothing else: the
//! internal token the router signs for every subgraph request and its claims
//! ([`internal_auth`]), the caller's kind as the router tells callers apart
//! ([`CallerKind`]), the door the router calls to learn who is calling ([`Door`]), and the
//! random secrets and digests both sides make ([`secrets`]), the one clock they all
//! read ([`clock`]), and the one way they bound what they remember in memory
//! ([`bounded`]).
//!
//! It is a leaf: the router depends on it instead of on `services/common`, which is service
//! code (databases, GraphQL, events).

pub mod bounded;
pub mod clock;
mod error_code;
pub mod internal_auth;
pub mod secrets;

use std::future::Future;
use std::pin::Pin;

pub use error_code::ErrorCode;
use internal_auth::Caller;

/// The kind of caller a request comes from, as the router tells them apart (limits,
/// introspection and hints differ per kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallerKind {
    Anonymous,
    /// Staff of the company (sales, marketing, support, management, admin).
    Internal,
    /// A supplier's or distributor's user.
    Partner,
    /// A program calling with an API key.
    Integrator,
}

impl CallerKind {
    pub const ALL: [CallerKind; 4] = [
        CallerKind::Anonymous,
        CallerKind::Internal,
        CallerKind::Partner,
        CallerKind::Integrator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallerKind::Anonymous => "anonymous",
            CallerKind::Internal => "internal",
            CallerKind::Partner => "partner",
            CallerKind::Integrator => "integrator",
        }
    }
}

impl std::str::FromStr for CallerKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        CallerKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text.trim())
            .ok_or_else(|| {
                format!("unknown caller kind {text:?} (anonymous, internal, partner, integrator)")
            })
    }
}

/// The caller of one request, as the door established it.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub caller: Caller,
    pub kind: CallerKind,
}

impl Authenticated {
    pub fn anonymous() -> Self {
        Self {
            caller: Caller::anonymous(),
            kind: CallerKind::Anonymous,
        }
    }
}

/// The address a request came from, as the door decided it: the peer, or the client a
/// trusted proxy names (`X-Forwarded-For`). The web UI passes its browser's on the
/// requests it makes in process. Request extensions carry it; clients cannot set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub std::net::IpAddr);

/// Why a request was not let in.
#[derive(Debug)]
pub enum Refusal {
    /// The credentials are not valid (expired, forged, revoked, unknown, disabled user).
    InvalidToken(&'static str),
    /// The directory could not be read.
    Unavailable(String),
}

/// A boxed future, so that [`Door`] can be a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the router asks, once per request, to learn who is calling from the
/// `Authorization` header's value (a request without one is anonymous and never asks).
/// The identity service implements it; the router knows nothing of users or keys.
pub trait Door: Send + Sync {
    fn authenticate<'a>(
        &'a self,
        authorization: &'a str,
    ) -> BoxFuture<'a, Result<Authenticated, Refusal>>;

    /// The root fields a caller without credentials may reach: those that sign in or redeem
    /// an invitation. Any other operation from an anonymous caller is refused before it is
    /// planned (`UNAUTHENTICATED`), so nothing about the schema's data answers anonymously.
    fn anonymous_root_fields(&self) -> &'static [&'static str];
}
