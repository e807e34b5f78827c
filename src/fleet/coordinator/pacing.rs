//! Group commit: when the coordinator's next state-store commit is due.
//!
//! After a commit that carried the awaited events of several sites (a busy run), an event that
//! must be durable (an intent, a new id, a site's end) waits until that commit's cost, times
//! [`SPACING`], has passed since it ended — never longer than [`MAX_WAIT`] nor a tenth of a
//! create interval. After a commit that carried one or none, it is committed at once: a light
//! run (a few sites, or a fleet's last ones) pays no wait on any site's path. A busy run spends
//! at most a ninth of the coordinator's time committing, and the durable events of many
//! sites share one transaction and one fsync; a store page that several of them touch is
//! written to the WAL once instead of once per event.
//!
//! The wait never brings creates closer together than the rate limits allow: an intent is
//! committed before its site queues at its rate bucket, and the bucket spaces the requests. It
//! delays the step after a durable event (a create whose bucket stood idle, a site's next poll,
//! the admission of the next site) by at most the wait.

use std::time::Duration;

use tokio::time::Instant;

/// A commit waits this many times the previous commit's cost after it.
const SPACING: u32 = 8;
/// The longest a durable event waits for company.
const MAX_WAIT: Duration = Duration::from_millis(25);
/// Nor longer than the shortest create interval divided by this: a run at a fast time scale
/// (tests, rehearsals) waits as long in its simulated time as a real run does.
const WAIT_PER_CREATE_INTERVAL: u32 = 10;

#[derive(Debug, Clone)]
pub(super) struct CommitPacing {
    /// When the last commit ended and what it cost, if it carried the awaited events of more
    /// than one site: the wait is measured from the one and scaled by the other.
    last: Option<(Instant, Duration)>,
    /// The longest a durable event waits (the smaller of [`MAX_WAIT`] and the interval share).
    max_wait: Duration,
}

impl CommitPacing {
    /// `create_interval`: the shortest spacing of the run's create buckets.
    pub(super) fn new(create_interval: Duration) -> CommitPacing {
        CommitPacing {
            last: None,
            max_wait: MAX_WAIT.min(create_interval / WAIT_PER_CREATE_INTERVAL),
        }
    }

    /// When the next commit may start.
    pub(super) fn due_at(&self) -> Instant {
        self.last.map_or_else(Instant::now, |(ended, cost)| {
            ended + (cost * SPACING).min(self.max_wait)
        })
    }

    /// Records a commit that ran from `started` to `ended` with `awaited` events that
    /// something waited for.
    pub(super) fn committed(&mut self, started: Instant, ended: Instant, awaited: usize) {
        self.last = (awaited > 1).then(|| (ended, ended.saturating_duration_since(started)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The create interval of 5 a minute with the default rates.
    const REAL_INTERVAL: Duration = Duration::from_secs(12);

    #[test]
    fn the_first_commit_is_due_at_once() {
        let pacing = CommitPacing::new(REAL_INTERVAL);
        assert!(pacing.due_at() <= Instant::now());
    }

    #[test]
    fn after_a_commit_of_one_sites_event_the_next_is_due_at_once() {
        let mut pacing = CommitPacing::new(REAL_INTERVAL);
        let started = Instant::now();
        pacing.committed(started, started + Duration::from_millis(5), 1);
        assert!(pacing.due_at() <= Instant::now());
    }

    #[test]
    fn a_commit_waits_eight_times_the_last_ones_cost_after_it() {
        let mut pacing = CommitPacing::new(REAL_INTERVAL);
        let started = Instant::now();
        let ended = started + Duration::from_millis(2);
        pacing.committed(started, ended, 2);
        assert_eq!(pacing.due_at(), ended + Duration::from_millis(16));
    }

    #[test]
    fn a_slow_commit_makes_the_next_wait_at_most_25_ms() {
        let mut pacing = CommitPacing::new(REAL_INTERVAL);
        let started = Instant::now();
        let ended = started + Duration::from_millis(40);
        pacing.committed(started, ended, 30);
        assert_eq!(pacing.due_at(), ended + MAX_WAIT);
    }

    #[test]
    fn at_a_fast_time_scale_the_wait_is_a_tenth_of_a_create_interval() {
        // ×60: 5 creates a simulated minute are one every 200 ms.
        let mut pacing = CommitPacing::new(Duration::from_millis(200));
        let started = Instant::now();
        let ended = started + Duration::from_millis(40);
        pacing.committed(started, ended, 30);
        assert_eq!(pacing.due_at(), ended + Duration::from_millis(20));
    }
}
