//! What the store knows per site across runs: its job, its attach, and the journal of its
//! tasks (intent → id → status). The write order of a task is the journal-before-act
//! invariant: [`Tx::record_task_intent`] is committed before the create is sent, and
//! [`Tx::record_task_id`] right after the answer (or after reconciling with the task list).

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::codec::{self, kind_text, opt_time_text, time_text};
use super::{AttachRecord, JobRecord, SiteState, StateError, Store, TaskRecord, Tx};
use crate::cma::wire::TaskKind;
use crate::vocab::Judgement;

const SITE_COLUMNS: &str = "site, job_id, definition_hash, job_created_at, job_intent_at, \
    cloud_url, attached_at, attach_expires_at, last_mode, last_outcome, updated_at, migrated_at, \
    (SELECT outcome FROM site_runs WHERE site_runs.site = sites.site AND mode = 'migrate' \
     AND outcome IN ('succeeded', 'warnings') ORDER BY finished_at DESC, rowid DESC LIMIT 1) \
    AS migrated_outcome";

const TASK_COLUMNS: &str = "intent_id, site, run_id, job_id, kind, intent_at, task_id, \
    created_at, adopted, abandoned, status, service_outcome, judgement, finished_at, \
    apps_pending";

fn site_from_row(row: &Row<'_>) -> rusqlite::Result<SiteState> {
    let job = match row.get::<_, Option<String>>("job_id")? {
        Some(job_id) => Some(JobRecord {
            job_id,
            definition_hash: row
                .get::<_, Option<String>>("definition_hash")?
                .unwrap_or_default(),
            created_at: codec::time(row, "job_created_at")?,
        }),
        None => None,
    };
    let attach = match (
        row.get::<_, Option<String>>("cloud_url")?,
        codec::opt_time(row, "attached_at")?,
    ) {
        (Some(cloud_url), Some(attached_at)) => Some(AttachRecord {
            cloud_url,
            attached_at,
            expires_at: codec::opt_time(row, "attach_expires_at")?,
        }),
        _ => None,
    };
    Ok(SiteState {
        site: row.get("site")?,
        job,
        job_intent_at: codec::opt_time(row, "job_intent_at")?,
        attach,
        tasks: Vec::new(),
        last_mode: codec::opt_mode(row, "last_mode")?,
        last_outcome: codec::opt_outcome(row, "last_outcome")?,
        updated_at: codec::opt_time(row, "updated_at")?,
        migrated_at: codec::opt_time(row, "migrated_at")?,
        migrated_outcome: codec::opt_outcome(row, "migrated_outcome")?,
    })
}

fn task_from_row(row: &Row<'_>) -> rusqlite::Result<(String, TaskRecord)> {
    let task = TaskRecord {
        intent_id: row.get("intent_id")?,
        run_id: row.get("run_id")?,
        job_id: row.get("job_id")?,
        kind: codec::kind(row, "kind")?,
        intent_at: codec::time(row, "intent_at")?,
        task_id: row.get("task_id")?,
        created_at: codec::opt_time(row, "created_at")?,
        adopted: codec::flag(row, "adopted")?,
        status: row.get("status")?,
        service_outcome: row.get("service_outcome")?,
        judgement: codec::opt_judgement(row, "judgement")?,
        finished_at: codec::opt_time(row, "finished_at")?,
        abandoned: codec::flag(row, "abandoned")?,
        apps_pending: codec::flag(row, "apps_pending")?,
    };
    Ok((row.get("site")?, task))
}

