//! Backoff and `Retry-After` as pure functions of their inputs (deterministic in tests).
//!
//! The client calls them with the real clock and a random jitter; tests call them with fixed
//! values. Every wait the service asks for is clamped to [`MAX_SERVICE_WAIT`]: a header that
//! asks for days is a bug on the other side, and an hour is already longer than any limit of
//! the API (the slowest bucket, `POST /token`, refills 10 an hour: docs/api.md).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderName};

/// The longest wait a `Retry-After` or `X-RateLimit-Reset` header can impose.
pub const MAX_SERVICE_WAIT: Duration = Duration::from_secs(3600);

/// How often and how patiently to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Delay before attempt `attempt` (1 = the first retry): exponential, capped, with
/// `jitter` in `0.0..1.0` picking a point in the upper half ("equal jitter").
pub fn backoff(policy: &RetryPolicy, attempt: u32, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(31);
    let full = policy
        .base_delay
        .saturating_mul(1u32 << exponent)
        .min(policy.max_delay);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let half = full / 2;
    half + (full - half).mul_f64(jitter)
}

/// How long a 429 asks us to wait: `Retry-After` (seconds or HTTP date), else
/// `X-RateLimit-Reset` (seconds, or an epoch timestamp), else `None`.
///
/// `Retry-After` is delta seconds (`0`, `2`, `1.5`) or an HTTP date. `X-RateLimit-Reset` is
/// read by magnitude relative to `now`: a number near `now` in epoch milliseconds is a
/// millisecond timestamp, one near `now` in epoch seconds a second timestamp, anything
/// smaller a delta in seconds; an ISO-8601 timestamp is accepted too. A moment already past
/// means "now" (zero). Every result is clamped to [`MAX_SERVICE_WAIT`].
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let wait = header_text(headers, reqwest::header::RETRY_AFTER)
        .and_then(|text| parse_retry_after(&text, now))
        .or_else(|| {
            header_text(headers, HeaderName::from_static("x-ratelimit-reset"))
                .and_then(|text| parse_rate_limit_reset(&text, now))
        })?;
    Some(wait.min(MAX_SERVICE_WAIT))
}

