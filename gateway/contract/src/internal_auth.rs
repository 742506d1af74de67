//! Identity between the gateway and the subgraphs. The gateway signs a short-lived token
//! per caller and subgraph (Ed25519, audience = that subgraph, carrying who the caller is;
//! reused for half its life, [`TokenCache`]; the request id travels in `x-request-id`); a
//! subgraph refuses requests without a valid one. A subgraph holds only the public key, so
//! it cannot mint tokens for the others.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Selects jsonwebtoken's crypto backend for the process. With both of its backends
/// compiled in (the gateway's dependencies enable the other one), it panics at the first
/// signature unless one is installed.
pub fn ensure_crypto_provider() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    });
}

/// The issuer of every internal token.
pub const ISSUER: &str = "crm-gateway";
/// How long an internal token is valid: one request, with room for clock skew.
pub const TOKEN_TTL_SECONDS: i64 = 60;

/// Who the caller is, as the gateway established it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct Caller {
    /// The user or API key id (`anonymous` before sign-in exists).
    pub subject: String,
    /// `internal`, `supplier`, `distributor`, `integrator` or `anonymous`.
    pub kind: String,
    pub partner_id: Option<String>,
    pub roles: Vec<String>,
    /// The version of the access policy the gateway decided with (the policy work
    /// distributes it; 0 until then).
    #[serde(default)]
    pub policy_version: u64,
    /// The sign-in session the caller's access token belongs to (signing out ends it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Where an anonymous request came from (the client address the door decided), for
    /// the sign-in throttle; absent for signed-in callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A partner user's (or partner key's) programme tier (`GOLD`, …), as the account
    /// service last announced it; absent for staff and for partners of no known tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_tier: Option<String>,
}

impl Caller {
    pub fn anonymous() -> Self {
        Self {
            subject: "anonymous".into(),
            kind: "anonymous".into(),
            partner_id: None,
            roles: Vec::new(),
            policy_version: 0,
            session_id: None,
            source: None,
            partner_tier: None,
        }
    }
}

/// The claims of an internal token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct InternalClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// The gateway's request id for a token minted for one request; empty in the tokens
    /// the gateway reuses across a caller's requests ([`TokenCache`]), whose requests
    /// carry their id in `x-request-id`.
    pub rid: String,
    pub caller: Caller,
}

/// An Ed25519 key pair: the gateway signs with it, subgraphs verify with its public half.
#[derive(Clone)]
pub struct KeyPair {
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

impl KeyPair {
    /// A fresh key pair (the all-in-one process makes one per start).
    pub fn generate() -> anyhow::Result<Self> {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
        let document = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("generating an Ed25519 key failed"))?;
        let pair = Ed25519KeyPair::from_pkcs8(document.as_ref())
            .map_err(|_| anyhow::anyhow!("reading the generated Ed25519 key failed"))?;
        Ok(Self {
            pkcs8: document.as_ref().to_vec(),
            public: pair.public_key().as_ref().to_vec(),
        })
    }

    /// A key pair from its PKCS#8 document in base64 (`CRM_GATEWAY_SIGNING_KEY`).
    pub fn from_base64(pkcs8: &str) -> anyhow::Result<Self> {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
        let pkcs8 = STANDARD.decode(pkcs8.trim())?;
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|_| anyhow::anyhow!("the signing key is not an Ed25519 PKCS#8 document"))?;
        Ok(Self {
            public: pair.public_key().as_ref().to_vec(),
            pkcs8,
        })
    }

    /// The raw Ed25519 public key (32 bytes).
    pub fn public_bytes(&self) -> Vec<u8> {
        self.public.clone()
    }

    /// The private key's PKCS#8 document.
    pub fn pkcs8_bytes(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn private_base64(&self) -> String {
        STANDARD.encode(&self.pkcs8)
    }

    /// The public key in base64 (`CRM_GATEWAY_PUBLIC_KEY` of the subgraphs).
    pub fn public_base64(&self) -> String {
        STANDARD.encode(&self.public)
    }

    pub fn signer(&self) -> TokenSigner {
        ensure_crypto_provider();
        TokenSigner {
            key: EncodingKey::from_ed_der(&self.pkcs8),
        }
    }

    pub fn verifier(&self, audience: &str) -> TokenVerifier {
        TokenVerifier::new(&self.public, audience)
    }
}

/// Mints internal tokens (the gateway).
#[derive(Clone)]
pub struct TokenSigner {
    key: EncodingKey,
}

