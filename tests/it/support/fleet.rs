//! A fleet under test: the simulator in this process (on 127.0.0.1:0, with a TOML scenario and
//! a time scale), an inventory written to a temp dir, and the real `cmafleet` binary run
//! against them with rate limits and polling scaled like the simulator. Tests assert on the
//! exit code, the files written and what the simulator received.

// Shared by several tests of the one test binary; not every test uses every helper.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use cmafleet::sim::{self, RequestCounters, Scenario, SimHandle, SimOptions, SimTask};
use tempfile::TempDir;

/// The secrets every fleet row references; the binary gets them in its environment.
pub const CLOUD_TOKEN: &str = "cloud-token-5ecret-Vx9";
pub const SERVER_PAT: &str = "server-pat-5ecret-Qw7";
pub const SERVER_PASSWORD: &str = "server-password-5ecret-Zr3";

/// How much longer the harness's rate windows are than the simulator's. The client spaces
/// requests evenly at exactly the configured rate, and the simulator counts a sliding window
/// by arrival: at a time scale of 3600 a 5/min window lasts 17 ms, and two requests sent
/// 17 ms apart can arrive a few ms closer on a loaded 2-core machine — a 429 that says
/// nothing about the client. A third of slack keeps "no 429" a deterministic assertion.
pub const RATE_SLACK: f64 = 1.5;

/// One inventory row; `Row::jira("acme")` fills the rest with sensible values.
#[derive(Debug, Clone)]
pub struct Row {
    pub site: String,
    pub product: &'static str,
    /// The simulator's `{server}` (and the Server ID).
    pub server: String,
    pub cloud_url: String,
    pub cloud_user: String,
    pub keys: String,
    pub apps: String,
    pub wave: String,
    /// `pat` or `basic`.
    pub auth: &'static str,
}

impl Row {
    pub fn jira(site: &str) -> Row {
        Row {
            site: site.to_owned(),
            product: "jira",
            server: site.to_owned(),
            cloud_url: format!("https://{site}.atlassian.net"),
            cloud_user: "alice@example.com".to_owned(),
            keys: "ABC".to_owned(),
            apps: String::new(),
            wave: String::new(),
            auth: "pat",
        }
    }

    pub fn confluence(site: &str) -> Row {
        Row {
            product: "confluence",
            keys: "ENG".to_owned(),
            ..Row::jira(site)
        }
    }

    pub fn server(mut self, server: &str) -> Row {
        self.server = server.to_owned();
        self
    }

    pub fn user(mut self, user: &str) -> Row {
        self.cloud_user = user.to_owned();
        self
    }

    pub fn keys(mut self, keys: &str) -> Row {
        self.keys = keys.to_owned();
        self
    }

    pub fn wave(mut self, wave: &str) -> Row {
        self.wave = wave.to_owned();
        self
    }

    pub fn cloud(mut self, cloud_url: &str) -> Row {
        self.cloud_url = cloud_url.to_owned();
        self
    }

    pub fn basic_auth(mut self) -> Row {
        self.auth = "basic";
        self
    }

    /// App keys to migrate (`;`-separated), so the Migrate task has an `apps` scope.
    pub fn apps(mut self, apps: &str) -> Row {
        self.apps = apps.to_owned();
        self
    }
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct RunOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The simulator, the inventory and a state dir, in one temp dir.
pub struct Fleet {
    pub sim: SimHandle,
    pub dir: TempDir,
    pub inventory: PathBuf,
    pub time_scale: f64,
    pub rows: Vec<Row>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.sim.shutdown.cancel();
    }
}

impl Fleet {
    /// Starts the simulator with `scenario` (TOML) at `time_scale` and writes the inventory.
    pub async fn start(scenario: &str, time_scale: f64, rows: Vec<Row>) -> Fleet {
        let scenario = Scenario::parse_toml(scenario).expect("test scenario parses");
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let sim = sim::start(
            listen,
            SimOptions {
                time_scale,
                scenario,
            },
        )
        .await
        .expect("simulator starts");
        let dir = tempfile::tempdir().unwrap();
        let inventory = dir.path().join("inventory.csv");
        let fleet = Fleet {
            sim,
            dir,
            inventory,
            time_scale,
            rows,
        };
        fleet.write_inventory();
        fleet
    }

    /// Rewrites the inventory from `self.rows` (after a test changed them).
    pub fn write_inventory(&self) {
        let mut csv = String::from(
            "site,product,server_url,server_id,server_auth,cloud_url,cloud_user,cloud_token,keys,users,apps,global_entities,wave,name\n",
        );
        for row in &self.rows {
            let auth = match row.auth {
                "basic" => "basic:migrator:env:FLEET_SERVER_PASSWORD",
                _ => "env:FLEET_SERVER_PAT",
            };
            csv.push_str(&format!(
                "{},{},{}/servers/{},{},{},{},{},env:FLEET_CLOUD_TOKEN,{},all,{},,{},\n",
                row.site,
                row.product,
                self.sim.base_url(),
                row.server,
                row.server,
                auth,
                row.cloud_url,
                row.cloud_user,
                row.keys,
                row.apps,
                row.wave
            ));
        }
        std::fs::write(&self.inventory, csv).unwrap();
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn report_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join("reports").join(name)
    }

