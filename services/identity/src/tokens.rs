//! Access tokens at the door. A client proves who it is with a JWT: issued by the gateway
//! itself at sign-in (Ed25519, its public keys published as a JWKS), or by an external
//! OIDC provider whose JWKS we fetch. HS256 with a shared secret exists for development
//! only.
//!
//! What is checked, whatever the signer: the header's `typ` (`JWT` or `at+jwt`) and
//! `alg` (the key decides the algorithm family: a token cannot pick HS256 to turn a public
//! key into an HMAC secret, and `none` does not exist here); the signature; `iss`, `aud`,
//! `sub` and `exp` are required; `exp` and `nbf` against an injectable clock with a small
//! leeway. Every refusal looks the same to the client ("invalid token"); the reason goes
//! to the log.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub use crm_contract::clock::{Clock, ManualClock, SystemClock};

/// Why a token was refused: logged, never told to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid token: {0}")]
pub struct InvalidToken(pub &'static str);

/// The claims of an access token the door accepts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// The session a gateway-issued token belongs to (signing out ends it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// An external provider's tokens name the user by email (its `sub` is its own id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// `aud` is a string or a list of strings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|a| a == audience),
        }
    }
}

/// Where a JWKS comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
    /// Keys known up front (the gateway's own).
    Fixed(JwkSet),
}

impl JwksSource {
    /// A URL (`http…`) or a file path.
    pub fn parse(text: &str) -> Self {
        if text.starts_with("http://") || text.starts_with("https://") {
            JwksSource::Url(text.to_owned())
        } else {
            JwksSource::File(PathBuf::from(text))
        }
    }

    async fn load(&self, client: &reqwest::Client) -> anyhow::Result<JwkSet> {
        Ok(match self {
            JwksSource::Fixed(set) => set.clone(),
            JwksSource::File(path) => serde_json::from_slice(&tokio::fs::read(path).await?)?,
            JwksSource::Url(url) => {
                client
                    .get(url)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?
            }
        })
    }
}

/// Verification keys by `kid`, loaded from a JWKS. An unknown `kid` triggers a reload
/// (the provider may have rotated its keys), at most once per cool-down however many
/// requests carry it.
pub struct KeySet {
    source: JwksSource,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    cooldown_seconds: i64,
    keys: tokio::sync::RwLock<HashMap<String, (Algorithm, DecodingKey)>>,
    reload: tokio::sync::Mutex<Option<i64>>,
    loads: AtomicUsize,
}

impl KeySet {
    pub fn new(source: JwksSource, clock: Arc<dyn Clock>, cooldown_seconds: i64) -> Self {
        Self {
            source,
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            clock,
            cooldown_seconds,
            keys: Default::default(),
            reload: tokio::sync::Mutex::new(None),
            loads: AtomicUsize::new(0),
        }
    }

    /// How many times the JWKS was loaded.
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }

    async fn key(&self, kid: &str) -> Option<(Algorithm, DecodingKey)> {
        if let Some(found) = self.keys.read().await.get(kid) {
            return Some(found.clone());
        }
        {
            // One reload at a time; a request that waited finds the keys the other loaded.
            let mut last = self.reload.lock().await;
            if let Some(found) = self.keys.read().await.get(kid) {
                return Some(found.clone());
            }
            let now = self.clock.timestamp();
            if last.is_some_and(|at| now - at < self.cooldown_seconds) {
                return None;
            }
            *last = Some(now);
            self.loads.fetch_add(1, Ordering::SeqCst);
            match self.source.load(&self.client).await {
                Ok(set) => {
                    let mut keys = HashMap::new();
                    for jwk in &set.keys {
                        if let Some(entry) = usable(jwk) {
                            keys.insert(entry.0, (entry.1, entry.2));
                        }
                    }
                    *self.keys.write().await = keys;
                }
                Err(error) => tracing::warn!(%error, "loading the JWKS failed"),
            }
        }
        self.keys.read().await.get(kid).cloned()
    }
}

/// A JWK we can verify with: it has a `kid`, is for signing, and has an asymmetric
/// algorithm (its own `alg`, or the one its key type implies).
fn usable(jwk: &Jwk) -> Option<(String, Algorithm, DecodingKey)> {
    use jsonwebtoken::jwk::{AlgorithmParameters, PublicKeyUse};
    let kid = jwk.common.key_id.clone()?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::OctetKeyPair(_), _) => Algorithm::EdDSA,
        (AlgorithmParameters::EllipticCurve(_), _) => Algorithm::ES256,
        (AlgorithmParameters::RSA(_), Some(alg)) => match alg {
            jsonwebtoken::jwk::KeyAlgorithm::RS384 => Algorithm::RS384,
            jsonwebtoken::jwk::KeyAlgorithm::RS512 => Algorithm::RS512,
            jsonwebtoken::jwk::KeyAlgorithm::PS256 => Algorithm::PS256,
            _ => Algorithm::RS256,
        },
        (AlgorithmParameters::RSA(_), None) => Algorithm::RS256,
        // A symmetric JWK never verifies an access token, and unknown kinds are skipped.
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, algorithm, key))
}

