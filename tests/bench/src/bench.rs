//! `crm bench`: the benchmark harness. It loads (or reuses) a scale world, starts what it
//! measures, runs each scenario with a warm-up and a fixed duration and concurrency, and
//! writes a markdown report: latency percentiles, requests per second and errors, the
//! ratios that show where time goes (gateway vs direct subgraph, scoped vs unscoped,
//! pushdown vs enforce-per-row), the mixed persona workload, cold start and memory, the
//! row counts measured by SQL, and the query plans of the scoped scenarios.
//!
//! Every scenario's answer is also checked against counts the world's generator computed
//! on its own (never a time): `--quick` runs the whole harness on a small world in CI as
//! a smoke test, and fails if any check does.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use crm_service_common::access::{Action, Decision, Domain, Scope};
use crm_service_common::internal_auth::{Caller, KeyPair, SubgraphAuth};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use serde_json::{Value as Json, json};

use crate::scale::{self, Expected, ScaleWorld};
use crm_system::{self as system, Storage};

/// How `crm bench` runs.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub seed: u64,
    /// World size: 1.0 is the full world.
    pub factor: f64,
    pub warmup: Duration,
    pub duration: Duration,
    /// The `crm` binary started for the cold-start and mixed-workload scenarios.
    pub crm_binary: PathBuf,
    pub out: PathBuf,
    pub quick: bool,
    /// Only the staff workspace's scenarios (the world is loaded and checked as always).
    pub workspace_only: bool,
    /// Only the real binary's sections: cold start, memory, the mixed workload.
    pub mixed_only: bool,
    /// Only the scoped pages and counts at the subgraph and the page plans compared.
    pub scoped_only: bool,
}

impl BenchOptions {
    pub fn quick(crm_binary: PathBuf, out: PathBuf) -> Self {
        Self {
            seed: 42,
            factor: 0.002,
            warmup: Duration::from_millis(200),
            duration: Duration::from_millis(800),
            crm_binary,
            out,
            quick: true,
            workspace_only: false,
            mixed_only: false,
            scoped_only: false,
        }
    }
}

/// Latency and throughput of one scenario.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub requests: usize,
    pub errors: usize,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub rps: f64,
}

impl Stats {
    fn from(mut latencies: Vec<Duration>, errors: usize, elapsed: Duration) -> Self {
        latencies.sort_unstable();
        let at = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Self {
            requests: latencies.len(),
            errors,
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            rps: latencies.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        }
    }

    fn row(&self, label: &str) -> String {
        format!(
            "| {label} | {} | {} | {} | {} | {:.0} | {} |",
            self.requests,
            ms(self.p50),
            ms(self.p95),
            ms(self.p99),
            self.rps,
            self.errors
        )
    }
}

/// Everything above this line in the report file is kept when `crm bench` rewrites it.
const REPORT_MARKER: &str = "<!-- crm bench writes everything below this line -->";

const STATS_HEADER: &str =
    "| scenario | requests | p50 | p95 | p99 | RPS | errors |\n|---|---|---|---|---|---|---|";

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Runs `request` from `concurrency` loops for `warmup + duration`; only requests that
/// start after the warm-up count. A request that fails (transport, status, GraphQL
/// errors) counts as an error.
async fn measure<F, Fut>(
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    request: F,
) -> Stats
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    measure_by_class(concurrency, warmup, duration, 1, request)
        .await
        .0
}

/// `measure`, with request number `n` also counted in class `n % classes` (the mixed
/// workload's operations), so a table can show where the time goes.
async fn measure_by_class<F, Fut>(
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    classes: usize,
    request: F,
) -> (Stats, Vec<Stats>)
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let classes = classes.max(1);
    let start = Instant::now();
    let measured_from = start + warmup;
    let end = measured_from + duration;
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = vec![Vec::new(); classes];
            let mut errors = vec![0usize; classes];
            let mut n = 0usize;
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                let number = worker + n * concurrency;
                let ok = request(number).await;
                n += 1;
                if began >= measured_from {
                    if ok {
                        latencies[number % classes].push(began.elapsed());
                    } else {
                        errors[number % classes] += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = vec![Vec::new(); classes];
    let mut errors = vec![0usize; classes];
    for task in tasks {
        if let Ok((l, e)) = task.await {
            for class in 0..classes {
                latencies[class].extend_from_slice(&l[class]);
                errors[class] += e[class];
            }
        }
    }
    let all: Vec<Duration> = latencies.iter().flatten().copied().collect();
    let total = Stats::from(all, errors.iter().sum(), duration);
    let per_class = latencies
        .into_iter()
        .zip(errors)
        .map(|(l, e)| Stats::from(l, e, duration))
        .collect();
    (total, per_class)
}

/// One POST of a GraphQL document; `Err` on transport failure, a non-200 status or
/// GraphQL errors.
async fn post(
    client: &reqwest::Client,
    url: &str,
    bearer: &str,
    body: &Json,
) -> Result<Json, String> {
    let mut request = client.post(url).json(body);
    if !bearer.is_empty() {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let value: Json = response.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() || value.get("errors").is_some() {
        return Err(format!("{status}: {value}"));
    }
    Ok(value)
}

/// A check of an answer against the world's generator.
struct Check {
    what: String,
    expected: String,
    got: String,
}

impl Check {
    fn passed(&self) -> bool {
        self.expected == self.got
    }
}

#[derive(Default)]
struct Report {
    text: String,
    checks: Vec<Check>,
}

impl Report {
    fn line(&mut self, line: impl AsRef<str>) {
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }

    fn check(&mut self, what: impl Into<String>, expected: impl ToString, got: impl ToString) {
        self.checks.push(Check {
            what: what.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        });
    }
}

/// A persona of the benchmark: who it is to the subgraphs and to the gateway.
#[derive(Clone)]
struct Persona {
    label: &'static str,
    caller: Caller,
    domain: Domain,
    /// Its directory user, for the gateway path.
    user_id: String,
    email: String,
    expected_accounts: u64,
    expected_orders: u64,
    expected_lines: Option<u64>,
}

fn personas(world: &ScaleWorld, expected: &Expected) -> Vec<Persona> {
    let partners = world.partners();
    let s = world.sizes;
    let admin = Persona {
        label: "internal admin (unscoped)",
        caller: Caller {
            partner_tier: None,
            subject: "usr_admin".into(),
            kind: "internal".into(),
            roles: vec!["admin".into()],
            ..Caller::anonymous()
        },
        domain: Domain::Internal,
        user_id: "usr_admin".into(),
        email: format!("admin@{}", crm_identity::INTERNAL_DOMAIN),
        expected_accounts: s.accounts as u64,
        expected_orders: s.orders as u64,
        expected_lines: Some((s.orders * s.lines_per_order) as u64),
    };
    let partner = |label: &'static str, counts: &scale::PersonaCounts, supplier: bool| {
        let p = &partners[counts.partner_index];
        let kind = if supplier { "supplier" } else { "distributor" };
        Persona {
            label,
            caller: Caller {
                partner_tier: None,
                subject: format!("usr_{}_user", p.persona),
                kind: kind.into(),
                partner_id: Some(p.id.clone()),
                roles: vec!["partner_user".into()],
                ..Caller::anonymous()
            },
            domain: if supplier {
                Domain::Supplier
            } else {
                Domain::Distributor
            },
            user_id: format!("usr_{}_user", p.persona),
            email: format!("{}-user@{}.example", p.persona, p.persona),
            expected_accounts: counts.accounts,
            expected_orders: counts.orders,
            expected_lines: Some(counts.order_lines),
        }
    };
    vec![
        admin,
        partner("small supplier", &expected.small_supplier, true),
        partner("large supplier", &expected.large_supplier, true),
        partner("distributor", &expected.distributor, false),
    ]
}

/// Machine and software facts for the report.
async fn machine_facts(dbs: &system::Databases) -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let memory = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let database = match dbs.account.get_database_backend() {
        DbBackend::Postgres => {
            let version = dbs
                .account
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SHOW server_version",
                ))
                .await
                .ok()
                .flatten()
                .and_then(|r| r.try_get::<String>("", "server_version").ok())
                .map_or("PostgreSQL".into(), |v| format!("PostgreSQL {v}"));
            let settings = dbs
                .account
                .query_all_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT name, setting, COALESCE(unit, '') AS unit FROM pg_settings WHERE name IN \
                     ('shared_buffers', 'effective_cache_size', 'work_mem', 'random_page_cost', \
                      'max_parallel_workers_per_gather', 'jit') ORDER BY name",
                ))
                .await
                .unwrap_or_default()
                .iter()
                .filter_map(|r| {
                    let (name, setting, unit): (String, String, String) = (
                        r.try_get("", "name").ok()?,
                        r.try_get("", "setting").ok()?,
                        r.try_get("", "unit").ok()?,
                    );
                    Some(format!("{name}={setting}{unit}"))
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("{version} (settings as the services see them: {settings})")
        }
        _ => dbs
            .account
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT sqlite_version() AS v",
            ))
            .await
            .ok()
            .flatten()
            .and_then(|r| r.try_get::<String>("", "v").ok())
            .map_or("SQLite".into(), |v| format!("SQLite {v}")),
    };
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    format!(
        "- CPU: {cpu}, {cores} cores; memory {memory}\n- {rustc}; `crm` {} ({profile} build)\n- database: {database}",
        env!("CARGO_PKG_VERSION")
    )
}

