//! Following one task to its end: which status level to read when, and what a reading
//! means — never more than the public API documents. Which phase follows which is the
//! phase machine's (`phase`); this reads the tree it asks for.
//!
//! - A **Check task** is followed at its root, read without its children (one small page)
//!   until it finishes, then once with every child: its checks sit directly under the root
//!   (the documented shape) or under a `check` node.
//! - A **Migrate task** is followed at `level=check` until the checks finish (a failed check
//!   blocks before any data moves), then at `level=migrate` with its scopes. The core is
//!   done only when the `migrate` level itself has finished; scopes still running after
//!   it (apps, whatever their name) run on without us unless `--wait-apps`.
//! - A level that is not there (404, or no data) is read again while the phase is young
//!   (eventual consistency); later, the root tells whether the task ended there (not
//!   attached, say). A node with an outcome has ended whatever its status; an unknown
//!   status without one is still running. Every unknown value is a surprise, said once.

use std::collections::HashSet;

use super::phase::{Next, Phase, Reading, TaskPhases};
use super::verdict::Level;
use super::*;
use crate::cma::SurpriseKind;
use crate::cma::error::Endpoint;

/// Status reads that may fail in a row before the site is left `detached`.
const MAX_POLL_FAILURES: u32 = 10;
/// While only a task's progress changes, its status tree goes to the state store at most
/// this often; a change of status or outcome goes at once (a tree is a store write of a
/// few KB that nobody reads while the task only progresses).
const TREE_REFRESH: Duration = Duration::from_secs(60);

/// One status read.
enum Read {
    Node(StatusNode),
    /// The level (or the task) is not there: 404, or an answer without data.
    Missing,
    /// Nothing usable now (a young task's 404, a retryable failure): poll again later.
    Later,
}

/// When to poll one phase of a task (its checks, then its data).
struct PhaseSchedule {
    key: PhaseKey,
    /// When the phase started: the task's creation, or when its checks were found finished.
    start: tokio::time::Instant,
    /// Polls on the exponential schedule since it (re)started: from the phase's start, or
    /// from the end the fleet expected when the phase outlived it.
    ramp: u32,
}

impl PhaseSchedule {
    fn new(key: PhaseKey, start: tokio::time::Instant) -> PhaseSchedule {
        PhaseSchedule {
            key,
            start,
            ramp: 0,
        }
    }

    /// The wait before the next poll, and whether that poll is the one at the end the fleet
    /// expects for this phase: toward that end while the phase is younger (no jitter: the
    /// polls are the site's own, spaced by its task's creation), otherwise the jittered
    /// exponential schedule; always within the cloud user's read budget.
    fn next_wait(
        &mut self,
        policy: &PipelinePolicy,
        durations: &PhaseDurations,
        pollers: usize,
        since_run_start: Duration,
    ) -> (Duration, bool) {
        let age = self.start.elapsed();
        let expected_end = durations.expected_end(self.key);
        let toward = expected_end.and_then(|end| policy.poll.toward(age, end));
        let (interval, jitter) = match toward {
            Some(wait) => {
                self.ramp = 0;
                (wait, 0.5)
            }
            None => {
                let interval = policy.poll.interval(self.ramp);
                self.ramp = self.ramp.saturating_add(1);
                (interval, rand::random::<f64>())
            }
        };
        let wait = policy
            .poll
            .paced(interval, pollers, policy.reads_per_second, jitter);
        let wait = policy.poll.on_grid(since_run_start, wait);
        let at_expected_end = toward.is_some() && expected_end.is_some_and(|end| age + wait >= end);
        (wait, at_expected_end)
    }
}

/// The status a poll loop last sent (`TaskStatus`), to send only what changed.
struct SentStatus {
    /// The tree sent: its status and outcome, and whether anything else moved since.
    tree: StatusNode,
    /// When it was sent: a tree whose progress moved waits for [`TREE_REFRESH`].
    at: tokio::time::Instant,
}

/// The task being followed and what the loop remembers between polls.
struct Watch<'a> {
    task: &'a TaskRef,
    /// Failed reads in a row; only a poll that read all it needed clears them (a level that
    /// reads well must not hide another that never does).
    failures: u32,
    last_sent: Option<SentStatus>,
    /// Surprises this site already reported (the run's log keeps each once anyway; this
    /// spares a sample's serialisation on every poll).
    surprised: HashSet<(SurpriseKind, String)>,
}

