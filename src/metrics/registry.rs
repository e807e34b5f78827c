//! The run's metrics in their owned `Registry`. Labels come from bounded sets only:
//! outcomes, stages, route templates, status codes, bucket classes, check names, site names,
//! and the run's `mode`, which every series carries.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    CounterVec, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use super::items::ItemCounts;
use super::labels;
use super::names;
use super::per_site::PerSite;
use crate::cma::client::ApiObserver;
use crate::cma::{Endpoint, RateClass, SurpriseKind};
use crate::report::model::ScopeResult;
use crate::vocab::{Mode, Outcome, Stage};

/// `cmafleet_sites` counts these besides the outcomes: sites not admitted yet, and in flight.
pub const PENDING: &str = "pending";
pub const RUNNING: &str = "running";

/// A stage lasts from seconds (job creation) to hours (a large migration).
const STAGE_BUCKETS: [f64; 15] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0,
    28800.0, 86400.0,
];

/// An API call lasts milliseconds to the client's request timeout (a minute).
const REQUEST_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The label every series of a run carries: `check` or `migrate`.
pub const MODE_LABEL: &str = "mode";

/// The run's metrics. Cheap to update from any task.
pub struct Metrics {
    /// Which kind of run these are the metrics of; every series carries it as `mode`.
    mode: Mode,
    /// Owned, so tests and several runs in one process never share series (the
    /// process-global default registry would). What the textfile and the push carry.
    registry: Registry,
    /// The process collector's `process_*` series, for the live `/metrics` only:
    /// node_exporter and the Pushgateway export their own, and ours would clash there.
    live_only: Registry,
    /// Every collector we registered, to list the names the registry holds even before a
    /// family has its first series (the text format omits empty families).
    collectors: Vec<Box<dyn Collector>>,
    sites: IntGaugeVec,
    /// `cmafleet_site_stage` and `cmafleet_site_outcome`, one entry a site.
    per_site: PerSite,
    api_surprises: IntCounterVec,
    stage_duration: HistogramVec,
    api_requests: IntCounterVec,
    api_duration: HistogramVec,
    api_retries: IntCounterVec,
    rate_limited: IntCounterVec,
    rate_wait: CounterVec,
    check_results: IntCounterVec,
    migration_items: IntGaugeVec,
    /// The last counts seen per site, scope and item behind `migration_items`.
    items: Mutex<ItemCounts>,
    run_start: Gauge,
    last_success: Gauge,
}

