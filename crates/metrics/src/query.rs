//! What to measure: environments, the time window and how it is cut into buckets.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use trailmark_model::Timestamp;

const DAY_US: i64 = 86_400_000_000;

/// More buckets than this is refused: a chart of thousands of bars says nothing, and a window of
/// centuries in days would allocate for nothing.
pub const MAX_BUCKETS: usize = 2000;

/// Environments whose deployments count. Names are matched case-insensitively (as the dossier's
/// audit does), so `Production` and `production` are one environment; several names cover
/// tools that spell the same environment differently (`production`, `prod`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvFilter(Vec<String>);

impl EnvFilter {
    /// Every environment.
    pub fn any() -> EnvFilter {
        EnvFilter(Vec::new())
    }

    /// Only these environments (blank names are ignored; none left means every environment).
    pub fn names<I, S>(names: I) -> EnvFilter
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut v: Vec<String> = names
            .into_iter()
            .map(|n| n.as_ref().trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        v.sort_by_key(|n| n.to_ascii_lowercase());
        v.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        EnvFilter(v)
    }

    pub fn matches(&self, env: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|n| n.eq_ignore_ascii_case(env.trim()))
    }

    /// The names, empty for "every environment".
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for EnvFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("any environment")
        } else {
            f.write_str(&self.0.join(" or "))
        }
    }
}

/// How the window is cut. Days and weeks are UTC calendar days and ISO weeks (Monday to
/// Sunday), clipped to the window; `Days(n)` are consecutive spans of n days from the window's
/// start, e.g. sprints when the window starts on a sprint's first day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    Day,
    IsoWeek,
    Days(u32),
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bucket::Day => f.write_str("day"),
            Bucket::IsoWeek => f.write_str("iso-week"),
            Bucket::Days(n) => write!(f, "{n}d"),
        }
    }
}

/// `day`, `week` / `iso-week`, or `<n>d` (e.g. `14d`), as a query string would carry it.
impl FromStr for Bucket {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Bucket, QueryError> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "day" | "1d" => Ok(Bucket::Day),
            "week" | "iso-week" | "isoweek" => Ok(Bucket::IsoWeek),
            _ => s
                .strip_suffix('d')
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|n| *n > 0)
                .map(Bucket::Days)
                .ok_or(QueryError::Bucket(s)),
        }
    }
}

/// Why a query was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("the window is empty: `from` ({from}) must be before `to` ({to})")]
    EmptyWindow { from: String, to: String },
    #[error("bucket {0:?} is not `day`, `week` or `<n>d` with n ≥ 1")]
    Bucket(String),
    #[error("the window would have {0} buckets (at most {MAX_BUCKETS}); choose a larger bucket")]
    TooManyBuckets(u64),
}

/// One bucket of the window: `[from, to)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BucketSpan {
    /// `2024-01-15` (a day, or the first day of an n-day span) or `2024-W03`.
    pub label: String,
    pub from: String,
    pub to: String,
    #[serde(skip)]
    pub(crate) from_us: i64,
    #[serde(skip)]
    pub(crate) to_us: i64,
}

/// A validated query. Built with [`Query::new`], so a window is never empty or absurdly fine.
#[derive(Clone, Debug)]
pub struct Query {
    pub(crate) envs: EnvFilter,
    pub(crate) from: Timestamp,
    pub(crate) to: Timestamp,
    pub(crate) bucket: Bucket,
    pub(crate) buckets: Vec<BucketSpan>,
    pub(crate) ai_actors: BTreeSet<String>,
    pub(crate) people: BTreeMap<String, String>,
}

impl Query {
    /// Measures `[from, to)` for `envs`, cut into `bucket`s.
    pub fn new(
        envs: EnvFilter,
        from: Timestamp,
        to: Timestamp,
        bucket: Bucket,
    ) -> Result<Query, QueryError> {
        if from >= to {
            return Err(QueryError::EmptyWindow {
                from: from.to_string(),
                to: to.to_string(),
            });
        }
        let buckets = spans(from.as_micros(), to.as_micros(), bucket)?;
        Ok(Query {
            envs,
            from,
            to,
            bucket,
            buckets,
            ai_actors: BTreeSet::new(),
            people: BTreeMap::new(),
        })
    }

    /// Identities (as records carry them: `github:copilot-swe-agent[bot]`, `email:bot@x`)
    /// of AI agents: changes they author are AI-generated, and what they do is never a
    /// human review.
    pub fn with_ai_actors<I, S>(mut self, actors: I) -> Query
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ai_actors = actors.into_iter().map(Into::into).collect();
        self
    }

    /// Raw identity → person (e.g. from the identity map), so one approver who decides through
    /// two tools is counted once. Identities not in the map stand for themselves.
    pub fn with_people(mut self, people: BTreeMap<String, String>) -> Query {
        self.people = people;
        self
    }

    pub fn buckets(&self) -> &[BucketSpan] {
        &self.buckets
    }

    pub(crate) fn in_window(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.to
    }

    /// The bucket holding `t`, if `t` is in the window.
    pub(crate) fn bucket_of(&self, t: Timestamp) -> Option<usize> {
        let us = t.as_micros();
        if !self.in_window(t) {
            return None;
        }
        // Buckets are contiguous and sorted: the last one starting at or before `t`.
        let i = self.buckets.partition_point(|b| b.from_us <= us);
        i.checked_sub(1)
    }

    pub(crate) fn person(&self, identity: &str) -> String {
        self.people
            .get(identity)
            .cloned()
            .unwrap_or_else(|| identity.to_owned())
    }
}

