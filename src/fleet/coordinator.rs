//! The coordinator: admits sites under the concurrency and per-server caps (waves in
//! inventory order, long pipelines first), owns all run state, applies the pipelines' events
//! in order — batching them into one state-store transaction and acknowledging journal events
//! only after the commit — writes reports and metrics, and derives the exit code.
//!
//! Commits are grouped (`pacing`): an event that must be durable waits a little for the
//! durable events of other sites, so that a busy run pays one transaction and one fsync for
//! many of them; an idle run commits at once.
//!
//! Which site starts when is `admission`; what each event writes to the store, `journal`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::task::JoinSet;

mod admission;
mod journal;
mod pacing;

use pacing::CommitPacing;

use super::breaker::Breakers;
use super::events::{self, Event, EventKind, EventReceiver, EventSender};
use super::ledger::{Ledger, Progress, SiteEntry};
use super::limits::RateLimits;
use super::pipeline::PipelinePolicy;
use super::poll::PhaseDurations;
use super::shutdown::{CancelReason, Shutdown};
use crate::cma::CloudClient;
use crate::cma::client::{HttpClient, ServerCredentials};
use crate::config::RunSettings;
use crate::exit;
use crate::inventory::Site;
use crate::metrics::Metrics;
use crate::metrics::status::RunStatus;
use crate::report::ReportWriter;
use crate::report::model::{CheckResult, RunInfo, RunReport};
use crate::secret::Secret;
use crate::state::{StateError, Store};
use crate::vocab::Outcome;

/// Events applied in one state-store transaction at most.
const BATCH: usize = 512;
/// How often summaries and the live status are refreshed.
const REFRESH: Duration = Duration::from_secs(1);
/// How long queued events that nobody waits on may wait to be applied (progress, metrics):
/// the queue rings only for the others (`events`).
const DRAIN: Duration = Duration::from_millis(50);

/// Resolved secrets: never printed, never stored.
pub struct Credentials {
    /// Cloud API token per cloud user.
    pub cloud: HashMap<String, Secret>,
    /// Server credentials per site, in the order of [`FleetRun::sites`].
    pub servers: Vec<ServerCredentials>,
}

/// Everything a fleet run needs; built by `commands::run` (or a test).
pub struct FleetRun {
    pub settings: Arc<RunSettings>,
    pub run_id: String,
    /// Selected sites, in inventory order.
    pub sites: Vec<Arc<Site>>,
    /// The inventory's other rows: a task one of them left running holds its server, so no
    /// selected site starts a task there (admission).
    pub unselected: Vec<Arc<Site>>,
    pub credentials: Credentials,
    pub store: Store,
    pub writer: ReportWriter,
    pub metrics: Arc<Metrics>,
    pub shutdown: Shutdown,
    /// Where the live status is published (the `/status.json` route reads it).
    pub status: Arc<Mutex<RunStatus>>,
    /// Called with the live status after each refresh (terminal view, progress lines).
    pub on_progress: Box<dyn FnMut(&RunStatus) + Send>,
    /// Whether each site's end is a log line (INFO, WARN when not ok); the demo leaves it to
    /// the summary printed right after.
    pub log_conclusions: bool,
}

/// How a run ended.
pub struct RunResult {
    pub report: RunReport,
    pub exit_code: u8,
    pub report_dir: PathBuf,
}

/// Runs the fleet to its end (or until the shutdown drains it).
pub async fn run(fleet: FleetRun) -> RunResult {
    Coordinator::new(fleet).run().await
}

