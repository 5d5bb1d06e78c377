//! Running the rules over one home: pure.
//!
//! [`judge_home`] takes a home as read under its lock ([`Home`]), the inputs
//! that arrived for it (in order) and `now`, runs [`rules::step`] over them and
//! returns the new state, its next deadline and the effects to write. No
//! clock and no database: the pipeline (`anxin_gateway::ingest::pipeline`) reads the
//! home, calls this, and writes what it says in the same transaction.

use anxin_protocol::EventKind;

use super::policy::{AlertPolicy, ElderFacts};
use super::rules::{self, Context, DeviceLink, Effect, HomeState, Input};
use crate::time::MINUTE_MS;
/// An input for one elder's home, owned (the batch outlives the decoded payloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HomeInput {
    Event {
        device: String,
        boot: u32,
        kind: EventKind,
    },
    Summary {
        device: String,
        boot: u32,
        motion: u16,
        door_opens: u16,
        temp_dc: Option<i16>,
        battery: Option<u8>,
    },
    /// Only look: time passed, or a device's status changed.
    Look,
}

impl HomeInput {
    fn as_input(&self) -> Input<'_> {
        match self {
            HomeInput::Event { device, boot, kind } => Input::Event { device, boot: *boot, kind: *kind },
            HomeInput::Summary { device, boot, motion, door_opens, temp_dc, battery } => Input::Summary {
                device,
                boot: *boot,
                motion: *motion,
                door_opens: *door_opens,
                temp_dc: *temp_dc,
                battery: *battery,
            },
            HomeInput::Look => Input::Tick,
        }
    }
}

/// Where an elder lives: county, township, village (every level known).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HomePlace {
    pub county: String,
    pub township: String,
    pub village: String,
}

/// One home as the rules need it, read under its lock.
#[derive(Debug, Clone, Default)]
pub struct Home {
    /// The rules' state as stored; `None` for a home not judged yet.
    pub state: Option<String>,
    /// When its row was made: a home not judged yet is watched from here
    /// (its pairing, or its first message).
    pub watched_from: i64,
    pub elder: ElderFacts,
    pub place: HomePlace,
    pub devices: Vec<DeviceLink>,
    /// The end of the absence in force, if the elder is away.
    pub away_until: Option<i64>,
}

/// What judging a home concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// The new state, encoded for `home_watch`.
    pub state: String,
    /// When to look again if nothing arrives.
    pub due: i64,
    /// What to write, each at the moment its input arrived.
    pub effects: Vec<(i64, Effect)>,
}

/// Closing the day waits a little after midnight, spread over half an hour
/// by elder, so 100,000 homes do not all close at 00:00:00.
pub fn day_close_delay_ms(elder_id: i64) -> i64 {
    5 * MINUTE_MS + (elder_id.wrapping_mul(7_919)).rem_euclid(25 * MINUTE_MS)
}

/// Runs the rules over `inputs` (each `(at, input)`, in arrival order) for
/// one home. `heightened`: the home's region is on heightened watch.
pub fn judge_home(
    elder_id: i64,
    home: &Home,
    inputs: &[(i64, &HomeInput)],
    policy: &AlertPolicy,
    heightened: bool,
    now: i64,
) -> Judged {
    let mut state = match home.state.as_deref().map(serde_json::from_str::<HomeState>) {
        Some(Ok(state)) => state,
        Some(Err(error)) => {
            // Never stop watching a home over a state we cannot read.
            tracing::error!(elder_id, %error, "home state unreadable; watching it afresh");
            HomeState::new(now, policy)
        }
        None => HomeState::new(home.watched_from.min(now), policy),
    };
    let home_policy = policy.for_home(&home.elder, heightened, home.away_until);
    let delay = day_close_delay_ms(elder_id);
    let mut last_at = now;
    let mut effects = Vec::new();
    for (index, (at, input)) in inputs.iter().enumerate() {
        let context = Context { now: *at, policy, home: &home_policy, day_close_delay_ms: delay };
        if index == 0 {
            effects.extend(
                rules::step(&mut state, &Input::Devices(&home.devices), &context).into_iter().map(|e| (*at, e)),
            );
        }
        effects.extend(rules::step(&mut state, &input.as_input(), &context).into_iter().map(|e| (*at, e)));
        last_at = *at;
    }
    let context = Context { now: last_at, policy, home: &home_policy, day_close_delay_ms: delay };
    // A deadline already past that the step did not act on would make the
    // timer loop spin on this home; look again in a second at the soonest.
    let due = rules::next_due(&state, &context).max(last_at + 1_000);
    let state = serde_json::to_string(&state).unwrap_or_default();
    Judged { state, due, effects }
}

/// `2026-11-29` for a local day number.
pub fn day_text(day: i64) -> String {
    i32::try_from(day + 719_163)
        .ok()
        .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
        .map(|date| date.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| day.to_string())
}

/// The system's name in alert histories.
pub const SYSTEM: &str = "anxin";

/// The name a remote check-in is recorded under.
pub const REMOTE_VISITOR: &str = "Anxin remote monitoring";
