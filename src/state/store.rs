//! Queries and writes of the state store. The coordinator is its only writer; it batches the
//! events of a moment into one transaction ([`Store::transaction`]). Never a secret here.
//!
//! The store is durable against power loss (WAL, `synchronous=FULL`): when
//! [`Store::transaction`] returns, what it wrote is on disk — the journal-before-act
//! invariant relies on it. Site and task records live in `store/sites.rs`, runs and per-run site
//! reports in `store/runs.rs`; this file holds the types, opening and the transaction.
//!
//! A write failure can be injected without any hook in this code: another connection to
//! `state.db` creates a trigger that raises, e.g.
//! `CREATE TRIGGER fail BEFORE INSERT ON tasks BEGIN SELECT RAISE(ABORT, 'injected'); END;`
//! (see `docs/state.md`).

mod codec;
mod runs;
mod sites;

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use serde::{Deserialize, Serialize};

use super::error::StateError;
use super::schema;
use crate::cma::wire::TaskKind;
use crate::vocab::{Judgement, Mode, Outcome};

/// The database file inside the state dir.
pub const DB_FILE: &str = "state.db";

/// How long a write waits for another connection's write to finish (`status` reading while
/// a run writes never waits: WAL readers do not block writers).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// SQLite's page cache, in KiB (negative `cache_size`): 8 MiB instead of the default 2.
const CACHE_KIB: i64 = -8192;
/// WAL frames between automatic checkpoints (default 1000).
const CHECKPOINT_PAGES: i64 = 8000;
/// Statements kept prepared (the write path uses about fifteen).
const STATEMENT_CACHE: usize = 32;

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
    /// The service's last status word (`PENDING`, `IN_PROGRESS`, `FINISHED`, …); `FINISHED`
    /// from the moment a run judged the task.
    pub status: Option<String>,
    /// The service's outcome word as it sent it (`SUCCESS`, `WARNING`, `FAILED`, …), kept
    /// as text: a word this cmafleet does not know is still worth showing.
    pub service_outcome: Option<String>,
    /// cmafleet's judgement of the finished task, from its checks and scopes; `None` until
    /// a run judged it. What admission and `plan` read to know a migration went well.
    pub judgement: Option<Judgement>,
    /// When the task was judged finished, recorded together with the site's outcome (see
    /// [`Tx::record_task_judgement`]); `None` while a run may still have to conclude from it.
    pub finished_at: Option<DateTime<Utc>>,
    /// The intent was given up (reconciliation found no task): a new intent follows.
    pub abandoned: bool,
    /// A Migrate task whose core finished while apps (scopes after the core) still ran: the
    /// site is migrated, and later runs read the task's status until the apps end.
    pub apps_pending: bool,
}

impl TaskRecord {
    /// An intent whose POST may or may not have reached the service: reconcile it from the
    /// job's task list before anything else, never POST again blindly.
    pub fn needs_reconcile(&self) -> bool {
        self.task_id.is_none() && !self.abandoned
    }

    /// A known task no run has concluded a site with (`finished_at` empty): still running
    /// remotely, or judged finished by a run killed before it recorded the site's outcome.
    /// The next run adopts it and polls it, never creating another.
    pub fn is_in_flight(&self) -> bool {
        self.task_id.is_some() && !self.abandoned && self.finished_at.is_none()
    }
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
    /// How its latest migration concluded (`succeeded` or `warnings`), from its reports: the
    /// follow-up of apps that ran on keeps a warning the migration had.
    pub migrated_outcome: Option<Outcome>,
}

impl SiteState {
    /// The newest task of `kind` that is not abandoned.
    pub fn last_task(&self, kind: &TaskKind) -> Option<&TaskRecord> {
        self.tasks
            .iter()
            .rev()
            .find(|task| &task.kind == kind && !task.abandoned)
    }

    /// The Migrate task this site migrated with, when its apps still ran as it finished:
    /// later runs follow it up (read its status, create nothing) until the apps end.
    pub fn apps_pending(&self) -> Option<&TaskRecord> {
        self.last_task(&TaskKind::Migrate).filter(|task| {
            task.apps_pending && task.finished_at.is_some() && task.task_id.is_some()
        })
    }

    /// The newest task of any kind that is not abandoned.
    pub fn newest_task(&self) -> Option<&TaskRecord> {
        self.tasks.iter().rev().find(|task| !task.abandoned)
    }

    /// Whether a task of this site may still run remotely: recorded (or intended) by an
    /// earlier run, neither finished nor abandoned.
    pub fn has_task_in_flight(&self) -> bool {
        self.tasks
            .iter()
            .any(|task| !task.abandoned && task.finished_at.is_none())
    }
}

/// The open state store.
pub struct Store {
    conn: rusqlite::Connection,
    /// `state.db`'s path as shown in every error.
    path: String,
}

