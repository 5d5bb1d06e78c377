//! Closing a month (关账): a county's visit rate for a month, frozen as it
//! stood; visits recorded later for it (补录); reopening.
//!
//! What is frozen is the rate's input — each elder counted, with their
//! visits of the month ([`ElderMonth`]) — not its output, so a closed month
//! is read through the same [`anxin_domain::visits::VisitRate`] computation
//! and the same scoping as an open one.

use serde::Serialize;
use sqlx::Row;

use anxin_domain::visits::{ElderMonth, Month};

use super::{Backend, Store, StoreError};

/// A month closed for a county (reopened when `reopened_at` is set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ClosedMonth {
    pub id: i64,
    pub county: String,
    /// `YYYY-MM`
    pub month: String,
    pub closed_by: String,
    pub closed_at: i64,
    pub reopened_by: Option<String>,
    pub reopened_at: Option<i64>,
}

/// A visit recorded for a day of a month its county had closed (补录).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LateVisit {
    pub id: i64,
    pub elder_id: i64,
    pub name: String,
    pub county: String,
    pub township: String,
    pub village: String,
    pub day: String,
    pub mode: String,
    /// Who typed it in (the engine, for a remote check-in).
    pub recorded_by: String,
    /// When it was recorded (epoch ms).
    pub recorded_at: i64,
}

impl anxin_domain::access::Placed for LateVisit {
    fn place(&self) -> anxin_domain::access::ElderPlace<'_> {
        anxin_domain::access::ElderPlace {
            elder_id: self.elder_id,
            county: &self.county,
            township: &self.township,
            village: &self.village,
        }
    }
}

/// `1` when a visit of elder `$1` on day `$2` falls in a month the elder's
/// county has closed: the value of `visits.late` at insertion.
pub(crate) const LATE_FOR_CLOSED_MONTH: &str =
    "(SELECT COUNT(*) FROM closed_months c JOIN elders e ON e.county = c.county
     WHERE e.id = $1 AND c.month = substr($2, 1, 7) AND c.reopened_at IS NULL)";

const CLOSED_COLUMNS: &str = "id, county, month, closed_by, closed_at, reopened_by, reopened_at";

fn closed(row: &sqlx::any::AnyRow) -> Result<ClosedMonth, sqlx::Error> {
    Ok(ClosedMonth {
        id: row.try_get("id")?,
        county: row.try_get("county")?,
        month: row.try_get("month")?,
        closed_by: row.try_get("closed_by")?,
        closed_at: row.try_get("closed_at")?,
        reopened_by: row.try_get("reopened_by")?,
        reopened_at: row.try_get("reopened_at")?,
    })
}

fn elder_month(row: &sqlx::any::AnyRow) -> Result<ElderMonth, sqlx::Error> {
    Ok(ElderMonth {
        elder_id: row.try_get("elder_id")?,
        name: row.try_get("name")?,
        county: row.try_get("county")?,
        township: row.try_get("township")?,
        village: row.try_get("village")?,
        visits: row.try_get("visits")?,
        last_visit: row.try_get("last_visit")?,
        left_on: row.try_get("left_on")?,
    })
}

