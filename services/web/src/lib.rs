//! The web UI for internal staff (`/app`) and the partner portal (`/portal`), served by
//! the gateway. Pages are server-rendered (askama) with htmx for partial updates; every
//! page is a GraphQL client of the gateway's own router with the signed-in user's access
//! token (see `client`), so it shows exactly what the API lets that user see. Sessions
//! and saved views live in the `identity` schema.
//!
//! Everything works without JavaScript: forms post and redirect (post/redirect/get), list
//! filters are GET forms; htmx only swaps the result region in place.

pub mod client;
mod locale;
mod markdown;
mod pages;
pub mod session;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use client::{Api, ApiFailure, FieldError};
use session::{ApiSession, Renewal, SessionPolicy, Sessions, WebSession};

/// The session cookie; `__Host-` (Secure, path /, no domain) when served over TLS.
const SESSION_COOKIE: &str = "crm_session";
const SECURE_SESSION_COOKIE: &str = "__Host-crm_session";
/// The sign-in form's CSRF cookie (double submit: there is no session yet), and its name
/// over TLS.
const FORM_COOKIE: &str = "crm_form";
const SECURE_FORM_COOKIE: &str = "__Host-crm_form";

/// How the UI is served.
#[derive(Clone, Debug, Default)]
pub struct WebConfig {
    pub sessions: SessionPolicy,
    /// Mark cookies `Secure` (the gateway is served over TLS, by itself or a proxy). A
    /// request that arrives with `X-Forwarded-Proto: https` gets them anyway.
    pub secure_cookies: bool,
}

pub(crate) struct Web {
    api: Api,
    sessions: Sessions,
    config: WebConfig,
}

/// The UI's routes, calling `api` (the gateway's public router) for every read and write.
pub fn router(api: Router, identity_db: DatabaseConnection, config: WebConfig) -> Router {
    let web = Arc::new(Web {
        api: Api::new(api),
        sessions: Sessions::new(identity_db, config.sessions.clone()),
        config,
    });
    pages::routes()
        .route("/assets/{file}", get(asset))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            web.clone(),
            in_time_zone,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(web)
}

/// Where the signed-in user is: the time zone every time a page shows is in
/// (`pages::When`), and how the user's locale writes numbers and amounts (`pages::Money`).
#[derive(Clone, Copy)]
struct Place {
    zone: chrono_tz::Tz,
    numbers: &'static locale::NumberStyle,
}

tokio::task_local! {
    /// The signed-in user's place, for the whole of its request.
    static PLACE: Place;
}

/// The time zone of the request being answered (UTC outside one, or for nobody signed in).
pub(crate) fn zone() -> chrono_tz::Tz {
    PLACE
        .try_with(|place| place.zone)
        .unwrap_or(chrono_tz::Tz::UTC)
}

/// How the request's user writes numbers (the default locale's outside one).
pub(crate) fn numbers() -> &'static locale::NumberStyle {
    PLACE
        .try_with(|place| place.numbers)
        .unwrap_or(&locale::LOCALES[0])
}

/// The web session as the request's first read found it (by `in_time_zone`).
#[derive(Clone)]
struct ReadSession(session::WebSession);

/// Runs the request in its user's time zone and locale, as the web session keeps the
/// caller: the one read of the session, which the page's `enter` reuses.
async fn in_time_zone(
    axum::extract::State(web): axum::extract::State<Arc<Web>>,
    request: Request,
    next: Next,
) -> Response {
    // Assets show no times: no session read for them.
    let cookie = if request.uri().path().starts_with("/assets/") {
        None
    } else {
        web.session_cookie(request.headers())
    };
    let found = match cookie {
        Some(cookie) => web.sessions.find(cookie).await.ok().flatten(),
        None => None,
    };
    let me = found
        .as_ref()
        .and_then(|session| session.caller.as_deref())
        .and_then(|json| serde_json::from_str::<Me>(json).ok());
    // The page's own `enter` takes the session from here instead of reading it again.
    let mut request = request;
    if let Some(session) = found {
        request.extensions_mut().insert(ReadSession(session));
    }
    let place = Place {
        zone: me
            .as_ref()
            .and_then(|me| me.time_zone.parse().ok())
            .unwrap_or(chrono_tz::Tz::UTC),
        numbers: locale::style_of(me.as_ref().map_or("", |me| me.locale.as_str())),
    };
    PLACE.scope(place, next.run(request)).await
}

