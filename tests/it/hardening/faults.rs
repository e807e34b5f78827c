//! Fault scenarios: the simulator misbehaves the ways `docs/api.md` says the service may, and
//! each run still ends every site correctly, with no task created twice.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::support::fleet::{Fleet, Row};

/// Six sites over two cloud users, Jira and Confluence.
fn six_sites() -> Vec<Row> {
    vec![
        Row::jira("acme"),
        Row::jira("globex"),
        Row::confluence("initech"),
        Row::jira("umbrella").user("bob@example.com"),
        Row::confluence("hooli").user("bob@example.com"),
        Row::jira("stark").user("bob@example.com"),
    ]
}

/// A migrate run with `--metrics-textfile`; returns its output and the metrics text.
async fn migrate(fleet: &Fleet, report: &str, extra: &[&str]) -> (RunOutput, String) {
    let metrics = fleet.dir.path().join(format!("{report}.prom"));
    let mut command = fleet.command("migrate", report);
    command.arg("--metrics-textfile").arg(&metrics).args(extra);
    let run = Fleet::output(command).await;
    let text = read_metrics(&metrics);
    (run, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_read_in_five_failing_with_5xx_is_retried_and_every_site_migrates() {
    let scenario = r#"
        seed = 11
        [defaults.faults]
        get_error_rate = 0.2
    "#;
    let fleet = Fleet::start(scenario, 3600.0, six_sites()).await;
    let (run, metrics) = migrate(&fleet, "run", &[]).await;
    assert_all_succeeded(&fleet, "run", &run);
    assert_no_duplicate_tasks(&fleet).await;
    let counters = fleet.counters().await;
    assert!(
        counters.faults.server_errors >= 10,
        "the scenario injected 5xx: {:?}",
        counters.faults
    );
    let retried = metric_sum(&metrics, "cmafleet_api_retries_total", &[("reason", "5xx")]);
    assert!(
        retried >= counters.faults.server_errors as f64 * 0.5,
        "5xx reads were retried ({retried} retries for {} injected)",
        counters.faults.server_errors
    );
    assert_eq!(counters.task_creates.total, 6, "one Migrate task per site");
    eprintln!(
        "figures: 5xx: {} injected, {retried} retries, {} requests",
        counters.faults.server_errors, counters.total
    );
}

/// Lost create answers, as a 504 on one server and as a closed connection on another: the
/// task exists, the client never saw its id, and reconciles it from the task list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_task_create_answers_504_or_dropped_are_reconciled_not_repeated() {
    let scenario = r#"
        seed = 5
        [servers.acme.faults]
        lost_task_create_rate = 1.0
        lost_create_mode = "504"
        [servers.globex.faults]
        lost_task_create_rate = 1.0
        lost_create_mode = "drop"
        [servers.initech.faults]
        lost_task_create_rate = 0.5
        lost_create_mode = "mixed"
        [servers.umbrella.faults]
        lost_task_create_rate = 0.5
        lost_create_mode = "mixed"
    "#;
    let rows = vec![
        Row::jira("acme"),
        Row::jira("globex"),
        Row::confluence("initech"),
        Row::jira("umbrella"),
    ];
    let fleet = Fleet::start(scenario, 3600.0, rows).await;
    let (run, _) = migrate(&fleet, "run", &["--precheck"]).await;
    assert_all_succeeded(&fleet, "run", &run);
    assert_no_duplicate_tasks(&fleet).await;
    let counters = fleet.counters().await;
    assert_eq!(
        counters.task_creates.total, 8,
        "one Check and one Migrate task per site"
    );
    assert!(
        counters.faults.lost_answers_504 >= 2,
        "{:?}",
        counters.faults
    );
    assert!(
        counters.faults.dropped_connections >= 2,
        "{:?}",
        counters.faults
    );
    // Every lost answer was reconciled: the report names the task the simulator made.
    let tasks = fleet.tasks().await;
    for site in ["acme", "globex"] {
        let report = fleet.site_report("run", site);
        let text = report.to_string();
        let sim_tasks: Vec<_> = tasks
            .iter()
            .filter(|task| task.server.as_deref() == Some(site))
            .collect();
        assert_eq!(sim_tasks.len(), 2, "{site}: check + migrate");
        for task in sim_tasks {
            assert!(
                text.contains(&task.task_id),
                "{site}: the report names reconciled task {}",
                task.task_id
            );
        }
        assert!(
            text.contains("answer was lost"),
            "{site}: the report says a create's answer was lost"
        );
    }
    eprintln!(
        "figures: lost creates: {} answered 504, {} dropped, {} tasks, none twice",
        counters.faults.lost_answers_504,
        counters.faults.dropped_connections,
        counters.task_creates.total
    );
}

/// Every third request of each server answers after 1.5 s while cmafleet gives up after
/// 400 ms: timed-out reads are retried, timed-out creates are reconciled, never re-sent blind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_slower_than_the_request_timeout_are_retried_or_reconciled() {
    let scenario = r#"
        seed = 3
        [defaults.faults]
        latency = "1500ms"
        latency_every = 3
    "#;
    let rows = vec![
        Row::jira("acme"),
        Row::confluence("initech"),
        Row::jira("umbrella").user("bob@example.com"),
    ];
    let fleet = Fleet::start(scenario, 3600.0, rows).await;
    let (run, metrics) =
        migrate(&fleet, "run", &["--precheck", "--request-timeout", "400ms"]).await;
    assert_all_succeeded(&fleet, "run", &run);
    // Let requests the client gave up on reach the simulator before counting tasks.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_no_duplicate_tasks(&fleet).await;
    let counters = fleet.counters().await;
    assert!(
        counters.faults.delayed_requests >= 6,
        "{:?}",
        counters.faults
    );
    let timeouts = metric_sum(
        &metrics,
        "cmafleet_api_requests_total",
        &[("code", "timeout")],
    );
    assert!(timeouts >= 3.0, "the client timed out ({timeouts})");
    let retried = metric_sum(
        &metrics,
        "cmafleet_api_retries_total",
        &[("reason", "timeout")],
    );
    assert!(retried >= 1.0, "timed-out reads were retried ({retried})");
    eprintln!(
        "figures: timeouts: {} requests delayed, {timeouts} timed out, {retried} retried",
        counters.faults.delayed_requests
    );
}

