//! Issue 6's acceptance against a real fleet: a run against the simulator serves
//! `--metrics-listen`, a real Prometheus scrapes it while sites are in flight and after some
//! finished, and every query of the dashboard evaluates through Prometheus's HTTP API; the
//! core panels (sites by outcome, completion, API requests) return the run's values, and
//! `promtool check metrics` passes on the scraped text.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::{HELD_SCENARIO, LiveRun, counts, held_rows};
use crate::metrics::dashboard::{as_sent, dashboard, dashboard_queries};
use crate::support::prometheus::{self, Prometheus, ScrapeJob};

/// The value of each sample of a query answer, keyed by `label`.
fn by_label(data: &Value, label: &str) -> BTreeMap<String, f64> {
    data["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sample| {
            let key = sample["metric"][label]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            (key, sample["value"][1].as_str().unwrap().parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_fleet_fills_every_dashboard_query_in_a_real_prometheus() {
    let test = "a_real_fleet_fills_every_dashboard_query_in_a_real_prometheus";
    if prometheus::require(&[prometheus::PROMETHEUS, prometheus::PROMTOOL], test).is_none() {
        return;
    }
    let run = LiveRun::start(HELD_SCENARIO, 60.0, held_rows()).await;
    run.wait_tasks(4).await;
    run.wait_status("all four sites checking", |status| {
        counts(status).get("running") == Some(&4)
    })
    .await;
    run.advance("5m").await;
    run.wait_status("the fast sites finished", |status| {
        counts(status).get("succeeded") == Some(&2)
    })
    .await;

    let target = run
        .base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("the metrics address");
    let job = ScrapeJob::new("cmafleet", &[target]);
    let prometheus = Prometheus::start(&[job], &[])
        .await
        .expect("required above");
    // Enough scrapes of the held run for rates over the dashboard's intervals.
    prometheus
        .wait_for(
            r#"count_over_time(up{job="cmafleet"}[1m]) >= 4 and up == 1"#,
            Duration::from_secs(90),
        )
        .await;

    let mut answers: BTreeMap<String, Value> = BTreeMap::new();
    let mut failures = Vec::new();
    let queries = dashboard_queries(&dashboard());
    assert!(queries.len() >= 12, "{} queries", queries.len());
    for (title, expr) in &queries {
        match prometheus.query(&as_sent(expr, ".*")).await {
            Ok(data) => {
                answers.entry(title.clone()).or_insert(data);
            }
            Err(error) => failures.push(format!("panel `{title}`: {error}\n  {expr}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The core panels show this run.
    let outcomes = by_label(&answers["Sites by outcome"], "outcome");
    assert_eq!(outcomes.get("succeeded"), Some(&2.0), "{outcomes:?}");
    assert_eq!(outcomes.get("running"), Some(&2.0), "{outcomes:?}");
    assert_eq!(
        outcomes.get("failed"),
        Some(&0.0),
        "declared at zero: {outcomes:?}"
    );
    let completion: Vec<f64> = by_label(&answers["Fleet completion"], "")
        .into_values()
        .collect();
    assert_eq!(completion, vec![0.5], "two of four sites done");
    let requests = by_label(&answers["API requests by endpoint and code"], "endpoint");
    assert!(
        requests.values().any(|rate| *rate > 0.0),
        "status polls while sites run: {requests:?}"
    );
    let stages = by_label(&answers["Site stages"], "site");
    assert_eq!(stages.len(), 4, "one row per site: {stages:?}");

    // What Prometheus scraped passes promtool.
    let scraped = reqwest::get(format!("{}metrics", run.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(scraped.contains("cmafleet_site_stage{"), "{scraped}");
    if let Some(verdict) = prometheus::promtool_check_metrics(&scraped) {
        verdict.unwrap();
    }

    drop(prometheus);
    let (code, _fleet) = run.finish().await;
    assert_eq!(code, 0);
}
