//! What a night leaves behind: a check run and a migration of the same fleet against the
//! simulator, each writing `--metrics-textfile` and pushing to a real Pushgateway. The
//! migration's files keep the items it moved (the service stops showing a scope's counters
//! once it is finished), every series carries its run's mode, each site's outcome is a
//! series, neither the file nor the push carries `process_*`, and the two nights keep a
//! Pushgateway group each.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::fleet::{Fleet, Row};
use crate::support::prometheus::Pushgateway;

/// Slow enough that every scope is polled while in progress (a scope finished between two
/// polls leaves no counters to keep), fast enough for a test: 20 simulated minutes of
/// migration last 2 s.
const TIME_SCALE: f64 = 600.0;

const SCENARIO: &str = r#"
    [defaults]
    check_duration = "3m"
    migrate_duration = "20m"
    [servers.acme.scopes.projects]
    items = { Issues = 5200 }
    [servers.wiki.scopes.spaces]
    items = { Pages = 1200 }
    [servers.fail.checks.MissingAttachments]
    outcome = "FAILED"
    excludable = false
"#;

/// One sample line: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Every sample of a text exposition.
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value = value.parse().expect("a number");
            let Some((name, mut rest)) = series.split_once('{') else {
                return (series.to_owned(), BTreeMap::new(), value);
            };
            let mut labels = BTreeMap::new();
            while let Some((key, after)) = rest.split_once("=\"") {
                let mut chars = after.char_indices();
                let mut label = String::new();
                let end = loop {
                    match chars.next().expect("a closing quote") {
                        (_, '\\') => label.push(chars.next().expect("an escape").1),
                        (at, '"') => break at,
                        (_, c) => label.push(c),
                    }
                };
                labels.insert(key.trim_start_matches(',').to_owned(), label);
                rest = &after[end + 1..];
            }
            (name.to_owned(), labels, value)
        })
        .collect()
}

/// `cmafleet_migration_items` as item → (total, processed).
fn items(samples: &[Sample]) -> BTreeMap<String, (f64, f64)> {
    let mut items: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (_, labels, value) in samples.iter().filter(|s| s.0 == "cmafleet_migration_items") {
        let entry = items.entry(labels["item"].clone()).or_default();
        match labels["state"].as_str() {
            "total" => entry.0 = *value,
            "processed" => entry.1 = *value,
            other => panic!("state {other}"),
        }
    }
    items
}

/// `cmafleet_site_outcome` as site → outcome (each series must be 1).
fn outcomes(samples: &[Sample]) -> BTreeMap<String, String> {
    let mut outcomes = BTreeMap::new();
    for (_, labels, value) in samples.iter().filter(|s| s.0 == "cmafleet_site_outcome") {
        assert_eq!(*value, 1.0, "{labels:?}");
        let previous = outcomes.insert(labels["site"].clone(), labels["outcome"].clone());
        assert_eq!(previous, None, "one outcome series per site: {labels:?}");
    }
    outcomes
}

fn read_samples(path: &Path, mode: &str) -> Vec<Sample> {
    let text = std::fs::read_to_string(path).unwrap();
    let all = samples(&text);
    assert!(!all.is_empty(), "{text}");
    for (name, labels, _) in &all {
        assert!(
            name.starts_with("cmafleet_"),
            "only cmafleet's own series (node_exporter has process_*): {name}"
        );
        assert_eq!(
            labels.get("mode").map(String::as_str),
            Some(mode),
            "{name}{labels:?}"
        );
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_night_s_final_metrics_keep_items_outcomes_and_mode_without_process_series() {
    let rows = vec![
        Row::jira("acme"),
        Row::confluence("wiki"),
        Row::jira("fail"),
    ];
    let fleet = Fleet::start(SCENARIO, TIME_SCALE, rows).await;
    let gateway = Pushgateway::start(None).await;
    let mut files = Vec::new();
    for mode in ["check", "migrate"] {
        let textfile = fleet.dir.path().join(format!("{mode}.prom"));
        let mut flags = vec![
            "--metrics-textfile".to_owned(),
            textfile.to_str().unwrap().to_owned(),
        ];
        if let Some(gateway) = &gateway {
            flags.extend(["--pushgateway".to_owned(), gateway.url().to_string()]);
        }
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let output = fleet.run(mode, mode, &flags).await;
        assert_eq!(
            output.code, 1,
            "{mode}: one site blocked\n{}",
            output.stderr
        );
        assert!(
            !output.stderr.contains("ERROR"),
            "{mode}: {}",
            output.stderr
        );
        files.push(textfile);
    }

    let expected: BTreeMap<String, String> = [
        ("acme", "succeeded"),
        ("wiki", "succeeded"),
        ("fail", "blocked"),
    ]
    .map(|(site, outcome)| (site.to_owned(), outcome.to_owned()))
    .into();
    let check = read_samples(&files[0], "check");
    assert_eq!(outcomes(&check), expected);
    assert_eq!(items(&check), BTreeMap::new(), "a check run moves no item");

    let migrate = read_samples(&files[1], "migrate");
    assert_eq!(outcomes(&migrate), expected);
    let moved = items(&migrate);
    assert_eq!(moved.get("Issues"), Some(&(5200.0, 5200.0)), "{moved:?}");
    assert_eq!(moved.get("Pages"), Some(&(1200.0, 1200.0)), "{moved:?}");
    for (item, (total, processed)) in &moved {
        assert_eq!(total, processed, "{item}: every scope succeeded: {moved:?}");
    }

    let Some(gateway) = gateway else { return };
    let text = gateway.metrics().await;
    let pushed: Vec<Sample> = samples(&text)
        .into_iter()
        .filter(|(_, labels, _)| labels.get("job").map(String::as_str) == Some("cmafleet"))
        .collect();
    for (name, labels, _) in &pushed {
        assert!(
            !name.starts_with("process_"),
            "the gateway exports its own process_* series: {name}{labels:?}"
        );
    }
    // Each night has its group; the migration did not replace the check run's.
    for (mode, samples) in [("check", &check), ("migrate", &migrate)] {
        let group: Vec<Sample> = pushed
            .iter()
            .filter(|(name, labels, _)| {
                name.starts_with("cmafleet_")
                    && labels.get("mode").map(String::as_str) == Some(mode)
            })
            .map(|(name, labels, value)| {
                let mut labels = labels.clone();
                labels.remove("job");
                labels.remove("instance");
                (name.clone(), labels, *value)
            })
            .collect();
        assert_eq!(outcomes(&group), expected, "{mode}");
        assert_eq!(items(&group), items(samples), "{mode}");
        assert_eq!(
            group.len(),
            samples.len(),
            "{mode}: the push is the textfile"
        );
    }
}
