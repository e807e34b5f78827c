//! The run's timeline: per stage, who went through it and when (the text summary of
//! `summary.md`), and the SVG of `report.html`: one row per site with a bar per stage span,
//! or, for a fleet too large for that, one lane per stage ([`lanes`]).

pub mod lanes;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::format::{duration_ms, outcome_class, run_span};
use super::html::escape;
use super::model::RunReport;
use crate::vocab::Stage;

/// One stage across the fleet, for the text timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSummary<'a> {
    pub stage: Stage,
    /// Sites with at least one span of this stage.
    pub sites: usize,
    pub first_entered: DateTime<Utc>,
    /// `None` while some site is still in the stage (or ended the run in it).
    pub last_left: Option<DateTime<Utc>>,
    pub longest_seconds: i64,
    pub longest_site: &'a str,
}

impl StageSummary<'_> {
    /// Every stage some site went through, in pipeline order (`done` is a point, not a span,
    /// and is left out).
    pub fn of(report: &RunReport) -> Vec<StageSummary<'_>> {
        let (_, end) = run_span(report);
        let mut by_stage: BTreeMap<Stage, StageSummary<'_>> = BTreeMap::new();
        for site in &report.sites {
            let mut counted: Vec<Stage> = Vec::new();
            for span in site.stages.iter().filter(|span| span.stage != Stage::Done) {
                let seconds = (span.finished_at.unwrap_or(end) - span.started_at).num_seconds();
                let entry = by_stage.entry(span.stage).or_insert(StageSummary {
                    stage: span.stage,
                    sites: 0,
                    first_entered: span.started_at,
                    last_left: span.finished_at,
                    longest_seconds: seconds,
                    longest_site: &site.site,
                });
                if !counted.contains(&span.stage) {
                    entry.sites += 1;
                    counted.push(span.stage);
                }
                entry.first_entered = entry.first_entered.min(span.started_at);
                entry.last_left = match (entry.last_left, span.finished_at) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
                if seconds > entry.longest_seconds {
                    entry.longest_seconds = seconds;
                    entry.longest_site = &site.site;
                }
            }
        }
        by_stage.into_values().collect()
    }
}

/// The stages that appear on the timeline, in pipeline order (for its legend).
pub fn stages_present(report: &RunReport) -> Vec<Stage> {
    let mut stages: Vec<Stage> = report
        .sites
        .iter()
        .flat_map(|site| site.stages.iter().map(|span| span.stage))
        .filter(|stage| *stage != Stage::Done)
        .collect();
    stages.sort();
    stages.dedup();
    stages
}

/// Geometry of the chart, in SVG user units (the SVG scales to its container's width).
pub(crate) const WIDTH: f64 = 1120.0;
/// The name column; rows too thin to carry a name keep only the outcome dot.
const LABEL_WIDTH: f64 = 200.0;
const DOT_WIDTH: f64 = 24.0;
pub(crate) const RIGHT_PAD: f64 = 16.0;
pub(crate) const AXIS_HEIGHT: f64 = 26.0;
/// Site names longer than this are cut (the full name is in the row's tooltip).
const LABEL_CHARS: usize = 26;
/// Above this many sites the timeline is one lane per stage ([`lanes`]) rather than a row
/// per site: 500 rows are already a couple of pixels each, and 10,000 would be megabytes of
/// SVG that no one can read.
pub const SITE_ROWS_MAX: usize = 500;
/// A tick label's width per character at the axis's font size (11 units), generously: the
/// digits of system fonts are 6–6.5 units wide.
const TICK_CHAR_WIDTH: f64 = 6.8;

/// Rows get thinner as the fleet grows, so that 500 sites stay a chart rather than a long
/// scroll: named rows up to 200 sites, then unnamed rows (names in the tooltips) sharing
/// about 2,400 units of height, never thinner than 2.
fn row_height(sites: usize) -> f64 {
    match sites {
        0..=40 => 22.0,
        41..=200 => 14.0,
        _ => (2_400.0 / sites as f64).clamp(2.0, 8.0),
    }
}

/// The chart: a row per site up to [`SITE_ROWS_MAX`] sites, else [`lanes`]. Appended to
/// `out`: the page renders it in place (a copy of a large chart would double it at the
/// run's end).
pub fn svg_into(out: &mut String, report: &RunReport) {
    if report.sites.len() > SITE_ROWS_MAX {
        lanes::svg_into(out, report);
    } else {
        site_rows_into(out, report);
    }
}

/// The time scale of a chart: instants to x in user units, and the axis drawn from it.
pub(crate) struct Scale {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub left: f64,
    pub right: f64,
}

