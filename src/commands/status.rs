//! `cmafleet status [--state-dir DIR] [--format table|json]`: the fleet's state as the state
//! store knows it — per site its stage, last mode, outcome, job and newest task, and when it
//! last changed — plus the latest run and a count by outcome. With `--site S`, that site
//! alone and what to do next (`status/site.rs`). With `--state-dirs A B …`, the same over
//! several stores in one table, each site with its shard
//! ([`stores::fleet_status`](super::stores::fleet_status)).
//!
//! It only reads, takes no run lock, and works while a run is writing (WAL readers never
//! block the writer). Exit codes: 0 when shown; 73 when the dir holds no state store (saying
//! where one might be) or the store cannot be read; 78 for a store from a newer cmafleet; 2
//! for a `--site` the store does not know.

mod site;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::cli::{Format, OutputArgs, StatusArgs};
use crate::cma::wire::TaskKind;
use crate::exit;
use crate::fleet::shutdown::Shutdown;
use crate::report::model::RunInfo;
use crate::state::{SiteState, StateError, Store};
use crate::vocab::{Mode, Outcome};

/// `status`, after `--refresh`'s follow-up when asked; returns the exit code.
pub async fn run_all(args: &StatusArgs, output: &OutputArgs, shutdown: Shutdown) -> u8 {
    if args.refresh {
        let code = super::refresh::run(args, output, shutdown).await;
        if !matches!(code, exit::OK | exit::SITES_FAILED) {
            return code;
        }
    }
    run(args)
}

