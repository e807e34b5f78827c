//! The bench's world: the scenario (fixed task durations, so the lower bound is exact), a
//! generated inventory, and the simulator as a separate `cmafleet sim` process on loopback,
//! with what it received and what it cost read back.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use cmafleet::sim::{RequestCounters, SimTask};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::measure::ProcUsage;

/// Every check task takes this long (simulated seconds).
pub const CHECK_SECONDS: u64 = 180;
/// Every migration's core data takes this long after its checks (simulated seconds).
pub const MIGRATE_SECONDS: u64 = 1200;

/// The scenario of every run: fixed durations for every server, no faults. A 429 names its
/// end in `X-RateLimit-Reset` only: `Retry-After` counts whole seconds, and at ×120 one second
/// is two simulated minutes, so honouring it would make a 429 cost ten create intervals
/// instead of the one or less it costs at real speed.
pub fn scenario() -> String {
    format!(
        "# cmafleet bench: fixed durations, so `cmafleet plan --task-duration` is exact.\n\
         [api]\n\
         retry_after = \"reset_only\"\n\
         [defaults]\n\
         check_duration = \"{CHECK_SECONDS}s\"\n\
         migrate_duration = \"{MIGRATE_SECONDS}s\"\n\
         apps_duration = \"600s\"\n"
    )
}

/// The secrets the inventory references; every process gets them in its environment.
pub const ENV: [(&str, &str); 2] = [
    ("BENCH_CLOUD_TOKEN", "bench-cloud-token"),
    ("BENCH_SERVER_PAT", "bench-server-pat"),
];

/// One generated site (its server in the simulator is named like the site).
#[derive(Debug, Clone)]
pub struct BenchSite {
    pub name: String,
    pub cloud_user: String,
}

impl BenchSite {
    pub fn cloud_url(&self) -> String {
        format!("https://{}.atlassian.net", self.name)
    }
}

/// `count` Jira sites named `{prefix}{n}`, spread round-robin over `users` cloud users
/// `{prefix}-u{k}@example.com` (round-robin, so admission in inventory order feeds every
/// user's buckets at once).
pub fn sites(prefix: &str, count: usize, users: usize) -> Vec<BenchSite> {
    let users = users.max(1);
    (0..count)
        .map(|n| BenchSite {
            name: format!("{prefix}{n:05}"),
            cloud_user: format!("{prefix}u{}@example.com", n % users),
        })
        .collect()
}

/// Writes the inventory CSV for `sites` against the simulator at `base`.
pub fn write_inventory(path: &Path, base: &str, sites: &[BenchSite]) -> std::io::Result<()> {
    let mut csv = String::with_capacity(200 * (sites.len() + 1));
    csv.push_str(
        "site,product,server_url,server_id,server_auth,cloud_url,cloud_user,cloud_token,keys,users\n",
    );
    for site in sites {
        csv.push_str(&format!(
            "{name},jira,{base}/servers/{name},{name},env:BENCH_SERVER_PAT,{cloud},{user},env:BENCH_CLOUD_TOKEN,ABC,all\n",
            name = site.name,
            cloud = site.cloud_url(),
            user = site.cloud_user,
        ));
    }
    std::fs::write(path, csv)
}

/// A running `cmafleet sim`.
pub struct SimProcess {
    child: Child,
    pub base: String,
    pub scale: f64,
    http: reqwest::Client,
}

impl SimProcess {
    /// Starts `cmafleet sim` on a free loopback port with the bench scenario.
    pub async fn start(binary: &Path, dir: &Path, scale: f64) -> SimProcess {
        let scenario_file = dir.join("scenario.toml");
        std::fs::write(&scenario_file, scenario()).expect("write the scenario");
        let mut child = Command::new(binary)
            .arg("sim")
            .args(["--listen", "127.0.0.1:0"])
            .args(["--time-scale", &scale.to_string()])
            .arg("--scenario")
            .arg(&scenario_file)
            .args(["--log-format", "text", "-q"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("cmafleet sim starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the simulator says where it listens within 30 s")
            .expect("read the simulator's stdout")
            .expect("the simulator prints its address");
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from cmafleet sim: {line}"))
            .trim()
            .to_owned();
        // Keep draining stdout so the simulator never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        SimProcess {
            child,
            base,
            scale,
            http: reqwest::Client::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the simulator is running")
    }

    /// CPU time and peak memory of the simulator so far.
    pub fn usage(&self) -> ProcUsage {
        ProcUsage::read(self.pid())
    }

    pub async fn counters(&self) -> RequestCounters {
        self.get("/_sim/requests").await
    }

    pub async fn tasks(&self) -> Vec<SimTask> {
        self.get("/_sim/tasks").await
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|error| panic!("GET {path}: {error}"))
            .json()
            .await
            .unwrap_or_else(|error| panic!("GET {path}: {error}"))
    }

    /// Stops the simulator (SIGTERM, as an operator would) and waits for it.
    pub async fn stop(mut self) {
        crate::measure::terminate(self.pid());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

/// A fresh work directory under the bench's root.
pub fn work_dir(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a work dir");
    dir
}
