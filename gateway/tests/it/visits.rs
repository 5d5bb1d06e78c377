//! Visits with the record form's part 5, referrals, care services and the
//! monthly visit rate, on both databases.

use anxin_domain::alerts::rules::day_start;
use anxin_domain::alerts::{AlertKind, AlertStatus, Outcome};
use anxin_domain::enrolment::{Exit, ExitReason};
use anxin_domain::registry::NewElder;
use anxin_domain::visits::{
    Assessment, Change, Month, NewVisit, RateFigures, RegionLevel, Safety, Satisfaction, Service, VisitMode, VisitRate,
};
use anxin_gateway::ingest::check;
use anxin_store::{ExitEffects, Store};

use crate::{Backend, fresh_store, on_both_backends};

on_both_backends!(
    the_visit_rate_of_a_month_mixes_home_phone_and_remote_visits,
    a_visit_keeps_its_judgements_and_its_referral_is_tracked_to_done,
    a_month_counts_who_was_enrolled_and_an_exit_only_when_visited_before_it,
    an_exit_releases_the_devices_and_ends_the_homes_alerts,
    a_closed_month_keeps_its_figure_and_a_late_visit_counts_only_once_reopened,
    a_home_visit_is_corroborated_by_a_day_of_the_home_s_own_sensor_messages,
    a_spot_check_draws_the_same_sample_from_its_seed_and_flags_a_visit_not_confirmed,
    a_visit_sent_again_with_its_client_id_is_recorded_once,
    a_visit_s_evidence_is_kept_beside_it_and_the_home_s_location_with_it,
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
        started: (mode == VisitMode::Home).then(|| chrono::NaiveTime::from_hms_opt(10, 0, 0).unwrap()),
        visitor: "李探访".into(),
        assessment: Assessment::default(),
        needs: None,
        suggestions: None,
    };
    store.record_visit(&new.check(day("2026-07-01")).unwrap(), "visitor-li", 0, beijing()).await.unwrap();
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
        started: chrono::NaiveTime::from_hms_opt(9, 0, 0),
        visitor: "李探访".into(),
        assessment: assessment.clone(),
        needs: Some("需要扶手".into()),
        suggestions: Some("安装燃气报警器".into()),
    };
    let recorded =
        store.record_visit(&new.check(day("2026-11-29")).unwrap(), "visitor-li", 5, beijing()).await.unwrap();
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

/// Epoch ms of 2026-05-`n` 10:00 local (n may run past the month's end).
fn may(n: i64) -> i64 {
    day_start(20_573 + n, &Default::default()) + 10 * HOUR
}

async fn leave(store: &Store, elder_id: i64, on: &str, reason: ExitReason, now: i64) -> ExitEffects {
    let exit = Exit { reason, on: day(on) };
    store.record_exit(elder_id, exit, "official-wang", now, beijing()).await.unwrap()
}

fn beijing() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3_600).unwrap()
}

