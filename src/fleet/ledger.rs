//! The run's in-memory state, owned by the coordinator: one [`SiteEntry`] per selected site,
//! changed only by applying pipeline events, and the views built from it (counts, the live
//! status document, the run report).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::eta::Eta;
use super::events::{EventKind, TaskRef};
use crate::inventory::Site;
use crate::metrics::Metrics;
use crate::metrics::status::{InFlightSite, RunStatus, SiteError, WaveStatus};
use crate::report::model::{
    CheckResult, ErrorRecord, RunInfo, RunReport, SiteReport, StageSpan, TaskReport,
};
use crate::state::SiteState;
use crate::vocab::{Mode, Outcome, Stage};

/// Errors kept per site (the first ones and the latest ones matter; a storm must not eat memory).
const MAX_ERRORS_PER_SITE: usize = 50;
/// Errors shown on the live status page.
const RECENT_ERRORS: usize = 20;

/// Where a site is in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Pending,
    Running,
    Done,
}

/// One selected site in this run.
pub struct SiteEntry {
    pub site: Arc<Site>,
    /// Index of the site's wave in the run's wave order.
    pub wave: usize,
    /// The site's record in the state store when the run started.
    pub state: SiteState,
    pub report: SiteReport,
    pub progress: Progress,
    /// When the current stage started (for stage durations).
    stage_since: Instant,
    /// Task ids by intent id, for status events.
    tasks_by_intent: HashMap<i64, String>,
    /// The site's last finished task of the run's main kind took this long (admission order).
    pub expected_seconds: i64,
}

impl SiteEntry {
    pub fn new(site: Arc<Site>, wave: usize, state: SiteState, mode: Mode) -> SiteEntry {
        let report = SiteReport::pending(&site.name, site.product.as_str(), mode);
        let main_kind = match mode {
            Mode::Check => crate::cma::wire::TaskKind::Check,
            Mode::Migrate => crate::cma::wire::TaskKind::Migrate,
        };
        let expected_seconds = state
            .tasks
            .iter()
            .rev()
            .filter(|task| task.kind == main_kind)
            .find_map(|task| Some((task.finished_at? - task.created_at?).num_seconds()))
            .unwrap_or(0);
        let tasks_by_intent = state
            .tasks
            .iter()
            .filter_map(|task| Some((task.intent_id, task.task_id.clone()?)))
            .collect();
        SiteEntry {
            site,
            wave,
            state,
            report,
            progress: Progress::Pending,
            stage_since: Instant::now(),
            tasks_by_intent,
            expected_seconds,
        }
    }

    /// Whether an earlier run left a task of this site running (or its id unknown): the next
    /// pipeline adopts it instead of creating one.
    pub fn has_task_in_flight(&self) -> bool {
        self.state.has_task_in_flight()
    }

    /// Ends the site without a pipeline (skipped at admission, or never started).
    pub fn conclude(&mut self, outcome: Outcome, message: String, metrics: &Metrics) {
        let now = Utc::now();
        self.move_to(Stage::Done, now, metrics);
        self.report.outcome = Some(outcome);
        metrics.set_site_outcome(&self.site.name, outcome);
        self.report.message = message;
        self.report.finished_at = Some(now);
        self.progress = Progress::Done;
    }

    /// Applies an event that concerns this site alone.
    fn apply(&mut self, kind: &EventKind, now: DateTime<Utc>, metrics: &Metrics) {
        match kind {
            EventKind::Stage(stage) => self.move_to(*stage, now, metrics),
            EventKind::Job { job_id, .. } => self.report.job_id = Some(job_id.clone()),
            EventKind::TaskCreated { task, adopted } => self.task_started(task, *adopted),
            EventKind::TaskResumed(task) => {
                self.report.notes.push(format!(
                    "resumed {} task {} left running by an earlier run",
                    task.kind.response_str(),
                    task.task_id
                ));
                self.task_started(task, true);
            }
            EventKind::FollowUp(task) => {
                self.tasks_by_intent
                    .insert(task.intent_id, task.task_id.clone());
                self.report.task_id = Some(task.task_id.clone());
                self.report.notes.push(format!(
                    "followed up migrate task {}: its apps were still migrating when an earlier run ended",
                    task.task_id
                ));
            }
            EventKind::TaskStatus {
                intent_id,
                status,
                outcome,
                ..
            } => {
                if let Some(task) = self.task_report(*intent_id) {
                    task.status = Some(status.clone());
                    task.outcome.clone_from(outcome);
                }
            }
            EventKind::TaskFinished {
                intent_id,
                judgement,
            } => {
                if let Some(task) = self.task_report(*intent_id) {
                    task.finished_at = Some(now);
                    task.outcome = Some(judgement.as_str().to_owned());
                }
            }
            EventKind::AfterCore { running, .. } => self.report.still_running.clone_from(running),
            EventKind::Scopes(scopes) => {
                metrics.observe_scopes(&self.site.name, scopes);
                self.report.scopes.clone_from(scopes);
            }
            EventKind::Artifact(artifact) => self.report.artifacts.push(artifact.clone()),
            EventKind::Note(note) => self.report.notes.push(note.clone()),
            // Written to the store only, or taken by the ledger itself.
            EventKind::JobIntent
            | EventKind::JobIntentWithdrawn
            | EventKind::TaskIntent { .. }
            | EventKind::TaskAbandoned { .. }
            | EventKind::Attached { .. }
            | EventKind::Checks(_)
            | EventKind::Error(_)
            | EventKind::Finished { .. } => {}
        }
    }

