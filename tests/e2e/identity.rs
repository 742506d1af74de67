//! Identity end to end, through the gateway of a seeded all-in-one system: sign-in,
//! refresh and sign-out, `me` for every seeded persona, API keys, what the door refuses,
//! and introspection by caller kind. The clock-driven rules (lock-out expiry, key expiry)
//! are checked on the directory with a clock the test moves.

use std::sync::Arc;

use crm_e2e::{finish, gateway_as, system_with_settings};
use crm_identity::store::Directory;
use crm_identity::tokens::JwksSource;
use crm_identity::tokens::ManualClock;
use crm_identity::{DEMO_PASSWORD, ExternalIssuer, IdentityOptions, user};
use crm_service_common::internal_auth::KeyPair;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};
use serde_json::{Value, json};

const SIGN_IN: &str = "mutation($email: String!, $password: String!) { signIn(email: $email, password: $password) { accessToken tokenType refreshToken expiresAt me { id kind email roles organization { id } } } }";
const ME: &str = "{ me { id kind email displayName roles organization { id } } }";

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

async fn sign_in(client: &reqwest::Client, url: &str, email: &str, password: &str) -> Value {
    let (status, body) = gateway_as(
        client,
        url,
        None,
        SIGN_IN,
        json!({ "email": email, "password": password }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The seeded partner personas a test acts as.
struct PartnerPersonas {
    admin: user::Model,
    /// The admin's organisation.
    partner: String,
    /// Some other partner's organisation.
    other_partner: String,
    /// A partner user (no admin rights).
    user: user::Model,
}

async fn partner_personas(system: &crm_system::AllInOne) -> PartnerPersonas {
    let users = crm_identity::all_users(&system.databases.identity)
        .await
        .expect("users");
    let admin = users
        .iter()
        .find(|u| u.roles == "partner_admin")
        .expect("a partner admin")
        .clone();
    let partner = admin.partner_id.clone().expect("its partner");
    let other_partner = users
        .iter()
        .filter_map(|u| u.partner_id.clone())
        .find(|p| *p != partner)
        .expect("another partner");
    let user = users
        .iter()
        .find(|u| u.roles == "partner_user")
        .expect("a partner user")
        .clone();
    PartnerPersonas {
        admin,
        partner,
        other_partner,
        user,
    }
}

#[tokio::test]
async fn sign_in_refresh_and_sign_out() {
    let (system, _dir, created) = system_with_settings(2, Default::default()).await;
    let client = reqwest::Client::new();
    let url = system.public.url();

    let body = sign_in(&client, &url, "admin@crm.example", DEMO_PASSWORD).await;
    let session = &body["data"]["signIn"];
    assert_eq!(session["tokenType"], "Bearer", "{body}");
    assert_eq!(
        session["me"],
        json!({ "id": "usr_admin", "kind": "INTERNAL", "email": "admin@crm.example", "roles": ["admin"], "organization": null })
    );
    let access = session["accessToken"]
        .as_str()
        .expect("access token")
        .to_owned();
    let refresh = session["refreshToken"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let (_, me) = gateway_as(&client, &url, Some(&access), ME, json!({})).await;
    assert_eq!(me["data"]["me"]["id"], "usr_admin", "{me}");
    let (_, anonymous) = gateway_as(&client, &url, None, ME, json!({})).await;
    assert_eq!(anonymous, json!({ "data": { "me": null } }));

    // Wrong password and unknown email read the same.
    let wrong = sign_in(&client, &url, "admin@crm.example", "nope").await;
    let unknown = sign_in(&client, &url, "nobody@crm.example", "nope").await;
    assert_eq!(code(&wrong), "INVALID_CREDENTIALS", "{wrong}");
    assert_eq!(
        wrong["errors"][0]["message"],
        unknown["errors"][0]["message"]
    );
    assert_eq!(code(&unknown), "INVALID_CREDENTIALS");
    assert!(wrong["data"].is_null(), "{wrong}");

    // A refresh token works once: the next one replaces it.
    let refresh_query = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken me { id } } }";
    let (_, body) = gateway_as(&client, &url, None, refresh_query, json!({ "t": refresh })).await;
    let renewed = &body["data"]["refreshSession"];
    assert_eq!(renewed["me"]["id"], "usr_admin", "{body}");
    let access = renewed["accessToken"].as_str().expect("access").to_owned();
    let next_refresh = renewed["refreshToken"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert_ne!(next_refresh, refresh);
    let (_, body) = gateway_as(&client, &url, None, refresh_query, json!({ "t": refresh })).await;
    assert_eq!(code(&body), "INVALID_REFRESH_TOKEN", "{body}");

    // Signing out ends the session: its access token and refresh token stop working.
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&access),
        "mutation { signOut }",
        json!({}),
    )
    .await;
    assert_eq!(body, json!({ "data": { "signOut": true } }));
    let (status, body) = gateway_as(&client, &url, Some(&access), ME, json!({})).await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "{body}");
    let (_, body) = gateway_as(
        &client,
        &url,
        None,
        refresh_query,
        json!({ "t": next_refresh }),
    )
    .await;
    assert_eq!(code(&body), "INVALID_REFRESH_TOKEN", "{body}");
    let (_, body) = gateway_as(&client, &url, None, "mutation { signOut }", json!({})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    finish(system, created).await;
}

#[tokio::test]
async fn every_seeded_persona_sees_itself_in_me() {
    let (system, _dir, created) = system_with_settings(2, Default::default()).await;
    let client = reqwest::Client::new();
    let url = system.public.url();
    let users = crm_identity::all_users(&system.databases.identity)
        .await
        .expect("users");
    assert!(users.len() >= 9, "five departments and partner users");
    for user in &users {
        let token = system.identity.issuer.issue(&user.id, None, 300);
        let (status, body) = gateway_as(
            &client,
            &url,
            Some(&token),
            "{ me { id kind email displayName roles organization { id name } } }",
            json!({}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let me = &body["data"]["me"];
        assert_eq!(me["id"], user.id.as_str(), "{body}");
        assert_eq!(me["email"], user.email.as_str());
        assert_eq!(me["displayName"], user.display_name.as_str());
        assert_eq!(me["kind"], user.kind.to_uppercase());
        assert_eq!(
            me["roles"],
            json!(user.roles.split(',').collect::<Vec<_>>())
        );
        match &user.partner_id {
            // The organisation's name comes from the account subgraph.
            Some(partner) => {
                assert_eq!(me["organization"]["id"], partner.as_str(), "{body}");
                assert!(
                    me["organization"]["name"]
                        .as_str()
                        .is_some_and(|n| !n.is_empty()),
                    "{body}"
                );
            }
            None => assert_eq!(me["organization"], Value::Null),
        }
    }
    finish(system, created).await;
}

#[tokio::test]
async fn a_disabled_user_is_refused_and_failed_sign_ins_lock_password_sign_in() {
    let (system, _dir, created) = system_with_settings(2, Default::default()).await;
    let client = reqwest::Client::new();
    let url = system.public.url();

    let sales = user::Entity::find_by_id("usr_sales")
        .one(&system.databases.identity)
        .await
        .expect("read")
        .expect("the sales user");
    let token = system.identity.issuer.issue(&sales.id, None, 300);
    let mut row = sales.into_active_model();
    row.disabled = Set(true);
    row.update(&system.databases.identity)
        .await
        .expect("disable");
    let body = sign_in(&client, &url, "sales@crm.example", DEMO_PASSWORD).await;
    assert_eq!(code(&body), "ACCOUNT_DISABLED", "{body}");
    let (status, _) = gateway_as(&client, &url, Some(&token), ME, json!({})).await;
    assert_eq!(status, 401, "a disabled user's token stops working at once");

    for attempt in 1..=6 {
        let body = sign_in(&client, &url, "support@crm.example", "guess").await;
        assert_eq!(
            code(&body),
            "INVALID_CREDENTIALS",
            "attempt {attempt}: {body}"
        );
    }
    let body = sign_in(&client, &url, "support@crm.example", DEMO_PASSWORD).await;
    assert_eq!(code(&body), "TOO_MANY_ATTEMPTS", "{body}");
    let body = sign_in(&client, &url, "marketing@crm.example", DEMO_PASSWORD).await;
    assert!(
        body["data"]["signIn"]["accessToken"].is_string(),
        "others are not locked: {body}"
    );
    finish(system, created).await;
}

#[tokio::test]
async fn the_lock_out_and_key_expiry_follow_the_clock() {
    let (system, _dir, created) = system_with_settings(2, Default::default()).await;
    let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
    let directory = Directory {
        db: system.databases.identity.clone(),
        clock: clock.clone(),
    };
    for _ in 0..6 {
        assert!(
            directory
                .sign_in("support@crm.example", "guess")
                .await
                .is_err()
        );
    }
    let locked = directory
        .sign_in("support@crm.example", DEMO_PASSWORD)
        .await;
    assert_eq!(
        locked.err().map(|e| e.code().as_str()),
        Some("TOO_MANY_ATTEMPTS")
    );
    clock.advance(crm_identity::store::LOCK_SECONDS + 1);
    let opened = directory
        .sign_in("support@crm.example", DEMO_PASSWORD)
        .await
        .expect("the lock has passed");
    assert_eq!(opened.user.id, "usr_support");
    // Failures spread beyond the window do not add up.
    for _ in 0..5 {
        assert!(
            directory
                .sign_in("support@crm.example", "guess")
                .await
                .is_err()
        );
        clock.advance(crm_identity::store::FAILURE_WINDOW_SECONDS);
    }
    assert!(
        directory
            .sign_in("support@crm.example", DEMO_PASSWORD)
            .await
            .is_ok()
    );

    let expires = directory.now() + chrono::Duration::seconds(120);
    let (_, secret) = directory
        .create_api_key("nightly sync", "sales", None, "usr_admin", Some(expires))
        .await
        .expect("key");
    assert!(
        directory
            .use_api_key(&secret)
            .await
            .expect("read")
            .is_some()
    );
    clock.advance(120);
    assert!(
        directory
            .use_api_key(&secret)
            .await
            .expect("read")
            .is_none(),
        "expired at once"
    );
    finish(system, created).await;
}

#[tokio::test]
async fn api_keys_are_shown_once_used_scoped_and_revoked() {
    let (system, _dir, created) = system_with_settings(2, Default::default()).await;
    let client = reqwest::Client::new();
    let url = system.public.url();
    let admin = system.identity.issuer.issue("usr_admin", None, 600);
    let create = "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret key { id name prefix role organization { id } revokedAt lastUsedAt } } }";

    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&admin),
        create,
        json!({ "input": { "name": "ERP sync", "role": "sales" } }),
    )
    .await;
    let created_key = &body["data"]["createApiKey"];
    let secret = created_key["secret"]
        .as_str()
        .expect("the secret, once")
        .to_owned();
    assert!(secret.starts_with("crmk_") && secret.len() > 40, "{secret}");
    assert!(secret.starts_with(created_key["key"]["prefix"].as_str().expect("prefix")));
    let key_id = created_key["key"]["id"].as_str().expect("id").to_owned();

    let (status, body) = gateway_as(
        &client,
        &url,
        Some(&secret),
        "{ me { id kind roles } }",
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["me"],
        json!({ "id": key_id, "kind": "INTEGRATOR", "roles": ["sales"] })
    );
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&admin),
        "{ apiKeys { id name lastUsedAt } }",
        json!({}),
    )
    .await;
    let listed = &body["data"]["apiKeys"];
    assert_eq!(listed[0]["id"], key_id.as_str(), "{body}");
    assert!(
        listed[0]["lastUsedAt"].is_string(),
        "use is recorded: {body}"
    );
    assert!(
        !body.to_string().contains(&secret),
        "the secret is never listed"
    );

    // Invalid input is refused with the field named.
    for (input, field) in [
        (json!({ "name": "", "role": "sales" }), "input.name"),
        (json!({ "name": "x", "role": "partner_user" }), "input.role"),
        (
            json!({ "name": "x", "role": "sales", "expiresAt": "2020-01-01T00:00:00Z" }),
            "input.expiresAt",
        ),
    ] {
        let (_, body) = gateway_as(
            &client,
            &url,
            Some(&admin),
            create,
            json!({ "input": input }),
        )
        .await;
        assert_eq!(
            (
                code(&body),
                body["errors"][0]["extensions"]["field"].as_str()
            ),
            ("VALIDATION", Some(field)),
            "{body}"
        );
    }

    // A partner admin manages its own organisation's keys only; a partner user none.
    let personas = partner_personas(&system).await;
    let (partner_admin, partner, other_partner) = (
        &personas.admin,
        personas.partner.clone(),
        personas.other_partner.clone(),
    );
    let partner_token = system.identity.issuer.issue(&partner_admin.id, None, 600);
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&partner_token),
        create,
        json!({ "input": { "name": "shop", "role": "partner_user" } }),
    )
    .await;
    assert_eq!(
        body["data"]["createApiKey"]["key"]["organization"]["id"],
        partner.as_str(),
        "{body}"
    );
    let partner_key = body["data"]["createApiKey"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&partner_key),
        "{ me { kind organization { id } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["me"],
        json!({ "kind": "INTEGRATOR", "organization": { "id": partner } })
    );
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&partner_token),
        create,
        json!({ "input": { "name": "x", "role": "partner_user", "partnerId": other_partner } }),
    )
    .await;
    assert_eq!(
        code(&body),
        "NOT_FOUND",
        "another partner is answered as if it did not exist: {body}"
    );
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&partner_token),
        "{ apiKeys { id } }",
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["apiKeys"].as_array().map(Vec::len),
        Some(1),
        "its own key only: {body}"
    );
    let revoke = "mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }";
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&partner_token),
        revoke,
        json!({ "id": key_id }),
    )
    .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let partner_user = &personas.user;
    let user_token = system.identity.issuer.issue(&partner_user.id, None, 600);
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&user_token),
        "{ apiKeys { id } }",
        json!({}),
    )
    .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");

    // Revoked: refused from the next request on.
    let (_, body) = gateway_as(&client, &url, Some(&admin), revoke, json!({ "id": key_id })).await;
    assert!(
        body["data"]["revokeApiKey"]["revokedAt"].is_string(),
        "{body}"
    );
    let (status, body) = gateway_as(&client, &url, Some(&secret), "{ me { id } }", json!({})).await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "{body}");
    finish(system, created).await;
}