async fn a_month_counts_who_was_enrolled_and_an_exit_only_when_visited_before_it(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let april = may(-30);
    let mut ids = std::collections::HashMap::new();
    for name in ["甲", "乙", "丙", "丁", "戊", "己"] {
        ids.insert(name, store.add_elder(&elder(name, "站前街道"), april).await.unwrap().id);
    }
    // 庚 moved in on May 20th.
    ids.insert("庚", store.add_elder(&elder("庚", "站前街道"), may(20)).await.unwrap().id);
    // 甲 was visited on the 10th and died on the 14th: counted, visited.
    visit(&store, ids["甲"], "2026-05-10", VisitMode::Home).await;
    leave(&store, ids["甲"], "2026-05-14", ExitReason::Died, may(15)).await;
    // 乙 entered an institution on the 5th before anyone came: not counted.
    leave(&store, ids["乙"], "2026-05-05", ExitReason::Institution, may(6)).await;
    // 丙 was phoned on the 20th; the move, recorded on the 25th, took effect
    // on the 14th: the call came after the exit and does not count.
    visit(&store, ids["丙"], "2026-05-20", VisitMode::Phone).await;
    leave(&store, ids["丙"], "2026-05-14", ExitReason::Moved, may(25)).await;
    // 丁 left in April and re-entered on May 25th, visited on the 28th.
    leave(&store, ids["丁"], "2026-04-20", ExitReason::Moved, may(-9)).await;
    store.reenter(ids["丁"], day("2026-05-25"), "official-wang", may(25), beijing()).await.unwrap();
    visit(&store, ids["丁"], "2026-05-28", VisitMode::Home).await;
    // 戊 is visited; 己 left in April for good.
    visit(&store, ids["戊"], "2026-05-03", VisitMode::Video).await;
    leave(&store, ids["己"], "2026-04-10", ExitReason::Declined, may(-20)).await;

    let month = Month::parse("2026-05").unwrap();
    let rate = VisitRate::of(month, day("2026-06-01"), store.month_elders(month, beijing()).await.unwrap(), None);
    // By hand: 甲 (visited before dying), 丁 (re-entered, visited), 戊
    // (visited), 庚 (moved in, not visited) = 3 of 4; 乙 and 丙 left unvisited.
    assert_eq!(rate.total, RateFigures { registered: 4, visited: 3 });
    assert_eq!(rate.total.percent(), "75%");
    let unvisited: Vec<&str> = rate.unvisited().map(|e| e.name.as_str()).collect();
    assert_eq!(unvisited, vec!["庚"]);
    let left: Vec<(&str, Option<&str>)> =
        rate.left_unvisited.iter().map(|e| (e.name.as_str(), e.left_on.as_deref())).collect();
    assert_eq!(left, vec![("乙", Some("2026-05-05")), ("丙", Some("2026-05-14"))]);
    // June: those who left in May are gone; 丁, 戊, 庚 remain.
    let june = Month::parse("2026-06").unwrap();
    let rate = VisitRate::of(june, day("2026-06-01"), store.month_elders(june, beijing()).await.unwrap(), None);
    assert_eq!(rate.total, RateFigures { registered: 3, visited: 0 });
    // April: everyone but 庚; 己 left on the 10th unvisited.
    let april_month = Month::parse("2026-04").unwrap();
    let rate =
        VisitRate::of(april_month, day("2026-06-01"), store.month_elders(april_month, beijing()).await.unwrap(), None);
    assert_eq!(rate.total, RateFigures { registered: 4, visited: 0 }, "丁 and 己 left unvisited in April");
    // The exits of May, for the export.
    let exits = store.exits("2026-05-01", "2026-05-31").await.unwrap();
    let reasons: Vec<(&str, &str)> = exits.iter().map(|e| (e.name.as_str(), e.exit_reason.as_str())).collect();
    assert_eq!(reasons, vec![("乙", "institution"), ("甲", "died"), ("丙", "moved")]);
    // Nothing can be recorded for a day after the exit, nor a second exit.
    let late = NewVisit {
        elder_id: ids["甲"],
        day: day("2026-05-20"),
        mode: VisitMode::Home,
        started: chrono::NaiveTime::from_hms_opt(9, 0, 0),
        visitor: "李探访".into(),
        assessment: Assessment::default(),
        needs: None,
        suggestions: None,
    };
    let refused = store.record_visit(&late, "visitor-li", may(21), beijing()).await.unwrap_err();
    assert!(refused.to_string().contains("left the programme on 2026-05-14"), "{refused}");
    let again = Exit { reason: ExitReason::Moved, on: day("2026-05-20") };
    let refused = store.record_exit(ids["甲"], again, "official-wang", may(21), beijing()).await.unwrap_err();
    assert!(refused.to_string().contains("already left"), "{refused}");
    let refused = store.reenter(ids["戊"], day("2026-05-20"), "official-wang", may(21), beijing()).await.unwrap_err();
    assert!(refused.to_string().contains("only an elder who left"), "{refused}");
    // History stays: 丁 has two periods, the first closed.
    let periods = store.enrolments(ids["丁"]).await.unwrap();
    assert_eq!(periods.len(), 2);
    assert_eq!(periods[0].exited_on.as_deref(), Some("2026-04-20"));
    assert_eq!(periods[1].exited_on, None);
    assert_eq!(periods[1].enrolled_at, day_start(20_573 + 25, &Default::default()));
}

