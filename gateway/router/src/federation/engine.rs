//! The engine: one supergraph, its subgraph clients, and a bounded plan cache.
//!
//! A request goes: limits (at the door, on the raw document) → parse → validate against
//! the public schema → normalise → plan (cached by the normalised operation) → coerce
//! variables → execute (entity fetches batched by the planner) → one JSON response, with
//! partial data and path-carrying errors when a subgraph fails.

use crm_contract::ErrorCode;
use crm_contract::internal_auth::Caller;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graphql_tools::validation::rules::defaults::default_rules_validation_plan;
use graphql_tools::validation::validate::{ValidationPlan, validate};
use hive_router_config::headers::HeadersConfig;
use hive_router_config::override_subgraph_urls::OverrideSubgraphUrlsConfig;
use hive_router_config::subscriptions::SupergraphSubscriptionsConfig;
use hive_router_config::traffic_shaping::{SupergraphTrafficShapingConfig, TrafficShapingConfig};
use hive_router_internal::telemetry::TelemetryContext;
use hive_router_internal::telemetry::logging::summary::{REQUEST_SUMMARY, RequestSummary};
use hive_router_internal::telemetry::traces::spans::graphql::GraphQLOperationSpan;
use hive_router_plan_executor::SubgraphExecutorMap;
use hive_router_plan_executor::execution::client_request_details::{
    ClientRequestDetails, JwtRequestDetails, OperationDetails,
};
use hive_router_plan_executor::execution::operation_name::{
    OperationNameFactory, OperationNameForwardConfig,
};
use hive_router_plan_executor::execution::plan::{
    CoerceVariablesPayload, ExecutionResultExtensions, QueryPlanExecutionOpts,
    QueryPlanExecutionResult, execute_query_plan,
};
use hive_router_plan_executor::extensions::plan::ExtensionsPlan;
use hive_router_plan_executor::headers::compile::compile_headers_plan;
use hive_router_plan_executor::headers::plan::HeaderRulesPlan;
use hive_router_plan_executor::headers::response::ResponseHeaderSink;
use hive_router_plan_executor::hooks::on_supergraph_load::{Supergraph, SupergraphOptions};
use hive_router_plan_executor::introspection::partition::partition_operation;
use hive_router_plan_executor::introspection::resolve::IntrospectionContext;
use hive_router_plan_executor::projection::plan::FieldProjectionPlan;
use hive_router_plan_executor::variables::collect_variables;
use hive_router_query_planner::ast::normalization::normalize_operation;
use hive_router_query_planner::ast::operation::OperationDefinition;
use hive_router_query_planner::ast::selection_item::SelectionItem;
use hive_router_query_planner::ast::selection_set::SelectionSet;
use hive_router_query_planner::graph::PlannerOverrideContext;
use hive_router_query_planner::planner::plan_nodes::{PlanNode, QueryPlan};
use hive_router_query_planner::planner::query_plan::QUERY_PLAN_KIND;
use hive_router_query_planner::state::supergraph_state::OperationKind;
use hive_router_query_planner::utils::cancellation::CancellationToken;
use hive_router_query_planner::utils::parsing::safe_parse_operation;
use serde_json::json;

use crate::limits::{self, OperationLimits};

/// The header a request's internal token for subgraph `name` travels in, inside the
/// engine only: header rules turn it into that subgraph's `Authorization`.
fn token_header(subgraph: &str) -> String {
    format!("x-crm-token-{subgraph}")
}

/// How the engine reaches its subgraphs and bounds its work.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Subgraph URL overrides by subgraph name (otherwise the supergraph's URLs).
    pub subgraph_urls: HashMap<String, String>,
    /// The timeout of one subgraph request.
    pub subgraph_timeout: Duration,
    /// Per-subgraph timeouts that override `subgraph_timeout`.
    pub subgraph_timeouts: HashMap<String, Duration>,
    pub limits: OperationLimits,
    /// How many plans the cache keeps (least recently used go first).
    pub plan_cache_size: usize,
    /// Identical queries of one caller in flight at once share one execution.
    pub share_inflight_queries: bool,
    /// Which callers may introspect the schema and are told close field names.
    pub discovery: Discovery,
}

pub use crm_contract::CallerKind;

/// What a caller may learn about the schema beyond what it asks: introspection
/// (`__schema`, `__type`) and "did you mean" hints on misspelt fields. Partners and
/// integrators get neither by default: the schema is the product's map, and hints are a
/// way to enumerate it without introspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovery {
    pub introspection: Vec<CallerKind>,
    pub suggestions: Vec<CallerKind>,
}

impl Default for Discovery {
    fn default() -> Self {
        // The company's staff; integrators and partners by configuration. Anonymous callers
        // of a gateway with a door reach only the sign-in operations anyway.
        let staff = vec![CallerKind::Internal];
        Self {
            introspection: staff.clone(),
            suggestions: staff,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            subgraph_urls: HashMap::new(),
            subgraph_timeout: Duration::from_secs(10),
            subgraph_timeouts: HashMap::new(),
            limits: OperationLimits::default(),
            plan_cache_size: 1_000,
            share_inflight_queries: true,
            discovery: Discovery::default(),
        }
    }
}

