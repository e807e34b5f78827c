//! Unit tests of task progression: the tree of a planned task at chosen elapsed times.

use super::*;
use crate::cma::wire::{
    AppsScope, CreateTaskRequest, Destination, Flow, JobDefinition, KeyScope, Scope, Source,
    UsersAndGroups, UsersMode,
};
use crate::sim::plan::{Situation, TaskPlan};
use crate::sim::scenario::Scenario;

const SCENARIO: &str = r#"
[defaults]
check_duration = "8m"
migrate_duration = "70m"
apps_duration = "30m"
"#;

fn jira_job(apps: bool) -> JobDefinition {
    JobDefinition {
        flow: Flow::Jira,
        name: "cmafleet acme".into(),
        source: Source {
            server_id: "acme".into(),
        },
        destination: Destination {
            url: "https://acme.atlassian.net".into(),
        },
        scope: Scope {
            projects: Some(KeyScope {
                included_keys: Some(vec!["ABC".into(), "DEF".into()]),
                included_data: crate::cma::wire::IncludedData::All,
            }),
            users_and_groups: Some(UsersAndGroups {
                mode: UsersMode::All,
            }),
            apps: apps.then(|| AppsScope {
                included_keys: vec!["com.tempo.timesheets".into()],
            }),
            ..Scope::default()
        },
    }
}

fn plan_with(
    extra: &str,
    request: CreateTaskRequest,
    apps: bool,
    attached_for: Option<f64>,
) -> TaskPlan {
    let scenario = Scenario::parse_toml(&format!("{SCENARIO}\n{extra}")).unwrap();
    let profile = scenario.profile("acme");
    let definition = jira_job(apps);
    TaskPlan::new(&Situation {
        definition: &definition,
        request: &request,
        profile: Some(&profile),
        attached_for,
        not_attached_delay: 10.0,
    })
}

fn plan(extra: &str, request: CreateTaskRequest) -> TaskPlan {
    plan_with(extra, request, true, Some(86_400.0))
}

fn child<'a>(node: &'a StatusNode, path: &[&str]) -> &'a StatusNode {
    path.iter().fold(node, |node, name| {
        node.children
            .get(*name)
            .unwrap_or_else(|| panic!("no child {name} in {:?}", node.children.keys()))
    })
}

fn in_progress(node: &StatusNode) -> bool {
    node.status == Some(Status::InProgress)
}

const MIN: f64 = 60.0;

#[test]
fn checks_finish_one_by_one_then_the_check_task_passes() {
    let plan = plan("", CreateTaskRequest::check());
    let start = render(&plan, 0.0, false);
    assert!(in_progress(&start));
    assert_eq!(start.message.as_deref(), Some(CHECKS_RUNNING));
    let checks = &child(&start, &["check"]).children;
    assert_eq!(checks.len(), 16);
    assert!(checks.values().all(in_progress));
    let progress = |tree: &StatusNode| {
        let data = &child(tree, &["check"])
            .progress_details
            .as_ref()
            .unwrap()
            .data[0];
        (data.processed.unwrap(), data.total.unwrap())
    };
    assert_eq!(progress(&start), (0, 16));
    let mut finished_counts = Vec::new();
    for minute in 1..8 {
        let tree = render(&plan, f64::from(minute) * MIN, false);
        let done = child(&tree, &["check"])
            .children
            .values()
            .filter(|c| c.is_finished())
            .count();
        assert_eq!(progress(&tree).0 as usize, done);
        finished_counts.push(done);
    }
    assert!(
        finished_counts.windows(2).all(|w| w[0] <= w[1]),
        "{finished_counts:?}"
    );
    assert!(finished_counts[0] < finished_counts[6] && finished_counts[6] < 16);
    let end = render(&plan, 8.0 * MIN, false);
    assert!(end.is_finished());
    assert_eq!(end.outcome, Some(Outcome::Success));
    assert_eq!(end.message.as_deref(), Some(CHECKS_PASSED));
    assert!(end.progress_details.is_none());
    let check = child(&end, &["check", "AnonPermission"]);
    assert_eq!(check.outcome, Some(Outcome::Success));
    assert_eq!(check.details.as_ref().unwrap().excludable, Some(true));
}

