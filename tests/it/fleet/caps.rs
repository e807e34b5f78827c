//! Caps and limits: one task at a time per source server (or `--per-server N`), at most
//! `--concurrency` sites in flight, no 429 for a correctly configured run, waves in inventory
//! order, and `--wave`/`--site` selection.

use chrono::{DateTime, Utc};

use super::FAST;
use crate::support::fleet::{Fleet, Row, instant, send_signal};
use cmafleet::sim::SimTask;

/// The most tasks that ran at once, from the simulator's creation and finish instants.
fn max_overlap(tasks: &[SimTask]) -> usize {
    let mut edges: Vec<(DateTime<Utc>, i32)> = Vec::new();
    for task in tasks {
        edges.push((instant(&task.created_at), 1));
        let finished = task.finished_at.as_deref().expect("every task finished");
        edges.push((instant(finished), -1));
    }
    // A finish and a start at the same instant do not overlap.
    edges.sort();
    let (mut running, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        running += step;
        most = most.max(running);
    }
    most as usize
}

/// Four rows on one server, each to its own cloud site.
fn one_server_rows() -> Vec<Row> {
    (1..=4)
        .map(|n| {
            Row::jira(&format!("big-{n}"))
                .server("big")
                .cloud(&format!("https://big-{n}.atlassian.net"))
        })
        .collect()
}

