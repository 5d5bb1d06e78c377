//! Each rule at its edges, with the clock in the test's hand: days pass in
//! milliseconds.

use anxin_protocol::{DoorState, EventKind, SmokeState, TamperState};

use super::*;
use crate::alerts::policy::{AlertPolicy, ElderFacts, HomePolicy};

const MIN: i64 = MINUTE_MS;
const HOUR: i64 = HOUR_MS;

/// One home, its state and the effects it produced, driven by the test.
struct Home {
    policy: AlertPolicy,
    home: HomePolicy,
    state: HomeState,
    effects: Vec<(i64, Effect)>,
    boot: u32,
    /// The last moment the home was looked at.
    last: i64,
}

/// Local midnight starting day 20,000 (2024-10-04) in UTC+8.
fn midnight(day: i64) -> i64 {
    day_start(20_000 + day, &AlertPolicy::default())
}

impl Home {
    fn new(start: i64) -> Home {
        let policy = AlertPolicy::default();
        let home = policy.for_home(&ElderFacts::default(), false, None);
        let state = HomeState::new(start, &policy);
        Home { policy, home, state, effects: Vec::new(), boot: 1, last: start }
    }

    fn context(&self, now: i64) -> Context<'_> {
        Context { now, policy: &self.policy, home: &self.home, day_close_delay_ms: 10 * MIN }
    }

    fn input(&mut self, now: i64, input: Input<'_>) -> Vec<Effect> {
        let context = Context { now, policy: &self.policy, home: &self.home, day_close_delay_ms: 10 * MIN };
        let effects = step(&mut self.state, &input, &context);
        self.last = now;
        self.effects.extend(effects.iter().cloned().map(|e| (now, e)));
        effects
    }

    fn summary(&mut self, now: i64, motion: u16) -> Vec<Effect> {
        let boot = self.boot;
        self.input(now, Input::Summary { device: "n1", boot, motion, door_opens: 0, temp_dc: None, battery: None })
    }

    fn temp(&mut self, now: i64, temp_dc: i16) -> Vec<Effect> {
        let boot = self.boot;
        self.input(
            now,
            Input::Summary { device: "n1", boot, motion: 0, door_opens: 0, temp_dc: Some(temp_dc), battery: None },
        )
    }

    fn event(&mut self, now: i64, kind: EventKind) -> Vec<Effect> {
        let boot = self.boot;
        self.input(now, Input::Event { device: "n1", boot, kind })
    }

    fn tick(&mut self, now: i64) -> Vec<Effect> {
        self.input(now, Input::Tick)
    }

    /// Ticks only when `next_due` says so, up to `until`: what the timer loop does.
    fn run_timers_until(&mut self, until: i64) {
        let mut previous = None;
        loop {
            let due = next_due(&self.state, &self.context(self.last));
            if due > until {
                return;
            }
            assert_ne!(previous, Some(due), "next_due is stuck at {due}: looking changed nothing");
            previous = Some(due);
            self.tick(due.max(self.last));
        }
    }

    /// A day of routine: up at `wake`, motion every 5 minutes until `bed`,
    /// summaries (heartbeats) all day.
    fn live_day(&mut self, day: i64, wake: i64, bed: i64) {
        let start = midnight(day);
        let mut t = start;
        while t < start + DAY_MS {
            let minute = (t - start) / MIN;
            let awake = minute >= wake && minute < bed;
            self.summary(t, if awake { 3 } else { 0 });
            t += 5 * MIN;
        }
    }

    fn raised(&self, kind: AlertKind) -> Vec<(i64, Severity, String)> {
        self.effects
            .iter()
            .filter_map(|(at, effect)| match effect {
                Effect::Raise { kind: k, severity, detail, .. } if *k == kind => {
                    Some((*at, *severity, detail.to_string()))
                }
                _ => None,
            })
            .collect()
    }
}

fn raises(effects: &[Effect], kind: AlertKind) -> usize {
    effects.iter().filter(|e| matches!(e, Effect::Raise { kind: k, .. } if *k == kind)).count()
}

