//! The ledger (台账) in the database: parts 2 to 4 of the record form beside
//! the elder's registration, and importing a whole ledger file at once.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use anxin_domain::enrolment::{Exit, ExitReason};
use sqlx::any::AnyRow;

use anxin_domain::registry::{CitizenId, NewElder};

use super::{Store, StoreError};
use anxin_domain::access::Role;
use anxin_domain::alerts::Category;
use anxin_domain::ledger::{
    ElderDetails, HelpOrg, HelpReceived, HouseholdMember, Ledger, LedgerRow, LivingConditions, Problem, RowProblem,
    Sex, Support,
};

/// What an import did (or, previewed, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportOutcome {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Each row that creates or changes an elder, in the file's order.
    pub changes: Vec<RowChange>,
}

/// One row's effect: a new elder, or the columns it changes or clears.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowChange {
    /// The line in the file.
    pub line: usize,
    /// The elder changed; `None` for one the import adds.
    pub elder_id: Option<i64>,
    pub name: String,
    /// The changed columns' headers (empty for a new elder).
    pub columns: Vec<String>,
}

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{} rows have problems", .0.len())]
    Rows(Vec<RowProblem>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ImportError {
    fn from(error: sqlx::Error) -> Self {
        ImportError::Store(error.into())
    }
}

/// Binds part 1 of the record form, in the order the statements list it:
/// name, county, township, village, address, phone, emergency contact and
/// phone, categories, citizen ID, certificate, lives at registered address.
macro_rules! bind_part1 {
    ($query:expr, $elder:expr) => {
        $query
            .bind($elder.name.as_str())
            .bind($elder.county.as_str())
            .bind($elder.township.as_str())
            .bind($elder.village.as_str())
            .bind($elder.address.as_str())
            .bind($elder.phone.as_deref())
            .bind($elder.emergency_contact.as_deref())
            .bind($elder.emergency_phone.as_deref())
            .bind($elder.categories.as_str())
            .bind($elder.citizen_id.as_ref().map(CitizenId::as_str))
            .bind($elder.disability_cert.as_deref())
            .bind(i64::from($elder.lives_at_registered))
            .bind($elder.left_behind_since.map(|day| day.format("%Y-%m-%d").to_string()))
    };
}

/// Binds parts 2-4 kept on the elder (是否残疾, living conditions, help
/// received), in the order the statements list them; `$orgs` is
/// [`org_codes`] of the help.
macro_rules! bind_details {
    ($query:expr, $details:expr, $orgs:expr) => {
        $query
            .bind(i64::from($details.disabled))
            .bind(bool_value($details.living.water_safe))
            .bind(bool_value($details.living.power_safe))
            .bind(bool_value($details.living.housing_safe))
            .bind($details.living.monthly_income_fen)
            .bind($details.living.benefits.as_deref())
            .bind($orgs.as_str())
            .bind($details.help.person.as_deref())
            .bind($details.help.measures.as_deref())
    };
}

/// The helping organisations as stored: comma-separated codes.
fn org_codes(help: &HelpReceived) -> String {
    help.orgs.iter().map(|org| org.code()).collect::<Vec<_>>().join(",")
}

const LEDGER_COLUMNS: &str = "id, name, county, township, village, address, phone, emergency_contact, emergency_phone,
    categories, citizen_id, disability_cert, lives_at_registered, disabled, water_safe, power_safe, housing_safe,
    monthly_income_fen, benefits, help_orgs, help_person, help_measures, left_behind_since, left_on, exit_reason";

fn optional_bool(row: &AnyRow, column: &str) -> Result<Option<bool>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(|value| value == 1))
}

/// The stored categories in [`Category::ALL`] order, as the ledger writes them.
fn canonical_categories(text: &str) -> String {
    let found = Category::parse_list(text);
    Category::join(&Category::ALL.into_iter().filter(|c| found.contains(c)).collect::<Vec<_>>())
}

