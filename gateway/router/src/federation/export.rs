//! `GET /export`: any list of the public schema, streamed as CSV or JSON, page by page
//! through the engine *as the caller*, with the list's own arguments (`filter`, `orderBy`,
//! a search `text`, …) given as query parameters. Every page is an ordinary request of
//! the caller's: planned, authorized and field-masked by the subgraphs, and paid for from
//! its rate budget; so an export holds exactly the rows and fields the list would show it.
//!
//! ```text
//! GET /export?list=accounts&format=csv&filter={"tier":"GOLD"}&fields=id,name,domain
//! Authorization: Bearer …
//! ```
//!
//! The columns are the list's node type's fields that are scalars or enums (lists of them
//! joined with `; `), or those named in `fields`. A CSV cell that a spreadsheet would take
//! for a formula (`=`, `+`, `-`, `@`, a tab or a carriage return first) is written with a
//! leading `'`, so opening an export never runs what a record's text says. The first page
//! is read before the answer starts, so a refusal (an unknown list, a bad filter, no right
//! to the type, the rate limit) is an ordinary error response; a later page over the rate
//! budget waits for it (the export paces itself), and one that fails ends the body early
//! (the transfer is incomplete, never silently short).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_contract::{CallerKind, ErrorCode};
use serde_json::{Map, Value, json};

use super::engine::GraphQLRequest;
use super::server::{Server, authenticate, error, execute, request_id};
use crm_contract::{Authenticated, ClientAddress};

/// Rows per page read from the list (the lists' largest `first`).
const PAGE: i64 = 200;

/// Query parameters that are the export's own, not the list's arguments.
const OWN_PARAMETERS: &[&str] = &["list", "format", "fields"];

/// One list that can be exported.
#[derive(Clone, Debug)]
pub(crate) struct ExportList {
    /// Its arguments and their types as the schema writes them (`filter: AccountFilter`).
    arguments: HashMap<String, String>,
    /// The columns exported by default, in schema order: the node type's scalar and enum
    /// fields, and the fields of its value objects (`total.amount`).
    columns: Vec<String>,
    /// Every column that may be asked for: also a related record's scalar fields
    /// (`account.name`).
    allowed: Vec<String>,
}

/// The lists of a public schema: root query fields returning a connection (`nodes` and
/// `pageInfo`) and taking `first` and `after`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExportCatalog(HashMap<String, ExportList>);

impl ExportCatalog {
    pub(crate) fn from_sdl(sdl: &str) -> Self {
        let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
            return Self::default();
        };
        let mut leaves: Vec<String> = ["String", "Int", "Float", "Boolean", "ID"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut objects = HashMap::new();
        for definition in &document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else {
                continue;
            };
            let name = ty.node.name.node.to_string();
            match &ty.node.kind {
                TypeKind::Scalar | TypeKind::Enum(_) => leaves.push(name),
                TypeKind::Object(object) => {
                    objects
                        .entry(name)
                        .or_insert_with(Vec::new)
                        .extend(object.fields.iter().map(|f| f.node.clone()));
                }
                _ => {}
            }
        }
        let named = |ty: &Type| -> String {
            match &ty.base {
                BaseType::Named(name) => name.to_string(),
                BaseType::List(inner) => match &inner.base {
                    BaseType::Named(name) => name.to_string(),
                    BaseType::List(_) => String::new(),
                },
            }
        };
        let mut lists = HashMap::new();
        for field in objects.get("Query").into_iter().flatten() {
            let arguments: HashMap<String, String> = field
                .arguments
                .iter()
                .map(|a| (a.node.name.node.to_string(), a.node.ty.node.to_string()))
                .collect();
            if !arguments.contains_key("first") || !arguments.contains_key("after") {
                continue;
            }
            let Some(connection) = objects.get(&named(&field.ty.node)) else {
                continue;
            };
            let has = |name: &str| connection.iter().any(|f| f.name.node == name);
            if !has("pageInfo") {
                continue;
            }
            let Some(nodes) = connection.iter().find(|f| f.name.node == "nodes") else {
                continue;
            };
            let Some(node) = objects.get(&named(&nodes.ty.node)) else {
                continue;
            };
            let free = |f: &&async_graphql::parser::types::FieldDefinition| {
                f.arguments
                    .iter()
                    .all(|a| a.node.ty.node.nullable || a.node.default_value.is_some())
            };
            let leaf = |f: &async_graphql::parser::types::FieldDefinition| {
                leaves.contains(&named(&f.ty.node))
            };
            let mut columns = Vec::new();
            let mut allowed = Vec::new();
            for f in node.iter().filter(free) {
                let name = f.name.node.to_string();
                if leaf(f) {
                    columns.push(name.clone());
                    allowed.push(name);
                    continue;
                }
                // One level into an object field: its leaves are columns `field.leaf`; a
                // value object (every field a leaf, such as an amount) is exported by
                // default, others (a related record) when named.
                let Some(inner) = objects.get(&named(&f.ty.node)) else {
                    continue;
                };
                if matches!(f.ty.node.base, BaseType::List(_)) {
                    continue;
                }
                let value_object = inner.iter().all(|g| free(&g) && leaf(g));
                for g in inner.iter().filter(free).filter(|g| leaf(g)) {
                    let path = format!("{name}.{}", g.name.node);
                    if value_object {
                        columns.push(path.clone());
                    }
                    allowed.push(path);
                }
            }
            lists.insert(
                field.name.node.to_string(),
                ExportList {
                    arguments,
                    columns,
                    allowed,
                },
            );
        }
        Self(lists)
    }
}

