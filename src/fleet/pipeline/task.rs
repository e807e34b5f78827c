//! Creating, adopting and polling a site's tasks: journal before the POST, reconcile a lost
//! answer with the job's task list, never create what an earlier run already created.

use super::*;

/// Task creates whose answers were lost (and whose task the list shows was never made)
/// before the site gives up.
const MAX_CREATE_ATTEMPTS: u32 = 3;
/// Slack between our clock and the service's when matching a task to an intent.
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

/// How many times a create task answered 404 for a job made moments ago is tried again.
const MAX_YOUNG_JOB_MISSES: u32 = 3;
/// A job this young may not be visible to the task service yet.
const YOUNG_JOB: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

/// What came of a task create whose answer was lost (`reconcile`).
enum Reconciled {
    /// The one task it made.
    Found(String, DateTime<Utc>),
    /// The task list shows nothing came of it.
    None,
    /// The list cannot tell (several candidates, or unreadable): why, for the message.
    Unsure(String),
}

/// A task an earlier run recorded, once its id is known.
pub(super) fn recorded(record: TaskRecord) -> Option<TaskRef> {
    Some(TaskRef {
        intent_id: record.intent_id,
        task_id: record.task_id?,
        job_id: record.job_id,
        kind: record.kind,
        // Always recorded with the id; without it, the intent is when the task was made.
        created_at: record.created_at.unwrap_or(record.intent_at),
    })
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
            let task = match left.take() {
                Some(task) => task,
                None => self.create_task(&kind, job_id, exclude).await?,
            };
            match self.finish_task(task).await? {
                TaskOrRetry::Done(end) => return Ok(end),
                TaskOrRetry::Retry => continue,
            }
        }
    }

    /// Polls a task of `kind` an earlier run left running to its end, creating none (see
    /// `migrate`: it holds the server).
    pub(super) async fn wait_for_left_task(&mut self, kind: TaskKind) -> Step<()> {
        let Some(task) = self.resume_left(&kind).await? else {
            return Ok(());
        };
        self.events
            .send(EventKind::Note(format!(
                "waited for the {kind} task {} an earlier run left running on the server",
                task.task_id
            )))
            .await?;
        // Not attached: re-attached for the task that follows; no new task of this kind.
        self.finish_task(task).await?;
        Ok(())
    }

    /// The task of `kind` an earlier run left in flight: resumed by its id, or found on the
    /// job's task list for an intent whose answer never came. An intent whose task is not
    /// found is abandoned: `None`, as when there is nothing left.
    async fn resume_left(&mut self, kind: &TaskKind) -> Step<Option<TaskRef>> {
        let Some(record) = self.in_flight(kind) else {
            return Ok(None);
        };
        let (intent_id, job_id, intent_at) =
            (record.intent_id, record.job_id.clone(), record.intent_at);
        if let Some(task) = recorded(record) {
            self.events
                .send(EventKind::TaskResumed(task.clone()))
                .await?;
            return Ok(Some(task));
        }
        match self.reconcile(&job_id, intent_at).await? {
            Reconciled::Found(task_id, created_at) => {
                let task = TaskRef {
                    intent_id,
                    job_id,
                    kind: kind.clone(),
                    task_id,
                    created_at,
                };
                self.record_created(&task, true).await?;
                Ok(Some(task))
            }
            Reconciled::None => {
                self.events
                    .send_durable(EventKind::TaskAbandoned { intent_id })
                    .await?;
                Ok(None)
            }
            Reconciled::Unsure(why) => Err(Halt::Outcome(
                Outcome::Failed,
                format!(
                    "an earlier run's {} task create was never answered and {why}: cmafleet will not create another (look at the job's tasks in the Migration Assistant; the next run checks the list again)",
                    kind.response_str()
                ),
            )),
        }
    }

    /// Polls a task to its end, records the judgement, and either collects its artifacts or
    /// (the not-attached failure, once) re-attaches so that a new task can be created.
    async fn finish_task(&mut self, task: TaskRef) -> Step<TaskOrRetry> {
        let end = self.poll_task(&task).await?;
        let intent_id = task.intent_id;
        // Journalled before the judgement: a crash in between must not lose that the apps
        // are to be followed up.
        if let Some(data) = end
            .data
            .as_ref()
            .filter(|data| data.migrated_with_apps_running())
        {
            self.events
                .send(EventKind::AfterCore {
                    intent_id,
                    running: data.after_core.clone(),
                })
                .await?;
        }
        self.events
            .send_durable(EventKind::TaskFinished {
                intent_id,
                judgement: end.judgement(),
            })
            .await?;
        failpoint::hit("task-judged");
        if let Some(record) = self
            .plan
            .state
            .tasks
            .iter_mut()
            .find(|record| record.intent_id == intent_id)
        {
            record.finished_at = Some(Utc::now());
        }
        if let Some(message) = end.not_attached()
            && !self.reattached
        {
            self.reattached = true;
            self.notes.push(format!(
                "task {} failed as not attached ({message}); re-attached and created a new task",
                task.task_id
            ));
            self.ensure_attached(true).await?;
            return Ok(TaskOrRetry::Retry);
        }
        self.collect_artifacts(&task.job_id, &task.task_id).await?;
        Ok(TaskOrRetry::Done(end))
    }

    /// Refuses to start `what` once the run is stopping, or once the cloud user's breaker
    /// tripped (the site is then skipped with the breaker's reason).
    pub(super) fn check_draining(&self, what: &str) -> Step<()> {
        if let Some(reason) = self.plan.tripwire.tripped() {
            return Err(Halt::Outcome(Outcome::Skipped, reason.to_owned()));
        }
        if self.stop.is_cancelled() {
            return Err(Halt::Outcome(
                Outcome::Detached,
                format!("stopped before {what}; the next run resumes this site"),
            ));
        }
        Ok(())
    }

    async fn record_created(&mut self, task: &TaskRef, adopted: bool) -> Step<()> {
        self.events
            .send_durable(EventKind::TaskCreated {
                task: task.clone(),
                adopted,
            })
            .await?;
        if let Some(record) = self
            .plan
            .state
            .tasks
            .iter_mut()
            .find(|record| record.intent_id == task.intent_id)
        {
            record.task_id = Some(task.task_id.clone());
        } else {
            self.plan.state.tasks.push(TaskRecord {
                intent_id: task.intent_id,
                run_id: String::new(),
                job_id: task.job_id.clone(),
                kind: task.kind.clone(),
                intent_at: task.created_at,
                task_id: Some(task.task_id.clone()),
                created_at: Some(task.created_at),
                adopted,
                status: None,
                service_outcome: None,
                judgement: None,
                finished_at: None,
                abandoned: false,
                apps_pending: false,
            });
        }
        Ok(())
    }

    /// Journal, then POST; a lost answer is reconciled with the task list, never re-sent
    /// blindly: a new create only when the list shows nothing came of the lost one.
    async fn create_task(
        &mut self,
        kind: &TaskKind,
        job_id: &str,
        exclude: &[String],
    ) -> Step<TaskRef> {
        let request = match kind {
            TaskKind::Migrate => CreateTaskRequest::migrate(exclude),
            _ => CreateTaskRequest::check(),
        };
        let mut young_job_misses = 0;
        let mut lost = 0;
        loop {
            self.ready_to_create(kind).await?;
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
            let mut task = TaskRef {
                intent_id,
                job_id: job_id.to_owned(),
                kind: kind.clone(),
                task_id: String::new(),
                created_at: intent_at,
            };
            let error = match self
                .plan
                .cloud
                .create_task(job_id, &request, &self.plan.tripwire.stop)
                .await
            {
                Ok(created) => {
                    failpoint::hit("task-created");
                    task.task_id = created.task_id;
                    task.created_at = Utc::now();
                    self.record_created(&task, false).await?;
                    failpoint::hit("task-recorded");
                    return Ok(task);
                }
                Err(error) => error,
            };
            if error.is_outcome_unknown() {
                match self.lost_create(task, &error, &mut lost).await? {
                    Some(task) => return Ok(task),
                    None => continue,
                }
            }
            // Nothing was sent, or the service refused it: no task came of this intent.
            self.events
                .send_durable(EventKind::TaskAbandoned { intent_id })
                .await?;
            if error.kind == ErrorKind::NotFound
                && young_job_misses < MAX_YOUNG_JOB_MISSES
                && self.job_is_young()
            {
                // A job made seconds ago may not be visible to the task service yet
                // (eventual consistency): nothing was created; try again shortly.
                young_job_misses += 1;
                self.events
                    .send(EventKind::Error(self.error_record(&error)))
                    .await?;
                self.sleep(self.policy.poll.interval(young_job_misses - 1))
                    .await?;
                continue;
            }
            return Err(Halt::Api(error));
        }
    }

    /// Before each create: the night window still open, the run not stopping, the site
    /// attached; then the stage is the task's.
    async fn ready_to_create(&mut self, kind: &TaskKind) -> Step<()> {
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
        self.stage(task_stage(kind)).await
    }

    /// A create whose answer was lost (`pending` names its intent, created when the intent
    /// was journalled): the task the job's list shows it made, or `None` when the list shows
    /// none and another create may be sent (`lost` counts them).
    async fn lost_create(
        &mut self,
        pending: TaskRef,
        error: &ApiError,
        lost: &mut u32,
    ) -> Step<Option<TaskRef>> {
        self.events
            .send(EventKind::Error(self.error_record(error)))
            .await?;
        let kind = pending.kind.response_str();
        match self.reconcile(&pending.job_id, pending.created_at).await? {
            Reconciled::Found(task_id, created_at) => {
                self.notes.push(format!(
                    "a {kind} task create's answer was lost; found task {task_id} on the job"
                ));
                let task = TaskRef {
                    task_id,
                    created_at,
                    ..pending
                };
                self.record_created(&task, true).await?;
                Ok(Some(task))
            }
            Reconciled::Unsure(why) => Err(Halt::Outcome(
                Outcome::Failed,
                format!(
                    "a {kind} task create's answer was lost and {why}: cmafleet will not create another (look at the job's tasks in the Migration Assistant; the next run checks the list again)"
                ),
            )),
            Reconciled::None => {
                self.events
                    .send_durable(EventKind::TaskAbandoned {
                        intent_id: pending.intent_id,
                    })
                    .await?;
                *lost += 1;
                if *lost >= MAX_CREATE_ATTEMPTS {
                    return Err(Halt::Outcome(
                        Outcome::Failed,
                        format!(
                            "could not create a {kind} task: the answers of {lost} creates were lost (the task list showed none was made)"
                        ),
                    ));
                }
                Ok(None)
            }
        }
    }

    /// Whether the site's job was created moments ago (by this run).
    fn job_is_young(&self) -> bool {
        self.job_created_at
            .is_some_and(|at| Utc::now() - at < YOUNG_JOB)
    }

    /// What an intent whose answer was lost created, from the job's task list: every task
    /// created at or after the intent (allowing for clock skew, or whose creation time the
    /// list does not give) that no run recorded counts, whatever its type says. Exactly one:
    /// it is the intent's. None, in every one of a few reads (a new task may take a moment
    /// to appear): nothing was created. Several, or a list that cannot be read: unsure.
    async fn reconcile(&mut self, job_id: &str, intent_at: DateTime<Utc>) -> Step<Reconciled> {
        let known = self.known_task_ids();
        for attempt in 0..3u32 {
            if attempt > 0 {
                self.sleep(self.policy.poll.interval(attempt - 1)).await?;
            }
            let tasks = match self.plan.cloud.list_tasks(job_id, &self.stop).await {
                Ok(tasks) => tasks,
                Err(error) if error.kind == ErrorKind::Cancelled => return Err(Halt::Api(error)),
                Err(error) => {
                    return Ok(Reconciled::Unsure(format!(
                        "the job's task list could not be read ({error})"
                    )));
                }
            };
            for task in &tasks {
                if let TaskKind::Unknown(spelling) = &task.task_type {
                    let value = if spelling.is_empty() {
                        "(none)"
                    } else {
                        spelling
                    };
                    let sample = serde_json::to_string(task).unwrap_or_default();
                    self.plan.cloud.surprise(
                        crate::cma::SurpriseKind::TaskType,
                        value,
                        &sample,
                        crate::cma::Endpoint::ListTasks,
                    );
                }
            }
            let mut candidates: Vec<(Option<DateTime<Utc>>, String)> = tasks
                .into_iter()
                .filter(|task| !known.contains(&task.task_id))
                .map(|task| {
                    (
                        task.created_at.as_ref().and_then(|at| at.instant()),
                        task.task_id,
                    )
                })
                .filter(|(created, _)| created.is_none_or(|at| at + CLOCK_SKEW >= intent_at))
                .collect();
            match candidates.len() {
                0 => {}
                1 => {
                    let (created, task_id) = candidates.remove(0);
                    return Ok(Reconciled::Found(task_id, created.unwrap_or(intent_at)));
                }
                several => {
                    let ids: Vec<String> = candidates.into_iter().map(|(_, id)| id).collect();
                    return Ok(Reconciled::Unsure(format!(
                        "the job lists {several} tasks created since then that no run recorded ({})",
                        ids.join(", ")
                    )));
                }
            }
        }
        Ok(Reconciled::None)
    }

    /// Sleeps, or stops when draining starts.
    pub(super) async fn sleep(&self, duration: Duration) -> Step<()> {
        tokio::select! {
            _ = tokio::time::sleep(duration) => Ok(()),
            _ = self.stop.cancelled() => Err(Halt::Outcome(Outcome::Detached, "stopped while its task runs remotely; the next run resumes it".into())),
        }
    }
}
