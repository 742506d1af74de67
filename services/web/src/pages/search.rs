//! Global search: the box in every page's header (`/` or Ctrl+K focuses it) leads here.
//! One federated query asks for the best few of each type the caller reads (the API
//! applies the caller's policy and field rules to every type); the page groups them.

use askama::Template;
use axum::extract::Query;
use serde::Deserialize;
use serde_json::json;

use super::super::{Area, Chrome, PageResult, Side, Signed, render};
use super::param;

#[derive(Deserialize, Default)]
pub struct SearchParams {
    q: Option<String>,
}

/// One hit, as every type's section shows it: a name and a line about it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Hit {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    full_name: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    company: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    account: Option<AccountName>,
}

#[derive(Deserialize)]
struct AccountName {
    id: String,
    name: String,
}

/// Where a hit of one type opens.
#[derive(Clone, Copy)]
enum Opens {
    /// Its own page: `{base}/{id}`.
    Own(&'static str),
    /// Its account's page (`{base}/{account id}`): a portal has no page for one contact.
    Account(&'static str),
}

impl Hit {
    fn href(&self, opens: Opens) -> Option<String> {
        match opens {
            Opens::Own(base) => Some(format!("{base}/{}", self.id)),
            Opens::Account(base) => self.account.as_ref().map(|a| format!("{base}/{}", a.id)),
        }
    }

    fn label(&self) -> String {
        self.name
            .clone()
            .or_else(|| self.full_name.clone())
            .or_else(|| match (&self.first_name, &self.last_name) {
                (Some(f), Some(l)) => Some(format!("{f} {l}")),
                _ => None,
            })
            .or_else(|| self.subject.clone())
            .or_else(|| self.number.clone())
            .or_else(|| self.title.clone())
            .unwrap_or_else(|| self.id.clone())
    }
    fn detail(&self) -> String {
        [
            self.company.clone(),
            self.account.as_ref().map(|a| a.name.clone()),
            self.status.as_deref().map(super::words),
            self.stage.as_deref().map(super::words),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ")
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Hits {
    nodes: Vec<Hit>,
    total_count: i64,
    more: bool,
}

/// One type's section of the results.
struct Group {
    key: &'static str,
    heading: &'static str,
    /// Each hit with the page it opens (none when the caller may not open one).
    hits: Vec<(Hit, Option<String>)>,
    total: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    chrome: Chrome,
    q: String,
    groups: Vec<Group>,
    /// Some type had a hit.
    found: bool,
    searched: bool,
    error: Option<String>,
}

/// The types of a search, each with its fields, its policy type (the section is asked for
/// only when the caller reads the type), and its pages in the app and the portal (`None`:
/// the area has no page for one record).
struct Kind {
    key: &'static str,
    heading: &'static str,
    policy_type: &'static str,
    fields: &'static str,
    app: Option<Opens>,
    portal: Option<Opens>,
}

const KINDS: &[Kind] = &[
    Kind {
        key: "accounts",
        heading: "Accounts",
        policy_type: "Account",
        fields: "name",
        app: Some(Opens::Own("/app/accounts")),
        portal: Some(Opens::Own("/portal/accounts")),
    },
    Kind {
        key: "contacts",
        heading: "Contacts",
        policy_type: "Contact",
        fields: "firstName lastName account { id name }",
        app: Some(Opens::Own("/app/contacts")),
        portal: Some(Opens::Account("/portal/accounts")),
    },
    Kind {
        key: "leads",
        heading: "Leads",
        policy_type: "Lead",
        fields: "firstName lastName company status",
        app: Some(Opens::Own("/app/leads")),
        portal: None,
    },
    Kind {
        key: "opportunities",
        heading: "Opportunities",
        policy_type: "Opportunity",
        fields: "name stage account { id name }",
        app: Some(Opens::Own("/app/opportunities")),
        portal: None,
    },
    Kind {
        key: "cases",
        heading: "Cases",
        policy_type: "Case",
        fields: "subject status account { id name }",
        app: Some(Opens::Own("/app/cases")),
        portal: Some(Opens::Own("/portal/cases")),
    },
    Kind {
        key: "orders",
        heading: "Orders",
        policy_type: "Order",
        fields: "number status account { id name }",
        app: Some(Opens::Own("/app/orders")),
        portal: Some(Opens::Own("/portal/orders")),
    },
    Kind {
        key: "articles",
        heading: "Articles",
        policy_type: "Article",
        fields: "title status",
        app: Some(Opens::Own("/app/kb")),
        portal: Some(Opens::Own("/portal/kb")),
    },
];

/// `GET /app/search?q=` and `/portal/search?q=`.
pub async fn page<S: Side>(
    Signed(ctx, _): Signed<S>,
    Query(params): Query<SearchParams>,
) -> PageResult {
    let q = param(&params.q).unwrap_or_default();
    let kinds: Vec<&Kind> = KINDS
        .iter()
        .filter(|k| ctx.me.reads(k.policy_type))
        .filter(|k| match ctx.area {
            Area::App => k.app.is_some(),
            Area::Portal => k.portal.is_some(),
        })
        .collect();
    let title = if q.is_empty() {
        "Search".to_owned()
    } else {
        format!("Search: {q}")
    };
    if q.is_empty() || kinds.is_empty() {
        return Ok(render(&SearchPage {
            chrome: ctx.chrome(&title),
            q,
            groups: Vec::new(),
            found: false,
            searched: false,
            error: None,
        }));
    }
    let selections: String = kinds
        .iter()
        .map(|k| {
            format!(
                "{} {{ totalCount more nodes {{ id {} }} }} ",
                k.key, k.fields
            )
        })
        .collect();
    let query = format!("query($q: String!) {{ search(text: $q, first: 5) {{ {selections}}} }}");
    #[derive(Deserialize)]
    struct Data {
        search: std::collections::HashMap<String, Hits>,
    }
    let data: Result<Data, _> = ctx.api(&query, json!({ "q": q })).await;
    let (groups, error): (Vec<Group>, Option<String>) = match data {
        Ok(mut data) => (
            kinds
                .iter()
                .filter_map(|k| {
                    let hits = data.search.remove(k.key)?;
                    let opens = match ctx.area {
                        Area::App => k.app,
                        Area::Portal => k.portal,
                    }?;
                    Some(Group {
                        key: k.key,
                        heading: k.heading,
                        total: if hits.more {
                            format!("{}+", hits.total_count)
                        } else {
                            hits.total_count.to_string()
                        },
                        hits: hits
                            .nodes
                            .into_iter()
                            .map(|hit| {
                                let href = hit.href(opens);
                                (hit, href)
                            })
                            .collect(),
                    })
                })
                .collect(),
            None,
        ),
        Err(failure @ super::super::client::ApiFailure::SignedOut) => {
            return Err(ctx.refuse(failure));
        }
        Err(failure) => (Vec::new(), Some(failure.message())),
    };
    let found = groups.iter().any(|g: &Group| !g.hits.is_empty());
    Ok(render(&SearchPage {
        chrome: ctx.chrome(&title),
        q,
        found,
        groups,
        searched: true,
        error,
    }))
}