#[test]
fn smoke_and_help_are_critical_at_once() {
    let t = midnight(0) + 3 * HOUR;
    let mut home = Home::new(t);
    let smoke = home.event(t, EventKind::Smoke(SmokeState::Alarm));
    assert!(matches!(&smoke[..], [Effect::Raise { kind: AlertKind::Smoke, severity: Severity::Critical, .. }]));
    let cleared = home.event(t + MIN, EventKind::Smoke(SmokeState::Clear));
    assert!(matches!(&cleared[..], [Effect::Note { kind: AlertKind::Smoke, .. }]), "a clear is noted, not resolved");
    let help = home.event(t + 2 * MIN, EventKind::Help);
    assert_eq!(raises(&help, AlertKind::Help), 1);
    assert_eq!(home.state.last_activity, Some(t + 2 * MIN), "a press of the button is a person");
}

#[test]
fn inactivity_warns_at_the_threshold_turns_critical_and_then_waits_for_activity() {
    let start = midnight(0) + 20 * HOUR;
    let mut home = Home::new(start);
    home.summary(start, 4);
    // Heartbeats with no motion, a tamper report: none of it is a person.
    for k in 1..=143 {
        home.summary(start + k * 5 * MIN, 0);
    }
    home.event(start + 11 * HOUR, EventKind::Tamper(TamperState::Opened));
    assert!(home.raised(AlertKind::Inactivity).is_empty(), "11h55m of silence is under 12 h");
    home.tick(start + 12 * HOUR - 1);
    assert!(home.raised(AlertKind::Inactivity).is_empty());
    home.tick(start + 12 * HOUR);
    let raised = home.raised(AlertKind::Inactivity);
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].1, Severity::Warning);
    assert!(raised[0].2.contains("nothing since 20:00 yesterday"), "{}", raised[0].2);
    for k in 0..10 {
        home.tick(start + 12 * HOUR + k * MIN);
    }
    assert_eq!(home.raised(AlertKind::Inactivity).len(), 1, "once, not on every tick");
    home.tick(start + 18 * HOUR);
    let raised = home.raised(AlertKind::Inactivity);
    assert_eq!(raised.len(), 2);
    assert_eq!(raised[1].1, Severity::Critical);
    home.tick(start + 40 * HOUR);
    assert_eq!(home.raised(AlertKind::Inactivity).len(), 2, "after firing it waits for activity");
    let back = home.summary(start + 41 * HOUR, 2);
    assert!(back.iter().any(|e| matches!(e, Effect::Note { kind: AlertKind::Inactivity, .. })));
    home.tick(start + 53 * HOUR);
    assert_eq!(home.raised(AlertKind::Inactivity).len(), 3, "armed again after activity");
}

#[test]
fn a_dead_sensor_is_not_silence() {
    let start = midnight(0) + 8 * HOUR;
    let mut home = Home::new(start);
    home.summary(start, 5);
    let offline = [DeviceLink { device_id: "n1".into(), online: false, offline_reason: Some("last_will".into()) }];
    let effects = home.input(start + HOUR, Input::Devices(&offline));
    assert!(
        matches!(&effects[..], [Effect::Raise { kind: AlertKind::DeviceOffline, severity: Severity::Notice, detail, .. }]
        if detail.to_string().contains("inactivity cannot be judged"))
    );
    home.tick(start + 20 * HOUR);
    assert!(home.raised(AlertKind::Inactivity).is_empty(), "no inactivity judged on a dead sensor");
    assert!(next_due(&home.state, &home.context(start + 20 * HOUR)) >= midnight(1), "only the day's end is due");
    let online = [DeviceLink { device_id: "n1".into(), online: true, offline_reason: None }];
    let effects = home.input(start + 21 * HOUR, Input::Devices(&online));
    assert!(matches!(&effects[..], [Effect::Clear { kind: AlertKind::DeviceOffline, .. }]));
    // Watched silence: 1 h before the drop + the time since it came back.
    home.tick(start + 21 * HOUR + 11 * HOUR - 1);
    assert!(home.raised(AlertKind::Inactivity).is_empty());
    home.tick(start + 21 * HOUR + 11 * HOUR);
    assert_eq!(home.raised(AlertKind::Inactivity).len(), 1);
}

