//! Snapshot and cross-renderer tests on a fixed, realistic fleet
//! (`tests/fixtures/report/fleet.json`: succeeded, warnings, blocked by checks, blocked by
//! no connection, failed scope, detached, skipped; checks failing on several sites; errors
//! with request ids). The expected files live in `tests/snapshots/report/`, plain files that
//! open in a spreadsheet, a Markdown viewer or a browser. After a deliberate change:
//! `UPDATE_SNAPSHOTS=1 cargo test --lib report::` and review the diff.

use chrono::{Duration, TimeZone, Utc};

use super::fixtures::{fleet, manifest_path, previous_fleet};
use super::model::{RunReport, SiteReport, StageSpan};
use super::site_table::PAGE_ROWS;
use super::{changes, csv, html, json, markdown};
use crate::vocab::{Mode, Outcome, Stage};

fn assert_snapshot(name: &str, actual: &str) {
    let path = manifest_path("tests/snapshots/report").join(name);
    let ci = std::env::var("CI").is_ok_and(|value| value == "true");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() && !ci {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "snapshot {} is missing; create it with UPDATE_SNAPSHOTS=1 and review it",
            path.display()
        )
    });
    if expected != actual {
        let new = manifest_path("target/snapshot-diffs").join(name);
        std::fs::create_dir_all(new.parent().unwrap()).unwrap();
        std::fs::write(&new, actual).unwrap();
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from its snapshot from line {}:\n  expected: {:?}\n  actual:   {:?}\n\
             actual output written to {}; diff it, and if the change is intended run \
             UPDATE_SNAPSHOTS=1 cargo test --lib report::",
            line + 1,
            expected.lines().nth(line).unwrap_or("<end of file>"),
            actual.lines().nth(line).unwrap_or("<end of file>"),
            new.display(),
        );
    }
}

#[test]
fn summary_csv_snapshot() {
    let bytes = csv::render(&fleet());
    assert_snapshot("summary.csv", std::str::from_utf8(&bytes).unwrap());
}

#[test]
fn summary_md_snapshot() {
    assert_snapshot("summary.md", &markdown::render(&fleet()));
}

#[test]
fn report_html_snapshot() {
    assert_snapshot("report.html", &html::render(&fleet()));
}

#[test]
fn changes_md_snapshot() {
    assert_snapshot(
        "changes.md",
        &changes::render(Some(&previous_fleet()), &fleet()),
    );
}

#[test]
fn changes_md_first_run_snapshot() {
    assert_snapshot("changes-first-run.md", &changes::render(None, &fleet()));
}

#[test]
fn json_snapshots() {
    let fleet = fleet();
    assert_snapshot(
        "run.json",
        std::str::from_utf8(&json::run(&fleet.run)).unwrap(),
    );
    let failed = fleet
        .sites
        .iter()
        .find(|site| site.site == "initech-jira")
        .unwrap();
    assert_snapshot(
        "sites/initech-jira.json",
        std::str::from_utf8(&json::site(failed)).unwrap(),
    );
}

#[test]
fn renderers_are_deterministic() {
    let fleet = fleet();
    assert_eq!(html::render(&fleet), html::render(&fleet));
    assert_eq!(markdown::render(&fleet), markdown::render(&fleet));
    assert_eq!(csv::render(&fleet), csv::render(&fleet));
}

/// Every piece of text in the fixture that a service or customer could control, with
/// markup planted in it.
fn with_hostile_text() -> RunReport {
    let mut fleet = fleet();
    let site = &mut fleet.sites[2];
    site.message = "<script>alert('message')</script> & <b>bold</b>".to_owned();
    site.product = "<img src=x onerror=alert(1)>".to_owned();
    site.job_id = Some("\"><script>alert('job')</script>".to_owned());
    let check = std::sync::Arc::make_mut(&mut site.checks[1]);
    check.name = "<script>alert('check')</script>".to_owned();
    check.occurrences = vec!["</td><script>alert('occurrence')</script>".to_owned()];
    check.message = Some("<iframe src=\"https://evil.example\"></iframe>".to_owned());
    site.notes = vec!["<script>alert('note')</script>".to_owned()];
    site.errors = vec![super::model::ErrorRecord {
        at: Utc.with_ymd_and_hms(2026, 3, 1, 2, 3, 0).unwrap(),
        stage: Stage::Check,
        endpoint: Some("<script>".to_owned()),
        status: Some(500),
        request_id: Some("<script>alert('request')</script>".to_owned()),
        message: "<svg onload=alert(1)>".to_owned(),
    }];
    fleet.run.run_id = "<script>alert('run')</script>".to_owned();
    fleet.run.notes = vec!["<script>alert('run note')</script>".to_owned()];
    fleet
}

