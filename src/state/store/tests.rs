//! Unit tests of the store against real `state.db` files in temp dirs.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use chrono::{Duration, TimeZone};
use rusqlite::Connection;

use super::*;
use crate::report::model::{CheckResult, RunInfo, SiteReport};
use crate::state::schema::{MIGRATIONS, SCHEMA_VERSION};
use crate::vocab::Stage;

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
fn a_task_goes_from_intent_to_id_to_finished() {
    let (_dir, mut store) = with_run();
    let intent = store
        .transaction(|tx| tx.record_task_intent("acme", "r1", "j1", &TaskKind::Migrate, at(5)))
        .unwrap();
    let task = store.site("acme").unwrap().unwrap().tasks[0].clone();
    assert_eq!(task.intent_id, intent);
    assert_eq!(task.kind, TaskKind::Migrate);
    assert_eq!((task.run_id.as_str(), task.job_id.as_str()), ("r1", "j1"));
    assert_eq!(task.intent_at, at(5));
    assert!(task.needs_reconcile() && !task.is_in_flight());

    store
        .transaction(|tx| tx.record_task_id(intent, "t1", at(6), false))
        .unwrap();
    let task = store.site("acme").unwrap().unwrap().tasks[0].clone();
    assert_eq!(task.task_id.as_deref(), Some("t1"));
    assert_eq!(task.created_at, Some(at(6)));
    assert!(!task.adopted && task.is_in_flight() && !task.needs_reconcile());

    store
        .transaction(|tx| {
            tx.record_task_status(intent, "IN_PROGRESS", None, None, Some(r#"{"a":1}"#))
        })
        .unwrap();
    store
        .transaction(|tx| {
            tx.record_task_status(intent, "FINISHED", Some("SUCCESS"), Some(at(8)), None)
        })
        .unwrap();
    let site = store.site("acme").unwrap().unwrap();
    let task = site.last_task(&TaskKind::Migrate).unwrap();
    assert_eq!(task.status.as_deref(), Some("FINISHED"));
    assert_eq!(task.service_outcome.as_deref(), Some("SUCCESS"));
    assert_eq!(
        task.judgement, None,
        "the service's word is not a judgement"
    );
    assert_eq!(task.finished_at, Some(at(8)));
    assert!(is_finished_status(task) && !task.is_in_flight());
    assert_eq!(
        task_tree(&store, intent).as_deref(),
        Some(r#"{"a":1}"#),
        "a status without a tree keeps the last tree"
    );
    assert_eq!(task_by_intent(&store, intent).unwrap().0, "acme");
    let kind: String = store
        .conn
        .query_row("SELECT kind FROM tasks", [], |row| row.get(0))
        .unwrap();
    assert_eq!(kind, "migrate");
}

#[test]
fn an_adopted_task_is_marked_adopted() {
    let (_dir, mut store) = with_run();
    store
        .transaction(|tx| {
            let intent = tx.record_task_intent("acme", "r1", "j1", &TaskKind::Check, at(5))?;
            tx.record_task_id(intent, "t9", at(5), true)
        })
        .unwrap();
    let site = store.site("acme").unwrap().unwrap();
    assert!(site.last_task(&TaskKind::Check).unwrap().adopted);
    assert_eq!(site.last_task(&TaskKind::Migrate), None);
}

#[test]
fn a_second_open_intent_of_the_same_kind_is_refused() {
    let (_dir, mut store) = with_run();
    let first = store
        .transaction(|tx| tx.record_task_intent("acme", "r1", "j1", &TaskKind::Migrate, at(5)))
        .unwrap();
    let error = store
        .transaction(|tx| tx.record_task_intent("acme", "r1", "j1", &TaskKind::Migrate, at(6)))
        .unwrap_err();
    assert!(matches!(error, StateError::Refused(_)), "{error:?}");
    assert!(
        error.to_string().contains(&format!("intent {first}")),
        "{error}"
    );
    // Another kind, or another site, is independent.
    store
        .transaction(|tx| {
            tx.record_task_intent("acme", "r1", "j1", &TaskKind::Check, at(6))?;
            tx.record_task_intent("beta", "r1", "j2", &TaskKind::Migrate, at(6))
        })
        .unwrap();
}

#[test]
fn an_abandoned_intent_is_skipped_and_a_new_one_may_follow() {
    let (_dir, mut store) = with_run();
    let first = store
        .transaction(|tx| tx.record_task_intent("acme", "r1", "j1", &TaskKind::Migrate, at(5)))
        .unwrap();
    store
        .transaction(|tx| tx.abandon_task_intent(first))
        .unwrap();
    let site = store.site("acme").unwrap().unwrap();
    assert!(site.tasks[0].abandoned && !site.tasks[0].needs_reconcile());
    assert_eq!(site.last_task(&TaskKind::Migrate), None);
    let second = store
        .transaction(|tx| tx.record_task_intent("acme", "r1", "j1", &TaskKind::Migrate, at(7)))
        .unwrap();
    let site = store.site("acme").unwrap().unwrap();
    assert_eq!(site.tasks.len(), 2);
    assert_eq!(
        site.last_task(&TaskKind::Migrate).unwrap().intent_id,
        second
    );
    let error = store
        .transaction(|tx| tx.record_task_id(first, "late", at(8), true))
        .unwrap_err();
    assert!(matches!(error, StateError::Refused(_)), "{error:?}");
}

#[test]
fn task_ids_are_never_overwritten_or_shared() {
    let (_dir, mut store) = with_run();
    let (one, two) = store
        .transaction(|tx| {
            let one = tx.record_task_intent("acme", "r1", "j1", &TaskKind::Migrate, at(5))?;
            let two = tx.record_task_intent("beta", "r1", "j2", &TaskKind::Migrate, at(5))?;
            tx.record_task_id(one, "t1", at(6), false)?;
            Ok((one, two))
        })
        .unwrap();
    store
        .transaction(|tx| tx.record_task_id(one, "t1", at(6), true))
        .expect("the same id again is harmless");
    for (intent, task) in [(one, "t2"), (two, "t1")] {
        let error = store
            .transaction(|tx| tx.record_task_id(intent, task, at(7), false))
            .unwrap_err();
        assert!(matches!(error, StateError::Refused(_)), "{error:?}");
    }
    let error = store
        .transaction(|tx| tx.abandon_task_intent(one))
        .unwrap_err();
    assert!(matches!(error, StateError::Refused(_)), "{error:?}");
    let error = store
        .transaction(|tx| tx.record_task_status(two, "FINISHED", None, None, None))
        .unwrap_err();
    assert!(matches!(error, StateError::Refused(_)), "{error:?}");
    let error = store
        .transaction(|tx| tx.record_task_id(999, "t3", at(7), false))
        .unwrap_err();
    assert!(matches!(error, StateError::UnknownIntent(999)), "{error:?}");
    assert_eq!(
        store.site("acme").unwrap().unwrap().tasks[0]
            .task_id
            .as_deref(),
        Some("t1")
    );
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
fn sites_are_sorted_with_their_own_tasks_oldest_first() {
    let (_dir, mut store) = with_run();
    store
        .transaction(|tx| {
            for (site, task) in [
                ("zeta", "z1"),
                ("acme", "a1"),
                ("beta", "b1"),
                ("acme", "a2"),
            ] {
                let kind = if task.ends_with('1') {
                    TaskKind::Check
                } else {
                    TaskKind::Migrate
                };
                let intent = tx.record_task_intent(site, "r1", "j", &kind, at(5))?;
                tx.record_task_id(intent, task, at(6), false)?;
            }
            tx.record_job("empty", &job("j9"))
        })
        .unwrap();
    let sites = store.sites().unwrap();
    let names: Vec<_> = sites.iter().map(|site| site.site.as_str()).collect();
    assert_eq!(names, ["acme", "beta", "empty", "zeta"]);
    let tasks = |index: usize| -> Vec<_> {
        sites[index]
            .tasks
            .iter()
            .map(|task| task.task_id.clone().unwrap())
            .collect()
    };
    assert_eq!(tasks(0), ["a1", "a2"]);
    assert_eq!(tasks(1), ["b1"]);
    assert!(tasks(2).is_empty());
    assert_eq!(tasks(3), ["z1"]);
    assert_eq!(store.site("acme").unwrap().unwrap(), sites[0]);
}

#[test]
fn a_site_report_updates_the_site_and_its_history() {
    let (_dir, mut store) = with_run();
    let mut blocked = report("acme", Mode::Migrate, Some(Outcome::Blocked));
    blocked.checks = vec![
        check("CHECK_A", "FAILED", Some(true)),
        check("CHECK_B", "SUCCESS", None),
    ];
    store
        .transaction(|tx| tx.record_site_report("r1", &blocked, false))
        .unwrap();
    let site = store.site("acme").unwrap().unwrap();
    assert_eq!(site.last_mode, Some(Mode::Migrate));
    assert_eq!(site.last_outcome, Some(Outcome::Blocked));
    assert_eq!(site.migrated_at, None);
    let rows: Vec<(String, String, Option<bool>)> = store
        .conn
        .prepare("SELECT check_name, outcome, excludable FROM check_results ORDER BY check_name")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            ("CHECK_A".to_owned(), "FAILED".to_owned(), Some(true)),
            ("CHECK_B".to_owned(), "SUCCESS".to_owned(), None)
        ]
    );

    // The same site again in the same run: replaced, checks too.
    let mut succeeded = report("acme", Mode::Migrate, Some(Outcome::Succeeded));
    succeeded.checks = vec![check("CHECK_A", "SUCCESS", Some(true))];
    store
        .transaction(|tx| tx.record_site_report("r1", &succeeded, true))
        .unwrap();
    let site = store.site("acme").unwrap().unwrap();
    assert_eq!(site.last_outcome, Some(Outcome::Succeeded));
    assert_eq!(site.migrated_at, Some(at(9)));
    let (checks, failed): (i64, i64) = store
        .conn
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE outcome = 'FAILED') FROM check_results",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((checks, failed), (1, 0));
    let report = store.run_report("r1").unwrap().unwrap();
    assert_eq!(report.sites, [succeeded]);

    // A later check run does not forget the migration.
    store
        .transaction(|tx| {
            tx.begin_run(&run_info("r2", Mode::Check, 30))?;
            tx.record_site_report("r2", &report_for_check(), false)
        })
        .unwrap();
    let site = store.site("acme").unwrap().unwrap();
    assert_eq!(site.last_mode, Some(Mode::Check));
    assert_eq!(site.last_outcome, Some(Outcome::Warnings));
    assert_eq!(site.migrated_at, Some(at(9)));
}

#[test]
fn the_write_path_reuses_its_prepared_statements() {
    let (_dir, mut store) = with_run();
    for site in ["a", "b", "c", "d"] {
        store
            .transaction(|tx| tx.record_site_report("r1", &report(site, Mode::Check, None), false))
            .unwrap();
    }
    let statement = store
        .conn
        .prepare_cached(super::runs::UPSERT_SITE_RUN)
        .unwrap();
    assert_eq!(
        statement.get_status(rusqlite::StatementStatus::RePrepare),
        0,
        "numbering a site's report must not re-parse the statement each time"
    );
}

fn report_for_check() -> SiteReport {
    report("acme", Mode::Check, Some(Outcome::Warnings))
}

#[test]
fn a_running_site_report_has_no_outcome() {
    let (_dir, mut store) = with_run();
    store
        .transaction(|tx| {
            tx.record_site_report(
                "r1",
                &report("acme", Mode::Migrate, Some(Outcome::Failed)),
                false,
            )?;
            tx.record_site_report("r1", &report("acme", Mode::Migrate, None), false)
        })
        .unwrap();
    assert_eq!(store.site("acme").unwrap().unwrap().last_outcome, None);
}

#[test]
fn a_run_report_keeps_the_first_recorded_order_of_its_sites() {
    let (_dir, mut store) = with_run();
    store
        .transaction(|tx| {
            for site in ["zeta", "acme", "mid"] {
                tx.record_site_report("r1", &report(site, Mode::Migrate, None), false)?;
            }
            tx.record_site_report(
                "r1",
                &report("acme", Mode::Migrate, Some(Outcome::Succeeded)),
                true,
            )
        })
        .unwrap();
    let run = store.run_report("r1").unwrap().unwrap();
    let names: Vec<_> = run.sites.iter().map(|site| site.site.as_str()).collect();
    assert_eq!(names, ["zeta", "acme", "mid"]);
    assert_eq!(run.sites[1].outcome, Some(Outcome::Succeeded));
    assert_eq!(run.run, run_info("r1", Mode::Migrate, 0));
    assert_eq!(store.run_report("nope").unwrap(), None);
}

#[test]
fn finish_run_records_the_end_and_runs_are_newest_first() {
    let (_dir, mut store) = open();
    let mut done = finished(run_info("r1", Mode::Check, 0), 10);
    done.counts = BTreeMap::from([(Outcome::Succeeded, 3), (Outcome::Failed, 1)]);
    done.notes = vec!["interrupted".to_owned()];
    done.shard = Some("0/2".to_owned());
    done.exit_code = Some(1);
    store
        .transaction(|tx| {
            tx.begin_run(&run_info("r1", Mode::Check, 0))?;
            tx.finish_run(&done)?;
            tx.begin_run(&run_info("r2", Mode::Migrate, 20))
        })
        .unwrap();
    let runs = store.runs().unwrap();
    assert_eq!(runs, [run_info("r2", Mode::Migrate, 20), done.clone()]);
    assert_eq!(store.run("r1").unwrap(), Some(done));
    assert_eq!(store.latest_run().unwrap().unwrap().run_id, "r2");
    let error = store
        .transaction(|tx| tx.begin_run(&run_info("r1", Mode::Check, 40)))
        .unwrap_err();
    assert!(
        matches!(error, StateError::Sqlite { .. }),
        "run ids are unique"
    );
}

#[test]
fn previous_run_is_the_newest_finished_run_of_the_mode_started_before() {
    let (_dir, mut store) = open();
    store
        .transaction(|tx| {
            tx.begin_run(&finished(run_info("c1", Mode::Check, 0), 5))?;
            tx.begin_run(&finished(run_info("c2", Mode::Check, 10), 15))?;
            tx.begin_run(&finished(run_info("m1", Mode::Migrate, 20), 25))?;
            tx.begin_run(&run_info("c3-crashed", Mode::Check, 30))?;
            tx.begin_run(&run_info("c4", Mode::Check, 40))?;
            tx.record_site_report(
                "c2",
                &report("acme", Mode::Check, Some(Outcome::Warnings)),
                false,
            )
        })
        .unwrap();
    let previous = |mode, run| {
        store
            .previous_run(mode, run)
            .unwrap()
            .map(|report| report.run.run_id)
    };
    assert_eq!(previous(Mode::Check, "c4").as_deref(), Some("c2"));
    assert_eq!(previous(Mode::Check, "c2").as_deref(), Some("c1"));
    assert_eq!(previous(Mode::Check, "c1"), None);
    assert_eq!(previous(Mode::Migrate, "c4").as_deref(), Some("m1"));
    assert_eq!(previous(Mode::Migrate, "m1"), None);
    assert_eq!(previous(Mode::Check, "not-begun").as_deref(), Some("c2"));
    let report = store.previous_run(Mode::Check, "c4").unwrap().unwrap();
    assert_eq!(report.sites.len(), 1);
}

#[test]
fn runs_started_in_the_same_instant_keep_their_begin_order() {
    let (_dir, mut store) = open();
    store
        .transaction(|tx| {
            tx.begin_run(&finished(run_info("b", Mode::Check, 0), 1))?;
            tx.begin_run(&finished(run_info("a", Mode::Check, 0), 1))
        })
        .unwrap();
    let ids: Vec<_> = store
        .runs()
        .unwrap()
        .into_iter()
        .map(|run| run.run_id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
    let previous = store.previous_run(Mode::Check, "a").unwrap().unwrap();
    assert_eq!(previous.run.run_id, "b");
    assert_eq!(store.previous_run(Mode::Check, "b").unwrap(), None);
}

#[test]
fn a_corrupt_column_is_reported_with_its_name() {
    let (dir, mut store) = open();
    store
        .transaction(|tx| tx.record_job("acme", &job("j1")))
        .unwrap();
    Connection::open(dir.path().join("state").join(DB_FILE))
        .unwrap()
        .execute("UPDATE sites SET job_created_at = 'last tuesday'", [])
        .unwrap();
    let error = store.site("acme").unwrap_err();
    assert!(matches!(error, StateError::Corrupt(_)), "{error:?}");
    assert!(error.to_string().contains("job_created_at"), "{error}");
}

#[test]
fn exit_codes_follow_the_spec() {
    assert_eq!(
        StateError::Missing("x".into()).exit_code(),
        crate::exit::CANT_CREATE
    );
    assert_eq!(
        StateError::ReadOnly("x".into()).exit_code(),
        crate::exit::CANT_CREATE
    );
}

/// Journals a task of `kind` for `site` in run `r1` with id `task_id`; returns its intent id.
fn journal_task(store: &mut Store, site: &str, kind: TaskKind, task_id: &str) -> i64 {
    store
        .transaction(|tx| {
            let intent = tx.record_task_intent(site, "r1", "j1", &kind, at(5))?;
            tx.record_task_id(intent, task_id, at(5), false)?;
            Ok(intent)
        })
        .unwrap()
}

fn finished_task(kind: &str, task_id: &str, minute: u32) -> crate::report::model::TaskReport {
    crate::report::model::TaskReport {
        kind: kind.to_owned(),
        task_id: task_id.to_owned(),
        created_at: Some(at(5)),
        adopted: false,
        status: Some("FINISHED".to_owned()),
        outcome: Some("succeeded".to_owned()),
        finished_at: Some(at(minute)),
    }
}

#[test]
fn a_judged_task_stays_open_until_its_site_report_is_recorded() {
    let (_dir, mut store) = with_run();
    let intent = journal_task(&mut store, "acme", TaskKind::Migrate, "t1");
    store
        .transaction(|tx| tx.record_task_judgement(intent, Judgement::Failed))
        .unwrap();
    let task = store.site("acme").unwrap().unwrap().tasks[0].clone();
    assert_eq!(task.status.as_deref(), Some("FINISHED"));
    assert_eq!(task.judgement, Some(Judgement::Failed));
    assert_eq!(task.finished_at, None);
    assert!(
        is_finished_status(&task) && task.is_in_flight(),
        "a kill now leaves it for the next run to adopt, not to create anew"
    );

    // Detached (e.g. a second signal while collecting artifacts): still open.
    let mut detached = report("acme", Mode::Migrate, Some(Outcome::Detached));
    detached.tasks.push(finished_task("migrate", "t1", 6));
    store
        .transaction(|tx| tx.record_site_report("r1", &detached, false))
        .unwrap();
    assert!(store.site("acme").unwrap().unwrap().tasks[0].is_in_flight());

    let mut failed = report("acme", Mode::Migrate, Some(Outcome::Failed));
    failed.tasks.push(finished_task("migrate", "t1", 7));
    store
        .transaction(|tx| tx.record_site_report("r1", &failed, false))
        .unwrap();
    let task = store.site("acme").unwrap().unwrap().tasks[0].clone();
    assert_eq!(task.finished_at, Some(at(7)), "concluded with the report");
    assert!(!task.is_in_flight());
}

#[test]
fn a_judgement_needs_a_task_id() {
    let (_dir, mut store) = with_run();
    let intent = store
        .transaction(|tx| tx.record_task_intent("acme", "r1", "j1", &TaskKind::Check, at(5)))
        .unwrap();
    let error = store
        .transaction(|tx| tx.record_task_judgement(intent, Judgement::Succeeded))
        .unwrap_err();
    assert!(matches!(error, StateError::Refused(_)), "{error:?}");
}

#[test]
fn concluding_a_site_closes_older_and_superseded_tasks_but_not_newer_ones() {
    let (_dir, mut store) = with_run();
    // A precheck, a Migrate task that failed as not attached, its successor, and a newer
    // Check task of a later check run still running; another site's task untouched.
    journal_task(&mut store, "acme", TaskKind::Check, "c1");
    let first = journal_task(&mut store, "acme", TaskKind::Migrate, "m1");
    store
        .transaction(|tx| tx.record_task_judgement(first, Judgement::Failed))
        .unwrap();
    journal_task(&mut store, "acme", TaskKind::Migrate, "m2");
    journal_task(&mut store, "acme", TaskKind::Check, "c2");
    journal_task(&mut store, "beta", TaskKind::Migrate, "b1");
    let open_intent = store
        .transaction(|tx| tx.record_task_intent("beta", "r1", "j1", &TaskKind::Check, at(5)))
        .unwrap();

    // The site concludes with m2 only (this run resumed m2 and judged it).
    let mut done = report("acme", Mode::Migrate, Some(Outcome::Succeeded));
    done.tasks.push(finished_task("migrate", "m2", 8));
    store
        .transaction(|tx| tx.record_site_report("r1", &done, true))
        .unwrap();
    let concluded = |site: &str| -> BTreeMap<String, bool> {
        store
            .site(site)
            .unwrap()
            .unwrap()
            .tasks
            .iter()
            .filter_map(|task| Some((task.task_id.clone()?, task.finished_at.is_some())))
            .collect()
    };
    let acme = concluded("acme");
    assert!(acme["c1"], "the precheck before it");
    assert!(acme["m1"], "the Migrate task it superseded");
    assert!(acme["m2"], "the task the report names");
    assert!(
        !acme["c2"],
        "a newer task still runs: the next check run adopts it"
    );
    assert!(!concluded("beta")["b1"], "other sites are untouched");
    let (_, intent) = task_by_intent(&store, open_intent).unwrap();
    assert!(
        intent.needs_reconcile(),
        "intents are left to reconciliation"
    );
}

#[test]
fn the_services_outcome_and_the_judgement_are_kept_apart() {
    let (_dir, mut store) = with_run();
    let intent = journal_task(&mut store, "acme", TaskKind::Migrate, "t1");
    store
        .transaction(|tx| {
            tx.record_task_status(intent, "FINISHED", Some("INCOMPLETE"), None, None)?;
            tx.record_task_judgement(intent, Judgement::Warnings)
        })
        .unwrap();
    let task = store.site("acme").unwrap().unwrap().tasks[0].clone();
    assert_eq!(
        task.service_outcome.as_deref(),
        Some("INCOMPLETE"),
        "a word cmafleet does not know is kept as the service sent it"
    );
    assert_eq!(task.judgement, Some(Judgement::Warnings));

    // A later status read (an adopted task polled again) replaces the service's word only.
    store
        .transaction(|tx| tx.record_task_status(intent, "FINISHED", Some("SUCCESS"), None, None))
        .unwrap();
    let task = store.site("acme").unwrap().unwrap().tasks[0].clone();
    assert_eq!(task.service_outcome.as_deref(), Some("SUCCESS"));
    assert_eq!(task.judgement, Some(Judgement::Warnings));
}

#[test]
fn a_store_file_of_schema_version_5_opens_with_its_task_outcomes_split() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    std::fs::create_dir(&state_dir).unwrap();
    let db = state_dir.join(DB_FILE);
    {
        let conn = Connection::open(&db).unwrap();
        for sql in &MIGRATIONS[..5] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 5).unwrap();
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
