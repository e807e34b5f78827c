//! Queries and writes of the state store. The coordinator is its only writer; it batches the
//! events of a moment into one transaction ([`Store::transaction`]). Never a secret here.
//!
//! SKELETON: signatures fixed; bodies to be written (issue 5).

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cma::wire::TaskKind;
use crate::fleet::{Mode, Outcome};
use crate::report::model::{RunInfo, RunReport, SiteReport};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create state dir {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("no state store at {0}; run `cmafleet run` first")]
    Missing(String),
    /// A state.db written by a newer cmafleet (exit 78).
    #[error(
        "{path} has schema version {found}, newer than this cmafleet understands ({supported}); upgrade cmafleet"
    )]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("state store {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("state store: corrupt record: {0}")]
    Corrupt(String),
}

/// The job a site uses, and the definition hash it was created for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    pub definition_hash: String,
    pub created_at: DateTime<Utc>,
}

/// The last successful attach of a site's cloud URL on its server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachRecord {
    pub cloud_url: String,
    pub attached_at: DateTime<Utc>,
    /// `None` when the service's expiry could not be parsed: treat as already expired.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A task of a site: first an intent (journalled before the POST), then its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Row id of the intent; the handle for later updates.
    pub intent_id: i64,
    pub run_id: String,
    pub job_id: String,
    pub kind: TaskKind,
    pub intent_at: DateTime<Utc>,
    /// `None` while the POST's answer is not known: reconcile with the task list.
    pub task_id: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// Found on the job's task list instead of created from the answer.
    pub adopted: bool,
    pub status: Option<String>,
    pub outcome: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The intent was given up (reconciliation found no task): a new intent follows.
    pub abandoned: bool,
}

/// Everything the store knows about one site across runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SiteState {
    pub site: String,
    pub job: Option<JobRecord>,
    /// A job create was journalled at this time but its id never recorded (a kill in
    /// between): a job may exist unused.
    pub job_intent_at: Option<DateTime<Utc>>,
    pub attach: Option<AttachRecord>,
    /// Oldest first.
    pub tasks: Vec<TaskRecord>,
    pub last_mode: Option<Mode>,
    pub last_outcome: Option<Outcome>,
    pub updated_at: Option<DateTime<Utc>>,
    /// When a Migrate task of this site last finished successfully (no re-migration).
    pub migrated_at: Option<DateTime<Utc>>,
}

impl SiteState {
    /// The newest task of `kind` that is not abandoned.
    pub fn last_task(&self, kind: &TaskKind) -> Option<&TaskRecord> {
        self.tasks
            .iter()
            .rev()
            .find(|task| &task.kind == kind && !task.abandoned)
    }
}

/// The open state store.
pub struct Store {
    conn: rusqlite::Connection,
}

/// One write transaction.
pub struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
}

impl Store {
    /// Opens (creating the dir 0700 and the db 0600 if needed) and migrates the schema.
    pub fn open(state_dir: &Path) -> Result<Store, StateError> {
        let _ = state_dir;
        todo!()
    }

    /// Opens an existing store without creating anything (`status`, `report`, `plan`).
    pub fn open_existing(state_dir: &Path) -> Result<Store, StateError> {
        let _ = state_dir;
        todo!()
    }

    pub fn site(&self, site: &str) -> Result<Option<SiteState>, StateError> {
        let _ = (site, &self.conn);
        todo!()
    }

    pub fn sites(&self) -> Result<Vec<SiteState>, StateError> {
        todo!()
    }

    /// Runs `f` in one transaction, committed (durably) before returning.
    pub fn transaction<R>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        let _ = f;
        todo!()
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunInfo>, StateError> {
        todo!()
    }

    /// A past run with every site's report as it ended.
    pub fn run_report(&self, run_id: &str) -> Result<Option<RunReport>, StateError> {
        let _ = run_id;
        todo!()
    }

    /// The newest finished run of `mode` started before `run_id` (for changes.md).
    pub fn previous_run(
        &self,
        mode: Mode,
        before_run_id: &str,
    ) -> Result<Option<RunReport>, StateError> {
        let _ = (mode, before_run_id);
        todo!()
    }
}

impl Tx<'_> {
    pub fn begin_run(&self, run: &RunInfo) -> Result<(), StateError> {
        let _ = (run, &self.tx);
        todo!()
    }

    pub fn finish_run(&self, run: &RunInfo) -> Result<(), StateError> {
        let _ = run;
        todo!()
    }

    /// Journals the intent to create a job (before the POST).
    pub fn record_job_intent(&self, site: &str, at: DateTime<Utc>) -> Result<(), StateError> {
        let _ = (site, at);
        todo!()
    }

    /// Records a created (or reused) job and clears the job intent.
    pub fn record_job(&self, site: &str, job: &JobRecord) -> Result<(), StateError> {
        let _ = (site, job);
        todo!()
    }

    pub fn record_attach(&self, site: &str, attach: &AttachRecord) -> Result<(), StateError> {
        let _ = (site, attach);
        todo!()
    }

    /// Journals the intent to create a task; returns its `intent_id`.
    pub fn record_task_intent(
        &self,
        site: &str,
        run_id: &str,
        job_id: &str,
        kind: &TaskKind,
        at: DateTime<Utc>,
    ) -> Result<i64, StateError> {
        let _ = (site, run_id, job_id, kind, at);
        todo!()
    }

    /// The task id of an intent, from the POST's answer (`adopted = false`) or from the task
    /// list (`adopted = true`).
    pub fn record_task_id(
        &self,
        intent_id: i64,
        task_id: &str,
        created_at: DateTime<Utc>,
        adopted: bool,
    ) -> Result<(), StateError> {
        let _ = (intent_id, task_id, created_at, adopted);
        todo!()
    }

    /// Reconciliation found no task for this intent: give it up.
    pub fn abandon_task_intent(&self, intent_id: i64) -> Result<(), StateError> {
        let _ = intent_id;
        todo!()
    }

    /// The task's latest status; `tree` is the last status tree as JSON (kept for `status`).
    pub fn record_task_status(
        &self,
        intent_id: i64,
        status: &str,
        outcome: Option<&str>,
        finished_at: Option<DateTime<Utc>>,
        tree: Option<&str>,
    ) -> Result<(), StateError> {
        let _ = (intent_id, status, outcome, finished_at, tree);
        todo!()
    }

    /// A site's outcome in a run: updates the site and keeps the report for history.
    /// `migrated` marks a successful migration (no re-migration without `--remigrate`).
    pub fn record_site_report(
        &self,
        run_id: &str,
        report: &SiteReport,
        migrated: bool,
    ) -> Result<(), StateError> {
        let _ = (run_id, report, migrated);
        todo!()
    }
}
