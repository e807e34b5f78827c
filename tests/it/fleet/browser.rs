//! The `report.html` of a real fleet run, opened in a real headless browser: it renders with
//! no console message at all, its screenshot is a picture, not a blank page, and its site
//! table (real ids, real messages) and timeline fit the page at 1280 px. The screenshot is
//! kept as `target/fleet-report-screenshot.png` for people to look at.

use super::FAST;
use crate::support::browser::{Browser, file_url};
use crate::support::fleet::{Fleet, Row};
use crate::support::report_page::{assert_fits, target_dir};

/// Every outcome a migrate run can give, in one fleet.
const SCENARIO: &str = r#"
    [defaults]
    check_duration = "4m"
    migrate_duration = "25m"
    apps_duration = "10h"
    [servers.initech.checks.MissingAttachments]
    outcome = "WARNING"
    occurrences = ["OPS-1042: network-diagram.vsdx", "HR-87: onboarding-checklist.docx"]
    [servers.umbrella.checks.CrossProjectEntityMissingProjectSelection]
    outcome = "FAILED"
    excludable = false
    occurrences = ["Board 57 'Lab operations' shows issues of project LAB, which is not selected"]
    [servers.hooli]
    connected = false
    [servers.stark.scopes.projects]
    outcome = "FAILED"
    message = "3 issues in ENG could not be imported (duplicate issue keys)"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_of_a_real_fleet_run_renders_in_a_headless_browser() {
    let Some(browser) =
        Browser::find("the_report_of_a_real_fleet_run_renders_in_a_headless_browser")
    else {
        return;
    };
    let rows = vec![
        Row::jira("acme").wave("1"),
        Row::jira("acme-finance")
            .server("acme")
            .cloud("https://acme-finance.atlassian.net")
            .keys("FIN;PAY")
            .wave("1"),
        Row::confluence("acme-wiki")
            .cloud("https://acme.atlassian.net")
            .wave("1"),
        Row::jira("initech").wave("1"),
        Row::jira("umbrella").wave("1"),
        Row::jira("hooli").wave("2"),
        Row::jira("stark").wave("2"),
        Row::jira("wayne")
            .apps("com.tempoplugin.tempo-timesheets")
            .wave("2"),
    ];
    let fleet = Fleet::start(SCENARIO, FAST, rows).await;
    let output = fleet.run("migrate", "migrate", &[]).await;
    assert_eq!(output.code, 1, "{}", output.stderr);
    let outcomes: Vec<String> = fleet
        .summary("migrate")
        .values()
        .map(|row| row["outcome"].clone())
        .collect();
    for outcome in ["succeeded", "warnings", "blocked", "failed"] {
        assert!(
            outcomes.iter().any(|o| o == outcome),
            "{outcome} in {outcomes:?}"
        );
    }

    let screenshot = target_dir().join("fleet-report-screenshot.png");
    browser.screenshot_rendered(
        &file_url(&fleet.report_dir("migrate").join("report.html")),
        &screenshot,
        (1400, 2200),
        (200, 0.9),
    );
    let html = fleet.report_text("migrate", "report.html");
    assert_fits(&browser, &html, 1280, "a real run's report");
    for text in [
        "CrossProjectEntityMissingProjectSelection",
        "duplicate issue keys",
        "not connected",
        "still running after it: apps",
    ] {
        assert!(html.contains(text), "the report shows {text:?}");
    }
}
