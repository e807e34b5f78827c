//! One fleet report from the runs of several state stores (`cmafleet report --state-dirs`):
//! a fleet run as shards — one state dir per Indexed Job pod, or one runner per customer
//! network — read as the one fleet it is. A pure function of the runs.
//!
//! Every site appears once, with its shard (the run's `--shard` label, or the store's dir
//! name). A site found in several runs (the shards were cut differently once) is shown from
//! the newest, and a run note says so. The run's times span all the runs, its counts are
//! the sites', its exit code the gravest of theirs; each run's notes, options and surprises
//! are kept, named after its shard.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::model::{RunInfo, RunReport, SiteReport};
use crate::exit;
use crate::vocab::{Mode, Outcome};

/// One store's run, as one part of the fleet report.
#[derive(Debug, Clone)]
pub struct ShardRun {
    /// The name its sites carry (the run's shard label or the store's dir name).
    pub label: String,
    /// Where it came from, for the report's notes.
    pub state_dir: String,
    pub report: RunReport,
}

/// The fleet report of `shards` (in the order given; at least one) for `mode`.
pub fn merge(mode: Mode, shards: Vec<ShardRun>) -> RunReport {
    let mut notes = vec![describe(&shards)];
    let started_at = shards
        .iter()
        .map(|shard| shard.report.run.started_at)
        .min()
        .unwrap_or_else(Utc::now);
    let finished_at = shards
        .iter()
        .map(|shard| shard.report.run.finished_at)
        .collect::<Option<Vec<_>>>()
        .and_then(|ends| ends.into_iter().max());
    let exit_code = shards
        .iter()
        .map(|shard| shard.report.run.exit_code)
        .collect::<Option<Vec<_>>>()
        .map(|codes| gravest(&codes));
    let mut versions: Vec<String> = Vec::new();
    let mut surprises: Vec<crate::cma::Surprise> = Vec::new();
    let mut options = serde_json::Map::new();
    let mut sites = OncePerSite::default();
    for shard in shards {
        let ShardRun {
            label,
            state_dir,
            report,
        } = shard;
        let run = report.run;
        notes.extend(run.notes.iter().map(|note| format!("{label}: {note}")));
        if !versions.contains(&run.version) {
            versions.push(run.version.clone());
        }
        for surprise in run.surprises {
            let known = surprises
                .iter()
                .any(|seen| seen.kind == surprise.kind && seen.value == surprise.value);
            if !known {
                surprises.push(surprise);
            }
        }
        options.insert(
            label.clone(),
            serde_json::json!({
                "state_dir": state_dir,
                "run_id": run.run_id,
                "exit_code": run.exit_code,
                "options": run.options,
            }),
        );
        for mut site in report.sites {
            site.shard = Some(label.clone());
            sites.offer(&site.site.clone(), &label, site, |offered, kept| {
                newest(offered, run.started_at) > newest(kept, run.started_at)
            });
        }
    }
    let (sites, repeated) = sites.finish("the newest");
    notes.extend(repeated);
    let mut counts: std::collections::BTreeMap<Outcome, usize> = Outcome::ALL
        .into_iter()
        .map(|outcome| (outcome, 0))
        .collect();
    for outcome in sites.iter().filter_map(|site| site.outcome) {
        *counts.entry(outcome).or_default() += 1;
    }
    let run_ids: Vec<&str> = options
        .values()
        .filter_map(|shard| shard["run_id"].as_str())
        .collect();
    let run_id = match run_ids.as_slice() {
        [one] => (*one).to_owned(),
        [first, second] => format!("{first} + {second}"),
        [first, rest @ ..] => format!("{first} + {} more", rest.len()),
        [] => String::new(),
    };
    RunReport {
        run: RunInfo {
            run_id,
            mode,
            options: serde_json::Value::Object(options),
            shard: None,
            started_at,
            finished_at,
            counts,
            exit_code,
            notes,
            version: versions.join(", "),
            surprises,
        },
        sites,
    }
}

