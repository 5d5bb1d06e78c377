//! The rules, as pure functions: `step(state, input, context)` changes one
//! home's state and says what to raise, note or clear; `next_due` says when
//! the home must be looked at again if nothing arrives. Nothing here reads a
//! clock or a database: `now` comes in the context.
//!
//! Invariants:
//! - Activity means a person: motion, a door, the help button. Heartbeats,
//!   statuses, battery and tamper reports are not activity.
//! - Silence is judged only while every sensor of the home is online: the
//!   time a sensor was dead is not counted as silence, and `device_offline`
//!   says that inactivity cannot be judged.
//! - After an inactivity alert fires, the home waits for activity before the
//!   rule arms again; temperature re-arms only 1 °C back inside the band for a
//!   minute, at most once low and once high a local day.
//! - Away (hospital, family): nothing but smoke and help is raised.

use std::collections::BTreeMap;

use anxin_protocol::{DoorState, EventKind, SmokeState, TamperState};
use serde::{Deserialize, Serialize};

use super::explanation::{Explanation, Sentence};
use super::policy::{AlertPolicy, HomePolicy};
use super::routine::{self, Routine, WAKE_AFTER_QUIET_MS, WAKE_WINDOW_MIN};
use super::{AlertKind, Severity};
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS};

/// Inactivity: armed, warned, or critical (then waiting for activity).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Armed,
    Warned,
    Critical,
}

/// One side of the temperature band (cold or heat).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Band {
    /// Since when readings have been outside this side of the band.
    pub outside_since: Option<i64>,
    /// Fired, waiting to be well inside the band again.
    pub disarmed: bool,
    /// Since when readings have been well inside (for re-arming).
    pub clear_since: Option<i64>,
    /// The local day it last fired.
    pub fired_day: Option<i64>,
}

/// The tally of one local day: the evidence for a remote check-in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Day {
    /// Local day number (days since 1970-01-01 in the homes' time zone).
    pub date: i64,
    pub first_activity: Option<i64>,
    pub last_activity: Option<i64>,
    /// Getting up: first activity after three quiet hours, 03:00–14:00.
    pub wake: Option<i64>,
    /// Bit h set: activity in local hour h.
    pub active_hours: u32,
    /// Bit h set: a sensor reported in local hour h.
    pub reported_hours: u32,
    pub door_opens: i64,
    pub motion: i64,
    pub temp_min_dc: Option<i32>,
    pub temp_max_dc: Option<i32>,
    /// The elder was marked away at some point of the day.
    pub away: bool,
    /// A sensor was offline when the day closed.
    pub offline_at_close: bool,
}

impl Day {
    fn new(date: i64) -> Day {
        Day { date, ..Day::default() }
    }
}

/// Everything the rules remember about one home; stored as JSON in `home_watch`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeState {
    /// Silence is counted from here: the last activity, the start of
    /// watching, or the return from an absence.
    pub silence_from: i64,
    pub last_activity: Option<i64>,
    /// Time since `silence_from` during which a sensor was offline.
    pub unwatched_ms: i64,
    pub inactivity: Phase,
    /// Offline sensors, with since when.
    pub offline: BTreeMap<String, i64>,
    /// Since when at least one sensor has been offline.
    pub offline_since: Option<i64>,
    /// Each sensor's boot number: a new one means it powered up.
    pub boots: BTreeMap<String, u32>,
    pub powered_up_at: Option<i64>,
    pub last_temp_dc: Option<i32>,
    pub cold: Band,
    pub heat: Band,
    pub door_open_since: Option<i64>,
    pub door_night_fired: bool,
    pub battery_low: bool,
    pub away: bool,
    pub day: Day,
    /// Getting-up times (local minutes) of recent days, oldest first.
    pub wakes: Vec<Option<i64>>,
    pub routine: Option<Routine>,
    pub routine_fired_day: Option<i64>,
}

impl HomeState {
    /// A home starts being watched at `now`.
    pub fn new(now: i64, policy: &AlertPolicy) -> HomeState {
        HomeState { silence_from: now, day: Day::new(local_day(now, policy)), ..HomeState::default() }
    }
}

/// A paired sensor of the home, as the devices table has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLink {
    pub device_id: String,
    pub online: bool,
    /// `last_will` or `missed_summaries`.
    pub offline_reason: Option<String>,
}

