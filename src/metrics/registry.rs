//! The metric names and their owned `Registry`. Labels come from bounded sets only:
//! outcomes, stages, route templates, status codes, bucket classes, check names, site names.
//!
//! SKELETON: signatures fixed; bodies to be written (issue 6).

use std::time::Duration;

use crate::cma::client::ApiObserver;
use crate::cma::{Endpoint, RateClass};
use crate::fleet::Stage;

/// The run's metrics. Cheap to update from any task.
pub struct Metrics {}

impl Metrics {
    /// Registers every metric; series for every outcome and stage start at zero.
    pub fn new() -> Metrics {
        todo!()
    }

    /// `cmafleet_site_stage`: one series per inventory row, all at `queued`.
    pub fn init_sites<'a>(&self, sites: impl IntoIterator<Item = &'a str>) {
        let _ = sites.into_iter();
        todo!()
    }

    /// Moves a site's `cmafleet_site_stage` series to `stage`.
    pub fn set_site_stage(&self, site: &str, from: Stage, to: Stage) {
        let _ = (site, from, to);
        todo!()
    }

    /// `cmafleet_sites{outcome}`: counts for every outcome plus `pending` and `running`.
    pub fn set_site_counts(&self, counts: &[(&str, usize)]) {
        let _ = counts;
        todo!()
    }

    pub fn observe_stage(&self, stage: Stage, spent: Duration) {
        let _ = (stage, spent);
        todo!()
    }

    /// `cmafleet_check_results_total{check, outcome}`.
    pub fn count_check(&self, check: &str, outcome: &str) {
        let _ = (check, outcome);
        todo!()
    }

    /// `cmafleet_migration_items{item, state}` (fleet sums).
    pub fn set_migration_items(&self, item: &str, total: u64, processed: u64) {
        let _ = (item, total, processed);
        todo!()
    }

    pub fn set_run_start(&self, epoch_seconds: f64) {
        let _ = epoch_seconds;
        todo!()
    }

    pub fn set_last_success(&self, epoch_seconds: f64) {
        let _ = epoch_seconds;
        todo!()
    }

    /// The Prometheus text format (0.0.4) of every metric.
    pub fn encode(&self) -> String {
        todo!()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl ApiObserver for Metrics {
    fn on_response(&self, endpoint: Endpoint, code: &str, elapsed: Duration) {
        let _ = (endpoint, code, elapsed);
        todo!()
    }
    fn on_retry(&self, endpoint: Endpoint, reason: &'static str) {
        let _ = (endpoint, reason);
        todo!()
    }
    fn on_rate_limited(&self, endpoint: Endpoint) {
        let _ = endpoint;
        todo!()
    }
    fn on_rate_wait(&self, class: RateClass, waited: Duration) {
        let _ = (class, waited);
        todo!()
    }
}
