//! Webhook deliveries and imports, wired: deliveries read through this process's gateway
//! engine as each webhook's principal and hear of changes from the order and
//! knowledge-base services' events; imports write through it as each import's owner.

use std::sync::Arc;

use crm_contract::CallerKind;
use crm_contract::internal_auth::Caller;
use crm_gateway::federation::engine::{Engine, GraphQLRequest, RequestContext};
use crm_gateway::federation::server::TokenMinter;
use crm_identity::imports::Writer;
use crm_identity::webhooks::{self, Reader};
use crm_service_common::subgraph::BoxFuture;
use serde_json::Value;

/// Runs operations through the engine exactly as a request of the caller would be:
/// planned, authorized by every subgraph, field-masked, and logged under the webhook's or
/// the import owner's id. Neither spends the principal's rate budget (they are ours, and
/// an import paces itself batch by batch).
pub struct EngineReader {
    pub engine: Arc<Engine>,
    pub mint: TokenMinter,
}

impl EngineReader {
    async fn execute(
        &self,
        caller: &Caller,
        query: &str,
        variables: Value,
        purpose: &str,
        allow_mutations: bool,
    ) -> anyhow::Result<Value> {
        let request = GraphQLRequest {
            query: query.to_owned(),
            operation_name: None,
            variables: Some(variables),
        };
        let request_id = format!("{purpose}-{}", caller.subject);
        let mint = |subgraph: &str| (self.mint)(subgraph, caller);
        let context = RequestContext {
            request_id: &request_id,
            mint_token: &mint,
            allow_mutations,
            caller: CallerKind::Integrator,
            anonymous_root_fields: None,
            principal: Some(caller),
        };
        let response = self.engine.execute(&request, &context).await;
        Ok(serde_json::from_slice(&response.body)?)
    }
}

impl Reader for EngineReader {
    fn read<'a>(
        &'a self,
        caller: &'a Caller,
        query: &'a str,
        variables: Value,
    ) -> BoxFuture<'a, anyhow::Result<Value>> {
        Box::pin(self.execute(caller, query, variables, "webhook", false))
    }
}

impl Writer for EngineReader {
    fn write<'a>(
        &'a self,
        caller: &'a Caller,
        document: &'a str,
        variables: Value,
    ) -> BoxFuture<'a, anyhow::Result<Value>> {
        Box::pin(self.execute(caller, document, variables, "import", true))
    }
}

/// Starts delivering webhooks of `identity`, reading through `engine`, hearing of changes
/// on `bus` and, for gaps, from the producers' feeds at `feed_url(subgraph)`.
pub fn start(
    identity: &crm_identity::Identity,
    engine: Arc<Engine>,
    keys: &crm_service_common::internal_auth::KeyPair,
    bus: crm_service_common::events::EventBus,
    feed_url: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<webhooks::Deliveries> {
    let subgraphs = crate::Subgraphs::ours(Default::default());
    let engine = Arc::new(EngineReader {
        engine,
        mint: crate::minter(keys),
    });
    webhooks::start(identity, engine.clone(), engine, bus, |kind| {
        let producer = subgraphs
            .all
            .iter()
            .find(|s| s.service() == kind.source)
            .map(|s| s.name())
            .ok_or_else(|| anyhow::anyhow!("no subgraph serves {}", kind.source))?;
        Ok(feed_url(producer).map(|url| crate::feed_of(&url, keys, producer, kind.consumer)))
    })
}