/// The simulator allows far fewer requests than cmafleet is configured for: a storm of 429s.
/// Each form of answer (Retry-After seconds, only X-RateLimit-Reset, neither header) still
/// lets every site finish, and every 429 shows in the metrics. (The three run at once, each
/// with its own simulator.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_storms_with_and_without_retry_after_still_finish() {
    // Simulated windows at ×3600: "1/60s" is one request per 16.7 ms of real time, far below
    // cmafleet's scaled limits (600 reads and 5 creates per 16.7 ms). A `Retry-After` in
    // whole seconds (at least 1) pauses a bucket for a real second, and without any header
    // the client backs off exponentially (from 0.5 s): those forms get a looser read limit
    // ("20/hour": 20 a real second) to keep the test short.
    futures::future::join_all([
        rate_limit_storm("seconds", "20/hour", 3),
        rate_limit_storm("reset_only", "1/60s", 20),
        rate_limit_storm("none", "20/hour", 3),
    ])
    .await;
}

async fn rate_limit_storm(form: &str, read: &str, least: u64) {
    let scenario = format!(
        r#"
        [api]
        retry_after = "{form}"
        [rate_limits]
        read = "{read}"
        create_task = "1/60s"
        create_job = "1/60s"
        "#
    );
    let rows = vec![
        Row::jira("acme"),
        Row::jira("globex"),
        Row::confluence("initech"),
        Row::jira("umbrella"),
    ];
    let fleet = Fleet::start(&scenario, 3600.0, rows).await;
    let (run, metrics) = migrate(&fleet, form, &["--precheck"]).await;
    assert_all_succeeded(&fleet, form, &run);
    assert_no_duplicate_tasks(&fleet).await;
    let counters = fleet.counters().await;
    assert!(
        counters.rate_limited.total >= least,
        "{form}: the simulator answered a storm of 429s ({:?})",
        counters.rate_limited
    );
    let counted = metric_sum(&metrics, "cmafleet_rate_limited_total", &[]);
    assert_eq!(
        counted, counters.rate_limited.total as f64,
        "{form}: every 429 received is counted in cmafleet_rate_limited_total"
    );
    eprintln!(
        "figures: 429 storm ({form}): {} answered 429, all counted",
        counters.rate_limited.total
    );
}

