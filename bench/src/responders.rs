//! `anxin bench responders`: a burst of smoke alarms through the responder
//! chain — how fast their SMS leave, and what the burst costs ingest.
//!
//! A SQLite store of N homes, each elder with three contacts, and an on-call
//! shift. A stand-in SMS gateway (a local HTTP server, the generic template
//! provider) answers each request after `--provider-ms`. The baseline: the
//! same 4 N messages sent through the notifier alone, 32 at a time (the
//! outbox's batch) — the provider's ceiling. Then N smoke alarms are
//! committed in one batch and the chain plans, queues, claims, sends and
//! records every message; its rate is printed as a share of the ceiling,
//! with the time from each alarm to its first SMS. Meanwhile batches of
//! summaries are committed, timed against the same batches before the burst.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anxin_domain::alerts::policy::AlertPolicy;
use anxin_domain::responders::{ChainTimes, ContactForm, Message, Relation};
use anxin_gateway::ingest::{Checked, check, commit_batch};
use anxin_gateway::responders::notify::{BodyFormat, HttpTemplate, HttpTemplateConfig, Notifier};
use anxin_gateway::responders::{ChainConfig, send_due_messages, start_chains};
use anxin_store::{Database, Store, now_ms};

use super::{latency_line, watched_home};
use crate::out;

#[derive(Debug, clap::Args)]
pub struct BenchRespondersArgs {
    /// Smoke alarms at once, each in its own home (three contacts and on-call: four SMS each)
    #[arg(long, default_value_t = 500)]
    pub alarms: usize,
    /// How long the stand-in SMS gateway takes to answer each request, in milliseconds
    #[arg(long, default_value_t = 50)]
    pub provider_ms: u64,
}

/// Summaries per timed ingest batch.
const BATCH: usize = 100;

fn summary(device: &str, seq: u32) -> Checked {
    let payload = format!(
        r#"{{"v":1,"boot":1,"seq":{seq},"up":{},"interval_s":300,"motion":2,"door_opens":0,"temp_dc":205,"battery":80}}"#,
        u64::from(seq) * 300_000
    );
    check(&format!("anxin/v1/dev/{device}/summary"), payload.as_bytes())
}

