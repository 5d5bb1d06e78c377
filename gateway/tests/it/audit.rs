//! The audit log's chain: appended only, pruned only by checkpoint after
//! the retention, and `verify` finds an entry changed or removed behind the
//! database's back.

use sqlx::Connection;

use crate::{Backend, DatabaseGuard, fresh_store, on_both_backends};

on_both_backends!(the_audit_log_is_a_chain_that_refuses_changes_and_verify_finds_one_made_anyway);

/// A connection of its own, as someone at the database's console would have.
async fn console_of(guard: &DatabaseGuard) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    let url = match guard {
        DatabaseGuard::Folder(folder) => format!("sqlite://{}", folder.join("anxin.sqlite3").display()),
        DatabaseGuard::Postgres(database) => database.url.clone(),
    };
    sqlx::AnyConnection::connect(&url).await.unwrap()
}

async fn the_audit_log_is_a_chain_that_refuses_changes_and_verify_finds_one_made_anyway(backend: Backend) {
    let (store, guard) = fresh_store(backend).await;
    let now = anxin_store::now_ms();
    // Three entries from long ago (past the retention), three from today.
    let long_ago = now - 400 * 24 * 3_600_000;
    for (i, at) in [long_ago, long_ago + 1, long_ago + 2, now - 3, now - 2, now - 1].into_iter().enumerate() {
        store.audit(at, "admin", "elder page read", Some(i64::try_from(i).unwrap() + 1), None).await.unwrap();
    }
    let verdict = store.verify_audit_log().await.unwrap();
    assert_eq!((verdict.entries, verdict.broken), (6, None));
    let (head, hash) = verdict.head.clone().expect("the head of a chain that holds");
    assert_eq!(hash.len(), 64);
    let ids: Vec<i64> = store.audit_entries(None, 10).await.unwrap().iter().rev().map(|entry| entry.id).collect();
    assert_eq!(head, ids[5], "the newest entry");

    // The database refuses a change and a removal outside pruning.
    let mut console = console_of(&guard).await;
    let edit = format!("UPDATE audit_log SET detail = 'nothing to see' WHERE id = {}", ids[4]);
    let refused = sqlx::raw_sql(sqlx::AssertSqlSafe(edit.clone())).execute(&mut console).await.unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    let forged = "INSERT INTO audit_log (at, actor, action) VALUES (0, 'admin', 'nothing happened')";
    let refused = sqlx::raw_sql(forged).execute(&mut console).await.unwrap_err();
    assert!(refused.to_string().contains("chain"), "{refused}");
    let remove = format!("DELETE FROM audit_log WHERE id = {}", ids[0]);
    let refused = sqlx::raw_sql(sqlx::AssertSqlSafe(remove)).execute(&mut console).await.unwrap_err();
    assert!(refused.to_string().contains("append-only"), "not without a checkpoint: {refused}");

    // Pruning keeps everything younger than 180 days and leaves a checkpoint.
    assert!(store.prune_audit_log(now - 10 * 24 * 3_600_000, now).await.is_err(), "180 days at least");
    assert_eq!(store.prune_audit_log(now - 200 * 24 * 3_600_000, now).await.unwrap(), 3);
    let verdict = store.verify_audit_log().await.unwrap();
    assert_eq!(verdict.from_checkpoint, Some(ids[2]));
    assert_eq!((verdict.entries, verdict.broken), (4, None), "three kept and the pruning's own entry");

    // Someone with the database's keys switches the guard off and edits an entry.
    let off = match backend {
        Backend::Sqlite => "DROP TRIGGER audit_log_sealed",
        Backend::Postgres => "ALTER TABLE audit_log DISABLE TRIGGER audit_log_guard",
    };
    sqlx::raw_sql(off).execute(&mut console).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(edit)).execute(&mut console).await.unwrap();
    let verdict = store.verify_audit_log().await.unwrap();
    let (at, why) = verdict.broken.expect("the edit is found");
    assert_eq!(at, ids[4]);
    assert!(why.contains("changed"), "{why}");
    console.close().await.unwrap();
}