async fn an_exit_releases_the_devices_and_ends_the_homes_alerts(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let id = store.add_elder(&elder("甲", "站前街道"), may(1)).await.unwrap().id;
    store.pair_device("jia-node", id, may(1)).await.unwrap();
    let help = r#"{"v":1,"boot":5,"seq":1,"up":10,"kind":"help","state":"pressed"}"#;
    crate::commit_batch(&store, &[(check("anxin/v1/dev/jia-node/event", help.as_bytes()), may(2))]).await.unwrap();
    let open = store.alerts(&anxin_store::AlertFilter { limit: 100, ..Default::default() }).await.unwrap();
    assert!(open.iter().any(|a| a.kind == AlertKind::Help), "the help button opened an alert: {open:?}");
    let mut open: Vec<i64> = open.iter().map(|a| a.id).collect();
    open.sort_unstable();

    let effects = leave(&store, id, "2026-05-02", ExitReason::Died, may(3)).await;
    assert_eq!(effects.devices_released, vec!["jia-node".to_string()]);
    let mut resolved = effects.alerts_resolved.clone();
    resolved.sort_unstable();
    assert_eq!(resolved, open);
    for id in open {
        let alert = store.alert(id).await.unwrap().unwrap();
        assert_eq!((alert.status, alert.outcome), (AlertStatus::Resolved, Some(Outcome::ElderLeft)));
    }
    assert_eq!(store.device("jia-node").await.unwrap().unwrap().elder_id, None);
    // The device speaks again: nothing reaches the departed elder's home.
    let again = r#"{"v":1,"boot":5,"seq":2,"up":20,"kind":"help","state":"pressed"}"#;
    crate::commit_batch(&store, &[(check("anxin/v1/dev/jia-node/event", again.as_bytes()), may(4))]).await.unwrap();
    crate::tick_due_homes(&store, may(40)).await.unwrap();
    let alerts = store.alerts(&anxin_store::AlertFilter { limit: 100, ..Default::default() }).await.unwrap();
    assert!(alerts.iter().all(|a| a.status == AlertStatus::Resolved), "{alerts:?}");
    assert_eq!(store.due_homes(may(40), 10).await.unwrap(), vec![], "the home is no longer watched");
    let refused = store.pair_device("jia-node", id, may(5)).await.unwrap_err();
    assert!(refused.to_string().contains("has left the programme"), "{refused}");
    let entries = store.audit_entries(Some(id), 10).await.unwrap();
    assert!(entries.iter().any(|e| e.action == "elder left"
        && e.detail.as_deref()
            == Some(
                format!("reason=died on=2026-05-02 devices_released=1 alerts_resolved={}", resolved.len()).as_str()
            )));
}

fn figures(rate: &VisitRate, county: &str) -> RateFigures {
    rate.by(RegionLevel::County).into_iter().find(|(c, _)| c == county).map(|(_, f)| f).unwrap_or_default()
}

async fn may_rate(store: &Store) -> VisitRate {
    let month = Month::parse("2026-05").unwrap();
    VisitRate::of(month, day("2026-06-05"), store.month_elders(month, beijing()).await.unwrap(), None)
}

