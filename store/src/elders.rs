//! Elders: the minimal registry the gateway needs to bind devices to homes.
//! The full ledger (台账) with every field of the record form comes later.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use anxin_domain::registry::{CitizenId, NewElder};

use super::{Store, StoreError};

/// An elder as registered. `citizen_id` and `disability_cert` are whole
/// here; what leaves the store for a screen or the API is masked
/// ([`anxin_domain::registry::mask`]) unless someone deliberately revealed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Elder {
    pub id: i64,
    pub name: String,
    pub county: String,
    pub township: String,
    pub village: String,
    pub address: String,
    pub phone: Option<String>,
    pub emergency_contact: Option<String>,
    pub emergency_phone: Option<String>,
    pub categories: String,
    pub inactivity_hours: Option<i64>,
    pub citizen_id: Option<String>,
    pub disability_cert: Option<String>,
    pub lives_at_registered: bool,
    pub created_at: i64,
    /// The exit date (`YYYY-MM-DD`) if the elder has left the programme.
    pub left_on: Option<String>,
    /// died, moved, institution, ineligible, declined
    pub exit_reason: Option<String>,
    /// For 留守: the date the children left, `YYYY-MM-DD`.
    pub left_behind_since: Option<String>,
}

impl Elder {
    /// The exit date, if the elder has left the programme.
    pub fn left_on_date(&self) -> Option<chrono::NaiveDate> {
        self.left_on.as_deref().and_then(|day| chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok())
    }
}

impl anxin_domain::access::Placed for Elder {
    fn place(&self) -> anxin_domain::access::ElderPlace<'_> {
        anxin_domain::access::ElderPlace {
            elder_id: self.id,
            county: &self.county,
            township: &self.township,
            village: &self.village,
        }
    }
}

fn elder(row: &AnyRow) -> Result<Elder, sqlx::Error> {
    Ok(Elder {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        county: row.try_get("county")?,
        township: row.try_get("township")?,
        village: row.try_get("village")?,
        address: row.try_get("address")?,
        phone: row.try_get("phone")?,
        emergency_contact: row.try_get("emergency_contact")?,
        emergency_phone: row.try_get("emergency_phone")?,
        categories: row.try_get("categories")?,
        inactivity_hours: row.try_get("inactivity_hours")?,
        citizen_id: row.try_get("citizen_id")?,
        disability_cert: row.try_get("disability_cert")?,
        lives_at_registered: row.try_get::<i64, _>("lives_at_registered")? == 1,
        created_at: row.try_get("created_at")?,
        left_on: row.try_get("left_on")?,
        exit_reason: row.try_get("exit_reason")?,
        left_behind_since: row.try_get("left_behind_since")?,
    })
}

const ELDER_COLUMNS: &str = "id, name, county, township, village, address, phone, emergency_contact, emergency_phone, categories, inactivity_hours, citizen_id, disability_cert, lives_at_registered, created_at, left_on, exit_reason, left_behind_since";

impl Store {
    /// Registers an elder, enrolled from `now`.
    pub async fn add_elder(&self, new: &NewElder, now: i64) -> Result<Elder, StoreError> {
        self.refuse_taken_citizen_id(new, None).await?;
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO elders (name, county, township, village, address, phone, emergency_contact, emergency_phone,
                                 categories, inactivity_hours, created_at, citizen_id, disability_cert,
                                 lives_at_registered, left_behind_since)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING {ELDER_COLUMNS}"
        )))
        .bind(new.name.as_str())
        .bind(new.county.as_str())
        .bind(new.township.as_str())
        .bind(new.village.as_str())
        .bind(new.address.as_str())
        .bind(new.phone.as_deref())
        .bind(new.emergency_contact.as_deref())
        .bind(new.emergency_phone.as_deref())
        .bind(new.categories.as_str())
        .bind(new.inactivity_hours)
        .bind(now)
        .bind(new.citizen_id.as_ref().map(CitizenId::as_str))
        .bind(new.disability_cert.as_deref())
        .bind(i64::from(new.lives_at_registered))
        .bind(new.left_behind_since.map(|day| day.format("%Y-%m-%d").to_string()))
        .fetch_one(&mut *transaction)
        .await?;
        let elder = elder(&row)?;
        sqlx::query("INSERT INTO enrolments (elder_id, enrolled_at, enrolled_by) VALUES ($1, $2, 'registration')")
            .bind(elder.id)
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(elder)
    }

    /// Replaces an elder's registration; the change is audited with `by`.
    pub async fn update_elder(&self, id: i64, new: &NewElder, by: &str, now: i64) -> Result<Elder, StoreError> {
        self.refuse_taken_citizen_id(new, Some(id)).await?;
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE elders SET name = $2, county = $3, township = $4, village = $5, address = $6, phone = $7,
                    emergency_contact = $8, emergency_phone = $9, categories = $10, inactivity_hours = $11,
                    citizen_id = $12, disability_cert = $13, lives_at_registered = $14, updated_at = $15,
                    left_behind_since = $16
             WHERE id = $1 RETURNING {ELDER_COLUMNS}"
        )))
        .bind(id)
        .bind(new.name.as_str())
        .bind(new.county.as_str())
        .bind(new.township.as_str())
        .bind(new.village.as_str())
        .bind(new.address.as_str())
        .bind(new.phone.as_deref())
        .bind(new.emergency_contact.as_deref())
        .bind(new.emergency_phone.as_deref())
        .bind(new.categories.as_str())
        .bind(new.inactivity_hours)
        .bind(new.citizen_id.as_ref().map(CitizenId::as_str))
        .bind(new.disability_cert.as_deref())
        .bind(i64::from(new.lives_at_registered))
        .bind(now)
        .bind(new.left_behind_since.map(|day| day.format("%Y-%m-%d").to_string()))
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("there is no elder {id}")))?;
        super::users::audit(&mut transaction, now, by, "elder edited", Some(id), None).await?;
        transaction.commit().await?;
        Ok(elder(&row)?)
    }

    /// One citizen ID, one elder: refuses `new` if another elder than
    /// `this_one` holds its ID.
    async fn refuse_taken_citizen_id(&self, new: &NewElder, this_one: Option<i64>) -> Result<(), StoreError> {
        let Some(citizen_id) = new.citizen_id.as_ref().map(CitizenId::as_str) else { return Ok(()) };
        match self.citizen_id_holder(citizen_id).await? {
            Some(holder) if Some(holder) != this_one => Err(StoreError::Invalid(format!(
                "this citizen ID is already registered for the elder numbered {holder}"
            ))),
            _ => Ok(()),
        }
    }

    /// The elder registered with this citizen ID, if any.
    pub async fn citizen_id_holder(&self, citizen_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query("SELECT id FROM elders WHERE citizen_id = $1")
            .bind(citizen_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.try_get::<i64, _>("id"))
            .transpose()?)
    }

    pub async fn elders(&self) -> Result<Vec<Elder>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ELDER_COLUMNS} FROM elders ORDER BY id")))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(elder).collect::<Result<_, _>>()?)
    }

    pub async fn elder(&self, id: i64) -> Result<Option<Elder>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ELDER_COLUMNS} FROM elders WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(elder).transpose()?)
    }
}