/// The paths of every page a browser loads (`GET`), as the router serves them (with
/// `{id}` where a record's id goes): the list the one-pass-per-page test walks.
pub fn page_paths() -> Vec<&'static str> {
    pages::table()
        .into_iter()
        .filter(|route| route.page)
        .map(|route| route.path)
        .collect()
}

/// An address nobody serves: the app's own "not found" page, with the navigation of the
/// signed-in user's side (or the public frame when nobody is signed in).
async fn not_found(
    axum::extract::State(web): axum::extract::State<Arc<Web>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    const HEADING: &str = "Page not found";
    const MESSAGE: &str = "There is no page at this address. Check the link, or start again \
        from the navigation.";
    let path = uri.path();
    let signed_in = match web.session_cookie(&headers) {
        Some(cookie) => web.sessions.find(cookie).await.ok().flatten(),
        None => None,
    };
    if let Some(session) = signed_in {
        let area = Area::of_kind(&session.kind);
        if let Ok(ctx) = web.enter(&headers, path, area).await {
            return ctx.error_page(StatusCode::NOT_FOUND, HEADING, MESSAGE);
        }
    }
    error_page(
        Chrome::public(HEADING, ""),
        StatusCode::NOT_FOUND,
        HEADING,
        MESSAGE,
    )
}

/// Vendored, pinned front-end assets, embedded in the binary (no CDN, no npm at build).
async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (content_type, body): (&str, &'static [u8]) = match file.as_str() {
        "htmx.min.js" => (
            "text/javascript",
            include_bytes!("../assets/htmx/htmx.min.js"),
        ),
        "app.css" => ("text/css", include_bytes!("../assets/web/app.css")),
        "app.js" => ("text/javascript", include_bytes!("../assets/web/app.js")),
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

/// Every UI answer: no framing, no sniffing, scripts and styles from this origin only,
/// and pages never cached (they hold one user's data).
async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The side a page is on, as a type: `Signed<InApp>` lets a handler run only for a signed-in
/// internal user, `Signed<InPortal>` only for a partner's user; a handler shared by both is
/// generic over it.
pub(crate) trait Side: Send + Sync + 'static {
    const AREA: Area;
}

pub(crate) struct InApp;
pub(crate) struct InPortal;

impl Side for InApp {
    const AREA: Area = Area::App;
}

impl Side for InPortal {
    const AREA: Area = Area::Portal;
}

/// A signed-in request on side `S`. Extracting it answers for the handler when there is no
/// live session (to the sign-in page, coming back to this page after it) or when the user
/// belongs on the other side (to its own home).
pub(crate) struct Signed<S: Side>(pub Ctx, std::marker::PhantomData<S>);

