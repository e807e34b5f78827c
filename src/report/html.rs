//! `report.html`: one self-contained file (inline CSS and SVG, no network).
//!
//! SKELETON: to be written (issue 4).

use super::model::RunReport;

pub fn render(report: &RunReport) -> String {
    let _ = report;
    todo!()
}
