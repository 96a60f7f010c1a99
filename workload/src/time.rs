//! Time without a host clock: the unikernel converts TSC ticks with `vclab.tsc_khz`.

/// Nanoseconds in `ticks` of a TSC running at `tsc_khz` kHz (integer only, no floats); 0 when
/// `tsc_khz` is 0 (unknown frequency), saturating at `u64::MAX`.
pub fn tsc_ticks_to_ns(ticks: u64, tsc_khz: u64) -> u64 {
    if tsc_khz == 0 {
        return 0;
    }
    let ns = u128::from(ticks) * 1_000_000 / u128::from(tsc_khz);
    u64::try_from(ns).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_exactly() {
        // 3 GHz: 3,000,000 ticks per millisecond.
        assert_eq!(tsc_ticks_to_ns(3_000_000, 3_000_000), 1_000_000);
        assert_eq!(tsc_ticks_to_ns(2_995_200, 2_995_200), 1_000_000);
        assert_eq!(tsc_ticks_to_ns(1, 1_000_000), 1);
        assert_eq!(tsc_ticks_to_ns(123, 0), 0);
        assert_eq!(tsc_ticks_to_ns(u64::MAX, 1), u64::MAX);
    }
}