    /// A task this run created, adopted or resumed, on the site's report.
    fn task_started(&mut self, task: &TaskRef, adopted: bool) {
        self.tasks_by_intent
            .insert(task.intent_id, task.task_id.clone());
        self.report.task_id = Some(task.task_id.clone());
        self.report.tasks.push(TaskReport {
            kind: task.kind.response_str(),
            task_id: task.task_id.clone(),
            created_at: Some(task.created_at),
            adopted,
            status: None,
            outcome: None,
            finished_at: None,
        });
    }

    fn task_report(&mut self, intent_id: i64) -> Option<&mut TaskReport> {
        let task_id = self.tasks_by_intent.get(&intent_id)?;
        self.report
            .tasks
            .iter_mut()
            .rev()
            .find(|task| &task.task_id == task_id)
    }

    fn move_to(&mut self, stage: Stage, now: DateTime<Utc>, metrics: &Metrics) {
        let from = self.report.stage;
        if from == stage {
            return;
        }
        if let Some(open) = self
            .report
            .stages
            .last_mut()
            .filter(|span| span.finished_at.is_none())
        {
            open.finished_at = Some(now);
        }
        if from != Stage::Queued {
            metrics.observe_stage(from, self.stage_since.elapsed());
        }
        if stage != Stage::Done {
            self.report.stages.push(StageSpan {
                stage,
                started_at: now,
                finished_at: None,
            });
            self.report.started_at.get_or_insert(now);
        }
        metrics.set_site_stage(&self.site.name, stage);
        self.report.stage = stage;
        self.stage_since = Instant::now();
    }
}

/// All sites of the run and the fleet-wide sums derived from them.
pub struct Ledger {
    pub entries: Vec<SiteEntry>,
    metrics: Arc<Metrics>,
    /// The latest errors across the fleet, for the live page: (site, message).
    recent_errors: Vec<(String, String, DateTime<Utc>)>,
    /// Every distinct check node seen, shared by the reports that carry it: a fleet's sites
    /// mostly report the same nodes word for word, and every finished site's report stays
    /// in memory for the summaries (otherwise one copy per site and check).
    checks: HashSet<Arc<CheckResult>>,
    /// Sites that finished after running a pipeline: the finish rate the ETA is drawn from
    /// (sites skipped without one finish in no time).
    worked: usize,
    /// The ETA shown so far, eased from one refresh to the next.
    eta: Eta,
    /// When the last site with work finished: the finish rate is taken at that instant.
    last_finish: Option<Instant>,
}

