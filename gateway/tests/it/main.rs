//! The gateway against real things: SQLite files, a real PostgreSQL, real
//! MQTT brokers (Mosquitto, and the embedded one).

mod alerts;
mod audit;
mod console;
mod ingest;
mod ledger;
mod log;
mod partitions;
mod responders;
mod retention;
mod store;
mod upgrade;
mod users;
mod visits;

use anxin_domain::alerts::policy::AlertPolicy;
use anxin_gateway::ingest::{BatchOutcome, Checked};
use anxin_store::{Database, Store, StoreError};
use anxin_testkit::{PostgresDatabase, private_folder};

/// One batch through the ingest pipeline, with the default thresholds.
pub async fn commit_batch(store: &Store, batch: &[(Checked, i64)]) -> Result<BatchOutcome, StoreError> {
    anxin_gateway::ingest::commit_batch(store, &AlertPolicy::default(), batch).await
}

/// The timer loop's look at overdue homes, with the default thresholds.
pub async fn tick_due_homes(store: &Store, now: i64) -> Result<usize, StoreError> {
    anxin_gateway::alerts::timers::tick_due_homes(store, &AlertPolicy::default(), now).await
}

/// The timer loop's escalation of unacknowledged critical alerts.
pub async fn escalate_due_alerts(store: &Store, now: i64) -> Result<Vec<i64>, StoreError> {
    anxin_gateway::alerts::timers::escalate_due_alerts(store, &AlertPolicy::default(), now).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Keeps a test database alive.
#[allow(dead_code, reason = "held for its Drop")]
#[derive(Debug)]
pub enum DatabaseGuard {
    Folder(std::path::PathBuf),
    Postgres(PostgresDatabase),
}

impl Drop for DatabaseGuard {
    fn drop(&mut self) {
        if let DatabaseGuard::Folder(folder) = self {
            let _ = std::fs::remove_dir_all(folder);
        }
    }
}

/// A fresh, migrated store on `backend`.
pub async fn fresh_store(backend: Backend) -> (Store, DatabaseGuard) {
    match backend {
        Backend::Sqlite => {
            let folder = private_folder("sqlite");
            let store = Store::open(&Database::in_data_dir(&folder)).await.expect("open SQLite");
            (store, DatabaseGuard::Folder(folder))
        }
        Backend::Postgres => {
            let database = PostgresDatabase::create().await;
            let store = Store::open(&Database::Postgres(database.url.clone())).await.expect("open PostgreSQL");
            (store, DatabaseGuard::Postgres(database))
        }
    }
}

/// A second handle on the same database: a restarted process, or another gateway.
pub async fn reopen(guard: &DatabaseGuard) -> Store {
    match guard {
        DatabaseGuard::Folder(folder) => Store::open(&Database::in_data_dir(folder)).await.expect("reopen SQLite"),
        DatabaseGuard::Postgres(database) => {
            Store::open(&Database::Postgres(database.url.clone())).await.expect("reopen PostgreSQL")
        }
    }
}

/// Declares each listed `async fn name(backend: Backend)` as two tests,
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::Postgres).await })*
        }
    };
}
