//! Unit tests of the store against real `state.db` files in temp dirs.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use chrono::{Duration, TimeZone};
use rusqlite::Connection;

use super::*;
use crate::report::model::{CheckResult, RunInfo, SiteReport};
use crate::state::schema::{SCHEMA_VERSION, create_at_version};
use crate::vocab::Stage;

mod runs;
mod tasks;

/// One task by its intent id, with the site it belongs to.
fn task_by_intent(store: &Store, intent_id: i64) -> Option<(String, TaskRecord)> {
    store.sites().unwrap().into_iter().find_map(|site| {
        let task = site.tasks.iter().find(|task| task.intent_id == intent_id)?;
        Some((site.site.clone(), task.clone()))
    })
}

/// The last status tree recorded for a task intent (JSON), if any.
fn task_tree(store: &Store, intent_id: i64) -> Option<String> {
    store
        .conn
        .query_row(
            "SELECT last_tree FROM tasks WHERE intent_id = ?1",
            [intent_id],
            |row| row.get(0),
        )
        .unwrap()
}

fn is_finished_status(task: &TaskRecord) -> bool {
    task.status.as_deref() == Some("FINISHED")
}

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 2, minute, 0).unwrap() + Duration::nanoseconds(123)
}

fn run_info(run_id: &str, mode: Mode, started_minute: u32) -> RunInfo {
    RunInfo::starting(
        run_id.to_owned(),
        mode,
        serde_json::json!({ "concurrency": 50 }),
        None,
        at(started_minute),
    )
}

fn finished(mut run: RunInfo, minute: u32) -> RunInfo {
    run.finished_at = Some(at(minute));
    run.exit_code = Some(0);
    run
}

fn check(name: &str, outcome: &str, excludable: Option<bool>) -> std::sync::Arc<CheckResult> {
    std::sync::Arc::new(CheckResult {
        name: name.to_owned(),
        status: "FINISHED".to_owned(),
        outcome: outcome.to_owned(),
        message: Some(format!("{name} said {outcome}")),
        occurrences: Vec::new(),
        excludable,
        description: None,
    })
}

fn report(site: &str, mode: Mode, outcome: Option<Outcome>) -> SiteReport {
    let mut report = SiteReport::pending(site, "jira", mode);
    report.outcome = outcome;
    report.stage = Stage::Done;
    report.started_at = Some(at(1));
    report.finished_at = outcome.map(|_| at(9));
    report
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    (dir, store)
}

fn job(id: &str) -> JobRecord {
    JobRecord {
        job_id: id.to_owned(),
        definition_hash: format!("hash-of-{id}"),
        created_at: at(2),
    }
}

/// A store with run `r1` begun.
fn with_run() -> (tempfile::TempDir, Store) {
    let (dir, mut store) = open();
    store
        .transaction(|tx| tx.begin_run(&run_info("r1", Mode::Migrate, 0)))
        .unwrap();
    (dir, store)
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn open_creates_a_private_dir_and_db_with_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("a").join("state");
    let store = Store::open(&state_dir).unwrap();
    assert_eq!(mode_of(&state_dir), 0o700);
    assert_eq!(mode_of(&state_dir.join(DB_FILE)), 0o600);
    assert_eq!(mode_of(&state_dir.join("state.db-wal")), 0o600);
    assert_eq!(store.path(), state_dir.join(DB_FILE));
    let conn = Connection::open(state_dir.join(DB_FILE)).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let journal: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
}

#[test]
fn the_store_syncs_fully_and_enforces_foreign_keys() {
    let (_dir, store) = open();
    let synchronous: i64 = store
        .conn
        .pragma_query_value(None, "synchronous", |row| row.get(0))
        .unwrap();
    assert_eq!(synchronous, 2, "FULL");
    let foreign_keys: bool = store
        .conn
        .pragma_query_value(None, "foreign_keys", |row| row.get(0))
        .unwrap();
    assert!(foreign_keys);
}