#[test]
fn warnings_show_with_their_occurrences() {
    let extra = r#"
[servers.acme.checks.MissingAttachments]
outcome = "WARNING"
occurrences = ["ABC-12: invoice.pdf", "DEF-3: logo.png"]
"#;
    let end = render(&plan(extra, CreateTaskRequest::check()), 8.0 * MIN, false);
    assert_eq!(end.outcome, Some(Outcome::Warning));
    assert_eq!(end.message.as_deref(), Some(CHECKS_WARNING));
    let check = child(&end, &["check", "MissingAttachments"]);
    assert_eq!(check.outcome, Some(Outcome::Warning));
    assert_eq!(check.details.as_ref().unwrap().occurrences.len(), 2);
}

#[test]
fn include_keys_choose_the_checks_of_a_check_task() {
    let request: CreateTaskRequest = serde_json::from_str(
        r#"{"task":"Check","options":{"checkTypes":{"includeKeys":["AnonPermission","DatabaseSize"]}}}"#,
    )
    .unwrap();
    let end = render(&plan("", request), 8.0 * MIN, false);
    let names: Vec<_> = child(&end, &["check"]).children.keys().cloned().collect();
    assert_eq!(names, ["AnonPermission", "DatabaseSize"]);
}

#[test]
fn a_failed_check_blocks_the_migration() {
    let extra = r#"
[servers.acme.checks.CrossProjectEntityMissingProjectSelection]
outcome = "FAILED"
excludable = false
occurrences = ["Filter 10234 references project LAB"]
"#;
    let plan = plan(
        extra,
        CreateTaskRequest::migrate(&["CrossProjectEntityMissingProjectSelection".into()]),
    );
    let during = render(&plan, 4.0 * MIN, false);
    assert_eq!(child(&during, &["migrate"]).status, Some(Status::Pending));
    let end = render(&plan, 8.0 * MIN, false);
    assert!(end.is_finished());
    assert_eq!(end.outcome, Some(Outcome::Failed));
    assert_eq!(end.message.as_deref(), Some(CHECKS_FAILED));
    assert_eq!(child(&end, &["check"]).outcome, Some(Outcome::Failed));
    assert_eq!(child(&end, &["migrate"]).outcome, Some(Outcome::Skipped));
    assert_eq!(
        child(&end, &["migrate", "projects"]).outcome,
        Some(Outcome::Skipped)
    );
    // Nothing ever starts later.
    let later = render(&plan, 500.0 * MIN, false);
    assert_eq!(
        child(&later, &["migrate", "projects"]).outcome,
        Some(Outcome::Skipped)
    );
}

#[test]
fn exclude_keys_override_only_excludable_failures() {
    let extra = r#"
[servers.acme.checks.AnonPermission]
outcome = "FAILED"
"#;
    let overridden = plan(
        extra,
        CreateTaskRequest::migrate(&["AnonPermission".into()]),
    );
    assert!(!overridden.blocked);
    let tree = render(&overridden, 8.0 * MIN, false);
    assert_eq!(child(&tree, &["check"]).outcome, Some(Outcome::Warning));
    assert_eq!(
        child(&tree, &["check", "AnonPermission"]).outcome,
        Some(Outcome::Warning)
    );
    assert!(in_progress(&tree));

    let not_excluded = plan(extra, CreateTaskRequest::migrate(&[]));
    assert!(not_excluded.blocked);
    let stubborn = plan(
        "[servers.acme.checks.AnonPermission]\noutcome = \"FAILED\"\nexcludable = false\n",
        CreateTaskRequest::migrate(&["AnonPermission".into()]),
    );
    assert!(stubborn.blocked);
}

