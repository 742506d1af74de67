//! A fixed request mix through the gateway, for counting instructions under callgrind
//! (`tests/bench/instructions.sh`, which CI runs): the gateway's HTTP door and engine on a
//! single-threaded runtime in this process, the gateway benchmark's subgraphs in a child
//! process (which callgrind does not follow), and a client that writes HTTP/1.1 by hand
//! on one kept-alive connection, so that nearly every instruction counted is the
//! gateway's. The script runs it with two numbers of rounds; the difference divided by
//! the extra requests is the count per request, free of start-up.
//!
//! `cargo run -p crm-bench --example gateway_instructions -- <rounds>`

#![allow(clippy::print_stdout, clippy::expect_used)]

use std::sync::Arc;

use crm_bench::guild;
use crm_gateway::federation::compose::{SubgraphSource, compose};
use crm_gateway::federation::engine::{Engine, EngineConfig};
use crm_service_common::internal_auth::KeyPair;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The mix: the benchmark's deep query, a small one, one with variables, and one the
/// door refuses at validation.
fn mix() -> Vec<serde_json::Value> {
    vec![
        serde_json::json!({ "query": guild::subgraphs::QUERY, "operationName": "TestQuery" }),
        serde_json::json!({ "query": "{ me { id username } }" }),
        serde_json::json!({
            "query": "query($id: ID!) { user(id: $id) { name reviews { body product { name inStock } } } }",
            "variables": { "id": "2" },
        }),
        serde_json::json!({ "query": "{ users { id nickname } }" }),
    ]
}

/// One request on the connection and its whole answer (the body is read to its
/// Content-Length).
async fn exchange(stream: &mut tokio::net::TcpStream, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut received = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buffer).await.expect("read");
        assert!(n > 0, "the gateway closed the connection");
        received.extend_from_slice(&buffer[..n]);
        let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let headers = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
        let length: usize = headers
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("a content-length");
        if received.len() >= end + 4 + length {
            return received[end + 4..end + 4 + length].to_vec();
        }
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let first = args.next().unwrap_or_else(|| "10".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if first == "--subgraphs" {
        let listen = args.next().expect("an address");
        return runtime.block_on(guild::serve_subgraphs(listen.parse()?));
    }
    let rounds: usize = first.parse()?;
    runtime.block_on(async move {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut subgraphs = tokio::process::Command::new(std::env::current_exe()?)
            .arg("--subgraphs")
            .arg(format!("127.0.0.1:{port}"))
            .kill_on_drop(true)
            .spawn()?;
        let base = format!("http://127.0.0.1:{port}");
        let sources: Vec<SubgraphSource> = guild::subgraphs::GuildSubgraphs::default()
            .sdls()
            .into_iter()
            .map(|(name, sdl)| SubgraphSource {
                name: name.to_owned(),
                sdl,
                url: format!("{base}/{name}"),
            })
            .collect();
        let engine = Arc::new(Engine::new(&compose(&sources)?, EngineConfig::default())?);
        let keys = KeyPair::generate()?;
        let app = crm_gateway::federation::server::router(
            engine,
            crm_bench::door_with_limits_not_reached()?,
            crm_system::minter(&keys),
            None,
            None,
            None,
            None,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let gateway = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        // Wait for the subgraphs.
        let mut stream = loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break tokio::net::TcpStream::connect(gateway).await?;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        let bodies: Vec<Vec<u8>> = mix()
            .iter()
            .map(|b| serde_json::to_vec(b).expect("json"))
            .collect();
        let mut answered = 0usize;
        for _ in 0..rounds {
            for body in &bodies {
                let answer = exchange(&mut stream, body).await;
                assert!(
                    answer.starts_with(b"{"),
                    "{}",
                    String::from_utf8_lossy(&answer)
                );
                answered += 1;
            }
        }
        println!("{answered} requests answered");
        let _ = subgraphs.kill().await;
        Ok(())
    })
}
