//! The checks that failed or warned across the fleet — which check, with which outcome, on
//! how many sites and which ones. One aggregation shared by `summary.md` and `report.html`.

use std::collections::BTreeMap;

use super::model::{CheckResult, RunReport};

/// The two check outcomes worth a fleet-wide list. `Failed` sorts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Failed,
    Warning,
}

impl Severity {
    /// The service's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Failed => "FAILED",
            Severity::Warning => "WARNING",
        }
    }

    /// A check node's outcome as a severity; `None` for SUCCESS, SKIPPED and anything else.
    pub fn of(check: &CheckResult) -> Option<Severity> {
        if check.outcome.eq_ignore_ascii_case("FAILED") {
            Some(Severity::Failed)
        } else if check.outcome.eq_ignore_ascii_case("WARNING") {
            Some(Severity::Warning)
        } else {
            None
        }
    }
}

/// One check with one severity, and every site where it came out that way.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetCheck<'a> {
    pub name: &'a str,
    pub severity: Severity,
    /// In report order, each site once.
    pub sites: Vec<SiteCheck<'a>>,
}

/// One site's nodes for a check (normally one node; kept as a list in case the service
/// reports a check twice).
#[derive(Debug, Clone, PartialEq)]
pub struct SiteCheck<'a> {
    pub site: &'a str,
    pub nodes: Vec<&'a CheckResult>,
}

impl SiteCheck<'_> {
    /// Every occurrence the service listed for this site.
    pub fn occurrences(&self) -> impl Iterator<Item = &str> {
        self.nodes
            .iter()
            .flat_map(|node| node.occurrences.iter().map(String::as_str))
    }

    pub fn occurrence_count(&self) -> usize {
        self.nodes.iter().map(|node| node.occurrences.len()).sum()
    }

    /// The first message the service gave for this check on this site.
    pub fn message(&self) -> Option<&str> {
        self.nodes.iter().find_map(|node| node.message.as_deref())
    }
}

impl FleetCheck<'_> {
    /// Occurrences over all sites.
    pub fn occurrence_count(&self) -> usize {
        self.sites.iter().map(SiteCheck::occurrence_count).sum()
    }

    /// Whether `--override-checks` may exclude it: `Some(false)` as soon as one site says
    /// it is not excludable, `Some(true)` when every site that said anything said yes.
    pub fn excludable(&self) -> Option<bool> {
        let said = self
            .sites
            .iter()
            .flat_map(|site| site.nodes.iter().filter_map(|node| node.excludable));
        said.fold(None, |acc, excludable| match acc {
            Some(false) => Some(false),
            _ => Some(excludable),
        })
    }

    /// The service's description of the check, when one site carried it.
    pub fn description(&self) -> Option<&str> {
        self.sites
            .iter()
            .flat_map(|site| site.nodes.iter())
            .find_map(|node| node.description.as_deref())
    }
}

/// Every (check, severity) that occurred on at least one site, most sites first, then
/// failures before warnings, then by name.
pub fn aggregate(report: &RunReport) -> Vec<FleetCheck<'_>> {
    let mut by_check: BTreeMap<(Severity, &str), Vec<SiteCheck<'_>>> = BTreeMap::new();
    for site in &report.sites {
        for check in &site.checks {
            let Some(severity) = Severity::of(check) else {
                continue;
            };
            let sites = by_check.entry((severity, check.name.as_str())).or_default();
            match sites.last_mut() {
                Some(last) if last.site == site.site => last.nodes.push(check),
                _ => sites.push(SiteCheck {
                    site: &site.site,
                    nodes: vec![check],
                }),
            }
        }
    }
    let mut checks: Vec<FleetCheck<'_>> = by_check
        .into_iter()
        .map(|((severity, name), sites)| FleetCheck {
            name,
            severity,
            sites,
        })
        .collect();
    checks.sort_by(|a, b| {
        b.sites
            .len()
            .cmp(&a.sites.len())
            .then(a.severity.cmp(&b.severity))
            .then(a.name.cmp(b.name))
    });
    checks
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::report::model::{RunInfo, SiteReport};
    use crate::vocab::Mode;

    fn check(name: &str, outcome: &str, excludable: Option<bool>) -> CheckResult {
        CheckResult {
            name: name.to_owned(),
            status: "FINISHED".to_owned(),
            outcome: outcome.to_owned(),
            message: None,
            occurrences: vec![format!("{name}-occurrence")],
            excludable,
            description: None,
        }
    }

    fn site(name: &str, checks: Vec<CheckResult>) -> SiteReport {
        let mut site = SiteReport::pending(name, "jira", Mode::Check);
        site.checks = checks.into_iter().map(std::sync::Arc::new).collect();
        site
    }

    fn report(sites: Vec<SiteReport>) -> RunReport {
        RunReport {
            run: RunInfo {
                run_id: "r".to_owned(),
                mode: Mode::Check,
                options: serde_json::Value::Null,
                shard: None,
                started_at: Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0).unwrap(),
                finished_at: None,
                counts: Default::default(),
                exit_code: None,
                notes: Vec::new(),
                version: "0".to_owned(),
                surprises: Vec::new(),
            },
            sites,
        }
    }

    #[test]
    fn most_widespread_first_then_failures_then_name() {
        let report = report(vec![
            site(
                "a",
                vec![
                    check("dup-emails", "WARNING", Some(true)),
                    check("app-outdated", "FAILED", Some(false)),
                    check("ok-check", "SUCCESS", None),
                ],
            ),
            site(
                "b",
                vec![
                    check("dup-emails", "warning", Some(true)),
                    check("zzz", "FAILED", None),
                ],
            ),
            site("c", vec![check("app-outdated", "FAILED", Some(true))]),
        ]);
        let checks = aggregate(&report);
        let summary: Vec<(&str, Severity, Vec<&str>)> = checks
            .iter()
            .map(|check| {
                let sites = check.sites.iter().map(|site| site.site).collect();
                (check.name, check.severity, sites)
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("app-outdated", Severity::Failed, vec!["a", "c"]),
                ("dup-emails", Severity::Warning, vec!["a", "b"]),
                ("zzz", Severity::Failed, vec!["b"]),
            ]
        );
        assert_eq!(checks[0].excludable(), Some(false), "one site said no");
        assert_eq!(checks[1].excludable(), Some(true));
        assert_eq!(checks[2].excludable(), None);
        assert_eq!(checks[0].occurrence_count(), 2);
    }

    #[test]
    fn a_check_reported_twice_on_one_site_counts_that_site_once() {
        let report = report(vec![site(
            "a",
            vec![check("dup", "FAILED", None), check("dup", "FAILED", None)],
        )]);
        let checks = aggregate(&report);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].sites.len(), 1);
        assert_eq!(checks[0].sites[0].occurrence_count(), 2);
    }
}
