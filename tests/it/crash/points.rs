//! One test per dangerous point of a migrate run: the run aborts there (or is SIGKILLed while
//! its tasks run), the next run resumes, and every site ends as in an uninterrupted run.

use std::time::Duration;

use super::{
    Fate, JournalRow, Kill, SIGABRT, SIGKILL, SiteSpec,
    assert_tasks_repeated_only_for_retried_sites, exit_code_of, journal, killed_run, run_notes,
    start, try_journal, verify,
};
use crate::support::fleet::{Fleet, Row};

/// Five sites, two cloud users, every fate.
fn reference_sites() -> Vec<SiteSpec> {
    let bob = "bob@example.com";
    vec![
        SiteSpec::new(Row::jira("ok-jira"), Fate::Succeeded),
        SiteSpec::new(
            Row::confluence("ok-conf")
                .user(bob)
                .apps("com.example.gadgets"),
            Fate::Succeeded,
        ),
        SiteSpec::new(Row::jira("warn-jira"), Fate::Warnings),
        SiteSpec::new(Row::jira("fail-jira").user(bob), Fate::Failed),
        SiteSpec::new(Row::jira("blocked-jira"), Fate::Blocked),
    ]
}

/// The run ids, oldest first.
fn run_ids(fleet: &Fleet) -> Vec<String> {
    let db = fleet.db();
    let mut statement = db
        .prepare("SELECT run_id FROM runs ORDER BY started_at, rowid")
        .unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Aborts a migrate run at `point`, runs again, checks the oracle; returns the fleet.
async fn crash_and_resume(point: &str) -> (Fleet, Vec<SiteSpec>) {
    let sites = reference_sites();
    let fleet = start(11, &sites, "").await;
    let crashed = killed_run(&fleet, "crashed", &[], &Kill::At(point.to_owned())).await;
    assert_eq!(
        crashed.signal,
        Some(SIGABRT),
        "the run must die at {point} (exit {:?})\n{}",
        crashed.code,
        crashed.stderr
    );
    let name = point.split(':').next().unwrap_or(point);
    assert!(
        crashed.stderr.contains(&format!("crashing at {name}")),
        "{}",
        crashed.stderr
    );
    let resumed = fleet.run("migrate", "resumed", &[]).await;
    assert_eq!(
        resumed.code,
        exit_code_of(&sites),
        "the resumed run ends like an uninterrupted one\n{}",
        resumed.stderr
    );
    let summary = fleet.summary("resumed");
    assert_eq!(summary.len(), sites.len(), "every site is in the report");
    (fleet, sites)
}

fn abandoned(journal: &[JournalRow]) -> Vec<&JournalRow> {
    journal.iter().filter(|row| row.abandoned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uninterrupted_run_gives_the_reference_outcomes() {
    let sites = reference_sites();
    let fleet = start(11, &sites, "").await;
    let output = fleet.run("migrate", "whole", &[]).await;
    assert_eq!(output.code, exit_code_of(&sites), "{}", output.stderr);
    let summary = fleet.summary("whole");
    for site in &sites {
        assert_eq!(
            summary[&site.row.site]["outcome"],
            site.fate.outcome(),
            "{}",
            site.row.site
        );
    }
    let noted = verify(&fleet, &sites, false, "uninterrupted").await;
    assert!(noted.is_empty(), "no job left unused: {noted:?}");
    let counters = fleet.counters().await;
    assert!(counters.repeated_task_creates().is_empty());
    assert_eq!(
        counters.task_creates.by_type.get("migrate").copied(),
        Some(sites.len() as u64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_a_job_create_the_next_run_reports_the_unused_job() {
    let (fleet, sites) = crash_and_resume("job-created").await;
    // Other sites may have journalled their job creates too when the first answer came.
    let noted = verify(&fleet, &sites, false, "job-created").await;
    let counters = fleet.counters().await;
    let doubled: Vec<&str> = sites
        .iter()
        .filter(|spec| Fleet::jobs_of(&counters, &spec.row) == 2)
        .map(|spec| spec.row.site.as_str())
        .collect();
    assert!(
        !doubled.is_empty(),
        "the job created before the kill stays unused; the next run made one more"
    );
    for site in &doubled {
        assert!(noted.contains(*site), "run.json names {site}: {noted:?}");
        let notes = fleet.site_report("resumed", site)["notes"].to_string();
        assert!(
            notes.contains("unused job"),
            "{site}'s report says so: {notes}"
        );
    }
    let notes = fleet.run_json("resumed")["notes"].to_string();
    assert!(
        notes.contains("job create interrupted"),
        "run.json says a job may be unused: {notes}"
    );
    assert!(counters.repeated_task_creates().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_a_job_intent_and_its_post_no_job_is_lost_or_doubled() {
    let (fleet, sites) = crash_and_resume("job-intent").await;
    let noted = verify(&fleet, &sites, false, "job-intent").await;
    assert!(
        !noted.is_empty(),
        "the intent is noticed (the API cannot list jobs)"
    );
    let counters = fleet.counters().await;
    let jobs: u64 = sites
        .iter()
        .map(|spec| Fleet::jobs_of(&counters, &spec.row))
        .sum();
    assert!(
        jobs < (sites.len() + noted.len()) as u64,
        "the crashing site's POST was never sent: {jobs} jobs, {noted:?} noted"
    );
    assert!(
        run_notes(&fleet)
            .iter()
            .any(|note| note.contains("job create interrupted"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_whose_post_never_left_is_abandoned_and_created_once() {
    let (fleet, sites) = crash_and_resume("task-intent").await;
    verify(&fleet, &sites, false, "task-intent").await;
    let runs = run_ids(&fleet);
    let journal = journal(&fleet);
    // The crashing site's intent, and any other site's whose POST had not left either.
    let given_up = abandoned(&journal);
    assert!(!given_up.is_empty(), "{journal:#?}");
    let tasks = fleet.tasks_by_site().await;
    for intent in given_up {
        assert_eq!(intent.run_id, runs[0], "journalled by the crashed run");
        assert_eq!(intent.task_id, None, "its POST never left");
        assert_eq!(intent.kind, "migrate");
        let successors: Vec<&JournalRow> = journal
            .iter()
            .filter(|row| row.site == intent.site && row.kind == "migrate" && !row.abandoned)
            .collect();
        assert_eq!(
            successors.len(),
            1,
            "one new intent for the site: {journal:#?}"
        );
        assert_eq!(successors[0].run_id, runs[1]);
        assert!(successors[0].task_id.is_some() && !successors[0].adopted);
        assert_eq!(
            tasks[&intent.site].len(),
            1,
            "{}: exactly one task was ever created",
            intent.site
        );
    }
    assert!(fleet.counters().await.repeated_task_creates().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_a_task_post_the_task_is_found_on_the_job_and_adopted() {
    let (fleet, sites) = crash_and_resume("task-created").await;
    verify(&fleet, &sites, false, "task-created").await;
    let runs = run_ids(&fleet);
    let journal = journal(&fleet);
    let adopted: Vec<&JournalRow> = journal.iter().filter(|row| row.adopted).collect();
    assert!(!adopted.is_empty(), "{journal:#?}");
    assert!(
        adopted.iter().all(|row| row.run_id == runs[0]),
        "the crashed run's intents, resolved from the task list: {journal:#?}"
    );
    assert!(fleet.counters().await.repeated_task_creates().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_task_id_is_recorded_the_task_is_resumed() {
    let (fleet, sites) = crash_and_resume("task-recorded").await;
    verify(&fleet, &sites, false, "task-recorded").await;
    let resumed = fleet.summary("resumed");
    let notes: Vec<String> = resumed
        .keys()
        .map(|site| fleet.site_report("resumed", site)["notes"].to_string())
        .collect();
    assert!(
        notes
            .iter()
            .any(|note| note.contains("resumed migrate task")),
        "{notes:?}"
    );
    assert!(fleet.counters().await.repeated_task_creates().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_polling_every_running_task_is_resumed() {
    for nth in [1, 7] {
        let point = format!("polling:{nth}");
        let (fleet, sites) = crash_and_resume(&point).await;
        verify(&fleet, &sites, false, &point).await;
        // By the 7th poll a blocked or failed site may have concluded; the next run tries it
        // again on its job. A task that was running at the kill is resumed, never repeated.
        assert_tasks_repeated_only_for_retried_sites(&fleet, &point).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_a_task_is_judged_the_next_run_concludes_from_it() {
    // At the 4th judgement some sites have concluded: the failed and blocked among them are
    // tried again by the next run, as any next run does (the oracle counts conclusions).
    for nth in [1, 4] {
        let point = format!("task-judged:{nth}");
        let (fleet, sites) = crash_and_resume(&point).await;
        verify(&fleet, &sites, false, &point).await;
        if nth == 1 {
            // No site had concluded: every task is the crashed run's, concluded by the next.
            let runs = run_ids(&fleet);
            let journal = journal(&fleet);
            assert!(
                journal
                    .iter()
                    .all(|row| row.run_id == runs[0] && row.concluded),
                "{point}: no new task: {journal:#?}"
            );
            assert!(fleet.counters().await.repeated_task_creates().is_empty());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_a_precheck_is_judged_the_next_run_goes_on_from_it() {
    let sites = reference_sites();
    let fleet = start(12, &sites, "").await;
    let crashed = killed_run(
        &fleet,
        "crashed",
        &["--precheck"],
        &Kill::At("task-judged:2".into()),
    )
    .await;
    assert_eq!(crashed.signal, Some(SIGABRT), "{}", crashed.stderr);
    let resumed = fleet.run("migrate", "resumed", &["--precheck"]).await;
    assert_eq!(resumed.code, exit_code_of(&sites), "{}", resumed.stderr);
    verify(&fleet, &sites, true, "precheck judged").await;
    let counters = fleet.counters().await;
    assert!(counters.repeated_task_creates().is_empty());
    assert_eq!(
        counters.task_creates.by_type.get("check").copied(),
        Some(sites.len() as u64),
        "one precheck per site"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_tasks_run_remotely_resumes_them() {
    let sites = reference_sites();
    let fleet = start(11, &sites, "").await;
    let mut command = fleet.command("migrate", "killed");
    command
        .current_dir(fleet.dir.path())
        .stdout(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    // Until the store shows a task with an id that no run concluded (it runs remotely).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no task became known"
        );
        let in_flight = try_journal(&fleet.state_db())
            .unwrap_or_default()
            .iter()
            .any(|row| row.task_id.is_some() && !row.concluded);
        if in_flight {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended before any task was in flight: {status}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(SIGKILL));
    let resumed = fleet.run("migrate", "resumed", &[]).await;
    assert_eq!(resumed.code, exit_code_of(&sites), "{}", resumed.stderr);
    verify(&fleet, &sites, false, "sigkill").await;
    assert_tasks_repeated_only_for_retried_sites(&fleet, "sigkill").await;
}