/// One GraphQL request as a client sent it.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphQLRequest {
    pub query: String,
    pub operation_name: Option<String>,
    #[serde(default)]
    pub variables: Option<serde_json::Value>,
}

/// Who is calling and under which request id; the engine signs what subgraphs receive.
pub struct RequestContext<'a> {
    pub request_id: &'a str,
    /// Mints the bearer token a subgraph receives (audience = that subgraph).
    pub mint_token: &'a (dyn Fn(&str) -> String + Sync),
    /// False for requests that may only read (GET): a mutation is refused with 405
    /// `MUTATION_OVER_GET`.
    pub allow_mutations: bool,
    /// Decides introspection and suggestions (`EngineConfig::discovery`).
    pub caller: CallerKind,
    /// For an anonymous caller, the root fields it may reach (the door's sign-in
    /// operations); `None` when the gateway has no door (a foreign supergraph), where every
    /// caller is anonymous and the discovery settings alone decide.
    pub anonymous_root_fields: Option<&'a [&'static str]>,
    /// Exactly who calls (everything the subgraphs learn about the caller): a query may
    /// share the answer of an identical one in flight only under the same caller. `None`:
    /// never shared.
    pub principal: Option<&'a Caller>,
}

/// The engine's answer: an HTTP status and a GraphQL JSON body.
#[derive(Clone, Debug)]
pub struct EngineResponse {
    pub status: u16,
    pub body: Vec<u8>,
    /// The error code when the request was refused before execution.
    pub refused: Option<ErrorCode>,
}

impl EngineResponse {
    pub(crate) fn refused(status: u16, code: ErrorCode, messages: Vec<String>) -> Self {
        let errors: Vec<_> = messages
            .into_iter()
            .map(|message| json!({ "message": message, "extensions": { "code": code.as_str() } }))
            .collect();
        Self {
            status,
            body: json!({ "errors": errors }).to_string().into_bytes(),
            refused: Some(code),
        }
    }
}

/// A planned operation, shared by every request with the same normalised operation.
struct Prepared {
    operation_for_plan: Arc<OperationDefinition>,
    operation_for_introspection: Option<Arc<OperationDefinition>>,
    projection_plan: Arc<Vec<FieldProjectionPlan>>,
    root_type_name: String,
    operation_kind: OperationKind,
    operation_name: Option<String>,
    plan: Arc<QueryPlan>,
    /// The subgraphs the plan calls (tokens are minted for these only).
    services: Vec<String>,
    /// The operation's root fields by name (through inline fragments), `__typename` and
    /// introspection included.
    root_fields: Vec<String>,
}

/// The field names of a root selection set, through inline fragments.
fn root_field_names(selections: &SelectionSet, out: &mut Vec<String>) {
    for item in &selections.items {
        match item {
            SelectionItem::Field(field) => out.push(field.name.clone()),
            SelectionItem::InlineFragment(fragment) => root_field_names(&fragment.selections, out),
            // Normalisation inlines named fragments; one left here is reached by name.
            SelectionItem::FragmentSpread(name) => out.push(name.clone()),
        }
    }
}

/// A document the engine has accepted before, with what it needs to skip parsing,
/// validation, normalisation and planning the next time it is sent.
struct KnownDocument {
    query: String,
    operation_name: Option<String>,
    /// The parsed document, kept when the operation declares variables: its estimated cost
    /// depends on them (page sizes), so the limits are measured again per request.
    variable_dependent: Option<async_graphql::parser::types::ExecutableDocument>,
    /// The estimated cost when it does not depend on the variables.
    cost: u64,
    prepared: Arc<Prepared>,
}

/// What makes two queries the same one: the caller, the document, the operation and the
/// variables, exactly.
#[derive(Clone, Hash, PartialEq, Eq)]
struct InflightKey {
    caller: Caller,
    query: String,
    operation_name: Option<String>,
    variables: String,
}

type InflightAnswer = tokio::sync::watch::Receiver<Option<Arc<EngineResponse>>>;

/// Removes a leader's entry from the in-flight map however the leader ends (answered,
/// timed out, cancelled), so followers never wait on a leader that is gone.
struct LeaveInflight<'a> {
    inflight: &'a Mutex<HashMap<InflightKey, InflightAnswer>>,
    key: InflightKey,
    /// The leader's own entry: a mutation may have dropped it and another leader taken
    /// the key since.
    answer: InflightAnswer,
}

impl Drop for LeaveInflight<'_> {
    fn drop(&mut self) {
        if let Ok(mut inflight) = self.inflight.lock()
            && inflight
                .get(&self.key)
                .is_some_and(|entry| entry.same_channel(&self.answer))
        {
            inflight.remove(&self.key);
        }
    }
}

