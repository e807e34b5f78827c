//! Migrate mode: the check level gates the data, each scope's outcome decides the site's, and
//! apps after core are a note (or, with `--wait-apps`, waited for).

use super::{FAST, notes, stages};
use crate::support::fleet::{Fleet, Row, instant};

/// Short, fixed durations so migrations take a fraction of a second at [`FAST`].
const QUICK: &str = r#"
    [defaults]
    check_duration = "3m"
    migrate_duration = "20m"
    apps_duration = "10m"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_migration_succeeds_with_every_scope_and_its_artifacts() {
    let scenario = format!(
        r#"{QUICK}
        [servers.wiki.scopes.spaces]
        items = {{ Pages = 1200, Attachments = 300 }}
        "#
    );
    let rows = vec![Row::jira("jira"), Row::confluence("wiki")];
    let fleet = Fleet::start(&scenario, FAST, rows).await;
    let output = fleet.run("migrate", "migrate", &[]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);

    let summary = fleet.summary("migrate");
    let tasks = fleet.tasks().await;
    assert_eq!(tasks.len(), 2, "one Migrate task per site and nothing else");
    for site in ["jira", "wiki"] {
        let row = &summary[site];
        assert_eq!(row["outcome"], "succeeded", "{site}: {}", row["message"]);
        assert_eq!(row["mode"], "migrate");
        let task = tasks
            .iter()
            .find(|task| task.server.as_deref() == Some(site))
            .unwrap();
        assert_eq!(task.task_type, "migrate");
        assert_eq!(row["task_id"], task.task_id);
        assert!(
            task.outcome
                .as_deref()
                .is_some_and(|o| o.eq_ignore_ascii_case("SUCCESS")),
            "{site}: {task:?}"
        );
        let report = fleet.site_report("migrate", site);
        let scopes = report["scopes"].as_array().expect("scopes recorded");
        assert!(!scopes.is_empty(), "{site}: scopes recorded");
        for scope in scopes {
            assert_eq!(scope["status"], "FINISHED", "{site}: {scope}");
        }
        let artifacts = report["artifacts"].as_array().expect("artifacts listed");
        let saved: Vec<&str> = artifacts
            .iter()
            .filter_map(|artifact| artifact["saved_as"].as_str())
            .collect();
        assert!(
            !saved.is_empty(),
            "{site}: the finished task's artifacts were collected: {artifacts:?}"
        );
        for path in &saved {
            assert!(
                path.starts_with(&format!("artifacts/{site}@")),
                "{site}: one folder for the fleet, each file named after its site: {path}"
            );
        }
        for artifact in artifacts {
            assert_eq!(
                artifact["error"],
                serde_json::Value::Null,
                "{site}: {artifact}"
            );
            let path = fleet
                .report_dir("migrate")
                .join(artifact["saved_as"].as_str().unwrap());
            let bytes = std::fs::metadata(&path)
                .unwrap_or_else(|error| panic!("{site}: {}: {error}", path.display()))
                .len();
            assert!(bytes > 0, "{site}: {} is not empty", path.display());
            assert_eq!(artifact["bytes"], bytes, "{site}: size recorded");
        }
    }
    let wiki = fleet.site_report("migrate", "wiki");
    let spaces = wiki["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|scope| scope["name"] == "spaces")
        .expect("the spaces scope")
        .clone();
    assert_eq!(spaces["outcome"], "SUCCESS");
    let counters = fleet.counters().await;
    assert_eq!(counters.task_creates.by_type.get("migrate"), Some(&2));
    assert_eq!(counters.task_creates.by_type.get("check"), None);
    assert_eq!(counters.rate_limited.total, 0);

    // A second migrate run has nothing to do: already migrated, no new task.
    let again = fleet.run("migrate", "again", &[]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    let summary = fleet.summary("again");
    for site in ["jira", "wiki"] {
        assert_eq!(summary[site]["outcome"], "skipped");
        assert!(
            summary[site]["message"].contains("already migrated"),
            "{}",
            summary[site]["message"]
        );
    }
    assert_eq!(fleet.counters().await.task_creates.total, 2, "no new task");
    let remigrate = fleet
        .run("migrate", "remigrate", &["--remigrate", "--site", "jira"])
        .await;
    assert_eq!(remigrate.code, 0, "{}", remigrate.stderr);
    assert_eq!(fleet.summary("remigrate")["jira"]["outcome"], "succeeded");
    assert_eq!(
        fleet.counters().await.task_creates.total,
        3,
        "--remigrate creates one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_check_blocks_the_migration_and_no_scope_starts() {
    let scenario = format!(
        r#"{QUICK}
        [servers.fail.checks.MissingAttachments]
        outcome = "FAILED"
        excludable = false
        occurrences = ["ABC-12: attachment missing on disk"]
        "#
    );
    let fleet = Fleet::start(&scenario, FAST, vec![Row::jira("fail"), Row::jira("ok")]).await;
    let output = fleet.run("migrate", "migrate", &[]).await;
    assert_eq!(output.code, 1, "{}", output.stderr);
    let summary = fleet.summary("migrate");
    assert_eq!(
        summary["ok"]["outcome"], "succeeded",
        "one site's failure never stops another"
    );
    let row = &summary["fail"];
    assert_eq!(row["outcome"], "blocked");
    assert!(
        row["message"].contains("MissingAttachments"),
        "{}",
        row["message"]
    );
    assert!(
        row["message"].contains("no data moved"),
        "{}",
        row["message"]
    );
    assert_eq!(row["checks_failed"], "1");

    let task = fleet
        .tasks()
        .await
        .into_iter()
        .find(|task| task.server.as_deref() == Some("fail"))
        .unwrap();
    assert_eq!(task.task_type, "migrate");
    assert!(
        task.outcome
            .as_deref()
            .is_some_and(|o| o.eq_ignore_ascii_case("FAILED")),
        "{task:?}"
    );
    // What the service itself says: the data level never ran (no scope started: scopes
    // appear as they start, and one shown must be SKIPPED).
    let migrate = fleet
        .status_tree(&task.job_id, &task.task_id, "migrate")
        .await;
    let no_scopes = serde_json::Map::new();
    let scopes = migrate["children"].as_object().unwrap_or(&no_scopes);
    for (name, scope) in scopes {
        assert!(
            scope["outcome"]
                .as_str()
                .is_some_and(|o| o.eq_ignore_ascii_case("SKIPPED")),
            "scope {name} did not start: {scope}"
        );
    }
    let report = fleet.site_report("migrate", "fail");
    assert!(
        report["scopes"]
            .as_array()
            .is_none_or(|scopes| scopes.iter().all(|s| s["status"] != "IN_PROGRESS")),
        "no scope progressed: {}",
        report["scopes"]
    );
    assert!(
        !stages(&report).contains(&"apps".to_owned()),
        "{:?}",
        stages(&report)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_scope_fails_the_site_with_the_scope_named() {
    let scenario = format!(
        r#"{QUICK}
        [servers.stark.scopes.projects]
        outcome = "FAILED"
        message = "3 issues in ENG could not be imported"
        "#
    );
    let fleet = Fleet::start(&scenario, FAST, vec![Row::jira("stark"), Row::jira("ok")]).await;
    let output = fleet.run("migrate", "migrate", &[]).await;
    assert_eq!(output.code, 1, "{}", output.stderr);
    let summary = fleet.summary("migrate");
    assert_eq!(summary["ok"]["outcome"], "succeeded");
    let row = &summary["stark"];
    assert_eq!(row["outcome"], "failed");
    assert!(row["message"].contains("projects"), "{}", row["message"]);
    assert!(
        row["message"].contains("3 issues in ENG could not be imported"),
        "{}",
        row["message"]
    );
    assert!(
        output.stdout.contains("stark"),
        "the failed site is listed on stdout:\n{}",
        output.stdout
    );
    let report = fleet.site_report("migrate", "stark");
    let projects = report["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|scope| scope["name"] == "projects")
        .expect("the projects scope")
        .clone();
    assert_eq!(projects["outcome"], "FAILED");
    let names: Vec<&str> = report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(
        names.contains(&"error-log.txt"),
        "the error log is collected: {names:?}"
    );
    // A failed migration is not "done": the next run tries again.
    let again = fleet.run("migrate", "again", &["--site", "stark"]).await;
    assert_eq!(again.code, 1);
    assert_eq!(fleet.counters().await.by_server["stark"].task_creates, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_still_migrating_after_core_is_success_with_a_note() {
    let scenario = format!(
        r#"{QUICK}
        [servers.wayne]
        apps_duration = "10h"
        "#
    );
    let rows = vec![Row::jira("wayne").apps("com.tempoplugin.tempo-timesheets")];
    let fleet = Fleet::start(&scenario, FAST, rows).await;
    let output = fleet.run("migrate", "migrate", &[]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let summary = fleet.summary("migrate");
    assert_eq!(
        summary["wayne"]["outcome"], "succeeded",
        "{}",
        summary["wayne"]["message"]
    );
    assert_eq!(
        summary["wayne"]["message"],
        "migrated; still running after core: apps"
    );
    let report = fleet.site_report("migrate", "wayne");
    assert!(
        notes(&report).contains("still running after it: apps"),
        "a note says apps go on: {:?}",
        report["notes"]
    );
    assert!(!stages(&report).contains(&"apps".to_owned()));
    let task = &fleet.tasks().await[0];
    assert!(task.finished_at.is_some(), "core finished");
    assert_eq!(
        task.apps_finished_at, None,
        "apps still running when the run ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_apps_waits_for_app_data_after_core() {
    let scenario = format!(
        r#"{QUICK}
        [servers.wayne]
        apps_duration = "40m"
        "#
    );
    let rows = vec![Row::jira("wayne").apps("com.tempoplugin.tempo-timesheets")];
    let fleet = Fleet::start(&scenario, FAST, rows).await;
    let output = fleet.run("migrate", "migrate", &["--wait-apps"]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let report = fleet.site_report("migrate", "wayne");
    assert_eq!(report["outcome"], "succeeded", "{}", report["message"]);
    let stages = stages(&report);
    assert!(
        stages.contains(&"apps".to_owned()),
        "the site waited in stage apps: {stages:?}"
    );
    assert!(!notes(&report).contains("still running after it"));
    assert_eq!(report["message"], "migrated");
    let task = &fleet.tasks().await[0];
    let apps_done = instant(task.apps_finished_at.as_deref().expect("apps finished"));
    let site_done = instant(report["finished_at"].as_str().unwrap());
    assert!(
        site_done >= apps_done,
        "the site ended ({site_done}) after apps finished ({apps_done})"
    );
    let apps = report["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|scope| scope["name"] == "apps")
        .expect("the apps scope")
        .clone();
    assert_eq!(apps["status"], "FINISHED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precheck_gates_the_migrate_task() {
    let scenario = format!(
        r#"{QUICK}
        [servers.fail.checks.MissingAttachments]
        outcome = "FAILED"
        excludable = false
        [servers.warn.checks.AnonPermission]
        outcome = "WARNING"
        "#
    );
    let rows = vec![Row::jira("fail"), Row::jira("warn"), Row::jira("ok")];
    let fleet = Fleet::start(&scenario, FAST, rows).await;
    let output = fleet.run("migrate", "migrate", &["--precheck"]).await;
    assert_eq!(output.code, 1, "{}", output.stderr);
    let summary = fleet.summary("migrate");
    assert_eq!(summary["fail"]["outcome"], "blocked");
    assert!(
        summary["fail"]["message"].contains("precheck"),
        "{}",
        summary["fail"]["message"]
    );
    assert_eq!(
        summary["warn"]["outcome"], "warnings",
        "a warning passes the gate"
    );
    assert_eq!(summary["ok"]["outcome"], "succeeded");

    let tasks = fleet.tasks().await;
    let of = |server: &str| -> Vec<_> {
        tasks
            .iter()
            .filter(|task| task.server.as_deref() == Some(server))
            .collect()
    };
    let fail = of("fail");
    assert_eq!(fail.len(), 1, "only the Check task: {fail:?}");
    assert_eq!(fail[0].task_type, "check");
    for site in ["warn", "ok"] {
        let tasks = of(site);
        assert_eq!(
            tasks
                .iter()
                .map(|t| t.task_type.as_str())
                .collect::<Vec<_>>(),
            ["check", "migrate"],
            "{site}"
        );
        let check_done = instant(tasks[0].finished_at.as_deref().unwrap());
        let migrate_created = instant(&tasks[1].created_at);
        assert!(
            migrate_created >= check_done,
            "{site}: Migrate created after its precheck finished"
        );
        assert_eq!(
            summary[site]["task_id"], tasks[1].task_id,
            "the Migrate task is the site's"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_on_warnings_stops_a_warning_before_any_data_moves() {
    let scenario = format!(
        r#"{QUICK}
        [servers.warn.checks.AnonPermission]
        outcome = "WARNING"
        "#
    );
    let rows = vec![Row::jira("warn"), Row::jira("ok")];
    let fleet = Fleet::start(&scenario, FAST, rows).await;
    let output = fleet
        .run("migrate", "migrate", &["--block-on-warnings"])
        .await;
    assert_eq!(output.code, 1, "{}", output.stderr);
    let summary = fleet.summary("migrate");
    assert_eq!(summary["warn"]["outcome"], "blocked");
    assert!(summary["warn"]["message"].contains("AnonPermission"));
    assert!(summary["warn"]["message"].contains("no data moved"));
    assert_eq!(summary["ok"]["outcome"], "succeeded");
    let counters = fleet.counters().await;
    assert_eq!(
        counters.by_server["warn"].task_creates, 1,
        "the precheck only"
    );
    assert_eq!(
        fleet
            .tasks()
            .await
            .iter()
            .filter(|task| task.task_type == "migrate")
            .map(|task| task.server.clone().unwrap())
            .collect::<Vec<_>>(),
        ["ok"],
        "no Migrate task for the warning site"
    );
}

/// Waits until the simulator's apps of a task have ended (the one task whose apps run on).
async fn apps_ended(fleet: &Fleet) {
    fleet
        .wait_for_tasks("the apps to end", |tasks| {
            tasks.iter().any(|task| task.apps_finished_at.is_some())
        })
        .await;
}

/// The Jira site `wayne` (its scenario `QUICK`, apps that run 2 hours after the core, and
/// `more`) migrated by the run `first`, which ends `outcome` with the apps still migrating —
/// marked so in summary.csv.
async fn migrated_while_apps_run(more: &str, outcome: &str) -> Fleet {
    let scenario = format!("{QUICK}\n[servers.wayne]\napps_duration = \"2h\"\n{more}");
    let rows = vec![Row::jira("wayne").apps("com.tempoplugin.tempo-timesheets")];
    let fleet = Fleet::start(&scenario, FAST, rows).await;
    let first = fleet.run("migrate", "first", &[]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let row = &fleet.summary("first")["wayne"];
    assert_eq!(row["outcome"], outcome, "{}", row["message"]);
    assert_eq!(row["still_running"], "apps", "marked in summary.csv");
    fleet
}

/// Apps still migrating when the run ends: the site is migrated, marked as still running
/// after core in every report, and followed up. A check run meanwhile starts no task on the
/// server; the next migrate run reads the task again (creating nothing) and, the apps having
/// ended with a failure, makes the site `warnings` in the service's words; after that the
/// site is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_still_migrating_are_followed_up_by_later_runs_without_a_new_task() {
    let fleet = migrated_while_apps_run(
        r#"
        [servers.wayne.scopes.apps]
        outcome = "FAILED"
        message = "Tempo Timesheets could not be migrated: its cloud app is not installed"
        "#,
        "succeeded",
    )
    .await;
    let report = fleet.site_report("first", "wayne");
    assert_eq!(report["still_running"], serde_json::json!(["apps"]));

    // A check run while the apps run: no Check task beside the Migrate task.
    let check = fleet.run("check", "check", &[]).await;
    assert_eq!(check.code, 0, "{}", check.stderr);
    let row = &fleet.summary("check")["wayne"];
    assert_eq!(row["outcome"], "skipped", "{}", row["message"]);
    assert!(
        row["message"].contains("still migrates apps"),
        "{}",
        row["message"]
    );
    assert_eq!(fleet.counters().await.task_creates.total, 1);

    apps_ended(&fleet).await;
    let second = fleet.run("migrate", "second", &[]).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let row = &fleet.summary("second")["wayne"];
    assert_eq!(row["outcome"], "warnings", "{}", row["message"]);
    assert!(
        row["message"].contains(
            "apps FAILED: Tempo Timesheets could not be migrated: its cloud app is not installed"
        ),
        "{}",
        row["message"]
    );
    assert_eq!(row["still_running"], "");
    assert_eq!(
        fleet.counters().await.task_creates.total,
        1,
        "the follow-up created no task"
    );

    let third = fleet.run("migrate", "third", &[]).await;
    assert_eq!(third.code, 0, "{}", third.stderr);
    let row = &fleet.summary("third")["wayne"];
    assert_eq!(row["outcome"], "skipped", "done now: {}", row["message"]);
    assert!(
        row["message"].contains("already migrated"),
        "{}",
        row["message"]
    );
    assert_eq!(fleet.counters().await.task_creates.total, 1);
}

/// A migration that warned keeps its warning when a later run follows up its apps and they
/// end well: the follow-up adds "the apps finished", it does not turn the site `succeeded`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warned_migration_stays_warnings_when_its_apps_end_well() {
    let fleet = migrated_while_apps_run(
        r#"
        [servers.wayne.checks.AnonPermission]
        outcome = "WARNING"
        "#,
        "warnings",
    )
    .await;
    apps_ended(&fleet).await;
    let second = fleet.run("migrate", "second", &[]).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let row = &fleet.summary("second")["wayne"];
    assert_eq!(row["outcome"], "warnings", "{}", row["message"]);
    assert!(
        row["message"].contains("finished after the core"),
        "{}",
        row["message"]
    );
    assert_eq!(row["still_running"], "");
    assert_eq!(fleet.counters().await.task_creates.total, 1);
}

/// `status --refresh` reads again the apps of a site whose migration ended while they ran
/// (with the latest migrate run's inventory and API URL), creating nothing, and shows how
/// they ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_refresh_follows_up_apps_without_a_new_task() {
    let scenario = format!(
        r#"{QUICK}
        [servers.wayne]
        apps_duration = "1h"
        "#
    );
    let rows = vec![
        Row::jira("wayne").apps("com.tempoplugin.tempo-timesheets"),
        Row::jira("plain"),
    ];
    let fleet = Fleet::start(&scenario, FAST, rows).await;
    let first = fleet.run("migrate", "first", &[]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(fleet.summary("first")["wayne"]["still_running"], "apps");
    apps_ended(&fleet).await;
    let state_dir = fleet.state_dir();
    let refreshed = fleet
        .cli_run(&[
            "status",
            "--refresh",
            "--format",
            "json",
            "--state-dir",
            state_dir.to_str().unwrap(),
        ])
        .await;
    assert_eq!(refreshed.code, 0, "{}", refreshed.stderr);
    assert!(
        refreshed
            .stderr
            .contains("refresh: reading again the apps of 1 site(s): wayne"),
        "{}",
        refreshed.stderr
    );
    let status: serde_json::Value =
        serde_json::from_str(&refreshed.stdout).unwrap_or_else(|error| {
            panic!(
                "stdout is the status JSON alone ({error}): {}",
                refreshed.stdout
            )
        });
    let wayne = status["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|site| site["site"] == "wayne")
        .unwrap();
    assert_eq!(wayne["outcome"], "succeeded", "{wayne}");
    let counters = fleet.counters().await;
    assert_eq!(
        counters.task_creates.total, 2,
        "one Migrate task a site, none more"
    );
    // Nothing is left to follow up.
    let again = fleet
        .cli_run(&[
            "status",
            "--refresh",
            "--state-dir",
            state_dir.to_str().unwrap(),
        ])
        .await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("refresh: no site has apps still migrating"),
        "{}",
        again.stderr
    );
}
