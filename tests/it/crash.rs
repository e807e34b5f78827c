//! Crash safety end to end: the real binary is killed at the dangerous moments of a migrate
//! run — by a crash point (`CMAFLEET_CRASH_AT`, an abort with no cleanup: what `kill -9` does
//! to the state store) or by a real SIGKILL — and then run again. The state store and what the
//! simulator received must show every site ending as an uninterrupted run ends it, no task
//! created twice, and no more jobs than a kill between a job's creation and its recording can
//! leave unused (and then the next run's report says so).
//!
//! The oracle ([`verify`]) needs no knowledge of where the kill landed: each run that
//! *concludes* a site (its `site_runs` outcome is not `skipped`) drives exactly one task of each
//! kind the site's fate calls for, so the simulator must hold exactly that many per site and
//! kind — a second task for an interrupted attempt would break the count.

mod lost_answers;
mod points;
mod property;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use cmafleet::fleet::failpoint;

use crate::support::fleet::{Fleet, Row};

/// The signal `CMAFLEET_CRASH_AT` dies of (`abort()`).
pub const SIGABRT: i32 = 6;
pub const SIGKILL: i32 = 9;

/// How an uninterrupted run ends a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Succeeded,
    /// A check warns (not blocking by default).
    Warnings,
    /// A check fails and cannot be overridden: no data moves.
    Blocked,
    /// The main scope's migration fails.
    Failed,
}

impl Fate {
    pub fn outcome(self) -> &'static str {
        match self {
            Fate::Succeeded => "succeeded",
            Fate::Warnings => "warnings",
            Fate::Blocked => "blocked",
            Fate::Failed => "failed",
        }
    }
}

/// One inventory row and how it must end.
#[derive(Debug, Clone)]
pub struct SiteSpec {
    pub row: Row,
    pub fate: Fate,
}

impl SiteSpec {
    pub fn new(row: Row, fate: Fate) -> SiteSpec {
        SiteSpec { row, fate }
    }

    /// Tasks of `kind` each concluding run creates for this site.
    fn tasks_per_conclusion(&self, kind: &str, precheck: bool) -> usize {
        match kind {
            "check" => usize::from(precheck),
            // A precheck that fails stops the site before its Migrate task.
            _ => usize::from(!(precheck && self.fate == Fate::Blocked)),
        }
    }

    /// The scenario lines that give the site its fate.
    fn scenario(&self) -> String {
        let server = &self.row.server;
        let main_scope = if self.row.product == "confluence" {
            "spaces"
        } else {
            "projects"
        };
        match self.fate {
            Fate::Succeeded => String::new(),
            Fate::Warnings => format!(
                "[servers.{server}.checks.FleetTestAdvisory]\noutcome = \"WARNING\"\nmessage = \"advisory only\"\n"
            ),
            Fate::Blocked => format!(
                "[servers.{server}.checks.FleetTestBlocker]\noutcome = \"FAILED\"\nexcludable = false\nmessage = \"cannot migrate this\"\n"
            ),
            Fate::Failed => format!(
                "[servers.{server}.scopes.{main_scope}]\noutcome = \"FAILED\"\nmessage = \"import failed\"\n"
            ),
        }
    }
}

/// A seeded scenario giving each site its fate, with short task durations (a run takes about
/// a second at ×3600) and `extra` TOML appended.
pub fn scenario(seed: u64, sites: &[SiteSpec], extra: &str) -> String {
    let mut text = format!(
        "seed = {seed}\n[defaults]\ncheck_duration = \"2m\"\nmigrate_duration = \"20m\"\napps_duration = \"10m\"\n"
    );
    for site in sites {
        text.push_str(&site.scenario());
    }
    text.push_str(extra);
    text
}

/// Starts a fleet of `sites` at ×3600.
pub async fn start(seed: u64, sites: &[SiteSpec], extra: &str) -> Fleet {
    let rows = sites.iter().map(|site| site.row.clone()).collect();
    Fleet::start(&scenario(seed, sites, extra), 3600.0, rows).await
}

/// How a killed run ended.
#[derive(Debug)]
pub struct Killed {
    /// The signal it died of; `None` when it exited on its own (the kill came too late).
    pub signal: Option<i32>,
    pub code: Option<i32>,
    pub stderr: String,
}

/// How a run is interrupted.
#[derive(Debug, Clone)]
pub enum Kill {
    /// `CMAFLEET_CRASH_AT=POINT[:N]`.
    At(String),
    /// SIGKILL after this long.
    After(Duration),
}

/// Runs `migrate` (report dir `report`, `extra` flags) and interrupts it as `kill` says.
pub async fn killed_run(fleet: &Fleet, report: &str, extra: &[&str], kill: &Kill) -> Killed {
    let mut command = fleet.command("migrate", report);
    command
        .args(extra)
        .current_dir(fleet.dir.path())
        .stdout(std::process::Stdio::null());
    if let Kill::At(point) = kill {
        command.env(failpoint::VARIABLE, point);
    }
    let mut child = command.spawn().expect("cmafleet starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let mut stderr = stderr;
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
        text
    });
    if let Kill::After(delay) = kill {
        tokio::select! {
            _ = tokio::time::sleep(*delay) => { let _ = child.start_kill(); }
            _ = child.wait() => {}
        }
    }
    let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
        .await
        .expect("the killed run ended within 120 s")
        .expect("cmafleet ran");
    Killed {
        signal: status.signal(),
        code: status.code(),
        stderr: stderr.await.unwrap_or_default(),
    }
}

