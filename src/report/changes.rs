//! `changes.md`: what changed since the previous run of the same mode on this state dir —
//! sites whose outcome changed, sites new to this run or missing from it, and checks newly
//! failing or newly passing.
//!
//! Definitions (sites are matched by name, checks by name within a site):
//! - a check is **failing** when its outcome is `FAILED` (any case);
//! - **newly failing**: failing now and not failing in the previous run — there it passed,
//!   warned, was skipped or was absent (a site new to this run has all its failing checks
//!   newly failing);
//! - **newly passing**: failing before, and now reported with outcome `SUCCESS` or `WARNING`;
//! - failing before and now absent or with another outcome (`SKIPPED`, …) is neither: it is
//!   listed as **not checked this run** (the site may have stopped before its checks), so
//!   that nothing silently drops out of the comparison;
//! - an **outcome change** compares the two runs' outcomes of a site present in both (a site
//!   without an outcome reads `not finished`).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::fleet_checks::Severity;
use super::format::wall_clock;
use super::markdown::escape;
use super::model::{CheckResult, RunReport, SiteReport};
use crate::vocab::Outcome;

/// `previous` is `None` on the first run of a mode.
pub fn render(previous: Option<&RunReport>, current: &RunReport) -> String {
    let mut out = String::new();
    let Some(previous) = previous else {
        let _ = writeln!(
            out,
            "# Changes\n\nRun {} ({}, started {}) is the first {} run on this state dir: \
             there is no earlier run to compare it with.",
            escape(&current.run.run_id),
            current.run.mode,
            wall_clock(current.run.started_at),
            current.run.mode,
        );
        return out;
    };
    let changes = Changes::between(previous, current);
    let _ = writeln!(
        out,
        "# Changes since run {}\n\nRun {} ({}, started {}) compared with run {} ({}, started {}).\n",
        escape(&previous.run.run_id),
        escape(&current.run.run_id),
        current.run.mode,
        wall_clock(current.run.started_at),
        escape(&previous.run.run_id),
        previous.run.mode,
        wall_clock(previous.run.started_at),
    );
    if previous.run.mode != current.run.mode {
        let _ = writeln!(
            out,
            "Note: the earlier run was a {} run, this one is a {} run.\n",
            previous.run.mode, current.run.mode
        );
    }
    if changes.is_empty() {
        out.push_str("Nothing changed: every site kept its outcome and its failing checks.\n");
        return out;
    }
    changes.summary(&mut out);
    changes.tables(&mut out);
    out
}

/// Everything that differs between two runs, in the current run's site order.
struct Changes<'a> {
    outcomes: Vec<(&'a SiteReport, Option<Outcome>)>,
    new_sites: Vec<&'a SiteReport>,
    gone_sites: Vec<&'a SiteReport>,
    /// (site, check now, the check before if it was reported).
    newly_failing: Vec<(&'a str, &'a CheckResult, Option<&'a CheckResult>)>,
    newly_passing: Vec<(&'a str, &'a CheckResult)>,
    /// (site, check before, the check now if it was reported).
    not_checked: Vec<(&'a str, &'a CheckResult, Option<&'a CheckResult>)>,
}

fn failing(check: &CheckResult) -> bool {
    Severity::of(check) == Some(Severity::Failed)
}

fn passing(check: &CheckResult) -> bool {
    check.outcome.eq_ignore_ascii_case("SUCCESS") || check.outcome.eq_ignore_ascii_case("WARNING")
}

fn find<'a>(site: &'a SiteReport, name: &str) -> Option<&'a CheckResult> {
    site.checks
        .iter()
        .find(|check| check.name == name)
        .map(|check| &**check)
}