impl Store {
    pub fn site(&self, site: &str) -> Result<Option<SiteState>, StateError> {
        let sqlite = self.sqlite();
        let found = self
            .conn
            .query_row(
                &format!("SELECT {SITE_COLUMNS} FROM sites WHERE site = ?1"),
                [site],
                site_from_row,
            )
            .optional()
            .map_err(&sqlite)?;
        let Some(mut state) = found else {
            return Ok(None);
        };
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE site = ?1 ORDER BY intent_id"
            ))
            .map_err(&sqlite)?;
        state.tasks = statement
            .query_map([site], task_from_row)
            .map_err(&sqlite)?
            .map(|row| row.map(|(_, task)| task))
            .collect::<Result<_, _>>()
            .map_err(&sqlite)?;
        Ok(Some(state))
    }

    /// Every site the store knows, sorted by name, each with its tasks oldest first.
    pub fn sites(&self) -> Result<Vec<SiteState>, StateError> {
        let sqlite = self.sqlite();
        let mut statement = self
            .conn
            .prepare(&format!("SELECT {SITE_COLUMNS} FROM sites ORDER BY site"))
            .map_err(&sqlite)?;
        let mut sites: Vec<SiteState> = statement
            .query_map([], site_from_row)
            .map_err(&sqlite)?
            .collect::<Result<_, _>>()
            .map_err(&sqlite)?;
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {TASK_COLUMNS} FROM tasks ORDER BY site, intent_id"
            ))
            .map_err(&sqlite)?;
        let tasks = statement.query_map([], task_from_row).map_err(&sqlite)?;
        // Both lists are sorted by site: walk them together.
        let mut index = 0;
        for row in tasks {
            let (site, task) = row.map_err(&sqlite)?;
            while index < sites.len() && sites[index].site < site {
                index += 1;
            }
            match sites.get_mut(index) {
                Some(state) if state.site == site => state.tasks.push(task),
                _ => {
                    return Err(StateError::Corrupt(format!(
                        "{}: task intent {} belongs to unknown site `{site}`",
                        self.path, task.intent_id
                    )));
                }
            }
        }
        Ok(sites)
    }
}

