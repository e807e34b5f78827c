//! Shapes of the status tree: children only when asked, a Check task's checks under its
//! root, scopes that appear as they start, the casing and words of `status`/`outcome`, and a
//! server's `end_status`. Each test reads what the simulator serves over HTTP.

use reqwest::StatusCode;
use serde_json::Value;

use super::*;

/// A manual-clock simulator whose tasks appear at once: checks 4m; core 20m (users ~2.9m,
/// then projects ~17.1m); apps 10m after the core. `extra` adds tables, `shapes` lines go
/// under `[shapes]`.
async fn sim_with(extra: &str, shapes: &str) -> TestSim {
    TestSim::manual(&format!(
        "[api]\nstatus_delay = \"0s\"\n\
         [defaults]\ncheck_duration = \"4m\"\nmigrate_duration = \"20m\"\napps_duration = \"10m\"\n\
         {extra}\n[shapes]\n{shapes}"
    ))
    .await
}

/// Creates a Jira job (apps in scope) for `server`, attaches it and creates a task.
async fn start_task(sim: &TestSim, server: &str, body: &Value) -> (String, String) {
    let job = sim
        .create_job(&jira_job(server, ACME, &["com.tempo"]))
        .await;
    assert_eq!(sim.attach(server, ACME).await.status(), StatusCode::OK);
    let task = sim.create_task(&job, body).await;
    (job, task)
}

