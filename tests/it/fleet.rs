//! `cmafleet run` end to end against the simulator: outcomes, reports, what the simulator saw.

use crate::support::fleet::{Fleet, Row};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_run_over_a_mixed_fleet_names_each_outcome() {
    let scenario = r#"
        [servers.warn.checks.AnonPermission]
        outcome = "WARNING"
        [servers.fail.checks.MissingAttachments]
        outcome = "FAILED"
        excludable = false
        occurrences = ["ABC-12: attachment missing on disk"]
        [servers.offline]
        connected = false
    "#;
    let rows = vec![
        Row::jira("healthy"),
        Row::jira("warn"),
        Row::jira("fail"),
        Row::confluence("offline"),
    ];
    let fleet = Fleet::start(scenario, 3600.0, rows).await;
    let output = fleet.run("check", "check", &[]).await;
    assert_eq!(
        output.code, 1,
        "a blocked site makes exit 1\n{}",
        output.stderr
    );
    let summary = fleet.summary("check");
    let outcome = |site: &str| summary[site]["outcome"].clone();
    assert_eq!(outcome("healthy"), "succeeded");
    assert_eq!(outcome("warn"), "warnings");
    assert_eq!(outcome("fail"), "blocked");
    assert_eq!(outcome("offline"), "blocked");
    assert_eq!(summary["fail"]["checks_failed"], "1");
    let fail = fleet.site_report("check", "fail");
    let check = fail["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "MissingAttachments")
        .unwrap();
    assert_eq!(
        check["occurrences"][0],
        "ABC-12: attachment missing on disk"
    );
    let counters = fleet.counters().await;
    assert!(
        counters.repeated_task_creates().is_empty(),
        "no task created twice"
    );
    assert_eq!(
        counters.task_creates.total, 3,
        "no task for the site that could not attach"
    );
    assert_eq!(
        counters.rate_limited.total, 0,
        "a correctly configured run receives no 429"
    );
}
