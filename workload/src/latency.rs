//! Latency percentiles without allocation: a log-linear histogram (16 sub-buckets per power of
//! two, so a reported value is within 1/32 of the true one), the idea of HdrHistogram at a
//! fixed, small precision.

/// Sub-buckets per power of two (4 bits of mantissa).
const SUB: usize = 16;
/// Values below this are counted exactly, one bucket each.
const EXACT: u64 = SUB as u64;
/// Buckets: the exact ones, then 16 for each power of two from 2^4 to 2^63.
const BUCKETS: usize = SUB + 60 * SUB;

/// Counts of nanosecond values, for percentiles.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: [u32; BUCKETS],
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub const fn new() -> Histogram {
        Histogram {
            counts: [0; BUCKETS],
            total: 0,
        }
    }

    /// Counts one value.
    pub fn record(&mut self, value: u64) {
        if let Some(c) = self.counts.get_mut(bucket(value)) {
            *c = c.saturating_add(1);
            self.total += 1;
        }
    }

    /// Values counted.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The `percent`-th percentile (nearest rank; 50 = median), as the middle of its bucket;
    /// 0 when empty.
    pub fn percentile(&self, percent: u64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = (self.total.saturating_mul(percent.min(100)))
            .div_ceil(100)
            .max(1);
        let mut seen = 0u64;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += u64::from(count);
            if seen >= rank {
                return middle(index);
            }
        }
        middle(BUCKETS - 1)
    }
}

/// The bucket of `value`.
fn bucket(value: u64) -> usize {
    if value < EXACT {
        return value as usize;
    }
    let msb = 63 - value.leading_zeros() as usize; // 4..=63
    let sub = (value >> (msb - 4)) as usize & (SUB - 1);
    (msb - 3) * SUB + sub
}

/// The middle of bucket `index`'s value range.
fn middle(index: usize) -> u64 {
    if index < SUB {
        return index as u64;
    }
    let msb = index / SUB + 3;
    let sub = (index % SUB) as u64;
    let low = (EXACT + sub) << (msb - 4);
    let width = 1u64 << (msb - 4);
    low + width / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact_and_buckets_are_ordered() {
        let mut h = Histogram::new();
        for v in 0..16 {
            h.record(v);
        }
        assert_eq!(h.len(), 16);
        assert_eq!(h.percentile(50), 7);
        assert_eq!(h.percentile(100), 15);
        let mut last = 0;
        for v in [16u64, 17, 31, 32, 1000, 1 << 40, u64::MAX] {
            let b = bucket(v);
            assert!(b >= last && b < BUCKETS, "{v}");
            last = b;
            let m = middle(b);
            // Within 1/32 of the value (half a bucket of 1/16).
            assert!(m.abs_diff(v) <= v / 32 + 1, "{v} -> {m}");
        }
    }

    #[test]
    fn percentiles_of_a_known_spread() {
        let mut h = Histogram::new();
        // 990 values of 10 µs, 10 of 5 ms: p50 is 10 µs, p99 the last of the fast ones, p100 slow.
        for _ in 0..990 {
            h.record(10_000);
        }
        for _ in 0..10 {
            h.record(5_000_000);
        }
        assert!(h.percentile(50).abs_diff(10_000) <= 10_000 / 32);
        assert!(h.percentile(99).abs_diff(10_000) <= 10_000 / 32);
        assert!(h.percentile(100).abs_diff(5_000_000) <= 5_000_000 / 32);
        assert_eq!(Histogram::new().percentile(50), 0);
        assert!(Histogram::new().is_empty());
    }
}
