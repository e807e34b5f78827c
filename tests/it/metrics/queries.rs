//! Dashboard queries that must not mislead: each run counted once (the latest source per
//! shard, also for throughput and ETA), 429s counted once (no overlapping windows, no
//! counter jump when a pushed group is replaced by the next run's totals), the rate-limit
//! wait shown as the ratio it is, and the `mode` variable telling check and migration runs
//! apart — checked on the JSON, and in a real Prometheus where the question is what it
//! answers.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cmafleet::cma::{ApiObserver, Endpoint};
use cmafleet::metrics::Metrics;
use cmafleet::metrics::push::push;
use cmafleet::vocab::Mode;
use serde_json::Value;

use super::dashboard::{as_sent, as_sent_for, dashboard, dashboard_queries, panels};
use super::synthetic::{current_run_of, previous_run};
use crate::support::prometheus::{self, Prometheus, Pushgateway, ScrapeJob};

/// What picks, per shard, the source with the newest run (of the selected modes).
const LATEST: &str =
    "== on (shard) group_left max by (shard) (cmafleet_run_start_timestamp_seconds";
/// What leaves out a source whose run changed within the window (a replaced pushed group).
const NOT_REPLACED: &str =
    "unless on (job, instance, shard, mode) (changes(cmafleet_run_start_timestamp_seconds";

fn panel<'a>(dashboard: &'a Value, title: &str) -> &'a Value {
    panels(dashboard)
        .into_iter()
        .find(|panel| panel["title"] == title)
        .unwrap_or_else(|| panic!("a `{title}` panel"))
}