fn names(node: &Value) -> Vec<String> {
    node["children"]
        .as_object()
        .map(|children| children.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn children_come_only_with_expand_children_unless_one_level_is_chosen() {
    let sim = sim_with("", "").await;
    let (job, task) = start_task(&sim, "acme-jira", &migrate_task(&[])).await;
    let root = sim.tree(&job, &task, "").await;
    assert_eq!(root["status"], "IN_PROGRESS");
    assert!(
        root.get("children").is_none(),
        "documented: none unasked {root}"
    );
    let migrate = sim.tree(&job, &task, "?level=migrate").await;
    assert!(migrate.get("children").is_none(), "{migrate}");
    let expanded = sim.tree(&job, &task, "?expandChildren=true").await;
    assert_eq!(names(&expanded), ["check", "migrate"]);
    assert_eq!(
        names(child(&expanded, "check")).len(),
        16,
        "grandchildren too"
    );

    let sim = sim_with("", "children = \"one_level\"").await;
    let (job, task) = start_task(&sim, "acme-jira", &migrate_task(&[])).await;
    let root = sim.tree(&job, &task, "").await;
    assert_eq!(names(&root), ["check", "migrate"]);
    assert!(child(&root, "check").get("children").is_none());
}

#[tokio::test]
async fn a_check_tasks_checks_hang_under_its_root_unless_check_node_is_chosen() {
    let sim = sim_with("", "").await;
    let (job, task) = start_task(&sim, "acme-jira", &check_task()).await;
    let root = sim.tree(&job, &task, "?expandChildren=true").await;
    let checks = names(&root);
    assert_eq!(checks.len(), 16, "{checks:?}");
    assert!(checks.contains(&"AnonPermission".to_owned()));
    assert!(!checks.contains(&"check".to_owned()));
    let refused = sim.status(&job, &task, "?level=check").await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["errorMessage"], "no status at level check");
    let one = sim.tree(&job, &task, "?level=AnonPermission").await;
    assert_eq!(one["details"]["excludable"], true);
    // A Migrate task keeps its `check` and `migrate` children.
    let (job, migrate) = start_task(&sim, "hooli-jira", &migrate_task(&[])).await;
    let root = sim.tree(&job, &migrate, "?expandChildren=true").await;
    assert_eq!(names(&root), ["check", "migrate"]);

    let sim = sim_with("", "check_task_tree = \"check_node\"").await;
    let (job, task) = start_task(&sim, "acme-jira", &check_task()).await;
    let root = sim.tree(&job, &task, "?expandChildren=true").await;
    assert_eq!(names(&root), ["check"]);
    let level = sim
        .tree(&job, &task, "?level=check&expandChildren=true")
        .await;
    assert_eq!(names(&level).len(), 16);
}

#[tokio::test]
async fn scopes_appear_as_they_start_unless_all_is_chosen() {
    let sim = sim_with("", "").await;
    let (job, task) = start_task(&sim, "acme-jira", &migrate_task(&[])).await;
    let level = "?level=migrate&expandChildren=true";
    assert_eq!(sim.tree(&job, &task, level).await["status"], "PENDING");
    assert!(names(&sim.tree(&job, &task, level).await).is_empty());
    sim.advance("5m").await;
    assert_eq!(
        names(&sim.tree(&job, &task, level).await),
        ["usersAndGroups"]
    );
    sim.advance("2m").await;
    assert_eq!(
        names(&sim.tree(&job, &task, level).await),
        ["projects", "usersAndGroups"]
    );
    sim.advance("30m").await;
    let done = sim.tree(&job, &task, level).await;
    assert_eq!(
        names(&done),
        ["apps", "projects", "usersAndGroups"],
        "jsm and ar are not in the job: never listed"
    );
    assert_eq!(child(&done, "apps")["outcome"], "SUCCESS");

    let sim = sim_with("", "scopes = \"all\"").await;
    let (job, task) = start_task(&sim, "acme-jira", &migrate_task(&[])).await;
    let pending = sim.tree(&job, &task, level).await;
    assert_eq!(
        names(&pending),
        ["apps", "ar", "jsm", "projects", "usersAndGroups"]
    );
    assert_eq!(child(&pending, "projects")["status"], "PENDING");
    assert_eq!(child(&pending, "jsm")["outcome"], "SKIPPED");
}

#[tokio::test]
async fn statuses_and_outcomes_take_the_chosen_case_at_every_level() {
    for (case, running, finished, success) in [
        ("upper", "IN_PROGRESS", "FINISHED", "SUCCESS"),
        ("lower", "in_progress", "finished", "success"),
        ("title", "In_progress", "Finished", "Success"),
    ] {
        let sim = sim_with("", &format!("enum_case = \"{case}\"")).await;
        let (job, task) = start_task(&sim, "acme-jira", &migrate_task(&[])).await;
        sim.advance("5m").await;
        let root = sim.tree(&job, &task, "?expandChildren=true").await;
        assert_eq!(root["status"], running, "{case}");
        let check = child(&root, "check");
        assert_eq!(check["status"], finished, "{case}");
        assert_eq!(check["outcome"], success, "{case}");
        assert_eq!(child(check, "AnonPermission")["outcome"], success, "{case}");
        let users = child(child(&root, "migrate"), "usersAndGroups");
        assert_eq!(users["status"], running, "{case}");
        // Filters take the served spelling.
        let filtered = sim
            .tree(
                &job,
                &task,
                &format!("?level=check&expandChildren=true&outcome={success}"),
            )
            .await;
        assert_eq!(names(&filtered).len(), 16, "{case}");
    }
}

#[tokio::test]
async fn unknown_status_words_replace_the_documented_ones() {
    let sim = sim_with("", "statuses = \"unknown\"\nscopes = \"all\"").await;
    let (job, task) = start_task(&sim, "acme-jira", &migrate_task(&[])).await;
    let root = sim.tree(&job, &task, "?expandChildren=true").await;
    assert_eq!(root["status"], "RUNNING");
    assert!(
        root.get("outcome").is_none(),
        "running nodes have no outcome"
    );
    assert_eq!(child(&root, "migrate")["status"], "QUEUED");
    sim.advance("5m").await;
    let root = sim.tree(&job, &task, "?expandChildren=true").await;
    let check = child(&root, "check");
    assert_eq!(check["status"], "COMPLETED");
    assert_eq!(
        check["outcome"], "SUCCESS",
        "finished nodes keep their outcome"
    );
    let running = sim
        .tree(
            &job,
            &task,
            "?level=migrate&expandChildren=true&status=RUNNING",
        )
        .await;
    assert_eq!(names(&running), ["usersAndGroups"]);

    let lower = sim_with("", "statuses = \"unknown\"\nenum_case = \"lower\"").await;
    let (job, task) = start_task(&lower, "acme-jira", &check_task()).await;
    assert_eq!(lower.tree(&job, &task, "").await["status"], "running");
}

#[tokio::test]
async fn a_server_end_status_stops_its_migrate_tasks_when_the_core_would_end() {
    let extra = "[servers.stark-jira]\nend_status = \"STOPPED\"\n";
    let sim = sim_with(extra, "scopes = \"all\"").await;
    let (job, task) = start_task(&sim, "stark-jira", &migrate_task(&[])).await;
    sim.advance("23m").await;
    assert_eq!(sim.tree(&job, &task, "").await["status"], "IN_PROGRESS");
    sim.advance("2m").await;
    let root = sim.tree(&job, &task, "?expandChildren=true").await;
    for node in [
        &root,
        child(&root, "migrate"),
        child(child(&root, "migrate"), "apps"),
    ] {
        assert_eq!(node["status"], "STOPPED", "{node}");
        assert_eq!(node["outcome"], "FAILED");
        assert_eq!(node["message"], "The migration was stopped.");
    }
    let migrate = child(&root, "migrate");
    assert_eq!(child(migrate, "projects")["outcome"], "SUCCESS");
    assert_eq!(child(&root, "check")["outcome"], "SUCCESS");
    let tasks = sim.tasks().await;
    assert_eq!(tasks[0].outcome.as_deref(), Some("FAILED"));
    // A Check task of that server is unaffected.
    let (job, check) = start_task(&sim, "stark-jira", &check_task()).await;
    sim.advance("5m").await;
    assert_eq!(sim.tree(&job, &check, "").await["outcome"], "SUCCESS");

    // Spelled per enum_case; a late tree never lists apps, which never started.
    let sim = sim_with(extra, "enum_case = \"lower\"").await;
    let (job, task) = start_task(&sim, "stark-jira", &migrate_task(&[])).await;
    sim.advance("25m").await;
    let migrate = sim
        .tree(&job, &task, "?level=migrate&expandChildren=true")
        .await;
    assert_eq!(migrate["status"], "stopped");
    assert_eq!(migrate["outcome"], "failed");
    assert_eq!(names(&migrate), ["projects", "usersAndGroups"]);
}
