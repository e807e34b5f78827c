//! Check mode: each server's checks become the site's outcome, named in every report.

use chrono::Timelike;

use super::{FAST, summary_header};
use crate::support::fleet::{Fleet, Row, instant};

const MIXED: &str = r#"
    [servers.warn.checks.AnonPermission]
    outcome = "WARNING"
    occurrences = ["project ABC is browsable by anonymous users"]
    [servers.fail.checks.MissingAttachments]
    outcome = "FAILED"
    excludable = false
    occurrences = ["ABC-12: attachment missing on disk", "ABC-40: attachment missing on disk"]
    [servers.offline]
    connected = false
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_run_over_a_mixed_fleet_names_each_outcome() {
    let rows = vec![
        Row::jira("healthy"),
        Row::jira("warn").basic_auth(),
        Row::jira("fail"),
        Row::confluence("offline").user("bob@example.com"),
    ];
    let fleet = Fleet::start(MIXED, FAST, rows).await;
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

    let fail = fleet.site_report("check", "fail");
    let check = fail["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "MissingAttachments")
        .expect("the failed check is in the site report");
    assert_eq!(check["outcome"], "FAILED");
    assert_eq!(check["excludable"], false);
    assert_eq!(
        check["occurrences"],
        serde_json::json!([
            "ABC-12: attachment missing on disk",
            "ABC-40: attachment missing on disk"
        ])
    );
    assert!(
        summary["fail"]["message"].contains("MissingAttachments"),
        "the summary names the failed check: {:?}",
        summary["fail"]["message"]
    );
    assert_eq!(summary["fail"]["failed_check_names"], "MissingAttachments");
    let html = fleet.report_text("check", "report.html");
    assert!(html.contains("MissingAttachments"));
    assert!(
        html.contains("ABC-12: attachment missing on disk"),
        "report.html shows the occurrences"
    );
    let markdown = fleet.report_text("check", "summary.md");
    assert!(markdown.contains("MissingAttachments"));

    assert!(
        summary["offline"]["message"].contains("not connected"),
        "the not-connected site says why: {:?}",
        summary["offline"]["message"]
    );
    let offline = fleet.site_report("check", "offline");
    assert!(
        !offline["errors"].as_array().unwrap().is_empty(),
        "the refused attach is kept as an error"
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
    assert_eq!(counters.task_creates.by_type.get("check"), Some(&3));
    assert_eq!(counters.by_server["offline"].attach_refused, 1);
    assert_eq!(counters.by_server["offline"].task_creates, 0);
    assert_eq!(
        counters.rate_limited.total, 0,
        "a correctly configured run receives no 429"
    );

    let run = fleet.run_json("check");
    assert_eq!(run["exit_code"], 1);
    assert_eq!(run["mode"], "check");
    assert_eq!(run["counts"]["succeeded"], 1);
    assert_eq!(run["counts"]["warnings"], 1);
    assert_eq!(run["counts"]["blocked"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_csv_has_the_spec_columns_and_the_ids_the_simulator_issued() {
    let rows = vec![
        Row::jira("healthy"),
        Row::jira("warn"),
        Row::jira("fail"),
        Row::confluence("offline"),
    ];
    let fleet = Fleet::start(MIXED, FAST, rows).await;
    let output = fleet.run("check", "check", &[]).await;
    assert_eq!(output.code, 1, "{}", output.stderr);

    let header = summary_header(&fleet, "check");
    assert_eq!(
        header[..11],
        [
            "site",
            "product",
            "mode",
            "outcome",
            "job_id",
            "task_id",
            "checks_failed",
            "checks_warning",
            "message",
            "started_at",
            "finished_at"
        ],
        "SPEC's eleven columns first, in order"
    );

    let summary = fleet.summary("check");
    assert_eq!(
        summary.keys().collect::<Vec<_>>(),
        ["fail", "healthy", "offline", "warn"],
        "one row per selected site"
    );
    let tasks = fleet.tasks().await;
    for (site, product, failed, warned) in [
        ("healthy", "jira", "0", "0"),
        ("warn", "jira", "0", "1"),
        ("fail", "jira", "1", "0"),
    ] {
        let row = &summary[site];
        assert_eq!(row["product"], product, "{site}");
        assert_eq!(row["mode"], "check", "{site}");
        assert_eq!(row["checks_failed"], failed, "{site}");
        assert_eq!(row["checks_warning"], warned, "{site}");
        let task = tasks
            .iter()
            .find(|task| task.server.as_deref() == Some(site))
            .unwrap_or_else(|| panic!("a task for {site}"));
        assert_eq!(
            row["task_id"], task.task_id,
            "{site}: the simulator's task id"
        );
        assert_eq!(row["job_id"], task.job_id, "{site}: the simulator's job id");
        assert_eq!(task.task_type, "check");
        let started = instant(&row["started_at"]);
        let finished = instant(&row["finished_at"]);
        assert!(started <= finished, "{site}: {started} <= {finished}");
        // The CSV has whole seconds; the site's JSON has the precise instant.
        let precise = instant(
            fleet.site_report("check", site)["finished_at"]
                .as_str()
                .unwrap(),
        );
        assert_eq!(finished, precise.with_nanosecond(0).unwrap(), "{site}");
        assert!(
            precise >= instant(task.finished_at.as_deref().expect("task finished")),
            "{site}: the site finished after its task"
        );
    }
    let offline = &summary["offline"];
    assert_eq!(offline["product"], "confluence");
    assert!(!offline["job_id"].is_empty(), "its job was created");
    assert_eq!(offline["task_id"], "", "no task without an attach");
    assert_eq!(offline["checks_failed"], "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_fleet_exits_zero_and_a_second_run_reuses_its_jobs() {
    let rows = vec![Row::jira("one"), Row::confluence("two")];
    let fleet = Fleet::start("", FAST, rows).await;
    let first = fleet.run("check", "first", &[]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let second = fleet.run("check", "second", &[]).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let (a, b) = (fleet.summary("first"), fleet.summary("second"));
    for site in ["one", "two"] {
        assert_eq!(a[site]["outcome"], "succeeded");
        assert_eq!(b[site]["outcome"], "succeeded");
        assert_eq!(a[site]["job_id"], b[site]["job_id"], "{site}: job reused");
        assert_ne!(
            a[site]["task_id"], b[site]["task_id"],
            "{site}: a new Check task"
        );
    }
    let counters = fleet.counters().await;
    assert_eq!(
        counters
            .jobs_created
            .values()
            .flat_map(|by_url| by_url.values())
            .sum::<u64>(),
        2,
        "one job per site across both runs"
    );
    assert_eq!(counters.task_creates.total, 4);
    assert!(
        first.stdout.contains("report.html"),
        "the run says where its report is:\n{}",
        first.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_on_warnings_blocks_a_warning_in_check_mode() {
    let scenario = r#"
        [servers.warn.checks.AnonPermission]
        outcome = "WARNING"
    "#;
    let fleet = Fleet::start(scenario, FAST, vec![Row::jira("warn"), Row::jira("ok")]).await;
    let output = fleet.run("check", "check", &["--block-on-warnings"]).await;
    assert_eq!(output.code, 1, "{}", output.stderr);
    let summary = fleet.summary("check");
    assert_eq!(summary["warn"]["outcome"], "blocked");
    assert!(summary["warn"]["message"].contains("AnonPermission"));
    assert_eq!(summary["ok"]["outcome"], "succeeded");
}
