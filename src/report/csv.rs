//! `summary.csv`: one row per selected site, in report order, for spreadsheets and scripts.
//!
//! The first eleven columns are the documented ones (README, "Reports"); four more follow: the site's `stage`, its
//! `duration_seconds`, the names of its `failed_check_names` (`;`-separated), so a
//! spreadsheet can filter the fleet by failing check, and the scopes `still_running` after
//! the core migrated (apps: the site is migrated, and later runs follow it up); a report
//! over several state stores adds a last one, `shard`. Timestamps are RFC 3339 in UTC; empty
//! cells mean "not known yet" (a running site has no `outcome` and no `finished_at`).
//!
//! **Formula neutralisation.** Messages and check names come from the service and from
//! customer data; a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is run
//! as a formula when a spreadsheet opens the file (CSV injection). Such a cell is written
//! with a leading `'`, which spreadsheets hide and which keeps the text as text. Every cell
//! goes through this rule; the only cells it can change are free text, since the numbers and
//! timestamps written here never start with those characters.

use super::format::{site_seconds, timestamp};
use super::model::{RunReport, SiteReport};
use crate::report::fleet_checks::Severity;

/// The columns, in order (the README lists the first eleven).
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
    "stage",
    "duration_seconds",
    "failed_check_names",
    "still_running",
];

/// The column after [`COLUMNS`] in a report over several state stores (`cmafleet report
/// --state-dirs`): which shard's run each site's row comes from.
pub const SHARD_COLUMN: &str = "shard";

pub fn render(report: &RunReport) -> Vec<u8> {
    let mut writer = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::Any(b'\n'))
        .from_writer(Vec::with_capacity(256 * (report.sites.len() + 1)));
    let sharded = report.sites.iter().any(|site| site.shard.is_some());
    let shard_column = sharded.then_some(SHARD_COLUMN);
    let header = COLUMNS.iter().copied().chain(shard_column);
    // Writing into a Vec cannot fail, and every record has as many fields as the header.
    writer
        .write_record(header.map(str::as_bytes))
        .expect("csv into memory cannot fail");
    for site in &report.sites {
        let shard = sharded.then(|| site.shard.clone().unwrap_or_default());
        let cells = row(site).into_iter().chain(shard);
        writer
            .write_record(cells.map(|cell| neutralise(&cell)))
            .expect("csv into memory cannot fail");
    }
    writer.into_inner().expect("csv into memory cannot fail")
}

/// One site's cells, in [`COLUMNS`] order.
fn row(site: &SiteReport) -> [String; 15] {
    let failed_names: Vec<&str> = site
        .checks
        .iter()
        .filter(|check| Severity::of(check) == Some(Severity::Failed))
        .map(|check| check.name.as_str())
        .collect();
    [
        site.site.clone(),
        site.product.clone(),
        site.mode.to_string(),
        site.outcome
            .map(|outcome| outcome.to_string())
            .unwrap_or_default(),
        site.job_id.clone().unwrap_or_default(),
        site.task_id.clone().unwrap_or_default(),
        site.checks_with("FAILED").to_string(),
        site.checks_with("WARNING").to_string(),
        one_line(&site.message),
        site.started_at.map(timestamp).unwrap_or_default(),
        site.finished_at.map(timestamp).unwrap_or_default(),
        site.stage.to_string(),
        site_seconds(site)
            .map(|s| s.to_string())
            .unwrap_or_default(),
        failed_names.join(";"),
        site.still_running.join(";"),
    ]
}

