//! A visit's evidence from the visitor's phone (`visit_evidence`) and the
//! homes' recorded locations (`home_locations`).

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use anxin_domain::evidence::{ElderMark, Evidence, Location, Signature};

/// What was kept of a visit's evidence, without the photo's bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvidence {
    pub visit_id: i64,
    /// Epoch ms.
    pub ended_at: Option<i64>,
    pub elder_signature: Option<Signature>,
    pub elder_mark: ElderMark,
    pub visitor_signature: Option<Signature>,
    pub location: Option<Location>,
    pub has_photo: bool,
}

const COLUMNS: &str = "e.visit_id, e.ended_at, e.elder_signature, e.elder_mark, e.visitor_signature, e.latitude, \
                       e.longitude, e.accuracy_m, CASE WHEN e.photo IS NULL THEN 0 ELSE 1 END AS has_photo";

fn stored(row: &AnyRow) -> Result<StoredEvidence, sqlx::Error> {
    let signature = |column: &str| -> Result<Option<Signature>, sqlx::Error> {
        // Checked when written; a row that no longer reads is shown as unsigned.
        Ok(row.try_get::<Option<String>, _>(column)?.and_then(|text| Signature::parse(&text).ok().flatten()))
    };
    let latitude: Option<f64> = row.try_get("latitude")?;
    let longitude: Option<f64> = row.try_get("longitude")?;
    Ok(StoredEvidence {
        visit_id: row.try_get("visit_id")?,
        ended_at: row.try_get("ended_at")?,
        elder_signature: signature("elder_signature")?,
        elder_mark: ElderMark::parse(&row.try_get::<String, _>("elder_mark")?).unwrap_or_default(),
        visitor_signature: signature("visitor_signature")?,
        location: latitude.zip(longitude).map(|(latitude, longitude)| Location {
            latitude,
            longitude,
            accuracy_m: row.try_get("accuracy_m").ok().flatten(),
        }),
        has_photo: row.try_get::<i64, _>("has_photo")? == 1,
    })
}

/// Writes a visit's evidence in the visit's own transaction.
pub(crate) async fn insert(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    visit_id: i64,
    day: chrono::NaiveDate,
    evidence: &Evidence,
    offset: chrono::FixedOffset,
) -> Result<(), StoreError> {
    let ended_at = evidence
        .ended
        .and_then(|ended| day.and_time(ended).and_local_timezone(offset).single())
        .map(|t| t.timestamp_millis());
    let location = evidence.location;
    sqlx::query(
        "INSERT INTO visit_evidence (visit_id, ended_at, elder_signature, elder_mark, visitor_signature,
                                     latitude, longitude, accuracy_m, photo)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(visit_id)
    .bind(ended_at)
    .bind(evidence.elder_signature.as_ref().map(Signature::text))
    .bind(evidence.elder_mark.code())
    .bind(evidence.visitor_signature.as_ref().map(Signature::text))
    .bind(location.map(|l| l.latitude))
    .bind(location.map(|l| l.longitude))
    .bind(location.and_then(|l| l.accuracy_m))
    .bind(evidence.photo.clone())
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

impl Store {
    /// The evidence of an elder's visits, by visit id (without photos).
    pub async fn evidence_of(&self, elder_id: i64) -> Result<HashMap<i64, StoredEvidence>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM visit_evidence e JOIN visits v ON v.id = e.visit_id WHERE v.elder_id = $1"
        )))
        .bind(elder_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok(stored(row).map(|e| (e.visit_id, e))?)).collect()
    }

    /// A visit's photo (JPEG) and the elder it belongs to.
    pub async fn visit_photo(&self, visit_id: i64) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        let row = sqlx::query(
            "SELECT v.elder_id, e.photo FROM visit_evidence e JOIN visits v ON v.id = e.visit_id
             WHERE e.visit_id = $1 AND e.photo IS NOT NULL",
        )
        .bind(visit_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => Some((row.try_get("elder_id")?, row.try_get("photo")?)),
            None => None,
        })
    }

    /// The home's recorded location, if the registry set one.
    pub async fn home_location(&self, elder_id: i64) -> Result<Option<Location>, StoreError> {
        let row = sqlx::query("SELECT latitude, longitude FROM home_locations WHERE elder_id = $1")
            .bind(elder_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => Some(Location {
                latitude: row.try_get("latitude")?,
                longitude: row.try_get("longitude")?,
                accuracy_m: None,
            }),
            None => None,
        })
    }

    /// Sets (or with `None` clears) the home's recorded location; audited.
    pub async fn set_home_location(
        &self,
        elder_id: i64,
        location: Option<Location>,
        by: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        sqlx::query("DELETE FROM home_locations WHERE elder_id = $1").bind(elder_id).execute(&mut *transaction).await?;
        let detail = match location {
            Some(at) => {
                sqlx::query(
                    "INSERT INTO home_locations (elder_id, latitude, longitude, set_by, set_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(elder_id)
                .bind(at.latitude)
                .bind(at.longitude)
                .bind(by)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
                "set"
            }
            None => "cleared",
        };
        super::users::audit(&mut transaction, now, by, "home location set", Some(elder_id), Some(detail)).await?;
        transaction.commit().await?;
        Ok(())
    }
}