/// The export's format.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

/// What one export reads, checked against the catalog.
struct Plan {
    list: String,
    format: Format,
    columns: Vec<String>,
    document: String,
    variables: Map<String, Value>,
}

fn plan(catalog: &ExportCatalog, params: &HashMap<String, String>) -> Result<Plan, String> {
    let list = params
        .get("list")
        .ok_or("name the list to export: ?list=accounts")?;
    let found = catalog.0.get(list).ok_or_else(|| {
        let mut names: Vec<&str> = catalog.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        format!(
            "{list:?} is not a list that can be exported ({})",
            names.join(", ")
        )
    })?;
    let format = match params.get("format").map(String::as_str) {
        None | Some("csv") => Format::Csv,
        Some("json") => Format::Json,
        Some(other) => return Err(format!("format {other:?} is not csv or json")),
    };
    let columns: Vec<String> = match params.get("fields") {
        None => found.columns.clone(),
        Some(fields) => {
            let mut columns = Vec::new();
            for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                if !found.allowed.iter().any(|c| c == field) {
                    return Err(format!(
                        "{field:?} is not a field of {list} that can be exported ({})",
                        found.allowed.join(", ")
                    ));
                }
                columns.push(field.to_owned());
            }
            columns
        }
    };
    if columns.is_empty() {
        return Err("name at least one field to export".into());
    }
    let mut declared = vec!["$first: Int".to_owned(), "$after: String".to_owned()];
    let mut passed = vec!["first: $first".to_owned(), "after: $after".to_owned()];
    let mut variables = Map::new();
    let mut given: Vec<(&String, &String)> = params
        .iter()
        .filter(|(name, _)| !OWN_PARAMETERS.contains(&name.as_str()))
        .collect();
    given.sort();
    for (name, text) in given {
        let Some(ty) = found
            .arguments
            .get(name)
            .filter(|_| !matches!(name.as_str(), "first" | "after"))
        else {
            return Err(format!("{name:?} is not an argument of {list}"));
        };
        // JSON where it parses (`{"tier":"GOLD"}`, `5`), the text itself otherwise.
        let value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()));
        declared.push(format!("${name}: {ty}"));
        passed.push(format!("{name}: ${name}"));
        variables.insert(name.clone(), value);
    }
    variables.insert("first".into(), json!(PAGE));
    let document = format!(
        "query CrmExport({}) {{ page: {list}({}) {{ nodes {{ {} }} pageInfo {{ endCursor hasNextPage }} }} }}",
        declared.join(", "),
        passed.join(", "),
        selection(&columns)
    );
    Ok(Plan {
        list: list.clone(),
        format,
        columns,
        document,
        variables,
    })
}