    /// A scaled duration (simulated seconds → real), never below `floor_ms`.
    fn scaled(&self, seconds: f64, floor_ms: u64) -> String {
        let millis = ((seconds * 1000.0 / self.time_scale).ceil() as u64).max(floor_ms);
        format!("{millis}ms")
    }

    /// `cmafleet run INVENTORY --mode MODE` with the simulator's URL, scaled rate limits and
    /// polling, the secrets in the environment, a report dir named after `report`, and no
    /// progress view. Add flags with `.arg(…)`.
    pub fn command(&self, mode: &str, report: &str) -> tokio::process::Command {
        // Rate windows stretched by RATE_SLACK and rounded up, so we are never faster than
        // the simulator allows even when a busy machine delays one request more than another.
        let window =
            |seconds: f64| ((seconds * 1000.0 * RATE_SLACK / self.time_scale).ceil() as u64).max(1);
        let mut command = Fleet::binary();
        command
            .arg("run")
            .arg(&self.inventory)
            .args(["--mode", mode])
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--report-dir")
            .arg(self.report_dir(report))
            .args(["--cloud-api-url", &self.sim.base_url()])
            .args(["--rate-create-job", &format!("5/{}ms", window(60.0))])
            .args(["--rate-create-task", &format!("5/{}ms", window(60.0))])
            .args(["--rate-read", &format!("600/{}ms", window(60.0))])
            .args(["--rate-token", &format!("10/{}ms", window(3600.0))])
            .args(["--poll-min", &self.scaled(5.0, 10)])
            .args(["--poll-max", &self.scaled(60.0, 50)])
            .args(["--progress", "never"]);
        command
    }

    /// The `cmafleet` binary with the fleet's secrets in its environment, output piped, no
    /// arguments yet (for tests that need full control over the flags).
    pub fn binary() -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cmafleet"));
        command
            .env("FLEET_CLOUD_TOKEN", CLOUD_TOKEN)
            .env("FLEET_SERVER_PAT", SERVER_PAT)
            .env("FLEET_SERVER_PASSWORD", SERVER_PASSWORD)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs a command to its end (bounded: a hung run fails the test).
    pub async fn output(command: tokio::process::Command) -> RunOutput {
        Fleet::wait(Fleet::spawn(command)).await
    }

    /// `run --mode MODE` with extra flags, to its end.
    pub async fn run(&self, mode: &str, report: &str, extra: &[&str]) -> RunOutput {
        let mut command = self.command(mode, report);
        command.args(extra);
        Fleet::output(command).await
    }

    /// Starts a command without waiting for it (for signals, or to watch it run).
    pub fn spawn(mut command: tokio::process::Command) -> tokio::process::Child {
        command.spawn().expect("cmafleet starts")
    }

