//! The live status page (`/` of `--metrics-listen`) in a real headless Chromium during a run
//! against the simulator: its counts follow the run and match `/status.json`, and it says
//! nothing on the console. A screenshot is kept as `target/status-page-screenshot.png`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::{HELD_SCENARIO, LiveRun, counts, held_rows};
use crate::support::browser::Browser;

/// The outcome tiles the page shows, in its order.
const WORDS: [&str; 8] = [
    "pending",
    "running",
    "succeeded",
    "warnings",
    "blocked",
    "failed",
    "detached",
    "skipped",
];

/// The number on each outcome tile of a DOM dump.
fn tiles(dom: &str) -> BTreeMap<String, u64> {
    WORDS
        .iter()
        .map(|word| {
            let tile = dom
                .find(&format!("data-outcome=\"{word}\""))
                .unwrap_or_else(|| panic!("no `{word}` tile in the page:\n{dom}"));
            let rest = &dom[tile..];
            let number = &rest[rest.find("class=\"n\">").expect("a count") + 10..];
            let digits: String = number.chars().take_while(char::is_ascii_digit).collect();
            (
                (*word).to_owned(),
                digits.parse().expect("a number on the tile"),
            )
        })
        .collect()
}

/// The status's counts for every tile (missing words are 0).
fn expected(status: &Value) -> BTreeMap<String, u64> {
    let counts = counts(status);
    WORDS
        .iter()
        .map(|word| ((*word).to_owned(), counts.get(*word).copied().unwrap_or(0)))
        .collect()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_follows_a_run_in_a_headless_browser() {
    let Some(browser) = Browser::find("the_status_page_follows_a_run_in_a_headless_browser") else {
        return;
    };
    // Long enough for the first fetch of status.json, short of the page's 3 s refresh.
    let browser = browser.with_virtual_time(std::time::Duration::from_millis(1500));
    let run = LiveRun::start(HELD_SCENARIO, 60.0, held_rows()).await;
    // The browser helper resolves only `localhost` (no other name, no IP literal).
    let page = run.base.replace("127.0.0.1", "localhost");

    // Every site is in its Check task; the clock stands still, so nothing changes.
    run.wait_tasks(4).await;
    let before = run
        .wait_status("all four sites checking", |status| {
            counts(status).get("running") == Some(&4)
                && status["in_flight"]
                    .as_array()
                    .is_some_and(|sites| sites.iter().all(|site| site["stage"] == "check"))
        })
        .await;
    let (dom, console) = browser.dom(&page);
    assert!(console.is_empty(), "console:\n{}", console.join("\n"));
    let shown = tiles(&dom);
    assert_eq!(shown, expected(&before), "the page matches /status.json");
    assert_eq!(
        expected(&run.status().await),
        expected(&before),
        "no change meanwhile"
    );
    for site in ["fast1", "fast2", "slow1", "slow2"] {
        assert!(dom.contains(site), "{site} is listed in flight:\n{dom}");
    }
    assert!(dom.contains("0 of 4 sites finished (0%)"), "{dom}");

    // The fast sites' checks finish.
    run.advance("5m").await;
    let after = run
        .wait_status("the fast sites finished", |status| {
            counts(status).get("succeeded") == Some(&2) && counts(status).get("running") == Some(&2)
        })
        .await;
    let (dom, console) = browser.dom(&page);
    assert!(console.is_empty(), "console:\n{}", console.join("\n"));
    let shown_after = tiles(&dom);
    assert_eq!(
        shown_after,
        expected(&after),
        "the page matches /status.json"
    );
    assert_ne!(
        shown_after, shown,
        "the counts on the page changed as sites finished"
    );
    assert!(dom.contains("2 of 4 sites finished (50%)"), "{dom}");
    assert!(dom.contains("left"), "an ETA once sites finished:\n{dom}");

    let screenshot = target_dir().join("status-page-screenshot.png");
    browser.screenshot_rendered(&page, &screenshot, (1200, 900), (50, 0.95));

    let (code, _fleet) = run.finish().await;
    assert_eq!(code, 0);
}
