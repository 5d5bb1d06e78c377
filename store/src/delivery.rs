//! Delivery bookkeeping of the alert sinks: each sink's lease and cursor
//! (`alert_sinks`) and the deliveries claimed or waiting for a retry
//! (`alert_retries`). The delivery itself is `anxin_gateway::alerts::delivery`'s.

use sqlx::Row;

use super::{Store, StoreError, now_ms};

impl Store {
    /// Takes or renews `sink` for `holder`; returns where it has got to, or
    /// `None` when another gateway holds it. A sink seen for the first time
    /// starts at the newest event (history is not replayed to it).
    pub async fn hold_sink(
        &self,
        sink: &str,
        holder: &str,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.register_sink(sink).await?;
        // In this process's turn: waiting on SQLite's busy handler instead
        // (sleeps that grow to 100 ms) starves it behind a busy ingest.
        let _turn = self.write_turn().await;
        let row = sqlx::query(
            "UPDATE alert_sinks SET holder = $2, lease_until = $3
             WHERE sink = $1 AND (holder = $2 OR holder IS NULL OR lease_until < $4) RETURNING delivered_through",
        )
        .bind(sink)
        .bind(holder)
        .bind(now + lease_ms)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| row.try_get("delivered_through")).transpose()?)
    }

    /// Creates the sink's cursor at the newest alert event, if it has none:
    /// from then on every change reaches it.
    pub async fn register_sink(&self, sink: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO alert_sinks (sink, delivered_through, holder, lease_until)
             VALUES ($1, (SELECT COALESCE(MAX(id), 0) FROM alert_events), NULL, 0)
             ON CONFLICT (sink) DO NOTHING",
        )
        .bind(sink)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn advance_sink(&self, sink: &str, holder: &str, through: i64) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE alert_sinks SET delivered_through = $3 WHERE sink = $1 AND holder = $2")
            .bind(sink)
            .bind(holder)
            .bind(through)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Schedules another attempt at `due_at`, recording the failure.
    pub async fn retry_later(
        &self,
        sink: &str,
        event_id: i64,
        attempts: i64,
        error: &str,
        due_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO alert_retries (event_id, sink, due_at, attempts, last_error) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (event_id, sink) DO UPDATE SET
                 due_at = excluded.due_at, attempts = excluded.attempts, last_error = excluded.last_error",
        )
        .bind(event_id)
        .bind(sink)
        .bind(due_at)
        .bind(attempts)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records that these changes are being delivered, due again at `until`
    /// should the attempt never settle.
    pub async fn claim_deliveries(&self, sink: &str, event_ids: &[i64], until: i64) -> Result<(), StoreError> {
        for chunk in event_ids.chunks(200) {
            let values = (0..chunk.len()).map(|i| format!("(${}, $1, $2, 0, 'in flight')", i + 3));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO alert_retries (event_id, sink, due_at, attempts, last_error) VALUES {}
                 ON CONFLICT (event_id, sink) DO NOTHING",
                values.collect::<Vec<_>>().join(", ")
            )));
            query = query.bind(sink).bind(until);
            for id in chunk {
                query = query.bind(*id);
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Claims a due retry; `false` when it is no longer due (someone has it).
    pub async fn reclaim_delivery(&self, sink: &str, event_id: i64, until: i64) -> Result<bool, StoreError> {
        let result =
            sqlx::query("UPDATE alert_retries SET due_at = $3 WHERE sink = $1 AND event_id = $2 AND due_at <= $4")
                .bind(sink)
                .bind(event_id)
                .bind(until)
                .bind(now_ms())
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn due_retries(&self, sink: &str, now: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT event_id, attempts FROM alert_retries WHERE sink = $1 AND due_at <= $2 ORDER BY due_at LIMIT 64",
        )
        .bind(sink)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| Ok((row.try_get("event_id")?, row.try_get("attempts")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    pub async fn forget_retry(&self, sink: &str, event_id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM alert_retries WHERE sink = $1 AND event_id = $2")
            .bind(sink)
            .bind(event_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deliveries not yet settled (in flight or waiting for a retry), per sink.
    pub async fn pending_retries(&self, sink: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM alert_retries WHERE sink = $1")
            .bind(sink)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}
