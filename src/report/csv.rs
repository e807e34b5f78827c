//! `summary.csv`: one row per selected site.
//!
//! SKELETON: to be written (issue 4).

use super::model::RunReport;

/// The columns, in order (SPEC.md lists the first eleven).
pub const COLUMNS: &[&str] = &[
    "site",
    "product",
    "mode",
    "outcome",
    "job_id",
    "task_id",
    "checks_failed",
    "checks_warning",
    "message",
    "started_at",
    "finished_at",
];

pub fn render(report: &RunReport) -> Vec<u8> {
    let _ = report;
    todo!()
}
