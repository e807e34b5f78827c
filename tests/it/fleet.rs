//! `cmafleet run` (and `cmafleet demo`) end to end: the real binary against the simulator on a
//! loopback port, at a high time scale. Tests assert on the exit code, the files written
//! (`summary.csv`, `sites/*.json`, `run.json`, `report.html`) and on what the simulator
//! received (`/_sim/requests`, `/_sim/tasks`, status trees read back from its API).

mod attach;
mod browser;
mod caps;
mod check;
mod demo;
mod exits;
mod independent;
mod migrate;
mod overrides;
mod signals;
mod window;

use crate::support::fleet::Fleet;

/// The time scale of most fleet tests: a simulated hour lasts a real second.
pub const FAST: f64 = 3600.0;

/// The header of a report dir's `summary.csv`, column by column.
pub fn summary_header(fleet: &Fleet, report: &str) -> Vec<String> {
    let text = fleet.report_text(report, "summary.csv");
    let first = text.lines().next().unwrap_or_default();
    first.split(',').map(str::to_owned).collect()
}

/// The notes of a site's report, joined (for `contains` assertions).
pub fn notes(site: &serde_json::Value) -> String {
    site["notes"]
        .as_array()
        .map(|notes| {
            notes
                .iter()
                .filter_map(|note| note.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The stages a site went through, in order.
pub fn stages(site: &serde_json::Value) -> Vec<String> {
    site["stages"]
        .as_array()
        .map(|stages| {
            stages
                .iter()
                .filter_map(|span| span["stage"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
