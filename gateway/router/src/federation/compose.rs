//! Composition: subgraph SDLs → one supergraph SDL, with `graphql-composition` (MPL-2.0).
//!
//! graphql-composition 0.12 renders the root operation types without `@join__type`, and the
//! Hive planner then finds no path from the root. We add one `@join__type(graph: X)` to
//! each root type for every graph that resolves one of its fields (read back from the
//! fields' own `@join__field` directives), and check the result parses.

use std::collections::BTreeSet;

use graphql_tools::parser::schema as ast;
use hive_router_query_planner::utils::parsing::safe_parse_schema;

/// One subgraph to compose: its name (letters, digits and `-`), SDL and routing URL.
#[derive(Clone, Debug)]
pub struct SubgraphSource {
    pub name: String,
    pub sdl: String,
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CompositionError {
    #[error("subgraph {name}: {message}")]
    Ingest { name: String, message: String },
    #[error("composition failed:\n  {}", .0.join("\n  "))]
    Failed(Vec<String>),
    #[error("the composed supergraph does not parse: {0}")]
    Invalid(String),
}

/// The SDL a running subgraph gives for `{ _service { sdl } }` at `url`.
pub async fn running_sdl(url: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    let body: serde_json::Value = reqwest::Client::new()
        .post(url)
        .json(&serde_json::json!({ "query": "{ _service { sdl } }" }))
        .send()
        .await
        .with_context(|| format!("asking {url} for its SDL"))?
        .json()
        .await?;
    body["data"]["_service"]["sdl"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{url} returned no SDL: {body}"))
}

/// Composes the subgraphs into a supergraph SDL the planner accepts.
pub fn compose(subgraphs: &[SubgraphSource]) -> Result<String, CompositionError> {
    let mut ingested = graphql_composition::Subgraphs::default();
    for subgraph in subgraphs {
        ingested
            .ingest_str(&subgraph.sdl, &subgraph.name, Some(&subgraph.url))
            .map_err(|e| CompositionError::Ingest {
                name: subgraph.name.clone(),
                message: format!("{e:#}"),
            })?;
    }
    let result = graphql_composition::compose(&mut ingested);
    let errors: Vec<String> = result
        .diagnostics()
        .iter_errors()
        .map(|e| e.to_string())
        .collect();
    let federated = result.into_result().map_err(|d| {
        let mut messages: Vec<String> = d.iter_messages().map(|m| m.to_string()).collect();
        if messages.is_empty() {
            messages = errors;
        }
        CompositionError::Failed(messages)
    })?;
    let rendered = graphql_composition::render_federated_sdl(&federated)
        .map_err(|e| CompositionError::Invalid(e.to_string()))?;
    let fixed = add_root_join_types(&rendered)?;
    Ok(format!("{}\n", fixed.trim_end()))
}

/// Adds the missing `@join__type(graph: X)` to the root types.
fn add_root_join_types(supergraph: &str) -> Result<String, CompositionError> {
    let document =
        safe_parse_schema(supergraph).map_err(|e| CompositionError::Invalid(e.to_string()))?;
    let all_graphs = graphs(&document);
    let mut roots = vec![
        "Query".to_owned(),
        "Mutation".to_owned(),
        "Subscription".to_owned(),
    ];
    for definition in &document.definitions {
        if let ast::Definition::SchemaDefinition(schema) = definition {
            roots = [&schema.query, &schema.mutation, &schema.subscription]
                .into_iter()
                .flatten()
                .cloned()
                .collect();
        }
    }
    let mut out = supergraph.to_owned();
    for root in roots {
        let Some(object) = document.definitions.iter().find_map(|d| match d {
            ast::Definition::TypeDefinition(ast::TypeDefinition::Object(o)) if o.name == root => {
                Some(o)
            }
            _ => None,
        }) else {
            continue;
        };
        let mut wanted = BTreeSet::new();
        for field in &object.fields {
            let joined: Vec<String> = field
                .directives
                .iter()
                .filter(|d| d.name == "join__field")
                .filter_map(|d| enum_argument(d, "graph"))
                .collect();
            if joined.is_empty() {
                wanted.extend(all_graphs.iter().cloned());
            } else {
                wanted.extend(joined);
            }
        }
        let present: BTreeSet<String> = object
            .directives
            .iter()
            .filter(|d| d.name == "join__type")
            .filter_map(|d| enum_argument(d, "graph"))
            .collect();
        let missing: Vec<&String> = wanted.difference(&present).collect();
        if missing.is_empty() {
            continue;
        }
        let header = format!("type {root}");
        let at = find_type_header(&out, &header)
            .ok_or_else(|| CompositionError::Invalid(format!("`{header}` not found")))?;
        let directives: String = missing
            .iter()
            .map(|g| format!("\n  @join__type(graph: {g})"))
            .collect();
        out.insert_str(at + header.len(), &directives);
    }
    safe_parse_schema(&out).map_err(|e| CompositionError::Invalid(e.to_string()))?;
    Ok(out)
}

/// The values of `enum join__Graph`.
fn graphs(document: &ast::Document<'static, String>) -> Vec<String> {
    document
        .definitions
        .iter()
        .find_map(|d| match d {
            ast::Definition::TypeDefinition(ast::TypeDefinition::Enum(e))
                if e.name == "join__Graph" =>
            {
                Some(e.values.iter().map(|v| v.name.clone()).collect())
            }
            _ => None,
        })
        .unwrap_or_default()
}

fn enum_argument(directive: &ast::Directive<'static, String>, name: &str) -> Option<String> {
    directive
        .arguments
        .iter()
        .find_map(|(arg, value)| match value {
            ast::Value::Enum(v) if arg == name => Some(v.clone()),
            _ => None,
        })
}

/// The byte offset of the line that starts `header` (followed by a space, `@` or `{`).
fn find_type_header(sdl: &str, header: &str) -> Option<usize> {
    let mut offset = 0;
    for line in sdl.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix(header)
            && rest.starts_with(|c: char| c.is_whitespace() || c == '@' || c == '{')
        {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subgraph(name: &str, sdl: &str) -> SubgraphSource {
        SubgraphSource {
            name: name.into(),
            sdl: sdl.into(),
            url: format!("http://{name}.local/graphql"),
        }
    }

    const HEADER: &str = "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.3\", import: [\"@key\", \"@shareable\"])\n";

    #[test]
    fn root_types_get_a_join_type_per_contributing_graph() {
        let a = subgraph(
            "a",
            &format!(
                "{HEADER}type Query {{ users: [User!]! }}\ntype User @key(fields: \"id\") {{ id: ID! name: String }}"
            ),
        );
        let b = subgraph(
            "b-part",
            &format!(
                "{HEADER}type Query {{ orders: [Int!]! }}\ntype Mutation {{ ping: Int }}\ntype User @key(fields: \"id\") {{ id: ID! orders: [Int!]! }}"
            ),
        );
        let sdl = compose(&[a, b]).expect("composes");
        let query = &sdl[sdl.find("type Query").expect("Query")..];
        let query = &query[..query.find('{').expect("body")];
        assert!(query.contains("@join__type(graph: A)"), "{query}");
        assert!(query.contains("@join__type(graph: B_PART)"), "{query}");
        let mutation = &sdl[sdl.find("type Mutation").expect("Mutation")..];
        let mutation = &mutation[..mutation.find('{').expect("body")];
        assert!(
            mutation.contains("@join__type(graph: B_PART)") && !mutation.contains("graph: A)"),
            "{mutation}"
        );
    }

    #[test]
    fn conflicts_are_reported() {
        let a = subgraph(
            "a",
            &format!("{HEADER}type Query {{ x: Int }}\ntype Thing {{ v: Int }}"),
        );
        let b = subgraph(
            "b",
            &format!("{HEADER}type Query {{ y: Int }}\ntype Thing {{ v: Int }}"),
        );
        let error = compose(&[a, b]).expect_err("Thing.v is not shareable");
        assert!(error.to_string().contains("shareable"), "{error}");
    }
}
