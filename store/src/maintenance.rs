//! Retention (PIPL art. 19: personal data kept no longer than needed): how
//! long each kind of record is kept, and the job that removes what is past
//! it — in small batches, each its own short transaction, so ingest's
//! commits go on between them; what went is counted and audited.
//!
//! | record | what happens after its time |
//! |---|---|
//! | raw sensor messages, quarantined input | deleted (PostgreSQL: whole days, their partitions dropped) |
//! | hourly activity (the charts, routine learning) | deleted |
//! | the audit log (≥ 180 days) | pruned behind a checkpoint |
//! | a visit's photo and location | cleared; the record and its signatures stay |
//! | visits and resolved alerts with their handling | deleted (a visit a spot-check or a referral names stays) |
//! | an elder who left the programme | anonymised: name, ID numbers, phones, address, household, contacts, home location and the visits' notes go; region, categories, exit and the counts stay |

use sqlx::Row;

use super::{Backend, Store, StoreError, audit::audit};
use anxin_domain::time::DAY_MS;

/// How long each kind of record is kept. Zero keeps it for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Raw sensor messages and quarantined input.
    pub raw_messages_days: u32,
    /// Hourly activity rollups: the elder page's charts and routine learning.
    pub hourly_activity_days: u32,
    /// The audit log: at least 180 days (MLPS 2.0).
    pub audit_days: u32,
    /// A visit's photo and the phone's location at it.
    pub visit_evidence_days: u32,
    /// Visits, and resolved alerts with their events and responder chain.
    pub records_years: u32,
    /// Elders who left the programme, anonymised this long after leaving.
    pub left_elders_years: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            raw_messages_days: 90,
            hourly_activity_days: 730,
            audit_days: 365,
            visit_evidence_days: 365,
            records_years: 5,
            left_elders_years: 3,
        }
    }
}

/// The shortest audit retention a policy may set.
pub const AUDIT_MIN_DAYS: u32 = 180;

impl RetentionPolicy {
    pub fn check(&self) -> Result<(), String> {
        if self.audit_days != 0 && self.audit_days < AUDIT_MIN_DAYS {
            return Err(format!(
                "the audit log is kept at least {AUDIT_MIN_DAYS} days (MLPS 2.0); {} asked",
                self.audit_days
            ));
        }
        Ok(())
    }
}

/// One kind of record, as counted, audited and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retained {
    RawMessages,
    HourlyActivity,
    AuditLog,
    VisitEvidence,
    Visits,
    Alerts,
    LeftElders,
}

impl Retained {
    pub const ALL: [Retained; 7] = [
        Retained::RawMessages,
        Retained::HourlyActivity,
        Retained::AuditLog,
        Retained::VisitEvidence,
        Retained::Visits,
        Retained::Alerts,
        Retained::LeftElders,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Retained::RawMessages => "raw_messages",
            Retained::HourlyActivity => "hourly_activity",
            Retained::AuditLog => "audit_log",
            Retained::VisitEvidence => "visit_evidence",
            Retained::Visits => "visits",
            Retained::Alerts => "alerts",
            Retained::LeftElders => "left_elders",
        }
    }

    /// What happened to each row, for the audit entry and the report.
    fn verb(self) -> &'static str {
        match self {
            Retained::VisitEvidence => "photos and locations cleared",
            Retained::LeftElders => "elders anonymised",
            _ => "deleted",
        }
    }
}

/// What one run removed, by kind, with the cutoff each kind was held to;
/// and the kinds it could not finish, with why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub removed: Vec<(Retained, u64, i64)>,
    pub failed: Vec<(Retained, String)>,
}

impl RetentionReport {
    pub fn of(&self, kind: Retained) -> u64 {
        self.removed.iter().filter(|(k, ..)| *k == kind).map(|(_, n, _)| n).sum()
    }
}