fn root() -> StatusQuery {
    StatusQuery {
        level: None,
        expand_children: false,
    }
}

/// A read of one level of a task's status, with or without its children.
pub(super) fn level_query(level: Level, expand_children: bool) -> StatusQuery {
    StatusQuery {
        level: Some(level.name().to_owned()),
        expand_children,
    }
}

impl Pipeline {
    pub(super) async fn poll_task(&mut self, task: &TaskRef) -> Step<TaskEnd> {
        let mut watch = Watch {
            task,
            failures: 0,
            last_sent: None,
            surprised: HashSet::new(),
        };
        self.plan.pollers.fetch_add(1, Ordering::Relaxed);
        let result = self.poll_loop(&mut watch).await;
        self.plan.pollers.fetch_sub(1, Ordering::Relaxed);
        result
    }

    /// Polls the task on its phase's schedule until the phase machine ends it; a phase's
    /// duration is learned when it ends, and the data's schedule starts when it starts.
    async fn poll_loop(&mut self, watch: &mut Watch<'_>) -> Step<TaskEnd> {
        let mut phases = TaskPhases::new(&watch.task.kind, self.policy.wait_apps);
        self.stage(task_stage(&watch.task.kind)).await?;
        let created = tokio::time::Instant::now()
            .checked_sub(task_age(watch.task.created_at))
            .unwrap_or_else(tokio::time::Instant::now);
        let mut schedule = PhaseSchedule::new(self.phase_key(&phases), created);
        loop {
            let (interval, at_expected_end) = schedule.next_wait(
                &self.policy,
                &self.plan.durations,
                self.plan.pollers.load(Ordering::Relaxed),
                self.plan.run_start.elapsed(),
            );
            self.sleep(interval).await?;
            let phase_age = schedule.start.elapsed();
            let from = phases.phase();
            let Some(reading) = self
                .take_reading(watch, from, at_expected_end, phase_age)
                .await?
            else {
                continue;
            };
            let next = phases.advance(reading);
            match (from, phases.phase()) {
                (Phase::Checks, Phase::Data) => {
                    self.plan.durations.record(schedule.key, phase_age);
                    let now = tokio::time::Instant::now();
                    schedule = PhaseSchedule::new(self.phase_key(&phases), now);
                }
                (Phase::Data, Phase::Apps) => self.stage(Stage::Apps).await?,
                _ => {}
            }
            if let Next::End(end) = next {
                self.plan.durations.record(schedule.key, phase_age);
                return Ok(end);
            }
        }
    }

    fn phase_key(&self, phases: &TaskPhases) -> PhaseKey {
        PhaseKey {
            product: self.plan.site.product,
            phase: phases.poll_phase(),
        }
    }

    /// One poll of what `phase` follows: `None` until there is something to judge (the
    /// checks finished; the data level read), else the reading, its results sent on.
    async fn take_reading(
        &mut self,
        watch: &mut Watch<'_>,
        phase: Phase,
        at_expected_end: bool,
        phase_age: Duration,
    ) -> Step<Option<Reading>> {
        match phase {
            Phase::Checks => {
                let found = if watch.task.kind == TaskKind::Migrate {
                    self.read_check_level(watch, at_expected_end, phase_age)
                        .await?
                } else {
                    self.read_check_root(watch, at_expected_end).await?
                };
                let Some(node) = found else { return Ok(None) };
                let checks = verdict::check_results(&node);
                self.plan.last_checks.clone_from(&checks);
                self.events.send(EventKind::Checks(checks)).await?;
                Ok(Some(Reading::Checks(verdict::checks_verdict(&node))))
            }
            Phase::Data | Phase::Apps => {
                let Some(node) = self.read_migrate_level(watch, phase_age).await? else {
                    return Ok(None);
                };
                self.events
                    .send(EventKind::Scopes(verdict::scope_results(&node)))
                    .await?;
                Ok(Some(Reading::Data(verdict::data_verdict(&node))))
            }
        }
    }

