//! The watched homes: each elder's `home_watch` row (the rules' state and the
//! next deadline) with what the rules need to read beside it.
//!
//! Design: a home's row is created before it is read, then read under a lock
//! in elder-id order (`SELECT … FOR UPDATE` on PostgreSQL; SQLite has one
//! writer, and the creating insert is the transaction's first write), so two
//! gateways judging the same home serialise on the row and the second reads
//! the first one's state; one order means no deadlock.

use std::collections::HashMap;

use sqlx::Row;

use super::{Backend, Params, Store, StoreError, Write, chunk_sizes};
use anxin_domain::access;
use anxin_domain::alerts::Category;
use anxin_domain::alerts::engine::{Home, HomePlace};
use anxin_domain::alerts::policy::ElderFacts;
use anxin_domain::alerts::rules::DeviceLink;

/// Homes per statement when reading or writing many.
const HOMES_PER_STATEMENT: usize = 256;

impl Write {
    /// Creates (if missing), locks and reads the homes of `elder_ids`, which
    /// must be sorted and distinct. Elders that do not exist, or have left
    /// the programme, are left out.
    pub async fn lock_homes(&mut self, elder_ids: &[i64], now: i64) -> Result<HashMap<i64, Home>, StoreError> {
        let mut homes: HashMap<i64, Home> = HashMap::with_capacity(elder_ids.len());
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE OF h",
            Backend::Sqlite => "",
        };
        let mut rest = elder_ids;
        for size in chunk_sizes(elder_ids.len(), HOMES_PER_STATEMENT) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let backend = self.backend();
            let mut params = Params::new(backend);
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO home_watch (elder_id, state, next_due_at, updated_at)
                 SELECT id, '', NULL, {} FROM elders WHERE id IN ({}) AND left_on IS NULL ORDER BY id
                 ON CONFLICT (elder_id) DO NOTHING",
                params.one(),
                params.list(size)
            )))
            .bind(now);
            for id in chunk {
                query = query.bind(*id);
            }
            query.execute(&mut *self.transaction).await?;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT e.id, e.categories, e.inactivity_hours, e.county, e.township, e.village, h.state, h.updated_at
                 FROM home_watch h JOIN elders e ON e.id = h.elder_id
                 WHERE h.elder_id IN ({}) ORDER BY h.elder_id{lock}",
                Params::new(backend).list(size)
            )));
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&mut *self.transaction).await? {
                homes.insert(
                    row.try_get("id")?,
                    Home {
                        state: Some(row.try_get::<String, _>("state")?).filter(|state| !state.is_empty()),
                        watched_from: row.try_get("updated_at")?,
                        elder: ElderFacts {
                            categories: Category::parse_list(&row.try_get::<String, _>("categories")?),
                            inactivity_hours: row.try_get("inactivity_hours")?,
                        },
                        place: HomePlace {
                            county: row.try_get("county")?,
                            township: row.try_get("township")?,
                            village: row.try_get("village")?,
                        },
                        ..Home::default()
                    },
                );
            }
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT device_id, elder_id, online, offline_reason FROM devices
                 WHERE elder_id IN ({}) ORDER BY device_id",
                Params::new(backend).list(size)
            )));
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&mut *self.transaction).await? {
                if let Some(home) = homes.get_mut(&row.try_get::<i64, _>("elder_id")?) {
                    home.devices.push(DeviceLink {
                        device_id: row.try_get("device_id")?,
                        online: row.try_get::<i64, _>("online")? == 1,
                        offline_reason: row.try_get("offline_reason")?,
                    });
                }
            }
            let mut params = Params::new(backend);
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT elder_id, ends_at FROM absences
                 WHERE cancelled_at IS NULL AND starts_at <= {} AND ends_at > {} AND elder_id IN ({})",
                params.one(),
                params.one(),
                params.list(size)
            )))
            .bind(now)
            .bind(now);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&mut *self.transaction).await? {
                let ends_at: i64 = row.try_get("ends_at")?;
                if let Some(home) = homes.get_mut(&row.try_get::<i64, _>("elder_id")?) {
                    home.away_until = Some(home.away_until.map_or(ends_at, |until| until.max(ends_at)));
                }
            }
        }
        Ok(homes)
    }

    /// The heightened watches in force at `now` (a handful at most).
    pub async fn heightened_regions(&mut self, now: i64) -> Result<Vec<access::Region>, StoreError> {
        let rows = sqlx::query(
            "SELECT county, township, village FROM heightened_watches WHERE starts_at <= $1 AND ends_at > $1",
        )
        .bind(now)
        .fetch_all(&mut *self.transaction)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(access::Region {
                    county: row.try_get("county")?,
                    township: row.try_get("township")?,
                    village: row.try_get("village")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Writes each home's new state and next deadline: `(elder_id, state, due)`.
    ///
    /// Design: the stored `next_due_at` is when the timers look at the home
    /// next, never later than its deadline: moved earlier at once, but
    /// later only once it has passed. A summary with activity moves a
    /// home's deadline later nearly every batch; written as it moves, the
    /// indexed column changed with every update and no update of
    /// `home_watch` was HOT. Kept, the update changes no indexed column and
    /// stays on its page (fillfactor, migration 0031); the timers look at
    /// the home once at the earlier moment, find nothing due (the rules are
    /// the same at any moment) and write the deadline the rules give then.
    pub async fn write_home_states(&mut self, states: &[(i64, String, i64)], now: i64) -> Result<(), StoreError> {
        let mut rest = states;
        for size in chunk_sizes(states.len(), HOMES_PER_STATEMENT) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO home_watch (elder_id, state, next_due_at, updated_at) VALUES {}
                 ON CONFLICT (elder_id) DO UPDATE SET
                     state = excluded.state,
                     next_due_at = CASE
                         WHEN home_watch.next_due_at IS NULL OR home_watch.next_due_at <= excluded.updated_at
                              OR excluded.next_due_at < home_watch.next_due_at
                         THEN excluded.next_due_at ELSE home_watch.next_due_at END,
                     updated_at = excluded.updated_at",
                Params::new(self.backend()).rows(size, 4)
            )));
            for (elder_id, state, due) in chunk {
                query = query.bind(*elder_id).bind(state.as_str()).bind(*due).bind(now);
            }
            query.execute(&mut *self.transaction).await?;
        }
        Ok(())
    }
}

impl Store {
    /// Up to `limit` homes whose deadline has passed by `now`, the most
    /// overdue first: `(elder_id, due)`.
    pub async fn due_homes(&self, now: i64, limit: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT elder_id, next_due_at FROM home_watch WHERE next_due_at <= $1 ORDER BY next_due_at, elder_id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok((row.try_get("elder_id")?, row.try_get("next_due_at")?))).collect()
    }

    /// The earliest home deadline or alert reminder, if any.
    pub async fn next_deadline(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT MIN(next_due_at) FROM home_watch) AS home, (SELECT MIN(next_reminder_at) FROM alerts) AS reminder",
        )
        .fetch_one(&self.pool)
        .await?;
        let home: Option<i64> = row.try_get("home")?;
        let reminder: Option<i64> = row.try_get("reminder")?;
        Ok(match (home, reminder) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }
}
