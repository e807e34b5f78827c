//! Unit tests of the registry: names, zero series, the mode label, per-site series, items
//! kept after their scope ends, label hygiene.

use std::collections::BTreeSet;

use super::*;
use crate::report::model::ProgressCounter;

type Labels = Vec<(String, String)>;

/// `(name, labels, value)` of every sample line of the text format.
fn samples(text: &str) -> Vec<(String, Labels, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let value: f64 = value.parse().expect("a sample value is a number");
            let Some((name, rest)) = series.split_once('{') else {
                return (series.to_owned(), Vec::new(), value);
            };
            let body = rest.strip_suffix('}').expect("labels end with }");
            let mut labels = Vec::new();
            let mut remaining = body;
            while !remaining.is_empty() {
                let (key, after) = remaining.split_once("=\"").expect("key=\"value\"");
                let end = after.find('"').expect("a closing quote");
                labels.push((key.to_owned(), after[..end].to_owned()));
                remaining = after[end + 1..].trim_start_matches(',');
            }
            (name.to_owned(), labels, value)
        })
        .collect()
}

/// The value of the sample of `name` with exactly the labels `want`, besides `mode`.
fn value_of(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    samples(text)
        .into_iter()
        .map(|(name, labels, value)| {
            let labels: Labels = labels
                .into_iter()
                .filter(|(k, _)| k != MODE_LABEL)
                .collect();
            (name, labels, value)
        })
        .find(|(n, labels, _)| {
            n == name
                && labels.len() == want.len()
                && want
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, value)| value)
}

#[test]
fn every_spec_name_is_registered_exactly_once() {
    let metrics = Metrics::new(Mode::Migrate);
    let registered = metrics.metric_names();
    let unique: BTreeSet<&str> = registered.iter().map(String::as_str).collect();
    assert_eq!(
        unique.len(),
        registered.len(),
        "a name registered twice: {registered:?}"
    );
    let spec: BTreeSet<&str> = names::ALL.into_iter().collect();
    assert_eq!(unique, spec);

    let text = metrics.encode();
    for (name, kind) in [
        (names::SITES, "gauge"),
        (names::STAGE_DURATION_SECONDS, "histogram"),
        (names::API_REQUEST_DURATION_SECONDS, "histogram"),
        (names::RATE_LIMITED_TOTAL, "counter"),
        (names::RATE_LIMIT_WAIT_SECONDS_TOTAL, "counter"),
        (names::RUN_START_TIMESTAMP_SECONDS, "gauge"),
        (names::LAST_SUCCESS_TIMESTAMP_SECONDS, "gauge"),
        (names::BUILD_INFO, "gauge"),
    ] {
        let line = format!("# TYPE {name} {kind}\n");
        assert_eq!(text.matches(&line).count(), 1, "{line} in\n{text}");
    }
    #[cfg(target_os = "linux")]
    assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
}

#[test]
fn every_final_series_carries_the_mode_and_none_is_a_process_series() {
    for mode in [Mode::Check, Mode::Migrate] {
        let metrics = Metrics::new(mode);
        metrics.init_sites(["acme-jira"]);
        metrics.set_site_outcome("acme-jira", Outcome::Succeeded);
        metrics.observe_stage(Stage::Check, Duration::from_secs(40));
        metrics.on_response(Endpoint::TaskStatus, "200", Duration::from_millis(40));
        let text = metrics.encode_final();
        let all = samples(&text);
        assert!(all.len() > 100, "{text}");
        for (name, labels, _) in all {
            assert!(name.starts_with("cmafleet_"), "{name} in\n{text}");
            let modes: Vec<&str> = labels
                .iter()
                .filter(|(k, _)| k == MODE_LABEL)
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(modes, [mode.as_str()], "{name}{labels:?}");
        }
        assert!(!text.contains("process_"), "{text}");
        // The live text is the same plus the process's own series.
        let live = metrics.encode();
        for line in text.lines() {
            assert!(live.lines().any(|live| live == line), "{line}");
        }
        assert_eq!(metrics.mode(), mode);
    }
}