/// CPU time (user + system) a process has used so far, from /proc (all its threads); this
/// process's with `None`.
pub(crate) fn cpu_time(pid: Option<u32>) -> Duration {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".into(),
    };
    let Ok(stat) = std::fs::read_to_string(path) else {
        return Duration::ZERO;
    };
    // The command name is in parentheses and may hold spaces: count fields after it.
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    // Linux reports in USER_HZ, which is 100 on every platform it supports.
    Duration::from_millis(ticks * 10)
}

/// CPU time used so far by every PostgreSQL process on this machine (the server's
/// backends and its background workers). A backend that exits takes its time with it; the
/// services keep their pooled connections open through a run.
fn postgres_cpu_time() -> Duration {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "postgres")
        })
        .map(|pid| cpu_time(Some(pid)))
        .sum()
}

/// The CPU time of the processes a mixed-workload run involves, at one moment.
#[derive(Clone, Copy, Debug, Default)]
struct RunCpu {
    crm: Duration,
    postgres: Duration,
    generator: Duration,
}

impl RunCpu {
    fn now(crm_pid: u32) -> Self {
        Self {
            crm: cpu_time(Some(crm_pid)),
            postgres: postgres_cpu_time(),
            generator: cpu_time(None),
        }
    }

    /// Rows of CPU per request per process between `self` and `later` over `requests`
    /// requests and `wall` of wall time.
    fn rows(&self, later: &RunCpu, requests: usize, wall: Duration) -> Vec<String> {
        let per = |before: Duration, after: Duration| {
            let used = after.saturating_sub(before);
            (
                used.as_secs_f64() * 1e6 / requests.max(1) as f64,
                used.as_secs_f64() / wall.as_secs_f64().max(1e-9),
            )
        };
        let processes = [
            (
                "`crm` (gateway and the four services, one process)",
                per(self.crm, later.crm),
            ),
            (
                "PostgreSQL (all its processes)",
                per(self.postgres, later.postgres),
            ),
            (
                "load generator (`crm bench`)",
                per(self.generator, later.generator),
            ),
        ];
        let total: (f64, f64) = processes.iter().fold((0.0, 0.0), |acc, (_, (us, cores))| {
            (acc.0 + us, acc.1 + cores)
        });
        processes
            .iter()
            .map(|(name, (us, cores))| format!("| {name} | {us:.0} µs | {cores:.2} |"))
            .chain(std::iter::once(format!(
                "| all | {:.0} µs | {:.2} |",
                total.0, total.1
            )))
            .collect()
    }
}

/// Resident memory of a process, from /proc: (current, peak) in MiB.
pub(crate) fn rss_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The plans of the SQL a subgraph runs for one request: the service's own app over a
/// connection that records every statement, then `EXPLAIN (ANALYZE, BUFFERS)` of each
/// (`EXPLAIN QUERY PLAN` on SQLite).
async fn plans_of(
    storage: &Storage,
    keys: &KeyPair,
    subgraph: &str,
    caller: &Caller,
    query: &str,
) -> anyhow::Result<String> {
    let service = subgraph.replace('-', "_");
    let mut db = crm_service_common::db::connect(&storage.target(&service)).await?;
    let log: Arc<Mutex<Vec<(Statement, Duration)>>> = Arc::default();
    let sink = log.clone();
    db.set_metric_callback(move |info| {
        if let Ok(mut log) = sink.lock() {
            log.push((info.statement.clone(), info.elapsed));
        }
    });
    let auth = SubgraphAuth::Required(Arc::new(keys.verifier(subgraph)));
    let app = match subgraph {
        "account" => crm_account::app(db.clone(), auth),
        _ => crm_order_visibility::app(db.clone(), auth),
    };
    let running = system::serve(system::bind(([127, 0, 0, 1], 0).into()).await?, app)?;
    let token = keys.signer().mint(subgraph, caller, "bench-plan");
    post(
        &reqwest::Client::new(),
        &format!("{}/graphql", running.url()),
        &token,
        &json!({ "query": query }),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    running.stop().await?;
    let statements = std::mem::take(&mut *log.lock().map_err(|_| anyhow::anyhow!("log"))?);
    let backend = db.get_database_backend();
    let mut out = String::new();
    for (statement, elapsed) in statements {
        if !statement
            .sql
            .trim_start()
            .to_uppercase()
            .starts_with("SELECT")
        {
            continue;
        }
        let (prefix, column) = match backend {
            DbBackend::Postgres => ("EXPLAIN (ANALYZE, BUFFERS) ", "QUERY PLAN"),
            _ => ("EXPLAIN QUERY PLAN ", "detail"),
        };
        let explain = Statement {
            sql: format!("{prefix}{}", statement.sql),
            ..statement.clone()
        };
        let rows = db.query_all_raw(explain).await?;
        let _ = writeln!(
            out,
            "```sql\n-- {} in the request\n{}\n```\n```",
            ms(elapsed),
            statement.sql
        );
        for row in rows {
            let line: String = row.try_get("", column).unwrap_or_default();
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "```");
    }
    Ok(out)
}

/// The naive way to a scoped first page, written only here to show the gap: walk the
/// orders in page order, fetch each candidate's facts, and ask the Casbin enforcer about
/// every row before checking the granted scope against the row. Returns the page's ids.
async fn enforce_per_row_page(
    db: &sea_orm::DatabaseConnection,
    policy: &crm_policies::Policy,
    persona: &Persona,
    page: usize,
) -> anyhow::Result<Vec<String>> {
    let backend = db.get_database_backend();
    let role = persona.caller.roles[0].as_str();
    let own = persona.caller.partner_id.clone().unwrap_or_default();
    let mut ids = Vec::new();
    let mut after: Option<(Value, String)> = None;
    let param = |n: usize| match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".into(),
    };
    loop {
        let (condition, values) = match &after {
            Some((at, id)) => (
                format!(
                    "AND (created_at < {0} OR (created_at = {0} AND id < {1}))",
                    param(1),
                    param(2)
                ),
                vec![at.clone(), Value::from(id.clone())],
            ),
            None => (String::new(), Vec::new()),
        };
        let candidates = db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT id, fulfilling_distributor_id, created_at FROM orders \
                     WHERE archived_at IS NULL {condition} ORDER BY created_at DESC, id DESC LIMIT 500"
                ),
                values,
            ))
            .await?;
        if candidates.is_empty() {
            return Ok(ids);
        }
        let batch: Vec<(String, Option<String>)> = candidates
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("", "id")?,
                    r.try_get("", "fulfilling_distributor_id")?,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        let placeholders: Vec<String> = (1..=batch.len()).map(param).collect();
        let supplier_rows = db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT ol.order_id, p.supplier_partner_id FROM order_lines ol \
                     JOIN products p ON p.id = ol.product_id \
                     WHERE ol.archived_at IS NULL AND ol.order_id IN ({})",
                    placeholders.join(", ")
                ),
                batch
                    .iter()
                    .map(|(id, _)| Value::from(id.clone()))
                    .collect::<Vec<_>>(),
            ))
            .await?;
        let suppliers: HashSet<(String, String)> = supplier_rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.try_get("", "order_id").ok()?,
                    r.try_get("", "supplier_partner_id").ok()?,
                ))
            })
            .collect();
        for (id, distributor) in &batch {
            // The per-row question an enforcer-only design asks.
            if !policy.enforce(persona.domain, role, "Order", Action::Read)? {
                continue;
            }
            let Decision::Allow(grants) =
                policy.decide(persona.domain, role, "Order", Action::Read)
            else {
                continue;
            };
            let visible = grants.iter().any(|g| match g.scope {
                Scope::All => true,
                Scope::HasMyProduct => suppliers.contains(&(id.clone(), own.clone())),
                Scope::FulfilledByMe => distributor.as_deref() == Some(own.as_str()),
                _ => false,
            });
            if visible {
                ids.push(id.clone());
                if ids.len() == page {
                    return Ok(ids);
                }
            }
        }
        let last = candidates.last().context("a candidate")?;
        let at: chrono::DateTime<chrono::Utc> = last.try_get("", "created_at")?;
        after = Some((Value::from(at), last.try_get("", "id")?));
    }
}

