//! The federation gateway: composition of subgraph SDLs into a supergraph, and the engine
//! that plans and executes client operations over the subgraphs with the Hive planner and
//! executor. `server` is its HTTP door.

pub mod compose;
pub mod engine;
pub mod metrics;
pub mod server;

use compose::{CompositionError, SubgraphSource};

/// The supergraph this product serves, as committed (`crm compose --write` writes it).
pub const COMMITTED_SUPERGRAPH: &str = include_str!("../../../schema/supergraph.graphql");

/// Our subgraphs as composition inputs: name, SDL from the code, and the URL each listens
/// on when run as its own process (`crm service …`; the all-in-one overrides them).
pub fn our_subgraphs() -> Vec<SubgraphSource> {
    vec![
        SubgraphSource {
            name: crm_account::SUBGRAPH.into(),
            sdl: crm_account::sdl(),
            url: "http://127.0.0.1:4001/graphql".into(),
        },
        SubgraphSource {
            name: crm_order_visibility::SUBGRAPH.into(),
            sdl: crm_order_visibility::sdl(),
            url: "http://127.0.0.1:4002/graphql".into(),
        },
        SubgraphSource {
            name: crm_knowledge_base::SUBGRAPH.into(),
            sdl: crm_knowledge_base::sdl(),
            url: "http://127.0.0.1:4003/graphql".into(),
        },
        SubgraphSource {
            name: crate::identity::SUBGRAPH.into(),
            sdl: crate::identity::graphql::sdl(),
            url: "http://127.0.0.1:4004/graphql".into(),
        },
    ]
}

/// Where a subgraph's SDL is committed: `schema/<service>.graphql`, the service name being
/// the subgraph name with `_` for `-` (`order-visibility` → `order_visibility`).
pub fn sdl_path(subgraph: &str) -> std::path::PathBuf {
    std::path::Path::new("schema").join(format!("{}.graphql", subgraph.replace('-', "_")))
}

/// Composes our subgraphs as the code defines them.
pub fn compose_ours() -> Result<String, CompositionError> {
    compose::compose(&our_subgraphs())
}

/// The committed supergraph, after checking it is what the code composes to: the process
/// refuses to serve a schema other than the one its subgraphs implement.
pub fn checked_supergraph() -> anyhow::Result<&'static str> {
    let composed = compose_ours()?;
    anyhow::ensure!(
        composed == COMMITTED_SUPERGRAPH,
        "schema/supergraph.graphql does not match the subgraphs this binary was built with; \
         run `cargo run --bin crm -- compose --write` and rebuild"
    );
    Ok(COMMITTED_SUPERGRAPH)
}