/// Checks of 20 simulated minutes (a third of a second): tasks started moments apart overlap
/// even on a busy machine.
const LONG_CHECKS: &str = r#"
    [defaults]
    check_duration = "20m"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_never_runs_two_tasks_at_once() {
    let fleet = Fleet::start(LONG_CHECKS, FAST, one_server_rows()).await;
    let output = fleet.run("check", "check", &[]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let counters = fleet.counters().await;
    assert_eq!(counters.task_creates.total, 4);
    assert_eq!(
        counters.by_server["big"].max_running_tasks, 1,
        "the simulator never saw two tasks at once on the server"
    );
    assert_eq!(max_overlap(&fleet.tasks().await), 1);
    assert!(
        fleet
            .summary("check")
            .values()
            .all(|row| row["outcome"] == "succeeded"),
        "every row ran, one after another"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_server_two_allows_two_tasks_and_no_more() {
    let fleet = Fleet::start(LONG_CHECKS, FAST, one_server_rows()).await;
    let output = fleet.run("check", "check", &["--per-server", "2"]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let counters = fleet.counters().await;
    assert_eq!(counters.task_creates.total, 4);
    let most = counters.by_server["big"].max_running_tasks;
    assert!(most <= 2, "at most two tasks at once, saw {most}");
    assert_eq!(
        most, 2,
        "two tasks of twenty simulated minutes, created moments apart, overlap"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_bounds_the_sites_in_flight() {
    let rows: Vec<Row> = (1..=6).map(|n| Row::jira(&format!("site-{n}"))).collect();
    let fleet = Fleet::start(LONG_CHECKS, FAST, rows).await;
    let output = fleet.run("check", "check", &["--concurrency", "2"]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let tasks = fleet.tasks().await;
    assert_eq!(tasks.len(), 6);
    let most = max_overlap(&tasks);
    assert!(
        most <= 2,
        "at most two sites in flight, saw {most} tasks at once"
    );
    assert_eq!(most, 2, "both slots were used");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sites_of_one_cloud_user_receive_no_429() {
    // Eight sites of one user: more creates than one window of its create-job and
    // create-task limits (5 per minute each), and many reads. A slower time scale than usual
    // makes a window last 100 ms, so a busy machine's scheduling hiccups stay well inside
    // the harness's slack (see RATE_SLACK).
    let scenario = r#"
        [defaults]
        check_duration = "1m"
        migrate_duration = "2m"
    "#;
    let rows: Vec<Row> = (1..=8)
        .map(|n| Row::jira(&format!("site-{n:02}")))
        .collect();
    let fleet = Fleet::start(scenario, 600.0, rows).await;
    let output = fleet.run("migrate", "migrate", &["--precheck"]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let counters = fleet.counters().await;
    assert_eq!(counters.task_creates.total, 16);
    assert_eq!(
        counters
            .jobs_created
            .values()
            .flat_map(|by_url| by_url.values())
            .sum::<u64>(),
        8
    );
    assert_eq!(
        counters.rate_limited.total, 0,
        "paced to the limits, never refused: {:?}",
        counters.rate_limited
    );
    assert!(
        counters
            .repeated_task_creates()
            .iter()
            .all(|(_, _, n)| *n == 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waves_run_in_inventory_order() {
    let rows = vec![
        Row::jira("north-1").wave("north"),
        Row::jira("north-2").wave("north"),
        Row::jira("north-3").wave("north"),
        Row::jira("south-1").wave("south"),
        Row::jira("south-2").wave("south"),
    ];
    let scenario = r#"
        [defaults]
        check_duration = "3m"
        [servers.north-3]
        check_duration = "15m"
    "#;
    let fleet = Fleet::start(scenario, FAST, rows).await;
    let output = fleet.run("check", "check", &[]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let tasks = fleet.tasks().await;
    let of_wave = |wave: &str| -> Vec<&SimTask> {
        tasks
            .iter()
            .filter(|task| task.server.as_deref().is_some_and(|s| s.starts_with(wave)))
            .collect()
    };
    let north_done = of_wave("north")
        .iter()
        .map(|task| instant(task.finished_at.as_deref().unwrap()))
        .max()
        .unwrap();
    let north_sites_done = ["north-1", "north-2", "north-3"]
        .iter()
        .map(|site| {
            instant(
                fleet.site_report("check", site)["finished_at"]
                    .as_str()
                    .unwrap(),
            )
        })
        .max()
        .unwrap();
    for task in of_wave("south") {
        let created = instant(&task.created_at);
        assert!(
            created >= north_done && created >= north_sites_done,
            "{:?} was created at {created}, before wave north ended ({north_sites_done})",
            task.server
        );
    }
    // The first wave's sites ran side by side (the wave is not serialised).
    assert!(max_overlap(&of_wave("north").into_iter().cloned().collect::<Vec<_>>()) >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wave_and_site_select_rows() {
    let rows = vec![
        Row::jira("a").wave("one"),
        Row::jira("b").wave("one"),
        Row::jira("c").wave("two"),
        Row::confluence("d").wave("two"),
    ];
    let fleet = Fleet::start("", FAST, rows).await;
    let output = fleet.run("check", "wave", &["--wave", "two"]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert_eq!(
        fleet.summary("wave").keys().collect::<Vec<_>>(),
        ["c", "d"],
        "only wave two"
    );
    let output = fleet
        .run("check", "site", &["--site", "a", "--site", "d"])
        .await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert_eq!(fleet.summary("site").keys().collect::<Vec<_>>(), ["a", "d"]);
    let mut servers: Vec<String> = fleet
        .tasks()
        .await
        .into_iter()
        .filter_map(|task| task.server)
        .collect();
    servers.sort();
    assert_eq!(
        servers,
        ["a", "c", "d", "d"],
        "tasks only for selected rows"
    );

    let output = fleet
        .run("check", "nosuch", &["--site", "a", "--site", "zz"])
        .await;
    assert_eq!(output.code, 2, "{}", output.stderr);
    assert!(output.stderr.contains("zz"), "{}", output.stderr);
    assert!(!fleet.report_dir("nosuch").exists());
}

/// Spawns `command` and interrupts it (SIGTERM) once the simulator holds its first task
/// (`what`), which is left running remotely.
async fn interrupt_once_a_task_runs(fleet: &Fleet, command: tokio::process::Command, what: &str) {
    let child = Fleet::spawn(command);
    fleet.wait_for_tasks(what, |tasks| tasks.len() == 1).await;
    send_signal(&child, "TERM");
    let interrupted = Fleet::wait(child).await;
    assert_eq!(interrupted.code, 143, "{}", interrupted.stderr);
}

/// Rows `first` and `second` on one server, and a check run of `second` alone interrupted
/// (SIGTERM) while its 30-minute Check task runs: the task is left running, the site
/// `detached` in the report dir `second-run`.
async fn second_left_running() -> Fleet {
    let scenario = r#"
        [defaults]
        check_duration = "30m"
    "#;
    let rows = vec![
        Row::jira("first").server("shared"),
        Row::jira("second")
            .server("shared")
            .cloud("https://second.atlassian.net"),
    ];
    let fleet = Fleet::start(scenario, FAST, rows).await;
    let mut command = fleet.command("check", "second-run");
    command.args(["--site", "second"]);
    interrupt_once_a_task_runs(&fleet, command, "second's task").await;
    assert_eq!(fleet.summary("second-run")["second"]["outcome"], "detached");
    fleet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_left_running_by_an_earlier_run_holds_its_servers_slot() {
    // `second` (later in the inventory) leaves a 30-minute task running; the next run must
    // not start `first` on the same server while that task still runs.
    let fleet = second_left_running().await;

    let output = fleet.run("check", "check", &[]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let counters = fleet.counters().await;
    assert_eq!(
        counters.task_creates.total, 2,
        "the running task was adopted"
    );
    assert_eq!(
        counters.by_server["shared"].max_running_tasks, 1,
        "the server never ran two tasks at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_run_leaves_a_migration_left_running_alone() {
    let scenario = r#"
        [defaults]
        check_duration = "2m"
        migrate_duration = "30m"
    "#;
    let fleet = Fleet::start(scenario, FAST, vec![Row::jira("busy"), Row::jira("idle")]).await;
    let mut command = fleet.command("migrate", "migrate");
    command.args(["--site", "busy"]);
    interrupt_once_a_task_runs(&fleet, command, "the Migrate task").await;

    let output = fleet.run("check", "check", &[]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let summary = fleet.summary("check");
    assert_eq!(summary["idle"]["outcome"], "succeeded");
    assert_eq!(summary["busy"]["outcome"], "skipped");
    assert!(
        summary["busy"]["message"].contains("--mode migrate"),
        "{}",
        summary["busy"]["message"]
    );
    let counters = fleet.counters().await;
    assert_eq!(
        counters.by_server["busy"].task_creates, 1,
        "no Check task beside it"
    );
    assert_eq!(counters.by_server["busy"].max_running_tasks, 1);

    let resumed = fleet.run("migrate", "resume", &["--site", "busy"]).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(fleet.summary("resume")["busy"]["outcome"], "succeeded");
    assert_eq!(
        fleet.counters().await.by_server["busy"].task_creates,
        1,
        "adopted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrate_run_waits_for_a_check_task_an_earlier_run_left_running() {
    // The check run is interrupted while its 30-minute Check task runs; a migrate run without
    // --precheck must let that task end before it starts the Migrate task on the server.
    let scenario = r#"
        [defaults]
        check_duration = "30m"
        migrate_duration = "10m"
    "#;
    let fleet = Fleet::start(scenario, FAST, vec![Row::jira("busy")]).await;
    interrupt_once_a_task_runs(&fleet, fleet.command("check", "check"), "the Check task").await;

    let output = fleet.run("migrate", "migrate", &[]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let summary = fleet.summary("migrate");
    assert_eq!(summary["busy"]["outcome"], "succeeded");
    let counters = fleet.counters().await;
    assert_eq!(
        counters.by_server["busy"].task_creates, 2,
        "the Check task adopted, one Migrate task"
    );
    assert_eq!(
        counters.by_server["busy"].max_running_tasks, 1,
        "the server never ran two tasks at once"
    );
    let site = fleet.site_report("migrate", "busy");
    assert!(
        site["notes"].to_string().contains("waited for"),
        "the report says why the migration started late: {}",
        site["notes"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_left_running_holds_its_server_against_runs_that_do_not_select_its_row() {
    // `second` leaves a 30-minute task running on the shared server; a run of `first` alone
    // does not poll that task, so it must not start a task beside it either.
    let fleet = second_left_running().await;

    let output = fleet
        .run("check", "first-alone", &["--site", "first"])
        .await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let first = &fleet.summary("first-alone")["first"];
    assert_eq!(first["outcome"], "skipped");
    assert!(
        first["message"].contains("`second`") && first["message"].contains("--site second"),
        "the message names the row holding the server: {}",
        first["message"]
    );
    assert_eq!(
        fleet.counters().await.task_creates.total,
        1,
        "no task beside second's"
    );

    let output = fleet.run("check", "both", &[]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let summary = fleet.summary("both");
    assert_eq!(summary["first"]["outcome"], "succeeded");
    assert_eq!(summary["second"]["outcome"], "succeeded");
    let counters = fleet.counters().await;
    assert_eq!(counters.task_creates.total, 2, "second's task adopted");
    assert_eq!(counters.by_server["shared"].max_running_tasks, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrate_run_creates_no_check_task_for_a_check_intent_whose_post_never_left() {
    // The check run dies with its Check task's intent journalled and the POST not sent: no
    // task holds the server, so the migrate run abandons the intent and migrates at once.
    let fleet = Fleet::start("", FAST, vec![Row::jira("busy")]).await;
    let mut command = fleet.command("check", "check");
    command.env(cmafleet::fleet::failpoint::VARIABLE, "task-intent");
    let crashed = Fleet::wait(Fleet::spawn(command)).await;
    assert_ne!(crashed.code, 0, "{}", crashed.stderr);
    assert_eq!(fleet.counters().await.task_creates.total, 0);

    let output = fleet.run("migrate", "migrate", &[]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert_eq!(fleet.summary("migrate")["busy"]["outcome"], "succeeded");
    let counters = fleet.counters().await;
    assert_eq!(
        counters.by_server["busy"].task_creates, 1,
        "the Migrate task only"
    );
    let site = fleet.site_report("migrate", "busy");
    assert!(
        !site["notes"].to_string().contains("waited for"),
        "{}",
        site["notes"]
    );
}