async fn a_closed_month_keeps_its_figure_and_a_late_visit_counts_only_once_reopened(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let in_county = |name: &str, county: &str| NewElder { county: county.into(), ..elder(name, "站前街道") };
    let jia = store.add_elder(&in_county("甲", "振兴区"), may(-30)).await.unwrap().id;
    let yi = store.add_elder(&in_county("乙", "振兴区"), may(-30)).await.unwrap().id;
    let bing = store.add_elder(&in_county("丙", "元宝区"), may(-30)).await.unwrap().id;
    visit(&store, jia, "2026-05-10", VisitMode::Home).await;
    let may_month = Month::parse("2026-05").unwrap();

    let refused = store.close_month("振兴区", may_month, "official-wang", may(31), beijing()).await.unwrap_err();
    assert!(refused.to_string().contains("has not ended yet"), "{refused}");
    let closing = store.close_month("振兴区", may_month, "official-wang", may(33), beijing()).await.unwrap();
    assert_eq!((closing.closed_by.as_str(), closing.closed_at), ("official-wang", may(33)));
    let twice = store.close_month("振兴区", may_month, "official-wang", may(33), beijing()).await.unwrap_err();
    assert!(twice.to_string().contains("already closed"), "{twice}");
    assert_eq!(figures(&may_rate(&store).await, "振兴区"), RateFigures { registered: 2, visited: 1 });

    // 乙's visit, typed in on June 3rd for May 20th, is 补录: the closed
    // figure stands. 丙's county did not close May: its visit counts at once.
    visit(&store, yi, "2026-05-20", VisitMode::Phone).await;
    visit(&store, bing, "2026-05-25", VisitMode::Home).await;
    let visits = store.visits(yi).await.unwrap();
    assert!(visits[0].late, "marked 补录");
    assert!(!store.visits(bing).await.unwrap()[0].late);
    let rate = may_rate(&store).await;
    assert_eq!(figures(&rate, "振兴区"), RateFigures { registered: 2, visited: 1 }, "the closed figure stands");
    assert_eq!(figures(&rate, "元宝区"), RateFigures { registered: 1, visited: 1 });
    let late = store.late_visits(may_month).await.unwrap();
    assert_eq!(late.len(), 1);
    assert_eq!(
        (late[0].name.as_str(), late[0].day.as_str(), late[0].recorded_by.as_str()),
        ("乙", "2026-05-20", "visitor-li")
    );
    // Even an exit recorded later cannot change the closed month.
    leave(&store, jia, "2026-05-05", ExitReason::Moved, may(34)).await;
    assert_eq!(figures(&may_rate(&store).await, "振兴区"), RateFigures { registered: 2, visited: 1 });

    let reopened = store.reopen_month("振兴区", may_month, "official-wang", may(35)).await.unwrap();
    assert_eq!(reopened.reopened_by.as_deref(), Some("official-wang"));
    // Reopened: 乙's late visit counts; 甲's exit on the 5th came before
    // the visit on the 10th, so 甲 no longer counts.
    assert_eq!(figures(&may_rate(&store).await, "振兴区"), RateFigures { registered: 1, visited: 1 });
    let again = store.reopen_month("振兴区", may_month, "official-wang", may(35)).await.unwrap_err();
    assert!(again.to_string().contains("is not closed"), "{again}");
    let audit = store.audit_entries(None, 50).await.unwrap();
    let said =
        |action: &str| audit.iter().find(|e| e.action == action).and_then(|e| e.detail.clone()).unwrap_or_default();
    assert_eq!(said("month closed"), "county=振兴区 month=2026-05 elders=2 visited=1");
    assert_eq!(said("month reopened"), "county=振兴区 month=2026-05 late_visits=1");
    // Closed again, the month keeps the new figure; the history keeps both.
    store.close_month("振兴区", may_month, "official-li", may(36), beijing()).await.unwrap();
    assert_eq!(figures(&may_rate(&store).await, "振兴区"), RateFigures { registered: 1, visited: 1 });
    assert_eq!(store.month_closings("振兴区").await.unwrap().len(), 2);
}

/// A day in one home, as its node reports it: a summary every 5 minutes,
/// motion while awake (07:00–21:00), the door opened in the five minutes
/// from 10:00 only.
async fn day_with_a_caller(store: &Store, device: &str, elder_id: i64, midnight: i64) {
    store.pair_device(device, elder_id, midnight).await.unwrap();
    let mut batch = Vec::new();
    for seq in 1..=288_i64 {
        let at = midnight + seq * 5 * 60_000;
        let minute = (at - midnight) / 60_000;
        let awake = (7 * 60..21 * 60).contains(&minute);
        let door = i64::from(minute == 10 * 60 + 5);
        let payload = format!(
            r#"{{"v":1,"boot":5,"seq":{seq},"up":{},"interval_s":300,"motion":{},"door_opens":{door},"temp_dc":205,"battery":80}}"#,
            seq * 300_000,
            if awake { 4 } else { 0 }
        );
        batch.push((check(&format!("anxin/v1/dev/{device}/summary"), payload.as_bytes()), at));
    }
    crate::commit_batch(store, &batch).await.unwrap();
}

