//! Creating, adopting and polling a site's tasks: journal before the POST, reconcile a lost
//! answer with the job's task list, never create what an earlier run already created.

use super::*;

/// How many times a create whose answer was lost is reconciled and tried again.
const MAX_CREATE_ATTEMPTS: u32 = 3;
/// Status reads that may fail in a row before the site is left `detached`.
const MAX_POLL_FAILURES: u32 = 10;
/// Slack between our clock and the service's when matching a task to an intent.
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(2);
/// While only a task's progress changes, its status tree goes to the state store at most
/// this often; a change of status or outcome goes at once. (Every poll's tree was a store
/// write of a few KB: most of a large fleet's writes, read by no one.)
const TREE_REFRESH: Duration = Duration::from_secs(60);

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

/// A task an earlier run left: its job, and its intent id, task id and creation time (as
/// `finish_task` takes them).
type LeftTask = (String, (i64, String, DateTime<Utc>));

/// The status a poll loop last sent (`TaskStatus`), to send only what changed.
struct SentStatus {
    /// The tree sent: its status and outcome, and whether anything else moved since.
    tree: StatusNode,
    /// When it was sent: a tree whose progress moved waits for [`TREE_REFRESH`].
    at: tokio::time::Instant,
}

impl Pipeline {
    /// The newest task of `kind` recorded by an earlier run that is not finished (or whose id
    /// was never recorded): it must be adopted, never created again — on whichever job it was
    /// created, even if the row's definition changed since.
    pub(super) fn in_flight(&self, kind: &TaskKind) -> Option<TaskRecord> {
        self.plan
            .state
            .last_task(kind)
            .filter(|task| task.finished_at.is_none())
            .cloned()
    }

    fn known_task_ids(&self) -> HashSet<String> {
        self.plan
            .state
            .tasks
            .iter()
            .filter_map(|task| task.task_id.clone())
            .collect()
    }

    /// Creates (or adopts) a task of `kind`, polls it to its end and collects its artifacts.
    /// The not-attached failure re-attaches and creates one new task.
    pub(super) async fn run_task(
        &mut self,
        kind: TaskKind,
        job_id: &str,
        exclude: &[String],
    ) -> Step<TaskEnd> {
        let mut left = self.resume_left(&kind).await?;
        loop {
            let (task_job, task) = match left.take() {
                Some(left) => left,
                None => (
                    job_id.to_owned(),
                    self.create_task(&kind, job_id, exclude).await?,
                ),
            };
            match self.finish_task(&kind, &task_job, task).await? {
                TaskOrRetry::Done(end) => return Ok(end),
                TaskOrRetry::Retry => continue,
            }
        }
    }

    /// Polls a task of `kind` an earlier run left running to its end, creating none (see
    /// `migrate`: it holds the server).
    pub(super) async fn wait_for_left_task(&mut self, kind: TaskKind) -> Step<()> {
        let Some((task_job, (intent_id, task_id, created_at))) = self.resume_left(&kind).await?
        else {
            return Ok(());
        };
        self.events
            .send(EventKind::Note(format!(
                "waited for the {kind} task {task_id} an earlier run left running on the server"
            )))
            .await?;
        // Not attached: re-attached for the task that follows; no new task of this kind.
        self.finish_task(&kind, &task_job, (intent_id, task_id, created_at))
            .await?;
        Ok(())
    }

    /// The task of `kind` an earlier run left in flight, with its job: resumed by its id, or
    /// found on the job's task list for an intent whose answer never came. An intent whose
    /// task is not found is abandoned: `None`, as when there is nothing left.
    async fn resume_left(&mut self, kind: &TaskKind) -> Step<Option<LeftTask>> {
        let left = match self.in_flight(kind) {
            Some(TaskRecord {
                intent_id,
                job_id: task_job,
                task_id: Some(task_id),
                created_at,
                ..
            }) => {
                self.events
                    .send(EventKind::TaskResumed {
                        intent_id,
                        kind: kind.clone(),
                        task_id: task_id.clone(),
                        created_at,
                    })
                    .await?;
                Some((
                    task_job,
                    (intent_id, task_id, created_at.unwrap_or_else(Utc::now)),
                ))
            }
            Some(TaskRecord {
                intent_id,
                job_id: task_job,
                intent_at,
                ..
            }) => match self.reconcile(&task_job, kind, intent_at).await? {
                Some((task_id, created_at)) => {
                    self.record_created(intent_id, kind, &task_id, created_at, true)
                        .await?;
                    Some((task_job, (intent_id, task_id, created_at)))
                }
                None => {
                    self.events
                        .send_durable(EventKind::TaskAbandoned { intent_id })
                        .await?;
                    None
                }
            },
            None => None,
        };
        Ok(left)
    }