impl<S: Side> axum::extract::FromRequestParts<Arc<Web>> for Signed<S> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        web: &Arc<Web>,
    ) -> Result<Self, Response> {
        // A page read comes back to itself after signing in; a form post to the home page
        // (its form would be gone).
        let back = if parts.method == axum::http::Method::GET {
            parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| S::AREA.home().to_owned())
        } else {
            S::AREA.home().to_owned()
        };
        let partial = parts.headers.contains_key("hx-request");
        let read = parts.extensions.remove::<ReadSession>().map(|read| read.0);
        web.enter_read(&parts.headers, &back, S::AREA, read)
            .await
            .map(|ctx| Signed(ctx, std::marker::PhantomData))
            .map_err(|refused| {
                // htmx follows a redirect inside the page region it swaps; a page that must
                // go elsewhere (to sign in, say) is told to load it whole.
                let to_sign_in = refused.status().is_redirection()
                    && refused
                        .headers()
                        .get(header::LOCATION)
                        .and_then(|l| l.to_str().ok())
                        .is_some_and(|l| l.starts_with("/signin"));
                match refused.headers().get(header::LOCATION) {
                    Some(location) if partial && refused.status().is_redirection() => {
                        ([("hx-redirect", location.clone())], StatusCode::NO_CONTENT)
                            .into_response()
                    }
                    // A form posted after the session ended: redirecting would drop what
                    // was typed; this page keeps it one "Back" away.
                    _ if to_sign_in && parts.method != axum::http::Method::GET => error_page(
                        Chrome::public("Session ended", ""),
                        StatusCode::UNAUTHORIZED,
                        "Session ended",
                        "Your session ended before this form was sent, so nothing was saved. \
                         Sign in again in another tab, then come back to this page \
                         (your browser's Back button keeps what you typed) and send it again.",
                    ),
                    _ => refused,
                }
            })
    }
}

/// Which side of the product a page belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Area {
    App,
    Portal,
}

impl Area {
    fn of_kind(kind: &str) -> Self {
        if kind == "internal" {
            Self::App
        } else {
            Self::Portal
        }
    }

    pub(crate) fn home(self) -> &'static str {
        match self {
            Self::App => "/app",
            Self::Portal => "/portal",
        }
    }
}

/// One link of the main navigation.
pub(crate) struct NavItem {
    pub href: String,
    pub label: &'static str,
    pub current: bool,
}

/// What every page's frame shows: title, navigation, who is signed in, the CSRF token of
/// its forms, and a one-line notice after a successful change.
pub(crate) struct Chrome {
    pub title: String,
    pub home: &'static str,
    pub is_portal: bool,
    pub user: Option<String>,
    pub organization: Option<String>,
    pub nav: Vec<NavItem>,
    pub csrf: String,
    pub notice: Option<String>,
    /// Whether the header links to the user's notifications (the policy gives it some).
    pub notifications: bool,
}

impl Chrome {
    /// The frame of a page nobody is signed in to.
    pub fn public(title: &str, csrf: &str) -> Self {
        Self {
            title: title.to_owned(),
            home: "/",
            is_portal: false,
            user: None,
            organization: None,
            nav: Vec::new(),
            csrf: csrf.to_owned(),
            notice: None,
            notifications: false,
        }
    }
}

/// The signed-in caller as the frame needs it (from `me`), kept in the web session until
/// the policy version changes or the session is renewed.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Me {
    pub id: String,
    pub kind: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub organization: Option<Organization>,
    pub can_see: Vec<String>,
    pub may: May,
    pub policy_version: i64,
    /// An IANA name; `UTC` for a caller kept before time zones existed.
    #[serde(default = "utc")]
    pub time_zone: String,
    /// A language tag; the default locale for a caller kept before locales existed.
    #[serde(default = "en_us")]
    pub locale: String,
}

fn utc() -> String {
    "UTC".into()
}