/// Shows the state; returns the exit code.
pub fn run(args: &StatusArgs) -> u8 {
    let loaded = if args.state_dirs.is_empty() {
        let store = match super::locate::open(&args.store.state_dir, args.store.config.as_deref()) {
            Ok(store) => store,
            Err(code) => return code,
        };
        if let Some(site) = &args.site {
            return site::run(&store, site, args.format);
        }
        read(&store).map_err(|error| (error.exit_code(), error.to_string()))
    } else {
        super::stores::fleet_status(&args.state_dirs)
            .map_err(|error| (error.exit_code(), error.to_string()))
    };
    let status = match loaded {
        Ok(status) => status,
        Err((code, message)) => {
            crate::fatal::report(code, &message);
            return code;
        }
    };
    let text = match args.format {
        Format::Table => render_table(&status),
        Format::Json => render_json(&status),
    };
    // `cmafleet status | head`: the reader has what it wanted.
    crate::stdout::print(&text, exit::OK)
}

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
const OUTCOME_LABELS: [&str; 8] = [
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
    fn of(site: &SiteState) -> SiteStatus {
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

fn time(time: Option<&DateTime<Utc>>) -> String {
    time.map_or_else(
        || "-".to_owned(),
        |time| time.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// The `--format table` text: the latest run (of each store), one aligned line per site
/// (with its shard over several stores), the counts, and the notes.
pub fn render_table(status: &FleetStatus) -> String {
    let mut out = String::new();
    if status.stores.is_empty() {
        out.push_str(&run_line(status.latest_run.as_ref()));
    }
    for store in &status.stores {
        out.push_str(&format!(
            "{} ({}): {}",
            store.shard,
            store.state_db,
            run_line(store.latest_run.as_ref())
        ));
    }
    if status.sites.is_empty() {
        let place = if status.stores.is_empty() {
            status.state_db.clone()
        } else {
            format!("these {} stores", status.stores.len())
        };
        out.push_str(&format!("no sites in {place}\n"));
        return out;
    }
    out.push('\n');
    let sharded = status.sites.iter().any(|site| site.shard.is_some());
    let dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
    let mut header = vec!["SITE"];
    if sharded {
        header.push("SHARD");
    }
    header.extend([
        "STAGE",
        "MODE",
        "OUTCOME",
        "JOB",
        "TASK",
        "TASK STATUS",
        "UPDATED",
    ]);
    let mut rows: Vec<Vec<String>> = vec![header.into_iter().map(str::to_owned).collect()];
    for site in &status.sites {
        let task_status = match (&site.task_status, &site.task_outcome) {
            (Some(status), Some(outcome)) => format!("{status} ({outcome})"),
            (Some(status), None) => status.clone(),
            (None, _) if site.task_kind.is_some() && site.task_id.is_none() => {
                "create unconfirmed".to_owned()
            }
            (None, _) => "-".to_owned(),
        };
        let mut row = vec![site.site.clone()];
        if sharded {
            row.push(dash(&site.shard));
        }
        row.extend([
            site.stage.to_owned(),
            site.last_mode
                .map_or_else(|| "-".to_owned(), |mode| mode.to_string()),
            site.outcome.to_owned(),
            dash(&site.job_id),
            dash(&site.task_id),
            task_status,
            time(site.updated_at.as_ref()),
        ]);
        rows.push(row);
    }
    let mut widths = vec![0usize; rows[0].len()];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let counts: Vec<String> = OUTCOME_LABELS
        .iter()
        .filter_map(|label| {
            let count = status.counts.get(label).copied().unwrap_or(0);
            (count > 0).then(|| format!("{label} {count}"))
        })
        .collect();
    let total = status.sites.len();
    let noun = if total == 1 { "site" } else { "sites" };
    out.push_str(&format!("\n{total} {noun}: {}\n", counts.join(", ")));
    for site in &status.sites {
        if let Some(at) = &site.job_intent_at {
            out.push_str(&format!(
                "note: {}: a job create at {} was never recorded; a job may exist unused\n",
                site.site,
                time(Some(at))
            ));
        }
    }
    for note in &status.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

/// `latest run … (mode): started …, finished …, exit N`, or that there is none.
fn run_line(run: Option<&RunSummary>) -> String {
    let Some(run) = run else {
        return "no run recorded yet\n".to_owned();
    };
    let end = match (&run.finished_at, run.exit_code) {
        (Some(at), Some(code)) => format!("finished {}, exit {code}", time(Some(at))),
        (Some(at), None) => format!("finished {}", time(Some(at))),
        (None, _) => "not finished (running, or killed)".to_owned(),
    };
    format!(
        "latest run {} ({}): started {}, {end}\n",
        run.run_id,
        run.mode,
        time(Some(&run.started_at))
    )
}

/// The `--format json` document, pretty-printed.
pub fn render_json(status: &FleetStatus) -> String {
    let mut text =
        serde_json::to_string_pretty(status).expect("status serialises: plain data, string keys");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::state::{AttachRecord, JobRecord, TaskRecord};
    use crate::vocab::Outcome;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 2, minute, 0).unwrap()
    }

    fn task(kind: TaskKind, task_id: Option<&str>, status: Option<&str>) -> TaskRecord {
        TaskRecord {
            intent_id: 1,
            run_id: "r1".into(),
            job_id: "job-1".into(),
            kind,
            intent_at: at(1),
            task_id: task_id.map(str::to_owned),
            created_at: task_id.map(|_| at(2)),
            adopted: false,
            status: status.map(str::to_owned),
            service_outcome: None,
            judgement: None,
            finished_at: None,
            abandoned: false,
            apps_pending: false,
        }
    }

    fn site(name: &str) -> SiteState {
        SiteState {
            site: name.into(),
            updated_at: Some(at(3)),
            ..SiteState::default()
        }
    }

    fn job() -> Option<JobRecord> {
        Some(JobRecord {
            job_id: "job-1".into(),
            definition_hash: "h".into(),
            created_at: at(1),
        })
    }

    #[test]
    fn the_stage_comes_from_the_newest_task() {
        let mut state = site("a");
        assert_eq!(stage_of(&state), "queued");
        state.job_intent_at = Some(at(1));
        assert_eq!(stage_of(&state), "job");
        state.job = job();
        state.attach = Some(AttachRecord {
            cloud_url: "https://a.atlassian.net".into(),
            attached_at: at(2),
            expires_at: None,
        });
        assert_eq!(stage_of(&state), "attach");
        state.tasks.push(task(TaskKind::Migrate, None, None));
        assert_eq!(stage_of(&state), "reconcile");
        state.tasks[0].task_id = Some("t1".into());
        state.tasks[0].status = Some("IN_PROGRESS".into());
        assert_eq!(stage_of(&state), "migrate");
        state.tasks[0].status = Some("FINISHED".into());
        assert_eq!(stage_of(&state), "migrate", "no outcome recorded yet");
        state.last_outcome = Some(Outcome::Succeeded);
        assert_eq!(
            stage_of(&state),
            "migrate",
            "finished but not concluded (an earlier outcome does not count): the next run adopts it"
        );
        state.tasks[0].finished_at = Some(at(3));
        assert_eq!(stage_of(&state), "done");
        state.tasks[0].apps_pending = true;
        assert_eq!(stage_of(&state), "apps", "migrated, its apps still running");
        state.last_outcome = Some(Outcome::Blocked);
        assert_eq!(
            stage_of(&state),
            "done",
            "a later run ended it otherwise (a --remigrate blocked at its checks)"
        );
        state.last_outcome = Some(Outcome::Succeeded);
        state.tasks[0].apps_pending = false;
        let mut abandoned = task(TaskKind::Check, None, None);
        abandoned.abandoned = true;
        state.tasks.push(abandoned);
        assert_eq!(stage_of(&state), "done", "abandoned intents are ignored");
    }

    fn fixture() -> FleetStatus {
        let mut done = site("acme-jira");
        done.job = job();
        done.last_mode = Some(Mode::Migrate);
        done.last_outcome = Some(Outcome::Succeeded);
        let mut finished = task(TaskKind::Migrate, Some("task-7"), Some("FINISHED"));
        finished.service_outcome = Some("SUCCESS".into());
        finished.finished_at = Some(at(3));
        done.tasks.push(finished);
        let mut unconfirmed = site("beta");
        unconfirmed.job = job();
        unconfirmed.last_mode = Some(Mode::Check);
        unconfirmed.tasks.push(task(TaskKind::Check, None, None));
        let mut lost_job = site("c");
        lost_job.job_intent_at = Some(at(4));
        let run = RunInfo {
            run_id: "20260501-0200".into(),
            mode: Mode::Migrate,
            options: serde_json::json!({}),
            shard: None,
            started_at: at(0),
            finished_at: None,
            counts: BTreeMap::new(),
            exit_code: None,
            notes: Vec::new(),
            version: "0.1.0".into(),
            surprises: Vec::new(),
        };
        FleetStatus::build(
            Path::new("/s/state.db"),
            Some(&run),
            &[done, unconfirmed, lost_job],
        )
    }

    #[test]
    fn the_table_aligns_columns_and_counts_outcomes() {
        let expected = "\
latest run 20260501-0200 (migrate): started 2026-05-01T02:00:00Z, not finished (running, or killed)

SITE       STAGE      MODE     OUTCOME    JOB    TASK    TASK STATUS         UPDATED
acme-jira  done       migrate  succeeded  job-1  task-7  FINISHED (SUCCESS)  2026-05-01T02:03:00Z
beta       reconcile  check    running    job-1  -       create unconfirmed  2026-05-01T02:03:00Z
c          job        -        running    -      -       -                   2026-05-01T02:03:00Z

3 sites: succeeded 1, running 2
note: c: a job create at 2026-05-01T02:04:00Z was never recorded; a job may exist unused
";
        assert_eq!(render_table(&fixture()), expected);
    }

    #[test]
    fn the_json_has_stable_fields_and_every_count() {
        let json: serde_json::Value = serde_json::from_str(&render_json(&fixture())).unwrap();
        assert_eq!(json["state_db"], "/s/state.db");
        assert_eq!(json["latest_run"]["run_id"], "20260501-0200");
        assert_eq!(json["latest_run"]["finished_at"], serde_json::Value::Null);
        assert_eq!(json["counts"]["succeeded"], 1);
        assert_eq!(json["counts"]["running"], 2);
        assert_eq!(json["counts"]["failed"], 0);
        assert_eq!(
            json["counts"].as_object().unwrap().len(),
            OUTCOME_LABELS.len()
        );
        let acme = &json["sites"][0];
        assert_eq!(acme["site"], "acme-jira");
        assert_eq!(acme["stage"], "done");
        assert_eq!(acme["task_id"], "task-7");
        assert_eq!(acme["task_kind"], "migrate");
        assert_eq!(acme["task_outcome"], "SUCCESS");
        assert_eq!(acme["last_mode"], "migrate");
        assert_eq!(acme["updated_at"], "2026-05-01T02:03:00Z");
        assert_eq!(json["sites"][1]["task_id"], serde_json::Value::Null);
        assert_eq!(json["sites"][2]["job_intent_at"], "2026-05-01T02:04:00Z");
    }

    #[test]
    fn an_empty_store_says_so() {
        let status = FleetStatus::build(Path::new("/s/state.db"), None, &[]);
        assert_eq!(
            render_table(&status),
            "no run recorded yet\nno sites in /s/state.db\n"
        );
    }
}