/// One thing that happened to a home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<'a> {
    Event {
        device: &'a str,
        boot: u32,
        kind: EventKind,
    },
    Summary {
        device: &'a str,
        boot: u32,
        motion: u16,
        door_opens: u16,
        temp_dc: Option<i16>,
        battery: Option<u8>,
    },
    /// The home's sensors and whether each is online.
    Devices(&'a [DeviceLink]),
    /// Time passed.
    Tick,
}

/// What a step asks the engine to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Open an alert, or add to the open one of this kind (raising its severity).
    Raise { kind: AlertKind, severity: Severity, device: Option<String>, detail: Explanation },
    /// Add a line to the open alert of this kind, if there is one.
    Note { kind: AlertKind, detail: Explanation },
    /// The condition cleared by itself: resolve the open alert of this kind.
    Clear { kind: AlertKind, detail: Explanation },
    /// A local day ended; judge it for a remote check-in.
    DayClosed(Day),
}

/// What a step may know besides the state and the input.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: i64,
    pub policy: &'a AlertPolicy,
    pub home: &'a HomePolicy,
    /// Closing a day waits this long after local midnight (spreads the work).
    pub day_close_delay_ms: i64,
}

impl Context<'_> {
    fn away(&self) -> bool {
        self.home.away_until.is_some_and(|until| self.now < until)
    }
}

fn offset_ms(policy: &AlertPolicy) -> i64 {
    i64::from(policy.utc_offset.local_minus_utc()) * 1_000
}

/// The local day number of `at`.
pub fn local_day(at: i64, policy: &AlertPolicy) -> i64 {
    (at + offset_ms(policy)).div_euclid(DAY_MS)
}

/// Local minutes since midnight.
pub fn local_minute(at: i64, policy: &AlertPolicy) -> i64 {
    (at + offset_ms(policy)).rem_euclid(DAY_MS) / MINUTE_MS
}

/// The UTC moment local day `day` starts.
pub fn day_start(day: i64, policy: &AlertPolicy) -> i64 {
    day * DAY_MS - offset_ms(policy)
}

fn hour_bit(at: i64, policy: &AlertPolicy) -> u32 {
    1 << (local_minute(at, policy) / 60)
}

/// `22:10 yesterday`, `07:05 today`, `06:30 on 11-27`.
pub fn when(at: i64, now: i64, policy: &AlertPolicy) -> Explanation {
    let time = routine::clock(local_minute(at, policy));
    match local_day(now, policy) - local_day(at, policy) {
        0 => Explanation::new(Sentence::Today).with("time", time),
        1 => Explanation::new(Sentence::Yesterday).with("time", time),
        _ => {
            let date = chrono::DateTime::from_timestamp_millis(at + offset_ms(policy))
                .map(|d| d.format("%m-%d").to_string())
                .unwrap_or_default();
            Explanation::new(Sentence::OnDate).with("time", time).with("date", date)
        }
    }
}

fn hours(ms: i64) -> Explanation {
    let n = if ms % HOUR_MS == 0 { format!("{}", ms / HOUR_MS) } else { format!("{:.1}", ms as f64 / HOUR_MS as f64) };
    Explanation::new(Sentence::Hours).with("n", n)
}

fn celsius(dc: i32) -> Explanation {
    Explanation::new(Sentence::Celsius).with("n", format!("{:.1}", f64::from(dc) / 10.0))
}

/// Applies one input at `context.now`.
pub fn step(state: &mut HomeState, input: &Input<'_>, context: &Context<'_>) -> Vec<Effect> {
    let mut out = Vec::new();
    let now = context.now;
    roll_day(state, context, &mut out);
    absence(state, context, &mut out);
    match *input {
        Input::Event { device, boot, kind } => {
            power_up(state, device, boot, now);
            state.day.reported_hours |= hour_bit(now, context.policy);
            event(state, device, kind, context, &mut out);
        }
        Input::Summary { device, boot, motion, door_opens, temp_dc, battery } => {
            power_up(state, device, boot, now);
            let day = &mut state.day;
            day.reported_hours |= hour_bit(now, context.policy);
            day.motion += i64::from(motion);
            day.door_opens += i64::from(door_opens);
            if motion > 0 || door_opens > 0 {
                activity(state, context, &mut out);
            }
            if let Some(temp) = temp_dc {
                temperature(state, i32::from(temp), context);
            }
            if let Some(battery) = battery {
                battery_level(state, device, i64::from(battery), context, &mut out);
            }
        }
        Input::Devices(links) => devices(state, links, context, &mut out),
        Input::Tick => {}
    }
    check_inactivity(state, context, &mut out);
    check_temperature(state, context, &mut out);
    check_door(state, context, &mut out);
    if context.away() {
        // Design: away pauses everything but the hazards a person at home
        // would still face — smoke, and a press of the help button (which
        // proves someone is there).
        out.retain(|effect| match effect {
            Effect::Raise { kind, .. } => matches!(kind, AlertKind::Smoke | AlertKind::Help),
            _ => true,
        });
    }
    out
}

