//! Every benchmark the README names, run briefly, so none can rot unseen:
//! each must finish and print its figures. The figures themselves are the
//! benchmark's business, never a test's (these machines are shared and noisy).

use crate::{anxin, text};

/// Runs `anxin bench ARGS…`, which must succeed; returns what it printed.
fn bench(args: &[&str]) -> String {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    let output = anxin(&all);
    assert!(output.status.success(), "anxin {}: {}", all.join(" "), text(&output.stderr));
    text(&output.stdout)
}

fn assert_prints(report: &str, lines: &[&str]) {
    for line in lines {
        assert!(report.contains(line), "{line:?} missing from:\n{report}");
    }
    assert!(!report.contains("NaN"), "a figure came out as NaN:\n{report}");
}

#[test]
fn bench_ingest_prints_the_ceiling_the_durable_rate_and_their_ratio() {
    let report = bench(&["ingest", "--homes", "20", "--rounds", "2", "--publishers", "4", "--latency-seconds", "1"]);
    assert_prints(
        &report,
        &[
            "20 homes × 2 rounds = 44 messages",
            "% of the ceiling",
            "all 44 stored once",
            "batch commit: p50 ",
            "with no load:",
            "(the floor: a durable alert costs a commit)",
            "smoke p99 / smoke p99 with no load: ",
        ],
    );
}

/// The rules on every message, and a backlog flushed by every connection at
/// once while smoke alarms come in.
#[test]
fn bench_ingest_with_the_rules_drains_a_backlog_and_times_smoke_alarms_meanwhile() {
    let report =
        bench(&["ingest", "--homes", "20", "--rounds", "2", "--rules", "--backlog", "400", "--latency-seconds", "0"]);
    assert_prints(
        &report,
        &[
            "every home paired, the rules on every message",
            "all 44 stored once",
            "flushed by 20 connections at once: drained at",
            "smoke → console feed while the backlog drains: p50 ",
        ],
    );
}

/// Through a Mosquitto of its own into `anxin gateway`'s path, on
/// PostgreSQL: the backlog queued in Mosquitto while the gateway is away.
#[test]
fn bench_ingest_through_mosquitto_on_postgresql_drains_the_queued_backlog() {
    let server = std::env::var("ANXIN_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let report = bench(&[
        "ingest",
        "--homes",
        "20",
        "--rounds",
        "2",
        "--broker",
        "mosquitto",
        "--database",
        &server,
        "--backlog",
        "400",
        "--latency-seconds",
        "0",
    ]);
    assert_prints(
        &report,
        &[
            "bare subscriber on Mosquitto",
            "stored in PostgreSQL",
            "all 44 stored once",
            "queued in Mosquitto for the gateway's session: drained at",
            "smoke → console feed while the backlog drains: p50 ",
        ],
    );
}

#[test]
fn bench_alerts_prints_the_alarm_latency_idle_and_loaded_and_the_overdue_homes() {
    let report = bench(&["alerts", "--homes", "1000", "--rate", "200", "--seconds", "7", "--publishers", "2"]);
    assert_prints(
        &report,
        &[
            "1000 homes registered",
            "smoke → alert on the console feed, gateway idle",
            "smoke → alert on the console feed, gateway loaded",
            "loaded / idle: p50 ",
            "100 of 100 fired, 0 twice",
        ],
    );
}

#[test]
fn bench_console_prints_the_weight_and_time_of_the_busiest_pages() {
    let report = bench(&["console", "--alerts", "20", "--days", "3", "--requests", "3"]);
    assert_prints(
        &report,
        &[
            "stored: 20 open alerts",
            "/password (baseline)",
            "alert board (20 open alerts)",
            "elder page (3 days)",
            "static assets",
        ],
    );
}

#[test]
fn bench_ledger_prints_reading_importing_exporting_and_the_rate_page() {
    let report = bench(&["ledger", "--elders", "300", "--requests", "3"]);
    assert_prints(
        &report,
        &[
            "a ledger of 300 elders",
            "importing into an empty registry",
            "importing the same file again",
            "visit-rate page over 300 elders",
        ],
    );
}

