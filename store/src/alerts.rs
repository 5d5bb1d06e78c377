//! Alerts as staff see and handle them: lists, acknowledge, resolve with the
//! handling record (处置情况), time-to-acknowledge figures, and the change
//! feed every delivery reads.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, Write};
use anxin_domain::alerts::checkin::DayFacts;
use anxin_domain::alerts::engine::HomePlace;
use anxin_domain::alerts::explanation::Explanation;
use anxin_domain::alerts::rules::Day;
use anxin_domain::alerts::{AlertKind, AlertStatus, Outcome, Severity};

/// An alert with its handling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AlertRecord {
    pub id: i64,
    pub elder_id: i64,
    pub elder_name: String,
    pub kind: AlertKind,
    pub severity: Severity,
    pub status: AlertStatus,
    pub county: String,
    pub township: String,
    pub village: String,
    pub device_id: Option<String>,
    /// The engine's explanation in English.
    pub detail: String,
    /// The same explanation as data, for the console to render in the
    /// reader's language; `None` for alerts raised before it was stored.
    #[serde(skip)]
    #[schema(ignore)]
    pub explanation: Option<Explanation>,
    pub repeats: i64,
    /// 0: as raised; 1: escalated to every on-call worker of the county.
    pub level: i64,
    pub reminders: i64,
    pub opened_at: i64,
    pub updated_at: i64,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
    /// Time to acknowledge, in milliseconds.
    pub ack_ms: Option<i64>,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
    pub outcome: Option<Outcome>,
    pub note: Option<String>,
}

impl anxin_domain::access::Placed for AlertRecord {
    fn place(&self) -> anxin_domain::access::ElderPlace<'_> {
        anxin_domain::access::ElderPlace {
            elder_id: self.elder_id,
            county: &self.county,
            township: &self.township,
            village: &self.village,
        }
    }
}

const ALERT_COLUMNS: &str =
    "a.id, a.elder_id, e.name AS elder_name, a.kind, a.severity, a.status, a.county, a.township,
    a.village, a.device_id, a.detail, a.explanation, a.repeats, a.level, a.reminders, a.opened_at, a.updated_at, a.acknowledged_at,
    a.acknowledged_by, a.ack_ms, a.resolved_at, a.resolved_by, a.outcome, a.note";

fn alert(row: &AnyRow) -> Result<AlertRecord, sqlx::Error> {
    Ok(AlertRecord {
        id: row.try_get("id")?,
        elder_id: row.try_get("elder_id")?,
        elder_name: row.try_get("elder_name")?,
        kind: spelled(row, "kind", AlertKind::parse)?,
        severity: spelled(row, "severity", Severity::parse)?,
        status: spelled(row, "status", AlertStatus::parse)?,
        county: row.try_get("county")?,
        township: row.try_get("township")?,
        village: row.try_get("village")?,
        device_id: row.try_get("device_id")?,
        detail: row.try_get("detail")?,
        explanation: row.try_get::<Option<String>, _>("explanation")?.as_deref().and_then(Explanation::from_json),
        repeats: row.try_get("repeats")?,
        level: row.try_get("level")?,
        reminders: row.try_get("reminders")?,
        opened_at: row.try_get("opened_at")?,
        updated_at: row.try_get("updated_at")?,
        acknowledged_at: row.try_get("acknowledged_at")?,
        acknowledged_by: row.try_get("acknowledged_by")?,
        ack_ms: row.try_get("ack_ms")?,
        resolved_at: row.try_get("resolved_at")?,
        resolved_by: row.try_get("resolved_by")?,
        outcome: row
            .try_get::<Option<String>, _>("outcome")?
            .map(|text| parsed("outcome", &text, Outcome::parse))
            .transpose()?,
        note: row.try_get("note")?,
    })
}

/// A column holding one of a domain enum's spellings; anything else is a
/// decoding error naming the column, not a silent default.
fn spelled<T>(row: &AnyRow, column: &str, parse: fn(&str) -> Option<T>) -> Result<T, sqlx::Error> {
    parsed(column, &row.try_get::<String, _>(column)?, parse)
}

