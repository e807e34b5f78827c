//! Each tolerance rule of `docs/api.md`'s first-contact table, against the simulator serving
//! the variant the real service may send (its `[shapes]`, or a scenario key): the site ends
//! as it should, nothing is created twice, and what surprised the client is reported.

use std::time::{Duration, Instant};

use crate::fleet::FAST;
use crate::support::fleet::{Fleet, Row};

const QUICK: &str = r#"
    [defaults]
    check_duration = "3m"
    migrate_duration = "20m"
    apps_duration = "10m"
"#;

/// The `surprises` of a report dir's `run.json`, as (kind, value).
fn surprises(fleet: &Fleet, report: &str) -> Vec<(String, String)> {
    fleet.run_json(report)["surprises"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|surprise| {
                    (
                        surprise["kind"].as_str().unwrap_or_default().to_owned(),
                        surprise["value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A migration the service stopped (status `STOPPED`, outcome `FAILED`: a status the API
/// documents nowhere) has ended: the site fails promptly, saying what the service said and
/// that re-migrating may need cleanup first — it is not polled forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_migration_fails_promptly_in_the_services_words() {
    let scenario = format!(
        r#"{QUICK}
        [servers.stopped]
        end_status = "STOPPED"
        "#
    );
    let rows = vec![Row::jira("stopped"), Row::jira("fine")];
    let fleet = Fleet::start(&scenario, FAST, rows).await;
    let started = Instant::now();
    let run = fleet.run("migrate", "run", &[]).await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the run ended by itself, promptly: {:?}",
        started.elapsed()
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let summary = fleet.summary("run");
    assert_eq!(summary["fine"]["outcome"], "succeeded");
    let stopped = &summary["stopped"];
    assert_eq!(stopped["outcome"], "failed", "{}", stopped["message"]);
    assert!(
        stopped["message"].starts_with(
            "task ended with status STOPPED, outcome FAILED: The migration was stopped."
        ),
        "{}",
        stopped["message"]
    );
    assert!(
        stopped["message"].contains("cleanup"),
        "{}",
        stopped["message"]
    );
    assert!(
        surprises(&fleet, "run").contains(&("status".into(), "STOPPED".into())),
        "{:?}",
        surprises(&fleet, "run")
    );
    let html = fleet.report_text("run", "report.html");
    assert!(html.contains("Surprises") && html.contains("STOPPED"));
}

/// Statuses the API documents nowhere (`QUEUED`, `RUNNING`, `COMPLETED`): a node without an
/// outcome runs on, one with an outcome has ended. Checks and migrations end as usual, and
/// each unknown value is reported once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_statuses_run_on_until_an_outcome_and_are_reported_once() {
    let scenario = format!(
        r#"{QUICK}
        [shapes]
        statuses = "unknown"
        enum_case = "title"
        [servers.warn.checks.AnonPermission]
        outcome = "WARNING"
        "#
    );
    let rows = vec![
        Row::jira("clean"),
        Row::jira("warn"),
        Row::confluence("wiki"),
    ];
    let fleet = Fleet::start(&scenario, FAST, rows).await;
    let check = fleet.run("check", "check", &[]).await;
    assert_eq!(check.code, 0, "{}", check.stderr);
    let textfile = fleet.dir.path().join("cmafleet.prom");
    let migrate = fleet
        .run(
            "migrate",
            "migrate",
            &["--metrics-textfile", textfile.to_str().unwrap()],
        )
        .await;
    assert_eq!(migrate.code, 0, "{}", migrate.stderr);
    for report in ["check", "migrate"] {
        let summary = fleet.summary(report);
        assert_eq!(summary["clean"]["outcome"], "succeeded", "{report}");
        assert_eq!(summary["warn"]["outcome"], "warnings", "{report}");
        assert_eq!(summary["wiki"]["outcome"], "succeeded", "{report}");
    }
    let seen = surprises(&fleet, "migrate");
    for value in ["Running", "Completed"] {
        assert_eq!(
            seen.iter()
                .filter(|(kind, known)| kind == "status" && known == value)
                .count(),
            1,
            "{value} reported once: {seen:?}"
        );
    }
    let warned = migrate
        .stderr
        .lines()
        .filter(|line| line.contains(" WARN ") && line.contains("surprise (status)"))
        .count();
    let statuses = seen.iter().filter(|(kind, _)| kind == "status").count();
    assert_eq!(warned, statuses, "one WARN line each: {}", migrate.stderr);
    let metrics = std::fs::read_to_string(&textfile).unwrap();
    assert!(
        metrics.lines().any(|line| line
            == format!(
                "cmafleet_api_surprises_total{{kind=\"status\",mode=\"migrate\"}} {statuses}"
            )),
        "the counter counts each value once:\n{metrics}"
    );
}

/// Every task create's answer is lost and the task list spells `taskType` as the client
/// does not expect (or leaves it out): the one unrecorded task created since the intent is
/// the site's, whatever its type says — exactly one task per site, never a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_is_reconciled_whatever_the_task_type_says() {
    for spelling in ["other", "absent"] {
        let scenario = format!(
            r#"{QUICK}
            [shapes]
            task_type = "{spelling}"
            [defaults.faults]
            lost_task_create_rate = 1.0
            "#
        );
        let rows = vec![Row::jira("acme"), Row::confluence("wiki")];
        let fleet = Fleet::start(&scenario, FAST, rows).await;
        let run = fleet.run("migrate", "run", &["--precheck"]).await;
        assert_eq!(run.code, 0, "{spelling}: {}", run.stderr);
        let tasks = fleet.tasks_by_site().await;
        for (site, tasks) in &tasks {
            let kinds: Vec<&str> = tasks.iter().map(|task| task.task_type.as_str()).collect();
            assert_eq!(
                kinds,
                ["check", "migrate"],
                "{spelling}: {site}: one Check and one Migrate task"
            );
        }
        let summary = fleet.summary("run");
        assert_eq!(summary["acme"]["outcome"], "succeeded", "{spelling}");
        assert_eq!(summary["wiki"]["outcome"], "succeeded", "{spelling}");
        assert!(
            surprises(&fleet, "run")
                .iter()
                .any(|(kind, _)| kind == "task_type"),
            "{spelling}: {:?}",
            surprises(&fleet, "run")
        );
    }
}

/// A lost create answer and a task list that cannot be read: nothing proves no task was
/// made, so none is created again — the site fails saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_second_task_when_the_task_list_cannot_be_read() {
    let scenario = format!(
        r#"{QUICK}
        [servers.acme.faults]
        lost_task_create_rate = 1.0
        get_error_rate = 1.0
        "#
    );
    let fleet = Fleet::start(&scenario, FAST, vec![Row::jira("acme")]).await;
    let run = fleet.run("check", "run", &[]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(fleet.counters().await.task_creates.total, 1);
    let summary = fleet.summary("run");
    assert_eq!(summary["acme"]["outcome"], "failed");
    let message = &summary["acme"]["message"];
    assert!(
        message.contains("task list could not be read")
            && message.contains("will not create another"),
        "{message}"
    );
    // The next run checks the list again instead of creating: still one task.
    let again = fleet.run("check", "again", &[]).await;
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert_eq!(fleet.counters().await.task_creates.total, 1);
}

/// A run killed between its task intent and the POST, and meanwhile two tasks appear on the
/// job that no run recorded (another client, a retried request): the list cannot tell which
/// is the intent's, so none is adopted and none created — the site fails naming both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_unrecorded_tasks_are_named_and_none_is_created() {
    let fleet = Fleet::start(QUICK, FAST, vec![Row::jira("acme")]).await;
    let mut killed = fleet.command("check", "killed");
    killed.env(cmafleet::fleet::failpoint::VARIABLE, "task-intent");
    let run = Fleet::output(killed).await;
    assert_ne!(
        run.code, 0,
        "the crash point aborts the run: {}",
        run.stderr
    );
    assert_eq!(fleet.counters().await.task_creates.total, 0);
    let job_id: String = fleet
        .db()
        .query_row("SELECT job_id FROM sites WHERE site = 'acme'", [], |row| {
            row.get(0)
        })
        .unwrap();
    let mut others = Vec::new();
    for _ in 0..2 {
        let created: serde_json::Value = reqwest::Client::new()
            .post(format!(
                "{}/migrations/public/v1/jobs/{job_id}/tasks",
                fleet.sim.base_url()
            ))
            .basic_auth(
                "alice@example.com",
                Some(crate::support::fleet::CLOUD_TOKEN),
            )
            .json(&serde_json::json!({ "task": "Check" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        others.push(created["taskId"].as_str().unwrap().to_owned());
    }
    let resumed = fleet.run("check", "resumed", &[]).await;
    assert_eq!(resumed.code, 1, "{}", resumed.stderr);
    assert_eq!(
        fleet.counters().await.task_creates.total,
        2,
        "the resumed run created nothing"
    );
    let message = &fleet.summary("resumed")["acme"]["message"];
    assert!(
        message.contains("will not create another")
            && others.iter().all(|id| message.contains(id.as_str())),
        "{message}"
    );
}

/// Jobs cannot be listed: a job create whose answer was lost is sent again once, never a
/// third time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_third_job_after_two_lost_answers() {
    let scenario = format!(
        r#"{QUICK}
        [servers.acme.faults]
        lost_job_create_rate = 1.0
        "#
    );
    let fleet = Fleet::start(&scenario, FAST, vec![Row::jira("acme")]).await;
    let run = fleet.run("check", "run", &[]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(Fleet::jobs_of(&fleet.counters().await, &fleet.rows[0]), 2);
    let summary = fleet.summary("run");
    assert_eq!(summary["acme"]["outcome"], "failed");
    assert!(
        summary["acme"]["message"].contains("will not create another"),
        "{}",
        summary["acme"]["message"]
    );
    assert_eq!(fleet.counters().await.task_creates.total, 0);
}

/// `expireAt` is informative only: an artifact listed as expired, or with an expiry the
/// client cannot read, is still downloaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_are_fetched_whatever_their_expiry_says() {
    for expire_at in ["past", "garbage"] {
        let scenario = format!(
            r#"{QUICK}
            [shapes]
            expire_at = "{expire_at}"
            "#
        );
        let fleet = Fleet::start(&scenario, FAST, vec![Row::jira("acme")]).await;
        let run = fleet.run("check", "run", &[]).await;
        assert_eq!(run.code, 0, "{expire_at}: {}", run.stderr);
        let report = fleet.site_report("run", "acme");
        let artifacts = report["artifacts"].as_array().unwrap();
        assert!(!artifacts.is_empty(), "{expire_at}");
        for artifact in artifacts {
            let saved = artifact["saved_as"]
                .as_str()
                .unwrap_or_else(|| panic!("{expire_at}: {artifact} not saved"));
            assert!(fleet.report_dir("run").join(saved).is_file(), "{saved}");
        }
    }
}

/// An artifact location that answers JSON or an HTML page where a file was expected: it is
/// not saved as the artifact; its error shows the first bytes; it is a surprise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_that_is_not_a_file_is_not_saved() {
    for (shape, what) in [("json", "JSON"), ("html", "an HTML page")] {
        let scenario = format!(
            r#"{QUICK}
            [shapes]
            artifacts = "{shape}"
            "#
        );
        let fleet = Fleet::start(&scenario, FAST, vec![Row::jira("acme")]).await;
        let run = fleet.run("migrate", "run", &[]).await;
        assert_eq!(run.code, 0, "{shape}: {}", run.stderr);
        let report = fleet.site_report("run", "acme");
        let artifacts = report["artifacts"].as_array().unwrap();
        assert!(artifacts.len() >= 2, "{shape}: {artifacts:?}");
        assert!(
            artifacts[0]["saved_as"].is_string(),
            "{shape}: the file is saved"
        );
        let refused = &artifacts[1];
        assert!(refused["saved_as"].is_null(), "{shape}: {refused}");
        let error = refused["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("answered {what} instead of a file")),
            "{shape}: {error}"
        );
        assert!(
            surprises(&fleet, "run").contains(&("artifact".to_owned(), what.to_owned())),
            "{shape}: {:?}",
            surprises(&fleet, "run")
        );
        let saved: Vec<String> = std::fs::read_dir(fleet.report_dir("run").join("artifacts"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(saved.len(), artifacts.len() - 1, "{shape}: {saved:?}");
    }
}

/// A task create on a job made moments ago answers 404 (the new job is not visible yet):
/// nothing was created, so it is tried again, and every site gets its one task. (At a time
/// scale of 60, so the young job's 10 s last 167 ms: far more than a loaded machine delays
/// the first create, far less than the client's three tries wait.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_on_a_young_jobs_first_task_create_is_tried_again() {
    let scenario = r#"
        [shapes]
        young_job_404 = "10s"
        [defaults]
        check_duration = "10s"
    "#;
    let rows = vec![Row::jira("acme"), Row::confluence("wiki")];
    let fleet = Fleet::start(scenario, 60.0, rows).await;
    let run = fleet.run("check", "run", &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let counters = fleet.counters().await;
    assert_eq!(counters.task_creates.total, 2, "one task each");
    let refused = counters
        .by_route
        .get("POST /migrations/public/v1/jobs/{jobId}/tasks")
        .and_then(|codes| codes.get("404"))
        .copied()
        .unwrap_or(0);
    // The first site's create follows its job at once; the rate limit spaces the others.
    assert!(refused >= 1, "a young job answered 404 first: {refused}");
}

/// The service's own words reach the site's message from every error envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_words_come_through_every_error_envelope() {
    for envelope in ["error_message", "message", "errors", "error", "text"] {
        let scenario = format!(
            r#"
            [shapes]
            error_envelope = "{envelope}"
            [users."alice@example.com"]
            admin = false
            "#
        );
        let fleet = Fleet::start(&scenario, FAST, vec![Row::jira("acme")]).await;
        let run = fleet.run("check", "run", &[]).await;
        assert_eq!(run.code, 1, "{envelope}: {}", run.stderr);
        let message = &fleet.summary("run")["acme"]["message"];
        assert!(
            message.contains("Forbidden: the user is not an admin of the destination site")
                && message.contains("HTTP 403"),
            "{envelope}: {message}"
        );
        assert!(
            !run.stderr.contains("surprise (error_envelope)"),
            "{envelope} is a known envelope: {}",
            run.stderr
        );
    }
}
