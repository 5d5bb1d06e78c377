//! PostgreSQL's `messages`, partitioned by day (migrations 0027–0030): the
//! table a province writes over a hundred GB a day into is kept by
//! creating each day's partition ahead and dropping it whole when its time
//! is past — never a `DELETE` of a day's rows.
//!
//! | partition | holds | made | removed |
//! |---|---|---|---|
//! | `messages_pYYYYMMDD` | `at` in that UTC day | by the upkeep, a week ahead | dropped whole by retention |
//! | `messages_before_partitioning` | rows stored before 0030 (`at` = 0) | by 0030, from the table of before | emptied in batches by retention |
//! | `messages_default` | strays: a device clock far off, a day not created | by 0030 | moved into its day when that day is made; emptied in batches |
//!
//! Every step takes its locks with a `lock_timeout`: a step that cannot
//! have them at once (a long report reading the table) gives up and is tried
//! at the next run, rather than queueing ingest's inserts behind it.
//! On SQLite (one district, no partitions) these do nothing.

use chrono::{Days, NaiveDate};
use sqlx::Row;

use super::{Backend, Store, StoreError};
use anxin_domain::time::DAY_MS;

/// Days created ahead of today, so that a week without the upkeep still
/// finds its partitions.
pub const DAYS_AHEAD: u64 = 7;

/// Held (transaction-scoped) while partitions are made or dropped: every
/// writer, edge and console runs the upkeep, one at a time does this.
const PARTITIONS_LOCK: i64 = 0x616e_7869_6e70; // "anxinp"

/// How long a partition step waits for its locks before trying later.
const LOCK_TIMEOUT: &str = "2s";

/// The partition of one day's messages.
fn partition_name(day: NaiveDate) -> String {
    format!("messages_p{}", day.format("%Y%m%d"))
}

fn day_of_name(name: &str) -> Option<NaiveDate> {
    let digits = name.strip_prefix("messages_p")?;
    NaiveDate::parse_from_str(digits, "%Y%m%d").ok().filter(|_| digits.len() == 8)
}

/// The UTC day holding `ms`, and its bounds in ms.
fn day_holding(ms: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().date_naive()
}

fn day_start(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp_millis()
}

/// A day partition: its day and, as PostgreSQL last estimated it, its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDay {
    pub day: NaiveDate,
    pub rows_estimate: u64,
}

impl Store {
    /// The day partitions of `messages`, oldest first (none on SQLite).
    pub async fn message_days(&self) -> Result<Vec<MessageDay>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT c.relname::text AS name, GREATEST(c.reltuples, 0)::bigint AS rows
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'messages'::regclass",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut days = Vec::new();
        for row in rows {
            if let Some(day) = day_of_name(&row.try_get::<String, _>("name")?) {
                days.push(MessageDay { day, rows_estimate: row.try_get::<i64, _>("rows")?.unsigned_abs() });
            }
        }
        days.sort_by_key(|d| d.day);
        Ok(days)
    }

    /// Makes the day partitions from the day before `now`'s to
    /// [`DAYS_AHEAD`] after it that do not exist yet; returns the days made.
    /// Run by the upkeep at start and every hour.
    pub async fn prepare_message_partitions(&self, now: i64) -> Result<Vec<NaiveDate>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(Vec::new());
        }
        let have: Vec<NaiveDate> = self.message_days().await?.into_iter().map(|d| d.day).collect();
        let today = day_holding(now);
        let mut made = Vec::new();
        for ahead in 0..=DAYS_AHEAD + 1 {
            let Some(day) = today.pred_opt().and_then(|yesterday| yesterday.checked_add_days(Days::new(ahead))) else {
                continue;
            };
            if !have.contains(&day) && self.make_message_day(day).await? {
                made.push(day);
            }
        }
        if !made.is_empty() {
            tracing::info!(days = ?made, "messages: day partitions made");
        }
        Ok(made)
    }

    /// A transaction for one partition step: this process's turn among
    /// all (the advisory lock), and locks waited for [`LOCK_TIMEOUT`] at most.
    async fn partition_step(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")))
            .execute(&mut *transaction)
            .await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PARTITIONS_LOCK).execute(&mut *transaction).await?;
        Ok(transaction)
    }

    /// Makes one day's partition: a table of the parent's shape, filled with
    /// the rows of that day the default partition took meanwhile (removed
    /// from it), then attached. The default partition is locked against
    /// inserts for the moment (only strays go there), so no row of the day
    /// lands in it between the move and the attach. False if another
    /// process made it first.
    async fn make_message_day(&self, day: NaiveDate) -> Result<bool, StoreError> {
        let name = partition_name(day);
        let (from, to) = (day_start(day), day_start(day) + DAY_MS);
        let mut transaction = self.partition_step().await?;
        let exists: i64 = sqlx::query("SELECT COUNT(*) AS n FROM pg_class WHERE relname = $1")
            .bind(&name)
            .fetch_one(&mut *transaction)
            .await?
            .try_get("n")?;
        if exists > 0 {
            return Ok(false);
        }
        const COLUMNS: &str = "device_id, boot, seq, channel, kind, state, up, received_at, elder_id, payload, at";
        for statement in [
            "LOCK TABLE messages_default IN EXCLUSIVE MODE".to_string(),
            format!("CREATE TABLE {name} (LIKE messages INCLUDING DEFAULTS)"),
            format!(
                "INSERT INTO {name} ({COLUMNS}) SELECT {COLUMNS} FROM messages_default WHERE at >= {from} AND at < {to}"
            ),
            format!("DELETE FROM messages_default WHERE at >= {from} AND at < {to}"),
            format!("ALTER TABLE messages ATTACH PARTITION {name} FOR VALUES FROM ({from}) TO ({to})"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(true)
    }

    /// Drops the day partitions wholly before `cutoff`; returns how many rows
    /// they held (PostgreSQL's estimate: counting a day of a province's rows
    /// would read them all) and the days dropped. A day whose lock cannot be
    /// had at once is left for the next run.
    pub(crate) async fn drop_message_days_before(&self, cutoff: i64) -> Result<(u64, Vec<NaiveDate>), StoreError> {
        let mut rows = 0;
        let mut dropped = Vec::new();
        for MessageDay { day, rows_estimate } in self.message_days().await? {
            if day_start(day) + DAY_MS > cutoff {
                break;
            }
            let mut transaction = self.partition_step().await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {}", partition_name(day))))
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await?;
            rows += rows_estimate;
            dropped.push(day);
        }
        if !dropped.is_empty() {
            tracing::info!(days = ?dropped, rows_estimate = rows, "messages: day partitions dropped");
        }
        Ok((rows, dropped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_partition_is_named_by_its_utc_day_and_read_back() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        assert_eq!(partition_name(day), "messages_p20261207");
        assert_eq!(day_of_name("messages_p20261207"), Some(day));
        assert_eq!(day_of_name("messages_default"), None);
        assert_eq!(day_of_name("messages_before_partitioning"), None);
        // 2026-12-07 00:00 UTC, and the last ms of the day is still in it.
        assert_eq!(day_start(day), 1_796_601_600_000);
        assert_eq!(day_holding(day_start(day) + DAY_MS - 1), day);
    }
}
