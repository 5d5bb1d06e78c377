//! Debounced digital lines: door contact, smoke detector alarm output, help
//! button and case tamper switch.

use anxin_protocol::{DoorState, SmokeState, TamperState};
use debouncr::{Debouncer, Edge, Repeat8, debounce_8};
use embedded_hal::digital::InputPin;

use super::Error;

/// A change is accepted after this many equal consecutive samples
/// (80 ms at the 10 ms poll interval): long enough to swallow contact bounce,
/// short enough that a tap on the help button still counts.
pub const DEBOUNCE_SAMPLES: u8 = 8;

/// Which electrical level means "asserted" (door open, alarm, pressed, case opened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveLevel {
    High,
    Low,
}

/// A digital input with a debouncer: reports stable changes only.
struct DebouncedLine<P> {
    pin: P,
    active: ActiveLevel,
    debouncer: Debouncer<u8, Repeat8>,
}

impl<P> core::fmt::Debug for DebouncedLine<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DebouncedLine")
            .field("active", &self.active)
            .field("asserted", &self.debouncer.is_high())
            .finish()
    }
}

impl<P: InputPin> DebouncedLine<P> {
    fn new(pin: P, active: ActiveLevel, initially_asserted: bool) -> Self {
        Self { pin, active, debouncer: debounce_8(initially_asserted) }
    }

    /// Samples the pin once: `Some(true)` when the line has just become
    /// asserted, `Some(false)` when it has just been released.
    fn poll(&mut self) -> Result<Option<bool>, Error<P::Error>> {
        let high = self.pin.is_high().map_err(Error::Pin)?;
        let asserted = high == (self.active == ActiveLevel::High);
        Ok(self.debouncer.update(asserted).map(|edge| edge == Edge::Rising))
    }

    fn release(self) -> P {
        self.pin
    }
}

/// A door contact (reed switch). Asserted means open.
#[derive(Debug)]
pub struct DoorContact<P>(DebouncedLine<P>);

impl<P: InputPin> DoorContact<P> {
    /// `initially_open` is the state assumed at power-up, before the first
    /// stable reading; a door found open at boot is then reported once it is
    /// seen closed, and vice versa.
    pub fn new(pin: P, open_level: ActiveLevel, initially_open: bool) -> Self {
        Self(DebouncedLine::new(pin, open_level, initially_open))
    }

    pub fn poll(&mut self) -> Result<Option<DoorState>, Error<P::Error>> {
        Ok(self.0.poll()?.map(|open| if open { DoorState::Open } else { DoorState::Closed }))
    }

    pub fn release(self) -> P {
        self.0.release()
    }
}

/// A smoke detector's alarm output. The alarm lasts until the line is seen
/// stably released: a flickering line does not produce a stream of alarms.
#[derive(Debug)]
pub struct SmokeDetector<P>(DebouncedLine<P>);

impl<P: InputPin> SmokeDetector<P> {
    pub fn new(pin: P, alarm_level: ActiveLevel) -> Self {
        Self(DebouncedLine::new(pin, alarm_level, false))
    }

    pub fn poll(&mut self) -> Result<Option<SmokeState>, Error<P::Error>> {
        Ok(self.0.poll()?.map(|alarm| if alarm { SmokeState::Alarm } else { SmokeState::Clear }))
    }

    pub fn release(self) -> P {
        self.0.release()
    }
}

/// The help button. A press is an event; releasing it is not.
#[derive(Debug)]
pub struct HelpButton<P>(DebouncedLine<P>);

impl<P: InputPin> HelpButton<P> {
    pub fn new(pin: P, pressed_level: ActiveLevel) -> Self {
        Self(DebouncedLine::new(pin, pressed_level, false))
    }

    /// `true` once per press, when the press has been stable for the debounce time.
    pub fn poll(&mut self) -> Result<bool, Error<P::Error>> {
        Ok(self.0.poll()? == Some(true))
    }

    pub fn release(self) -> P {
        self.0.release()
    }
}