    /// A Check task's checks once it finished: its root is followed without children, then
    /// read whole (straight away at the end the fleet expects, when it most likely has).
    async fn read_check_root(
        &mut self,
        watch: &mut Watch<'_>,
        at_expected_end: bool,
    ) -> Step<Option<StatusNode>> {
        let whole = StatusQuery {
            expand_children: true,
            ..root()
        };
        let query = if at_expected_end {
            whole.clone()
        } else {
            root()
        };
        let Some(polled) = self.read_node(watch, &query).await? else {
            return Ok(None);
        };
        self.report_status(watch, &polled).await?;
        if !polled.is_finished() {
            watch.failures = 0;
            return Ok(None);
        }
        let tree = if query.expand_children {
            polled
        } else {
            let Some(tree) = self.read_node(watch, &whole).await? else {
                return Ok(None);
            };
            tree
        };
        watch.failures = 0;
        Ok(Some(verdict::checks_of_root(&tree).clone()))
    }

    /// A Migrate task's check level once it finished: followed without children, then read
    /// with every check.
    async fn read_check_level(
        &mut self,
        watch: &mut Watch<'_>,
        at_expected_end: bool,
        phase_age: Duration,
    ) -> Step<Option<StatusNode>> {
        let whole = level_query(Level::Check, true);
        let query = if at_expected_end {
            whole.clone()
        } else {
            level_query(Level::Check, false)
        };
        let polled = match self.read(watch, &query).await? {
            Read::Node(node) => node,
            Read::Later => return Ok(None),
            Read::Missing => return self.ended_at_root(watch, Level::Check, phase_age).await,
        };
        // A level answered with the root around it is unwrapped.
        let polled = verdict::level(&polled, Level::Check).clone();
        self.report_status(watch, &polled).await?;
        if !polled.is_finished() {
            watch.failures = 0;
            return Ok(None);
        }
        let checks = if query.expand_children {
            polled
        } else {
            match self.read(watch, &whole).await? {
                Read::Node(node) => verdict::level(&node, Level::Check).clone(),
                Read::Later | Read::Missing => return Ok(None),
            }
        };
        watch.failures = 0;
        Ok(Some(checks))
    }

    /// A Migrate task's data level with every scope and its progress.
    async fn read_migrate_level(
        &mut self,
        watch: &mut Watch<'_>,
        phase_age: Duration,
    ) -> Step<Option<StatusNode>> {
        let node = match self.read(watch, &level_query(Level::Migrate, true)).await? {
            Read::Node(node) => verdict::level(&node, Level::Migrate).clone(),
            Read::Later => return Ok(None),
            Read::Missing => return self.ended_at_root(watch, Level::Migrate, phase_age).await,
        };
        watch.failures = 0;
        self.report_status(watch, &node).await?;
        Ok(Some(node))
    }

    /// A level is not there: while the phase is young it may still appear (eventual
    /// consistency); later, the root says whether the task ended without it (not attached,
    /// say) — the root is then the node to judge. A level that stays away while the task
    /// runs is a surprise, and the loop polls on.
    async fn ended_at_root(
        &mut self,
        watch: &mut Watch<'_>,
        level: Level,
        phase_age: Duration,
    ) -> Step<Option<StatusNode>> {
        if phase_age < self.policy.young_task_grace {
            return Ok(None);
        }
        let Some(root) = self.read_node(watch, &root()).await? else {
            return Ok(None);
        };
        watch.failures = 0;
        if root.is_finished() {
            self.report_status(watch, &root).await?;
            return Ok(Some(root));
        }
        let sample = serde_json::to_string(&root).unwrap_or_default();
        self.surprise(
            watch,
            SurpriseKind::MissingLevel,
            level.name(),
            &sample,
            Endpoint::TaskStatus,
        );
        Ok(None)
    }

    /// A read where a missing node is only worth another try later (a root, a level read
    /// again right after it was seen).
    async fn read_node(
        &mut self,
        watch: &mut Watch<'_>,
        query: &StatusQuery,
    ) -> Step<Option<StatusNode>> {
        match self.read(watch, query).await? {
            Read::Node(node) => Ok(Some(node)),
            Read::Later => Ok(None),
            Read::Missing => {
                // An old task whose status is gone altogether counts as a failed read.
                self.count_failure(watch, "the task's status is not found")
                    .await?;
                Ok(None)
            }
        }
    }