pub struct Engine {
    /// The gateway's metrics (`/metrics`).
    pub metrics: super::metrics::Metrics,
    supergraph: Supergraph,
    validation: ValidationPlan,
    executors: Arc<SubgraphExecutorMap>,
    headers: Arc<HeaderRulesPlan>,
    plans: Mutex<hashlink::LruCache<u64, Arc<Prepared>>>,
    /// Documents accepted before, by a hash of their text and operation name (the text is
    /// compared on a hit).
    documents: Mutex<hashlink::LruCache<u64, Arc<KnownDocument>>>,
    /// Queries being executed, by what makes them the same; identical ones that arrive
    /// meanwhile wait for the answer instead of executing again.
    inflight: Mutex<HashMap<InflightKey, InflightAnswer>>,
    config: EngineConfig,
    subgraphs: Vec<(String, String)>,
    /// Field names (with their argument names) per public type, for suggestions.
    fields: HashMap<String, Vec<(String, Vec<String>)>>,
    /// The public schema clients validate and introspect against: the supergraph's, with
    /// the gateway's own subscriptions when it has the types they name.
    public_document: Arc<graphql_tools::static_graphql::schema::Document>,
    public_sdl: String,
    /// Whether the public schema has the gateway's subscriptions.
    serves_subscriptions: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the supergraph cannot be loaded: {0}")]
    Supergraph(String),
    #[error("the subgraph clients cannot be built: {0}")]
    Executors(String),
}

impl Engine {
    /// Loads a supergraph SDL and builds a client per subgraph.
    pub fn new(supergraph_sdl: &str, config: EngineConfig) -> Result<Self, EngineError> {
        // The executor's HTTP client needs a process-wide rustls provider; installing it
        // twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let supergraph = Supergraph::from_sdl(supergraph_sdl, SupergraphOptions::default())
            .map_err(|e| EngineError::Supergraph(e.to_string()))?;
        let mut endpoints = supergraph.planner.supergraph.subgraph_endpoint_map.clone();
        for (name, url) in &config.subgraph_urls {
            if !endpoints.contains_key(name) {
                return Err(EngineError::Supergraph(format!(
                    "a URL is configured for subgraph {name:?}, which the supergraph does not have"
                )));
            }
            endpoints.insert(name.clone(), url.clone());
        }
        let mut per_subgraph = serde_json::Map::new();
        for (name, timeout) in &config.subgraph_timeouts {
            per_subgraph.insert(
                name.clone(),
                json!({ "request_timeout": format!("{}ms", timeout.as_millis()) }),
            );
        }
        let traffic: TrafficShapingConfig = serde_json::from_value(json!({
            "all": { "request_timeout": format!("{}ms", config.subgraph_timeout.as_millis()) },
            "subgraphs": per_subgraph,
        }))
        .map_err(|e| EngineError::Executors(e.to_string()))?;
        let executors = SubgraphExecutorMap::from_http_endpoint_map(
            &endpoints,
            SupergraphTrafficShapingConfig::from(&traffic),
            OverrideSubgraphUrlsConfig::default(),
            SupergraphSubscriptionsConfig::default(),
            None,
            Arc::new(TelemetryContext::from_propagation_config(
                &Default::default(),
                &Default::default(),
            )),
            Arc::new(dashmap::DashMap::new()),
        )
        .map_err(|e| EngineError::Executors(e.to_string()))?;
        // Subgraphs receive only what the engine puts in: the request id, and the token
        // minted for them. Nothing a client sent is forwarded. (A rename, not an
        // expression: evaluating one per subgraph call cost about 2 % of the CPU.)
        let mut rules = serde_json::Map::new();
        for name in endpoints.keys() {
            rules.insert(
                name.clone(),
                json!({ "request": [{ "propagate": {
                    "named": token_header(name),
                    "rename": "authorization",
                } }] }),
            );
        }
        let headers: HeadersConfig = serde_json::from_value(json!({
            "all": { "request": [{ "propagate": { "named": "x-request-id" } }] },
            "subgraphs": rules,
        }))
        .map_err(|e| EngineError::Executors(e.to_string()))?;
        let headers =
            compile_headers_plan(&headers).map_err(|e| EngineError::Executors(e.to_string()))?;
        let mut subgraphs: Vec<(String, String)> = endpoints.into_iter().collect();
        subgraphs.sort();
        let (public_document, public_sdl, serves_subscriptions) =
            match with_subscriptions(&supergraph.planner.consumer_schema.document) {
                Some(document) => (
                    Arc::new(document),
                    format!(
                        "{}\n{}",
                        supergraph.public_schema.sdl.trim_end(),
                        super::live::SDL
                    ),
                    true,
                ),
                None => (
                    supergraph.planner.consumer_schema.document.clone(),
                    supergraph.public_schema.sdl.to_string(),
                    false,
                ),
            };
        let fields = public_fields(&public_sdl);
        Ok(Self {
            public_document,
            public_sdl,
            serves_subscriptions,
            metrics: Default::default(),
            supergraph,
            validation: default_rules_validation_plan(),
            executors: Arc::new(executors),
            headers: Arc::new(headers),
            plans: Mutex::new(hashlink::LruCache::new(config.plan_cache_size.max(1))),
            documents: Mutex::new(hashlink::LruCache::new(config.plan_cache_size.max(1))),
            inflight: Mutex::new(HashMap::new()),
            config,
            subgraphs,
            fields,
        })
    }

