//! Operations: logs, progress, the settings file, sharding, the live status page and the
//! deploy files — as an operator running cmafleet from cron, systemd or Kubernetes meets them.
//!
//! [`LiveRun`] is a run held open on purpose: the simulator's clock is manual, so sites
//! finish only when a test advances it, and the test can look at the status page or let
//! Prometheus scrape between two steps without any timing luck.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::fleet::{Fleet, Row};

mod cli;
mod cron;
mod deploy;
mod everyday;
mod kubernetes;
mod logs;
mod online;
mod progress;
mod prometheus;
mod shard;
mod state_views;
mod status_page;

/// A manual-clock scenario: `fast*` servers finish their checks 2 simulated minutes after
/// they start, `slow*` ones after 30; limits are off on the simulator's side because its
/// windows do not move while its clock stands still (the client still paces itself).
pub const HELD_SCENARIO: &str = r#"
    clock = "manual"
    [rate_limits]
    create_job = "unlimited"
    create_task = "unlimited"
    read = "unlimited"
    token = "unlimited"
    [api]
    status_delay = "0s"
    [servers.fast1]
    check_duration = "2m"
    [servers.fast2]
    check_duration = "2m"
    [servers.slow1]
    check_duration = "30m"
    [servers.slow2]
    check_duration = "30m"
"#;

/// Two fast and two slow sites, of two cloud users.
pub fn held_rows() -> Vec<Row> {
    vec![
        Row::jira("fast1"),
        Row::confluence("fast2").user("bob@example.com"),
        Row::jira("slow1"),
        Row::confluence("slow2").user("bob@example.com"),
    ]
}

/// `cmafleet run` in progress, serving `--metrics-listen` on a loopback port it chose.
pub struct LiveRun {
    pub fleet: Fleet,
    child: tokio::process::Child,
    /// `http://127.0.0.1:PORT/`.
    pub base: String,
    /// Every stderr line so far (the reader keeps draining the pipe).
    pub stderr: Arc<Mutex<Vec<String>>>,
    client: reqwest::Client,
}

impl LiveRun {
    /// Starts a check run of `rows` against `scenario` at `time_scale` with
    /// `--metrics-listen 127.0.0.1:0`, and waits until it serves.
    pub async fn start(scenario: &str, time_scale: f64, rows: Vec<Row>) -> LiveRun {
        let fleet = Fleet::start(scenario, time_scale, rows).await;
        let mut command = fleet.command("check", "live");
        command
            .args(["--metrics-listen", "127.0.0.1:0"])
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("cmafleet starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (found, address) = tokio::sync::oneshot::channel();
        let mut found = Some(found);
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let collected = Arc::clone(&stderr);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(at) = line.find("live status page on http://")
                    && let Some(found) = found.take()
                {
                    let url = line[at + "live status page on ".len()..].trim().to_owned();
                    let _ = found.send(url);
                }
                collected.lock().unwrap().push(line);
            }
        });
        let base = tokio::time::timeout(Duration::from_secs(60), address)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no metrics address logged within 60 s; stderr:\n{}",
                    stderr.lock().unwrap().join("\n")
                )
            })
            .expect("the address");
        LiveRun {
            fleet,
            child,
            base,
            stderr,
            client: reqwest::Client::new(),
        }
    }

    /// `/status.json` now.
    pub async fn status(&self) -> Value {
        self.client
            .get(format!("{}status.json", self.base))
            .send()
            .await
            .expect("status.json answers")
            .json()
            .await
            .expect("status.json is JSON")
    }

    /// Polls `/status.json` until `done` holds (bounded), and returns that status.
    pub async fn wait_status(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "not reached within 90 s: {what}; last status: {status}\nstderr:\n{}",
                self.stderr.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (bounded) until the simulator holds `count` tasks: every site's task exists, so
    /// a clock step moves them all.
    pub async fn wait_tasks(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.fleet.tasks().await.len() < count {
            assert!(
                Instant::now() < deadline,
                "fewer than {count} tasks within 90 s; stderr:\n{}",
                self.stderr.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Moves the simulator's clock forward by `by` simulated time (e.g. `5m`).
    pub async fn advance(&self, by: &str) {
        let response = self
            .client
            .post(format!(
                "{}/_sim/clock/advance?by={by}",
                self.fleet.sim.base_url()
            ))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "advance: {response:?}");
    }

    /// Lets every site finish and returns the run's exit code.
    pub async fn finish(mut self) -> (i32, Fleet) {
        self.advance("24h").await;
        let status = tokio::time::timeout(Duration::from_secs(90), self.child.wait())
            .await
            .expect("the run ends after the clock moved past every task")
            .expect("cmafleet ran");
        (status.code().unwrap_or(-1), self.fleet)
    }
}

/// Outcome counts of a status, only the words the page shows.
pub fn counts(status: &Value) -> std::collections::BTreeMap<String, u64> {
    status["counts"]
        .as_object()
        .map(|counts| {
            counts
                .iter()
                .map(|(word, n)| (word.clone(), n.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}
