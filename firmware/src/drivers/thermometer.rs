//! Room temperature over I²C: a TMP102 through eldruin's `tmp1x2` driver.

use embedded_hal::i2c::I2c;
use tmp1x2::{SlaveAddr, Tmp1x2, marker::mode::Continuous};

use super::Error;

/// Anything that can tell the room temperature in 0.1 °C.
pub trait Thermometer {
    type Error;
    fn read_decidegrees(&mut self) -> Result<i16, Self::Error>;
}

/// A TI TMP102 (±0.5 °C, −40…125 °C, 0.0625 °C resolution) in continuous mode
/// at its default address 0x48 (ADD0 to ground).
pub struct Tmp102<I2C: I2c> {
    sensor: Tmp1x2<I2C, Continuous>,
}

impl<I2C: I2c> core::fmt::Debug for Tmp102<I2C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Tmp102")
    }
}

impl<I2C: I2c> Tmp102<I2C> {
    pub fn new(i2c: I2C) -> Self {
        Self { sensor: Tmp1x2::new(i2c, SlaveAddr::default()) }
    }

    pub fn release(self) -> I2C {
        self.sensor.destroy()
    }
}

impl<I2C: I2c> Thermometer for Tmp102<I2C> {
    type Error = Error<I2C::Error>;

    fn read_decidegrees(&mut self) -> Result<i16, Self::Error> {
        let celsius = self.sensor.read_temperature().map_err(|tmp1x2::Error::I2C(e)| Error::Bus(e))?;
        Ok(to_decidegrees(celsius))
    }
}

/// Rounds °C to the nearest 0.1 °C; `core` has no `f32::round`, hence by hand.
#[allow(clippy::cast_possible_truncation, reason = "the TMP102's range is −55…128 °C, far inside i16 after ×10")]
fn to_decidegrees(celsius: f32) -> i16 {
    let tenths = celsius * 10.0;
    (if tenths >= 0.0 { tenths + 0.5 } else { tenths - 0.5 }) as i16
}

#[cfg(test)]
mod tests {
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

    use super::*;

    const ADDRESS: u8 = 0x48;
    const TEMPERATURE_REGISTER: u8 = 0x00;

    #[test]
    fn a_reading_is_one_register_read_converted_to_tenths_of_a_degree() {
        // 21.5 °C = 344 × 0.0625 → 0x158 << 4 = 0x1580
        let transactions = [Transaction::write_read(ADDRESS, vec![TEMPERATURE_REGISTER], vec![0x15, 0x80])];
        let mut thermometer = Tmp102::new(Mock::new(&transactions));
        assert_eq!(thermometer.read_decidegrees().unwrap(), 215);
        thermometer.release().done();
    }

    #[test]
    fn a_freezing_room_reads_negative() {
        // −5.0 °C = −80 × 0.0625 → 12-bit two's complement 0xFB0 << 4 = 0xFB00
        let transactions = [Transaction::write_read(ADDRESS, vec![TEMPERATURE_REGISTER], vec![0xFB, 0x00])];
        let mut thermometer = Tmp102::new(Mock::new(&transactions));
        assert_eq!(thermometer.read_decidegrees().unwrap(), -50);
        thermometer.release().done();
    }

    #[test]
    fn tenths_are_rounded_to_nearest() {
        assert_eq!(to_decidegrees(21.5625), 216);
        assert_eq!(to_decidegrees(-0.0625), -1);
        assert_eq!(to_decidegrees(0.0), 0);
    }
}