impl TokenSigner {
    /// A token for one request to `audience` (a subgraph name).
    pub fn mint(&self, audience: &str, caller: &Caller, request_id: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = InternalClaims {
            iss: ISSUER.into(),
            aud: audience.into(),
            sub: caller.subject.clone(),
            iat: now,
            nbf: now - 5,
            exp: now + TOKEN_TTL_SECONDS,
            rid: request_id.into(),
            caller: caller.clone(),
        };
        // Signing plain claims with a valid key cannot fail; an empty token is refused
        // downstream if it ever did.
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.key).unwrap_or_default()
    }
}

/// The gateway's internal tokens, reused per caller and audience while they have at least
/// half their lifetime left, instead of signed for every subgraph call (an Ed25519
/// signature per call was 3 % of the gateway's CPU under load). Reuse never outlives the
/// door's decision: a token is handed out only for a caller the door has just accepted,
/// and the caller it is keyed by includes the session, so a signed-out session, a
/// disabled user or a revoked key is refused before any token is looked up.
pub struct TokenCache {
    signer: TokenSigner,
    /// Per caller: its token for each subgraph it reached.
    tokens: std::sync::Mutex<std::collections::HashMap<Caller, Vec<ReusableToken>>>,
}

/// `(audience, token, reusable until)`.
type ReusableToken = (String, String, i64);

/// How many callers the cache keeps tokens for before it drops the expired ones.
const TOKEN_CACHE_CALLERS: usize = 10_000;

impl TokenCache {
    pub fn new(signer: TokenSigner) -> Self {
        Self {
            signer,
            tokens: Default::default(),
        }
    }

    /// A token for `caller` to `audience` that stays valid for at least half its lifetime.
    pub fn token(&self, audience: &str, caller: &Caller) -> String {
        let now = chrono::Utc::now().timestamp();
        let Ok(mut tokens) = self.tokens.lock() else {
            return self.signer.mint(audience, caller, "");
        };
        if let Some((_, token, _)) = tokens.get(caller).and_then(|of| {
            of.iter()
                .find(|(aud, _, until)| aud == audience && *until > now)
        }) {
            return token.clone();
        }
        let token = self.signer.mint(audience, caller, "");
        if !tokens.contains_key(caller) {
            crate::bounded::make_room(&mut tokens, TOKEN_CACHE_CALLERS, |_, of| {
                of.iter().any(|(_, _, until)| *until > now)
            });
        }
        let of = tokens.entry(caller.clone()).or_default();
        of.retain(|(aud, _, until)| aud != audience && *until > now);
        of.push((
            audience.to_owned(),
            token.clone(),
            now + TOKEN_TTL_SECONDS / 2,
        ));
        token
    }

    /// Drops every token of a subject (a user or API key), e.g. when it is disabled.
    pub fn forget(&self, subject: &str) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.retain(|caller, _| caller.subject != subject);
        }
    }
}

/// Verifies internal tokens for one audience (a subgraph).
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
    /// Tokens whose signature checked out, with their claims: the gateway reuses a
    /// caller's token for many requests, and an Ed25519 verification per request was
    /// most of a small request's cost here. Keyed by the whole token, so a hit is the
    /// same bytes; the times are checked on every use.
    verified: Arc<std::sync::Mutex<std::collections::HashMap<String, InternalClaims>>>,
    /// A secret that also opens this service's event feed (`GET /events`), for consumers
    /// in other service processes, which hold no gateway key.
    feed_key: Option<String>,
}

impl TokenVerifier {
    pub fn new(public_key: &[u8], audience: &str) -> Self {
        ensure_crypto_provider();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Self {
            key: DecodingKey::from_ed_der(public_key),
            validation,
            verified: Default::default(),
            feed_key: None,
        }
    }

    /// The same verifier, also opening the event feed to bearers of `feed_key` (ignored
    /// when shorter than 16 characters: a feed key must not be guessable).
    pub fn with_feed_key(mut self, feed_key: Option<String>) -> Self {
        self.feed_key = feed_key.filter(|k| k.len() >= 16);
        self
    }

    /// Whether `bearer` is this service's feed key (compared in constant time).
    pub fn opens_feed(&self, bearer: &str) -> bool {
        self.feed_key.as_deref().is_some_and(|key| {
            key.len() == bearer.len()
                && key
                    .bytes()
                    .zip(bearer.bytes())
                    .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                    == 0
        })
    }

    /// A verifier from the gateway's public key in base64.
    pub fn from_base64(public_key: &str, audience: &str) -> anyhow::Result<Self> {
        let key = STANDARD.decode(public_key.trim())?;
        anyhow::ensure!(
            key.len() == 32,
            "the gateway public key must be 32 bytes (Ed25519)"
        );
        Ok(Self::new(&key, audience))
    }

