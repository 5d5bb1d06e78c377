//! The alert engine against real databases: alerts commit with the message
//! that caused them, timers live in the database (a restart and a second
//! gateway change nothing), escalation, handling, remote check-ins, delivery.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anxin_domain::alerts::rules::day_start;
use anxin_domain::alerts::{AlertKind, AlertStatus, Outcome, Severity};
use anxin_domain::registry::NewElder;
use anxin_gateway::alerts::delivery::{Sink, run_sink};
use anxin_gateway::ingest::{Checked, check};
use anxin_store::{AlertFilter, RegionFilter, Store};

use crate::{Backend, fresh_store, on_both_backends, reopen};

on_both_backends!(
    smoke_opens_one_critical_alert_and_a_redelivery_raises_nothing,
    an_unacknowledged_critical_alert_escalates_and_reminds_until_acknowledged,
    handling_is_recorded_and_wrong_actions_are_refused,
    an_overdue_home_fires_once_across_a_restart,
    two_gateways_racing_on_one_home_raise_one_alert,
    an_alert_event_committed_after_a_newer_one_is_still_read_after_it,
    a_day_of_life_becomes_one_remote_check_in,
    away_pauses_inactivity_and_heightened_watch_tightens_it,
    a_silent_device_opens_a_notice_that_clears_itself,
    a_device_paired_but_never_heard_from_is_raised_after_the_grace,
    a_failing_webhook_is_retried_until_it_takes_every_change,
    a_hanging_webhook_holds_up_only_its_own_change,
    a_busy_county_never_pushes_another_s_alerts_past_the_limit,
);

use anxin_domain::time::{HOUR_MS as HOUR, MINUTE_MS as MINUTE};

/// 08:00 local (UTC+8) on some day.
fn t0() -> i64 {
    day_start(20_600, &Default::default()) + 8 * HOUR
}