/// The one task that owns the run.
struct Coordinator {
    settings: Arc<RunSettings>,
    policy: Arc<PipelinePolicy>,
    run: RunInfo,
    ledger: Ledger,
    store: Store,
    writer: ReportWriter,
    shutdown: Shutdown,
    status: Arc<Mutex<RunStatus>>,
    on_progress: Box<dyn FnMut(&RunStatus) + Send>,
    started: Instant,
    /// Cloud clients per user (each with that user's rate buckets).
    clouds: HashMap<String, CloudClient>,
    http: HttpClient,
    server_credentials: Vec<ServerCredentials>,
    /// Polling sites per cloud user.
    pollers: HashMap<String, Arc<AtomicUsize>>,
    /// How long this run's task phases took: every site's polls are timed by it.
    durations: Arc<PhaseDurations>,
    /// When the run started, in the runtime's time: the origin of every site's poll grid.
    run_start: tokio::time::Instant,
    /// Sites waiting for admission, per wave (in admission order).
    waiting: Vec<VecDeque<usize>>,
    /// Sites whose task an earlier run left running: admitted first, whatever their wave (their
    /// task already occupies its server, and resuming it creates nothing).
    resuming: VecDeque<usize>,
    /// Per source server, how many of `resuming` wait there: no new task starts on such a
    /// server before its running task is resumed and finished.
    reserved: HashMap<String, usize>,
    /// Source servers where a row outside this run's selection has a task an earlier run
    /// left running, with that row's site: nothing starts there (this run does not poll
    /// that task, so it cannot know when the server is free).
    held_servers: HashMap<String, String>,
    /// Running sites per source server.
    per_server: HashMap<String, usize>,
    running: usize,
    tasks: JoinSet<usize>,
    /// Which site each pipeline task drives (a panicked task reports only its id).
    pipelines: HashMap<tokio::task::Id, usize>,
    sender: EventSender,
    receiver: EventReceiver,
    /// Sites not concluded yet, per wave (a wave starts when every earlier one is done).
    open_in_wave: Vec<usize>,
    /// Each site's latest check results from earlier runs (only with `--override-checks`).
    last_checks: HashMap<String, Vec<CheckResult>>,
    /// Set when the state store refused a write: the run stops, exit 73.
    store_failure: Option<String>,
    /// Events already applied in memory whose store writes wait for the next commit: none is
    /// acknowledged or ends a site, so they ride along with the next one that is (or the
    /// next refresh) instead of costing a commit (an fsync) each.
    unstored: Vec<Event>,
    /// Sites with artifacts saved since the last `syncfs` (the downloads do not fsync): a
    /// commit that concludes one of them syncs the report dir's file system first, so no
    /// committed report names an artifact a power cut could take back.
    unsynced_artifacts: HashSet<usize>,
    /// Whether `unstored` holds an event that must be durable soon (acknowledged, or a
    /// site's end): the next commit is then due at [`CommitPacing::due_at`].
    urgent: bool,
    /// When the next commit is due (module doc: group commit).
    pacing: CommitPacing,
    /// Summaries need rewriting.
    dirty: bool,
    /// Per site: its JSON file holds its final report (written when it concluded), so the
    /// end leaves it alone instead of rendering and comparing it again.
    site_file_current: Vec<bool>,
    /// Per cloud user, whether its sites keep failing alike (`--stop-after-same-failures`).
    breakers: Breakers,
    /// Each running site's tracing span: the coordinator says the site's end in it, then
    /// drops it.
    spans: Vec<Option<tracing::Span>>,
    /// Whether each site's end is a log line (the demo leaves it to the summary).
    log_conclusions: bool,
}

