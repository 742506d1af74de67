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

/// A seeded system of two accounts, its demo admin's token and its partner personas.
struct App {
    system: crm_system::AllInOne,
    _dir: tempfile::TempDir,
    created: Option<String>,
    client: reqwest::Client,
    url: String,
    admin: String,
    personas: PartnerPersonas,
    /// The partner admin's token.
    partner_admin: String,
    /// The partner user's token.
    partner_user: String,
}

impl App {
    async fn start() -> Self {
        let (system, dir, created) = system_with_settings(2, Default::default()).await;
        let url = system.public.url();
        let admin = system.identity.issuer.issue("usr_admin", None, 600);
        let personas = partner_personas(&system).await;
        let partner_admin = system.identity.issuer.issue(&personas.admin.id, None, 600);
        let partner_user = system.identity.issuer.issue(&personas.user.id, None, 600);
        App {
            system,
            _dir: dir,
            created,
            client: reqwest::Client::new(),
            url,
            admin,
            personas,
            partner_admin,
            partner_user,
        }
    }

    /// The whole answer to `query` sent with `bearer` (none: anonymous).
    async fn send(&self, bearer: Option<&str>, query: &str, variables: Value) -> Value {
        gateway_as(&self.client, &self.url, bearer, query, variables)
            .await
            .1
    }

    async fn finish(self) {
        finish(self.system, self.created).await;
    }
}

const REFRESH: &str = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken me { id } } }";

/// The admin signed in: its access and refresh tokens.
async fn admin_session(app: &App) -> (String, String) {
    let body = sign_in(&app.client, &app.url, "admin@crm.example", DEMO_PASSWORD).await;
    let session = &body["data"]["signIn"];
    (
        session["accessToken"].as_str().expect("access").to_owned(),
        session["refreshToken"]
            .as_str()
            .expect("refresh")
            .to_owned(),
    )
}

#[tokio::test]
async fn sign_in_gives_tokens_and_wrong_or_unknown_credentials_read_the_same() {
    let app = App::start().await;
    let body = sign_in(&app.client, &app.url, "admin@crm.example", DEMO_PASSWORD).await;
    let session = &body["data"]["signIn"];
    assert_eq!(session["tokenType"], "Bearer", "{body}");
    assert_eq!(
        session["me"],
        json!({ "id": "usr_admin", "kind": "INTERNAL", "email": "admin@crm.example", "roles": ["admin"], "organization": null })
    );
    let access = session["accessToken"].as_str().expect("access token");
    let me = app.send(Some(access), ME, json!({})).await;
    assert_eq!(me["data"]["me"]["id"], "usr_admin", "{me}");

    let wrong = sign_in(&app.client, &app.url, "admin@crm.example", "nope").await;
    let unknown = sign_in(&app.client, &app.url, "nobody@crm.example", "nope").await;
    assert_eq!(code(&wrong), "INVALID_CREDENTIALS", "{wrong}");
    assert_eq!(
        wrong["errors"][0]["message"],
        unknown["errors"][0]["message"]
    );
    assert_eq!(code(&unknown), "INVALID_CREDENTIALS");
    assert!(wrong["data"].is_null(), "{wrong}");
    app.finish().await;
}

/// A refresh token works once; presenting a traded one again means someone copied it, so
/// the whole session ends: the tokens the legitimate holder got since stop working too.
#[tokio::test]
async fn a_refresh_token_works_once_and_presenting_it_again_ends_the_session() {
    let app = App::start().await;
    let (_, refresh) = admin_session(&app).await;
    let body = app.send(None, REFRESH, json!({ "t": refresh })).await;
    let renewed = &body["data"]["refreshSession"];
    assert_eq!(renewed["me"]["id"], "usr_admin", "{body}");
    let access = renewed["accessToken"].as_str().expect("access").to_owned();
    let next_refresh = renewed["refreshToken"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert_ne!(next_refresh, refresh);
    let (status, _) = gateway_as(&app.client, &app.url, Some(&access), ME, json!({})).await;
    assert_eq!(status, 200);

    let replayed = app.send(None, REFRESH, json!({ "t": refresh })).await;
    assert_eq!(code(&replayed), "INVALID_REFRESH_TOKEN", "{replayed}");
    let (status, body) = gateway_as(&app.client, &app.url, Some(&access), ME, json!({})).await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "{body}");
    let body = app.send(None, REFRESH, json!({ "t": next_refresh })).await;
    assert_eq!(
        code(&body),
        "INVALID_REFRESH_TOKEN",
        "the newest token ended with its session: {body}"
    );
    app.finish().await;
}

