//! Spot-checks (抽查): a reproducible sample of a township's visits of a
//! month, each checked by phoning the elder; the result kept on the visit.

use serde::Serialize;
use sqlx::Row;

use anxin_domain::visits::{Month, SpotCheckResult, spot_check_sample};

use super::{Store, StoreError};

/// A drawn sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpotCheck {
    pub id: i64,
    pub county: String,
    pub township: String,
    /// `YYYY-MM`
    pub month: String,
    /// What the sample was drawn from: anyone can draw it again.
    pub seed: String,
    pub size: i64,
    pub drawn_by: String,
    pub drawn_at: i64,
}

/// One sampled visit, with what the official needs to phone the elder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpotCheckItem {
    pub visit_id: i64,
    pub elder_id: i64,
    pub name: String,
    pub village: String,
    pub phone: Option<String>,
    pub day: String,
    pub mode: String,
    pub visitor: String,
    pub corroboration: Option<String>,
    /// confirmed, not_confirmed, unreachable; `None` until checked.
    pub result: Option<String>,
    pub note: Option<String>,
    pub checked_by: Option<String>,
    pub checked_at: Option<i64>,
}

fn spot_check(row: &sqlx::any::AnyRow) -> Result<SpotCheck, sqlx::Error> {
    Ok(SpotCheck {
        id: row.try_get("id")?,
        county: row.try_get("county")?,
        township: row.try_get("township")?,
        month: row.try_get("month")?,
        seed: row.try_get("seed")?,
        size: row.try_get("size")?,
        drawn_by: row.try_get("drawn_by")?,
        drawn_at: row.try_get("drawn_at")?,
    })
}

const SPOT_CHECK_COLUMNS: &str = "id, county, township, month, seed, size, drawn_by, drawn_at";

impl Store {
    /// The visits by a person (every mode but `remote`) of a township's
    /// month, by id: what a sample is drawn from.
    pub async fn spot_check_pool(&self, county: &str, township: &str, month: Month) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT v.id FROM visits v JOIN elders e ON e.id = v.elder_id
             WHERE e.county = $1 AND e.township = $2 AND v.mode <> 'remote' AND v.day >= $3 AND v.day <= $4
             ORDER BY v.id",
        )
        .bind(county)
        .bind(township)
        .bind(month.first_day().format("%Y-%m-%d").to_string())
        .bind(month.last_day().format("%Y-%m-%d").to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|row| row.try_get("id")).collect::<Result<_, _>>()?)
    }

    /// Draws and keeps a sample of `size` visits of a township's month with
    /// `seed` ([`spot_check_sample`]); audited as `by`.
    #[allow(clippy::too_many_arguments, reason = "one column each")]
    pub async fn draw_spot_check(
        &self,
        county: &str,
        township: &str,
        month: Month,
        seed: &str,
        size: usize,
        by: &str,
        now: i64,
    ) -> Result<SpotCheck, StoreError> {
        let pool = self.spot_check_pool(county, township, month).await?;
        if pool.is_empty() {
            return Err(StoreError::Invalid(format!("{county}/{township} has no visit by a person in {month}")));
        }
        let sample = spot_check_sample(seed, &pool, size);
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO spot_checks (county, township, month, seed, size, drawn_by, drawn_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {SPOT_CHECK_COLUMNS}"
        )))
        .bind(county)
        .bind(township)
        .bind(month.to_string())
        .bind(seed)
        .bind(i64::try_from(sample.len()).unwrap_or(i64::MAX))
        .bind(by)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await?;
        let check = spot_check(&row)?;
        for visit in &sample {
            sqlx::query("INSERT INTO spot_check_items (spot_check_id, visit_id) VALUES ($1, $2)")
                .bind(check.id)
                .bind(*visit)
                .execute(&mut *transaction)
                .await?;
        }
        let detail = format!(
            "spot_check={} region={county}/{township} month={month} seed={seed} size={} of {}",
            check.id,
            sample.len(),
            pool.len()
        );
        super::users::audit(&mut transaction, now, by, "spot-check drawn", None, Some(&detail)).await?;
        transaction.commit().await?;
        Ok(check)
    }

    /// Every spot-check drawn, newest first.
    pub async fn spot_checks(&self) -> Result<Vec<SpotCheck>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SPOT_CHECK_COLUMNS} FROM spot_checks ORDER BY drawn_at DESC, id DESC"
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(spot_check).collect::<Result<_, _>>()?)
    }

    pub async fn spot_check(&self, id: i64) -> Result<Option<SpotCheck>, StoreError> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {SPOT_CHECK_COLUMNS} FROM spot_checks WHERE id = $1")))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.as_ref().map(spot_check).transpose()?)
    }

    /// A sample's visits with their elders and results, by village and day.
    pub async fn spot_check_items(&self, id: i64) -> Result<Vec<SpotCheckItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.visit_id, v.elder_id, e.name, e.village, e.phone, v.day, v.mode, v.visitor, v.corroboration,
                    i.result, i.note, i.checked_by, i.checked_at
             FROM spot_check_items i JOIN visits v ON v.id = i.visit_id JOIN elders e ON e.id = v.elder_id
             WHERE i.spot_check_id = $1 ORDER BY e.village, v.day, v.id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(SpotCheckItem {
                    visit_id: row.try_get("visit_id")?,
                    elder_id: row.try_get("elder_id")?,
                    name: row.try_get("name")?,
                    village: row.try_get("village")?,
                    phone: row.try_get("phone")?,
                    day: row.try_get("day")?,
                    mode: row.try_get("mode")?,
                    visitor: row.try_get("visitor")?,
                    corroboration: row.try_get("corroboration")?,
                    result: row.try_get("result")?,
                    note: row.try_get("note")?,
                    checked_by: row.try_get("checked_by")?,
                    checked_at: row.try_get("checked_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Records what the phone call found about one sampled visit; the
    /// result is kept on the visit too (a 不属实 visit is flagged). Audited.
    pub async fn record_spot_check(
        &self,
        id: i64,
        visit_id: i64,
        result: SpotCheckResult,
        note: &str,
        by: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let note = note.trim();
        if note.chars().count() > 500 {
            return Err(StoreError::Invalid("the note is longer than 500 characters".into()));
        }
        if result == SpotCheckResult::NotConfirmed && note.is_empty() {
            return Err(StoreError::Invalid("say what the elder said: a visit found 不属实 needs a note".into()));
        }
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let updated = sqlx::query(
            "UPDATE spot_check_items SET result = $1, note = $2, checked_by = $3, checked_at = $4
             WHERE spot_check_id = $5 AND visit_id = $6",
        )
        .bind(result.code())
        .bind((!note.is_empty()).then_some(note))
        .bind(by)
        .bind(now)
        .bind(id)
        .bind(visit_id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound(format!("visit {visit_id} is not in spot-check {id}")));
        }
        sqlx::query("UPDATE visits SET spot_check = $1 WHERE id = $2")
            .bind(result.code())
            .bind(visit_id)
            .execute(&mut *transaction)
            .await?;
        let elder_id: i64 = sqlx::query("SELECT elder_id FROM visits WHERE id = $1")
            .bind(visit_id)
            .fetch_one(&mut *transaction)
            .await?
            .try_get("elder_id")?;
        let detail = format!("spot_check={id} visit={visit_id} result={}", result.code());
        super::users::audit(&mut transaction, now, by, "spot-check recorded", Some(elder_id), Some(&detail)).await?;
        transaction.commit().await?;
        Ok(())
    }
}