fn details_and_elder(row: &AnyRow) -> Result<(i64, NewElder, ElderDetails), sqlx::Error> {
    let elder = NewElder {
        citizen_id: row
            .try_get::<Option<String>, _>("citizen_id")?
            .map(|text| CitizenId::parse(&text))
            .transpose()
            .map_err(|error| sqlx::Error::ColumnDecode { index: "citizen_id".into(), source: Box::new(error) })?,
        disability_cert: row.try_get("disability_cert")?,
        lives_at_registered: row.try_get::<i64, _>("lives_at_registered")? == 1,
        name: row.try_get("name")?,
        county: row.try_get("county")?,
        township: row.try_get("township")?,
        village: row.try_get("village")?,
        address: row.try_get("address")?,
        phone: row.try_get("phone")?,
        emergency_contact: row.try_get("emergency_contact")?,
        emergency_phone: row.try_get("emergency_phone")?,
        categories: canonical_categories(&row.try_get::<String, _>("categories")?),
        inactivity_hours: None,
        left_behind_since: day_column(row, "left_behind_since")?,
    };
    let orgs: String = row.try_get("help_orgs")?;
    let details = ElderDetails {
        disabled: row.try_get::<i64, _>("disabled")? == 1,
        members: Vec::new(),
        living: LivingConditions {
            water_safe: optional_bool(row, "water_safe")?,
            power_safe: optional_bool(row, "power_safe")?,
            housing_safe: optional_bool(row, "housing_safe")?,
            monthly_income_fen: row.try_get("monthly_income_fen")?,
            benefits: row.try_get("benefits")?,
        },
        help: HelpReceived {
            orgs: orgs.split(',').filter_map(HelpOrg::parse).collect(),
            person: row.try_get("help_person")?,
            measures: row.try_get("help_measures")?,
        },
    };
    Ok((row.try_get("id")?, elder, details))
}

fn member(row: &AnyRow) -> Result<(i64, HouseholdMember), sqlx::Error> {
    let sex: Option<String> = row.try_get("sex")?;
    let support: String = row.try_get("support")?;
    Ok((
        row.try_get("elder_id")?,
        HouseholdMember {
            name: row.try_get("name")?,
            sex: sex.as_deref().and_then(Sex::parse),
            citizen_id: row.try_get("citizen_id")?,
            relation: row.try_get("relation")?,
            health: row.try_get("health")?,
            support: Support::parse(&support).unwrap_or(Support::None),
        },
    ))
}

/// A `YYYY-MM-DD` column as a date.
pub(crate) fn day_column(row: &AnyRow, column: &str) -> Result<Option<chrono::NaiveDate>, sqlx::Error> {
    Ok(row
        .try_get::<Option<String>, _>(column)?
        .and_then(|text| chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok()))
}

fn bool_value(value: Option<bool>) -> Option<i64> {
    value.map(i64::from)
}

impl Store {
    /// Parts 1 (是否残疾) to 4 of an elder's record form.
    pub async fn elder_details(&self, elder_id: i64) -> Result<Option<ElderDetails>, StoreError> {
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {LEDGER_COLUMNS} FROM elders WHERE id = $1")))
            .bind(elder_id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let (_, _, mut details) = details_and_elder(&row)?;
        let rows = sqlx::query(
            "SELECT elder_id, name, sex, citizen_id, relation, health, support FROM household_members
             WHERE elder_id = $1 ORDER BY position",
        )
        .bind(elder_id)
        .fetch_all(&self.pool)
        .await?;
        details.members = rows.iter().map(|row| member(row).map(|(_, m)| m)).collect::<Result<_, _>>()?;
        Ok(Some(details))
    }

    /// Replaces parts 2 to 4 (and 是否残疾) of an elder's record; audited.
    pub async fn set_elder_details(
        &self,
        elder_id: i64,
        details: &ElderDetails,
        by: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        let found = write_details(&mut transaction, elder_id, details, now).await?;
        if !found {
            return Err(StoreError::NotFound(format!("there is no elder {elder_id}")));
        }
        super::users::audit(&mut transaction, now, by, "household details edited", Some(elder_id), None).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// User names of the visitors who may be responsible for households.
    pub async fn visitor_names(&self) -> Result<HashSet<String>, StoreError> {
        let rows = sqlx::query("SELECT name FROM users WHERE role = $1 AND disabled = 0")
            .bind(Role::Visitor.as_str())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|row| row.try_get("name")).collect::<Result<_, _>>()?)
    }