    /// Polls a task to its end, records the judgement, and either collects its artifacts or
    /// (the not-attached failure, once) re-attaches so that a new task can be created.
    async fn finish_task(
        &mut self,
        kind: &TaskKind,
        job_id: &str,
        (intent_id, task_id, created_at): (i64, String, DateTime<Utc>),
    ) -> Step<TaskOrRetry> {
        let end = self
            .poll_task(kind, job_id, intent_id, &task_id, created_at)
            .await?;
        let outcome = end.judgement().as_str().to_owned();
        self.events
            .send_durable(EventKind::TaskFinished { intent_id, outcome })
            .await?;
        failpoint::hit("task-judged");
        if let Some(task) = self
            .plan
            .state
            .tasks
            .iter_mut()
            .find(|task| task.intent_id == intent_id)
        {
            task.finished_at = Some(Utc::now());
        }
        if let Some(message) = end.not_attached()
            && !self.reattached
        {
            self.reattached = true;
            self.notes.push(format!("task {task_id} failed as not attached ({message}); re-attached and created a new task"));
            self.ensure_attached(true).await?;
            return Ok(TaskOrRetry::Retry);
        }
        self.collect_artifacts(job_id, &task_id).await?;
        Ok(TaskOrRetry::Done(end))
    }

    pub(super) fn check_draining(&self, what: &str) -> Step<()> {
        if self.graceful.is_cancelled() {
            return Err(Halt::Outcome(
                Outcome::Detached,
                format!("stopped before {what}; the next run resumes this site"),
            ));
        }
        Ok(())
    }

    async fn record_created(
        &mut self,
        intent_id: i64,
        kind: &TaskKind,
        task_id: &str,
        created_at: DateTime<Utc>,
        adopted: bool,
    ) -> Step<()> {
        self.events
            .send_durable(EventKind::TaskCreated {
                intent_id,
                kind: kind.clone(),
                task_id: task_id.to_owned(),
                created_at,
                adopted,
            })
            .await?;
        if let Some(task) = self
            .plan
            .state
            .tasks
            .iter_mut()
            .find(|task| task.intent_id == intent_id)
        {
            task.task_id = Some(task_id.to_owned());
        } else {
            self.plan.state.tasks.push(TaskRecord {
                intent_id,
                run_id: String::new(),
                job_id: self.job_id.clone().unwrap_or_default(),
                kind: kind.clone(),
                intent_at: created_at,
                task_id: Some(task_id.to_owned()),
                created_at: Some(created_at),
                adopted,
                status: None,
                outcome: None,
                finished_at: None,
                abandoned: false,
            });
        }
        Ok(())
    }

