//! `crm bench gateway`: our gateway against a peer router on The Guild's federation
//! benchmark (its schema, data shape and deep query; see [`subgraphs`]), the question
//! being "are we faster than the peer?". Every contestant is a process of its own, started
//! fresh per round; rounds alternate the order; each request's answer is checked against
//! the first contestant's; CPU per request is read from /proc for every process involved
//! (gateway, subgraphs, the load generator), with the gateway's resident memory.

pub mod subgraphs;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use crm_gateway::federation::compose::{SubgraphSource, compose, running_sdl};

/// What `crm bench gateway` runs.
#[derive(Clone, Debug)]
pub struct GatewayBenchOptions {
    /// The `crm` binary (our gateway and, unless `subgraphs_url` is given, the subgraphs).
    pub crm_binary: PathBuf,
    /// A peer router binary: Hive Router (`hive_router`), run in its default configuration
    /// and again with its whole-request deduplication on (the benchmark's own setting).
    pub peer: Option<PathBuf>,
    /// The base URL of subgraphs already running at `/accounts`, `/inventory`,
    /// `/products` and `/reviews` (the original benchmark's subgraphs binary serves exactly
    /// these); our own are started otherwise.
    pub subgraphs_url: Option<String>,
    pub connections: usize,
    pub burst_connections: usize,
    pub rounds: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub out: PathBuf,
}

/// One process the harness started.
struct Process {
    child: tokio::process::Child,
    pid: u32,
    _dir: Option<tempfile::TempDir>,
}

impl Process {
    fn spawn(
        mut command: tokio::process::Command,
        dir: Option<tempfile::TempDir>,
    ) -> anyhow::Result<Self> {
        command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let child = command.spawn().context("starting a benchmark process")?;
        let pid = child.id().context("the child's pid")?;
        Ok(Self {
            child,
            pid,
            _dir: dir,
        })
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A router under test.
#[derive(Clone, Debug)]
struct Contestant {
    label: String,
    kind: ContestantKind,
}

#[derive(Clone, Debug)]
enum ContestantKind {
    /// `crm gateway`; `shared` leaves identical in-flight queries sharing one execution.
    Ours { shared: bool },
    /// Hive Router with one of its deduplication settings.
    Hive { binary: PathBuf, dedupe: HiveDedupe },
}

/// Hive Router's deduplication: of identical in-flight subgraph requests (its default),
/// also of whole client requests (the benchmark's own setting), or none.
#[derive(Clone, Copy, Debug)]
enum HiveDedupe {
    Default,
    Router,
    Off,
}

impl Contestant {
    fn start(&self, crm: &Path, supergraph: &Path, port: u16) -> anyhow::Result<Process> {
        match &self.kind {
            ContestantKind::Ours { shared } => {
                let dir = tempfile::tempdir()?;
                let mut command = tokio::process::Command::new(crm);
                if !shared {
                    command.env("CRM_NO_SHARED_QUERIES", "true");
                }
                command
                    .arg("gateway")
                    .arg("--supergraph")
                    .arg(supergraph)
                    .arg("--listen")
                    .arg(format!("127.0.0.1:{port}"))
                    .env("CRM_DATA_DIR", dir.path())
                    .env("CRM_RATE_LIMITS", crate::RATE_LIMITS_NOT_REACHED)
                    .env_remove("DATABASE_URL")
                    .env_remove("REDIS_URL")
                    .env("RUST_LOG", "warn");
                Process::spawn(command, Some(dir))
            }
            ContestantKind::Hive { binary, dedupe } => {
                let dir = tempfile::tempdir()?;
                let config = match dedupe {
                    HiveDedupe::Default => None,
                    HiveDedupe::Router => {
                        Some("traffic_shaping:\n  router:\n    dedupe:\n      enabled: true\n")
                    }
                    HiveDedupe::Off => {
                        Some("traffic_shaping:\n  all:\n    dedupe_enabled: false\n")
                    }
                };
                if let Some(config) = config {
                    std::fs::write(dir.path().join("router.config.yaml"), config)?;
                }
                let mut command = tokio::process::Command::new(binary);
                command
                    .current_dir(dir.path())
                    .env("PORT", port.to_string())
                    .env("HOST", "127.0.0.1")
                    .env("SUPERGRAPH_FILE_PATH", supergraph)
                    .env("LOG_LEVEL", "error");
                Process::spawn(command, Some(dir))
            }
        }
    }
}

/// What one measured stretch of load gave.
#[derive(Clone, Debug, Default)]
struct Load {
    requests: usize,
    wrong: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    first_wrong: Option<String>,
}

impl Load {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A percentile of the latencies (sorted when the load ended).
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index.min(self.latencies.len() - 1)]
    }
}

