//! The partner portal's home (what this partner sees and why, from the policy in force)
//! and its accounts page.

use askama::Template;
use axum::response::Response;
use serde_json::{Value, json};

use super::super::{Chrome, InPortal, Signed, render};
use super::thousands;

#[derive(Template)]
#[template(path = "portal/home.html")]
struct Home {
    chrome: Chrome,
    organization: String,
    kind: String,
    can_see: Vec<String>,
    policy_version: i64,
    orders: String,
    accounts: String,
    articles: String,
    manages_users: bool,
    distributor: bool,
}

/// `/portal`: the partner's slice in plain words (the policy's own sentences for this
/// user) and how many records of each kind that is.
pub async fn home(Signed(ctx, _): Signed<InPortal>) -> Response {
    const CAP: i64 = 10_000;
    let data: Value = match ctx
        .api(
            &format!(
                "query {{ orders(first: 0) {{ totalCount(atMost: {CAP}) }} \
                 accounts(first: 0) {{ totalCount(atMost: {CAP}) }} \
                 articles(first: 0) {{ totalCount(atMost: {CAP}) }} }}"
            ),
            json!({}),
        )
        .await
    {
        Ok(data) => data,
        Err(failure) => return ctx.fail(failure),
    };
    let count = |key: &str| {
        let n = data[key]["totalCount"].as_i64().unwrap_or(0);
        if n >= CAP {
            format!("{}+", thousands(CAP))
        } else {
            thousands(n)
        }
    };
    render(&Home {
        chrome: ctx.chrome("Home"),
        organization: ctx
            .me
            .organization
            .as_ref()
            .and_then(|o| o.name.clone())
            .unwrap_or_default(),
        kind: super::words(&ctx.me.kind),
        can_see: ctx.me.can_see.clone(),
        policy_version: ctx.me.policy_version,
        orders: count("orders"),
        accounts: count("accounts"),
        articles: count("articles"),
        manages_users: ctx.me.is_partner_admin(),
        distributor: ctx.me.is_distributor(),
    })
}
