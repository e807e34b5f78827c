//! The timeline of a fleet too large for a row per site: one lane per stage showing how
//! many sites were in it over the run (each lane scaled to its own peak, which its label
//! gives), and a last lane of the sites that finished, stacked by outcome. Its size does not
//! grow with the fleet: a few hundred bars whatever the number of sites.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};

use super::axes::{AXIS_HEIGHT, RIGHT_PAD, Scale, WIDTH, stages_present};
use crate::report::format::{outcome_class, outcome_rank};
use crate::report::model::RunReport;
use crate::vocab::{Outcome, Stage};

/// Time buckets across the plot (each a bar).
pub const BUCKETS: usize = 160;
const LABEL_WIDTH: f64 = 150.0;
const LANE_HEIGHT: f64 = 40.0;
const LANE_GAP: f64 = 12.0;

/// Appends the chart to `out`.
pub fn svg_into(out: &mut String, report: &RunReport) {
    let scale = Scale::of(report, LABEL_WIDTH);
    let stages = stages_present(report);
    let lanes = stages.len() + 1;
    let top = AXIS_HEIGHT + 4.0;
    let bottom = top + lanes as f64 * (LANE_HEIGHT + LANE_GAP);
    let height = bottom + AXIS_HEIGHT;
    let buckets = Buckets::of(&scale);
    let _ = write!(
        out,
        "<svg class=\"timeline lanes\" xmlns=\"http://www.w3.org/2000/svg\" \
         viewBox=\"0 0 {WIDTH} {height:.0}\" role=\"img\" aria-labelledby=\"timeline-title\">\
         <title id=\"timeline-title\">Sites in each stage over the run, {} sites from {} to {} \
         (UTC)</title>",
        report.sites.len(),
        scale.start.format("%H:%M:%S"),
        scale.end.format("%H:%M:%S"),
    );
    scale.axis_into(out, top, bottom - LANE_GAP, true);

    for (lane, stage) in stages.iter().enumerate() {
        let counts = occupancy(report, *stage, &buckets);
        let peak = counts.iter().copied().max().unwrap_or(0);
        let base = top + lane as f64 * (LANE_HEIGHT + LANE_GAP) + LANE_HEIGHT;
        lane_label(out, base, stage.as_str(), &format!("peak {peak}"));
        for (index, count) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            let bar = LANE_HEIGHT * *count as f64 / peak.max(1) as f64;
            let (from, to) = buckets.span(index);
            let _ = write!(
                out,
                "<rect class=\"stage-{stage}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{bar:.1}\">\
                 <title>{stage}: {count} site{} between {} and {}</title></rect>",
                buckets.x(index),
                base - bar,
                buckets.width,
                plural(*count),
                from.format("%H:%M:%S"),
                to.format("%H:%M:%S"),
            );
        }
    }

    let finished = finishes(report, &buckets);
    let peak = finished
        .iter()
        .map(|counts| counts.iter().map(|(_, n)| n).sum::<usize>())
        .max()
        .unwrap_or(0);
    let base = top + stages.len() as f64 * (LANE_HEIGHT + LANE_GAP) + LANE_HEIGHT;
    lane_label(out, base, "finished", &format!("peak {peak}"));
    for (index, counts) in finished.iter().enumerate() {
        let total: usize = counts.iter().map(|(_, n)| n).sum();
        if total == 0 {
            continue;
        }
        let (from, to) = buckets.span(index);
        let parts: Vec<String> = counts
            .iter()
            .map(|(outcome, n)| format!("{n} {outcome}"))
            .collect();
        let _ = write!(
            out,
            "<g><title>{total} site{} finished between {} and {}: {}</title>",
            plural(total),
            from.format("%H:%M:%S"),
            to.format("%H:%M:%S"),
            parts.join(", "),
        );
        let mut y = base;
        for (outcome, count) in counts {
            let bar = LANE_HEIGHT * *count as f64 / peak.max(1) as f64;
            y -= bar;
            let _ = write!(
                out,
                "<rect class=\"fin {}\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{bar:.1}\"/>",
                outcome_class(Some(*outcome)),
                buckets.x(index),
                buckets.width,
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
}

fn lane_label(out: &mut String, base: f64, name: &str, detail: &str) {
    let _ = write!(
        out,
        "<line class=\"grid\" x1=\"{LABEL_WIDTH}\" y1=\"{base:.1}\" x2=\"{:.1}\" y2=\"{base:.1}\"/>\
         <text class=\"label\" x=\"8\" y=\"{:.1}\">{name}</text>\
         <text class=\"tick\" x=\"8\" y=\"{:.1}\">{detail}</text>",
        WIDTH - RIGHT_PAD,
        base - LANE_HEIGHT + 14.0,
        base - LANE_HEIGHT + 29.0,
    );
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// The plot cut into [`BUCKETS`] equal spans of time.
struct Buckets<'a> {
    scale: &'a Scale,
    /// Milliseconds a bucket.
    millis: f64,
    /// Width of a bucket in user units.
    width: f64,
}

impl Buckets<'_> {
    fn of(scale: &Scale) -> Buckets<'_> {
        let total = (scale.end - scale.start).num_milliseconds().max(1) as f64;
        Buckets {
            scale,
            millis: total / BUCKETS as f64,
            width: (scale.right - scale.left) / BUCKETS as f64,
        }
    }

    /// The bucket an instant falls in (instants outside the run: the nearest bucket).
    fn index(&self, at: DateTime<Utc>) -> usize {
        let offset = (at - self.scale.start).num_milliseconds() as f64 / self.millis;
        (offset.max(0.0) as usize).min(BUCKETS - 1)
    }

    fn x(&self, index: usize) -> f64 {
        self.scale.left + self.width * index as f64
    }

    fn span(&self, index: usize) -> (DateTime<Utc>, DateTime<Utc>) {
        let at = |index: usize| {
            self.scale.start + Duration::milliseconds((self.millis * index as f64) as i64)
        };
        (at(index), at(index + 1))
    }
}

