//! `anxin bench console`: what the console's busiest pages weigh and how
//! long the server takes to build them, over a real SQLite store filled
//! through the ingest path — the alert board with 500 open alerts and an
//! elder page with 90 days of history. Server time is reported beside the
//! cheapest signed-in page (`/password`: session lookup and template, no
//! data) through the same router in the same run, so the figures read as
//! ratios on any machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anxin_console::AppState;
use anxin_domain::access::{Region, Role};
use anxin_domain::alerts::policy::AlertPolicy;
use anxin_domain::registry::NewElder;
use anxin_gateway::alerts::timers::tick_due_homes;
use anxin_gateway::ingest::{check, commit_batch};
use anxin_store::{Database, SessionLimits, Store, now_ms};
use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

use crate::out;

#[derive(Debug, clap::Args)]
pub struct BenchConsoleArgs {
    /// Open alerts on the board (one elder and one smoke alarm each)
    #[arg(long, default_value_t = 500)]
    pub alerts: usize,
    /// Days of hourly history (summaries, closed days, remote check-ins) on the elder page
    #[arg(long, default_value_t = 90)]
    pub days: i64,
    /// Requests measured per page
    #[arg(long, default_value_t = 50)]
    pub requests: usize,
}

use anxin_domain::time::{DAY_MS as DAY, HOUR_MS as HOUR};
const PASSWORD: &str = "bench password, long enough";

/// An elder of 振兴区; `number` makes the citizen ID unique (one ID, one elder).
fn elder(name: String, number: usize) -> NewElder {
    let birth = format!("19{}0312", 40 + (number / 1_000) % 20);
    let citizen_id = anxin_simulator::ledger::citizen_id(&birth, u32::try_from(number % 1_000).unwrap_or(0));
    NewElder {
        name,
        county: "振兴区".into(),
        township: "站前街道".into(),
        village: "锦山社区".into(),
        address: "锦山大街 12 号".into(),
        phone: Some("13904150001".into()),
        emergency_contact: Some("王志强".into()),
        emergency_phone: Some("13904150002".into()),
        categories: "living_alone".into(),
        // The generator draws valid IDs (its check digit is the domain's).
        citizen_id: anxin_domain::registry::CitizenId::parse(&citizen_id).ok(),
        ..NewElder::default()
    }
}

/// An elder whose one sensor reported every hour for `days` days (movement
/// from 07:00 to 21:00), with every day closed by the engine's timer.
async fn elder_with_history(store: &Store, policy: &AlertPolicy, days: i64, now: i64) -> anyhow::Result<i64> {
    let start = now - days * DAY;
    let id = store.add_elder(&elder("历史老人".into(), 0), start - 60_000).await?.id;
    store.pair_device("bench-history", id, start - 60_000).await?;
    let mut seq = 0u32;
    for day in 0..days {
        let mut batch: Vec<(anxin_gateway::ingest::Checked, i64)> = Vec::with_capacity(24);
        for hour in 0..24 {
            seq += 1;
            let at = start + day * DAY + hour * HOUR;
            let motion = if (7..21).contains(&((hour + 8) % 24)) { 3 + (seq % 7) } else { 0 };
            let payload = format!(
                r#"{{"v":1,"boot":1,"seq":{seq},"up":{},"interval_s":3600,"motion":{motion},"door_opens":{},"temp_dc":205,"battery":80}}"#,
                u64::from(seq) * 3_600_000,
                seq % 2
            );
            batch.push((check("anxin/v1/dev/bench-history/summary", payload.as_bytes()), at));
        }
        for (message, at) in batch {
            commit_batch(store, policy, &[(message, at)]).await?;
            // The engine's timer, as `serve` runs it: closes the day at local midnight.
            tick_due_homes(store, policy, at + 1).await?;
        }
    }
    Ok(id)
}

pub(crate) struct Measured {
    pub bytes: usize,
    /// The same response gzipped, as a browser receives it.
    pub gzipped: usize,
    pub times: Vec<Duration>,
}

impl Measured {
    pub(crate) fn percentile(&self, percent: usize) -> Duration {
        let mut sorted = self.times.clone();
        sorted.sort();
        let rank = (sorted.len() - 1) * percent.min(100) / 100;
        sorted[rank]
    }
}

/// The console's whole router, and the session cookie of a user `name` of
/// `role` over 振兴区 who has set their own password.
pub(crate) async fn signed_in_console(
    store: &Store,
    policy: &Arc<AlertPolicy>,
    name: &str,
    role: Role,
    now: i64,
) -> anyhow::Result<(axum::Router, String)> {
    let user = store.add_user(name, role, &[Region::parse("振兴区")?], PASSWORD, now).await?;
    let session = store.start_session(user.id, SessionLimits::default(), now).await?;
    store.change_password(user.id, PASSWORD, "bench password, changed", &session, now).await?;
    let (feed, _) = tokio::sync::broadcast::channel(16);
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle();
    let router = anxin_console::router(
        anxin_console::Metrics::new(metrics, None),
        AppState::new(store.clone(), policy.clone(), feed),
    );
    Ok((router, format!("anxin_session={session}")))
}

