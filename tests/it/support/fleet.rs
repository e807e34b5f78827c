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
        // Rate windows rounded up, so we are never faster than the simulator allows.
        let window = |seconds: f64| ((seconds * 1000.0 / self.time_scale).ceil() as u64).max(1);
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cmafleet"));
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
            .args(["--progress", "never"])
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
    pub async fn output(mut command: tokio::process::Command) -> RunOutput {
        let child = command.spawn().expect("cmafleet starts");
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

    /// `run --mode MODE` with extra flags, to its end.
    pub async fn run(&self, mode: &str, report: &str, extra: &[&str]) -> RunOutput {
        let mut command = self.command(mode, report);
        command.args(extra);
        Fleet::output(command).await
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