/// The selection of `columns` (`id`, `total.amount`, `total.currency`): `id total { amount
/// currency }`.
fn selection(columns: &[String]) -> String {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for column in columns {
        let (head, tail) = match column.split_once('.') {
            Some((head, tail)) => (head, Some(tail)),
            None => (column.as_str(), None),
        };
        let at = match out.iter().position(|(h, _)| h == head) {
            Some(at) => at,
            None => {
                out.push((head.to_owned(), Vec::new()));
                out.len() - 1
            }
        };
        if let Some(tail) = tail {
            out[at].1.push(tail.to_owned());
        }
    }
    out.into_iter()
        .map(|(head, inner)| match inner.is_empty() {
            true => head,
            false => format!("{head} {{ {} }}", inner.join(" ")),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The value at `column` (`total.amount`) of a node.
fn at<'a>(node: &'a Value, column: &str) -> &'a Value {
    column.split('.').fold(node, |value, key| &value[key])
}

/// One page read as the caller: its nodes and the cursor of the next one (`None`: last).
type Page = (Vec<Value>, Option<String>);

/// Why a page was not read: the answer's status and body, and for the rate limit, when to
/// ask again.
struct Refused {
    status: u16,
    body: Vec<u8>,
    retry_after: Option<std::time::Duration>,
}

/// How long a stream waits in all for its rate budget before it gives up.
const MOST_WAITED: std::time::Duration = std::time::Duration::from_secs(600);

/// Reads the page after `after`, or the refusal.
async fn read_page(
    server: &Server,
    who: &Authenticated,
    client: Option<ClientAddress>,
    plan: &Plan,
    after: Option<&str>,
    request_id: &str,
) -> Result<Page, Refused> {
    let mut variables = plan.variables.clone();
    variables.insert("after".into(), after.map_or(Value::Null, |a| json!(a)));
    let request = GraphQLRequest {
        query: plan.document.clone(),
        operation_name: Some("CrmExport".into()),
        variables: Some(Value::Object(variables)),
    };
    let started = std::time::Instant::now();
    let (answer, admission) =
        execute(server, who, client, &request, request_id, false, started).await;
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    let page = &body["data"]["page"];
    let failed = answer.status != 200
        || page.is_null()
        || body["errors"].as_array().is_some_and(|e| !e.is_empty());
    if failed {
        let status = if answer.status == 200 {
            400
        } else {
            answer.status
        };
        return Err(Refused {
            status,
            body: answer.body,
            retry_after: admission
                .filter(|a| !a.admitted)
                .and_then(|a| a.retry_after),
        });
    }
    let nodes = page["nodes"].as_array().cloned().unwrap_or_default();
    let next = (page["pageInfo"]["hasNextPage"] == json!(true))
        .then(|| page["pageInfo"]["endCursor"].as_str().map(str::to_owned))
        .flatten();
    Ok((nodes, next))
}

pub(crate) async fn export(
    State(server): State<Arc<Server>>,
    client: Option<axum::Extension<ClientAddress>>,
    headers: HeaderMap,
    params: Result<
        axum::extract::Query<HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Response {
    let request_id = request_id(&headers);
    let client = client.map(|axum::Extension(address)| address);
    let started = std::time::Instant::now();
    let who = match authenticate(&server, &headers, &request_id, started).await {
        Ok(who) => who,
        Err(refusal) => return refusal,
    };
    if who.kind == CallerKind::Anonymous {
        return error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "sign in to export",
            &request_id,
        );
    }
    let Ok(axum::extract::Query(params)) = params else {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "malformed query string",
            &request_id,
        );
    };
    let plan = match plan(&server.exports, &params) {
        Ok(plan) => plan,
        Err(message) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                &message,
                &request_id,
            );
        }
    };
    let first = match read_page(&server, &who, client, &plan, None, &request_id).await {
        Ok(page) => page,
        Err(refused) => {
            let mut response = (
                StatusCode::from_u16(refused.status).unwrap_or(StatusCode::BAD_REQUEST),
                [(header::CONTENT_TYPE, "application/json")],
                refused.body,
            )
                .into_response();
            if let Some(after) = refused.retry_after
                && let Ok(value) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
    };
    let (content_type, extension) = match plan.format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Json => ("application/json", "json"),
    };
    let disposition = format!("attachment; filename=\"{}.{extension}\"", plan.list);
    let state = Stream {
        server,
        who,
        client,
        plan,
        request_id: request_id.clone(),
        pending: Some(first),
        started: false,
        finished: false,
        rows_written: 0,
        waited: std::time::Duration::ZERO,
    };
    let body = Body::from_stream(futures_util::stream::unfold(state, Stream::next));
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// The body being written: the page in hand, and where the next one starts.
struct Stream {
    server: Arc<Server>,
    who: Authenticated,
    client: Option<ClientAddress>,
    plan: Plan,
    request_id: String,
    pending: Option<Page>,
    /// The header (CSV) or the opening bracket (JSON) is written.
    started: bool,
    finished: bool,
    rows_written: u64,
    /// How long it has waited for its rate budget.
    waited: std::time::Duration,
}

