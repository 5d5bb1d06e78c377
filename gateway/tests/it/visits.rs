//! Visits with the record form's part 5, referrals, care services and the
//! monthly visit rate, on both databases.

use anxin_domain::alerts::rules::day_start;
use anxin_domain::registry::NewElder;
use anxin_domain::visits::{
    Assessment, Change, Month, NewVisit, RateFigures, RegionLevel, Safety, Satisfaction, Service, VisitMode, VisitRate,
};
use anxin_gateway::ingest::check;
use anxin_store::Store;

use crate::{Backend, fresh_store, on_both_backends};

on_both_backends!(
    the_visit_rate_of_a_month_mixes_home_phone_and_remote_visits,
    a_visit_keeps_its_judgements_and_its_referral_is_tracked_to_done,
);

use anxin_domain::time::HOUR_MS as HOUR;

fn elder(name: &str, township: &str) -> NewElder {
    NewElder {
        name: name.into(),
        county: "振兴区".into(),
        township: township.into(),
        village: "一村".into(),
        address: "1 号".into(),
        ..NewElder::default()
    }
}

fn day(text: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

async fn visit(store: &Store, elder_id: i64, on: &str, mode: VisitMode) {
    let new = NewVisit {
        elder_id,
        day: day(on),
        mode,
        visitor: "李探访".into(),
        assessment: Assessment::default(),
        needs: None,
        suggestions: None,
    };
    store.record_visit(&new.check(day("2026-07-01")).unwrap(), "visitor-li", 0).await.unwrap();
}

/// A day of normal life in `device`'s home, closed by the engine into a
/// remote check-in.
async fn lively_day(store: &Store, device: &str, elder_id: i64, midnight: i64) {
    store.pair_device(device, elder_id, midnight).await.unwrap();
    let mut at = midnight;
    let mut seq = 1;
    while at < midnight + 24 * HOUR {
        let awake = (7..21).contains(&((at - midnight) / HOUR));
        let payload = format!(
            r#"{{"v":1,"boot":5,"seq":{seq},"up":{},"interval_s":300,"motion":{},"door_opens":0,"temp_dc":205,"battery":80}}"#,
            seq * 300_000,
            if awake { 4 } else { 0 }
        );
        let message = check(&format!("anxin/v1/dev/{device}/summary"), payload.as_bytes());
        crate::commit_batch(store, &[(message, at)]).await.unwrap();
        seq += 1;
        at += 5 * 60_000;
    }
    crate::tick_due_homes(store, midnight + 25 * HOUR).await.unwrap();
}

async fn the_visit_rate_of_a_month_mixes_home_phone_and_remote_visits(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let policy = Default::default();
    // 2026-05-27 is day 20_600; May begins 26 days before it.
    let may_first = day_start(20_600 - 26, &policy);
    let june_first = day_start(20_600 + 5, &policy);
    let mut ids = Vec::new();
    for (name, township) in [
        ("甲", "站前街道"),
        ("乙", "站前街道"),
        ("丙", "站前街道"),
        ("丁", "汤池镇"),
        ("戊", "汤池镇"),
        ("己", "汤池镇"),
    ] {
        ids.push(store.add_elder(&elder(name, township), may_first).await.unwrap().id);
    }
    // Registered in June: not in May's figures.
    store.add_elder(&elder("庚", "汤池镇"), june_first + HOUR).await.unwrap();
    visit(&store, ids[0], "2026-05-10", VisitMode::Home).await;
    visit(&store, ids[0], "2026-05-11", VisitMode::Phone).await;
    visit(&store, ids[1], "2026-05-20", VisitMode::Phone).await;
    lively_day(&store, "bing-node", ids[2], day_start(20_600, &policy)).await;
    visit(&store, ids[3], "2026-04-30", VisitMode::Home).await;
    visit(&store, ids[4], "2026-05-31", VisitMode::Video).await;

    let may = store.elder_months("2026-05-01", "2026-05-31", june_first).await.unwrap();
    assert_eq!(may.len(), 6);
    // By hand: 站前街道 甲 (home, phone), 乙 (phone), 丙 (remote) = 3 of 3;
    // 汤池镇 丁 (April only), 戊 (video on the 31st), 己 (none) = 1 of 3.
    let may_day = chrono::NaiveDate::from_ymd_opt(2026, 5, 31).unwrap();
    let may_rate = VisitRate::of(Month::parse("2026-05").unwrap(), may_day, may.clone(), None);
    assert_eq!(
        may_rate.by(RegionLevel::Township),
        vec![
            ("振兴区/汤池镇".to_string(), RateFigures { registered: 3, visited: 1 }),
            ("振兴区/站前街道".to_string(), RateFigures { registered: 3, visited: 3 }),
        ]
    );
    let county = may_rate.total.clone();
    assert_eq!(county, RateFigures { registered: 6, visited: 4 });
    assert_eq!(may_rate.days_left, 1, "the 31st is the last day");
    assert_eq!(county.percent(), "66.6%");
    let unvisited: Vec<&str> = may_rate.unvisited().map(|e| e.name.as_str()).collect();
    assert_eq!(unvisited, vec!["丁", "己"]);
    let bing = may.iter().find(|e| e.name == "丙").unwrap();
    assert_eq!((bing.visits, bing.last_visit.as_deref()), (1, Some("2026-05-27")));
    assert_eq!(may.iter().find(|e| e.name == "甲").unwrap().visits, 2);

    // June counts the elder registered in June, and nobody is visited yet.
    let july_first = day_start(20_600 + 35, &policy);
    let june = store.elder_months("2026-06-01", "2026-06-30", july_first).await.unwrap();
    let june_rate = VisitRate::of(Month::parse("2026-06").unwrap(), may_day, june, None);
    assert_eq!(june_rate.total, RateFigures { registered: 7, visited: 0 });
    assert_eq!(june_rate.days_left, 30, "the whole month before it begins");
    let one_township = anxin_domain::access::Region::parse("振兴区/汤池镇").unwrap();
    let may_there = VisitRate::of(Month::parse("2026-05").unwrap(), may_day, may.clone(), Some(&one_township));
    assert_eq!(may_there.total, RateFigures { registered: 3, visited: 1 }, "a region narrows the rate");
    // The last person-to-person contact ignores remote check-ins.
    let contacts = store.last_contacts("2026-05-31").await.unwrap();
    assert_eq!(contacts.get(&ids[0]).map(String::as_str), Some("2026-05-11"));
    assert!(!contacts.contains_key(&ids[2]));
}

async fn a_visit_keeps_its_judgements_and_its_referral_is_tracked_to_done(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let elder_id = store.add_elder(&elder("王秀英", "站前街道"), 0).await.unwrap().id;
    let other = store.add_elder(&elder("李桂兰", "站前街道"), 0).await.unwrap().id;
    let assessment = Assessment {
        mobility: Some(Change::Worse),
        gas: Some(Safety::Unsafe),
        electricity: Some(Safety::FairlySafe),
        ..Assessment::default()
    };
    let new = NewVisit {
        elder_id,
        day: day("2026-11-20"),
        mode: VisitMode::Home,
        visitor: "李探访".into(),
        assessment: assessment.clone(),
        needs: Some("需要扶手".into()),
        suggestions: Some("安装燃气报警器".into()),
    };
    let recorded = store.record_visit(&new.check(day("2026-11-29")).unwrap(), "visitor-li", 5).await.unwrap();
    let stored = store.visits(elder_id).await.unwrap();
    assert_eq!(stored, vec![recorded.clone()]);
    assert_eq!(stored[0].assessment.as_ref(), Some(&assessment));
    assert!(stored[0].assessment.as_ref().unwrap().finds_a_problem());
    assert_eq!(stored[0].recorded_by.as_deref(), Some("visitor-li"));
    assert_eq!(stored[0].needs.as_deref(), Some("需要扶手"));

    // A referral must name a visit of the same elder.
    assert!(store.raise_referral(other, Some(recorded.id), Service::Care, "x", "li", 6).await.is_err());
    assert!(store.raise_referral(elder_id, None, Service::Care, "  ", "li", 6).await.is_err());
    let referral = store
        .raise_referral(elder_id, Some(recorded.id), Service::HomeAdaptation, "卫生间扶手", "visitor-li", 6)
        .await
        .unwrap();
    assert_eq!(store.open_referrals().await.unwrap(), vec![referral.clone()]);
    let done = store.complete_referral(referral.id, "已安装", "admin", 7).await.unwrap();
    assert_eq!(
        (done.done_at, done.done_by.as_deref(), done.outcome.as_deref()),
        (Some(7), Some("admin"), Some("已安装"))
    );
    assert!(store.complete_referral(referral.id, "again", "admin", 8).await.is_err(), "done once");
    assert!(store.open_referrals().await.unwrap().is_empty());
    assert_eq!(store.referrals(elder_id).await.unwrap(), vec![done]);

    let service = store
        .record_care_service(
            elder_id,
            day("2026-11-25"),
            day("2026-11-29"),
            "上门助浴",
            "张护理",
            Some(Satisfaction::Satisfied),
            "admin",
            9,
        )
        .await
        .unwrap();
    assert_eq!(store.care_services(elder_id).await.unwrap(), vec![service]);
    assert!(
        store
            .record_care_service(elder_id, day("2026-12-01"), day("2026-11-29"), "x", "y", None, "admin", 9)
            .await
            .is_err(),
        "no services in the future"
    );
    let audit: Vec<String> =
        store.audit_entries(Some(elder_id), 50).await.unwrap().into_iter().map(|entry| entry.action).collect();
    for action in ["visit recorded", "referral raised", "referral done", "care service recorded"] {
        assert!(audit.iter().any(|a| a == action), "{action} in {audit:?}");
    }
}