#[test]
fn every_outcome_stage_endpoint_and_bucket_starts_at_zero() {
    let text = Metrics::new(Mode::Check).encode();
    for outcome in Outcome::ALL
        .map(Outcome::as_str)
        .into_iter()
        .chain([PENDING, RUNNING])
    {
        assert_eq!(
            value_of(&text, names::SITES, &[("outcome", outcome)]),
            Some(0.0)
        );
    }
    let count = format!("{}_count", names::STAGE_DURATION_SECONDS);
    for stage in Stage::ALL {
        assert_eq!(
            value_of(&text, &count, &[("stage", stage.as_str())]),
            Some(0.0)
        );
    }
    for endpoint in Endpoint::ALL {
        let labels = [("endpoint", endpoint.template())];
        assert_eq!(
            value_of(&text, names::RATE_LIMITED_TOTAL, &labels),
            Some(0.0)
        );
        let count = format!("{}_count", names::API_REQUEST_DURATION_SECONDS);
        assert_eq!(value_of(&text, &count, &labels), Some(0.0));
    }
    for class in RateClass::ALL {
        let labels = [("bucket", class.as_str())];
        assert_eq!(
            value_of(&text, names::RATE_LIMIT_WAIT_SECONDS_TOTAL, &labels),
            Some(0.0)
        );
    }
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(value_of(&text, names::BUILD_INFO, &version), Some(1.0));
    assert_eq!(
        value_of(&text, names::RUN_START_TIMESTAMP_SECONDS, &[]),
        Some(0.0)
    );
}

#[test]
fn a_site_keeps_exactly_one_stage_series_as_it_moves() {
    let metrics = Metrics::new(Mode::Migrate);
    metrics.init_sites(["acme-jira", "acme-wiki", "globex"]);
    metrics.set_site_stage("acme-jira", Stage::Job);
    metrics.set_site_stage("acme-jira", Stage::Attach);
    metrics.set_site_stage("acme-jira", Stage::Migrate);
    metrics.set_site_stage("acme-wiki", Stage::Done);
    // Staying put changes nothing.
    metrics.set_site_stage("globex", Stage::Queued);

    let text = metrics.encode();
    let series: Vec<(String, String, f64)> = samples(&text)
        .into_iter()
        .filter(|(name, _, _)| name == names::SITE_STAGE)
        .map(|(_, labels, value)| {
            let get = |key: &str| {
                labels
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
                    .unwrap()
            };
            (get("site"), get("stage"), value)
        })
        .collect();
    assert_eq!(
        series,
        vec![
            ("acme-jira".to_owned(), "migrate".to_owned(), 1.0),
            ("acme-wiki".to_owned(), "done".to_owned(), 1.0),
            ("globex".to_owned(), "queued".to_owned(), 1.0),
        ]
    );

    metrics.init_sites(["initech"]);
    let text = metrics.encode();
    assert!(!text.contains("acme-jira"), "{text}");
    assert_eq!(
        value_of(
            &text,
            names::SITE_STAGE,
            &[("site", "initech"), ("stage", "queued")]
        ),
        Some(1.0)
    );
}

#[test]
fn site_counts_are_a_snapshot_of_the_known_outcomes() {
    let metrics = Metrics::new(Mode::Check);
    metrics.set_site_counts(&[("running", 3), ("pending", 5), ("failed", 1)]);
    metrics.set_site_counts(&[("running", 2), ("succeeded", 6), ("exploded", 9)]);
    let text = metrics.encode();
    let count = |outcome| value_of(&text, names::SITES, &[("outcome", outcome)]);
    assert_eq!(count("running"), Some(2.0));
    assert_eq!(count("succeeded"), Some(6.0));
    assert_eq!(count("pending"), Some(0.0));
    assert_eq!(count("failed"), Some(0.0));
    assert_eq!(count("exploded"), None);
}