#[test]
fn the_timer_loop_alone_fires_every_deadline_on_time() {
    // Nothing arrives after the first summary: only next_due wakes the home.
    let start = midnight(0) + 21 * HOUR;
    let mut home = Home::new(start);
    home.summary(start, 1);
    home.run_timers_until(start + 30 * HOUR);
    let raised = home.raised(AlertKind::Inactivity);
    assert_eq!(
        raised.iter().map(|r| (r.0 - start, r.1)).collect::<Vec<_>>(),
        [(12 * HOUR, Severity::Warning), (18 * HOUR, Severity::Critical)]
    );
}

#[test]
fn stricter_categories_and_heightened_watch_fire_sooner() {
    let policy = AlertPolicy::default();
    let start = midnight(0) + 21 * HOUR;
    let dependent = ElderFacts { categories: vec![crate::alerts::Category::Dependent], inactivity_hours: None };
    for (facts, heightened, expected) in
        [(ElderFacts::default(), false, 12 * HOUR), (dependent.clone(), false, 8 * HOUR), (dependent, true, 4 * HOUR)]
    {
        let mut home = Home::new(start);
        home.home = policy.for_home(&facts, heightened, None);
        home.summary(start, 1);
        home.run_timers_until(start + 13 * HOUR);
        assert_eq!(home.raised(AlertKind::Inactivity)[0].0 - start, expected);
    }
}

#[test]
fn temperature_needs_its_duration_rearms_with_hysteresis_and_fires_once_a_day() {
    let start = midnight(0) + 2 * HOUR;
    let mut home = Home::new(start);
    home.temp(start, 200);
    let t = start + 2 * HOUR; // past the power-up hour
    home.temp(t, 95);
    home.tick(t + 30 * MIN - 1);
    assert!(home.raised(AlertKind::Cold).is_empty(), "cold for under 30 minutes");
    home.run_timers_until(t + 30 * MIN);
    let cold = home.raised(AlertKind::Cold);
    assert_eq!(cold.len(), 1);
    assert_eq!(cold[0].0, t + 30 * MIN);
    assert!(cold[0].2.contains("9.5 °C, below 10.0 °C since 04:00 today"), "{}", cold[0].2);
    // Back inside but not by 1 °C, then cold again: still disarmed.
    home.temp(t + HOUR, 105);
    home.temp(t + HOUR + 5 * MIN, 105);
    home.temp(t + 2 * HOUR, 90);
    home.run_timers_until(t + 4 * HOUR);
    assert_eq!(home.raised(AlertKind::Cold).len(), 1);
    // 1 °C inside for a minute re-arms; the same day it still does not fire.
    home.temp(t + 5 * HOUR, 110);
    home.temp(t + 5 * HOUR + MIN, 112);
    assert!(!home.state.cold.disarmed);
    home.temp(t + 6 * HOUR, 90);
    home.run_timers_until(t + 9 * HOUR);
    assert_eq!(home.raised(AlertKind::Cold).len(), 1, "at most one low a day");
    // Still cold the next day: the next day may fire.
    home.temp(midnight(1) + 30 * MIN, 90);
    home.run_timers_until(midnight(1) + 2 * HOUR);
    assert_eq!(home.raised(AlertKind::Cold).len(), 2);
}

#[test]
fn no_temperature_alarm_in_the_first_hour_after_power_up() {
    let start = midnight(0) + 8 * HOUR;
    let mut home = Home::new(start);
    home.temp(start, 80);
    home.run_timers_until(start + 59 * MIN);
    assert!(home.raised(AlertKind::Cold).is_empty());
    home.temp(start + 60 * MIN, 80);
    home.run_timers_until(start + 89 * MIN);
    assert!(home.raised(AlertKind::Cold).is_empty(), "the clock starts after the inhibit");
    home.run_timers_until(start + 90 * MIN);
    assert_eq!(home.raised(AlertKind::Cold).len(), 1);
    // A reboot inhibits again.
    home.boot = 2;
    home.temp(start + 3 * HOUR, 400);
    home.run_timers_until(start + 3 * HOUR + 50 * MIN);
    assert!(home.raised(AlertKind::Heat).is_empty());
}