#[test]
fn html_escapes_everything_from_the_service() {
    let page = html::render(&with_hostile_text());
    // The page's own script is the only one that runs; the other block is the site table's
    // data, which browsers never run, and nothing in it closes it early.
    assert_eq!(page.matches("<script").count(), 2, "{page}");
    assert_eq!(page.matches("<script>").count(), 1, "{page}");
    assert_eq!(
        page.matches("<script type=\"application/json\" id=\"site-data\">")
            .count(),
        1
    );
    assert_eq!(page.matches("</script>").count(), 2, "{page}");
    assert_eq!(page.matches("<script>(function").count(), 0);
    for planted in ["<img", "<iframe", "<svg onload", "<b>bold", "</td><script"] {
        assert!(!page.contains(planted), "raw {planted} in the page");
    }
    assert!(page.contains("&lt;script&gt;alert(&#39;message&#39;)&lt;/script&gt; &amp; &lt;b&gt;"));
    assert!(page.contains("&lt;/td&gt;&lt;script&gt;alert(&#39;occurrence&#39;)"));
    assert!(page.contains("&quot;&gt;&lt;script&gt;alert(&#39;job&#39;)"));
}

#[test]
fn markdown_and_csv_keep_planted_markup_inert() {
    let fleet = with_hostile_text();
    let md = markdown::render(&fleet);
    assert!(!md.contains("<script>"), "{md}");
    assert!(md.contains("\\<script\\>alert('message')\\</script\\> & \\<b\\>bold\\</b\\>"));
    // Each table row keeps its column count: no planted `|` or newline splits a cell.
    let mut fleet = fleet;
    fleet.sites[0].message = "a | b\nc".to_owned();
    let md = markdown::render(&fleet);
    let row = md
        .lines()
        .find(|line| line.starts_with("| acme-jira |"))
        .unwrap();
    assert!(row.ends_with("| a \\| b c |"), "{row}");
}

#[test]
fn html_loads_nothing_and_its_policy_allows_exactly_its_own_blocks() {
    let page = html::render(&fleet());
    for external in [
        "<link", " src=", "url(", "@import", "<iframe", "<img", "<object",
    ] {
        assert!(!page.contains(external), "{external} in report.html");
    }
    let between = |open: &str, close: &str| {
        let start = page.find(open).unwrap() + open.len();
        let end = start + page[start..].find(close).unwrap();
        page[start..end].to_owned()
    };
    let style = between("<style>", "</style>");
    let script = between("<script>", "</script>");
    let policy = between("Content-Security-Policy\" content=\"", "\"");
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = |block: &str| {
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(block.as_bytes()))
    };
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(
        policy.contains(&format!("style-src 'sha256-{}'", hash(&style))),
        "{policy}"
    );
    assert!(
        policy.contains(&format!("script-src 'sha256-{}'", hash(&script))),
        "{policy}"
    );
}

#[test]
fn html_has_a_title_a_language_and_table_headers() {
    let page = html::render(&fleet());
    assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(page.contains(
        "<title>cmafleet migrate run 20260301T020000Z-3f9c — 1 failed, 3 blocked, 1 detached</title>"
    ));
    assert!(page.contains("<th scope=\"col\">Site</th>"));
    assert!(
        page.contains(
            "<th scope=\"row\"><a href=\"sites/initech-jira.json\">initech-jira</a></th>"
        )
    );
}

#[test]
fn html_lists_fleet_checks_most_widespread_first_with_site_counts() {
    let page = html::render(&fleet());
    let app = page
        .find("<span class=\"name\">app-outdated</span>")
        .unwrap();
    let dup = page
        .find("<span class=\"name\">users-duplicate-email</span>")
        .unwrap();
    let plan = page
        .find("<span class=\"name\">cloud-plan-limits</span>")
        .unwrap();
    assert!(
        app < plan && dup < plan,
        "two-site checks before the one-site check"
    );
    assert!(page[app..].starts_with(
        "<span class=\"name\">app-outdated</span><span class=\"muted\">on 2 sites · 4 occurrences · not excludable</span>"
    ));
}

