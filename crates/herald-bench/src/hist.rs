//! A small log-linear latency histogram (about 1.6 % resolution) that workers send to the
//! orchestrator: millions of samples travel as a few hundred buckets, and histograms of several
//! workers merge by adding counts.

use serde::{Deserialize, Serialize};

/// Values below this are counted exactly.
const LINEAR: u64 = 128;
/// Sub-buckets per power of two above [`LINEAR`].
const SUB_BITS: u32 = 6;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Counts by bucket index; grown on demand.
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

fn bucket(value: u64) -> usize {
    if value < LINEAR {
        return value as usize;
    }
    let exp = 63 - value.leading_zeros(); // >= 7
    let sub = (value >> (exp - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    (LINEAR + u64::from(exp - 7) * (1 << SUB_BITS) + sub) as usize
}

/// The highest value that falls in `index`: quantiles are reported on the pessimistic side.
fn upper(index: usize) -> u64 {
    let index = index as u64;
    if index < LINEAR {
        return index;
    }
    let exp = (index - LINEAR) / (1 << SUB_BITS) + 7;
    let sub = (index - LINEAR) % (1 << SUB_BITS);
    let base = (1u64 << exp) | (sub << (exp - u64::from(SUB_BITS)));
    base + (1u64 << (exp - u64::from(SUB_BITS))) - 1
}

impl Histogram {
    pub fn record(&mut self, value: u64) {
        let index = bucket(value);
        if index >= self.counts.len() {
            self.counts.resize(index + 1, 0);
        }
        self.counts[index] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    pub fn merge(&mut self, other: &Histogram) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1), at most the recorded maximum.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return upper(index).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for value in (0..5_000_000u64).step_by(7) {
            let index = bucket(value);
            assert!(index >= last);
            last = index;
            assert!(upper(index) >= value, "{value}");
            assert!(upper(index) - value <= value / 60 + 1, "{value}");
        }
    }

    #[test]
    fn quantiles_and_merge() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for v in 1..=1000 {
            a.record(v);
            b.record(v + 1000);
        }
        a.merge(&b);
        assert_eq!(a.count(), 2000);
        assert_eq!(a.max(), 2000);
        let p50 = a.quantile(0.5);
        assert!((990..=1020).contains(&p50), "{p50}");
        assert_eq!(a.quantile(1.0), 2000);
        assert_eq!(Histogram::default().quantile(0.99), 0);
    }
}