/// When the home must be looked at again if nothing arrives.
pub fn next_due(state: &HomeState, context: &Context<'_>) -> i64 {
    let policy = context.policy;
    let now = context.now;
    let mut due = day_start(state.day.date + 1, policy) + context.day_close_delay_ms;
    let mut consider = |at: i64| due = due.min(at);
    if let Some(until) = context.home.away_until.filter(|until| now < *until) {
        consider(until);
        return due;
    }
    if state.offline.is_empty() {
        let silence_start = state.silence_from + state.unwatched_ms;
        match state.inactivity {
            Phase::Armed => {
                consider(silence_start + context.home.inactivity_ms);
                if let Some(at) = routine_due(state, context) {
                    consider(at);
                }
            }
            Phase::Warned => consider(silence_start + context.home.critical_ms),
            Phase::Critical => {}
        }
    }
    let today = local_day(now, policy);
    for band in [&state.cold, &state.heat] {
        if let Some(since) = band.outside_since
            && !band.disarmed
            && band.fired_day != Some(today)
        {
            consider(since + context.home.temp_sustain_ms);
        }
    }
    if let Some(open) = state.door_open_since
        && !state.door_night_fired
    {
        consider(night_due(open, policy));
    }
    due
}

fn roll_day(state: &mut HomeState, context: &Context<'_>, out: &mut Vec<Effect>) {
    let policy = context.policy;
    let today = local_day(context.now, policy);
    if today <= state.day.date {
        return;
    }
    let mut closed = std::mem::replace(&mut state.day, Day::new(today));
    closed.offline_at_close = !state.offline.is_empty();
    let wake = closed.wake.filter(|_| !closed.away).map(|at| local_minute(at, policy));
    state.wakes.push(wake);
    // Days with no input at all (the gateway was down) count as unknown.
    for _ in closed.date + 1..today.min(closed.date + 1 + i64::try_from(policy.routine_window_days).unwrap_or(28)) {
        state.wakes.push(None);
    }
    let excess = state.wakes.len().saturating_sub(policy.routine_window_days);
    state.wakes.drain(..excess);
    state.routine = routine::learn(&state.wakes, policy.routine_min_days, policy.routine_window_days);
    out.push(Effect::DayClosed(closed));
}

fn absence(state: &mut HomeState, context: &Context<'_>, out: &mut Vec<Effect>) {
    let away = context.away();
    if away {
        state.day.away = true;
    }
    if state.away && !away {
        // Back (or the absence ran out): the return is expected, so silence
        // counts from now, and sensors still offline are raised now.
        state.silence_from = context.now;
        state.unwatched_ms = 0;
        state.inactivity = Phase::Armed;
        if !state.offline.is_empty() {
            state.offline_since = Some(context.now);
        }
        for (device, since) in &state.offline {
            out.push(Effect::Raise {
                kind: AlertKind::DeviceOffline,
                severity: Severity::Notice,
                device: Some(device.clone()),
                detail: Explanation::new(Sentence::OfflineSince)
                    .with("device", device.as_str())
                    .with("at", when(*since, context.now, context.policy)),
            });
        }
    }
    state.away = away;
}

fn power_up(state: &mut HomeState, device: &str, boot: u32, now: i64) {
    if state.boots.get(device) != Some(&boot) {
        state.boots.insert(device.to_string(), boot);
        state.powered_up_at = Some(now);
    }
}