fn en_us() -> String {
    "en-US".into()
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct Organization {
    pub id: String,
    pub name: Option<String>,
}

/// Why the signed-in caller could not be had.
pub(crate) enum CallerFailure {
    /// The API no longer knows the session.
    SignedOut,
    Api(ApiFailure),
    /// The web session store failed.
    Store(String),
}

/// The types the caller may read and change, as the API's policy says (`me { may }`).
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub(crate) struct May {
    pub read: Vec<String>,
    pub write: Vec<String>,
}

impl Me {
    /// Whether the policy lets the caller create or change records of type `ty` (which
    /// records: the API decides per record).
    pub fn writes(&self, ty: &str) -> bool {
        self.may.write.iter().any(|t| t == ty)
    }
    /// Manages the directory (users, keys, invitations): admins, and partner admins for
    /// their organisation.
    pub fn manages_users(&self) -> bool {
        self.writes("User")
    }
    pub fn is_supplier(&self) -> bool {
        self.kind == "SUPPLIER"
    }
    /// Whether the policy lets the caller read records of type `ty` (some of them).
    pub fn reads(&self, ty: &str) -> bool {
        self.may.read.iter().any(|t| t == ty)
    }
}

const ME_QUERY: &str = "query { me { id kind displayName email roles canSee policyVersion \
     timeZone locale may { read write } organization { id name } } }";

/// The fields of `me` the web keeps, as a selection (for mutations that answer with it).
pub(crate) const ME_FIELDS: &str = "id kind displayName email roles canSee policyVersion \
     timeZone locale may { read write } organization { id name }";

/// Why a page could not be shown, already rendered as the page that says so, in the frame
/// of the signed-in user. Handlers return [`PageResult`] and use `?` on the API's answers.
/// (Boxed: a response is large, and an error is the rare path.)
pub(crate) struct PageError(Box<Response>);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// What a page handler returns.
pub(crate) type PageResult = Result<Response, PageError>;

/// A signed-in request: its session, who the user is, and the page's area.
pub(crate) struct Ctx {
    pub web: Arc<Web>,
    pub session: WebSession,
    pub me: Me,
    pub area: Area,
    pub path: String,
    /// The notice of the change that led here (shown once).
    pub notice: Option<String>,
    /// This site as the browser reached it (`https://crm.example.com`), for links that
    /// leave the page (an invitation's).
    pub origin: String,
}

impl Ctx {
    /// Runs an operation as the signed-in user.
    pub async fn api<T: serde::de::DeserializeOwned>(
        &self,
        query: &str,
        variables: Value,
    ) -> Result<T, ApiFailure> {
        self.web
            .api
            .run(Some(&self.session.access_token), query, variables)
            .await
    }

    /// Runs an operation as the signed-in user; a failure becomes the page that explains
    /// it (not found, not allowed, signed out, …).
    pub async fn query<T: serde::de::DeserializeOwned>(
        &self,
        query: &str,
        variables: Value,
    ) -> Result<T, PageError> {
        self.api(query, variables).await.map_err(|f| self.refuse(f))
    }

    /// The page a failure shows, as the error a handler returns.
    pub fn refuse(&self, failure: ApiFailure) -> PageError {
        PageError(Box::new(self.fail(failure)))
    }

    /// The frame of this page.
    pub fn chrome(&self, title: &str) -> Chrome {
        let mut nav: Vec<(String, &'static str)> = match self.area {
            Area::App => vec![
                ("/app".into(), "Dashboard"),
                ("/app/accounts".into(), "Accounts"),
                ("/app/orders".into(), "Orders"),
                ("/app/kb".into(), "Knowledge base"),
            ],
            Area::Portal => vec![
                ("/portal".into(), "Home"),
                ("/portal/orders".into(), "Orders"),
                ("/portal/accounts".into(), "Accounts"),
                ("/portal/kb".into(), "Articles"),
            ],
        };
        if self.area == Area::App && self.me.reads("Opportunity") {
            nav.insert(2, ("/app/pipeline".into(), "Pipeline"));
        }
        if self.area == Area::App && self.me.reads("Lead") {
            nav.insert(2, ("/app/leads".into(), "Leads"));
        }
        if self.area == Area::App && self.me.reads("Case") {
            nav.insert(2, ("/app/cases".into(), "Cases"));
        }
        if self.area == Area::App && self.me.reads("Contact") {
            nav.insert(2, ("/app/contacts".into(), "Contacts"));
        }
        if self.area == Area::Portal && self.me.reads("Case") {
            nav.insert(3, ("/portal/cases".into(), "Cases"));
        }
        if self.area == Area::Portal && self.me.reads("Lead") {
            nav.insert(3, ("/portal/leads".into(), "Leads"));
        }
        if self.me.reads("DealRegistration") {
            let registrations = match self.area {
                Area::App => "/app/registrations",
                Area::Portal => "/portal/registrations",
            };
            nav.push((registrations.into(), "Registrations"));
        }
        if self.me.reads("Demand") {
            nav.push(match self.area {
                Area::App => ("/app/demand".into(), "Demand"),
                Area::Portal => ("/portal/demand".into(), "Demand"),
            });
        }
        if self.area == Area::App && self.me.writes("ShareGrant") {
            nav.push(("/app/admin/shares".into(), "Sharing"));
        }
        if self.area == Area::App && self.me.reads("DataExport") {
            nav.push(("/app/privacy".into(), "Privacy"));
        }
        if self.me.reads("AuditEntry") {
            nav.push(match self.area {
                Area::App => ("/app/audit".into(), "Audit"),
                Area::Portal => ("/portal/audit".into(), "Audit"),
            });
        }
        if self.me.manages_users() {
            nav.push(match self.area {
                Area::App => ("/app/admin".into(), "Admin"),
                Area::Portal => ("/portal/users".into(), "Users"),
            });
        }
        if self.area == Area::Portal && self.me.writes("Webhook") {
            nav.push(("/portal/webhooks".into(), "Webhooks"));
        }
        let current = nav
            .iter()
            .filter(|(href, _)| self.path == *href || self.path.starts_with(&format!("{href}/")))
            .map(|(href, _)| href.len())
            .max();
        Chrome {
            title: title.to_owned(),
            home: self.area.home(),
            is_portal: self.area == Area::Portal,
            user: Some(
                self.me
                    .display_name
                    .clone()
                    .or_else(|| self.me.email.clone())
                    .unwrap_or_else(|| self.me.id.clone()),
            ),
            organization: self.me.organization.as_ref().and_then(|o| o.name.clone()),
            nav: nav
                .into_iter()
                .map(|(href, label)| NavItem {
                    current: Some(href.len()) == current
                        && (self.path == href || self.path.starts_with(&format!("{href}/"))),
                    href,
                    label,
                })
                .collect(),
            csrf: self.session.csrf_token.clone(),
            notice: self.notice.clone(),
            notifications: self.me.reads("Notification"),
        }
    }

    /// After a change: back to `path`, whose next showing says `notice` once.
    pub async fn see_other(&self, path: &str, notice: Option<&str>) -> PageResult {
        if let Some(notice) = notice
            && let Err(e) = self.web.sessions.set_notice(&self.session, notice).await
        {
            tracing::warn!(error = %e, "a notice was not kept");
        }
        let path = if safe_location(path) {
            path
        } else {
            self.area.home()
        };
        Ok(Redirect::to(path).into_response())
    }

    /// After a form created a secret (an API key's, an invitation's link): back to
    /// `path`, whose next showing reveals it once; a reload of that page creates nothing.
    pub async fn see_other_revealing(
        &self,
        path: &str,
        notice: &str,
        what: &str,
        secret: &str,
    ) -> PageResult {
        if let Err(e) = self
            .web
            .sessions
            .keep_reveal(&self.session, what, secret)
            .await
        {
            return Err(PageError(Box::new(self.web.broken(e))));
        }
        self.see_other(path, Some(notice)).await
    }

    /// The secret a form created for this page (`what`), shown once.
    pub async fn take_reveal(&self, what: &str) -> Option<String> {
        match self.web.sessions.take_reveal(&self.session, what).await {
            Ok(secret) => secret,
            Err(e) => {
                tracing::warn!(error = %e, "a created secret could not be taken");
                None
            }
        }
    }

    /// The page a failure shows (or the sign-in page, when the session ended).
    pub fn fail(&self, failure: ApiFailure) -> Response {
        match failure {
            ApiFailure::SignedOut => to_sign_in(&self.path),
            ApiFailure::NotFound => self.error_page(
                StatusCode::NOT_FOUND,
                "Not found",
                "This record does not exist, or it is not shared with you.",
            ),
            ApiFailure::Forbidden(message) => {
                self.error_page(StatusCode::FORBIDDEN, "Not allowed", &message)
            }
            // A link or form value the API refused (a stale page cursor, say).
            invalid @ ApiFailure::Invalid(_) => self.error_page(
                StatusCode::BAD_REQUEST,
                "Not a valid request",
                &format!("{} Go back and try again.", invalid.message()),
            ),
            ApiFailure::Refused(message) => {
                self.error_page(StatusCode::CONFLICT, "Not possible", &message)
            }
            other => self.error_page(
                StatusCode::BAD_GATEWAY,
                "Something went wrong",
                &other.message(),
            ),
        }
    }

    pub fn error_page(&self, status: StatusCode, heading: &str, message: &str) -> Response {
        error_page(self.chrome(heading), status, heading, message)
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, posted: &str) -> Result<(), PageError> {
        if session::same_secret(posted, &self.session.csrf_token) {
            Ok(())
        } else {
            Err(PageError(Box::new(self.error_page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form is out of date. Go back, reload the page and try again.",
            ))))
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    message: String,
}

fn error_page(chrome: Chrome, status: StatusCode, heading: &str, message: &str) -> Response {
    render_with(
        status,
        &ErrorPage {
            chrome: Chrome {
                title: heading.to_owned(),
                ..chrome
            },
            message: message.to_owned(),
        },
    )
}

/// Renders a page; a template that fails to render is logged and shown as an error.
pub(crate) fn render(page: &impl Template) -> Response {
    render_with(StatusCode::OK, page)
}

/// A page shown again after the API refused a change answers 422 (so scripts and tests can
/// tell a refused form from a shown one); otherwise it is left as it is.
pub(crate) fn refused_if(refused: bool, mut response: Response) -> Response {
    if refused {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

fn render_with(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
            tracing::error!(%reference, error = %e, "a page did not render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(format!(
                    "<!doctype html><title>Error</title><p>Something went wrong (reference {reference}).</p>"
                )),
            )
                .into_response()
        }
    }
}