#[test]
fn door_open_at_night_counts_only_night_time() {
    let policy = AlertPolicy::default();
    let evening = midnight(0) + 21 * HOUR + 50 * MIN;
    assert_eq!(night_due(evening, &policy), midnight(0) + 22 * HOUR + 30 * MIN);
    let late = midnight(0) + 23 * HOUR;
    assert_eq!(night_due(late, &policy), late + 30 * MIN);
    let dawn = midnight(1) + 5 * HOUR + 50 * MIN;
    assert_eq!(night_due(dawn, &policy), midnight(1) + 22 * HOUR + 30 * MIN, "10 minutes of night left");

    let mut home = Home::new(evening);
    home.event(evening, EventKind::Door(DoorState::Open));
    home.run_timers_until(midnight(0) + 22 * HOUR + 29 * MIN);
    assert!(home.raised(AlertKind::DoorNight).is_empty());
    home.run_timers_until(midnight(0) + 23 * HOUR);
    assert_eq!(home.raised(AlertKind::DoorNight).len(), 1);
    home.run_timers_until(midnight(1) + 23 * HOUR);
    assert_eq!(home.raised(AlertKind::DoorNight).len(), 1, "once per opening");
    home.event(midnight(1) + 23 * HOUR, EventKind::Door(DoorState::Closed));
    home.event(midnight(1) + 23 * HOUR + MIN, EventKind::Door(DoorState::Open));
    home.event(midnight(1) + 23 * HOUR + 20 * MIN, EventKind::Door(DoorState::Closed));
    home.run_timers_until(midnight(2) + 3 * HOUR);
    assert_eq!(home.raised(AlertKind::DoorNight).len(), 1, "closed within 30 minutes");
}

#[test]
fn low_battery_is_raised_once_and_clears_itself() {
    let t = midnight(0) + 9 * HOUR;
    let mut home = Home::new(t);
    let battery = |percent| Input::Summary {
        device: "n1",
        boot: 1,
        motion: 1,
        door_opens: 0,
        temp_dc: None,
        battery: Some(percent),
    };
    assert_eq!(raises(&home.input(t, battery(16)), AlertKind::LowBattery), 0);
    assert_eq!(raises(&home.input(t + MIN, battery(15)), AlertKind::LowBattery), 1);
    assert_eq!(raises(&home.input(t + 2 * MIN, battery(14)), AlertKind::LowBattery), 0);
    assert_eq!(raises(&home.input(t + 3 * MIN, battery(29)), AlertKind::LowBattery), 0);
    let replaced = home.input(t + 4 * MIN, battery(100));
    assert!(matches!(&replaced[..], [Effect::Clear { kind: AlertKind::LowBattery, .. }]));
}

#[test]
fn away_pauses_all_but_smoke_and_help_and_expects_the_return() {
    let start = midnight(0) + 9 * HOUR;
    let mut home = Home::new(start);
    home.summary(start, 3);
    home.home.away_until = Some(start + 3 * DAY_MS);
    home.run_timers_until(start + 2 * DAY_MS);
    assert!(home.raised(AlertKind::Inactivity).is_empty());
    home.event(start + DAY_MS, EventKind::Door(DoorState::Open));
    home.temp(start + DAY_MS, 50);
    home.run_timers_until(start + 2 * DAY_MS);
    assert!(home.raised(AlertKind::DoorNight).is_empty() && home.raised(AlertKind::Cold).is_empty());
    assert_eq!(raises(&home.event(start + 2 * DAY_MS, EventKind::Smoke(SmokeState::Alarm)), AlertKind::Smoke), 1);
    assert_eq!(raises(&home.event(start + 2 * DAY_MS, EventKind::Help), AlertKind::Help), 1);
    // The absence ends; nobody comes home: inactivity counts from the end.
    home.event(start + 2 * DAY_MS + HOUR, EventKind::Door(DoorState::Closed));
    let end = start + 3 * DAY_MS;
    home.run_timers_until(end + 12 * HOUR);
    let raised = home.raised(AlertKind::Inactivity);
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].0, end + 12 * HOUR);
}

