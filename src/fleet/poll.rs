//! The adaptive polling schedule, as pure functions of a task's age: often while it is young,
//! backing off exponentially toward `--poll-max`, never faster than the cloud user's shared read
//! budget allows, with jitter so that many sites do not poll in lockstep — and what the run has
//! learned about how long each phase of a task takes ([`PhaseDurations`]), so that a site whose
//! phase the fleet expects to run a while skips the young-task polls that cannot find it
//! finished and polls once when it is expected to end.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use super::policy::PollPolicy;
use crate::inventory::Product;

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

    /// `wait` moved onto the run's poll grid: ticks `GRID_PER_MIN` to a `min` apart, counted
    /// from the run's start (`since_start` is now). Polls due within one tick of each other
    /// then wake together: a fleet's many sites share one wake-up of the runtime, their
    /// requests leave together and their answers are read together, instead of a thread
    /// woken for each. Rounded up, unless that would wait past `max` (a finished task is
    /// noticed within `max`): then down. A wait the read budget already stretched past `max`
    /// is rounded up, so the budget holds. Moves a poll by less than a tick: 625 ms of the
    /// default 5 s `--poll-min`.
    pub fn on_grid(&self, since_start: Duration, wait: Duration) -> Duration {
        let tick_ns = self.tick().as_nanos();
        let past = (since_start + wait).as_nanos() % tick_ns;
        if past == 0 {
            return wait;
        }
        let up = wait + Duration::from_nanos((tick_ns - past) as u64);
        if up <= self.max || wait > self.max {
            up
        } else {
            wait.saturating_sub(Duration::from_nanos(past as u64))
        }
    }

    /// The poll grid's tick ([`PollPolicy::on_grid`]).
    fn tick(&self) -> Duration {
        (self.min / GRID_PER_MIN).max(Duration::from_millis(1))
    }

    /// The wait before the next poll of a phase `age` old that the fleet expects to end at
    /// `expected_end`: polls evenly spaced no further than `max` apart (a task that ends early
    /// is still noticed within `max`), the last of them at the expected end. `None` once the
    /// age has reached it: from there the exponential schedule starts again from `min`.
    pub fn toward(&self, age: Duration, expected_end: Duration) -> Option<Duration> {
        let remaining = expected_end
            .checked_sub(age)
            .filter(|left| !left.is_zero())?;
        // A tick short of `max`, so that the grid's rounding up keeps them within `max`.
        let max = self.max.saturating_sub(self.tick()).max(self.tick());
        let steps = remaining.as_nanos().div_ceil(max.as_nanos()).max(1);
        Some(remaining / u32::try_from(steps).unwrap_or(u32::MAX))
    }
}

/// Grid ticks per `--poll-min` ([`PollPolicy::on_grid`]).
const GRID_PER_MIN: u32 = 8;

/// Which phase of which task a duration is for: a Check task's checks, a Migrate task's
/// checks, its data (from the checks' end until the task is done). Jira's and Confluence's
/// are learned apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PhaseKey {
    pub product: Product,
    pub phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The checks of a Check task (`migrate_task: false`) or of a Migrate task.
    Checks {
        migrate_task: bool,
    },
    Data,
}

/// How long the phases of this run's tasks took, as seen by the polls that found them
/// finished; shared by every site of the run.
///
/// A fleet's tasks of one kind and product take about as long as each other (the same
/// checks on similar instances), so once a few have finished, a new one is expected to take
/// at least as long as the quickest tenth of them: its polls before then are spaced up to
/// `--poll-max` and one lands on that time ([`PollPolicy::toward`]), instead of the young-task
/// polls at `--poll-min`, 2 × `--poll-min`, … that could only find it running; the last task
/// of a run is noticed when it ends instead of up to one back-off step later. A phase that
/// ends sooner than expected is still noticed within `--poll-max`; a longer one is polled
/// from the expected end on as a young one would be.
#[derive(Debug, Default)]
pub struct PhaseDurations {
    phases: Mutex<HashMap<PhaseKey, Learned>>,
}

/// Samples kept per phase: recent enough to follow a drift, enough for a tenth quantile.
const SAMPLES: usize = 32;
/// Phases seen finished before an expectation is formed.
const MIN_SAMPLES: usize = 4;

#[derive(Debug, Default)]
struct Learned {
    /// The ages at which the most recent phases were seen finished, oldest first.
    recent: VecDeque<Duration>,
    /// The tenth quantile of `recent`, once there are [`MIN_SAMPLES`].
    expected_end: Option<Duration>,
}