/// What the state store says about one site after the runs.
#[derive(Debug, Default)]
pub struct SiteHistory {
    /// Outcomes of the runs that recorded the site, oldest run first.
    pub outcomes: Vec<String>,
    /// Notes of those runs' site reports.
    pub notes: Vec<String>,
    /// Per run (as `outcomes`): it followed up a Migrate task an earlier run concluded while
    /// its apps ran on — it concluded the site without creating a task.
    pub followed_up: Vec<bool>,
}

impl SiteHistory {
    /// Outcomes of the runs that drove the site to an end (not those that skipped it).
    pub fn conclusions(&self) -> Vec<&str> {
        self.outcomes
            .iter()
            .map(String::as_str)
            .filter(|outcome| *outcome != "skipped")
            .collect()
    }

    /// How many runs concluded the site with tasks of their own: every conclusion but the
    /// follow-ups of apps that ran on after an earlier run's migration.
    pub fn task_making_conclusions(&self) -> usize {
        self.outcomes
            .iter()
            .zip(&self.followed_up)
            .filter(|(outcome, followed_up)| *outcome != "skipped" && !**followed_up)
            .count()
    }
}

/// Sites a run's notes name as having had a job create interrupted.
pub fn sites_with_interrupted_job_creates(run_notes: &[String]) -> BTreeSet<String> {
    run_notes
        .iter()
        .filter(|note| note.contains("job create interrupted"))
        .filter_map(|note| note.rsplit_once(": "))
        .flat_map(|(_, sites)| sites.split(", ").map(str::to_owned))
        .collect()
}

/// Every site's history from `site_runs`, oldest run first.
pub fn histories(fleet: &Fleet) -> BTreeMap<String, SiteHistory> {
    let db = fleet.db();
    let mut statement = db
        .prepare(
            "SELECT s.site, s.outcome, s.report FROM site_runs s JOIN runs r USING (run_id) \
             WHERE s.outcome IS NOT NULL ORDER BY r.started_at, r.rowid",
        )
        .unwrap();
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .unwrap();
    let mut histories: BTreeMap<String, SiteHistory> = BTreeMap::new();
    for row in rows {
        let (site, outcome, report) = row.unwrap();
        let report: serde_json::Value = serde_json::from_str(&report).unwrap();
        let history = histories.entry(site).or_default();
        history.outcomes.push(outcome);
        let notes: Vec<String> = report["notes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|note| note.as_str().map(str::to_owned))
            .collect();
        history.followed_up.push(
            notes
                .iter()
                .any(|note| note.starts_with("followed up migrate task")),
        );
        history.notes.extend(notes);
    }
    histories
}

/// Every run's notes (`runs.notes`), oldest first.
pub fn run_notes(fleet: &Fleet) -> Vec<String> {
    let db = fleet.db();
    let mut statement = db
        .prepare("SELECT notes FROM runs ORDER BY started_at, rowid")
        .unwrap();
    let notes = statement
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|notes| serde_json::from_str::<Vec<String>>(&notes.unwrap()).unwrap())
        .collect::<Vec<_>>();
    notes.into_iter().flatten().collect()
}

/// One row of the task journal.
#[derive(Debug, Clone)]
pub struct JournalRow {
    pub site: String,
    pub run_id: String,
    pub kind: String,
    pub task_id: Option<String>,
    pub adopted: bool,
    pub abandoned: bool,
    pub concluded: bool,
}

/// The task journal, oldest intent first.
pub fn journal(fleet: &Fleet) -> Vec<JournalRow> {
    try_journal(&fleet.state_db()).unwrap()
}

/// The task journal, or the error (e.g. while the store is being created).
pub fn try_journal(db: &std::path::Path) -> rusqlite::Result<Vec<JournalRow>> {
    let db = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut statement = db.prepare(
        "SELECT site, run_id, kind, task_id, adopted, abandoned, finished_at IS NOT NULL \
         FROM tasks ORDER BY intent_id",
    )?;
    statement
        .query_map([], |row| {
            Ok(JournalRow {
                site: row.get(0)?,
                run_id: row.get(1)?,
                kind: row.get(2)?,
                task_id: row.get(3)?,
                adopted: row.get(4)?,
                abandoned: row.get(5)?,
                concluded: row.get(6)?,
            })
        })?
        .collect()
}

