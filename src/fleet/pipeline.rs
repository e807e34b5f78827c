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

mod artifacts;
mod task;

use super::events::{EventKind, SiteEvents, StoreUnavailable};
use super::failpoint;
use super::poll::{Phase, PhaseDurations, PhaseKey, PollPolicy};
use super::verdict::{self, ChecksVerdict};
use super::{Mode, Outcome, Stage};
use crate::cma::client::StatusQuery;
use crate::cma::wire::{CreateTaskRequest, StatusNode, TaskKind};
use crate::cma::{ApiError, CloudClient, ErrorKind, ServerClient};
use crate::inventory::{Site, definition_hash};
use crate::report::model::{ArtifactRecord, CheckResult, ErrorRecord};
use crate::state::{SiteState, TaskRecord};

/// Job creates sent at most for one site when their answers are lost.
const MAX_JOB_CREATES: u32 = 3;

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
    /// How long the run's task phases took so far (shared by every site), to time polls.
    pub durations: Arc<PhaseDurations>,
    /// When the run started: the poll grid counts from it, so that every site's polls wake
    /// on the same ticks (`PollPolicy::on_grid`).
    pub run_start: tokio::time::Instant,
    /// `<report-dir>/artifacts`: where the site's artifacts are saved, each named
    /// `<site>@<task>-<name>` (the report writer creates the dir, 0700).
    pub artifacts_dir: PathBuf,
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
    /// The service's message when the task failed because the site was not attached — at
    /// its checks, or mid-data when the attach lapsed — so it is re-attached and retried once.
    fn not_attached(&self) -> Option<&str> {
        match (&self.checks, &self.data) {
            (ChecksVerdict::NotAttached(message), _) => Some(message),
            (_, Some(data)) => data.not_attached.as_deref(),
            _ => None,
        }
    }

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
    if matches!(
        outcome,
        Outcome::Succeeded | Outcome::Warnings | Outcome::Skipped
    ) {
        tracing::info!(outcome = outcome.as_str(), "{message}");
    } else {
        tracing::warn!(outcome = outcome.as_str(), "{message}");
    }
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
        // The site's span (opened by the coordinator) carries the stage on every later line.
        tracing::Span::current().record("stage", stage.as_str());
        tracing::debug!("stage {}", stage.as_str());
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
        let gated = self.policy.precheck || self.policy.block_on_warnings;
        if !gated && !migrate_in_flight {
            // A Check task an earlier run left running holds the server (`--per-server`):
            // it is polled to its end before the Migrate task starts, and no new one is
            // created. Without a precheck its verdict gates nothing: the Migrate task runs
            // the checks again.
            self.wait_for_left_task(TaskKind::Check).await?;
        }
        if gated && !migrate_in_flight {
            let end = self.run_task(TaskKind::Check, job_id, &[]).await?;
            match &end.checks {
                ChecksVerdict::Passed => {}
                // Every failure is one `--override-checks` names and the precheck marked
                // excludable: the Migrate task excludes them, so the gate lets it through.
                ChecksVerdict::Failed(names, _) if !names.is_empty() => {
                    let exclude = self.excluded_checks()?;
                    let blocking: Vec<&String> = names
                        .iter()
                        .filter(|name| !exclude.contains(name))
                        .collect();
                    if !blocking.is_empty() {
                        let (outcome, message, _) = self.check_mode_verdict(&end.checks);
                        return Ok((
                            outcome,
                            format!("precheck: {message}; no data moved"),
                            false,
                        ));
                    }
                    warnings.extend(names.iter().map(|name| format!("{name} (overridden)")));
                }
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
        // Also when resuming: an open intent whose POST never left is created anew, with
        // the same overrides (an adopted task ignores them).
        let exclude = if migrate_in_flight {
            self.excluded_checks().unwrap_or_default()
        } else {
            self.excluded_checks()?
        };
        let end = self.run_task(TaskKind::Migrate, job_id, &exclude).await?;
        match &end.checks {
            ChecksVerdict::Passed => {}
            ChecksVerdict::Warnings(names) => {
                // Each check named once; an excluded one (a failure turned into a warning)
                // says so.
                for name in names {
                    let named = if exclude.contains(name) {
                        format!("{name} (overridden)")
                    } else {
                        name.clone()
                    };
                    if !warnings.contains(&named) {
                        warnings.push(named);
                    }
                }
            }
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
        // The one line a person reads first says that apps go on after this run.
        let apps = if data.apps_running {
            "; apps still migrating"
        } else {
            ""
        };
        if warnings.is_empty() {
            Ok((Outcome::Succeeded, format!("migrated{apps}"), true))
        } else {
            Ok((
                Outcome::Warnings,
                format!("migrated with warnings: {}{apps}", warnings.join(", ")),
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
        failpoint::hit("job-intent");
        // The API cannot list jobs: a create whose answer was lost is sent again (each lost
        // one may be an unused job, which moves no data), a bounded number of times.
        let mut lost = 0;
        let created = loop {
            match self.plan.cloud.create_job(&definition, &self.forced).await {
                Err(error) if error.is_outcome_unknown() && lost + 1 < MAX_JOB_CREATES => {
                    lost += 1;
                    self.events
                        .send(EventKind::Error(self.error_record(&error)))
                        .await?;
                }
                other => break other.map_err(Halt::Api)?,
            }
        };
        if lost > 0 {
            self.notes.push(format!(
                "{lost} job create answer(s) were lost; sent again (each lost one may be an unused job, which moves no data)"
            ));
        }
        failpoint::hit("job-created");
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

    /// The coordinator stamps the site's current stage on it.
    fn error_record(&self, error: &ApiError) -> ErrorRecord {
        ErrorRecord {
            at: Utc::now(),
            stage: Stage::Queued,
            endpoint: Some(error.endpoint.template().to_owned()),
            status: error.status,
            request_id: error.request_id.clone(),
            message: error.detail(),
        }
    }
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

fn task_stage(kind: &TaskKind) -> Stage {
    match kind {
        TaskKind::Migrate => Stage::Migrate,
        _ => Stage::Check,
    }
}