fn parsed<T>(column: &str, text: &str, parse: fn(&str) -> Option<T>) -> Result<T, sqlx::Error> {
    parse(text).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: format!("{text:?} is not a known {column}").into(),
    })
}

/// One line of an alert's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AlertEventRecord {
    pub id: i64,
    pub alert_id: i64,
    pub at: i64,
    /// opened, repeated, raised, note, escalated, reminded, acknowledged, resolved
    pub action: String,
    pub actor: Option<String>,
    pub detail: Option<String>,
}

/// A change to an alert, with the alert as it is now: what the console, MQTT
/// and the webhook receive. Carries the elder's id and region, never their
/// name, phone or address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AlertChange {
    pub event_id: i64,
    /// Where the change stands in the order changes were committed in:
    /// the cursor of every reader ([`Store::alert_changes_after`]). Not the
    /// id's order — on PostgreSQL a transaction that took a lower id may
    /// commit after one that took a higher.
    #[serde(skip)]
    pub position: i64,
    pub action: String,
    pub at: i64,
    pub actor: Option<String>,
    pub detail: Option<String>,
    pub alert_id: i64,
    pub elder_id: i64,
    pub kind: AlertKind,
    pub severity: Severity,
    pub status: AlertStatus,
    pub level: i64,
    pub county: String,
    pub township: String,
    pub village: String,
    pub opened_at: i64,
    pub acknowledged_by: Option<String>,
    pub outcome: Option<Outcome>,
}

impl anxin_domain::access::Placed for AlertChange {
    fn place(&self) -> anxin_domain::access::ElderPlace<'_> {
        anxin_domain::access::ElderPlace {
            elder_id: self.elder_id,
            county: &self.county,
            township: &self.township,
            village: &self.village,
        }
    }
}

/// Which alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Only open or acknowledged ones.
    pub unresolved_only: bool,
    pub elder_id: Option<i64>,
    pub limit: i64,
    /// Only those the reader may see, filtered before the limit: a busy
    /// county's alerts never push another's off its board.
    pub scope: Scope,
}

/// Whose alerts a reader may see ([`anxin_domain::access::Principal::can_see_elder`]
/// as SQL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    #[default]
    All,
    /// Alerts whose place any of these regions covers.
    Regions(Vec<anxin_domain::access::Region>),
    /// Alerts of these elders (a visitor's).
    Elders(Vec<i64>),
}

impl Scope {
    pub fn of(principal: &anxin_domain::access::Principal) -> Scope {
        use anxin_domain::access::Role;
        match principal.role {
            Role::Admin => Scope::All,
            Role::Oncall | Role::Official => Scope::Regions(principal.regions.clone()),
            Role::Visitor => Scope::Elders(principal.assigned_elders.clone()),
        }
    }

    /// The condition on `alerts a` with `$n` placeholders from `first`, and
    /// what to bind to them in order.
    fn condition(&self, first: usize) -> (String, Vec<ScopeValue>) {
        let mut values = Vec::new();
        let condition = match self {
            Scope::All => "1 = 1".to_string(),
            Scope::Regions(regions) if regions.is_empty() => "1 = 0".to_string(),
            Scope::Regions(regions) => {
                let mut parts = Vec::new();
                for region in regions {
                    let n = first + values.len();
                    parts.push(format!(
                        "(a.county = ${n} AND (${} IS NULL OR a.township = ${}) AND (${} IS NULL OR a.village = ${}))",
                        n + 1,
                        n + 1,
                        n + 2,
                        n + 2
                    ));
                    values.push(ScopeValue::Text(Some(region.county.clone())));
                    values.push(ScopeValue::Text(region.township.clone()));
                    values.push(ScopeValue::Text(region.village.clone()));
                }
                parts.join(" OR ")
            }
            Scope::Elders(elders) if elders.is_empty() => "1 = 0".to_string(),
            Scope::Elders(elders) => {
                let placeholders: Vec<String> = (0..elders.len()).map(|i| format!("${}", first + i)).collect();
                values.extend(elders.iter().map(|id| ScopeValue::Id(*id)));
                format!("a.elder_id IN ({})", placeholders.join(", "))
            }
        };
        (format!("({condition})"), values)
    }
}