fn activity(state: &mut HomeState, context: &Context<'_>, out: &mut Vec<Effect>) {
    let now = context.now;
    let policy = context.policy;
    let minute = local_minute(now, policy);
    let day = &mut state.day;
    if day.wake.is_none()
        && (WAKE_WINDOW_MIN.0..WAKE_WINDOW_MIN.1).contains(&minute)
        && state.last_activity.is_none_or(|last| now - last >= WAKE_AFTER_QUIET_MS)
    {
        day.wake = Some(now);
    }
    day.first_activity.get_or_insert(now);
    day.last_activity = Some(now);
    day.active_hours |= hour_bit(now, policy);
    if state.inactivity != Phase::Armed {
        out.push(Effect::Note {
            kind: AlertKind::Inactivity,
            detail: Explanation::new(Sentence::ActivityAgain).with("at", when(now, now, policy)),
        });
    }
    state.inactivity = Phase::Armed;
    state.last_activity = Some(state.last_activity.map_or(now, |last| last.max(now)));
    state.silence_from = state.silence_from.max(now);
    state.unwatched_ms = 0;
    if state.offline_since.is_some() {
        state.offline_since = Some(now);
    }
}

fn event(state: &mut HomeState, device: &str, kind: EventKind, context: &Context<'_>, out: &mut Vec<Effect>) {
    let now = context.now;
    let at = when(now, now, context.policy);
    match kind {
        EventKind::Door(DoorState::Open) => {
            if state.door_open_since.is_none() {
                state.door_open_since = Some(now);
                state.door_night_fired = false;
            }
            activity(state, context, out);
        }
        EventKind::Door(DoorState::Closed) => {
            if state.door_night_fired {
                let detail = Explanation::new(Sentence::DoorClosed).with("at", at);
                out.push(Effect::Note { kind: AlertKind::DoorNight, detail });
            }
            state.door_open_since = None;
            state.door_night_fired = false;
            activity(state, context, out);
        }
        EventKind::Smoke(SmokeState::Alarm) => out.push(Effect::Raise {
            kind: AlertKind::Smoke,
            severity: Severity::Critical,
            device: Some(device.to_string()),
            detail: Explanation::new(Sentence::Smoke).with("device", device).with("at", at),
        }),
        EventKind::Smoke(SmokeState::Clear) => out.push(Effect::Note {
            kind: AlertKind::Smoke,
            detail: Explanation::new(Sentence::SmokeStopped).with("device", device).with("at", at),
        }),
        EventKind::Help => {
            activity(state, context, out);
            out.push(Effect::Raise {
                kind: AlertKind::Help,
                severity: Severity::Critical,
                device: Some(device.to_string()),
                detail: Explanation::new(Sentence::Help).with("at", at),
            });
        }
        EventKind::Tamper(TamperState::Opened) => out.push(Effect::Raise {
            kind: AlertKind::Tamper,
            severity: Severity::Notice,
            device: Some(device.to_string()),
            detail: Explanation::new(Sentence::Tamper).with("device", device).with("at", at),
        }),
        EventKind::Tamper(TamperState::Closed) => {
            let detail = Explanation::new(Sentence::TamperClosed).with("device", device).with("at", at);
            out.push(Effect::Note { kind: AlertKind::Tamper, detail })
        }
    }
}

fn battery_level(state: &mut HomeState, device: &str, percent: i64, context: &Context<'_>, out: &mut Vec<Effect>) {
    let policy = context.policy;
    if percent <= policy.low_battery_percent && !state.battery_low && !context.away() {
        state.battery_low = true;
        out.push(Effect::Raise {
            kind: AlertKind::LowBattery,
            severity: Severity::Notice,
            device: Some(device.to_string()),
            detail: Explanation::new(Sentence::Battery).with("device", device).with("n", percent.to_string()),
        });
    } else if percent >= policy.battery_ok_percent && state.battery_low {
        state.battery_low = false;
        out.push(Effect::Clear {
            kind: AlertKind::LowBattery,
            detail: Explanation::new(Sentence::BatteryAgain).with("device", device).with("n", percent.to_string()),
        });
    }
}

