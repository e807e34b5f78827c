//! Check mode: each server's checks become the site's outcome, named in every report.

use chrono::Timelike;

use super::{FAST, summary_header};
use crate::support::fleet::{CLOUD_TOKEN, Fleet, Row, SERVER_PASSWORD, SERVER_PAT, instant};

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
        "the eleven documented columns first, in order"
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

/// A check against a fast service takes well under a second: whole seconds showed every
/// site of a check run as `0s`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_html_shows_each_check_sites_duration_to_the_millisecond() {
    let rows = vec![Row::jira("one"), Row::confluence("two"), Row::jira("three")];
    let fleet = Fleet::start("", FAST, rows).await;
    let output = fleet.run("check", "check", &[]).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let html = fleet.report_text("check", "report.html");
    for site in ["one", "two", "three"] {
        let report = fleet.site_report("check", site);
        let at = |field: &str| instant(report[field].as_str().unwrap());
        let millis = (at("finished_at") - at("started_at")).num_milliseconds();
        assert!(millis > 0, "{site}: {report}");
        let shown = cmafleet::report::format::duration_ms(millis);
        assert_ne!(shown, "0s");
        let row = &html[html
            .find(&format!("<a href=\"sites/{site}.json\">"))
            .unwrap()..];
        let row = &row[..row.find("</tr>").unwrap()];
        assert!(
            row.contains(&format!("<td class=\"num\">{shown}</td><td class=\"msg\">")),
            "{site} took {millis} ms, shown as {shown}: {row}"
        );
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_report_dir_is_under_the_state_dir() {
    let fleet = Fleet::start("", FAST, vec![Row::jira("one")]).await;
    let mut command = Fleet::binary();
    command
        .arg("run")
        .arg(&fleet.inventory)
        .args(["--mode", "check", "--progress", "never"])
        .args(["--poll-min", "10ms", "--poll-max", "50ms"])
        .arg("--state-dir")
        .arg(fleet.state_dir())
        .args(["--cloud-api-url", &fleet.sim.base_url()]);
    let output = Fleet::output(command).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let line = output
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("Reports: "))
        .expect("the run says where its report is");
    let report = std::path::PathBuf::from(line.trim());
    assert!(report.is_file(), "{}", report.display());
    let run_dir = report.parent().unwrap();
    assert_eq!(run_dir.parent().unwrap(), fleet.state_dir().join("reports"));
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        run_dir.file_name().unwrap().to_str().unwrap(),
        run["run_id"].as_str().unwrap(),
        "<state-dir>/reports/<run-id>"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_a_report_or_the_state_store() {
    let scenario = r#"
        [defaults]
        check_duration = "2m"
        migrate_duration = "5m"
        [servers.offline]
        connected = false
        [servers.warn.checks.AnonPermission]
        outcome = "FAILED"
        excludable = true
    "#;
    let rows = vec![
        Row::jira("pat"),
        Row::jira("warn").basic_auth(),
        Row::confluence("offline").basic_auth(),
    ];
    let fleet = Fleet::start(scenario, FAST, rows).await;
    let mut outputs = Vec::new();
    for (mode, report, extra) in [
        ("check", "check", &["--connect", "-vv"][..]),
        (
            "migrate",
            "migrate",
            &[
                "--connect",
                "--precheck",
                "--override-checks",
                "AnonPermission",
                "-vv",
            ][..],
        ),
    ] {
        let mut command = fleet.command(mode, report);
        command
            .args(extra)
            .arg("--metrics-textfile")
            .arg(fleet.dir.path().join(format!("{mode}.prom")));
        let output = Fleet::output(command).await;
        assert!(output.code == 0 || output.code == 1, "{}", output.stderr);
        outputs.push(output);
    }
    assert_eq!(
        fleet.summary("migrate")["offline"]["outcome"],
        "succeeded",
        "connected and migrated"
    );
    for secret in [CLOUD_TOKEN, SERVER_PAT, SERVER_PASSWORD] {
        for output in &outputs {
            assert!(!output.stdout.contains(secret), "stdout");
            assert!(!output.stderr.contains(secret), "the trace log");
        }
        let mut stack = vec![fleet.dir.path().to_path_buf()];
        let mut files = 0;
        while let Some(path) = stack.pop() {
            if path.is_dir() {
                stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a secret",
                path.display()
            );
        }
        assert!(
            files > 20,
            "reports, state and metrics were searched ({files} files)"
        );
    }
}