/// A value bound to a [`Scope`]'s condition.
enum ScopeValue {
    Text(Option<String>),
    Id(i64),
}

/// A county, township or village (unset parts: all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionFilter {
    pub county: Option<String>,
    pub township: Option<String>,
    pub village: Option<String>,
}

/// Time to acknowledge over a region and period (telecare centres are held
/// to 97.5% within 60 s and 99% within 180 s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AckStats {
    pub alerts: i64,
    pub acknowledged: i64,
    pub within_60s: i64,
    pub within_180s: i64,
}

impl AckStats {
    pub fn share_60s(&self) -> Option<f64> {
        (self.alerts > 0).then(|| self.within_60s as f64 / self.alerts as f64)
    }
    pub fn share_180s(&self) -> Option<f64> {
        (self.alerts > 0).then(|| self.within_180s as f64 / self.alerts as f64)
    }
}

/// Why a staff action on an alert was refused.
#[derive(Debug, thiserror::Error)]
pub enum AlertActionError {
    #[error("there is no alert {0}")]
    NotFound(i64),
    #[error("alert {id} was already acknowledged by {by}")]
    AlreadyAcknowledged { id: i64, by: String },
    #[error("alert {id} is already resolved")]
    AlreadyResolved { id: i64 },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AlertActionError {
    fn from(error: sqlx::Error) -> Self {
        AlertActionError::Store(StoreError::Sql(error))
    }
}

fn actor(name: &str) -> Result<String, AlertActionError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(AlertActionError::Invalid("say who you are (--by NAME, 1 to 64 characters)".into()));
    }
    Ok(name.to_string())
}