    /// A validation message with close names appended when it is about an unknown field
    /// or argument, as graphql-js does: `… Did you mean "name"?`.
    fn with_suggestion(&self, message: String) -> String {
        let quoted: Vec<&str> = message.split('"').skip(1).step_by(2).collect();
        let (wrong, names): (&str, Vec<&str>) = match quoted[..] {
            [field, type_name] if message.starts_with("Cannot query field") => {
                let Some(fields) = self.fields.get(type_name) else {
                    return message;
                };
                (
                    field,
                    fields.iter().map(|(name, _)| name.as_str()).collect(),
                )
            }
            [argument, path] if message.starts_with("Unknown argument") => {
                let Some((type_name, field)) = path.split_once('.') else {
                    return message;
                };
                let Some((_, arguments)) = self
                    .fields
                    .get(type_name)
                    .and_then(|fields| fields.iter().find(|(name, _)| name == field))
                else {
                    return message;
                };
                (argument, arguments.iter().map(String::as_str).collect())
            }
            _ => return message,
        };
        let close = close_names(wrong, &names);
        if close.is_empty() {
            return message;
        }
        let quoted: Vec<String> = close.iter().map(|name| format!("\"{name}\"")).collect();
        let list = match quoted.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        format!("{message} Did you mean {list}?")
    }

