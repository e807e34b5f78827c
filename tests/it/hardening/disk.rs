//! Disk faults: a report dir that cannot be written stops the run before any network call
//! (exit 73); a state store that refuses a write mid-run stops it cleanly (exit 73), the
//! database stays consistent, and the next run finishes every site without a duplicate.

use std::time::Duration;

use rusqlite::Connection;

use super::*;
use crate::support::fleet::{Fleet, Row};

/// Report dirs no one can create, not even root: under a regular file, and inside /proc.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_dir_that_cannot_be_written_exits_73_before_any_request() {
    let fleet = Fleet::start("", 3600.0, vec![Row::jira("acme"), Row::jira("globex")]).await;
    let file = fleet.dir.path().join("not-a-dir");
    std::fs::write(&file, "a file where the report dir's parent should be\n").unwrap();
    for report_dir in [file.join("reports"), "/proc/cmafleet-reports".into()] {
        let command = with_flag(
            &fleet.command("migrate", "unused"),
            "--report-dir",
            report_dir.as_os_str(),
        );
        let run = Fleet::output(command).await;
        assert_eq!(
            run.code,
            73,
            "{}: exit 73 (cannot create)\n{}",
            report_dir.display(),
            run.stderr
        );
        assert!(
            run.stderr.contains(&report_dir.display().to_string()),
            "the message names the dir: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    let counters = fleet.counters().await;
    assert_eq!(
        counters.total, 0,
        "no request reached the service: {counters:?}"
    );
}

/// A state dir that cannot be created is refused the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_dir_that_cannot_be_created_exits_73_before_any_request() {
    let fleet = Fleet::start("", 3600.0, vec![Row::jira("acme")]).await;
    let file = fleet.dir.path().join("not-a-dir");
    std::fs::write(&file, "x\n").unwrap();
    let state_dir = file.join("state");
    let command = with_flag(
        &fleet.command("check", "unused"),
        "--state-dir",
        state_dir.as_os_str(),
    );
    let run = Fleet::output(command).await;
    assert_eq!(run.code, 73, "{}", run.stderr);
    assert_eq!(fleet.counters().await.total, 0);
}

/// Mid-run, another connection makes every write to the task journal fail (a trigger, as
/// docs/state.md describes): the run stops with exit 73 and no panic; `state.db` passes
/// SQLite's integrity check and knows every task the service has; once the trigger is gone,
/// the next run adopts what was in flight and finishes every site, with no task twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_store_write_failure_mid_run_stops_cleanly_and_the_next_run_finishes() {
    let scenario = r#"
        [defaults]
        check_duration = "30m"
        migrate_duration = "2h"
    "#;
    let rows = vec![
        Row::jira("acme"),
        Row::jira("globex"),
        Row::confluence("initech"),
        Row::jira("umbrella"),
        Row::confluence("hooli"),
        Row::jira("stark"),
    ];
    let fleet = Fleet::start(scenario, 3600.0, rows).await;
    let db = fleet.state_dir().join("state.db");
    let child = fleet
        .command("migrate", "first")
        .args(["--precheck", "--concurrency", "3"])
        .spawn()
        .expect("cmafleet starts");
    // Once some tasks exist (and while others are still to come), break the journal.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while fleet.counters().await.task_creates.total < 2 {
        assert!(tokio::time::Instant::now() < deadline, "tasks were created");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    {
        let conn = Connection::open(&db).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER fail_task_inserts BEFORE INSERT ON tasks
               BEGIN SELECT RAISE(ABORT, 'injected write failure'); END;
             CREATE TRIGGER fail_task_updates BEFORE UPDATE ON tasks
               BEGIN SELECT RAISE(ABORT, 'injected write failure'); END;",
        )
        .unwrap();
    }
    let first = finish(child, Duration::from_secs(120)).await;
    assert_eq!(
        first.code, 73,
        "a refused write stops the run with exit 73\n{}",
        first.stderr
    );
    assert!(!first.stderr.contains("panicked"), "{}", first.stderr);
    assert!(
        first.stderr.contains("injected write failure"),
        "the store's message is shown: {}",
        first.stderr
    );
    {
        let conn = Connection::open(&db).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        // Every task the service holds is journalled: by id, or as an intent without one
        // (its answer was not recorded) that the next run reconciles.
        let known: Vec<String> = conn
            .prepare("SELECT task_id FROM tasks WHERE task_id IS NOT NULL")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let pending: i64 = conn
            .query_row(
                "SELECT count(*) FROM tasks WHERE task_id IS NULL AND abandoned = 0",
                [],
                |row| row.get(0),
            )
            .unwrap();
        let tasks = fleet.tasks().await;
        let unknown = tasks
            .iter()
            .filter(|task| !known.contains(&task.task_id))
            .count();
        assert!(
            unknown as i64 <= pending,
            "{unknown} task(s) of the service unknown to the store, {pending} open intent(s)"
        );
        conn.execute_batch("DROP TRIGGER fail_task_inserts; DROP TRIGGER fail_task_updates;")
            .unwrap();
    }
    let second = fleet.run("migrate", "second", &["--precheck"]).await;
    assert_all_succeeded(&fleet, "second", &second);
    assert_no_duplicate_tasks(&fleet).await;
    let counters = fleet.counters().await;
    assert_eq!(
        counters.task_creates.by_type.get("migrate").copied(),
        Some(6),
        "one Migrate task per site over both runs: {:?}",
        counters.task_creates
    );
}