#[test]
fn bench_responders_sends_a_burst_of_alarms_through_the_chain_and_times_ingest_meanwhile() {
    let report = bench(&["responders", "--alarms", "10", "--provider-ms", "5"]);
    assert_prints(
        &report,
        &[
            "10 homes, each with three contacts",
            "the provider alone (the notifier, 32 at a time, 5 ms each): ",
            "10 smoke alarms → 40 SMS through the chain",
            "% of the provider alone",
            "smoke alarm → its first SMS taken: p50 ",
            "ingest, 100 summaries a commit, idle: p50 ",
        ],
    );
}

/// A province on loopback, small: three nats-server nodes, writers and
/// edges of this binary, PostgreSQL; kills a log node, an edge and a
/// writer in turn (every alarm sent meanwhile must become an alert, or the
/// benchmark fails).
#[test]
fn bench_cluster_prints_the_writers_scaling_the_alarm_latency_and_each_recovery() {
    let server = std::env::var("ANXIN_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let report = bench(&[
        "cluster",
        "--database",
        &server,
        "--homes",
        "200",
        "--backlog",
        "2000",
        "--writers",
        "1,2",
        "--rate",
        "50",
        "--alarms",
        "5",
        "--recovery-seconds",
        "8",
        "--connections",
        "100",
    ]);
    assert_prints(
        &report,
        &[
            "200 homes registered, paired and watched",
            "appending 2000 summaries to the log from one client",
            "the log keeps a queued summary in ",
            "1 writer(s) draining 2000 queued summaries into PostgreSQL: ",
            "msg/s durable, the baseline",
            "PostgreSQL keeps a summary in ",
            "rows updated in place (HOT, no index written): ",
            "a store writer's resident memory at the end of the drain: ",
            "2 writer(s) draining 2000 queued summaries into PostgreSQL: ",
            "× one writer's",
            "100 idle device connections held by one edge: ",
            "smoke → console feed, homes publishing through two edges: p50 ",
            "kill -9 of the stream's leader node n",
            "kill -9 of the edge the alarms went through: 40 of 40 alarms",
            "kill -9 of a store writer: 40 of 40 alarms",
            "background load: 50 summaries/s asked",
        ],
    );
}

/// `anxin bench cluster | head`: the benchmark ends at the closed pipe, and
/// the processes it started (nats-server nodes, edges, writers) end with
/// it rather than run on as orphans.
#[test]
fn bench_cluster_ended_by_a_closed_pipe_leaves_none_of_its_processes() {
    use std::io::BufRead;
    let server = std::env::var("ANXIN_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let mut bench = std::process::Command::new(env!("CARGO_BIN_EXE_anxin"))
        .args(["bench", "cluster", "--database", &server, "--homes", "100", "--backlog", "200", "--writers", "1"])
        .args(["--rate", "20", "--alarms", "2", "--recovery-seconds", "2", "--connections", "10"])
        .env("ANXIN_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = bench.id();
    let mut lines = std::io::BufReader::new(bench.stdout.take().unwrap()).lines();
    // Edges and writers of the province are running once the edge has held its connections.
    let held = lines.by_ref().map_while(Result::ok).find(|line| line.contains("idle device connections held"));
    assert!(held.is_some(), "the benchmark got as far as the province");
    drop(lines);
    let status = bench.wait().unwrap();
    assert!(status.success(), "a closed pipe ends it quietly: {status}");
    let marks = [format!("anxin_bench_{pid}_"), format!("anxin-bench-cluster-{pid}")];
    let left = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
            .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
            .filter(|cmdline| marks.iter().any(|mark| cmdline.contains(mark.as_str())))
            .collect()
    };
    assert!(
        anxin_testkit::wait_until(std::time::Duration::from_secs(10), || left().is_empty()),
        "left running: {:?}",
        left()
    );
}