/// To the sign-in page, coming back to `next` afterwards.
pub(crate) fn to_sign_in(next: &str) -> Response {
    let next = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    Redirect::to(&format!("/signin?{next}")).into_response()
}

/// Whether `location` can be a same-site redirect target: a path, no control characters
/// (a header cannot carry them), not another host.
pub(crate) fn safe_location(location: &str) -> bool {
    location.starts_with('/')
        && !location.starts_with("//")
        && !location.contains('\\')
        && !location.chars().any(char::is_control)
        && location.len() <= 2000
}

impl Web {
    /// The signed-in request for a page of `area`, or where to send the browser instead:
    /// to sign in, or to its own area (a partner never sees `/app`, staff never the
    /// portal).
    pub(crate) async fn enter(
        self: &Arc<Self>,
        headers: &HeaderMap,
        path: &str,
        area: Area,
    ) -> Result<Ctx, Response> {
        self.enter_read(headers, path, area, None).await
    }

    /// [`Web::enter`] with the session already read for this request, when it was.
    async fn enter_read(
        self: &Arc<Self>,
        headers: &HeaderMap,
        path: &str,
        area: Area,
        read: Option<session::WebSession>,
    ) -> Result<Ctx, Response> {
        let Some(cookie) = self.session_cookie(headers) else {
            return Err(to_sign_in(path));
        };
        let found = match read {
            Some(session) => Some(session),
            None => self
                .sessions
                .find(cookie)
                .await
                .map_err(|e| self.broken(e))?,
        };
        let Some(mut session) = found else {
            return Err(to_sign_in(path));
        };
        if self.sessions.needs_refresh(&session) {
            let api = self.api.clone();
            let kind = session.kind.clone();
            let refreshed = self
                .sessions
                .refresh(&session, |refresh_token| async move {
                    refresh(&api, &refresh_token, &kind).await
                })
                .await
                .map_err(|e| self.broken(e))?;
            match refreshed {
                Some(renewed) => session = renewed,
                None => return Err(to_sign_in(path)),
            }
        }
        if Area::of_kind(&session.kind) != area {
            return Err(Redirect::to(Area::of_kind(&session.kind).home()).into_response());
        }
        let me = match self.caller(&session).await {
            Ok(me) => me,
            Err(CallerFailure::SignedOut) => {
                self.sessions.close(cookie).await.ok();
                return Err(to_sign_in(path));
            }
            Err(CallerFailure::Store(e)) => return Err(self.broken(e)),
            Err(CallerFailure::Api(other)) => {
                return Err(error_page(
                    Chrome::public("Unavailable", ""),
                    StatusCode::BAD_GATEWAY,
                    "Unavailable",
                    &other.message(),
                ));
            }
        };
        let notice = self
            .sessions
            .take_notice(&mut session)
            .await
            .map_err(|e| self.broken(e))?;
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
            })
            .unwrap_or("localhost");
        let scheme = if self.secure(headers) {
            "https"
        } else {
            "http"
        };
        Ok(Ctx {
            web: self.clone(),
            session,
            me,
            area,
            notice,
            origin: format!("{scheme}://{host}"),
            // The page itself, without its query (the navigation marks where the user is).
            path: path.split('?').next().unwrap_or(path).to_owned(),
        })
    }

    /// The signed-in caller: as the session keeps it while the policy version it was
    /// decided under is still in force, otherwise asked of the API (`me`) and kept. This
    /// is what makes a page one pass through the gateway: only its own operation.
    pub(crate) async fn caller(&self, session: &WebSession) -> Result<Me, CallerFailure> {
        let kept = session
            .caller
            .as_deref()
            .and_then(|json| serde_json::from_str::<Me>(json).ok())
            .filter(|me| {
                u64::try_from(me.policy_version).ok() == Some(crm_policies::current_version())
            });
        if let Some(me) = kept {
            return Ok(me);
        }
        #[derive(Deserialize)]
        struct Data {
            me: Option<Me>,
        }
        let me = match self
            .api
            .run::<Data>(Some(&session.access_token), ME_QUERY, json!({}))
            .await
        {
            Ok(Data { me: Some(me) }) => me,
            Ok(Data { me: None }) | Err(ApiFailure::SignedOut) => {
                return Err(CallerFailure::SignedOut);
            }
            Err(other) => return Err(CallerFailure::Api(other)),
        };
        let json = serde_json::to_string(&me).map_err(|e| CallerFailure::Store(e.to_string()))?;
        self.sessions
            .keep_caller(session, &json)
            .await
            .map_err(|e| CallerFailure::Store(e.to_string()))?;
        Ok(me)
    }

    fn broken(&self, error: impl std::fmt::Display) -> Response {
        let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        tracing::error!(%reference, %error, "the web session store failed");
        error_page(
            Chrome::public("Unavailable", ""),
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            &format!("Something went wrong on our side (reference {reference})."),
        )
    }

    fn session_cookie_name(&self, headers: &HeaderMap) -> &'static str {
        if self.secure(headers) {
            SECURE_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        }
    }

    fn form_cookie_name(&self, headers: &HeaderMap) -> &'static str {
        if self.secure(headers) {
            SECURE_FORM_COOKIE
        } else {
            FORM_COOKIE
        }
    }

    /// The session cookie's value. Over TLS only the `__Host-` name counts: a sibling
    /// subdomain can plant a plain cookie, never a `__Host-` one.
    fn session_cookie<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        session::cookie(headers, self.session_cookie_name(headers))
    }

    /// The sign-in form's CSRF cookie value, under the same rule.
    fn form_cookie<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        session::cookie(headers, self.form_cookie_name(headers))
    }

    fn secure(&self, headers: &HeaderMap) -> bool {
        self.config.secure_cookies
            || headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("https"))
    }

    /// A `Set-Cookie` value: HttpOnly, SameSite=Lax, path /, Secure over TLS; `max_age`
    /// 0 deletes it.
    fn cookie(&self, headers: &HeaderMap, name: &str, value: &str, max_age: Option<u64>) -> String {
        let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if let Some(age) = max_age {
            cookie.push_str(&format!("; Max-Age={age}"));
        }
        if self.secure(headers) {
            cookie.push_str("; Secure");
        }
        cookie
    }
}