fn devices(state: &mut HomeState, links: &[DeviceLink], context: &Context<'_>, out: &mut Vec<Effect>) {
    let now = context.now;
    let was_offline = !state.offline.is_empty();
    state.offline.retain(|device, _| links.iter().any(|link| &link.device_id == device));
    for link in links {
        if !link.online && !state.offline.contains_key(&link.device_id) {
            state.offline.insert(link.device_id.clone(), now);
            let why = match link.offline_reason.as_deref() {
                Some("last_will") => Explanation::new(Sentence::ConnectionDropped),
                Some("missed_summaries") => Explanation::new(Sentence::SummariesMissed).with("n", "3"),
                _ => Explanation::new(Sentence::ReportedOffline),
            };
            out.push(Effect::Raise {
                kind: AlertKind::DeviceOffline,
                severity: Severity::Notice,
                device: Some(link.device_id.clone()),
                detail: Explanation::new(Sentence::OfflineAt)
                    .with("device", link.device_id.as_str())
                    .with("at", when(now, now, context.policy))
                    .with("why", why),
            });
        } else if link.online {
            state.offline.remove(&link.device_id);
        }
    }
    if !state.offline.is_empty() {
        state.offline_since.get_or_insert(now);
    } else if let Some(since) = state.offline_since.take() {
        // The silence while sensors were dead is not silence anyone saw.
        state.unwatched_ms += now - since.max(state.silence_from);
        if was_offline {
            out.push(Effect::Clear {
                kind: AlertKind::DeviceOffline,
                detail: Explanation::new(Sentence::OnlineAgain).with("at", when(now, now, context.policy)),
            });
        }
    }
}

fn temperature(state: &mut HomeState, temp: i32, context: &Context<'_>) {
    let now = context.now;
    let policy = context.policy;
    let home = context.home;
    state.last_temp_dc = Some(temp);
    let day = &mut state.day;
    day.temp_min_dc = Some(day.temp_min_dc.map_or(temp, |min| min.min(temp)));
    day.temp_max_dc = Some(day.temp_max_dc.map_or(temp, |max| max.max(temp)));
    let inhibited = state.powered_up_at.is_some_and(|at| now - at < policy.power_up_inhibit_ms);
    let margin = policy.temp_rearm_margin_dc;
    let hold = policy.temp_rearm_hold_ms;
    band(&mut state.cold, temp < home.cold_below_dc, temp >= home.cold_below_dc + margin, now, hold, inhibited);
    band(&mut state.heat, temp > home.heat_above_dc, temp <= home.heat_above_dc - margin, now, hold, inhibited);
}

fn band(band: &mut Band, outside: bool, well_inside: bool, now: i64, hold: i64, inhibited: bool) {
    if !outside {
        band.outside_since = None;
    } else if !inhibited {
        band.outside_since.get_or_insert(now);
    }
    if band.disarmed {
        if well_inside {
            let since = *band.clear_since.get_or_insert(now);
            if now - since >= hold {
                band.disarmed = false;
                band.clear_since = None;
            }
        } else {
            band.clear_since = None;
        }
    }
}

fn check_temperature(state: &mut HomeState, context: &Context<'_>, out: &mut Vec<Effect>) {
    if context.away() {
        return;
    }
    let now = context.now;
    let policy = context.policy;
    let home = context.home;
    let today = local_day(now, policy);
    let temp = state.last_temp_dc.unwrap_or_default();
    for (side, kind) in [(&mut state.cold, AlertKind::Cold), (&mut state.heat, AlertKind::Heat)] {
        let Some(since) = side.outside_since else { continue };
        if side.disarmed || side.fired_day == Some(today) || now - since < home.temp_sustain_ms {
            continue;
        }
        side.disarmed = true;
        side.fired_day = Some(today);
        let limit = match kind {
            AlertKind::Cold => Explanation::new(Sentence::Below).with("temp", celsius(home.cold_below_dc)),
            _ => Explanation::new(Sentence::Above).with("temp", celsius(home.heat_above_dc)),
        };
        out.push(Effect::Raise {
            kind,
            severity: Severity::Warning,
            device: None,
            detail: Explanation::new(Sentence::Temperature)
                .with("temp", celsius(temp))
                .with("limit", limit)
                .with("at", when(since, now, policy)),
        });
    }
}