/// Per bucket, the sites with a span of `stage` during it (a span still open counts to the
/// end of the run).
fn occupancy(report: &RunReport, stage: Stage, buckets: &Buckets<'_>) -> Vec<usize> {
    let mut changes = vec![0i64; BUCKETS + 1];
    for site in &report.sites {
        for span in site.stages.iter().filter(|span| span.stage == stage) {
            let from = buckets.index(span.started_at);
            let to = buckets.index(span.finished_at.unwrap_or(buckets.scale.end));
            changes[from] += 1;
            changes[to + 1] -= 1;
        }
    }
    let mut running = 0i64;
    changes[..BUCKETS]
        .iter()
        .map(|change| {
            running += change;
            running.max(0) as usize
        })
        .collect()
}

/// Per bucket, the sites that finished in it by outcome, worst first.
fn finishes(report: &RunReport, buckets: &Buckets<'_>) -> Vec<Vec<(Outcome, usize)>> {
    let mut finished: Vec<Vec<(Outcome, usize)>> = vec![Vec::new(); BUCKETS];
    for site in &report.sites {
        let (Some(at), Some(outcome)) = (site.finished_at, site.outcome) else {
            continue;
        };
        let counts = &mut finished[buckets.index(at)];
        match counts.iter_mut().find(|(known, _)| *known == outcome) {
            Some((_, count)) => *count += 1,
            None => counts.push((outcome, 1)),
        }
    }
    for counts in &mut finished {
        counts.sort_by_key(|(outcome, _)| outcome_rank(Some(*outcome)));
    }
    finished
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::report::model::{SiteReport, StageSpan};
    use crate::vocab::Mode;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0).unwrap() + Duration::seconds(seconds)
    }

    /// `sites` sites, each checking for 100 s from second `n`, all finished; 1,600 s in all.
    fn fleet(sites: usize) -> RunReport {
        let mut report = crate::report::fixtures::fleet();
        report.run.started_at = at(0);
        report.run.finished_at = Some(at(1_600));
        report.sites = (0..sites)
            .map(|n| {
                let mut site = SiteReport::pending(&format!("s{n}"), "jira", Mode::Check);
                let begin = at(n as i64);
                site.stages = vec![StageSpan {
                    stage: Stage::Check,
                    started_at: begin,
                    finished_at: Some(begin + Duration::seconds(100)),
                }];
                site.started_at = Some(begin);
                site.finished_at = Some(begin + Duration::seconds(100));
                site.outcome = Some(if n % 2 == 0 {
                    Outcome::Succeeded
                } else {
                    Outcome::Failed
                });
                site
            })
            .collect();
        report
    }

    #[test]
    fn a_lane_counts_the_sites_in_its_stage_at_each_moment() {
        let report = fleet(1_000);
        let scale = Scale::of(&report, LABEL_WIDTH);
        let buckets = Buckets::of(&scale);
        let counts = occupancy(&report, Stage::Check, &buckets);
        // Buckets are 10 s: at 500 s, the sites that started in the last 100 s are checking.
        assert!((100..=111).contains(&counts[50]), "{}", counts[50]);
        assert_eq!(counts[0], 10, "the first bucket: sites 0 to 9");
        assert_eq!(counts[159], 0, "all finished by 1,100 s");
        let finished = finishes(&report, &buckets);
        let total: usize = finished.iter().flatten().map(|(_, n)| n).sum();
        assert_eq!(total, 1_000);
        assert_eq!(finished[15][0].0, Outcome::Failed, "worst first");
    }

    #[test]
    fn the_chart_stays_small_however_large_the_fleet() {
        let mut large = String::new();
        svg_into(&mut large, &fleet(20_000));
        assert!(large.len() < 100 * 1024, "{} bytes", large.len());
        let bars = large.matches("<rect").count();
        assert!(
            bars <= BUCKETS * (1 + Outcome::ALL.len()),
            "{bars} bars: at most one a bucket and lane"
        );
        assert!(large.contains("Sites in each stage over the run, 20000 sites"));
        assert!(large.contains(">finished</text>"));
    }
}
