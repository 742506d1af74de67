//! The benchmark harness's smoke test: `crm bench --quick` loads a small scale world into
//! a database of its own, runs every scenario (scoped vs unscoped, pushdown vs
//! enforce-per-row, gateway vs direct, cold start, mixed workload) and checks each answer
//! against the counts the world's generator computed on its own. Times are reported,
//! never asserted. The report lands in `target/test-reports/`, which `.ci/run` prints.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_benchmark_answers_match_the_generator() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
    let name = format!(
        "crm_bench_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let database_url = match &server {
        Some(url) => Some(
            crm_system::create_database(url, &name)
                .await
                .expect("create database"),
        ),
        None => None,
    };
    let out = dir.path().join("BENCHMARKS.md");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_crm"));
    command
        .args(["bench", "--quick", "--out"])
        .arg(&out)
        .env("CRM_DATA_DIR", dir.path().join("data"))
        .env(
            "CRM_EVENT_NAMESPACE",
            format!("bench-{}", uuid::Uuid::new_v4().simple()),
        )
        .env("RUST_LOG", "warn");
    match &database_url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    let output = command.output().await.expect("run crm bench");
    let report = std::fs::read_to_string(&out).unwrap_or_default();
    let database = if server.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let reports =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-reports");
    if std::fs::create_dir_all(&reports).is_ok() {
        let _ = std::fs::write(reports.join(format!("bench-quick-{database}.md")), &report);
    }
    if let Some(url) = &server {
        crm_system::drop_database(url, &name)
            .await
            .expect("drop database");
    }
    assert!(
        output.status.success(),
        "crm bench --quick failed:\n{}\n{report}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Every section ran and every check held.
    for section in [
        "## World",
        "## Scoped vs unscoped",
        "## Pushdown vs enforce-per-row",
        "## Gateway vs direct subgraphs",
        "## All-in-one process",
        "## Query plans",
    ] {
        assert!(report.contains(section), "no {section} in:\n{report}");
    }
    let summary = report
        .lines()
        .find(|l| l.ends_with("failed."))
        .expect("a checks summary");
    assert!(summary.ends_with(" 0 failed."), "{summary}");
    let checks: usize = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a check count");
    assert!(checks >= 50, "only {checks} checks ran: {summary}");
}