impl<'a> Changes<'a> {
    fn between(previous: &'a RunReport, current: &'a RunReport) -> Changes<'a> {
        let mut changes = Changes {
            outcomes: Vec::new(),
            new_sites: Vec::new(),
            gone_sites: Vec::new(),
            newly_failing: Vec::new(),
            newly_passing: Vec::new(),
            not_checked: Vec::new(),
        };
        let before: HashMap<&str, &SiteReport> = previous
            .sites
            .iter()
            .map(|site| (site.site.as_str(), site))
            .collect();
        for site in &current.sites {
            let earlier = before.get(site.site.as_str()).copied();
            match earlier {
                None => changes.new_sites.push(site),
                Some(earlier) if earlier.outcome != site.outcome => {
                    changes.outcomes.push((site, earlier.outcome));
                }
                Some(_) => {}
            }
            let mut seen: Vec<&str> = Vec::new();
            for check in site.checks.iter().filter(|check| failing(check)) {
                if seen.contains(&check.name.as_str()) {
                    continue;
                }
                seen.push(&check.name);
                let then = earlier.and_then(|earlier| find(earlier, &check.name));
                if !then.is_some_and(failing) {
                    changes.newly_failing.push((&site.site, check, then));
                }
            }
            let Some(earlier) = earlier else { continue };
            let mut seen: Vec<&str> = Vec::new();
            for check in earlier.checks.iter().filter(|check| failing(check)) {
                if seen.contains(&check.name.as_str()) {
                    continue;
                }
                seen.push(&check.name);
                let now = find(site, &check.name);
                match now {
                    Some(now) if failing(now) => {}
                    Some(now) if passing(now) => changes.newly_passing.push((&site.site, now)),
                    _ => changes.not_checked.push((&site.site, check, now)),
                }
            }
        }
        let in_current: HashSet<&str> = current.sites.iter().map(|s| s.site.as_str()).collect();
        changes.gone_sites = previous
            .sites
            .iter()
            .filter(|site| !in_current.contains(site.site.as_str()))
            .collect();
        changes
    }

    fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
            && self.new_sites.is_empty()
            && self.gone_sites.is_empty()
            && self.newly_failing.is_empty()
            && self.newly_passing.is_empty()
            && self.not_checked.is_empty()
    }

    fn summary(&self, out: &mut String) {
        let sites_of = |names: Vec<&str>| {
            let mut names = names;
            names.dedup();
            names.len()
        };
        let failing_sites = sites_of(self.newly_failing.iter().map(|(s, _, _)| *s).collect());
        let passing_sites = sites_of(self.newly_passing.iter().map(|(s, _)| *s).collect());
        let _ = writeln!(
            out,
            "- {} changed outcome",
            count(self.outcomes.len(), "site")
        );
        let _ = writeln!(
            out,
            "- {} new to this run, {} not in this run",
            count(self.new_sites.len(), "site"),
            count(self.gone_sites.len(), "site"),
        );
        let _ = writeln!(
            out,
            "- {} newly failing on {}, {} newly passing on {}",
            count(self.newly_failing.len(), "check"),
            count(failing_sites, "site"),
            count(self.newly_passing.len(), "check"),
            count(passing_sites, "site"),
        );
        if !self.not_checked.is_empty() {
            let _ = writeln!(
                out,
                "- {} that failed before not checked this run",
                count(self.not_checked.len(), "check"),
            );
        }
        out.push('\n');
    }

    fn tables(&self, out: &mut String) {
        let outcome = |outcome: Option<Outcome>| outcome.map_or("not finished", Outcome::as_str);
        if !self.outcomes.is_empty() {
            out.push_str("## Sites whose outcome changed\n\n| Site | Before | Now | Message now |\n|---|---|---|---|\n");
            for (site, before) in &self.outcomes {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    escape(&site.site),
                    outcome(*before),
                    outcome(site.outcome),
                    escape(&site.message),
                );
            }
            out.push('\n');
        }
        if !self.new_sites.is_empty() {
            out.push_str("## Sites new to this run\n\n| Site | Product | Outcome | Message |\n|---|---|---|---|\n");
            for site in &self.new_sites {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    escape(&site.site),
                    escape(&site.product),
                    outcome(site.outcome),
                    escape(&site.message),
                );
            }
            out.push('\n');
        }
        if !self.gone_sites.is_empty() {
            out.push_str(
                "## Sites not in this run\n\nIn the earlier run but not selected now (removed from \
                 the inventory, or left out by `--wave`, `--site` or `--shard`).\n\n\
                 | Site | Outcome in the earlier run |\n|---|---|\n",
            );
            for site in &self.gone_sites {
                let _ = writeln!(
                    out,
                    "| {} | {} |",
                    escape(&site.site),
                    outcome(site.outcome)
                );
            }
            out.push('\n');
        }
        if !self.newly_failing.is_empty() {
            out.push_str("## Checks newly failing\n\n| Site | Check | Before | Message |\n|---|---|---|---|\n");
            for (site, check, before) in &self.newly_failing {
                let before = before.map_or("not reported".to_owned(), |b| escape(&b.outcome));
                let _ = writeln!(
                    out,
                    "| {} | {} | {before} | {} |",
                    escape(site),
                    escape(&check.name),
                    escape(check.message.as_deref().unwrap_or("")),
                );
            }
            out.push('\n');
        }
        if !self.newly_passing.is_empty() {
            out.push_str("## Checks newly passing\n\n| Site | Check | Now |\n|---|---|---|\n");
            for (site, check) in &self.newly_passing {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    escape(site),
                    escape(&check.name),
                    escape(&check.outcome),
                );
            }
            out.push('\n');
        }
        if !self.not_checked.is_empty() {
            out.push_str(
                "## Checks that failed before and were not checked this run\n\n\
                 | Site | Check | Now |\n|---|---|---|\n",
            );
            for (site, check, now) in &self.not_checked {
                let now = now.map_or("not reported".to_owned(), |n| escape(&n.outcome));
                let _ = writeln!(
                    out,
                    "| {} | {} | {now} |",
                    escape(site),
                    escape(&check.name)
                );
            }
            out.push('\n');
        }
    }
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::report::model::RunInfo;
    use crate::vocab::Mode;

    fn check(name: &str, outcome: &str) -> CheckResult {
        CheckResult {
            name: name.to_owned(),
            status: "FINISHED".to_owned(),
            outcome: outcome.to_owned(),
            message: None,
            occurrences: Vec::new(),
            excludable: None,
            description: None,
        }
    }

    fn site(name: &str, outcome: Outcome, checks: &[(&str, &str)]) -> SiteReport {
        let mut site = SiteReport::pending(name, "jira", Mode::Check);
        site.outcome = Some(outcome);
        site.checks = checks
            .iter()
            .map(|(n, o)| std::sync::Arc::new(check(n, o)))
            .collect();
        site
    }

    fn run(id: &str, day: u32, sites: Vec<SiteReport>) -> RunReport {
        RunReport {
            run: RunInfo {
                run_id: id.to_owned(),
                mode: Mode::Check,
                options: serde_json::Value::Null,
                shard: None,
                started_at: Utc.with_ymd_and_hms(2026, 3, day, 2, 0, 0).unwrap(),
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
    fn first_run_says_there_is_nothing_to_compare() {
        let current = run(
            "r2",
            2,
            vec![site("a", Outcome::Blocked, &[("x", "FAILED")])],
        );
        let text = render(None, &current);
        assert!(
            text.contains("is the first check run on this state dir"),
            "{text}"
        );
        assert!(!text.contains("newly"), "{text}");
    }

    #[test]
    fn unchanged_runs_say_nothing_changed() {
        let before = run(
            "r1",
            1,
            vec![site("a", Outcome::Blocked, &[("x", "FAILED")])],
        );
        let now = run(
            "r2",
            2,
            vec![site("a", Outcome::Blocked, &[("x", "failed")])],
        );
        let text = render(Some(&before), &now);
        assert!(text.starts_with("# Changes since run r1\n"), "{text}");
        assert!(text.contains("Nothing changed"), "{text}");
    }

    #[test]
    fn outcome_changes_and_new_and_gone_sites() {
        let before = run(
            "r1",
            1,
            vec![
                site("a", Outcome::Blocked, &[]),
                site("gone", Outcome::Succeeded, &[]),
            ],
        );
        let now = run(
            "r2",
            2,
            vec![
                site("a", Outcome::Succeeded, &[]),
                site("new", Outcome::Warnings, &[]),
            ],
        );
        let text = render(Some(&before), &now);
        assert!(text.contains("| a | blocked | succeeded |"), "{text}");
        assert!(text.contains("## Sites new to this run"), "{text}");
        assert!(text.contains("| new | jira | warnings |"), "{text}");
        assert!(text.contains("| gone | succeeded |"), "{text}");
        assert!(text.contains("- 1 site changed outcome"), "{text}");
    }

    #[test]
    fn newly_failing_and_newly_passing_follow_the_definitions() {
        let before = run(
            "r1",
            1,
            vec![site(
                "a",
                Outcome::Blocked,
                &[
                    ("was-ok", "SUCCESS"),
                    ("was-warning", "WARNING"),
                    ("fixed", "FAILED"),
                    ("now-warns", "FAILED"),
                    ("still-failing", "FAILED"),
                    ("vanished", "FAILED"),
                    ("skipped-now", "FAILED"),
                ],
            )],
        );
        let now = run(
            "r2",
            2,
            vec![site(
                "a",
                Outcome::Blocked,
                &[
                    ("was-ok", "FAILED"),
                    ("was-warning", "FAILED"),
                    ("appeared", "FAILED"),
                    ("fixed", "SUCCESS"),
                    ("now-warns", "WARNING"),
                    ("still-failing", "FAILED"),
                    ("skipped-now", "SKIPPED"),
                ],
            )],
        );
        let changes = Changes::between(&before, &now);
        let failing: Vec<&str> = changes
            .newly_failing
            .iter()
            .map(|(_, c, _)| c.name.as_str())
            .collect();
        assert_eq!(failing, ["was-ok", "was-warning", "appeared"]);
        let passing: Vec<&str> = changes
            .newly_passing
            .iter()
            .map(|(_, c)| c.name.as_str())
            .collect();
        assert_eq!(passing, ["fixed", "now-warns"]);
        let unchecked: Vec<&str> = changes
            .not_checked
            .iter()
            .map(|(_, c, _)| c.name.as_str())
            .collect();
        assert_eq!(unchecked, ["vanished", "skipped-now"]);
        let text = render(Some(&before), &now);
        assert!(text.contains("| a | appeared | not reported |"), "{text}");
        assert!(text.contains("| a | was-warning | WARNING |"), "{text}");
        assert!(text.contains("| a | now-warns | WARNING |"), "{text}");
        assert!(text.contains("| a | skipped-now | SKIPPED |"), "{text}");
        assert!(
            text.contains("- 3 checks newly failing on 1 site, 2 checks newly passing on 1 site"),
            "{text}"
        );
    }

    #[test]
    fn a_new_sites_failing_checks_are_newly_failing() {
        let before = run("r1", 1, vec![]);
        let now = run(
            "r2",
            2,
            vec![site(
                "fresh",
                Outcome::Blocked,
                &[("x", "FAILED"), ("y", "WARNING")],
            )],
        );
        let changes = Changes::between(&before, &now);
        assert_eq!(changes.newly_failing.len(), 1);
        assert_eq!(changes.newly_failing[0].1.name, "x");
    }
}
