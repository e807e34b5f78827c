//! The run's policy values: the cloud users' rate limits ([`RateConfig`], with the parsing of
//! `5/min`-style rates) and the polling bounds ([`PollPolicy`]). Settings build them and the
//! fleet receives them; they hold no state and know nothing of where a value came from, so
//! fleet never needs the settings' types.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::cma::RateClass;

/// `count` requests per `per`, e.g. `5/min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    pub const fn per_minute(count: u32) -> Rate {
        Rate {
            count,
            per: Duration::from_secs(60),
        }
    }

    /// The even spacing between two requests.
    pub fn interval(&self) -> Duration {
        self.per / self.count.max(1)
    }

    /// Requests per second.
    pub fn per_second(&self) -> f64 {
        f64::from(self.count) / self.per.as_secs_f64()
    }
}

/// A malformed rate string (exit 78).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad rate `{text}`: expected COUNT/UNIT with COUNT a whole number of at least 1 and UNIT one of s, sec, second, m, min, minute, h, hour, optionally with a multiple (e.g. 5/min, 600/min, 10/hour, 1/30s)"
)]
pub struct RateParseError {
    pub text: String,
}

/// Units a rate may be written in, longest spellings first.
const UNITS: [(&str, Duration); 14] = [
    ("seconds", Duration::from_secs(1)),
    ("second", Duration::from_secs(1)),
    ("secs", Duration::from_secs(1)),
    ("sec", Duration::from_secs(1)),
    ("s", Duration::from_secs(1)),
    ("minutes", Duration::from_secs(60)),
    ("minute", Duration::from_secs(60)),
    ("mins", Duration::from_secs(60)),
    ("min", Duration::from_secs(60)),
    ("m", Duration::from_secs(60)),
    ("hours", Duration::from_secs(3600)),
    ("hour", Duration::from_secs(3600)),
    ("h", Duration::from_secs(3600)),
    ("ms", Duration::from_millis(1)),
];

impl FromStr for Rate {
    type Err = RateParseError;

    /// `COUNT/UNIT` or `COUNT/MULTIPLE UNIT` without spaces (`5/min`, `1/30s`); units are
    /// case-insensitive. `ms` is accepted so that every `Display` output parses back.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || RateParseError {
            text: text.to_owned(),
        };
        let (count, unit) = text.trim().split_once('/').ok_or_else(error)?;
        let count = parse_positive(count).ok_or_else(error)?;
        let unit = unit.to_ascii_lowercase();
        let digits = unit.len() - unit.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (multiple, name) = unit.split_at(digits);
        let multiple = if multiple.is_empty() {
            1
        } else {
            parse_positive(multiple).ok_or_else(error)?
        };
        let base = UNITS
            .iter()
            .find(|(spelling, _)| *spelling == name)
            .map(|(_, base)| *base)
            .ok_or_else(error)?;
        let per = base.checked_mul(multiple).ok_or_else(error)?;
        Ok(Rate { count, per })
    }
}

/// A whole number ≥ 1 made of ASCII digits only (no sign, no spaces).
fn parse_positive(text: &str) -> Option<u32> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|n| *n >= 1)
}

impl fmt::Display for Rate {
    /// The shortest spelling that parses back: `5/min`, `10/hour`, `2/s`, `1/30s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.per.as_millis();
        let (multiple, unit) = if millis != 0 && millis.is_multiple_of(3_600_000) {
            (millis / 3_600_000, "hour")
        } else if millis != 0 && millis.is_multiple_of(60_000) {
            (millis / 60_000, "min")
        } else if millis != 0 && millis.is_multiple_of(1000) {
            (millis / 1000, "s")
        } else {
            (millis.max(1), "ms")
        };
        if multiple == 1 {
            write!(f, "{}/{unit}", self.count)
        } else {
            write!(f, "{}/{multiple}{unit}", self.count)
        }
    }
}

/// The limits of every rate class; the defaults are the service's documented limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateConfig {
    pub create_job: Rate,
    pub create_task: Rate,
    pub read: Rate,
    pub token: Rate,
}

impl RateConfig {
    pub fn get(&self, class: RateClass) -> Rate {
        match class {
            RateClass::CreateJob => self.create_job,
            RateClass::CreateTask => self.create_task,
            RateClass::Read => self.read,
            RateClass::Token => self.token,
        }
    }
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig {
            create_job: Rate::per_minute(5),
            create_task: Rate::per_minute(5),
            read: Rate::per_minute(600),
            token: Rate {
                count: 10,
                per: Duration::from_secs(3600),
            },
        }
    }
}

/// `--poll-min` and `--poll-max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    pub min: Duration,
    pub max: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            min: Duration::from_secs(5),
            max: Duration::from_secs(60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_every_documented_unit() {
        let parse = |text: &str| text.parse::<Rate>().unwrap();
        assert_eq!(parse("5/min"), Rate::per_minute(5));
        assert_eq!(parse("600/min"), Rate::per_minute(600));
        assert_eq!(parse("5/minute"), Rate::per_minute(5));
        assert_eq!(parse("5/m"), Rate::per_minute(5));
        assert_eq!(parse(" 5/MIN "), Rate::per_minute(5));
        let hourly = Rate {
            count: 10,
            per: Duration::from_secs(3600),
        };
        assert_eq!(parse("10/hour"), hourly);
        assert_eq!(parse("10/h"), hourly);
        let per_second = Rate {
            count: 2,
            per: Duration::from_secs(1),
        };
        for text in ["2/s", "2/sec", "2/second", "2/seconds"] {
            assert_eq!(parse(text), per_second, "{text}");
        }
        assert_eq!(
            parse("1/30s"),
            Rate {
                count: 1,
                per: Duration::from_secs(30)
            }
        );
    }

    #[test]
    fn malformed_rates_are_refused_with_what_is_expected() {
        for text in [
            "",
            "5",
            "5/",
            "/min",
            "0/min",
            "-1/min",
            "five/min",
            "5/fortnight",
            "5 / min",
            "5/min/s",
            "5.5/min",
            "5/0s",
            "99999999999/min",
        ] {
            let err = text.parse::<Rate>().unwrap_err();
            assert_eq!(err.text, text);
            let message = err.to_string();
            assert!(message.contains("COUNT/UNIT"), "{message}");
            assert!(message.contains("5/min"), "{message}");
        }
    }

    #[test]
    fn rates_display_in_a_form_that_parses_back() {
        for text in [
            "5/min", "600/min", "10/hour", "2/s", "1/30s", "3/90min", "7/250ms",
        ] {
            let rate: Rate = text.parse().unwrap();
            assert_eq!(rate.to_string(), text);
            assert_eq!(rate.to_string().parse::<Rate>().unwrap(), rate);
        }
        assert_eq!(RateConfig::default().token.to_string(), "10/hour");
        assert_eq!(Rate::per_minute(600).interval(), Duration::from_millis(100));
    }
}