impl Store {
    pub async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<AlertRecord>, StoreError> {
        let (scope, values) = filter.scope.condition(4);
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts a JOIN elders e ON e.id = a.elder_id
             WHERE ($1 = 0 OR a.status <> 'resolved') AND ($2 IS NULL OR a.elder_id = $2) AND {scope}
             ORDER BY CASE a.status WHEN 'open' THEN 0 WHEN 'acknowledged' THEN 1 ELSE 2 END,
                      CASE a.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,
                      a.opened_at DESC
             LIMIT $3"
        );
        // Only placeholders are spliced in; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(i64::from(filter.unresolved_only))
            .bind(filter.elder_id)
            .bind(if filter.limit > 0 { filter.limit } else { 1_000 });
        for value in values {
            query = match value {
                ScopeValue::Text(text) => query.bind(text),
                ScopeValue::Id(id) => query.bind(id),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        Ok(rows.iter().map(alert).collect::<Result<_, _>>()?)
    }

    pub async fn alert(&self, id: i64) -> Result<Option<AlertRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts a JOIN elders e ON e.id = a.elder_id WHERE a.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(alert).transpose()?)
    }

    pub async fn alert_history(&self, alert_id: i64) -> Result<Vec<AlertEventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, alert_id, at, action, actor, detail FROM alert_events WHERE alert_id = $1 ORDER BY id",
        )
        .bind(alert_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(AlertEventRecord {
                    id: row.try_get("id")?,
                    alert_id: row.try_get("alert_id")?,
                    at: row.try_get("at")?,
                    action: row.try_get("action")?,
                    actor: row.try_get("actor")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Acknowledges an open alert: someone has it in hand; escalation stops.
    pub async fn acknowledge_alert(&self, id: i64, by: &str, now: i64) -> Result<AlertRecord, AlertActionError> {
        let by = actor(by)?;
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let updated = sqlx::query(
            "UPDATE alerts SET status = 'acknowledged', acknowledged_at = $1, acknowledged_by = $2,
                 ack_ms = $1 - opened_at, next_reminder_at = NULL, updated_at = $1
             WHERE id = $3 AND status = 'open' RETURNING id",
        )
        .bind(now)
        .bind(by.as_str())
        .bind(id)
        .fetch_optional(&mut *transaction)
        .await?;
        if updated.is_none() {
            drop(transaction);
            return Err(self.refusal(id).await);
        }
        let event = insert_event(&mut transaction, id, now, "acknowledged", Some(&by), None).await?;
        transaction.commit().await?;
        self.note_alert_written(event);
        self.alert(id).await?.ok_or(AlertActionError::NotFound(id))
    }

    /// Resolves an alert with how it was handled. Resolving an alert nobody
    /// acknowledged also records the acknowledgement (by the same person).
    pub async fn resolve_alert(
        &self,
        id: i64,
        by: &str,
        outcome: Outcome,
        note: &str,
        now: i64,
    ) -> Result<AlertRecord, AlertActionError> {
        let by = actor(by)?;
        let note = note.trim();
        if outcome == Outcome::ClearedItself {
            return Err(AlertActionError::Invalid("only Anxin records an alert as cleared by itself".into()));
        }
        if outcome == Outcome::Other && note.is_empty() {
            return Err(AlertActionError::Invalid("outcome `other` needs a note saying what was done".into()));
        }
        if note.chars().count() > 2_000 {
            return Err(AlertActionError::Invalid("the note is longer than 2000 characters".into()));
        }
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let updated = sqlx::query(
            "UPDATE alerts SET status = 'resolved', resolved_at = $1, resolved_by = $2, outcome = $3, note = $4,
                 acknowledged_at = COALESCE(acknowledged_at, $1), acknowledged_by = COALESCE(acknowledged_by, $2),
                 ack_ms = COALESCE(ack_ms, $1 - opened_at), next_reminder_at = NULL, updated_at = $1
             WHERE id = $5 AND status <> 'resolved' RETURNING id",
        )
        .bind(now)
        .bind(by.as_str())
        .bind(outcome.as_str())
        .bind((!note.is_empty()).then_some(note))
        .bind(id)
        .fetch_optional(&mut *transaction)
        .await?;
        if updated.is_none() {
            drop(transaction);
            return Err(self.refusal(id).await);
        }
        let detail =
            if note.is_empty() { outcome.as_str().to_string() } else { format!("{}: {note}", outcome.as_str()) };
        let event = insert_event(&mut transaction, id, now, "resolved", Some(&by), Some(&detail)).await?;
        transaction.commit().await?;
        self.note_alert_written(event);
        self.alert(id).await?.ok_or(AlertActionError::NotFound(id))
    }

    /// Opens a critical `visit_emergency` alert for an elder, from a visit
    /// (`visit_id`) where the visitor `by` found an emergency; `what` (their
    /// words) is its first line of history, which stays in the console.
    /// Escalates from `remind_at` like a sensor's critical alert. Refused
    /// while another emergency of the home is open. Audited.
    #[allow(clippy::too_many_arguments, reason = "one column each")]
    pub async fn open_visit_emergency(
        &self,
        elder_id: i64,
        visit_id: Option<i64>,
        what: &str,
        detail: &Explanation,
        by: &str,
        now: i64,
        remind_at: i64,
    ) -> Result<AlertRecord, AlertActionError> {
        let by = actor(by)?;
        let what = what.trim();
        if what.is_empty() || what.chars().count() > 1_000 {
            return Err(AlertActionError::Invalid("say what was found (1 to 1000 characters)".into()));
        }
        let elder = self.elder(elder_id).await?.ok_or(AlertActionError::NotFound(elder_id))?;
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let open: Option<i64> = sqlx::query(
            "SELECT id FROM alerts WHERE elder_id = $1 AND kind = 'visit_emergency' AND status <> 'resolved'",
        )
        .bind(elder_id)
        .fetch_optional(&mut *transaction)
        .await?
        .map(|row| row.try_get("id"))
        .transpose()?;
        if let Some(id) = open {
            return Err(AlertActionError::Invalid(format!("an emergency of this home is already open: alert {id}")));
        }
        let row = sqlx::query(
            "INSERT INTO alerts (elder_id, kind, severity, status, county, township, village, device_id,
                                 detail, opened_at, updated_at, next_reminder_at, explanation)
             VALUES ($1, 'visit_emergency', 'critical', 'open', $2, $3, $4, NULL, $5, $6, $6, $7, $8) RETURNING id",
        )
        .bind(elder_id)
        .bind(elder.county.as_str())
        .bind(elder.township.as_str())
        .bind(elder.village.as_str())
        .bind(detail.to_string())
        .bind(now)
        .bind(remind_at)
        .bind(detail.to_json())
        .fetch_one(&mut *transaction)
        .await?;
        let id: i64 = row.try_get("id")?;
        let event = insert_event(&mut transaction, id, now, "opened", Some(&by), Some(what)).await?;
        let audit = match visit_id {
            Some(visit) => format!("alert={id} visit={visit}"),
            None => format!("alert={id}"),
        };
        super::users::audit(&mut transaction, now, &by, "visit emergency opened", Some(elder_id), Some(&audit)).await?;
        transaction.commit().await?;
        self.note_alert_written(event);
        self.alert(id).await?.ok_or(AlertActionError::NotFound(id))
    }

    async fn refusal(&self, id: i64) -> AlertActionError {
        match self.alert(id).await {
            Ok(None) => AlertActionError::NotFound(id),
            Ok(Some(alert)) if alert.status == AlertStatus::Resolved => AlertActionError::AlreadyResolved { id },
            Ok(Some(alert)) => {
                AlertActionError::AlreadyAcknowledged { id, by: alert.acknowledged_by.unwrap_or_default() }
            }
            Err(error) => AlertActionError::Store(error),
        }
    }

    /// Time to acknowledge for alerts opened in `[from, to)` in a region,
    /// optionally of one severity. Alerts that cleared themselves before
    /// anyone acknowledged them (a device back online) are left out.
    pub async fn ack_stats(
        &self,
        region: &RegionFilter,
        severity: Option<Severity>,
        from: i64,
        to: i64,
    ) -> Result<AckStats, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS alerts,
                    COUNT(ack_ms) AS acknowledged,
                    COUNT(CASE WHEN ack_ms <= 60000 THEN 1 END) AS within_60s,
                    COUNT(CASE WHEN ack_ms <= 180000 THEN 1 END) AS within_180s
             FROM alerts
             WHERE opened_at >= $1 AND opened_at < $2
               AND ($3 IS NULL OR county = $3) AND ($4 IS NULL OR township = $4) AND ($5 IS NULL OR village = $5)
               AND ($6 IS NULL OR severity = $6)
               AND NOT (COALESCE(outcome, '') IN ('cleared_itself', 'elder_left') AND ack_ms IS NULL)",
        )
        .bind(from)
        .bind(to)
        .bind(region.county.as_deref())
        .bind(region.township.as_deref())
        .bind(region.village.as_deref())
        .bind(severity.map(Severity::as_str))
        .fetch_one(&self.pool)
        .await?;
        Ok(AckStats {
            alerts: row.try_get("alerts")?,
            acknowledged: row.try_get("acknowledged")?,
            within_60s: row.try_get("within_60s")?,
            within_180s: row.try_get("within_180s")?,
        })
    }

    /// Alert changes committed after position `after`, in the order they
    /// were committed: the feed for the console and every delivery.
    ///
    /// Design: a reader's cursor is the change's position, not its id. On
    /// PostgreSQL ids are taken at INSERT, so two writers can commit them
    /// out of order, and a cursor of ids passes over the lower one while it
    /// is not yet committed — that change (a smoke alarm's `opened`) would
    /// never reach the feed, the webhook or the responder chain. Migration
    /// 0024 gives each event its position at COMMIT instead, from one
    /// counter whose row lock the committing transaction holds to its end:
    /// positions are committed in increasing order. Events from before it,
    /// and SQLite's (one writer: ids are taken in commit order), are at
    /// their id.
    pub async fn alert_changes_after(&self, after: i64, limit: i64) -> Result<Vec<AlertChange>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{CHANGES} WHERE COALESCE(v.seq, v.id) > $1 ORDER BY COALESCE(v.seq, v.id) LIMIT $2"
        )))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(change).collect::<Result<_, _>>()?)
    }

    pub async fn alert_change(&self, event_id: i64) -> Result<Option<AlertChange>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{CHANGES} WHERE v.id = $1")))
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(change).transpose()?)
    }

    /// Unresolved alerts per severity (for the gauges).
    pub async fn open_alert_counts(&self) -> Result<Vec<(Severity, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT severity, COUNT(*) AS n FROM alerts WHERE status <> 'resolved' GROUP BY severity")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(|row| Ok((spelled(row, "severity", Severity::parse)?, row.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// When the oldest alert nobody has acknowledged was opened, by severity.
    pub async fn oldest_unacknowledged(&self) -> Result<Vec<(Severity, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT severity, MIN(opened_at) AS opened_at FROM alerts WHERE status = 'open' GROUP BY severity",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| Ok((spelled(row, "severity", Severity::parse)?, row.try_get("opened_at")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// The newest committed alert change's position (0 when none): where a
    /// reader that wants only what comes next starts.
    pub async fn newest_alert_event(&self) -> Result<i64, StoreError> {
        let row =
            sqlx::query("SELECT MAX(COALESCE(seq, id)) AS position FROM alert_events").fetch_one(&self.pool).await?;
        Ok(row.try_get::<Option<i64>, _>("position")?.unwrap_or(0))
    }
}

/// An alert change with its alert as it is now ([`change`] reads it).
const CHANGES: &str = "SELECT v.id AS event_id, COALESCE(v.seq, v.id) AS position, v.action, v.at, v.actor,
        v.detail AS event_detail, a.id AS alert_id, a.elder_id, a.kind, a.severity, a.status, a.level, a.county,
        a.township, a.village, a.opened_at, a.acknowledged_by, a.outcome
     FROM alert_events v JOIN alerts a ON a.id = v.alert_id";

fn change(row: &AnyRow) -> Result<AlertChange, sqlx::Error> {
    Ok(AlertChange {
        event_id: row.try_get("event_id")?,
        position: row.try_get("position")?,
        action: row.try_get("action")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        detail: row.try_get("event_detail")?,
        alert_id: row.try_get("alert_id")?,
        elder_id: row.try_get("elder_id")?,
        kind: spelled(row, "kind", AlertKind::parse)?,
        severity: spelled(row, "severity", Severity::parse)?,
        status: spelled(row, "status", AlertStatus::parse)?,
        level: row.try_get("level")?,
        county: row.try_get("county")?,
        township: row.try_get("township")?,
        village: row.try_get("village")?,
        opened_at: row.try_get("opened_at")?,
        acknowledged_by: row.try_get("acknowledged_by")?,
        outcome: row
            .try_get::<Option<String>, _>("outcome")?
            .map(|text| parsed("outcome", &text, Outcome::parse))
            .transpose()?,
    })
}

/// Writes one line of an alert's history (its position in the feed is
/// given at COMMIT: [`Store::alert_changes_after`]).
pub(crate) async fn insert_event(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    alert_id: i64,
    at: i64,
    action: &str,
    actor: Option<&str>,
    detail: Option<&str>,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO alert_events (alert_id, at, action, actor, detail) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(alert_id)
    .bind(at)
    .bind(action)
    .bind(actor)
    .bind(detail)
    .fetch_one(&mut **transaction)
    .await?;
    Ok(row.try_get("id")?)
}

/// The open (not yet resolved) alert of one kind in one home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAlert {
    pub id: i64,
    pub severity: Severity,
    /// Open or acknowledged.
    pub status: AlertStatus,
}

