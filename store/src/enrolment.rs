//! Enrolment and exit: an elder's periods in the programme (`enrolments`),
//! with the current exit kept beside the elder (`elders.left_on`).

use serde::Serialize;
use sqlx::Row;

use anxin_domain::enrolment::{EnrolmentError, Exit, check_reentry};
use anxin_domain::time::{day_start_ms, local_day};

use super::{Store, StoreError};

/// One period in the programme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Enrolment {
    pub id: i64,
    pub elder_id: i64,
    /// Epoch ms.
    pub enrolled_at: i64,
    pub enrolled_by: String,
    /// The last day in the programme, `YYYY-MM-DD`; `None` while enrolled.
    pub exited_on: Option<String>,
    /// died, moved, institution, ineligible, declined
    pub exit_reason: Option<String>,
    pub exit_recorded_by: Option<String>,
    pub exit_recorded_at: Option<i64>,
}

/// What an exit did besides recording it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExitEffects {
    /// Devices unpaired from the home (free to be paired elsewhere).
    pub devices_released: Vec<String>,
    /// Alerts of the home resolved as `elder_left`.
    pub alerts_resolved: Vec<i64>,
}

/// An exit, with where the elder lived: a row of the export of exits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExitRecord {
    pub elder_id: i64,
    pub name: String,
    pub county: String,
    pub township: String,
    pub village: String,
    pub exited_on: String,
    pub exit_reason: String,
    pub recorded_by: String,
    pub recorded_at: i64,
}

fn enrolment(row: &sqlx::any::AnyRow) -> Result<Enrolment, sqlx::Error> {
    Ok(Enrolment {
        id: row.try_get("id")?,
        elder_id: row.try_get("elder_id")?,
        enrolled_at: row.try_get("enrolled_at")?,
        enrolled_by: row.try_get("enrolled_by")?,
        exited_on: row.try_get("exited_on")?,
        exit_reason: row.try_get("exit_reason")?,
        exit_recorded_by: row.try_get("exit_recorded_by")?,
        exit_recorded_at: row.try_get("exit_recorded_at")?,
    })
}

fn invalid(error: EnrolmentError) -> StoreError {
    StoreError::Invalid(error.to_string())
}

