//! The counts behind `cmafleet_migration_items`: the last progress counters seen per site,
//! scope and item, and their fleet sums.
//!
//! The service shows a scope's progress counters only while that scope is in progress (and
//! only for its current phase, export then import): a finished scope's node has none. So the
//! counts of every (site, scope, item) are kept as last seen, and a scope that finished
//! `SUCCESS` or `WARNING` — every item moved — counts its items processed up to their total.
//! A failed scope keeps what was last seen; a scope that started and finished between two
//! polls was never seen with counters and adds nothing.

use std::collections::{BTreeMap, HashMap};

use super::labels;
use crate::report::model::ScopeResult;

/// One item's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counts {
    pub total: u64,
    pub processed: u64,
}

/// One (scope, item) of a site, as last seen.
#[derive(Debug)]
struct Kept {
    scope: Box<str>,
    /// The item's name as the service gives it; its sum is kept under its label value
    /// ([`labels::opaque_name`]), so names folded into one label add up.
    name: Box<str>,
    counts: Counts,
}

/// The last counts of every site's scopes and items, and their sums per item.
#[derive(Debug, Default)]
pub(super) struct ItemCounts {
    /// Per site: its (scope, item) counts. A site has a handful (scopes × items), and a
    /// 10,000-site fleet keeps them all for the run.
    by_site: HashMap<String, Vec<Kept>>,
    /// Sums over every site and scope, per item label.
    sums: BTreeMap<String, Counts>,
}

impl ItemCounts {
    /// Takes in one status snapshot of a site's scopes: counters present replace the ones
    /// kept, counters absent leave them as they were, and a scope finished `SUCCESS` or
    /// `WARNING` completes its items. Returns the items whose sums may have changed.
    pub(super) fn observe(&mut self, site: &str, scopes: &[ScopeResult]) -> Vec<String> {
        let kept = self.by_site.entry(site.to_owned()).or_default();
        let mut touched = Vec::new();
        for scope in scopes {
            for counter in &scope.progress {
                let name = counter.name.as_str();
                let index = match kept
                    .iter()
                    .position(|k| *k.scope == *scope.name && *k.name == *name)
                {
                    Some(index) => index,
                    None => {
                        kept.push(Kept {
                            scope: scope.name.as_str().into(),
                            name: name.into(),
                            counts: Counts::default(),
                        });
                        kept.len() - 1
                    }
                };
                let entry = &mut kept[index];
                let before = entry.counts;
                if let Some(total) = counter.total {
                    entry.counts.total = total;
                }
                if let Some(processed) = counter.processed {
                    entry.counts.processed = processed;
                }
                let item = labels::opaque_name(name);
                replace(&mut self.sums, item, before, entry.counts);
                touched.push(item.to_owned());
            }
            if completed(scope) {
                for entry in kept.iter_mut().filter(|k| *k.scope == *scope.name) {
                    let before = entry.counts;
                    entry.counts.processed = entry.counts.total;
                    let item = labels::opaque_name(&entry.name);
                    replace(&mut self.sums, item, before, entry.counts);
                    touched.push(item.to_owned());
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();
        touched
    }

    /// The fleet sum of one item label.
    pub(super) fn sum(&self, item: &str) -> Counts {
        self.sums.get(item).copied().unwrap_or_default()
    }
}

/// Whether the scope finished with every item moved.
fn completed(scope: &ScopeResult) -> bool {
    scope.outcome.as_deref().is_some_and(|outcome| {
        ["SUCCESS", "WARNING"]
            .iter()
            .any(|ok| ok.eq_ignore_ascii_case(outcome))
    })
}

/// Moves `item`'s sum from counting `before` to counting `after`.
fn replace(sums: &mut BTreeMap<String, Counts>, item: &str, before: Counts, after: Counts) {
    let sum = sums.entry(item.to_owned()).or_default();
    sum.total = sum
        .total
        .saturating_sub(before.total)
        .saturating_add(after.total);
    sum.processed = sum
        .processed
        .saturating_sub(before.processed)
        .saturating_add(after.processed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::ProgressCounter;

    fn scope(name: &str, outcome: Option<&str>, counters: &[(&str, u64, u64)]) -> ScopeResult {
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
            progress: counters
                .iter()
                .map(|(item, total, processed)| ProgressCounter {
                    name: (*item).to_owned(),
                    total: Some(*total),
                    processed: Some(*processed),
                })
                .collect(),
        }
    }

    fn counts(total: u64, processed: u64) -> Counts {
        Counts { total, processed }
    }

    #[test]
    fn a_finished_scope_keeps_its_counts_and_completes_them() {
        let mut items = ItemCounts::default();
        let touched = items.observe(
            "acme-jira",
            &[scope("projects", None, &[("Issues", 5200, 4100)])],
        );
        assert_eq!(touched, ["Issues"]);
        assert_eq!(items.sum("Issues"), counts(5200, 4100));
        // The service drops the counters once the scope is finished.
        items.observe("acme-jira", &[scope("projects", Some("SUCCESS"), &[])]);
        assert_eq!(items.sum("Issues"), counts(5200, 5200));
        // Later snapshots of the finished scope change nothing.
        items.observe("acme-jira", &[scope("projects", Some("SUCCESS"), &[])]);
        assert_eq!(items.sum("Issues"), counts(5200, 5200));
    }

    #[test]
    fn a_failed_scope_keeps_the_last_counts_seen() {
        let mut items = ItemCounts::default();
        items.observe("globex", &[scope("spaces", None, &[("Pages", 900, 300)])]);
        items.observe("globex", &[scope("spaces", Some("FAILED"), &[])]);
        assert_eq!(items.sum("Pages"), counts(900, 300));
    }

    #[test]
    fn sums_add_sites_and_scopes_and_replace_a_scope_s_earlier_counts() {
        let mut items = ItemCounts::default();
        items.observe(
            "acme-jira",
            &[
                scope("projects", None, &[("Issues", 100, 40)]),
                scope("jsm", None, &[("Issues", 10, 10), ("Queues", 3, 1)]),
            ],
        );
        items.observe(
            "initech",
            &[scope("projects", None, &[("Issues", 1000, 0)])],
        );
        assert_eq!(items.sum("Issues"), counts(1110, 50));
        // The import phase restarts the counters: replaced, not added.
        items.observe(
            "acme-jira",
            &[scope("projects", None, &[("Issues", 100, 5)])],
        );
        assert_eq!(items.sum("Issues"), counts(1110, 15));
        assert_eq!(items.sum("Queues"), counts(3, 1));
        assert_eq!(items.sum("Attachments"), Counts::default());
    }

    #[test]
    fn item_names_are_folded_into_labels_before_they_are_summed() {
        let mut items = ItemCounts::default();
        items.observe(
            "acme-jira",
            &[scope(
                "projects",
                None,
                &[
                    ("https://acme.example/a", 5, 1),
                    ("admin@acme.example", 7, 2),
                ],
            )],
        );
        assert_eq!(items.sum(labels::OTHER), counts(12, 3));
    }
}
