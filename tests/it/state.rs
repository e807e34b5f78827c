//! The state store and run lock across processes, and `cmafleet status` on a real state dir.
//!
//! Cross-process tests spawn this test binary again to run [`process_helper`] (ignored in
//! normal runs), which takes the lock or commits to the store, says so on stdout, and waits
//! to be killed with SIGKILL — what `kill -9` does to a run.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use cmafleet::cma::wire::TaskKind;
use cmafleet::report::model::{CheckResult, RunInfo, SiteReport};
use cmafleet::state::{AttachRecord, JobRecord, LockError, RunLock, Store};
use cmafleet::vocab::{Mode, Outcome, Stage};

const HELPER_ENV: &str = "CMAFLEET_IT_STATE_HELPER";
const READY: &str = "STATE-HELPER-READY";

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 2, minute, 0).unwrap()
}

fn run_info(run_id: &str, mode: Mode) -> RunInfo {
    RunInfo::starting(
        run_id.to_owned(),
        mode,
        serde_json::json!({ "concurrency": 2 }),
        None,
        at(0),
    )
}

/// Journals a Migrate task for `site` in run `r1` and records its id, in one transaction.
fn commit_task(store: &mut Store, site: &str, task_id: &str) {
    store
        .transaction(|tx| {
            tx.begin_run(&run_info("r1", Mode::Migrate))?;
            tx.record_job(
                site,
                &JobRecord {
                    job_id: "job-1".into(),
                    definition_hash: "hash-1".into(),
                    created_at: at(1),
                },
            )?;
            let intent = tx.record_task_intent(site, "r1", "job-1", &TaskKind::Migrate, at(2))?;
            tx.record_task_id(intent, task_id, at(3), false)
        })
        .unwrap();
}

/// Not a test on its own: the other process of the cross-process tests.
#[test]
#[ignore = "helper process of the cross-process state tests, spawned by them"]
fn process_helper() {
    let Ok(order) = std::env::var(HELPER_ENV) else {
        return;
    };
    let (action, dir) = order.split_once(':').expect("action:dir");
    // Kept alive until the end of the process (which is a SIGKILL).
    let _held = match action {
        "lock" => Some(RunLock::acquire(Path::new(dir)).unwrap()),
        "commit" => {
            let mut store = Store::open(Path::new(dir)).unwrap();
            commit_task(&mut store, "acme", "task-from-killed-process");
            std::mem::forget(store);
            None
        }
        other => panic!("unknown helper action {other}"),
    };
    println!("{READY}");
    // Waits to be killed; gives up after a while so an orphan never lingers.
    std::thread::sleep(Duration::from_secs(120));
}

/// Starts [`process_helper`] in another process and waits until it has done `action`.
fn spawn_helper(action: &str, dir: &Path) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "state::process_helper",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, format!("{action}:{}", dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains(READY));
    if !ready {
        let output = child.wait_with_output().unwrap();
        panic!(
            "helper `{action}` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    child
}

fn sigkill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_second_lock_on_one_state_dir_fails_at_once_and_frees_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let first = RunLock::acquire(dir.path()).unwrap();
    match RunLock::acquire(dir.path()) {
        Err(LockError::Held { pid, path, .. }) => {
            assert_eq!(pid, std::process::id().to_string());
            assert!(path.ends_with("/lock"), "{path}");
        }
        other => panic!("expected Held, got {other:?}"),
    }
    drop(first);
    RunLock::acquire(dir.path()).expect("free after drop");
}

#[test]
fn a_lock_held_by_another_process_names_it_and_dies_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let holder = spawn_helper("lock", dir.path());
    let error = RunLock::acquire(dir.path()).unwrap_err();
    let LockError::Held {
        pid, started_at, ..
    } = &error
    else {
        panic!("expected Held, got {error:?}");
    };
    assert_eq!(pid, &holder.id().to_string());
    assert!(
        DateTime::parse_from_rfc3339(started_at).is_ok(),
        "{started_at}"
    );
    assert_eq!(error.exit_code(), 75);
    sigkill(holder);
    RunLock::acquire(dir.path()).expect("kill -9 leaves no stale lock");
}

#[test]
fn a_commit_survives_its_process_being_killed() {
    let dir = tempfile::tempdir().unwrap();
    sigkill(spawn_helper("commit", dir.path()));
    let store = Store::open_existing(dir.path()).unwrap();
    let site = store.site("acme").unwrap().expect("site recorded");
    let task = site.last_task(&TaskKind::Migrate).unwrap();
    assert_eq!(task.task_id.as_deref(), Some("task-from-killed-process"));
    assert!(task.is_in_flight(), "the next run adopts it");
}

#[test]
fn a_commit_survives_a_store_that_is_never_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    commit_task(&mut store, "acme", "task-1");
    std::mem::forget(store);
    let other = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let task: String = other
        .query_row("SELECT task_id FROM tasks WHERE site = 'acme'", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(task, "task-1");
}

