//! The responder chain's records: the duty roster (`duty_shifts`), each
//! alert's chain (`responder_chains`), its messages — the outbox and the
//! answers given through their links (`responder_messages`) — and the key
//! the links are signed with (`link_keys`). The chain's rules are
//! [`anxin_domain::responders`]'; the sending is the gateway's.
//!
//! Every change of a chain writes a line of the alert's history in the same
//! transaction, so the board (through the feed) and the sinks see it.

use serde::Serialize;
use sqlx::Row;

use anxin_domain::alerts::{AlertKind, AlertStatus};
use anxin_domain::responders::{Answer, ChainMove, ChainState, ChainTimes, Purpose, on_deadline, on_decline};

use super::{Store, StoreError, Write};

/// Who is on call in a county, from when to when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DutyShift {
    pub id: i64,
    pub county: String,
    /// The staff member, as the roster names them.
    pub person: String,
    pub phone: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub created_by: String,
}

impl DutyShift {
    /// The shift's person as the chain reaches them.
    pub fn reached(self) -> Reached {
        Reached {
            step: 0,
            contact_id: None,
            name: self.person,
            relation: anxin_domain::responders::Relation::Oncall.code().to_string(),
            phone: self.phone,
        }
    }
}

fn shift(row: &sqlx::any::AnyRow) -> Result<DutyShift, sqlx::Error> {
    Ok(DutyShift {
        id: row.try_get("id")?,
        county: row.try_get("county")?,
        person: row.try_get("person")?,
        phone: row.try_get("phone")?,
        starts_at: row.try_get("starts_at")?,
        ends_at: row.try_get("ends_at")?,
        created_by: row.try_get("created_by")?,
    })
}

/// One person the chain reaches, as planned at its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    /// 0-based step.
    pub step: usize,
    /// The call list's contact; `None` for the roster's on-call.
    pub contact_id: Option<i64>,
    pub name: String,
    /// A [`anxin_domain::responders::Relation`] code.
    pub relation: String,
    pub phone: String,
}

/// An alert's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChainRecord {
    pub alert_id: i64,
    /// 0-based step reached.
    pub step: i64,
    pub steps: i64,
    #[schema(value_type = String)]
    pub state: ChainState,
    pub due_at: Option<i64>,
    pub started_at: i64,
    pub first_accepted_at: Option<i64>,
    pub arrived_at: Option<i64>,
}

fn chain(row: &sqlx::any::AnyRow) -> Result<ChainRecord, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(ChainRecord {
        alert_id: row.try_get("alert_id")?,
        step: row.try_get("step")?,
        steps: row.try_get("steps")?,
        state: ChainState::parse(&state).ok_or_else(|| StoreError::Invalid(format!("chain state {state:?}")))?,
        due_at: row.try_get("due_at")?,
        started_at: row.try_get("started_at")?,
        first_accepted_at: row.try_get("first_accepted_at")?,
        arrived_at: row.try_get("arrived_at")?,
    })
}

const CHAIN_COLUMNS: &str = "alert_id, step, steps, state, due_at, started_at, first_accepted_at, arrived_at";

/// One message of a chain: to whom, how its sending went, and the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ResponderMessage {
    pub id: i64,
    pub alert_id: i64,
    /// 0-based step.
    pub step: i64,
    /// `alert`, or `late` (to on-call: nobody arrived in time).
    pub purpose: String,
    pub contact_id: Option<i64>,
    pub name: String,
    pub relation: String,
    pub phone: String,
    /// planned, queued, sent, failed, cancelled
    pub status: String,
    pub attempts: i64,
    /// The provider's last refusal or the network's error.
    pub last_error: Option<String>,
    /// The provider's id for the message (Aliyun's BizId).
    pub provider_ref: Option<String>,
    pub queued_at: Option<i64>,
    pub sent_at: Option<i64>,
    pub accepted_at: Option<i64>,
    pub arrived_at: Option<i64>,
    pub declined_at: Option<i64>,
}

fn message(row: &sqlx::any::AnyRow) -> Result<ResponderMessage, sqlx::Error> {
    Ok(ResponderMessage {
        id: row.try_get("id")?,
        alert_id: row.try_get("alert_id")?,
        step: row.try_get("step")?,
        purpose: row.try_get("purpose")?,
        contact_id: row.try_get("contact_id")?,
        name: row.try_get("name")?,
        relation: row.try_get("relation")?,
        phone: row.try_get("phone")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        provider_ref: row.try_get("provider_ref")?,
        queued_at: row.try_get("queued_at")?,
        sent_at: row.try_get("sent_at")?,
        accepted_at: row.try_get("accepted_at")?,
        arrived_at: row.try_get("arrived_at")?,
        declined_at: row.try_get("declined_at")?,
    })
}

const MESSAGE_COLUMNS: &str =
    "m.id, m.alert_id, m.step, m.purpose, m.contact_id, m.name, m.relation, m.phone, m.status,
    m.attempts, m.last_error, m.provider_ref, m.queued_at, m.sent_at, m.accepted_at, m.arrived_at, m.declined_at";

