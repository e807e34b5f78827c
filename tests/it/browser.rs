//! `report.html` in a real headless browser: it renders with no console message at all (no
//! error, no blocked load, no policy violation), and its screenshot is a picture, not a
//! blank page; its site table and timeline fit the page at 1280 and 1900 px; a 10,000-site
//! report shows its first page of rows and renders the others on demand. The screenshot is
//! kept as `target/report-screenshot.png`, the large report as
//! `target/report-10000-sites/report.html`, for people to look at (and to time: README).

use chrono::Duration;
use cmafleet::report::{RunReport, writer::ReportWriter};

use crate::support::browser::{Browser, file_url};
use crate::support::report_page::{assert_fits, fixture as fleet, synthetic, target_dir};

#[test]
fn report_html_renders_in_a_headless_browser() {
    let Some(browser) = Browser::find("report_html_renders_in_a_headless_browser") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let fleet = fleet();
    ReportWriter::create(&reports)
        .unwrap()
        .write_all(&fleet, None, &[])
        .unwrap();

    let screenshot = target_dir().join("report-screenshot.png");
    // The styled report has badges, cards and timeline bars in many colours, plus
    // anti-aliased text.
    browser.screenshot_rendered(
        &file_url(&reports.join("report.html")),
        &screenshot,
        (1400, 2000),
        (200, 0.9),
    );
}

#[test]
fn report_html_script_runs_under_its_own_content_security_policy() {
    let Some(browser) =
        Browser::find("report_html_script_runs_under_its_own_content_security_policy")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet();
    let writer = ReportWriter::create(dir.path()).unwrap();
    writer.write_all(&fleet, None, &[]).unwrap();

    let (dom, console) = browser.dom(&file_url(&dir.path().join("report.html")));
    assert!(console.is_empty(), "console:\n{}", console.join("\n"));
    // The script unhides the filter bar and turns each site-table header into a sort button:
    // proof that the policy's hash admits it (a blocked script would also log a violation).
    assert!(
        dom.contains("<div id=\"site-tools\" class=\"tools\">"),
        "filter bar still hidden"
    );
    assert_eq!(
        dom.matches("<button type=\"button\" class=\"sort\">")
            .count(),
        9,
        "one sort button per site-table column"
    );
    assert!(
        dom.contains(">9 of 9 sites shown<"),
        "site count not written"
    );
}

/// The console check above is only worth something if it sees problems: a script planted in
/// the page (as a rendering bug that forgot to escape would) is refused by the page's policy,
/// and the refusal shows up as a console message.
#[test]
fn a_planted_script_is_refused_and_the_refusal_is_seen() {
    let Some(browser) = Browser::find("a_planted_script_is_refused_and_the_refusal_is_seen") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = cmafleet::report::html::render(&fleet()).replace(
        "<main class=\"wrap\">",
        "<main class=\"wrap\"><script>document.title = 'pwned';</script>\
         <img src=\"https://example.invalid/pixel.png\" alt=\"\">",
    );
    let path = dir.path().join("report.html");
    std::fs::write(&path, page).unwrap();

    let (dom, console) = browser.dom(&file_url(&path));
    assert!(
        !dom.contains("<title>pwned</title>"),
        "the planted script ran"
    );
    let refused = |what: &str| {
        console
            .iter()
            .any(|line| line.contains(what) && line.contains("Content Security Policy"))
    };
    assert!(
        refused("inline script"),
        "no refusal of the script in:\n{}",
        console.join("\n")
    );
    assert!(
        refused("example.invalid"),
        "no refusal of the image in:\n{}",
        console.join("\n")
    );
}

/// The fixture as a short run (three minutes, so the time axis reads seconds and its last
/// tick is the chart's right edge), with what makes a table wide in real runs: a long site
/// name, a long message, a check name no line break can split.
fn wide_fleet() -> RunReport {
    let mut fleet = fleet();
    let start = fleet.run.started_at;
    let squeeze = |at: chrono::DateTime<chrono::Utc>| start + (at - start) / 16;
    for site in &mut fleet.sites {
        for span in &mut site.stages {
            span.started_at = squeeze(span.started_at);
            span.finished_at = span.finished_at.map(squeeze);
        }
        site.started_at = site.started_at.map(squeeze);
        site.finished_at = site.finished_at.map(squeeze);
        for error in &mut site.errors {
            error.at = squeeze(error.at);
        }
    }
    fleet.run.finished_at = Some(start + Duration::minutes(3));
    fleet.sites[2].message =
        "checks failed: CrossProjectEntityMissingProjectSelection; no data moved".to_owned();
    fleet.sites[3].site = "globex-confluence-eu-central-production".to_owned();
    fleet.sites[3].message = "the cloud site is not connected to this server (connect it in \
        the Migration Assistant, or run with --connect): The destination cloud site \
        https://globex-eu.atlassian.net is not authorized with the server. Reconnect the cloud \
        site in the Cloud Migration Assistant and try again."
        .to_owned();
    fleet
}