/// A new task's status answers 404 for a long while (eventual consistency): polling goes on
/// through it, no task is created again, and the site finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_missing_for_a_while_after_create_is_waited_for() {
    let scenario = r#"
        [api]
        status_delay = "40m"
    "#;
    let rows = vec![Row::jira("acme"), Row::confluence("initech")];
    let fleet = Fleet::start(scenario, 3600.0, rows).await;
    let (run, metrics) = migrate(&fleet, "run", &["--precheck"]).await;
    assert_all_succeeded(&fleet, "run", &run);
    assert_no_duplicate_tasks(&fleet).await;
    let counters = fleet.counters().await;
    let not_found = counters.count(
        "GET /migrations/public/v1/jobs/{jobId}/tasks/{taskId}/status",
        "404",
    );
    assert!(
        not_found >= 8,
        "the status answered 404 while young ({not_found})"
    );
    assert_eq!(counters.task_creates.total, 4);
    let seen = metric_sum(&metrics, "cmafleet_api_requests_total", &[("code", "404")]);
    assert_eq!(seen, not_found as f64, "every 404 is counted once");
    eprintln!("figures: status 404 while young: {not_found}");
}

/// Children ordered unfinished-first in pages of 3: as checks finish they move between
/// pages, so consecutive page reads of one tree disagree. The final tree is still whole:
/// every check once, with its outcome, and every scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_pages_that_change_between_reads_still_give_the_whole_tree() {
    let scenario = r#"
        [api]
        status_order = "unfinished_first"
        status_page_size = 3
        [shapes]
        scopes = "all"
        [defaults]
        check_duration = "40m"
        migrate_duration = "30m"
        [servers.warn.checks.AnonPermission]
        outcome = "WARNING"
        [servers.warn.checks.CloudFreeUserLimit]
        outcome = "WARNING"
        [servers.fail.checks.MissingAttachments]
        outcome = "FAILED"
        excludable = false
    "#;
    let rows = vec![Row::jira("clean"), Row::jira("warn"), Row::jira("fail")];
    let fleet = Fleet::start(scenario, 3600.0, rows).await;
    let (run, _) = migrate(&fleet, "run", &[]).await;
    let expected = BTreeMap::from([
        ("clean", "succeeded"),
        ("warn", "warnings"),
        ("fail", "blocked"),
    ]);
    assert_outcomes(&fleet, "run", &expected, &run);
    assert_eq!(run.code, 1, "a blocked site makes exit 1");
    assert_no_duplicate_tasks(&fleet).await;
    let checks_of = |site: &str| -> BTreeMap<String, String> {
        let report = fleet.site_report("run", site);
        let checks = report["checks"].as_array().unwrap();
        let map: BTreeMap<String, String> = checks
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["outcome"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(map.len(), checks.len(), "{site}: each check once");
        map
    };
    let clean = checks_of("clean");
    assert_eq!(
        clean.len(),
        16,
        "a Jira check level has 16 checks: {clean:?}"
    );
    assert!(
        clean.values().all(|outcome| outcome == "SUCCESS"),
        "{clean:?}"
    );
    let warn = checks_of("warn");
    assert_eq!(
        warn.keys().collect::<Vec<_>>(),
        clean.keys().collect::<Vec<_>>()
    );
    let warned: Vec<&str> = warn
        .iter()
        .filter(|(_, outcome)| *outcome == "WARNING")
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(warned, ["AnonPermission", "CloudFreeUserLimit"]);
    let fail = checks_of("fail");
    assert_eq!(fail["MissingAttachments"], "FAILED");
    assert_eq!(fail.len(), 16);
    let scopes = fleet.site_report("run", "clean")["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|scope| scope["name"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(
        scopes.len(),
        5,
        "every Jira scope over two pages: {scopes:?}"
    );
    let counters = fleet.counters().await;
    eprintln!(
        "figures: shifting pages: {} status pages read",
        counters.count(
            "GET /migrations/public/v1/jobs/{jobId}/tasks/{taskId}/status",
            "200"
        )
    );
}

