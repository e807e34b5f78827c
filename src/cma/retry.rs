//! Backoff and `Retry-After` as pure functions of their inputs (deterministic in tests).
//!
//! SKELETON: signatures fixed; bodies to be written (issue 3).

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

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
    let _ = (policy, attempt, jitter);
    todo!()
}

/// How long a 429 asks us to wait: `Retry-After` (seconds or HTTP date), else
/// `X-RateLimit-Reset` (seconds, or an epoch timestamp), else `None`.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let _ = (headers, now);
    todo!()
}