    /// The whole ledger, by elder id.
    pub async fn ledger(&self) -> Result<Vec<LedgerRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {LEDGER_COLUMNS} FROM elders ORDER BY id")))
            .fetch_all(&self.pool)
            .await?;
        let mut members: HashMap<i64, Vec<HouseholdMember>> = HashMap::new();
        for row in sqlx::query(
            "SELECT elder_id, name, sex, citizen_id, relation, health, support FROM household_members
             ORDER BY elder_id, position",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let (elder_id, member) = member(&row)?;
            members.entry(elder_id).or_default().push(member);
        }
        // The emergency contact's consent, where they are on the call list.
        let mut consents: HashMap<i64, String> = HashMap::new();
        for row in sqlx::query(
            "SELECT c.elder_id, c.consent FROM contacts c JOIN elders e ON e.id = c.elder_id
             WHERE c.phone = e.emergency_phone ORDER BY c.elder_id, c.position DESC",
        )
        .fetch_all(&self.pool)
        .await?
        {
            consents.insert(row.try_get("elder_id")?, row.try_get("consent")?);
        }
        let mut visitors: HashMap<i64, Vec<String>> = HashMap::new();
        for row in sqlx::query(
            "SELECT v.elder_id, u.name FROM visitor_assignments v JOIN users u ON u.id = v.user_id ORDER BY u.name",
        )
        .fetch_all(&self.pool)
        .await?
        {
            visitors.entry(row.try_get("elder_id")?).or_default().push(row.try_get("name")?);
        }
        rows.iter()
            .map(|row| {
                let (id, elder, mut details) = details_and_elder(row)?;
                details.members = members.remove(&id).unwrap_or_default();
                let exit = match (day_column(row, "left_on")?, row.try_get::<Option<String>, _>("exit_reason")?) {
                    (Some(on), Some(reason)) => ExitReason::parse(&reason).map(|reason| Exit { reason, on }),
                    _ => None,
                };
                Ok(LedgerRow {
                    id: Some(id),
                    elder,
                    details,
                    visitors: visitors.remove(&id).unwrap_or_default(),
                    exit,
                    emergency_consent: consents.remove(&id),
                })
            })
            .collect()
    }

    /// Imports a checked ledger in one transaction: rows are matched by
    /// 编号, then by citizen ID; new ones are registered, changed ones
    /// rewritten (the elder's inactivity threshold is kept), identical ones
    /// left alone. Nothing is written if any row cannot be matched.
    pub async fn import_ledger(&self, ledger: &Ledger, by: &str, now: i64) -> Result<ImportOutcome, ImportError> {
        self.import(ledger, by, now, true).await
    }

    /// What [`Store::import_ledger`] would do, with nothing saved.
    pub async fn preview_ledger(&self, ledger: &Ledger, by: &str, now: i64) -> Result<ImportOutcome, ImportError> {
        self.import(ledger, by, now, false).await
    }

    async fn import(&self, ledger: &Ledger, by: &str, now: i64, apply: bool) -> Result<ImportOutcome, ImportError> {
        let current: HashMap<i64, LedgerRow> =
            self.ledger().await?.into_iter().filter_map(|row| row.id.map(|id| (id, row))).collect();
        let by_citizen_id: HashMap<&str, i64> = current
            .iter()
            .filter_map(|(id, row)| row.elder.citizen_id.as_ref().map(CitizenId::as_str).map(|citizen| (citizen, *id)))
            .collect();
        let mut problems = Vec::new();
        let mut plan: Vec<(usize, Option<i64>, &LedgerRow)> = Vec::new();
        let mut claimed: HashMap<i64, usize> = HashMap::new();
        for (line, row) in &ledger.rows {
            let target = match row.id {
                Some(id) if !current.contains_key(&id) => {
                    problems.push(RowProblem {
                        line: *line,
                        column: Some(anxin_domain::ledger::Column::Id.header()),
                        value: Some(id.to_string()),
                        problem: Problem::UnknownId,
                    });
                    continue;
                }
                Some(id) => Some(id),
                None => row
                    .elder
                    .citizen_id
                    .as_ref()
                    .map(CitizenId::as_str)
                    .and_then(|citizen| by_citizen_id.get(citizen).copied()),
            };
            match (target.map(|id| &current[&id]), row.exit) {
                (None, Some(_)) => {
                    problems.push(RowProblem {
                        line: *line,
                        column: Some(anxin_domain::ledger::Column::ExitReason.header()),
                        value: row.exit.map(|exit| exit.reason.label().to_string()),
                        problem: Problem::NewElderLeft,
                    });
                    continue;
                }
                (Some(before), Some(exit)) if before.exit.is_some_and(|was| was != exit) => {
                    problems.push(RowProblem {
                        line: *line,
                        column: Some(anxin_domain::ledger::Column::ExitDate.header()),
                        value: Some(exit.on.to_string()),
                        problem: Problem::ExitChanged {
                            on: before.exit.map(|was| was.on.to_string()).unwrap_or_default(),
                        },
                    });
                    continue;
                }
                _ => {}
            }
            if let Some(id) = target {
                // Another elder already holds this citizen ID.
                if let Some(holder) =
                    row.elder.citizen_id.as_ref().map(CitizenId::as_str).and_then(|c| by_citizen_id.get(c))
                    && *holder != id
                {
                    problems.push(RowProblem {
                        line: *line,
                        column: Some(anxin_domain::ledger::Column::CitizenId.header()),
                        value: row.elder.citizen_id.as_ref().map(|id| id.as_str().to_string()),
                        problem: Problem::CitizenIdTaken { elder_id: *holder },
                    });
                    continue;
                }
                if let Some(first) = claimed.insert(id, *line) {
                    problems.push(RowProblem {
                        line: *line,
                        column: Some(anxin_domain::ledger::Column::Id.header()),
                        value: Some(id.to_string()),
                        problem: Problem::DuplicateId { line: first },
                    });
                    continue;
                }
            }
            plan.push((*line, target, row));
        }
        if !problems.is_empty() {
            return Err(ImportError::Rows(problems));
        }

        let mut outcome = ImportOutcome::default();
        let mut newest_event = None;
        let visitor_ids: HashMap<String, i64> = sqlx::query("SELECT id, name FROM users WHERE role = $1")
            .bind(Role::Visitor.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("name")?, row.try_get("id")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let _turn = self.write_turn().await;
        let mut transaction = self.begin_immediate().await?;
        for (line, target, row) in plan {
            let id = match target {
                Some(id) => {
                    let before = &current[&id];
                    // An exit on record stays when the file says nothing of
                    // it; so does a consent to be called.
                    let exit = row.exit.or(before.exit);
                    let emergency_consent = row.emergency_consent.clone().or(before.emergency_consent.clone());
                    let row = &LedgerRow { exit, emergency_consent, ..row.clone() };
                    let same = before.elder == row.elder
                        && before.details == row.details
                        && before.visitors == row.visitors
                        && before.exit == row.exit
                        && before.emergency_consent == row.emergency_consent;
                    if same {
                        outcome.unchanged += 1;
                        continue;
                    }
                    write_elder(&mut transaction, id, &row.elder, now).await?;
                    if before.emergency_consent.is_none() || before.elder.emergency_phone != row.elder.emergency_phone {
                        call_emergency_contact(&mut transaction, id, row, by, now).await?;
                    }
                    if let (None, Some(exit)) = (before.exit, row.exit) {
                        let (_, event) = super::enrolment::exit_in(&mut transaction, id, exit, by, now).await?;
                        newest_event = event.or(newest_event);
                    }
                    outcome.updated += 1;
                    let columns = anxin_domain::ledger::changed_columns(before, row);
                    // Field names, not values: the audit log holds no personal data.
                    let keys: Vec<String> = columns.iter().map(|column| column.key()).collect();
                    let detail = format!("changed: {}", keys.join(", "));
                    super::users::audit(&mut transaction, now, by, "ledger row imported", Some(id), Some(&detail))
                        .await?;
                    outcome.changes.push(RowChange {
                        line,
                        elder_id: Some(id),
                        name: row.elder.name.clone(),
                        columns: columns.iter().map(|column| column.header()).collect(),
                    });
                    id
                }
                None => {
                    let id = insert_elder(&mut transaction, row, now).await?;
                    outcome.created += 1;
                    outcome.changes.push(RowChange {
                        line,
                        elder_id: None,
                        name: row.elder.name.clone(),
                        columns: Vec::new(),
                    });
                    super::users::audit(&mut transaction, now, by, "elder registered from the ledger", Some(id), None)
                        .await?;
                    insert_members(&mut transaction, id, &row.details.members).await?;
                    insert_visitors(&mut transaction, id, &row.visitors, &visitor_ids, now).await?;
                    call_emergency_contact(&mut transaction, id, row, by, now).await?;
                    continue;
                }
            };
            write_details(&mut transaction, id, &row.details, now).await?;
            sqlx::query("DELETE FROM visitor_assignments WHERE elder_id = $1")
                .bind(id)
                .execute(&mut *transaction)
                .await?;
            insert_visitors(&mut transaction, id, &row.visitors, &visitor_ids, now).await?;
        }
        let detail =
            format!("created {}, updated {}, unchanged {}", outcome.created, outcome.updated, outcome.unchanged);
        if !apply {
            // A preview: everything above is undone, the audit entries too.
            transaction.rollback().await?;
            return Ok(outcome);
        }
        super::users::audit(&mut transaction, now, by, "ledger imported", None, Some(&detail)).await?;
        transaction.commit().await?;
        if let Some(event) = newest_event {
            self.note_alert_written(event);
        }
        Ok(outcome)
    }
}

