//! A node's sensors together: what the main loop samples every tick.

use embedded_hal::digital::InputPin;

use crate::drivers::{BatteryGauge, DoorContact, HelpButton, PirSensor, SmokeDetector, TamperSwitch, Thermometer};
use crate::node::Observation;

/// Anything that can be sampled for observations at an instant: the real
/// board here, a scripted or simulated home elsewhere.
pub trait Sensors {
    fn sample(&mut self, now_ms: u64, observe: &mut dyn FnMut(Observation));
}

/// How often the slow sensors (temperature, battery) are read.
pub const SLOW_READ_INTERVAL_MS: u64 = 60_000;

/// The standard Anxin node: PIR, door contact, smoke detector, help button,
/// tamper switch, TMP102 and a battery gauge.
#[derive(Debug)]
pub struct Board<Pir, Door, Smoke, Button, Tamper, Thermo, Battery> {
    pub pir: PirSensor<Pir>,
    pub door: DoorContact<Door>,
    pub smoke: SmokeDetector<Smoke>,
    pub button: HelpButton<Button>,
    pub tamper: TamperSwitch<Tamper>,
    pub thermometer: Thermo,
    pub battery: Battery,
    next_slow_read_at: u64,
    /// Failed pin or bus reads, for diagnostics. A failed read skips that
    /// sample; the next one tries again.
    pub read_errors: u32,
}

impl<Pir, Door, Smoke, Button, Tamper, Thermo, Battery> Board<Pir, Door, Smoke, Button, Tamper, Thermo, Battery> {
    pub fn new(
        pir: PirSensor<Pir>,
        door: DoorContact<Door>,
        smoke: SmokeDetector<Smoke>,
        button: HelpButton<Button>,
        tamper: TamperSwitch<Tamper>,
        thermometer: Thermo,
        battery: Battery,
    ) -> Self {
        Self { pir, door, smoke, button, tamper, thermometer, battery, next_slow_read_at: 0, read_errors: 0 }
    }
}

impl<Pir, Door, Smoke, Button, Tamper, Thermo, Battery> Sensors
    for Board<Pir, Door, Smoke, Button, Tamper, Thermo, Battery>
where
    Pir: InputPin,
    Door: InputPin,
    Smoke: InputPin,
    Button: InputPin,
    Tamper: InputPin,
    Thermo: Thermometer,
    Battery: BatteryGauge,
{
    fn sample(&mut self, now_ms: u64, observe: &mut dyn FnMut(Observation)) {
        let mut failed = 0;
        // Hazards first, so a smoke alarm is queued before anything else seen at the same tick.
        match self.smoke.poll() {
            Ok(Some(state)) => observe(Observation::Smoke(state)),
            Ok(None) => {}
            Err(_) => failed += 1,
        }
        match self.button.poll() {
            Ok(true) => observe(Observation::HelpPressed),
            Ok(false) => {}
            Err(_) => failed += 1,
        }
        match self.door.poll() {
            Ok(Some(state)) => observe(Observation::Door(state)),
            Ok(None) => {}
            Err(_) => failed += 1,
        }
        match self.tamper.poll() {
            Ok(Some(state)) => observe(Observation::Tamper(state)),
            Ok(None) => {}
            Err(_) => failed += 1,
        }
        match self.pir.poll(now_ms) {
            Ok(true) => observe(Observation::Motion),
            Ok(false) => {}
            Err(_) => failed += 1,
        }
        if now_ms >= self.next_slow_read_at {
            self.next_slow_read_at = now_ms + SLOW_READ_INTERVAL_MS;
            match self.thermometer.read_decidegrees() {
                Ok(temp_dc) => observe(Observation::Temperature(temp_dc)),
                Err(_) => failed += 1,
            }
            match self.battery.percent() {
                Ok(percent) => observe(Observation::Battery(percent)),
                Err(_) => failed += 1,
            }
        }
        self.read_errors = self.read_errors.saturating_add(failed);
    }
}
