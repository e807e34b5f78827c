//! The coordinator: the one task that owns a fleet run. It turns what happens — a pipeline's
//! events, a pipeline's end, a stop, its clocks — into one `Wake` at a time and handles it:
//! applies the events in order to the run's state (the [`Ledger`]), records them in the state
//! store (the only writer of it), acknowledges an intent only once it is committed (journal
//! before act), admits the next sites, refreshes the live status and summaries, and at the end
//! writes the reports and derives the exit code.
//!
//! Its parts, each with its own state:
//! - `admission`: which site starts when (the queues, waves and caps);
//! - `commit`: which applied events wait for the store, and when their commit is due;
//! - `launcher`: the shared clients and the spawned pipeline tasks;
//! - `journal`: what each event writes to the store;
//! - `outputs`: the live view, the summaries, each site's file, and the run's end;
//! - `setup`: what a run starts from.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::time::{Interval, MissedTickBehavior, Sleep};

mod admission;
mod commit;
mod journal;
mod launcher;
mod outputs;
mod setup;

use admission::{Admission, Decision};
use commit::{BATCH, Commit, GroupCommit};
use launcher::{Ended, Launcher};
use setup::{entries, latest_checks, rules, run_info};

use super::breaker::Breakers;
use super::events::{self, Event, EventKind, EventReceiver};
use super::ledger::{Ledger, Progress};
use super::settings::FleetSettings;
use super::shutdown::{CancelReason, Shutdown};
use crate::cma::client::ServerCredentials;
use crate::inventory::Site;
use crate::metrics::Metrics;
use crate::metrics::status::RunStatus;
use crate::report::ReportWriter;
use crate::report::model::{RunInfo, RunReport};
use crate::secret::Secret;
use crate::state::{StateError, Store};
use crate::vocab::Outcome;

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
    /// The caps, the pipelines' policy, the clocks of a stop, the run's recorded options.
    pub settings: FleetSettings,
    /// The run's id in the state store and its report dir.
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

/// What woke the coordinator: every source it waits on, as one type.
enum Wake {
    /// A pipeline waits on a durable event (the queue rang), or the drain clock ticked.
    Events,
    /// A pipeline task ended.
    PipelineEnded(Ended),
    /// The run is stopping (a signal, the deadline, a store failure): no new work.
    Stop,
    /// `--deadline` passed.
    Deadline,
    /// The grace after a stop ran out: requests still on the wire are dropped.
    GraceOver,
    /// Awaited events waited long enough for company (group commit).
    CommitDue,
    /// Time to refresh counts, the live status and the summaries.
    Refresh,
}

/// The coordinator's clocks besides the group commit's.
struct Clocks {
    /// `--deadline`, until it passes or the run stops otherwise.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Once the run stops: when requests still on the wire are dropped.
    grace: Option<Pin<Box<Sleep>>>,
    /// When the live status and the summaries are refreshed.
    refresh: Interval,
    /// When queued events nobody waits on are applied.
    drain: Interval,
}