fn synthetic_fleet(sites: usize) -> RunReport {
    let mut fleet = fleet();
    let start = fleet.run.started_at;
    let outcomes = Outcome::ALL;
    fleet.sites = (0..sites)
        .map(|index| {
            let mut site =
                SiteReport::pending(&format!("customer-{index:05}-jira"), "jira", Mode::Migrate);
            let begin = start + Duration::seconds((index as i64 * 7) % 1_800);
            let checked = begin + Duration::seconds(60 + (index as i64 % 13) * 20);
            let end = checked + Duration::seconds(300 + (index as i64 % 29) * 45);
            site.stages = vec![
                StageSpan {
                    stage: Stage::Job,
                    started_at: begin,
                    finished_at: Some(begin + Duration::seconds(2)),
                },
                StageSpan {
                    stage: Stage::Attach,
                    started_at: begin + Duration::seconds(2),
                    finished_at: Some(begin + Duration::seconds(4)),
                },
                StageSpan {
                    stage: Stage::Check,
                    started_at: begin + Duration::seconds(4),
                    finished_at: Some(checked),
                },
                StageSpan {
                    stage: Stage::Migrate,
                    started_at: checked,
                    finished_at: Some(end),
                },
            ];
            site.outcome = Some(outcomes[index % outcomes.len()]);
            site.stage = Stage::Done;
            site.message = format!("site {index} finished with a message of ordinary length");
            site.job_id = Some(format!("00000000-0000-4000-8000-{index:012}"));
            site.task_id = Some(format!("11111111-1111-4111-8111-{index:012}"));
            site.checks = fleet_checks_for(index)
                .into_iter()
                .map(std::sync::Arc::new)
                .collect();
            site.started_at = Some(begin);
            site.finished_at = Some(end);
            site
        })
        .collect();
    fleet
}

fn fleet_checks_for(index: usize) -> Vec<super::model::CheckResult> {
    let outcome = match index % 5 {
        0 => "FAILED",
        1 => "WARNING",
        _ => "SUCCESS",
    };
    vec![super::model::CheckResult {
        name: "users-duplicate-email".to_owned(),
        status: "FINISHED".to_owned(),
        outcome: outcome.to_owned(),
        message: Some("emails shared by several users".to_owned()),
        occurrences: vec![format!("user{index}@example.com"); 3],
        excludable: Some(true),
        description: None,
    }]
}

#[test]
fn five_hundred_sites_render_into_a_reasonable_file() {
    let fleet = synthetic_fleet(500);
    let page = html::render(&fleet);
    assert!(page.len() < 3 * 1024 * 1024, "{} bytes", page.len());
    // The first page of rows is HTML; the script pages through the data block's 500.
    assert_eq!(page.matches("<tr data-outcome=").count(), PAGE_ROWS);
    assert_eq!(site_data(&page)["sites"].as_array().unwrap().len(), 500);
    assert!(
        page.contains("on 100 sites"),
        "users-duplicate-email failed on every 5th site"
    );
    // The timeline has one row group per site and stays a chart: bounded height.
    let svg_start = page.find("<svg class=\"timeline\"").unwrap();
    let view_box = &page[svg_start..];
    let height: f64 = view_box
        ["<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 1120 "
            .len()..]
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (2_000.0..=2_600.0).contains(&height),
        "timeline height {height}"
    );
    let md = markdown::render(&fleet);
    assert!(md.contains("| users-duplicate-email | FAILED | 100 | 300 | yes |"));
    assert!(md.contains("… and 75 more"), "site lists in md are capped");
}

/// The site table's data block of a rendered page.
fn site_data(page: &str) -> serde_json::Value {
    let open = "<script type=\"application/json\" id=\"site-data\">";
    let start = page.find(open).expect("a data block") + open.len();
    let end = start + page[start..].find("</script>").unwrap();
    serde_json::from_str(&page[start..end]).expect("the data block is JSON")
}

/// The outcome word of each site in the data block, in its order.
fn data_outcomes(data: &serde_json::Value) -> Vec<String> {
    let words = data["outcomes"].as_array().unwrap();
    data["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|site| {
            let index = site[3].as_u64().unwrap() as usize;
            words[index][0].as_str().unwrap().to_owned()
        })
        .collect()
}

const ATTENTION: [&str; 6] = [
    "failed", "blocked", "detached", "running", "pending", "warnings",
];