#[test]
fn a_state_dir_that_cannot_be_created_is_a_create_dir_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let error = Store::open(&file.join("state")).err().unwrap();
    assert!(matches!(error, StateError::CreateDir { .. }), "{error:?}");
    assert_eq!(error.exit_code(), crate::exit::CANT_CREATE);
    assert!(error.to_string().contains("file/state"), "{error}");
}

#[test]
fn reopening_keeps_the_data() {
    let (dir, mut store) = open();
    store
        .transaction(|tx| tx.record_job("acme", &job("j1")))
        .unwrap();
    drop(store);
    let store = Store::open(&dir.path().join("state")).unwrap();
    assert_eq!(store.site("acme").unwrap().unwrap().job, Some(job("j1")));
    let existing = Store::open_existing(&dir.path().join("state")).unwrap();
    assert_eq!(existing.sites().unwrap().len(), 1);
}

#[test]
fn a_store_from_a_newer_cmafleet_is_refused_and_left_alone() {
    let (dir, store) = open();
    drop(store);
    let db = dir.path().join("state").join(DB_FILE);
    Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    for error in [
        Store::open(&dir.path().join("state")).err().unwrap(),
        Store::open_existing(&dir.path().join("state"))
            .err()
            .unwrap(),
    ] {
        assert!(
            matches!(error, StateError::TooNew { found, .. } if found == SCHEMA_VERSION + 1),
            "{error:?}"
        );
        assert_eq!(error.exit_code(), crate::exit::CONFIG);
    }
    let version: i64 = Connection::open(&db)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION + 1);
}

#[test]
fn open_existing_never_creates_anything() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let error = Store::open_existing(&state_dir).err().unwrap();
    assert!(matches!(&error, StateError::Missing(path) if path.ends_with("state/state.db")));
    assert!(error.to_string().contains("run `cmafleet run` first"));
    assert!(!state_dir.exists());
    std::fs::create_dir(&state_dir).unwrap();
    assert!(Store::open_existing(&state_dir).is_err());
    assert_eq!(std::fs::read_dir(&state_dir).unwrap().count(), 0);
}

#[test]
fn an_unknown_site_is_none() {
    let (_dir, store) = open();
    assert_eq!(store.site("nobody").unwrap(), None);
    assert!(store.sites().unwrap().is_empty());
}

#[test]
fn record_job_clears_the_job_intent() {
    let (_dir, mut store) = open();
    store
        .transaction(|tx| tx.record_job_intent("acme", at(1)))
        .unwrap();
    let site = store.site("acme").unwrap().unwrap();
    assert_eq!(site.job_intent_at, Some(at(1)));
    assert_eq!(site.job, None);
    assert!(site.updated_at.is_some());
    store
        .transaction(|tx| tx.record_job("acme", &job("j1")))
        .unwrap();
    let site = store.site("acme").unwrap().unwrap();
    assert_eq!(site.job_intent_at, None);
    assert_eq!(site.job, Some(job("j1")));
}

#[test]
fn attach_round_trips_with_and_without_expiry() {
    let (_dir, mut store) = open();
    let attach = AttachRecord {
        cloud_url: "https://acme.atlassian.net".to_owned(),
        attached_at: at(3),
        expires_at: Some(at(3) + Duration::hours(24)),
    };
    store
        .transaction(|tx| tx.record_attach("acme", &attach))
        .unwrap();
    assert_eq!(store.site("acme").unwrap().unwrap().attach, Some(attach));
    let unparsed = AttachRecord {
        cloud_url: "https://acme.atlassian.net".to_owned(),
        attached_at: at(4),
        expires_at: None,
    };
    store
        .transaction(|tx| tx.record_attach("acme", &unparsed))
        .unwrap();
    assert_eq!(store.site("acme").unwrap().unwrap().attach, Some(unparsed));
}

