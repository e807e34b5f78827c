//! cmafleet under measurement: `plan` for the lower bound, `run` through the measuring
//! wrapper with limits and polling scaled like the simulator, and the figures read back from
//! what the simulator received and what cmafleet reported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cmafleet::sim::{RequestCounters, SimTask};

use crate::measure::{self, Measured};
use crate::setup::{self, BenchSite, CHECK_SECONDS, ENV, MIGRATE_SECONDS, SimProcess};

/// `--poll-min` and `--poll-max` (simulated seconds): cmafleet's defaults.
pub const POLL_MIN: f64 = 5.0;
pub const POLL_MAX: f64 = 60.0;

/// One cmafleet run to measure.
pub struct FleetRun<'a> {
    pub binary: &'a Path,
    pub dir: PathBuf,
    pub sim: &'a SimProcess,
    pub sites: Vec<BenchSite>,
    /// `check` or `migrate`.
    pub mode: &'static str,
    pub concurrency: usize,
    /// How cmafleet speaks to the simulator's plain-http API.
    pub http: Http,
}

/// The HTTP version of a run against the (plain-http) simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http {
    /// `--http2-prior-knowledge`: one connection carries every request.
    H2c,
    /// The default for plain http: HTTP/1.1, a pool of connections.
    Http1,
}

impl Http {
    pub fn label(self) -> &'static str {
        match self {
            Http::H2c => "(HTTP/2)",
            Http::Http1 => "(HTTP/1.1)",
        }
    }

    pub fn dir_suffix(self) -> &'static str {
        match self {
            Http::H2c => "",
            Http::Http1 => "-http1",
        }
    }
}

/// What a run measured.
pub struct RunFigures {
    pub measured: Measured,
    /// The plan's bound, simulated seconds, and what decides it.
    pub bound_sim: f64,
    pub bound_by: String,
    pub rate_limited: u64,
    pub outcomes: HashMap<String, usize>,
    pub polls: PollFigures,
    pub counters: RequestCounters,
}

impl RunFigures {
    /// The bound in real seconds at the simulator's scale.
    pub fn bound_real(&self, scale: f64) -> f64 {
        self.bound_sim / scale
    }

    pub fn efficiency(&self, scale: f64) -> f64 {
        self.bound_real(scale) / self.measured.wall.as_secs_f64()
    }
}

/// Status requests per site and how late a finished task was noticed.
#[derive(Debug, Default)]
pub struct PollFigures {
    pub status_mean: f64,
    pub status_max: u64,
    /// duration / poll-max + log2(duration / poll-min) + 1 per polled level.
    pub status_bound: f64,
    /// Simulated seconds between a task's end (simulator) and cmafleet noticing it.
    pub notice_mean: f64,
    pub notice_max: f64,
    pub noticed: usize,
}