#[tokio::test]
async fn signing_out_ends_the_session_and_its_tokens() {
    let app = App::start().await;
    let (access, refresh) = admin_session(&app).await;
    let body = app
        .send(Some(&access), "mutation { signOut }", json!({}))
        .await;
    assert_eq!(body, json!({ "data": { "signOut": true } }));
    let (status, body) = gateway_as(&app.client, &app.url, Some(&access), ME, json!({})).await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "{body}");
    let body = app.send(None, REFRESH, json!({ "t": refresh })).await;
    assert_eq!(code(&body), "INVALID_REFRESH_TOKEN", "{body}");
    let body = app.send(None, "mutation { signOut }", json!({})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    app.finish().await;
}

/// A token printed by `crm token` belongs to a session of its own, which can be ended.
#[tokio::test]
async fn a_command_line_token_stops_when_its_session_is_ended() {
    let app = App::start().await;
    let directory = &app.system.identity.directory;
    let admin = directory
        .user("usr_admin")
        .await
        .expect("read")
        .expect("admin");
    let session = directory
        .command_line_session(&admin, 600)
        .await
        .expect("session");
    let token = app
        .system
        .identity
        .issuer
        .issue(&admin.id, Some(&session.id), 600);
    let (status, _) = gateway_as(&app.client, &app.url, Some(&token), ME, json!({})).await;
    assert_eq!(status, 200);
    directory.sign_out(&session.id).await.expect("end");
    let (status, _) = gateway_as(&app.client, &app.url, Some(&token), ME, json!({})).await;
    assert_eq!(status, 401, "the printed token is revoked with its session");
    app.finish().await;
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
async fn a_disabled_users_token_stops_at_once_and_only_the_right_password_learns_why() {
    let app = App::start().await;
    let sales = user::Entity::find_by_id("usr_sales")
        .one(&app.system.databases.identity)
        .await
        .expect("read")
        .expect("the sales user");
    let token = app.system.identity.issuer.issue(&sales.id, None, 300);
    let mut row = sales.into_active_model();
    row.disabled = Set(true);
    row.update(&app.system.databases.identity)
        .await
        .expect("disable");
    let body = sign_in(&app.client, &app.url, "sales@crm.example", DEMO_PASSWORD).await;
    assert_eq!(code(&body), "ACCOUNT_DISABLED", "{body}");
    let body = sign_in(&app.client, &app.url, "sales@crm.example", "guess").await;
    assert_eq!(code(&body), "INVALID_CREDENTIALS", "{body}");
    let (status, _) = gateway_as(&app.client, &app.url, Some(&token), ME, json!({})).await;
    assert_eq!(status, 401, "a disabled user's token stops working at once");
    app.finish().await;
}

/// Sign-in from `source` (a trusted proxy forwards for it).
async fn sign_in_from(
    client: &reqwest::Client,
    url: &str,
    source: &str,
    email: &str,
    password: &str,
) -> Value {
    client
        .post(format!("{url}/graphql"))
        .header("x-forwarded-for", source)
        .json(&json!({ "query": SIGN_IN, "variables": { "email": email, "password": password } }))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json")
}

/// Failures slow down the source that makes them, for that account; the owner, signing
/// in from elsewhere, is never locked out, and an unknown address is throttled exactly
/// like a known one (no existence oracle).
#[tokio::test]
async fn failed_sign_ins_slow_their_source_down_and_never_lock_the_owner_out() {
    let settings = crm_system::GatewaySettings {
        door: crm_gateway::federation::server::DoorConfig {
            trusted_proxies: vec!["127.0.0.1".parse().expect("ip")],
            ..Default::default()
        },
        ..Default::default()
    };
    let (system, _dir, created) = system_with_settings(2, settings).await;
    let client = reqwest::Client::new();
    let url = system.public.url();
    let attacker = "203.0.113.7";
    let mut answers = Vec::new();
    for email in ["support@crm.example", "nobody@crm.example"] {
        let mut codes = Vec::new();
        for _ in 0..=crm_identity::store::FREE_FAILURES {
            let body = sign_in_from(&client, &url, attacker, email, "guess").await;
            codes.push(code(&body).to_owned());
        }
        let body = sign_in_from(&client, &url, attacker, email, DEMO_PASSWORD).await;
        codes.push(code(&body).to_owned());
        answers.push(codes);
    }
    let mut expected = vec!["INVALID_CREDENTIALS".to_owned(); 6];
    expected.push("TOO_MANY_ATTEMPTS".into());
    assert_eq!(answers[0], expected, "the attacker's source waits");
    assert_eq!(
        answers[1], answers[0],
        "an unknown address answers the same"
    );
    let body = sign_in_from(
        &client,
        &url,
        "198.51.100.2",
        "support@crm.example",
        DEMO_PASSWORD,
    )
    .await;
    assert!(
        body["data"]["signIn"]["accessToken"].is_string(),
        "the owner, elsewhere, signs in: {body}"
    );
    finish(system, created).await;
}

/// A guessing attack spread over many addresses (each under its own limit) slows every
/// new address down for that account, while the addresses its owner signed in from keep
/// working; an unknown email answers the same at every step.
#[tokio::test]
async fn a_spread_out_attack_slows_new_sources_and_spares_the_owners_own() {
    let (system, _dir, created) = system_with_settings(2, Default::default()).await;
    let directory = Directory {
        db: system.databases.identity.clone(),
        clock: Arc::new(ManualClock::at(chrono::Utc::now())),
    };
    let attempt = |email: &'static str, password: &'static str, source: String| {
        let directory = directory.clone();
        async move {
            directory
                .sign_in(email, password, Some(&source))
                .await
                .err()
                .map(|e| e.code().as_str())
        }
    };
    let owners_desk = "198.51.100.20".to_owned();
    assert_eq!(
        attempt("support@crm.example", DEMO_PASSWORD, owners_desk.clone()).await,
        None
    );
    let mut answers = Vec::new();
    for email in ["support@crm.example", "nobody@crm.example"] {
        let mut codes = Vec::new();
        for n in 0..crm_identity::store::ACCOUNT_FREE_FAILURES + 1 {
            codes.push(attempt(email, "guess", format!("203.0.113.{n}")).await);
        }
        codes.push(attempt(email, DEMO_PASSWORD, "192.0.2.200".to_owned()).await);
        answers.push(codes);
    }
    assert!(
        answers[0][..answers[0].len() - 1]
            .iter()
            .all(|c| *c == Some("INVALID_CREDENTIALS")),
        "{answers:?}"
    );
    assert_eq!(
        answers[0].last(),
        Some(&Some("TOO_MANY_ATTEMPTS")),
        "a new address waits, even with the right password"
    );
    assert_eq!(answers[1], answers[0], "an unknown email answers the same");
    assert_eq!(
        attempt("support@crm.example", DEMO_PASSWORD, owners_desk).await,
        None,
        "the owner's own address still signs in"
    );
    finish(system, created).await;
}

#[tokio::test]
async fn sign_in_delays_grow_and_end_with_the_clock_and_key_expiry_follows_it() {
    let (system, _dir, created) = system_with_settings(2, Default::default()).await;
    let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
    let directory = Directory {
        db: system.databases.identity.clone(),
        clock: clock.clone(),
    };
    let source = Some("203.0.113.7");
    let attempt = |password: &'static str| {
        let directory = directory.clone();
        async move {
            directory
                .sign_in("support@crm.example", password, source)
                .await
                .err()
                .map(|e| e.code().as_str())
        }
    };
    for _ in 0..crm_identity::store::FREE_FAILURES {
        assert_eq!(attempt("guess").await, Some("INVALID_CREDENTIALS"));
    }
    // Each failure past the free ones doubles the wait: 30 s, 60 s, 120 s.
    for wait in [30, 60, 120] {
        assert_eq!(attempt("guess").await, Some("INVALID_CREDENTIALS"));
        assert_eq!(attempt(DEMO_PASSWORD).await, Some("TOO_MANY_ATTEMPTS"));
        clock.advance(wait - 1);
        assert_eq!(
            attempt(DEMO_PASSWORD).await,
            Some("TOO_MANY_ATTEMPTS"),
            "{wait} s"
        );
        clock.advance(1);
    }
    assert_eq!(attempt(DEMO_PASSWORD).await, None, "the wait is over");
    // Success forgets the failures: five more are free again.
    for _ in 0..crm_identity::store::FREE_FAILURES {
        assert_eq!(attempt("guess").await, Some("INVALID_CREDENTIALS"));
    }
    assert_eq!(attempt(DEMO_PASSWORD).await, None);
    // Failures spread beyond the window do not add up.
    for _ in 0..=crm_identity::store::FREE_FAILURES {
        assert_eq!(attempt("guess").await, Some("INVALID_CREDENTIALS"));
        clock.advance(crm_identity::store::FAILURE_WINDOW_SECONDS);
    }
    assert_eq!(attempt(DEMO_PASSWORD).await, None);

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

const CREATE_KEY: &str = "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret key { id name prefix role organization { id } revokedAt lastUsedAt } } }";
const REVOKE_KEY: &str = "mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }";

impl App {
    /// A new key made by `bearer`: its secret and its id.
    async fn create_key(&self, bearer: &str, input: Value) -> (String, String) {
        let body = self
            .send(Some(bearer), CREATE_KEY, json!({ "input": input }))
            .await;
        let created = &body["data"]["createApiKey"];
        let secret = created["secret"].as_str().expect("the secret, once");
        let id = created["key"]["id"].as_str().expect("id");
        (secret.to_owned(), id.to_owned())
    }
}

#[tokio::test]
async fn an_api_keys_secret_is_shown_once_and_its_use_recorded() {
    let app = App::start().await;
    let body = app
        .send(
            Some(&app.admin),
            CREATE_KEY,
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
        &app.client,
        &app.url,
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
    let body = app
        .send(
            Some(&app.admin),
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
    app.finish().await;
}

#[tokio::test]
async fn an_api_key_with_invalid_input_is_refused_with_the_field_named() {
    let app = App::start().await;
    for (input, field) in [
        (json!({ "name": "", "role": "sales" }), "input.name"),
        (json!({ "name": "x", "role": "partner_user" }), "input.role"),
        (
            json!({ "name": "x", "role": "sales", "expiresAt": "2020-01-01T00:00:00Z" }),
            "input.expiresAt",
        ),
    ] {
        let body = app
            .send(Some(&app.admin), CREATE_KEY, json!({ "input": input }))
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
    app.finish().await;
}

#[tokio::test]
async fn a_partner_admin_manages_its_own_organisations_keys_only() {
    let app = App::start().await;
    let (_, staff_key) = app
        .create_key(&app.admin, json!({ "name": "ERP sync", "role": "sales" }))
        .await;
    let (partner, other_partner) = (&app.personas.partner, &app.personas.other_partner);
    let body = app
        .send(
            Some(&app.partner_admin),
            CREATE_KEY,
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
    let body = app
        .send(
            Some(&partner_key),
            "{ me { kind organization { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["me"],
        json!({ "kind": "INTEGRATOR", "organization": { "id": partner } })
    );
    let body = app
        .send(
            Some(&app.partner_admin),
            CREATE_KEY,
            json!({ "input": { "name": "x", "role": "partner_user", "partnerId": other_partner } }),
        )
        .await;
    assert_eq!(
        code(&body),
        "NOT_FOUND",
        "another partner is answered as if it did not exist: {body}"
    );
    let body = app
        .send(Some(&app.partner_admin), "{ apiKeys { id } }", json!({}))
        .await;
    assert_eq!(
        body["data"]["apiKeys"].as_array().map(Vec::len),
        Some(1),
        "its own key only: {body}"
    );
    let body = app
        .send(
            Some(&app.partner_admin),
            REVOKE_KEY,
            json!({ "id": staff_key }),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    app.finish().await;
}

#[tokio::test]
async fn a_partner_user_manages_no_keys() {
    let app = App::start().await;
    let body = app
        .send(Some(&app.partner_user), "{ apiKeys { id } }", json!({}))
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    app.finish().await;
}

#[tokio::test]
async fn a_revoked_key_is_refused_from_the_next_request_on() {
    let app = App::start().await;
    let (secret, key_id) = app
        .create_key(&app.admin, json!({ "name": "ERP sync", "role": "sales" }))
        .await;
    let (status, _) = gateway_as(
        &app.client,
        &app.url,
        Some(&secret),
        "{ me { id } }",
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let body = app
        .send(Some(&app.admin), REVOKE_KEY, json!({ "id": key_id }))
        .await;
    assert!(
        body["data"]["revokeApiKey"]["revokedAt"].is_string(),
        "{body}"
    );
    let (status, body) = gateway_as(
        &app.client,
        &app.url,
        Some(&secret),
        "{ me { id } }",
        json!({}),
    )
    .await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "{body}");
    app.finish().await;
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
            ..Default::default()
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

const INVITE: &str = "mutation($input: InviteUserInput!) { inviteUser(input: $input) { token invitation { id email kind role organization { id } status } } }";
const REDEEM: &str = "mutation($token: String!, $password: String!) { redeemInvitation(token: $token, displayName: \"Dana Field\", password: $password) { accessToken me { email kind roles organization { id } } } }";
const REVOKE_INVITATION: &str = "mutation($id: ID!) { revokeInvitation(id: $id) { id status } }";
const PASSPHRASE: &str = "a long enough passphrase";

impl App {
    /// The answer to an invitation sent by `bearer`.
    async fn invite(&self, bearer: &str, input: Value) -> Value {
        self.send(Some(bearer), INVITE, json!({ "input": input }))
            .await
    }

    /// Dana Field invited by the partner admin to its organisation: the created invitation.
    async fn invite_dana(&self) -> Value {
        let body = self
            .invite(
                &self.partner_admin,
                json!({ "email": "Dana.Field@Example.COM", "role": "partner_manager" }),
            )
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        body["data"]["inviteUser"].clone()
    }

    async fn redeem(&self, token: &str, password: &str) -> Value {
        self.send(
            None,
            REDEEM,
            json!({ "token": token, "password": password }),
        )
        .await
    }

    /// An invitation the demo admin sends to another partner's organisation: id and token.
    async fn invite_to_other_partner(&self) -> (String, String) {
        let body = self
            .invite(
                &self.admin,
                json!({ "email": "y@example.com", "role": "partner_user", "partnerId": self.personas.other_partner, "kind": "DISTRIBUTOR" }),
            )
            .await;
        let invitation = &body["data"]["inviteUser"];
        (
            invitation["invitation"]["id"]
                .as_str()
                .expect("admin invites anywhere")
                .to_owned(),
            invitation["token"].as_str().expect("token").to_owned(),
        )
    }
}

#[tokio::test]
async fn a_partner_admin_invites_to_its_own_organisation_as_its_own_kind() {
    let app = App::start().await;
    let invitation = app.invite_dana().await;
    assert_eq!(
        invitation["invitation"]["organization"]["id"],
        app.personas.partner.as_str(),
        "{invitation}"
    );
    assert_eq!(
        invitation["invitation"]["kind"],
        app.personas.admin.kind.to_uppercase()
    );
    assert_eq!(invitation["invitation"]["status"], "OPEN");
    app.finish().await;
}

#[tokio::test]
async fn an_invitation_is_redeemed_once_into_a_user_who_can_sign_in() {
    let app = App::start().await;
    let invitation = app.invite_dana().await;
    let token = invitation["token"].as_str().expect("token");
    let body = app.redeem(token, "short").await;
    assert_eq!(code(&body), "VALIDATION", "{body}");
    let body = app.redeem(token, PASSPHRASE).await;
    let session = &body["data"]["redeemInvitation"];
    let partner_admin = &app.personas.admin;
    assert_eq!(
        session["me"],
        json!({ "email": "dana.field@example.com", "kind": partner_admin.kind.to_uppercase(), "roles": ["partner_manager"], "organization": { "id": app.personas.partner } }),
        "{body}"
    );
    let me = app
        .send(
            Some(session["accessToken"].as_str().expect("access")),
            ME,
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["displayName"], "Dana Field", "{me}");
    let signed_in = sign_in(&app.client, &app.url, "dana.field@example.com", PASSPHRASE).await;
    assert!(
        signed_in["data"]["signIn"]["accessToken"].is_string(),
        "{signed_in}"
    );
    let body = app.redeem(token, "another long passphrase").await;
    assert_eq!(code(&body), "INVALID_INVITATION", "once: {body}");
    let body = app
        .invite(
            &app.partner_admin,
            json!({ "email": "dana.field@example.com", "role": "partner_user" }),
        )
        .await;
    assert_eq!(
        code(&body),
        "DUPLICATE",
        "an existing user is not invited again: {body}"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_partner_admin_neither_invites_to_nor_revokes_for_another_organisation() {
    let app = App::start().await;
    app.invite_dana().await;
    let body = app
        .invite(
            &app.partner_admin,
            json!({ "email": "x@example.com", "role": "partner_user", "partnerId": app.personas.other_partner }),
        )
        .await;
    assert_eq!(
        code(&body),
        "NOT_FOUND",
        "another partner does not exist for it: {body}"
    );
    let (others, _) = app.invite_to_other_partner().await;
    let body = app
        .send(
            Some(&app.partner_admin),
            REVOKE_INVITATION,
            json!({ "id": others }),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = app
        .send(
            Some(&app.partner_admin),
            "{ invitations { email } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["invitations"],
        json!([{ "email": "dana.field@example.com" }]),
        "a partner admin lists its own: {body}"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_revoked_invitation_is_not_redeemable_and_a_redeemed_one_not_revocable() {
    let app = App::start().await;
    let (others, others_token) = app.invite_to_other_partner().await;
    let body = app
        .send(Some(&app.admin), REVOKE_INVITATION, json!({ "id": others }))
        .await;
    assert_eq!(
        body["data"]["revokeInvitation"]["status"], "REVOKED",
        "{body}"
    );
    let body = app.redeem(&others_token, PASSPHRASE).await;
    assert_eq!(code(&body), "INVALID_INVITATION", "{body}");
    let dana = app.invite_dana().await;
    let body = app
        .redeem(dana["token"].as_str().expect("token"), PASSPHRASE)
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let body = app
        .send(
            Some(&app.admin),
            REVOKE_INVITATION,
            json!({ "id": dana["invitation"]["id"] }),
        )
        .await;
    assert_eq!(code(&body), "INVALID_STATE", "{body}");
    app.finish().await;
}

#[tokio::test]
async fn partner_users_invite_no_one_and_a_partner_invitation_names_its_kind() {
    let app = App::start().await;
    let body = app
        .invite(
            &app.partner_user,
            json!({ "email": "z@example.com", "role": "partner_user" }),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let body = app
        .invite(
            &app.admin,
            json!({ "email": "z@example.com", "role": "partner_user", "partnerId": app.personas.partner }),
        )
        .await;
    assert_eq!(
        (
            code(&body),
            body["errors"][0]["extensions"]["field"].as_str()
        ),
        ("VALIDATION", Some("input.kind")),
        "the kind is never guessed: {body}"
    );
    app.finish().await;
}

#[tokio::test]
async fn an_invitation_expires_with_the_clock() {
    let app = App::start().await;
    let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
    let directory = Directory {
        db: app.system.databases.identity.clone(),
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
    let hash = crm_identity::store::hash_password(PASSPHRASE).expect("hash");
    let late = directory.redeem_invitation(&token, "Late", hash).await;
    assert_eq!(
        late.err().map(|e| e.code().as_str()),
        Some("INVALID_INVITATION")
    );
    app.finish().await;
}

const SET_DISABLED: &str =
    "mutation($id: ID!, $d: Boolean!) { setUserDisabled(id: $id, disabled: $d) { id } }";

/// A key acts for the person who owns it and never holds more than they may grant now:
/// disabled, they take their keys down with them, until an admin of the organisation
/// takes a key over.
#[tokio::test]
async fn a_key_stops_with_its_owner_until_another_admin_takes_it_over() {
    let app = App::start().await;
    let (secret, key_id) = app
        .create_key(
            &app.partner_admin,
            json!({ "name": "shop", "role": "partner_user" }),
        )
        .await;
    let (status, _) = gateway_as(&app.client, &app.url, Some(&secret), ME, json!({})).await;
    assert_eq!(status, 200);
    let body = app
        .send(
            Some(&app.admin),
            SET_DISABLED,
            json!({ "id": app.personas.admin.id, "d": true }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let (status, body) = gateway_as(&app.client, &app.url, Some(&secret), ME, json!({})).await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "{body}");

    let taken = app
        .send(
            Some(&app.admin),
            "mutation($id: ID!) { takeOverApiKey(id: $id) { id } }",
            json!({ "id": key_id }),
        )
        .await;
    assert!(taken.get("errors").is_none(), "{taken}");
    let (status, body) = gateway_as(&app.client, &app.url, Some(&secret), ME, json!({})).await;
    assert_eq!(status, 200, "the new owner keeps it working: {body}");
    app.finish().await;
}

/// A partner admin's key (with the partner-admin role) cannot re-enable, or disable, the
/// person who owns it, nor take keys over.
#[tokio::test]
async fn a_key_cannot_change_its_owner_or_take_keys_over() {
    let app = App::start().await;
    let (secret, key_id) = app
        .create_key(
            &app.partner_admin,
            json!({ "name": "provisioning", "role": "partner_admin" }),
        )
        .await;
    let body = app
        .send(
            Some(&secret),
            SET_DISABLED,
            json!({ "id": app.personas.admin.id, "d": true }),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let body = app
        .send(
            Some(&secret),
            "mutation($id: ID!) { takeOverApiKey(id: $id) { id } }",
            json!({ "id": key_id }),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    app.finish().await;
}

/// Inviting an address the inviter cannot see in its directory (our staff, another
/// partner's user) answers like any new address; the invitation fails only when redeemed.
#[tokio::test]
async fn inviting_someone_else_s_user_answers_like_a_new_address() {
    let app = App::start().await;
    let other_partners_user = crm_identity::all_users(&app.system.databases.identity)
        .await
        .expect("users")
        .into_iter()
        .find(|u| u.partner_id.as_deref() == Some(app.personas.other_partner.as_str()))
        .expect("a user of another partner");
    let mut tokens = Vec::new();
    for email in [
        "admin@crm.example",
        other_partners_user.email.as_str(),
        "brand.new@example.com",
    ] {
        let body = app
            .invite(
                &app.partner_admin,
                json!({ "email": email, "role": "partner_user" }),
            )
            .await;
        assert!(body.get("errors").is_none(), "{email}: {body}");
        assert_eq!(body["data"]["inviteUser"]["invitation"]["status"], "OPEN");
        tokens.push(
            body["data"]["inviteUser"]["token"]
                .as_str()
                .expect("token")
                .to_owned(),
        );
    }
    let body = app.redeem(&tokens[0], PASSPHRASE).await;
    assert_eq!(code(&body), "INVALID_INVITATION", "{body}");
    let body = app.redeem(&tokens[2], PASSPHRASE).await;
    assert!(body.get("errors").is_none(), "{body}");
    app.finish().await;
}