impl Store {
    /// The months closed (and not reopened) in `month`, by county.
    pub async fn closed_months(&self, month: Month) -> Result<Vec<ClosedMonth>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CLOSED_COLUMNS} FROM closed_months WHERE month = $1 AND reopened_at IS NULL ORDER BY county"
        )))
        .bind(month.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(closed).collect::<Result<_, _>>()?)
    }

    /// Every closing and reopening of `county`'s months, newest first.
    pub async fn month_closings(&self, county: &str) -> Result<Vec<ClosedMonth>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CLOSED_COLUMNS} FROM closed_months WHERE county = $1 ORDER BY month DESC, closed_at DESC"
        )))
        .bind(county)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(closed).collect::<Result<_, _>>()?)
    }

    /// Closes `month` for `county` (a month that has ended, on `today`):
    /// freezes what its rate is computed from. Audited as `by`.
    pub async fn close_month(
        &self,
        county: &str,
        month: Month,
        by: &str,
        now: i64,
        offset: chrono::FixedOffset,
    ) -> Result<ClosedMonth, StoreError> {
        let county = super::visits::required("county", county)?;
        let by = super::visits::required("who closes the month", by)?;
        if month.last_day() >= anxin_domain::time::local_day(now, offset) {
            return Err(StoreError::Invalid(format!("{month} has not ended yet: a month is closed once it is over")));
        }
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        if self.backend == Backend::Postgres {
            // No visit may land between the snapshot and the closing:
            // inserts wait for this transaction (a closing takes milliseconds).
            sqlx::query("LOCK TABLE visits IN SHARE MODE").execute(&mut *transaction).await?;
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO closed_months (county, month, closed_by, closed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (county, month) WHERE reopened_at IS NULL DO NOTHING RETURNING {CLOSED_COLUMNS}"
        )))
        .bind(county.as_str())
        .bind(month.to_string())
        .bind(by.as_str())
        .bind(now)
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or_else(|| StoreError::Invalid(format!("{month} is already closed for {county}")))?;
        let closing = closed(&row)?;
        let elders: Vec<ElderMonth> = super::rate::elder_months_in(&mut *transaction, month, offset)
            .await?
            .into_iter()
            .filter(|e| e.county == county)
            .collect();
        for elder in &elders {
            sqlx::query(
                "INSERT INTO closed_month_elders
                     (closed_month_id, elder_id, name, county, township, village, visits, last_visit, left_on)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(closing.id)
            .bind(elder.elder_id)
            .bind(elder.name.as_str())
            .bind(elder.county.as_str())
            .bind(elder.township.as_str())
            .bind(elder.village.as_str())
            .bind(elder.visits)
            .bind(elder.last_visit.as_deref())
            .bind(elder.left_on.as_deref())
            .execute(&mut *transaction)
            .await?;
        }
        let visited = elders.iter().filter(|e| e.visits > 0).count();
        let detail = format!("county={county} month={month} elders={} visited={visited}", elders.len());
        super::users::audit(&mut transaction, now, &by, "month closed", None, Some(&detail)).await?;
        transaction.commit().await?;
        Ok(closing)
    }

    /// Reopens a closed month: from now its figures are computed afresh,
    /// late visits (补录) included. Audited as `by`.
    pub async fn reopen_month(
        &self,
        county: &str,
        month: Month,
        by: &str,
        now: i64,
    ) -> Result<ClosedMonth, StoreError> {
        let by = super::visits::required("who reopens the month", by)?;
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE closed_months SET reopened_by = $1, reopened_at = $2
             WHERE county = $3 AND month = $4 AND reopened_at IS NULL RETURNING {CLOSED_COLUMNS}"
        )))
        .bind(by.as_str())
        .bind(now)
        .bind(county)
        .bind(month.to_string())
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or_else(|| StoreError::Invalid(format!("{month} is not closed for {county}")))?;
        let late: i64 = sqlx::query(
            "SELECT COUNT(*) AS late FROM visits v JOIN elders e ON e.id = v.elder_id
             WHERE e.county = $1 AND substr(v.day, 1, 7) = $2 AND v.late = 1",
        )
        .bind(county)
        .bind(month.to_string())
        .fetch_one(&mut *transaction)
        .await?
        .try_get("late")?;
        let detail = format!("county={county} month={month} late_visits={late}");
        super::users::audit(&mut transaction, now, &by, "month reopened", None, Some(&detail)).await?;
        transaction.commit().await?;
        Ok(closed(&row)?)
    }

    /// What a closed month's rate is computed from, for each county closed.
    pub(crate) async fn frozen_month_elders(&self, month: Month) -> Result<Vec<ElderMonth>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.elder_id, f.name, f.county, f.township, f.village, f.visits, f.last_visit, f.left_on
             FROM closed_month_elders f JOIN closed_months c ON c.id = f.closed_month_id
             WHERE c.month = $1 AND c.reopened_at IS NULL",
        )
        .bind(month.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(elder_month).collect::<Result<_, _>>()?)
    }

    /// Visits recorded for days of `month` while their county had it closed
    /// (补录), by region and day.
    pub async fn late_visits(&self, month: Month) -> Result<Vec<LateVisit>, StoreError> {
        let rows = sqlx::query(
            "SELECT v.id, v.elder_id, e.name, e.county, e.township, e.village, v.day, v.mode,
                    COALESCE(v.recorded_by, v.visitor) AS recorded_by, v.created_at
             FROM visits v JOIN elders e ON e.id = v.elder_id
             WHERE v.late = 1 AND v.day >= $1 AND v.day <= $2
             ORDER BY e.county, e.township, e.village, v.day, v.id",
        )
        .bind(month.first_day().format("%Y-%m-%d").to_string())
        .bind(month.last_day().format("%Y-%m-%d").to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(LateVisit {
                    id: row.try_get("id")?,
                    elder_id: row.try_get("elder_id")?,
                    name: row.try_get("name")?,
                    county: row.try_get("county")?,
                    township: row.try_get("township")?,
                    village: row.try_get("village")?,
                    day: row.try_get("day")?,
                    mode: row.try_get("mode")?,
                    recorded_by: row.try_get("recorded_by")?,
                    recorded_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }
}
