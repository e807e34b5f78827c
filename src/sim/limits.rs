//! The per-user rate limits of the cloud API: one sliding window per (user, endpoint class),
//! at most N accepted requests in any window, the window divided by the time scale.

use std::collections::{HashMap, VecDeque};

use super::values::Rate;

/// The endpoint classes that share a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum RateClass {
    CreateJob,
    CreateTask,
    Read,
    Token,
}

impl RateClass {
    pub(crate) fn label(self) -> &'static str {
        match self {
            RateClass::CreateJob => "create_job",
            RateClass::CreateTask => "create_task",
            RateClass::Read => "read",
            RateClass::Token => "token",
        }
    }
}

/// One sliding window: the instants (real seconds) of the requests it accepted.
#[derive(Debug)]
pub(crate) struct RateWindow {
    limit: usize,
    /// Real seconds (the scenario's period divided by the time scale).
    window: f64,
    accepted: VecDeque<f64>,
}

impl RateWindow {
    pub(super) fn new(limit: u32, window: f64) -> RateWindow {
        RateWindow {
            limit: limit as usize,
            window,
            accepted: VecDeque::new(),
        }
    }

    /// Accepts a request at `now`, or says how many real seconds until one would be.
    pub(super) fn try_take(&mut self, now: f64) -> Result<(), f64> {
        while self
            .accepted
            .front()
            .is_some_and(|at| *at + self.window <= now)
        {
            self.accepted.pop_front();
        }
        if self.accepted.len() < self.limit {
            self.accepted.push_back(now);
            return Ok(());
        }
        let wait = match self.accepted.front() {
            Some(oldest) => *oldest + self.window - now,
            // A limit of zero never frees up; say "a whole window".
            None => self.window,
        };
        Err(wait.max(0.0))
    }
}

/// Every user's windows.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    windows: HashMap<(String, RateClass), RateWindow>,
}

impl RateLimiter {
    /// Accepts a request of `user` in `class` under `rate` (whose period is divided by
    /// `scale`), or says how many real seconds to wait.
    pub(super) fn try_take(
        &mut self,
        user: &str,
        class: RateClass,
        rate: Rate,
        scale: f64,
        now: f64,
    ) -> Result<(), f64> {
        let Rate::Limited { limit, per } = rate else {
            return Ok(());
        };
        let key = (user.to_owned(), class);
        self.windows
            .entry(key)
            .or_insert_with(|| RateWindow::new(limit, per.as_secs_f64() / scale))
            .try_take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_accepts_n_then_says_when_the_oldest_leaves() {
        let mut window = RateWindow::new(5, 60.0);
        for second in 0..5 {
            assert_eq!(window.try_take(f64::from(second)), Ok(()));
        }
        assert_eq!(window.try_take(10.0), Err(50.0));
        assert_eq!(window.try_take(60.0), Ok(()));
        assert_eq!(window.try_take(60.5), Err(0.5));
    }

    #[test]
    fn windows_are_per_user_and_class_and_scaled() {
        let mut limiter = RateLimiter::default();
        let rate = Rate::per_minute(1);
        assert!(
            limiter
                .try_take("a", RateClass::CreateJob, rate, 60.0, 0.0)
                .is_ok()
        );
        assert_eq!(
            limiter.try_take("a", RateClass::CreateJob, rate, 60.0, 0.25),
            Err(0.75)
        );
        assert!(
            limiter
                .try_take("b", RateClass::CreateJob, rate, 60.0, 0.25)
                .is_ok()
        );
        assert!(
            limiter
                .try_take("a", RateClass::CreateTask, rate, 60.0, 0.25)
                .is_ok()
        );
        assert!(
            limiter
                .try_take("a", RateClass::CreateJob, rate, 60.0, 1.0)
                .is_ok()
        );
        assert!(
            limiter
                .try_take("a", RateClass::Read, Rate::Unlimited, 60.0, 1.0)
                .is_ok()
        );
    }
}
