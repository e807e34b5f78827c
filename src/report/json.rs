//! `run.json` and `sites/<site>.json`.
//!
//! SKELETON: to be written (issue 4).

use super::model::{RunInfo, SiteReport};

pub fn run(info: &RunInfo) -> Vec<u8> {
    let _ = info;
    todo!()
}

pub fn site(report: &SiteReport) -> Vec<u8> {
    let _ = report;
    todo!()
}