const SESSION_FIELDS: &str = "accessToken expiresAt refreshToken me { id kind }";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionAnswer {
    access_token: String,
    expires_at: chrono::DateTime<chrono::Utc>,
    refresh_token: String,
    me: SessionMe,
}

#[derive(Deserialize)]
struct SessionMe {
    id: String,
    kind: String,
}

impl SessionAnswer {
    fn into_api_session(self) -> ApiSession {
        ApiSession {
            user_id: self.me.id,
            kind: self.me.kind.to_ascii_lowercase(),
            access_token: self.access_token,
            access_expires_at: self.expires_at,
            refresh_token: self.refresh_token,
        }
    }
}

/// Trades a refresh token through the API (`refreshSession`), as any client would.
async fn refresh(api: &Api, refresh_token: &str, kind: &str) -> Renewal {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        refresh_session: SessionAnswer,
    }
    let query = format!(
        "mutation($t: String!) {{ refreshSession(refreshToken: $t) {{ {SESSION_FIELDS} }} }}"
    );
    match api
        .run::<Data>(None, &query, json!({ "t": refresh_token }))
        .await
    {
        Ok(data) => {
            let mut session = data.refresh_session.into_api_session();
            if session.kind.is_empty() {
                session.kind = kind.to_owned();
            }
            Renewal::Renewed(session)
        }
        Err(ApiFailure::Broken(reason)) => {
            tracing::warn!(%reason, "a web session could not be refreshed now");
            Renewal::Unavailable
        }
        Err(failure) => {
            tracing::info!(reason = %failure.message(), "a web session's refresh was refused");
            Renewal::Refused
        }
    }
}