/// Whether an answer is the expected one: the same bytes, or the same JSON.
fn is_expected(body: &[u8], expected: &[u8], expected_json: &serde_json::Value) -> bool {
    body == expected
        || serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| &v == expected_json)
}

/// `connections` clients, each on its own connection, sending `body` back to back for
/// `duration`; every answer is checked.
async fn load(
    url: &str,
    body: Arc<Vec<u8>>,
    expected: Arc<(Vec<u8>, serde_json::Value)>,
    connections: usize,
    duration: Duration,
) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        let (url, body, expected, stop) =
            (url.to_owned(), body.clone(), expected.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Load::default();
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let answer = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.as_ref().clone())
                    .send()
                    .await;
                let ok = match answer {
                    Ok(response) if response.status().is_success() => {
                        match response.bytes().await {
                            Ok(bytes) if is_expected(&bytes, &expected.0, &expected.1) => true,
                            Ok(bytes) => {
                                out.first_wrong.get_or_insert_with(|| {
                                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                                        .into_owned()
                                });
                                false
                            }
                            Err(e) => {
                                out.first_wrong.get_or_insert(e.to_string());
                                false
                            }
                        }
                    }
                    Ok(response) => {
                        out.first_wrong
                            .get_or_insert(format!("HTTP {}", response.status()));
                        false
                    }
                    Err(e) => {
                        out.first_wrong.get_or_insert(e.to_string());
                        false
                    }
                };
                out.requests += 1;
                if ok {
                    out.latencies.push(sent.elapsed());
                } else {
                    out.wrong += 1;
                }
            }
            out
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Load::default();
    for task in tasks {
        if let Ok(part) = task.await {
            total.requests += part.requests;
            total.wrong += part.wrong;
            total.latencies.extend(part.latencies);
            if total.first_wrong.is_none() {
                total.first_wrong = part.first_wrong;
            }
        }
    }
    total.elapsed = started.elapsed();
    total.latencies.sort_unstable();
    total
}

/// One contestant's round.
#[derive(Clone, Debug)]
struct Round {
    label: String,
    rps: f64,
    p50: Duration,
    p99: Duration,
    wrong: usize,
    /// CPU per request of the gateway, the subgraphs and the load generator.
    gateway_cpu: Duration,
    subgraphs_cpu: Option<Duration>,
    loader_cpu: Duration,
    rss: (f64, f64),
}

