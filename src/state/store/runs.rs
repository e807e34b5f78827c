//! Runs and their history: each run's identity and counts (`runs`), each site's report in
//! each run (`site_runs`; the `check_results` view shows their checks as rows).

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::codec::{self, opt_time_text, time_text};
use super::{StateError, Store, Tx};
use crate::report::model::{RunInfo, RunReport, SiteReport};
use crate::vocab::{Mode, Outcome};

const RUN_COLUMNS: &str = "run_id, mode, options, shard, started_at, finished_at, exit_code, counts, notes, version, \
     surprises";

/// Newest first; runs started in the same instant in the order they were begun.
const NEWEST_FIRST: &str = "ORDER BY started_at DESC, rowid DESC";

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunInfo> {
    Ok(RunInfo {
        run_id: row.get("run_id")?,
        mode: codec::mode(row, "mode")?,
        options: codec::json(row, "options")?,
        shard: row.get("shard")?,
        started_at: codec::time(row, "started_at")?,
        finished_at: codec::opt_time(row, "finished_at")?,
        counts: codec::json(row, "counts")?,
        exit_code: row.get("exit_code")?,
        notes: codec::json(row, "notes")?,
        version: row.get("version")?,
        surprises: codec::json(row, "surprises")?,
    })
}

fn to_json<T: serde::Serialize>(value: &T, what: &str) -> Result<String, StateError> {
    serde_json::to_string(value)
        .map_err(|error| StateError::Corrupt(format!("cannot encode {what}: {error}")))
}

impl Store {
    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunInfo>, StateError> {
        let sqlite = self.sqlite();
        let mut statement = self
            .conn
            .prepare(&format!("SELECT {RUN_COLUMNS} FROM runs {NEWEST_FIRST}"))
            .map_err(&sqlite)?;
        statement
            .query_map([], run_from_row)
            .map_err(&sqlite)?
            .collect::<Result<_, _>>()
            .map_err(&sqlite)
    }

    /// One run's identity, options and counts.
    pub(super) fn run(&self, run_id: &str) -> Result<Option<RunInfo>, StateError> {
        self.conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1"),
                [run_id],
                run_from_row,
            )
            .optional()
            .map_err(self.sqlite())
    }

    /// The newest run of any mode, finished or not (`cmafleet report` without `--run`).
    pub fn latest_run(&self) -> Result<Option<RunInfo>, StateError> {
        self.conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs {NEWEST_FIRST} LIMIT 1"),
                [],
                run_from_row,
            )
            .optional()
            .map_err(self.sqlite())
    }

    /// A past run with every site's report as it ended, sites in the order their reports
    /// were first recorded in that run.
    pub fn run_report(&self, run_id: &str) -> Result<Option<RunReport>, StateError> {
        let Some(run) = self.run(run_id)? else {
            return Ok(None);
        };
        let sqlite = self.sqlite();
        let mut statement = self
            .conn
            .prepare("SELECT report FROM site_runs WHERE run_id = ?1 ORDER BY seq")
            .map_err(&sqlite)?;
        let sites = statement
            .query_map([run_id], |row| codec::json::<SiteReport>(row, "report"))
            .map_err(&sqlite)?
            .collect::<Result<_, _>>()
            .map_err(&sqlite)?;
        Ok(Some(RunReport { run, sites }))
    }

    /// A site's report in the newest run that recorded one, with that run (`status --site`).
    pub fn last_site_report(
        &self,
        site: &str,
    ) -> Result<Option<(RunInfo, SiteReport)>, StateError> {
        let sqlite = self.sqlite();
        let found: Option<(String, SiteReport)> = self
            .conn
            .query_row(
                "SELECT site_runs.run_id, site_runs.report FROM site_runs \
                 JOIN runs ON runs.run_id = site_runs.run_id WHERE site_runs.site = ?1 \
                 ORDER BY runs.started_at DESC, runs.rowid DESC LIMIT 1",
                [site],
                |row| Ok((row.get(0)?, codec::json::<SiteReport>(row, "report")?)),
            )
            .optional()
            .map_err(&sqlite)?;
        let Some((run_id, report)) = found else {
            return Ok(None);
        };
        Ok(self.run(&run_id)?.map(|run| (run, report)))
    }

    /// The newest finished run of `mode` started before `run_id` (for changes.md). When
    /// `run_id` is not in the store (not begun yet), every recorded run is before it.
    pub fn previous_run(
        &self,
        mode: Mode,
        before_run_id: &str,
    ) -> Result<Option<RunReport>, StateError> {
        let previous: Option<String> = self
            .conn
            .query_row(
                &format!(
                    "SELECT run_id FROM runs AS earlier \
                     WHERE mode = ?1 AND finished_at IS NOT NULL AND run_id <> ?2 \
                     AND NOT EXISTS (SELECT 1 FROM runs AS later WHERE later.run_id = ?2 \
                         AND (earlier.started_at > later.started_at \
                              OR (earlier.started_at = later.started_at \
                                  AND earlier.rowid > later.rowid))) \
                     {NEWEST_FIRST} LIMIT 1"
                ),
                params![mode.as_str(), before_run_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.sqlite())?;
        match previous {
            Some(run_id) => self.run_report(&run_id),
            None => Ok(None),
        }
    }
}