impl Coordinator {
    fn new(fleet: FleetRun) -> Coordinator {
        let FleetRun {
            settings,
            run_id,
            sites,
            unselected,
            credentials,
            store,
            writer,
            metrics,
            shutdown,
            status,
            on_progress,
            log_conclusions,
        } = fleet;
        let observer: Arc<dyn crate::cma::ApiObserver> = metrics.clone();
        let http = HttpClient::new(settings.client.clone(), Arc::clone(&observer))
            .map(|http| http.abandoning_on(shutdown.forced().clone()))
            .unwrap_or_else(|error| {
                panic!("the HTTP client cannot be built on this platform: {error}");
            });
        let limits = RateLimits::new(settings.rates.clone(), observer);
        let clouds: HashMap<String, CloudClient> = credentials
            .cloud
            .into_iter()
            .map(|(user, token)| {
                let client = CloudClient::new(
                    http.clone(),
                    &settings.cloud_api_url,
                    &user,
                    token,
                    limits.for_user(&user),
                );
                (user, client)
            })
            .collect();
        let policy = Arc::new(PipelinePolicy {
            mode: settings.mode,
            precheck: settings.precheck,
            block_on_warnings: settings.block_on_warnings,
            override_checks: settings.override_checks.clone(),
            connect: settings.connect,
            wait_apps: settings.wait_apps,
            remigrate: settings.remigrate,
            no_new_tasks_after: settings.no_new_tasks_after,
            poll: settings.poll,
            young_task_grace: settings.young_task_grace,
            reads_per_second: settings.rates.read.per_second(),
        });
        let waves = admission::wave_order(&sites);
        let mut entries = Vec::with_capacity(sites.len());
        for (index, site) in sites.iter().enumerate() {
            let state = match store.site(&site.name) {
                Ok(state) => state.unwrap_or_else(|| crate::state::SiteState {
                    site: site.name.clone(),
                    ..Default::default()
                }),
                Err(error) => {
                    tracing::error!(site = %site.name, "cannot read its state: {error}");
                    crate::state::SiteState {
                        site: site.name.clone(),
                        ..Default::default()
                    }
                }
            };
            entries.push(SiteEntry::new(
                Arc::clone(site),
                waves[index],
                state,
                settings.mode,
            ));
        }
        let wave_count = waves.iter().copied().max().map_or(0, |max| max + 1);
        let mut waiting: Vec<VecDeque<usize>> = vec![VecDeque::new(); wave_count];
        let mut order: Vec<usize> = (0..entries.len()).collect();
        // Long pipelines first (known from history), otherwise inventory order.
        order.sort_by_key(|&index| std::cmp::Reverse(entries[index].expected_seconds));
        let mut open_in_wave = vec![0; wave_count];
        let mut resuming = VecDeque::new();
        let mut reserved: HashMap<String, usize> = HashMap::new();
        for index in order {
            open_in_wave[entries[index].wave] += 1;
            if entries[index].has_task_in_flight() {
                *reserved
                    .entry(entries[index].site.server_id.clone())
                    .or_default() += 1;
                resuming.push_back(index);
            } else {
                waiting[entries[index].wave].push_back(index);
            }
        }
        let held_servers = admission::held_servers(&store, &sites, &unselected);
        let last_checks = if settings.override_checks.is_empty() {
            HashMap::new()
        } else {
            latest_checks(&store, &sites)
        };
        let run = RunInfo {
            run_id,
            mode: settings.mode,
            options: settings.to_json(),
            shard: settings.selection.shard.map(|shard| shard.label()),
            started_at: Utc::now(),
            finished_at: None,
            counts: Outcome::ALL
                .into_iter()
                .map(|outcome| (outcome, 0))
                .collect(),
            exit_code: None,
            notes: Vec::new(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            surprises: Vec::new(),
        };
        let (sender, receiver) = events::queue(4096);
        let breakers = Breakers::new(
            settings.stop_after_same_failures,
            shutdown.graceful().clone(),
        );
        Coordinator {
            breakers,
            policy,
            run,
            ledger: Ledger::new(entries, metrics),
            store,
            writer,
            shutdown,
            status,
            on_progress,
            started: Instant::now(),
            clouds,
            http,
            server_credentials: credentials.servers,
            pollers: HashMap::new(),
            durations: Arc::default(),
            run_start: tokio::time::Instant::now(),
            waiting,
            resuming,
            reserved,
            held_servers,
            open_in_wave,
            last_checks,
            per_server: HashMap::new(),
            running: 0,
            tasks: JoinSet::new(),
            pipelines: HashMap::new(),
            sender,
            receiver,
            store_failure: None,
            unstored: Vec::new(),
            unsynced_artifacts: HashSet::new(),
            urgent: false,
            pacing: CommitPacing::new(
                settings
                    .rates
                    .create_job
                    .interval()
                    .min(settings.rates.create_task.interval()),
            ),
            dirty: false,
            site_file_current: vec![false; sites.len()],
            spans: vec![None; sites.len()],
            log_conclusions,
            settings,
        }
    }

    async fn run(mut self) -> RunResult {
        self.ledger
            .metrics()
            .set_run_start(self.run.started_at.timestamp_millis() as f64 / 1000.0);
        // The last successful run's end, so CmafleetNoRecentSuccess sees history on a fresh process.
        let last_ok = self
            .store
            .runs()
            .unwrap_or_default()
            .into_iter()
            .find(|run| run.exit_code == Some(0));
        if let Some(at) = last_ok.and_then(|run| run.finished_at) {
            self.ledger
                .metrics()
                .set_last_success(at.timestamp_millis() as f64 / 1000.0);
        }
        // Noted at the start, so the run's record says so even if this run is killed too.
        let unused_jobs: Vec<&str> = self
            .ledger
            .entries
            .iter()
            .filter(|entry| entry.state.job_intent_at.is_some())
            .map(|entry| entry.site.name.as_str())
            .collect();
        if !unused_jobs.is_empty() {
            self.run.notes.push(format!(
                "{} site(s) had a job create interrupted by an earlier run: at most one unused job each (it moves no data): {}",
                unused_jobs.len(),
                unused_jobs.join(", ")
            ));
        }
        if let Err(error) = self.store.transaction(|tx| tx.begin_run(&self.run)) {
            self.fail_store(error);
        }
        self.ledger.publish_counts();
        self.admit();
        let deadline = self
            .settings
            .deadline
            .map(|deadline| tokio::time::Instant::now() + deadline);
        let deadline_sleep = tokio::time::sleep_until(deadline.unwrap_or_else(far_future));
        tokio::pin!(deadline_sleep);
        let mut refresh = tokio::time::interval(REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut drain = tokio::time::interval(DRAIN);
        drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut draining = false;
        while self.running > 0 || self.has_waiting() {
            let (urgent, commit_at) = (self.urgent, self.pacing.due_at());
            tokio::select! {
                // While a commit is due anyway, events wait for it instead of waking the
                // coordinator (they are taken just before it).
                () = self.receiver.rung(), if !urgent => self.drain_events(),
                _ = drain.tick(), if !urgent => self.drain_events(),
                joined = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.drain_events();
                    if let Some(joined) = joined {
                        self.pipeline_ended(joined);
                    }
                    self.admit();
                }
                _ = self.shutdown.graceful().cancelled(), if !draining => {
                    draining = true;
                    let reason = self.shutdown.reason().unwrap_or(CancelReason::Interrupt);
                    let grace = self.settings.stop_grace;
                    tracing::warn!(
                        "{}: no new work; requests already sent get {} to finish, then the in-flight sites stay resumable",
                        reason.describe(),
                        humantime::format_duration(grace)
                    );
                    // Requests still on the wire after the grace are dropped.
                    let shutdown = self.shutdown.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(grace).await;
                        shutdown.force();
                    });
                    self.skip_waiting(&format!("not started: {}", reason.describe()));
                }
                _ = &mut deadline_sleep, if deadline.is_some() && !draining => {
                    self.shutdown.trigger(CancelReason::Deadline);
                }
                _ = tokio::time::sleep_until(commit_at), if urgent => {
                    self.drain_events();
                    self.commit();
                }
                _ = refresh.tick() => {
                    self.drain_events();
                    self.refresh();
                    self.admit();
                }
            }
        }
        self.drain_events();
        self.commit();
        self.finish()
    }

    fn conclude_unstarted(&mut self, index: usize, outcome: Outcome, message: String) {
        let metrics = Arc::clone(self.ledger.metrics());
        let entry = &mut self.ledger.entries[index];
        entry.conclude(outcome, message, &metrics);
        let report = entry.report.clone();
        if let Err(error) = self
            .store
            .transaction(|tx| tx.record_site_report(&self.run.run_id, &report, false))
        {
            self.fail_store(error);
        }
        self.write_site(index);
        self.concluded(index);
    }

    /// Bookkeeping when a site reaches its outcome.
    fn concluded(&mut self, index: usize) {
        let wave = self.ledger.entries[index].wave;
        self.open_in_wave[wave] = self.open_in_wave[wave].saturating_sub(1);
        self.dirty = true;
    }

    fn pipeline_ended(&mut self, joined: Result<(tokio::task::Id, usize), tokio::task::JoinError>) {
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(error) => error.id(),
        };
        let Some(index) = self.pipelines.remove(&id) else {
            return;
        };
        if let Err(error) = joined {
            let site = &self.ledger.entries[index].site.name;
            tracing::error!(site = %site, "the site's pipeline crashed: {error}");
        }
        let entry = &self.ledger.entries[index];
        let server = entry.site.server_id.clone();
        if entry.progress != Progress::Done {
            // The site's own events go to the store before the report that ends it.
            self.commit();
            self.conclude_unstarted(
                index,
                Outcome::Failed,
                "internal error: the site's pipeline stopped unexpectedly".into(),
            );
            self.spans[index] = None;
        }
        if let Some(busy) = self.per_server.get_mut(&server) {
            *busy = busy.saturating_sub(1);
        }
        self.running = self.running.saturating_sub(1);
    }

    /// Applies every event queued so far, in order; they are committed with the next commit
    /// that is due.
    fn drain_events(&mut self) {
        let mut batch = Vec::new();
        while let Some(event) = self.receiver.try_recv() {
            batch.push(event);
            if batch.len() == BATCH {
                self.apply(std::mem::take(&mut batch));
            }
        }
        if !batch.is_empty() {
            self.apply(batch);
        }
    }

    /// Applies a batch in memory; commits it (with any events waiting) when one of them must
    /// be durable — an acknowledged event or a site's end — and a commit is due (module
    /// doc), or when enough are waiting.
    fn apply(&mut self, batch: Vec<Event>) {
        let mut concluded = Vec::new();
        for event in &batch {
            self.ledger.apply(event.site, &event.kind);
            if matches!(event.kind, EventKind::Finished { .. }) {
                concluded.push(event.site);
            }
            if let EventKind::Finished { failure, .. } = &event.kind {
                let user = &self.ledger.entries[event.site].site.cloud_user;
                if let Some(what) = self.breakers.concluded(user, failure.as_ref()) {
                    tracing::error!(
                        "cloud user {user}: {what}; its sites not started yet are skipped (--stop-after-same-failures)"
                    );
                }
            }
            if let EventKind::Artifact(artifact) = &event.kind
                && artifact.saved_as.is_some()
            {
                self.unsynced_artifacts.insert(event.site);
            }
        }
        self.say_conclusions(&concluded);
        self.urgent |= batch.iter().any(is_awaited);
        self.unstored.extend(batch);
        if self.unstored.len() >= BATCH
            || (self.urgent && self.pacing.due_at() <= tokio::time::Instant::now())
        {
            self.commit();
        }
    }

    /// Writes the waiting events in one store transaction, then sends the acknowledgements.
    fn commit(&mut self) {
        self.urgent = false;
        if self.unstored.is_empty() {
            return;
        }
        let started = tokio::time::Instant::now();
        let batch = std::mem::take(&mut self.unstored);
        self.sync_artifacts(&batch);
        let run_id = self.run.run_id.clone();
        let entries = &self.ledger.entries;
        let committed = self.store.transaction(|tx| {
            batch
                .iter()
                .map(|event| journal::record(tx, &run_id, &entries[event.site], &event.kind))
                .collect::<Result<Vec<_>, _>>()
        });
        let awaited = batch.iter().filter(|event| is_awaited(event)).count();
        self.pacing
            .committed(started, tokio::time::Instant::now(), awaited);
        match committed {
            Ok(ids) => {
                for (event, id) in batch.into_iter().zip(ids) {
                    if matches!(event.kind, EventKind::Finished { .. }) {
                        self.write_site(event.site);
                        self.concluded(event.site);
                    }
                    if let Some(ack) = event.ack {
                        let _ = ack.send(Ok(id));
                    }
                }
            }
            Err(error) => {
                let message = error.to_string();
                for event in batch {
                    if let Some(ack) = event.ack {
                        let _ = ack.send(Err(message.clone()));
                    }
                }
                self.fail_store(error);
            }
        }
    }

    /// Before `batch` commits a site report naming artifacts not yet synced: one `syncfs`
    /// for every artifact saved so far (their downloads do not fsync each file). Should the
    /// file system report a write error, those artifacts are reported as not confirmed on
    /// disk instead of silently trusted.
    fn sync_artifacts(&mut self, batch: &[Event]) {
        let concludes_unsynced = batch.iter().any(|event| {
            matches!(event.kind, EventKind::Finished { .. })
                && self.unsynced_artifacts.contains(&event.site)
        });
        if !concludes_unsynced {
            return;
        }
        let unsynced = std::mem::take(&mut self.unsynced_artifacts);
        if let Err(error) = self.writer.sync_to_disk() {
            tracing::error!("artifacts may not be on disk: {error}");
            for index in unsynced {
                let artifacts = &mut self.ledger.entries[index].report.artifacts;
                for artifact in artifacts
                    .iter_mut()
                    .filter(|artifact| artifact.saved_as.is_some() && artifact.error.is_none())
                {
                    artifact.error = Some(format!(
                        "saved, but not confirmed on disk (the file system reported an error: {})",
                        error.source
                    ));
                }
            }
        }
    }

    fn fail_store(&mut self, error: StateError) {
        tracing::error!(
            "the state store refused a write: {error}; stopping the run (state stays consistent)"
        );
        if self.store_failure.is_none() {
            self.store_failure = Some(error.to_string());
            self.run.notes.push(format!(
                "stopped: the state store refused a write ({error})"
            ));
        }
        self.skip_waiting("not started: the state store failed");
        self.shutdown.trigger(CancelReason::StoreFailure);
    }

    fn skip_waiting(&mut self, message: &str) {
        let mut waiting: Vec<usize> = std::mem::take(&mut self.resuming).into();
        waiting.extend(self.waiting.iter_mut().flat_map(std::mem::take));
        self.reserved.clear();
        for index in waiting {
            self.conclude_unstarted(index, Outcome::Skipped, message.to_owned());
        }
    }

    fn write_site(&mut self, index: usize) {
        match self.writer.write_site(&self.ledger.entries[index].report) {
            // A concluded site's report does not change any more.
            Ok(()) => self.site_file_current[index] = true,
            Err(error) => tracing::error!("{error}"),
        }
    }

    /// Refreshes counts, the live status and (when something finished) the summaries.
    fn refresh(&mut self) {
        self.commit();
        self.ledger.publish_counts();
        self.publish_view();
        if self.dirty && self.writer.summaries_are_due() {
            self.dirty = false;
            self.run.surprises = self.http.surprises();
            // Lent, not copied: a large fleet's reports would double the run's memory.
            let report = self.ledger.lend_run_report(&self.run);
            if let Err(error) = self.writer.write_summaries(&report) {
                tracing::error!("{error}");
            }
            self.ledger.restore_reports(report.sites);
        }
    }

    /// The live status, to the terminal view or progress lines and the status page.
    fn publish_view(&mut self) {
        let view = self.ledger.status(&self.run, self.started);
        (self.on_progress)(&view);
        *self
            .status
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = view;
    }

    /// Says how sites ended, each in its own span (its `site` and last `stage`): after the
    /// live view stopped showing them as running, so no line and view disagree.
    fn say_conclusions(&mut self, sites: &[usize]) {
        if sites.is_empty() {
            return;
        }
        self.publish_view();
        for &index in sites {
            // The coordinator's copy of the site's span goes with this line (its pipeline has
            // ended): a span kept open keeps its fields in the subscriber, and a 10,000-site
            // run would hold them all to the end.
            let span = self.spans[index].take();
            let report = &self.ledger.entries[index].report;
            let Some(outcome) = report.outcome.filter(|_| self.log_conclusions) else {
                continue;
            };
            let span = span.unwrap_or_else(tracing::Span::none);
            span.in_scope(|| {
                if outcome.is_ok() {
                    tracing::info!(outcome = outcome.as_str(), "{}", report.message);
                } else {
                    tracing::warn!(outcome = outcome.as_str(), "{}", report.message);
                }
            });
        }
    }

    fn finish(mut self) -> RunResult {
        let reason = self.shutdown.reason();
        for index in 0..self.ledger.entries.len() {
            if self.ledger.entries[index].progress != Progress::Done {
                let message = reason.map_or("not started".to_owned(), |reason| {
                    format!("not started: {}", reason.describe())
                });
                self.conclude_unstarted(index, Outcome::Skipped, message);
            }
        }
        let (counts, _, _) = self.ledger.counts();
        let any = |outcomes: &[Outcome]| {
            outcomes
                .iter()
                .any(|outcome| counts.get(outcome).copied().unwrap_or(0) > 0)
        };
        let mut exit_code = if self.store_failure.is_some() {
            exit::CANT_CREATE
        } else if let Some(signal) = reason.filter(|reason| reason.is_signal()) {
            signal.exit_code()
        } else if any(&[Outcome::Failed, Outcome::Blocked]) {
            exit::SITES_FAILED
        } else if any(&[Outcome::Detached]) {
            exit::DETACHED
        } else {
            exit::OK
        };
        if let Some(reason) = reason {
            let detached = counts.get(&Outcome::Detached).copied().unwrap_or(0);
            self.run.notes.push(format!(
                "{}: {detached} site(s) left detached; the next run resumes them",
                reason.describe()
            ));
        }
        self.run.counts = counts;
        self.run.surprises = self.http.surprises();
        self.run.finished_at = Some(Utc::now());
        self.run.exit_code = Some(i32::from(exit_code));
        let previous = self
            .store
            .previous_run(self.run.mode, &self.run.run_id)
            .unwrap_or_else(|error| {
                tracing::warn!("cannot read the previous run for changes.md: {error}");
                None
            });
        self.ledger.publish_counts();
        let mut view = self.ledger.status(&self.run, self.started);
        view.finished = true;
        // The run ends here: its reports move to the result instead of being copied (a copy
        // doubles the memory of a large fleet), so counts and the live view come first.
        let mut report = self.ledger.lend_run_report(&self.run);
        // Reports first: a run whose reports cannot be written is not a success (exit 73),
        // and the state store records the exit code the process really ends with.
        if let Err(error) =
            self.writer
                .write_all(&report, previous.as_ref(), &self.site_file_current)
        {
            tracing::error!("{error}; exiting with {}", exit::CANT_CREATE);
            exit_code = exit::CANT_CREATE;
            self.run.exit_code = Some(i32::from(exit_code));
            self.run
                .notes
                .push(format!("the reports could not be written: {error}"));
            report.run = self.run.clone();
        }
        if let Err(error) = self.store.transaction(|tx| tx.finish_run(&self.run)) {
            tracing::error!("cannot record the run's end: {error}");
        }
        if exit_code == exit::OK {
            self.ledger
                .metrics()
                .set_last_success(Utc::now().timestamp_millis() as f64 / 1000.0);
        }
        (self.on_progress)(&view);
        *self
            .status
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = view;
        RunResult {
            report,
            exit_code,
            report_dir: self.writer.dir().to_owned(),
        }
    }
}

/// Each site's latest check results, from the newest run that has them.
fn latest_checks(store: &Store, sites: &[Arc<Site>]) -> HashMap<String, Vec<CheckResult>> {
    let mut found: HashMap<String, Vec<CheckResult>> = HashMap::new();
    for run in store.runs().unwrap_or_default() {
        if found.len() == sites.len() {
            break;
        }
        let Ok(Some(report)) = store.run_report(&run.run_id) else {
            continue;
        };
        for site in report.sites {
            if !site.checks.is_empty() && !found.contains_key(&site.site) {
                let checks = site.checks.into_iter().map(Arc::unwrap_or_clone);
                found.insert(site.site, checks.collect());
            }
        }
    }
    found
}

/// Whether something waits for `event`'s commit: its pipeline (an acknowledged event) or the
/// site's conclusion (its end).
fn is_awaited(event: &Event) -> bool {
    event.ack.is_some() || matches!(event.kind, EventKind::Finished { .. })
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}