impl Metrics {
    /// Registers every metric for a run of `mode`; series for every outcome and stage start
    /// at zero.
    pub fn new(mode: Mode) -> Metrics {
        let common = HashMap::from([(MODE_LABEL.to_owned(), mode.as_str().to_owned())]);
        let registry = Registry::new_custom(None, Some(common))
            .expect("no prefix, and the common label is valid");
        let mut collectors: Vec<Box<dyn Collector>> = Vec::new();
        let mut add = |collector: &dyn CloneCollector| {
            registry
                .register(collector.boxed())
                .expect("every metric name is registered once");
            collectors.push(collector.boxed());
        };

        let sites = int_gauge_vec(
            names::SITES,
            "Sites of this run by outcome, plus pending (not admitted yet) and running.",
            &["outcome"],
        );
        add(&sites);
        let per_site = PerSite::new();
        add(&per_site);
        let api_surprises = int_counter_vec(
            names::API_SURPRISES_TOTAL,
            "Answers outside the API model cmafleet knows (unknown status, error envelope, …), each kind and value counted once per run.",
            &["kind"],
        );
        for kind in SurpriseKind::ALL {
            api_surprises.with_label_values(&[kind.as_str()]);
        }
        add(&api_surprises);
        let stage_duration = histogram_vec(
            names::STAGE_DURATION_SECONDS,
            "Time sites spent in each stage, observed when a site leaves the stage.",
            &["stage"],
            &STAGE_BUCKETS,
        );
        add(&stage_duration);
        let api_requests = int_counter_vec(
            names::API_REQUESTS_TOTAL,
            "CMA API attempts by route template and HTTP status (or timeout/connect/error).",
            &["endpoint", "code"],
        );
        add(&api_requests);
        let api_duration = histogram_vec(
            names::API_REQUEST_DURATION_SECONDS,
            "Duration of CMA API attempts by route template.",
            &["endpoint"],
            &REQUEST_BUCKETS,
        );
        add(&api_duration);
        let api_retries = int_counter_vec(
            names::API_RETRIES_TOTAL,
            "CMA API retries by route template and reason.",
            &["endpoint", "reason"],
        );
        add(&api_retries);
        let rate_limited = int_counter_vec(
            names::RATE_LIMITED_TOTAL,
            "HTTP 429 answers received, by route template.",
            &["endpoint"],
        );
        add(&rate_limited);
        let rate_wait = CounterVec::new(
            Opts::new(
                names::RATE_LIMIT_WAIT_SECONDS_TOTAL,
                "Seconds requests waited on a rate bucket before being sent, by bucket class.",
            ),
            &["bucket"],
        )
        .expect("metric options are static and valid");
        add(&rate_wait);
        let check_results = int_counter_vec(
            names::CHECK_RESULTS_TOTAL,
            "Pre-migration check results recorded, by check name and outcome.",
            &["check", "outcome"],
        );
        add(&check_results);
        let migration_items = int_gauge_vec(
            names::MIGRATION_ITEMS,
            "Fleet sums of the last migration progress counters seen per site and scope, by item and state (total, processed).",
            &["item", "state"],
        );
        add(&migration_items);
        let run_start = Gauge::new(
            names::RUN_START_TIMESTAMP_SECONDS,
            "Unix time this run started.",
        )
        .expect("metric options are static and valid");
        add(&run_start);
        let last_success = Gauge::new(
            names::LAST_SUCCESS_TIMESTAMP_SECONDS,
            "Unix time the last run that exited 0 ended (0 when unknown).",
        )
        .expect("metric options are static and valid");
        add(&last_success);
        let build_info = int_gauge_vec(
            names::BUILD_INFO,
            "Always 1; the version label says which cmafleet produced these metrics.",
            &["version"],
        );
        add(&build_info);

        let live_only = Registry::new();
        #[cfg(target_os = "linux")]
        live_only
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("the process collector is registered once");

        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for outcome in site_count_labels() {
            sites.with_label_values(&[outcome]).set(0);
        }
        for stage in Stage::ALL {
            let _ = stage_duration.with_label_values(&[stage.as_str()]);
        }
        for endpoint in Endpoint::ALL {
            let _ = api_duration.with_label_values(&[endpoint.template()]);
            let _ = rate_limited.with_label_values(&[endpoint.template()]);
        }
        for class in RateClass::ALL {
            let _ = rate_wait.with_label_values(&[class.as_str()]);
        }

        Metrics {
            mode,
            registry,
            live_only,
            collectors,
            sites,
            per_site,
            api_surprises,
            stage_duration,
            api_requests,
            api_duration,
            api_retries,
            rate_limited,
            rate_wait,
            check_results,
            migration_items,
            items: Mutex::new(ItemCounts::default()),
            run_start,
            last_success,
        }
    }