    /// Journal, then POST; a lost answer is reconciled with the task list, never re-sent blindly.
    async fn create_task(
        &mut self,
        kind: &TaskKind,
        job_id: &str,
        exclude: &[String],
    ) -> Step<(i64, String, DateTime<Utc>)> {
        let request = match kind {
            TaskKind::Migrate => CreateTaskRequest::migrate(exclude),
            _ => CreateTaskRequest::check(),
        };
        for _ in 0..MAX_CREATE_ATTEMPTS {
            if let Some(closes) = self.policy.no_new_tasks_after
                && Utc::now() >= closes
            {
                return Err(Halt::Outcome(
                    Outcome::Skipped,
                    format!(
                        "night window closed at {}: no new task",
                        closes.with_timezone(&chrono::Local).format("%H:%M")
                    ),
                ));
            }
            self.check_draining(&format!("creating its {} task", kind.response_str()))?;
            self.ensure_attached(false).await?;
            self.stage(task_stage(kind)).await?;
            let intent_at = Utc::now();
            let intent_id = self
                .events
                .send_durable(EventKind::TaskIntent {
                    kind: kind.clone(),
                    job_id: job_id.to_owned(),
                })
                .await?
                .ok_or_else(|| StoreUnavailable("the store gave no intent id".into()))?;
            failpoint::hit("task-intent");
            match self
                .plan
                .cloud
                .create_task(job_id, &request, &self.forced)
                .await
            {
                Ok(created) => {
                    failpoint::hit("task-created");
                    let created_at = Utc::now();
                    self.record_created(intent_id, kind, &created.task_id, created_at, false)
                        .await?;
                    failpoint::hit("task-recorded");
                    return Ok((intent_id, created.task_id, created_at));
                }
                Err(error) if error.is_outcome_unknown() => {
                    self.events
                        .send(EventKind::Error(self.error_record(&error)))
                        .await?;
                    if let Some((task_id, created_at)) =
                        self.reconcile(job_id, kind, intent_at).await?
                    {
                        self.notes.push(format!(
                            "a {} task create's answer was lost; found task {task_id} on the job",
                            kind.response_str()
                        ));
                        self.record_created(intent_id, kind, &task_id, created_at, true)
                            .await?;
                        return Ok((intent_id, task_id, created_at));
                    }
                    self.events
                        .send_durable(EventKind::TaskAbandoned { intent_id })
                        .await?;
                }
                Err(error) => return Err(Halt::Api(error)),
            }
        }
        Err(Halt::Outcome(
            Outcome::Failed,
            format!(
                "could not create a {} task: every answer was lost",
                kind.response_str()
            ),
        ))
    }

    /// Finds the task an intent created: the newest task of `kind` on the job, created after
    /// the intent (allowing for clock skew), that no other intent owns. The list is read a few
    /// times, since a new task may take a moment to appear.
    async fn reconcile(
        &mut self,
        job_id: &str,
        kind: &TaskKind,
        intent_at: DateTime<Utc>,
    ) -> Step<Option<(String, DateTime<Utc>)>> {
        let known = self.known_task_ids();
        for attempt in 0..3u32 {
            if attempt > 0 {
                self.sleep(self.policy.poll.interval(attempt - 1)).await?;
            }
            let tasks = self
                .plan
                .cloud
                .list_tasks(job_id, &self.forced)
                .await
                .map_err(Halt::Api)?;
            let found = tasks
                .into_iter()
                .filter(|task| &task.task_type == kind && !known.contains(&task.task_id))
                .map(|task| {
                    (
                        task.created_at.as_ref().and_then(|at| at.instant()),
                        task.task_id,
                    )
                })
                .filter(|(created, _)| created.is_none_or(|at| at + CLOCK_SKEW >= intent_at))
                .max_by_key(|(created, _)| *created);
            if let Some((created, task_id)) = found {
                return Ok(Some((task_id, created.unwrap_or(intent_at))));
            }
        }
        Ok(None)
    }

    /// Sleeps, or stops when draining starts.
    async fn sleep(&self, duration: Duration) -> Step<()> {
        tokio::select! {
            _ = tokio::time::sleep(duration) => Ok(()),
            _ = self.graceful.cancelled() => Err(Halt::Outcome(Outcome::Detached, "stopped while its task runs remotely; the next run resumes it".into())),
        }
    }

    // ---- polling ----------------------------------------------------------------------------

    async fn poll_task(
        &mut self,
        kind: &TaskKind,
        job_id: &str,
        intent_id: i64,
        task_id: &str,
        created_at: DateTime<Utc>,
    ) -> Step<TaskEnd> {
        self.plan.pollers.fetch_add(1, Ordering::Relaxed);
        let result = self
            .poll_loop(kind, job_id, intent_id, task_id, created_at)
            .await;
        self.plan.pollers.fetch_sub(1, Ordering::Relaxed);
        result
    }