async fn wait_ready(client: &reqwest::Client, url: &str, body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let started = Instant::now();
    loop {
        if let Ok(r) = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            && r.status().is_success()
            && let Ok(bytes) = r.bytes().await
            && !bytes.is_empty()
        {
            return Ok(bytes.to_vec());
        }
        if started.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("{url} did not answer in 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Composes the supergraph of the subgraphs at `base` (ours: their SDL from the code;
/// others: asked for `_service { sdl }`).
async fn supergraph(base: &str, ours: bool) -> anyhow::Result<String> {
    let mut sources = Vec::new();
    for (name, own_sdl) in subgraphs::GuildSubgraphs::default().sdls() {
        let url = format!("{base}/{name}");
        let sdl = if ours {
            own_sdl
        } else {
            running_sdl(&url).await?
        };
        sources.push(SubgraphSource {
            name: name.to_owned(),
            sdl,
            url,
        });
    }
    Ok(compose(&sources)?)
}

/// Serves the benchmark's subgraphs (`crm bench subgraphs`).
pub async fn serve_subgraphs(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(addr = %listener.local_addr()?, "benchmark subgraphs listening");
    axum::serve(listener, subgraphs::GuildSubgraphs::default().router()).await?;
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub async fn run(options: GatewayBenchOptions) -> anyhow::Result<()> {
    // The subgraphs: ours in a process of their own, or the ones given.
    let (base, subgraph_process) = match &options.subgraphs_url {
        Some(url) => (url.trim_end_matches('/').to_owned(), None),
        None => {
            let port = free_port()?;
            let mut command = tokio::process::Command::new(&options.crm_binary);
            command
                .arg("bench")
                .arg("subgraphs")
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .env("RUST_LOG", "warn");
            let process = Process::spawn(command, None)?;
            let base = format!("http://127.0.0.1:{port}");
            let client = reqwest::Client::new();
            let started = Instant::now();
            while client.get(format!("{base}/health")).send().await.is_err() {
                anyhow::ensure!(
                    started.elapsed() < Duration::from_secs(30),
                    "the benchmark subgraphs did not start"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (base, Some(process))
        }
    };
    let subgraph_pid = subgraph_process.as_ref().map(|p| p.pid);
    let sdl = supergraph(&base, options.subgraphs_url.is_none()).await?;
    let dir = tempfile::tempdir()?;
    let supergraph_path = dir.path().join("supergraph.graphql");
    std::fs::write(&supergraph_path, &sdl)?;

    let mut contestants = vec![Contestant {
        label: "crm gateway".into(),
        kind: ContestantKind::Ours { shared: true },
    }];
    if let Some(peer) = &options.peer {
        for (label, dedupe) in [
            ("Hive Router (default)", HiveDedupe::Default),
            ("Hive Router (router dedupe)", HiveDedupe::Router),
        ] {
            contestants.push(Contestant {
                label: label.into(),
                kind: ContestantKind::Hive {
                    binary: peer.clone(),
                    dedupe,
                },
            });
        }
    }
    // Without any sharing of identical work: the engines alone.
    contestants.push(Contestant {
        label: "crm gateway (no sharing)".into(),
        kind: ContestantKind::Ours { shared: false },
    });
    if let Some(peer) = &options.peer {
        contestants.push(Contestant {
            label: "Hive Router (no dedupe)".into(),
            kind: ContestantKind::Hive {
                binary: peer.clone(),
                dedupe: HiveDedupe::Off,
            },
        });
    }
    let body = Arc::new(serde_json::to_vec(&serde_json::json!({
        "query": subgraphs::QUERY,
        "operationName": "TestQuery",
    }))?);
    let client = reqwest::Client::new();
    let mut reference: Option<serde_json::Value> = None;
    let mut differences = Vec::new();
    let mut rounds: Vec<Round> = Vec::new();
    let mut bursts: Vec<(String, Load)> = Vec::new();
    for round in 0..options.rounds {
        let mut order: Vec<&Contestant> = contestants.iter().collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for contestant in order {
            let port = free_port()?;
            let url = format!("http://127.0.0.1:{port}/graphql");
            let process = contestant.start(&options.crm_binary, &supergraph_path, port)?;
            let first = wait_ready(&client, &url, &body).await?;
            let first_json: serde_json::Value =
                serde_json::from_slice(&first).with_context(|| {
                    format!("{} answered with something not JSON", contestant.label)
                })?;
            anyhow::ensure!(
                first_json.get("errors").is_none(),
                "{} answered with errors: {}",
                contestant.label,
                String::from_utf8_lossy(&first[..first.len().min(500)])
            );
            match &reference {
                None => reference = Some(first_json.clone()),
                Some(expected) if *expected != first_json => {
                    differences.push(contestant.label.clone())
                }
                Some(_) => {}
            }
            let expected = Arc::new((first, reference.clone().unwrap_or(first_json)));
            let _ = load(
                &url,
                body.clone(),
                expected.clone(),
                options.connections,
                options.warmup,
            )
            .await;
            // CPU used so far by the gateway, the subgraphs and this load generator.
            let cpu_times = || {
                (
                    crate::bench::cpu_time(Some(process.pid)),
                    crate::bench::cpu_time(subgraph_pid),
                    crate::bench::cpu_time(None),
                )
            };
            let before = cpu_times();
            let measured = load(
                &url,
                body.clone(),
                expected.clone(),
                options.connections,
                options.duration,
            )
            .await;
            let after = cpu_times();
            let per = |spent: Duration| spent / measured.requests.max(1) as u32;
            let rss = crate::bench::rss_mib(process.pid).unwrap_or_default();
            tracing::info!(
                contestant = %contestant.label,
                round,
                rps = measured.rps(),
                wrong = measured.wrong,
                first_wrong = measured.first_wrong.as_deref().unwrap_or(""),
                "gateway benchmark round"
            );
            rounds.push(Round {
                label: contestant.label.clone(),
                rps: measured.rps(),
                p50: measured.percentile(0.5),
                p99: measured.percentile(0.99),
                wrong: measured.wrong,
                gateway_cpu: per(after.0.saturating_sub(before.0)),
                subgraphs_cpu: subgraph_pid.map(|_| per(after.1.saturating_sub(before.1))),
                loader_cpu: per(after.2.saturating_sub(before.2)),
                rss,
            });
            // The burst: once per contestant, after its first measured round.
            if round == 0 {
                let burst = load(
                    &url,
                    body.clone(),
                    expected,
                    options.burst_connections,
                    options.duration / 2,
                )
                .await;
                bursts.push((contestant.label.clone(), burst));
            }
            process.stop().await;
        }
    }
    if let Some(process) = subgraph_process {
        process.stop().await;
    }
    let report = report(&options, &contestants, &rounds, &bursts, &differences, &sdl);
    if let Some(parent) = options.out.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    std::fs::write(&options.out, &report)
        .with_context(|| format!("writing {}", options.out.display()))?;
    tracing::info!(out = %options.out.display(), "gateway benchmark written");
    let wrong: usize = rounds.iter().map(|r| r.wrong).sum::<usize>()
        + bursts.iter().map(|(_, b)| b.wrong).sum::<usize>();
    anyhow::ensure!(
        differences.is_empty() && wrong == 0,
        "answers differ: {differences:?}, {wrong} wrong answers (see {})",
        options.out.display()
    );
    Ok(())
}

fn report(
    options: &GatewayBenchOptions,
    contestants: &[Contestant],
    rounds: &[Round],
    bursts: &[(String, Load)],
    differences: &[String],
    sdl: &str,
) -> String {
    let mut out = String::new();
    let subgraphs = match &options.subgraphs_url {
        Some(url) => format!("the subgraphs at {url}"),
        None => {
            "this repository's subgraphs to the benchmark's schema (`crm bench subgraphs`)".into()
        }
    };
    out.push_str(&format!(
        "## Gateway benchmark\n\n`crm bench gateway`: The Guild's federation benchmark query through each router, {subgraphs}; {} connections, {} rounds of {:.0} s after {:.0} s of warm-up, each router a fresh process per round, alternating order. Every answer is checked (identical bytes or identical JSON to the first router's); the supergraph has {} lines.\n\n",
        options.connections,
        options.rounds,
        options.duration.as_secs_f64(),
        options.warmup.as_secs_f64(),
        sdl.lines().count(),
    ));
    out.push_str("| router | round | RPS | p50 ms | p99 ms | wrong | gateway CPU µs/req | subgraphs CPU µs/req | load generator CPU µs/req | RSS MiB (peak) |\n|---|---|---|---|---|---|---|---|---|---|\n");
    let us = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1e6);
    let mut per_label: Vec<(String, usize)> = Vec::new();
    for r in rounds {
        let n = match per_label.iter_mut().find(|(l, _)| *l == r.label) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                per_label.push((r.label.clone(), 1));
                1
            }
        };
        out.push_str(&format!(
            "| {} | {n} | {:.0} | {} | {} | {} | {} | {} | {} | {:.1} ({:.1}) |\n",
            r.label,
            r.rps,
            ms(r.p50),
            ms(r.p99),
            r.wrong,
            us(r.gateway_cpu),
            r.subgraphs_cpu.map_or("–".into(), us),
            us(r.loader_cpu),
            r.rss.0,
            r.rss.1,
        ));
    }
    out.push_str("\nMedians over the rounds, and ours as a ratio of each peer: `crm gateway` against Hive Router with deduplication, `crm gateway (no sharing)` against Hive Router without (RPS: ours ÷ peer, higher is better; CPU and RSS: peer ÷ ours, higher is better):\n\n| router | RPS | gateway CPU µs/req | peak RSS MiB | ours vs this: RPS | CPU | RSS |\n|---|---|---|---|---|---|---|\n");
    let summary = |label: &str| {
        let of: Vec<&Round> = rounds.iter().filter(|r| r.label == label).collect();
        (
            median(of.iter().map(|r| r.rps).collect()),
            median(
                of.iter()
                    .map(|r| r.gateway_cpu.as_secs_f64() * 1e6)
                    .collect(),
            ),
            median(of.iter().map(|r| r.rss.1).collect()),
        )
    };
    for contestant in contestants {
        let counterpart = match &contestant.kind {
            ContestantKind::Ours { .. } => &contestant.label,
            ContestantKind::Hive {
                dedupe: HiveDedupe::Off,
                ..
            } => "crm gateway (no sharing)",
            ContestantKind::Hive { .. } => "crm gateway",
        };
        let ours = summary(counterpart);
        let this = summary(&contestant.label);
        out.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.1} | {:.2}× | {:.2}× | {:.2}× |\n",
            contestant.label,
            this.0,
            this.1,
            this.2,
            ours.0 / this.0.max(1e-9),
            this.1 / ours.1.max(1e-9),
            this.2 / ours.2.max(1e-9),
        ));
    }
    out.push_str(&format!(
        "\nBurst: {} connections at once for {:.0} s, per router:\n\n| router | requests | wrong | RPS | p99 ms |\n|---|---|---|---|---|\n",
        options.burst_connections,
        (options.duration / 2).as_secs_f64()
    ));
    for (label, burst) in bursts {
        out.push_str(&format!(
            "| {label} | {} | {} | {:.0} | {} |\n",
            burst.requests,
            burst.wrong,
            burst.rps(),
            ms(burst.percentile(0.99)),
        ));
    }
    if differences.is_empty() {
        out.push_str("\nEvery router's answer was identical to the first one's.\n");
    } else {
        out.push_str(&format!(
            "\n**Answers differed** from the first router's: {}.\n",
            differences.join(", ")
        ));
    }
    out
}
