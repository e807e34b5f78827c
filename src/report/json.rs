//! `run.json` and `sites/<site>.json`: the model as pretty JSON, for scripts and for people
//! who want everything. The field names are the model's (`report::model`).

use serde::Serialize;

use super::model::{RunInfo, SiteReport};

/// `run.json`: run id, mode, options, counts by outcome, exit code, start and end.
pub fn run(info: &RunInfo) -> Vec<u8> {
    pretty(info)
}

/// `sites/<site>.json`: stages, ids, every check and scope node, artifacts, errors.
pub fn site(report: &SiteReport) -> Vec<u8> {
    pretty(report)
}

fn pretty(value: &impl Serialize) -> Vec<u8> {
    // The model is plain data (strings, numbers, maps with string-like keys): serialising
    // it cannot fail.
    let mut bytes = serde_json::to_vec_pretty(value).expect("the report model serialises");
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::vocab::{Mode, Outcome};

    #[test]
    fn run_json_round_trips_with_every_outcome_counted() {
        let info = RunInfo {
            run_id: "20260301-020000".to_owned(),
            mode: Mode::Migrate,
            options: serde_json::json!({"concurrency": 50}),
            shard: Some("1/4".to_owned()),
            started_at: Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0).unwrap(),
            finished_at: Some(Utc.with_ymd_and_hms(2026, 3, 1, 3, 0, 0).unwrap()),
            counts: Outcome::ALL.into_iter().map(|o| (o, 0)).collect(),
            exit_code: Some(0),
            notes: vec!["a note".to_owned()],
            version: "0.1.0".to_owned(),
            surprises: Vec::new(),
        };
        let bytes = run(&info);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.ends_with("}\n"));
        assert!(text.contains("\"mode\": \"migrate\""), "{text}");
        assert!(
            text.contains("\"started_at\": \"2026-03-01T02:00:00Z\""),
            "{text}"
        );
        let counts: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(counts["counts"].as_object().unwrap().len(), 6);
        let back: RunInfo = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, info);
    }

    #[test]
    fn site_json_round_trips() {
        let mut report = SiteReport::pending("acme", "jira", Mode::Check);
        report.message = "all good".to_owned();
        let back: SiteReport = serde_json::from_slice(&site(&report)).unwrap();
        assert_eq!(back, report);
    }
}
