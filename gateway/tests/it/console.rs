//! What the console asks of the store, on both databases: sessions and
//! their timeouts, password changes, an elder's record edited with the
//! citizen ID and certificate kept whole, hourly activity summed over the
//! devices, the devices and visitors of an elder, the current absence.

use anxin_domain::access::Role;
use anxin_domain::registry::{CitizenId, NewElder};
use anxin_gateway::ingest::check;
use anxin_store::{SessionLimits, SessionPlace, Store};

use crate::{Backend, fresh_store, on_both_backends};

on_both_backends!(
    sessions_end_at_logout_when_idle_and_at_their_absolute_limit,
    a_phone_s_session_lasts_a_working_week_and_a_revoked_one_is_told_once,
    a_password_change_ends_every_other_session,
    an_elder_record_is_edited_whole_and_the_edit_audited,
    an_elders_activity_is_summed_over_their_devices_hour_by_hour,
);

const T: i64 = 1_780_000_000_000;
use anxin_domain::time::HOUR_MS as HOUR;
const PASSWORD: &str = "a long enough password";

fn elder() -> NewElder {
    NewElder {
        name: "王秀英".into(),
        county: "振兴区".into(),
        township: "站前街道".into(),
        village: "锦山社区".into(),
        address: "锦山大街 12 号".into(),
        citizen_id: Some(CitizenId::parse("210602194503121238").unwrap()),
        disability_cert: Some("21060219450312123842".into()),
        lives_at_registered: false,
        ..NewElder::default()
    }
}

async fn sessions_end_at_logout_when_idle_and_at_their_absolute_limit(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let user = store.add_user("oncall", Role::Admin, &[], PASSWORD, T).await.unwrap();
    let limits = SessionLimits { idle_ms: 10 * 60_000, absolute_ms: 60 * 60_000, ..SessionLimits::default() };
    let id = store.start_session(user.id, limits, T).await.unwrap();
    let session = store.session(&id, limits, T + 1_000).await.unwrap().expect("a live session");
    assert_eq!(session.principal.name, "oncall");
    assert!(session.must_change_password);
    assert!(session.csrf_token.starts_with("anx_") && session.csrf_token != id);
    assert!(store.session("anx_forged", limits, T).await.unwrap().is_none());
    // Kept alive by use, every 9 minutes, until the absolute limit.
    let mut now = T;
    while now + 9 * 60_000 < T + 60 * 60_000 {
        now += 9 * 60_000;
        assert!(store.session(&id, limits, now).await.unwrap().is_some(), "alive at +{} min", (now - T) / 60_000);
    }
    assert!(store.session(&id, limits, T + 60 * 60_000 + 1).await.unwrap().is_none(), "the absolute limit");
    let idle = store.start_session(user.id, limits, T).await.unwrap();
    assert!(store.session(&idle, limits, T + 10 * 60_000 + 1).await.unwrap().is_none(), "idle too long");
    let ended = store.start_session(user.id, limits, T).await.unwrap();
    store.end_session(&ended).await.unwrap();
    assert!(store.session(&ended, limits, T + 1).await.unwrap().is_none(), "logged out");
}

async fn a_password_change_ends_every_other_session(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let user = store.add_user("visitor", Role::Visitor, &[], PASSWORD, T).await.unwrap();
    let limits = SessionLimits::default();
    let here = store.start_session(user.id, limits, T).await.unwrap();
    let elsewhere = store.start_session(user.id, limits, T).await.unwrap();
    assert!(!store.change_password(user.id, "not the password", "a brand new password", &here, T).await.unwrap());
    assert!(store.change_password(user.id, PASSWORD, PASSWORD, &here, T).await.is_err(), "the same password");
    assert!(store.change_password(user.id, PASSWORD, "short", &here, T).await.is_err(), "too short");
    assert!(store.change_password(user.id, PASSWORD, "a brand new password", &here, T).await.unwrap());
    let kept = store.session(&here, limits, T + 1).await.unwrap().expect("this session stays");
    assert!(!kept.must_change_password);
    assert!(store.session(&elsewhere, limits, T + 1).await.unwrap().is_none(), "the other ends");
    assert!(store.authenticate("visitor", "a brand new password").await.unwrap().is_some());
    assert!(store.authenticate("visitor", PASSWORD).await.unwrap().is_none());
}

