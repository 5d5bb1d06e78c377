//! What the monthly visit rate (月探访率) is computed from: each registered
//! elder with their visits of a month.

use sqlx::Row;
use std::collections::HashMap;

use anxin_domain::visits::ElderMonth;

use super::{Store, StoreError};

impl Store {
    /// Every elder registered before `month` ended (in the deployment's time
    /// zone, `utc_offset`), with their visits of that month.
    pub async fn month_elders(
        &self,
        month: anxin_domain::visits::Month,
        utc_offset: chrono::FixedOffset,
    ) -> Result<Vec<ElderMonth>, StoreError> {
        let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
        let ends_at = month.ends_at(utc_offset);
        self.elder_months(&day(month.first_day()), &day(month.last_day()), ends_at).await
    }

    /// Every elder registered before `registered_before` (epoch ms: the
    /// month's end), with their visits between `first_day` and `last_day`
    /// (`YYYY-MM-DD`, inclusive), by county, township, village.
    pub async fn elder_months(
        &self,
        first_day: &str,
        last_day: &str,
        registered_before: i64,
    ) -> Result<Vec<ElderMonth>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.id, e.name, e.county, e.township, e.village, COUNT(v.id) AS visits, MAX(v.day) AS last_visit
             FROM elders e LEFT JOIN visits v ON v.elder_id = e.id AND v.day >= $1 AND v.day <= $2
             WHERE e.created_at < $3
             GROUP BY e.id, e.name, e.county, e.township, e.village
             ORDER BY e.county, e.township, e.village, e.id",
        )
        .bind(first_day)
        .bind(last_day)
        .bind(registered_before)
        .fetch_all(&self.pool)
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
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// The last day each elder had a visit by a person (any mode but
    /// `remote`) on or before `up_to` (`YYYY-MM-DD`).
    pub async fn last_contacts(&self, up_to: &str) -> Result<HashMap<i64, String>, StoreError> {
        let rows = sqlx::query(
            "SELECT elder_id, MAX(day) AS last_day FROM visits WHERE mode <> 'remote' AND day <= $1 GROUP BY elder_id",
        )
        .bind(up_to)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| Ok((row.try_get("elder_id")?, row.try_get("last_day")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }
}