impl Tx<'_> {
    /// Records a new run; its id must be new.
    pub fn begin_run(&self, run: &RunInfo) -> Result<(), StateError> {
        self.cached_execute(
            &format!(
                "INSERT INTO runs ({RUN_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ),
            run_params(run)?,
        )
        .map_err(self.sqlite())?;
        Ok(())
    }

    /// Records the run's end: everything in `run` replaces what was recorded (a run never
    /// begun is recorded whole).
    pub fn finish_run(&self, run: &RunInfo) -> Result<(), StateError> {
        self.cached_execute(
            &format!(
                "INSERT INTO runs ({RUN_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                     ON CONFLICT (run_id) DO UPDATE SET mode = excluded.mode, \
                     options = excluded.options, shard = excluded.shard, \
                     started_at = excluded.started_at, finished_at = excluded.finished_at, \
                     exit_code = excluded.exit_code, counts = excluded.counts, \
                     notes = excluded.notes, version = excluded.version, \
                     surprises = excluded.surprises"
            ),
            run_params(run)?,
        )
        .map_err(self.sqlite())?;
        Ok(())
    }

    /// A site's outcome in a run: updates the site and keeps the report for history.
    /// `migrated` marks a successful migration (no re-migration without `--remigrate`).
    /// The tasks the report shows finished are concluded with it (their `finished_at`), in
    /// the same transaction: a task is never closed without the outcome drawn from it. A
    /// `detached` (or outcome-less) report closes nothing: the next run resumes the site.
    /// Recording a site again in the same run replaces its report and check results but
    /// keeps its place in the run's order. `run_id` must have been begun.
    pub fn record_site_report(
        &self,
        run_id: &str,
        report: &SiteReport,
        migrated: bool,
    ) -> Result<(), StateError> {
        let sqlite = self.sqlite();
        let outcome = report.outcome.map(|outcome| outcome.as_str());
        self.cached_execute(
            UPSERT_SITE_RUN,
            params![
                run_id,
                report.site,
                report.mode.as_str(),
                outcome,
                to_json(report, "site report")?,
                opt_time_text(report.started_at.as_ref()),
                opt_time_text(report.finished_at.as_ref()),
            ],
        )
        .map_err(&sqlite)?;
        // A detached site is resumed by the next run: it adopts even the tasks judged here.
        if report
            .outcome
            .is_some_and(|outcome| outcome != Outcome::Detached)
        {
            let finished: Vec<(&str, DateTime<Utc>)> = report
                .tasks
                .iter()
                .filter_map(|task| Some((task.task_id.as_str(), task.finished_at?)))
                .collect();
            self.conclude_tasks(&report.site, &finished)?;
        }
        self.touch_site(&report.site)?;
        let migrated_at: Option<DateTime<Utc>> =
            migrated.then(|| report.finished_at.unwrap_or_else(Utc::now));
        self.cached_execute(
            "UPDATE sites SET last_mode = ?2, last_outcome = ?3, \
                 migrated_at = coalesce(?4, migrated_at) WHERE site = ?1",
            params![
                report.site,
                report.mode.as_str(),
                outcome,
                opt_time_text(migrated_at.as_ref())
            ],
        )
        .map_err(&sqlite)?;
        Ok(())
    }
}

/// A site's report in a run: numbered after the run's last one when new, keeping its number
/// when replaced.
pub(super) const UPSERT_SITE_RUN: &str = "INSERT INTO site_runs \
    (run_id, site, seq, mode, outcome, report, started_at, finished_at) \
    VALUES (?1, ?2, (SELECT coalesce(max(seq), 0) + 1 FROM site_runs WHERE run_id = ?1), \
        ?3, ?4, ?5, ?6, ?7) \
    ON CONFLICT (run_id, site) DO UPDATE SET mode = excluded.mode, \
    outcome = excluded.outcome, report = excluded.report, \
    started_at = excluded.started_at, finished_at = excluded.finished_at";

fn run_params(run: &RunInfo) -> Result<impl rusqlite::Params, StateError> {
    Ok((
        run.run_id.clone(),
        run.mode.as_str(),
        to_json(&run.options, "run options")?,
        run.shard.clone(),
        time_text(&run.started_at),
        opt_time_text(run.finished_at.as_ref()),
        run.exit_code,
        to_json(&run.counts, "run counts")?,
        to_json(&run.notes, "run notes")?,
        run.version.clone(),
        to_json(&run.surprises, "run surprises")?,
    ))
}
