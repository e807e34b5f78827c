//! `--override-checks`: sent as `excludeKeys` on the Migrate task, only for checks the site's
//! last check run marked excludable; anything else is refused before a task exists.

use super::FAST;
use crate::support::fleet::{Fleet, Row};

const SCENARIO: &str = r#"
    [defaults]
    check_duration = "3m"
    migrate_duration = "20m"
    [servers.anon.checks.AnonPermission]
    outcome = "FAILED"
    excludable = true
    occurrences = ["project ABC is browsable by anonymous users"]
    [servers.disk.checks.MissingAttachments]
    outcome = "FAILED"
    excludable = false
"#;

/// The `excludeKeys` a Migrate task was created with, as the cloud API lists it.
async fn exclude_keys(fleet: &Fleet, server: &str) -> Vec<String> {
    let task = fleet
        .tasks()
        .await
        .into_iter()
        .find(|task| task.server.as_deref() == Some(server) && task.task_type == "migrate")
        .unwrap_or_else(|| panic!("a Migrate task for {server}"));
    let listed = fleet.cloud_task(&task.job_id, &task.task_id).await;
    listed["payload"]["checkTypes"]["excludeKeys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|key| key.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_excludable_failed_check_is_overridden_and_the_site_migrates() {
    let fleet = Fleet::start(SCENARIO, FAST, vec![Row::jira("anon")]).await;
    let check = fleet.run("check", "check", &[]).await;
    assert_eq!(check.code, 1, "{}", check.stderr);
    assert_eq!(fleet.summary("check")["anon"]["outcome"], "blocked");

    let migrate = fleet
        .run(
            "migrate",
            "migrate",
            &["--override-checks", "AnonPermission"],
        )
        .await;
    assert_eq!(migrate.code, 0, "{}", migrate.stderr);
    let row = &fleet.summary("migrate")["anon"];
    assert_eq!(
        row["outcome"], "warnings",
        "overridden checks count as warnings: {}",
        row["message"]
    );
    assert!(
        row["message"].contains("AnonPermission"),
        "{}",
        row["message"]
    );
    assert_eq!(exclude_keys(&fleet, "anon").await, ["AnonPermission"]);
    let task = fleet
        .tasks()
        .await
        .into_iter()
        .find(|task| task.task_type == "migrate")
        .unwrap();
    assert!(
        task.outcome
            .as_deref()
            .is_some_and(|o| !o.eq_ignore_ascii_case("FAILED")),
        "the simulator migrated: {task:?}"
    );
    let check_level = fleet
        .status_tree(&task.job_id, &task.task_id, "check")
        .await;
    assert_eq!(
        check_level["children"]["AnonPermission"]["outcome"], "WARNING",
        "the service turned the overridden check into a warning"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_excludable_check_is_refused_before_any_task() {
    let rows = vec![Row::jira("disk"), Row::jira("anon")];
    let fleet = Fleet::start(SCENARIO, FAST, rows).await;
    let check = fleet.run("check", "check", &[]).await;
    assert_eq!(check.code, 1, "{}", check.stderr);
    let before = fleet.counters().await;

    let migrate = fleet
        .run(
            "migrate",
            "migrate",
            &["--override-checks", "MissingAttachments,AnonPermission"],
        )
        .await;
    assert_eq!(migrate.code, 1, "{}", migrate.stderr);
    let summary = fleet.summary("migrate");
    let row = &summary["disk"];
    assert_eq!(row["outcome"], "blocked");
    assert!(
        row["message"].contains("MissingAttachments")
            && row["message"].contains("cannot be overridden"),
        "a clear message: {}",
        row["message"]
    );
    let after = fleet.counters().await;
    assert_eq!(
        after.by_server["disk"].task_creates, before.by_server["disk"].task_creates,
        "no task created for the refused site"
    );
    assert_eq!(
        after.by_server["disk"].attaches,
        before.by_server["disk"].attaches
    );
    // The other site's override is legitimate: it migrates. (Both keys are sent there: its
    // last check run marked both excludable, though only AnonPermission failed.)
    assert_eq!(
        summary["anon"]["outcome"], "warnings",
        "{}",
        summary["anon"]["message"]
    );
    assert!(
        exclude_keys(&fleet, "anon")
            .await
            .contains(&"AnonPermission".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_without_any_check_run_is_refused_before_any_task() {
    let fleet = Fleet::start(SCENARIO, FAST, vec![Row::jira("anon")]).await;
    let migrate = fleet
        .run(
            "migrate",
            "migrate",
            &["--override-checks", "AnonPermission"],
        )
        .await;
    assert_eq!(migrate.code, 1, "{}", migrate.stderr);
    let row = &fleet.summary("migrate")["anon"];
    assert_eq!(row["outcome"], "blocked");
    assert!(row["message"].contains("check run"), "{}", row["message"]);
    assert_eq!(fleet.counters().await.task_creates.total, 0, "no task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precheck_records_excludability_for_the_override_in_the_same_run() {
    let fleet = Fleet::start(SCENARIO, FAST, vec![Row::jira("anon"), Row::jira("disk")]).await;
    let migrate = fleet
        .run(
            "migrate",
            "migrate",
            &["--precheck", "--override-checks", "AnonPermission"],
        )
        .await;
    assert_eq!(migrate.code, 1, "disk stays blocked\n{}", migrate.stderr);
    let summary = fleet.summary("migrate");
    assert_eq!(
        summary["anon"]["outcome"], "warnings",
        "the precheck's excludable failure is overridden: {}",
        summary["anon"]["message"]
    );
    assert_eq!(exclude_keys(&fleet, "anon").await, ["AnonPermission"]);
    let message = &summary["anon"]["message"];
    assert_eq!(
        message.matches("AnonPermission").count(),
        1,
        "each warning named once: {message}"
    );
    assert_eq!(summary["disk"]["outcome"], "blocked");
    assert_eq!(
        fleet.counters().await.by_server["disk"].task_creates,
        1,
        "the precheck only"
    );
}
