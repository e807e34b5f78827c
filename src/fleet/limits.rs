//! Rate buckets per (cloud user, rate class), built on governor: requests of one user in one
//! class are spread evenly (burst 1), served first come first served, and a 429 pauses that
//! user's class for everyone while other users go on.
//!
//! Time comes from tokio's clock ([`TokioClock`]), so tests with paused time
//! (`#[tokio::test(start_paused = true)]`) measure the pacing in exact virtual time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::policy::{Rate, RateConfig};
use crate::cma::RateClass;
use crate::cma::client::{ApiObserver, Cancelled, RequestGate};

/// Every cloud user's buckets, created on first use.
pub struct RateLimits {
    config: RateConfig,
    observer: Arc<dyn ApiObserver>,
    /// Buckets by normalised user (trimmed, lower case: e-mail addresses are
    /// case-insensitive, and the limit is the account's whatever the spelling).
    users: Mutex<HashMap<String, Arc<UserLimits>>>,
}

impl RateLimits {
    pub fn new(config: RateConfig, observer: Arc<dyn ApiObserver>) -> RateLimits {
        RateLimits {
            config,
            observer,
            users: Mutex::new(HashMap::new()),
        }
    }

    /// The buckets of one cloud user (the same `Arc` for every call with that user).
    pub fn for_user(&self, user: &str) -> Arc<UserLimits> {
        let key = user.trim().to_lowercase();
        let mut users = self
            .users
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        users
            .entry(key)
            .or_insert_with(|| Arc::new(UserLimits::new(&self.config, self.observer.clone())))
            .clone()
    }
}

/// A governor clock reading tokio's time, so paused test time drives the buckets. Its
/// instants are durations since the clock was made.
#[derive(Debug, Clone)]
struct TokioClock {
    origin: Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// Requests are spaced this much wider than the limit allows: the service counts N requests
/// in a sliding window, so with exact spacing the (N+1)-th lands on the window's edge and any
/// network jitter turns it into a 429. 2% of 12 s is 240 ms of slack.
const SPACING_MARGIN: f64 = 0.02;

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

/// One (user, class) bucket.
struct RateBucket {
    /// Spreads requests evenly: burst 1, one token every `rate.interval()` (plus the margin).
    limiter: Limiter,
    /// Held by the waiter at the head of the line while it waits for its slot; tokio's
    /// mutex is fair, so waiters are served first come first served.
    line: tokio::sync::Mutex<()>,
    /// Nobody sends before this instant (set by a 429). Never held across an await.
    paused_until: Mutex<Option<Instant>>,
}

impl RateBucket {
    fn new(rate: Rate) -> RateBucket {
        let interval = rate
            .interval()
            .mul_f64(1.0 + SPACING_MARGIN)
            .max(Duration::from_nanos(1));
        let quota = Quota::with_period(interval)
            .unwrap_or_else(|| Quota::per_second(std::num::NonZeroU32::MAX));
        RateBucket {
            limiter: RateLimiter::direct_with_clock(quota, TokioClock::default()),
            line: tokio::sync::Mutex::new(()),
            paused_until: Mutex::new(None),
        }
    }

    fn pause_deadline(&self) -> Option<Instant> {
        let guard = self
            .paused_until
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        guard.filter(|until| *until > Instant::now())
    }

    /// Waits for the line, any pause, then a governor slot.
    async fn acquire(&self, cancel: &CancellationToken) -> Result<(), Cancelled> {
        if cancel.is_cancelled() {
            return Err(Cancelled);
        }
        let _turn = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Cancelled),
            turn = self.line.lock() => turn,
        };
        loop {
            if let Some(until) = self.pause_deadline() {
                sleep_until(until, cancel).await?;
                continue;
            }
            match self.limiter.check() {
                Ok(()) => return Ok(()),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.limiter.clock().now());
                    sleep_until(Instant::now() + wait, cancel).await?;
                }
            }
        }
    }

    fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut guard = self
            .paused_until
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if guard.is_none_or(|current| current < until) {
            *guard = Some(until);
        }
    }
}

async fn sleep_until(until: Instant, cancel: &CancellationToken) -> Result<(), Cancelled> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(Cancelled),
        _ = tokio::time::sleep_until(until) => Ok(()),
    }
}

/// One cloud user's buckets.
pub struct UserLimits {
    /// Indexed like [`RateClass::ALL`].
    buckets: [RateBucket; 4],
    /// Told of every non-zero wait (`cmafleet_rate_limit_wait_seconds_total`).
    observer: Arc<dyn ApiObserver>,
}

