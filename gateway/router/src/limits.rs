//! Operation limits checked at the door, before any planning: depth, aliases, root fields,
//! directives and an estimated cost. They are measured on the parsed document with each
//! fragment measured once (memoised), so a "fragment bomb" — fragments that spread each
//! other many times over — is refused in time proportional to the document's size, not
//! to its expansion.

use crm_contract::ErrorCode;
use std::collections::{HashMap, HashSet};

use async_graphql::Name;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::parser::{Positioned, parse_query};
use async_graphql_value::Value;

/// The limits of one operation (each a config setting with a safe default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationLimits {
    /// Nesting of fields, fragments expanded (`{ a { b } }` is 2).
    pub max_depth: usize,
    /// Aliased fields in the whole operation.
    pub max_aliases: usize,
    /// Fields selected at the root.
    pub max_root_fields: usize,
    /// Directives in the whole operation.
    pub max_directives: usize,
    /// Estimated result size: each field counts 1, times the page sizes (`first`, `last`,
    /// `limit`) of the list fields above it.
    pub max_cost: u64,
}

impl Default for OperationLimits {
    fn default() -> Self {
        Self {
            max_depth: 15,
            max_aliases: 30,
            max_root_fields: 20,
            max_directives: 50,
            max_cost: 50_000,
        }
    }
}

/// What an operation measures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Measure {
    pub depth: usize,
    pub aliases: u64,
    pub root_fields: u64,
    pub directives: u64,
    pub cost: u64,
}

/// Why an operation is refused at the door; `code()` is the stable error code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimitError {
    Syntax(String),
    NoOperation,
    UnknownOperation(String),
    OperationNameRequired,
    UnknownFragment(String),
    FragmentCycle(String),
    TooDeep { depth: usize, max: usize },
    TooManyAliases { aliases: u64, max: usize },
    TooManyRootFields { fields: u64, max: usize },
    TooManyDirectives { directives: u64, max: usize },
    TooComplex { cost: u64, max: u64 },
}

impl LimitError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Syntax(_) => ErrorCode::GraphqlParseFailed,
            Self::NoOperation | Self::UnknownOperation(_) | Self::OperationNameRequired => {
                ErrorCode::OperationNotFound
            }
            Self::UnknownFragment(_) | Self::FragmentCycle(_) => ErrorCode::GraphqlValidationFailed,
            Self::TooDeep { .. } => ErrorCode::MaxDepthExceeded,
            Self::TooManyAliases { .. } => ErrorCode::MaxAliasesExceeded,
            Self::TooManyRootFields { .. } => ErrorCode::MaxRootFieldsExceeded,
            Self::TooManyDirectives { .. } => ErrorCode::MaxDirectivesExceeded,
            Self::TooComplex { .. } => ErrorCode::MaxCostExceeded,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::Syntax(e) => format!("the query is not valid GraphQL: {e}"),
            Self::NoOperation => "the document holds no operation".into(),
            Self::UnknownOperation(name) => format!("no operation named {name:?} in the document"),
            Self::OperationNameRequired => {
                "the document holds several operations: say which with operationName".into()
            }
            Self::UnknownFragment(name) => format!("unknown fragment {name:?}"),
            Self::FragmentCycle(name) => format!("fragment {name:?} spreads itself"),
            Self::TooDeep { depth, max } => {
                format!("the operation nests {depth} levels deep; at most {max} are allowed")
            }
            Self::TooManyAliases { aliases, max } => {
                format!("the operation uses {aliases} aliases; at most {max} are allowed")
            }
            Self::TooManyRootFields { fields, max } => {
                format!("the operation selects {fields} root fields; at most {max} are allowed")
            }
            Self::TooManyDirectives { directives, max } => {
                format!("the operation uses {directives} directives; at most {max} are allowed")
            }
            Self::TooComplex { cost, max } => format!(
                "the operation's estimated cost is {cost}; at most {max} is allowed (lower `first`, or select less)"
            ),
        }
    }
}

/// Parses `query`, picks the operation to run and measures it against `limits`.
pub fn check(
    query: &str,
    operation_name: Option<&str>,
    variables: &serde_json::Value,
    limits: &OperationLimits,
) -> Result<(ExecutableDocument, Measure), LimitError> {
    let document = parse_query(query).map_err(|e| LimitError::Syntax(e.to_string()))?;
    let measure = enforce(&document, operation_name, variables, limits)?;
    Ok((document, measure))
}