/// Puts the row's emergency contact on the elder's call list (as family,
/// any time, each kind's default) when the row records their consent and
/// the list does not hold their phone yet.
async fn call_emergency_contact(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: i64,
    row: &LedgerRow,
    by: &str,
    now: i64,
) -> Result<(), StoreError> {
    let (Some(consent), Some(name), Some(phone)) =
        (&row.emergency_consent, &row.elder.emergency_contact, &row.elder.emergency_phone)
    else {
        return Ok(());
    };
    let listed = sqlx::query("SELECT 1 AS one FROM contacts WHERE elder_id = $1 AND phone = $2")
        .bind(id)
        .bind(phone.as_str())
        .fetch_optional(&mut **transaction)
        .await?;
    if listed.is_some() {
        return Ok(());
    }
    let contact = anxin_domain::responders::Contact {
        name: name.clone(),
        relation: anxin_domain::responders::Relation::Family,
        phone: phone.clone(),
        hours: None,
        kinds: Vec::new(),
    };
    super::contacts::add_contact_in(transaction, id, &contact, consent, by, now).await?;
    Ok(())
}

/// Part 1 of an elder, leaving the inactivity threshold as it is.
async fn write_elder(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: i64,
    elder: &NewElder,
    now: i64,
) -> Result<(), sqlx::Error> {
    let query = sqlx::query(
        "UPDATE elders SET name = $2, county = $3, township = $4, village = $5, address = $6, phone = $7,
                emergency_contact = $8, emergency_phone = $9, categories = $10, citizen_id = $11,
                disability_cert = $12, lives_at_registered = $13, left_behind_since = $14, updated_at = $15
         WHERE id = $1",
    );
    bind_part1!(query.bind(id), elder).bind(now).execute(&mut **transaction).await?;
    Ok(())
}

