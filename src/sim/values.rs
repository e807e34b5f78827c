//! The value types of a scenario file (durations, rates, probabilities, outcomes and the
//! small enums of the `[api]` table), each validated while it is deserialised so that a bad
//! value is reported with its line.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::cma::wire::Outcome;

/// A duration written `"4m"`, `"1h 30m"`, `"250ms"` (humantime) or as a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct DurationValue(pub Duration);

impl DurationValue {
    pub(crate) fn secs(self) -> f64 {
        self.0.as_secs_f64()
    }

    /// Parses the text form (`"90s"`, `"4m"`, `"1h 30m"`, `"2.5"` seconds).
    pub(crate) fn parse(text: &str) -> Result<DurationValue, String> {
        let text = text.trim();
        if let Ok(seconds) = text.parse::<f64>() {
            return Self::from_secs(seconds);
        }
        humantime::parse_duration(text)
            .map(DurationValue)
            .map_err(|err| {
                format!(
                    "invalid duration `{text}` ({err}); write e.g. \"90s\", \"4m\" or \"1h 30m\""
                )
            })
    }

    fn from_secs(seconds: f64) -> Result<DurationValue, String> {
        if seconds.is_finite() && seconds >= 0.0 {
            Ok(DurationValue(Duration::from_secs_f64(seconds)))
        } else {
            Err(format!(
                "invalid duration {seconds}: must be zero or more seconds"
            ))
        }
    }
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a duration such as \"90s\", \"4m\", \"1h 30m\", or a number of seconds",
                )
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<DurationValue, E> {
                DurationValue::parse(text).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<DurationValue, E> {
                Ok(DurationValue(Duration::from_secs(n)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<DurationValue, E> {
                DurationValue::from_secs(n as f64).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<DurationValue, E> {
                DurationValue::from_secs(n).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

/// A rate limit: at most `limit` requests in any window of `per` (sliding), or none at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rate {
    Limited { limit: u32, per: Duration },
    Unlimited,
}

impl Rate {
    pub(crate) const fn per_minute(limit: u32) -> Rate {
        Rate::Limited {
            limit,
            per: Duration::from_secs(60),
        }
    }

    pub(crate) const fn per_hour(limit: u32) -> Rate {
        Rate::Limited {
            limit,
            per: Duration::from_secs(3600),
        }
    }

    /// Parses `"5/min"`, `"600/minute"`, `"10/hour"`, `"2/s"`, `"5/90s"` or `"unlimited"`.
    pub(crate) fn parse(text: &str) -> Result<Rate, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("unlimited") || text.eq_ignore_ascii_case("off") {
            return Ok(Rate::Unlimited);
        }
        let hint = "write e.g. \"5/min\", \"600/minute\", \"10/hour\", \"5/90s\" or \"unlimited\"";
        let Some((count, unit)) = text.split_once('/') else {
            return Err(format!("invalid rate `{text}`; {hint}"));
        };
        let limit: u32 = count.trim().parse().map_err(|_| {
            format!(
                "invalid rate `{text}`: `{}` is not a whole number; {hint}",
                count.trim()
            )
        })?;
        let per = match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            "d" | "day" => Duration::from_secs(86_400),
            other => humantime::parse_duration(other)
                .map_err(|_| format!("invalid rate `{text}`: unknown period `{other}`; {hint}"))?,
        };
        if per.is_zero() {
            return Err(format!(
                "invalid rate `{text}`: the period must be longer than zero"
            ));
        }
        Ok(Rate::Limited { limit, per })
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Rate::parse(&text).map_err(de::Error::custom)
    }
}

/// A probability between 0 and 1 (a fault rate).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub(crate) struct Probability(pub f64);

impl<'de> Deserialize<'de> for Probability {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        if (0.0..=1.0).contains(&value) {
            Ok(Probability(value))
        } else {
            Err(de::Error::custom(format!(
                "invalid rate {value}: must be between 0 and 1 (e.g. 0.05 for 5%)"
            )))
        }
    }
}

/// The outcome a scenario gives a check or a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) enum PlannedOutcome {
    #[default]
    Success,
    Warning,
    Failed,
}

impl PlannedOutcome {
    pub(crate) fn wire(self) -> Outcome {
        match self {
            PlannedOutcome::Success => Outcome::Success,
            PlannedOutcome::Warning => Outcome::Warning,
            PlannedOutcome::Failed => Outcome::Failed,
        }
    }
}

impl<'de> Deserialize<'de> for PlannedOutcome {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.to_ascii_uppercase().as_str() {
            "SUCCESS" => Ok(PlannedOutcome::Success),
            "WARNING" => Ok(PlannedOutcome::Warning),
            "FAILED" => Ok(PlannedOutcome::Failed),
            _ => Err(de::Error::custom(format!(
                "unknown outcome `{text}`, expected SUCCESS, WARNING or FAILED"
            ))),
        }
    }
}

