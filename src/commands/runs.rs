//! `cmafleet runs [--state-dir DIR] [--format table|json]`: the past runs of a state store,
//! newest first — id, mode, shard, start, duration, counts by outcome, exit code — so that
//! `report --run RUN_ID` can be given an id. Read-only, like `status`; the same exit codes
//! (73 without a store, saying where one might be).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::table::{Align, Table};
use crate::cli::{Format, RunsArgs};
use crate::exit;
use crate::report::format::{duration, exit_meaning, timestamp};
use crate::report::model::RunInfo;
use crate::vocab::{Mode, Outcome};

/// Lists the runs; returns the exit code.
pub fn run(args: &RunsArgs) -> u8 {
    let store = match super::locate::open(&args.store.state_dir, args.store.config.as_deref()) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let runs = match store.runs() {
        Ok(runs) => runs,
        Err(error) => {
            crate::fatal::report(error.exit_code(), &error.to_string());
            return error.exit_code();
        }
    };
    let lines: Vec<RunLine> = runs.iter().map(RunLine::of).collect();
    let text = match args.format {
        Format::Table => render_table(&lines, &store.path().display().to_string()),
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&lines)
                .expect("runs serialise: plain data, string keys");
            text.push('\n');
            text
        }
    };
    crate::stdout::print(&text, exit::OK)
}

/// One run (`--format json`: an array of these, newest first; field names stable).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunLine {
    pub run_id: String,
    pub mode: Mode,
    /// `I/N` for one shard of a fleet.
    pub shard: Option<String>,
    pub started_at: DateTime<Utc>,
    /// `null` while it runs, or when it was killed before recording its end.
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<i64>,
    /// Sites per outcome, the outcomes that occurred only.
    pub counts: BTreeMap<Outcome, usize>,
    pub sites: usize,
    pub exit_code: Option<i32>,
}

impl RunLine {
    pub fn of(run: &RunInfo) -> RunLine {
        RunLine {
            run_id: run.run_id.clone(),
            mode: run.mode,
            shard: run.shard.clone(),
            started_at: run.started_at,
            finished_at: run.finished_at,
            duration_seconds: run
                .finished_at
                .map(|end| (end - run.started_at).num_seconds().max(0)),
            counts: run
                .counts
                .iter()
                .filter(|(_, count)| **count > 0)
                .map(|(outcome, count)| (*outcome, *count))
                .collect(),
            sites: run.counts.values().sum(),
            exit_code: run.exit_code,
        }
    }
}

/// The `--format table` text: one aligned line per run, then how to see one.
pub fn render_table(runs: &[RunLine], state_db: &str) -> String {
    if runs.is_empty() {
        return format!("no run recorded in {state_db}\n");
    }
    let mut table = Table::new([
        ("RUN", Align::Left),
        ("MODE", Align::Left),
        ("SHARD", Align::Left),
        ("STARTED", Align::Left),
        ("DURATION", Align::Right),
        ("SITES", Align::Right),
        ("OUTCOMES", Align::Left),
        ("EXIT", Align::Left),
    ]);
    for run in runs {
        let counts: Vec<String> = Outcome::ALL
            .iter()
            .filter_map(|outcome| {
                let count = run.counts.get(outcome)?;
                Some(format!("{} {count}", outcome.as_str()))
            })
            .collect();
        let exit = match (run.exit_code, run.finished_at) {
            (Some(code), _) => format!("{code} ({})", exit_meaning(code)),
            (None, _) => "- (running, or killed)".to_owned(),
        };
        table.row([
            run.run_id.clone(),
            run.mode.to_string(),
            run.shard.clone().unwrap_or_else(|| "-".to_owned()),
            timestamp(run.started_at),
            run.duration_seconds
                .map_or_else(|| "-".to_owned(), duration),
            run.sites.to_string(),
            if counts.is_empty() {
                "-".to_owned()
            } else {
                counts.join(", ")
            },
            exit,
        ]);
    }
    let noun = if runs.len() == 1 { "run" } else { "runs" };
    format!(
        "{}\n{} {noun} in {state_db}; `cmafleet report --out DIR --run RUN` renders one\n",
        table.render(),
        runs.len()
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn run(id: &str, minute: u32, finished: Option<u32>, exit: Option<i32>) -> RunInfo {
        let at = |minute| Utc.with_ymd_and_hms(2026, 5, 1, 2, minute, 0).unwrap();
        RunInfo {
            run_id: id.into(),
            mode: Mode::Check,
            options: serde_json::json!({}),
            shard: None,
            started_at: at(minute),
            finished_at: finished.map(at),
            counts: Outcome::ALL
                .iter()
                .map(|outcome| {
                    let count = match outcome {
                        Outcome::Succeeded => 11,
                        Outcome::Blocked => 1,
                        _ => 0,
                    };
                    (*outcome, count)
                })
                .collect(),
            exit_code: exit,
            notes: Vec::new(),
            version: "0.1.0".into(),
            surprises: Vec::new(),
        }
    }

    #[test]
    fn the_table_is_sized_to_its_content() {
        let lines = [
            RunLine::of(&run("20260501T020500Z-b", 5, None, None)),
            RunLine::of(&run("20260501T020000Z-a", 0, Some(3), Some(1))),
        ];
        assert_eq!(
            render_table(&lines, "/s/state.db"),
            "\
RUN                 MODE   SHARD  STARTED               DURATION  SITES  OUTCOMES                 EXIT
20260501T020500Z-b  check  -      2026-05-01T02:05:00Z         -     12  succeeded 11, blocked 1  - (running, or killed)
20260501T020000Z-a  check  -      2026-05-01T02:00:00Z    3m 00s     12  succeeded 11, blocked 1  1 (at least one site failed or is blocked)

2 runs in /s/state.db; `cmafleet report --out DIR --run RUN` renders one
"
        );
    }

    #[test]
    fn the_json_has_durations_and_only_the_counts_that_occurred() {
        let line = RunLine::of(&run("r", 0, Some(3), Some(1)));
        let json = serde_json::to_value([line]).unwrap();
        assert_eq!(json[0]["duration_seconds"], 180);
        assert_eq!(json[0]["sites"], 12);
        assert_eq!(json[0]["exit_code"], 1);
        assert_eq!(
            json[0]["counts"],
            serde_json::json!({"succeeded": 11, "blocked": 1})
        );
    }
}
