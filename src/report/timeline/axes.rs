//! What both timeline charts are drawn on: the stages a run went through (a chart's rows of
//! bars or its lanes) and the time scale with its axis. Shared by the row-per-site chart and
//! [`lanes`](super::lanes), so neither reaches into the other.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::report::format::run_span;
use crate::report::model::RunReport;
use crate::vocab::Stage;

/// The stages that appear on the timeline, in pipeline order (for its legend).
pub(super) fn stages_present(report: &RunReport) -> Vec<Stage> {
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
pub(super) const WIDTH: f64 = 1120.0;
pub(super) const RIGHT_PAD: f64 = 16.0;
pub(super) const AXIS_HEIGHT: f64 = 26.0;
/// A tick label's width per character at the axis's font size (11 units), generously: the
/// digits of system fonts are 6–6.5 units wide.
const TICK_CHAR_WIDTH: f64 = 6.8;

/// The time scale of a chart: instants to x in user units, and the axis drawn from it.
pub(super) struct Scale {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub left: f64,
    pub right: f64,
}

impl Scale {
    pub(super) fn of(report: &RunReport, left: f64) -> Scale {
        let (start, end) = run_span(report);
        Scale {
            start,
            end,
            left,
            right: WIDTH - RIGHT_PAD,
        }
    }

    pub(super) fn x(&self, at: DateTime<Utc>) -> f64 {
        let total = (self.end - self.start).num_milliseconds().max(1) as f64;
        let offset = (at - self.start).num_milliseconds() as f64 / total;
        self.left + (self.right - self.left) * offset.clamp(0.0, 1.0)
    }

    /// Grid lines from `top` to `bottom` with their labels above (and below, with
    /// `below`). A label that would cross the chart's edge is anchored at its tick's side
    /// instead of centred on it, so the first and last are never cut off.
    pub(super) fn axis_into(&self, out: &mut String, top: f64, bottom: f64, below: bool) {
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

/// Round instants between `start` and `end` (both included), 2 to 8 of them: the largest
/// "nice" step (100 ms … 2 days) that gives at least 3 ticks over the span — a run of a
/// second gets ticks every 200 ms rather than two labels on top of each other.
pub(super) fn ticks(start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<DateTime<Utc>> {
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
}
