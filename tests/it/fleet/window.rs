//! The night window (`--no-new-tasks-after`) and `--deadline`: no task is created after the
//! window closes; at the deadline polling stops, running sites end `detached` (exit 3), and
//! the next run adopts their tasks — never a second one — and finishes them.

use super::FAST;
use crate::support::fleet::{Fleet, Row};

/// A night window that closed a minute ago, as an RFC 3339 instant.
fn closed_window() -> String {
    (chrono::Utc::now() - chrono::TimeDelta::minutes(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_night_window_skips_every_site_and_creates_nothing() {
    let rows = vec![Row::jira("one"), Row::confluence("two")];
    let fleet = Fleet::start("", FAST, rows).await;
    let window = closed_window();
    let output = fleet
        .run("migrate", "migrate", &["--no-new-tasks-after", &window])
        .await;
    assert_eq!(
        output.code, 0,
        "skipped sites keep exit 0\n{}",
        output.stderr
    );
    let summary = fleet.summary("migrate");
    for site in ["one", "two"] {
        assert_eq!(summary[site]["outcome"], "skipped");
        assert!(
            summary[site]["message"].contains("night window closed"),
            "{site}: the reason is given: {}",
            summary[site]["message"]
        );
        assert_eq!(summary[site]["task_id"], "");
    }
    let counters = fleet.counters().await;
    assert_eq!(counters.task_creates.total, 0);
    assert_eq!(counters.total, 0, "not even a job or an attach");
    assert_eq!(fleet.run_json("migrate")["counts"]["skipped"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_detaches_running_sites_and_the_next_run_adopts_their_tasks() {
    // Checks take 90 simulated minutes (1.5 s); the deadline comes after 600 ms.
    let scenario = r#"
        [defaults]
        check_duration = "90m"
        [servers.quick]
        check_duration = "1m"
        [servers.queued]
        check_duration = "1m"
    "#;
    let rows = vec![
        Row::jira("long-1").wave("a"),
        Row::jira("long-2").wave("a"),
        Row::jira("quick").wave("a"),
        // The next wave: it waits for the first and never starts before the deadline.
        Row::jira("queued").wave("b"),
    ];
    let fleet = Fleet::start(scenario, FAST, rows).await;
    let first = fleet.run("check", "first", &["--deadline", "600ms"]).await;
    assert_eq!(
        first.code, 3,
        "the deadline left sites detached (not 75: that is the lock)\n{}",
        first.stderr
    );
    let summary = fleet.summary("first");
    assert_eq!(summary["quick"]["outcome"], "succeeded");
    for site in ["long-1", "long-2"] {
        assert_eq!(summary[site]["outcome"], "detached", "{site}");
        assert!(
            !summary[site]["task_id"].is_empty(),
            "{site}: its task is known"
        );
    }
    assert_eq!(summary["queued"]["outcome"], "skipped");
    assert!(
        summary["queued"]["message"].contains("deadline"),
        "{}",
        summary["queued"]["message"]
    );
    let run = fleet.run_json("first");
    assert_eq!(run["exit_code"], 3);
    assert_eq!(run["counts"]["detached"], 2);
    let created = fleet.counters().await.task_creates.total;
    assert_eq!(created, 3);

    // The next run — even with the night window closed — polls the detached tasks to their
    // end; it creates no task.
    let window = closed_window();
    let second = fleet
        .run("check", "second", &["--no-new-tasks-after", &window])
        .await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let resumed = fleet.summary("second");
    for site in ["long-1", "long-2"] {
        assert_eq!(
            resumed[site]["outcome"], "succeeded",
            "{site}: {}",
            resumed[site]["message"]
        );
        assert_eq!(
            resumed[site]["task_id"], summary[site]["task_id"],
            "{site}: the same task, adopted"
        );
        let report = fleet.site_report("second", site);
        assert_eq!(report["tasks"][0]["adopted"], true, "{site}");
    }
    assert_eq!(resumed["queued"]["outcome"], "skipped");
    assert!(resumed["queued"]["message"].contains("night window"));
    let counters = fleet.counters().await;
    assert_eq!(counters.task_creates.total, created, "no new task");
    assert!(counters.repeated_task_creates().is_empty());

    // With the window open, the queued site finally runs.
    let third = fleet.run("check", "third", &["--site", "queued"]).await;
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert_eq!(fleet.summary("third")["queued"]["outcome"], "succeeded");
    assert_eq!(fleet.counters().await.task_creates.total, created + 1);
}