/// A message due to be sent, with what its text needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub message: ResponderMessage,
    pub kind: AlertKind,
    pub village: String,
}

/// A chain whose deadline has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueChain {
    pub chain: ChainRecord,
    pub kind: AlertKind,
    pub county: String,
}

/// What a responder's link opens: the alert, the home, who to phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkView {
    pub message: ResponderMessage,
    pub kind: AlertKind,
    pub status: AlertStatus,
    pub opened_at: i64,
    pub elder_id: i64,
    pub county: String,
    pub village: String,
    pub address: String,
    pub elder_phone: Option<String>,
    /// Whoever is on call in the county now.
    pub oncall: Option<DutyShift>,
}

/// How one send went ([`Store::settle_messages`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled<'a> {
    /// Taken, with the provider's id for it.
    Sent(Option<&'a str>),
    /// Not taken: tried again at `retry_at`, or given up (`None`).
    Failed { error: &'a str, retry_at: Option<i64> },
}

/// Why an answer was refused.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("this link is no longer valid: the alert has been dealt with")]
    Closed,
    #[error("this answer has already been given")]
    AlreadyGiven,
    #[error("this link is not one that takes answers")]
    NotAnswerable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AnswerError {
    fn from(error: sqlx::Error) -> AnswerError {
        AnswerError::Store(error.into())
    }
}

/// An answer taken, and the alert-history line it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub event_id: i64,
    pub alert_id: i64,
}

/// How fast help came in one township over a period: beside the
/// acknowledgement shares, the time to the first acceptance and to an
/// arrival (from the alert's opening), as medians and 90th percentiles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ResponseFigures {
    pub county: String,
    pub township: String,
    pub ack: super::AckStats,
    /// Alerts whose responder chain started.
    pub chains: i64,
    pub accepted: i64,
    pub accept_median_ms: Option<i64>,
    pub accept_p90_ms: Option<i64>,
    pub arrived: i64,
    pub arrive_median_ms: Option<i64>,
    pub arrive_p90_ms: Option<i64>,
    /// Chains that ran out with nobody accepting.
    pub no_responder: i64,
}