impl Tx<'_> {
    /// Creates the site's row if needed and marks it updated now.
    pub(super) fn touch_site(&self, site: &str) -> Result<(), StateError> {
        self.cached_execute(
            "INSERT INTO sites (site, updated_at) VALUES (?1, ?2) \
                 ON CONFLICT (site) DO UPDATE SET updated_at = excluded.updated_at",
            params![site, self.now_text],
        )
        .map_err(self.sqlite())?;
        Ok(())
    }

    /// Journals the intent to create a job (before the POST).
    pub fn record_job_intent(&self, site: &str, at: DateTime<Utc>) -> Result<(), StateError> {
        self.touch_site(site)?;
        self.cached_execute(
            "UPDATE sites SET job_intent_at = ?2 WHERE site = ?1",
            params![site, time_text(&at)],
        )
        .map_err(self.sqlite())?;
        Ok(())
    }

    /// Clears the job intent of a create that was never sent.
    pub fn withdraw_job_intent(&self, site: &str) -> Result<(), StateError> {
        self.cached_execute(
            "UPDATE sites SET job_intent_at = NULL WHERE site = ?1",
            params![site],
        )
        .map_err(self.sqlite())?;
        Ok(())
    }

    /// Records a created (or reused) job and clears the job intent.
    pub fn record_job(&self, site: &str, job: &JobRecord) -> Result<(), StateError> {
        self.touch_site(site)?;
        self.cached_execute(
            "UPDATE sites SET job_id = ?2, definition_hash = ?3, job_created_at = ?4, \
                 job_intent_at = NULL WHERE site = ?1",
            params![
                site,
                job.job_id,
                job.definition_hash,
                time_text(&job.created_at)
            ],
        )
        .map_err(self.sqlite())?;
        Ok(())
    }

    pub fn record_attach(&self, site: &str, attach: &AttachRecord) -> Result<(), StateError> {
        self.touch_site(site)?;
        self.cached_execute(
            "UPDATE sites SET cloud_url = ?2, attached_at = ?3, attach_expires_at = ?4 \
                 WHERE site = ?1",
            params![
                site,
                attach.cloud_url,
                time_text(&attach.attached_at),
                opt_time_text(attach.expires_at.as_ref())
            ],
        )
        .map_err(self.sqlite())?;
        Ok(())
    }

    /// Journals the intent to create a task; returns its `intent_id`. `run_id` must have
    /// been begun ([`Tx::begin_run`]). Refused while the site has an intent of the same
    /// kind that is neither resolved to a task id nor abandoned: that one may have reached
    /// the service, and a second POST would duplicate it.
    pub fn record_task_intent(
        &self,
        site: &str,
        run_id: &str,
        job_id: &str,
        kind: &TaskKind,
        at: DateTime<Utc>,
    ) -> Result<i64, StateError> {
        let kind = kind_text(kind);
        let open: Option<i64> = self
            .cached_query_row(
                "SELECT intent_id FROM tasks WHERE site = ?1 AND kind = ?2 \
                 AND task_id IS NULL AND abandoned = 0",
                params![site, kind],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.sqlite())?;
        if let Some(open) = open {
            return Err(StateError::Refused(format!(
                "journal a second {kind} task for site `{site}`: intent {open} has no task id \
                 yet (reconcile it with the job's task list, or abandon it)"
            )));
        }
        self.touch_site(site)?;
        self.cached_execute(
            "INSERT INTO tasks (site, run_id, job_id, kind, intent_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            params![site, run_id, job_id, kind, time_text(&at)],
        )
        .map_err(self.sqlite())?;
        Ok(self.tx.last_insert_rowid())
    }

    /// The site, task id and abandoned flag of an intent.
    fn intent(&self, intent_id: i64) -> Result<(String, Option<String>, bool), StateError> {
        self.cached_query_row(
            "SELECT site, task_id, abandoned FROM tasks WHERE intent_id = ?1",
            [intent_id],
            |row| Ok((row.get(0)?, row.get(1)?, codec::flag(row, "abandoned")?)),
        )
        .optional()
        .map_err(self.sqlite())?
        .ok_or(StateError::UnknownIntent(intent_id))
    }

    /// The task id of an intent, from the POST's answer (`adopted = false`) or from the task
    /// list (`adopted = true`). Recording the same id again is harmless; a different id for
    /// an intent that has one, an id already recorded for another intent, or an id for an
    /// abandoned intent is refused.
    pub fn record_task_id(
        &self,
        intent_id: i64,
        task_id: &str,
        created_at: DateTime<Utc>,
        adopted: bool,
    ) -> Result<(), StateError> {
        let (site, known, abandoned) = self.intent(intent_id)?;
        match known {
            Some(known) if known == task_id => return Ok(()),
            Some(known) => {
                return Err(StateError::Refused(format!(
                    "record task {task_id} for intent {intent_id} of site `{site}`: \
                     it already has task {known}"
                )));
            }
            None if abandoned => {
                return Err(StateError::Refused(format!(
                    "record task {task_id} for intent {intent_id} of site `{site}`: \
                     the intent was abandoned"
                )));
            }
            None => {}
        }
        let owner: Option<i64> = self
            .cached_query_row(
                "SELECT intent_id FROM tasks WHERE task_id = ?1",
                [task_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.sqlite())?;
        if let Some(owner) = owner {
            return Err(StateError::Refused(format!(
                "record task {task_id} for intent {intent_id} of site `{site}`: \
                 it is already recorded for intent {owner}"
            )));
        }
        self.cached_execute(
            "UPDATE tasks SET task_id = ?2, created_at = ?3, adopted = ?4 \
                 WHERE intent_id = ?1",
            params![intent_id, task_id, time_text(&created_at), adopted],
        )
        .map_err(self.sqlite())?;
        self.touch_site(&site)
    }

    /// Reconciliation found no task for this intent: give it up. Refused when the intent
    /// already has a task id (that task exists; giving it up would lose it).
    pub fn abandon_task_intent(&self, intent_id: i64) -> Result<(), StateError> {
        let (site, known, _) = self.intent(intent_id)?;
        if let Some(known) = known {
            return Err(StateError::Refused(format!(
                "abandon intent {intent_id} of site `{site}`: it has task {known}"
            )));
        }
        self.cached_execute(
            "UPDATE tasks SET abandoned = 1 WHERE intent_id = ?1",
            [intent_id],
        )
        .map_err(self.sqlite())?;
        self.touch_site(&site)
    }

    /// The pipeline's judgement of a finished task: status `FINISHED` and that judgement,
    /// beside the service's own outcome word (kept as it was). `finished_at` stays empty
    /// until the site's report is recorded ([`Tx::record_site_report`] concludes the tasks
    /// the report names): a run killed in between leaves the task open, and the next run
    /// adopts it (one status read) instead of creating another. Refused for an intent
    /// without a task id.
    pub fn record_task_judgement(
        &self,
        intent_id: i64,
        judgement: Judgement,
    ) -> Result<(), StateError> {
        let (site, known, _) = self.intent(intent_id)?;
        if known.is_none() {
            return Err(StateError::Refused(format!(
                "record a judgement for intent {intent_id} of site `{site}`: it has no task id"
            )));
        }
        self.cached_execute(
            "UPDATE tasks SET status = 'FINISHED', judgement = ?2 WHERE intent_id = ?1",
            params![intent_id, judgement.as_str()],
        )
        .map_err(self.sqlite())?;
        self.touch_site(&site)
    }

    /// Whether a Migrate task's apps still migrate after its core finished: later runs read
    /// its status (no new task) until they end.
    pub fn record_apps_pending(&self, intent_id: i64, pending: bool) -> Result<(), StateError> {
        self.cached_execute(
            "UPDATE tasks SET apps_pending = ?2 WHERE intent_id = ?1",
            params![intent_id, pending],
        )
        .map_err(self.sqlite())?;
        Ok(())
    }

    /// Concludes a site's tasks when its report is recorded: each task in `finished` (task id,
    /// when it was judged finished) gets its `finished_at`; so does every older task of the
    /// site still open (e.g. the precheck a Migrate task followed: nothing resumes a task
    /// older than the one the site concluded with), and every task superseded by a newer
    /// intent of its kind. Intents without a task id are left to reconciliation.
    pub(super) fn conclude_tasks(
        &self,
        site: &str,
        finished: &[(&str, DateTime<Utc>)],
    ) -> Result<(), StateError> {
        let sqlite = self.sqlite();
        let now = &self.now_text;
        let mut newest: Option<i64> = None;
        for (task_id, at) in finished {
            let concluded: Option<i64> = self
                .cached_query_row(
                    "UPDATE tasks SET finished_at = coalesce(finished_at, ?3) \
                     WHERE site = ?1 AND task_id = ?2 RETURNING intent_id",
                    params![site, task_id, time_text(at)],
                    |row| row.get(0),
                )
                .optional()
                .map_err(&sqlite)?;
            newest = newest.max(concluded);
        }
        if let Some(newest) = newest {
            self.cached_execute(
                "UPDATE tasks SET finished_at = ?3 WHERE site = ?1 AND intent_id < ?2 \
                 AND finished_at IS NULL AND task_id IS NOT NULL",
                params![site, newest, now],
            )
            .map_err(&sqlite)?;
        }
        self.cached_execute(
            "UPDATE tasks SET finished_at = ?2 \
             WHERE site = ?1 AND finished_at IS NULL AND task_id IS NOT NULL \
             AND EXISTS (SELECT 1 FROM tasks AS newer WHERE newer.site = tasks.site \
                 AND newer.kind = tasks.kind AND newer.intent_id > tasks.intent_id \
                 AND newer.abandoned = 0)",
            params![site, now],
        )
        .map_err(&sqlite)?;
        Ok(())
    }

    /// The task's latest status as the service sent it: its status and outcome words
    /// (`service_outcome`, any word, known or not); `tree` is the last status tree as JSON
    /// (kept for people reading the store). `status`, `service_outcome` and `finished_at`
    /// replace the previous values; a `None` tree keeps the previous tree; a judgement
    /// already recorded stays. Refused for an intent without a task id.
    pub fn record_task_status(
        &self,
        intent_id: i64,
        status: &str,
        service_outcome: Option<&str>,
        finished_at: Option<DateTime<Utc>>,
        tree: Option<&str>,
    ) -> Result<(), StateError> {
        let (site, known, _) = self.intent(intent_id)?;
        if known.is_none() {
            return Err(StateError::Refused(format!(
                "record a status for intent {intent_id} of site `{site}`: it has no task id"
            )));
        }
        self.cached_execute(
            "UPDATE tasks SET status = ?2, service_outcome = ?3, finished_at = ?4, \
                 last_tree = coalesce(?5, last_tree) WHERE intent_id = ?1",
            params![
                intent_id,
                status,
                service_outcome,
                opt_time_text(finished_at.as_ref()),
                tree
            ],
        )
        .map_err(self.sqlite())?;
        self.touch_site(&site)
    }
}