    /// Counts the errors of an executed response by code, and masks the gateway's own
    /// failure messages (unreachable subgraphs, malformed subgraph answers: they name
    /// internal addresses and libraries) behind their code and the request id. Errors a
    /// subgraph reported itself pass unchanged (the subgraphs mask their own internals),
    /// except for one repair: a subgraph that reports an entity's error at
    /// `["_entities", "field"]` without the entity's index (async-graphql does) gives a
    /// path no client can follow, so it is dropped; `extensions.affectedPath` still says
    /// which list of entities it concerns.
    fn mask_and_count_errors(&self, body: Vec<u8>, request_id: &str) -> Vec<u8> {
        let Ok(mut response) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return body;
        };
        let Some(errors) = response
            .get_mut("errors")
            .and_then(serde_json::Value::as_array_mut)
        else {
            return body;
        };
        let mut changed = false;
        for error in errors.iter_mut() {
            let code = error["extensions"]["code"]
                .as_str()
                .unwrap_or("UNCODED")
                .to_owned();
            self.metrics.record_response_error(&code);
            if error["path"][0] == "_entities"
                && let Some(error) = error.as_object_mut()
            {
                error.remove("path");
                changed = true;
            }
            if !is_gateway_failure(&code) {
                continue;
            }
            let service = error["extensions"]["service"]
                .as_str()
                .unwrap_or("a")
                .to_owned();
            tracing::warn!(
                %request_id,
                %code,
                subgraph = %service,
                detail = error["message"].as_str().unwrap_or(""),
                "a subgraph call failed"
            );
            error["message"] = json!(format!(
                "the {service} service could not answer; quote request id {request_id}"
            ));
            error["extensions"]["requestId"] = json!(request_id);
            changed = true;
        }
        if !changed {
            return body;
        }
        serde_json::to_vec(&response).unwrap_or(body)
    }

    /// The subgraphs by name, with the URL the engine calls.
    pub fn subgraphs(&self) -> &[(String, String)] {
        &self.subgraphs
    }

    /// The public schema (the supergraph without federation internals) as SDL.
    pub fn public_sdl(&self) -> &str {
        &self.public_sdl
    }

    /// Whether this gateway serves subscriptions (its public schema has them).
    pub fn serves_subscriptions(&self) -> bool {
        self.serves_subscriptions
    }

    /// For a streaming transport (WebSocket, SSE): the prepared subscription when the
    /// request selects one (checked against the limits and validated like any operation),
    /// `None` when it selects a query or mutation (executed once), or the refusal.
    pub fn prepare_live(
        &self,
        request: &GraphQLRequest,
        caller: CallerKind,
    ) -> Result<Option<super::live::LiveQuery>, EngineResponse> {
        let variables = match request.variables.clone().unwrap_or(serde_json::Value::Null) {
            serde_json::Value::Null => serde_json::Map::new(),
            serde_json::Value::Object(variables) => variables,
            _ => {
                return Err(EngineResponse::refused(
                    400,
                    ErrorCode::BadRequest,
                    vec!["variables must be a JSON object".into()],
                ));
            }
        };
        let operation_name = request.operation_name.as_deref();
        if let Err(e) = limits::check(
            &request.query,
            operation_name,
            &serde_json::Value::Object(variables.clone()),
            &self.config.limits,
        ) {
            return Err(EngineResponse::refused(400, e.code(), vec![e.message()]));
        }
        let document = safe_parse_operation(&request.query).map_err(|e| {
            EngineResponse::refused(400, ErrorCode::GraphqlParseFailed, vec![e.to_string()])
        })?;
        if selected_subscription(&document, operation_name).is_none() {
            return Ok(None);
        }
        let suggest = self.config.discovery.suggestions.contains(&caller);
        self.validated(&document, suggest)?;
        super::live::LiveQuery::prepare(&document, operation_name, &variables)
            .map(Some)
            .map_err(|(code, message)| EngineResponse::refused(400, code, vec![message]))
    }

    /// How many plans the cache holds.
    pub fn cached_plans(&self) -> usize {
        self.plans.lock().map(|p| p.len()).unwrap_or(0)
    }

    pub async fn execute(
        &self,
        request: &GraphQLRequest,
        context: &RequestContext<'_>,
    ) -> EngineResponse {
        self.execute_admitted(request, context, |_| std::future::ready(Ok(())))
            .await
    }

    /// [`Engine::execute`], asking `admit` with the operation's estimated cost once it is
    /// known to be valid and allowed, before anything runs (the door's rate limits): a
    /// refusal it returns is the answer.
    pub async fn execute_admitted<Admit, Admitted>(
        &self,
        request: &GraphQLRequest,
        context: &RequestContext<'_>,
        admit: Admit,
    ) -> EngineResponse
    where
        Admit: FnOnce(u64) -> Admitted,
        Admitted: std::future::Future<Output = Result<(), EngineResponse>>,
    {
        let started = std::time::Instant::now();
        let variables = request.variables.clone().unwrap_or(serde_json::Value::Null);
        let variables = if variables.is_null() {
            json!({})
        } else {
            variables
        };
        if !variables.is_object() {
            return EngineResponse::refused(
                400,
                ErrorCode::BadRequest,
                vec!["variables must be a JSON object".into()],
            );
        }
        let operation_name = request.operation_name.as_deref();
        let (prepared, cost) = match self.known_document(&request.query, operation_name) {
            Some(known) => {
                let cost = match &known.variable_dependent {
                    Some(document) => match limits::enforce(
                        document,
                        operation_name,
                        &variables,
                        &self.config.limits,
                    ) {
                        Ok(measure) => measure.cost,
                        Err(e) => return EngineResponse::refused(400, e.code(), vec![e.message()]),
                    },
                    None => known.cost,
                };
                (known.prepared.clone(), cost)
            }
            None => {
                let (document, cost) = match limits::check(
                    &request.query,
                    operation_name,
                    &variables,
                    &self.config.limits,
                ) {
                    Ok((document, measure)) => (document, measure.cost),
                    Err(e) => return EngineResponse::refused(400, e.code(), vec![e.message()]),
                };
                let suggest = self.config.discovery.suggestions.contains(&context.caller);
                let prepared = match self.prepare(&request.query, operation_name, suggest) {
                    Ok(prepared) => prepared,
                    Err(refusal) => return refusal,
                };
                self.remember_document(&request.query, operation_name, document, cost, &prepared);
                (prepared, cost)
            }
        };
        if !context.allow_mutations && prepared.operation_kind == OperationKind::Mutation {
            return EngineResponse::refused(
                405,
                ErrorCode::MutationOverGet,
                vec!["mutations must be sent as POST".into()],
            );
        }
        if context.caller == CallerKind::Anonymous
            && let Some(allowed) = context.anonymous_root_fields
            && prepared
                .root_fields
                .iter()
                .any(|f| f != "__typename" && !allowed.contains(&f.as_str()))
        {
            return EngineResponse::refused(
                401,
                ErrorCode::Unauthenticated,
                vec!["sign in first: without credentials only signing in is possible".into()],
            );
        }
        if prepared.operation_for_introspection.is_some()
            && !self
                .config
                .discovery
                .introspection
                .contains(&context.caller)
        {
            return EngineResponse::refused(
                400,
                ErrorCode::IntrospectionDisabled,
                vec!["introspection is disabled".into()],
            );
        }
        if let Err(refusal) = admit(cost).await {
            return refusal;
        }
        let variables = variables.to_string();
        if prepared.operation_kind == OperationKind::Mutation
            && let Some(caller) = context.principal
            && let Ok(mut inflight) = self.inflight.lock()
        {
            // The caller's next queries must see this write: they no longer join queries
            // that started before it.
            inflight.retain(|key, _| key.caller != *caller);
        }
        let Some(caller) = context.principal.filter(|_| {
            self.config.share_inflight_queries && prepared.operation_kind == OperationKind::Query
        }) else {
            return self
                .run(&prepared, &request.query, &variables, context, started)
                .await;
        };
        let key = InflightKey {
            caller: caller.clone(),
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables,
        };
        let waiting = {
            let Ok(mut inflight) = self.inflight.lock() else {
                return self
                    .run(&prepared, &request.query, &key.variables, context, started)
                    .await;
            };
            match inflight.get(&key) {
                Some(answer) => Err(answer.clone()),
                None => {
                    let (sender, receiver) = tokio::sync::watch::channel(None);
                    inflight.insert(key.clone(), receiver.clone());
                    Ok((sender, receiver))
                }
            }
        };
        match waiting {
            Ok((sender, answer)) => {
                let leave = LeaveInflight {
                    inflight: &self.inflight,
                    key,
                    answer,
                };
                let response = self
                    .run(
                        &prepared,
                        &request.query,
                        &leave.key.variables,
                        context,
                        started,
                    )
                    .await;
                let _ = sender.send(Some(Arc::new(response.clone())));
                response
            }
            Err(mut answer) => {
                if let Ok(shared) = answer.wait_for(Option::is_some).await
                    && let Some(shared) = shared.as_ref()
                {
                    self.metrics.record_shared();
                    return shared.as_ref().clone();
                }
                // The leader ended without an answer (cancelled): execute this one.
                self.run(&prepared, &request.query, &key.variables, context, started)
                    .await
            }
        }
    }

    /// Executes a prepared operation with its variables (JSON text).
    async fn run(
        &self,
        prepared: &Prepared,
        query: &str,
        variables: &str,
        context: &RequestContext<'_>,
        started: std::time::Instant,
    ) -> EngineResponse {
        let mut values: HashMap<String, sonic_rs::Value> = match sonic_rs::from_str(variables) {
            Ok(values) => values,
            Err(e) => {
                return EngineResponse::refused(
                    400,
                    ErrorCode::BadRequest,
                    vec![format!("variables: {e}")],
                );
            }
        };
        let variables_map = match collect_variables(
            &prepared.operation_for_plan,
            &mut values,
            &self.supergraph.metadata,
        ) {
            Ok(map) => map,
            Err(e) => {
                return EngineResponse::refused(400, ErrorCode::BadUserInput, vec![e.to_string()]);
            }
        };
        let variable_values = Arc::new(CoerceVariablesPayload { variables_map });

        let mut headers = ntex_http::HeaderMap::new();
        let mut insert = |name: &str, value: &str| {
            if let (Ok(name), Ok(value)) = (
                ntex_http::HeaderName::from_bytes(name.as_bytes()),
                ntex_http::HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        };
        insert("x-request-id", context.request_id);
        for service in &prepared.services {
            insert(
                &token_header(service),
                &format!("Bearer {}", (context.mint_token)(service)),
            );
        }
        let method = http::Method::POST;
        let url = http::Uri::from_static("http://gateway.internal/graphql");
        let client_request = Arc::new(ClientRequestDetails {
            method: &method,
            url: &url,
            headers: Arc::new(headers),
            operation: OperationDetails {
                name: prepared.operation_name.as_deref(),
                query,
                kind: prepared.operation_kind.as_str(),
            },
            jwt: Arc::new(JwtRequestDetails::Unauthenticated),
            path_params: Default::default(),
        });
        self.metrics.record_preparation(started.elapsed());
        let introspection_context = Arc::new(IntrospectionContext {
            query: prepared.operation_for_introspection.clone(),
            schema: self.public_document.clone(),
            metadata: self.supergraph.metadata.clone(),
            variables: variable_values.clone(),
        });
        // The executor notes each subgraph call's duration in this request summary; the
        // gateway's own overhead is the request's time outside those calls.
        let summary = Arc::new(RequestSummary::default());
        let execution = execute_query_plan(QueryPlanExecutionOpts {
            query_plan: &prepared.plan,
            operation_for_plan: prepared.operation_for_plan.clone(),
            projection_plan: prepared.projection_plan.clone(),
            headers_plan: self.headers.clone(),
            extensions_plan: Arc::new(ExtensionsPlan::default()),
            variable_values,
            extensions: ExecutionResultExtensions::default(),
            client_request,
            introspection_context,
            operation_type_name: prepared.root_type_name.clone(),
            operation_kind: prepared.operation_kind.clone(),
            executors: self.executors.clone(),
            jwt_auth_forwarding: None,
            graphql_error_recorder: None,
            demand_control_context: None,
            initial_errors: vec![],
            span: GraphQLOperationSpan::new(),
            plugin_req_state: None,
            // The client's operation name reaches the subgraphs as `<name>__<step>`: their
            // read logs say which operation read a record.
            operation_name_factory: OperationNameFactory::new(
                Arc::new(OperationNameForwardConfig::all()),
                prepared.operation_name.as_deref(),
            ),
            response_header_sink: ResponseHeaderSink::default(),
            error_masking_runtime: Arc::new(None),
            connection_fingerprint: None,
        });
        let result = REQUEST_SUMMARY.scope(summary.clone(), execution).await;
        match result {
            Ok(QueryPlanExecutionResult::Single(out)) => {
                let body = if out.error_count == 0 {
                    out.body
                } else {
                    self.mask_and_count_errors(out.body, context.request_id)
                };
                // The executor records calls only while its `router::request` log target
                // is enabled (the binary keeps it on); without records the overhead is
                // unknown, not the whole request.
                let recorded = summary
                    .subgraph_requests
                    .load(std::sync::atomic::Ordering::Relaxed)
                    > 0;
                if recorded || prepared.services.is_empty() {
                    let waited: Duration = summary
                        .subgraph_calls_duration
                        .lock()
                        .map(|calls| calls.values().flatten().sum())
                        .unwrap_or_default();
                    self.metrics
                        .record_overhead(started.elapsed().saturating_sub(waited));
                }
                EngineResponse {
                    status: out.status_code.as_u16(),
                    body,
                    refused: None,
                }
            }
            Ok(QueryPlanExecutionResult::Stream(_)) => EngineResponse::refused(
                400,
                ErrorCode::BadRequest,
                vec!["subscriptions are not supported".into()],
            ),
            Err(error) => {
                tracing::error!(request_id = %context.request_id, %error, "executing a query plan failed");
                EngineResponse::refused(
                    500,
                    ErrorCode::Internal,
                    vec![format!(
                        "the gateway failed; quote request id {}",
                        context.request_id
                    )],
                )
            }
        }
    }

    /// The document's preparation when this exact text and operation name were accepted
    /// before.
    fn known_document(
        &self,
        query: &str,
        operation_name: Option<&str>,
    ) -> Option<Arc<KnownDocument>> {
        let key = document_key(query, operation_name);
        let known = self.documents.lock().ok()?.get(&key).cloned()?;
        (known.query == query && known.operation_name.as_deref() == operation_name).then_some(known)
    }

    fn remember_document(
        &self,
        query: &str,
        operation_name: Option<&str>,
        document: async_graphql::parser::types::ExecutableDocument,
        cost: u64,
        prepared: &Arc<Prepared>,
    ) {
        let declares_variables = limits::select_operation(&document, operation_name)
            .map_or(true, |operation| !operation.variable_definitions.is_empty());
        let known = Arc::new(KnownDocument {
            query: query.to_owned(),
            operation_name: operation_name.map(str::to_owned),
            variable_dependent: declares_variables.then_some(document),
            cost,
            prepared: prepared.clone(),
        });
        if let Ok(mut documents) = self.documents.lock() {
            documents.insert(document_key(query, operation_name), known);
        }
    }

    /// Refuses a document that does not validate against the public schema, with close
    /// names suggested when `suggest`.
    fn validated(
        &self,
        document: &graphql_tools::static_graphql::query::Document,
        suggest: bool,
    ) -> Result<(), EngineResponse> {
        let errors = validate(&self.public_document, document, &self.validation);
        if errors.is_empty() {
            return Ok(());
        }
        Err(EngineResponse::refused(
            400,
            ErrorCode::GraphqlValidationFailed,
            errors
                .into_iter()
                .map(|e| {
                    if suggest {
                        self.with_suggestion(e.message)
                    } else {
                        e.message
                    }
                })
                .collect(),
        ))
    }

    /// Parse, validate and normalise; the plan comes from the cache when this normalised
    /// operation was planned before.
    fn prepare(
        &self,
        query: &str,
        operation_name: Option<&str>,
        suggest: bool,
    ) -> Result<Arc<Prepared>, EngineResponse> {
        let document = safe_parse_operation(query).map_err(|e| {
            EngineResponse::refused(400, ErrorCode::GraphqlParseFailed, vec![e.to_string()])
        })?;
        self.validated(&document, suggest)?;
        if selected_subscription(&document, operation_name).is_some() {
            return Err(EngineResponse::refused(
                400,
                ErrorCode::BadRequest,
                vec![SUBSCRIPTIONS_ELSEWHERE.into()],
            ));
        }
        let normalized = normalize_operation(
            &self.supergraph.planner.supergraph,
            &document,
            operation_name,
        )
        .map_err(|e| {
            EngineResponse::refused(400, ErrorCode::GraphqlValidationFailed, vec![e.to_string()])
        })?;
        let key = document_key(
            &normalized.operation.to_string(),
            normalized.operation_name.as_deref(),
        );
        if let Some(hit) = self
            .plans
            .lock()
            .ok()
            .and_then(|mut plans| plans.get(&key).cloned())
        {
            return Ok(hit);
        }
        let operation = normalized.operation;
        let operation_kind = operation
            .operation_kind
            .clone()
            .unwrap_or(OperationKind::Query);
        let mut root_fields = Vec::new();
        root_field_names(&operation.selection_set, &mut root_fields);
        let (root_type_name, projection_plan) =
            FieldProjectionPlan::from_operation(&operation, &self.supergraph.metadata);
        let root_type_name = root_type_name.to_string();
        let partitioned = partition_operation(operation);
        let operation_for_plan = Arc::new(partitioned.downstream_operation);
        let plan = if operation_for_plan.selection_set.is_empty() {
            QueryPlan {
                kind: QUERY_PLAN_KIND,
                node: None,
            }
        } else {
            self.supergraph
                .planner
                .plan_from_normalized_operation(
                    &operation_for_plan,
                    PlannerOverrideContext::default(),
                    &CancellationToken::new(),
                )
                .map_err(|e| {
                    tracing::warn!(error = %e, "planning failed");
                    EngineResponse::refused(
                        400,
                        ErrorCode::QueryPlanningFailed,
                        vec![format!("the operation cannot be planned: {e}")],
                    )
                })?
        };
        let mut services = Vec::new();
        if let Some(node) = &plan.node {
            services_of(node, &mut services);
        }
        services.sort();
        services.dedup();
        let prepared = Arc::new(Prepared {
            operation_for_plan,
            operation_for_introspection: partitioned.introspection_operation.map(Arc::new),
            projection_plan: Arc::new(projection_plan),
            root_type_name,
            operation_kind,
            operation_name: normalized.operation_name,
            plan: Arc::new(plan),
            services,
            root_fields,
        });
        if let Ok(mut plans) = self.plans.lock() {
            plans.insert(key, prepared.clone());
        }
        Ok(prepared)
    }
}