/// A stand-in SMS gateway on loopback: answers 200 after `delay`; counts.
async fn stand_in(delay: Duration) -> anyhow::Result<(String, Arc<AtomicU64>)> {
    let taken = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&taken);
    let app = axum::Router::new().route(
        "/send",
        axum::routing::post(move || {
            let count = Arc::clone(&count);
            async move {
                tokio::time::sleep(delay).await;
                count.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{address}/send"), taken))
}

/// Commits batches of summaries from `devices`, ten a second, each timed,
/// while `until(round)` holds.
async fn timed_batches(
    store: &Store,
    policy: &AlertPolicy,
    devices: &[String],
    seq: &mut u32,
    until: impl Fn(usize) -> bool,
) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::new();
    let mut round = 0;
    while until(round) {
        // Ten batches a second: 1,000 summaries/s, a city's day at five times its pace.
        let next = Instant::now() + Duration::from_millis(100);
        *seq += 1;
        let batch: Vec<(Checked, i64)> =
            devices.iter().cycle().skip(round * BATCH).take(BATCH).map(|d| (summary(d, *seq), now_ms())).collect();
        let started = Instant::now();
        commit_batch(store, policy, &batch).await?;
        times.push(started.elapsed());
        round += 1;
        tokio::time::sleep_until(next.into()).await;
    }
    times.sort();
    Ok(times)
}

pub async fn responders(args: BenchRespondersArgs) -> anyhow::Result<()> {
    let alarms = args.alarms.max(10);
    let folder = std::env::temp_dir().join(format!("anxin-bench-responders-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    let store = Store::open(&Database::in_data_dir(&folder)).await?;
    let policy = AlertPolicy::default();
    let now = now_ms();
    let set_up = Instant::now();
    let elders =
        store.populate_for_benchmark(alarms, "bench", now, |_, device| watched_home(&policy, now, device, now)).await?;
    let devices: Vec<String> = (0..alarms).map(|index| format!("bench-{index:06}")).collect();
    for (index, elder) in elders.iter().enumerate() {
        for (name, relation, n) in
            [("家属", Relation::Family, 1), ("邻居", Relation::Neighbour, 2), ("网格员", Relation::GridWorker, 3)]
        {
            let phone = format!("139{:04}{n:04}", index % 10_000);
            let form = ContactForm {
                name,
                relation: Some(relation),
                phone: &phone,
                consent: Some("电话确认"),
                ..ContactForm::default()
            };
            let (contact, consent) = form.check().map_err(|error| anyhow::anyhow!("{error}"))?;
            store.add_contact(*elder, &contact, &consent, "bench", now).await?;
        }
    }
    store.add_shift("振兴区", "值班员", "13904159999", (now - 3_600_000, now + 3_600_000), "bench", now).await?;
    out!(
        "{alarms} homes, each with three contacts, and an on-call shift, set up in {:.1} s",
        set_up.elapsed().as_secs_f64()
    );

    let (url, taken) = stand_in(Duration::from_millis(args.provider_ms)).await?;
    let notifier: Arc<dyn Notifier> = Arc::new(
        HttpTemplate::new(HttpTemplateConfig {
            url,
            method: None,
            headers: Default::default(),
            body: Some(r#"{"to":"{phone}","text":"{text}"}"#.into()),
            format: BodyFormat::Json,
            secret: None,
        })
        .map_err(|error| anyhow::anyhow!("{error}"))?,
    );
    let messages = alarms * 4;

    // The ceiling: the notifier alone, 32 at a time.
    let message = Message {
        village: "锦山社区".into(),
        kind: "烟雾报警".into(),
        link: "http://127.0.0.1/r/x".into(),
        purpose: anxin_domain::responders::Purpose::Alert,
    };
    let started = Instant::now();
    for chunk in (0..messages).collect::<Vec<_>>().chunks(32) {
        let sends = chunk.iter().map(|i| notifier.send(i64::try_from(*i).unwrap_or(0), "13904150000", &message));
        for sent in futures_util::future::join_all(sends).await {
            sent.map_err(|error| anyhow::anyhow!("the stand-in refused: {error}"))?;
        }
    }
    let ceiling = messages as f64 / started.elapsed().as_secs_f64();
    out!("the provider alone (the notifier, 32 at a time, {} ms each): {ceiling:.0} messages/s", args.provider_ms);

    // Ingest with nothing else going on.
    let mut seq = 1;
    let idle = timed_batches(&store, &policy, &devices, &mut seq, |round| round < 20).await?;

    // The burst: every home's smoke alarm in one batch, then the chain.
    taken.store(0, Ordering::Relaxed);
    let smoke: Vec<(Checked, i64)> = devices
        .iter()
        .map(|device| {
            let payload = r#"{"v":1,"boot":1,"seq":1000000,"up":1,"kind":"smoke","state":"alarm"}"#;
            (check(&format!("anxin/v1/dev/{device}/event"), payload.as_bytes()), now_ms())
        })
        .collect();
    store.register_sink(anxin_gateway::responders::CURSOR).await?;
    commit_batch(&store, &policy, &smoke).await?;
    let config = ChainConfig {
        notifier,
        public_url: "https://anxin.example.gov.cn".into(),
        times: ChainTimes::default(),
        utc_offset: policy.utc_offset,
    };
    let key = store.link_key().await?;
    let started = Instant::now();
    let chain = {
        let store = store.clone();
        tokio::spawn(async move {
            // As the chain's own loop: a slice of alarms started, their messages sent, again.
            loop {
                let (_, more) = start_chains(&store, &config, "bench", now_ms()).await?;
                let sent = send_due_messages(&store, &config, &key, now_ms()).await?;
                if !more && sent == 0 {
                    break;
                }
            }
            anyhow::Ok(started.elapsed())
        })
    };
    let loaded = timed_batches(&store, &policy, &devices, &mut seq, |_| !chain.is_finished()).await?;
    let drained = chain.await??;
    let sent = taken.load(Ordering::Relaxed);
    anyhow::ensure!(sent == messages as u64, "{sent} of {messages} messages reached the stand-in");
    let rate = messages as f64 / drained.as_secs_f64();
    out!(
        "{alarms} smoke alarms → {messages} SMS through the chain (planned, queued, claimed, sent, recorded) in {:.1} s: {rate:.0} messages/s, {:.0}% of the provider alone",
        drained.as_secs_f64(),
        100.0 * rate / ceiling
    );
    let alerts = store.alerts(&anxin_store::AlertFilter { limit: 1_000_000, ..Default::default() }).await?;
    let ids: Vec<i64> = alerts.iter().map(|alert| alert.id).collect();
    let records = store.responder_messages_of(&ids).await?;
    let mut first: Vec<Duration> = alerts
        .iter()
        .filter_map(|alert| {
            let sent = records.iter().filter(|m| m.alert_id == alert.id).filter_map(|m| m.sent_at).min()?;
            Some(Duration::from_millis(u64::try_from(sent - alert.opened_at).unwrap_or(0)))
        })
        .collect();
    first.sort();
    anyhow::ensure!(first.len() == alarms, "{} of {alarms} alarms reached anyone", first.len());
    out!("{}", latency_line("smoke alarm → its first SMS taken", &first));
    let p50 = |times: &[Duration]| super::percentile(times, 50);
    out!("{}", latency_line(&format!("ingest, {BATCH} summaries a commit, idle"), &idle));
    out!("{}", latency_line(&format!("ingest, {BATCH} summaries a commit, while the chain drains"), &loaded));
    if !loaded.is_empty() {
        out!("ingest commit p50 while the chain drains / idle: {:.2}", p50(&loaded) / p50(&idle));
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&folder);
    Ok(())
}