#[tokio::test]
async fn the_door_refuses_bad_credentials_with_one_message() {
    let (system, _dir, created) = system_with_settings(2, Default::default()).await;
    let client = reqwest::Client::new();
    let url = system.public.url();
    let good = system.identity.issuer.issue("usr_admin", None, 300);
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
    let internal = system.keys.signer().mint(
        "account",
        &crm_service_common::internal_auth::Caller::anonymous(),
        "replayed",
    );
    let hs256 = hs256_token(b"secret");
    for (label, authorization) in [
        ("garbage", "Bearer not-a-token".to_owned()),
        ("tampered", format!("Bearer {tampered}")),
        (
            "an internal token at the gateway",
            format!("Bearer {internal}"),
        ),
        ("HS256 outside development", format!("Bearer {hs256}")),
        ("an unknown API key", "Bearer crmk_nope".to_owned()),
        ("basic auth", "Basic YWRtaW46ZGVtbw==".to_owned()),
        (
            "a user that does not exist",
            format!(
                "Bearer {}",
                system.identity.issuer.issue("usr_ghost", None, 300)
            ),
        ),
    ] {
        let response = client
            .post(format!("{url}/graphql"))
            .header("authorization", authorization)
            .json(&json!({ "query": "{ me { id } }" }))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 401, "{label}");
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer error=\"invalid_token\""),
            "{label}"
        );
        let body: Value = response.json().await.expect("json");
        assert_eq!(
            body["errors"][0]["message"], "invalid token",
            "{label}: nothing about why"
        );
        assert_eq!(code(&body), "UNAUTHENTICATED");
        assert!(body.get("data").is_none());
    }
    // An internal token minted for one subgraph does not open another.
    let identity_url = system
        .subgraphs
        .iter()
        .find(|(name, _)| name == "identity")
        .map(|(_, running)| format!("{}/graphql", running.url()))
        .expect("identity subgraph");
    let replayed = client
        .post(&identity_url)
        .bearer_auth(&internal)
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .expect("send");
    assert_eq!(replayed.status(), 401);
    // The JWKS is public: the issued token's key is in it.
    let jwks: Value = client
        .get(format!("{url}/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks["keys"][0]["kty"], "OKP", "{jwks}");
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
    finish(system, created).await;
}

#[tokio::test]
async fn introspection_is_for_staff_not_partners() {
    let (system, _dir, created) = system_with_settings(2, Default::default()).await;
    let client = reqwest::Client::new();
    let url = system.public.url();
    let users = crm_identity::all_users(&system.databases.identity)
        .await
        .expect("users");
    let partner = users
        .iter()
        .find(|u| u.partner_id.is_some())
        .expect("a partner user");
    let partner_token = system.identity.issuer.issue(&partner.id, None, 300);
    let admin_token = system.identity.issuer.issue("usr_admin", None, 300);
    let introspect = "{ __schema { queryType { name } } }";
    let (status, body) =
        gateway_as(&client, &url, Some(&partner_token), introspect, json!({})).await;
    assert_eq!(
        (status, code(&body)),
        (400, "INTROSPECTION_DISABLED"),
        "{body}"
    );
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&partner_token),
        "{ acounts { totalCount } }",
        json!({}),
    )
    .await;
    assert!(
        !body.to_string().contains("Did you mean"),
        "no hints for partners either: {body}"
    );
    let (status, body) = gateway_as(&client, &url, Some(&admin_token), introspect, json!({})).await;
    assert_eq!(
        (status, &body["data"]["__schema"]["queryType"]["name"]),
        (200, &json!("Query")),
        "{body}"
    );
    finish(system, created).await;
}

