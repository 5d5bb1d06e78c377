//! Visits (remote check-ins for now), the day tallies behind them, absences
//! and heightened watch.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{RegionFilter, Store, StoreError};
use anxin_domain::visits::{Assessment, CORROBORATION_WINDOW_MS, Corroboration, NewVisit, VisitMode, corroborate};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VisitRecord {
    pub id: i64,
    pub elder_id: i64,
    /// Local date, `YYYY-MM-DD`.
    pub day: String,
    /// home, phone, video, remote, other
    pub mode: String,
    pub visited_at: i64,
    pub visitor: String,
    /// For remote check-ins: the day's summary (JSON).
    pub summary: Option<String>,
    /// For staff visits: the judgements of the record form's part 5.
    pub assessment: Option<Assessment>,
    /// 老年人服务需求
    pub needs: Option<String>,
    /// 实施关爱服务建议
    pub suggestions: Option<String>,
    /// 信息录入人: who typed the record in.
    pub recorded_by: Option<String>,
    /// 补录: recorded while the month of its day was closed for the elder's
    /// county; it changes the closed figure only once the month is reopened.
    pub late: bool,
    /// A home visit's start (epoch ms).
    pub started_at: Option<i64>,
    /// A home visit's corroboration by the home's sensors: corroborated,
    /// no_presence, no_sensors (the last two are for spot-checks).
    pub corroboration: Option<String>,
    /// The county's spot-check of it: confirmed, not_confirmed (flagged),
    /// unreachable.
    pub spot_check: Option<String>,
}

/// A closed day of one home and whether it counted as a remote check-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayRecord {
    pub elder_id: i64,
    pub day: String,
    pub first_activity_at: Option<i64>,
    pub last_activity_at: Option<i64>,
    pub active_hours: i64,
    pub reported_hours: i64,
    pub counted: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Absence {
    pub id: i64,
    pub elder_id: i64,
    pub reason: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeightenedWatch {
    pub id: i64,
    pub county: String,
    pub township: Option<String>,
    pub village: Option<String>,
    pub reason: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub created_by: String,
}

fn visit(row: &AnyRow) -> Result<VisitRecord, sqlx::Error> {
    Ok(VisitRecord {
        id: row.try_get("id")?,
        elder_id: row.try_get("elder_id")?,
        day: row.try_get("day")?,
        mode: row.try_get("mode")?,
        visited_at: row.try_get("visited_at")?,
        visitor: row.try_get("visitor")?,
        summary: row.try_get("summary")?,
        assessment: row.try_get::<Option<String>, _>("assessment")?.and_then(|json| serde_json::from_str(&json).ok()),
        needs: row.try_get("needs")?,
        suggestions: row.try_get("suggestions")?,
        recorded_by: row.try_get("recorded_by")?,
        late: row.try_get::<i64, _>("late")? == 1,
        started_at: row.try_get("started_at")?,
        corroboration: row.try_get("corroboration")?,
        spot_check: row.try_get("spot_check")?,
    })
}

const VISIT_COLUMNS: &str = "id, elder_id, day, mode, visited_at, visitor, summary, assessment, needs, suggestions, recorded_by, late, started_at, corroboration, spot_check";

pub(crate) fn required(field: &str, value: &str) -> Result<String, StoreError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 200 {
        return Err(StoreError::Invalid(format!("{field} is required (1 to 200 characters)")));
    }
    Ok(value.to_string())
}