fn event(device: &str, seq: u32, kind: &str, state: &str) -> Checked {
    let payload = format!(r#"{{"v":1,"boot":5,"seq":{seq},"up":{},"kind":"{kind}","state":"{state}"}}"#, seq * 10);
    check(&format!("anxin/v1/dev/{device}/event"), payload.as_bytes())
}

fn summary(device: &str, seq: u32, motion: u16) -> Checked {
    let payload = format!(
        r#"{{"v":1,"boot":5,"seq":{seq},"up":{},"interval_s":300,"motion":{motion},"door_opens":0,"temp_dc":205,"battery":80}}"#,
        seq * 300_000
    );
    check(&format!("anxin/v1/dev/{device}/summary"), payload.as_bytes())
}

fn elder(name: &str) -> NewElder {
    NewElder {
        name: name.into(),
        county: "振兴区".into(),
        township: "站前街道".into(),
        village: "锦山社区".into(),
        address: "锦山大街 12 号".into(),
        phone: None,
        emergency_contact: None,
        emergency_phone: None,
        categories: "living_alone".into(),
        inactivity_hours: None,
        ..NewElder::default()
    }
}

/// An elder with one paired node that has just reported activity at `at`.
async fn home(store: &Store, device: &str, at: i64) -> i64 {
    let elder = store.add_elder(&elder(device), at).await.unwrap().id;
    store.pair_device(device, elder, at).await.unwrap();
    crate::commit_batch(store, &[(summary(device, 1, 3), at)]).await.unwrap();
    elder
}

async fn alerts_of(store: &Store, elder: i64) -> Vec<anxin_store::AlertRecord> {
    store.alerts(&AlertFilter { elder_id: Some(elder), ..AlertFilter::default() }).await.unwrap()
}

/// Two writers commit alert events out of the order of their ids (the
/// one that took the lower id commits last). A reader that has passed the
/// higher one — the console's feed, a webhook, the responder chain, each
/// with its cursor — still reads the lower one after it commits: the order
/// the changes are read in is the order they were committed in, never the
/// ids'. (On PostgreSQL the ids' order lost such an alarm for good: seen by
/// `anxin bench cluster` with two writers and a log node killed.)
async fn an_alert_event_committed_after_a_newer_one_is_still_read_after_it(backend: Backend) {
    let (store, guard) = fresh_store(backend).await;
    let other = reopen(&guard).await;
    let t = t0();
    let first = home(&store, "node-p", t).await;
    let second = home(&store, "node-q", t).await;
    crate::commit_batch(&store, &[(event("node-p", 2, "smoke", "alarm"), t + 1_000)]).await.unwrap();
    crate::commit_batch(&store, &[(event("node-q", 2, "smoke", "alarm"), t + 1_000)]).await.unwrap();
    let alert_of = |elder: i64| {
        let store = store.clone();
        async move { alerts_of(&store, elder).await[0].id }
    };
    let (first_alert, second_alert) = (alert_of(first).await, alert_of(second).await);
    let start = store.newest_alert_event().await.unwrap();

    // The slow writer takes the lower id and holds its transaction open.
    let mut write = store.begin_write().await.unwrap();
    let slow_event = write.alert_event(first_alert, t + 2_000, "reminded", None, None).await.unwrap();
    let mut slow = Some(write);
    if backend == Backend::Sqlite {
        // SQLite has one writer at a time: the other waits its turn, and
        // ids are taken in the order of the commits anyway.
        slow.take().unwrap().commit().await.unwrap();
    }
    let mut fast = other.begin_write().await.unwrap();
    let fast_event = fast.alert_event(second_alert, t + 2_000, "reminded", None, None).await.unwrap();
    fast.commit().await.unwrap();

    // A reader follows its cursor, before and after the slow commit.
    let mut cursor = start;
    let mut read = Vec::new();
    for change in store.alert_changes_after(cursor, 100).await.unwrap() {
        read.push(change.event_id);
        cursor = change.position;
    }
    if backend == Backend::Postgres {
        assert!(slow_event < fast_event, "the slow writer took the lower id");
        assert_eq!(read, [fast_event], "only what is committed is read");
        slow.take().unwrap().commit().await.unwrap();
    }
    for change in store.alert_changes_after(cursor, 100).await.unwrap() {
        read.push(change.event_id);
        cursor = change.position;
    }
    read.sort_unstable();
    assert_eq!(read, [slow_event, fast_event], "each change read once, the late one too");
    assert_eq!(cursor, store.newest_alert_event().await.unwrap(), "the newest position is where the reader ends");
}

/// In a province the console is another process than the store writer that
/// opens an alert. On PostgreSQL the writer's commit wakes the console's
/// feed at once (NOTIFY, migration 0024): the console's handle wrote
/// nothing, and its alert-writes watch still moves to the writer's event
/// (without the notification it never would; the feed would find the alert
/// only at its once-a-second look).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_alert_committed_by_another_process_wakes_this_one_s_feed() {
    let (writer, guard) = fresh_store(Backend::Postgres).await;
    let console = reopen(&guard).await;
    let mut woken = console.alert_writes();
    let t = t0();
    home(&writer, "node-n", t).await;
    let outcome = crate::commit_batch(&writer, &[(event("node-n", 2, "smoke", "alarm"), t + 1_000)]).await.unwrap();
    let event_id = *outcome.alert_events.iter().max().expect("the alarm opened an alert");
    tokio::time::timeout(Duration::from_secs(30), woken.wait_for(|&newest| newest >= event_id))
        .await
        .expect("the console heard of the writer's alert event")
        .unwrap();
}