impl Scale {
    pub fn of(report: &RunReport, left: f64) -> Scale {
        let (start, end) = run_span(report);
        Scale {
            start,
            end,
            left,
            right: WIDTH - RIGHT_PAD,
        }
    }

    pub fn x(&self, at: DateTime<Utc>) -> f64 {
        let total = (self.end - self.start).num_milliseconds().max(1) as f64;
        let offset = (at - self.start).num_milliseconds() as f64 / total;
        self.left + (self.right - self.left) * offset.clamp(0.0, 1.0)
    }

    /// Grid lines from `top` to `bottom` with their labels above (and below, with
    /// `below`). A label that would cross the chart's edge is anchored at its tick's side
    /// instead of centred on it, so the first and last are never cut off.
    pub fn axis_into(&self, out: &mut String, top: f64, bottom: f64, below: bool) {
        for tick in ticks(self.start, self.end) {
            let x = self.x(tick);
            let label = tick_label(tick, self.end - self.start);
            let half = label.chars().count() as f64 * TICK_CHAR_WIDTH / 2.0;
            let anchor = if x + half > WIDTH - 1.0 {
                "end"
            } else if x - half < 1.0 {
                "start"
            } else {
                "middle"
            };
            let _ = write!(
                out,
                "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"/>\
                 <text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{label}</text>",
                top - 4.0,
                top - 9.0,
            );
            if below {
                let _ = write!(
                    out,
                    "<text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{label}</text>",
                    bottom + 17.0,
                );
            }
        }
    }
}