/// Messages are one line in a spreadsheet cell; the site JSON keeps the original.
fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prefixes `'` to a cell a spreadsheet would evaluate as a formula.
pub fn neutralise(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::report::model::{CheckResult, RunInfo};
    use crate::vocab::{Mode, Outcome, Stage};

    fn report(sites: Vec<SiteReport>) -> RunReport {
        RunReport {
            run: RunInfo {
                run_id: "r1".to_owned(),
                mode: Mode::Check,
                options: serde_json::Value::Null,
                shard: None,
                started_at: Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0).unwrap(),
                finished_at: None,
                counts: Default::default(),
                exit_code: None,
                notes: Vec::new(),
                version: "0".to_owned(),
                surprises: Vec::new(),
            },
            sites,
        }
    }

    fn check(name: &str, outcome: &str) -> std::sync::Arc<CheckResult> {
        std::sync::Arc::new(CheckResult {
            name: name.to_owned(),
            status: "FINISHED".to_owned(),
            outcome: outcome.to_owned(),
            message: None,
            occurrences: Vec::new(),
            excludable: None,
            description: None,
        })
    }

    fn parse(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
        let mut reader = ::csv::Reader::from_reader(bytes);
        let header = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        let rows = reader
            .records()
            .map(|record| record.unwrap().iter().map(str::to_owned).collect())
            .collect();
        (header, rows)
    }

    #[test]
    fn header_starts_with_the_spec_columns() {
        let (header, rows) = parse(&render(&report(Vec::new())));
        let spec = "site,product,mode,outcome,job_id,task_id,checks_failed,checks_warning,\
                    message,started_at,finished_at";
        assert_eq!(header[..11].join(","), spec);
        assert_eq!(header, COLUMNS);
        assert!(rows.is_empty());
    }

    #[test]
    fn one_row_per_site_with_values_that_parse_back() {
        let mut done = SiteReport::pending("acme-jira", "jira", Mode::Check);
        done.outcome = Some(Outcome::Blocked);
        done.stage = Stage::Done;
        done.job_id = Some("job-1".to_owned());
        done.task_id = Some("task-1".to_owned());
        done.message = "2 checks failed, \"quoted\", and a comma\nsecond line".to_owned();
        done.checks = vec![
            check("users-dup", "FAILED"),
            check("apps", "failed"),
            check("space", "WARNING"),
            check("fine", "SUCCESS"),
        ];
        done.started_at = Some(Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 5).unwrap());
        done.finished_at = Some(Utc.with_ymd_and_hms(2026, 3, 1, 2, 4, 12).unwrap());
        let mut running = SiteReport::pending("beta.wiki", "confluence", Mode::Check);
        running.stage = Stage::Check;
        running.started_at = Some(Utc.with_ymd_and_hms(2026, 3, 1, 2, 1, 0).unwrap());

        let (header, rows) = parse(&render(&report(vec![done, running])));
        let cell = |row: usize, column: &str| {
            let index = header.iter().position(|name| name == column).unwrap();
            rows[row][index].clone()
        };
        assert_eq!(rows.len(), 2);
        assert_eq!(cell(0, "site"), "acme-jira");
        assert_eq!(cell(0, "outcome"), "blocked");
        assert_eq!(cell(0, "job_id"), "job-1");
        assert_eq!(cell(0, "checks_failed"), "2");
        assert_eq!(cell(0, "checks_warning"), "1");
        assert_eq!(
            cell(0, "message"),
            "2 checks failed, \"quoted\", and a comma second line"
        );
        assert_eq!(cell(0, "started_at"), "2026-03-01T02:00:05Z");
        assert_eq!(cell(0, "finished_at"), "2026-03-01T02:04:12Z");
        assert_eq!(cell(0, "duration_seconds"), "247");
        assert_eq!(cell(0, "failed_check_names"), "users-dup;apps");
        assert_eq!(cell(1, "site"), "beta.wiki");
        assert_eq!(cell(1, "mode"), "check");
        assert_eq!(cell(1, "outcome"), "", "running: no outcome yet");
        assert_eq!(cell(1, "finished_at"), "");
        assert_eq!(cell(1, "stage"), "check");
    }

    #[test]
    fn formula_cells_are_neutralised() {
        let mut site = SiteReport::pending("s", "jira", Mode::Check);
        site.message = "=HYPERLINK(\"http://evil\",\"x\")".to_owned();
        site.checks = vec![check("+cmd|' /C calc'!A0", "FAILED")];
        site.job_id = Some("@SUM(1)".to_owned());
        site.task_id = Some("-2+3".to_owned());
        let (header, rows) = parse(&render(&report(vec![site])));
        let cell = |column: &str| rows[0][header.iter().position(|c| c == column).unwrap()].clone();
        assert_eq!(cell("message"), "'=HYPERLINK(\"http://evil\",\"x\")");
        assert_eq!(cell("failed_check_names"), "'+cmd|' /C calc'!A0");
        assert_eq!(cell("job_id"), "'@SUM(1)");
        assert_eq!(cell("task_id"), "'-2+3");
        assert_eq!(neutralise("\tx"), "'\tx");
        assert_eq!(neutralise("plain = text"), "plain = text");
        assert_eq!(neutralise(""), "");
    }
}