fn header_text(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    let text = headers.get(name)?.to_str().ok()?.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn parse_retry_after(text: &str, now: SystemTime) -> Option<Duration> {
    if let Some(seconds) = parse_seconds(text) {
        return Some(seconds);
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn parse_rate_limit_reset(text: &str, now: SystemTime) -> Option<Duration> {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    if let Ok(number) = text.parse::<f64>() {
        if !number.is_finite() || number < 0.0 {
            return None;
        }
        let now_secs = since_epoch.as_secs_f64();
        // Half of "now" separates a timestamp from a delta in that unit: a reset a
        // decade in the past or a delta of decades are both absurd.
        let at_secs = if number >= now_secs * 1000.0 / 2.0 {
            number / 1000.0
        } else if number >= now_secs / 2.0 {
            number
        } else {
            return Some(duration_from_secs(number));
        };
        return Some(duration_from_secs(at_secs - now_secs));
    }
    if let Some(seconds) = parse_seconds(text) {
        return Some(seconds);
    }
    let at = match crate::cma::wire::WireTime::parse(text) {
        crate::cma::wire::WireTime::At(at) => at.timestamp_millis(),
        crate::cma::wire::WireTime::Unparsed(_) => return None,
    };
    let now_millis = i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX);
    let delta = u64::try_from(at.saturating_sub(now_millis)).unwrap_or(0);
    Some(Duration::from_millis(delta))
}

/// Non-negative decimal seconds (`0`, `12`, `1.5`).
fn parse_seconds(text: &str) -> Option<Duration> {
    if !text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let number: f64 = text.parse().ok()?;
    Some(duration_from_secs(number))
}

fn duration_from_secs(seconds: f64) -> Duration {
    if seconds.is_finite() && seconds > 0.0 {
        Duration::try_from_secs_f64(seconds)
            .unwrap_or(MAX_SERVICE_WAIT)
            .min(MAX_SERVICE_WAIT)
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    /// 2023-11-14T22:13:20Z, a whole second.
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn backoff_doubles_from_the_base_and_stays_in_the_upper_half() {
        let p = policy();
        assert_eq!(backoff(&p, 1, 0.0), Duration::from_millis(50));
        assert_eq!(backoff(&p, 1, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(&p, 2, 0.0), Duration::from_millis(100));
        assert_eq!(backoff(&p, 2, 0.5), Duration::from_millis(150));
        assert_eq!(backoff(&p, 3, 1.0), Duration::from_millis(400));
        // Attempt 0 is treated like the first retry.
        assert_eq!(backoff(&p, 0, 1.0), Duration::from_millis(100));
    }

    #[test]
    fn backoff_is_capped_and_survives_huge_attempts_and_bad_jitter() {
        let p = policy();
        assert_eq!(backoff(&p, 5, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(&p, 40, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(&p, u32::MAX, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(&p, 1, f64::NAN), Duration::from_millis(50));
        assert_eq!(backoff(&p, 1, 7.0), Duration::from_millis(100));
        assert_eq!(backoff(&p, 1, -1.0), Duration::from_millis(50));
    }

    #[test]
    fn retry_after_in_seconds_including_zero_and_decimals() {
        let at = now();
        let get = |v: &str| retry_after(&headers(&[("retry-after", v)]), at);
        assert_eq!(get("2"), Some(Duration::from_secs(2)));
        assert_eq!(get(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(get("0"), Some(Duration::ZERO));
        assert_eq!(get("1.5"), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn retry_after_as_an_http_date() {
        let at = now();
        let date = httpdate::fmt_http_date(at + Duration::from_secs(90));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &date)]), at),
            Some(Duration::from_secs(90))
        );
        let past = httpdate::fmt_http_date(at - Duration::from_secs(90));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &past)]), at),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn absurd_waits_are_clamped_to_an_hour() {
        let at = now();
        assert_eq!(
            retry_after(&headers(&[("retry-after", "999999999")]), at),
            Some(MAX_SERVICE_WAIT)
        );
        let far = httpdate::fmt_http_date(at + Duration::from_secs(86_400 * 3));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &far)]), at),
            Some(MAX_SERVICE_WAIT)
        );
        assert_eq!(
            retry_after(&headers(&[("x-ratelimit-reset", "1800000000")]), at),
            Some(MAX_SERVICE_WAIT)
        );
    }

    #[test]
    fn rate_limit_reset_as_delta_epoch_seconds_epoch_millis_and_iso() {
        let at = now();
        let get = |v: &str| retry_after(&headers(&[("x-ratelimit-reset", v)]), at);
        assert_eq!(get("7"), Some(Duration::from_secs(7)));
        assert_eq!(get("1700000012"), Some(Duration::from_secs(12)));
        assert_eq!(get("1700000012500"), Some(Duration::from_millis(12_500)));
        assert_eq!(get("2023-11-14T22:13:50Z"), Some(Duration::from_secs(30)));
        assert_eq!(
            get("2023-11-14T22:13:50.250+00:00"),
            Some(Duration::from_millis(30_250))
        );
        // A reset already past means "go now".
        assert_eq!(get("1699999990"), Some(Duration::ZERO));
        assert_eq!(get("1699999990000"), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_wins_over_rate_limit_reset_and_garbage_is_ignored() {
        let at = now();
        let both = headers(&[("retry-after", "3"), ("x-ratelimit-reset", "1700000060")]);
        assert_eq!(retry_after(&both, at), Some(Duration::from_secs(3)));
        let bad_first = headers(&[("retry-after", "soon"), ("x-ratelimit-reset", "5")]);
        assert_eq!(retry_after(&bad_first, at), Some(Duration::from_secs(5)));
        assert_eq!(retry_after(&headers(&[("retry-after", "-5")]), at), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "")]), at), None);
        assert_eq!(
            retry_after(&headers(&[("x-ratelimit-reset", "tomorrow")]), at),
            None
        );
        assert_eq!(retry_after(&HeaderMap::new(), at), None);
    }
}