fn date(text: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

impl Store {
    /// An elder's periods in the programme, the first first.
    pub async fn enrolments(&self, elder_id: i64) -> Result<Vec<Enrolment>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, elder_id, enrolled_at, enrolled_by, exited_on, exit_reason, exit_recorded_by, exit_recorded_at
             FROM enrolments WHERE elder_id = $1 ORDER BY enrolled_at",
        )
        .bind(elder_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(enrolment).collect::<Result<_, _>>()?)
    }

    /// Records that an elder left the programme (checked against their
    /// enrolment and `now`'s local date at `offset`), and in the same
    /// transaction releases the home's devices, stops watching it and
    /// resolves its open alerts as `elder_left`. Audited as `by`.
    pub async fn record_exit(
        &self,
        elder_id: i64,
        exit: Exit,
        by: &str,
        now: i64,
        offset: chrono::FixedOffset,
    ) -> Result<ExitEffects, StoreError> {
        let by = super::visits::required("who records the exit", by)?;
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let row = sqlx::query(
            "SELECT e.left_on, p.enrolled_at FROM elders e
             LEFT JOIN enrolments p ON p.elder_id = e.id AND p.exited_on IS NULL WHERE e.id = $1",
        )
        .bind(elder_id)
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("there is no elder with id {elder_id}")))?;
        if let Some(left_on) = row.try_get::<Option<String>, _>("left_on")?.as_deref().and_then(date) {
            return Err(invalid(EnrolmentError::AlreadyLeft(left_on)));
        }
        let enrolled_at: i64 = row.try_get::<Option<i64>, _>("enrolled_at")?.unwrap_or_default();
        let exit = exit.check(local_day(enrolled_at, offset), local_day(now, offset)).map_err(invalid)?;
        let (effects, newest_event) = exit_in(&mut transaction, elder_id, exit, &by, now).await?;
        transaction.commit().await?;
        if let Some(event) = newest_event {
            self.note_alert_written(event);
        }
        Ok(effects)
    }

    /// An elder who left re-enters the programme on `day` (local, at
    /// `offset`): a new period begins. Devices are paired again by hand.
    pub async fn reenter(
        &self,
        elder_id: i64,
        day: chrono::NaiveDate,
        by: &str,
        now: i64,
        offset: chrono::FixedOffset,
    ) -> Result<Enrolment, StoreError> {
        let by = super::visits::required("who records the re-entry", by)?;
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let left_on: Option<String> = sqlx::query("SELECT left_on FROM elders WHERE id = $1")
            .bind(elder_id)
            .fetch_optional(&mut *transaction)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("there is no elder with id {elder_id}")))?
            .try_get("left_on")?;
        let left_on = left_on.as_deref().and_then(date).ok_or_else(|| invalid(EnrolmentError::NotLeft))?;
        let day = check_reentry(day, left_on, local_day(now, offset)).map_err(invalid)?;
        let enrolled_at = day_start_ms(day, offset);
        let row = sqlx::query(
            "INSERT INTO enrolments (elder_id, enrolled_at, enrolled_by) VALUES ($1, $2, $3)
             RETURNING id, elder_id, enrolled_at, enrolled_by, exited_on, exit_reason, exit_recorded_by,
                       exit_recorded_at",
        )
        .bind(elder_id)
        .bind(enrolled_at)
        .bind(by.as_str())
        .fetch_one(&mut *transaction)
        .await?;
        sqlx::query("UPDATE elders SET left_on = NULL, exit_reason = NULL, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(elder_id)
            .execute(&mut *transaction)
            .await?;
        let detail = format!("on={day}");
        super::users::audit(&mut transaction, now, &by, "elder re-entered", Some(elder_id), Some(&detail)).await?;
        transaction.commit().await?;
        Ok(enrolment(&row)?)
    }

    /// Exits dated between `first_day` and `last_day` (`YYYY-MM-DD`,
    /// inclusive), by region and date.
    pub async fn exits(&self, first_day: &str, last_day: &str) -> Result<Vec<ExitRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.id, e.name, e.county, e.township, e.village, p.exited_on, p.exit_reason, p.exit_recorded_by,
                    p.exit_recorded_at
             FROM enrolments p JOIN elders e ON e.id = p.elder_id
             WHERE p.exited_on >= $1 AND p.exited_on <= $2
             ORDER BY e.county, e.township, e.village, p.exited_on, e.id",
        )
        .bind(first_day)
        .bind(last_day)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(ExitRecord {
                    elder_id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    county: row.try_get("county")?,
                    township: row.try_get("township")?,
                    village: row.try_get("village")?,
                    exited_on: row.try_get("exited_on")?,
                    exit_reason: row.try_get("exit_reason")?,
                    recorded_by: row.try_get("exit_recorded_by")?,
                    recorded_at: row.try_get("exit_recorded_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }
}

/// Records an exit in `transaction`: the period closes, the elder is marked,
/// the home's devices are released, its watch row deleted and its open
/// alerts resolved as `elder_left`; audited. Returns what it did and the
/// newest alert event written (to wake the feed once committed).
pub(crate) async fn exit_in(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    elder_id: i64,
    exit: Exit,
    by: &str,
    now: i64,
) -> Result<(ExitEffects, Option<i64>), StoreError> {
    let exited_on = exit.on.format("%Y-%m-%d").to_string();
    sqlx::query(
        "UPDATE enrolments SET exited_on = $1, exit_reason = $2, exit_recorded_by = $3, exit_recorded_at = $4
             WHERE elder_id = $5 AND exited_on IS NULL",
    )
    .bind(exited_on.as_str())
    .bind(exit.reason.code())
    .bind(by)
    .bind(now)
    .bind(elder_id)
    .execute(&mut **transaction)
    .await?;
    sqlx::query("UPDATE elders SET left_on = $1, exit_reason = $2, updated_at = $3 WHERE id = $4")
        .bind(exited_on.as_str())
        .bind(exit.reason.code())
        .bind(now)
        .bind(elder_id)
        .execute(&mut **transaction)
        .await?;
    let devices_released: Vec<String> =
        sqlx::query("UPDATE devices SET elder_id = NULL, paired_at = NULL WHERE elder_id = $1 RETURNING device_id")
            .bind(elder_id)
            .fetch_all(&mut **transaction)
            .await?
            .iter()
            .map(|row| row.try_get("device_id"))
            .collect::<Result<_, _>>()?;
    sqlx::query("DELETE FROM home_watch WHERE elder_id = $1").bind(elder_id).execute(&mut **transaction).await?;
    let alerts_resolved: Vec<i64> = sqlx::query(
        "UPDATE alerts SET status = 'resolved', resolved_at = $1, resolved_by = $2, outcome = 'elder_left',
                 next_reminder_at = NULL, updated_at = $1
             WHERE elder_id = $3 AND status <> 'resolved' RETURNING id",
    )
    .bind(now)
    .bind(by)
    .bind(elder_id)
    .fetch_all(&mut **transaction)
    .await?
    .iter()
    .map(|row| row.try_get("id"))
    .collect::<Result<_, _>>()?;
    let mut newest_event = None;
    for alert in &alerts_resolved {
        let detail = Some(exit.reason.code());
        newest_event = Some(super::alerts::insert_event(transaction, *alert, now, "resolved", Some(by), detail).await?);
    }
    let detail = format!(
        "reason={} on={exited_on} devices_released={} alerts_resolved={}",
        exit.reason.code(),
        devices_released.len(),
        alerts_resolved.len()
    );
    super::users::audit(transaction, now, by, "elder left", Some(elder_id), Some(&detail)).await?;
    Ok((ExitEffects { devices_released, alerts_resolved }, newest_event))
}
