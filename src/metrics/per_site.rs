//! The two series every inventory row has — `cmafleet_site_stage{site,stage}` and, once it
//! ends, `cmafleet_site_outcome{site,outcome}` — kept as one small entry per site and turned
//! into series only when the metrics are gathered. A gauge vector would keep a child per
//! series, each with its own copy of the metric's description and label pairs, and a large
//! fleet's memory would grow with it (docs/performance.md has the figures). Deriving both
//! series from the entry also keeps each site at exactly one stage and one outcome.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};

use super::names;
use crate::vocab::{Outcome, Stage};

/// Where each site stands, shared by the [`Metrics`](super::Metrics) that update it and the
/// registry that gathers it.
#[derive(Clone)]
pub(super) struct PerSite {
    sites: Arc<Mutex<HashMap<String, SiteSeries>>>,
    stage: Desc,
    outcome: Desc,
}

/// What a site's two series say now.
#[derive(Debug, Clone, Copy)]
struct SiteSeries {
    stage: Stage,
    /// `None` until the site ends: it has no outcome series then.
    outcome: Option<Outcome>,
}

impl PerSite {
    pub(super) fn new() -> PerSite {
        let desc = |name: &str, help: &str, label: &str| {
            Desc::new(
                name.to_owned(),
                help.to_owned(),
                vec!["site".to_owned(), label.to_owned()],
                HashMap::new(),
            )
            .expect("a valid metric name and labels")
        };
        PerSite {
            sites: Arc::default(),
            stage: desc(
                names::SITE_STAGE,
                "1 for each inventory row, labelled with the site's current stage.",
                "stage",
            ),
            outcome: desc(
                names::SITE_OUTCOME,
                "1 for each inventory row that has an outcome in this run, labelled with it.",
                "outcome",
            ),
        }
    }

    /// Exactly these sites, all `queued`, none with an outcome.
    pub(super) fn init<'a>(&self, sites: impl IntoIterator<Item = &'a str>) {
        let mut current = self.sites();
        current.clear();
        for site in sites {
            current.insert(
                site.to_owned(),
                SiteSeries {
                    stage: Stage::Queued,
                    outcome: None,
                },
            );
        }
    }

    /// A site not seen before is added.
    pub(super) fn set_stage(&self, site: &str, stage: Stage) {
        self.entry(site, |series| series.stage = stage);
    }

    /// A site not seen before is added (at `done`).
    pub(super) fn set_outcome(&self, site: &str, outcome: Outcome) {
        self.entry(site, |series| series.outcome = Some(outcome));
    }

    fn entry(&self, site: &str, change: impl FnOnce(&mut SiteSeries)) {
        let mut current = self.sites();
        match current.get_mut(site) {
            Some(series) => change(series),
            None => {
                let mut series = SiteSeries {
                    stage: Stage::Done,
                    outcome: None,
                };
                change(&mut series);
                current.insert(site.to_owned(), series);
            }
        }
    }

    fn sites(&self) -> MutexGuard<'_, HashMap<String, SiteSeries>> {
        // Plain inserts and field writes: a panic elsewhere cannot leave the map torn.
        self.sites.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Collector for PerSite {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.stage, &self.outcome]
    }

    /// Both families, one series a site (an outcome series only for sites that ended); the
    /// registry sorts them and adds its `mode` label.
    fn collect(&self) -> Vec<MetricFamily> {
        let sites = self.sites();
        let stages = sites
            .iter()
            .map(|(site, series)| one(site, "stage", series.stage.as_str()))
            .collect();
        let outcomes = sites
            .iter()
            .filter_map(|(site, series)| Some(one(site, "outcome", series.outcome?.as_str())))
            .collect();
        vec![family(&self.stage, stages), family(&self.outcome, outcomes)]
    }
}

/// A gauge family of `desc` with `metrics`.
fn family(desc: &Desc, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(desc.fq_name.clone());
    family.set_help(desc.help.clone());
    family.set_field_type(MetricType::GAUGE);
    family.set_metric(metrics);
    family
}

/// The series `{site, label=value} 1`.
fn one(site: &str, label: &str, value: &str) -> Metric {
    let pair = |name: &str, value: &str| {
        let mut pair = LabelPair::default();
        pair.set_name(name.to_owned());
        pair.set_value(value.to_owned());
        pair
    };
    let mut metric = Metric::from_label(vec![pair("site", site), pair(label, value)]);
    let mut gauge = Gauge::default();
    gauge.set_value(1.0);
    metric.set_gauge(gauge);
    metric
}
