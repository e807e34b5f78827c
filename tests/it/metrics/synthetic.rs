//! Synthetic runs with realistic values: sites across outcomes and stages, API traffic,
//! checks and items — what a fleet run would export, without running one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cmafleet::cma::{ApiObserver, Endpoint, RateClass};
use cmafleet::metrics::Metrics;
use cmafleet::metrics::server::{StatusSource, serve};
use cmafleet::report::model::{ProgressCounter, ScopeResult};
use cmafleet::vocab::{Mode, Stage};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The sites of the synthetic fleet and where each one ends up in the current run.
pub const FLEET: [(&str, &[Stage], &str); 10] = {
    use Stage::*;
    const FULL: &[Stage] = &[Connect, Job, Attach, Check, Migrate, Collect, Done];
    [
        ("acme-jira", FULL, "succeeded"),
        ("acme-wiki", FULL, "succeeded"),
        ("globex-jira", FULL, "succeeded"),
        ("globex-wiki", FULL, "warnings"),
        ("initech", &[Job, Attach, Check, Done], "blocked"),
        ("hooli-jira", &[Job, Attach, Check, Migrate, Done], "failed"),
        ("hooli-wiki", &[Done], "skipped"),
        ("umbrella", &[Job, Attach, Check, Migrate], "running"),
        ("stark-jira", &[Job, Attach, Check], "running"),
        ("wayne-wiki", &[], "pending"),
    ]
};

/// The current run, two hours in: sites across outcomes and stages, API traffic, checks,
/// migrated items.
pub fn current_run() -> Metrics {
    current_run_of(Mode::Migrate)
}

/// [`current_run`] as a run of `mode` exports it (its `mode` label).
pub fn current_run_of(mode: Mode) -> Metrics {
    let metrics = Metrics::new(mode);
    metrics.set_run_start(now() - 2.0 * 3600.0);
    metrics.set_last_success(now() - 22.0 * 3600.0);
    metrics.init_sites(FLEET.iter().map(|(site, _, _)| *site));
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (n, (site, stages, outcome)) in FLEET.iter().enumerate() {
        let mut at = Stage::Queued;
        for (step, stage) in stages.iter().enumerate() {
            metrics.set_site_stage(site, *stage);
            let spent = 30 * (n as u64 + 1) * (step as u64 + 1);
            metrics.observe_stage(at, Duration::from_secs(spent));
            at = *stage;
        }
        *counts.entry(outcome).or_default() += 1;
    }
    metrics.set_site_counts(&counts.into_iter().collect::<Vec<_>>());
    for (check, outcome, sites) in [
        ("AnonPermission", "FAILED", 2),
        ("MissingAttachments", "FAILED", 1),
        ("CloudFreeUserLimit", "WARNING", 3),
        ("DatabaseSize", "SUCCESS", 8),
    ] {
        for _ in 0..sites {
            metrics.count_check(check, outcome);
        }
    }
    metrics.observe_scopes("umbrella", &[scope("projects", "Issues", 5000, 1200)]);
    metrics.observe_scopes("acme-wiki", &[scope("spaces", "Attachments", 800, 800)]);
    metrics.on_response(Endpoint::CreateJob, "200", Duration::from_millis(300));
    metrics.on_response(Endpoint::CreateTask, "429", Duration::from_millis(40));
    metrics.on_rate_limited(Endpoint::CreateTask);
    metrics.on_retry(Endpoint::CreateTask, "429");
    metrics.on_rate_wait(RateClass::CreateTask, Duration::from_secs(12));
    metrics
}

/// Last night's run of the same fleet, as the Pushgateway would still hold it: all done.
pub fn previous_run() -> Metrics {
    let metrics = Metrics::new(Mode::Migrate);
    metrics.set_run_start(now() - 26.0 * 3600.0);
    metrics.init_sites(FLEET.iter().map(|(site, _, _)| *site));
    for (site, _, _) in FLEET {
        metrics.set_site_stage(site, Stage::Done);
    }
    metrics.set_site_counts(&[("succeeded", 9), ("failed", 1)]);
    for _ in 0..5 {
        metrics.count_check("AnonPermission", "FAILED");
    }
    metrics.observe_scopes("acme-jira", &[scope("projects", "Issues", 5000, 5000)]);
    metrics
}

/// A scope in progress with one progress counter, as a status poll reports it.
fn scope(name: &str, item: &str, total: u64, processed: u64) -> ScopeResult {
    ScopeResult {
        name: name.to_owned(),
        status: "IN_PROGRESS".to_owned(),
        outcome: None,
        message: None,
        percent: None,
        progress: vec![ProgressCounter {
            name: item.to_owned(),
            total: Some(total),
            processed: Some(processed),
        }],
    }
}

/// Serves `metrics` like `--metrics-listen` does, until the token is cancelled.
pub async fn serve_metrics(metrics: Arc<Metrics>) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let status: StatusSource = Arc::new(|| serde_json::json!({}));
    tokio::spawn(serve(listener, metrics, status, shutdown.clone()));
    (address, shutdown)
}
