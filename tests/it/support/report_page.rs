//! `report.html` as a reader's browser lays it out: the report fixture, synthetic fleets of
//! any size, and probes (scripts run after the page's own, see [`Browser::probe`]) that
//! measure where the site table and the timeline's labels land.

// Shared by several tests of the one test binary; not every test uses every helper.
#![allow(dead_code)]

use std::path::PathBuf;

use chrono::Duration;
use cmafleet::report::RunReport;
use cmafleet::report::model::{SiteReport, StageSpan};
use cmafleet::vocab::{Mode, Outcome, Stage};
use serde_json::Value;

use super::browser::Browser;

/// `tests/fixtures/report/fleet.json`: nine sites, every outcome.
pub fn fixture() -> RunReport {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report/fleet.json");
    let text = std::fs::read_to_string(path).expect("fixture present");
    serde_json::from_str(&text).expect("fixture is a RunReport")
}

/// Where the tests keep files for people to look at (`target/`, or `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// The fixture's run with `sites` synthetic sites: outcomes in turn (so two thirds need
/// attention), four stages each, ids and a message of ordinary length.
pub fn synthetic(sites: usize) -> RunReport {
    let mut report = fixture();
    let start = report.run.started_at;
    report.sites = (0..sites)
        .map(|index| {
            let mut site =
                SiteReport::pending(&format!("customer-{index:05}-jira"), "jira", Mode::Migrate);
            let begin = start + Duration::seconds((index as i64 * 7) % 1_800);
            let checked = begin + Duration::seconds(60 + (index as i64 % 13) * 20);
            let end = checked + Duration::seconds(300 + (index as i64 % 29) * 45);
            let span = |stage, from, to| StageSpan {
                stage,
                started_at: from,
                finished_at: Some(to),
            };
            site.stages = vec![
                span(Stage::Job, begin, begin + Duration::seconds(2)),
                span(
                    Stage::Attach,
                    begin + Duration::seconds(2),
                    begin + Duration::seconds(4),
                ),
                span(Stage::Check, begin + Duration::seconds(4), checked),
                span(Stage::Migrate, checked, end),
            ];
            site.outcome = Some(Outcome::ALL[index % Outcome::ALL.len()]);
            site.stage = Stage::Done;
            site.message = format!("site {index} finished with a message of ordinary length");
            site.job_id = Some(format!("{index:08x}-0000-4000-8000-000000000000"));
            site.task_id = Some(format!("{index:08x}-1111-4111-8111-111111111111"));
            site.started_at = Some(begin);
            site.finished_at = Some(end);
            site
        })
        .collect();
    report
}

/// Measures the page's width, the site table's scroll box and its last column (Job / task),
/// and every label of the timeline, in CSS pixels of the viewport.
pub const LAYOUT_PROBE: &str = r#"(function () {
  var box = function (el) {
    var r = el.getBoundingClientRect();
    return { left: r.left, right: r.right, text: el.textContent };
  };
  var table = document.getElementById("site-table");
  var scroller = table.parentElement;
  var head = table.tHead.rows[0].cells;
  var svg = document.querySelector("svg.timeline");
  var out = {
    viewport: document.documentElement.clientWidth,
    page: document.documentElement.scrollWidth,
    scroller: { client: scroller.clientWidth, scroll: scroller.scrollWidth, box: box(scroller) },
    column: [box(head[head.length - 1])].concat(Array.prototype.map.call(
      table.tBodies[0].rows, function (row) { return box(row.cells[row.cells.length - 1]); })),
    timeline: box(svg),
    labels: Array.prototype.map.call(svg.querySelectorAll("text"), box)
  };
  var pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();"#;

/// Opens `html` at `width` px with [`LAYOUT_PROBE`] and asserts that the site table's last
/// column and every timeline label are inside the page: no horizontal scrolling of the page
/// or the table, no label outside the chart. `what` names the page in failure messages.
pub fn assert_fits(browser: &Browser, html: &str, width: u32, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (layout, console) = browser.probe(dir.path(), html, LAYOUT_PROBE, (width, 1000));
    assert!(
        console.is_empty(),
        "{what}: console:\n{}",
        console.join("\n")
    );
    let number = |value: &Value| value.as_f64().expect("a number");
    let viewport = number(&layout["viewport"]);
    assert_eq!(
        viewport,
        f64::from(width),
        "{what}: the window is {width} px"
    );
    assert!(
        number(&layout["page"]) <= viewport,
        "{what} at {width} px: the page scrolls sideways: {layout}"
    );
    let scroller = &layout["scroller"];
    assert!(
        number(&scroller["scroll"]) <= number(&scroller["client"]),
        "{what} at {width} px: the site table scrolls sideways ({} px of content in {} px)",
        scroller["scroll"],
        scroller["client"]
    );
    let right = number(&scroller["box"]["right"]).min(viewport);
    for cell in layout["column"].as_array().unwrap() {
        assert!(
            number(&cell["right"]) <= right + 0.5,
            "{what} at {width} px: the Job / task cell {:?} ends at {} px, the table at {right}",
            cell["text"],
            cell["right"]
        );
    }
    let chart = &layout["timeline"];
    let (left, right) = (number(&chart["left"]), number(&chart["right"]));
    assert!(right <= viewport, "{what} at {width} px: timeline {chart}");
    let labels = layout["labels"].as_array().unwrap();
    assert!(!labels.is_empty());
    for label in labels {
        assert!(
            number(&label["left"]) >= left - 0.5 && number(&label["right"]) <= right + 0.5,
            "{what} at {width} px: the timeline label {:?} spans {}–{} px, the chart {left}–{right}",
            label["text"],
            label["left"],
            label["right"]
        );
    }
}