async fn smoke_opens_one_critical_alert_and_a_redelivery_raises_nothing(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let t = t0();
    let elder = home(&store, "node-a", t).await;
    let smoke = event("node-a", 2, "smoke", "alarm");
    let outcome = crate::commit_batch(&store, &[(smoke.clone(), t + 1_000)]).await.unwrap();
    assert_eq!(outcome.alert_events.len(), 1);
    let alerts = alerts_of(&store, elder).await;
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0];
    assert_eq!((alert.kind.as_str(), alert.severity.as_str(), alert.status.as_str()), ("smoke", "critical", "open"));
    assert_eq!(alert.opened_at, t + 1_000);
    // The broker delivers it again: not stored again, nothing raised.
    let again = crate::commit_batch(&store, &[(smoke, t + 2_000)]).await.unwrap();
    assert_eq!((again.duplicates.len(), again.alert_events.len()), (1, 0));
    // A second alarm while the first is open adds to it.
    crate::commit_batch(&store, &[(event("node-a", 3, "smoke", "alarm"), t + 3_000)]).await.unwrap();
    let alerts = alerts_of(&store, elder).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].repeats, 1);
    let history: Vec<String> = store.alert_history(alerts[0].id).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(history, ["opened", "repeated"]);
    // An unclaimed device raises nothing: it has no home.
    let stray = crate::commit_batch(&store, &[(event("stray", 1, "smoke", "alarm"), t)]).await.unwrap();
    assert!(stray.alert_events.is_empty());
}

async fn an_unacknowledged_critical_alert_escalates_and_reminds_until_acknowledged(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let t = t0();
    let elder = home(&store, "node-b", t).await;
    crate::commit_batch(&store, &[(event("node-b", 2, "help", "pressed"), t)]).await.unwrap();
    assert!(crate::escalate_due_alerts(&store, t + 59_999).await.unwrap().is_empty(), "not before 60 s");
    assert_eq!(crate::escalate_due_alerts(&store, t + 60_000).await.unwrap().len(), 1);
    assert!(crate::escalate_due_alerts(&store, t + 60_000).await.unwrap().is_empty(), "once per moment");
    assert_eq!(crate::escalate_due_alerts(&store, t + 120_000).await.unwrap().len(), 1);
    let alert = alerts_of(&store, elder).await.remove(0);
    assert_eq!((alert.level, alert.reminders), (1, 2));
    let history: Vec<String> = store.alert_history(alert.id).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(history, ["opened", "escalated", "reminded"]);
    store.acknowledge_alert(alert.id, "值班员 李", t + 150_000).await.unwrap();
    assert!(
        crate::escalate_due_alerts(&store, t + 10 * MINUTE).await.unwrap().is_empty(),
        "acknowledged: no more reminders"
    );
    let alert = store.alert(alert.id).await.unwrap().unwrap();
    assert_eq!(alert.ack_ms, Some(150_000));
    // A warning does not escalate; the same alert turned critical does.
    crate::commit_batch(&store, &[(summary("node-b", 3, 2), t + HOUR)]).await.unwrap();
    crate::tick_due_homes(&store, t + 13 * HOUR).await.unwrap();
    assert!(crate::escalate_due_alerts(&store, t + 17 * HOUR).await.unwrap().is_empty());
    crate::tick_due_homes(&store, t + 19 * HOUR).await.unwrap();
    assert_eq!(crate::escalate_due_alerts(&store, t + 19 * HOUR + MINUTE).await.unwrap().len(), 1);
}

