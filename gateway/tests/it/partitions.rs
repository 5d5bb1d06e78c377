//! Issue 20: PostgreSQL's messages partitioned by day (migrations
//! 0027–0030, `anxin_store::partitions`). Exactly-once survives it: every
//! copy of a message gets the same partition key, the device's own time,
//! so a copy received after midnight is still found; rows of a day not yet
//! made wait in the default partition and move into their day; retention
//! drops whole days; the table of before becomes the first partition
//! without being rewritten, and its rows are still found. A process keeps
//! the boot starts it saw committed.

use std::borrow::Cow;

use anxin_domain::time::{DAY_MS, HOUR_MS};
use anxin_gateway::ingest::{Checked, check};
use anxin_store::{Database, MessageRow, RetentionPolicy, Store};
use anxin_testkit::PostgresDatabase;
use sqlx::Connection;

use crate::{Backend, DatabaseGuard, commit_batch, fresh_store};

/// 2026-05-28 00:00 UTC.
const DAY: i64 = 1_780_000_000_000 - 1_780_000_000_000 % DAY_MS;
/// The device booted a day and a bit before the first message below.
const UP: u64 = 90_000_000;

fn event(device: &str, boot: u32, seq: u32, up: u64) -> Checked {
    let payload = format!(r#"{{"v":1,"boot":{boot},"seq":{seq},"up":{up},"kind":"door","state":"open"}}"#);
    check(&format!("anxin/v1/dev/{device}/event"), payload.as_bytes())
}

/// A door event of `device`'s boot `boot`, numbered `seq`, `UP + seq` ms
/// after the boot, as ingest would write it.
fn door_row(device: &str, boot: u32, seq: u32, received_at: i64) -> MessageRow<'_> {
    MessageRow {
        device_id: device,
        boot,
        seq,
        channel: "event",
        kind: Some("door"),
        state: Some("open"),
        up: UP + u64::from(seq),
        received_at,
        elder_id: None,
        payload: "{}",
    }
}

fn url_of(guard: &DatabaseGuard) -> &str {
    let DatabaseGuard::Postgres(database) = guard else { unreachable!("a PostgreSQL guard") };
    &database.url
}

/// Each stored copy of `(device, seq)`: the partition holding it and its `at`.
async fn where_stored(url: &str, device: &str, seq: i64) -> Vec<(String, i64)> {
    let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_as("SELECT tableoid::regclass::text, at FROM messages WHERE device_id = $1 AND seq = $2")
        .bind(device)
        .bind(seq)
        .fetch_all(&mut connection)
        .await
        .unwrap()
}