impl Ledger {
    pub fn new(entries: Vec<SiteEntry>, metrics: Arc<Metrics>) -> Ledger {
        metrics.init_sites(entries.iter().map(|entry| entry.site.name.as_str()));
        Ledger {
            entries,
            metrics,
            recent_errors: Vec::new(),
            checks: HashSet::new(),
            worked: 0,
            eta: Eta::default(),
            last_finish: None,
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Applies one event to the site's entry (in memory; the store is the coordinator's).
    pub fn apply(&mut self, index: usize, kind: &EventKind) {
        let now = Utc::now();
        let metrics = Arc::clone(&self.metrics);
        match kind {
            EventKind::Checks(checks) => self.apply_checks(index, checks),
            EventKind::Error(error) => self.apply_error(index, error),
            EventKind::Finished {
                outcome, message, ..
            } => {
                self.entries[index].conclude(*outcome, message.clone(), &metrics);
                self.worked += 1;
                self.last_finish = Some(Instant::now());
            }
            other => self.entries[index].apply(other, now, &metrics),
        }
    }

    /// A site's check results, each shared with every other report that carries it word
    /// for word.
    fn apply_checks(&mut self, index: usize, checks: &[CheckResult]) {
        let entry = &mut self.entries[index];
        // Counted once per site and run (a precheck and its Migrate task both report).
        if entry.report.checks.is_empty() {
            for check in checks {
                self.metrics
                    .count_check(&check.name, &check.outcome.to_ascii_uppercase());
            }
        }
        entry.report.checks = checks
            .iter()
            .map(|check| match self.checks.get(check) {
                Some(shared) => Arc::clone(shared),
                None => {
                    let shared = Arc::new(check.clone());
                    self.checks.insert(Arc::clone(&shared));
                    shared
                }
            })
            .collect();
    }

    /// An error, on the site's report (stamped with its stage) and on the live page's list.
    fn apply_error(&mut self, index: usize, error: &ErrorRecord) {
        let entry = &mut self.entries[index];
        let mut error = error.clone();
        error.stage = entry.report.stage;
        let shown = match (&error.endpoint, error.status) {
            (Some(endpoint), Some(status)) => {
                format!("{endpoint} (HTTP {status}): {}", error.message)
            }
            (Some(endpoint), None) => format!("{endpoint}: {}", error.message),
            _ => error.message.clone(),
        };
        self.recent_errors
            .push((entry.site.name.clone(), shown, error.at));
        if self.recent_errors.len() > RECENT_ERRORS {
            self.recent_errors.remove(0);
        }
        if entry.report.errors.len() >= MAX_ERRORS_PER_SITE {
            entry.report.errors.remove(MAX_ERRORS_PER_SITE / 2);
        }
        entry.report.errors.push(error);
    }

    /// Sites per outcome (every outcome present) and how many are pending and running.
    pub fn counts(&self) -> (BTreeMap<Outcome, usize>, usize, usize) {
        let mut counts: BTreeMap<Outcome, usize> = Outcome::ALL
            .into_iter()
            .map(|outcome| (outcome, 0))
            .collect();
        let (mut pending, mut running) = (0, 0);
        for entry in &self.entries {
            match (entry.progress, entry.report.outcome) {
                (Progress::Done, Some(outcome)) => *counts.entry(outcome).or_default() += 1,
                (Progress::Running, _) | (Progress::Done, None) => running += 1,
                (Progress::Pending, _) => pending += 1,
            }
        }
        (counts, pending, running)
    }

    /// Publishes `cmafleet_sites`.
    pub fn publish_counts(&self) {
        let (counts, pending, running) = self.counts();
        let mut series: Vec<(&str, usize)> = counts
            .iter()
            .map(|(outcome, n)| (outcome.as_str(), *n))
            .collect();
        series.push((crate::metrics::registry::PENDING, pending));
        series.push((crate::metrics::registry::RUNNING, running));
        self.metrics.set_site_counts(&series);
    }

    /// The run report with every site's report moved out of the ledger rather than copied
    /// (a large fleet's reports are too big to copy at every write); [`Ledger::restore_reports`]
    /// puts them back. Nothing may read the ledger's reports in between.
    pub fn lend_run_report(&mut self, run: &RunInfo) -> RunReport {
        RunReport {
            run: run.clone(),
            sites: self
                .entries
                .iter_mut()
                .map(|entry| {
                    let placeholder = SiteReport::pending(
                        &entry.site.name,
                        entry.site.product.as_str(),
                        run.mode,
                    );
                    std::mem::replace(&mut entry.report, placeholder)
                })
                .collect(),
        }
    }

    /// Gives back the reports [`Ledger::lend_run_report`] moved out (same order).
    pub fn restore_reports(&mut self, reports: Vec<SiteReport>) {
        for (entry, report) in self.entries.iter_mut().zip(reports) {
            entry.report = report;
        }
    }

    /// The live status document (`/status.json`, the terminal view, progress lines).
    pub fn status(&mut self, run: &RunInfo, started: Instant) -> RunStatus {
        let (counts, pending, running) = self.counts();
        let total = self.entries.len();
        let until_last_finish = self
            .last_finish
            .map(|at| at.saturating_duration_since(started))
            .unwrap_or_default();
        let eta_seconds = self.eta.update(
            Instant::now(),
            until_last_finish,
            self.worked,
            pending + running,
        );
        let now = Utc::now();
        let mut in_flight: Vec<InFlightSite> = self
            .entries
            .iter()
            .filter(|entry| entry.progress == Progress::Running)
            .map(|entry| InFlightSite {
                site: entry.site.name.clone(),
                stage: entry.report.stage,
                since: entry
                    .report
                    .stages
                    .last()
                    .map_or(now, |span| span.started_at),
            })
            .collect();
        in_flight.sort_by_key(|site| site.since);
        let mut counts: BTreeMap<String, usize> = counts
            .into_iter()
            .map(|(outcome, n)| (outcome.as_str().to_owned(), n))
            .collect();
        counts.insert(crate::metrics::registry::PENDING.to_owned(), pending);
        counts.insert(crate::metrics::registry::RUNNING.to_owned(), running);
        RunStatus {
            run_id: run.run_id.clone(),
            mode: Some(run.mode),
            shard: run.shard.clone(),
            started_at: Some(run.started_at),
            total,
            counts,
            in_flight,
            recent_errors: self
                .recent_errors
                .iter()
                .rev()
                .map(|(site, message, at)| SiteError {
                    site: site.clone(),
                    message: message.clone(),
                    at: *at,
                })
                .collect(),
            eta_seconds,
            waves: self.waves(),
            finished: false,
        }
    }

    /// Sites done per wave, in wave order (one entry per wave of the selection).
    fn waves(&self) -> Vec<WaveStatus> {
        let mut waves: Vec<WaveStatus> = Vec::new();
        for entry in &self.entries {
            if waves.len() <= entry.wave {
                waves.resize(entry.wave + 1, WaveStatus::default());
            }
            let wave = &mut waves[entry.wave];
            if wave.label.is_none() {
                wave.label.clone_from(&entry.site.wave);
            }
            wave.total += 1;
            if entry.progress == Progress::Done {
                wave.done += 1;
            }
        }
        waves
    }
}