async fn handling_is_recorded_and_wrong_actions_are_refused(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let t = t0();
    let elder = home(&store, "node-c", t).await;
    crate::commit_batch(&store, &[(event("node-c", 2, "help", "pressed"), t)]).await.unwrap();
    let id = alerts_of(&store, elder).await[0].id;
    assert!(store.resolve_alert(id, "李", Outcome::Other, " ", t + 10_000).await.is_err(), "`other` needs a note");
    assert!(store.acknowledge_alert(id, " ", t + 10_000).await.is_err(), "who acknowledges is required");
    assert!(store.acknowledge_alert(999_999, "李", t).await.unwrap_err().to_string().contains("no alert 999999"));
    store.acknowledge_alert(id, "李", t + 20_000).await.unwrap();
    let twice = store.acknowledge_alert(id, "王", t + 30_000).await.unwrap_err();
    assert_eq!(twice.to_string(), format!("alert {id} was already acknowledged by 李"));
    let resolved = store.resolve_alert(id, "李", Outcome::ReachedByPhone, "老人按错了", t + 90_000).await.unwrap();
    assert_eq!(resolved.status, AlertStatus::Resolved);
    assert_eq!(resolved.outcome, Some(Outcome::ReachedByPhone));
    assert_eq!(resolved.note.as_deref(), Some("老人按错了"));
    assert_eq!(resolved.ack_ms, Some(20_000));
    assert!(store.resolve_alert(id, "李", Outcome::Visited, "", t + 100_000).await.is_err());
    // A new press after the resolution opens a new alert.
    crate::commit_batch(&store, &[(event("node-c", 3, "help", "pressed"), t + HOUR)]).await.unwrap();
    let second = alerts_of(&store, elder).await.into_iter().find(|a| a.status == AlertStatus::Open).unwrap();
    // Resolved without an acknowledgement: the resolution is the acknowledgement.
    store.resolve_alert(second.id, "王", Outcome::Visited, "", t + HOUR + 200_000).await.unwrap();
    // A third press nobody has answered yet counts against the figures.
    crate::commit_batch(&store, &[(event("node-c", 4, "help", "pressed"), t + 90 * MINUTE)]).await.unwrap();
    let region = RegionFilter { county: Some("振兴区".into()), ..RegionFilter::default() };
    let stats = store.ack_stats(&region, Some(Severity::Critical), t - HOUR, t + 2 * HOUR).await.unwrap();
    assert_eq!((stats.alerts, stats.acknowledged, stats.within_60s, stats.within_180s), (3, 2, 1, 1));
    assert_eq!(stats.share_60s(), Some(1.0 / 3.0));
    let elsewhere = RegionFilter { county: Some("元宝区".into()), ..RegionFilter::default() };
    assert_eq!(store.ack_stats(&elsewhere, None, t - HOUR, t + 2 * HOUR).await.unwrap().alerts, 0);
}

async fn an_overdue_home_fires_once_across_a_restart(backend: Backend) {
    let (store, guard) = fresh_store(backend).await;
    let t = t0();
    let elder = home(&store, "node-d", t).await;
    // Heartbeats without motion for 6 hours, then the gateway stops.
    for k in 1..=72u32 {
        crate::commit_batch(&store, &[(summary("node-d", 1 + k, 0), t + i64::from(k) * 5 * MINUTE)]).await.unwrap();
    }
    store.close().await;
    // Down over the deadline (t + 12 h); a new process starts afterwards.
    let store = reopen(&guard).await;
    assert_eq!(store.next_deadline().await.unwrap().unwrap(), t + 12 * HOUR);
    crate::tick_due_homes(&store, t + 12 * HOUR - 1).await.unwrap();
    assert!(alerts_of(&store, elder).await.is_empty());
    crate::tick_due_homes(&store, t + 13 * HOUR).await.unwrap();
    crate::tick_due_homes(&store, t + 13 * HOUR + 1_000).await.unwrap();
    let alerts = alerts_of(&store, elder).await;
    assert_eq!(alerts.len(), 1, "overdue alert raised once after the restart");
    assert_eq!(alerts[0].kind, AlertKind::Inactivity);
    assert!(alerts[0].detail.contains("nothing since 08:00"), "{}", alerts[0].detail);
    store.close().await;
    let store = reopen(&guard).await;
    crate::tick_due_homes(&store, t + 14 * HOUR).await.unwrap();
    assert_eq!(store.alert_history(alerts[0].id).await.unwrap().len(), 1, "a second restart raises nothing again");
}