#[test]
fn the_site_table_and_the_timeline_fit_the_page_at_1280_and_1900_px() {
    let Some(browser) =
        Browser::find("the_site_table_and_the_timeline_fit_the_page_at_1280_and_1900_px")
    else {
        return;
    };
    let page = cmafleet::report::html::render(&wide_fleet());
    assert!(
        page.contains(">02:03:00</text>"),
        "a tick at the right edge"
    );
    for width in [1280, 1900] {
        assert_fits(&browser, &page, width, "the fixture");
    }
}

/// Reads the first page of the site table, then turns pages, filters and sorts it: the rows
/// each step shows, with the pager's and the counter's words.
const PAGING_PROBE: &str = r##"(function () {
  var rows = function () {
    return Array.prototype.map.call(document.getElementById("site-table").tBodies[0].rows,
      function (row) { return [row.cells[0].textContent, row.getAttribute("data-outcome")]; });
  };
  var state = function () {
    return { rows: rows(), page: document.getElementById("page-label").textContent,
      count: document.getElementById("site-count").textContent,
      pager: !document.getElementById("site-pager").hidden };
  };
  var out = { first: state() };
  var next = document.getElementById("page-next");
  next.click();
  out.second = state();
  while (!next.disabled) { next.click(); }
  out.last = state();
  var outcome = document.getElementById("outcome-filter");
  outcome.value = "warnings";
  outcome.dispatchEvent(new Event("change"));
  out.warnings = state();
  outcome.value = "";
  outcome.dispatchEvent(new Event("change"));
  var text = document.getElementById("site-filter");
  text.value = "customer-09998";
  text.dispatchEvent(new Event("input"));
  out.found = state();
  text.value = "";
  text.dispatchEvent(new Event("input"));
  document.querySelector("#site-table thead th button").click();
  out.sorted = state();
  var pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();"##;

#[test]
fn a_ten_thousand_site_report_shows_attention_first_and_pages_through_the_rest() {
    let Some(browser) = Browser::find(
        "a_ten_thousand_site_report_shows_attention_first_and_pages_through_the_rest",
    ) else {
        return;
    };
    let fleet = synthetic(10_000);
    // Kept for people to open and time (README, "Reports").
    let kept = target_dir().join("report-10000-sites");
    ReportWriter::create(&kept)
        .unwrap()
        .write_all(&fleet, None, &[])
        .unwrap();
    let page = std::fs::read_to_string(kept.join("report.html")).unwrap();
    assert!(page.len() < 4 * 1024 * 1024, "{} bytes", page.len());

    let dir = tempfile::tempdir().unwrap();
    let (seen, console) = browser.probe(dir.path(), &page, PAGING_PROBE, (1280, 1000));
    assert!(console.is_empty(), "console:\n{}", console.join("\n"));
    let rows = |step: &str| -> Vec<(String, String)> {
        seen[step]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                (
                    row[0].as_str().unwrap().to_owned(),
                    row[1].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let words = |step: &str| -> Vec<String> { rows(step).into_iter().map(|r| r.1).collect() };

    // Failed sites first (every sixth site from the fourth, in report order).
    let first = rows("first");
    assert_eq!(first.len(), 100, "{}", seen["first"]);
    assert!(first.iter().all(|(_, word)| word == "failed"));
    assert_eq!(first[0].0, "customer-00003-jira");
    assert_eq!(first[1].0, "customer-00009-jira");
    assert_eq!(seen["first"]["page"], "Page 1 of 100 (1–100)");
    assert_eq!(seen["first"]["count"], "10000 of 10000 sites shown");
    assert_eq!(seen["first"]["pager"], true);

    let second = rows("second");
    assert_eq!(second.len(), 100);
    assert_eq!(second[0].0, "customer-00603-jira", "the 101st failed site");
    assert_eq!(seen["second"]["page"], "Page 2 of 100 (101–200)");

    assert!(words("last").iter().all(|word| word == "succeeded"));
    assert_eq!(seen["last"]["page"], "Page 100 of 100 (9901–10000)");
    assert_eq!(rows("last").last().unwrap().0, "customer-09996-jira");

    assert!(words("warnings").iter().all(|word| word == "warnings"));
    assert_eq!(seen["warnings"]["count"], "1667 of 10000 sites shown");
    assert_eq!(seen["warnings"]["page"], "Page 1 of 17 (1–100)");

    assert_eq!(
        rows("found"),
        [("customer-09998-jira".to_owned(), "blocked".to_owned())]
    );
    assert_eq!(seen["found"]["pager"], false, "one page: no pager");

    let sorted = rows("sorted");
    assert_eq!(sorted[0].0, "customer-00000-jira", "sorted by site name");
    assert_eq!(sorted[99].0, "customer-00099-jira");
}