    pub fn verify(&self, token: &str) -> Result<InternalClaims, String> {
        let now = chrono::Utc::now().timestamp();
        let leeway = self.validation.leeway as i64;
        let in_time =
            |claims: &InternalClaims| claims.exp + leeway > now && claims.nbf - leeway <= now;
        if let Ok(verified) = self.verified.lock()
            && let Some(claims) = verified.get(token)
        {
            if in_time(claims) {
                return Ok(claims.clone());
            }
            return Err("ExpiredSignature".into());
        }
        let claims = jsonwebtoken::decode::<InternalClaims>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| e.to_string())?;
        if let Ok(mut verified) = self.verified.lock() {
            crate::bounded::make_room(&mut verified, VERIFIED_TOKENS, |_, claims| in_time(claims));
            verified.insert(token.to_owned(), claims.clone());
        }
        Ok(claims)
    }
}

/// How many verified tokens a subgraph remembers before it drops the expired ones.
const VERIFIED_TOKENS: usize = 10_000;

/// What a subgraph requires of its callers.
#[derive(Clone)]
pub enum SubgraphAuth {
    /// A valid gateway token for this subgraph on every request (the default).
    Required(Arc<TokenVerifier>),
    /// No token needed: only for local tests and development, never in production.
    Disabled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_accepted_only_by_its_audience_and_with_the_right_key() {
        let keys = KeyPair::generate().expect("keys");
        let other = KeyPair::generate().expect("keys");
        let token = keys.signer().mint("account", &Caller::anonymous(), "req-1");
        let claims = keys.verifier("account").verify(&token).expect("valid");
        assert_eq!(
            (claims.rid.as_str(), claims.caller.kind.as_str()),
            ("req-1", "anonymous")
        );
        assert!(
            keys.verifier("order-visibility").verify(&token).is_err(),
            "wrong audience"
        );
        assert!(
            other.verifier("account").verify(&token).is_err(),
            "wrong key"
        );
        assert!(keys.verifier("account").verify("not-a-token").is_err());
        let reloaded = KeyPair::from_base64(&keys.private_base64()).expect("reload");
        assert_eq!(reloaded.public_base64(), keys.public_base64());
        let verifier =
            TokenVerifier::from_base64(&keys.public_base64(), "account").expect("verifier");
        assert!(
            verifier
                .verify(&reloaded.signer().mint("account", &Caller::anonymous(), "r"))
                .is_ok()
        );
    }

    #[test]
    fn cached_tokens_are_per_caller_and_audience_and_verify() {
        let keys = KeyPair::generate().expect("keys");
        let cache = TokenCache::new(keys.signer());
        let anonymous = Caller::anonymous();
        let mut other = Caller::anonymous();
        other.subject = "usr_1".into();
        let first = cache.token("account", &anonymous);
        assert_eq!(cache.token("account", &anonymous), first, "reused");
        assert_ne!(cache.token("identity", &anonymous), first, "per audience");
        assert_ne!(cache.token("account", &other), first, "per caller");
        let claims = keys.verifier("account").verify(&first).expect("valid");
        assert_eq!(claims.caller, anonymous);
        assert!(
            claims.exp - chrono::Utc::now().timestamp() > TOKEN_TTL_SECONDS / 2 - 2,
            "a reused token has half its life left"
        );
        cache.forget("usr_1");
        assert!(
            cache.tokens.lock().expect("lock").get(&other).is_none(),
            "forgotten"
        );
        assert_eq!(cache.token("account", &anonymous), first, "others kept");
    }

    #[test]
    fn an_expired_token_is_refused() {
        let keys = KeyPair::generate().expect("keys");
        let now = chrono::Utc::now().timestamp();
        let claims = InternalClaims {
            iss: ISSUER.into(),
            aud: "account".into(),
            sub: "x".into(),
            iat: now - 600,
            nbf: now - 600,
            exp: now - 300,
            rid: "r".into(),
            caller: Caller::anonymous(),
        };
        ensure_crypto_provider();
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &claims,
            &EncodingKey::from_ed_der(&keys.pkcs8),
        )
        .expect("encode");
        assert!(keys.verifier("account").verify(&token).is_err());
    }

    #[test]
    fn a_remembered_token_is_still_checked_for_time_and_bytes() {
        let keys = KeyPair::generate().expect("keys");
        let verifier = keys.verifier("account");
        let token = keys.signer().mint("account", &Caller::anonymous(), "");
        assert!(verifier.verify(&token).is_ok());
        assert!(verifier.verify(&token).is_ok(), "from memory");
        // One byte of the signature changed: not the same token, verified afresh.
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).expect("ascii");
        assert!(verifier.verify(&forged).is_err());
        // A remembered token past its time is refused.
        let mut claims = verifier.verify(&token).expect("valid");
        claims.exp = chrono::Utc::now().timestamp() - 60;
        verifier
            .verified
            .lock()
            .expect("lock")
            .insert(token.clone(), claims);
        assert!(verifier.verify(&token).is_err(), "expired in memory");
    }
}
