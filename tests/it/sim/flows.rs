//! The main walks: job → attach → Check task → checks finish; Migrate task → check level,
//! scopes with progress, apps after core; the not-attached failure; auth; eventual
//! consistency; artifacts; per-server load.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::*;

#[tokio::test]
async fn a_check_task_runs_to_finished_with_every_check_in_the_children() {
    // Real clock, one simulated hour per real second: checks take 2 simulated minutes.
    // Written against the one-level children and `check` node the simulator first served.
    let sim = TestSim::start(
        3600.0,
        "[defaults]\ncheck_duration = \"2m\"\n[shapes]\nchildren = \"one_level\"\ncheck_task_tree = \"check_node\"\n",
    )
    .await;
    let definition = jira_job("acme-jira", ACME, &[]);
    let job = sim.create_job(&definition).await;

    let got: Value = sim
        .cloud(Method::GET, ALICE, &format!("/jobs/{job}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The definition comes back flat at the top level.
    for key in ["flow", "name", "source", "destination", "scope"] {
        assert_eq!(got[key], definition[key], "{key}");
    }

    let attach = sim.attach("acme-jira", ACME).await;
    assert_eq!(attach.status(), StatusCode::OK);
    let attach: Value = attach.json().await.unwrap();
    assert_eq!(attach["cloudUrl"], ACME);
    let expiry = chrono::DateTime::parse_from_rfc3339(attach["expiryTime"].as_str().unwrap())
        .expect("expiryTime is ISO-8601");
    // 24 simulated hours = 24 real seconds at this scale.
    let left = expiry.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(left > chrono::Duration::seconds(15) && left <= chrono::Duration::seconds(24));

    let task = sim.create_task(&job, &check_task()).await;
    let started = Instant::now();
    let root = loop {
        let response = sim.status(&job, &task, "").await;
        if response.status() == StatusCode::OK {
            let root: Value = response.json().await.unwrap();
            if root["data"]["status"] == "FINISHED" {
                break root["data"].clone();
            }
            assert_eq!(root["data"]["status"], "IN_PROGRESS");
        } else {
            assert_eq!(
                response.status(),
                StatusCode::NOT_FOUND,
                "only 404 while it appears"
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "check task never finished"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(root["outcome"], "SUCCESS");
    assert_eq!(root["message"], "All Preflight checks have passed.");
    // Without expandChildren the children come without their own children.
    assert!(child(&root, "check")["children"].is_null());

    let checks = sim.tree(&job, &task, "?level=check").await;
    let checks = checks["children"].as_object().unwrap();
    let expected = [
        "AdvancedRoadmapsOutdated",
        "AdvancedRoadmapsProjectMigratedConflict",
        "AnonPermission",
        "AppAssessmentIncomplete",
        "AppDataMigrationConsent",
        "AppLicenseCheck",
        "AppVendorCheck",
        "AppWebhookEndpointCheck",
        "AppsNotInstalledOnCloud",
        "AppsReliabilityCheck",
        "CloudFreeUserLimit",
        "CloudSiteNotEmpty",
        "CrossProjectEntityMissingProjectSelection",
        "DatabaseSize",
        "EpicLinksAboveStoryHierarchyLevel",
        "MissingAttachments",
    ];
    assert_eq!(
        checks.keys().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
    for (name, check) in checks {
        assert_eq!(check["status"], "FINISHED", "{name}");
        assert_eq!(check["outcome"], "SUCCESS", "{name}");
        assert!(check["details"]["description"].is_string(), "{name}");
    }
    let one = sim.tree(&job, &task, "?level=check,AnonPermission").await;
    assert_eq!(one["details"]["excludable"], true);

    // The finished task lists its artifacts, downloadable from the simulator.
    let listed: Value = sim
        .cloud(Method::GET, ALICE, &format!("/jobs/{job}/tasks/{task}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["taskType"], "check");
    let artifact = &listed["results"]["artifacts"][0];
    assert_eq!(artifact["name"], "preflight-checks-report.csv");
    let report = sim
        .http
        .get(artifact["location"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), StatusCode::OK);
    let report = report.text().await.unwrap();
    assert!(report.starts_with("check,status,outcome"));
    assert_eq!(report.lines().count(), 17);
}

#[tokio::test]
async fn a_migrate_task_checks_then_migrates_scopes_with_progress_and_apps_after_core() {
    let sim = TestSim::manual(
        r#"
[api]
status_delay = "5s"
[servers.wayne-jira]
check_duration = "8m"
migrate_duration = "70m"
apps_duration = "90m"
[servers.wayne-jira.checks.AnonPermission]
outcome = "FAILED"
occurrences = ["Project GOTHAM: Browse projects granted to Anyone"]
[shapes]
children = "one_level"  # level reads below come with their children
scopes = "all"          # pending and skipped scopes are listed
"#,
    )
    .await;
    let job = sim
        .create_job(&jira_job(
            "wayne-jira",
            "https://wayne.atlassian.net",
            &["com.tempo"],
        ))
        .await;
    assert_eq!(
        sim.attach("wayne-jira", "https://wayne.atlassian.net")
            .await
            .status(),
        200
    );
    // AnonPermission fails but is excludable: the override lets the migration go on.
    let task = sim
        .create_task(&job, &migrate_task(&["AnonPermission"]))
        .await;

    sim.advance("4m").await;
    let check = sim.tree(&job, &task, "?level=check").await;
    assert_eq!(check["status"], "IN_PROGRESS");
    assert_eq!(check["message"], "Preflight checks are running");
    let progress = &check["progressDetails"]["data"][0];
    assert_eq!(progress["total"], 16);
    assert!(progress["processed"].as_u64().unwrap() >= 7);
    let migrate = sim.tree(&job, &task, "?level=migrate").await;
    assert_eq!(migrate["status"], "PENDING");

    sim.advance("4m").await;
    let check = sim.tree(&job, &task, "?level=check").await;
    assert_eq!(check["status"], "FINISHED");
    assert_eq!(check["outcome"], "WARNING");
    assert_eq!(
        check["message"],
        "All Preflight checks have passed with warning."
    );
    assert_eq!(child(&check, "AnonPermission")["outcome"], "WARNING");

    // Users (10m) run first, then projects (60m: 24m export, 36m import).
    sim.advance("22m").await;
    let migrate = sim.tree(&job, &task, "?level=migrate").await;
    assert_eq!(migrate["status"], "IN_PROGRESS");
    assert_eq!(child(&migrate, "usersAndGroups")["outcome"], "SUCCESS");
    assert!(child(&migrate, "usersAndGroups")["progressDetails"].is_null());
    let projects = child(&migrate, "projects");
    assert_eq!(projects["status"], "IN_PROGRESS");
    assert_eq!(projects["message"], "Exporting data");
    let counters = projects["progressDetails"]["data"].as_array().unwrap();
    let issues = counters.iter().find(|c| c["name"] == "Issues").unwrap();
    let (processed, total) = (
        issues["processed"].as_u64().unwrap(),
        issues["total"].as_u64().unwrap(),
    );
    assert!(processed > 0 && processed < total, "{processed}/{total}");
    assert_eq!(child(&migrate, "apps")["status"], "PENDING");
    assert_eq!(child(&migrate, "jsm")["outcome"], "SKIPPED");

    sim.advance("24m").await;
    let projects = sim.tree(&job, &task, "?level=migrate,projects").await;
    assert_eq!(projects["message"], "Importing data");

    // Core done at 78m: migrate and the root are FINISHED while apps still runs.
    sim.advance("30m").await;
    let root = sim.tree(&job, &task, "?expandChildren=true").await;
    assert_eq!(root["status"], "FINISHED");
    assert_eq!(
        root["outcome"], "WARNING",
        "check warnings carry to the root"
    );
    let migrate = child(&root, "migrate");
    assert_eq!(migrate["status"], "FINISHED");
    assert_eq!(migrate["outcome"], "SUCCESS");
    let apps = child(migrate, "apps");
    assert_eq!(apps["status"], "IN_PROGRESS");
    assert!(
        apps["progressDetails"]["data"][0]["total"]
            .as_u64()
            .is_some()
    );

    sim.advance("90m").await;
    let apps = sim.tree(&job, &task, "?level=migrate,apps").await;
    assert_eq!(apps["status"], "FINISHED");
    assert_eq!(apps["outcome"], "SUCCESS");
    let tasks = sim.tasks().await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].outcome.as_deref(), Some("WARNING"));
    assert!(tasks[0].apps_finished_at > tasks[0].finished_at);
}

#[tokio::test]
async fn a_failed_check_that_cannot_be_overridden_blocks_the_migration() {
    let sim = TestSim::manual(
        r#"
[servers.umbrella-jira]
check_duration = "8m"
[servers.umbrella-jira.checks.CrossProjectEntityMissingProjectSelection]
outcome = "FAILED"
excludable = false
occurrences = ["Filter 10234 references project LAB"]
[shapes]
children = "one_level"
scopes = "all"
"#,
    )
    .await;
    let job = sim.create_job(&jira_job("umbrella-jira", ACME, &[])).await;
    sim.attach("umbrella-jira", ACME).await;
    let task = sim
        .create_task(
            &job,
            &migrate_task(&["CrossProjectEntityMissingProjectSelection"]),
        )
        .await;
    sim.advance("9m").await;
    let root = sim.tree(&job, &task, "").await;
    assert_eq!(root["status"], "FINISHED");
    assert_eq!(root["outcome"], "FAILED");
    assert_eq!(root["message"], "At least one Preflight check has failed.");
    let check = sim
        .tree(
            &job,
            &task,
            "?level=check,CrossProjectEntityMissingProjectSelection",
        )
        .await;
    assert_eq!(check["outcome"], "FAILED");
    assert_eq!(check["details"]["excludable"], false);
    assert_eq!(
        check["details"]["occurrences"][0],
        "Filter 10234 references project LAB"
    );
    sim.advance("10h").await;
    let migrate = sim.tree(&job, &task, "?level=migrate").await;
    assert_eq!(migrate["outcome"], "SKIPPED");
    assert_eq!(child(&migrate, "projects")["outcome"], "SKIPPED");
}

#[tokio::test]
async fn tasks_fail_not_attached_without_an_attach_after_expiry_or_with_a_wrong_server_id() {
    let sim = TestSim::manual(
        "[servers.stark-jira]\nserver_id = \"RMJK-8WAW-JKMI-CNOY\"\ncheck_duration = \"5m\"\n\
         [shapes]\nchildren = \"one_level\"\ncheck_task_tree = \"check_node\"\n",
    )
    .await;
    let not_attached = |root: &Value| {
        root["status"] == "FINISHED"
            && root["outcome"] == "FAILED"
            && root["message"].as_str().is_some_and(|m| {
                m.contains("is not attached through the CMA") && m.contains("Server ID")
            })
    };

    // Never attached.
    let job = sim
        .create_job(&jira_job("RMJK-8WAW-JKMI-CNOY", ACME, &[]))
        .await;
    let task = sim.create_task(&job, &check_task()).await;
    sim.advance("1m").await;
    let root = sim.tree(&job, &task, "").await;
    assert!(not_attached(&root), "{root}");
    assert!(not_attached(child(&root, "check")));

    // Attached (by server name), then the 24 h run out.
    assert_eq!(sim.attach("stark-jira", ACME).await.status(), 200);
    let fresh = sim.create_task(&job, &check_task()).await;
    sim.advance("1m").await;
    assert_eq!(sim.tree(&job, &fresh, "").await["status"], "IN_PROGRESS");
    sim.advance("25h").await;
    assert_eq!(sim.tree(&job, &fresh, "").await["outcome"], "SUCCESS");
    let late = sim.create_task(&job, &migrate_task(&[])).await;
    sim.advance("1m").await;
    let root = sim.tree(&job, &late, "").await;
    assert!(not_attached(&root), "{root}");
    assert_eq!(child(&root, "migrate")["outcome"], "SKIPPED");

    // The job names the server by its name, but its Server ID is another.
    sim.attach("stark-jira", ACME).await;
    let wrong = sim.create_job(&jira_job("stark-jira", ACME, &[])).await;
    let task = sim.create_task(&wrong, &check_task()).await;
    sim.advance("1m").await;
    assert!(not_attached(&sim.tree(&wrong, &task, "").await));
    let tasks = sim.tasks().await;
    let flags: Vec<bool> = tasks.iter().map(|t| t.not_attached).collect();
    assert_eq!(flags, [true, false, true, true]);
}

#[tokio::test]
async fn credentials_are_required_and_non_admins_are_forbidden() {
    let sim = TestSim::manual(
        r#"
[users."bob@globex-consulting.example"]
admin = false
[users."carol@globex-consulting.example"]
token = "carols-token"
"#,
    )
    .await;
    let body = jira_job("acme-jira", ACME, &[]);
    let none = sim
        .http
        .post(sim.url(&format!("{CLOUD}/jobs")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let error: Value = none.json().await.unwrap();
    assert_eq!(error["status"], 401);
    assert!(error["errorMessage"].is_string());

    let bearer = sim
        .http
        .get(sim.url(&format!("{CLOUD}/jobs/x")))
        .bearer_auth("token")
        .send()
        .await
        .unwrap();
    assert_eq!(
        bearer.status(),
        StatusCode::UNAUTHORIZED,
        "cloud calls need Basic"
    );
    let malformed = sim
        .http
        .get(sim.url(&format!("{CLOUD}/jobs/x")))
        .header("Authorization", "Basic not-base64!")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(
        sim.create_job_as(BOB, &body).await.status(),
        StatusCode::FORBIDDEN
    );
    let wrong = sim
        .http
        .post(sim.url(&format!("{CLOUD}/jobs")))
        .basic_auth("carol@globex-consulting.example", Some("guess"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = sim
        .http
        .post(sim.url(&format!("{CLOUD}/jobs")))
        .basic_auth("carol@globex-consulting.example", Some("carols-token"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);

    let anonymous_attach = sim
        .http
        .post(sim.url(&format!(
            "/servers/acme-jira/rest/migration/latest/public/v1/attach?cloudUrl={ACME}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous_attach.status(), StatusCode::UNAUTHORIZED);
    let basic_attach = sim
        .http
        .post(sim.url(&format!(
            "/servers/acme-jira/rest/migration/latest/public/v1/attach?cloudUrl={ACME}"
        )))
        .basic_auth("migrator", Some("secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        basic_attach.status(),
        StatusCode::OK,
        "Basic works on the server too"
    );
    let counters = sim.counters().await;
    assert_eq!(counters.count("POST /migrations/public/v1/jobs", "401"), 2);
    assert_eq!(counters.count("POST /migrations/public/v1/jobs", "403"), 1);
    assert_eq!(counters.jobs_created["acme-jira"][ACME], 1);
}

#[tokio::test]
async fn a_new_task_status_answers_404_until_it_appears() {
    let sim = TestSim::manual("[api]\nstatus_delay = \"5s\"\n").await;
    let job = sim.create_job(&jira_job("acme-jira", ACME, &[])).await;
    sim.attach("acme-jira", ACME).await;
    let task = sim.create_task(&job, &check_task()).await;
    let missing = sim.status(&job, &task, "").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let error: Value = missing.json().await.unwrap();
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .contains("not found")
    );
    // The task itself is listed at once (so a client can reconcile a lost create).
    let list: Value = sim
        .cloud(Method::GET, ALICE, &format!("/jobs/{job}/tasks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["taskId"], task.as_str());
    sim.advance("4s").await;
    assert_eq!(
        sim.status(&job, &task, "").await.status(),
        StatusCode::NOT_FOUND
    );
    sim.advance("1s").await;
    assert_eq!(sim.status(&job, &task, "").await.status(), StatusCode::OK);
    let counters = sim.counters().await;
    let route = "GET /migrations/public/v1/jobs/{jobId}/tasks/{taskId}/status";
    assert_eq!(
        (counters.count(route, "404"), counters.count(route, "200")),
        (2, 1)
    );
    // Unknown jobs, tasks and levels answer 404 too.
    assert_eq!(
        sim.status(&job, "nope", "").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        sim.status("nope", &task, "").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        sim.status(&job, &task, "?level=check,Nope").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn artifacts_expire_and_timestamps_follow_the_scenario_format() {
    let sim = TestSim::manual(
        "[api]\ntimestamps = \"epoch_millis\"\nartifact_validity = \"2d\"\n[defaults]\ncheck_duration = \"3m\"\n\
         [shapes]\nchildren = \"one_level\"\ncheck_task_tree = \"check_node\"\n",
    )
    .await;
    let job = sim.create_job(&confluence_job("acme-wiki", ACME)).await;
    let attach: Value = sim.attach("acme-wiki", ACME).await.json().await.unwrap();
    assert!(attach["expiryTime"].is_i64(), "{attach}");
    let task = sim.create_task(&job, &check_task()).await;
    let get_task = || async {
        sim.cloud(Method::GET, ALICE, &format!("/jobs/{job}/tasks/{task}"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let running = get_task().await;
    assert!(running["createdAt"].is_i64(), "{running}");
    assert_eq!(running["results"]["artifacts"], Value::Array(vec![]));
    sim.advance("3m").await;
    let checks = sim.tree(&job, &task, "?level=check").await;
    assert!(
        checks["children"]
            .as_object()
            .unwrap()
            .contains_key("SpaceKeyConflict")
    );
    let done = get_task().await;
    let artifact = &done["results"]["artifacts"][0];
    assert!(artifact["expireAt"].is_i64());
    let location = artifact["location"].as_str().unwrap().to_owned();
    assert_eq!(
        sim.http.get(&location).send().await.unwrap().status(),
        StatusCode::OK
    );
    sim.advance("47h").await;
    assert_eq!(
        sim.http.get(&location).send().await.unwrap().status(),
        StatusCode::OK
    );
    sim.advance("1h").await;
    assert_eq!(
        sim.http.get(&location).send().await.unwrap().status(),
        StatusCode::GONE
    );
}

#[tokio::test]
async fn the_most_tasks_running_at_once_on_a_server_is_counted() {
    let sim = TestSim::manual(
        "[defaults]\ncheck_duration = \"10m\"\n[rate_limits]\ncreate_task = \"unlimited\"\n",
    )
    .await;
    let job = sim.create_job(&jira_job("acme-jira", ACME, &[])).await;
    let other = sim.create_job(&jira_job("hooli-jira", ACME, &[])).await;
    sim.attach("acme-jira", ACME).await;
    sim.attach("hooli-jira", ACME).await;
    sim.create_task(&job, &check_task()).await;
    sim.advance("5m").await;
    sim.create_task(&job, &check_task()).await;
    sim.create_task(&other, &check_task()).await;
    sim.advance("20m").await;
    sim.create_task(&job, &check_task()).await;
    let counters = sim.counters().await;
    assert_eq!(counters.by_server["acme-jira"].max_running_tasks, 2);
    assert_eq!(counters.by_server["hooli-jira"].max_running_tasks, 1);
    assert_eq!(counters.task_creates.by_job[&job]["check"], 3);
    assert_eq!(counters.repeated_task_creates().len(), 1);
}

#[tokio::test]
async fn the_router_answers_without_a_socket() {
    use tower::ServiceExt;
    let router = sim::router(SimOptions {
        time_scale: 60.0,
        scenario: Scenario::demo(),
    });
    let request = axum::http::Request::builder()
        .uri("/migrations/public/v1/jobs/x")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED.as_u16());
}