    /// The kind of run these metrics describe (their `mode` label).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// `cmafleet_site_stage`: one series per inventory row, all at `queued`; no
    /// `cmafleet_site_outcome` series yet. Site names come validated from the inventory
    /// (`[a-z0-9][a-z0-9._-]*`). Calling it again replaces the previous set of sites.
    pub fn init_sites<'a>(&self, sites: impl IntoIterator<Item = &'a str>) {
        self.per_site.init(sites);
    }

    /// Moves a site's one `cmafleet_site_stage` series to `stage`. A site not seen before
    /// gets its series here.
    pub fn set_site_stage(&self, site: &str, stage: Stage) {
        self.per_site.set_stage(site, stage);
    }

    /// Gives a site its one `cmafleet_site_outcome` series, or moves it to a new outcome.
    pub fn set_site_outcome(&self, site: &str, outcome: Outcome) {
        self.per_site.set_outcome(site, outcome);
    }

    /// `cmafleet_sites{outcome}`: counts for every outcome plus `pending` and `running`.
    /// A full snapshot: a known outcome missing from `counts` is set to 0; words outside the
    /// vocabulary are ignored (labels stay a bounded set).
    pub fn set_site_counts(&self, counts: &[(&str, usize)]) {
        for outcome in site_count_labels() {
            let count = counts
                .iter()
                .filter(|(word, _)| *word == outcome)
                .map(|(_, count)| *count)
                .sum::<usize>();
            self.sites
                .with_label_values(&[outcome])
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        for (word, _) in counts {
            if !site_count_labels().any(|known| known == *word) {
                tracing::warn!(outcome = %word, "site count for an unknown outcome ignored");
            }
        }
    }

    /// `cmafleet_stage_duration_seconds{stage}`: call once each time a site leaves `stage`
    /// (the Stalled alert reads a quiet `_count` as "no transition").
    pub fn observe_stage(&self, stage: Stage, spent: Duration) {
        self.stage_duration
            .with_label_values(&[stage.as_str()])
            .observe(spent.as_secs_f64());
    }

    /// `cmafleet_check_results_total{check, outcome}`: once per site and check when the
    /// check finishes. `outcome` as the service said it (`SUCCESS`, `WARNING`, `FAILED`,
    /// `SKIPPED`, any case; anything else counts as `UNKNOWN`).
    pub fn count_check(&self, check: &str, outcome: &str) {
        self.check_results
            .with_label_values(&[labels::opaque_name(check), labels::check_outcome(outcome)])
            .inc();
    }

    /// `cmafleet_migration_items{item, state}`: takes in one status snapshot of a site's
    /// scopes and publishes the fleet sums of the last counts seen (see [`ItemCounts`]).
    pub fn observe_scopes(&self, site: &str, scopes: &[ScopeResult]) {
        let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        for item in items.observe(site, scopes) {
            let sum = items.sum(&item);
            for (state, value) in [("total", sum.total), ("processed", sum.processed)] {
                self.migration_items
                    .with_label_values(&[&item, state])
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
    }

    pub fn set_run_start(&self, epoch_seconds: f64) {
        self.run_start.set(epoch_seconds);
    }

    /// The end of the last run that exited 0 on this state dir: set it at start from the
    /// state store, and again when this run ends with exit 0.
    pub fn set_last_success(&self, epoch_seconds: f64) {
        self.last_success.set(epoch_seconds);
    }

    /// The Prometheus text format (0.0.4) of every metric, and the process's own `process_*`
    /// series: what the live `/metrics` serves.
    pub fn encode(&self) -> String {
        let mut families = self.registry.gather();
        families.extend(self.live_only.gather());
        encode(&families)
    }

    /// The final metrics for the textfile and the Pushgateway: every `cmafleet_*` metric,
    /// and no `process_*` series (node_exporter and the gateway export their own).
    pub fn encode_final(&self) -> String {
        encode(&self.registry.gather())
    }

    /// The names of every registered `cmafleet_*` metric family, whether or not it has a
    /// series yet.
    pub fn metric_names(&self) -> Vec<String> {
        self.collectors
            .iter()
            .flat_map(|collector| collector.desc())
            .map(|desc| desc.fq_name.clone())
            .collect()
    }
}

/// The text format of `families`.
fn encode(families: &[prometheus::proto::MetricFamily]) -> String {
    TextEncoder::new()
        .encode_to_string(families)
        .unwrap_or_else(|error| {
            // Only malformed families fail to encode; ours are built from static options.
            tracing::error!(%error, "failed to encode metrics");
            String::new()
        })
}

impl ApiObserver for Metrics {
    fn on_response(&self, endpoint: Endpoint, code: &str, elapsed: Duration) {
        self.api_requests
            .with_label_values(&[endpoint.template(), labels::response_code(code)])
            .inc();
        self.api_duration
            .with_label_values(&[endpoint.template()])
            .observe(elapsed.as_secs_f64());
    }
    fn on_retry(&self, endpoint: Endpoint, reason: &'static str) {
        self.api_retries
            .with_label_values(&[endpoint.template(), reason])
            .inc();
    }
    fn on_rate_limited(&self, endpoint: Endpoint) {
        self.rate_limited
            .with_label_values(&[endpoint.template()])
            .inc();
    }
    fn on_rate_wait(&self, class: RateClass, waited: Duration) {
        self.rate_wait
            .with_label_values(&[class.as_str()])
            .inc_by(waited.as_secs_f64());
    }
    fn on_surprise(&self, kind: SurpriseKind) {
        self.api_surprises.with_label_values(&[kind.as_str()]).inc();
    }
}

/// A collector we can register and also keep (registering consumes a box).
trait CloneCollector {
    fn boxed(&self) -> Box<dyn Collector>;
}

impl<C: Collector + Clone + 'static> CloneCollector for C {
    fn boxed(&self) -> Box<dyn Collector> {
        Box::new(self.clone())
    }
}

/// The `outcome` label values of `cmafleet_sites`.
fn site_count_labels() -> impl Iterator<Item = &'static str> {
    Outcome::ALL
        .into_iter()
        .map(Outcome::as_str)
        .chain([PENDING, RUNNING])
}

fn int_gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("metric options are static and valid")
}

fn int_counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("metric options are static and valid")
}

fn histogram_vec(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .expect("metric options are static and valid")
}

#[cfg(test)]
mod tests;
