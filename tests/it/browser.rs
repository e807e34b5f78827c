//! `report.html` in a real headless browser: it renders with no console message at all (no
//! error, no blocked load, no policy violation), and its screenshot is a picture, not a
//! blank page. The screenshot is kept as `target/report-screenshot.png` for people to look at.

use std::path::PathBuf;

use cmafleet::report::{RunReport, writer::ReportWriter};

use crate::support::browser::{Browser, file_url};

fn fleet() -> RunReport {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report/fleet.json");
    let text = std::fs::read_to_string(path).expect("fixture present");
    serde_json::from_str(&text).expect("fixture is a RunReport")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

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
