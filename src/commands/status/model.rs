//! What `status` shows, read from a state store: the latest run, one line per site (its
//! stage, outcome label, job and newest task), and the count by outcome. Below the command,
//! its one-site view and the view over several stores, which all build on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::cma::wire::TaskKind;
use crate::commands::stores::{StoresError, labels, open_all};
use crate::report::merge::OncePerSite;
use crate::report::model::RunInfo;
use crate::state::{SiteState, StateError, Store};
use crate::vocab::{Mode, Outcome};

/// Reads what `status` shows from the store in `state_dir`.
pub fn load(state_dir: &Path) -> Result<FleetStatus, StateError> {
    read(&Store::open_existing(state_dir)?)
}

/// Reads what `status` shows from an open store.
pub fn read(store: &Store) -> Result<FleetStatus, StateError> {
    let latest = store.latest_run()?;
    let sites = store.sites()?;
    Ok(FleetStatus::build(store.path(), latest.as_ref(), &sites))
}

/// The `--format json` document (field names are stable). Over several stores
/// (`--state-dirs`), `state_db` gives way to `stores`, `latest_run` is the newest of theirs,
/// and each site names its `shard`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetStatus {
    /// The `state.db` shown.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub state_db: String,
    pub latest_run: Option<RunSummary>,
    /// Each store shown, with `--state-dirs`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<StoreStatus>,
    /// Sites per outcome label ([`SiteStatus::outcome`]), every label present.
    pub counts: BTreeMap<&'static str, usize>,
    /// Sorted by site.
    pub sites: Vec<SiteStatus>,
    /// What a reader of several stores should know (a site found in more than one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One of several stores (`--state-dirs`): its name in the `shard` column, and its latest run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreStatus {
    pub shard: String,
    pub state_db: String,
    pub latest_run: Option<RunSummary>,
}

/// The newest run: which, and whether it ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub mode: Mode,
    pub started_at: DateTime<Utc>,
    /// `null` while it runs, or when it was killed before recording its end.
    pub finished_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i32>,
}

/// One site's line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteStatus {
    pub site: String,
    /// The store it was read from, with `--state-dirs` (see [`StoreStatus::shard`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Where the site stands, from its newest task: `check` / `migrate` (task running
    /// remotely), `reconcile` (a create was journalled but its task id is unknown: the next
    /// run looks it up on the job's task list), `apps` (migrated while apps still ran: later
    /// runs and `--refresh` read them again), `done`; without a task: `job`, `attach`,
    /// `queued`.
    pub stage: &'static str,
    pub last_mode: Option<Mode>,
    /// The last recorded outcome (`succeeded`, `warnings`, `blocked`, `failed`, `detached`,
    /// `skipped`), else `running` (started, no outcome recorded) or `pending`.
    pub outcome: &'static str,
    pub job_id: Option<String>,
    /// The newest task that is not abandoned.
    pub task_id: Option<String>,
    /// `check` or `migrate`.
    pub task_kind: Option<String>,
    pub task_status: Option<String>,
    /// cmafleet's judgement of that task once a run judged it (`succeeded`, `warnings`,
    /// `blocked`, `failed`), else the service's last outcome word (`SUCCESS`, …).
    pub task_outcome: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    /// When its migration last succeeded (a migrate run skips it unless `--remigrate`).
    pub migrated_at: Option<DateTime<Utc>>,
    pub attach_expires_at: Option<DateTime<Utc>>,
    /// A job create was journalled at this time and its id never recorded: a job may exist
    /// unused on the service.
    pub job_intent_at: Option<DateTime<Utc>>,
}

/// The outcome labels in display order: the site outcomes, then the two of unfinished sites.
pub(super) const OUTCOME_LABELS: [&str; 8] = [
    "succeeded",
    "warnings",
    "blocked",
    "failed",
    "detached",
    "skipped",
    "running",
    "pending",
];

impl FleetStatus {
    pub fn build(state_db: &Path, latest: Option<&RunInfo>, sites: &[SiteState]) -> FleetStatus {
        let sites: Vec<SiteStatus> = sites.iter().map(SiteStatus::of).collect();
        FleetStatus {
            state_db: state_db.display().to_string(),
            latest_run: latest.map(RunSummary::of),
            stores: Vec::new(),
            counts: count(&sites),
            sites,
            notes: Vec::new(),
        }
    }
}

/// Sites per outcome label, every label present.
pub fn count(sites: &[SiteStatus]) -> BTreeMap<&'static str, usize> {
    let mut counts: BTreeMap<&'static str, usize> =
        OUTCOME_LABELS.iter().map(|label| (*label, 0)).collect();
    for site in sites {
        *counts.entry(site.outcome).or_default() += 1;
    }
    counts
}

