//! An elder's call list (`contacts`): kept in order, each with the consent
//! to be called.

use serde::Serialize;
use sqlx::Row;

use anxin_domain::alerts::AlertKind;
use anxin_domain::responders::{Contact, Relation};

use super::{Store, StoreError};

/// A contact as stored, with its place in the list and its consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactRecord {
    pub id: i64,
    pub elder_id: i64,
    /// 1 is called first.
    pub position: i64,
    pub name: String,
    /// family, neighbour, village_committee, grid_worker, visitor, oncall
    pub relation: String,
    pub phone: String,
    /// `HH:MM`, local; both or neither.
    pub available_from: Option<String>,
    pub available_to: Option<String>,
    /// Alert kinds' codes; empty: each kind's default.
    pub kinds: Vec<String>,
    /// How they agreed to be called.
    pub consent: String,
    pub consent_recorded_by: String,
    pub consent_recorded_at: i64,
}

impl ContactRecord {
    /// The domain's contact, for the call order.
    pub fn contact(&self) -> Option<Contact> {
        let time = |t: &Option<String>| t.as_deref().and_then(|t| chrono::NaiveTime::parse_from_str(t, "%H:%M").ok());
        Some(Contact {
            name: self.name.clone(),
            relation: Relation::parse(&self.relation)?,
            phone: self.phone.clone(),
            hours: time(&self.available_from).zip(time(&self.available_to)),
            kinds: self.kinds.iter().filter_map(|k| AlertKind::parse(k)).collect(),
        })
    }
}

fn record(row: &sqlx::any::AnyRow) -> Result<ContactRecord, sqlx::Error> {
    let kinds: String = row.try_get("kinds")?;
    Ok(ContactRecord {
        id: row.try_get("id")?,
        elder_id: row.try_get("elder_id")?,
        position: row.try_get("position")?,
        name: row.try_get("name")?,
        relation: row.try_get("relation")?,
        phone: row.try_get("phone")?,
        available_from: row.try_get("available_from")?,
        available_to: row.try_get("available_to")?,
        kinds: kinds.split(',').filter(|k| !k.is_empty()).map(str::to_string).collect(),
        consent: row.try_get("consent")?,
        consent_recorded_by: row.try_get("consent_recorded_by")?,
        consent_recorded_at: row.try_get("consent_recorded_at")?,
    })
}

const COLUMNS: &str = "id, elder_id, position, name, relation, phone, available_from, available_to, kinds, consent,
    consent_recorded_by, consent_recorded_at";

/// Contacts an elder's list holds at most.
pub const MAX_CONTACTS: i64 = 10;

impl Store {
    /// An elder's call list, in order.
    pub async fn contacts(&self, elder_id: i64) -> Result<Vec<ContactRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM contacts WHERE elder_id = $1 ORDER BY position, id"
        )))
        .bind(elder_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }

    /// Adds a contact at the end of an elder's list, with how they agreed to
    /// be called; audited (the relation and place, not the name or phone).
    pub async fn add_contact(
        &self,
        elder_id: i64,
        contact: &Contact,
        consent: &str,
        by: &str,
        now: i64,
    ) -> Result<ContactRecord, StoreError> {
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let added = add_contact_in(&mut transaction, elder_id, contact, consent, by, now).await?;
        transaction.commit().await?;
        Ok(added)
    }

    /// Removes a contact from an elder's list; the rest close up. Audited.
    pub async fn remove_contact(&self, elder_id: i64, id: i64, by: &str, now: i64) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let position: i64 = sqlx::query("DELETE FROM contacts WHERE id = $1 AND elder_id = $2 RETURNING position")
            .bind(id)
            .bind(elder_id)
            .fetch_optional(&mut *transaction)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("elder {elder_id} has no contact {id}")))?
            .try_get("position")?;
        sqlx::query("UPDATE contacts SET position = position - 1 WHERE elder_id = $1 AND position > $2")
            .bind(elder_id)
            .bind(position)
            .execute(&mut *transaction)
            .await?;
        let detail = format!("contact={id}");
        super::users::audit(&mut transaction, now, by, "contact removed", Some(elder_id), Some(&detail)).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Moves a contact one place earlier in the list. Audited.
    pub async fn move_contact_up(&self, elder_id: i64, id: i64, by: &str, now: i64) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let position: i64 = sqlx::query("SELECT position FROM contacts WHERE id = $1 AND elder_id = $2")
            .bind(id)
            .bind(elder_id)
            .fetch_optional(&mut *transaction)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("elder {elder_id} has no contact {id}")))?
            .try_get("position")?;
        if position > 1 {
            sqlx::query("UPDATE contacts SET position = position + 1 WHERE elder_id = $1 AND position = $2")
                .bind(elder_id)
                .bind(position - 1)
                .execute(&mut *transaction)
                .await?;
            sqlx::query("UPDATE contacts SET position = $1 WHERE id = $2")
                .bind(position - 1)
                .bind(id)
                .execute(&mut *transaction)
                .await?;
            let detail = format!("contact={id} position={}", position - 1);
            super::users::audit(&mut transaction, now, by, "contact moved", Some(elder_id), Some(&detail)).await?;
        }
        transaction.commit().await?;
        Ok(())
    }
}

/// Adds a contact at the end of an elder's list inside `transaction`;
/// audited (the relation and place, not the name or phone).
pub(crate) async fn add_contact_in(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    elder_id: i64,
    contact: &Contact,
    consent: &str,
    by: &str,
    now: i64,
) -> Result<ContactRecord, StoreError> {
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM contacts WHERE elder_id = $1")
        .bind(elder_id)
        .fetch_one(&mut **transaction)
        .await?
        .try_get("n")?;
    if count >= MAX_CONTACTS {
        return Err(StoreError::Invalid(format!("a call list holds at most {MAX_CONTACTS} contacts")));
    }
    let hours = |pick: fn(&(chrono::NaiveTime, chrono::NaiveTime)) -> chrono::NaiveTime| {
        contact.hours.as_ref().map(|h| pick(h).format("%H:%M").to_string())
    };
    let kinds: Vec<&str> = contact.kinds.iter().map(|k| k.as_str()).collect();
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO contacts (elder_id, position, name, relation, phone, available_from, available_to, kinds,
                               consent, consent_recorded_by, consent_recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {COLUMNS}"
    )))
    .bind(elder_id)
    .bind(count + 1)
    .bind(contact.name.as_str())
    .bind(contact.relation.code())
    .bind(contact.phone.as_str())
    .bind(hours(|h| h.0))
    .bind(hours(|h| h.1))
    .bind(kinds.join(","))
    .bind(consent)
    .bind(by)
    .bind(now)
    .fetch_one(&mut **transaction)
    .await?;
    let added = record(&row)?;
    let detail = format!("contact={} position={} relation={}", added.id, added.position, added.relation);
    super::users::audit(transaction, now, by, "contact added", Some(elder_id), Some(&detail)).await?;
    Ok(added)
}