/// The form `links.next` takes in paginated answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LinkForm {
    /// `http://HOST/migrations/…?cursor=…`
    #[default]
    Url,
    /// `/migrations/…?cursor=…`
    Path,
    /// The cursor alone.
    Cursor,
}

/// How the last page says it is the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LastPage {
    /// `links: { "self": … }` without `next`.
    #[default]
    Absent,
    /// `"next": null`.
    Null,
    /// `"next": ""`.
    Empty,
    /// `links: {}`.
    EmptyLinks,
}

/// How timestamps (`createdAt`, `expireAt`, `expiryTime`) are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TimeFormat {
    /// ISO-8601 / RFC 3339 with milliseconds, UTC.
    #[default]
    Iso,
    EpochSeconds,
    EpochMillis,
}

/// How a 429 says when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RetryAfterForm {
    /// `Retry-After: N` whole seconds (rounded up, at least 1) plus `X-RateLimit-Reset`.
    #[default]
    Seconds,
    /// `Retry-After: <HTTP date>` (rounded up to the next second) plus `X-RateLimit-Reset`.
    HttpDate,
    /// No `Retry-After`; only `X-RateLimit-Reset` (ISO-8601 with milliseconds).
    ResetOnly,
    /// Neither header: the client must back off on its own.
    None,
}

/// The order of a status node's children, which decides what each page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StatusOrder {
    /// By name: pages hold the same children from one read to the next.
    #[default]
    Name,
    /// Unfinished children first, then finished ones (each group by name): as children
    /// finish they move to later pages, so the pages of one tree change between reads.
    UnfinishedFirst,
}

/// Whether simulated time follows the wall clock or moves only when told to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ClockMode {
    #[default]
    Real,
    /// Time stands still except for `POST /_sim/clock/advance?by=…`.
    Manual,
}

/// What a lost create answer looks like to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub(crate) enum LostCreateMode {
    /// A 504 Gateway Timeout, although the job or task was created.
    #[default]
    #[serde(rename = "504")]
    GatewayTimeout,
    /// The connection is closed without any answer.
    #[serde(rename = "drop")]
    Drop,
    /// Either, chosen per request from the seed.
    #[serde(rename = "mixed")]
    Mixed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_form() {
        assert_eq!(DurationValue::parse("90s").unwrap().secs(), 90.0);
        assert_eq!(DurationValue::parse("1h 30m").unwrap().secs(), 5400.0);
        assert_eq!(DurationValue::parse("2.5").unwrap().secs(), 2.5);
        assert_eq!(DurationValue::parse("250ms").unwrap().secs(), 0.25);
        assert!(DurationValue::parse("soon").unwrap_err().contains("`soon`"));
        assert!(DurationValue::parse("-3").is_err());
    }

    #[test]
    fn rates_parse_in_every_form() {
        assert_eq!(Rate::parse("5/min").unwrap(), Rate::per_minute(5));
        assert_eq!(Rate::parse("10/hour").unwrap(), Rate::per_hour(10));
        assert_eq!(
            Rate::parse("5/90s").unwrap(),
            Rate::Limited {
                limit: 5,
                per: Duration::from_secs(90)
            }
        );
        assert_eq!(Rate::parse("unlimited").unwrap(), Rate::Unlimited);
        assert!(
            Rate::parse("five/min")
                .unwrap_err()
                .contains("not a whole number")
        );
        assert!(
            Rate::parse("5/fortnight")
                .unwrap_err()
                .contains("unknown period")
        );
        assert!(Rate::parse("5").is_err());
    }
}