#[test]
fn api_telemetry_lands_in_its_metrics() {
    let metrics = Metrics::new(Mode::Migrate);
    metrics.on_response(Endpoint::TaskStatus, "200", Duration::from_millis(40));
    metrics.on_response(Endpoint::TaskStatus, "200", Duration::from_millis(60));
    metrics.on_response(Endpoint::CreateTask, "429", Duration::from_millis(5));
    metrics.on_rate_limited(Endpoint::CreateTask);
    metrics.on_retry(Endpoint::CreateTask, "429");
    metrics.on_rate_wait(RateClass::CreateTask, Duration::from_millis(1500));
    metrics.on_rate_wait(RateClass::CreateTask, Duration::from_millis(500));
    metrics.observe_stage(Stage::Migrate, Duration::from_secs(5400));
    metrics.count_check("AnonPermission", "warning");
    metrics.count_check("AnonPermission", "WARNING");
    metrics.observe_scopes("acme-jira", &[scope("projects", None, "Issues", 1200, 300)]);
    metrics.set_run_start(1_700_000_000.0);

    let text = metrics.encode();
    let status = Endpoint::TaskStatus.template();
    let create = Endpoint::CreateTask.template();
    let requests = names::API_REQUESTS_TOTAL;
    assert_eq!(
        value_of(&text, requests, &[("endpoint", status), ("code", "200")]),
        Some(2.0)
    );
    assert_eq!(
        value_of(&text, requests, &[("endpoint", create), ("code", "429")]),
        Some(1.0)
    );
    let retries = names::API_RETRIES_TOTAL;
    assert_eq!(
        value_of(&text, retries, &[("endpoint", create), ("reason", "429")]),
        Some(1.0)
    );
    assert_eq!(
        value_of(&text, names::RATE_LIMITED_TOTAL, &[("endpoint", create)]),
        Some(1.0)
    );
    let wait = names::RATE_LIMIT_WAIT_SECONDS_TOTAL;
    assert_eq!(
        value_of(&text, wait, &[("bucket", "create_task")]),
        Some(2.0)
    );
    let sum = format!("{}_sum", names::API_REQUEST_DURATION_SECONDS);
    let total = value_of(&text, &sum, &[("endpoint", status)]).unwrap();
    assert!((total - 0.1).abs() < 1e-9, "{total}");
    let bucket = format!("{}_bucket", names::STAGE_DURATION_SECONDS);
    let migrate = |le| value_of(&text, &bucket, &[("stage", "migrate"), ("le", le)]);
    assert_eq!(migrate("3600"), Some(0.0));
    assert_eq!(migrate("7200"), Some(1.0));
    let checks = names::CHECK_RESULTS_TOTAL;
    let anon = [("check", "AnonPermission"), ("outcome", "WARNING")];
    assert_eq!(value_of(&text, checks, &anon), Some(2.0));
    let items = names::MIGRATION_ITEMS;
    assert_eq!(
        value_of(&text, items, &[("item", "Issues"), ("state", "total")]),
        Some(1200.0)
    );
    let processed = [("item", "Issues"), ("state", "processed")];
    assert_eq!(value_of(&text, items, &processed), Some(300.0));
    assert_eq!(
        value_of(&text, names::RUN_START_TIMESTAMP_SECONDS, &[]),
        Some(1_700_000_000.0)
    );
}

#[test]
fn labels_never_carry_urls_emails_or_error_text() {
    let metrics = Metrics::new(Mode::Migrate);
    metrics.init_sites(["acme-jira"]);
    metrics.count_check("https://acme.atlassian.net/wiki", "FAILED");
    metrics.count_check("admin@acme.example", "FAILED");
    metrics.count_check("We couldn't check: java.net.SocketTimeoutException", "oops");
    metrics.observe_scopes(
        "acme-jira",
        &[scope(
            "projects",
            None,
            "http://jira.acme.example/servers/a",
            1,
            1,
        )],
    );
    metrics.on_response(
        Endpoint::GetJob,
        "error sending request for url (https://x/)",
        Duration::ZERO,
    );

    let text = metrics.encode();
    assert!(!text.contains("://"), "{text}");
    assert!(!text.contains('@'), "{text}");
    assert!(!text.contains("Exception"), "{text}");
    for (name, labels, _) in samples(&text) {
        for (key, value) in labels {
            // Route templates are the one label made of path segments, by design.
            if key != "endpoint" {
                assert!(!value.contains('/'), "{name}{{{key}={value:?}}}");
            }
        }
    }
    let checks = names::CHECK_RESULTS_TOTAL;
    let other = [("check", labels::OTHER), ("outcome", "FAILED")];
    assert_eq!(value_of(&text, checks, &other), Some(2.0));
}

