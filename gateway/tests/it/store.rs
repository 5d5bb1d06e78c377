//! The store's queries, on SQLite and on PostgreSQL alike.

use anxin_domain::registry::NewElder;
use anxin_gateway::ingest::{Checked, check};
use anxin_store::MessageCursor;

use crate::{Backend, fresh_store, on_both_backends};

on_both_backends!(
    a_message_is_stored_once_however_often_it_arrives,
    an_unknown_device_becomes_unclaimed_and_its_messages_are_kept,
    pairing_binds_later_messages_to_the_elders_home,
    bad_input_is_quarantined_by_reason_beside_good_input,
    status_and_last_will_set_the_device_online_and_offline,
    summaries_roll_up_per_hour_and_update_device_health,
    a_device_silent_for_three_intervals_is_marked_offline,
    raw_messages_expire_but_rollups_stay,
    the_tail_cursor_returns_each_message_once_in_order,
    a_home_s_look_moves_earlier_at_once_and_later_only_once_passed,
);

use anxin_domain::time::HOUR_MS as HOUR;
const T0: i64 = 1_780_000_000_000 - 1_780_000_000_000 % HOUR;

fn event(device: &str, boot: u32, seq: u32, kind: &str, state: &str) -> Checked {
    let payload = format!(r#"{{"v":1,"boot":{boot},"seq":{seq},"up":{},"kind":"{kind}","state":"{state}"}}"#, seq * 10);
    check(&format!("anxin/v1/dev/{device}/event"), payload.as_bytes())
}

fn summary(device: &str, seq: u32, motion: u16, temp_dc: i16) -> Checked {
    let payload = format!(
        r#"{{"v":1,"boot":7,"seq":{seq},"up":{},"interval_s":300,"motion":{motion},"door_opens":1,"temp_dc":{temp_dc},"battery":77,"rssi":-60}}"#,
        seq * 300_000
    );
    check(&format!("anxin/v1/dev/{device}/summary"), payload.as_bytes())
}

fn new_elder() -> NewElder {
    NewElder {
        name: "王秀英".into(),
        county: "振兴区".into(),
        township: "站前街道".into(),
        village: "锦山社区".into(),
        address: "锦山大街 12 号 3 单元 501".into(),
        phone: Some("13904150001".into()),
        emergency_contact: Some("王建国".into()),
        emergency_phone: Some("13904150002".into()),
        categories: String::new(),
        inactivity_hours: None,
        ..NewElder::default()
    }
}

async fn a_message_is_stored_once_however_often_it_arrives(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let help = event("node-a", 1, 1, "help", "pressed");
    let first = crate::commit_batch(&store, &[(help.clone(), T0)]).await.unwrap();
    assert_eq!((first.stored, first.duplicates.len()), (1, 0));
    // Redelivered, alone and inside a batch with itself.
    let again = crate::commit_batch(&store, &[(help.clone(), T0 + 1), (help.clone(), T0 + 2)]).await.unwrap();
    assert_eq!((again.stored, again.duplicates.len()), (0, 2));
    // Same seq after a reboot is a different message.
    let rebooted = crate::commit_batch(&store, &[(event("node-a", 2, 1, "help", "pressed"), T0 + 3)]).await.unwrap();
    assert_eq!(rebooted.stored, 1);
    assert_eq!(store.message_count().await.unwrap(), 2);
    assert_eq!(store.device("node-a").await.unwrap().unwrap().message_count, 2);
}

async fn an_unknown_device_becomes_unclaimed_and_its_messages_are_kept(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    crate::commit_batch(&store, &[(event("stranger", 1, 0, "door", "open"), T0)]).await.unwrap();
    let unclaimed = store.devices(true).await.unwrap();
    assert_eq!(unclaimed.len(), 1);
    assert_eq!(
        (unclaimed[0].device_id.as_str(), unclaimed[0].elder_id, unclaimed[0].first_seen),
        ("stranger", None, T0)
    );
    let kept = store.latest_messages(Some("stranger"), 10).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].elder_id, None);
}