/// Parts 2 to 4; `false` if there is no such elder.
async fn write_details(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: i64,
    details: &ElderDetails,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let orgs = org_codes(&details.help);
    let query = sqlx::query(
        "UPDATE elders SET disabled = $2, water_safe = $3, power_safe = $4, housing_safe = $5,
                monthly_income_fen = $6, benefits = $7, help_orgs = $8, help_person = $9, help_measures = $10,
                updated_at = $11
         WHERE id = $1",
    );
    let updated =
        bind_details!(query.bind(id), details, orgs).bind(now).execute(&mut **transaction).await?.rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM household_members WHERE elder_id = $1").bind(id).execute(&mut **transaction).await?;
    insert_members(transaction, id, &details.members).await?;
    Ok(true)
}

/// A new elder from a ledger row, every column at once, enrolled from `now`.
async fn insert_elder(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    row: &LedgerRow,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let (elder, details) = (&row.elder, &row.details);
    let orgs = org_codes(&details.help);
    let query = sqlx::query(
        "INSERT INTO elders (name, county, township, village, address, phone, emergency_contact, emergency_phone,
                             categories, citizen_id, disability_cert, lives_at_registered, left_behind_since,
                             created_at, disabled, water_safe, power_safe, housing_safe, monthly_income_fen,
                             benefits, help_orgs, help_person, help_measures)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
                 $23)
         RETURNING id",
    );
    let created =
        bind_details!(bind_part1!(query, elder).bind(now), details, orgs).fetch_one(&mut **transaction).await?;
    let id = created.try_get("id")?;
    sqlx::query("INSERT INTO enrolments (elder_id, enrolled_at, enrolled_by) VALUES ($1, $2, 'ledger import')")
        .bind(id)
        .bind(now)
        .execute(&mut **transaction)
        .await?;
    Ok(id)
}

async fn insert_visitors(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    elder_id: i64,
    names: &[String],
    visitor_ids: &HashMap<String, i64>,
    now: i64,
) -> Result<(), sqlx::Error> {
    for name in names {
        let Some(user_id) = visitor_ids.get(name) else { continue };
        sqlx::query("INSERT INTO visitor_assignments (elder_id, user_id, assigned_at) VALUES ($1, $2, $3)")
            .bind(elder_id)
            .bind(*user_id)
            .bind(now)
            .execute(&mut **transaction)
            .await?;
    }
    Ok(())
}

async fn insert_members(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: i64,
    members: &[HouseholdMember],
) -> Result<(), sqlx::Error> {
    for (position, member) in (1_i64..).zip(members) {
        sqlx::query(
            "INSERT INTO household_members (elder_id, position, name, sex, citizen_id, relation, health, support)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(position)
        .bind(member.name.as_str())
        .bind(member.sex.map(Sex::code))
        .bind(member.citizen_id.as_deref())
        .bind(member.relation.as_deref())
        .bind(member.health.as_deref())
        .bind(member.support.code())
        .execute(&mut **transaction)
        .await?;
    }
    Ok(())
}