pub(crate) async fn measure(
    router: &axum::Router,
    cookie: &str,
    path: &str,
    requests: usize,
) -> anyhow::Result<Measured> {
    let gzipped = {
        let request =
            Request::get(path).header("cookie", cookie).header("accept-encoding", "gzip").body(Body::empty())?;
        axum::body::to_bytes(router.clone().oneshot(request).await?.into_body(), 64 << 20).await?.len()
    };
    let mut times = Vec::with_capacity(requests);
    let mut bytes = 0;
    for _ in 0..requests.max(1) {
        let request = Request::get(path).header("cookie", cookie).body(Body::empty())?;
        let started = Instant::now();
        let response = router.clone().oneshot(request).await?;
        anyhow::ensure!(response.status().is_success(), "{path} answered {}", response.status());
        let body = axum::body::to_bytes(response.into_body(), 64 << 20).await?;
        times.push(started.elapsed());
        bytes = body.len();
    }
    Ok(Measured { bytes, gzipped, times })
}

pub(crate) fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1_000.0)
}

pub async fn console(args: BenchConsoleArgs) -> anyhow::Result<()> {
    let folder = std::env::temp_dir().join(format!("anxin-bench-console-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder)?;
    let store = Store::open(&Database::in_data_dir(&folder)).await?;
    let now = now_ms();

    out!("filling a SQLite store: {} open alerts, an elder with {} days of history", args.alerts, args.days);
    let policy = Arc::new(AlertPolicy::default());
    let history = elder_with_history(&store, &policy, args.days, now).await?;
    for index in 0..args.alerts {
        let id = store.add_elder(&elder(format!("老人{index:04}"), index + 1), now - DAY).await?.id;
        let device = format!("bench-{index:05}");
        store.pair_device(&device, id, now - 120_000).await?;
        let smoke = br#"{"v":1,"boot":1,"seq":1,"up":1,"kind":"smoke","state":"alarm"}"#;
        commit_batch(&store, &policy, &[(check(&format!("anxin/v1/dev/{device}/event"), smoke), now - 60_000)]).await?;
    }
    let (router, cookie) = signed_in_console(&store, &policy, "bench-oncall", Role::Oncall, now).await?;
    let open = store
        .alerts(&anxin_store::AlertFilter {
            unresolved_only: true,
            elder_id: None,
            limit: 100_000,
            ..Default::default()
        })
        .await?;
    let visits = store.visits(history).await?.len();
    if let Some(day) = store.days(history).await?.first() {
        out!("the history elder's last closed day: {} ({})", day.day, day.reason);
    }
    out!("stored: {} open alerts; the history elder has {visits} remote check-ins\n", open.len());

    // The cheapest signed-in page: session, template, no data.
    let baseline = measure(&router, &cookie, "/password", args.requests).await?;
    let base = baseline.percentile(50);
    let pages = [
        (format!("alert board ({} open alerts)", open.len()), "/board".to_string()),
        ("board rows (live refresh)".into(), "/board/rows".into()),
        ("alert detail beside the board".to_string(), format!("/board/alerts/{}", open[0].id)),
        (format!("elder page ({} days)", args.days), format!("/elders/{history}")),
        (
            format!("elder API, {} days of activity", args.days),
            format!("/api/v1/elders/{history}/activity?days={}", args.days),
        ),
    ];
    out!("{:<40} {:>10} {:>10} {:>10} {:>10} {:>12}", "page", "HTML", "gzipped", "p50", "p95", "p50/baseline");
    out!(
        "{:<40} {:>8} B {:>8} B {:>10} {:>10} {:>12}",
        "/password (baseline)",
        baseline.bytes,
        baseline.gzipped,
        ms(base),
        ms(baseline.percentile(95)),
        "1"
    );
    for (name, path) in pages {
        let measured = measure(&router, &cookie, &path, args.requests).await?;
        let p50 = measured.percentile(50);
        out!(
            "{:<40} {:>8} B {:>8} B {:>10} {:>10} {:>11.1}×",
            name,
            measured.bytes,
            measured.gzipped,
            ms(p50),
            ms(measured.percentile(95)),
            p50.as_secs_f64() / base.as_secs_f64().max(1e-9)
        );
    }
    let (mut assets, mut assets_gzipped) = (0, 0);
    for asset in ["/static/htmx-2.0.11.min.js", "/static/app.js", "/static/app.css"] {
        let measured = measure(&router, &cookie, asset, 1).await?;
        assets += measured.bytes;
        assets_gzipped += measured.gzipped;
    }
    out!(
        "\nstatic assets, fetched once and cached for a day: {assets} B, {assets_gzipped} B gzipped (htmx, app.js, app.css)"
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&folder);
    Ok(())
}
