//! Metrics as operators meet them: every dashboard query and alert rule evaluated by a real
//! Prometheus scraping the `/metrics` server, pushes to a real Pushgateway, the textfile for
//! node_exporter, and the metric names of the dashboard, the rules and the docs checked
//! against the registry.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cmafleet::cma::{ApiObserver, Endpoint, RateClass};
use cmafleet::metrics::push::push;
use cmafleet::metrics::{Metrics, textfile};
use cmafleet::vocab::Mode;
use serde_json::Value;
use url::Url;

use crate::support::prometheus::{self, Prometheus, Pushgateway, ScrapeJob};

mod alerts;
pub(crate) mod dashboard;
mod final_values;
mod queries;
mod synthetic;

use dashboard::{
    alert_rules, as_sent, cmafleet_tokens, dashboard, dashboard_queries, is_registered, panels,
    registered_names, selected_metrics,
};
use synthetic::{FLEET, current_run, previous_run, serve_metrics};

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|error| panic!("read {path}: {error}"))
}

#[test]
fn the_dashboard_is_a_portable_grafana_dashboard() {
    let dashboard = dashboard();
    assert!(
        dashboard.get("__inputs").is_none(),
        "no __inputs: it imports anywhere"
    );
    let schema = dashboard["schemaVersion"].as_i64().unwrap();
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("a `{name}` variable"))
    };
    assert_eq!(variable("datasource")["type"], "datasource");
    assert_eq!(variable("datasource")["query"], "prometheus");
    let shard = variable("shard");
    assert_eq!(shard["includeAll"], true);
    assert_eq!(shard["multi"], true);
    assert_eq!(
        shard["allValue"], ".*",
        "All must also match series without a shard"
    );
    let definition = shard["definition"].as_str().unwrap();
    assert!(
        definition.starts_with("label_values(cmafleet_"),
        "{definition}"
    );

    let datasource = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
    let mut ids = BTreeSet::new();
    let mut cells = BTreeMap::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().unwrap();
        assert!(
            ids.insert(panel["id"].as_i64().unwrap()),
            "duplicate id at {title}"
        );
        let grid = &panel["gridPos"];
        let [h, w, x, y] = ["h", "w", "x", "y"].map(|k| grid[k].as_u64().unwrap());
        assert!(x + w <= 24, "{title} is wider than the screen");
        for row in y..y + h {
            for column in x..x + w {
                if let Some(other) = cells.insert((row, column), title) {
                    panic!("{title} overlaps {other}");
                }
            }
        }
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"], datasource, "{title}");
        assert!(
            !panel["description"].as_str().unwrap_or_default().is_empty(),
            "{title}"
        );
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} has no query");
        for target in targets {
            assert_eq!(target["datasource"], datasource, "{title}");
        }
    }
    let titles: BTreeSet<&str> = panels(&dashboard)
        .into_iter()
        .filter_map(|p| p["title"].as_str())
        .collect();
    for wanted in [
        "Sites by outcome",
        "Sites over time",
        "Fleet completion",
        "Site stages",
        "Throughput",
        "ETA",
        "API requests by endpoint and code",
        "429s received",
        "Rate-limit wait",
        "Stage durations (p50 / p90)",
        "Checks that fail most",
        "Items processed",
    ] {
        assert!(titles.contains(wanted), "no `{wanted}` panel: {titles:?}");
    }
}

