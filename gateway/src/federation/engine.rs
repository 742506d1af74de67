//! The engine: one supergraph, its subgraph clients, and a bounded plan cache.
//!
//! A request goes: limits (at the door, on the raw document) → parse → validate against
//! the public schema → normalise → plan (cached by the normalised operation) → coerce
//! variables → execute (entity fetches batched by the planner) → one JSON response, with
//! partial data and path-carrying errors when a subgraph fails.

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
    /// Whether `__schema` / `__type` are answered.
    pub introspection: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            subgraph_urls: HashMap::new(),
            subgraph_timeout: Duration::from_secs(10),
            subgraph_timeouts: HashMap::new(),
            limits: OperationLimits::default(),
            plan_cache_size: 1_000,
            introspection: true,
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
}

/// The engine's answer: an HTTP status and a GraphQL JSON body.
#[derive(Debug)]
pub struct EngineResponse {
    pub status: u16,
    pub body: Vec<u8>,
    /// The error code when the request was refused before execution.
    pub refused: Option<&'static str>,
}

impl EngineResponse {
    fn refused(status: u16, code: &'static str, messages: Vec<String>) -> Self {
        let errors: Vec<_> = messages
            .into_iter()
            .map(|message| json!({ "message": message, "extensions": { "code": code } }))
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
}

pub struct Engine {
    /// The gateway's metrics (`/metrics`).
    pub metrics: super::metrics::Metrics,
    supergraph: Supergraph,
    validation: ValidationPlan,
    executors: Arc<SubgraphExecutorMap>,
    headers: Arc<HeaderRulesPlan>,
    plans: Mutex<hashlink::LruCache<u64, Arc<Prepared>>>,
    config: EngineConfig,
    subgraphs: Vec<(String, String)>,
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
        // minted for them. Nothing a client sent is forwarded.
        let mut rules = serde_json::Map::new();
        for name in endpoints.keys() {
            rules.insert(
                name.clone(),
                json!({ "request": [{ "insert": {
                    "name": "authorization",
                    "expression": format!("\"Bearer \" + string!(.request.headers.\"{}\")", token_header(name)),
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
        Ok(Self {
            metrics: Default::default(),
            supergraph,
            validation: default_rules_validation_plan(),
            executors: Arc::new(executors),
            headers: Arc::new(headers),
            plans: Mutex::new(hashlink::LruCache::new(config.plan_cache_size.max(1))),
            config,
            subgraphs,
        })
    }

    /// The subgraphs by name, with the URL the engine calls.
    pub fn subgraphs(&self) -> &[(String, String)] {
        &self.subgraphs
    }

    /// The public schema (the supergraph without federation internals) as SDL.
    pub fn public_sdl(&self) -> &str {
        &self.supergraph.public_schema.sdl
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
                "BAD_REQUEST",
                vec!["variables must be a JSON object".into()],
            );
        }
        if let Err(e) = limits::check(
            &request.query,
            request.operation_name.as_deref(),
            &variables,
            &self.config.limits,
        ) {
            return EngineResponse::refused(400, e.code(), vec![e.message()]);
        }
        let prepared = match self.prepare(&request.query, request.operation_name.as_deref()) {
            Ok(prepared) => prepared,
            Err(refusal) => return refusal,
        };
        if !context.allow_mutations && prepared.operation_kind == OperationKind::Mutation {
            return EngineResponse::refused(
                405,
                "MUTATION_OVER_GET",
                vec!["mutations must be sent as POST".into()],
            );
        }
        if prepared.operation_for_introspection.is_some() && !self.config.introspection {
            return EngineResponse::refused(
                400,
                "INTROSPECTION_DISABLED",
                vec!["introspection is disabled".into()],
            );
        }
        let mut values: HashMap<String, sonic_rs::Value> =
            match sonic_rs::from_str(&variables.to_string()) {
                Ok(values) => values,
                Err(e) => {
                    return EngineResponse::refused(
                        400,
                        "BAD_REQUEST",
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
            Err(e) => return EngineResponse::refused(400, "BAD_USER_INPUT", vec![e.to_string()]),
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
            insert(&token_header(service), &(context.mint_token)(service));
        }
        let method = http::Method::POST;
        let url = http::Uri::from_static("http://gateway.internal/graphql");
        let client_request = Arc::new(ClientRequestDetails {
            method: &method,
            url: &url,
            headers: Arc::new(headers),
            operation: OperationDetails {
                name: prepared.operation_name.as_deref(),
                query: &request.query,
                kind: prepared.operation_kind.as_str(),
            },
            jwt: Arc::new(JwtRequestDetails::Unauthenticated),
            path_params: Default::default(),
        });
        self.metrics.record_preparation(started.elapsed());
        let introspection_context = Arc::new(IntrospectionContext {
            query: prepared.operation_for_introspection.clone(),
            schema: self.supergraph.planner.consumer_schema.document.clone(),
            metadata: self.supergraph.metadata.clone(),
            variables: variable_values.clone(),
        });
        let result = execute_query_plan(QueryPlanExecutionOpts {
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
            operation_name_factory: OperationNameFactory::new(
                Arc::new(OperationNameForwardConfig::none()),
                prepared.operation_name.as_deref(),
            ),
            response_header_sink: ResponseHeaderSink::default(),
            error_masking_runtime: Arc::new(None),
            connection_fingerprint: None,
        })
        .await;
        match result {
            Ok(QueryPlanExecutionResult::Single(out)) => EngineResponse {
                status: out.status_code.as_u16(),
                body: out.body,
                refused: None,
            },
            Ok(QueryPlanExecutionResult::Stream(_)) => EngineResponse::refused(
                400,
                "BAD_REQUEST",
                vec!["subscriptions are not supported".into()],
            ),
            Err(error) => {
                tracing::error!(request_id = %context.request_id, %error, "executing a query plan failed");
                EngineResponse::refused(
                    500,
                    "INTERNAL",
                    vec![format!(
                        "the gateway failed; quote request id {}",
                        context.request_id
                    )],
                )
            }
        }
    }

    /// Parse, validate and normalise; the plan comes from the cache when this normalised
    /// operation was planned before.
    fn prepare(
        &self,
        query: &str,
        operation_name: Option<&str>,
    ) -> Result<Arc<Prepared>, EngineResponse> {
        let document = safe_parse_operation(query).map_err(|e| {
            EngineResponse::refused(400, "GRAPHQL_PARSE_FAILED", vec![e.to_string()])
        })?;
        let errors = validate(
            &self.supergraph.planner.consumer_schema.document,
            &document,
            &self.validation,
        );
        if !errors.is_empty() {
            return Err(EngineResponse::refused(
                400,
                "GRAPHQL_VALIDATION_FAILED",
                errors.into_iter().map(|e| e.message).collect(),
            ));
        }
        let normalized = normalize_operation(
            &self.supergraph.planner.supergraph,
            &document,
            operation_name,
        )
        .map_err(|e| {
            EngineResponse::refused(400, "GRAPHQL_VALIDATION_FAILED", vec![e.to_string()])
        })?;
        let key = {
            let mut hasher = DefaultHasher::new();
            normalized.operation.to_string().hash(&mut hasher);
            normalized.operation_name.hash(&mut hasher);
            hasher.finish()
        };
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
                        "QUERY_PLANNING_FAILED",
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
        });
        if let Ok(mut plans) = self.plans.lock() {
            plans.insert(key, prepared.clone());
        }
        Ok(prepared)
    }
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