fn expr_of(dashboard: &Value, title: &str) -> String {
    panel(dashboard, title)["targets"][0]["expr"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn every_panel_counts_each_run_once() {
    let dashboard = dashboard();
    for (title, expr) in dashboard_queries(&dashboard) {
        // Every selector takes both variables, and every match on a source knows the mode
        // (a check and a migration of one shard are two sources).
        assert_eq!(
            expr.matches("{shard=~\"$shard\"").count(),
            expr.matches("{shard=~\"$shard\", mode=~\"$mode\"").count(),
            "{title}: {expr}"
        );
        assert_eq!(
            expr.matches("on (job, instance, shard").count(),
            expr.matches("on (job, instance, shard, mode)").count(),
            "{title}: {expr}"
        );
        // Site counts come from the latest run only — throughput and ETA too.
        if expr.contains("cmafleet_sites{") {
            assert!(expr.contains(LATEST), "{title} adds up runs: {expr}");
        }
        // Counters: a replaced pushed group's jump to the next run's totals is not traffic.
        if expr.contains("rate(") || expr.contains("increase(") {
            assert!(expr.contains(NOT_REPLACED), "{title}: {expr}");
        }
        // An increase per step over a window longer than the step counts each event in
        // several steps.
        for (at, _) in expr.match_indices("increase(") {
            let window = &expr[at..];
            let window = &window[window.find('[').unwrap()..=window.find(']').unwrap()];
            assert_eq!(window, "[$__interval]", "{title}: {expr}");
        }
    }
    for title in ["Throughput", "ETA"] {
        let expr = expr_of(&dashboard, title);
        assert!(
            expr.contains(LATEST) && expr.contains(NOT_REPLACED),
            "{title}: {expr}"
        );
    }
}

#[test]
fn the_429_panel_counts_each_429_once_and_the_wait_panel_shows_a_ratio() {
    let dashboard = dashboard();
    let rate_limited = panel(&dashboard, "429s received");
    let expr = rate_limited["targets"][0]["expr"].as_str().unwrap();
    assert!(
        expr.contains("increase(cmafleet_rate_limited_total{")
            && expr.contains("[$__interval])")
            && !expr.contains("$__rate_interval"),
        "{expr}"
    );
    // A minimum interval of four 15 s scrapes, so each bar's window holds samples.
    let interval = rate_limited["interval"].as_str().expect("a min interval");
    assert!(["1m", "2m", "5m"].contains(&interval), "{interval}");
    assert_eq!(
        rate_limited["fieldConfig"]["defaults"]["custom"]["drawStyle"],
        "bars"
    );

    // Seconds waited per second: a ratio, not a duration.
    let wait = panel(&dashboard, "Rate-limit wait");
    let defaults = &wait["fieldConfig"]["defaults"];
    let unit = defaults["unit"].as_str().unwrap_or_default();
    for time_unit in [
        "s",
        "ms",
        "µs",
        "ns",
        "m",
        "h",
        "d",
        "dtdurations",
        "dtdurationms",
    ] {
        assert_ne!(unit, time_unit, "the wait is not a duration");
    }
    assert_eq!(
        defaults["custom"]["axisLabel"], "seconds waited per second",
        "{defaults}"
    );
    assert!(
        wait["targets"][0]["expr"]
            .as_str()
            .unwrap()
            .contains("rate(cmafleet_rate_limit_wait_seconds_total{")
    );

    // The mode variable works like the shard one.
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let mode = variables
        .iter()
        .find(|variable| variable["name"] == "mode")
        .expect("a mode variable");
    assert_eq!(mode["includeAll"], true);
    assert_eq!(mode["multi"], true);
    assert_eq!(mode["allValue"], ".*");
    assert_eq!(
        mode["definition"],
        "label_values(cmafleet_build_info, mode)"
    );
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A finished run that started `hours_ago` and received `rate_limited` 429s.
fn finished_run(hours_ago: f64, rate_limited: usize) -> Metrics {
    let metrics = Metrics::new(Mode::Check);
    metrics.set_run_start(now() - hours_ago * 3600.0);
    metrics.init_sites(["acme-jira", "globex"]);
    metrics.set_site_counts(&[("succeeded", 2)]);
    for _ in 0..rate_limited {
        metrics.on_rate_limited(Endpoint::CreateTask);
    }
    metrics
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_run_replacing_the_last_one_is_not_counted_as_429s() {
    let test = "a_pushed_run_replacing_the_last_one_is_not_counted_as_429s";
    let programs = [prometheus::PROMETHEUS, prometheus::PUSHGATEWAY];
    if prometheus::require(&programs, test).is_none() {
        return;
    }
    let gateway = Pushgateway::start(None).await.expect("required above");
    // Last night's run got 5 429s and pushed them.
    push(
        gateway.url(),
        Mode::Check,
        Some("0"),
        finished_run(26.0, 5).encode(),
    )
    .await
    .unwrap();
    let jobs = [ScrapeJob::new("pushgateway", &[gateway.address()]).honor_labels()];
    let prometheus = Prometheus::start(&jobs, &[]).await.expect("required above");
    prometheus
        .wait_for(
            r#"count_over_time(cmafleet_rate_limited_total{shard="0"}[1m]) >= 3"#,
            Duration::from_secs(60),
        )
        .await;
    // Tonight's run got 7 (all already seen live while it ran) and replaces the group.
    push(
        gateway.url(),
        Mode::Check,
        Some("0"),
        finished_run(2.0, 7).encode(),
    )
    .await
    .unwrap();
    prometheus
        .wait_for(
            r#"cmafleet_rate_limited_total{shard="0"} == 7"#,
            Duration::from_secs(60),
        )
        .await;

    // The naive query counts the jump from 5 to 7 as two new 429s...
    let naive = prometheus
        .query(r#"sum(increase(cmafleet_rate_limited_total{shard="0"}[15s]))"#)
        .await
        .unwrap();
    let jump: f64 = naive["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(jump > 0.0, "the scenario shows the jump: {naive}");
    // ... the panel counts none: no 429 happened in that interval.
    let expr = as_sent(&expr_of(&dashboard(), "429s received"), "0");
    let answer = prometheus.query(&expr).await.unwrap();
    let counted: f64 = answer["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sample| sample["value"][1].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(counted, 0.0, "{answer}");
}

/// `outcome → value` of an instant answer.
fn by_outcome(answer: &Value) -> BTreeMap<String, f64> {
    answer["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sample| {
            (
                sample["metric"]["outcome"].as_str().unwrap().to_owned(),
                sample["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// PUTs `metrics` to the Pushgateway group `job=cmafleet, mode, shard` (the grouping that
/// docs/metrics.md documents), as a run of that mode pushes its final values.
async fn push_group(gateway: &Pushgateway, mode: &str, shard: &str, metrics: &Metrics) {
    let url = gateway
        .url()
        .join(&format!("metrics/job/cmafleet/mode/{mode}/shard/{shard}"))
        .unwrap();
    let response = reqwest::Client::new()
        .put(url)
        .body(metrics.encode())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mode_variable_shows_the_latest_run_of_each_mode() {
    let test = "the_mode_variable_shows_the_latest_run_of_each_mode";
    let programs = [prometheus::PROMETHEUS, prometheus::PUSHGATEWAY];
    if prometheus::require(&programs, test).is_none() {
        return;
    }
    // One shard, two groups of one gateway (same job, same instance): its last migration
    // finished yesterday (9 succeeded, 1 failed); tonight's check holds 3 succeeded, 2
    // running, … .
    let gateway = Pushgateway::start(None).await.expect("required above");
    push_group(&gateway, "migrate", "0", &previous_run()).await;
    push_group(&gateway, "check", "0", &current_run_of(Mode::Check)).await;
    let jobs = [ScrapeJob::new("pushgateway", &[gateway.address()]).honor_labels()];
    let prometheus = Prometheus::start(&jobs, &[]).await.expect("required above");
    prometheus
        .wait_for(
            r#"count(count by (mode) (cmafleet_build_info{shard="0"})) == 2"#,
            Duration::from_secs(60),
        )
        .await;
    let expr = expr_of(&dashboard(), "Sites by outcome");
    let mut answers = BTreeMap::new();
    for mode in [".*", "check", "migrate"] {
        let answer = prometheus
            .query(&as_sent_for(&expr, "0", mode))
            .await
            .unwrap();
        answers.insert(mode, by_outcome(&answer));
    }
    // All modes: the newest run of the shard, tonight's check — not both mixed.
    assert_eq!(answers[".*"].get("running"), Some(&2.0), "{answers:?}");
    assert_eq!(answers[".*"].get("succeeded"), Some(&3.0), "{answers:?}");
    assert_eq!(answers[".*"].values().sum::<f64>(), 10.0, "{answers:?}");
    assert_eq!(answers[".*"], answers["check"]);
    // The migration stays one click away.
    assert_eq!(
        answers["migrate"].get("succeeded"),
        Some(&9.0),
        "{answers:?}"
    );
    assert_eq!(answers["migrate"].get("failed"), Some(&1.0), "{answers:?}");
}