/// A critical alert whose reminder is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReminder {
    pub id: i64,
    pub reminder_at: i64,
    pub opened_at: i64,
    pub county: String,
}

impl Write {
    /// Adds a line to an alert's history; returns the line's id.
    pub async fn alert_event(
        &mut self,
        alert_id: i64,
        at: i64,
        action: &str,
        actor: Option<&str>,
        detail: Option<&str>,
    ) -> Result<i64, StoreError> {
        insert_event(&mut self.transaction, alert_id, at, action, actor, detail).await
    }

    pub async fn open_alert(&mut self, elder_id: i64, kind: AlertKind) -> Result<Option<OpenAlert>, StoreError> {
        let row = sqlx::query(
            "SELECT id, severity, status FROM alerts WHERE elder_id = $1 AND kind = $2 AND status <> 'resolved'",
        )
        .bind(elder_id)
        .bind(kind.as_str())
        .fetch_optional(&mut *self.transaction)
        .await?;
        row.map(|row| {
            Ok(OpenAlert {
                id: row.try_get("id")?,
                severity: spelled(&row, "severity", Severity::parse)?,
                status: spelled(&row, "status", AlertStatus::parse)?,
            })
        })
        .transpose()
    }

    /// Opens an alert (the partial unique index keeps one open per home and kind).
    #[allow(clippy::too_many_arguments, reason = "one column each")]
    pub async fn insert_alert(
        &mut self,
        elder_id: i64,
        place: &HomePlace,
        kind: AlertKind,
        severity: Severity,
        device: Option<&str>,
        detail: &Explanation,
        at: i64,
        remind_at: Option<i64>,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO alerts (elder_id, kind, severity, status, county, township, village, device_id,
                                 detail, opened_at, updated_at, next_reminder_at, explanation)
             VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9, $9, $10, $11) RETURNING id",
        )
        .bind(elder_id)
        .bind(kind.as_str())
        .bind(severity.as_str())
        .bind(place.county.as_str())
        .bind(place.township.as_str())
        .bind(place.village.as_str())
        .bind(device)
        .bind(detail.to_string())
        .bind(at)
        .bind(remind_at)
        .bind(detail.to_json())
        .fetch_one(&mut *self.transaction)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// The alert grows more severe (a repeat); `remind_at` starts its escalation clock.
    pub async fn raise_alert(
        &mut self,
        id: i64,
        severity: Severity,
        detail: &Explanation,
        at: i64,
        remind_at: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alerts SET severity = $1, detail = $2, updated_at = $3, repeats = repeats + 1,
                 next_reminder_at = COALESCE($4, next_reminder_at), explanation = $6
             WHERE id = $5",
        )
        .bind(severity.as_str())
        .bind(detail.to_string())
        .bind(at)
        .bind(remind_at)
        .bind(id)
        .bind(detail.to_json())
        .execute(&mut *self.transaction)
        .await?;
        Ok(())
    }

    /// The same condition again, no more severe.
    pub async fn repeat_alert(&mut self, id: i64, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE alerts SET repeats = repeats + 1, updated_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&mut *self.transaction)
            .await?;
        Ok(())
    }

    pub async fn touch_alert(&mut self, id: i64, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE alerts SET updated_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&mut *self.transaction)
            .await?;
        Ok(())
    }

    /// Resolves an alert whose condition cleared by itself, as `by`.
    pub async fn resolve_cleared(&mut self, id: i64, by: &str, detail: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alerts SET status = 'resolved', resolved_at = $1, resolved_by = $2, outcome = 'cleared_itself',
                 note = $3, next_reminder_at = NULL, updated_at = $1
             WHERE id = $4",
        )
        .bind(at)
        .bind(by)
        .bind(detail)
        .bind(id)
        .execute(&mut *self.transaction)
        .await?;
        Ok(())
    }

    /// What the alerts say about `[start, end)` for a closed day.
    pub async fn day_alert_facts(&mut self, elder_id: i64, start: i64, end: i64) -> Result<DayFacts, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(CASE WHEN severity = 'critical' AND opened_at < $3 AND (resolved_at IS NULL OR resolved_at >= $2)
                               THEN 1 END) AS critical,
                    COUNT(CASE WHEN opened_at >= $2 AND opened_at < $3 THEN 1 END) AS opened
             FROM alerts WHERE elder_id = $1 AND opened_at < $3",
        )
        .bind(elder_id)
        .bind(start)
        .bind(end)
        .fetch_one(&mut *self.transaction)
        .await?;
        Ok(DayFacts {
            critical_alert_open: row.try_get::<i64, _>("critical")? > 0,
            alerts_opened: row.try_get("opened")?,
        })
    }

    /// Keeps a closed day (`date` as `YYYY-MM-DD`) with whether it counted
    /// as a remote check-in and, if not, why.
    pub async fn record_day(
        &mut self,
        elder_id: i64,
        date: &str,
        day: &Day,
        counted: bool,
        reason: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO elder_days (elder_id, day, first_activity_at, last_activity_at, wake_at, active_hours, reported_hours,
                                     door_opens, motion, temp_min, temp_max, counted, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (elder_id, day) DO NOTHING",
        )
        .bind(elder_id)
        .bind(date)
        .bind(day.first_activity)
        .bind(day.last_activity)
        .bind(day.wake)
        .bind(i64::from(day.active_hours))
        .bind(i64::from(day.reported_hours))
        .bind(day.door_opens)
        .bind(day.motion)
        .bind(day.temp_min_dc.map(i64::from))
        .bind(day.temp_max_dc.map(i64::from))
        .bind(i64::from(counted))
        .bind(reason)
        .execute(&mut *self.transaction)
        .await?;
        Ok(())
    }

    /// Records the day's remote check-in (one per elder and day).
    pub async fn record_remote_visit(
        &mut self,
        elder_id: i64,
        date: &str,
        visited_at: i64,
        visitor: &str,
        summary: &str,
        created_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO visits (elder_id, day, mode, visited_at, visitor, summary, created_at, late)
             VALUES ($1, $2, 'remote', $3, $4, $5, $6, {})
             ON CONFLICT (elder_id, day) WHERE mode = 'remote' DO NOTHING",
            super::months::LATE_FOR_CLOSED_MONTH
        )))
        .bind(elder_id)
        .bind(date)
        .bind(visited_at)
        .bind(visitor)
        .bind(summary)
        .bind(created_at)
        .execute(&mut *self.transaction)
        .await?;
        Ok(())
    }

    /// Compare-and-set on a due reminder: moves it to `next_at` and counts
    /// it, only if nobody did since it was read. Returns the reminder count,
    /// or `None` when another gateway (or an acknowledgement) came first.
    pub async fn take_reminder(
        &mut self,
        due: &DueReminder,
        next_at: i64,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let updated = sqlx::query(
            "UPDATE alerts SET level = CASE WHEN level = 0 THEN 1 ELSE level END, reminders = reminders + 1,
                 next_reminder_at = $1, updated_at = $2
             WHERE id = $3 AND next_reminder_at = $4 AND status = 'open'
             RETURNING reminders",
        )
        .bind(next_at)
        .bind(now)
        .bind(due.id)
        .bind(due.reminder_at)
        .fetch_optional(&mut *self.transaction)
        .await?;
        updated.map(|row| row.try_get("reminders")).transpose().map_err(StoreError::from)
    }
}