    /// One status read, classified. Retryable failures are counted (too many in a row leave
    /// the site `detached`); a young task's 404 is eventual consistency.
    async fn read(&mut self, watch: &mut Watch<'_>, query: &StatusQuery) -> Step<Read> {
        let result = self
            .plan
            .cloud
            .task_status(&watch.task.job_id, &watch.task.task_id, query, &self.stop)
            .await;
        match result {
            Ok(node) if node.status.is_none() && node.children.is_empty() => Ok(Read::Missing),
            Ok(node) => {
                failpoint::hit("polling");
                self.note_unknown_values(watch, &node);
                Ok(Read::Node(node))
            }
            Err(error) if error.kind == ErrorKind::NotFound => {
                if task_age(watch.task.created_at) < self.policy.young_task_grace {
                    Ok(Read::Later)
                } else {
                    Ok(Read::Missing)
                }
            }
            Err(error) if error.kind == ErrorKind::Cancelled => Err(Halt::Api(error)),
            Err(error) if error.is_retryable() || error.kind == ErrorKind::Decode => {
                self.events
                    .send(EventKind::Error(self.error_record(&error)))
                    .await?;
                self.count_failure(watch, &error.to_string()).await?;
                Ok(Read::Later)
            }
            Err(error) => Err(Halt::Api(error)),
        }
    }

    async fn count_failure(&mut self, watch: &mut Watch<'_>, what: &str) -> Step<()> {
        watch.failures += 1;
        if watch.failures >= MAX_POLL_FAILURES {
            return Err(Halt::Outcome(
                Outcome::Detached,
                format!(
                    "status unreadable {} times in a row ({what}); the task runs on remotely and the next run resumes it",
                    watch.failures
                ),
            ));
        }
        Ok(())
    }

    /// Reports each unknown status and outcome value of a tree once (a surprise).
    fn note_unknown_values(&self, watch: &mut Watch<'_>, node: &StatusNode) {
        for (is_status, value) in node.unknown_values() {
            let kind = if is_status {
                SurpriseKind::Status
            } else {
                SurpriseKind::Outcome
            };
            if watch.surprised.contains(&(kind, value.clone())) {
                continue;
            }
            let sample = serde_json::to_string(node).unwrap_or_default();
            self.surprise(watch, kind, &value, &sample, Endpoint::TaskStatus);
        }
    }

    fn surprise(
        &self,
        watch: &mut Watch<'_>,
        kind: SurpriseKind,
        value: &str,
        sample: &str,
        endpoint: Endpoint,
    ) {
        if watch.surprised.insert((kind, value.to_owned())) {
            self.plan.cloud.surprise(kind, value, sample, endpoint);
        }
    }

    /// Sends the task's status when its status or outcome changed, and its progress at most
    /// every [`TREE_REFRESH`]. Never marks the task finished: only the pipeline's conclusion
    /// does (`TaskFinished`), so a Migrate task whose check level finished is still adopted
    /// after a crash.
    async fn report_status(&self, watch: &mut Watch<'_>, node: &StatusNode) -> Step<()> {
        if let Some(sent) = watch.last_sent.as_ref()
            && sent.tree.status == node.status
            && sent.tree.outcome == node.outcome
            && (sent.tree == *node || sent.at.elapsed() < TREE_REFRESH)
        {
            return Ok(());
        }
        watch.last_sent = Some(SentStatus {
            tree: node.clone(),
            at: tokio::time::Instant::now(),
        });
        let status = node
            .status
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "PENDING".into());
        let outcome = node.outcome.as_ref().map(ToString::to_string);
        self.events
            .send(EventKind::TaskStatus {
                intent_id: watch.task.intent_id,
                status,
                outcome,
                tree: Box::new(node.clone()),
            })
            .await?;
        Ok(())
    }
}

pub(super) fn task_age(created_at: DateTime<Utc>) -> Duration {
    (Utc::now() - created_at).to_std().unwrap_or_default()
}