/// Measures a parsed document's operation against `limits` (what [`check`] does after
/// parsing; the engine calls it again on a document it has seen, when the operation's
/// cost depends on its variables).
pub fn enforce(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &serde_json::Value,
    limits: &OperationLimits,
) -> Result<Measure, LimitError> {
    let measure = measure(document, operation_name, variables)?;
    if measure.depth > limits.max_depth {
        return Err(LimitError::TooDeep {
            depth: measure.depth,
            max: limits.max_depth,
        });
    }
    if measure.aliases > limits.max_aliases as u64 {
        return Err(LimitError::TooManyAliases {
            aliases: measure.aliases,
            max: limits.max_aliases,
        });
    }
    if measure.root_fields > limits.max_root_fields as u64 {
        return Err(LimitError::TooManyRootFields {
            fields: measure.root_fields,
            max: limits.max_root_fields,
        });
    }
    if measure.directives > limits.max_directives as u64 {
        return Err(LimitError::TooManyDirectives {
            directives: measure.directives,
            max: limits.max_directives,
        });
    }
    if measure.cost > limits.max_cost {
        return Err(LimitError::TooComplex {
            cost: measure.cost,
            max: limits.max_cost,
        });
    }
    Ok(measure)
}

/// The operation a request runs: the named one, or the only one.
pub fn select_operation<'a>(
    document: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Result<&'a OperationDefinition, LimitError> {
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), None) => Ok(&op.node),
        (DocumentOperations::Single(op), Some(_)) => Ok(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops
            .get(name)
            .map(|op| &op.node)
            .ok_or_else(|| LimitError::UnknownOperation(name.to_owned())),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops
            .values()
            .next()
            .map(|op| &op.node)
            .ok_or(LimitError::NoOperation),
        (DocumentOperations::Multiple(ops), None) if ops.is_empty() => Err(LimitError::NoOperation),
        (DocumentOperations::Multiple(_), None) => Err(LimitError::OperationNameRequired),
    }
}

/// Measures the operation a request runs.
pub fn measure(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &serde_json::Value,
) -> Result<Measure, LimitError> {
    let operation = select_operation(document, operation_name)?;
    let mut meter = Meter {
        document,
        variables,
        memo: HashMap::new(),
        visiting: HashSet::new(),
    };
    let mut m = meter.selection_set(&operation.selection_set.node)?;
    m.directives = m
        .directives
        .saturating_add(operation.directives.len() as u64);
    Ok(m)
}

struct Meter<'a> {
    document: &'a ExecutableDocument,
    variables: &'a serde_json::Value,
    memo: HashMap<Name, Measure>,
    visiting: HashSet<Name>,
}