/// The `share` quantile of sorted `values` (nearest rank).
fn quantile(values: &[i64], share: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a rank within the slice")]
    let rank = ((share * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

impl Store {
    /// The response figures of each township of `region` for alerts opened
    /// in `[from, to)`, townships in order.
    pub async fn response_figures(
        &self,
        region: &super::RegionFilter,
        from: i64,
        to: i64,
    ) -> Result<Vec<ResponseFigures>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.county, a.township, a.opened_at, a.ack_ms, a.outcome, c.state, c.first_accepted_at, c.arrived_at,
                    CASE WHEN c.alert_id IS NULL THEN 0 ELSE 1 END AS chained
             FROM alerts a LEFT JOIN responder_chains c ON c.alert_id = a.id
             WHERE a.opened_at >= $1 AND a.opened_at < $2
               AND ($3 IS NULL OR a.county = $3) AND ($4 IS NULL OR a.township = $4) AND ($5 IS NULL OR a.village = $5)
             ORDER BY a.county, a.township",
        )
        .bind(from)
        .bind(to)
        .bind(region.county.as_deref())
        .bind(region.township.as_deref())
        .bind(region.village.as_deref())
        .fetch_all(&self.pool)
        .await?;
        let mut figures: Vec<(ResponseFigures, Vec<i64>, Vec<i64>)> = Vec::new();
        for row in &rows {
            let county: String = row.try_get("county")?;
            let township: String = row.try_get("township")?;
            if figures.last().is_none_or(|(f, _, _)| f.county != county || f.township != township) {
                figures.push((ResponseFigures { county, township, ..ResponseFigures::default() }, vec![], vec![]));
            }
            let Some((figure, accepts, arrivals)) = figures.last_mut() else { continue };
            let opened: i64 = row.try_get("opened_at")?;
            let ack_ms: Option<i64> = row.try_get("ack_ms")?;
            let outcome: Option<String> = row.try_get("outcome")?;
            // As `ack_stats`: what cleared itself before anyone acknowledged is left out.
            if !(matches!(outcome.as_deref(), Some("cleared_itself" | "elder_left")) && ack_ms.is_none()) {
                figure.ack.alerts += 1;
                if let Some(ms) = ack_ms {
                    figure.ack.acknowledged += 1;
                    figure.ack.within_60s += i64::from(ms <= 60_000);
                    figure.ack.within_180s += i64::from(ms <= 180_000);
                }
            }
            if row.try_get::<i64, _>("chained")? == 0 {
                continue;
            }
            figure.chains += 1;
            if let Some(at) = row.try_get::<Option<i64>, _>("first_accepted_at")? {
                accepts.push(at - opened);
            }
            if let Some(at) = row.try_get::<Option<i64>, _>("arrived_at")? {
                arrivals.push(at - opened);
            }
            figure.no_responder +=
                i64::from(row.try_get::<Option<String>, _>("state")?.as_deref() == Some("no_responder"));
        }
        Ok(figures
            .into_iter()
            .map(|(mut figure, mut accepts, mut arrivals)| {
                accepts.sort_unstable();
                arrivals.sort_unstable();
                figure.accepted = i64::try_from(accepts.len()).unwrap_or(i64::MAX);
                figure.arrived = i64::try_from(arrivals.len()).unwrap_or(i64::MAX);
                figure.accept_median_ms = quantile(&accepts, 0.5);
                figure.accept_p90_ms = quantile(&accepts, 0.9);
                figure.arrive_median_ms = quantile(&arrivals, 0.5);
                figure.arrive_p90_ms = quantile(&arrivals, 0.9);
                figure
            })
            .collect())
    }

    /// The roster's shifts of `county` (all counties: `None`) that overlap
    /// `from..to`, earliest first.
    pub async fn duty_shifts(&self, county: Option<&str>, from: i64, to: i64) -> Result<Vec<DutyShift>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, county, person, phone, starts_at, ends_at, created_by FROM duty_shifts
             WHERE cancelled_at IS NULL AND ($1 IS NULL OR county = $1) AND starts_at < $3 AND ends_at > $2
             ORDER BY starts_at, id",
        )
        .bind(county)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(shift).collect::<Result<_, _>>()?)
    }

    /// Who is on call in `county` at `at`: the shift covering it that
    /// started last.
    pub async fn on_duty(&self, county: &str, at: i64) -> Result<Option<DutyShift>, StoreError> {
        let row = sqlx::query(
            "SELECT id, county, person, phone, starts_at, ends_at, created_by FROM duty_shifts
             WHERE cancelled_at IS NULL AND county = $1 AND starts_at <= $2 AND ends_at > $2
             ORDER BY starts_at DESC, id DESC LIMIT 1",
        )
        .bind(county)
        .bind(at)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(shift).transpose()?)
    }

    /// Puts a shift on the roster; audited (the county and times, not the phone).
    pub async fn add_shift(
        &self,
        county: &str,
        person: &str,
        phone: &str,
        (starts_at, ends_at): (i64, i64),
        by: &str,
        now: i64,
    ) -> Result<DutyShift, StoreError> {
        if ends_at <= starts_at {
            return Err(StoreError::Invalid("a shift must end after it starts".into()));
        }
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let row = sqlx::query(
            "INSERT INTO duty_shifts (county, person, phone, starts_at, ends_at, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, county, person, phone, starts_at, ends_at, created_by",
        )
        .bind(county)
        .bind(person)
        .bind(phone)
        .bind(starts_at)
        .bind(ends_at)
        .bind(by)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await?;
        let added = shift(&row)?;
        let detail = format!("shift={} county={county} from={starts_at} to={ends_at}", added.id);
        super::users::audit(&mut transaction, now, by, "duty shift added", None, Some(&detail)).await?;
        transaction.commit().await?;
        Ok(added)
    }

    /// Takes a shift off the roster; audited.
    pub async fn cancel_shift(&self, id: i64, by: &str, now: i64) -> Result<DutyShift, StoreError> {
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let row = sqlx::query(
            "UPDATE duty_shifts SET cancelled_at = $2 WHERE id = $1 AND cancelled_at IS NULL
             RETURNING id, county, person, phone, starts_at, ends_at, created_by",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no duty shift {id} on the roster")))?;
        let cancelled = shift(&row)?;
        let detail = format!("shift={id} county={}", cancelled.county);
        super::users::audit(&mut transaction, now, by, "duty shift cancelled", None, Some(&detail)).await?;
        transaction.commit().await?;
        Ok(cancelled)
    }

    /// The key answer links are signed with, made on first use (32 random
    /// bytes from the operating system).
    pub async fn link_key(&self) -> Result<Vec<u8>, StoreError> {
        use anxin_domain::responders::link;
        let corrupt = || StoreError::Invalid("the link key kept in link_keys is not a key".into());
        if let Some(row) = sqlx::query("SELECT key FROM link_keys WHERE id = 1").fetch_optional(&self.pool).await? {
            let text: String = row.try_get("key")?;
            return link::decode_key(&text).ok_or_else(corrupt);
        }
        let _turn = self.write_turn().await;
        sqlx::query("INSERT INTO link_keys (id, key, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(link::new_key())
            .bind(super::now_ms())
            .execute(&self.pool)
            .await?;
        // Another process may have made it first: read back the one kept.
        let row = sqlx::query("SELECT key FROM link_keys WHERE id = 1").fetch_one(&self.pool).await?;
        let text: String = row.try_get("key")?;
        link::decode_key(&text).ok_or_else(corrupt)
    }

    /// Starts an alert's chain with its plan: the first step's messages are
    /// queued, the later ones planned; with nobody to reach, the alert has
    /// no responder at once. Returns the history line written, or `None`
    /// when the chain exists already or the alert is no longer open.
    pub async fn start_chain(
        &self,
        alert_id: i64,
        plan: &[Reached],
        accept_ms: i64,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut write = self.begin_write().await?;
        let open = sqlx::query(
            "SELECT 1 AS one FROM alerts WHERE id = $1 AND status <> 'resolved'
               AND NOT EXISTS (SELECT 1 FROM responder_chains WHERE alert_id = $1)",
        )
        .bind(alert_id)
        .fetch_optional(&mut *write.transaction)
        .await?;
        if open.is_none() {
            return Ok(None);
        }
        let steps = plan.iter().map(|reached| reached.step + 1).max().unwrap_or(0);
        let (state, due_at) =
            if steps == 0 { (ChainState::NoResponder, None) } else { (ChainState::Calling, Some(now + accept_ms)) };
        sqlx::query(
            "INSERT INTO responder_chains (alert_id, step, steps, state, due_at, started_at, updated_at)
             VALUES ($1, 0, $2, $3, $4, $5, $5)",
        )
        .bind(alert_id)
        .bind(i64::try_from(steps).unwrap_or(i64::MAX))
        .bind(state.code())
        .bind(due_at)
        .bind(now)
        .execute(&mut *write.transaction)
        .await?;
        for reached in plan {
            let first = reached.step == 0;
            insert_message(&mut write, alert_id, reached, Purpose::Alert, first, now).await?;
        }
        let event = if steps == 0 {
            write
                .alert_event(alert_id, now, "no_responder", None, Some("nobody on the call list or the roster"))
                .await?
        } else {
            let first = plan.iter().filter(|reached| reached.step == 0).count();
            let detail = format!("step 1 of {steps}: {first} reached");
            write.alert_event(alert_id, now, "chain_started", None, Some(&detail)).await?
        };
        write.commit().await?;
        self.note_alert_written(event);
        Ok(Some(event))
    }

    /// Chains whose deadline has passed by `now`, with their alert's kind and county.
    pub async fn due_chains(&self, now: i64, limit: i64) -> Result<Vec<DueChain>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.alert_id, c.step, c.steps, c.state, c.due_at, c.started_at, c.first_accepted_at, c.arrived_at,
                    a.kind, a.county
             FROM responder_chains c JOIN alerts a ON a.id = c.alert_id
             WHERE c.due_at IS NOT NULL AND c.due_at <= $1 ORDER BY c.due_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                Ok(DueChain {
                    chain: chain(row)?,
                    kind: AlertKind::parse(&kind).ok_or_else(|| StoreError::Invalid(format!("alert kind {kind:?}")))?,
                    county: row.try_get("county")?,
                })
            })
            .collect()
    }

    /// Moves a chain whose deadline has passed: the next step, a late
    /// arrival told to `oncall`, or no responder; a chain whose alert was
    /// resolved is closed and its unsent messages cancelled. Compare-and-set
    /// on the chain's step and deadline: one gateway moves it. Returns the
    /// history line written.
    pub async fn move_due_chain(
        &self,
        due: &DueChain,
        times: &ChainTimes,
        oncall: Option<&Reached>,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut write = self.begin_write().await?;
        // The compare-and-set: on PostgreSQL the row is locked from here, and
        // a second gateway's same statement waits, then finds it moved.
        let claimed = sqlx::query(
            "UPDATE responder_chains SET updated_at = $4
             WHERE alert_id = $1 AND step = $2 AND due_at = $3 AND due_at <= $4",
        )
        .bind(due.chain.alert_id)
        .bind(due.chain.step)
        .bind(due.chain.due_at)
        .bind(now)
        .execute(&mut *write.transaction)
        .await?;
        if claimed.rows_affected() != 1 {
            return Ok(None);
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHAIN_COLUMNS}, (SELECT status FROM alerts WHERE id = $1) AS alert_status
             FROM responder_chains WHERE alert_id = $1"
        )))
        .bind(due.chain.alert_id)
        .fetch_one(&mut *write.transaction)
        .await?;
        let current = chain(&row)?;
        let alert_status: String = row.try_get("alert_status")?;
        let event = if alert_status == AlertStatus::Resolved.as_str() {
            close_chain(&mut write, due.chain.alert_id, now).await?;
            None
        } else {
            let step = usize::try_from(current.step).unwrap_or(0);
            let steps = usize::try_from(current.steps).unwrap_or(0);
            let mut mv = on_deadline(current.state, step, steps);
            if mv == ChainMove::NoResponder && current.first_accepted_at.is_some() {
                // Someone accepted earlier and is late: on-call was told; wait for them.
                mv = ChainMove::Stay;
            }
            apply_move(&mut write, &current, mv, due.kind, times, oncall, now).await?
        };
        write.commit().await?;
        if let Some(event) = event {
            self.note_alert_written(event);
        }
        Ok(event)
    }

    /// Closes the chains of resolved alerts that still have a deadline or
    /// unsent messages (an alert resolved between two looks).
    pub async fn close_resolved_chains(&self, now: i64) -> Result<usize, StoreError> {
        let rows = sqlx::query(
            "SELECT c.alert_id FROM responder_chains c JOIN alerts a ON a.id = c.alert_id
             WHERE a.status = 'resolved' AND c.state <> 'closed' LIMIT 200",
        )
        .fetch_all(&self.pool)
        .await?;
        let ids: Vec<i64> = rows.iter().map(|row| row.try_get("alert_id")).collect::<Result<_, _>>()?;
        for alert_id in &ids {
            let mut write = self.begin_write().await?;
            close_chain(&mut write, *alert_id, now).await?;
            write.commit().await?;
        }
        Ok(ids.len())
    }

    /// Messages due to be sent (queued, due by `now`): a critical alert's
    /// first (a smoke alarm's messages do not wait behind a cold wave's);
    /// then each alert's first contact before anyone's second (in a burst
    /// of alarms every home has someone told soonest); then the oldest.
    pub async fn due_messages(&self, now: i64, limit: i64) -> Result<Vec<Outgoing>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS}, a.kind, a.village FROM responder_messages m JOIN alerts a ON a.id = m.alert_id
             WHERE m.status = 'queued' AND m.due_at <= $1
             ORDER BY CASE a.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,
                      m.id - (SELECT MIN(f.id) FROM responder_messages f WHERE f.alert_id = m.alert_id),
                      m.due_at, m.id
             LIMIT $2"
        )))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                Ok(Outgoing {
                    message: message(row)?,
                    kind: AlertKind::parse(&kind).ok_or_else(|| StoreError::Invalid(format!("alert kind {kind:?}")))?,
                    village: row.try_get("village")?,
                })
            })
            .collect()
    }

    /// Claims due messages until `until`, in one statement; returns those
    /// this sender got (another may have taken some).
    pub async fn claim_messages(&self, ids: &[i64], until: i64, now: i64) -> Result<Vec<i64>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let _turn = self.write_turn().await;
        let mut params = super::Params::new(self.backend);
        let (until_at, now_at) = (params.one(), params.one());
        let sql = format!(
            "UPDATE responder_messages SET due_at = {until_at}
             WHERE status = 'queued' AND due_at <= {now_at} AND id IN ({}) RETURNING id",
            params.list(ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(until).bind(now);
        for id in ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|row| row.try_get("id")).collect::<Result<_, _>>()?)
    }

    /// How a batch of sends went, recorded in one transaction: sent (with
    /// the provider's id), or failed (tried again at `retry_at`, or given up
    /// with `None`). After failures a send is written in the alert's
    /// history; so are the first failure and the giving up, so the board
    /// says so.
    pub async fn settle_messages(&self, outcomes: &[(i64, Settled<'_>)], now: i64) -> Result<(), StoreError> {
        let mut write = self.begin_write().await?;
        let mut newest = None;
        for (id, outcome) in outcomes {
            let event = match outcome {
                Settled::Sent(provider_ref) => {
                    let row = sqlx::query(
                        "UPDATE responder_messages SET status = 'sent', sent_at = $2, provider_ref = $3, due_at = NULL
                         WHERE id = $1 AND status = 'queued' RETURNING alert_id, attempts",
                    )
                    .bind(id)
                    .bind(now)
                    .bind(*provider_ref)
                    .fetch_optional(&mut *write.transaction)
                    .await?;
                    match row {
                        Some(row) if row.try_get::<i64, _>("attempts")? > 0 => {
                            let attempts: i64 = row.try_get("attempts")?;
                            let detail = format!("message={id} sent after {attempts} failed attempts");
                            let alert_id: i64 = row.try_get("alert_id")?;
                            Some(write.alert_event(alert_id, now, "sms_sent", None, Some(&detail)).await?)
                        }
                        _ => None,
                    }
                }
                Settled::Failed { error, retry_at } => {
                    let error: String = error.chars().take(300).collect();
                    let status = if retry_at.is_some() { "queued" } else { "failed" };
                    let row = sqlx::query(
                        "UPDATE responder_messages SET status = $2, due_at = $3, attempts = attempts + 1, last_error = $4
                         WHERE id = $1 AND status = 'queued' RETURNING alert_id, attempts",
                    )
                    .bind(id)
                    .bind(status)
                    .bind(*retry_at)
                    .bind(&error)
                    .fetch_optional(&mut *write.transaction)
                    .await?;
                    match row {
                        Some(row) => {
                            let attempts: i64 = row.try_get("attempts")?;
                            let alert_id: i64 = row.try_get("alert_id")?;
                            if retry_at.is_none() {
                                let detail = format!("message={id} given up after {attempts} attempts");
                                Some(write.alert_event(alert_id, now, "sms_failed", None, Some(&detail)).await?)
                            } else if attempts == 1 {
                                let detail = format!("message={id} not sent; retrying");
                                Some(write.alert_event(alert_id, now, "sms_retrying", None, Some(&detail)).await?)
                            } else {
                                None
                            }
                        }
                        None => None,
                    }
                }
            };
            newest = event.or(newest);
        }
        write.commit().await?;
        if let Some(event) = newest {
            self.note_alert_written(event);
        }
        Ok(())
    }

    /// An alert's chain, if it has one.
    pub async fn chain(&self, alert_id: i64) -> Result<Option<ChainRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHAIN_COLUMNS} FROM responder_chains WHERE alert_id = $1"
        )))
        .bind(alert_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(chain).transpose()
    }

    /// The chains of these alerts (the board's rows).
    pub async fn chains_of(&self, alert_ids: &[i64]) -> Result<Vec<ChainRecord>, StoreError> {
        let select = format!("SELECT {CHAIN_COLUMNS} FROM responder_chains WHERE alert_id IN");
        self.rows_of_alerts(&select, "", alert_ids).await?.iter().map(chain).collect()
    }

    /// The messages of these alerts' chains (the board's rows), in order.
    pub async fn responder_messages_of(&self, alert_ids: &[i64]) -> Result<Vec<ResponderMessage>, StoreError> {
        let select = format!("SELECT {MESSAGE_COLUMNS} FROM responder_messages m WHERE m.alert_id IN");
        let rows = self.rows_of_alerts(&select, "ORDER BY m.id", alert_ids).await?;
        Ok(rows.iter().map(message).collect::<Result<_, _>>()?)
    }

    /// `{select} (…ids…) {tail}` for the ids 200 at a time.
    async fn rows_of_alerts(
        &self,
        select: &str,
        tail: &str,
        alert_ids: &[i64],
    ) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        let mut rows = Vec::new();
        for chunk in alert_ids.chunks(200) {
            let mut params = super::Params::new(self.backend);
            let sql = format!("{select} ({}) {tail}", params.list(chunk.len()));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            rows.extend(query.fetch_all(&self.pool).await?);
        }
        Ok(rows)
    }

    /// Every message of an alert's chain, in the order they were planned.
    pub async fn responder_messages(&self, alert_id: i64) -> Result<Vec<ResponderMessage>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM responder_messages m WHERE m.alert_id = $1 ORDER BY m.id"
        )))
        .bind(alert_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(message).collect::<Result<_, _>>()?)
    }

    /// What message `id`'s link opens.
    pub async fn link_view(&self, id: i64, now: i64) -> Result<Option<LinkView>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS}, a.kind, a.status AS alert_status, a.opened_at, a.elder_id, a.county, a.village,
                    e.address, e.phone AS elder_phone
             FROM responder_messages m JOIN alerts a ON a.id = m.alert_id JOIN elders e ON e.id = a.elder_id
             WHERE m.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let kind: String = row.try_get("kind")?;
        let status: String = row.try_get("alert_status")?;
        let county: String = row.try_get("county")?;
        Ok(Some(LinkView {
            message: message(&row)?,
            kind: AlertKind::parse(&kind).ok_or_else(|| StoreError::Invalid(format!("alert kind {kind:?}")))?,
            status: AlertStatus::parse(&status).ok_or_else(|| StoreError::Invalid(format!("status {status:?}")))?,
            opened_at: row.try_get("opened_at")?,
            elder_id: row.try_get("elder_id")?,
            village: row.try_get("village")?,
            address: row.try_get("address")?,
            elder_phone: row.try_get("elder_phone")?,
            oncall: self.on_duty(&county, now).await?,
            county,
        }))
    }

    /// Takes a responder's answer through message `id`'s link: each answer
    /// once, only while the alert is open. Moves the chain (accepted: it
    /// waits for the arrival; everybody reached declined: the next step),
    /// writes the alert's history and the audit log in one transaction.
    pub async fn answer(&self, id: i64, answer: Answer, times: &ChainTimes, now: i64) -> Result<Answered, AnswerError> {
        let county: String =
            sqlx::query("SELECT a.county FROM responder_messages m JOIN alerts a ON a.id = m.alert_id WHERE m.id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(AnswerError::NotAnswerable)?
                .try_get("county")?;
        // Told if the one accepting now does not arrive in time.
        let oncall = self.on_duty(&county, now).await?.map(DutyShift::reached);
        let oncall = oncall.as_ref();
        let mut write = self.begin_write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS}, a.status AS alert_status, a.kind, a.elder_id
             FROM responder_messages m JOIN alerts a ON a.id = m.alert_id WHERE m.id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *write.transaction)
        .await?
        .ok_or(AnswerError::NotAnswerable)?;
        let answered = message(&row)?;
        let alert_status: String = row.try_get("alert_status")?;
        let kind: String = row.try_get("kind")?;
        let kind = AlertKind::parse(&kind).ok_or_else(|| StoreError::Invalid(format!("alert kind {kind:?}")))?;
        let elder_id: i64 = row.try_get("elder_id")?;
        if alert_status == AlertStatus::Resolved.as_str() {
            return Err(AnswerError::Closed);
        }
        if !matches!(answered.status.as_str(), "queued" | "sent" | "failed") {
            return Err(AnswerError::NotAnswerable);
        }
        let column = match answer {
            Answer::Accepted if answered.accepted_at.is_some() || answered.declined_at.is_some() => {
                return Err(AnswerError::AlreadyGiven);
            }
            Answer::Arrived if answered.arrived_at.is_some() => return Err(AnswerError::AlreadyGiven),
            Answer::Declined if answered.declined_at.is_some() || answered.accepted_at.is_some() => {
                return Err(AnswerError::AlreadyGiven);
            }
            Answer::Accepted => "accepted_at = $2 WHERE id = $1 AND accepted_at IS NULL AND declined_at IS NULL",
            // Arriving says they came: an arrival without an acceptance accepts too.
            Answer::Arrived => {
                "arrived_at = $2, accepted_at = COALESCE(accepted_at, $2) WHERE id = $1 AND arrived_at IS NULL"
            }
            Answer::Declined => "declined_at = $2 WHERE id = $1 AND declined_at IS NULL AND accepted_at IS NULL",
        };
        // Conditional: of two taps at once (two gateways, PostgreSQL) one is taken.
        let taken = sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE responder_messages SET {column}")))
            .bind(id)
            .bind(now)
            .execute(&mut *write.transaction)
            .await?;
        if taken.rows_affected() != 1 {
            return Err(AnswerError::AlreadyGiven);
        }
        let detail = format!("message={id} relation={} step={}", answered.relation, answered.step + 1);
        let event = write
            .alert_event(answered.alert_id, now, &format!("responder_{}", answer.code()), None, Some(&detail))
            .await?;
        let current = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHAIN_COLUMNS} FROM responder_chains WHERE alert_id = $1"
        )))
        .bind(answered.alert_id)
        .fetch_optional(&mut *write.transaction)
        .await?;
        let mut moved = None;
        if let Some(row) = current {
            let current = chain(&row)?;
            match answer {
                Answer::Accepted => {
                    sqlx::query(
                        "UPDATE responder_chains SET state = CASE WHEN state = 'arrived' THEN state ELSE 'accepted' END,
                             first_accepted_at = COALESCE(first_accepted_at, $2),
                             due_at = CASE WHEN state = 'arrived' THEN NULL ELSE $3 END, updated_at = $2
                         WHERE alert_id = $1",
                    )
                    .bind(answered.alert_id)
                    .bind(now)
                    .bind(now + times.arrive_ms)
                    .execute(&mut *write.transaction)
                    .await?;
                }
                Answer::Arrived => {
                    sqlx::query(
                        "UPDATE responder_chains SET state = 'arrived', due_at = NULL,
                             first_accepted_at = COALESCE(first_accepted_at, $2),
                             arrived_at = COALESCE(arrived_at, $2), updated_at = $2
                         WHERE alert_id = $1",
                    )
                    .bind(answered.alert_id)
                    .bind(now)
                    .execute(&mut *write.transaction)
                    .await?;
                }
                Answer::Declined => {
                    let waiting: i64 = sqlx::query(
                        "SELECT COUNT(*) AS n FROM responder_messages
                         WHERE alert_id = $1 AND purpose = 'alert' AND step <= $2 AND status IN ('queued', 'sent')
                           AND declined_at IS NULL",
                    )
                    .bind(answered.alert_id)
                    .bind(current.step)
                    .fetch_one(&mut *write.transaction)
                    .await?
                    .try_get("n")?;
                    let step = usize::try_from(current.step).unwrap_or(0);
                    let steps = usize::try_from(current.steps).unwrap_or(0);
                    let mv = on_decline(current.state, step, steps, waiting == 0);
                    if mv != ChainMove::Stay {
                        moved = apply_move(&mut write, &current, mv, kind, times, oncall, now).await?;
                    }
                }
            }
        }
        let audit = format!("alert={} message={id} answer={}", answered.alert_id, answer.code());
        let actor = format!("responder:{id}");
        super::users::audit(&mut write.transaction, now, &actor, "responder answered", Some(elder_id), Some(&audit))
            .await?;
        write.commit().await?;
        self.note_alert_written(moved.unwrap_or(event).max(event));
        Ok(Answered { event_id: event, alert_id: answered.alert_id })
    }

    /// On-call called the elder back and heard `outcome` (a
    /// [`anxin_domain::responders::CallBack`] code): a line of the alert's
    /// history, audited.
    pub async fn record_call_back(
        &self,
        alert_id: i64,
        elder_id: i64,
        outcome: &str,
        by: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let mut write = self.begin_write().await?;
        let event = write.alert_event(alert_id, now, "called_back", Some(by), Some(outcome)).await?;
        let detail = format!("alert={alert_id} outcome={outcome}");
        super::users::audit(&mut write.transaction, now, by, "elder called back", Some(elder_id), Some(&detail))
            .await?;
        write.commit().await?;
        self.note_alert_written(event);
        Ok(event)
    }

    /// Notes that a responder's page was opened (a sensitive read: it shows
    /// an address and phone numbers).
    pub async fn audit_link_opened(&self, id: i64, elder_id: i64, now: i64) -> Result<(), StoreError> {
        self.audit(
            now,
            &format!("responder:{id}"),
            "responder link opened",
            Some(elder_id),
            Some(&format!("message={id}")),
        )
        .await
    }
}