#[test]
fn scopes_run_in_order_with_progress_for_the_current_phase_only() {
    let plan = plan("", CreateTaskRequest::migrate(&[]));
    // 70m of core over weights users 1 + projects 6: users 10m, projects 60m (export 24m).
    let users_running = render(&plan, 8.0 * MIN + 5.0 * MIN, false);
    assert!(in_progress(child(
        &users_running,
        &["migrate", "usersAndGroups"]
    )));
    assert_eq!(
        child(&users_running, &["migrate", "projects"]).status,
        Some(Status::Pending)
    );
    assert!(child(&users_running, &["check"]).progress_details.is_none());

    let exporting = render(&plan, 8.0 * MIN + 10.0 * MIN + 12.0 * MIN, false);
    let projects = child(&exporting, &["migrate", "projects"]);
    assert_eq!(projects.message.as_deref(), Some("Exporting data"));
    let progress = projects.progress_details.as_ref().unwrap();
    assert_eq!(progress.percent, Some(50.0));
    let issues = progress.data.iter().find(|d| d.name == "Issues").unwrap();
    assert_eq!(issues.processed, Some(issues.total.unwrap() / 2));
    let project_count = progress.data.iter().find(|d| d.name == "Projects").unwrap();
    assert_eq!(project_count.total, Some(2));
    let users = child(&exporting, &["migrate", "usersAndGroups"]);
    assert_eq!(users.outcome, Some(Outcome::Success));
    assert!(users.progress_details.is_none());

    let importing = render(&plan, 8.0 * MIN + 10.0 * MIN + 30.0 * MIN, false);
    let projects = child(&importing, &["migrate", "projects"]);
    assert_eq!(projects.message.as_deref(), Some("Importing data"));
    assert_eq!(
        projects.progress_details.as_ref().unwrap().percent,
        Some(16.0)
    );
    // Scopes the job does not name are skipped from the start.
    assert_eq!(
        child(&importing, &["migrate", "jsm"]).outcome,
        Some(Outcome::Skipped)
    );
}

#[test]
fn apps_finish_after_the_core() {
    let plan = plan("", CreateTaskRequest::migrate(&[]));
    let core_done = render(&plan, 8.0 * MIN + 70.0 * MIN + 10.0 * MIN, false);
    assert!(core_done.is_finished());
    assert_eq!(core_done.outcome, Some(Outcome::Success));
    assert_eq!(
        child(&core_done, &["migrate"]).outcome,
        Some(Outcome::Success)
    );
    let apps = child(&core_done, &["migrate", "apps"]);
    assert!(in_progress(apps));
    assert_eq!(apps.message.as_deref(), Some("Exporting app data"));
    assert_eq!(plan.apps_end(), Some(108.0 * MIN));
    let all_done = render(&plan, 108.0 * MIN, false);
    assert_eq!(
        child(&all_done, &["migrate", "apps"]).outcome,
        Some(Outcome::Success)
    );
}

#[test]
fn a_failed_scope_fails_the_migration() {
    let extra = "[servers.acme.scopes.projects]\noutcome = \"FAILED\"\n";
    let plan = plan_with(
        extra,
        CreateTaskRequest::migrate(&[]),
        false,
        Some(86_400.0),
    );
    let end = render(&plan, 78.0 * MIN, false);
    assert_eq!(end.outcome, Some(Outcome::Failed));
    assert_eq!(end.message.as_deref(), Some("Migration failed."));
    assert_eq!(
        child(&end, &["migrate", "projects"]).outcome,
        Some(Outcome::Failed)
    );
    assert_eq!(
        child(&end, &["migrate", "usersAndGroups"]).outcome,
        Some(Outcome::Success)
    );
    assert_eq!(
        child(&end, &["migrate", "apps"]).outcome,
        Some(Outcome::Skipped)
    );
}

#[test]
fn a_task_on_an_unattached_site_fails_with_the_not_attached_message() {
    let plan = plan_with("", CreateTaskRequest::migrate(&[]), true, None);
    let early = render(&plan, 5.0, false);
    assert!(in_progress(&early));
    let end = render(&plan, 10.0, false);
    assert_eq!(end.outcome, Some(Outcome::Failed));
    let message = end.message.as_deref().unwrap();
    assert!(
        message.contains("is not attached through the CMA"),
        "{message}"
    );
    assert!(message.contains("Server ID acme is incorrect"), "{message}");
    assert_eq!(child(&end, &["check"]).message.as_deref(), Some(message));
    assert_eq!(child(&end, &["migrate"]).outcome, Some(Outcome::Skipped));
}