impl Stream {
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        if self.finished {
            return None;
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            match self.plan.format {
                Format::Csv => csv_line(&mut out, self.plan.columns.iter().map(|c| c.as_str())),
                Format::Json => out.push(b'['),
            }
        }
        let (nodes, next) = match self.pending.take() {
            Some(page) => page,
            None => {
                // Reached only with a cursor in hand (see below).
                self.finished = true;
                return None;
            }
        };
        self.write(&mut out, &nodes);
        match next {
            Some(cursor) => match self.read_after(&cursor).await {
                Ok(page) => self.pending = Some(page),
                Err(refused) => {
                    tracing::warn!(
                        request_id = %self.request_id,
                        status = refused.status,
                        body = %String::from_utf8_lossy(&refused.body),
                        "an export's page failed; its body ends early"
                    );
                    self.finished = true;
                    return Some((
                        Err(std::io::Error::other("a page of the export failed")),
                        self,
                    ));
                }
            },
            None => {
                if self.plan.format == Format::Json {
                    out.extend_from_slice(b"]\n");
                }
                self.finished = true;
            }
        }
        Some((Ok(Bytes::from(out)), self))
    }

    /// The page after `cursor`. A page over the caller's rate budget waits until the
    /// budget admits it (the stream paces itself; its pages are still paid for), up to
    /// [`MOST_WAITED`] in all.
    async fn read_after(&mut self, cursor: &str) -> Result<Page, Refused> {
        loop {
            let read = read_page(
                &self.server,
                &self.who,
                self.client,
                &self.plan,
                Some(cursor),
                &self.request_id,
            )
            .await;
            match read {
                Err(Refused {
                    retry_after: Some(wait),
                    ..
                }) if self.waited + wait <= MOST_WAITED => {
                    self.waited += wait;
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    fn write(&mut self, out: &mut Vec<u8>, nodes: &[Value]) {
        for node in nodes {
            match self.plan.format {
                Format::Csv => {
                    let cells: Vec<String> = self
                        .plan
                        .columns
                        .iter()
                        .map(|c| cell(at(node, c)))
                        .collect();
                    csv_line(out, cells.iter().map(String::as_str));
                }
                Format::Json => {
                    // Every row after the first is preceded by a comma.
                    if self.rows_written > 0 {
                        out.push(b',');
                    }
                    // The row in the selection's shape (`{"total": {"amount": …}}`).
                    let mut row = Map::new();
                    for column in &self.plan.columns {
                        let value = at(node, column).clone();
                        match column.split_once('.') {
                            None => {
                                row.insert(column.clone(), value);
                            }
                            Some((head, tail)) => {
                                let inner = row
                                    .entry(head.to_owned())
                                    .or_insert_with(|| Value::Object(Map::new()));
                                if node[head].is_null() {
                                    *inner = Value::Null;
                                } else if let Value::Object(inner) = inner {
                                    inner.insert(tail.to_owned(), value);
                                }
                            }
                        }
                    }
                    out.extend_from_slice(Value::Object(row).to_string().as_bytes());
                    out.push(b'\n');
                    self.rows_written += 1;
                }
            }
        }
    }
}

/// One CSV line of `cells` (quoted where they need it).
fn csv_line<'a>(out: &mut Vec<u8>, cells: impl Iterator<Item = &'a str>) {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if cell.contains([',', '"', '\n', '\r']) {
            out.push(b'"');
            out.extend_from_slice(cell.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(cell.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// A value as a CSV cell: text neutralised for spreadsheets, lists joined with `; `.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => neutralised(text),
        Value::Array(items) => neutralised(
            &items
                .iter()
                .map(|item| match item {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => other.to_string(),
    }
}

/// `text` as a spreadsheet shows it rather than runs it: a leading `'` before a cell that
/// starts like a formula, unless the cell is just a number (`-12.50`).
fn neutralised(text: &str) -> String {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let number = text.parse::<f64>().is_ok() && !text.contains(['e', 'E', 'i', 'I', 'n', 'N']);
    if formula && !number {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDL: &str = r#"
        enum Tier { GOLD SILVER }
        scalar DateTime
        type PageInfo { endCursor: String hasNextPage: Boolean! }
        type Account { id: ID! name: String! tier: Tier! tags: [String!]! owner: User revenue: Money updatedAt: DateTime! totalCount(atMost: Int): Int! secret(key: String!): String }
        type User { id: ID! name: String! manager: User }
        type Money { amount: String! currency: String! }
        type AccountConnection { nodes: [Account!]! pageInfo: PageInfo! }
        input AccountFilter { tier: Tier }
        type Query {
            accounts(first: Int, after: String, filter: AccountFilter, text: String): AccountConnection!
            account(id: ID!): Account
            users(first: Int): [User!]!
        }
    "#;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn lists_are_the_connections_and_their_columns_the_leaf_fields() {
        let catalog = ExportCatalog::from_sdl(SDL);
        assert_eq!(catalog.0.len(), 1);
        assert_eq!(
            catalog.0["accounts"].columns,
            [
                "id",
                "name",
                "tier",
                "tags",
                "revenue.amount",
                "revenue.currency",
                "updatedAt",
                "totalCount"
            ]
        );
        assert!(
            catalog.0["accounts"]
                .allowed
                .contains(&"owner.name".to_owned())
        );
        assert!(
            !catalog.0["accounts"]
                .allowed
                .contains(&"owner.manager".to_owned())
        );
        assert_eq!(
            selection(&[
                "id".into(),
                "revenue.amount".into(),
                "owner.name".into(),
                "revenue.currency".into()
            ]),
            "id revenue { amount currency } owner { name }"
        );
        assert_eq!(
            at(&json!({"revenue": {"amount": "1.00"}}), "revenue.amount"),
            "1.00"
        );
    }

    #[test]
    fn the_plan_passes_the_lists_arguments_and_refuses_others() {
        let catalog = ExportCatalog::from_sdl(SDL);
        let plan = plan(
            &catalog,
            &params(&[
                ("list", "accounts"),
                ("filter", r#"{"tier":"GOLD"}"#),
                ("text", "acme"),
                ("fields", "name,tier"),
            ]),
        )
        .expect("a plan");
        assert_eq!(
            plan.document,
            "query CrmExport($first: Int, $after: String, $filter: AccountFilter, $text: String) { page: accounts(first: $first, after: $after, filter: $filter, text: $text) { nodes { name tier } pageInfo { endCursor hasNextPage } } }"
        );
        assert_eq!(plan.variables["filter"], json!({"tier": "GOLD"}));
        assert_eq!(plan.variables["text"], json!("acme"));
        for (bad, says) in [
            (vec![("list", "users")], "not a list"),
            (
                vec![("list", "accounts"), ("fields", "secret")],
                "\"secret\"",
            ),
            (vec![("list", "accounts"), ("colour", "red")], "\"colour\""),
            (vec![("list", "accounts"), ("after", "x")], "\"after\""),
            (vec![("list", "accounts"), ("format", "xlsx")], "xlsx"),
        ] {
            let message = plan_error(&catalog, &bad);
            assert!(message.contains(says), "{message}");
        }
    }

    fn plan_error(catalog: &ExportCatalog, pairs: &[(&str, &str)]) -> String {
        match plan(catalog, &params(pairs)) {
            Ok(_) => String::from("planned"),
            Err(message) => message,
        }
    }

    #[test]
    fn cells_that_look_like_formulas_are_neutralised_and_numbers_are_not() {
        assert_eq!(
            cell(&json!("=HYPERLINK(\"http://x\")")),
            "'=HYPERLINK(\"http://x\")"
        );
        assert_eq!(cell(&json!("+1 555")), "'+1 555");
        assert_eq!(cell(&json!("@SUM(A1)")), "'@SUM(A1)");
        assert_eq!(cell(&json!("-2+3")), "'-2+3");
        assert_eq!(cell(&json!("\tx")), "'\tx");
        assert_eq!(cell(&json!("-12.50")), "-12.50");
        assert_eq!(cell(&json!("Acme")), "Acme");
        assert_eq!(cell(&json!(["a", "=b"])), "a; =b");
        assert_eq!(cell(&json!(42)), "42");
        assert_eq!(cell(&Value::Null), "");
        let mut out = Vec::new();
        csv_line(&mut out, ["a,b", "say \"hi\"", "plain"].into_iter());
        assert_eq!(
            String::from_utf8_lossy(&out),
            "\"a,b\",\"say \"\"hi\"\"\",plain\r\n"
        );
    }
}