#[test]
fn ten_thousand_sites_render_into_a_file_that_opens_quickly_attention_first() {
    let fleet = synthetic_fleet(10_000);
    let page = html::render(&fleet);
    // It was 14 MB: 700 bytes of table row and 600 of timeline a site.
    assert!(page.len() < 4 * 1024 * 1024, "{} bytes", page.len());

    let data = site_data(&page);
    let outcomes = data_outcomes(&data);
    assert_eq!(outcomes.len(), 10_000, "every site once");
    let first_calm = outcomes
        .iter()
        .position(|word| !ATTENTION.contains(&word.as_str()))
        .unwrap();
    assert_eq!(first_calm, 6_667, "4 of each 6 outcomes need attention");
    assert!(
        outcomes[first_calm..]
            .iter()
            .all(|word| !ATTENTION.contains(&word.as_str())),
        "no site that needs attention after the others"
    );
    assert!(outcomes[..1_667].iter().all(|word| word == "failed"));

    // The HTML rows (what shows before the script runs) are the first page of the same order.
    let rows: Vec<&str> = page
        .split("<tr data-outcome=\"")
        .skip(1)
        .map(|row| &row[..row.find('"').unwrap()])
        .collect();
    assert_eq!(rows.len(), PAGE_ROWS);
    assert!(rows.iter().all(|word| *word == "failed"), "{rows:?}");
    assert!(page.contains("The 6667 sites that need attention"));

    // A fleet this large gets the timeline in lanes, and capped lists.
    assert!(page.contains("<svg class=\"timeline lanes\""));
    assert!(
        page.contains("… and 1900 more sites"),
        "2,000 sites failed the check"
    );
}

#[test]
fn the_site_table_shows_attention_first_and_keeps_report_order_within_an_outcome() {
    let page = html::render(&fleet());
    let rows: Vec<&str> = page
        .split("<tr data-outcome=\"")
        .skip(1)
        .map(|row| &row[row.find("sites/").unwrap() + 6..row.find(".json").unwrap()])
        .collect();
    assert_eq!(
        rows,
        [
            "initech-jira",
            "globex-jira",
            "globex-wiki",
            "stark-jira",
            "umbrella-jira",
            "acme-wiki",
            "hooli-wiki",
            "acme-jira",
            "wayne-wiki",
        ]
    );
    assert_eq!(
        data_outcomes(&site_data(&page))[..5],
        ["failed", "blocked", "blocked", "blocked", "detached"]
    );
}

#[test]
fn zero_and_one_site_render_without_gaps() {
    let mut empty = fleet();
    empty.sites.clear();
    let page = html::render(&empty);
    assert!(page.contains("No site was selected."));
    assert!(page.contains("No check failed or warned."));
    assert!(page.contains("No site has started a stage yet."));
    assert!(!page.contains("<svg"));
    let md = markdown::render(&empty);
    assert!(md.contains("No site was selected."));
    assert_eq!(
        csv::render(&empty).iter().filter(|b| **b == b'\n').count(),
        1
    );

    let one = synthetic_fleet(1);
    let page = html::render(&one);
    assert_eq!(page.matches("<tr data-outcome=").count(), 1);
    assert!(page.contains("Timeline of 1 site from"));
}

#[test]
fn a_running_report_says_so_and_draws_open_spans_to_the_latest_instant() {
    let mut fleet = fleet();
    fleet.run.finished_at = None;
    fleet.run.exit_code = None;
    let umbrella = fleet
        .sites
        .iter_mut()
        .find(|s| s.site == "umbrella-jira")
        .unwrap();
    umbrella.outcome = None;
    let page = html::render(&fleet);
    assert!(page.contains("not yet — the run is in progress"));
    assert!(page.contains("<span class=\"badge o-running\">running</span>"));
    assert!(page.contains("class=\"stage-migrate open\""));
    let md = markdown::render(&fleet);
    assert!(md.contains("| not finished | 1 |"));
    assert!(md.contains("the run is still in progress"));
}

#[test]
fn markdown_counts_and_fleet_checks() {
    let md = markdown::render(&fleet());
    for row in [
        "| succeeded | 2 |",
        "| blocked | 3 |",
        "| failed | 1 |",
        "| **total** | **9** |",
    ] {
        assert!(md.contains(row), "{row} missing from\n{md}");
    }
    let app = md
        .find("| app-outdated | FAILED | 2 | 4 | no | globex-jira, stark-jira |")
        .unwrap();
    let plan = md.find("| cloud-plan-limits | FAILED | 1 |").unwrap();
    assert!(app < plan);
}