    /// Waits for a spawned run to end (bounded: a hung run fails the test).
    pub async fn wait(child: tokio::process::Child) -> RunOutput {
        let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .expect("cmafleet finished within 120 s")
            .expect("cmafleet ran");
        RunOutput {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Polls the simulator's task list until `ready` holds (bounded: 60 s, then the test fails).
    pub async fn wait_for_tasks(
        &self,
        what: &str,
        ready: impl Fn(&[SimTask]) -> bool,
    ) -> Vec<SimTask> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let tasks = self.tasks().await;
            if ready(&tasks) {
                return tasks;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the simulator never showed {what}; tasks: {tasks:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A cloud API GET as `alice@example.com` (what the migration API itself answers, for
    /// assertions on status trees and task payloads). Counted by the simulator like any call.
    pub async fn cloud_get(&self, path: &str) -> serde_json::Value {
        let url = format!("{}/migrations/public/v1{path}", self.sim.base_url());
        let response = reqwest::Client::new()
            .get(&url)
            .basic_auth("alice@example.com", Some(CLOUD_TOKEN))
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "GET {url}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// The status tree of a task at `level` (`check`, `migrate`), children expanded.
    pub async fn status_tree(&self, job_id: &str, task_id: &str, level: &str) -> serde_json::Value {
        self.cloud_get(&format!(
            "/jobs/{job_id}/tasks/{task_id}/status?level={level}&expandChildren=true"
        ))
        .await["data"]
            .clone()
    }

    /// One task as the cloud API lists it (with the `payload` — the options sent).
    pub async fn cloud_task(&self, job_id: &str, task_id: &str) -> serde_json::Value {
        self.cloud_get(&format!("/jobs/{job_id}/tasks/{task_id}"))
            .await
    }

    /// `run.json` of a report dir.
    pub fn run_json(&self, report: &str) -> serde_json::Value {
        let path = self.report_dir(report).join("run.json");
        serde_json::from_slice(
            &std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display())),
        )
        .unwrap()
    }

    /// A text file of a report dir.
    pub fn report_text(&self, report: &str, name: &str) -> String {
        let path = self.report_dir(report).join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }

    /// What the simulator received.
    pub async fn counters(&self) -> RequestCounters {
        reqwest::get(format!("{}/_sim/requests", self.sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Every task the simulator holds, in creation order.
    pub async fn tasks(&self) -> Vec<SimTask> {
        reqwest::get(format!("{}/_sim/tasks", self.sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `summary.csv` of a report dir, one map per row, by site.
    pub fn summary(&self, report: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        read_summary(&self.report_dir(report).join("summary.csv"))
    }

    /// `sites/<site>.json` of a report dir.
    pub fn site_report(&self, report: &str, site: &str) -> serde_json::Value {
        let path = self
            .report_dir(report)
            .join("sites")
            .join(format!("{site}.json"));
        serde_json::from_slice(
            &std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display())),
        )
        .unwrap()
    }

    /// `cli()` with `args`, to its end.
    pub async fn cli_run(&self, args: &[&str]) -> RunOutput {
        let mut command = self.cli();
        command.args(args);
        Fleet::output(command).await
    }

    /// The simulator's tasks by site (through each row's server; rows must not share one).
    pub async fn tasks_by_site(&self) -> BTreeMap<String, Vec<SimTask>> {
        let mut by_site: BTreeMap<String, Vec<SimTask>> = self
            .rows
            .iter()
            .map(|row| (row.site.clone(), Vec::new()))
            .collect();
        for task in self.tasks().await {
            let site = task
                .server
                .as_deref()
                .and_then(|server| self.row_of_server(server))
                .map(|row| row.site.clone())
                .unwrap_or_else(|| panic!("task {} is on no inventory server", task.task_id));
            by_site.entry(site).or_default().push(task);
        }
        by_site
    }

    /// The binary with the fleet's secrets in its environment and nothing else: for `status`,
    /// `plan`, `report` or a `run` with hand-picked flags. Runs in the fleet's temp dir (so
    /// nothing, not even a core file, lands elsewhere).
    pub fn cli(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cmafleet"));
        command
            .current_dir(self.dir.path())
            .env("FLEET_CLOUD_TOKEN", CLOUD_TOKEN)
            .env("FLEET_SERVER_PAT", SERVER_PAT)
            .env("FLEET_SERVER_PASSWORD", SERVER_PASSWORD)
            .env_remove("RUST_LOG")
            .env_remove(cmafleet::fleet::failpoint::VARIABLE)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// A read-only connection to the state store (as `sqlite3 -readonly` would open it).
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.state_db(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap_or_else(|error| panic!("{}: {error}", self.state_db().display()))
    }

    /// Jobs the simulator created for `row` (its Server ID and cloud URL).
    pub fn jobs_of(counters: &RequestCounters, row: &Row) -> u64 {
        counters
            .jobs_created
            .get(&row.server)
            .map(|by_cloud| by_cloud.values().sum())
            .unwrap_or(0)
    }

    /// The inventory row whose simulator server is `server`.
    pub fn row_of_server(&self, server: &str) -> Option<&Row> {
        self.rows.iter().find(|row| row.server == server)
    }

    /// `<state-dir>/state.db`.
    pub fn state_db(&self) -> PathBuf {
        self.state_dir().join("state.db")
    }
}

/// Sends `signal` (`TERM`, `INT`, `KILL`) to a spawned process with the system's `kill`.
pub fn send_signal(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().expect("the process is still running");
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// An instant of `/_sim/tasks` (ISO-8601 UTC).
pub fn instant(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("`{text}`: {error}"))
        .with_timezone(&chrono::Utc)
}

/// `summary.csv` as maps keyed by site.
pub fn read_summary(path: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            let row: BTreeMap<String, String> = headers
                .iter()
                .zip(record.iter())
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect();
            (row["site"].clone(), row)
        })
        .collect()
}

/// `command` with the value of `flag` (e.g. `--report-dir`) replaced by `value`.
pub fn with_flag(
    command: &tokio::process::Command,
    flag: &str,
    value: &std::ffi::OsStr,
) -> tokio::process::Command {
    let std = command.as_std();
    let mut rebuilt = tokio::process::Command::new(std.get_program());
    let mut args = std.get_args();
    while let Some(arg) = args.next() {
        rebuilt.arg(arg);
        if arg == flag {
            args.next();
            rebuilt.arg(value);
        }
    }
    inherit(command, &mut rebuilt);
    rebuilt
}

/// Gives `into` the environment `from` sets and removes, and the harness's stdio: no input,
/// output piped, killed when dropped (for a command rebuilt from another).
pub fn inherit(from: &tokio::process::Command, into: &mut tokio::process::Command) {
    for (key, value) in from.as_std().get_envs() {
        match value {
            Some(value) => into.env(key, value),
            None => into.env_remove(key),
        };
    }
    into.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
}
