//! What the monthly visit rate (月探访率) is computed from: each elder
//! enrolled during a month, with their visits of it.

use sqlx::Row;
use std::collections::HashMap;

use anxin_domain::visits::ElderMonth;

use super::{Store, StoreError};

impl Store {
    /// Every elder enrolled on some day of `month` (in the deployment's
    /// time zone, `utc_offset`), with their visits of that month up to their
    /// exit if they left during it — as frozen when their county closed the
    /// month, live otherwise.
    pub async fn month_elders(
        &self,
        month: anxin_domain::visits::Month,
        utc_offset: chrono::FixedOffset,
    ) -> Result<Vec<ElderMonth>, StoreError> {
        let closed: Vec<String> = self.closed_months(month).await?.into_iter().map(|c| c.county).collect();
        let mut elders = elder_months_in(&self.pool, month, utc_offset).await?;
        if !closed.is_empty() {
            elders.retain(|e| !closed.contains(&e.county));
            elders.extend(self.frozen_month_elders(month).await?);
            elders.sort_by(|a, b| {
                (&a.county, &a.township, &a.village, a.elder_id).cmp(&(&b.county, &b.township, &b.village, b.elder_id))
            });
        }
        Ok(elders)
    }

    /// [`Store::month_elders`] as it stands now, closed or not: what a
    /// closing freezes, and what a reopened month shows.
    pub async fn live_month_elders(
        &self,
        month: anxin_domain::visits::Month,
        utc_offset: chrono::FixedOffset,
    ) -> Result<Vec<ElderMonth>, StoreError> {
        elder_months_in(&self.pool, month, utc_offset).await
    }

    /// Every elder with an enrolment period that began before `ends_at`
    /// (epoch ms: the month's end) and did not end before `first_day`, with
    /// their visits between `first_day` and `last_day` (`YYYY-MM-DD`,
    /// inclusive) — those on or before the exit date, when the latest such
    /// period ends within the month — by county, township, village.
    pub async fn elder_months(
        &self,
        first_day: &str,
        last_day: &str,
        ends_at: i64,
    ) -> Result<Vec<ElderMonth>, StoreError> {
        elder_months_between(&self.pool, first_day, last_day, ends_at).await
    }

    /// The visits of `first_day`..=`last_day` counted by village, mode and
    /// corroboration: `(county, township, village, mode, corroborated, n)`.
    pub async fn visit_mix(
        &self,
        first_day: &str,
        last_day: &str,
    ) -> Result<Vec<(String, String, String, String, bool, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.county, e.township, e.village, v.mode,
                    CASE WHEN v.corroboration = 'corroborated' THEN 1 ELSE 0 END AS corroborated, COUNT(*) AS n
             FROM visits v JOIN elders e ON e.id = v.elder_id
             WHERE v.day >= $1 AND v.day <= $2
             GROUP BY e.county, e.township, e.village, v.mode,
                      CASE WHEN v.corroboration = 'corroborated' THEN 1 ELSE 0 END
             ORDER BY e.county, e.township, e.village",
        )
        .bind(first_day)
        .bind(last_day)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok((
                    row.try_get("county")?,
                    row.try_get("township")?,
                    row.try_get("village")?,
                    row.try_get("mode")?,
                    row.try_get::<i64, _>("corroborated")? == 1,
                    row.try_get("n")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Visits by a person of `first_day`..=`last_day`, by village and the
    /// kind of visitor who recorded them (`None`: not a visitor, or kind not
    /// set): `(county, township, village, kind, n)`.
    pub async fn visits_by_kind(
        &self,
        first_day: &str,
        last_day: &str,
    ) -> Result<Vec<(String, String, String, Option<String>, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.county, e.township, e.village, u.visitor_kind AS kind, COUNT(*) AS n
             FROM visits v JOIN elders e ON e.id = v.elder_id LEFT JOIN users u ON u.name = v.recorded_by
             WHERE v.mode <> 'remote' AND v.day >= $1 AND v.day <= $2
             GROUP BY e.county, e.township, e.village, u.visitor_kind
             ORDER BY e.county, e.township, e.village",
        )
        .bind(first_day)
        .bind(last_day)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok((
                    row.try_get("county")?,
                    row.try_get("township")?,
                    row.try_get("village")?,
                    row.try_get("kind")?,
                    row.try_get("n")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// The last day each elder had a home, phone or video visit on or
    /// before `up_to` (`YYYY-MM-DD`).
    pub async fn last_person_visits(&self, up_to: &str) -> Result<HashMap<i64, String>, StoreError> {
        self.last_visit_days("mode IN ('home', 'phone', 'video')", up_to).await
    }

    /// The last day each elder had a visit by a person (any mode but
    /// `remote`) on or before `up_to` (`YYYY-MM-DD`).
    pub async fn last_contacts(&self, up_to: &str) -> Result<HashMap<i64, String>, StoreError> {
        self.last_visit_days("mode <> 'remote'", up_to).await
    }

    /// Each elder's last visit day of the modes `modes` (an SQL condition of
    /// ours, never input) on or before `up_to`.
    async fn last_visit_days(&self, modes: &'static str, up_to: &str) -> Result<HashMap<i64, String>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT elder_id, MAX(day) AS last_day FROM visits WHERE {modes} AND day <= $1 GROUP BY elder_id"
        )))
        .bind(up_to)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| Ok((row.try_get("elder_id")?, row.try_get("last_day")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }
}

/// [`Store::month_elders`], live, on any connection (a closing reads it in
/// its own transaction).
pub(crate) async fn elder_months_in<'c, E>(
    executor: E,
    month: anxin_domain::visits::Month,
    utc_offset: chrono::FixedOffset,
) -> Result<Vec<ElderMonth>, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    elder_months_between(executor, &day(month.first_day()), &day(month.last_day()), month.ends_at(utc_offset)).await
}

async fn elder_months_between<'c, E>(
    executor: E,
    first_day: &str,
    last_day: &str,
    ends_at: i64,
) -> Result<Vec<ElderMonth>, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let rows = sqlx::query(
        "SELECT e.id, e.name, e.county, e.township, e.village,
                CASE WHEN p.exited_on <= $2 THEN p.exited_on END AS left_on,
                COUNT(v.id) AS visits, MAX(v.day) AS last_visit
         FROM elders e
         JOIN enrolments p ON p.elder_id = e.id AND p.enrolled_at = (
             SELECT MAX(q.enrolled_at) FROM enrolments q
             WHERE q.elder_id = e.id AND q.enrolled_at < $3 AND (q.exited_on IS NULL OR q.exited_on >= $1))
         LEFT JOIN visits v ON v.elder_id = e.id AND v.day >= $1 AND v.day <= $2
             AND (p.exited_on IS NULL OR v.day <= p.exited_on)
         GROUP BY e.id, e.name, e.county, e.township, e.village, p.exited_on
         ORDER BY e.county, e.township, e.village, e.id",
    )
    .bind(first_day)
    .bind(last_day)
    .bind(ends_at)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            Ok(ElderMonth {
                elder_id: row.try_get("id")?,
                name: row.try_get("name")?,
                county: row.try_get("county")?,
                township: row.try_get("township")?,
                village: row.try_get("village")?,
                visits: row.try_get("visits")?,
                last_visit: row.try_get("last_visit")?,
                left_on: row.try_get("left_on")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?)
}