#[test]
fn an_attach_lapsing_mid_migration_fails_the_running_scope() {
    let extra = "[servers.acme]\nattach_lapse_fails_tasks = true\n";
    // Attach valid 30 more minutes: checks (8m) and users (10m) finish, projects is running.
    let plan = plan_with(
        extra,
        CreateTaskRequest::migrate(&[]),
        true,
        Some(30.0 * MIN),
    );
    let before = render(&plan, 29.0 * MIN, false);
    assert!(in_progress(&before));
    let after = render(&plan, 31.0 * MIN, false);
    assert!(after.is_finished());
    assert_eq!(after.outcome, Some(Outcome::Failed));
    assert!(after.message.as_deref().unwrap().contains("not attached"));
    assert_eq!(
        child(&after, &["migrate", "usersAndGroups"]).outcome,
        Some(Outcome::Success)
    );
    assert_eq!(
        child(&after, &["migrate", "projects"]).outcome,
        Some(Outcome::Failed)
    );
    assert_eq!(
        child(&after, &["migrate", "apps"]).outcome,
        Some(Outcome::Skipped)
    );
    assert_eq!(plan.root_end(), 30.0 * MIN);
}

#[test]
fn hidden_pending_nodes_appear_when_they_start() {
    let plan = plan("", CreateTaskRequest::migrate(&[]));
    let during_checks = render(&plan, MIN, true);
    assert!(!during_checks.children.contains_key("migrate"));
    let migrating = render(&plan, 9.0 * MIN, true);
    let migrate = child(&migrating, &["migrate"]);
    assert!(migrate.children.contains_key("usersAndGroups"));
    assert!(!migrate.children.contains_key("projects"));
}

#[test]
fn an_end_status_stops_the_migration_when_its_core_would_end() {
    let extra = "[servers.acme]\nend_status = \"stopped\"\n";
    let plan = plan(extra, CreateTaskRequest::migrate(&[]));
    let running = render(&plan, 77.0 * MIN, false);
    assert!(in_progress(&running));
    assert_eq!(
        child(&running, &["migrate", "apps"]).status,
        Some(Status::Pending)
    );
    let stopped = render(&plan, 78.0 * MIN, false);
    let status = Some(Status::Unknown("STOPPED".into()));
    for path in [&[][..], &["migrate"], &["migrate", "apps"]] {
        let node = child(&stopped, path);
        assert_eq!(node.status, status, "{path:?}");
        assert_eq!(node.outcome, Some(Outcome::Failed), "{path:?}");
        assert_eq!(node.message.as_deref(), Some(MIGRATION_STOPPED), "{path:?}");
    }
    // Finished scopes keep their outcome; checks are unaffected.
    assert_eq!(
        child(&stopped, &["migrate", "projects"]).outcome,
        Some(Outcome::Success)
    );
    assert_eq!(child(&stopped, &["check"]).outcome, Some(Outcome::Success));
    assert_eq!(plan.root_end(), 78.0 * MIN);
    assert_eq!(plan.root_outcome(), Outcome::Failed);
    assert_eq!(plan.apps_end(), Some(78.0 * MIN), "apps never run");
    assert!(plan.scope_started("projects", 78.0 * MIN));
    assert!(!plan.scope_started("apps", 200.0 * MIN));
    assert!(!plan.scope_started("jsm", 200.0 * MIN), "not in the job");
    // A Check task of the same server ends as usual.
    let check = plan_with(extra, CreateTaskRequest::check(), true, Some(86_400.0));
    assert!(check.stop.is_none());
    assert_eq!(
        render(&check, 8.0 * MIN, false).outcome,
        Some(Outcome::Success)
    );
}

#[test]
fn scopes_start_one_after_another() {
    let plan = plan("", CreateTaskRequest::migrate(&[]));
    assert!(
        !plan.scope_started("usersAndGroups", 7.0 * MIN),
        "checks first"
    );
    assert!(plan.scope_started("usersAndGroups", 8.0 * MIN));
    assert!(!plan.scope_started("projects", 17.0 * MIN));
    assert!(plan.scope_started("projects", 18.0 * MIN));
    assert!(plan.scope_started("apps", 78.0 * MIN));
    let blocked = plan_with(
        "[servers.acme.checks.DatabaseSize]\noutcome = \"FAILED\"\n",
        CreateTaskRequest::migrate(&[]),
        true,
        Some(86_400.0),
    );
    assert!(!blocked.scope_started("usersAndGroups", 500.0 * MIN));
}