/// The messages a form shows: per field, and for the whole form.
#[derive(Default, Debug)]
pub(crate) struct FormErrors {
    pub fields: Vec<FieldError>,
    pub general: Option<String>,
}

impl FormErrors {
    pub fn from_failure(failure: ApiFailure) -> Self {
        match failure {
            ApiFailure::Invalid(errors) => {
                let (fields, whole): (Vec<_>, Vec<_>) =
                    errors.into_iter().partition(|e| !e.field.is_empty());
                Self {
                    general: (!whole.is_empty()).then(|| {
                        whole
                            .into_iter()
                            .map(|e| e.message)
                            .collect::<Vec<_>>()
                            .join("; ")
                    }),
                    fields,
                }
            }
            other => Self {
                fields: Vec::new(),
                general: Some(other.message()),
            },
        }
    }

    /// The error of one field (the API's field name, without `input.`).
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    pub fn any(&self) -> bool {
        self.general.is_some() || !self.fields.is_empty()
    }

    /// Field errors no input on the form shows, folded into the general message.
    pub fn fold_unknown(mut self, shown: &[&str]) -> Self {
        let (known, unknown): (Vec<_>, Vec<_>) = self
            .fields
            .into_iter()
            .partition(|e| shown.contains(&e.field.as_str()));
        self.fields = known;
        if !unknown.is_empty() {
            let extra = unknown
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            self.general = Some(match self.general {
                Some(general) => format!("{general}; {extra}"),
                None => extra,
            });
        }
        self
    }
}