/// Where subscriptions are served (a plain POST answers once).
const SUBSCRIPTIONS_ELSEWHERE: &str = "subscriptions are served over WebSocket (graphql-transport-ws) \
     or server-sent events (POST with Accept: text/event-stream)";

/// The subscription operation `operation_name` selects in `document`, if it is one.
fn selected_subscription<'d>(
    document: &'d graphql_tools::static_graphql::query::Document,
    operation_name: Option<&str>,
) -> Option<&'d graphql_tools::static_graphql::query::Subscription> {
    use graphql_tools::parser::query::{Definition, OperationDefinition};
    let mut operations = document.definitions.iter().filter_map(|d| match d {
        Definition::Operation(op) => Some(op),
        Definition::Fragment(_) => None,
    });
    let selected = match operation_name {
        Some(name) => operations.find(|op| match op {
            OperationDefinition::Query(q) => q.name.as_deref() == Some(name),
            OperationDefinition::Mutation(m) => m.name.as_deref() == Some(name),
            OperationDefinition::Subscription(s) => s.name.as_deref() == Some(name),
            OperationDefinition::SelectionSet(_) => false,
        }),
        None => operations.next(),
    }?;
    match selected {
        OperationDefinition::Subscription(subscription) => Some(subscription),
        _ => None,
    }
}