/// The oracle: after the last run, every site ended with its fate in every run that concluded
/// it; the simulator holds exactly one task of each needed kind per such run, none of them
/// overlapping another of the site's tasks of that kind, every one of them in the journal; and
/// each site has one job, or two where a run reported that an interrupted job create may have
/// left one unused — in the run's notes (recorded at its start, so even a run killed again says
/// so) and, once a run concluded the site, in its site report. Returns the sites so noted.
pub async fn verify(
    fleet: &Fleet,
    sites: &[SiteSpec],
    precheck: bool,
    context: &str,
) -> BTreeSet<String> {
    let histories = histories(fleet);
    let named_in_run_notes = sites_with_interrupted_job_creates(&run_notes(fleet));
    let journal = journal(fleet);
    let by_site = fleet.tasks_by_site().await;
    let counters = fleet.counters().await;
    let mut noted = BTreeSet::new();
    for spec in sites {
        let site = &spec.row.site;
        let history = histories
            .get(site)
            .unwrap_or_else(|| panic!("{context}: {site} was never concluded"));
        let conclusions = history.conclusions();
        assert!(
            !conclusions.is_empty(),
            "{context}: no run drove {site} to an end: {:?}",
            history.outcomes
        );
        assert!(
            conclusions
                .iter()
                .all(|outcome| *outcome == spec.fate.outcome()),
            "{context}: {site} must end {} in every run that concludes it, got {:?}",
            spec.fate.outcome(),
            history.outcomes
        );
        let tasks = &by_site[site];
        for kind in ["check", "migrate"] {
            let mut of_kind: Vec<_> = tasks.iter().filter(|task| task.task_type == kind).collect();
            let making = history.task_making_conclusions();
            let expected = spec.tasks_per_conclusion(kind, precheck) * making;
            assert_eq!(
                of_kind.len(),
                expected,
                "{context}: {site} ({:?}) must have {expected} {kind} task(s) for {making} run(s) that concluded it with tasks of their own {:?}; the simulator holds {:#?}",
                spec.fate,
                history.outcomes,
                of_kind
            );
            of_kind.sort_by(|a, b| a.created_at.cmp(&b.created_at));
            for pair in of_kind.windows(2) {
                let earlier_end = pair[0].finished_at.as_deref().unwrap_or("still running");
                assert!(
                    pair[1].created_at.as_str() >= earlier_end,
                    "{context}: {site}: {kind} task {} was created at {} while {} still ran (until {earlier_end})",
                    pair[1].task_id,
                    pair[1].created_at,
                    pair[0].task_id
                );
            }
        }
        for task in tasks {
            assert!(
                journal.iter().any(|row| row.site == *site
                    && row.task_id.as_deref() == Some(task.task_id.as_str())),
                "{context}: the simulator's task {} of {site} is not in the journal",
                task.task_id
            );
        }
        let jobs = Fleet::jobs_of(&counters, &spec.row);
        if named_in_run_notes.contains(site) {
            noted.insert(site.clone());
            // Each interrupted create may leave one job; each run that noticed one made one.
            let interrupted = run_notes(fleet)
                .iter()
                .filter(|note| {
                    sites_with_interrupted_job_creates(std::slice::from_ref(note)).contains(site)
                })
                .count() as u64;
            assert!(
                (1..=1 + interrupted).contains(&jobs),
                "{context}: {site}: at most one unused job per interrupted create ({interrupted}), got {jobs} jobs"
            );
        } else {
            assert_eq!(
                jobs, 1,
                "{context}: {site} has {jobs} jobs and no note saying why"
            );
        }
    }
    let open: Vec<&JournalRow> = journal
        .iter()
        .filter(|row| !row.abandoned && (row.task_id.is_none() || !row.concluded))
        .collect();
    assert!(
        open.is_empty(),
        "{context}: the journal still has open intents or unconcluded tasks: {open:#?}"
    );
    noted
}

/// No task was created twice on a job, except for a site that more than one run concluded: a
/// failed or blocked site is tried again by the next run, on the same job. (Where a kill lands
/// after the first conclusions — a later poll, a SIGKILL — both runs may conclude such a site.)
pub async fn assert_tasks_repeated_only_for_retried_sites(fleet: &Fleet, context: &str) {
    let repeated = fleet.counters().await.repeated_task_creates();
    if repeated.is_empty() {
        return;
    }
    let histories = histories(fleet);
    let tasks = fleet.tasks_by_site().await;
    for (job, kind, count) in repeated {
        let site = tasks
            .iter()
            .find(|(_, tasks)| tasks.iter().any(|task| task.job_id == job))
            .map(|(site, _)| site.clone())
            .unwrap_or_else(|| panic!("{context}: job {job} belongs to no site"));
        let conclusions = histories
            .get(&site)
            .map_or(0, SiteHistory::task_making_conclusions);
        assert_eq!(
            count, conclusions as u64,
            "{context}: {site}'s job {job} has {count} {kind} tasks but {conclusions} run(s) concluded it"
        );
        assert!(
            histories[&site]
                .conclusions()
                .iter()
                .all(|outcome| matches!(*outcome, "failed" | "blocked")),
            "{context}: only failed or blocked sites are tried again, {site} was not"
        );
    }
}

/// The exit code of a run that concludes every site of `sites`.
pub fn exit_code_of(sites: &[SiteSpec]) -> i32 {
    if sites
        .iter()
        .any(|site| matches!(site.fate, Fate::Blocked | Fate::Failed))
    {
        1
    } else {
        0
    }
}
