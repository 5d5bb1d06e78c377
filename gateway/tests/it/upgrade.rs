//! Issue 19: upgrades that keep data. A programme's data as schema
//! 0001–0005 held it (`fixtures/schema-0005.sql`, loaded onto those
//! migrations only) is migrated by this build, and everything reads back
//! through the store: elders with their ledger details and household,
//! devices, messages, the handled alarm, visits with their judgements,
//! referrals and care services, users who can still sign in, assignments,
//! and an audit log whose chain holds.

use std::borrow::Cow;

use anxin_store::{AlertFilter, Database, Store};
use anxin_testkit::{PostgresDatabase, private_folder};

use crate::{Backend, on_both_backends};

on_both_backends!(data_kept_by_schema_0005_reads_back_after_every_migration_since,);

const FIXTURE: &str = include_str!("fixtures/schema-0005.sql");
const PASSWORD: &str = "hhVxRLCA4vJtwtTPL7vv";

/// The migrations of the first five schemas only.
fn first_five(mut migrator: sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    migrator.migrations = Cow::Owned(migrator.migrations.iter().filter(|m| m.version <= 5).cloned().collect());
    migrator
}

/// The fixture loaded onto migrations 0001–0005 in a fresh database (a
/// SQLite file in `folder`, or a PostgreSQL database kept by the guard).
pub async fn old_database(backend: Backend, folder: &std::path::Path) -> (Database, Option<PostgresDatabase>) {
    let postgres = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(PostgresDatabase::create().await),
    };
    let database = match &postgres {
        None => Database::in_data_dir(folder),
        Some(db) => Database::Postgres(db.url.clone()),
    };
    match &database {
        Database::Sqlite(path) => {
            let url = format!("sqlite://{}?mode=rwc", path.display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            first_five(sqlx::migrate!("../migrations/sqlite")).run(&pool).await.unwrap();
            sqlx::raw_sql(FIXTURE).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Database::Postgres(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            first_five(sqlx::migrate!("../migrations/postgres")).run(&pool).await.unwrap();
            sqlx::raw_sql(FIXTURE).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
    (database, postgres)
}

async fn data_kept_by_schema_0005_reads_back_after_every_migration_since(backend: Backend) {
    let folder = private_folder("upgrade");
    let (database, _postgres) = old_database(backend, &folder).await;

    // This build migrates it.
    let store = Store::open(&database).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), anxin_store::newest_schema());

    let wang = store.elder(1).await.unwrap().expect("王秀英");
    assert_eq!((wang.name.as_str(), wang.citizen_id.as_deref()), ("王秀英", Some("210602194503121238")));
    assert_eq!(wang.emergency_contact.as_deref(), Some("王志强"));
    let li = store.elder(2).await.unwrap().expect("李桂兰");
    assert_eq!(li.disability_cert.as_deref(), Some("21060319500101456442"));
    let details = store.elder_details(1).await.unwrap().expect("the ledger's details");
    assert_eq!(details.living.monthly_income_fen, Some(98_000));
    assert_eq!(details.members.len(), 2);
    assert_eq!(details.members[1].name, "王志强");
    assert_eq!(details.help.person.as_deref(), Some("李主任"));

    let devices = store.devices_of(1).await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!((devices[0].device_id.as_str(), devices[0].battery), ("node-0001", Some(87)));
    let keys = store.message_keys().await.unwrap();
    assert_eq!(keys.len(), 4);
    assert!(keys.contains(&("node-0001".to_string(), 4, 2)));

    let alerts = store.alerts(&AlertFilter::default()).await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!((alerts[0].kind.as_str(), alerts[0].status.as_str()), ("smoke", "resolved"));
    assert_eq!(alerts[0].acknowledged_by.as_deref(), Some("值班员王"));
    assert_eq!(alerts[0].note.as_deref(), Some("厨房烧水冒烟，已处理"));

    let visits = store.visits(1).await.unwrap();
    assert_eq!(visits.len(), 2);
    let home = visits.iter().find(|v| v.mode == "home").unwrap();
    let judged = home.assessment.as_ref().expect("the part-5 judgements read back");
    assert_eq!(serde_json::to_value(judged).unwrap()["gas"], "unsafe");
    assert_eq!(home.needs.as_deref(), Some("燃气软管老化"));
    assert!(!home.late, "a visit of an open month");
    assert!(visits.iter().any(|v| v.mode == "remote" && v.summary.is_some()));
    let referrals = store.referrals(1).await.unwrap();
    assert_eq!((referrals.len(), referrals[0].outcome.as_deref()), (1, Some("已更换")));
    assert_eq!(store.care_services(1).await.unwrap().len(), 1);

    assert!(store.authenticate("admin", PASSWORD).await.unwrap().is_some(), "the old password still signs in");
    let oncall = store.authenticate("值班员王", PASSWORD).await.unwrap().expect("on-call");
    assert_eq!(oncall.regions.len(), 1);
    assert_eq!(store.visitors_of(1).await.unwrap(), vec!["探访员刘".to_string()]);
    let verdict = store.verify_audit_log().await.unwrap();
    assert!(verdict.broken.is_none() && verdict.entries >= 3, "{verdict:?}");
    store.close().await;
    if let Database::Sqlite(_) = database {
        let copies: Vec<_> = std::fs::read_dir(folder.join("backups")).unwrap().filter_map(Result::ok).collect();
        assert_eq!(copies.len(), 1, "copied as it was before migrating");
    }
    let _ = std::fs::remove_dir_all(folder);
}