async fn a_home_visit_is_corroborated_by_a_day_of_the_home_s_own_sensor_messages(backend: Backend) {
    let (store, _guard) = fresh_store(backend).await;
    let sensed = store.add_elder(&elder("甲", "站前街道"), may(-30)).await.unwrap().id;
    let unsensed = store.add_elder(&elder("乙", "汤池镇"), may(-30)).await.unwrap().id;
    // 2026-05-12, a day of the home's own messages.
    day_with_a_caller(&store, "jia-node", sensed, day_start(20_573 + 12, &Default::default())).await;
    let home_visit = |elder_id: i64, at: (u32, u32)| NewVisit {
        elder_id,
        day: day("2026-05-12"),
        mode: VisitMode::Home,
        started: chrono::NaiveTime::from_hms_opt(at.0, at.1, 0),
        visitor: "李探访".into(),
        assessment: Assessment::default(),
        needs: None,
        suggestions: None,
    };
    let record = async |visit: NewVisit| {
        store.record_visit(&visit.check(day("2026-06-01")).unwrap(), "visitor-li", may(13), beijing()).await.unwrap()
    };
    // 10:10: the door opened at 10:05 and someone moved about: corroborated.
    let inside = record(home_visit(sensed, (10, 10))).await;
    assert_eq!(inside.corroboration.as_deref(), Some("corroborated"));
    assert_eq!(inside.started_at, Some(day_start(20_573 + 12, &Default::default()) + 10 * HOUR + 10 * 60_000));
    // 15:30: motion, but no door all afternoon: marked for spot-check.
    let outside = record(home_visit(sensed, (15, 30))).await;
    assert_eq!(outside.corroboration.as_deref(), Some("no_presence"));
    // A home without sensors cannot corroborate anything.
    let blind = record(home_visit(unsensed, (10, 10))).await;
    assert_eq!(blind.corroboration.as_deref(), Some("no_sensors"));
    // A phone call has nothing to corroborate.
    let call = NewVisit { mode: VisitMode::Phone, started: None, ..home_visit(unsensed, (0, 0)) };
    assert_eq!(record(call).await.corroboration, None);

    // The month's mix: by village, mode and corroboration.
    let mix = store.visit_mix("2026-05-01", "2026-05-31").await.unwrap();
    let count = |township: &str, mode: &str, corroborated: bool| {
        mix.iter().filter(|m| m.1 == township && m.3 == mode && m.4 == corroborated).map(|m| m.5).sum::<i64>()
    };
    assert_eq!((count("站前街道", "home", true), count("站前街道", "home", false)), (1, 1));
    assert_eq!((count("汤池镇", "home", false), count("汤池镇", "phone", false)), (1, 1));
    // 乙 had a phone call on the 12th; 甲 two home visits.
    let last = store.last_person_visits("2026-05-31").await.unwrap();
    assert_eq!(
        (last.get(&sensed).map(String::as_str), last.get(&unsensed).map(String::as_str)),
        (Some("2026-05-12"), Some("2026-05-12"))
    );
}

