//! The adaptive polling schedule, as pure functions of a task's age: often while it is young,
//! backing off exponentially toward `--poll-max`, never faster than the cloud user's shared read
//! budget allows, with jitter so that many sites do not poll in lockstep.

use std::time::Duration;

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

impl PollPolicy {
    /// The interval after poll number `polls` (0 = the first poll after creation): `min`
    /// doubling each poll up to `max`. A task of duration D therefore costs at most
    /// log2(max/min) + D/max + 1 status requests, and its end is noticed within `max`.
    pub fn interval(&self, polls: u32) -> Duration {
        let min = self.min.max(Duration::from_millis(1));
        let max = self.max.max(min);
        let factor = 2u32.saturating_pow(polls.min(31));
        min.saturating_mul(factor).min(max)
    }

    /// Stretches `interval` so that `pollers` sites of one cloud user stay within `reads_per_second`
    /// (leaving a fifth of the budget for other reads), then applies `jitter` in `0.0..1.0` as
    /// ±10 %. Never below `min`; never above `max` unless the budget demands it.
    pub fn paced(
        &self,
        interval: Duration,
        pollers: usize,
        reads_per_second: f64,
        jitter: f64,
    ) -> Duration {
        let budget = (reads_per_second * 0.8).max(f64::MIN_POSITIVE);
        let floor = Duration::from_secs_f64(pollers as f64 / budget);
        let base = interval.max(floor);
        let spread = 0.9 + 0.2 * jitter.clamp(0.0, 1.0);
        // Jitter never stretches past `max` (a finished task is noticed within `max`),
        // unless the read budget itself needs longer.
        base.mul_f64(spread).max(self.min).min(self.max.max(floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PollPolicy {
        PollPolicy {
            min: Duration::from_secs(5),
            max: Duration::from_secs(60),
        }
    }

    #[test]
    fn young_tasks_are_polled_often_and_old_ones_at_the_max() {
        let policy = policy();
        let intervals: Vec<u64> = (0..6).map(|n| policy.interval(n).as_secs()).collect();
        assert_eq!(intervals, vec![5, 10, 20, 40, 60, 60]);
        assert_eq!(policy.interval(1000), Duration::from_secs(60));
    }

    #[test]
    fn polls_of_a_long_task_stay_within_duration_over_max_plus_log() {
        let policy = policy();
        let duration = Duration::from_secs(4 * 3600);
        let (mut elapsed, mut polls) = (Duration::ZERO, 0u32);
        while elapsed < duration {
            elapsed += policy.interval(polls);
            polls += 1;
        }
        let bound = duration.as_secs() / 60 + (60f64 / 5.0).log2().ceil() as u64 + 1;
        assert!(u64::from(polls) <= bound, "{polls} polls > bound {bound}");
        // Noticed within poll-max of finishing.
        assert!(elapsed - duration <= policy.max);
    }

    #[test]
    fn many_pollers_share_the_read_budget() {
        let policy = policy();
        // 600 sites of one user at 10 reads/s: each may poll at most every 75 s (80 % budget).
        let paced = policy.paced(Duration::from_secs(5), 600, 10.0, 0.5);
        assert_eq!(paced, Duration::from_secs(75));
        // Few pollers: the schedule itself decides.
        assert_eq!(
            policy.paced(Duration::from_secs(20), 3, 10.0, 0.5),
            Duration::from_secs(20)
        );
    }

    #[test]
    fn jitter_never_delays_a_poll_past_the_max() {
        let policy = policy();
        // A task polled at the max is noticed within the max, whatever the jitter.
        assert_eq!(
            policy.paced(Duration::from_secs(60), 1, 10.0, 1.0),
            Duration::from_secs(60)
        );
        assert_eq!(
            policy.paced(Duration::from_secs(60), 1, 10.0, 0.0),
            Duration::from_secs(54)
        );
        // Unless the shared read budget needs longer: 1200 pollers at 10 reads/s.
        assert_eq!(
            policy.paced(Duration::from_secs(60), 1200, 10.0, 1.0),
            Duration::from_secs(150)
        );
    }

    #[test]
    fn jitter_spreads_by_ten_percent_and_never_goes_below_min() {
        let policy = policy();
        assert_eq!(
            policy.paced(Duration::from_secs(20), 1, 10.0, 0.0),
            Duration::from_secs(18)
        );
        assert_eq!(
            policy.paced(Duration::from_secs(20), 1, 10.0, 1.0),
            Duration::from_secs(22)
        );
        assert_eq!(
            policy.paced(Duration::from_secs(5), 1, 10.0, 0.0),
            Duration::from_secs(5)
        );
    }
}