/// The enclosure's tamper switch. Asserted means the case was opened.
#[derive(Debug)]
pub struct TamperSwitch<P>(DebouncedLine<P>);

impl<P: InputPin> TamperSwitch<P> {
    pub fn new(pin: P, opened_level: ActiveLevel) -> Self {
        Self(DebouncedLine::new(pin, opened_level, false))
    }

    pub fn poll(&mut self) -> Result<Option<TamperState>, Error<P::Error>> {
        Ok(self.0.poll()?.map(|opened| if opened { TamperState::Opened } else { TamperState::Closed }))
    }

    pub fn release(self) -> P {
        self.0.release()
    }
}

#[cfg(test)]
mod tests {
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction};

    use super::*;

    fn reads(levels: &[State]) -> Vec<Transaction> {
        levels.iter().map(|level| Transaction::get(*level)).collect()
    }

    #[test]
    fn a_bouncing_door_is_reported_once_when_it_settles_open() {
        // Closed (low with pull-up), bounces, then stays high (open).
        let mut levels = vec![State::Low, State::High, State::Low, State::High, State::Low];
        levels.extend([State::High; 8]);
        let mut door = DoorContact::new(Mock::new(&reads(&levels)), ActiveLevel::High, false);
        let changes: Vec<_> = (0..levels.len()).filter_map(|_| door.poll().unwrap()).collect();
        assert_eq!(changes, vec![DoorState::Open]);
        door.release().done();
    }

    #[test]
    fn the_door_is_reported_closed_after_eight_stable_samples_and_not_before() {
        let levels = [State::Low; 8];
        let mut door = DoorContact::new(Mock::new(&reads(&levels)), ActiveLevel::High, true);
        for _ in 0..7 {
            assert_eq!(door.poll().unwrap(), None);
        }
        assert_eq!(door.poll().unwrap(), Some(DoorState::Closed));
        door.release().done();
    }

    #[test]
    fn a_smoke_alarm_lasts_until_the_line_is_stably_clear() {
        let mut levels = vec![State::High; 8]; // alarm (active high)
        levels.extend([State::Low, State::Low, State::High]); // flicker: still alarm
        levels.extend([State::Low; 8]); // clear
        let mut smoke = SmokeDetector::new(Mock::new(&reads(&levels)), ActiveLevel::High);
        let changes: Vec<_> = (0..levels.len()).filter_map(|_| smoke.poll().unwrap()).collect();
        assert_eq!(changes, vec![SmokeState::Alarm, SmokeState::Clear]);
        smoke.release().done();
    }

    #[test]
    fn a_help_press_is_one_event_and_its_release_is_none() {
        // Active low button: pressed for 10 samples, released for 10, a 3-sample glitch.
        let mut levels = vec![State::Low; 10];
        levels.extend([State::High; 10]);
        levels.extend([State::Low; 3]);
        levels.extend([State::High; 3]);
        let mut button = HelpButton::new(Mock::new(&reads(&levels)), ActiveLevel::Low);
        let presses = (0..levels.len()).filter(|_| button.poll().unwrap()).count();
        assert_eq!(presses, 1);
        button.release().done();
    }

    #[test]
    fn the_tamper_switch_reports_opened_and_closed() {
        let mut levels = vec![State::High; 8];
        levels.extend([State::Low; 8]);
        let mut tamper = TamperSwitch::new(Mock::new(&reads(&levels)), ActiveLevel::High);
        let changes: Vec<_> = (0..levels.len()).filter_map(|_| tamper.poll().unwrap()).collect();
        assert_eq!(changes, vec![TamperState::Opened, TamperState::Closed]);
        tamper.release().done();
    }

    #[test]
    fn a_pin_error_is_returned_as_a_pin_error() {
        use embedded_hal_mock::eh1::MockError;
        let error = MockError::Io(std::io::ErrorKind::NotConnected);
        let mut door = DoorContact::new(
            Mock::new(&[Transaction::get(State::High).with_error(error.clone())]),
            ActiveLevel::High,
            false,
        );
        assert_eq!(door.poll(), Err(Error::Pin(error)));
        door.release().done();
    }
}
