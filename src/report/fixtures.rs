//! The fixed, realistic fleet the report's tests render (`tests/fixtures/report/`), below
//! every renderer so that any module's tests may load it.

use std::path::PathBuf;

use super::model::RunReport;

pub(crate) fn manifest_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

pub(crate) fn fleet() -> RunReport {
    load("tests/fixtures/report/fleet.json")
}

pub(crate) fn previous_fleet() -> RunReport {
    load("tests/fixtures/report/fleet-previous.json")
}

fn load(relative: &str) -> RunReport {
    let text = std::fs::read_to_string(manifest_path(relative)).expect("fixture present");
    serde_json::from_str(&text).expect("fixture is a RunReport")
}