async fn a_spot_check_draws_the_same_sample_from_its_seed_and_flags_a_visit_not_confirmed(backend: Backend) {
    use anxin_domain::visits::SpotCheckResult;
    let (store, _guard) = fresh_store(backend).await;
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(store.add_elder(&elder(&format!("老人{n}"), "站前街道"), may(-30)).await.unwrap().id);
    }
    let other = store.add_elder(&elder("别处", "汤池镇"), may(-30)).await.unwrap().id;
    for (n, id) in ids.iter().enumerate() {
        visit(
            &store,
            *id,
            &format!("2026-05-{:02}", n + 1),
            if n % 2 == 0 { VisitMode::Home } else { VisitMode::Phone },
        )
        .await;
    }
    visit(&store, other, "2026-05-03", VisitMode::Home).await;
    visit(&store, ids[0], "2026-04-30", VisitMode::Home).await;
    let may_month = Month::parse("2026-05").unwrap();
    let pool = store.spot_check_pool("振兴区", "站前街道", may_month).await.unwrap();
    assert_eq!(pool.len(), 12, "the township's visits by a person of May only");

    let first =
        store.draw_spot_check("振兴区", "站前街道", may_month, "abc123", 4, "official-wang", may(33)).await.unwrap();
    let again =
        store.draw_spot_check("振兴区", "站前街道", may_month, "abc123", 4, "official-li", may(34)).await.unwrap();
    let sample = |id| {
        let store = store.clone();
        async move { store.spot_check_items(id).await.unwrap().iter().map(|i| i.visit_id).collect::<Vec<_>>() }
    };
    let drawn = sample(first.id).await;
    assert_eq!(drawn.len(), 4);
    assert_eq!(drawn, sample(again.id).await, "the same seed draws the same visits");
    assert_eq!(drawn, anxin_domain::visits::spot_check_sample("abc123", &pool, 4), "recomputable by anyone");
    let refused = store.draw_spot_check("振兴区", "五龙背镇", may_month, "abc123", 4, "official-wang", may(34)).await;
    assert!(refused.unwrap_err().to_string().contains("has no visit by a person"));

    let flagged = drawn[0];
    let no_note =
        store.record_spot_check(first.id, flagged, SpotCheckResult::NotConfirmed, " ", "official-wang", may(35));
    assert!(no_note.await.unwrap_err().to_string().contains("needs a note"));
    store
        .record_spot_check(
            first.id,
            flagged,
            SpotCheckResult::NotConfirmed,
            "老人说本月没人来过",
            "official-wang",
            may(35),
        )
        .await
        .unwrap();
    store
        .record_spot_check(first.id, drawn[1], SpotCheckResult::Confirmed, "", "official-wang", may(35))
        .await
        .unwrap();
    let outside =
        store.record_spot_check(first.id, pool[0].max(1) + 10_000, SpotCheckResult::Confirmed, "", "x", 0).await;
    assert!(matches!(outside, Err(anxin_store::StoreError::NotFound(_))), "only the sample's visits");
    let record = store.visit(flagged).await.unwrap().unwrap();
    assert_eq!(record.spot_check.as_deref(), Some("not_confirmed"), "flagged on the visit's record");
    let items = store.spot_check_items(first.id).await.unwrap();
    let results: Vec<Option<&str>> = items.iter().map(|i| i.result.as_deref()).collect();
    assert_eq!(results.iter().filter(|r| r.is_some()).count(), 2);
    let audit = store.audit_entries(None, 100).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "spot-check drawn"
        && e.detail.as_deref().is_some_and(|d| d.contains("seed=abc123 size=4 of 12"))));
}

