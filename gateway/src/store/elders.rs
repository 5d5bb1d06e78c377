//! Elders: the minimal registry the gateway needs to bind devices to homes.
//! The full ledger (台账) with every field of the record form comes later.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// An elder's registration, as entered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewElder {
    pub name: String,
    pub county: String,
    pub township: String,
    pub village: String,
    pub address: String,
    pub phone: Option<String>,
    pub emergency_contact: Option<String>,
    pub emergency_phone: Option<String>,
    /// Annex 2 categories, e.g. `living_alone,dependent`.
    pub categories: String,
    /// Overrides the inactivity threshold of the categories, in hours.
    pub inactivity_hours: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    pub created_at: i64,
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
        created_at: row.try_get("created_at")?,
    })
}

const ELDER_COLUMNS: &str = "id, name, county, township, village, address, phone, emergency_contact, emergency_phone, categories, inactivity_hours, created_at";

impl Store {
    pub async fn add_elder(&self, new: &NewElder, now: i64) -> Result<Elder, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO elders (name, county, township, village, address, phone, emergency_contact, emergency_phone,
                                 categories, inactivity_hours, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {ELDER_COLUMNS}"
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
        .fetch_one(&self.pool)
        .await?;
        Ok(elder(&row)?)
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
