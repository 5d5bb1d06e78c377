//! Referrals of needs a visit found (需求转介), tracked to done, and the care
//! services given (关爱服务, the record form's part 6).

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use anxin_domain::visits::{Satisfaction, Service, VisitError, required};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Referral {
    pub id: i64,
    pub elder_id: i64,
    /// The visit that found the need, if it came from one.
    pub visit_id: Option<i64>,
    pub service: Service,
    pub need: String,
    pub created_by: String,
    pub created_at: i64,
    pub done_at: Option<i64>,
    pub done_by: Option<String>,
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CareService {
    pub id: i64,
    pub elder_id: i64,
    /// Local date, `YYYY-MM-DD`.
    pub day: String,
    /// 关爱服务情况
    pub description: String,
    /// 服务人员
    pub served_by: String,
    pub satisfaction: Option<Satisfaction>,
    pub created_by: String,
    pub created_at: i64,
}

fn referral(row: &AnyRow) -> Result<Referral, sqlx::Error> {
    let service: String = row.try_get("service")?;
    Ok(Referral {
        id: row.try_get("id")?,
        elder_id: row.try_get("elder_id")?,
        visit_id: row.try_get("visit_id")?,
        service: Service::parse(&service).unwrap_or(Service::Care),
        need: row.try_get("need")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        done_at: row.try_get("done_at")?,
        done_by: row.try_get("done_by")?,
        outcome: row.try_get("outcome")?,
    })
}

fn care_service(row: &AnyRow) -> Result<CareService, sqlx::Error> {
    let satisfaction: Option<String> = row.try_get("satisfaction")?;
    Ok(CareService {
        id: row.try_get("id")?,
        elder_id: row.try_get("elder_id")?,
        day: row.try_get("day")?,
        description: row.try_get("description")?,
        served_by: row.try_get("served_by")?,
        satisfaction: satisfaction.as_deref().and_then(Satisfaction::parse),
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

const REFERRAL_COLUMNS: &str =
    "id, elder_id, visit_id, service, need, created_by, created_at, done_at, done_by, outcome";
const SERVICE_COLUMNS: &str = "id, elder_id, day, description, served_by, satisfaction, created_by, created_at";

fn invalid(error: VisitError) -> StoreError {
    StoreError::Invalid(error.to_string())
}

impl Store {
    /// Refers a need to a service; `visit_id` must be a visit of the same elder.
    pub async fn raise_referral(
        &self,
        elder_id: i64,
        visit_id: Option<i64>,
        service: Service,
        need: &str,
        by: &str,
        now: i64,
    ) -> Result<Referral, StoreError> {
        let need = required("the need", need, 1_000).map_err(invalid)?;
        if self.elder(elder_id).await?.is_none() {
            return Err(StoreError::NotFound(format!("there is no elder with id {elder_id}")));
        }
        if let Some(visit_id) = visit_id
            && self.visit(visit_id).await?.is_none_or(|visit| visit.elder_id != elder_id)
        {
            return Err(StoreError::NotFound(format!("elder {elder_id} has no visit {visit_id}")));
        }
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO referrals (elder_id, visit_id, service, need, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {REFERRAL_COLUMNS}"
        )))
        .bind(elder_id)
        .bind(visit_id)
        .bind(service.code())
        .bind(need.as_str())
        .bind(by)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await?;
        super::users::audit(&mut transaction, now, by, "referral raised", Some(elder_id), Some(service.code())).await?;
        transaction.commit().await?;
        Ok(referral(&row)?)
    }

    /// Marks a referral done with what came of it.
    pub async fn complete_referral(&self, id: i64, outcome: &str, by: &str, now: i64) -> Result<Referral, StoreError> {
        let outcome = required("what was done", outcome, 1_000).map_err(invalid)?;
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE referrals SET done_at = $2, done_by = $3, outcome = $4 WHERE id = $1 AND done_at IS NULL
             RETURNING {REFERRAL_COLUMNS}"
        )))
        .bind(id)
        .bind(now)
        .bind(by)
        .bind(outcome.as_str())
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("there is no open referral {id}")))?;
        let done = referral(&row)?;
        super::users::audit(&mut transaction, now, by, "referral done", Some(done.elder_id), None).await?;
        transaction.commit().await?;
        Ok(done)
    }

    pub async fn referral(&self, id: i64) -> Result<Option<Referral>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {REFERRAL_COLUMNS} FROM referrals WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(referral).transpose()?)
    }

    /// An elder's referrals, open ones first, newest first.
    pub async fn referrals(&self, elder_id: i64) -> Result<Vec<Referral>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REFERRAL_COLUMNS} FROM referrals WHERE elder_id = $1
             ORDER BY CASE WHEN done_at IS NULL THEN 0 ELSE 1 END, created_at DESC"
        )))
        .bind(elder_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(referral).collect::<Result<_, _>>()?)
    }

    /// Every referral not yet done, oldest first.
    pub async fn open_referrals(&self) -> Result<Vec<Referral>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REFERRAL_COLUMNS} FROM referrals WHERE done_at IS NULL ORDER BY created_at"
        )))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(referral).collect::<Result<_, _>>()?)
    }

    /// Records a care service given (part 6); audited.
    #[allow(clippy::too_many_arguments, reason = "the fields of the form's part 6")]
    pub async fn record_care_service(
        &self,
        elder_id: i64,
        day: chrono::NaiveDate,
        today: chrono::NaiveDate,
        description: &str,
        served_by: &str,
        satisfaction: Option<Satisfaction>,
        by: &str,
        now: i64,
    ) -> Result<CareService, StoreError> {
        if day > today {
            return Err(invalid(VisitError::FutureDay(day)));
        }
        let description = required("what was done", description, 1_000).map_err(invalid)?;
        let served_by = required("who served", served_by, 64).map_err(invalid)?;
        if self.elder(elder_id).await?.is_none() {
            return Err(StoreError::NotFound(format!("there is no elder with id {elder_id}")));
        }
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO care_services (elder_id, day, description, served_by, satisfaction, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {SERVICE_COLUMNS}"
        )))
        .bind(elder_id)
        .bind(day.format("%Y-%m-%d").to_string())
        .bind(description.as_str())
        .bind(served_by.as_str())
        .bind(satisfaction.map(Satisfaction::code))
        .bind(by)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await?;
        super::users::audit(&mut transaction, now, by, "care service recorded", Some(elder_id), None).await?;
        transaction.commit().await?;
        Ok(care_service(&row)?)
    }

    /// An elder's care services, newest first.
    pub async fn care_services(&self, elder_id: i64) -> Result<Vec<CareService>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SERVICE_COLUMNS} FROM care_services WHERE elder_id = $1 ORDER BY day DESC, id DESC"
        )))
        .bind(elder_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(care_service).collect::<Result<_, _>>()?)
    }
}
