//! Attach expiry: an attach lasts 24 h (scaled here to minutes); a run re-attaches before a
//! task when the last attach is too old, and a task that fails as not attached is re-attached
//! and retried once — never more.

use super::{FAST, notes, stages};
use crate::support::fleet::{Fleet, Row, instant};

/// When each `attach` stage of a site started.
fn attach_starts(site: &serde_json::Value) -> Vec<chrono::DateTime<chrono::Utc>> {
    site["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|span| span["stage"] == "attach")
        .map(|span| instant(span["started_at"].as_str().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_precheck_that_outlasts_the_attach_re_attaches_before_the_migrate_task() {
    // The attach lasts 10 simulated minutes; the precheck takes 12.
    let scenario = r#"
        [servers.slow]
        attach_validity = "10m"
        check_duration = "12m"
        migrate_duration = "5m"
    "#;
    let fleet = Fleet::start(scenario, FAST, vec![Row::jira("slow")]).await;
    let output = fleet.run("migrate", "migrate", &["--precheck"]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let report = fleet.site_report("migrate", "slow");
    assert_eq!(report["outcome"], "succeeded", "{}", report["message"]);

    let counters = fleet.counters().await;
    assert_eq!(counters.by_server["slow"].attaches, 2, "attached again");
    assert_eq!(
        counters.task_creates.total, 2,
        "no task failed, none retried"
    );
    let tasks = fleet.tasks().await;
    let kinds: Vec<&str> = tasks.iter().map(|task| task.task_type.as_str()).collect();
    assert_eq!(kinds, ["check", "migrate"]);
    assert!(tasks.iter().all(|task| !task.not_attached));
    assert!(
        tasks[1]
            .outcome
            .as_deref()
            .is_some_and(|o| o.eq_ignore_ascii_case("SUCCESS")),
        "{:?}",
        tasks[1]
    );
    let attaches = attach_starts(&report);
    assert_eq!(attaches.len(), 2, "{:?}", stages(&report));
    let precheck_done = instant(tasks[0].finished_at.as_deref().unwrap());
    let migrate_created = instant(&tasks[1].created_at);
    assert!(
        attaches[1] >= precheck_done && attaches[1] <= migrate_created,
        "the second attach ({}) came after the precheck ({precheck_done}) and before the \
         Migrate task ({migrate_created})",
        attaches[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_attach_is_not_repeated_between_tasks() {
    let scenario = r#"
        [servers.quick]
        check_duration = "3m"
        migrate_duration = "5m"
    "#;
    let fleet = Fleet::start(scenario, FAST, vec![Row::jira("quick")]).await;
    let output = fleet.run("migrate", "migrate", &["--precheck"]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let counters = fleet.counters().await;
    assert_eq!(
        counters.by_server["quick"].attaches, 1,
        "one attach serves both tasks"
    );
    assert_eq!(counters.task_creates.total, 2);
    // A later run within the attach's validity reuses it too (the state store keeps it).
    let again = fleet.run("check", "check", &[]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(fleet.counters().await.by_server["quick"].attaches, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attach_that_lapses_mid_task_is_renewed_and_one_new_task_created() {
    // The attach lasts 20 minutes and the lapse fails running tasks. The precheck (11 min)
    // fits; the Migrate task, created under the same attach between minutes 11 and 18 (while
    // the attach is fresh), is still checking at minute 20 and fails as not attached.
    // Re-attached, the new Migrate task (15 min) fits. A slower time scale than usual gives
    // the 7 minutes of slack 350 ms of real time, so a busy machine cannot miss the window.
    let scenario = r#"
        [servers.lapse]
        attach_validity = "20m"
        attach_lapse_fails_tasks = true
        check_duration = "11m"
        migrate_duration = "4m"
    "#;
    let fleet = Fleet::start(scenario, 1200.0, vec![Row::jira("lapse")]).await;
    let output = fleet.run("migrate", "migrate", &["--precheck"]).await;
    let report = fleet.site_report("migrate", "lapse");
    assert_eq!(
        output.code,
        0,
        "{}\n{:#?}\n{}",
        report["message"],
        fleet.tasks().await,
        output.stderr
    );
    assert_eq!(report["outcome"], "succeeded", "{}", report["message"]);
    assert!(
        notes(&report).contains("re-attached"),
        "the retry is noted: {:?}",
        report["notes"]
    );

    let tasks = fleet.tasks().await;
    let kinds: Vec<&str> = tasks.iter().map(|task| task.task_type.as_str()).collect();
    assert_eq!(
        kinds,
        ["check", "migrate", "migrate"],
        "exactly one new task"
    );
    assert!(
        tasks[1]
            .outcome
            .as_deref()
            .is_some_and(|o| o.eq_ignore_ascii_case("FAILED")),
        "the first Migrate task failed: {:?}",
        tasks[1]
    );
    assert!(
        tasks[2]
            .outcome
            .as_deref()
            .is_some_and(|o| o.eq_ignore_ascii_case("SUCCESS")),
        "the new one migrated: {:?}",
        tasks[2]
    );
    assert_eq!(
        report["task_id"], tasks[2].task_id,
        "the site reports the task that counted"
    );
    let counters = fleet.counters().await;
    assert_eq!(counters.by_server["lapse"].attaches, 2);
    let attaches = attach_starts(&report);
    assert_eq!(attaches.len(), 2, "{:?}", stages(&report));
    assert!(attaches[1] <= instant(&tasks[2].created_at));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_server_id_fails_after_one_re_attach_and_one_retry() {
    // The server's real ID is not the one in the inventory: every task fails as not attached.
    let scenario = r#"
        [api]
        not_attached_delay = "1m"
        [servers.wrong]
        server_id = "RMJK-8WAW-JKMI-CNOY"
        check_duration = "3m"
    "#;
    let rows = vec![Row::jira("wrong"), Row::jira("right")];
    let fleet = Fleet::start(scenario, FAST, rows).await;
    let output = fleet.run("check", "check", &[]).await;
    assert_eq!(output.code, 1, "{}", output.stderr);
    let summary = fleet.summary("check");
    assert_eq!(summary["right"]["outcome"], "succeeded");
    let row = &summary["wrong"];
    assert_eq!(row["outcome"], "failed");
    assert!(
        row["message"].contains("not attached") || row["message"].contains("Server ID"),
        "{}",
        row["message"]
    );
    let wrong: Vec<_> = fleet
        .tasks()
        .await
        .into_iter()
        .filter(|task| task.server.is_none())
        .collect();
    assert_eq!(wrong.len(), 2, "one task and one retry, no more: {wrong:?}");
    assert!(wrong.iter().all(|task| task.not_attached));
    let counters = fleet.counters().await;
    assert_eq!(counters.by_server["wrong"].attaches, 2, "re-attached once");
    assert!(
        counters
            .repeated_task_creates()
            .iter()
            .all(|(_, _, n)| *n == 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attach_that_lapses_while_data_moves_is_renewed_and_the_migration_retried_once() {
    // The attach lasts 20 minutes. The precheck takes 5; the Migrate task, created under the
    // same attach at minute 5 (or a little later), checks for 5 and moves data for 11: the
    // attach lapses mid-data and fails the running scope with the not-attached message
    // ("… create the task again"). Re-attached, the new Migrate task (16 minutes) fits with
    // 4 minutes to spare — 200 ms of real time at this time scale, for a busy machine.
    let scenario = r#"
        [servers.lapse]
        attach_validity = "20m"
        attach_lapse_fails_tasks = true
        check_duration = "5m"
        migrate_duration = "11m"
    "#;
    let fleet = Fleet::start(scenario, 1200.0, vec![Row::jira("lapse")]).await;
    let output = fleet.run("migrate", "migrate", &["--precheck"]).await;
    let report = fleet.site_report("migrate", "lapse");
    let tasks = fleet.tasks().await;
    assert_eq!(
        tasks
            .iter()
            .map(|task| task.task_type.as_str())
            .collect::<Vec<_>>(),
        ["check", "migrate", "migrate"],
        "one new task after the lapse: {:?}",
        report["message"]
    );
    assert!(
        tasks[1]
            .outcome
            .as_deref()
            .is_some_and(|o| o.eq_ignore_ascii_case("FAILED")),
        "{:?}",
        tasks[1]
    );
    assert_eq!(output.code, 0, "{}\n{}", report["message"], output.stderr);
    assert_eq!(report["outcome"], "succeeded", "{}", report["message"]);
    assert_eq!(report["task_id"], tasks[2].task_id);
    assert!(
        notes(&report).contains("re-attached"),
        "{:?}",
        report["notes"]
    );
    assert_eq!(fleet.counters().await.by_server["lapse"].attaches, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_saves_a_token_on_a_server_that_was_never_connected() {
    let scenario = r#"
        [servers.offline]
        connected = false
        [servers.broken]
        connected = false
        save_token_fails = true
    "#;
    let rows = vec![Row::jira("offline"), Row::jira("broken"), Row::jira("fine")];
    let fleet = Fleet::start(scenario, FAST, rows).await;
    let output = fleet.run("check", "check", &["--connect"]).await;
    assert_eq!(output.code, 1, "{}", output.stderr);
    let summary = fleet.summary("check");
    assert_eq!(
        summary["offline"]["outcome"], "succeeded",
        "{}",
        summary["offline"]["message"]
    );
    assert!(notes(&fleet.site_report("check", "offline")).contains("connected the server"));
    assert_eq!(summary["fine"]["outcome"], "succeeded");
    let broken = &summary["broken"];
    assert!(
        broken["outcome"] == "blocked" || broken["outcome"] == "failed",
        "{broken:?}"
    );
    assert!(broken["message"].contains("token"), "{}", broken["message"]);
    assert_eq!(broken["task_id"], "");

    let counters = fleet.counters().await;
    assert_eq!(counters.by_server["offline"].attach_refused, 1);
    assert_eq!(counters.by_server["offline"].attaches, 1);
    assert_eq!(
        counters.by_server["fine"].attach_refused, 0,
        "no connect where none is needed"
    );
    assert_eq!(
        counters.by_route["POST /migrations/public/v1/token"]
            .values()
            .sum::<u64>(),
        2,
        "one token per server that needed one"
    );
    assert_eq!(counters.by_server["broken"].task_creates, 0);
}