impl FleetRun<'_> {
    /// Writes the inventory, asks `plan` for the bound, runs, and reads the figures back.
    pub async fn measure(self) -> RunFigures {
        let inventory = self.dir.join("inventory.csv");
        setup::write_inventory(&inventory, &self.sim.base, &self.sites).expect("write inventory");
        let (bound_sim, bound_by) = self.plan(&inventory).await;
        let args = self.run_args(&inventory);
        // For profiling by hand: the exact arguments (the simulator's URL is the bench's).
        let _ = std::fs::write(self.dir.join("run.args"), args.join("\n"));
        let measured = measure::run(&self.dir, "run", self.binary, &args, &ENV).await;
        if measured.code != 0 {
            let stderr = std::fs::read_to_string(self.dir.join("run.err")).unwrap_or_default();
            let tail: String = stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n");
            eprintln!(
                "warning: cmafleet run exited {} ({}); last lines of its stderr, newest first:\n{tail}",
                measured.code,
                self.dir.display()
            );
        }
        let counters = self.sim.counters().await;
        let tasks = self.sim.tasks().await;
        let rate_limited = self
            .sites
            .first()
            .map(|_| {
                let users: std::collections::HashSet<&str> = self
                    .sites
                    .iter()
                    .map(|site| site.cloud_user.as_str())
                    .collect();
                counters
                    .rate_limited
                    .by_user
                    .iter()
                    .filter(|(user, _)| users.contains(user.as_str()))
                    .flat_map(|(_, classes)| classes.values())
                    .sum()
            })
            .unwrap_or(0);
        let outcomes = outcomes(&self.dir.join("report").join("summary.csv"));
        let polls = self.poll_figures(&counters, &tasks);
        RunFigures {
            measured,
            bound_sim,
            bound_by,
            rate_limited,
            outcomes,
            polls,
            counters,
        }
    }

    fn task_seconds(&self) -> u64 {
        match self.mode {
            "migrate" => CHECK_SECONDS + MIGRATE_SECONDS,
            _ => CHECK_SECONDS,
        }
    }

    /// `cmafleet plan --format json` with the simulator's unscaled limits and the scenario's
    /// fixed task duration: the bound in simulated seconds.
    async fn plan(&self, inventory: &Path) -> (f64, String) {
        let output = tokio::process::Command::new(self.binary)
            .arg("plan")
            .arg(inventory)
            .args(["--mode", self.mode, "--format", "json"])
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .args(["--task-duration", &format!("{}s", self.task_seconds())])
            .args(["--concurrency", &self.concurrency.to_string()])
            .envs(ENV)
            .output()
            .await
            .expect("cmafleet plan runs");
        assert!(
            output.status.success(),
            "cmafleet plan failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let plan: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("plan --format json is JSON");
        (
            plan["bound_seconds"].as_f64().expect("bound_seconds"),
            plan["bound_by"].as_str().unwrap_or_default().to_owned(),
        )
    }

    fn run_args(&self, inventory: &Path) -> Vec<String> {
        let scale = self.sim.scale;
        let mut args = vec![
            "run".to_owned(),
            inventory.display().to_string(),
            "--mode".into(),
            self.mode.into(),
            "--state-dir".into(),
            self.dir.join("state").display().to_string(),
            "--report-dir".into(),
            self.dir.join("report").display().to_string(),
            "--cloud-api-url".into(),
            self.sim.base.clone(),
            "--concurrency".into(),
            self.concurrency.to_string(),
            "--progress".into(),
            "never".into(),
            "-q".into(),
        ];
        if self.http == Http::H2c {
            args.push("--http2-prior-knowledge".into());
        }
        args.extend(scaled_limits(scale));
        args
    }

    fn poll_figures(&self, counters: &RequestCounters, tasks: &[SimTask]) -> PollFigures {
        let scale = self.sim.scale;
        let reads: Vec<u64> = self
            .sites
            .iter()
            .map(|site| {
                counters
                    .by_server
                    .get(&site.name)
                    .map_or(0, |server| server.status_reads)
            })
            .collect();
        let levels: &[u64] = match self.mode {
            "migrate" => &[CHECK_SECONDS, MIGRATE_SECONDS],
            _ => &[CHECK_SECONDS],
        };
        let status_bound = levels
            .iter()
            .map(|seconds| {
                let seconds = *seconds as f64;
                seconds / POLL_MAX + (seconds / POLL_MIN).log2() + 1.0
            })
            .sum();
        let finished: HashMap<&str, DateTime<Utc>> = tasks
            .iter()
            .filter_map(|task| {
                Some((
                    task.task_id.as_str(),
                    parse_time(task.finished_at.as_deref()?)?,
                ))
            })
            .collect();
        let mut notices = Vec::new();
        for site in &self.sites {
            let path = self
                .dir
                .join("report")
                .join("sites")
                .join(format!("{}.json", site.name));
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let Ok(report) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            for task in report["tasks"].as_array().into_iter().flatten() {
                if task["kind"].as_str() != Some(self.mode) {
                    continue;
                }
                let (Some(id), Some(noticed)) = (
                    task["task_id"].as_str(),
                    task["finished_at"].as_str().and_then(parse_time),
                ) else {
                    continue;
                };
                if let Some(ended) = finished.get(id) {
                    let late = (noticed - *ended).num_microseconds().unwrap_or(0) as f64 / 1e6;
                    notices.push(late * scale);
                }
            }
        }
        PollFigures {
            status_mean: reads.iter().sum::<u64>() as f64 / reads.len().max(1) as f64,
            status_max: reads.iter().copied().max().unwrap_or(0),
            status_bound,
            notice_mean: notices.iter().sum::<f64>() / notices.len().max(1) as f64,
            notice_max: notices.iter().copied().fold(0.0, f64::max),
            noticed: notices.len(),
        }
    }
}

/// Rate limits and polling for cmafleet, scaled like the simulator (`60000 / scale` must be
/// a whole number of milliseconds, so the windows are exact).
pub fn scaled_limits(scale: f64) -> Vec<String> {
    let ms = |seconds: f64| (seconds * 1000.0 / scale).ceil() as u64;
    let us = |seconds: f64| (seconds * 1_000_000.0 / scale).ceil() as u64;
    vec![
        "--rate-create-job".into(),
        format!("5/{}ms", ms(60.0)),
        "--rate-create-task".into(),
        format!("5/{}ms", ms(60.0)),
        "--rate-read".into(),
        format!("600/{}ms", ms(60.0)),
        "--rate-token".into(),
        format!("10/{}ms", ms(3600.0)),
        "--poll-min".into(),
        format!("{}us", us(POLL_MIN)),
        "--poll-max".into(),
        format!("{}us", us(POLL_MAX)),
    ]
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// Sites per outcome from `summary.csv`.
fn outcomes(path: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let Ok(mut reader) = csv::Reader::from_path(path) else {
        return counts;
    };
    let Ok(headers) = reader.headers().cloned() else {
        return counts;
    };
    let Some(column) = headers.iter().position(|name| name == "outcome") else {
        return counts;
    };
    for record in reader.records().flatten() {
        *counts
            .entry(record.get(column).unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    counts
}

/// `succeeded 50` or `succeeded 48, failed 2`.
pub fn outcome_text(outcomes: &HashMap<String, usize>) -> String {
    let mut pairs: Vec<(&String, &usize)> = outcomes.iter().collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(outcome, count)| format!("{outcome} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Seconds with two decimals.
pub fn secs(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}