async fn insert_message(
    write: &mut Write,
    alert_id: i64,
    reached: &Reached,
    purpose: Purpose,
    queued: bool,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO responder_messages (alert_id, step, purpose, contact_id, name, relation, phone, status, due_at,
                                         queued_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(alert_id)
    .bind(i64::try_from(reached.step).unwrap_or(i64::MAX))
    .bind(purpose.code())
    .bind(reached.contact_id)
    .bind(reached.name.as_str())
    .bind(reached.relation.as_str())
    .bind(reached.phone.as_str())
    .bind(if queued { "queued" } else { "planned" })
    .bind(queued.then_some(now))
    .bind(queued.then_some(now))
    .execute(&mut *write.transaction)
    .await?;
    Ok(())
}

/// Applies a chain's move; returns the history line written.
async fn apply_move(
    write: &mut Write,
    current: &ChainRecord,
    mv: ChainMove,
    kind: AlertKind,
    times: &ChainTimes,
    oncall: Option<&Reached>,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let alert_id = current.alert_id;
    let next_step = async |write: &mut Write, step: usize| -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE responder_messages SET status = 'queued', due_at = $3, queued_at = $3
             WHERE alert_id = $1 AND step = $2 AND status = 'planned'",
        )
        .bind(alert_id)
        .bind(i64::try_from(step).unwrap_or(i64::MAX))
        .bind(now)
        .execute(&mut *write.transaction)
        .await?;
        sqlx::query(
            "UPDATE responder_chains SET step = $2, state = 'calling', due_at = $3, updated_at = $4 WHERE alert_id = $1",
        )
        .bind(alert_id)
        .bind(i64::try_from(step).unwrap_or(i64::MAX))
        .bind(now + times.accept_ms(kind))
        .bind(now)
        .execute(&mut *write.transaction)
        .await?;
        Ok(())
    };
    let event = match mv {
        ChainMove::Next(step) => {
            next_step(write, step).await?;
            let detail = format!("step {} of {}", step + 1, current.steps);
            Some(write.alert_event(alert_id, now, "chain_next", None, Some(&detail)).await?)
        }
        ChainMove::Late(next) => {
            if let Some(oncall) = oncall {
                let told = Reached { step: usize::try_from(current.step).unwrap_or(0), ..oncall.clone() };
                insert_message(write, alert_id, &told, Purpose::Late, true, now).await?;
            }
            match next {
                Some(step) => next_step(write, step).await?,
                None => {
                    sqlx::query("UPDATE responder_chains SET due_at = NULL, updated_at = $2 WHERE alert_id = $1")
                        .bind(alert_id)
                        .bind(now)
                        .execute(&mut *write.transaction)
                        .await?;
                }
            }
            let told = if oncall.is_some() { "on-call told" } else { "nobody on the roster to tell" };
            let detail = match next {
                Some(step) => format!("accepted, not arrived: {told}; step {} of {}", step + 1, current.steps),
                None => format!("accepted, not arrived: {told}"),
            };
            Some(write.alert_event(alert_id, now, "arrival_late", None, Some(&detail)).await?)
        }
        ChainMove::NoResponder => {
            sqlx::query(
                "UPDATE responder_chains SET state = 'no_responder', due_at = NULL, updated_at = $2 WHERE alert_id = $1",
            )
            .bind(alert_id)
            .bind(now)
            .execute(&mut *write.transaction)
            .await?;
            let detail = format!("all {} steps tried; nobody accepted", current.steps);
            Some(write.alert_event(alert_id, now, "no_responder", None, Some(&detail)).await?)
        }
        ChainMove::Stay => {
            sqlx::query("UPDATE responder_chains SET due_at = NULL, updated_at = $2 WHERE alert_id = $1")
                .bind(alert_id)
                .bind(now)
                .execute(&mut *write.transaction)
                .await?;
            None
        }
    };
    Ok(event)
}

async fn close_chain(write: &mut Write, alert_id: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE responder_chains SET state = 'closed', due_at = NULL, updated_at = $2 WHERE alert_id = $1")
        .bind(alert_id)
        .bind(now)
        .execute(&mut *write.transaction)
        .await?;
    sqlx::query(
        "UPDATE responder_messages SET status = 'cancelled', due_at = NULL
         WHERE alert_id = $1 AND status IN ('planned', 'queued')",
    )
    .bind(alert_id)
    .execute(&mut *write.transaction)
    .await?;
    Ok(())
}
