//! Rate buckets per (cloud user, rate class), built on governor: requests of one user in one
//! class are spread evenly (burst 1), served first come first served, and a 429 pauses that
//! user's class for everyone while other users go on.
//!
//! SKELETON: signatures fixed; bodies to be written (issue 3).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::cma::RateClass;
use crate::cma::client::{ApiObserver, Cancelled, RequestGate};

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
    "bad rate `{text}`: expected COUNT/UNIT with UNIT one of s, sec, min, h, hour (e.g. 5/min)"
)]
pub struct RateParseError {
    pub text: String,
}

impl FromStr for Rate {
    type Err = RateParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let _ = text;
        todo!()
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!()
    }
}

/// The limits of every class (cma-api.md's defaults).
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

/// Every cloud user's buckets, created on first use.
pub struct RateLimits {
    config: RateConfig,
    observer: Arc<dyn ApiObserver>,
}

impl RateLimits {
    pub fn new(config: RateConfig, observer: Arc<dyn ApiObserver>) -> RateLimits {
        RateLimits { config, observer }
    }

    pub fn config(&self) -> &RateConfig {
        &self.config
    }

    /// The buckets of one cloud user (the same `Arc` for every call with that user).
    pub fn for_user(&self, user: &str) -> Arc<UserLimits> {
        let _ = (user, &self.observer);
        todo!()
    }
}

/// One cloud user's buckets.
pub struct UserLimits {}

impl RequestGate for UserLimits {
    fn acquire<'a>(
        &'a self,
        class: RateClass,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Duration, Cancelled>> {
        let _ = (class, cancel);
        todo!()
    }

    fn pause(&self, class: RateClass, wait: Duration) {
        let _ = (class, wait);
        todo!()
    }
}