fn day_partition(day_start: i64) -> String {
    let day = chrono::DateTime::from_timestamp_millis(day_start).unwrap().date_naive();
    format!("messages_p{}", day.format("%Y%m%d"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_copy_received_after_midnight_is_found_in_its_day() {
    let (store, guard) = fresh_store(Backend::Postgres).await;
    let made = store.prepare_message_partitions(DAY).await.unwrap();
    assert_eq!(made.len(), 9, "yesterday, today and a week ahead: {made:?}");
    let before_midnight = DAY + DAY_MS - 10_000;
    let message = event("node-m", 9, 1, UP);
    let first = commit_batch(&store, &[(message.clone(), before_midnight)]).await.unwrap();
    assert_eq!(first.stored, 1);
    // The PUBACK was lost; the device sends it again, received after midnight.
    let again = commit_batch(&store, &[(message, DAY + DAY_MS + 30_000)]).await.unwrap();
    assert_eq!((again.stored, again.duplicates.len()), (0, 1), "the copy after midnight is a duplicate");
    assert_eq!(where_stored(url_of(&guard), "node-m", 1).await, [(day_partition(DAY), before_midnight)]);
    // The same boot's next message, sent after midnight, is in the next day.
    commit_batch(&store, &[(event("node-m", 9, 2, UP + 60_000), DAY + DAY_MS + 50_000)]).await.unwrap();
    assert_eq!(
        where_stored(url_of(&guard), "node-m", 2).await,
        [(day_partition(DAY + DAY_MS), before_midnight + 60_000)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_of_a_day_not_made_wait_in_the_default_partition_then_move_into_it() {
    let (store, guard) = fresh_store(Backend::Postgres).await;
    let at = DAY + 3 * HOUR_MS;
    commit_batch(&store, &[(event("node-d", 4, 1, UP), at)]).await.unwrap();
    assert_eq!(where_stored(url_of(&guard), "node-d", 1).await, [("messages_default".to_string(), at)]);
    // Two processes' upkeeps at once: each day is made once, by one of them.
    let other = crate::reopen(&guard).await;
    let (a, b) = tokio::join!(store.prepare_message_partitions(at), other.prepare_message_partitions(at));
    let (mut a, b) = (a.unwrap(), b.unwrap());
    a.extend(b);
    a.sort();
    assert_eq!(a.len(), 9, "each day made once: {a:?}");
    assert_eq!(where_stored(url_of(&guard), "node-d", 1).await, [(day_partition(DAY), at)]);
    let again = commit_batch(&store, &[(event("node-d", 4, 1, UP), at + 5_000)]).await.unwrap();
    assert_eq!(again.duplicates.len(), 1, "still found after the move");
    assert_eq!(store.message_count().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_writers_meeting_a_new_boot_at_once_agree_when_it_began() {
    let (store, guard) = fresh_store(Backend::Postgres).await;
    store.prepare_message_partitions(DAY).await.unwrap();
    let other = crate::reopen(&guard).await;
    let row = |seq: u32, received_at: i64| door_row("node-b", 5, seq, received_at);
    let mut first = store.begin_write().await.unwrap();
    assert_eq!(first.insert_messages(&[row(1, DAY + HOUR_MS)]).await.unwrap(), [true]);
    // The second, with another receipt time (another guess at the boot's
    // start), waits for the first's commit and then takes its start.
    let second = tokio::spawn(async move {
        let mut second = other.begin_write().await.unwrap();
        let new = second.insert_messages(&[row(2, DAY + HOUR_MS + 7_000)]).await.unwrap();
        second.commit().await.unwrap();
        new
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second writer waits for the first");
    first.commit().await.unwrap();
    assert_eq!(second.await.unwrap(), [true]);
    let start = DAY + HOUR_MS - i64::try_from(UP + 1).unwrap();
    let one = where_stored(url_of(&guard), "node-b", 1).await;
    let two = where_stored(url_of(&guard), "node-b", 2).await;
    assert_eq!((one[0].1, two[0].1), (start + i64::try_from(UP + 1).unwrap(), start + i64::try_from(UP + 2).unwrap()));
}

/// A process keeps each device's boot start once committed, and only then:
/// a start its own transaction wrote and rolled back is not kept (another
/// writer's committed start is what every copy must use), and a kept one is
/// not read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_boot_start_is_kept_once_committed_and_not_before() {
    let (store, guard) = fresh_store(Backend::Postgres).await;
    store.prepare_message_partitions(DAY).await.unwrap();
    let other = crate::reopen(&guard).await;
    let row = |seq: u32, received_at: i64| door_row("node-c", 9, seq, received_at);
    // This process meets the boot first and rolls back; the other stores
    // the boot with another receipt time, so another start.
    let mut rolled_back = store.begin_write().await.unwrap();
    assert_eq!(rolled_back.insert_messages(&[row(1, DAY + HOUR_MS)]).await.unwrap(), [true]);
    rolled_back.rollback().await.unwrap();
    let mut write = other.begin_write().await.unwrap();
    assert_eq!(write.insert_messages(&[row(1, DAY + HOUR_MS + 7_000)]).await.unwrap(), [true]);
    write.commit().await.unwrap();
    let start = DAY + HOUR_MS + 7_000 - i64::try_from(UP + 1).unwrap();
    // A copy of message 1 here is found, with the other's start.
    let mut write = store.begin_write().await.unwrap();
    assert_eq!(write.insert_messages(&[row(1, DAY + HOUR_MS)]).await.unwrap(), [false], "a copy, not a new message");
    assert_eq!(write.insert_messages(&[row(2, DAY + HOUR_MS + 1_000)]).await.unwrap(), [true]);
    write.commit().await.unwrap();
    assert_eq!(where_stored(url_of(&guard), "node-c", 1).await.len(), 1);
    // Committed, the start is kept: with its row gone from the table, the
    // next message still takes it (and writes no guess of its own).
    let mut connection = sqlx::PgConnection::connect(url_of(&guard)).await.unwrap();
    sqlx::query("DELETE FROM device_boots WHERE device_id = 'node-c'").execute(&mut connection).await.unwrap();
    let mut write = store.begin_write().await.unwrap();
    assert_eq!(write.insert_messages(&[row(3, DAY + 2 * HOUR_MS)]).await.unwrap(), [true]);
    write.commit().await.unwrap();
    assert_eq!(where_stored(url_of(&guard), "node-c", 3).await[0].1, start + i64::try_from(UP + 3).unwrap());
    let boots: i64 = sqlx::query_scalar("SELECT count(*) FROM device_boots WHERE device_id = 'node-c'")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(boots, 0, "the kept start was used, not read or guessed again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_retention_drops_whole_days_and_deletes_no_row_of_a_kept_day() {
    let (store, guard) = fresh_store(Backend::Postgres).await;
    store.prepare_message_partitions(DAY).await.unwrap();
    // Six days of messages, 50 a day, one device per day.
    for day in 0..6 {
        let batch: Vec<(Checked, i64)> = (0..50)
            .map(|seq| {
                let received = DAY + day * DAY_MS + i64::from(seq) * 60_000;
                (event(&format!("node-{day}"), 1, seq, UP + u64::from(seq) * 60_000), received)
            })
            .collect();
        commit_batch(&store, &batch).await.unwrap();
    }
    // A device that booted again on the second day: its first boot's start
    // can go once the second boot began before the cutoff.
    commit_batch(&store, &[(event("node-r", 1, 1, UP), DAY + HOUR_MS)]).await.unwrap();
    commit_batch(&store, &[(event("node-r", 2, 1, 5_000), DAY + DAY_MS + HOUR_MS)]).await.unwrap();
    let mut connection = sqlx::PgConnection::connect(url_of(&guard)).await.unwrap();
    sqlx::query("ANALYZE messages").execute(&mut connection).await.unwrap();
    // Kept for three days, at noon of the sixth: the first two days are past.
    let policy = RetentionPolicy { raw_messages_days: 3, ..RetentionPolicy::default() };
    let report = store.apply_retention(&policy, DAY + 5 * DAY_MS + 12 * HOUR_MS, 1_000).await.unwrap();
    assert!(report.failed.is_empty(), "{report}");
    assert_eq!(report.of(anxin_store::Retained::RawMessages), 102, "two days' rows, dropped:\n{report}");
    let boots: Vec<(String, i64)> =
        sqlx::query_as("SELECT device_id, boot FROM device_boots WHERE device_id = 'node-r'")
            .fetch_all(&mut connection)
            .await
            .unwrap();
    assert_eq!(boots, [("node-r".to_string(), 2)], "the boot before the current one, begun before the cutoff, went");
    let days: Vec<_> = store.message_days().await.unwrap().into_iter().map(|d| d.day).collect();
    let first_kept = chrono::DateTime::from_timestamp_millis(DAY + 2 * DAY_MS).unwrap().date_naive();
    assert_eq!(days.first(), Some(&first_kept), "{days:?}");
    // The third day straddles the cutoff: kept whole, not thinned by DELETE.
    assert_eq!(store.message_count().await.unwrap(), 200);
    let deleted: i64 = sqlx::query_scalar("SELECT n_tup_del FROM pg_stat_user_tables WHERE relname = $1")
        .bind(day_partition(DAY + 2 * DAY_MS))
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(deleted, 0);
}

/// The migrations up to 0026 only: the table of before partitioning.
fn up_to_0026(mut migrator: sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    migrator.migrations = Cow::Owned(migrator.migrations.iter().filter(|m| m.version <= 26).cloned().collect());
    migrator
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_filled_table_becomes_the_first_partition_unrewritten_and_its_rows_are_still_found() {
    let database = PostgresDatabase::create().await;
    let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    up_to_0026(sqlx::migrate!("../migrations/postgres")).run(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO messages (device_id, boot, seq, channel, kind, state, up, received_at, payload)
         SELECT 'node-' || (n % 100), 3, n, 'event', 'door', 'open', n * 1000, $1 + n * 1000, '{}'
         FROM generate_series(1, 20000) n",
    )
    .bind(DAY)
    .execute(&pool)
    .await
    .unwrap();
    let file: i64 =
        sqlx::query_scalar("SELECT pg_relation_filenode('messages')::bigint").fetch_one(&pool).await.unwrap();
    pool.close().await;

    let store = Store::open(&Database::Postgres(database.url.clone())).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), anxin_store::newest_schema());
    let mut connection = sqlx::PgConnection::connect(&database.url).await.unwrap();
    let (same_file, bound): (i64, String) = sqlx::query_as(
        "SELECT pg_relation_filenode('messages_before_partitioning')::bigint,
                pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'messages_before_partitioning'",
    )
    .fetch_one(&mut connection)
    .await
    .unwrap();
    assert_eq!(same_file, file, "attached as it was, not rewritten");
    assert_eq!(bound, "FOR VALUES FROM (MINVALUE) TO ('1')");
    assert_eq!(store.message_count().await.unwrap(), 20_000);
    // A copy of a message stored before, arriving now: found there.
    let old = event("node-42", 3, 42, 42_000);
    let again = commit_batch(&store, &[(old, DAY + 50 * DAY_MS)]).await.unwrap();
    assert_eq!((again.stored, again.duplicates.len()), (0, 1));
    store.prepare_message_partitions(DAY + 50 * DAY_MS).await.unwrap();
    let new = commit_batch(&store, &[(event("node-42", 3, 20_001, 20_001_000), DAY + 50 * DAY_MS)]).await.unwrap();
    assert_eq!(new.stored, 1);
    assert_eq!(where_stored(&database.url, "node-42", 20_001).await[0].0, day_partition(DAY + 50 * DAY_MS));
    // Retention empties the table of before by batches, by receipt time.
    let report = store
        .apply_retention(
            &RetentionPolicy { raw_messages_days: 30, ..RetentionPolicy::default() },
            DAY + 50 * DAY_MS,
            5_000,
        )
        .await
        .unwrap();
    assert_eq!(report.of(anxin_store::Retained::RawMessages), 20_000, "{report}");
    assert_eq!(store.message_count().await.unwrap(), 1);
}
