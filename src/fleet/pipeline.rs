//! One site's state machine, for both modes: job → (connect) → attach → task → poll →
//! collect. A pipeline never touches shared run state: every step's result is an event for
//! the coordinator, and the intent to create a task is journalled (and acknowledged by the
//! state store) before the POST. Tasks found in the state store are adopted, never re-created.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::events::{EventKind, SiteEvents, StoreUnavailable};
use super::poll::PollPolicy;
use super::verdict::{self, ChecksVerdict};
use super::{Mode, Outcome, Stage};
use crate::cma::client::StatusQuery;
use crate::cma::wire::{CreateTaskRequest, StatusNode, TaskKind};
use crate::cma::{ApiError, CloudClient, ErrorKind, ServerClient};
use crate::inventory::{Site, definition_hash};
use crate::report::model::{ArtifactRecord, CheckResult, ErrorRecord};
use crate::state::{SiteState, TaskRecord};

/// How many times a create whose answer was lost is reconciled and tried again.
const MAX_CREATE_ATTEMPTS: u32 = 3;
/// Status reads that may fail in a row before the site is left `detached`.
const MAX_POLL_FAILURES: u32 = 10;
/// Slack between our clock and the service's when matching a task to an intent.
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

/// The policy every pipeline of a run follows (limits are values, not pipeline variants).
#[derive(Debug, Clone)]
pub struct PipelinePolicy {
    pub mode: Mode,
    /// Migrate mode: a Check task first, gating the Migrate task.
    pub precheck: bool,
    /// A check WARNING blocks (check mode outcome; the precheck gate).
    pub block_on_warnings: bool,
    /// Checks to send as `excludeKeys` on Migrate (only where the last check run marked them excludable).
    pub override_checks: Vec<String>,
    /// Connect the server to the cloud site (token + save) when an attach says it is not connected.
    pub connect: bool,
    /// Poll until apps finish too.
    pub wait_apps: bool,
    /// No task is created at or after this instant (the night window).
    pub no_new_tasks_after: Option<DateTime<Utc>>,
    pub poll: PollPolicy,
    /// How long a new task's status may answer 404 (eventual consistency).
    pub young_task_grace: Duration,
    /// Reads per second of one cloud user's budget (to pace polling).
    pub reads_per_second: f64,
}

/// Everything one site's pipeline needs, handed over by the coordinator at admission.
pub struct SitePlan {
    pub index: usize,
    pub site: Arc<Site>,
    /// The site's record in the state store when it was admitted.
    pub state: SiteState,
    /// The site's latest known check results (for `--override-checks`).
    pub last_checks: Vec<CheckResult>,
    pub cloud: CloudClient,
    pub server: ServerClient,
    /// Sites of this cloud user currently polling (shared by them, to pace reads).
    pub pollers: Arc<AtomicUsize>,
    /// `<report-dir>/artifacts/<site>`.
    pub artifact_dir: PathBuf,
}

/// Why a pipeline stopped before a verdict.
#[derive(Debug)]
enum Halt {
    Outcome(Outcome, String),
    Api(ApiError),
    Store(StoreUnavailable),
}

impl From<StoreUnavailable> for Halt {
    fn from(error: StoreUnavailable) -> Self {
        Halt::Store(error)
    }
}

type Step<T> = Result<T, Halt>;

/// After a task: done, or create a new one (the not-attached failure, once).
enum TaskOrRetry {
    Done(TaskEnd),
    Retry,
}

/// How a finished task came out, for the pipeline's decisions.
struct TaskEnd {
    checks: ChecksVerdict,
    /// For Migrate tasks whose checks passed: the data verdict.
    data: Option<verdict::DataVerdict>,
}