/// The first note: which runs of which stores the report joins.
fn describe(shards: &[ShardRun]) -> String {
    let parts: Vec<String> = shards
        .iter()
        .map(|shard| {
            let run = &shard.report.run;
            let exit = run
                .exit_code
                .map_or_else(|| "not finished".to_owned(), |code| format!("exit {code}"));
            format!(
                "{} ({}: run {}, {} sites, {exit})",
                shard.label,
                shard.state_dir,
                run.run_id,
                shard.report.sites.len()
            )
        })
        .collect();
    format!(
        "one report over {} state stores: {}",
        shards.len(),
        parts.join("; ")
    )
}

/// When a site's report was last true: its end, else its start, else its run's start.
fn newest(site: &SiteReport, run_started: DateTime<Utc>) -> DateTime<Utc> {
    site.finished_at.or(site.started_at).unwrap_or(run_started)
}

/// The exit code that says the most: an interruption or an error over failed sites, failed
/// sites over detached ones, detached ones over success.
fn gravest(codes: &[i32]) -> i32 {
    let weight = |code: i32| match u8::try_from(code) {
        Ok(exit::OK) => 0,
        Ok(exit::DETACHED) => 1,
        Ok(exit::SITES_FAILED) => 2,
        _ => 3,
    };
    codes
        .iter()
        .copied()
        .max_by_key(|code| weight(*code))
        .unwrap_or(i32::from(exit::OK))
}

/// The sites of several stores, each kept once: the one its `newer` prefers, with the stores
/// each site was met in, for the note that says a site was in more than one.
#[derive(Debug)]
pub struct OncePerSite<T> {
    /// The sites kept, in the order first met.
    kept: Vec<T>,
    /// Where each site's entry is in `kept`.
    index: HashMap<String, usize>,
    /// Per site, the labels of the stores it was met in and the label of the one kept.
    met_in: Vec<(String, Vec<String>, String)>,
}

impl<T> Default for OncePerSite<T> {
    fn default() -> Self {
        OncePerSite {
            kept: Vec::new(),
            index: HashMap::new(),
            met_in: Vec::new(),
        }
    }
}

impl<T> OncePerSite<T> {
    /// `item`, site `name` of the store `label`: kept when its site is new, or when
    /// `newer(item, kept)` says it is newer than the one kept.
    pub fn offer(&mut self, name: &str, label: &str, item: T, newer: impl FnOnce(&T, &T) -> bool) {
        match self.index.get(name) {
            Some(&at) => {
                let (_, labels, kept_from) = &mut self.met_in[at];
                labels.push(label.to_owned());
                if newer(&item, &self.kept[at]) {
                    self.kept[at] = item;
                    label.clone_into(kept_from);
                }
            }
            None => {
                self.index.insert(name.to_owned(), self.kept.len());
                self.kept.push(item);
                self.met_in
                    .push((name.to_owned(), vec![label.to_owned()], label.to_owned()));
            }
        }
    }