    async fn poll_loop(
        &mut self,
        kind: &TaskKind,
        job_id: &str,
        intent_id: i64,
        task_id: &str,
        created_at: DateTime<Utc>,
    ) -> Step<TaskEnd> {
        let mut failures = 0u32;
        let mut last_sent: Option<SentStatus> = None;
        let mut checks_done: Option<ChecksVerdict> = None;
        let mut stage = task_stage(kind);
        self.stage(stage).await?;
        let mut schedule = PhaseSchedule::new(
            PhaseKey {
                product: self.plan.site.product,
                phase: Phase::Checks {
                    migrate_task: *kind == TaskKind::Migrate,
                },
            },
            tokio::time::Instant::now()
                .checked_sub(task_age(created_at))
                .unwrap_or_else(tokio::time::Instant::now),
        );
        let check_level = StatusQuery {
            level: Some("check".into()),
            expand_children: true,
        };
        loop {
            let (interval, at_expected_end) = schedule.next_wait(
                &self.policy,
                &self.plan.durations,
                self.plan.pollers.load(Ordering::Relaxed),
                self.plan.run_start.elapsed(),
            );
            self.sleep(interval).await?;
            let age = schedule.start.elapsed();
            // While the checks run, the root without its subtrees (one small page) tells
            // whether they finished; the check level, every check in it (several pages), is
            // read once, when they have — or straight away at the end the fleet expects,
            // when they most likely have. The data phase polls the `migrate` level (one page
            // for the scopes, with their progress counters).
            let query = match checks_done {
                None if at_expected_end => check_level.clone(),
                None => StatusQuery {
                    level: None,
                    expand_children: false,
                },
                Some(_) => StatusQuery {
                    level: Some("migrate".into()),
                    expand_children: true,
                },
            };
            let Some(polled) = self
                .read_status(job_id, task_id, &query, created_at, &mut failures)
                .await?
            else {
                continue;
            };
            let mut node = if checks_done.is_none() {
                let checks_finished = polled.is_finished()
                    || polled
                        .children
                        .get("check")
                        .is_some_and(StatusNode::is_finished);
                if !checks_finished {
                    failures = 0;
                    // (A check level read early is not the root tree the store keeps for a
                    // running task; the next poll reads the root.)
                    if query != check_level {
                        self.report_status(intent_id, &polled, &mut last_sent)
                            .await?;
                    }
                    continue;
                }
                let full = if query == check_level {
                    polled
                } else {
                    let Some(full) = self
                        .read_status(job_id, task_id, &check_level, created_at, &mut failures)
                        .await?
                    else {
                        continue;
                    };
                    full
                };
                let checks = verdict::level(&full, "check");
                // A task that ended at its root (e.g. not attached) may have no check level.
                if checks.is_finished() {
                    checks.clone()
                } else {
                    full
                }
            } else {
                verdict::level(&polled, "migrate").clone()
            };
            if checks_done.is_some()
                && node.status.is_none()
                && task_age(created_at) >= self.policy.young_task_grace
            {
                // The level has not appeared: the task may have ended at its root.
                let root_query = StatusQuery {
                    level: None,
                    expand_children: false,
                };
                let Some(root) = self
                    .read_status(job_id, task_id, &root_query, created_at, &mut failures)
                    .await?
                else {
                    continue;
                };
                if root.is_finished() {
                    node = root;
                }
            }
            // Only a poll that read all it needed clears the failures: a level that reads
            // well must not hide another that never does (the site would poll forever).
            failures = 0;
            self.report_status(intent_id, &node, &mut last_sent).await?;
            failpoint::hit("polling");
            match checks_done {
                None => {
                    if !node.is_finished() {
                        continue;
                    }
                    self.plan.durations.record(schedule.key, age);
                    let checks = verdict::check_results(&node);
                    self.plan.last_checks.clone_from(&checks);
                    self.events.send(EventKind::Checks(checks)).await?;
                    let verdict = verdict::checks_verdict(&node);
                    let passed =
                        matches!(verdict, ChecksVerdict::Passed | ChecksVerdict::Warnings(_));
                    if *kind != TaskKind::Migrate || !passed {
                        return Ok(TaskEnd {
                            checks: verdict,
                            data: None,
                        });
                    }
                    checks_done = Some(verdict);
                    schedule = PhaseSchedule::new(
                        PhaseKey {
                            phase: Phase::Data,
                            ..schedule.key
                        },
                        tokio::time::Instant::now(),
                    );
                }
                Some(ref checks) => {
                    let scopes = verdict::scope_results(&node);
                    self.events.send(EventKind::Scopes(scopes)).await?;
                    let data = verdict::data_verdict(&node);
                    let done = data.core_finished
                        && (!self.policy.wait_apps
                            || !data.apps_running
                            || !data.failed.is_empty());
                    if data.core_finished
                        && data.apps_running
                        && self.policy.wait_apps
                        && stage != Stage::Apps
                    {
                        stage = Stage::Apps;
                        self.stage(stage).await?;
                    }
                    if done {
                        self.plan.durations.record(schedule.key, age);
                        if let Some(message) = data.not_attached() {
                            // The attach lapsed mid-migration: handled like the check level's
                            // not-attached failure (re-attach, one new task).
                            return Ok(TaskEnd {
                                checks: ChecksVerdict::NotAttached(message),
                                data: None,
                            });
                        }
                        return Ok(TaskEnd {
                            checks: checks.clone(),
                            data: Some(data),
                        });
                    }
                }
            }
        }
    }