impl Meter<'_> {
    /// The measure of a selection set; `root_fields` counts its own fields (fragments
    /// expanded), which is what the root selection set needs.
    fn selection_set(&mut self, set: &SelectionSet) -> Result<Measure, LimitError> {
        let mut total = Measure::default();
        for item in &set.items {
            let m = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let inner = self.selection_set(&field.selection_set.node)?;
                    let multiplier = self.page_size(&field.arguments);
                    Measure {
                        depth: 1 + inner.depth,
                        aliases: inner
                            .aliases
                            .saturating_add(u64::from(field.alias.is_some())),
                        root_fields: 1,
                        directives: inner
                            .directives
                            .saturating_add(field.directives.len() as u64),
                        cost: 1_u64.saturating_add(multiplier.saturating_mul(inner.cost)),
                    }
                }
                Selection::InlineFragment(fragment) => {
                    let mut inner = self.selection_set(&fragment.node.selection_set.node)?;
                    inner.directives = inner
                        .directives
                        .saturating_add(fragment.node.directives.len() as u64);
                    inner
                }
                Selection::FragmentSpread(spread) => {
                    let mut inner = self.fragment(&spread.node.fragment_name.node)?;
                    inner.directives = inner
                        .directives
                        .saturating_add(spread.node.directives.len() as u64);
                    inner
                }
            };
            total.depth = total.depth.max(m.depth);
            total.aliases = total.aliases.saturating_add(m.aliases);
            total.root_fields = total.root_fields.saturating_add(m.root_fields);
            total.directives = total.directives.saturating_add(m.directives);
            total.cost = total.cost.saturating_add(m.cost);
        }
        Ok(total)
    }

    fn fragment(&mut self, name: &Name) -> Result<Measure, LimitError> {
        if let Some(m) = self.memo.get(name) {
            return Ok(*m);
        }
        if !self.visiting.insert(name.clone()) {
            return Err(LimitError::FragmentCycle(name.to_string()));
        }
        let definition = self
            .document
            .fragments
            .get(name)
            .ok_or_else(|| LimitError::UnknownFragment(name.to_string()))?;
        let mut m = self.selection_set(&definition.node.selection_set.node)?;
        m.directives = m
            .directives
            .saturating_add(definition.node.directives.len() as u64);
        self.visiting.remove(name);
        self.memo.insert(name.clone(), m);
        Ok(m)
    }

    /// The page size a list field asks for (`first`, `last` or `limit`), 1 without one.
    fn page_size(&self, arguments: &[(Positioned<Name>, Positioned<Value>)]) -> u64 {
        arguments
            .iter()
            .filter(|(name, _)| matches!(name.node.as_str(), "first" | "last" | "limit"))
            .filter_map(|(_, value)| match &value.node {
                Value::Number(n) => n.as_u64(),
                Value::Variable(var) => self.variables.get(var.as_str()).and_then(|v| v.as_u64()),
                _ => None,
            })
            .max()
            .unwrap_or(1)
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn measure_of(query: &str) -> Measure {
        check(
            query,
            None,
            &json!({}),
            &OperationLimits {
                max_cost: u64::MAX,
                max_depth: usize::MAX,
                max_aliases: usize::MAX,
                max_root_fields: usize::MAX,
                max_directives: usize::MAX,
            },
        )
        .expect("within limits")
        .1
    }

    #[test]
    fn depth_aliases_root_fields_and_directives_count_through_fragments() {
        let m = measure_of(
            "query Q @a { x: accounts { nodes { ...F } } orders @b { id } }
             fragment F on Account { y: name z: contacts { nodes { id @c } } }",
        );
        // accounts > nodes > (F) contacts > nodes > id
        assert_eq!(
            (m.depth, m.aliases, m.root_fields, m.directives),
            (5, 3, 2, 3)
        );
    }

    #[test]
    fn the_numbers() {
        let m = measure_of("{ a { b { c } } d }");
        assert_eq!((m.depth, m.root_fields, m.cost), (3, 2, 4));
        let m = measure_of("{ x: a { y: b } a2: a { b } }");
        assert_eq!(m.aliases, 3);
        let m = measure_of("{ a @skip(if: false) { b @include(if: true) } }");
        assert_eq!(m.directives, 2);
        let m =
            measure_of("{ accounts(first: 50) { nodes { orders(first: 10) { nodes { id } } } } }");
        // accounts 1 + 50 × (nodes 1 + orders (1 + 10 × (nodes 1 + id 1)))
        assert_eq!(m.cost, 1 + 50 * (1 + 1 + 10 * 2));
        let vars = json!({ "n": 20 });
        let (_, m) = check(
            "query($n: Int) { a(first: $n) { b } }",
            None,
            &vars,
            &OperationLimits::default(),
        )
        .expect("ok");
        assert_eq!(m.cost, 1 + 20);
    }

    #[test]
    fn each_limit_refuses_with_its_code() {
        let limits = OperationLimits {
            max_depth: 2,
            max_aliases: 1,
            max_root_fields: 2,
            max_directives: 1,
            max_cost: 10,
        };
        let code = |q: &str| {
            check(q, None, &json!({}), &limits)
                .map(|_| ())
                .map_err(|e| e.code().as_str())
        };
        assert_eq!(code("{ a { b } }"), Ok(()));
        assert_eq!(code("{ a { b { c } } }"), Err("MAX_DEPTH_EXCEEDED"));
        assert_eq!(code("{ x: a y: b }"), Err("MAX_ALIASES_EXCEEDED"));
        assert_eq!(code("{ a b c }"), Err("MAX_ROOT_FIELDS_EXCEEDED"));
        assert_eq!(code("{ a @x b @y }"), Err("MAX_DIRECTIVES_EXCEEDED"));
        assert_eq!(code("{ a(first: 20) { b } }"), Err("MAX_COST_EXCEEDED"));
        assert_eq!(code("{ a "), Err("GRAPHQL_PARSE_FAILED"));
        assert_eq!(
            code("{ ...F } fragment F on Q { ...F }"),
            Err("GRAPHQL_VALIDATION_FAILED")
        );
        assert_eq!(code("{ ...Missing }"), Err("GRAPHQL_VALIDATION_FAILED"));
        assert_eq!(
            code("query A { a } query B { b }"),
            Err("OPERATION_NOT_FOUND")
        );
    }

    #[test]
    fn a_fragment_bomb_is_measured_without_expanding_it() {
        // Each level spreads the next one 10 times: 10^30 fields once expanded.
        let mut query = String::from("{ a { ...F0 } }\n");
        for level in 0..30 {
            let spreads = (0..10)
                .map(|_| format!("...F{}", level + 1))
                .collect::<Vec<_>>()
                .join(" ");
            query.push_str(&format!("fragment F{level} on A {{ {spreads} }}\n"));
        }
        query.push_str("fragment F30 on A { leaf }\n");
        let error =
            check(&query, None, &json!({}), &OperationLimits::default()).expect_err("refused");
        assert_eq!(error.code(), ErrorCode::MaxCostExceeded);
        assert!(
            matches!(error, LimitError::TooComplex { cost: u64::MAX, .. }),
            "{error:?}"
        );
    }
}