async fn two_gateways_racing_on_one_home_raise_one_alert(backend: Backend) {
    let (store, guard) = fresh_store(backend).await;
    let t = t0();
    let mut elders = Vec::new();
    for n in 0..20 {
        elders.push(home(&store, &format!("race-{n}"), t).await);
    }
    let other = reopen(&guard).await;
    let at = t + 12 * HOUR;
    let (a, b) = tokio::join!(
        async {
            for _ in 0..5 {
                crate::tick_due_homes(&store, at).await.unwrap();
            }
        },
        async {
            for _ in 0..5 {
                crate::tick_due_homes(&other, at).await.unwrap();
            }
        }
    );
    let ((), ()) = (a, b);
    for elder in &elders {
        let alerts = alerts_of(&store, *elder).await;
        assert_eq!(alerts.len(), 1);
        assert_eq!(store.alert_history(alerts[0].id).await.unwrap().len(), 1, "opened once, by one gateway");
    }
    // And racing on escalation.
    crate::commit_batch(&store, &[(event("race-0", 9, "smoke", "alarm"), at)]).await.unwrap();
    let (x, y) =
        tokio::join!(crate::escalate_due_alerts(&store, at + MINUTE), crate::escalate_due_alerts(&other, at + MINUTE));
    assert_eq!(x.unwrap().len() + y.unwrap().len(), 1);
}

async fn a_day_of_life_becomes_one_remote_check_in(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let midnight = day_start(20_600, &Default::default());
    let lively = store.add_elder(&elder("lively"), midnight).await.unwrap().id;
    let quiet = store.add_elder(&elder("quiet"), midnight).await.unwrap().id;
    store.pair_device("lively", lively, midnight).await.unwrap();
    store.pair_device("quiet", quiet, midnight).await.unwrap();
    let mut seq = 1;
    let mut at = midnight;
    while at < midnight + 24 * HOUR {
        let hour = (at - midnight) / HOUR;
        let awake = (7..21).contains(&hour);
        let batch = [
            (summary("lively", seq, if awake { 4 } else { 0 }), at),
            // The quiet home's sensor works, but shows one stir all day.
            (summary("quiet", seq, u16::from(hour == 9 && seq % 12 == 0)), at),
        ];
        crate::commit_batch(&store, &batch).await.unwrap();
        seq += 1;
        at += 5 * MINUTE;
    }
    // The day closes a little after midnight, on the timer.
    crate::tick_due_homes(&store, midnight + 24 * HOUR + 40 * MINUTE).await.unwrap();
    crate::tick_due_homes(&store, midnight + 25 * HOUR).await.unwrap();
    let visits = store.visits(lively).await.unwrap();
    assert_eq!(visits.len(), 1, "{visits:?}");
    assert_eq!((visits[0].mode.as_str(), visits[0].day.as_str()), ("remote", "2026-05-27"));
    let summary: serde_json::Value = serde_json::from_str(visits[0].summary.as_deref().unwrap()).unwrap();
    assert_eq!(summary["active_hours"], 14);
    assert_eq!(summary["first_activity_at"], midnight + 7 * HOUR);
    assert_eq!(summary["temp_min_dc"], 205);
    assert!(store.visits(quiet).await.unwrap().is_empty());
    let days = store.days(quiet).await.unwrap();
    assert_eq!(days.len(), 1);
    assert!(!days[0].counted);
    assert!(days[0].reason.contains("too little activity"), "{}", days[0].reason);
}

async fn away_pauses_inactivity_and_heightened_watch_tightens_it(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let t = t0();
    let away = home(&store, "away", t).await;
    let watched = home(&store, "watched", t).await;
    store.mark_away(away, t + 3 * 24 * HOUR, "住院", "村干部 张", t + MINUTE).await.unwrap();
    assert!(store.mark_away(away, t, "住院", "张", t + MINUTE).await.is_err(), "an absence ending in the past");
    let region = RegionFilter { county: Some("振兴区".into()), ..RegionFilter::default() };
    store.start_heightened_watch(&region, t + 2 * 24 * HOUR, "寒潮", "民政局", t + MINUTE).await.unwrap();
    // Under heightened watch 12 h becomes 6 h.
    crate::tick_due_homes(&store, t + 6 * HOUR).await.unwrap();
    let watched_alerts = alerts_of(&store, watched).await;
    assert_eq!(watched_alerts.len(), 1);
    assert!(watched_alerts[0].detail.contains("heightened watch"), "{}", watched_alerts[0].detail);
    crate::tick_due_homes(&store, t + 2 * 24 * HOUR).await.unwrap();
    assert!(alerts_of(&store, away).await.is_empty(), "away: no inactivity alert");
    // Smoke still raises while away.
    crate::commit_batch(&store, &[(event("away", 50, "smoke", "alarm"), t + 2 * 24 * HOUR)]).await.unwrap();
    assert_eq!(alerts_of(&store, away).await.len(), 1);
}