async fn a_visit_sent_again_with_its_client_id_is_recorded_once(backend: Backend) {
    let (store, guard) = fresh_store(backend).await;
    let other_gateway = crate::reopen(&guard).await;
    let elder_id = store.add_elder(&elder("王秀英", "站前街道"), 0).await.unwrap().id;
    let someone_else = store.add_elder(&elder("李桂兰", "站前街道"), 0).await.unwrap().id;
    let new = NewVisit {
        elder_id,
        day: day("2026-06-20"),
        mode: VisitMode::Phone,
        started: None,
        visitor: "李探访".into(),
        assessment: Assessment::default(),
        needs: Some("需要助餐".into()),
        suggestions: None,
    }
    .check(day("2026-07-01"))
    .unwrap();
    let id = Some("phone-7f3a9c01d2e4");
    let (first, new_one) = store.record_visit_once(&new, id, "visitor-li", 1, beijing()).await.unwrap();
    assert!(new_one);
    let (again, new_again) = store.record_visit_once(&new, id, "visitor-li", 2, beijing()).await.unwrap();
    assert_eq!((again.id, new_again), (first.id, false), "sent again: the same visit, nothing new");
    // Sent twice at once through two gateways: one visit.
    let other_id = Some("phone-0b1c2d3e4f50");
    let (one, two) = tokio::join!(
        store.record_visit_once(&new, other_id, "visitor-li", 3, beijing()),
        other_gateway.record_visit_once(&new, other_id, "visitor-li", 3, beijing())
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!(one.0.id, two.0.id);
    assert_eq!(u8::from(one.1) + u8::from(two.1), 1, "one of the two recorded it");
    assert_eq!(store.visits(elder_id).await.unwrap().len(), 2);
    // An id is one visit's: another elder's visit under it is refused.
    let elsewhere = NewVisit { elder_id: someone_else, ..new.clone() };
    assert!(store.record_visit_once(&elsewhere, id, "visitor-li", 4, beijing()).await.is_err());
    assert!(store.visits(someone_else).await.unwrap().is_empty());
}

async fn a_visit_s_evidence_is_kept_beside_it_and_the_home_s_location_with_it(backend: Backend) {
    use anxin_domain::evidence::{ElderMark, Evidence, Location, Signature};
    let (store, _guard) = fresh_store(backend).await;
    let elder_id = store.add_elder(&elder("王秀英", "站前街道"), 0).await.unwrap().id;
    let new = NewVisit {
        elder_id,
        day: day("2026-06-20"),
        mode: VisitMode::Home,
        started: chrono::NaiveTime::from_hms_opt(9, 0, 0),
        visitor: "李探访".into(),
        assessment: Assessment::default(),
        needs: None,
        suggestions: None,
    }
    .check(day("2026-07-01"))
    .unwrap();
    let evidence = Evidence {
        ended: chrono::NaiveTime::from_hms_opt(9, 40, 0),
        elder_signature: Signature::parse("1,2 3,4").unwrap(),
        elder_mark: ElderMark::Thumb,
        visitor_signature: Signature::parse("5,6 7,8;9,10").unwrap(),
        location: Some(Location { latitude: 40.1302, longitude: 124.3945, accuracy_m: Some(15.0) }),
        photo: Some(vec![0xFF, 0xD8, 0xFF, 0xD9]),
    }
    .check(new.started)
    .unwrap();
    let (visit, _) =
        store.record_visit_with(&new, &evidence, Some("phone-evidence-01"), "visitor-li", 1, beijing()).await.unwrap();
    let plain = NewVisit { day: day("2026-06-21"), ..new.clone() };
    let (other, _) = store.record_visit_once(&plain, None, "visitor-li", 2, beijing()).await.unwrap();
    let kept = store.evidence_of(elder_id).await.unwrap();
    assert_eq!(kept.len(), 1, "a visit without evidence has no row: {kept:?}");
    assert!(!kept.contains_key(&other.id));
    let kept = &kept[&visit.id];
    assert_eq!(kept.ended_at, Some(visit.started_at.unwrap() + 40 * 60_000));
    assert_eq!(kept.elder_signature.as_ref().map(Signature::text).as_deref(), Some("1,2 3,4"));
    assert_eq!((kept.elder_mark, kept.has_photo), (ElderMark::Thumb, true));
    assert_eq!(kept.visitor_signature.as_ref().map(Signature::text).as_deref(), Some("5,6 7,8;9,10"));
    assert_eq!(kept.location, evidence.location);
    assert_eq!(store.visit_photo(visit.id).await.unwrap(), Some((elder_id, vec![0xFF, 0xD8, 0xFF, 0xD9])));
    assert_eq!(store.visit_photo(other.id).await.unwrap(), None);

    assert_eq!(store.home_location(elder_id).await.unwrap(), None);
    let home = Location { latitude: 40.1292, longitude: 124.3945, accuracy_m: None };
    store.set_home_location(elder_id, Some(home), "admin", 3).await.unwrap();
    store.set_home_location(elder_id, Some(home), "admin", 4).await.unwrap();
    assert_eq!(store.home_location(elder_id).await.unwrap(), Some(home));
    store.set_home_location(elder_id, None, "admin", 5).await.unwrap();
    assert_eq!(store.home_location(elder_id).await.unwrap(), None);
    let audit = store.audit_entries(Some(elder_id), 20).await.unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "home location set").count(), 3);
}