impl std::fmt::Display for RetentionReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (kind, removed, cutoff) in &self.removed {
            writeln!(f, "{:<16} {removed:>8} {} (before {})", kind.as_str(), kind.verb(), day_of(*cutoff))?;
        }
        for (kind, why) in &self.failed {
            writeln!(f, "{:<16} not finished: {why}", kind.as_str())?;
        }
        Ok(())
    }
}

/// Rows per transaction: small enough that a batch holds SQLite's one
/// writer for milliseconds, so ingest commits between batches.
pub const RETENTION_BATCH: i64 = 1_000;

fn day_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().date_naive().to_string()
}

fn days_before(now: i64, days: u32) -> i64 {
    now.saturating_sub(i64::from(days) * DAY_MS)
}

fn years_before(now: i64, years: u32) -> i64 {
    let at = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default();
    at.checked_sub_months(chrono::Months::new(12 * years)).map_or(i64::MIN, |at| at.timestamp_millis())
}

impl Store {
    /// Applies `policy` at `now`: every kind past its time, in batches of
    /// `batch` rows; each kind that lost rows gets one audit entry (actor
    /// `anxin`) saying how many and up to when. A kind that fails is
    /// reported in [`RetentionReport::failed`] and the others go on.
    pub async fn apply_retention(
        &self,
        policy: &RetentionPolicy,
        now: i64,
        batch: i64,
    ) -> Result<RetentionReport, StoreError> {
        policy.check().map_err(StoreError::Invalid)?;
        let mut report = RetentionReport::default();
        for kind in Retained::ALL {
            let cutoff = match kind {
                Retained::RawMessages => (policy.raw_messages_days, days_before(now, policy.raw_messages_days)),
                Retained::HourlyActivity => {
                    (policy.hourly_activity_days, days_before(now, policy.hourly_activity_days))
                }
                Retained::AuditLog => (policy.audit_days, days_before(now, policy.audit_days)),
                Retained::VisitEvidence => (policy.visit_evidence_days, days_before(now, policy.visit_evidence_days)),
                Retained::Visits | Retained::Alerts => (policy.records_years, years_before(now, policy.records_years)),
                Retained::LeftElders => (policy.left_elders_years, years_before(now, policy.left_elders_years)),
            };
            let (kept_for, cutoff) = cutoff;
            if kept_for == 0 {
                continue;
            }
            let mut removed = 0;
            if kind == Retained::RawMessages {
                // PostgreSQL: whole days first, dropped (nothing on SQLite).
                match self.drop_message_days_before(cutoff).await {
                    Ok((rows, _)) => removed += rows,
                    Err(error) => {
                        tracing::warn!(%error, "retention: day partitions of messages not dropped this time");
                        report.failed.push((kind, error.to_string()));
                    }
                }
            }
            loop {
                let done = match kind {
                    Retained::AuditLog => self.prune_audit_batch(cutoff, now, batch).await,
                    _ => self.retention_batch(kind, cutoff, now, batch).await,
                };
                // One kind failing (the database busy, a clock gone back
                // past the audit log's guard) does not stop the others.
                let done = match done {
                    Ok(done) => done,
                    Err(error) => {
                        tracing::warn!(kind = kind.as_str(), %error, removed, "retention: stopped for this kind");
                        report.failed.push((kind, error.to_string()));
                        break;
                    }
                };
                removed += done;
                if done < batch.unsigned_abs() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            if removed > 0 {
                let detail = format!("{removed} {} {} (before {})", kind.as_str(), kind.verb(), day_of(cutoff));
                self.audit(now, "anxin", "retention applied", None, Some(&detail)).await?;
                tracing::info!(kind = kind.as_str(), removed, cutoff = %day_of(cutoff), "retention applied");
            }
            report.removed.push((kind, removed, cutoff));
        }
        Ok(report)
    }

    /// One batch of one kind, in one transaction; how many rows it took.
    async fn retention_batch(&self, kind: Retained, cutoff: i64, now: i64, batch: i64) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let removed = match kind {
            Retained::RawMessages => {
                // On PostgreSQL the day partitions go whole
                // (`drop_message_days_before`); rows are deleted only from
                // the table of before partitioning and the strays.
                let tables: &[&str] = match self.backend {
                    Backend::Sqlite => &["messages"],
                    Backend::Postgres => &["messages_before_partitioning", "messages_default"],
                };
                let mut messages = 0;
                for table in tables {
                    let left = batch - i64::try_from(messages).unwrap_or(i64::MAX);
                    if left <= 0 {
                        break;
                    }
                    messages += sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DELETE FROM {table} WHERE (device_id, boot, seq) IN
                         (SELECT device_id, boot, seq FROM {table} WHERE received_at < $1 ORDER BY received_at LIMIT $2)"
                    )))
                    .bind(cutoff)
                    .bind(left)
                    .execute(&mut *transaction)
                    .await?
                    .rows_affected();
                }
                let quarantined = sqlx::query(
                    "DELETE FROM quarantine WHERE id IN
                     (SELECT id FROM quarantine WHERE received_at < $1 ORDER BY id LIMIT $2)",
                )
                .bind(cutoff)
                .bind(batch)
                .execute(&mut *transaction)
                .await?
                .rows_affected();
                // A boot's start is kept while a copy of one of its
                // messages could still come (the partition key of every
                // copy): until the device's boot after it began before the
                // cutoff, so that all its messages are past their time.
                // Few (a boot lasts months): at most a batch a turn, not counted.
                sqlx::query(
                    "DELETE FROM device_boots WHERE (device_id, boot) IN
                     (SELECT b.device_id, b.boot FROM device_boots b
                      JOIN devices d ON d.device_id = b.device_id
                      JOIN device_boots now ON now.device_id = d.device_id AND now.boot = d.boot
                      WHERE b.boot <> d.boot AND b.started_at < now.started_at AND now.started_at < $1
                      LIMIT $2)",
                )
                .bind(cutoff)
                .bind(batch)
                .execute(&mut *transaction)
                .await?;
                messages.max(quarantined)
            }
            Retained::HourlyActivity => sqlx::query(
                "DELETE FROM activity_hourly WHERE (device_id, hour_start) IN
                 (SELECT device_id, hour_start FROM activity_hourly WHERE hour_start < $1 LIMIT $2)",
            )
            .bind(cutoff)
            .bind(batch)
            .execute(&mut *transaction)
            .await?
            .rows_affected(),
            Retained::VisitEvidence => sqlx::query(
                "UPDATE visit_evidence SET photo = NULL, latitude = NULL, longitude = NULL, accuracy_m = NULL
                 WHERE visit_id IN (SELECT e.visit_id FROM visit_evidence e JOIN visits v ON v.id = e.visit_id
                                    WHERE v.visited_at < $1 AND (e.photo IS NOT NULL OR e.latitude IS NOT NULL)
                                    LIMIT $2)",
            )
            .bind(cutoff)
            .bind(batch)
            .execute(&mut *transaction)
            .await?
            .rows_affected(),
            Retained::Visits => {
                // A visit a spot-check or a referral names stays with it.
                let ids: Vec<i64> = sqlx::query(
                    "SELECT v.id FROM visits v WHERE v.visited_at < $1
                     AND NOT EXISTS (SELECT 1 FROM spot_check_items s WHERE s.visit_id = v.id)
                     AND NOT EXISTS (SELECT 1 FROM referrals r WHERE r.visit_id = v.id)
                     ORDER BY v.id LIMIT $2",
                )
                .bind(cutoff)
                .bind(batch)
                .fetch_all(&mut *transaction)
                .await?
                .iter()
                .map(|row| row.try_get("id"))
                .collect::<Result<_, _>>()?;
                for statement in ["DELETE FROM visit_evidence WHERE visit_id = $1", "DELETE FROM visits WHERE id = $1"]
                {
                    for id in &ids {
                        sqlx::query(statement).bind(id).execute(&mut *transaction).await?;
                    }
                }
                ids.len() as u64
            }
            Retained::Alerts => {
                let ids: Vec<i64> = sqlx::query(
                    "SELECT id FROM alerts WHERE status = 'resolved' AND resolved_at < $1 ORDER BY id LIMIT $2",
                )
                .bind(cutoff)
                .bind(batch)
                .fetch_all(&mut *transaction)
                .await?
                .iter()
                .map(|row| row.try_get("id"))
                .collect::<Result<_, _>>()?;
                for statement in [
                    "DELETE FROM alert_retries WHERE event_id IN (SELECT id FROM alert_events WHERE alert_id = $1)",
                    "DELETE FROM alert_events WHERE alert_id = $1",
                    "DELETE FROM responder_messages WHERE alert_id = $1",
                    "DELETE FROM responder_chains WHERE alert_id = $1",
                    "DELETE FROM alerts WHERE id = $1",
                ] {
                    for id in &ids {
                        sqlx::query(statement).bind(id).execute(&mut *transaction).await?;
                    }
                }
                ids.len() as u64
            }
            Retained::LeftElders => {
                let ids: Vec<i64> = sqlx::query(
                    "SELECT id FROM elders WHERE left_on IS NOT NULL AND left_on < $1 AND anonymised_at IS NULL
                     ORDER BY id LIMIT $2",
                )
                .bind(day_of(cutoff))
                .bind(batch)
                .fetch_all(&mut *transaction)
                .await?
                .iter()
                .map(|row| row.try_get("id"))
                .collect::<Result<_, _>>()?;
                for id in &ids {
                    anonymise(&mut transaction, *id, now).await?;
                }
                ids.len() as u64
            }
            Retained::AuditLog => unreachable!("pruned behind a checkpoint"),
        };
        transaction.commit().await?;
        Ok(removed)
    }

    /// Deletes raw messages and quarantined input received before `cutoff`,
    /// in batches. Returns how many messages went.
    pub async fn expire_before(&self, cutoff: i64) -> Result<u64, StoreError> {
        let (mut removed, _) = self.drop_message_days_before(cutoff).await?;
        loop {
            let done = self.retention_batch(Retained::RawMessages, cutoff, 0, RETENTION_BATCH).await?;
            removed += done;
            if done < RETENTION_BATCH.unsigned_abs() {
                return Ok(removed);
            }
        }
    }
}

