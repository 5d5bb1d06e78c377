//! Sensor drivers, each generic over embedded-hal 1.0 traits and owning only
//! its pin or bus. They are sampled every [`POLL_INTERVAL_MS`] by the node's
//! main loop; debouncing counts samples, so it is expressed in samples.
//!
//! Electrical conventions are parameters ([`ActiveLevel`]), because a reed
//! switch with a pull-up reads low when closed while a smoke detector's relay
//! output may be active high.

mod battery;
mod line;
mod pir;
mod thermometer;

pub use battery::{BatteryGauge, percent_from_millivolts};
pub use line::{ActiveLevel, DEBOUNCE_SAMPLES, DoorContact, HelpButton, SmokeDetector, TamperSwitch};
pub use pir::PirSensor;
pub use thermometer::{Thermometer, Tmp102};

/// How often the node samples its inputs.
pub const POLL_INTERVAL_MS: u64 = 10;

/// A driver's failure: the pin or bus under it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// Reading a GPIO input failed.
    Pin(E),
    /// An I²C transaction failed.
    Bus(E),
}