impl TaskEnd {
    /// How cmafleet judges the task, in the outcome vocabulary (kept on the task's record).
    fn judgement(&self) -> Outcome {
        match (&self.checks, &self.data) {
            (ChecksVerdict::NotAttached(_), _) => Outcome::Failed,
            (ChecksVerdict::Failed(..) | ChecksVerdict::Unknown(_), _) => Outcome::Blocked,
            (_, Some(data)) if !data.failed.is_empty() || !data.unknown.is_empty() => {
                Outcome::Failed
            }
            (ChecksVerdict::Warnings(_), _) => Outcome::Warnings,
            (_, Some(data)) if !data.warnings.is_empty() => Outcome::Warnings,
            _ => Outcome::Succeeded,
        }
    }
}

/// Runs one site to its end and reports it with a `Finished` event.
pub async fn run_site(
    policy: Arc<PipelinePolicy>,
    plan: SitePlan,
    events: SiteEvents,
    graceful: CancellationToken,
    forced: CancellationToken,
) {
    let mut pipeline = Pipeline {
        policy,
        plan,
        events,
        graceful,
        forced,
        job_id: None,
        reattached: false,
        connected: false,
        notes: Vec::new(),
    };
    let (outcome, message, migrated) = match pipeline.drive().await {
        Ok(finish) => finish,
        Err(Halt::Outcome(outcome, message)) => (outcome, message, false),
        Err(Halt::Api(error)) if error.kind == ErrorKind::Cancelled => (
            Outcome::Detached,
            "interrupted; the next run resumes this site".into(),
            false,
        ),
        Err(Halt::Api(error)) => {
            let message = error.to_string();
            let _ = pipeline
                .events
                .send(EventKind::Error(pipeline.error_record(&error)))
                .await;
            (Outcome::Failed, message, false)
        }
        Err(Halt::Store(error)) => {
            tracing::error!(site = %pipeline.plan.site.name, "{error}");
            return;
        }
    };
    for note in std::mem::take(&mut pipeline.notes) {
        let _ = pipeline.events.send(EventKind::Note(note)).await;
    }
    let _ = pipeline.events.send(EventKind::Stage(Stage::Done)).await;
    let _ = pipeline
        .events
        .send_durable(EventKind::Finished {
            outcome,
            message,
            migrated,
        })
        .await;
}

struct Pipeline {
    policy: Arc<PipelinePolicy>,
    plan: SitePlan,
    events: SiteEvents,
    /// Stop starting work (first signal, deadline).
    graceful: CancellationToken,
    /// Abandon in-flight requests (second signal).
    forced: CancellationToken,
    job_id: Option<String>,
    /// The not-attached failure is retried once.
    reattached: bool,
    /// A connect is tried once.
    connected: bool,
    /// Sent as notes when the pipeline ends.
    notes: Vec<String>,
}

impl Pipeline {
    fn site(&self) -> &Site {
        &self.plan.site
    }

    async fn stage(&self, stage: Stage) -> Step<()> {
        Ok(self.events.send(EventKind::Stage(stage)).await?)
    }

    async fn drive(&mut self) -> Step<(Outcome, String, bool)> {
        let job_id = self.ensure_job().await?;
        match self.policy.mode {
            Mode::Check => {
                let end = self.run_task(TaskKind::Check, &job_id, &[]).await?;
                Ok(self.check_mode_verdict(&end.checks))
            }
            Mode::Migrate => self.migrate(&job_id).await,
        }
    }

    fn check_mode_verdict(&self, checks: &ChecksVerdict) -> (Outcome, String, bool) {
        match checks {
            ChecksVerdict::Passed => (Outcome::Succeeded, "all checks passed".into(), false),
            ChecksVerdict::Warnings(names) if self.policy.block_on_warnings => (
                Outcome::Blocked,
                format!(
                    "checks warned (blocking with --block-on-warnings): {}",
                    names.join(", ")
                ),
                false,
            ),
            ChecksVerdict::Warnings(names) => (
                Outcome::Warnings,
                format!("checks warned: {}", names.join(", ")),
                false,
            ),
            ChecksVerdict::Failed(names, message) => (
                Outcome::Blocked,
                failed_checks_message(names, message),
                false,
            ),
            ChecksVerdict::NotAttached(message) => (
                Outcome::Failed,
                format!("not attached after a re-attach: {message}"),
                false,
            ),
            ChecksVerdict::Unknown(outcome) => (
                Outcome::Blocked,
                format!("checks ended with an unknown outcome `{outcome}`"),
                false,
            ),
        }
    }