impl Store {
    pub async fn visits(&self, elder_id: i64) -> Result<Vec<VisitRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {VISIT_COLUMNS} FROM visits WHERE elder_id = $1 ORDER BY day DESC, visited_at DESC"
        )))
        .bind(elder_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(visit).collect::<Result<_, _>>()?)
    }

    pub async fn visit(&self, id: i64) -> Result<Option<VisitRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {VISIT_COLUMNS} FROM visits WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(visit).transpose()?)
    }

    /// Records a staff visit (checked by [`NewVisit::check`]); audited. A
    /// visit after the exit of an elder who left is refused.
    pub async fn record_visit(
        &self,
        new: &NewVisit,
        recorded_by: &str,
        now: i64,
        offset: chrono::FixedOffset,
    ) -> Result<VisitRecord, StoreError> {
        Ok(self.record_visit_once(new, None, recorded_by, now, offset).await?.0)
    }

    /// Records a visit once per `client_id` (the id a phone or a form gave
    /// it, [`anxin_domain::visits::check_client_id`]): sent again, the visit
    /// already recorded is returned with `false`, nothing written.
    pub async fn record_visit_once(
        &self,
        new: &NewVisit,
        client_id: Option<&str>,
        recorded_by: &str,
        now: i64,
        offset: chrono::FixedOffset,
    ) -> Result<(VisitRecord, bool), StoreError> {
        self.record_visit_with(new, &anxin_domain::evidence::Evidence::default(), client_id, recorded_by, now, offset)
            .await
    }

    /// [`Store::record_visit_once`] with the evidence the phone recorded
    /// beside it (checked by [`anxin_domain::evidence::Evidence::check`]),
    /// written in the same transaction.
    pub async fn record_visit_with(
        &self,
        new: &NewVisit,
        evidence: &anxin_domain::evidence::Evidence,
        client_id: Option<&str>,
        recorded_by: &str,
        now: i64,
        offset: chrono::FixedOffset,
    ) -> Result<(VisitRecord, bool), StoreError> {
        if let Some(client_id) = client_id
            && let Some(known) = self.visit_by_client_id(new.elder_id, client_id).await?
        {
            return Ok((known, false));
        }
        let Some(elder) = self.elder(new.elder_id).await? else {
            return Err(StoreError::NotFound(format!("there is no elder with id {}", new.elder_id)));
        };
        let day = new.day.format("%Y-%m-%d").to_string();
        if let Some(left_on) = elder.left_on.filter(|left_on| day > *left_on) {
            return Err(StoreError::Invalid(format!(
                "the elder left the programme on {left_on}: a visit on {day} cannot be recorded"
            )));
        }
        let assessment = serde_json::to_string(&new.assessment).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let started_at = new.started_at(offset);
        let corroboration = match (new.mode, started_at) {
            (VisitMode::Home, Some(start)) => Some(self.corroboration(new.elder_id, start).await?),
            _ => None,
        };
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO visits (elder_id, day, mode, visited_at, visitor, assessment, needs, suggestions, recorded_by,
                                 created_at, late, started_at, corroboration, client_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $4, {}, $10, $11, $12) RETURNING {VISIT_COLUMNS}",
            super::months::LATE_FOR_CLOSED_MONTH
        )))
        .bind(new.elder_id)
        .bind(new.day.format("%Y-%m-%d").to_string())
        .bind(new.mode.code())
        .bind(now)
        .bind(new.visitor.as_str())
        .bind(assessment)
        .bind(new.needs.as_deref())
        .bind(new.suggestions.as_deref())
        .bind(recorded_by)
        .bind(started_at)
        .bind(corroboration.map(Corroboration::code))
        .bind(client_id)
        .fetch_one(&mut *transaction)
        .await;
        let row = match (inserted, client_id) {
            (Ok(row), _) => row,
            // Sent twice at once (two gateways): the other one recorded it.
            (Err(error), Some(client_id)) => {
                drop(transaction);
                drop(_turn);
                return match self.visit_by_client_id(new.elder_id, client_id).await? {
                    Some(known) => Ok((known, false)),
                    None => Err(error.into()),
                };
            }
            (Err(error), None) => return Err(error.into()),
        };
        let record = visit(&row)?;
        if !evidence.is_empty() {
            super::evidence::insert(&mut transaction, record.id, new.day, evidence, offset).await?;
        }
        let detail = if record.late {
            format!("{} visit on {} (late: the month is closed)", new.mode.code(), record.day)
        } else {
            format!("{} visit on {}", new.mode.code(), record.day)
        };
        super::users::audit(&mut transaction, now, recorded_by, "visit recorded", Some(new.elder_id), Some(&detail))
            .await?;
        transaction.commit().await?;
        Ok((record, true))
    }

    /// The visit a client recorded under `client_id`, if it is this elder's
    /// (another elder's is refused: an id is one visit's).
    async fn visit_by_client_id(&self, elder_id: i64, client_id: &str) -> Result<Option<VisitRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {VISIT_COLUMNS} FROM visits WHERE client_id = $1")))
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        match row.as_ref().map(visit).transpose()? {
            Some(known) if known.elder_id != elder_id => {
                Err(StoreError::Invalid(format!("the client id {client_id} is another visit's")))
            }
            known => Ok(known),
        }
    }

    /// What the home's sensors say about a home visit starting at `start`.
    async fn corroboration(&self, elder_id: i64, start: i64) -> Result<Corroboration, StoreError> {
        let devices: i64 = sqlx::query("SELECT COUNT(*) AS n FROM devices WHERE elder_id = $1")
            .bind(elder_id)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let (before, after) = CORROBORATION_WINDOW_MS;
        let rows = sqlx::query(
            "SELECT a.hour_start, CAST(SUM(a.motion) AS BIGINT) AS motion, CAST(SUM(a.door_opens) AS BIGINT) AS doors
             FROM activity_hourly a JOIN devices d ON d.device_id = a.device_id
             WHERE d.elder_id = $1 AND a.hour_start > $2 AND a.hour_start < $3
             GROUP BY a.hour_start",
        )
        .bind(elder_id)
        .bind(start - before - anxin_domain::time::HOUR_MS)
        .bind(start + after)
        .fetch_all(&self.pool)
        .await?;
        let hours: Vec<(i64, i64, i64)> = rows
            .iter()
            .map(|row| Ok((row.try_get("hour_start")?, row.try_get("motion")?, row.try_get("doors")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(corroborate(start, &hours, devices > 0))
    }

    pub async fn days(&self, elder_id: i64) -> Result<Vec<DayRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT elder_id, day, first_activity_at, last_activity_at, active_hours, reported_hours, counted, reason
             FROM elder_days WHERE elder_id = $1 ORDER BY day DESC",
        )
        .bind(elder_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(DayRecord {
                    elder_id: row.try_get("elder_id")?,
                    day: row.try_get("day")?,
                    first_activity_at: row.try_get("first_activity_at")?,
                    last_activity_at: row.try_get("last_activity_at")?,
                    active_hours: row.try_get::<i64, _>("active_hours")?.count_ones().into(),
                    reported_hours: row.try_get::<i64, _>("reported_hours")?.count_ones().into(),
                    counted: row.try_get::<i64, _>("counted")? == 1,
                    reason: row.try_get("reason")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Marks an elder away from `now` until `until`; the home is looked at
    /// again at once (and when the absence ends).
    pub async fn mark_away(
        &self,
        elder_id: i64,
        until: i64,
        reason: &str,
        by: &str,
        now: i64,
    ) -> Result<Absence, StoreError> {
        let reason = required("reason", reason)?;
        let by = required("who marks the absence (--by)", by)?;
        if until <= now {
            return Err(StoreError::Invalid("the end of the absence must be in the future".into()));
        }
        if self.elder(elder_id).await?.is_none() {
            return Err(StoreError::NotFound(format!("there is no elder with id {elder_id}")));
        }
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let row = sqlx::query(
            "INSERT INTO absences (elder_id, reason, starts_at, ends_at, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $3) RETURNING id",
        )
        .bind(elder_id)
        .bind(reason.as_str())
        .bind(now)
        .bind(until)
        .bind(by.as_str())
        .fetch_one(&mut *transaction)
        .await?;
        sqlx::query("UPDATE home_watch SET next_due_at = $1 WHERE elder_id = $2")
            .bind(now)
            .bind(elder_id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(Absence { id: row.try_get("id")?, elder_id, reason, starts_at: now, ends_at: until, created_by: by })
    }

    /// Ends an absence now (the elder came back early).
    pub async fn end_absence(&self, elder_id: i64, now: i64) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let ended = sqlx::query(
            "UPDATE absences SET ends_at = $1 WHERE elder_id = $2 AND cancelled_at IS NULL AND starts_at <= $1 AND ends_at > $1",
        )
        .bind(now)
        .bind(elder_id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        sqlx::query("UPDATE home_watch SET next_due_at = $1 WHERE elder_id = $2")
            .bind(now)
            .bind(elder_id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(ended)
    }

    /// Puts a region on heightened watch from `now` until `until`; its homes
    /// are looked at again at once with the tighter thresholds.
    pub async fn start_heightened_watch(
        &self,
        region: &RegionFilter,
        until: i64,
        reason: &str,
        by: &str,
        now: i64,
    ) -> Result<HeightenedWatch, StoreError> {
        self.schedule_heightened_watch(region, now, until, reason, by, now).await
    }

    /// Puts a region on heightened watch from `starts_at` (now or later: a
    /// festival's watch is set ahead) until `ends_at`; its homes are looked
    /// at again when it begins. Audited as `by`.
    pub async fn schedule_heightened_watch(
        &self,
        region: &RegionFilter,
        starts_at: i64,
        ends_at: i64,
        reason: &str,
        by: &str,
        now: i64,
    ) -> Result<HeightenedWatch, StoreError> {
        let county = required("county", region.county.as_deref().unwrap_or_default())?;
        let reason = required("reason", reason)?;
        let by = required("who starts the watch (--by)", by)?;
        let starts_at = starts_at.max(now);
        if ends_at <= starts_at {
            return Err(StoreError::Invalid("the end of the heightened watch must be in the future".into()));
        }
        if region.village.is_some() && region.township.is_none() {
            return Err(StoreError::Invalid("a village needs its township".into()));
        }
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let row = sqlx::query(
            "INSERT INTO heightened_watches (county, township, village, reason, starts_at, ends_at, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(county.as_str())
        .bind(region.township.as_deref())
        .bind(region.village.as_deref())
        .bind(reason.as_str())
        .bind(starts_at)
        .bind(ends_at)
        .bind(by.as_str())
        .bind(now)
        .fetch_one(&mut *transaction)
        .await?;
        // Its homes are judged again when it begins (at once, for a watch from now).
        sqlx::query(
            "UPDATE home_watch SET next_due_at = CASE WHEN next_due_at IS NULL OR next_due_at > $1 THEN $1 ELSE next_due_at END
             WHERE elder_id IN
                 (SELECT id FROM elders WHERE county = $2 AND ($3 IS NULL OR township = $3) AND ($4 IS NULL OR village = $4))",
        )
        .bind(starts_at)
        .bind(county.as_str())
        .bind(region.township.as_deref())
        .bind(region.village.as_deref())
        .execute(&mut *transaction)
        .await?;
        let id: i64 = row.try_get("id")?;
        let place = [Some(county.as_str()), region.township.as_deref(), region.village.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("/");
        let detail = format!("watch={id} region={place} from={starts_at} until={ends_at}");
        super::users::audit(&mut transaction, now, &by, "heightened watch started", None, Some(&detail)).await?;
        transaction.commit().await?;
        Ok(HeightenedWatch {
            id,
            county,
            township: region.township.clone(),
            village: region.village.clone(),
            reason,
            starts_at,
            ends_at,
            created_by: by,
        })
    }

    /// Ends a heightened watch now (or calls off one not yet begun); its
    /// homes are judged again at once with the usual thresholds. Audited.
    pub async fn end_heightened_watch(&self, id: i64, by: &str, now: i64) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let row = sqlx::query(
            "UPDATE heightened_watches SET ends_at = $1, starts_at = CASE WHEN starts_at > $1 THEN $1 ELSE starts_at END
             WHERE id = $2 AND ends_at > $1 RETURNING county, township, village",
        )
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("there is no heightened watch {id} in force or to come")))?;
        let (county, township, village): (String, Option<String>, Option<String>) =
            (row.try_get("county")?, row.try_get("township")?, row.try_get("village")?);
        sqlx::query(
            "UPDATE home_watch SET next_due_at = $1 WHERE elder_id IN
                 (SELECT id FROM elders WHERE county = $2 AND ($3 IS NULL OR township = $3) AND ($4 IS NULL OR village = $4))",
        )
        .bind(now)
        .bind(county.as_str())
        .bind(township.as_deref())
        .bind(village.as_deref())
        .execute(&mut *transaction)
        .await?;
        super::users::audit(&mut transaction, now, by, "heightened watch ended", None, Some(&format!("watch={id}")))
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The absence an elder is on at `now`, if any.
    pub async fn current_absence(&self, elder_id: i64, now: i64) -> Result<Option<Absence>, StoreError> {
        let row = sqlx::query(
            "SELECT id, elder_id, reason, starts_at, ends_at, created_by FROM absences
             WHERE elder_id = $1 AND cancelled_at IS NULL AND starts_at <= $2 AND ends_at > $2
             ORDER BY starts_at DESC LIMIT 1",
        )
        .bind(elder_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|row| {
                Ok::<_, sqlx::Error>(Absence {
                    id: row.try_get("id")?,
                    elder_id: row.try_get("elder_id")?,
                    reason: row.try_get("reason")?,
                    starts_at: row.try_get("starts_at")?,
                    ends_at: row.try_get("ends_at")?,
                    created_by: row.try_get("created_by")?,
                })
            })
            .transpose()?)
    }

    pub async fn heightened_watches(&self, now: i64) -> Result<Vec<HeightenedWatch>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, county, township, village, reason, starts_at, ends_at, created_by FROM heightened_watches
             WHERE ends_at > $1 ORDER BY starts_at",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(HeightenedWatch {
                    id: row.try_get("id")?,
                    county: row.try_get("county")?,
                    township: row.try_get("township")?,
                    village: row.try_get("village")?,
                    reason: row.try_get("reason")?,
                    starts_at: row.try_get("starts_at")?,
                    ends_at: row.try_get("ends_at")?,
                    created_by: row.try_get("created_by")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }
}