async fn a_silent_device_opens_a_notice_that_clears_itself(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let t = t0();
    let elder = home(&store, "fading", t).await;
    let silent = store.mark_silent_devices_offline(t + 16 * MINUTE).await.unwrap();
    assert_eq!(silent, ["fading"]);
    crate::tick_due_homes(&store, t + 16 * MINUTE).await.unwrap();
    let alerts = alerts_of(&store, elder).await;
    assert_eq!((alerts.len(), alerts[0].kind.as_str(), alerts[0].severity.as_str()), (1, "device_offline", "notice"));
    assert!(alerts[0].detail.contains("inactivity cannot be judged"));
    // Long past 12 h of silence: not judged while the sensor is dead.
    crate::tick_due_homes(&store, t + 20 * HOUR).await.unwrap();
    assert_eq!(alerts_of(&store, elder).await.len(), 1);
    crate::commit_batch(&store, &[(summary("fading", 2, 0), t + 21 * HOUR)]).await.unwrap();
    let alert = store.alert(alerts[0].id).await.unwrap().unwrap();
    assert_eq!((alert.status, alert.outcome), (AlertStatus::Resolved, Some(Outcome::ClearedItself)));
}

/// How a test webhook receiver misbehaves at first.
#[derive(Clone, Copy)]
enum Misbehave {
    /// Answers 503 to the first n requests.
    Refuse(usize),
    /// Never answers the first request about a smoke alarm (holds it for a minute).
    HangFirstSmoke,
}

/// The secret the test receiver shares with the sink.
const WEBHOOK_SECRET: &str = "shared with the receiver";

/// The receiver's own check of `X-Anxin-Signature` (`t=…,v1=…`, HMAC-SHA256
/// over `"{t}.{body}"`), written from the README as an SMS gateway's
/// developer would, not with Anxin's code: true when it holds and is fresh.
fn signed_by_anxin(headers: &axum::http::HeaderMap, body: &[u8]) -> bool {
    use hmac::{KeyInit, Mac};
    let Some(header) = headers.get("x-anxin-signature").and_then(|value| value.to_str().ok()) else { return false };
    let fields: std::collections::HashMap<&str, &str> =
        header.split(',').filter_map(|part| part.split_once('=')).collect();
    let (Some(t), Some(v1)) = (fields.get("t"), fields.get("v1")) else { return false };
    let Ok(sent) = t.parse::<i64>() else { return false };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    if (i64::try_from(now).unwrap() - sent).abs() > 300 {
        return false;
    }
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    expected == *v1
}

/// A webhook receiver that misbehaves first, then takes every correctly
/// signed change (401 for any other), keeping each body as it came.
async fn receiver(misbehave: Misbehave) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    use axum::http::StatusCode;
    let received = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(Mutex::new(0usize));
    let log = Arc::clone(&received);
    let hung = Arc::new(AtomicBool::new(false));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let log = Arc::clone(&log);
            let calls = Arc::clone(&calls);
            let hung = Arc::clone(&hung);
            async move {
                let call = {
                    let mut calls = calls.lock().unwrap();
                    *calls += 1;
                    *calls
                };
                if !signed_by_anxin(&headers, &body) {
                    return StatusCode::UNAUTHORIZED;
                }
                let change: serde_json::Value = serde_json::from_slice(&body).unwrap();
                match misbehave {
                    Misbehave::Refuse(n) if call <= n => return StatusCode::SERVICE_UNAVAILABLE,
                    Misbehave::HangFirstSmoke if change["kind"] == "smoke" && !hung.swap(true, Ordering::SeqCst) => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return StatusCode::NO_CONTENT;
                    }
                    _ => {}
                }
                log.lock().unwrap().push(change);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/hook"), received)
}