fn ids_of(value: &Json, field: &str) -> Vec<String> {
    value["data"][field]["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|n| n["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the whole harness and writes the report; fails if any check failed.
pub async fn run(storage: &Storage, options: BenchOptions) -> anyhow::Result<()> {
    let mut report = Report::default();
    let dbs = system::open_databases(storage).await?;
    let world = ScaleWorld::new(options.seed, options.factor);
    let started = Instant::now();
    let expected = world.expected();
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        "expected counts computed"
    );

    report.line(format!(
        "# Measurements\n\nWritten by `crm bench{}` on {}. Numbers come from this harness only; no test asserts a time.\n",
        if options.quick { " --quick" } else { "" },
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    ));
    report.line("## Machine\n");
    report.line(machine_facts(&dbs).await);
    report.line(format!(
        "- load generator: in the `crm bench` process (tokio, {} worker threads), not pinned: it shares the cores with the system under test\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    ));

    // The world: reuse it when the database holds exactly it, load it when empty.
    report.line("## World\n");
    match scale::ensure_loaded(&dbs, &storage.data_dir, &world, &expected).await? {
        None => report.line(format!(
            "Reused the loaded world (seed {}, scale {}): every table's count matched.\n",
            options.seed, options.factor
        )),
        Some((disk, load)) => {
            report.line(format!(
                "Loaded this run (seed {}, scale {}; disk: {disk}): **{} rows in {:.1} s = {:.0} rows/s** ({:.1} s writing, {:.1} s rebuilding indexes and statistics).\n",
                options.seed,
                options.factor,
                load.rows,
                (load.write + load.index).as_secs_f64(),
                load.rows_per_second(),
                load.write.as_secs_f64(),
                load.index.as_secs_f64()
            ));
            report.line("| table | rows | seconds | rows/s |\n|---|---|---|---|");
            for (table, rows, took) in &load.tables {
                report.line(format!(
                    "| {table} | {rows} | {:.1} | {:.0} |",
                    took.as_secs_f64(),
                    *rows as f64 / took.as_secs_f64().max(1e-9)
                ));
            }
            report.line("");
        }
    }
    report.line("Rows by SQL `COUNT(*)`:\n\n| table | rows |\n|---|---|");
    for (service, table, want) in &expected.tables {
        let got = scale::count_rows(scale::database(&dbs, service), table).await?;
        report.check(format!("rows in {table}"), want, got);
        report.line(format!("| {table} | {got} |"));
    }
    if dbs.account.get_database_backend() == DbBackend::Postgres {
        let size = dbs
            .account
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT pg_database_size(current_database()) AS bytes",
            ))
            .await?
            .and_then(|r| r.try_get::<i64>("", "bytes").ok())
            .unwrap_or_default();
        report.line(format!(
            "\nDatabase size on disk (all schemas, indexes included): {:.2} GB",
            size as f64 / 1e9
        ));
    }
    report.line("");

    let personas = personas(&world, &expected);
    // Limits on, as the binary's, with budgets no scenario reaches: the default budgets
    // would refuse most of a 16-connection run, and a refusal is not a measurement.
    let settings = system::GatewaySettings {
        door: crate::door_with_limits_not_reached()?,
        ..Default::default()
    };
    let system =
        system::start_all_in_one_with(storage, ([127, 0, 0, 1], 0).into(), None, settings).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let subgraph_url = |name: &str| {
        system
            .subgraph_url(name)
            .map(|u| format!("{u}/graphql"))
            .context("subgraph")
    };
    let (account_url, order_url, kb_url) = (
        subgraph_url("account")?,
        subgraph_url("order-visibility")?,
        subgraph_url("knowledge-base")?,
    );
    let gateway_url = format!("{}/graphql", system.public.url());
    let keys = system.keys.clone();
    let mint = {
        let keys = keys.clone();
        move |subgraph: &str, caller: &Caller| keys.signer().mint(subgraph, caller, "bench")
    };
    let (warmup, duration) = (options.warmup, options.duration);

    if options.mixed_only {
        drop(system.stop().await);
        real_binary(&mut report, &options, storage, &client, &personas).await?;
        return finish(report, &options, String::new());
    }

    // 1. The staff workspace's lists and the forecast at this scale, as the roles that use
    // them, at the account subgraph (one connection); row counts checked against the
    // generator first.
    report.line("## The staff workspace at scale (account subgraph, one connection)\n");
    report.line(format!(
        "{} opportunities, {} cases, {} leads and {} tasks; `usr_sales` owns one in {} deals, leads and tasks, `usr_support` one in {} assigned cases.\n",
        world.sizes.opportunities,
        world.sizes.cases,
        world.sizes.leads,
        world.sizes.tasks,
        scale::SALES_TEAM,
        scale::SUPPORT_TEAM
    ));
    report.line("| persona | query | rows in scope | p50 | p95 | p99 | RPS |\n|---|---|---|---|---|---|---|");
    let staff = |subject: &str, role: &str| Caller {
        partner_tier: None,
        subject: subject.into(),
        kind: "internal".into(),
        partner_id: None,
        roles: vec![role.into()],
        policy_version: 0,
        session_id: None,
        source: None,
    };
    let today = chrono::Utc::now().date_naive();
    let year = chrono::Datelike::year(&today);
    let (mine_deals, mine_open) = (0..world.sizes.opportunities)
        .map(|n| world.opportunity_row(n))
        .filter(|o| o.owner_user_id.as_deref() == Some("usr_sales"))
        .fold((0u64, 0u64), |(all, open), o| {
            (all + 1, open + u64::from(!o.stage.is_closed()))
        });
    let (support_open, unassigned_open) = (0..world.sizes.cases)
        .map(|n| world.case_row(n))
        .filter(|c| c.status.is_open())
        .fold((0u64, 0u64), |(mine, nobody), c| {
            match c.owner_user_id.as_deref() {
                Some("usr_support") => (mine + 1, nobody),
                None => (mine, nobody + 1),
                Some(_) => (mine, nobody),
            }
        });
    let week_end = (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339();
    // (persona, caller, query, the list whose totalCount the generator knows and its count)
    type Scenario = (&'static str, Caller, String, Option<(&'static str, u64)>);
    let workspace: Vec<Scenario> = vec![
        (
            "sales",
            staff("usr_sales", "sales"),
            "{ opportunities(first: 25, filter: { ownerUserId: \"usr_sales\" }, orderBy: { field: UPDATED_AT, direction: DESC }) { totalCount nodes { id name stage amount { amount currency } account { name } } } }".into(),
            Some(("opportunities", mine_deals)),
        ),
        (
            "sales",
            staff("usr_sales", "sales"),
            "{ opportunities(first: 200, filter: { openOnly: true, ownerUserId: \"usr_sales\" }) { totalCount nodes { id version name stage amount { amount currency } weightedAmount { amount currency } probability expectedClose closeOverdue account { id name } may { update } } } }".into(),
            Some(("opportunities", mine_open)),
        ),
        (
            "sales",
            staff("usr_sales", "sales"),
            "{ opportunities(first: 25, orderBy: { field: AMOUNT, direction: DESC }) { nodes { id name amount { amount currency } } } }".into(),
            None,
        ),
        (
            "sales",
            staff("usr_sales", "sales"),
            format!("{{ forecast(period: QUARTER, from: \"{year}-01-01\", to: \"{}-12-31\", ownerUserId: \"usr_sales\") {{ totals {{ currency count amount {{ amount }} weightedAmount {{ amount }} }} }} }}", year + 1),
            None,
        ),
        (
            "management",
            staff("usr_management", "management"),
            format!("{{ forecast(period: QUARTER, from: \"{year}-01-01\", to: \"{}-12-31\") {{ totals {{ currency count amount {{ amount }} weightedAmount {{ amount }} }} }} }}", year + 1),
            None,
        ),
        (
            "support",
            staff("usr_support", "support"),
            "{ cases(first: 25, filter: { ownerUserId: \"usr_support\", openOnly: true }) { totalCount nodes { id subject status priority slaDueAt account { name } } } }".into(),
            Some(("cases", support_open)),
        ),
        (
            "support",
            staff("usr_support", "support"),
            "{ cases(first: 25, filter: { unassigned: true, openOnly: true }) { totalCount nodes { id subject status priority slaDueAt } } }".into(),
            Some(("cases", unassigned_open)),
        ),
        (
            "support",
            staff("usr_support", "support"),
            format!("{{ cases(first: 25, filter: {{ openOnly: true, slaDueBefore: \"{week_end}\" }}) {{ nodes {{ id subject slaDueAt }} }} }}"),
            None,
        ),
        (
            "marketing",
            staff("usr_marketing", "marketing"),
            "{ leads(first: 25, orderBy: { field: SCORE, direction: DESC }) { nodes { id company score status } } }".into(),
            None,
        ),
        (
            "sales",
            staff("usr_sales", "sales"),
            format!("{{ tasks(first: 100, filter: {{ assignedToMe: true, completed: false, dueBefore: \"{week_end}\" }}) {{ nodes {{ id title dueAt overdue recordName }} }} }}"),
            None,
        ),
    ];
    // `--scoped-only` measures the partner scopes alone.
    let workspace = if options.scoped_only {
        Vec::new()
    } else {
        workspace
    };
    for (persona, caller, query, expected_count) in workspace {
        let token = mint("account", &caller);
        let body = json!({ "query": query });
        let answer = post(&client, &account_url, &token, &body).await;
        let field = query
            .trim_start_matches("{ ")
            .split(['(', ' '])
            .next()
            .unwrap_or_default()
            .to_owned();
        let scope = match (&answer, expected_count) {
            (Ok(v), Some((field, want))) => {
                let got = v["data"][field]["totalCount"].as_u64().unwrap_or(0);
                report.check(format!("{persona} {field} in scope"), want, got);
                got.to_string()
            }
            (Ok(v), None) => v["data"][&field]["nodes"]
                .as_array()
                .map_or_else(|| "—".into(), |n| format!("page of {}", n.len())),
            (Err(e), _) => {
                report.check(format!("{persona} {field} answers"), "data", e);
                "error".into()
            }
        };
        let (client, url, token, body) = (
            client.clone(),
            account_url.clone(),
            token.clone(),
            Arc::new(body),
        );
        let stats = measure(1, warmup, duration, move |_| {
            let (client, url, token, body) =
                (client.clone(), url.clone(), token.clone(), body.clone());
            async move { post(&client, &url, &token, &body).await.is_ok() }
        })
        .await;
        let what = workspace_label(&query);
        report.line(format!(
            "| {persona} | {what} | {scope} | {} | {} | {} | {:.0} |",
            ms(stats.p50),
            ms(stats.p95),
            ms(stats.p99),
            stats.rps
        ));
    }
    report.line("");

    if options.workspace_only {
        return finish(report, &options, String::new());
    }

    // 1. Scoped vs unscoped at the subgraph: what each persona sees, and how fast.
    report.line("## Scoped vs unscoped, at the subgraph (first page of 50; one connection)\n");
    report.line("Each persona's rows are checked against the generator's counts first. `ratio` is the persona's p50 over the unscoped admin's.\n");
    report.line("| query | persona | rows in scope | p50 | p95 | p99 | RPS | ratio |\n|---|---|---|---|---|---|---|---|");
    let scoped_queries = [
        (
            "accounts, first page",
            "account",
            "{ accounts(first: 50) { nodes { id name } } }",
            "accounts",
        ),
        (
            "orders, first page",
            "order-visibility",
            "{ orders(first: 50) { nodes { id number } } }",
            "orders",
        ),
        (
            "accounts totalCount",
            "account",
            "{ accounts(first: 1) { totalCount } }",
            "accounts",
        ),
        (
            "orders totalCount",
            "order-visibility",
            "{ orders(first: 1) { totalCount } }",
            "orders",
        ),
        (
            "accounts totalCount(atMost: 1000)",
            "account",
            "{ accounts(first: 1) { totalCount(atMost: 1000) } }",
            "accounts",
        ),
        (
            "orders totalCount(atMost: 1000)",
            "order-visibility",
            "{ orders(first: 1) { totalCount(atMost: 1000) } }",
            "orders",
        ),
    ];
    let mut pushdown_p50 = Vec::new();
    for (label, subgraph, query, field) in scoped_queries {
        let url = if subgraph == "account" {
            &account_url
        } else {
            &order_url
        };
        let mut admin_p50 = None;
        for persona in &personas {
            let want = if field == "accounts" {
                persona.expected_accounts
            } else {
                persona.expected_orders
            };
            let token = mint(subgraph, &persona.caller);
            let body = json!({ "query": query });
            let answer = post(&client, url, &token, &body).await;
            if label.contains("totalCount") {
                let got = answer
                    .as_ref()
                    .map(|v| v["data"][field]["totalCount"].to_string())
                    .unwrap_or_else(|e| e.clone());
                let (what, expected) = if label.contains("atMost: 1000") {
                    ("totalCount(atMost: 1000)", want.min(1000))
                } else {
                    ("totalCount", want)
                };
                report.check(format!("{} {field} {what}", persona.label), expected, got);
            } else {
                let got = answer.as_ref().map_or(0, |v| ids_of(v, field).len());
                report.check(
                    format!("{} {field} first page size", persona.label),
                    want.min(50),
                    got,
                );
            }
            let (client, url, token, body) =
                (client.clone(), url.clone(), token.clone(), Arc::new(body));
            let stats = measure(1, warmup, duration, move |_| {
                let (client, url, token, body) =
                    (client.clone(), url.clone(), token.clone(), body.clone());
                async move { post(&client, &url, &token, &body).await.is_ok() }
            })
            .await;
            let base = *admin_p50.get_or_insert(stats.p50);
            if label == "orders, first page" {
                pushdown_p50.push((persona.label, stats.p50));
            }
            report.line(format!(
                "| {label} | {} | {want} | {} | {} | {} | {:.0} | {:.2}x |",
                persona.label,
                ms(stats.p50),
                ms(stats.p95),
                ms(stats.p99),
                stats.rps,
                stats.p50.as_secs_f64() / base.as_secs_f64().max(1e-9)
            ));
        }
    }
    report.line("");
    for persona in &personas {
        if let Some(want) = persona.expected_lines {
            let token = mint("order-visibility", &persona.caller);
            let got = post(
                &client,
                &order_url,
                &token,
                &json!({ "query": "{ orderLines(first: 1) { totalCount } }" }),
            )
            .await
            .map(|v| v["data"]["orderLines"]["totalCount"].to_string())
            .unwrap_or_else(|e| e);
            report.check(
                format!("{} orderLines totalCount", persona.label),
                want,
                got,
            );
        }
    }

    // 1b. The page plan: sparse scopes read by their ids, against the same pages walked.
    use crm_service_common::scope_plan;
    report.line("## Partner scopes: their kept copies walked, read by id, or walked in sort order (first page of 21, the mixed workload's; one connection)\n");
    report.line("`copies`: the default plan for these pages (`crm_service_common::scope_plan::OrderedScope`: a partner's accounts walked in name order in `partner_accounts`, a supplier's orders newest first in `order_suppliers`). `by id`: with the copies off (`--no-ordered-scopes`), a partner scope of at most 5,000 rows is read by its ids, then sorted. `walked`: that off too (`--sparse-scope-at-most 0`), which leaves the choice to the database. The answers must be equal.\n");
    report.line("| query | persona | rows in scope | plan | p50 | p95 | p99 |\n|---|---|---|---|---|---|---|");
    for (label, subgraph, query, field) in [
        (
            "accounts, first 21",
            "account",
            "{ accounts(first: 21) { nodes { id } } }",
            "accounts",
        ),
        (
            "orders, first 21",
            "order-visibility",
            "{ orders(first: 21) { nodes { id } } }",
            "orders",
        ),
    ] {
        let url = if subgraph == "account" {
            &account_url
        } else {
            &order_url
        };
        for persona in personas.iter().filter(|p| p.caller.partner_id.is_some()) {
            let want = if field == "accounts" {
                persona.expected_accounts
            } else {
                persona.expected_orders
            };
            let token = mint(subgraph, &persona.caller);
            let body = Arc::new(json!({ "query": query }));
            let mut pages = Vec::new();
            for (plan, copies, at_most) in [
                ("copies", true, scope_plan::DEFAULT_SPARSE_AT_MOST),
                ("by id", false, scope_plan::DEFAULT_SPARSE_AT_MOST),
                ("walked", false, 0),
            ] {
                scope_plan::set_ordered_walks(copies);
                scope_plan::set_sparse_at_most(at_most);
                let page = post(&client, url, &token, &body)
                    .await
                    .map(|v| ids_of(&v, field))
                    .unwrap_or_default();
                pages.push(page.join(","));
                let (client, url, token, body) =
                    (client.clone(), url.clone(), token.clone(), body.clone());
                let stats = measure(1, warmup, duration, move |_| {
                    let (client, url, token, body) =
                        (client.clone(), url.clone(), token.clone(), body.clone());
                    async move { post(&client, &url, &token, &body).await.is_ok() }
                })
                .await;
                report.line(format!(
                    "| {label} | {} | {want} | {plan} | {} | {} | {} |",
                    persona.label,
                    ms(stats.p50),
                    ms(stats.p95),
                    ms(stats.p99)
                ));
            }
            scope_plan::set_sparse_at_most(scope_plan::DEFAULT_SPARSE_AT_MOST);
            scope_plan::set_ordered_walks(true);
            report.check(
                format!("{} {label}: the same page by id and walked", persona.label),
                &pages[1],
                &pages[2],
            );
            report.check(
                format!(
                    "{} {label}: the same page through the copies",
                    persona.label
                ),
                &pages[0],
                &pages[1],
            );
        }
    }
    report.line("");
    if options.scoped_only {
        drop(system.stop().await);
        return finish(report, &options, String::new());
    }

    // 2. Pushdown vs enforce-per-row for the same scoped page.
    report.line("## Pushdown vs enforce-per-row (orders, first page of 50)\n");
    report.line("Pushdown: the subgraph's scoped query (HTTP included). Naive: candidates fetched in page order, 500 at a time with their lines' suppliers, and Casbin `enforce()` asked per row before the granted scope is checked against the row (in process, no HTTP). The naive page must equal the pushed-down page.\n");
    report.line("| persona | pushdown p50 | naive mean | naive runs | naive / pushdown |\n|---|---|---|---|---|");
    let policy = crm_policies::current()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for persona in personas.iter().skip(1) {
        let token = mint("order-visibility", &persona.caller);
        let pushed = post(
            &client,
            &order_url,
            &token,
            &json!({ "query": "{ orders(first: 50) { nodes { id } } }" }),
        )
        .await
        .map(|v| ids_of(&v, "orders"))
        .unwrap_or_default();
        let mut runs = 0u32;
        let began = Instant::now();
        let mut naive = Vec::new();
        while runs == 0 || (began.elapsed() < duration && runs < 50) {
            naive = enforce_per_row_page(&dbs.order_visibility, &policy, persona, 50).await?;
            runs += 1;
        }
        let mean = began.elapsed() / runs;
        report.check(
            format!("{} naive page equals pushed-down page", persona.label),
            pushed.join(","),
            naive.join(","),
        );
        let pushdown = pushdown_p50
            .iter()
            .find(|(l, _)| *l == persona.label)
            .map(|(_, p)| *p)
            .unwrap_or_default();
        report.line(format!(
            "| {} | {} | {} | {runs} | {:.0}x |",
            persona.label,
            ms(pushdown),
            ms(mean),
            mean.as_secs_f64() / pushdown.as_secs_f64().max(1e-9)
        ));
    }
    report.line("");

    // 3. Gateway vs direct subgraph calls for the same data.
    report.line("## Gateway vs direct subgraphs (internal admin)\n");
    report.line("Direct: the harness plays the query planner: the order subgraph, then `_entities` at the account (and knowledge-base) subgraph in parallel, with gateway tokens. Gateway: one request with the user's access token. Both answers are compared.\n");
    let admin = personas[0].clone();
    let user_token = system.identity.issuer.issue(&admin.user_id, None, 3_600);
    let two = "{ orders(first: 20) { nodes { number account { name } } } }";
    let three = "{ orders(first: 5) { nodes { number account { name } lines(first: 4) { nodes { product { name articles(first: 2) { nodes { title } } } } } } } }";
    let direct = Direct {
        client: client.clone(),
        order_url: order_url.clone(),
        account_url: account_url.clone(),
        kb_url: kb_url.clone(),
        keys: keys.clone(),
        caller: admin.caller.clone(),
    };
    let via_gateway = post(&client, &gateway_url, &user_token, &json!({ "query": two })).await;
    let names = |v: &Json| -> Vec<String> {
        v["data"]["orders"]["nodes"]
            .as_array()
            .map(|n| {
                n.iter()
                    .map(|o| format!("{}:{}", o["number"], o["account"]["name"]))
                    .collect()
            })
            .unwrap_or_default()
    };
    let direct_two = direct.two_subgraphs().await;
    report.check(
        "two-subgraph query: gateway answer equals the direct answer",
        direct_two.as_ref().map(names).unwrap_or_default().join(","),
        via_gateway
            .as_ref()
            .map(names)
            .unwrap_or_default()
            .join(","),
    );
    let articles = |v: &Json| -> String { v.to_string().matches("\"title\"").count().to_string() };
    let direct_three = direct.three_subgraphs().await;
    let gateway_three = post(
        &client,
        &gateway_url,
        &user_token,
        &json!({ "query": three }),
    )
    .await;
    report.check(
        "three-subgraph query: article titles via gateway equal direct",
        direct_three
            .as_ref()
            .map(articles)
            .unwrap_or_else(|e| e.clone()),
        gateway_three
            .as_ref()
            .map(articles)
            .unwrap_or_else(|e| e.clone()),
    );
    report.line(STATS_HEADER);
    let mut pairs = Vec::new();
    for (label, query, subgraphs) in [("two subgraphs", two, 2), ("three subgraphs", three, 3)] {
        for concurrency in [1, 16] {
            let d = direct.clone();
            let direct_stats = measure(concurrency, warmup, duration, move |_| {
                let d = d.clone();
                async move {
                    if subgraphs == 2 {
                        d.two_subgraphs().await.is_ok()
                    } else {
                        d.three_subgraphs().await.is_ok()
                    }
                }
            })
            .await;
            let (c, url, token, body) = (
                client.clone(),
                gateway_url.clone(),
                user_token.clone(),
                Arc::new(json!({ "query": query })),
            );
            let gateway_stats = measure(concurrency, warmup, duration, move |_| {
                let (c, url, token, body) = (c.clone(), url.clone(), token.clone(), body.clone());
                async move { post(&c, &url, &token, &body).await.is_ok() }
            })
            .await;
            report.line(direct_stats.row(&format!("{label}, direct, {concurrency} conn.")));
            report.line(gateway_stats.row(&format!("{label}, gateway, {concurrency} conn.")));
            report.check(
                format!("{label} gateway errors ({concurrency} conn.)"),
                0,
                gateway_stats.errors,
            );
            pairs.push((label, concurrency, direct_stats, gateway_stats));
        }
    }
    report.line("\n| query | conn. | gateway p50 − direct p50 | gateway / direct p50 | gateway / direct RPS |\n|---|---|---|---|---|");
    for (label, concurrency, d, g) in &pairs {
        report.line(format!(
            "| {label} | {concurrency} | {:+.2} ms | {:.2}x | {:.2}x |",
            (g.p50.as_secs_f64() - d.p50.as_secs_f64()) * 1e3,
            g.p50.as_secs_f64() / d.p50.as_secs_f64().max(1e-9),
            g.rps / d.rps.max(1e-9)
        ));
    }
    report.line("");

    // Global search: every type at once, per persona, through the gateway.
    report.line("## Global search through the gateway (one connection)\n");
    report.line("`search(text, first: 5)` over accounts, contacts, leads, opportunities, cases, orders and articles, as each persona (a type the persona may not read answers empty). The text types match as `lower(field) LIKE '%word%'` on each type's searched fields (GIN trigram indexes on PostgreSQL find the candidates) through the persona's scope; articles by full-text relevance.\n");
    report.line(STATS_HEADER);
    const SEARCH: &str = "query($t: String!) { search(text: $t, first: 5) { accounts { totalCount nodes { id } } contacts { totalCount nodes { id } } leads { totalCount nodes { id } } opportunities { totalCount nodes { id } } cases { totalCount nodes { id } } orders { totalCount nodes { id } } articles { totalCount nodes { id } } } }";
    for persona in personas.iter() {
        let token = system.identity.issuer.issue(&persona.user_id, None, 3_600);
        for text in ["alpine", "installing"] {
            let (c, url, token, body) = (
                client.clone(),
                gateway_url.clone(),
                token.clone(),
                Arc::new(json!({ "query": SEARCH, "variables": { "t": text } })),
            );
            let stats = measure(1, warmup, duration, move |_| {
                let (c, url, token, body) = (c.clone(), url.clone(), token.clone(), body.clone());
                async move { post(&c, &url, &token, &body).await.is_ok() }
            })
            .await;
            report.line(stats.row(&format!("{}: \"{text}\"", persona.label)));
            report.check(
                format!("global search errors ({}, \"{text}\")", persona.label),
                0,
                stats.errors,
            );
        }
    }
    report.line("");

    // 4. Query plans of the scoped scenarios.
    let mut plans = String::new();
    for persona in personas.iter().skip(1) {
        for (label, subgraph, query, _) in scoped_queries {
            let text = plans_of(storage, &keys, subgraph, &persona.caller, query).await?;
            let _ = writeln!(plans, "### {} — {label}\n\n{text}", persona.label);
        }
    }
    drop(system.stop().await);

    real_binary(&mut report, &options, storage, &client, &personas).await?;
    finish(report, &options, plans)
}

/// Sections 5 and 6: the real binary's cold start and memory, the mixed persona workload
/// through its gateway (with CPU per request per process), and the read log's cost.
async fn real_binary(
    report: &mut Report,
    options: &BenchOptions,
    storage: &Storage,
    client: &reqwest::Client,
    personas: &[Persona],
) -> anyhow::Result<()> {
    let (warmup, duration) = (options.warmup, options.duration);
    // 5. The real binary: cold start, memory, and the mixed workload through its gateway.
    report.line("## All-in-one process: cold start, memory, mixed workload\n");
    let child = Child::start(&options.crm_binary, storage, true).await?;
    report.line(format!(
        "- cold start of `crm --no-seed` on the loaded database, spawn to `/ready` answering 200: **{}**",
        ms(child.ready_after)
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_mib(child.pid).unwrap_or_default();
    report.line(format!("- idle RSS after start: **{:.0} MiB**", idle.0));
    let mixed = mixed_workload(client, &child.url, personas).await?;
    let mut runs = Vec::new();
    let mut cpu_rows = Vec::new();
    for concurrency in [32usize, 128] {
        // CPU is sampled when the warm-up ends and when the measured run does.
        let pid = child.pid;
        let at_start = tokio::spawn(async move {
            tokio::time::sleep(warmup).await;
            (RunCpu::now(pid), Instant::now())
        });
        let (stats, per_operation) = mixed.run(concurrency, warmup, duration).await;
        let at_end = RunCpu::now(pid);
        if let Ok((at_start, started)) = at_start.await {
            cpu_rows.push((
                concurrency,
                at_start.rows(&at_end, stats.requests + stats.errors, started.elapsed()),
            ));
        }
        report.check(
            format!("mixed workload errors at {concurrency} connections"),
            0,
            stats.errors,
        );
        runs.push((concurrency, stats, per_operation));
    }
    let peak = rss_mib(child.pid).unwrap_or_default();
    report.line(format!("- peak RSS (high-water mark) after the mixed workload: **{:.0} MiB**; the `crm bench` process (load generator and, earlier, the in-process system): {:.0} MiB peak\n", peak.1, rss_mib(std::process::id()).unwrap_or_default().1));
    report.line(format!("Mixed workload through the gateway: {} personas, each signed in {MIXED_SESSIONS_PER_PERSONA} times (requests in flight at once are of different sessions, so none shares another's execution), cycling through accounts and orders pages, an order with its account and lines, knowledge-base search and `me`.\n", personas.len()));
    report.line(STATS_HEADER);
    for (concurrency, stats, _) in &runs {
        report.line(stats.row(&format!("mixed, {concurrency} connections")));
    }
    report.line(
        "\nCPU per request per process (CPU time over the measured run ÷ its requests; `cores`: CPU seconds per second, of the 2 the machine has):\n",
    );
    for (concurrency, rows) in &cpu_rows {
        report.line(format!(
            "| {concurrency} connections: process | CPU per request | cores |\n|---|---|---|"
        ));
        for row in rows {
            report.line(row.clone());
        }
        report.line("");
    }
    if let Some((concurrency, _, per_operation)) = runs.first() {
        report.line(format!(
            "\nWhere the time goes, per operation at {concurrency} connections (each is an equal share of the requests sent):\n"
        ));
        report.line(STATS_HEADER);
        for (label, stats) in mixed.labels.iter().zip(per_operation) {
            report.line(stats.row(label));
        }
    }
    report.line("");
    child.stop().await;

    // 6. What the read log of partner access costs: the same workload with it turned off.
    let child = Child::start(&options.crm_binary, storage, false).await?;
    let mixed = mixed_workload(client, &child.url, personas).await?;
    let (off, _) = mixed.run(32, warmup, duration).await;
    child.stop().await;
    report.line(
        "## The read log's cost (partners' reads logged, off the read path)
",
    );
    report.line(
        "The mixed workload at 32 connections with the read log on (the run above) and off \
         (`CRM_READ_LOG=off`, a fresh process on the same database, run after it):\n",
    );
    report.line(STATS_HEADER);
    if let Some((_, on, _)) = runs.first() {
        report.line(on.row("mixed, 32 connections, read log on"));
    }
    report.line(off.row("mixed, 32 connections, read log off"));
    report.line("");

    Ok(())
}

/// The checks against the generator's counts, then the report written under the marker
/// (hand-written findings above it are kept); fails when a check failed.
fn finish(mut report: Report, options: &BenchOptions, plans: String) -> anyhow::Result<()> {
    report.line("## Checks against the generator's counts\n");
    report.line("| check | expected | got | |\n|---|---|---|---|");
    let checks = std::mem::take(&mut report.checks);
    for c in &checks {
        let short = |s: &str| {
            if s.len() > 60 {
                format!("{}…", &s[..60])
            } else {
                s.to_owned()
            }
        };
        report.line(format!(
            "| {} | {} | {} | {} |",
            c.what,
            short(&c.expected),
            short(&c.got),
            if c.passed() { "ok" } else { "**FAILED**" }
        ));
    }
    let failed = checks.iter().filter(|c| !c.passed()).count();
    report.line(format!("\n{} checks, {failed} failed.\n", checks.len()));
    report.line("## Query plans of the scoped scenarios\n");
    report.line(plans);
    // Hand-written findings above the marker stay; the measurements below it are replaced.
    let kept = std::fs::read_to_string(&options.out)
        .ok()
        .and_then(|old| {
            old.find(REPORT_MARKER)
                .map(|at| old[..at + REPORT_MARKER.len()].to_owned())
        })
        .map(|prefix| format!("{prefix}\n\n"))
        .unwrap_or_default();
    std::fs::write(&options.out, format!("{kept}{}", report.text))
        .with_context(|| format!("writing {}", options.out.display()))?;
    tracing::info!(out = %options.out.display(), checks = checks.len(), failed, "benchmark report written");
    if failed > 0 {
        for c in checks.iter().filter(|c| !c.passed()) {
            tracing::error!(check = %c.what, expected = %c.expected, got = %c.got, "check failed");
        }
        anyhow::bail!("{failed} of {} benchmark checks failed", checks.len());
    }
    Ok(())
}

/// The direct path: the harness calls the subgraphs the way the planner would.
#[derive(Clone)]
struct Direct {
    client: reqwest::Client,
    order_url: String,
    account_url: String,
    kb_url: String,
    keys: KeyPair,
    caller: Caller,
}

impl Direct {
    async fn call(&self, url: &str, subgraph: &str, body: Json) -> Result<Json, String> {
        let token = self.keys.signer().mint(subgraph, &self.caller, "bench");
        post(&self.client, url, &token, &body).await
    }

    async fn account_names(&self, ids: &[String]) -> Result<Vec<String>, String> {
        let representations: Vec<Json> = ids
            .iter()
            .map(|id| json!({ "__typename": "Account", "id": id }))
            .collect();
        let answer = self
            .call(
                &self.account_url,
                "account",
                json!({
                    "query": "query($r: [_Any!]!) { _entities(representations: $r) { ... on Account { name } } }",
                    "variables": { "r": representations }
                }),
            )
            .await?;
        Ok(answer["data"]["_entities"]
            .as_array()
            .map(|e| {
                e.iter()
                    .map(|a| a["name"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Orders with their account's name, as `{ data: { orders: { nodes: [...] } } }`.
    async fn two_subgraphs(&self) -> Result<Json, String> {
        let orders = self
            .call(
                &self.order_url,
                "order-visibility",
                json!({ "query": "{ orders(first: 20) { nodes { number accountId } } }" }),
            )
            .await?;
        let nodes = orders["data"]["orders"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ids: Vec<String> = nodes
            .iter()
            .map(|o| o["accountId"].as_str().unwrap_or_default().to_owned())
            .collect();
        let names = self.account_names(&ids).await?;
        let merged: Vec<Json> = nodes
            .iter()
            .zip(names)
            .map(|(o, name)| json!({ "number": o["number"], "account": { "name": name } }))
            .collect();
        Ok(json!({ "data": { "orders": { "nodes": merged } } }))
    }

    /// Orders with account names and their lines' products' articles.
    async fn three_subgraphs(&self) -> Result<Json, String> {
        let orders = self
            .call(
                &self.order_url,
                "order-visibility",
                json!({ "query": "{ orders(first: 5) { nodes { number accountId lines(first: 4) { nodes { product { id name } } } } } }" }),
            )
            .await?;
        let nodes = orders["data"]["orders"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let account_ids: Vec<String> = nodes
            .iter()
            .map(|o| o["accountId"].as_str().unwrap_or_default().to_owned())
            .collect();
        let product_ids: Vec<Json> = nodes
            .iter()
            .flat_map(|o| o["lines"]["nodes"].as_array().cloned().unwrap_or_default())
            .map(|l| json!({ "__typename": "Product", "id": l["product"]["id"] }))
            .collect();
        let articles = self.call(
            &self.kb_url,
            "knowledge-base",
            json!({
                "query": "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { articles(first: 2) { nodes { title } } } } }",
                "variables": { "r": product_ids }
            }),
        );
        let (names, articles) = tokio::join!(self.account_names(&account_ids), articles);
        Ok(json!({ "names": names?, "articles": articles?["data"] }))
    }
}

/// A `crm` all-in-one child process on the benchmark's storage.
struct Child {
    process: tokio::process::Child,
    pid: u32,
    url: String,
    ready_after: Duration,
}

impl Child {
    /// Starts `crm` on the loaded storage; `read_log` false runs it with
    /// `CRM_READ_LOG=off` (what logging partners' reads costs is the difference).
    async fn start(
        binary: &std::path::Path,
        storage: &Storage,
        read_log: bool,
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut command = tokio::process::Command::new(binary);
        command
            .arg("--no-seed")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("CRM_DATA_DIR", &storage.data_dir)
            .env("RUST_LOG", "warn")
            .env("CRM_READ_LOG", if read_log { "on" } else { "off" })
            .env("CRM_RATE_LIMITS", crate::RATE_LIMITS_NOT_REACHED)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        for (key, value) in [
            ("DATABASE_URL", &storage.database_url),
            ("REDIS_URL", &storage.redis_url),
            ("CRM_EVENT_NAMESPACE", &storage.event_namespace),
        ] {
            match value {
                Some(v) => command.env(key, v),
                None => command.env_remove(key),
            };
        }
        let started = Instant::now();
        let process = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = process.id().context("the child's pid")?;
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{url}/ready")).send().await
                && r.status().is_success()
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                anyhow::bail!("{} did not become ready in 120 s", binary.display());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(Self {
            ready_after: started.elapsed(),
            process,
            pid,
            url,
        })
    }

    async fn stop(mut self) {
        let _ = self.process.kill().await;
    }
}

/// The mixed persona workload: signed-in personas and the operations they cycle through.
/// Sessions each persona of the mixed workload signs in (more than the connections of one
/// operation in flight at once, at 128 connections and 20 operations).
const MIXED_SESSIONS_PER_PERSONA: usize = 16;

struct Mixed {
    client: reqwest::Client,
    url: String,
    /// (the persona's sessions' access tokens, operation body) pairs, cycled through by
    /// request number; the session by the round through them.
    requests: Arc<Vec<(Vec<String>, Json)>>,
    /// What each request is: `persona: operation`.
    labels: Vec<String>,
}

async fn mixed_workload(
    client: &reqwest::Client,
    base: &str,
    personas: &[Persona],
) -> anyhow::Result<Mixed> {
    let url = format!("{base}/graphql");
    let (mut requests, mut labels) = (Vec::new(), Vec::new());
    for persona in personas {
        // Each persona signs in several times: requests in flight at once are of
        // different sessions, as of different users, so the gateway's sharing of identical
        // in-flight queries (one caller's only) does not stand in for capacity.
        let mut tokens = Vec::new();
        for _ in 0..MIXED_SESSIONS_PER_PERSONA {
            let session = post(
                client,
                &url,
                "",
                &json!({
                    "query": "mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { accessToken } }",
                    "variables": { "e": persona.email, "p": crm_identity::DEMO_PASSWORD }
                }),
            )
            .await;
            match session {
                Ok(v) => tokens.push(
                    v["data"]["signIn"]["accessToken"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ),
                Err(e) => anyhow::bail!("{} could not sign in: {e}", persona.email),
            }
        }
        let token = tokens[0].clone();
        let first_order = post(
            client,
            &url,
            &token,
            &json!({ "query": "{ orders(first: 1) { nodes { id } } }" }),
        )
        .await
        .map(|v| ids_of(&v, "orders"))
        .unwrap_or_default();
        let mut operations = vec![
            (
                "accounts page",
                json!({ "query": "{ accounts(first: 20) { nodes { id name segment } } }" }),
            ),
            (
                "orders page",
                json!({ "query": "{ orders(first: 20) { nodes { id number status } } }" }),
            ),
            (
                "article search",
                json!({ "query": "{ articles(first: 10, filter: { text: \"installing\" }) { nodes { id title } } }" }),
            ),
            ("me", json!({ "query": "{ me { id email kind roles } }" })),
        ];
        if let Some(id) = first_order.first() {
            operations.push(("order with account and lines", json!({
                "query": "query($id: ID!) { order(id: $id) { number account { name } lines(first: 10) { nodes { quantity product { name } } } } }",
                "variables": { "id": id }
            })));
        }
        for (label, operation) in operations {
            labels.push(format!("{}: {label}", persona.label));
            requests.push((tokens.clone(), operation));
        }
    }
    Ok(Mixed {
        client: client.clone(),
        url,
        requests: Arc::new(requests),
        labels,
    })
}

impl Mixed {
    /// The whole workload's stats, and each operation's.
    async fn run(
        &self,
        concurrency: usize,
        warmup: Duration,
        duration: Duration,
    ) -> (Stats, Vec<Stats>) {
        let (client, url, requests) =
            (self.client.clone(), self.url.clone(), self.requests.clone());
        let classes = requests.len();
        measure_by_class(concurrency, warmup, duration, classes, move |n| {
            let (client, url, requests) = (client.clone(), url.clone(), requests.clone());
            async move {
                let (tokens, body) = &requests[n % requests.len()];
                let token = &tokens[(n / requests.len()) % tokens.len()];
                post(&client, &url, token, body).await.is_ok()
            }
        })
        .await
    }
}

/// A workspace scenario's name, from its query.
fn workspace_label(query: &str) -> &'static str {
    match () {
        _ if query.contains("forecast") && query.contains("ownerUserId") => {
            "forecast, own deals, by quarter over two years"
        }
        _ if query.contains("forecast") => "forecast, every deal, by quarter over two years",
        _ if query.contains("openOnly: true, ownerUserId") => {
            "pipeline board (own open deals, up to 200)"
        }
        _ if query.contains("opportunities") && query.contains("AMOUNT") => {
            "opportunities, largest first (all)"
        }
        _ if query.contains("opportunities") => "own opportunities, first page, latest first",
        _ if query.contains("unassigned") => "case queue: unassigned open cases",
        _ if query.contains("slaDueBefore") => "case queue: due within a week",
        _ if query.contains("cases") => "case queue: own open cases",
        _ if query.contains("leads") => "leads by score, first page",
        _ if query.contains("tasks") => "my day: own open tasks due within a week",
        _ => "query",
    }
}