async fn pairing_binds_later_messages_to_the_elders_home(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    crate::commit_batch(&store, &[(event("node-p", 1, 0, "door", "open"), T0)]).await.unwrap();
    let elder = store.add_elder(&new_elder(), T0).await.unwrap();
    assert_eq!(store.elders().await.unwrap(), vec![elder.clone()]);
    store.pair_device("node-p", elder.id, T0 + 1).await.unwrap();
    // A device paired before it was ever heard from is registered too.
    store.pair_device("node-q", elder.id, T0 + 1).await.unwrap();
    assert!(store.devices(true).await.unwrap().is_empty());
    crate::commit_batch(&store, &[(event("node-p", 1, 1, "door", "closed"), T0 + 2)]).await.unwrap();
    let messages = store.latest_messages(Some("node-p"), 10).await.unwrap();
    assert_eq!(messages.iter().map(|m| m.elder_id).collect::<Vec<_>>(), [None, Some(elder.id)]);
    let error = store.pair_device("node-p", 999, T0).await.unwrap_err();
    assert_eq!(error.to_string(), "there is no elder with id 999");
}

async fn bad_input_is_quarantined_by_reason_beside_good_input(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let batch = [
        (check("anxin/v1/dev/n/event", b"not json"), T0),
        (event("n", 1, 0, "smoke", "alarm"), T0),
        (check("anxin/v1/dev/BAD/event", b"{}"), T0),
        (check("anxin/v1/dev/n/event", &vec![b'x'; 10_000]), T0),
        (event("n", 1, 1, "smoke", "clear"), T0),
    ];
    let outcome = crate::commit_batch(&store, &batch).await.unwrap();
    assert_eq!((outcome.stored, outcome.rejected), (2, 3));
    assert_eq!(
        store.quarantine_counts().await.unwrap(),
        [("bad_device_id".into(), 1), ("not_json".into(), 1), ("too_large".into(), 1)]
    );
}