#[test]
fn dashboard_and_rules_use_only_registered_metric_names() {
    let registered = registered_names();
    for (title, expr) in dashboard_queries(&dashboard()) {
        for name in selected_metrics(&expr) {
            assert!(
                is_registered(&registered, &name) || name.starts_with("process_"),
                "panel `{title}` selects `{name}`, which cmafleet does not export"
            );
        }
    }
    for (alert, expr) in alert_rules() {
        for name in selected_metrics(&expr) {
            // The Pushgateway's own per-group bookkeeping.
            let gateway = ["push_time_seconds", "push_failure_time_seconds"];
            assert!(
                is_registered(&registered, &name) || gateway.contains(&name.as_str()),
                "alert {alert} selects `{name}`, which nobody exports"
            );
        }
    }
    // Every cmafleet_ token anywhere in those files too (descriptions, examples, tests).
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("dashboards"))
        .unwrap()
        .chain(std::fs::read_dir(repo("deploy/prometheus")).unwrap())
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        for token in cmafleet_tokens(&std::fs::read_to_string(&file).unwrap()) {
            assert!(
                is_registered(&registered, &token),
                "{} names `{token}`, which is not a registered metric",
                file.display()
            );
        }
    }
    // The lexer itself finds what it must.
    assert_eq!(
        selected_metrics(
            r#"max by (le) (rate(a_bucket{x="y"}[5m])) / on (job) group_left b and sum(c) > 0.5"#
        ),
        ["a_bucket", "b", "c"].map(String::from).into()
    );
}

#[test]
fn every_registered_metric_is_documented() {
    let registered = registered_names();
    let mut documents = vec![("docs/metrics.md", read("docs/metrics.md"))];
    // README carries the same table once its Metrics section is pasted in.
    if let Ok(readme) = std::fs::read_to_string(repo("README.md"))
        && readme.lines().any(|line| line.trim() == "## Metrics")
    {
        documents.push(("README.md", readme));
    }
    for (path, text) in documents {
        let table: BTreeSet<String> = text
            .lines()
            .filter(|line| line.starts_with("| `cmafleet_"))
            .flat_map(cmafleet_tokens)
            .collect();
        assert_eq!(table, registered, "the metric table of {path}");
        for (alert, _) in alert_rules() {
            assert!(text.contains(&alert), "{path} does not explain {alert}");
        }
        for panel in panels(&dashboard()) {
            let title = panel["title"].as_str().unwrap();
            if panel["type"] != "row" {
                assert!(
                    text.contains(title),
                    "{path} does not explain panel `{title}`"
                );
            }
        }
    }
}

// ---- a real Prometheus -----------------------------------------------------------------