impl RunSummary {
    pub fn of(run: &RunInfo) -> RunSummary {
        RunSummary {
            run_id: run.run_id.clone(),
            mode: run.mode,
            started_at: run.started_at,
            finished_at: run.finished_at,
            exit_code: run.exit_code,
        }
    }
}

impl SiteStatus {
    pub(super) fn of(site: &SiteState) -> SiteStatus {
        let task = site.newest_task();
        let stage = stage_of(site);
        let outcome = match site.last_outcome {
            Some(outcome) => outcome.as_str(),
            None if stage == "queued" => "pending",
            None => "running",
        };
        SiteStatus {
            site: site.site.clone(),
            shard: None,
            stage,
            last_mode: site.last_mode,
            outcome,
            job_id: site.job.as_ref().map(|job| job.job_id.clone()),
            task_id: task.and_then(|task| task.task_id.clone()),
            task_kind: task.map(|task| task.kind.response_str()),
            task_status: task.and_then(|task| task.status.clone()),
            task_outcome: task.and_then(|task| {
                task.judgement
                    .map(|judgement| judgement.as_str().to_owned())
                    .or_else(|| task.service_outcome.clone())
            }),
            updated_at: site.updated_at,
            migrated_at: site.migrated_at,
            attach_expires_at: site.attach.as_ref().and_then(|attach| attach.expires_at),
            // Also for a site that keeps an older job (its definition changed since).
            job_intent_at: site.job_intent_at,
        }
    }
}

/// Whether `outcome` ends a migration that moved the data (its apps may still run).
fn migrated(outcome: Outcome) -> bool {
    matches!(outcome, Outcome::Succeeded | Outcome::Warnings)
}

/// A site's stage, derived from its newest task (see [`SiteStatus::stage`]).
pub fn stage_of(site: &SiteState) -> &'static str {
    let kind_stage = |kind: &TaskKind| match kind {
        TaskKind::Check => "check",
        TaskKind::Migrate => "migrate",
        TaskKind::Unknown(_) => "task",
    };
    match site.newest_task() {
        Some(task) if task.needs_reconcile() => "reconcile",
        // Running remotely, or finished but never concluded (a run killed before recording
        // the site's outcome): either way the next run adopts it.
        Some(task) if task.is_in_flight() => kind_stage(&task.kind),
        Some(task) if site.last_outcome.is_none() => kind_stage(&task.kind),
        Some(_) if site.apps_pending().is_some() && site.last_outcome.is_some_and(migrated) => {
            "apps"
        }
        Some(_) => "done",
        None if site.last_outcome.is_some() => "done",
        None if site.job.is_none() && site.job_intent_at.is_some() => "job",
        None if site.attach.is_some() => "attach",
        None if site.job.is_some() => "job",
        None => "queued",
    }
}

pub(super) fn time(time: Option<&DateTime<Utc>>) -> String {
    time.map_or_else(
        || "-".to_owned(),
        |time| time.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// `cmafleet status` over the stores: each store's latest run, every site once (from the
/// store that updated it last) with its shard, sorted by site.
pub fn fleet_status(dirs: &[PathBuf]) -> Result<FleetStatus, StoresError> {
    let stores = open_all(dirs)?;
    let mut parts: Vec<(FleetStatus, Option<RunInfo>)> = Vec::with_capacity(stores.len());
    for open in &stores {
        let latest = open.store.latest_run()?;
        let sites = open.store.sites()?;
        parts.push((
            FleetStatus::build(open.store.path(), latest.as_ref(), &sites),
            latest,
        ));
    }
    let labels = labels(
        dirs,
        &parts
            .iter()
            .map(|(_, run)| run.as_ref())
            .collect::<Vec<_>>(),
    );
    Ok(join_status(
        parts.into_iter().map(|(status, _)| status).zip(labels),
    ))
}

/// One status from each store's, every site once (see [`fleet_status`]).
pub(in crate::commands) fn join_status(
    parts: impl Iterator<Item = (FleetStatus, String)>,
) -> FleetStatus {
    let mut stores = Vec::new();
    let mut sites = OncePerSite::default();
    for (status, label) in parts {
        stores.push(StoreStatus {
            shard: label.clone(),
            state_db: status.state_db,
            latest_run: status.latest_run,
        });
        for mut site in status.sites {
            site.shard = Some(label.clone());
            sites.offer(&site.site.clone(), &label, site, |offered, kept| {
                offered.updated_at > kept.updated_at
            });
        }
    }
    let (mut sites, mut notes) = sites.finish("updated last");
    sites.sort_by(|a, b| a.site.cmp(&b.site));
    notes.sort();
    let latest_run = stores
        .iter()
        .filter_map(|store| store.latest_run.clone())
        .max_by_key(|run| run.started_at);
    FleetStatus {
        state_db: String::new(),
        latest_run,
        stores,
        counts: count(&sites),
        sites,
        notes,
    }
}