/// One row per site, bars coloured by stage (CSS classes `stage-…`), an outcome dot before
/// each name, a time axis in UTC above (and below, for tall charts).
fn site_rows_into(out: &mut String, report: &RunReport) {
    let rows = report.sites.len();
    let row = row_height(rows);
    let labelled = row >= 14.0;
    let scale = Scale::of(report, if labelled { LABEL_WIDTH } else { DOT_WIDTH });
    let (start, end) = (scale.start, scale.end);
    let bottom_axis = rows > 30;
    let top = AXIS_HEIGHT;
    let height = top + row * rows as f64 + if bottom_axis { AXIS_HEIGHT } else { 6.0 };

    let _ = write!(
        out,
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height:.0}\" \
         role=\"img\" aria-labelledby=\"timeline-title\">\
         <title id=\"timeline-title\">Timeline of {rows} site{} from {} to {} (UTC)</title>",
        if rows == 1 { "" } else { "s" },
        start.format("%H:%M:%S"),
        end.format("%H:%M:%S"),
    );

    // Zebra stripes first, so grid lines and bars draw over them.
    for index in (1..rows).step_by(2) {
        let _ = write!(
            out,
            "<rect class=\"stripe\" x=\"0\" y=\"{:.1}\" width=\"{WIDTH}\" height=\"{row}\"/>",
            top + row * index as f64
        );
    }
    scale.axis_into(out, top, top + row * rows as f64, bottom_axis);

    let bar_height = (row * 0.64).max(3.0);
    for (index, site) in report.sites.iter().enumerate() {
        let y = top + row * index as f64;
        let name = escape(&site.site);
        let outcome = outcome_class(site.outcome);
        let _ = write!(out, "<g><title>{name}: {}</title>", site_tooltip(site));
        let _ = write!(
            out,
            "<circle class=\"dot {outcome}\" cx=\"10\" cy=\"{:.1}\" r=\"{:.1}\"/>",
            y + row / 2.0,
            (row * 0.22).clamp(2.0, 5.0),
        );
        if labelled {
            let _ = write!(
                out,
                "<text class=\"label\" x=\"22\" y=\"{:.1}\" dominant-baseline=\"central\">{}</text>",
                y + row / 2.0,
                escape(&shorten(&site.site, LABEL_CHARS)),
            );
        }
        for span in site.stages.iter().filter(|span| span.stage != Stage::Done) {
            let x = scale.x(span.started_at);
            let x_end = scale.x(span.finished_at.unwrap_or(end));
            let open = if span.finished_at.is_none() {
                " open"
            } else {
                ""
            };
            let millis = (span.finished_at.unwrap_or(end) - span.started_at).num_milliseconds();
            let _ = write!(
                out,
                "<rect class=\"stage-{}{open}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bar_height:.1}\">\
                 <title>{name}: {} {}–{} ({})</title></rect>",
                span.stage,
                y + (row - bar_height) / 2.0,
                (x_end - x).max(1.5),
                span.stage,
                span.started_at.format("%H:%M:%S"),
                span.finished_at
                    .map_or_else(|| "…".to_owned(), |at| at.format("%H:%M:%S").to_string()),
                duration_ms(millis),
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
}

fn site_tooltip(site: &super::model::SiteReport) -> String {
    let outcome = site.outcome.map_or_else(
        || format!("{} (not finished)", site.stage),
        |o| o.to_string(),
    );
    match super::format::site_millis(site) {
        Some(millis) => format!("{outcome} after {}", duration_ms(millis)),
        None => outcome,
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max - 1).collect();
    format!("{kept}…")
}

/// Round instants between `start` and `end` (both included), 2 to 8 of them: the largest
/// "nice" step (100 ms … 2 days) that gives at least 3 ticks over the span — a run of a
/// second gets ticks every 200 ms rather than two labels on top of each other.
pub fn ticks(start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    const STEPS_MS: [i64; 22] = [
        100,
        200,
        500,
        1_000,
        2_000,
        5_000,
        10_000,
        15_000,
        30_000,
        60_000,
        120_000,
        300_000,
        600_000,
        900_000,
        1_800_000,
        3_600_000,
        7_200_000,
        10_800_000,
        21_600_000,
        43_200_000,
        86_400_000,
        172_800_000,
    ];
    let (from, to) = (start.timestamp_millis(), end.timestamp_millis());
    let span = (to - from).max(1);
    let step = STEPS_MS
        .iter()
        .copied()
        .find(|step| span / step <= 7)
        .unwrap_or_else(|| (span / 7).max(1));
    let mut ticks = Vec::new();
    let mut at = (from + step - 1).div_euclid(step) * step;
    while at <= to {
        if let Some(tick) = DateTime::from_timestamp_millis(at) {
            ticks.push(tick);
        }
        at += step;
    }
    ticks
}

/// `HH:MM`, with seconds when the run is short (and tenths when it is a few seconds long),
/// with the day when it is long.
fn tick_label(at: DateTime<Utc>, span: chrono::Duration) -> String {
    if span.num_milliseconds() < 5_000 {
        format!(
            "{}.{}",
            at.format("%H:%M:%S"),
            at.timestamp_subsec_millis() / 100
        )
    } else if span.num_seconds() <= 180 {
        at.format("%H:%M:%S").to_string()
    } else if span.num_hours() >= 36 {
        at.format("%m-%d %H:%M").to_string()
    } else {
        at.format("%H:%M").to_string()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, m, s).unwrap()
    }

    #[test]
    fn ticks_are_round_and_few() {
        let ticks = ticks(at(2, 0, 7), at(2, 41, 12));
        let labels: Vec<String> = ticks
            .iter()
            .map(|t| t.format("%H:%M").to_string())
            .collect();
        assert_eq!(labels, ["02:10", "02:20", "02:30", "02:40"]);
        let short = super::ticks(at(2, 0, 0), at(2, 0, 20));
        assert!((3..=8).contains(&short.len()), "{short:?}");
        let long = super::ticks(at(0, 0, 0), at(0, 0, 0) + chrono::Duration::days(3));
        assert!((3..=8).contains(&long.len()), "{long:?}");
    }

    #[test]
    fn a_run_of_a_second_gets_distinct_ticks_inside_it() {
        let start = at(2, 0, 0) + chrono::Duration::milliseconds(992);
        let end = at(2, 0, 2) + chrono::Duration::milliseconds(458);
        let ticks = ticks(start, end);
        assert!((3..=8).contains(&ticks.len()), "{ticks:?}");
        assert!(ticks.iter().all(|tick| *tick >= start && *tick <= end));
        let labels: Vec<String> = ticks
            .iter()
            .map(|tick| tick_label(*tick, end - start))
            .collect();
        assert_eq!(labels[0], "02:00:01.0");
        let mut unique = labels.clone();
        unique.dedup();
        assert_eq!(unique, labels, "no two ticks read the same");
    }

    #[test]
    fn a_label_at_the_edge_is_anchored_inside_the_chart() {
        let mut report = crate::report::tests::fleet();
        report.run.started_at = at(2, 0, 0);
        report.run.finished_at = Some(at(2, 3, 0));
        report.sites.truncate(1);
        report.sites[0].stages.clear();
        let scale = Scale::of(&report, LABEL_WIDTH);
        let mut svg = String::new();
        scale.axis_into(&mut svg, AXIS_HEIGHT, 100.0, false);
        assert!(
            svg.ends_with("text-anchor=\"end\">02:03:00</text>"),
            "the last tick, at the right edge, ends there: {svg}"
        );
        assert!(svg.contains("text-anchor=\"middle\">02:01:00</text>"));
    }

    #[test]
    fn long_names_are_cut_with_an_ellipsis() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("abcdefghijkl", 5), "abcd…");
    }
}
