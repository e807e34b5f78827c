//! The run's ETA, as people see it in the live view, the progress lines and the status page:
//! from the finish rate of the sites that had work to do (sites skipped without any — already
//! migrated, outside the night window — finish in no time and say nothing about the rest),
//! averaged since the run began, shown only once a few have finished, and eased toward each
//! new estimate so that it counts down instead of jumping (0 s, then 50 s, 7 min, 3 min).

use std::time::{Duration, Instant};

/// Sites with work that must have finished before an ETA is shown.
const FIRST_FINISHES: usize = 3;
/// How quickly the shown ETA moves toward a new estimate: the gap shrinks by about 1/e in
/// this many seconds, whatever the refresh rate.
const EASING_SECONDS: f64 = 30.0;

/// The estimate and what was last shown.
#[derive(Debug, Default)]
pub struct Eta {
    /// The ETA last shown, in seconds, and when.
    shown: Option<(f64, Instant)>,
}

impl Eta {
    /// The ETA at `now`, in seconds: `worked` sites with work had finished `elapsed` after
    /// the run began (when the last of them finished: the rate does not creep down between
    /// finishes), and `remaining` sites are not finished yet (pending or running). `None`
    /// until enough have finished, and once none remain.
    pub fn update(
        &mut self,
        now: Instant,
        elapsed: Duration,
        worked: usize,
        remaining: usize,
    ) -> Option<f64> {
        if remaining == 0 || worked < FIRST_FINISHES || elapsed.is_zero() {
            self.shown = None;
            return None;
        }
        let rate = worked as f64 / elapsed.as_secs_f64();
        let estimate = remaining as f64 / rate;
        let next = match self.shown {
            None => estimate,
            Some((shown, at)) => {
                // What was shown has counted down since; ease it toward the estimate.
                let since = now.duration_since(at).as_secs_f64();
                let counted = (shown - since).max(0.0);
                let factor = 1.0 - (-since / EASING_SECONDS).exp();
                counted + factor * (estimate - counted)
            }
        };
        self.shown = Some((next, now));
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_eta_before_a_few_sites_with_work_finished() {
        let mut eta = Eta::default();
        let now = Instant::now();
        assert_eq!(eta.update(now, Duration::from_secs(5), 2, 10), None);
        assert!(eta.update(now, Duration::from_secs(5), 3, 10).is_some());
        assert_eq!(eta.update(now, Duration::from_secs(6), 13, 0), None);
    }

    #[test]
    fn the_eta_counts_down_smoothly_at_a_steady_pace() {
        // One site finishes every 12 s (a create interval); 100 sites.
        let mut eta = Eta::default();
        let start = Instant::now();
        let mut shown = Vec::new();
        for second in 36..600u64 {
            let worked = (second / 12) as usize;
            let last_finish = Duration::from_secs(worked as u64 * 12);
            let now = start + Duration::from_secs(second);
            if let Some(value) = eta.update(now, last_finish, worked, 100 - worked) {
                shown.push(value);
            }
        }
        // It counts down: never up from one refresh to the next.
        for pair in shown.windows(2) {
            assert!(pair[1] <= pair[0] + 0.5, "{} then {}", pair[0], pair[1]);
        }
        // Close to the truth: 100 sites at 12 s each, 599 s in, 51 remain: 612 s.
        let last = *shown.last().unwrap();
        assert!((last - 612.0).abs() < 30.0, "{last}");
    }
}