fn ts(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The civil UTC date of a day number (days since 1970-01-01).
fn date_of_day(day: i64) -> Option<jiff::civil::Date> {
    let t = jiff::Timestamp::from_second(day.checked_mul(86_400)?).ok()?;
    Some(t.to_zoned_datetime(jiff::tz::TimeZone::UTC).date())
}

fn day_label(day: i64) -> String {
    date_of_day(day).map(|d| d.to_string()).unwrap_or_default()
}

fn week_label(day: i64) -> String {
    date_of_day(day)
        .map(|d| {
            let w = d.iso_week_date();
            format!("{:04}-W{:02}", w.year(), w.week())
        })
        .unwrap_or_default()
}

fn spans(from: i64, to: i64, bucket: Bucket) -> Result<Vec<BucketSpan>, QueryError> {
    // Boundaries after `from`, in microseconds, and the label of each bucket's first day.
    let step = match bucket {
        Bucket::Day => DAY_US,
        Bucket::IsoWeek => 7 * DAY_US,
        Bucket::Days(0) => return Err(QueryError::Bucket("0d".into())),
        Bucket::Days(n) => i64::from(n).saturating_mul(DAY_US),
    };
    // The first boundary after `from`: calendar-aligned for days and weeks, `from + n days`
    // for spans.
    let first_day = from.div_euclid(DAY_US);
    let first_end = match bucket {
        Bucket::Day => (first_day + 1) * DAY_US,
        // 1970-01-01 was a Thursday: day + 3 is 0 on Mondays.
        Bucket::IsoWeek => (first_day - (first_day + 3).rem_euclid(7) + 7) * DAY_US,
        Bucket::Days(_) => from.saturating_add(step),
    };
    let count = if first_end >= to {
        1
    } else {
        // Ceiling of the remaining span over the step, plus the first bucket.
        let rest = (to - first_end) as u128;
        1 + rest.div_ceil(step as u128) as u64
    };
    if count > MAX_BUCKETS as u64 {
        return Err(QueryError::TooManyBuckets(count));
    }
    let mut out = Vec::new();
    let mut start = from;
    let mut end = first_end.min(to);
    loop {
        let day = start.div_euclid(DAY_US);
        let label = match bucket {
            Bucket::IsoWeek => week_label(day),
            _ => day_label(day),
        };
        out.push(BucketSpan {
            label,
            from: ts(start),
            to: ts(end),
            from_us: start,
            to_us: end,
        });
        if end >= to {
            break;
        }
        start = end;
        end = end.saturating_add(step).min(to);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn iso_weeks_are_monday_aligned_and_clipped() {
        // 2024-01-03 is a Wednesday of 2024-W01; 2024-01-17 a Wednesday of W03.
        let q = Query::new(
            EnvFilter::any(),
            t("2024-01-03T12:00:00Z"),
            t("2024-01-17T00:00:00Z"),
            Bucket::IsoWeek,
        )
        .unwrap();
        let labels: Vec<_> = q.buckets().iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["2024-W01", "2024-W02", "2024-W03"]);
        assert_eq!(q.buckets()[0].from, "2024-01-03T12:00:00Z");
        assert_eq!(q.buckets()[0].to, "2024-01-08T00:00:00Z");
        assert_eq!(q.buckets()[2].to, "2024-01-17T00:00:00Z");
        // The ISO year differs from the calendar year around new year.
        let q = Query::new(
            EnvFilter::any(),
            t("2024-12-30T00:00:00Z"),
            t("2025-01-06T00:00:00Z"),
            Bucket::IsoWeek,
        )
        .unwrap();
        assert_eq!(q.buckets().len(), 1);
        assert_eq!(q.buckets()[0].label, "2025-W01");
    }

    #[test]
    fn spans_and_limits() {
        let q = Query::new(
            EnvFilter::any(),
            t("2024-01-01T09:00:00Z"),
            t("2024-01-30T09:00:00Z"),
            "14d".parse().unwrap(),
        )
        .unwrap();
        let b: Vec<_> = q
            .buckets()
            .iter()
            .map(|b| (b.label.as_str(), b.to.as_str()))
            .collect();
        assert_eq!(
            b,
            [
                ("2024-01-01", "2024-01-15T09:00:00Z"),
                ("2024-01-15", "2024-01-29T09:00:00Z"),
                ("2024-01-29", "2024-01-30T09:00:00Z"),
            ]
        );
        assert_eq!(q.bucket_of(t("2024-01-15T08:59:59Z")), Some(0));
        assert_eq!(q.bucket_of(t("2024-01-15T09:00:00Z")), Some(1));
        assert_eq!(q.bucket_of(t("2024-01-30T09:00:00Z")), None);
        assert!(matches!(
            Query::new(
                EnvFilter::any(),
                t("1970-01-01T00:00:00Z"),
                t("2024-01-01T00:00:00Z"),
                Bucket::Day
            ),
            Err(QueryError::TooManyBuckets(19723))
        ));
        assert!(matches!(
            Query::new(
                EnvFilter::any(),
                t("2024-01-02T00:00:00Z"),
                t("2024-01-02T00:00:00Z"),
                Bucket::Day
            ),
            Err(QueryError::EmptyWindow { .. })
        ));
        assert!("0d".parse::<Bucket>().is_err());
        assert!("fortnight".parse::<Bucket>().is_err());
        assert_eq!("Week".parse::<Bucket>().unwrap(), Bucket::IsoWeek);
    }

    #[test]
    fn env_filter_is_case_insensitive() {
        let f = EnvFilter::names(["production", "PROD", " prod ", ""]);
        assert_eq!(f.as_slice(), ["PROD", "production"]);
        assert!(f.matches("Production"));
        assert!(f.matches("prod"));
        assert!(!f.matches("staging"));
        assert!(EnvFilter::any().matches("staging"));
    }
}