/// Values of an instant vector, keyed by one label.
fn by_label(result: &Value, label: &str) -> BTreeMap<String, f64> {
    result["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sample| {
            let key = sample["metric"][label]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let value = sample["value"][1].as_str().unwrap().parse().unwrap();
            (key, value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_evaluates_in_a_real_prometheus() {
    let test = "every_dashboard_query_evaluates_in_a_real_prometheus";
    if prometheus::require(&[prometheus::PROMETHEUS, prometheus::PROMTOOL], test).is_none() {
        return;
    }
    let current = Arc::new(current_run());
    let (current_address, current_stop) = serve_metrics(current.clone()).await;
    let (previous_address, previous_stop) = serve_metrics(Arc::new(previous_run())).await;
    // Requests keep coming while Prometheus watches, so rates are above zero.
    let traffic = {
        let current = current.clone();
        tokio::spawn(async move {
            loop {
                current.on_response(Endpoint::TaskStatus, "200", Duration::from_millis(80));
                current.on_rate_wait(RateClass::Read, Duration::from_millis(20));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let job = ScrapeJob::new("cmafleet", &[current_address, previous_address]);
    let alerts = repo("deploy/prometheus/alerts.yaml");
    let prometheus = Prometheus::start(&[job], &[alerts])
        .await
        .expect("required above");
    prometheus
        .wait_for(
            r#"count(count_over_time(up{job="cmafleet"}[1m]) >= 3 and up == 1) == 2"#,
            Duration::from_secs(60),
        )
        .await;

    let dashboard = dashboard();
    let mut answers = BTreeMap::new();
    let mut failures = Vec::new();
    for (title, expr) in dashboard_queries(&dashboard) {
        match prometheus.query(&as_sent(&expr, ".*")).await {
            Ok(data) => {
                answers.entry(title).or_insert(data);
            }
            Err(error) => failures.push(format!("panel `{title}`: {error}\n  {expr}")),
        }
    }
    for (alert, expr) in alert_rules() {
        if let Err(error) = prometheus.query(&expr).await {
            failures.push(format!("alert {alert}: {error}\n  {expr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The core panels show the current run only, not last night's pushed values on top.
    let outcomes = by_label(&answers["Sites by outcome"], "outcome");
    let expected: BTreeMap<String, f64> = [
        ("blocked", 1.0),
        ("detached", 0.0),
        ("failed", 1.0),
        ("pending", 1.0),
        ("running", 2.0),
        ("skipped", 1.0),
        ("succeeded", 3.0),
        ("warnings", 1.0),
    ]
    .map(|(outcome, n)| (outcome.to_owned(), n))
    .into();
    assert_eq!(outcomes, expected);
    let completion = by_label(&answers["Fleet completion"], "");
    assert_eq!(completion.values().copied().collect::<Vec<_>>(), vec![0.7]);
    let requests = &answers["API requests by endpoint and code"]["result"];
    let status_rate = requests
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["metric"]["endpoint"] == Endpoint::TaskStatus.template()
                && s["metric"]["code"] == "200"
        })
        .unwrap_or_else(|| panic!("status polls in {requests}"));
    let rate: f64 = status_rate["value"][1].as_str().unwrap().parse().unwrap();
    assert!(rate > 0.0, "{status_rate}");

    let stages = by_label(&answers["Site stages"], "site");
    assert_eq!(stages.len(), FLEET.len(), "one row per site: {stages:?}");
    let stage_of = |site: &str| {
        answers["Site stages"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["metric"]["site"] == site)
            .map(|s| s["metric"]["stage"].as_str().unwrap().to_owned())
    };
    assert_eq!(stage_of("umbrella").as_deref(), Some("migrate"));
    assert_eq!(stage_of("wayne-wiki").as_deref(), Some("queued"));
    let failing = by_label(&answers["Checks that fail most"], "check");
    assert_eq!(failing.get("AnonPermission"), Some(&2.0), "{failing:?}");
    let items = by_label(&answers["Items processed"], "item");
    assert_eq!(items.get("Issues"), Some(&0.24), "{items:?}");
    let per_stage = by_label(&answers["Sites per stage"], "stage");
    assert_eq!(per_stage.get("done"), Some(&7.0), "{per_stage:?}");

    // The alert rules load and evaluate cleanly against real series.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let groups = prometheus.rules().await;
        let rules: Vec<Value> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().clone())
            .collect();
        assert_eq!(rules.len(), 5, "{groups}");
        if rules.iter().all(|rule| rule["health"] == "ok") {
            break;
        }
        let unhealthy = rules.iter().find(|rule| rule["health"] == "err");
        assert!(unhealthy.is_none(), "a rule failed: {unhealthy:?}");
        assert!(
            std::time::Instant::now() < deadline,
            "rules not evaluated: {groups}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // What Prometheus scraped passes promtool's checks.
    let scraped = reqwest::get(format!("http://{current_address}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    if let Some(verdict) = prometheus::promtool_check_metrics(&scraped) {
        verdict.unwrap();
    }

    traffic.abort();
    current_stop.cancel();
    previous_stop.cancel();
    drop(prometheus);
}

// ---- Pushgateway -------------------------------------------------------------------------

/// The value of the sample of `name` whose labels include all of `labels` and no `shard`
/// unless asked.
fn gateway_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .find(|line| {
            let (series, _) = line.rsplit_once(' ').unwrap();
            let wants_shard = labels.iter().any(|(k, _)| *k == "shard");
            labels
                .iter()
                .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
                && (wants_shard || !series.contains("shard="))
        })
        .map(|line| line.rsplit_once(' ').unwrap().1.parse().unwrap())
}

#[tokio::test]
async fn pushes_land_in_the_gateway_grouped_by_job_mode_and_shard() {
    // Behind a path prefix, as a gateway behind a reverse proxy is.
    let Some(gateway) = Pushgateway::start(Some("/pushgateway")).await else {
        return;
    };
    let fleet = Metrics::new(Mode::Migrate);
    fleet.init_sites(["acme-jira", "globex"]);
    fleet.set_site_counts(&[("succeeded", 1), ("failed", 1)]);
    push(gateway.url(), Mode::Migrate, None, fleet.encode_final())
        .await
        .unwrap();

    let shard = Metrics::new(Mode::Migrate);
    shard.init_sites(["initech", "hooli"]);
    shard.set_site_counts(&[("succeeded", 2)]);
    push(
        gateway.url(),
        Mode::Migrate,
        Some("1"),
        shard.encode_final(),
    )
    .await
    .unwrap();
    // The same shard's check night has a group of its own: it replaces nothing above.
    let check = Metrics::new(Mode::Check);
    check.init_sites(["initech", "hooli"]);
    check.set_site_counts(&[("blocked", 2)]);
    push(gateway.url(), Mode::Check, Some("1"), check.encode_final())
        .await
        .unwrap();

    let text = gateway.metrics().await;
    let sites = "cmafleet_sites";
    let unsharded = [
        ("job", "cmafleet"),
        ("mode", "migrate"),
        ("outcome", "failed"),
    ];
    assert_eq!(gateway_value(&text, sites, &unsharded), Some(1.0), "{text}");
    let sharded = |mode, outcome| {
        let labels = [
            ("job", "cmafleet"),
            ("mode", mode),
            ("shard", "1"),
            ("outcome", outcome),
        ];
        gateway_value(&text, sites, &labels)
    };
    assert_eq!(sharded("migrate", "succeeded"), Some(2.0), "{text}");
    assert_eq!(sharded("migrate", "blocked"), Some(0.0), "{text}");
    assert_eq!(sharded("check", "blocked"), Some(2.0), "{text}");
    assert_eq!(sharded("check", "succeeded"), Some(0.0), "{text}");
    for mode in ["check", "migrate"] {
        let pushed = [("job", "cmafleet"), ("mode", mode), ("shard", "1")];
        assert!(gateway_value(&text, "push_time_seconds", &pushed).unwrap() > 0.0);
    }

    // A PUT replaces the shard's group of that mode: last run's sites do not linger.
    let again = Metrics::new(Mode::Migrate);
    again.init_sites(["hooli"]);
    push(
        gateway.url(),
        Mode::Migrate,
        Some("1"),
        again.encode_final(),
    )
    .await
    .unwrap();
    let text = gateway.metrics().await;
    let stage = "cmafleet_site_stage";
    let migrated = |site| [("mode", "migrate"), ("shard", "1"), ("site", site)];
    assert_eq!(gateway_value(&text, stage, &migrated("initech")), None);
    assert_eq!(gateway_value(&text, stage, &migrated("hooli")), Some(1.0));
    let checked = [("mode", "check"), ("shard", "1"), ("site", "initech")];
    assert_eq!(gateway_value(&text, stage, &checked), Some(1.0), "{text}");
    assert_eq!(
        gateway_value(&text, stage, &[("site", "acme-jira")]),
        Some(1.0),
        "{text}"
    );

    // The gateway refuses what is not the text format: the error says how, and no panic.
    let refused = push(
        gateway.url(),
        Mode::Check,
        Some("2"),
        "this is { not metrics".to_owned(),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.status, Some(400), "{refused}");
    assert!(refused.reason.contains("400 Bad Request: "), "{refused}");
    assert!(
        refused
            .url
            .ends_with("/pushgateway/metrics/job/cmafleet/mode/check/shard/2"),
        "{refused}"
    );
}

/// The dashboard's query of `panel` for the shards matching `shard`.
async fn panel_answer(prometheus: &Prometheus, panel: &str, shard: &str) -> Value {
    let (_, expr) = dashboard_queries(&dashboard())
        .into_iter()
        .find(|(title, _)| title == panel)
        .unwrap_or_else(|| panic!("a `{panel}` panel"));
    prometheus
        .query(&as_sent(&expr, shard))
        .await
        .unwrap_or_else(|error| panic!("{panel} on {}: {error}", prometheus.url()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shard_variable_selects_pushed_and_scraped_shards() {
    let test = "the_shard_variable_selects_pushed_and_scraped_shards";
    let programs = [prometheus::PROMETHEUS, prometheus::PUSHGATEWAY];
    if prometheus::require(&programs, test).is_none() {
        return;
    }
    // Shard 1 finished last night and pushed; shard 0 is running now and is scraped live,
    // its target labelled with its index as prometheus.yml's example does.
    let gateway = Pushgateway::start(Some("/pushgateway"))
        .await
        .expect("required above");
    let finished = previous_run();
    push(
        gateway.url(),
        Mode::Migrate,
        Some("1"),
        finished.encode_final(),
    )
    .await
    .unwrap();
    let (live, stop) = serve_metrics(Arc::new(current_run())).await;
    let jobs = [
        ScrapeJob::new("pushgateway", &[gateway.address()])
            .honor_labels()
            .metrics_path("/pushgateway/metrics"),
        ScrapeJob::new("cmafleet", &[live]).label("shard", "0"),
    ];
    let prometheus = Prometheus::start(&jobs, &[]).await.expect("required above");
    prometheus
        .wait_for(
            r#"count(count by (shard) (cmafleet_build_info{shard=~"0|1"})) == 2"#,
            Duration::from_secs(60),
        )
        .await;

    let shard_1 = by_label(
        &panel_answer(&prometheus, "Sites by outcome", "1").await,
        "outcome",
    );
    assert_eq!(shard_1.get("succeeded"), Some(&9.0), "{shard_1:?}");
    assert_eq!(shard_1.get("running"), Some(&0.0), "{shard_1:?}");
    let shard_0 = by_label(
        &panel_answer(&prometheus, "Sites by outcome", "0").await,
        "outcome",
    );
    assert_eq!(shard_0.get("succeeded"), Some(&3.0), "{shard_0:?}");
    assert_eq!(shard_0.get("running"), Some(&2.0), "{shard_0:?}");
    // "All" adds the shards up: each shard's latest run counts once.
    let all = by_label(
        &panel_answer(&prometheus, "Sites by outcome", ".*").await,
        "outcome",
    );
    assert_eq!(all.get("succeeded"), Some(&12.0), "{all:?}");
    assert_eq!(all.values().sum::<f64>(), 20.0, "{all:?}");
    let rows = &panel_answer(&prometheus, "Site stages", "(0|1)").await["result"];
    assert_eq!(rows.as_array().unwrap().len(), 2 * FLEET.len(), "{rows}");
    stop.cancel();
}

#[tokio::test]
async fn a_push_to_a_gateway_that_is_down_fails_without_leaking_credentials() {
    let port = prometheus::free_port();
    let gateway = Url::parse(&format!("http://pusher:s3cret@127.0.0.1:{port}/gw/")).unwrap();
    let metrics = Metrics::new(Mode::Check);
    let error = push(&gateway, Mode::Check, Some("0"), metrics.encode_final())
        .await
        .unwrap_err();
    let message = error.to_string();
    assert_eq!(error.status, None);
    assert!(
        !message.contains("s3cret") && !message.contains("pusher"),
        "{message}"
    );
    assert!(
        message.starts_with(&format!(
            "push metrics to http://127.0.0.1:{port}/gw/metrics/job/cmafleet/mode/check/shard/0: could not connect"
        )),
        "{message}"
    );
}

// ---- textfile ----------------------------------------------------------------------------

#[test]
fn the_textfile_holds_the_metrics_whole_and_nothing_else_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cmafleet.prom");
    let metrics = current_run();
    std::fs::write(&path, "cmafleet_sites{outcome=\"failed\"} 99\n").unwrap();
    let text = metrics.encode_final();
    textfile::write(&path, &text).unwrap();

    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(written, text);
    assert!(written.contains("cmafleet_sites{outcome=\"failed\",mode=\"migrate\"} 1\n"));
    for line in written.lines().filter(|line| !line.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        assert!(value.parse::<f64>().is_ok(), "{line}");
        // node_exporter exports its own process_* series: ours would clash there.
        assert!(series.starts_with("cmafleet_"), "{line}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "only the textfile: {left:?}");
    if let Some(verdict) = prometheus::promtool_check_metrics(&written) {
        verdict.unwrap();
    }
}