impl PhaseDurations {
    /// A poll found the phase finished at `age` (since the task's creation, or for the data
    /// phase since the checks were found finished).
    pub fn record(&self, key: PhaseKey, age: Duration) {
        let mut phases = self
            .phases
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let learned = phases.entry(key).or_default();
        if learned.recent.len() == SAMPLES {
            learned.recent.pop_front();
        }
        learned.recent.push_back(age);
        if learned.recent.len() >= MIN_SAMPLES {
            let mut sorted: Vec<Duration> = learned.recent.iter().copied().collect();
            sorted.sort_unstable();
            learned.expected_end = Some(sorted[sorted.len() / 10]);
        }
    }

    /// The age at which a phase of `key` is expected to have ended, once this run has seen
    /// enough of them end.
    pub fn expected_end(&self, key: PhaseKey) -> Option<Duration> {
        let phases = self
            .phases
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        phases.get(&key).and_then(|learned| learned.expected_end)
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

    fn checks(product: Product) -> PhaseKey {
        PhaseKey {
            product,
            phase: Phase::Checks {
                migrate_task: false,
            },
        }
    }

    #[test]
    fn polls_toward_an_expected_end_are_at_most_max_apart_and_land_on_it() {
        let policy = policy();
        let end = Duration::from_secs(183);
        let mut age = Duration::ZERO;
        let mut polls = Vec::new();
        while let Some(wait) = policy.toward(age, end) {
            assert!(wait <= policy.max, "{wait:?}");
            age += wait;
            polls.push(age.as_secs_f64());
        }
        // Four polls instead of the young-task schedule's 5, 15, 35, 75, 135, 195.
        assert_eq!(polls.len(), 4, "{polls:?}");
        assert_eq!(age, end);
        // A task that was young under the old schedule joins in where it is.
        assert_eq!(
            policy.toward(Duration::from_secs(35), end),
            Some(Duration::from_secs(148) / 3)
        );
        assert_eq!(policy.toward(end, end), None);
        assert_eq!(policy.toward(Duration::from_secs(200), end), None);
    }

    #[test]
    fn polls_due_within_a_tick_wake_together_never_past_the_max() {
        let policy = policy();
        let tick = Duration::from_millis(625);
        // Polls falling due anywhere within a tick of the run's grid wake at its end: these
        // three, due at 12.010 s, 12.300 s and 12.490 s into the run, all at 12.5 s.
        for (now, wait) in [(7_010, 5_000), (2_300, 10_000), (2_490, 10_000)] {
            assert_eq!(ms(now) + policy.on_grid(ms(now), ms(wait)), ms(12_500));
        }
        // A poll at the max would be rounded past it: it wakes at the tick before instead.
        assert_eq!(policy.on_grid(ms(1_600), ms(60_000)), ms(59_650));
        assert!(ms(60_000) - ms(59_650) < tick);
        // A wait the read budget stretched past the max is never shortened.
        assert_eq!(policy.on_grid(ms(1_600), ms(90_000)), ms(90_275));
        // On a tick already: unchanged.
        assert_eq!(policy.on_grid(ms(625), ms(5_000)), ms(5_000));
        // Polls toward an expected end stay a tick short of the max, so rounding them up
        // keeps them within it.
        let wait = policy
            .toward(Duration::ZERO, Duration::from_secs(600))
            .unwrap();
        assert!(wait + tick <= policy.max, "{wait:?}");
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn the_expected_end_is_the_quickest_tenth_of_enough_samples_per_phase() {
        let durations = PhaseDurations::default();
        let jira = checks(Product::Jira);
        for secs in [190, 185, 200] {
            durations.record(jira, Duration::from_secs(secs));
        }
        assert_eq!(
            durations.expected_end(jira),
            None,
            "three samples are not enough"
        );
        durations.record(jira, Duration::from_secs(195));
        assert_eq!(durations.expected_end(jira), Some(Duration::from_secs(185)));
        // Other phases and products are learned apart.
        assert_eq!(durations.expected_end(checks(Product::Confluence)), None);
        let data = PhaseKey {
            product: Product::Jira,
            phase: Phase::Data,
        };
        assert_eq!(durations.expected_end(data), None);
        // One fast failure among twenty does not drag the expectation down.
        for _ in 0..15 {
            durations.record(jira, Duration::from_secs(180));
        }
        durations.record(jira, Duration::from_secs(2));
        assert_eq!(durations.expected_end(jira), Some(Duration::from_secs(180)));
        // Recent samples replace old ones: the expectation follows a drift either way.
        for _ in 0..40 {
            durations.record(jira, Duration::from_secs(300));
        }
        assert_eq!(durations.expected_end(jira), Some(Duration::from_secs(300)));
        for _ in 0..4 {
            durations.record(jira, Duration::from_secs(2));
        }
        assert_eq!(durations.expected_end(jira), Some(Duration::from_secs(2)));
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