/// The one task that owns the run.
struct Coordinator {
    /// The run's record: stored at its start and end, the head of every summary.
    run: RunInfo,
    /// Every site's state in this run, changed only by applying events.
    ledger: Ledger,
    /// The state store, written by this task alone.
    store: Store,
    /// The report dir: each site's file, the summaries, the final reports.
    writer: ReportWriter,
    /// The run's stop: read to stop admitting, triggered by the deadline and a store failure.
    shutdown: Shutdown,
    /// How long requests already sent may take after a stop.
    stop_grace: Duration,
    /// Where the live status is published (`/status.json`).
    status: Arc<Mutex<RunStatus>>,
    /// The terminal view or progress lines.
    on_progress: Box<dyn FnMut(&RunStatus) + Send>,
    /// When the run started: the ETA's origin.
    started: Instant,
    admission: Admission,
    group: GroupCommit,
    launcher: Launcher,
    /// The pipelines' events, in order per site.
    receiver: EventReceiver,
    clocks: Clocks,
    /// The stop was handled: nothing is admitted any more.
    draining: bool,
    /// Set when the state store refused a write: the run stops, exit 73.
    store_failure: Option<String>,
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
        let entries = entries(&store, &sites, settings.pipeline.mode);
        let held_servers = admission::held_servers(&store, &sites, &unselected);
        let admission = Admission::new(rules(&settings), &entries, held_servers);
        let last_checks = if settings.pipeline.override_checks.is_empty() {
            HashMap::new()
        } else {
            latest_checks(&store, &sites)
        };
        let (sender, receiver) = events::queue(4096);
        let observer: Arc<dyn crate::cma::ApiObserver> = metrics.clone();
        let launcher = Launcher::new(
            &settings,
            credentials,
            observer,
            &shutdown,
            sender,
            writer.artifacts_dir(),
            last_checks,
        );
        let rates = &settings.rates;
        let create_interval = rates
            .create_job
            .interval()
            .min(rates.create_task.interval());
        Coordinator {
            breakers: Breakers::new(
                settings.stop_after_same_failures,
                shutdown.graceful().clone(),
            ),
            clocks: Clocks::new(settings.deadline),
            stop_grace: settings.stop_grace,
            run: run_info(run_id, settings),
            ledger: Ledger::new(entries, metrics),
            store,
            writer,
            shutdown,
            status,
            on_progress,
            started: Instant::now(),
            admission,
            group: GroupCommit::new(create_interval),
            launcher,
            receiver,
            draining: false,
            store_failure: None,
            dirty: false,
            site_file_current: vec![false; sites.len()],
            spans: vec![None; sites.len()],
            log_conclusions,
        }
    }

    /// The run: waits for the next thing that happens and handles it, until every site is
    /// done; then the reports.
    async fn run(mut self) -> RunResult {
        self.begin();
        while self.admission.running() > 0 || self.admission.has_waiting() {
            let wake = self.next_wake().await;
            self.handle(wake);
        }
        self.drain_events();
        self.commit();
        self.finish()
    }

    /// Waits for the next source that has something.
    async fn next_wake(&mut self) -> Wake {
        // While a commit is due anyway, events wait for it instead of waking the coordinator
        // (they are taken just before it).
        let commit_due = self.group.due_at();
        let idle = commit_due.is_none();
        let clocks = &mut self.clocks;
        tokio::select! {
            () = self.receiver.rung(), if idle => Wake::Events,
            _ = clocks.drain.tick(), if idle => Wake::Events,
            Some(ended) = self.launcher.next_ended(), if self.launcher.is_busy() => {
                Wake::PipelineEnded(ended)
            }
            () = self.shutdown.graceful().cancelled(), if !self.draining => Wake::Stop,
            () = fire(&mut clocks.deadline) => Wake::Deadline,
            () = fire(&mut clocks.grace) => Wake::GraceOver,
            () = tokio::time::sleep_until(commit_due.unwrap_or_else(far_future)), if !idle => {
                Wake::CommitDue
            }
            _ = clocks.refresh.tick() => Wake::Refresh,
        }
    }

    fn handle(&mut self, wake: Wake) {
        match wake {
            Wake::Events => self.drain_events(),
            Wake::PipelineEnded(ended) => {
                // The site's own events first: they may conclude it.
                self.drain_events();
                self.pipeline_ended(ended);
                self.admit();
            }
            Wake::Stop => self.stop(),
            Wake::Deadline => {
                self.clocks.deadline = None;
                self.shutdown.trigger(CancelReason::Deadline);
            }
            Wake::GraceOver => {
                self.clocks.grace = None;
                self.shutdown.force();
            }
            Wake::CommitDue => {
                self.drain_events();
                self.commit();
            }
            Wake::Refresh => {
                self.drain_events();
                self.refresh();
                self.admit();
            }
        }
    }

    /// Starts and concludes sites while admission allows.
    fn admit(&mut self) {
        if self.shutdown.is_draining() {
            return;
        }
        let now = Utc::now();
        while self.store_failure.is_none()
            && let Some(decision) = self
                .admission
                .next(&self.ledger.entries, &self.breakers, now)
        {
            match decision {
                Decision::Start(index) => self.start(index),
                Decision::Conclude {
                    site,
                    outcome,
                    message,
                } => self.conclude_unstarted(site, outcome, message),
            }
        }
    }

    fn start(&mut self, index: usize) {
        let user = &self.ledger.entries[index].site.cloud_user;
        let tripwire = self.breakers.tripwire(user);
        let entry = &mut self.ledger.entries[index];
        entry.progress = Progress::Running;
        self.spans[index] = Some(self.launcher.launch(index, entry, tripwire));
        self.dirty = true;
    }

    /// The first stop: nothing new starts; requests already sent get the grace to finish.
    fn stop(&mut self) {
        self.draining = true;
        self.clocks.deadline = None;
        let reason = self.shutdown.reason().unwrap_or(CancelReason::Interrupt);
        tracing::warn!(
            "{}: no new work; requests already sent get {} to finish, then the in-flight sites stay resumable",
            reason.describe(),
            humantime::format_duration(self.stop_grace)
        );
        self.clocks.grace = Some(Box::pin(tokio::time::sleep(self.stop_grace)));
        self.skip_waiting(&format!("not started: {}", reason.describe()));
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
        self.admission.concluded(self.ledger.entries[index].wave);
        self.dirty = true;
    }

    fn pipeline_ended(&mut self, ended: Ended) {
        let index = ended.site;
        if let Some(error) = ended.crash {
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
        self.admission.ended(&server);
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

    /// Applies a batch in memory; commits it (with any events waiting) when a commit is due.
    fn apply(&mut self, batch: Vec<Event>) {
        let mut concluded = Vec::new();
        for event in &batch {
            self.ledger.apply(event.site, &event.kind);
            if let EventKind::Finished { failure, .. } = &event.kind {
                concluded.push(event.site);
                let user = &self.ledger.entries[event.site].site.cloud_user;
                if let Some(what) = self.breakers.concluded(user, failure.as_ref()) {
                    tracing::error!(
                        "cloud user {user}: {what}; its sites not started yet are skipped (--stop-after-same-failures)"
                    );
                }
            }
        }
        self.say_conclusions(&concluded);
        self.group.add(batch);
        if self.group.is_due(tokio::time::Instant::now()) {
            self.commit();
        }
    }

    /// Writes the waiting events in one store transaction, then sends the acknowledgements.
    fn commit(&mut self) {
        let Some(Commit { events, sync_first }) = self.group.take() else {
            return;
        };
        let started = tokio::time::Instant::now();
        if let Some(sites) = sync_first {
            self.sync_artifacts(sites);
        }
        let run_id = self.run.run_id.clone();
        let entries = &self.ledger.entries;
        let committed = self.store.transaction(|tx| {
            events
                .iter()
                .map(|event| journal::record(tx, &run_id, &entries[event.site], &event.kind))
                .collect::<Result<Vec<_>, _>>()
        });
        self.group
            .committed(&events, started, tokio::time::Instant::now());
        match committed {
            Ok(ids) => {
                for (event, id) in events.into_iter().zip(ids) {
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
                for ack in events.into_iter().filter_map(|event| event.ack) {
                    let _ = ack.send(Err(message.clone()));
                }
                self.fail_store(error);
            }
        }
    }

    /// Before a commit concludes a site whose artifacts are not yet synced: one `syncfs` for
    /// every artifact saved so far (their downloads do not fsync each file). Should the file
    /// system report a write error, those artifacts are reported as not confirmed on disk
    /// instead of silently trusted.
    fn sync_artifacts(&mut self, sites: impl IntoIterator<Item = usize>) {
        let Err(error) = self.writer.sync_to_disk() else {
            return;
        };
        tracing::error!("artifacts may not be on disk: {error}");
        for index in sites {
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
        for index in self.admission.take_waiting() {
            self.conclude_unstarted(index, Outcome::Skipped, message.to_owned());
        }
    }
}

impl Clocks {
    fn new(deadline: Option<Duration>) -> Clocks {
        let every = |period| {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        };
        Clocks {
            deadline: deadline.map(|after| Box::pin(tokio::time::sleep(after))),
            grace: None,
            refresh: every(REFRESH),
            drain: every(DRAIN),
        }
    }
}

/// Completes when `clock` does; never while it is not set.
async fn fire(clock: &mut Option<Pin<Box<Sleep>>>) {
    match clock {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}