/// A scope snapshot with one counter; `outcome` set means finished.
fn scope(name: &str, outcome: Option<&str>, item: &str, total: u64, done: u64) -> ScopeResult {
    ScopeResult {
        name: name.to_owned(),
        status: if outcome.is_some() {
            "FINISHED"
        } else {
            "IN_PROGRESS"
        }
        .to_owned(),
        outcome: outcome.map(str::to_owned),
        message: None,
        percent: None,
        progress: if outcome.is_some() {
            Vec::new()
        } else {
            vec![ProgressCounter {
                name: item.to_owned(),
                total: Some(total),
                processed: Some(done),
            }]
        },
    }
}

#[test]
fn finished_scopes_keep_their_item_counts() {
    let metrics = Metrics::new(Mode::Migrate);
    metrics.observe_scopes(
        "acme-jira",
        &[scope("projects", None, "Issues", 5200, 1000)],
    );
    metrics.observe_scopes("globex", &[scope("projects", None, "Issues", 800, 790)]);
    // Both scopes end; the service shows no counters for finished scopes.
    metrics.observe_scopes("acme-jira", &[scope("projects", Some("SUCCESS"), "", 0, 0)]);
    metrics.observe_scopes("globex", &[scope("projects", Some("FAILED"), "", 0, 0)]);

    let text = metrics.encode_final();
    let items = |state| {
        value_of(
            &text,
            names::MIGRATION_ITEMS,
            &[("item", "Issues"), ("state", state)],
        )
    };
    assert_eq!(items("total"), Some(6000.0), "{text}");
    assert_eq!(items("processed"), Some(5990.0), "{text}");
}

#[test]
fn a_site_has_one_outcome_series_once_it_has_an_outcome() {
    let metrics = Metrics::new(Mode::Migrate);
    metrics.init_sites(["acme-jira", "acme-wiki", "globex"]);
    let outcomes = |metrics: &Metrics| -> Vec<(String, String)> {
        samples(&metrics.encode_final())
            .into_iter()
            .filter(|(name, _, _)| name == names::SITE_OUTCOME)
            .map(|(_, labels, value)| {
                assert_eq!(value, 1.0);
                let get = |key: &str| labels.iter().find(|(k, _)| k == key).unwrap().1.clone();
                (get("site"), get("outcome"))
            })
            .collect()
    };
    assert_eq!(outcomes(&metrics), [], "no outcome before a site ends");

    metrics.set_site_outcome("acme-jira", Outcome::Detached);
    metrics.set_site_outcome("acme-wiki", Outcome::Warnings);
    metrics.set_site_outcome("acme-wiki", Outcome::Warnings);
    // A resumed site ends again: its old outcome series goes.
    metrics.set_site_outcome("acme-jira", Outcome::Succeeded);
    let pair = |site: &str, outcome: &str| (site.to_owned(), outcome.to_owned());
    assert_eq!(
        outcomes(&metrics),
        [
            pair("acme-jira", "succeeded"),
            pair("acme-wiki", "warnings")
        ]
    );
    // The outcome and the stage of a site are independent series.
    metrics.set_site_stage("acme-jira", Stage::Done);
    assert_eq!(outcomes(&metrics).len(), 2);

    metrics.init_sites(["initech"]);
    assert_eq!(outcomes(&metrics), []);
}