/// Everything that names or finds the elder goes; what the programme's
/// figures need (region, categories, the exit, the records' dates) stays.
async fn anonymise(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    elder_id: i64,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE elders SET name = '已匿名', address = '', phone = NULL, emergency_contact = NULL,
             emergency_phone = NULL, citizen_id = NULL, disability_cert = NULL, monthly_income_fen = NULL,
             benefits = NULL, help_person = NULL, help_measures = NULL, anonymised_at = $2
         WHERE id = $1",
    )
    .bind(elder_id)
    .bind(now)
    .execute(&mut **transaction)
    .await?;
    for statement in [
        "DELETE FROM household_members WHERE elder_id = $1",
        "DELETE FROM contacts WHERE elder_id = $1",
        "DELETE FROM home_locations WHERE elder_id = $1",
        "DELETE FROM visit_evidence WHERE visit_id IN (SELECT id FROM visits WHERE elder_id = $1)",
        "UPDATE visits SET summary = NULL, assessment = NULL, needs = NULL, suggestions = NULL WHERE elder_id = $1",
        "UPDATE responder_messages SET name = '', phone = '' WHERE alert_id IN (SELECT id FROM alerts WHERE elder_id = $1)",
    ] {
        sqlx::query(statement).bind(elder_id).execute(&mut **transaction).await?;
    }
    audit(transaction, now, "anxin", "elder anonymised", Some(elder_id), Some("retention: left the programme")).await
}