    async fn migrate(&mut self, job_id: &str) -> Step<(Outcome, String, bool)> {
        let migrate_in_flight = self.in_flight(&TaskKind::Migrate).is_some();
        let mut warnings = Vec::new();
        if (self.policy.precheck || self.policy.block_on_warnings) && !migrate_in_flight {
            let end = self.run_task(TaskKind::Check, job_id, &[]).await?;
            match &end.checks {
                ChecksVerdict::Passed => {}
                ChecksVerdict::Warnings(names) if self.policy.block_on_warnings => {
                    return Ok((
                        Outcome::Blocked,
                        format!(
                            "precheck warned (blocking with --block-on-warnings): {}; no data moved",
                            names.join(", ")
                        ),
                        false,
                    ));
                }
                ChecksVerdict::Warnings(names) => warnings.extend(names.iter().cloned()),
                other => {
                    let (outcome, message, _) = self.check_mode_verdict(other);
                    let outcome = if outcome == Outcome::Failed {
                        Outcome::Failed
                    } else {
                        Outcome::Blocked
                    };
                    return Ok((
                        outcome,
                        format!("precheck: {message}; no data moved"),
                        false,
                    ));
                }
            }
        }
        let exclude = if migrate_in_flight {
            Vec::new()
        } else {
            self.excluded_checks()?
        };
        let end = self.run_task(TaskKind::Migrate, job_id, &exclude).await?;
        match &end.checks {
            ChecksVerdict::Passed => {}
            ChecksVerdict::Warnings(names) => warnings.extend(names.iter().cloned()),
            ChecksVerdict::Failed(names, message) => {
                return Ok((
                    Outcome::Blocked,
                    format!("{}; no data moved", failed_checks_message(names, message)),
                    false,
                ));
            }
            ChecksVerdict::NotAttached(message) => {
                return Ok((
                    Outcome::Failed,
                    format!("not attached after a re-attach: {message}"),
                    false,
                ));
            }
            ChecksVerdict::Unknown(outcome) => {
                return Ok((
                    Outcome::Blocked,
                    format!("checks ended with an unknown outcome `{outcome}`; no data moved"),
                    false,
                ));
            }
        }
        let data = end.data.unwrap_or_default();
        if !data.failed.is_empty() {
            let detail: Vec<String> = data
                .failed
                .iter()
                .map(|(scope, message)| format!("{scope}: {message}"))
                .collect();
            return Ok((
                Outcome::Failed,
                format!("migration failed — {}", detail.join("; ")),
                false,
            ));
        }
        if !data.unknown.is_empty() {
            let detail: Vec<String> = data
                .unknown
                .iter()
                .map(|(scope, outcome)| format!("{scope}: {outcome}"))
                .collect();
            return Ok((
                Outcome::Failed,
                format!(
                    "migration ended with unknown outcomes — {}",
                    detail.join("; ")
                ),
                false,
            ));
        }
        if data.apps_running {
            self.notes.push(
                "core data migrated; apps are still migrating (not waited for; use --wait-apps)"
                    .into(),
            );
        }
        warnings.extend(data.warnings.iter().map(|scope| format!("scope {scope}")));
        if warnings.is_empty() {
            Ok((Outcome::Succeeded, "migrated".into(), true))
        } else {
            Ok((
                Outcome::Warnings,
                format!("migrated with warnings: {}", warnings.join(", ")),
                true,
            ))
        }
    }