async fn a_busy_county_never_pushes_another_s_alerts_past_the_limit(backend: Backend) {
    use anxin_domain::access::{Principal, Region, Role};
    use anxin_store::Scope;
    let (store, _guard) = fresh_store(backend).await;
    let t = t0();
    // Twice the list's limit of help calls in 元宝区, newer than 振兴区's one.
    let mut busy = Vec::new();
    for i in 0..20 {
        let device = format!("busy-{i:02}");
        let id = store.add_elder(&NewElder { county: "元宝区".into(), ..elder(&device) }, t).await.unwrap().id;
        store.pair_device(&device, id, t).await.unwrap();
        busy.push((event(&device, 2, "help", "pressed"), t + 60_000 + i64::from(i)));
    }
    let quiet = home(&store, "quiet-home", t).await;
    crate::commit_batch(&store, &[(event("quiet-home", 2, "help", "pressed"), t + 1_000)]).await.unwrap();
    crate::commit_batch(&store, &busy).await.unwrap();
    let oncall = |role: Role, regions: &[&str], assigned: Vec<i64>| Principal {
        user_id: 1,
        name: "x".into(),
        role,
        regions: regions.iter().map(|r| Region::parse(r).unwrap()).collect(),
        assigned_elders: assigned,
    };
    let listed = async |who: &Principal| {
        let filter = AlertFilter { unresolved_only: true, limit: 10, scope: Scope::of(who), ..AlertFilter::default() };
        store.alerts(&filter).await.unwrap().iter().map(|alert| alert.elder_id).collect::<Vec<_>>()
    };
    assert_eq!(listed(&oncall(Role::Oncall, &["振兴区"], vec![])).await, [quiet], "filtered before the limit");
    assert_eq!(listed(&oncall(Role::Oncall, &["振兴区/站前街道/锦山社区"], vec![])).await, [quiet]);
    assert!(listed(&oncall(Role::Oncall, &["振兴区/别的街道"], vec![])).await.is_empty());
    assert_eq!(listed(&oncall(Role::Official, &["元宝区", "振兴区"], vec![])).await.len(), 10);
    assert_eq!(listed(&oncall(Role::Visitor, &[], vec![quiet])).await, [quiet]);
    assert!(listed(&oncall(Role::Visitor, &[], vec![])).await.is_empty(), "a visitor with no elders sees none");
    assert_eq!(listed(&oncall(Role::Admin, &[], vec![])).await.len(), 10);
}