/// A state dir after a finished check run (acme: warnings) and a migrate run killed while
/// beta's task ran and before gamma's create was confirmed.
fn prepared_state_dir(dir: &Path) {
    let mut store = Store::open(dir).unwrap();
    store
        .transaction(|tx| {
            let mut check_run = run_info("run-check", Mode::Check);
            tx.begin_run(&check_run)?;
            let mut acme = SiteReport::pending("acme", "jira", Mode::Check);
            acme.outcome = Some(Outcome::Warnings);
            acme.stage = Stage::Done;
            acme.checks.push(std::sync::Arc::new(CheckResult {
                name: "USERS_EMAIL".into(),
                status: "FINISHED".into(),
                outcome: "WARNING".into(),
                message: None,
                occurrences: Vec::new(),
                excludable: Some(true),
                description: None,
            }));
            let job = JobRecord {
                job_id: "job-acme".into(),
                definition_hash: "h".into(),
                created_at: at(1),
            };
            tx.record_job("acme", &job)?;
            let intent =
                tx.record_task_intent("acme", "run-check", "job-acme", &TaskKind::Check, at(2))?;
            tx.record_task_id(intent, "task-acme", at(2), false)?;
            tx.record_task_status(intent, "FINISHED", Some("WARNING"), Some(at(5)), None)?;
            tx.record_site_report("run-check", &acme, false)?;
            check_run.finished_at = Some(at(6));
            check_run.exit_code = Some(0);
            tx.finish_run(&check_run)?;

            tx.begin_run(&RunInfo {
                started_at: at(10),
                ..run_info("run-migrate", Mode::Migrate)
            })?;
            for site in ["beta", "gamma"] {
                let job_id = format!("job-{site}");
                tx.record_job(
                    site,
                    &JobRecord {
                        job_id: job_id.clone(),
                        definition_hash: "h".into(),
                        created_at: at(11),
                    },
                )?;
                tx.record_attach(
                    site,
                    &AttachRecord {
                        cloud_url: format!("https://{site}.atlassian.net"),
                        attached_at: at(12),
                        expires_at: None,
                    },
                )?;
                let intent = tx.record_task_intent(
                    site,
                    "run-migrate",
                    &job_id,
                    &TaskKind::Migrate,
                    at(13),
                )?;
                if site == "beta" {
                    tx.record_task_id(intent, "task-beta", at(13), false)?;
                    tx.record_task_status(intent, "IN_PROGRESS", None, None, Some("{}"))?;
                }
            }
            Ok(())
        })
        .unwrap();
}

fn status(dir: &Path, format: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cmafleet"))
        .args(["status", "--state-dir"])
        .arg(dir)
        .args(["--format", format])
        .env_remove("CMAFLEET_FORMAT")
        .env_remove("CMAFLEET_STATE_DIR")
        .output()
        .unwrap()
}

#[test]
fn status_shows_every_site_as_a_table_and_as_json() {
    let dir = tempfile::tempdir().unwrap();
    prepared_state_dir(dir.path());

    let table = status(dir.path(), "table");
    assert_eq!(table.status.code(), Some(0), "{table:?}");
    let text = String::from_utf8(table.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("latest run run-migrate (migrate): started 2026-05-01T02:10:00Z"),
        "{text}"
    );
    let header = lines
        .iter()
        .position(|line| line.starts_with("SITE"))
        .unwrap();
    let row = |index: usize| lines[header + index].split_whitespace().collect::<Vec<_>>();
    assert_eq!(
        row(0)[..7],
        ["SITE", "STAGE", "MODE", "OUTCOME", "JOB", "TASK", "TASK"]
    );
    assert_eq!(
        row(1)[..8],
        [
            "acme",
            "done",
            "check",
            "warnings",
            "job-acme",
            "task-acme",
            "FINISHED",
            "(WARNING)"
        ]
    );
    assert_eq!(
        row(2)[..7],
        [
            "beta",
            "migrate",
            "-",
            "running",
            "job-beta",
            "task-beta",
            "IN_PROGRESS"
        ]
    );
    assert_eq!(
        row(3)[..6],
        ["gamma", "reconcile", "-", "running", "job-gamma", "-"]
    );
    // Columns line up: every row has its STAGE where the header has it.
    let stage_column = lines[header].find("STAGE").unwrap();
    for line in &lines[header + 1..header + 4] {
        assert_ne!(line.as_bytes()[stage_column], b' ', "{line}");
        assert_eq!(line.as_bytes()[stage_column - 1], b' ', "{line}");
    }
    assert!(text.contains("3 sites: warnings 1, running 2"), "{text}");

    let json = status(dir.path(), "json");
    assert_eq!(json.status.code(), Some(0), "{json:?}");
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["latest_run"]["run_id"], "run-migrate");
    let sites = json["sites"].as_array().unwrap();
    let names: Vec<_> = sites
        .iter()
        .map(|site| site["site"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme", "beta", "gamma"]);
    assert_eq!(sites[1]["stage"], "migrate");
    assert_eq!(sites[1]["task_id"], "task-beta");
    assert_eq!(sites[1]["task_status"], "IN_PROGRESS");
    assert_eq!(sites[2]["stage"], "reconcile");
    assert_eq!(json["counts"]["warnings"], 1);
    assert_eq!(json["counts"]["running"], 2);
}

#[test]
fn status_without_a_store_exits_73_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let output = status(&missing, "table");
    assert_eq!(output.status.code(), Some(73), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: no state store in "), "{stderr}");
    assert!(
        stderr.contains("nothing-here (no state.db there)"),
        "{stderr}"
    );
    // Nothing on stdout but the same error (for cron).
    assert_eq!(String::from_utf8_lossy(&output.stdout), stderr);
    assert!(!missing.exists());
}

#[test]
fn status_on_a_store_from_a_newer_cmafleet_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    rusqlite::Connection::open(dir.path().join("state.db"))
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let output = status(dir.path(), "json");
    assert_eq!(output.status.code(), Some(78), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("upgrade cmafleet"), "{stderr}");
}