impl Store {
    /// Critical alerts whose reminder is due by `now`, the oldest first.
    pub async fn due_reminders(&self, now: i64, limit: i64) -> Result<Vec<DueReminder>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, next_reminder_at, opened_at, county FROM alerts
             WHERE next_reminder_at <= $1 ORDER BY next_reminder_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DueReminder {
                    id: row.try_get("id")?,
                    reminder_at: row.try_get("next_reminder_at")?,
                    opened_at: row.try_get("opened_at")?,
                    county: row.try_get("county")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_spelling_no_enum_knows_is_an_error_naming_its_column() {
        let error = parsed("severity", "urgent", Severity::parse).unwrap_err();
        assert!(matches!(&error, sqlx::Error::ColumnDecode { index, .. } if index == "severity"), "{error}");
        assert!(error.to_string().contains("\"urgent\" is not a known severity"), "{error}");
        assert_eq!(parsed("status", "acknowledged", AlertStatus::parse).unwrap(), AlertStatus::Acknowledged);
        for outcome in [Outcome::FalseAlarm, Outcome::ClearedItself] {
            assert_eq!(parsed("outcome", outcome.as_str(), Outcome::parse).unwrap(), outcome);
        }
        assert_eq!(Outcome::parse_for_staff(Outcome::ClearedItself.as_str()), None, "the gateway's only");
    }
}