/// The consumer schema with the gateway's subscription types, when it has every type
/// they name (a foreign supergraph may not: it then has no subscriptions).
fn with_subscriptions(
    consumer: &graphql_tools::static_graphql::schema::Document,
) -> Option<graphql_tools::static_graphql::schema::Document> {
    use graphql_tools::parser::schema::{Definition, TypeDefinition};
    let extension = graphql_tools::parser::parse_schema::<String>(super::live::SDL)
        .ok()?
        .into_static();
    let has = |name: &str| consumer.type_by_name(name).is_some();
    if !has("Order") || !has("Notification") || has("Subscription") {
        return None;
    }
    let mut document = consumer.clone();
    for definition in &mut document.definitions {
        if let Definition::SchemaDefinition(schema) = definition {
            schema.subscription = Some("Subscription".to_owned());
        }
    }
    document
        .definitions
        .extend(extension.definitions.into_iter().filter(|d| {
            matches!(
                d,
                Definition::TypeDefinition(TypeDefinition::Object(_) | TypeDefinition::Enum(_))
            )
        }));
    Some(document)
}

/// The cache key of an operation's text (as sent, or normalised) and name.
fn document_key(query: &str, operation_name: Option<&str>) -> u64 {
    let mut hasher = DefaultHasher::new();
    query.hash(&mut hasher);
    operation_name.hash(&mut hasher);
    hasher.finish()
}