#[test]
fn a_day_closes_at_midnight_with_its_tally() {
    let mut home = Home::new(midnight(0));
    home.live_day(0, 7 * 60, 21 * 60);
    home.tick(midnight(1) + 10 * MIN);
    let closed: Vec<&Day> = home
        .effects
        .iter()
        .filter_map(|(_, e)| match e {
            Effect::DayClosed(day) => Some(day),
            _ => None,
        })
        .collect();
    assert_eq!(closed.len(), 1);
    let day = closed[0];
    assert_eq!(day.reported_hours.count_ones(), 24);
    assert_eq!(day.active_hours.count_ones(), 14);
    assert_eq!(day.wake, Some(midnight(0) + 7 * HOUR));
    assert_eq!(day.first_activity, Some(midnight(0) + 7 * HOUR));
    assert_eq!(day.last_activity, Some(midnight(0) + 21 * HOUR - 5 * MIN));
    assert_eq!(crate::alerts::checkin::judge(day, &Default::default()), crate::alerts::checkin::Verdict::Counts);
}

/// Runs `days` days of routine, the wake time of day d given by `wake(d)`.
fn weeks(home: &mut Home, days: std::ops::Range<i64>, wake: impl Fn(i64) -> i64, bed: i64) {
    for day in days {
        home.live_day(day, wake(day), bed);
    }
}

#[test]
fn an_early_riser_is_missed_long_before_twelve_hours() {
    let mut home = Home::new(midnight(0));
    // Up between 05:20 and 05:40 for two weeks.
    weeks(&mut home, 0..14, |d| 5 * 60 + 20 + (d * 7) % 21, 20 * 60);
    home.tick(midnight(14));
    let routine = home.state.routine.expect("learned after 14 days");
    assert!((5 * 60 + 30..=5 * 60 + 40).contains(&routine.usual_by_min), "{}", routine::clock(routine.usual_by_min));
    // Day 14: nothing after going to bed at 20:00.
    for k in 0..(9 * 12) {
        home.summary(midnight(14) + k * 5 * MIN, 0);
    }
    let raised = home.raised(AlertKind::Inactivity);
    assert_eq!(raised.len(), 1, "{raised:?}");
    let fired_at = raised[0].0 - midnight(14);
    assert!(fired_at <= (routine.usual_by_min + 65) * MIN && fired_at >= (routine.usual_by_min + 60) * MIN);
    assert!(raised[0].2.starts_with(&format!("usually active by {}", routine::clock(routine.usual_by_min))));
    assert!(raised[0].2.contains("nothing since 19:55 yesterday"), "{}", raised[0].2);
}

#[test]
fn a_night_owl_sleeping_in_as_usual_is_not_an_alarm() {
    let mut home = Home::new(midnight(0));
    // Up between 10:00 and 10:40, active until 02:00 (the next day's 02:00: bed 26 h is
    // modelled by motion until midnight and a little after).
    for day in 0..20 {
        home.live_day(day, 10 * 60 + (day * 11) % 41, 24 * 60);
    }
    home.tick(midnight(20));
    let routine = home.state.routine.expect("learned");
    assert!(routine.usual_by_min >= 10 * 60 + 20, "{}", routine::clock(routine.usual_by_min));
    home.live_day(20, 10 * 60 + 35, 24 * 60);
    assert!(home.raised(AlertKind::Inactivity).is_empty(), "{:?}", home.raised(AlertKind::Inactivity));
}

#[test]
fn a_shifted_routine_is_relearned_within_a_week_or_so() {
    let mut home = Home::new(midnight(0));
    weeks(&mut home, 0..21, |_| 7 * 60, 21 * 60);
    // From day 21 the elder gets up at 09:00 (a new medication, winter).
    let mut alarms_per_day = Vec::new();
    for day in 21..35 {
        let before = home.raised(AlertKind::Inactivity).len();
        home.live_day(day, 9 * 60, 23 * 60);
        alarms_per_day.push(home.raised(AlertKind::Inactivity).len() - before);
    }
    assert_eq!(alarms_per_day[0], 1, "the first late morning is worth a call");
    assert!(alarms_per_day[10..].iter().all(|n| *n == 0), "relearned: {alarms_per_day:?}");
    assert!(home.state.routine.unwrap().usual_by_min >= 9 * 60);
}