/// An HS256 token for the admin with our issuer and audience: accepted only by a door
/// in development mode with the same secret.
fn hs256_token(secret: &[u8]) -> String {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = engine.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = engine.encode(format!(
        r#"{{"iss":"crm-gateway","aud":"crm-api","sub":"usr_admin","exp":{}}}"#,
        chrono::Utc::now().timestamp() + 300
    ));
    let signing_input = format!("{header}.{payload}");
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let signature = aws_lc_rs::hmac::sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", engine.encode(signature.as_ref()))
}

/// An EdDSA token from an external provider's key.
fn external_token(key: &KeyPair, kid: &str, claims: Value) -> String {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = engine.encode(json!({ "alg": "EdDSA", "typ": "JWT", "kid": kid }).to_string());
    let payload = engine.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(key.pkcs8_bytes()).expect("key");
    let signature = pair.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", engine.encode(signature.as_ref()))
}

#[tokio::test]
async fn an_external_providers_tokens_and_development_tokens_are_accepted_when_configured() {
    use base64::Engine as _;
    let idp = KeyPair::generate().expect("keys");
    let jwks = tempfile::NamedTempFile::new().expect("file");
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(idp.public_bytes());
    std::fs::write(
        jwks.path(),
        json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": "idp-1", "use": "sig" }] })
            .to_string(),
    )
    .expect("write JWKS");
    let settings = crm_system::GatewaySettings {
        identity: IdentityOptions {
            development_secret: Some("dev-secret".into()),
            external: Some(ExternalIssuer {
                issuer: "https://idp.example/".into(),
                audience: "crm-api".into(),
                jwks: JwksSource::File(jwks.path().to_owned()),
            }),
        },
        ..Default::default()
    };
    let (system, _dir, created) = system_with_settings(2, settings).await;
    let client = reqwest::Client::new();
    let url = system.public.url();
    let exp = chrono::Utc::now().timestamp() + 300;
    let claims = |email: &str, iss: &str| json!({ "iss": iss, "aud": "crm-api", "sub": "idp|8431", "email": email, "exp": exp });

    // The provider names the user by email; the directory decides who that is.
    let token = external_token(
        &idp,
        "idp-1",
        claims("marketing@crm.example", "https://idp.example/"),
    );
    let (status, body) =
        gateway_as(&client, &url, Some(&token), "{ me { id kind } }", json!({})).await;
    assert_eq!(
        (status, &body["data"]["me"]),
        (200, &json!({ "id": "usr_marketing", "kind": "INTERNAL" })),
        "{body}"
    );
    for (label, token) in [
        (
            "an email the directory does not know",
            external_token(
                &idp,
                "idp-1",
                claims("stranger@idp.example", "https://idp.example/"),
            ),
        ),
        (
            "another issuer",
            external_token(
                &idp,
                "idp-1",
                claims("marketing@crm.example", "https://evil.example/"),
            ),
        ),
        (
            "a kid the provider did not publish",
            external_token(
                &idp,
                "idp-2",
                claims("marketing@crm.example", "https://idp.example/"),
            ),
        ),
        (
            "our kid prefix on the provider's key",
            external_token(
                &idp,
                "crm-forged",
                claims("marketing@crm.example", "crm-gateway"),
            ),
        ),
    ] {
        let (status, _) = gateway_as(&client, &url, Some(&token), "{ me { id } }", json!({})).await;
        assert_eq!(status, 401, "{label}");
    }

    // Development mode: HS256 with the configured secret, and only that secret.
    let (status, body) = gateway_as(
        &client,
        &url,
        Some(&hs256_token(b"dev-secret")),
        "{ me { id } }",
        json!({}),
    )
    .await;
    assert_eq!(
        (status, &body["data"]["me"]["id"]),
        (200, &json!("usr_admin")),
        "{body}"
    );
    let (status, _) = gateway_as(
        &client,
        &url,
        Some(&hs256_token(b"other")),
        "{ me { id } }",
        json!({}),
    )
    .await;
    assert_eq!(status, 401);
    // The gateway's own tokens still work next to the provider's.
    let own = system.identity.issuer.issue("usr_admin", None, 300);
    let (status, _) = gateway_as(&client, &url, Some(&own), "{ me { id } }", json!({})).await;
    assert_eq!(status, 200);
    finish(system, created).await;
}