    /// One status read. `Ok(None)`: worth polling again later — a young task's status is
    /// not there yet (eventual consistency), or a retryable failure (counted in `failures`,
    /// which the poll loop clears once a poll read everything it needed; too many in a row
    /// leave the site `detached`).
    async fn read_status(
        &mut self,
        job_id: &str,
        task_id: &str,
        query: &StatusQuery,
        created_at: DateTime<Utc>,
        failures: &mut u32,
    ) -> Step<Option<StatusNode>> {
        match self
            .plan
            .cloud
            .task_status(job_id, task_id, query, &self.forced)
            .await
        {
            Ok(node) => Ok(Some(node)),
            Err(error)
                if error.kind == ErrorKind::NotFound
                    && task_age(created_at) < self.policy.young_task_grace =>
            {
                Ok(None)
            }
            Err(error) if error.kind == ErrorKind::Cancelled => Err(Halt::Api(error)),
            Err(error)
                if error.is_retryable()
                    || error.kind == ErrorKind::Decode
                    || error.kind == ErrorKind::NotFound =>
            {
                *failures += 1;
                self.events
                    .send(EventKind::Error(self.error_record(&error)))
                    .await?;
                if *failures >= MAX_POLL_FAILURES {
                    return Err(Halt::Outcome(
                        Outcome::Detached,
                        format!(
                            "status unreadable {failures} times in a row ({error}); the task runs on remotely and the next run resumes it"
                        ),
                    ));
                }
                Ok(None)
            }
            Err(error) => Err(Halt::Api(error)),
        }
    }

    /// Sends the task's status when its status or outcome changed, and its progress at most
    /// every [`TREE_REFRESH`]. Never marks the task finished: only the pipeline's conclusion
    /// does (`TaskFinished`), so a Migrate task whose check level finished is still adopted
    /// after a crash.
    async fn report_status(
        &self,
        intent_id: i64,
        node: &StatusNode,
        last_sent: &mut Option<SentStatus>,
    ) -> Step<()> {
        if let Some(sent) = last_sent.as_ref()
            && sent.tree.status == node.status
            && sent.tree.outcome == node.outcome
            && (sent.tree == *node || sent.at.elapsed() < TREE_REFRESH)
        {
            return Ok(());
        }
        *last_sent = Some(SentStatus {
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
                intent_id,
                status,
                outcome,
                tree: Box::new(node.clone()),
            })
            .await?;
        Ok(())
    }
}

fn task_age(created_at: DateTime<Utc>) -> Duration {
    (Utc::now() - created_at).to_std().unwrap_or_default()
}