    /// The sites kept, and a note for each met in several stores ("shown from X, `why`").
    pub fn finish(self, why: &str) -> (Vec<T>, Vec<String>) {
        let notes = self
            .met_in
            .into_iter()
            .filter(|(_, labels, _)| labels.len() > 1)
            .map(|(site, labels, kept_from)| {
                format!(
                    "{site} is in {} stores ({}): shown from {kept_from}, {why}",
                    labels.len(),
                    labels.join(", ")
                )
            })
            .collect();
        (self.kept, notes)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0).unwrap() + Duration::minutes(minute)
    }

    fn run(
        run_id: &str,
        start: i64,
        exit_code: Option<i32>,
        sites: &[(&str, Outcome, i64)],
    ) -> RunReport {
        let mut report = crate::report::fixtures::fleet();
        report.run.run_id = run_id.to_owned();
        report.run.mode = Mode::Check;
        report.run.started_at = at(start);
        report.run.finished_at = exit_code.map(|_| at(start + 30));
        report.run.exit_code = exit_code;
        report.run.notes = vec![format!("note of {run_id}")];
        report.sites = sites
            .iter()
            .map(|(name, outcome, end)| {
                let mut site = SiteReport::pending(name, "jira", Mode::Check);
                site.outcome = Some(*outcome);
                site.started_at = Some(at(start));
                site.finished_at = Some(at(*end));
                site
            })
            .collect();
        report
    }

    fn shard(label: &str, report: RunReport) -> ShardRun {
        ShardRun {
            label: label.to_owned(),
            state_dir: format!("/s/{label}"),
            report,
        }
    }

    #[test]
    fn every_site_once_with_its_shard_and_the_runs_joined() {
        let a = run(
            "r-a",
            0,
            Some(0),
            &[
                ("one", Outcome::Succeeded, 5),
                ("two", Outcome::Warnings, 6),
            ],
        );
        let b = run("r-b", 2, Some(1), &[("three", Outcome::Failed, 9)]);
        let merged = merge(Mode::Check, vec![shard("0/2", a), shard("1/2", b)]);
        let sites: Vec<(&str, &str)> = merged
            .sites
            .iter()
            .map(|site| (site.site.as_str(), site.shard.as_deref().unwrap()))
            .collect();
        assert_eq!(sites, [("one", "0/2"), ("two", "0/2"), ("three", "1/2")]);
        assert_eq!(merged.run.run_id, "r-a + r-b");
        assert_eq!(merged.run.started_at, at(0));
        assert_eq!(merged.run.finished_at, Some(at(32)));
        assert_eq!(merged.run.exit_code, Some(1));
        assert_eq!(merged.run.counts[&Outcome::Failed], 1);
        assert_eq!(merged.run.counts[&Outcome::Succeeded], 1);
        assert!(
            merged.run.notes[0].starts_with(
                "one report over 2 state stores: 0/2 (/s/0/2: run r-a, 2 sites, exit 0)"
            )
        );
        assert!(merged.run.notes.contains(&"1/2: note of r-b".to_owned()));
        assert_eq!(merged.run.options["1/2"]["run_id"], "r-b");
    }

    #[test]
    fn a_site_in_two_stores_is_shown_once_from_the_newest() {
        let a = run("r-a", 0, Some(1), &[("one", Outcome::Blocked, 5)]);
        let b = run("r-b", 10, Some(0), &[("one", Outcome::Succeeded, 20)]);
        let merged = merge(Mode::Check, vec![shard("a", a), shard("b", b)]);
        assert_eq!(merged.sites.len(), 1);
        assert_eq!(merged.sites[0].outcome, Some(Outcome::Succeeded));
        assert_eq!(merged.sites[0].shard.as_deref(), Some("b"));
        assert!(
            merged
                .run
                .notes
                .contains(&"one is in 2 stores (a, b): shown from b, the newest".to_owned()),
            "{:?}",
            merged.run.notes
        );
    }

    #[test]
    fn an_unfinished_run_leaves_the_fleet_unfinished_and_codes_rank_by_gravity() {
        let a = run("r-a", 0, None, &[("one", Outcome::Succeeded, 5)]);
        let b = run("r-b", 0, Some(0), &[("two", Outcome::Succeeded, 5)]);
        let merged = merge(Mode::Check, vec![shard("a", a), shard("b", b)]);
        assert_eq!(merged.run.finished_at, None);
        assert_eq!(merged.run.exit_code, None);
        assert_eq!(gravest(&[0, 3, 0]), 3);
        assert_eq!(gravest(&[3, 1]), 1);
        assert_eq!(gravest(&[1, 130, 0]), 130);
        assert_eq!(gravest(&[0, 0]), 0);
    }
}