#[tokio::test]
async fn invitations_are_redeemed_once_revocable_and_scoped_to_their_organisation() {
    let (system, _dir, created) = system_with_settings(2, Default::default()).await;
    let client = reqwest::Client::new();
    let url = system.public.url();
    let admin = system.identity.issuer.issue("usr_admin", None, 600);
    let personas = partner_personas(&system).await;
    let (partner_admin, partner, other_partner) = (
        &personas.admin,
        personas.partner.clone(),
        personas.other_partner.clone(),
    );
    let partner_token = system.identity.issuer.issue(&partner_admin.id, None, 600);
    let invite = "mutation($input: InviteUserInput!) { inviteUser(input: $input) { token invitation { id email kind role organization { id } status } } }";
    let redeem = "mutation($token: String!, $password: String!) { redeemInvitation(token: $token, displayName: \"Dana Field\", password: $password) { accessToken me { email kind roles organization { id } } } }";

    // A partner admin invites to its own organisation, as its own kind.
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&partner_token),
        invite,
        json!({ "input": { "email": "Dana.Field@Example.COM", "role": "partner_manager" } }),
    )
    .await;
    let created_invitation = &body["data"]["inviteUser"];
    assert_eq!(
        created_invitation["invitation"]["organization"]["id"],
        partner.as_str(),
        "{body}"
    );
    assert_eq!(
        created_invitation["invitation"]["kind"],
        partner_admin.kind.to_uppercase()
    );
    assert_eq!(created_invitation["invitation"]["status"], "OPEN");
    let token = created_invitation["token"]
        .as_str()
        .expect("token")
        .to_owned();

    let (_, body) = gateway_as(
        &client,
        &url,
        None,
        redeem,
        json!({ "token": token, "password": "short" }),
    )
    .await;
    assert_eq!(code(&body), "VALIDATION", "{body}");
    let (_, body) = gateway_as(
        &client,
        &url,
        None,
        redeem,
        json!({ "token": token, "password": "a long enough passphrase" }),
    )
    .await;
    let session = &body["data"]["redeemInvitation"];
    assert_eq!(
        session["me"],
        json!({ "email": "dana.field@example.com", "kind": partner_admin.kind.to_uppercase(), "roles": ["partner_manager"], "organization": { "id": partner } }),
        "{body}"
    );
    let (_, me) = gateway_as(
        &client,
        &url,
        Some(session["accessToken"].as_str().expect("access")),
        ME,
        json!({}),
    )
    .await;
    assert_eq!(me["data"]["me"]["displayName"], "Dana Field", "{me}");
    let signed_in = sign_in(
        &client,
        &url,
        "dana.field@example.com",
        "a long enough passphrase",
    )
    .await;
    assert!(
        signed_in["data"]["signIn"]["accessToken"].is_string(),
        "{signed_in}"
    );
    // Once.
    let (_, body) = gateway_as(
        &client,
        &url,
        None,
        redeem,
        json!({ "token": token, "password": "another long passphrase" }),
    )
    .await;
    assert_eq!(code(&body), "INVALID_INVITATION", "{body}");
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&partner_token),
        invite,
        json!({ "input": { "email": "dana.field@example.com", "role": "partner_user" } }),
    )
    .await;
    assert_eq!(
        code(&body),
        "DUPLICATE",
        "an existing user is not invited again: {body}"
    );

    // Wrong organisation: another partner does not exist for this partner admin.
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&partner_token),
        invite,
        json!({ "input": { "email": "x@example.com", "role": "partner_user", "partnerId": other_partner } }),
    )
    .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&admin),
        invite,
        json!({ "input": { "email": "y@example.com", "role": "partner_user", "partnerId": other_partner, "kind": "DISTRIBUTOR" } }),
    )
    .await;
    let others = body["data"]["inviteUser"]["invitation"]["id"]
        .as_str()
        .expect("admin invites anywhere")
        .to_owned();
    let others_token = body["data"]["inviteUser"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let revoke = "mutation($id: ID!) { revokeInvitation(id: $id) { id status } }";
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&partner_token),
        revoke,
        json!({ "id": others }),
    )
    .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&partner_token),
        "{ invitations { email } }",
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["invitations"],
        json!([{ "email": "dana.field@example.com" }]),
        "a partner admin lists its own: {body}"
    );

    // Revoked: not redeemable; a redeemed one cannot be revoked.
    let (_, body) = gateway_as(&client, &url, Some(&admin), revoke, json!({ "id": others })).await;
    assert_eq!(
        body["data"]["revokeInvitation"]["status"], "REVOKED",
        "{body}"
    );
    let (_, body) = gateway_as(
        &client,
        &url,
        None,
        redeem,
        json!({ "token": others_token, "password": "a long enough passphrase" }),
    )
    .await;
    assert_eq!(code(&body), "INVALID_INVITATION", "{body}");
    let redeemed = created_invitation["invitation"]["id"].as_str().expect("id");
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&admin),
        revoke,
        json!({ "id": redeemed }),
    )
    .await;
    assert_eq!(code(&body), "INVALID_STATE", "{body}");

    // Partner users invite no one; a partner user's kind is never chosen by the input.
    let partner_user = &personas.user;
    let user_token = system.identity.issuer.issue(&partner_user.id, None, 600);
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&user_token),
        invite,
        json!({ "input": { "email": "z@example.com", "role": "partner_user" } }),
    )
    .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let (_, body) = gateway_as(
        &client,
        &url,
        Some(&admin),
        invite,
        json!({ "input": { "email": "z@example.com", "role": "partner_user", "partnerId": partner } }),
    )
    .await;
    assert_eq!(
        (
            code(&body),
            body["errors"][0]["extensions"]["field"].as_str()
        ),
        ("VALIDATION", Some("input.kind")),
        "{body}"
    );

    // Expiry follows the clock.
    let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
    let directory = Directory {
        db: system.databases.identity.clone(),
        clock: clock.clone(),
    };
    let (_, token) = directory
        .invite(
            "late@example.com",
            "internal",
            None,
            "support",
            "usr_admin",
            directory.now() + chrono::Duration::seconds(60),
        )
        .await
        .expect("invite");
    clock.advance(60);
    let hash = crm_identity::store::hash_password("a long enough passphrase").expect("hash");
    let late = directory.redeem_invitation(&token, "Late", hash).await;
    assert_eq!(
        late.err().map(|e| e.code().as_str()),
        Some("INVALID_INVITATION")
    );
    finish(system, created).await;
}