async fn an_elder_record_is_edited_whole_and_the_edit_audited(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let added = store.add_elder(&elder(), T).await.unwrap();
    assert_eq!(added.citizen_id.as_deref(), Some("210602194503121238"));
    assert!(!added.lives_at_registered);
    let changed = NewElder { address: "六道口 8 号".into(), lives_at_registered: true, ..elder() };
    let edited = store.update_elder(added.id, &changed, "admin", T + 1).await.unwrap();
    assert_eq!((edited.address.as_str(), edited.lives_at_registered), ("六道口 8 号", true));
    assert_eq!(store.elder(added.id).await.unwrap().unwrap(), edited);
    assert!(store.update_elder(added.id + 100, &changed, "admin", T).await.is_err(), "no such elder");
    let audit = store.audit_entries(Some(added.id), 10).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "elder edited" && e.actor == "admin"), "{audit:?}");
    store.add_user("刘", Role::Visitor, &[], PASSWORD, T).await.unwrap();
    store.assign_visitor(added.id, "刘", "admin", T).await.unwrap();
    assert_eq!(store.visitors_of(added.id).await.unwrap(), vec!["刘".to_string()]);
    assert!(store.current_absence(added.id, T).await.unwrap().is_none());
    store.mark_away(added.id, T + 48 * HOUR, "住院", "admin", T).await.unwrap();
    let away = store.current_absence(added.id, T + HOUR).await.unwrap().expect("away now");
    assert_eq!(away.reason, "住院");
    assert!(store.current_absence(added.id, T + 49 * HOUR).await.unwrap().is_none(), "back after");
}

async fn an_elders_activity_is_summed_over_their_devices_hour_by_hour(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let id = store.add_elder(&elder(), T).await.unwrap().id;
    let hour = T - T % HOUR;
    for device in ["bedroom", "kitchen"] {
        store.pair_device(device, id, T).await.unwrap();
        for (seq, (at, motion)) in [(hour + 60_000, 3), (hour + HOUR + 60_000, 4)].into_iter().enumerate() {
            let payload = format!(
                r#"{{"v":1,"boot":1,"seq":{},"up":{},"interval_s":3600,"motion":{motion},"door_opens":1,"temp_dc":205,"battery":80}}"#,
                seq + 1,
                (seq + 1) * 1_000
            );
            crate::commit_batch(&store, &[(check(&format!("anxin/v1/dev/{device}/summary"), payload.as_bytes()), at)])
                .await
                .unwrap();
        }
    }
    let activity = store.elder_activity(id, hour).await.unwrap();
    let seen: Vec<(i64, i64, i64, i64)> =
        activity.iter().map(|a| (a.hour_start, a.summaries, a.motion, a.door_opens)).collect();
    assert_eq!(seen, vec![(hour, 2, 6, 2), (hour + HOUR, 2, 8, 2)]);
    assert_eq!(store.elder_activity(id, hour + HOUR).await.unwrap().len(), 1, "from the given hour on");
    let devices: Vec<String> = store.devices_of(id).await.unwrap().into_iter().map(|d| d.device_id).collect();
    assert_eq!(devices, ["bedroom", "kitchen"]);
}

