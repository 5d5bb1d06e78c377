//! PIR motion sensor: counts triggers, with a hold-off.

use embedded_hal::digital::InputPin;

use super::Error;

/// A passive-infrared motion sensor's output line (active high, as on the
/// common HC-SR501 and AM312 modules).
///
/// The node does not send motion per trigger: it counts triggers and sends the
/// count in its summary. A PIR module re-triggers while someone keeps moving,
/// so a rising edge within `hold_off_ms` of the last counted one is not
/// counted again: the count then measures presence over time, not fidgeting.
#[derive(Debug)]
pub struct PirSensor<P> {
    pin: P,
    hold_off_ms: u64,
    was_high: bool,
    last_counted_at: Option<u64>,
}

impl<P: InputPin> PirSensor<P> {
    pub fn new(pin: P, hold_off_ms: u64) -> Self {
        Self { pin, hold_off_ms, was_high: false, last_counted_at: None }
    }

    /// Samples the line at `now_ms`; `true` when a trigger is counted.
    pub fn poll(&mut self, now_ms: u64) -> Result<bool, Error<P::Error>> {
        let high = self.pin.is_high().map_err(Error::Pin)?;
        let rising = high && !self.was_high;
        self.was_high = high;
        if !rising {
            return Ok(false);
        }
        let in_hold_off = self.last_counted_at.is_some_and(|at| now_ms.saturating_sub(at) < self.hold_off_ms);
        if in_hold_off {
            return Ok(false);
        }
        self.last_counted_at = Some(now_ms);
        Ok(true)
    }

    pub fn release(self) -> P {
        self.pin
    }
}

#[cfg(test)]
mod tests {
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction};

    use super::*;

    #[test]
    fn rising_edges_inside_the_hold_off_are_not_counted() {
        use State::{High, Low};
        // (time ms, level): edges at 0, 1_000 (held off), 6_000 (counted), and a
        // long high at 8_000.. counts once.
        let samples = [
            (0, High),
            (500, Low),
            (1_000, High),
            (1_500, Low),
            (6_000, High),
            (6_500, Low),
            (8_000, High),
            (9_000, High),
            (12_000, High),
        ];
        let transactions: Vec<_> = samples.iter().map(|(_, level)| Transaction::get(*level)).collect();
        let mut pir = PirSensor::new(Mock::new(&transactions), 5_000);
        let counted: Vec<u64> = samples.iter().filter(|(at, _)| pir.poll(*at).unwrap()).map(|(at, _)| *at).collect();
        assert_eq!(counted, vec![0, 6_000]);
        pir.release().done();
    }

    #[test]
    fn an_edge_exactly_at_the_end_of_the_hold_off_counts() {
        use State::{High, Low};
        let transactions = [High, Low, High].map(Transaction::get);
        let mut pir = PirSensor::new(Mock::new(&transactions), 5_000);
        assert!(pir.poll(0).unwrap());
        assert!(!pir.poll(100).unwrap());
        assert!(pir.poll(5_000).unwrap());
        pir.release().done();
    }
}