async fn a_failing_webhook_is_retried_until_it_takes_every_change(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let t = t0();
    let elder = home(&store, "hooked", t).await;
    let (url, received) = receiver(Misbehave::Refuse(2)).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    store.register_sink("webhook").await.unwrap();
    let sink = tokio::spawn(run_sink(
        store.clone(),
        Sink::webhook(url, WEBHOOK_SECRET.into()).unwrap(),
        "test".into(),
        stopped,
    ));
    crate::commit_batch(&store, &[(event("hooked", 2, "smoke", "alarm"), t)]).await.unwrap();
    let id = alerts_of(&store, elder).await[0].id;
    store.acknowledge_alert(id, "李", t + 30_000).await.unwrap();
    // Staff write what they found; the note stays in the console.
    let note = "老人摔倒，高血压，已联系女儿王建国 13904150002";
    store.resolve_alert(id, "李", Outcome::FalseAlarm, note, t + 60_000).await.unwrap();
    let delivered = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if received.lock().unwrap().len() >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(delivered.is_ok(), "received {:?}", received.lock().unwrap());
    let mut actions: Vec<(i64, String)> = received
        .lock()
        .unwrap()
        .iter()
        .map(|change| (change["event_id"].as_i64().unwrap(), change["action"].as_str().unwrap().to_string()))
        .collect();
    actions.sort();
    actions.dedup();
    assert_eq!(actions.iter().map(|(_, a)| a.as_str()).collect::<Vec<_>>(), ["opened", "acknowledged", "resolved"]);
    for change in received.lock().unwrap().iter() {
        let sent = change.to_string();
        for personal in ["王建国", "13904150002", "高血压", "摔倒"] {
            assert!(!sent.contains(personal), "{personal} left the process: {sent}");
        }
        let keys: Vec<&str> = change.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(keys.iter().all(|key| !["detail", "note", "elder_name", "name", "phone"].contains(key)), "{keys:?}");
    }
    let resolved = received.lock().unwrap().iter().find(|change| change["action"] == "resolved").cloned().unwrap();
    assert_eq!((resolved["outcome"].as_str(), resolved["kind"].as_str()), (Some("false_alarm"), Some("smoke")));
    // The sink clears a retry once its answer is in, a moment after the
    // receiver logged the change.
    let cleared = tokio::time::timeout(Duration::from_secs(10), async {
        while store.pending_retries("webhook").await.unwrap() != 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(cleared.is_ok(), "{} retries left", store.pending_retries("webhook").await.unwrap());
    let _ = stop.send(true);
    let _ = sink.await;
}

async fn a_hanging_webhook_holds_up_only_its_own_change(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let t = t0();
    let first = home(&store, "hang-1", t).await;
    let second = home(&store, "hang-2", t).await;
    let (url, received) = receiver(Misbehave::HangFirstSmoke).await;
    store.register_sink("webhook").await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sink = tokio::spawn(run_sink(
        store.clone(),
        Sink::webhook(url, WEBHOOK_SECRET.into()).unwrap(),
        "test".into(),
        stopped,
    ));
    let wait_for = |elder: i64, within: Duration| {
        let received = Arc::clone(&received);
        async move {
            tokio::time::timeout(within, async {
                loop {
                    if received.lock().unwrap().iter().any(|change| change["elder_id"] == elder) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await
            .is_ok()
        }
    };
    // The first alert's (smoke) delivery hangs; the second's (help) goes through at once.
    crate::commit_batch(&store, &[(event("hang-1", 2, "smoke", "alarm"), t)]).await.unwrap();
    let written = std::time::Instant::now();
    crate::commit_batch(&store, &[(event("hang-2", 2, "help", "pressed"), t + 1_000)]).await.unwrap();
    assert!(wait_for(second, Duration::from_secs(5)).await, "the second alert waited for the hanging first");
    assert!(written.elapsed() < Duration::from_secs(5));
    assert!(!received.lock().unwrap().iter().any(|change| change["elder_id"] == first));
    // The hung attempt times out (10 s) and is retried: the first arrives too.
    assert!(wait_for(first, Duration::from_secs(30)).await, "the hung delivery was never retried");
    let _ = stop.send(true);
    let _ = sink.await;
}

async fn a_device_paired_but_never_heard_from_is_raised_after_the_grace(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let t = t0();
    let elder = store.add_elder(&elder("never"), t).await.unwrap().id;
    store.pair_device("never-on", elder, t).await.unwrap();
    crate::tick_due_homes(&store, t + 9 * MINUTE).await.unwrap();
    assert!(alerts_of(&store, elder).await.is_empty(), "installation grace");
    crate::tick_due_homes(&store, t + 10 * MINUTE).await.unwrap();
    let alerts = alerts_of(&store, elder).await;
    assert_eq!((alerts.len(), alerts[0].kind.as_str()), (1, "device_offline"));
    // Its first message clears it.
    crate::commit_batch(&store, &[(summary("never-on", 1, 0), t + 11 * MINUTE)]).await.unwrap();
    assert_eq!(store.alert(alerts[0].id).await.unwrap().unwrap().status, AlertStatus::Resolved);
}