/// Validates access tokens for one issuer and audience.
pub struct TokenValidator {
    pub issuer: String,
    pub audience: String,
    keys: Arc<KeySet>,
    /// HS256 secret: development only.
    development_secret: Option<DecodingKey>,
    clock: Arc<dyn Clock>,
    leeway_seconds: i64,
}

/// Allowed clock skew between the signer and us.
pub const LEEWAY_SECONDS: i64 = 30;

impl TokenValidator {
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        keys: Arc<KeySet>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            keys,
            development_secret: None,
            clock,
            leeway_seconds: LEEWAY_SECONDS,
        }
    }

    /// Also accept HS256 tokens signed with this secret (development mode only).
    pub fn with_development_secret(mut self, secret: &[u8]) -> Self {
        self.development_secret = Some(DecodingKey::from_secret(secret));
        self
    }

    pub async fn validate(&self, token: &str) -> Result<AccessClaims, InvalidToken> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| InvalidToken("malformed"))?;
        match header
            .typ
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("jwt") | Some("at+jwt") => {}
            _ => return Err(InvalidToken("typ is not JWT or at+jwt")),
        }
        let (algorithm, key) = if header.alg == Algorithm::HS256 {
            let secret = self
                .development_secret
                .clone()
                .ok_or(InvalidToken("HS256 is accepted in development mode only"))?;
            (Algorithm::HS256, secret)
        } else {
            let kid = header.kid.as_deref().ok_or(InvalidToken("no kid"))?;
            self.keys
                .key(kid)
                .await
                .ok_or(InvalidToken("unknown kid"))?
        };
        if header.alg != algorithm {
            return Err(InvalidToken("alg does not match the key"));
        }
        let mut validation = Validation::new(algorithm);
        // Time is checked below against our clock; presence and the rest here.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = ["exp", "iss", "aud", "sub"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        validation.set_issuer(&[&self.issuer]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                InvalidToken(match e.kind() {
                    ErrorKind::InvalidSignature => "bad signature",
                    ErrorKind::InvalidIssuer => "wrong issuer",
                    ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
                    ErrorKind::Json(_) | ErrorKind::InvalidClaimFormat(_) => "malformed claims",
                    _ => "does not verify",
                })
            })?
            .claims;
        if !claims.aud.contains(&self.audience) {
            return Err(InvalidToken("wrong audience"));
        }
        if claims.sub.is_empty() {
            return Err(InvalidToken("empty subject"));
        }
        let now = self.clock.timestamp();
        if claims.exp + self.leeway_seconds <= now {
            return Err(InvalidToken("expired"));
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf - self.leeway_seconds > now)
        {
            return Err(InvalidToken("not yet valid"));
        }
        Ok(claims)
    }
}

/// The `kid` of one of our signing keys: derived from its public key, so a rotated key
/// gets a new one.
pub fn key_id(keys: &crm_service_common::internal_auth::KeyPair) -> String {
    format!("crm-{}", &URL_SAFE_NO_PAD.encode(keys.public_bytes())[..12])
}

/// One of our signing keys' public half as a JWK.
pub fn public_jwk(keys: &crm_service_common::internal_auth::KeyPair) -> anyhow::Result<Jwk> {
    Ok(serde_json::from_value(serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(keys.public_bytes()),
        "kid": key_id(keys),
        "use": "sig",
        "alg": "EdDSA",
    }))?)
}

/// Signs the gateway's own access tokens (Ed25519) and publishes their keys as a JWKS.
pub struct TokenIssuer {
    pub issuer: String,
    pub audience: String,
    kid: String,
    key: EncodingKey,
    jwk: Jwk,
    clock: Arc<dyn Clock>,
}

impl TokenIssuer {
    pub fn new(
        keys: &crm_service_common::internal_auth::KeyPair,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        crm_service_common::internal_auth::ensure_crypto_provider();
        let kid = key_id(keys);
        let jwk = public_jwk(keys)?;
        Ok(Self {
            issuer: issuer.into(),
            audience: audience.into(),
            key: EncodingKey::from_ed_der(keys.pkcs8_bytes()),
            kid,
            jwk,
            clock,
        })
    }

