//! Battery level, behind a small trait: boards measure it differently (an ADC
//! behind a divider, a fuel gauge over I²C), the node only needs a percentage.

/// Anything that can tell the battery level in percent.
pub trait BatteryGauge {
    type Error;
    fn percent(&mut self) -> Result<u8, Self::Error>;
}

/// Maps a cell voltage to 0…100 % linearly between `empty_mv` and `full_mv`.
/// Crude for lithium cells, adequate for a "replace soon" notice on alkaline
/// packs, which is what the gateway's `low_battery` notice needs.
pub fn percent_from_millivolts(millivolts: u16, empty_mv: u16, full_mv: u16) -> u8 {
    if millivolts <= empty_mv || full_mv <= empty_mv {
        return 0;
    }
    if millivolts >= full_mv {
        return 100;
    }
    let percent = u32::from(millivolts - empty_mv) * 100 / u32::from(full_mv - empty_mv);
    u8::try_from(percent).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voltage_maps_linearly_and_clamps_at_both_ends() {
        assert_eq!(percent_from_millivolts(2_000, 2_200, 3_000), 0);
        assert_eq!(percent_from_millivolts(2_200, 2_200, 3_000), 0);
        assert_eq!(percent_from_millivolts(2_600, 2_200, 3_000), 50);
        assert_eq!(percent_from_millivolts(3_000, 2_200, 3_000), 100);
        assert_eq!(percent_from_millivolts(3_300, 2_200, 3_000), 100);
        assert_eq!(percent_from_millivolts(2_600, 3_000, 3_000), 0);
    }
}
