//! Durations in policy files: `30m`, `8h`, `14d`, `2w` (one unit, a positive whole number).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A positive length of time, kept with the text it was written as (the text is what a policy's
/// digest covers, so `24h` and `1d` are different policies even if they mean the same).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    seconds: i64,
    text: String,
}

impl Span {
    pub fn parse(text: &str) -> Result<Span, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: i64 = num
            .parse()
            .map_err(|_| format!("{text:?} is not a duration like 30m, 8h, 14d or 2w"))?;
        let per = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 604_800,
            _ => {
                return Err(format!(
                    "{text:?}: unknown unit {unit:?} (use s, m, h, d or w)"
                ));
            }
        };
        if n <= 0 || n > 100 * 365 * 86_400 / per {
            return Err(format!("{text:?} must be positive and at most 100 years"));
        }
        Ok(Span {
            seconds: n * per,
            text: t.to_owned(),
        })
    }

    pub fn seconds(&self) -> i64 {
        self.seconds
    }

    pub fn micros(&self) -> i64 {
        self.seconds * 1_000_000
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        let text = String::deserialize(d)?;
        Span::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::Span;

    #[test]
    fn parses_units_and_refuses_nonsense() {
        assert_eq!(Span::parse("90m").map(|s| s.seconds()), Ok(5_400));
        assert_eq!(Span::parse("2w").map(|s| s.seconds()), Ok(1_209_600));
        for bad in ["", "h", "0h", "-1h", "1.5h", "3y", "10", "99999999999999d"] {
            assert!(Span::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