    /// The public key as a JWK (for `/.well-known/jwks.json`).
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// An access token for `subject`, valid for `ttl_seconds`, in session `sid`.
    pub fn issue(&self, subject: &str, sid: Option<&str>, ttl_seconds: i64) -> String {
        let now = self.clock.timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: subject.to_owned(),
            aud: Audience::One(self.audience.clone()),
            exp: now + ttl_seconds,
            nbf: Some(now),
            iat: Some(now),
            sid: sid.map(str::to_owned),
            email: None,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".into());
        header.kid = Some(self.kid.clone());
        // Signing plain claims with a valid Ed25519 key does not fail; an empty token
        // would be refused like any invalid one.
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_service_common::internal_auth::{Caller, KeyPair};

    const ISSUER: &str = "https://crm.example/";
    const AUDIENCE: &str = "crm-api";
    const NOW: i64 = 1_800_000_000;

    struct Fixture {
        clock: Arc<ManualClock>,
        keys: KeyPair,
        issuer: TokenIssuer,
        jwks_file: tempfile::NamedTempFile,
        key_set: Arc<KeySet>,
        validator: TokenValidator,
    }

    fn write_jwks(file: &tempfile::NamedTempFile, jwks: &[&Jwk]) {
        let set = serde_json::json!({ "keys": jwks });
        std::fs::write(file.path(), set.to_string()).expect("write JWKS");
    }

    fn fixture() -> Fixture {
        let clock = Arc::new(ManualClock::at(
            chrono::DateTime::from_timestamp(NOW, 0).unwrap_or_default(),
        ));
        let keys = KeyPair::generate().expect("keys");
        let issuer = TokenIssuer::new(&keys, ISSUER, AUDIENCE, clock.clone()).expect("issuer");
        let jwks_file = tempfile::NamedTempFile::new().expect("file");
        write_jwks(&jwks_file, &[issuer.jwk()]);
        let key_set = Arc::new(KeySet::new(
            JwksSource::File(jwks_file.path().to_owned()),
            clock.clone(),
            60,
        ));
        let validator = TokenValidator::new(ISSUER, AUDIENCE, key_set.clone(), clock.clone())
            .with_development_secret(b"development-secret");
        Fixture {
            clock,
            keys,
            issuer,
            jwks_file,
            key_set,
            validator,
        }
    }

    /// A token with any header and claims, signed by the fixture's Ed25519 key.
    fn signed(f: &Fixture, header: serde_json::Value, claims: serde_json::Value) -> String {
        let header: Header = serde_json::from_value(header).expect("header");
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_ed_der(f.keys.pkcs8_bytes()),
        )
        .expect("sign")
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "usr_1", "exp": NOW + 300, "nbf": NOW })
    }

    fn header(f: &Fixture) -> serde_json::Value {
        serde_json::json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": f.issuer.kid })
    }

    async fn refused(f: &Fixture, token: &str) -> &'static str {
        f.validator.validate(token).await.expect_err("refused").0
    }

    #[tokio::test]
    async fn an_issued_token_is_accepted_until_it_expires() {
        let f = fixture();
        let token = f.issuer.issue("usr_1", Some("ses_1"), 300);
        let claims = f.validator.validate(&token).await.expect("valid");
        assert_eq!(
            (claims.sub.as_str(), claims.sid.as_deref()),
            ("usr_1", Some("ses_1"))
        );
        f.clock.advance(300 + LEEWAY_SECONDS - 1);
        assert!(
            f.validator.validate(&token).await.is_ok(),
            "within the leeway"
        );
        f.clock.advance(1);
        assert_eq!(refused(&f, &token).await, "expired");
    }

    const MISSING: &str = "missing";

    #[tokio::test]
    async fn claims_and_headers_are_checked_one_by_one() {
        let f = fixture();
        let with = |key: &str, value: serde_json::Value| {
            let mut c = claims();
            c[key] = value;
            c
        };
        let without = |key: &str| {
            let mut c = claims();
            c.as_object_mut().expect("object").remove(key);
            c
        };
        let cases = [
            (header(&f), with("nbf", (NOW + 120).into()), "not yet valid"),
            (
                header(&f),
                with("iss", "https://evil.example/".into()),
                "wrong issuer",
            ),
            (
                header(&f),
                with("aud", "someone-else".into()),
                "wrong audience",
            ),
            (
                header(&f),
                with("exp", format!("{}", NOW + 300).into()),
                "malformed claims",
            ),
            (header(&f), without("exp"), MISSING),
            (header(&f), without("sub"), MISSING),
            (header(&f), without("aud"), MISSING),
            (header(&f), without("iss"), MISSING),
            (
                serde_json::json!({ "alg": "EdDSA", "typ": "secevent+jwt", "kid": f.issuer.kid }),
                claims(),
                "typ is not JWT or at+jwt",
            ),
            (
                serde_json::json!({ "alg": "EdDSA", "typ": "JWT", "kid": "nobody" }),
                claims(),
                "unknown kid",
            ),
            (
                serde_json::json!({ "alg": "EdDSA", "typ": "JWT" }),
                claims(),
                "no kid",
            ),
        ];
        for (header, claims, reason) in cases {
            let token = signed(&f, header.clone(), claims.clone());
            let refusal = refused(&f, &token).await;
            if reason == MISSING {
                // Depending on the claim, the library notices the gap while reading the
                // claims or while checking the required ones.
                assert!(
                    ["a required claim is missing", "malformed claims"].contains(&refusal),
                    "{header} {claims}: {refusal}"
                );
            } else {
                assert_eq!(refusal, reason, "{header} {claims}");
            }
        }
        // An audience list that includes ours is fine.
        let token = signed(
            &f,
            header(&f),
            with("aud", serde_json::json!(["x", AUDIENCE])),
        );
        assert!(f.validator.validate(&token).await.is_ok());
    }

    #[tokio::test]
    async fn forged_tokens_are_refused() {
        let f = fixture();
        let good = f.issuer.issue("usr_1", None, 300);
        let parts: Vec<&str> = good.split('.').collect();

        // A tampered payload keeps the old signature.
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        payload["sub"] = "usr_admin".into();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            parts[2]
        );
        assert_eq!(refused(&f, &tampered).await, "bad signature");

        // alg: none, unsigned.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            parts[1]
        );
        assert_eq!(refused(&f, &none).await, "malformed");

        // HS256 "signed" with the public key (the key confusion attack).
        let mut hs = Header::new(Algorithm::HS256);
        hs.kid = Some(f.issuer.kid.clone());
        let confused = jsonwebtoken::encode(
            &hs,
            &claims(),
            &EncodingKey::from_secret(&f.keys.public_bytes()),
        )
        .expect("sign");
        assert_eq!(refused(&f, &confused).await, "bad signature");
        let production = TokenValidator::new(ISSUER, AUDIENCE, f.key_set.clone(), f.clock.clone());
        assert_eq!(
            production.validate(&confused).await.expect_err("refused").0,
            "HS256 is accepted in development mode only"
        );

        // A token naming EdDSA's kid but claiming another asymmetric algorithm.
        let mut es = Header::new(Algorithm::ES256);
        es.kid = Some(f.issuer.kid.clone());
        let parts_es = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&es).expect("header")),
            parts[1],
            parts[2]
        );
        assert_eq!(refused(&f, &parts_es).await, "alg does not match the key");

        // The gateway's internal token (for a subgraph) is not an access token.
        let internal = f
            .keys
            .signer()
            .mint("account", &Caller::anonymous(), "req-1");
        assert!(f.validator.validate(&internal).await.is_err());

        // Development HS256 with the right secret works only where enabled.
        let dev = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(b"development-secret"),
        )
        .expect("sign");
        assert!(f.validator.validate(&dev).await.is_ok());
        assert!(production.validate(&dev).await.is_err());
        assert_eq!(refused(&f, "not.a.token").await, "malformed");
        assert_eq!(refused(&f, "").await, "malformed");
    }

    #[tokio::test]
    async fn a_rotated_key_is_picked_up_with_one_reload_per_cool_down() {
        let f = fixture();
        let old_token = f.issuer.issue("usr_1", None, 3_600);
        assert!(f.validator.validate(&old_token).await.is_ok());
        assert_eq!(f.key_set.loads(), 1);

        // The provider publishes a new key next to the old one.
        let new_keys = KeyPair::generate().expect("keys");
        let new_issuer =
            TokenIssuer::new(&new_keys, ISSUER, AUDIENCE, f.clock.clone()).expect("issuer");
        let new_token = new_issuer.issue("usr_2", None, 3_600);
        f.clock.advance(61);
        write_jwks(&f.jwks_file, &[f.issuer.jwk(), new_issuer.jwk()]);
        assert_eq!(
            f.validator
                .validate(&new_token)
                .await
                .expect("the new key")
                .sub,
            "usr_2"
        );
        assert_eq!(f.key_set.loads(), 2, "one reload for the unknown kid");
        assert!(
            f.validator.validate(&old_token).await.is_ok(),
            "old tokens still work"
        );

        // Many requests with an unknown kid inside the cool-down: one reload, not many.
        let stranger = TokenIssuer::new(
            &KeyPair::generate().expect("keys"),
            ISSUER,
            AUDIENCE,
            f.clock.clone(),
        )
        .expect("issuer")
        .issue("usr_3", None, 60);
        f.clock.advance(61);
        for _ in 0..50 {
            assert_eq!(refused(&f, &stranger).await, "unknown kid");
        }
        assert_eq!(f.key_set.loads(), 3);
        f.clock.advance(60);
        assert_eq!(refused(&f, &stranger).await, "unknown kid");
        assert_eq!(f.key_set.loads(), 4, "after the cool-down, one more try");
    }
}