impl UserLimits {
    fn new(config: &RateConfig, observer: Arc<dyn ApiObserver>) -> UserLimits {
        UserLimits {
            buckets: RateClass::ALL.map(|class| RateBucket::new(config.get(class))),
            observer,
        }
    }

    fn bucket(&self, class: RateClass) -> &RateBucket {
        let index = match class {
            RateClass::CreateJob => 0,
            RateClass::CreateTask => 1,
            RateClass::Read => 2,
            RateClass::Token => 3,
        };
        &self.buckets[index]
    }

    /// When the pause of `class` ends, if one is in force (for plans and tests).
    pub fn paused_until(&self, class: RateClass) -> Option<Instant> {
        self.bucket(class).pause_deadline()
    }
}

impl RequestGate for UserLimits {
    fn acquire<'a>(
        &'a self,
        class: RateClass,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Duration, Cancelled>> {
        Box::pin(async move {
            let started = Instant::now();
            self.bucket(class).acquire(cancel).await?;
            let waited = started.elapsed();
            if !waited.is_zero() {
                self.observer.on_rate_wait(class, waited);
            }
            Ok(waited)
        })
    }

    fn pause(&self, class: RateClass, wait: Duration) {
        self.bucket(class).pause(wait);
    }
}

#[cfg(test)]
mod tests {
    /// An interval as the buckets space it (with the margin).
    fn spaced(interval: Duration) -> Duration {
        interval.mul_f64(1.0 + SPACING_MARGIN)
    }

    use super::*;
    use crate::cma::Endpoint;

    struct WaitLog(Mutex<Vec<(RateClass, Duration)>>);

    impl ApiObserver for WaitLog {
        fn on_response(&self, _: Endpoint, _: &str, _: Duration) {}
        fn on_retry(&self, _: Endpoint, _: &'static str) {}
        fn on_rate_limited(&self, _: Endpoint) {}
        fn on_rate_wait(&self, class: RateClass, waited: Duration) {
            self.0.lock().unwrap().push((class, waited));
        }
        fn on_surprise(&self, _: crate::cma::SurpriseKind) {}
    }

    fn limits(config: RateConfig) -> (RateLimits, Arc<WaitLog>) {
        let log = Arc::new(WaitLog(Mutex::new(Vec::new())));
        (RateLimits::new(config, log.clone()), log)
    }