/// The simulator stops listening for 2 s mid-run (connections refused; its jobs, tasks and
/// attaches kept, as across a restart): requests are retried until it is back, and every
/// site finishes without a task created twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_refusing_connections_for_a_while_is_ridden_out() {
    let scenario = r#"
        [defaults]
        check_duration = "60m"
        migrate_duration = "3h"
    "#;
    let fleet = Fleet::start(scenario, 3600.0, six_sites()).await;
    let metrics = fleet.dir.path().join("run.prom");
    let mut command = fleet.command("migrate", "run");
    command
        .args(["--precheck", "--metrics-textfile"])
        .arg(&metrics);
    let child = command.spawn().expect("cmafleet starts");
    // Wait until every site has its Check task, then take the service away.
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while fleet.counters().await.task_creates.total < 6 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Check tasks were created"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = http
        .post(format!("{}/_sim/outage?for=2s", fleet.sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    // While it lasts, the port refuses connections.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = reqwest::get(format!("{}/_sim/requests", fleet.sim.base_url())).await;
    assert!(
        refused.as_ref().is_err_and(reqwest::Error::is_connect),
        "connections are refused during the outage: {refused:?}"
    );
    let run = finish(child, Duration::from_secs(120)).await;
    assert_all_succeeded(&fleet, "run", &run);
    assert_no_duplicate_tasks(&fleet).await;
    let counters = fleet.counters().await;
    assert_eq!(counters.faults.outages, 1);
    assert_eq!(counters.task_creates.total, 12, "the world was kept");
    let text = read_metrics(&metrics);
    let refused = metric_sum(&text, "cmafleet_api_requests_total", &[("code", "connect")]);
    assert!(
        refused >= 1.0,
        "the run met refused connections ({refused})\n{text}"
    );
    eprintln!("figures: outage: 2 s, {refused} connections refused, 12 tasks, none twice");
}

/// The attach lapses while the Migrate task runs (the server fails it as not attached):
/// cmafleet attaches again and creates exactly one new Migrate task, which succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attach_lapsing_mid_migration_is_renewed_with_one_new_task() {
    // Attach valid 20 min; Check 8 min, then Migrate (8 min checks + 7 min data) created
    // with ~12 min of attach left: it lapses mid-migration. The new one fits in 20 min.
    let scenario = r#"
        [servers.acme]
        attach_validity = "20m"
        attach_lapse_fails_tasks = true
        check_duration = "8m"
        migrate_duration = "7m"
    "#;
    let fleet = Fleet::start(scenario, 1200.0, vec![Row::jira("acme")]).await;
    let (run, _) = migrate(&fleet, "run", &["--precheck"]).await;
    assert_all_succeeded(&fleet, "run", &run);
    let counters = fleet.counters().await;
    let tasks = fleet.tasks().await;
    let migrates: Vec<_> = tasks.iter().filter(|t| t.task_type == "migrate").collect();
    assert_eq!(
        migrates.len(),
        2,
        "one new Migrate task after the lapse: {tasks:#?}"
    );
    assert_eq!(migrates[0].outcome.as_deref(), Some("FAILED"));
    assert_eq!(migrates[1].outcome.as_deref(), Some("SUCCESS"));
    assert_eq!(
        tasks.iter().filter(|t| t.task_type == "check").count(),
        1,
        "the precheck is not repeated"
    );
    assert_eq!(
        counters.by_server["acme"].attaches, 2,
        "attached again once"
    );
    assert_eq!(
        counters.repeated_task_creates(),
        vec![(migrates[0].job_id.clone(), "migrate".to_owned(), 2)],
        "the only repeat is the one Migrate task the lapse made necessary"
    );
    let report = fleet.site_report("run", "acme").to_string();
    assert!(
        report.contains("re-attached"),
        "the report says why: {report}"
    );
}
