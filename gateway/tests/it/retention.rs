//! Issue 19: retention of personal data. The fixture programme (data of
//! April–May 2025, migrated by this build) is aged year by year: each kind
//! of record goes when its time is past, not before, in batches; an elder
//! who left is anonymised once; every run is audited and the chain holds.

use anxin_domain::enrolment::{Exit, ExitReason};
use anxin_domain::evidence::{ElderMark, Evidence, Location, Signature};
use anxin_domain::visits::{Assessment, NewVisit, VisitMode};
use anxin_store::{AlertFilter, Retained, RetentionPolicy, Store};
use anxin_testkit::private_folder;

use crate::{Backend, on_both_backends};

on_both_backends!(each_kind_of_record_goes_when_its_time_is_past_and_a_left_elder_is_anonymised_once,);

/// UTC ms of a date at noon.
fn at(date: &str) -> i64 {
    let day: chrono::NaiveDate = date.parse().unwrap();
    day.and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp_millis()
}

fn beijing() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3_600).unwrap()
}

async fn each_kind_of_record_goes_when_its_time_is_past_and_a_left_elder_is_anonymised_once(backend: Backend) {
    let folder = private_folder("retention");
    let (database, _postgres) = crate::upgrade::old_database(backend, &folder).await;
    let store = Store::open(&database).await.unwrap();
    let policy = RetentionPolicy::default();

    // A home visit to 王秀英 with a photo and the phone's location.
    let new = NewVisit {
        elder_id: 1,
        day: "2025-05-06".parse().unwrap(),
        mode: VisitMode::Home,
        started: chrono::NaiveTime::from_hms_opt(9, 0, 0),
        visitor: "探访员刘".into(),
        assessment: Assessment::default(),
        needs: None,
        suggestions: None,
    }
    .check("2025-05-06".parse().unwrap())
    .unwrap();
    let evidence = Evidence {
        ended: chrono::NaiveTime::from_hms_opt(9, 30, 0),
        elder_signature: Signature::parse("1,2 3,4").unwrap(),
        elder_mark: ElderMark::Signature,
        visitor_signature: Signature::parse("5,6 7,8").unwrap(),
        location: Some(Location { latitude: 40.13, longitude: 124.39, accuracy_m: Some(10.0) }),
        photo: Some(vec![0xFF, 0xD8, 0xFF, 0xD9]),
    }
    .check(new.started)
    .unwrap();
    let (visit, _) =
        store.record_visit_with(&new, &evidence, None, "探访员刘", at("2025-05-06"), beijing()).await.unwrap();
    // 李桂兰 moved away on 10 May 2025.
    let exit = Exit { reason: ExitReason::Moved, on: "2025-05-10".parse().unwrap() };
    store.record_exit(2, exit, "民政局张", at("2025-05-12"), beijing()).await.unwrap();
    assert_eq!(store.message_keys().await.unwrap().len(), 4);

    // 100 days on: the raw messages are past their 90 days (taken two at a
    // time); everything else stays.
    let report = store.apply_retention(&policy, at("2025-08-10"), 2).await.unwrap();
    assert_eq!(report.of(Retained::RawMessages), 4, "{report}");
    assert!(store.message_keys().await.unwrap().is_empty());
    assert_eq!(store.hourly_activity("node-0001").await.unwrap().len(), 1, "hourly activity stays 730 days");
    let kept = store.evidence_of(1).await.unwrap();
    assert!(kept[&visit.id].location.is_some() && kept[&visit.id].has_photo, "the photo stays a year");
    for kind in [Retained::HourlyActivity, Retained::AuditLog, Retained::VisitEvidence, Retained::LeftElders] {
        assert_eq!(report.of(kind), 0, "{kind:?} before its time: {report}");
    }

    // A year and a month on: the photo and location go, the record and its
    // signatures stay.
    let report = store.apply_retention(&policy, at("2026-06-10"), 2).await.unwrap();
    assert_eq!(report.of(Retained::VisitEvidence), 1, "{report}");
    let kept = &store.evidence_of(1).await.unwrap()[&visit.id];
    assert!(kept.location.is_none() && !kept.has_photo, "{kept:?}");
    assert!(kept.elder_signature.is_some() && kept.visitor_signature.is_some());
    assert_eq!(store.visit_photo(visit.id).await.unwrap(), None);
    assert_eq!(report.of(Retained::AuditLog), 5, "the audit log's first year is pruned: {report}");
    assert!(report.failed.is_empty(), "{report}");
    // From here the test's clock runs ahead of the real one, which the
    // database's guard on the audit log (180 days by the real clock) holds
    // to: the audit log is kept.
    let policy = RetentionPolicy { audit_days: 0, ..policy };

    // Three years and a month after leaving: 李桂兰 is anonymised, once;
    // 王秀英 is untouched; hourly activity is past its two years.
    let li_before = store.elder(2).await.unwrap().unwrap();
    assert_eq!(li_before.name, "李桂兰");
    let report = store.apply_retention(&policy, at("2028-06-11"), 2).await.unwrap();
    assert_eq!(report.of(Retained::LeftElders), 1, "{report}");
    assert_eq!(report.of(Retained::HourlyActivity), 1, "{report}");
    let li = store.elder(2).await.unwrap().unwrap();
    assert_eq!(li.name, "已匿名");
    assert_eq!((li.citizen_id, li.disability_cert, li.phone), (None, None, None));
    assert_eq!((li.county.as_str(), li.left_on.is_some()), (li_before.county.as_str(), true), "region and exit stay");
    let wang = store.elder(1).await.unwrap().unwrap();
    assert_eq!((wang.name.as_str(), wang.citizen_id.as_deref()), ("王秀英", Some("210602194503121238")));
    let again = store.apply_retention(&policy, at("2028-06-12"), 2).await.unwrap();
    assert_eq!(again.of(Retained::LeftElders), 0, "anonymised once");

    // Five years on: visits and handled alerts go — but the visit a
    // referral names stays with it.
    let report = store.apply_retention(&policy, at("2030-06-12"), 2).await.unwrap();
    assert_eq!((report.of(Retained::Visits), report.of(Retained::Alerts)), (2, 1), "{report}");
    let visits = store.visits(1).await.unwrap();
    assert_eq!(visits.len(), 1, "{visits:?}");
    assert_eq!(store.referrals(1).await.unwrap()[0].visit_id, Some(visits[0].id));
    assert!(store.alerts(&AlertFilter::default()).await.unwrap().is_empty());

    // Every run that removed something is in the audit log, whose chain holds.
    let entries = store.audit_entries(None, 500).await.unwrap();
    let applied: Vec<_> = entries.iter().filter(|e| e.action == "retention applied").collect();
    assert!(applied.iter().any(|e| e.detail.as_deref() == Some("4 raw_messages deleted (before 2025-05-12)")));
    assert!(
        applied.iter().any(|e| e.detail.as_deref().is_some_and(|d| d.starts_with("1 left_elders elders anonymised")))
    );
    assert!(entries.iter().any(|e| e.action == "elder anonymised" && e.elder_id == Some(2)));
    let verdict = store.verify_audit_log().await.unwrap();
    assert!(verdict.broken.is_none(), "{verdict:?}");

    // The audit log is kept at least 180 days, whatever a policy says; and
    // the guard holds to the real clock: a run whose clock is ahead of it
    // cannot prune, says so, and the other kinds go on.
    let short = RetentionPolicy { audit_days: 30, ..policy };
    assert!(store.apply_retention(&short, at("2030-06-12"), 2).await.is_err());
    let ahead = RetentionPolicy { audit_days: 365, ..policy };
    let report = store.apply_retention(&ahead, at("2030-06-13"), 2).await.unwrap();
    assert_eq!(report.failed.len(), 1, "{report}");
    assert_eq!(report.failed[0].0, Retained::AuditLog);
    assert!(report.removed.iter().any(|(kind, ..)| *kind == Retained::LeftElders), "the kinds after it ran: {report}");
    store.close().await;
    let _ = std::fs::remove_dir_all(folder);
}