/// Field names and their argument names per object and interface type of a public SDL.
fn public_fields(sdl: &str) -> HashMap<String, Vec<(String, Vec<String>)>> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
        return HashMap::new();
    };
    let mut out: HashMap<String, Vec<(String, Vec<String>)>> = HashMap::new();
    for definition in document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        let fields = match &ty.node.kind {
            TypeKind::Object(object) => &object.fields,
            TypeKind::Interface(interface) => &interface.fields,
            _ => continue,
        };
        out.entry(ty.node.name.node.to_string())
            .or_default()
            .extend(fields.iter().map(|field| {
                (
                    field.node.name.node.to_string(),
                    field
                        .node
                        .arguments
                        .iter()
                        .map(|a| a.node.name.node.to_string())
                        .collect(),
                )
            }));
    }
    out
}

/// The names close to a misspelt one, closest first (at most five): an edit distance of at
/// most 40% of the name's length, or a case-insensitive match.
fn close_names<'a>(wrong: &str, names: &[&'a str]) -> Vec<&'a str> {
    let threshold = wrong.chars().count() * 2 / 5 + 1;
    let mut scored: Vec<(usize, &str)> = names
        .iter()
        .filter_map(|name| {
            let distance = if name.eq_ignore_ascii_case(wrong) {
                0
            } else {
                edit_distance(&wrong.to_lowercase(), &name.to_lowercase())
            };
            (distance <= threshold).then_some((distance, *name))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, name)| name).collect()
}

/// Levenshtein distance, with transpositions of neighbours counting as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

/// Codes the executor gives its own failures to reach or read a subgraph (as opposed to
/// errors a subgraph answered with): their messages carry internals.
fn is_gateway_failure(code: &str) -> bool {
    code.starts_with("SUBGRAPH_")
        || code.starts_with("SUBREQUEST_")
        || matches!(
            code,
            "PROJECTION_FAILURE" | "HEADER_PROPAGATION_FAILURE" | "INTERNAL_SERVER_ERROR"
        )
}

/// The subgraphs a plan fetches from.
fn services_of(node: &PlanNode, out: &mut Vec<String>) {
    match node {
        PlanNode::Fetch(f) => out.push(f.service_name.clone()),
        PlanNode::BatchFetch(b) => out.push(b.service_name.clone()),
        PlanNode::Sequence(s) => s.nodes.iter().for_each(|n| services_of(n, out)),
        PlanNode::Parallel(p) => p.nodes.iter().for_each(|n| services_of(n, out)),
        PlanNode::Flatten(f) => services_of(&f.node, out),
        PlanNode::Condition(c) => {
            c.if_clause.iter().for_each(|n| services_of(n, out));
            c.else_clause.iter().for_each(|n| services_of(n, out));
        }
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_substitutions_and_swaps() {
        assert_eq!(edit_distance("accounts", "accounts"), 0);
        assert_eq!(edit_distance("acounts", "accounts"), 1);
        assert_eq!(
            edit_distance("acconuts", "accounts"),
            1,
            "a swap is one edit"
        );
        assert_eq!(edit_distance("orders", "order"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn close_names_are_the_near_ones_closest_first() {
        let names = ["accounts", "account", "articles", "orders"];
        assert_eq!(close_names("acounts", &names), ["accounts", "account"]);
        assert_eq!(close_names("ACCOUNT", &names), ["account", "accounts"]);
        assert!(close_names("zzzz", &names).is_empty());
    }
}