/// The first moment the door, open since `open`, has been open at night for
/// the threshold.
pub fn night_due(open: i64, policy: &AlertPolicy) -> i64 {
    let offset = offset_ms(policy);
    let local_open = open + offset;
    let day0 = local_open.div_euclid(DAY_MS) * DAY_MS;
    let (start_min, end_min) = (policy.night_start_min, policy.night_end_min);
    for k in -1..=2 {
        let start = day0 + k * DAY_MS + start_min * MINUTE_MS;
        let end = if end_min <= start_min {
            day0 + (k + 1) * DAY_MS + end_min * MINUTE_MS
        } else {
            day0 + k * DAY_MS + end_min * MINUTE_MS
        };
        if end <= local_open {
            continue;
        }
        let from = local_open.max(start);
        if from + policy.door_night_ms <= end {
            return from + policy.door_night_ms - offset;
        }
    }
    i64::MAX
}

fn check_door(state: &mut HomeState, context: &Context<'_>, out: &mut Vec<Effect>) {
    let Some(open) = state.door_open_since else { return };
    if state.door_night_fired || context.away() || context.now < night_due(open, context.policy) {
        return;
    }
    state.door_night_fired = true;
    out.push(Effect::Raise {
        kind: AlertKind::DoorNight,
        severity: Severity::Warning,
        device: None,
        detail: Explanation::new(Sentence::DoorNight)
            .with("at", when(open, context.now, context.policy))
            .with("n", (context.policy.door_night_ms / MINUTE_MS).to_string()),
    });
}

/// The routine warning's moment today, if it could still fire.
fn routine_due(state: &HomeState, context: &Context<'_>) -> Option<i64> {
    let policy = context.policy;
    let routine = state.routine?;
    let today = local_day(context.now, policy);
    if state.routine_fired_day == Some(today) || state.day.wake.is_some() {
        return None;
    }
    let at = day_start(today, policy) + (routine.usual_by_min * MINUTE_MS) + policy.routine_margin_ms;
    // Only if nothing has happened since three hours before the usual time.
    let quiet_from = day_start(today, policy) + routine.usual_by_min * MINUTE_MS - WAKE_AFTER_QUIET_MS;
    (state.last_activity.is_none_or(|last| last < quiet_from)).then_some(at)
}

fn since_text(state: &HomeState, now: i64, policy: &AlertPolicy) -> Explanation {
    match state.last_activity {
        Some(last) => Explanation::new(Sentence::NothingSince).with("at", when(last, now, policy)),
        None => Explanation::new(Sentence::NothingSinceWatching).with("at", when(state.silence_from, now, policy)),
    }
}

fn check_inactivity(state: &mut HomeState, context: &Context<'_>, out: &mut Vec<Effect>) {
    if context.away() || !state.offline.is_empty() {
        return;
    }
    let now = context.now;
    let policy = context.policy;
    let home = context.home;
    let silent_ms = now - state.silence_from - state.unwatched_ms;

    if state.inactivity == Phase::Armed {
        if silent_ms >= home.inactivity_ms {
            state.inactivity = Phase::Warned;
            out.push(Effect::Raise {
                kind: AlertKind::Inactivity,
                severity: Severity::Warning,
                device: None,
                detail: Explanation::new(if home.heightened {
                    Sentence::NoActivityHeightened
                } else {
                    Sentence::NoActivity
                })
                .with("hours", hours(home.inactivity_ms))
                .with("since", since_text(state, now, policy)),
            });
        } else if let Some(at) = routine_due(state, context)
            && now >= at
            && let Some(routine) = state.routine
        {
            state.inactivity = Phase::Warned;
            state.routine_fired_day = Some(local_day(now, policy));
            out.push(Effect::Raise {
                kind: AlertKind::Inactivity,
                severity: Severity::Warning,
                device: None,
                detail: Explanation::new(Sentence::UsuallyActiveBy)
                    .with("time", routine::clock(routine.usual_by_min))
                    .with("since", since_text(state, now, policy)),
            });
        }
    }
    if state.inactivity == Phase::Warned && silent_ms >= home.critical_ms {
        state.inactivity = Phase::Critical;
        out.push(Effect::Raise {
            kind: AlertKind::Inactivity,
            severity: Severity::Critical,
            device: None,
            detail: Explanation::new(if home.heightened {
                Sentence::StillNoActivityHeightened
            } else {
                Sentence::StillNoActivity
            })
            .with("hours", hours(home.critical_ms))
            .with("since", since_text(state, now, policy)),
        });
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