    fn config(create_task: &str, read: &str) -> RateConfig {
        RateConfig {
            create_task: create_task.parse().unwrap(),
            read: read.parse().unwrap(),
            ..RateConfig::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn n_requests_take_exactly_n_minus_one_intervals() {
        let (limits, log) = limits(config("5/min", "600/min"));
        let user = limits.for_user("alice@example.com");
        let cancel = CancellationToken::new();
        let start = Instant::now();
        let mut admitted = Vec::new();
        for _ in 0..6 {
            user.acquire(RateClass::CreateTask, &cancel).await.unwrap();
            admitted.push(start.elapsed());
        }
        let expected: Vec<Duration> = (0..6)
            .map(|i| spaced(Duration::from_secs(12)) * i)
            .collect();
        assert_eq!(admitted, expected);
        // The first went at once; the five others each waited one interval.
        let waits = log.0.lock().unwrap().clone();
        assert_eq!(waits.len(), 5);
        assert!(
            waits
                .iter()
                .all(|(class, waited)| *class == RateClass::CreateTask
                    && *waited == spaced(Duration::from_secs(12)))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_uneven_interval_is_never_beaten() {
        // 7/min: 8.571428571 s apart; timers round up to the millisecond, never down.
        let (limits, _) = limits(config("7/min", "600/min"));
        let user = limits.for_user("alice@example.com");
        let cancel = CancellationToken::new();
        let start = Instant::now();
        for _ in 0..8 {
            user.acquire(RateClass::CreateTask, &cancel).await.unwrap();
        }
        let elapsed = start.elapsed();
        let exact = spaced(Duration::from_secs(60));
        assert!(elapsed >= exact, "{elapsed:?}");
        assert!(elapsed <= exact + Duration::from_millis(8), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_are_spread_evenly_first_come_first_served() {
        let (limits, _) = limits(config("5/min", "600/min"));
        let cancel = CancellationToken::new();
        let start = Instant::now();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for caller in 0..10u32 {
            let user = limits.for_user("bob@example.com");
            let cancel = cancel.clone();
            let order = order.clone();
            handles.push(tokio::spawn(async move {
                user.acquire(RateClass::Read, &cancel).await.unwrap();
                order.lock().unwrap().push((caller, start.elapsed()));
            }));
            // Let this caller reach the line before the next one is spawned.
            tokio::task::yield_now().await;
        }
        for handle in handles {
            handle.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        let expected: Vec<(u32, Duration)> = (0..10)
            .map(|i| (i, spaced(Duration::from_millis(100)) * i))
            .collect();
        assert_eq!(order, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn classes_and_users_have_their_own_buckets() {
        let (limits, _) = limits(config("5/min", "600/min"));
        let cancel = CancellationToken::new();
        let alice = limits.for_user("alice@example.com");
        let start = Instant::now();
        alice.acquire(RateClass::CreateTask, &cancel).await.unwrap();
        alice.acquire(RateClass::Read, &cancel).await.unwrap();
        alice.acquire(RateClass::CreateJob, &cancel).await.unwrap();
        limits
            .for_user("bob@example.com")
            .acquire(RateClass::CreateTask, &cancel)
            .await
            .unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);
        // The same user in another spelling is the same bucket.
        assert!(Arc::ptr_eq(&alice, &limits.for_user(" Alice@Example.com")));
        limits
            .for_user("ALICE@example.com")
            .acquire(RateClass::CreateTask, &cancel)
            .await
            .unwrap();
        assert_eq!(start.elapsed(), spaced(Duration::from_secs(12)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_caller_of_that_user_and_class_only() {
        let (limits, _) = limits(config("5/min", "600/min"));
        let cancel = CancellationToken::new();
        let alice = limits.for_user("alice@example.com");
        let start = Instant::now();
        alice.pause(RateClass::Read, Duration::from_secs(30));
        assert!(alice.paused_until(RateClass::Read).is_some());

        let mut held = Vec::new();
        for _ in 0..3 {
            let alice = alice.clone();
            let cancel = cancel.clone();
            held.push(tokio::spawn(async move {
                alice.acquire(RateClass::Read, &cancel).await.unwrap();
                start.elapsed()
            }));
        }
        // Other classes of alice and other users go on at once.
        alice.acquire(RateClass::CreateTask, &cancel).await.unwrap();
        limits
            .for_user("bob@example.com")
            .acquire(RateClass::Read, &cancel)
            .await
            .unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);

        let mut times = Vec::new();
        for handle in held {
            times.push(handle.await.unwrap());
        }
        times.sort();
        assert_eq!(
            times,
            vec![
                Duration::from_secs(30),
                Duration::from_secs(30) + spaced(Duration::from_millis(100)),
                Duration::from_secs(30) + spaced(Duration::from_millis(100)) * 2
            ]
        );
        assert!(alice.paused_until(RateClass::Read).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_longer_pause_extends_and_a_shorter_one_does_not_shorten() {
        let (limits, _) = limits(RateConfig::default());
        let user = limits.for_user("carol@example.com");
        let cancel = CancellationToken::new();
        let start = Instant::now();
        user.pause(RateClass::CreateJob, Duration::from_secs(10));
        user.pause(RateClass::CreateJob, Duration::from_secs(2));
        user.acquire(RateClass::CreateJob, &cancel).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(10));

        // A pause arriving while a caller waits for its slot holds that caller too.
        let waiter = {
            let user = user.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move { user.acquire(RateClass::CreateJob, &cancel).await })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        user.pause(RateClass::CreateJob, Duration::from_secs(60));
        waiter.await.unwrap().unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(71));
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_ends_a_wait_promptly() {
        let (limits, _) = limits(RateConfig::default());
        let user = limits.for_user("dave@example.com");
        let cancel = CancellationToken::new();
        user.acquire(RateClass::Token, &cancel).await.unwrap();
        let start = Instant::now();
        let waiter = {
            let user = user.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move { user.acquire(RateClass::Token, &cancel).await })
        };
        // A second waiter queued behind the first is released too.
        let queued = {
            let user = user.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move { user.acquire(RateClass::Token, &cancel).await })
        };
        tokio::time::sleep(Duration::from_secs(5)).await;
        cancel.cancel();
        assert_eq!(waiter.await.unwrap(), Err(Cancelled));
        assert_eq!(queued.await.unwrap(), Err(Cancelled));
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        // A cancelled token refuses at once, even with a free slot.
        let other = limits.for_user("erin@example.com");
        assert_eq!(
            other.acquire(RateClass::Read, &cancel).await,
            Err(Cancelled)
        );
        // A pause is cancellable as well.
        let fresh = CancellationToken::new();
        other.pause(RateClass::Read, Duration::from_secs(600));
        let pending = {
            let other = other.clone();
            let fresh = fresh.clone();
            tokio::spawn(async move { other.acquire(RateClass::Read, &fresh).await })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        fresh.cancel();
        assert_eq!(pending.await.unwrap(), Err(Cancelled));
        assert_eq!(start.elapsed(), Duration::from_secs(6));
    }
}
