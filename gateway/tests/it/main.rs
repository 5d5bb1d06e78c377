//! The gateway against real things: SQLite files, a real PostgreSQL, real
//! MQTT brokers (Mosquitto, and the embedded one).

mod alerts;
mod console;
mod ingest;
mod ledger;
mod store;
mod users;
mod visits;

use anxin_gateway::store::{Database, Store};
use anxin_testkit::{PostgresDatabase, private_folder};

#[derive(Debug, Clone, Copy)]
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
