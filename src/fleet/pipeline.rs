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

mod apps;
mod artifacts;
mod conclusion;
mod phase;
mod setup;
mod task;
mod watch;

use conclusion::{Conclusion, data_conclusion, judge_checks, judge_data, systemic};

use super::breaker::{FailureSignature, Tripwire};
use super::events::{EventKind, SiteEvents, StoreUnavailable, TaskRef};
use super::failpoint;
use super::poll::{Phase as PollPhase, PhaseDurations, PhaseKey};
use super::verdict::{self, ChecksVerdict};
use crate::cma::client::StatusQuery;
use crate::cma::wire::{CreateTaskRequest, StatusNode, TaskKind};
use crate::cma::{ApiError, CloudClient, ErrorKind, ServerClient};
use crate::inventory::{Site, definition_hash};
use crate::report::model::{ArtifactRecord, CheckResult, ErrorRecord};
use crate::state::{SiteState, TaskRecord};
use crate::vocab::{Judgement, Mode, Outcome, Stage};

pub use super::settings::PipelinePolicy;

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
    /// The cloud user's breaker: once its sites keep failing alike, this site stops before
    /// its next step, and a create still waiting for its turn is not sent.
    pub tripwire: Arc<Tripwire>,
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
#[derive(Debug, PartialEq)]
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

    /// How cmafleet judges the task (kept on the task's record): by its checks, or by its
    /// data once the checks let it through. The checks' warnings are the site's, not the
    /// data's: a Migrate task judged by its data counts only the scopes' warnings.
    fn judgement(&self) -> Judgement {
        let checks = judge_checks(&self.checks, false);
        match &self.data {
            Some(data) if checks.lets_through() => judge_data(data, Vec::new()).judgement,
            _ => checks.judgement,
        }
    }
}

/// Runs one site to its end and reports it with a `Finished` event.
pub async fn run_site(
    policy: Arc<PipelinePolicy>,
    plan: SitePlan,
    events: SiteEvents,
    stop: CancellationToken,
) {
    let mut pipeline = Pipeline {
        policy,
        plan,
        events,
        stop,
        job_created_at: None,
        reattached: false,
        connected: false,
        notes: Vec::new(),
        current_stage: Stage::Queued,
    };
    let mut failure = None;
    let conclusion = match pipeline.drive().await {
        Ok(conclusion) => conclusion,
        Err(Halt::Outcome(outcome, message)) => Conclusion::new(outcome, message),
        Err(Halt::Api(error)) if error.kind == ErrorKind::Cancelled => {
            match pipeline.plan.tripwire.tripped() {
                Some(reason) => Conclusion::new(Outcome::Skipped, reason),
                None => Conclusion::new(
                    Outcome::Detached,
                    "interrupted; the next run resumes this site",
                ),
            }
        }
        Err(Halt::Api(error)) => {
            let _ = pipeline
                .events
                .send(EventKind::Error(pipeline.error_record(&error)))
                .await;
            failure = systemic(&error, pipeline.current_stage);
            Conclusion::new(Outcome::Failed, error.to_string())
        }
        Err(Halt::Store(error)) => {
            tracing::error!(site = %pipeline.plan.site.name, "{error}");
            return;
        }
    };
    let Conclusion {
        outcome,
        message,
        migrated,
    } = conclusion;
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
            failure,
        })
        .await;
}

struct Pipeline {
    policy: Arc<PipelinePolicy>,
    plan: SitePlan,
    events: SiteEvents,
    /// The run is stopping (a signal, the deadline): nothing new starts — no request is
    /// sent, no wait goes on (rate buckets, retries, polls) — and reads on the wire are
    /// dropped. Creates on the wire finish within the run's stop grace (the HTTP client
    /// drops them after it).
    stop: CancellationToken,
    /// When this run created the site's job (a task create may then meet a 404 while the
    /// new job propagates).
    job_created_at: Option<DateTime<Utc>>,
    /// The not-attached failure is retried once.
    reattached: bool,
    /// A connect is tried once.
    connected: bool,
    /// Sent as notes when the pipeline ends.
    notes: Vec<String>,
    /// The stage the pipeline is in (a failure's step, for the breaker).
    current_stage: Stage,
}

impl Pipeline {
    fn site(&self) -> &Site {
        &self.plan.site
    }

    async fn stage(&mut self, stage: Stage) -> Step<()> {
        self.current_stage = stage;
        // The site's span (opened by the coordinator) carries the stage on every later line.
        tracing::Span::current().record("stage", stage.as_str());
        tracing::debug!("stage {}", stage.as_str());
        Ok(self.events.send(EventKind::Stage(stage)).await?)
    }

    async fn drive(&mut self) -> Step<Conclusion> {
        // A migration whose apps ran on is followed up first (a re-migration asked for
        // starts anew instead).
        let remigrate = self.policy.mode == Mode::Migrate && self.policy.remigrate;
        if let Some(task) = self.plan.state.apps_pending().cloned()
            && !remigrate
            && let Some(conclusion) = self.follow_up_apps(task).await?
        {
            return Ok(conclusion);
        }
        let job_id = self.ensure_job().await?;
        match self.policy.mode {
            Mode::Check => {
                let end = self.run_task(TaskKind::Check, &job_id, &[]).await?;
                Ok(judge_checks(&end.checks, self.policy.block_on_warnings).into())
            }
            Mode::Migrate => self.migrate(&job_id).await,
        }
    }

    async fn migrate(&mut self, job_id: &str) -> Step<Conclusion> {
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
            if let Some(stop) = self.precheck_gate(&end.checks, &mut warnings)? {
                return Ok(stop);
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
        // The Migrate task ran past its warnings: they never block here.
        let checks = judge_checks(&end.checks, false);
        if !checks.lets_through() {
            return Ok(Conclusion::from(checks).no_data_moved(""));
        }
        if let ChecksVerdict::Warnings(names) = &end.checks {
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
        let data = end.data.unwrap_or_default();
        if data.running_after_core() {
            self.notes.push(format!(
                "core data migrated; still running after it: {} (not waited for; use --wait-apps)",
                data.after_core.join(", ")
            ));
        }
        Ok(data_conclusion(&data, warnings))
    }

    /// The precheck's verdict on the Migrate task: `Some` conclusion when it stops the site
    /// before any data moves; warnings (and overridden failures) go to `warnings`.
    fn precheck_gate(
        &self,
        checks: &ChecksVerdict,
        warnings: &mut Vec<String>,
    ) -> Step<Option<Conclusion>> {
        if let ChecksVerdict::Failed(names, _) = checks
            && !names.is_empty()
        {
            // Every failure is one `--override-checks` names and the precheck marked
            // excludable: the Migrate task excludes them, so the gate lets it through.
            let exclude = self.excluded_checks()?;
            if names.iter().all(|name| exclude.contains(name)) {
                warnings.extend(names.iter().map(|name| format!("{name} (overridden)")));
                return Ok(None);
            }
        }
        let judged = judge_checks(checks, self.policy.block_on_warnings);
        if !judged.lets_through() {
            return Ok(Some(Conclusion::from(judged).no_data_moved("precheck: ")));
        }
        if let ChecksVerdict::Warnings(names) = checks {
            warnings.extend(names.iter().cloned());
        }
        Ok(None)
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

fn task_stage(kind: &TaskKind) -> Stage {
    match kind {
        TaskKind::Migrate => Stage::Migrate,
        _ => Stage::Check,
    }
}