async fn a_phone_s_session_lasts_a_working_week_and_a_revoked_one_is_told_once(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let user = store.add_user("visitor", Role::Visitor, &[], PASSWORD, T).await.unwrap();
    let limits = SessionLimits::default();
    let phone = SessionPlace { phone: true, device: Some("Android · Chrome".into()) };
    let on_phone = store.start_session_at(user.id, &phone, limits, T).await.unwrap();
    let desk = store.start_session(user.id, limits, T).await.unwrap();
    // Two days without a request: the desk's session is over, the phone's is not.
    let later = T + 2 * 24 * HOUR;
    assert!(store.session(&desk, limits, later).await.unwrap().is_none(), "the desktop's 30 minutes idle");
    assert!(store.session(&on_phone, limits, later).await.unwrap().is_some(), "the phone's week");
    assert!(store.session_live(&on_phone, limits, later).await.unwrap());
    let open = store.sessions_of(user.id, limits, later).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].phone, open[0].device.as_deref()), (true, Some("Android · Chrome")));
    assert_eq!(open[0].handle, Store::session_handle(&on_phone));
    assert_eq!(store.open_sessions(limits, later).await.unwrap().get(&user.id), Some(&1));
    assert!(store.session(&on_phone, limits, T + 7 * 24 * HOUR + 1).await.unwrap().is_none(), "a week at most");

    // Revoked: not live, told once (the console wipes the phone), then gone.
    let again = store.start_session_at(user.id, &phone, limits, later).await.unwrap();
    let handle = Store::session_handle(&again);
    assert!(!store.revoke_session(user.id, "not-a-handle", "admin", later).await.unwrap());
    let other = store.add_user("visitor-2", Role::Visitor, &[], PASSWORD, T).await.unwrap();
    assert!(!store.revoke_session(other.id, &handle, "visitor-2", later).await.unwrap(), "only the user's own");
    assert!(store.revoke_session(user.id, &handle, "admin", later).await.unwrap());
    assert!(store.session(&again, limits, later + 1).await.unwrap().is_none());
    assert!(!store.session_live(&again, limits, later + 1).await.unwrap());
    assert!(store.sessions_of(user.id, limits, later + 1).await.unwrap().is_empty());
    // A new sign-in elsewhere does not clear it before its browser is told.
    store.start_session(user.id, limits, later + 2).await.unwrap();
    assert!(store.session_revoked(&again).await.unwrap());
    store.end_session(&again).await.unwrap();
    assert!(!store.session_revoked(&again).await.unwrap());
    let audit = store.audit_entries(None, 10).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "session revoked" && e.actor == "admin"));
}

/// Issue 19: before a migration changes a SQLite file, a copy of it as it
/// was is kept under the data folder's `backups/` (the way back); a store
/// already at the newest schema is opened without a copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_is_copied_before_a_migration_changes_it() {
    let folder = anxin_testkit::private_folder("premigration");
    let database = anxin_store::Database::in_data_dir(&folder);
    Store::open(&database).await.unwrap().close().await;
    // Taken back to schema 19, as an older Anxin left it.
    let url = format!("sqlite://{}", folder.join("anxin.sqlite3").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    for statement in [
        "DROP TABLE device_boots",
        "ALTER TABLE messages DROP COLUMN at",
        "DROP INDEX alert_events_position",
        "ALTER TABLE alert_events DROP COLUMN seq",
        "DROP INDEX activity_hourly_hour",
        "DROP INDEX alerts_resolved_at",
        "DROP INDEX visits_visited_at",
        "ALTER TABLE elders DROP COLUMN anonymised_at",
        "DROP TABLE visit_evidence",
        "DROP TABLE home_locations",
        "ALTER TABLE sessions DROP COLUMN device",
        "ALTER TABLE sessions DROP COLUMN phone",
        "ALTER TABLE sessions DROP COLUMN revoked_at",
        "ALTER TABLE sessions DROP COLUMN revoked_by",
        "DELETE FROM _sqlx_migrations WHERE version >= 20",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let copies = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(folder.join("backups"))
            .map_or_else(|_| Vec::new(), |d| d.filter_map(Result::ok).map(|e| e.path()).collect())
    };
    assert!(copies().is_empty());

    let store = Store::open(&database).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), anxin_store::newest_schema());
    store.close().await;
    let taken = copies();
    assert_eq!(taken.len(), 1, "{taken:?}");
    let name = taken[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(name.starts_with(&format!("before-schema-{}-from-19-", anxin_store::newest_schema())), "{name}");
    assert_eq!(anxin_store::check_backup(&taken[0]).await.unwrap().schema_version, 19, "the copy is as it was");
    Store::open(&database).await.unwrap().close().await;
    assert_eq!(copies().len(), 1, "no copy when nothing is migrated");
    let _ = std::fs::remove_dir_all(folder);
}