/// One write transaction.
pub struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
    /// `state.db`'s path as shown in every error.
    path: &'a str,
    /// When the transaction began: the time every write in it stamps (`updated_at`, an
    /// intent's time), read and formatted once for the hundreds of events a batch holds.
    now: DateTime<Utc>,
    now_text: String,
}

impl Store {
    /// Opens (creating the dir 0700 and the db 0600 if needed) and migrates the schema.
    /// An existing dir or db keeps its permissions. Fails with [`StateError::ReadOnly`] when
    /// the db cannot be written.
    pub fn open(state_dir: &Path) -> Result<Store, StateError> {
        create_private_dir(state_dir)?;
        let db = state_dir.join(DB_FILE);
        create_private_file(&db)?;
        let store = Store::connect(&db, OpenFlags::default())?;
        if store.is_read_only()? {
            return Err(StateError::ReadOnly(store.path));
        }
        Ok(store)
    }

    /// Opens an existing store without creating anything (`status`, `report`, `plan`).
    /// A read-only store opens too, as long as its schema is current.
    pub fn open_existing(state_dir: &Path) -> Result<Store, StateError> {
        let db = state_dir.join(DB_FILE);
        if !db.is_file() {
            return Err(StateError::Missing(db.display().to_string()));
        }
        Store::connect(&db, OpenFlags::default() - OpenFlags::SQLITE_OPEN_CREATE)
    }

    fn connect(db: &Path, flags: OpenFlags) -> Result<Store, StateError> {
        let path = db.display().to_string();
        let sqlite = |source| StateError::sqlite(&path, source);
        let mut conn = Connection::open_with_flags(db, flags).map_err(sqlite)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Plans never depend on bound values: otherwise SQLite (built with STAT4) re-parses a
        // cached statement whenever a parameter it could plan on changes — numbering a site's
        // report (`max(seq)` of its run) was re-prepared on every site.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(sqlite)?;
        // Before any write: a store from a newer cmafleet is left exactly as it is.
        schema::ensure_not_newer(schema::version(&conn, &path)?, &path)?;
        let read_only = conn.is_readonly("main").map_err(sqlite)?;
        if !read_only {
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
                .map_err(sqlite)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StateError::Corrupt(format!(
                    "{path}: journal mode is {mode}, WAL could not be enabled"
                )));
            }
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(sqlite)?;
        // A large fleet's run touches index pages all over the file: a bigger page cache
        // keeps them in memory, and fewer, larger checkpoints copy each page back once
        // rather than after every thousand WAL frames.
        conn.pragma_update(None, "cache_size", CACHE_KIB)
            .map_err(sqlite)?;
        conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES)
            .map_err(sqlite)?;
        schema::migrate(&mut conn, &path)?;
        Ok(Store { conn, path })
    }

    /// The path of `state.db`.
    pub fn path(&self) -> &Path {
        Path::new(&self.path)
    }

    fn is_read_only(&self) -> Result<bool, StateError> {
        self.conn
            .is_readonly("main")
            .map_err(|source| StateError::sqlite(&self.path, source))
    }

    /// Runs `f` in one transaction, committed (durably) before returning. When `f` or the
    /// commit fails, nothing of it is written.
    pub fn transaction<R>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        let path = self.path.as_str();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| StateError::sqlite(path, source))?;
        let now = Utc::now();
        let tx = Tx {
            tx,
            path,
            now,
            now_text: codec::time_text(&now),
        };
        let value = f(&tx)?;
        tx.tx
            .commit()
            .map_err(|source| StateError::sqlite(path, source))?;
        Ok(value)
    }

    fn sqlite(&self) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        |source| StateError::sqlite(&self.path, source)
    }
}

impl Tx<'_> {
    /// When the transaction began: what its writes stamp.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    fn sqlite(&self) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        |source| StateError::sqlite(self.path, source)
    }

    /// Runs a statement through the connection's statement cache: the write path repeats a
    /// dozen statements for every site, and parsing them each time cost more than running them.
    fn cached_execute<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.tx.prepare_cached(sql)?.execute(params)
    }

    /// [`Tx::cached_execute`] for a statement that reads one row.
    fn cached_query_row<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.tx.prepare_cached(sql)?.query_row(params, f)
    }
}

/// Creates the state dir (and missing parents) with mode 0700.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StateError::CreateDir {
            path: dir.display().to_string(),
            source,
        })
}

/// Creates `state.db` empty with mode 0600 unless it exists (SQLite's `-wal` and `-shm`
/// files take the database file's mode), and makes its directory entry durable.
fn create_private_file(db: &Path) -> Result<(), StateError> {
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(db);
    let result = match created {
        Ok(_) => match db.parent() {
            Some(dir) => File::open(dir).and_then(|dir| dir.sync_all()),
            None => Ok(()),
        },
        Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    };
    result.map_err(|source| StateError::CreateDb {
        path: db.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests;
