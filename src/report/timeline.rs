//! The run's timeline: per stage, who went through it and when (the text summary of
//! `summary.md`), and the SVG of `report.html`: one row per site with a bar per stage span,
//! or, for a fleet too large for that, one lane per stage ([`lanes`]).

mod axes;
pub mod lanes;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use self::axes::{AXIS_HEIGHT, Scale, WIDTH, stages_present};
use super::format::{duration_ms, outcome_class, outcome_rank, run_span};
use super::markup::escape;
use super::model::RunReport;
use crate::vocab::{Outcome, Stage};

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

/// The name column; rows too thin to carry a name keep only the outcome dot.
const LABEL_WIDTH: f64 = 200.0;
const DOT_WIDTH: f64 = 24.0;
/// Site names longer than this are cut (the full name is in the row's tooltip).
const LABEL_CHARS: usize = 26;
/// Above this many sites the timeline is one lane per stage ([`lanes`]) rather than a row
/// per site: 500 rows are already a couple of pixels each, and 10,000 would be megabytes of
/// SVG that no one can read.
pub const SITE_ROWS_MAX: usize = 500;

/// `report.html`'s timeline section: a legend of the stages and outcomes present, and the
/// chart.
pub fn section(page: &mut String, report: &RunReport) {
    page.push_str("<section aria-labelledby=\"h-timeline\"><h2 id=\"h-timeline\">Timeline</h2>");
    let stages = stages_present(report);
    if stages.is_empty() {
        page.push_str("<p class=\"none\">No site has started a stage yet.</p></section>\n");
        return;
    }
    if report.sites.len() > SITE_ROWS_MAX {
        let _ = write!(
            page,
            "<p class=\"hint\">{} sites are too many for a row each: each lane shows how many \
             sites were in a stage over the run (scaled to the lane's peak), the last one how \
             many finished, by outcome. In UTC; hover a bar for its numbers.</p>",
            report.sites.len()
        );
    } else {
        page.push_str(
            "<p class=\"hint\">One row per site; each bar is a stage, in UTC. Faded bars were \
             still open when the report was written. Hover a bar for its times.</p>",
        );
    }
    page.push_str("<ul class=\"legend\" aria-label=\"Legend\"><li class=\"group\">Stages</li>");
    for stage in stages {
        let _ = write!(
            page,
            "<li><span class=\"sw stage-{stage}\"></span>{stage}</li>"
        );
    }
    let mut outcomes: Vec<Option<Outcome>> = report.sites.iter().map(|s| s.outcome).collect();
    outcomes.sort_by_key(|outcome| outcome_rank(*outcome));
    outcomes.dedup();
    page.push_str("<li class=\"group\">Outcomes</li>");
    for outcome in outcomes {
        let label = outcome.map_or("not finished", Outcome::as_str);
        let _ = write!(
            page,
            "<li><span class=\"sw dot {}\"></span>{label}</li>",
            outcome_class(outcome)
        );
    }
    page.push_str("</ul><div class=\"chart\">");
    svg_into(page, report);
    page.push_str("</div></section>\n");
}

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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, m, s).unwrap()
    }

    #[test]
    fn a_label_at_the_edge_is_anchored_inside_the_chart() {
        let mut report = crate::report::fixtures::fleet();
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