#[test]
fn a_task_intent_needs_a_begun_run() {
    let (_dir, mut store) = open();
    let error = store
        .transaction(|tx| tx.record_task_intent("acme", "ghost", "j1", &TaskKind::Check, at(5)))
        .unwrap_err();
    assert!(matches!(error, StateError::Sqlite { .. }), "{error:?}");
    assert_eq!(store.site("acme").unwrap(), None, "rolled back whole");
}

#[test]
fn a_failed_transaction_writes_nothing() {
    let (_dir, mut store) = open();
    let error = store
        .transaction(|tx| {
            tx.record_job("acme", &job("j1"))?;
            Err::<(), _>(StateError::Corrupt("stop".into()))
        })
        .unwrap_err();
    assert!(matches!(error, StateError::Corrupt(_)));
    assert_eq!(store.site("acme").unwrap(), None);
}

#[test]
fn an_injected_write_failure_names_the_db_and_rolls_back() {
    let (dir, mut store) = with_run();
    let db = dir.path().join("state").join(DB_FILE);
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER fail_task_writes BEFORE INSERT ON tasks \
             BEGIN SELECT RAISE(ABORT, 'injected write failure'); END;",
        )
        .unwrap();
    let error = store
        .transaction(|tx| {
            tx.record_job("acme", &job("j1"))?;
            tx.record_task_intent("acme", "r1", "j1", &TaskKind::Migrate, at(5))
        })
        .unwrap_err();
    assert!(matches!(error, StateError::Sqlite { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains(&db.display().to_string()), "{text}");
    assert!(text.contains("injected write failure"), "{text}");
    assert_eq!(
        store.site("acme").unwrap(),
        None,
        "the job write rolled back too"
    );
}

#[test]
fn exit_codes_are_the_documented_ones() {
    assert_eq!(
        StateError::Missing("x".into()).exit_code(),
        crate::exit::CANT_CREATE
    );
    assert_eq!(
        StateError::ReadOnly("x".into()).exit_code(),
        crate::exit::CANT_CREATE
    );
}

#[test]
fn a_store_file_of_schema_version_5_opens_with_its_task_outcomes_split() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    std::fs::create_dir(&state_dir).unwrap();
    let db = state_dir.join(DB_FILE);
    {
        let conn = Connection::open(&db).unwrap();
        create_at_version(&conn, 5);
        conn.execute_batch(
            "INSERT INTO runs (run_id, mode, options, started_at, counts, version) \
             VALUES ('r1', 'migrate', '{}', '2026-05-01T02:00:00.000000000Z', '{}', '0.1.0');
             INSERT INTO sites (site) VALUES ('acme');
             INSERT INTO tasks (site, run_id, job_id, kind, intent_at, task_id, status, outcome, \
                 finished_at) \
             VALUES ('acme', 'r1', 'j1', 'check', '2026-05-01T02:01:00.000000000Z', 'c1', \
                     'FINISHED', 'warnings', '2026-05-01T02:02:00.000000000Z'),
                    ('acme', 'r1', 'j1', 'migrate', '2026-05-01T02:03:00.000000000Z', 'm1', \
                     'IN_PROGRESS', 'SUCCESS', NULL),
                    ('acme', 'r1', 'j1', 'migrate', '2026-05-01T02:04:00.000000000Z', NULL, \
                     NULL, NULL, NULL);",
        )
        .unwrap();
    }
    let store = Store::open(&state_dir).unwrap();
    let version: i64 = store
        .conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let tasks = store.site("acme").unwrap().unwrap().tasks;
    let split: Vec<_> = tasks
        .iter()
        .map(|task| (task.service_outcome.as_deref(), task.judgement))
        .collect();
    assert_eq!(
        split,
        [
            (None, Some(Judgement::Warnings)),
            (Some("SUCCESS"), None),
            (None, None)
        ]
    );
    assert_eq!(
        tasks[0].finished_at,
        Some(Utc.with_ymd_and_hms(2026, 5, 1, 2, 2, 0).unwrap())
    );
    assert!(tasks[1].is_in_flight() && tasks[2].needs_reconcile());
}
