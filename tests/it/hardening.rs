//! Hardening: cmafleet keeps going through faults, loses nothing and leaks nothing.
//!
//! - `faults`: simulator scenarios (5xx, lost create answers, latency beyond the timeout,
//!   429 storms, late status, pages that change, an outage, an attach that lapses); in each,
//!   every site ends correctly and no task is created twice.
//! - `disk`: a report dir that cannot be written, a state store that refuses a write.
//! - `input`: random inventories never panic the parser; garbled API answers never panic
//!   the run.
//! - `secrets`: every file and log line written is free of secrets; each credential goes
//!   only to its own host; plain http is refused off loopback; files are private.
//! - `simulator`: the simulator's fault extensions these rely on (outage, latency, garbage).
//!
//! `docs/reliability.md` lists these tests with their figures.

mod disk;
mod faults;
mod input;
mod secrets;
mod simulator;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::support::fleet::{Fleet, RunOutput, with_flag};

/// Runs `command` to its end, at most `limit` (a hung run fails the test).
async fn finish(child: tokio::process::Child, limit: Duration) -> RunOutput {
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .expect("cmafleet finished in time")
        .expect("cmafleet ran");
    RunOutput {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Every row of the fleet ended with `outcome` in the report `report`.
fn assert_outcomes(fleet: &Fleet, report: &str, expected: &BTreeMap<&str, &str>, run: &RunOutput) {
    let summary = fleet.summary(report);
    let got: BTreeMap<&str, &str> = summary
        .iter()
        .map(|(site, row)| (site.as_str(), row["outcome"].as_str()))
        .collect();
    assert_eq!(
        &got, expected,
        "outcomes by site\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
}

/// Every row of the fleet `succeeded`, and the run exited 0.
fn assert_all_succeeded(fleet: &Fleet, report: &str, run: &RunOutput) {
    let expected: BTreeMap<&str, &str> = fleet
        .rows
        .iter()
        .map(|row| (row.site.as_str(), "succeeded"))
        .collect();
    assert_outcomes(fleet, report, &expected, run);
    assert_eq!(run.code, 0, "exit code\n{}", run.stderr);
}

/// No task type was created twice on any job.
async fn assert_no_duplicate_tasks(fleet: &Fleet) {
    let counters = fleet.counters().await;
    assert!(
        counters.repeated_task_creates().is_empty(),
        "tasks created twice: {:?}",
        counters.repeated_task_creates()
    );
}

/// The sum of the samples of `metric` whose labels include every `label="value"` given, in
/// a Prometheus text file.
fn metric_sum(text: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| {
            labels
                .iter()
                .all(|(key, value)| line.contains(&format!("{key}=\"{value}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn read_metrics(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("metrics textfile {}: {error}", path.display()))
}