async fn status_and_last_will_set_the_device_online_and_offline(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let online = check("anxin/v1/dev/n/status", br#"{"v":1,"boot":5,"state":"online","fw":"1.2.3"}"#);
    crate::commit_batch(&store, &[(online, T0)]).await.unwrap();
    let device = store.device("n").await.unwrap().unwrap();
    assert!(device.online);
    assert_eq!(device.firmware.as_deref(), Some("1.2.3"));
    let will = check("anxin/v1/dev/n/status", br#"{"v":1,"state":"offline"}"#);
    crate::commit_batch(&store, &[(will, T0 + 60_000)]).await.unwrap();
    let device = store.device("n").await.unwrap().unwrap();
    assert!(!device.online);
    assert_eq!(device.offline_reason.as_deref(), Some("last_will"));
    assert_eq!((device.status_changed_at, device.last_seen), (T0 + 60_000, T0), "a Last Will is not a sign of life");
    // Any message brings it back online.
    crate::commit_batch(&store, &[(summary("n", 1, 0, 200), T0 + 120_000)]).await.unwrap();
    assert!(store.device("n").await.unwrap().unwrap().online);
}

async fn summaries_roll_up_per_hour_and_update_device_health(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let batch = [
        (summary("n", 1, 3, 210), T0 + 5 * 60_000),
        (summary("n", 2, 4, 190), T0 + 10 * 60_000),
        (summary("n", 3, 5, 230), T0 + HOUR + 60_000),
    ];
    crate::commit_batch(&store, &batch).await.unwrap();
    assert_eq!(store.hourly_activity("n").await.unwrap(), [(T0, 2, 7, 2), (T0 + HOUR, 1, 5, 1)]);
    let device = store.device("n").await.unwrap().unwrap();
    assert_eq!(
        (device.battery, device.rssi, device.temp_dc, device.summary_interval_s),
        (Some(77), Some(-60), Some(230), Some(300))
    );
}

async fn a_device_silent_for_three_intervals_is_marked_offline(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    crate::commit_batch(&store, &[(summary("quiet", 1, 0, 200), T0), (summary("busy", 1, 0, 200), T0)]).await.unwrap();
    crate::commit_batch(&store, &[(summary("busy", 2, 0, 200), T0 + 14 * 60_000)]).await.unwrap();
    assert!(
        store.mark_silent_devices_offline(T0 + 15 * 60_000).await.unwrap().is_empty(),
        "exactly 3 intervals is not yet late"
    );
    assert_eq!(store.mark_silent_devices_offline(T0 + 15 * 60_000 + 1).await.unwrap(), ["quiet"]);
    let quiet = store.device("quiet").await.unwrap().unwrap();
    assert_eq!((quiet.online, quiet.offline_reason.as_deref()), (false, Some("missed_summaries")));
    assert!(store.mark_silent_devices_offline(T0 + 15 * 60_000 + 2).await.unwrap().is_empty(), "marked once");
    let counts = store.device_status_counts().await.unwrap();
    assert_eq!((counts.online, counts.offline), (1, 1));
}

async fn raw_messages_expire_but_rollups_stay(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    crate::commit_batch(&store, &[(summary("n", 1, 2, 200), T0), (summary("n", 2, 2, 200), T0 + 2 * HOUR)])
        .await
        .unwrap();
    assert_eq!(store.expire_before(T0 + HOUR).await.unwrap(), 1);
    assert_eq!(store.message_count().await.unwrap(), 1);
    assert_eq!(store.hourly_activity("n").await.unwrap().len(), 2);
}

async fn the_tail_cursor_returns_each_message_once_in_order(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let batch: Vec<_> = (0..5).map(|seq| (event("a", 1, seq, "door", "open"), T0 + i64::from(seq / 2))).collect();
    crate::commit_batch(&store, &batch).await.unwrap();
    crate::commit_batch(&store, &[(event("b", 1, 0, "help", "pressed"), T0)]).await.unwrap();
    let mut cursor = MessageCursor::default();
    let mut seen = Vec::new();
    loop {
        let page = store.messages_after(&cursor, None, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        cursor = MessageCursor {
            received_at: last.received_at,
            device_id: last.device_id.clone(),
            boot: last.boot,
            seq: last.seq,
        };
        seen.extend(page.into_iter().map(|m| (m.device_id, m.seq)));
    }
    assert_eq!(
        seen,
        [("a".into(), 0), ("a".into(), 1), ("b".into(), 0), ("a".into(), 2), ("a".into(), 3), ("a".into(), 4)]
    );
    let only_b = store.messages_after(&MessageCursor::default(), Some("b"), 10).await.unwrap();
    assert_eq!(only_b.len(), 1);
}

/// `table`'s updates and HOT updates, once PostgreSQL counts `at_least`
/// updates. Closing the store's pool ends its connections, which hand in
/// their statistics.
async fn updates_of(store: anxin_store::Store, url: &str, table: &str, at_least: i64) -> (i64, i64) {
    use sqlx::Connection;
    store.close().await;
    let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
    loop {
        let row: (i64, i64) =
            sqlx::query_as("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = $1")
                .bind(table)
                .fetch_one(&mut connection)
                .await
                .unwrap();
        if row.0 >= at_least {
            return row;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A province's PostgreSQL: the devices' rows, updated with every message,
/// keep room on their pages (migration 0026, fillfactor), so most of their
/// updates are HOT — the new version on the same page, no index entry
/// written. 2,000 devices fill some forty pages; without the room nearly
/// every update wrote the indexes too (5 % HOT in `anxin bench cluster`,
/// 86 % with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_updates_of_the_devices_rows_are_mostly_hot() {
    let (store, guard) = fresh_store(Backend::Postgres).await;
    let crate::DatabaseGuard::Postgres(database) = &guard else { unreachable!("a PostgreSQL guard") };
    let devices: Vec<String> = (0..2_000).map(|n| format!("hot-{n:04}")).collect();
    for seq in 1..=3 {
        for chunk in devices.chunks(250) {
            let batch: Vec<(Checked, i64)> =
                chunk.iter().map(|device| (summary(device, seq, 1, 200), T0 + i64::from(seq) * 300_000)).collect();
            crate::commit_batch(&store, &batch).await.unwrap();
        }
    }
    let (updated, hot) = updates_of(store, &database.url, "devices", 4_000).await;
    assert!(hot * 2 > updated, "{hot} of {updated} updates of devices were HOT");
}

/// The stored deadline of a home is when the timers look at it next, never
/// later than its rules' deadline: moved earlier at once, later only once
/// it has passed (so a home's update usually changes no indexed column).
async fn a_home_s_look_moves_earlier_at_once_and_later_only_once_passed(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let elder = store.populate_for_benchmark(1, "look", T0, |_, _| (String::new(), T0 + 10 * HOUR)).await.unwrap()[0];
    let write_due = |due: i64, now: i64| {
        let store = store.clone();
        async move {
            let mut write = store.begin_write().await.unwrap();
            write.write_home_states(&[(elder, String::new(), due)], now).await.unwrap();
            write.commit().await.unwrap();
        }
    };
    let due_by = |at: i64| {
        let store = store.clone();
        async move { store.due_homes(at, 10).await.unwrap() }
    };
    // Earlier: at once.
    write_due(T0 + HOUR, T0).await;
    assert_eq!(due_by(T0 + HOUR).await, [(elder, T0 + HOUR)]);
    // Later, before the look: kept, the look comes at the earlier moment.
    write_due(T0 + 5 * HOUR, T0 + 1_000).await;
    assert_eq!(due_by(T0 + HOUR).await, [(elder, T0 + HOUR)]);
    // Written at or after the look (the timers looked, or a message came):
    // the rules' deadline then.
    write_due(T0 + 5 * HOUR, T0 + HOUR).await;
    assert!(due_by(T0 + 5 * HOUR - 1).await.is_empty());
    assert_eq!(due_by(T0 + 5 * HOUR).await, [(elder, T0 + 5 * HOUR)]);
}

/// `home_watch`, written once per home per batch, keeps room on its pages
/// (migration 0031) and its indexed deadline moves later only once passed,
/// so most of its updates are HOT: 78 % here (the first batch, moving each
/// deadline earlier, cannot be), 0 % with the deadline written as it moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_updates_of_the_home_watch_rows_are_mostly_hot() {
    let (store, guard) = fresh_store(Backend::Postgres).await;
    let crate::DatabaseGuard::Postgres(database) = &guard else { unreachable!("a PostgreSQL guard") };
    store.populate_for_benchmark(2_000, "hot", T0, |_, _| (String::new(), T0 + 24 * HOUR)).await.unwrap();
    let devices: Vec<String> = (0..2_000).map(|n| format!("hot-{n:06}")).collect();
    // Ten summaries each, with activity: every one moves the home's
    // inactivity deadline later.
    for seq in 1..=10 {
        for chunk in devices.chunks(250) {
            let batch: Vec<(Checked, i64)> =
                chunk.iter().map(|device| (summary(device, seq, 3, 200), T0 + i64::from(seq) * 300_000)).collect();
            let outcome = crate::commit_batch(&store, &batch).await.unwrap();
            assert_eq!(outcome.stored, chunk.len() as u64);
        }
    }
    let (updated, hot) = updates_of(store, &database.url, "home_watch", 20_000).await;
    assert!(hot * 2 > updated, "{hot} of {updated} updates of home_watch were HOT");
}