    /// `--override-checks` → `excludeKeys`, only for checks the last check run marked
    /// excludable; refused (before any task) for a check marked not excludable or when no
    /// check run of this site is known.
    fn excluded_checks(&self) -> Step<Vec<String>> {
        if self.policy.override_checks.is_empty() {
            return Ok(Vec::new());
        }
        if self.plan.last_checks.is_empty() {
            return Err(Halt::Outcome(
                Outcome::Blocked,
                "--override-checks needs a check run of this site first (run --mode check, or add --precheck)".into(),
            ));
        }
        let mut exclude = Vec::new();
        for key in &self.policy.override_checks {
            match self
                .plan
                .last_checks
                .iter()
                .find(|check| &check.name == key)
            {
                Some(check) if check.excludable == Some(true) => exclude.push(key.clone()),
                Some(check) if check.outcome.eq_ignore_ascii_case("FAILED") => {
                    return Err(Halt::Outcome(
                        Outcome::Blocked,
                        format!(
                            "check {key} cannot be overridden: the last check run did not mark it excludable"
                        ),
                    ));
                }
                _ => {}
            }
        }
        Ok(exclude)
    }

    // ---- job, connect, attach ---------------------------------------------------------------

    async fn ensure_job(&mut self) -> Step<String> {
        let definition = self.site().job_definition();
        let hash = definition_hash(&definition);
        if let Some(job) = self
            .plan
            .state
            .job
            .clone()
            .filter(|job| job.definition_hash == hash)
        {
            self.events
                .send(EventKind::Job {
                    job_id: job.job_id.clone(),
                    definition_hash: hash,
                    created_at: job.created_at,
                    reused: true,
                })
                .await?;
            self.job_id = Some(job.job_id.clone());
            return Ok(job.job_id);
        }
        if let Some(at) = self.plan.state.job_intent_at {
            self.notes.push(format!(
                "a run interrupted at {} may have left one unused job for this site (the API cannot list jobs; an unused job moves no data)",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
        self.check_draining("creating its job")?;
        self.stage(Stage::Job).await?;
        self.events.send_durable(EventKind::JobIntent).await?;
        let created = match self.plan.cloud.create_job(&definition, &self.forced).await {
            Err(error) if error.is_outcome_unknown() => {
                self.notes.push("a job create's answer was lost; it was sent once more (the first may be an unused job)".into());
                self.plan.cloud.create_job(&definition, &self.forced).await
            }
            other => other,
        }
        .map_err(Halt::Api)?;
        self.events
            .send_durable(EventKind::Job {
                job_id: created.job_id.clone(),
                definition_hash: hash,
                created_at: Utc::now(),
                reused: false,
            })
            .await?;
        self.job_id = Some(created.job_id.clone());
        Ok(created.job_id)
    }

    fn attach_is_fresh(&self) -> bool {
        let Some(attach) = &self.plan.state.attach else {
            return false;
        };
        let Some(expires_at) = attach.expires_at else {
            return false;
        };
        if attach.cloud_url != self.site().cloud_url_str() {
            return false;
        }
        // Safety margin: a tenth of the validity (2.4 h of the 24 h), so a task created now
        // is picked up well before the attach lapses.
        let margin = (expires_at - attach.attached_at).max(chrono::TimeDelta::zero()) / 10;
        Utc::now() + margin < expires_at
    }

    async fn ensure_attached(&mut self, force: bool) -> Step<()> {
        if !force && self.attach_is_fresh() {
            return Ok(());
        }
        self.stage(Stage::Attach).await?;
        let cloud_url = self.site().cloud_url_str();
        let answer = match self.plan.server.attach(&cloud_url, &self.forced).await {
            Err(error)
                if error.kind == ErrorKind::NotConnected
                    && self.policy.connect
                    && !self.connected =>
            {
                self.connect(&cloud_url).await?;
                self.stage(Stage::Attach).await?;
                self.plan.server.attach(&cloud_url, &self.forced).await
            }
            other => other,
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) if error.kind == ErrorKind::NotConnected => {
                self.events
                    .send(EventKind::Error(self.error_record(&error)))
                    .await?;
                let hint = if self.policy.connect {
                    "connecting did not help"
                } else {
                    "connect it in the Migration Assistant, or run with --connect"
                };
                return Err(Halt::Outcome(
                    Outcome::Blocked,
                    format!(
                        "the cloud site is not connected to this server ({hint}): {}",
                        error.message
                    ),
                ));
            }
            Err(error) => return Err(Halt::Api(error)),
        };
        let expires_at = match &answer.expiry_time {
            Some(time) => match time.instant() {
                Some(at) => Some(at),
                None => {
                    tracing::warn!(site = %self.site().name, "attach expiry {time:?} not understood; attaching again before every task");
                    None
                }
            },
            None => None,
        };
        let record = crate::state::AttachRecord {
            cloud_url: cloud_url.clone(),
            attached_at: Utc::now(),
            expires_at,
        };
        self.plan.state.attach = Some(record);
        self.events
            .send(EventKind::Attached {
                cloud_url,
                expires_at,
            })
            .await?;
        Ok(())
    }

    async fn connect(&mut self, cloud_url: &str) -> Step<()> {
        self.connected = true;
        self.stage(Stage::Connect).await?;
        let token = self
            .plan
            .cloud
            .create_token(cloud_url, &self.forced)
            .await
            .map_err(Halt::Api)?;
        self.plan
            .server
            .save_token(cloud_url, &token.token, &self.forced)
            .await
            .map_err(Halt::Api)?;
        self.notes
            .push("connected the server to the cloud site (connect token saved)".into());
        Ok(())
    }

    // ---- tasks ------------------------------------------------------------------------------

    /// The newest task of `kind` recorded by an earlier run that is not finished (or whose id
    /// was never recorded): it must be adopted, never created again — on whichever job it was
    /// created, even if the row's definition changed since.
    fn in_flight(&self, kind: &TaskKind) -> Option<TaskRecord> {
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
    async fn run_task(
        &mut self,
        kind: TaskKind,
        job_id: &str,
        exclude: &[String],
    ) -> Step<TaskEnd> {
        let mut resume = self.in_flight(&kind);
        loop {
            let (task_job, task) = match resume.take() {
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
                    (
                        task_job,
                        (intent_id, task_id, created_at.unwrap_or_else(Utc::now)),
                    )
                }
                Some(TaskRecord {
                    intent_id,
                    job_id: task_job,
                    intent_at,
                    ..
                }) => match self.reconcile(&task_job, &kind, intent_at).await? {
                    Some((task_id, created_at)) => {
                        self.record_created(intent_id, &kind, &task_id, created_at, true)
                            .await?;
                        (task_job, (intent_id, task_id, created_at))
                    }
                    None => {
                        self.events
                            .send_durable(EventKind::TaskAbandoned { intent_id })
                            .await?;
                        (
                            job_id.to_owned(),
                            self.create_task(&kind, job_id, exclude).await?,
                        )
                    }
                },
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
        if let Some(task) = self
            .plan
            .state
            .tasks
            .iter_mut()
            .find(|task| task.intent_id == intent_id)
        {
            task.finished_at = Some(Utc::now());
        }
        if let ChecksVerdict::NotAttached(message) = &end.checks {
            if !self.reattached {
                self.reattached = true;
                self.notes.push(format!("task {task_id} failed as not attached ({message}); re-attached and created a new task"));
                self.ensure_attached(true).await?;
                return Ok(TaskOrRetry::Retry);
            }
        }
        self.collect_artifacts(job_id, &task_id).await?;
        Ok(TaskOrRetry::Done(end))
    }

    fn check_draining(&self, what: &str) -> Step<()> {
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
            if let Some(closes) = self.policy.no_new_tasks_after {
                if Utc::now() >= closes {
                    return Err(Halt::Outcome(
                        Outcome::Skipped,
                        format!(
                            "night window closed at {}: no new task",
                            closes.with_timezone(&chrono::Local).format("%H:%M")
                        ),
                    ));
                }
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
            match self
                .plan
                .cloud
                .create_task(job_id, &request, &self.forced)
                .await
            {
                Ok(created) => {
                    let created_at = Utc::now();
                    self.record_created(intent_id, kind, &created.task_id, created_at, false)
                        .await?;
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
        let mut polls = 0u32;
        let mut failures = 0u32;
        let mut last_seen: Option<(String, Option<String>, String)> = None;
        let mut checks_done: Option<ChecksVerdict> = None;
        let mut stage = task_stage(kind);
        self.stage(stage).await?;
        loop {
            let interval = self.policy.poll.paced(
                self.policy.poll.interval(polls),
                self.plan.pollers.load(Ordering::Relaxed),
                self.policy.reads_per_second,
                rand::random::<f64>(),
            );
            self.sleep(interval).await?;
            polls = polls.saturating_add(1);
            let level = if checks_done.is_none() {
                "check"
            } else {
                "migrate"
            };
            let query = StatusQuery {
                level: Some(level.into()),
                expand_children: true,
            };
            let node = match self
                .plan
                .cloud
                .task_status(job_id, task_id, &query, &self.forced)
                .await
            {
                Ok(node) => {
                    failures = 0;
                    node
                }
                Err(error)
                    if error.kind == ErrorKind::NotFound
                        && task_age(created_at) < self.policy.young_task_grace =>
                {
                    continue;
                }
                Err(error) if error.kind == ErrorKind::Cancelled => return Err(Halt::Api(error)),
                Err(error)
                    if error.is_retryable()
                        || error.kind == ErrorKind::Decode
                        || error.kind == ErrorKind::NotFound =>
                {
                    failures += 1;
                    self.events
                        .send(EventKind::Error(self.error_record(&error)))
                        .await?;
                    if failures >= MAX_POLL_FAILURES {
                        return Err(Halt::Outcome(
                            Outcome::Detached,
                            format!(
                                "status unreadable {failures} times in a row ({error}); the task runs on remotely and the next run resumes it"
                            ),
                        ));
                    }
                    continue;
                }
                Err(error) => return Err(Halt::Api(error)),
            };
            let mut node = verdict::level(&node, level).clone();
            if node.status.is_none() && task_age(created_at) >= self.policy.young_task_grace {
                // The level has not appeared: the task may have ended at its root (e.g. not attached).
                let root = self
                    .plan
                    .cloud
                    .task_status(
                        job_id,
                        task_id,
                        &StatusQuery {
                            level: None,
                            expand_children: false,
                        },
                        &self.forced,
                    )
                    .await
                    .map_err(Halt::Api)?;
                if root.is_finished() {
                    node = root;
                }
            }
            self.report_status(intent_id, &node, &mut last_seen).await?;
            match checks_done {
                None => {
                    if !node.is_finished() {
                        continue;
                    }
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
                    polls = 0;
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
                        return Ok(TaskEnd {
                            checks: checks.clone(),
                            data: Some(data),
                        });
                    }
                }
            }
        }
    }

    /// Sends the task's status when it changed (status, outcome or progress). Never marks the
    /// task finished: only the pipeline's conclusion does (`TaskFinished`), so a Migrate task
    /// whose check level finished is still adopted after a crash.
    async fn report_status(
        &self,
        intent_id: i64,
        node: &StatusNode,
        last_seen: &mut Option<(String, Option<String>, String)>,
    ) -> Step<()> {
        let status = node
            .status
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "PENDING".into());
        let outcome = node.outcome.as_ref().map(ToString::to_string);
        let fingerprint = serde_json::to_string(node).unwrap_or_default();
        let seen = (status.clone(), outcome.clone(), fingerprint);
        if last_seen.as_ref() == Some(&seen) {
            return Ok(());
        }
        *last_seen = Some(seen);
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

    // ---- artifacts --------------------------------------------------------------------------

    /// Downloads the artifacts listed on a finished task before they expire. Failures are
    /// recorded on the artifact; they never fail the site.
    async fn collect_artifacts(&mut self, job_id: &str, task_id: &str) -> Step<()> {
        self.stage(Stage::Collect).await?;
        let task = match self
            .plan
            .cloud
            .get_task(job_id, task_id, &self.forced)
            .await
        {
            Ok(task) => task,
            Err(error) if error.kind == ErrorKind::Cancelled => return Err(Halt::Api(error)),
            Err(error) => {
                self.events
                    .send(EventKind::Error(self.error_record(&error)))
                    .await?;
                return Ok(());
            }
        };
        let artifacts = task
            .results
            .map(|results| results.artifacts)
            .unwrap_or_default();
        let dir_error = (!artifacts.is_empty())
            .then(|| crate::report::writer::create_private_dir(&self.plan.artifact_dir).err())
            .flatten()
            .map(|error| error.to_string());
        for artifact in artifacts {
            let expire_at = artifact.expire_at.as_ref().and_then(|at| at.instant());
            let file_name = artifact_file_name(task_id, &artifact.name);
            let mut record = ArtifactRecord {
                name: artifact.name.clone(),
                saved_as: None,
                bytes: None,
                expire_at,
                error: None,
            };
            if let Some(error) = &dir_error {
                record.error = Some(error.clone());
            } else if expire_at.is_some_and(|at| at <= Utc::now()) {
                record.error = Some("expired before it could be collected".into());
            } else {
                let dest = self.plan.artifact_dir.join(&file_name);
                match self
                    .plan
                    .cloud
                    .download_artifact(&artifact, &dest, &self.forced)
                    .await
                {
                    Ok(bytes) => {
                        record.saved_as =
                            Some(format!("artifacts/{}/{file_name}", self.site().name));
                        record.bytes = Some(bytes);
                    }
                    Err(error) if error.kind == ErrorKind::Cancelled => {
                        return Err(Halt::Api(error));
                    }
                    Err(error) => record.error = Some(error.to_string()),
                }
            }
            self.events.send(EventKind::Artifact(record)).await?;
        }
        Ok(())
    }

    /// The coordinator stamps the site's current stage on it.
    fn error_record(&self, error: &ApiError) -> ErrorRecord {
        ErrorRecord {
            at: Utc::now(),
            stage: Stage::Queued,
            endpoint: Some(error.endpoint.template().to_owned()),
            status: error.status,
            request_id: error.request_id.clone(),
            message: error.to_string(),
        }
    }
}

fn task_stage(kind: &TaskKind) -> Stage {
    match kind {
        TaskKind::Migrate => Stage::Migrate,
        _ => Stage::Check,
    }
}

fn task_age(created_at: DateTime<Utc>) -> Duration {
    (Utc::now() - created_at).to_std().unwrap_or_default()
}

fn failed_checks_message(names: &[String], message: &str) -> String {
    if names.is_empty() {
        if message.is_empty() {
            "checks failed".into()
        } else {
            format!("checks failed: {message}")
        }
    } else {
        format!("checks failed: {}", names.join(", "))
    }
}

/// A safe local file name for an artifact: the task id and the artifact's name, with anything
/// but letters, digits, `.`, `-` and `_` replaced.
fn artifact_file_name(task_id: &str, name: &str) -> String {
    let clean = |text: &str| -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let name = clean(name).trim_start_matches('.').to_owned();
    let name = if name.is_empty() {
        "artifact".to_owned()
    } else {
        name
    };
    format!("{}-{name}", clean(task_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names_cannot_escape_the_site_dir() {
        assert_eq!(
            artifact_file_name("t1", "../../etc/passwd"),
            "t1-_.._etc_passwd"
        );
        assert_eq!(
            artifact_file_name("t1", "pre-migration report.csv"),
            "t1-pre-migration_report.csv"
        );
        assert_eq!(artifact_file_name("t/1", ""), "t_1-artifact");
    }
}
