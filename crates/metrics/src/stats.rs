//! Numbers as the output carries them: whole seconds, exact ratios, and order statistics computed
//! with integer arithmetic only, so the same records give the same bytes on every platform.

use std::fmt;

use serde::Serialize;

/// A duration in whole seconds (durations are measured in microseconds and floored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Seconds(pub i64);

impl Seconds {
    pub(crate) fn from_micros(us: i64) -> Seconds {
        Seconds(us.div_euclid(1_000_000))
    }

    /// Short human form with the two largest units: `3d 4h`, `2h 5m`, `45m`, `30s`, `0s`.
    pub fn human(self) -> String {
        let neg = self.0 < 0;
        let mut s = self.0.unsigned_abs();
        let d = s / 86_400;
        s %= 86_400;
        let h = s / 3600;
        s %= 3600;
        let m = s / 60;
        s %= 60;
        let parts = [(d, "d"), (h, "h"), (m, "m"), (s, "s")];
        let first = parts.iter().position(|(n, _)| *n > 0);
        let text = match first {
            None => "0s".to_owned(),
            Some(i) => parts
                .iter()
                .skip(i)
                .take(2)
                .filter(|(n, _)| *n > 0)
                .map(|(n, u)| format!("{n}{u}"))
                .collect::<Vec<_>>()
                .join(" "),
        };
        if neg { format!("-{text}") } else { text }
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.human())
    }
}

/// An exact ratio, with its percentage to one decimal (rounded half up) as text: no float is
/// ever printed, so serialized output is byte-stable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ratio {
    pub numerator: u64,
    pub denominator: u64,
    /// `25.0` for 1/4.
    pub percent: String,
}

impl Ratio {
    /// `None` when the denominator is zero: a rate of nothing is not 0 %.
    pub fn new(numerator: u64, denominator: u64) -> Option<Ratio> {
        if denominator == 0 {
            return None;
        }
        let pm = per_mille(numerator, denominator);
        Some(Ratio {
            numerator,
            denominator,
            percent: format!("{}.{}", pm / 10, pm % 10),
        })
    }

    /// Tenths of a percent, rounded half up: `250` for 1/4.
    pub fn per_mille(&self) -> u64 {
        per_mille(self.numerator, self.denominator)
    }
}

fn per_mille(n: u64, d: u64) -> u64 {
    if d == 0 {
        return 0;
    }
    let (n, d) = (u128::from(n), u128::from(d));
    u64::try_from((n * 1000 + d / 2) / d).unwrap_or(u64::MAX)
}

/// The median (the mean of the two middle values, floored, for an even count); `None` if empty.
pub(crate) fn median(sorted: &[i64]) -> Option<i64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let hi = *sorted.get(n / 2)?;
    if n % 2 == 1 {
        return Some(hi);
    }
    let lo = *sorted.get(n / 2 - 1)?;
    i64::try_from((i128::from(lo) + i128::from(hi)).div_euclid(2)).ok()
}

/// The p-th percentile by the nearest-rank method: the smallest value with at least p % of the
/// samples at or below it. Exact and always one of the samples.
pub(crate) fn percentile(sorted: &[i64], p: u64) -> Option<i64> {
    let n = sorted.len() as u64;
    if n == 0 {
        return None;
    }
    let rank = (p * n).div_ceil(100).max(1);
    sorted.get(usize::try_from(rank - 1).ok()?).copied()
}

/// The mean, floored.
pub(crate) fn mean(values: &[i64]) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let sum: i128 = values.iter().map(|v| i128::from(*v)).sum();
    i64::try_from(sum.div_euclid(values.len() as i128)).ok()
}

/// A duration metric over a set of samples.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DurationStat {
    pub samples: u64,
    pub median: Option<Seconds>,
    pub p90: Option<Seconds>,
    pub mean: Option<Seconds>,
}

impl DurationStat {
    /// From durations in seconds (any order).
    pub(crate) fn of(mut secs: Vec<i64>) -> DurationStat {
        secs.sort_unstable();
        DurationStat {
            samples: secs.len() as u64,
            median: median(&secs).map(Seconds),
            p90: percentile(&secs, 90).map(Seconds),
            mean: mean(&secs).map(Seconds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_statistics_are_exact() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5]), Some(5));
        assert_eq!(median(&[1, 4]), Some(2));
        assert_eq!(median(&[-3, 0]), Some(-2));
        assert_eq!(median(&[1, 2, 9]), Some(2));
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&ten, 90), Some(9));
        assert_eq!(percentile(&ten, 100), Some(10));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&(1..=11).collect::<Vec<_>>(), 90), Some(10));
        assert_eq!(mean(&[1, 2]), Some(1));
        assert_eq!(mean(&[i64::MAX, i64::MAX]), Some(i64::MAX));
    }

    #[test]
    fn ratios_and_durations_print_without_floats() {
        assert_eq!(Ratio::new(1, 4).map(|r| r.percent), Some("25.0".into()));
        assert_eq!(Ratio::new(1, 3).map(|r| r.percent), Some("33.3".into()));
        assert_eq!(Ratio::new(2, 3).map(|r| r.percent), Some("66.7".into()));
        assert_eq!(Ratio::new(0, 3).map(|r| r.percent), Some("0.0".into()));
        assert_eq!(Ratio::new(1, 0), None);
        assert_eq!(Seconds(0).human(), "0s");
        assert_eq!(Seconds(45).human(), "45s");
        assert_eq!(Seconds(7500).human(), "2h 5m");
        assert_eq!(Seconds(7200).human(), "2h");
        assert_eq!(Seconds(3 * 86_400 + 4 * 3600 + 59).human(), "3d 4h");
        assert_eq!(Seconds(-90).human(), "-1m 30s");
        assert_eq!(Seconds(i64::MIN).human(), "-106751991167300d 15h");
        assert_eq!(Seconds::from_micros(-1), Seconds(-1));
    }
}
