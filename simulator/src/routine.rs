//! A plausible daily routine for one simulated elder: asleep at night,
//! active by day with quieter spells, out of the door now and then, a room
//! temperature that follows the day.

use anxin_firmware::Observation;
use anxin_protocol::DoorState;

const MINUTE_MS: u64 = 60_000;
const DAY_MINUTES: u64 = 24 * 60;

/// One elder's habits, drawn from the run's seed.
#[derive(Debug, Clone)]
pub struct Routine {
    /// Minute of the day the elder gets up (05:30–08:30).
    pub wake_minute: u64,
    /// Minute of the day the elder goes to bed (20:30–23:30).
    pub sleep_minute: u64,
    /// Chance of a PIR trigger in an awake minute.
    pub motion_chance: f64,
    /// Chance the door opens in an awake minute (a few times a day).
    pub door_chance: f64,
    /// Room temperature around midday, in 0.1 °C.
    pub base_temp_dc: i16,
}

impl Routine {
    pub fn generate(rng: &mut fastrand::Rng) -> Self {
        Self {
            wake_minute: 330 + rng.u64(0..180),
            sleep_minute: 1_230 + rng.u64(0..180),
            motion_chance: 0.25 + rng.f64() * 0.5,
            door_chance: 3.0 / 900.0 + rng.f64() * 3.0 / 900.0,
            base_temp_dc: 190 + rng.i16(0..40),
        }
    }

    pub fn is_awake(&self, minute_of_day: u64) -> bool {
        (self.wake_minute..self.sleep_minute).contains(&minute_of_day)
    }

    /// What happens in the simulated minute starting at `minute` (minutes
    /// since the run began, `start_minute` being the time of day it began).
    pub fn minute(
        &self,
        minute: u64,
        start_minute: u64,
        rng: &mut fastrand::Rng,
        door: &mut DoorPlan,
    ) -> Vec<(u64, Observation)> {
        let at = minute * MINUTE_MS;
        let minute_of_day = (start_minute + minute) % DAY_MINUTES;
        let mut observations = Vec::new();
        if let Some(close_at) = door.close_at
            && minute >= close_at
        {
            door.close_at = None;
            observations.push((at, Observation::Door(DoorState::Closed)));
        }
        if self.is_awake(minute_of_day) {
            if rng.f64() < self.motion_chance {
                // Up to three PIR triggers, spread over the minute.
                for k in 0..rng.u64(1..=3) {
                    observations.push((at + k * 15_000, Observation::Motion));
                }
            }
            if door.close_at.is_none() && rng.f64() < self.door_chance {
                observations.push((at + 20_000, Observation::Door(DoorState::Open)));
                door.close_at = Some(minute + rng.u64(1..=3));
            }
        }
        if minute.is_multiple_of(5) {
            observations.push((at, Observation::Temperature(self.temperature(minute_of_day))));
        }
        observations
    }

    /// A gentle daily curve: coolest before dawn, warmest mid-afternoon.
    pub fn temperature(&self, minute_of_day: u64) -> i16 {
        // Up to 12 h from the 15:00 peak, 0.25 °C cooler per hour.
        let minutes_from_peak = minute_of_day.abs_diff(15 * 60).min(12 * 60);
        let drop = i16::try_from(minutes_from_peak * 25 / 600).unwrap_or(30);
        self.base_temp_dc - drop
    }
}

/// A door the elder opened and will close.
#[derive(Debug, Clone, Default)]
pub struct DoorPlan {
    pub close_at: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_night_there_is_no_motion_and_by_day_there_is() {
        let mut rng = fastrand::Rng::with_seed(7);
        let routine = Routine::generate(&mut rng);
        let mut door = DoorPlan::default();
        // A whole day from midnight.
        let day: Vec<Vec<(u64, Observation)>> =
            (0..DAY_MINUTES).map(|m| routine.minute(m, 0, &mut rng, &mut door)).collect();
        let moves_at =
            |from: usize, to: usize| day[from..to].iter().flatten().filter(|(_, o)| *o == Observation::Motion).count();
        assert_eq!(moves_at(0, 300), 0, "asleep 00:00–05:00");
        assert!(moves_at(540, 1_200) > 100, "active 09:00–20:00");
        let opens = day.iter().flatten().filter(|(_, o)| *o == Observation::Door(DoorState::Open)).count();
        assert!((1..=20).contains(&opens), "{opens} door openings");
    }

    #[test]
    fn the_room_is_warmest_in_the_afternoon() {
        let routine =
            Routine { wake_minute: 400, sleep_minute: 1_300, motion_chance: 0.5, door_chance: 0.0, base_temp_dc: 210 };
        assert_eq!(routine.temperature(15 * 60), 210);
        assert!(routine.temperature(4 * 60) < routine.temperature(12 * 60));
    }
}
