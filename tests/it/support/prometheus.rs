//! Real Prometheus programs for tests: a Prometheus server scraping loopback targets, a
//! Pushgateway, and `promtool`. Debian's packages `prometheus` and `prometheus-pushgateway`
//! provide all three.
//!
//! Each server runs as a child process on a free 127.0.0.1 port with its config, storage and
//! log in its own temp dir, and is killed when its handle drops. Waits are bounded loops.
//!
//! Without a program, [`require`] prints a loud notice and returns `None` so the test can
//! return early — unless `CI=true`, where a missing program is a failure.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use url::Url;

/// Debian's program names.
pub const PROMETHEUS: &str = "prometheus";
pub const PROMTOOL: &str = "promtool";
pub const PUSHGATEWAY: &str = "prometheus-pushgateway";

/// How long a server may take to become ready (a loaded 2-core machine is slow).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A program on `PATH`, or `None`.
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Every one of `programs`, or `None` after a loud notice naming `test`; under `CI=true` a
/// missing program panics instead.
pub fn require(programs: &[&str], test: &str) -> Option<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for program in programs {
        match find(program) {
            Some(path) => found.push(path),
            None => missing.push(*program),
        }
    }
    if missing.is_empty() {
        return Some(found);
    }
    let notice = format!(
        "{test}: `{}` not found on PATH (Debian: apt-get install prometheus prometheus-pushgateway)",
        missing.join("`, `")
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{notice}; CI=true, so this is a failure");
    }
    // Straight to stderr, not through eprintln!: the test harness captures that, and a skip
    // must be seen.
    let bar = "!".repeat(78);
    let _ = writeln!(std::io::stderr(), "\n{bar}\n!!! SKIPPED {notice}\n{bar}");
    None
}

/// One `scrape_configs` entry of the temp Prometheus.
#[derive(Debug, Clone)]
pub struct ScrapeJob {
    pub name: String,
    pub targets: Vec<SocketAddr>,
    /// Target labels added to every series (e.g. `shard`).
    pub labels: Vec<(String, String)>,
    /// Keep the labels the target exposes (a Pushgateway's `job`, `shard`).
    pub honor_labels: bool,
    pub metrics_path: String,
}

impl ScrapeJob {
    pub fn new(name: &str, targets: &[SocketAddr]) -> ScrapeJob {
        ScrapeJob {
            name: name.to_owned(),
            targets: targets.to_vec(),
            labels: Vec::new(),
            honor_labels: false,
            metrics_path: "/metrics".to_owned(),
        }
    }

    pub fn label(mut self, name: &str, value: &str) -> ScrapeJob {
        self.labels.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn honor_labels(mut self) -> ScrapeJob {
        self.honor_labels = true;
        self
    }

    pub fn metrics_path(mut self, path: &str) -> ScrapeJob {
        self.metrics_path = path.to_owned();
        self
    }

    fn yaml(&self) -> String {
        let mut yaml = String::new();
        let targets: Vec<String> = self.targets.iter().map(|t| format!("\"{t}\"")).collect();
        let _ = writeln!(yaml, "  - job_name: \"{}\"", self.name);
        let _ = writeln!(yaml, "    honor_labels: {}", self.honor_labels);
        let _ = writeln!(yaml, "    metrics_path: \"{}\"", self.metrics_path);
        let _ = writeln!(yaml, "    static_configs:");
        let _ = writeln!(yaml, "      - targets: [{}]", targets.join(", "));
        if !self.labels.is_empty() {
            let _ = writeln!(yaml, "        labels:");
            for (name, value) in &self.labels {
                let _ = writeln!(yaml, "          {name}: \"{value}\"");
            }
        }
        yaml
    }
}

/// The file in a server's temp dir that takes its stdout and stderr.
const LOG: &str = "server.log";

/// A child process in its own temp dir, killed on drop.
struct Process {
    child: Child,
    /// Holds the config, the storage and the log until the process is gone.
    dir: TempDir,
}

impl Process {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(LOG)).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `program` with the arguments `args(port, dir)` on a free port until
/// `{base}{ready_path}` answers 200. A port taken between our probe and the program's bind
/// makes the program exit: that is retried with another port.
async fn start_server(
    program: &Path,
    args: impl Fn(u16, &Path) -> Vec<String>,
    prepare: impl Fn(&Path),
    ready_path: &str,
) -> (Process, Url) {
    let client = reqwest::Client::new();
    let mut last_log = String::new();
    for _attempt in 0..3 {
        let dir = tempfile::tempdir().expect("create a temp dir");
        prepare(dir.path());
        let port = free_port();
        let log_file = std::fs::File::create(dir.path().join(LOG)).expect("create the server log");
        let child = Command::new(program)
            .args(args(port, dir.path()))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the log handle"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", program.display()));
        let mut process = Process { child, dir };
        let base = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let ready = base.join(ready_path.trim_start_matches('/')).unwrap();
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = process.child.try_wait() {
                break;
            }
            if let Ok(response) = client.get(ready.clone()).send().await
                && response.status().is_success()
            {
                return (process, base);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        last_log = process.log();
    }
    panic!(
        "{} did not become ready on 127.0.0.1; its log:\n{last_log}",
        program.display()
    );
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().unwrap().port()
}

/// A Prometheus server scraping loopback targets every second.
pub struct Prometheus {
    process: Process,
    url: Url,
    client: reqwest::Client,
}

impl Prometheus {
    /// Starts Prometheus with `jobs` (scraped every second) and `rule_files` (evaluated every
    /// second); `None` when the program is missing (see [`require`]).
    pub async fn start(jobs: &[ScrapeJob], rule_files: &[PathBuf]) -> Option<Prometheus> {
        let program = require(&[PROMETHEUS], "Prometheus")?.remove(0);
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n",
        );
        if !rule_files.is_empty() {
            config.push_str("rule_files:\n");
            for file in rule_files {
                let _ = writeln!(config, "  - \"{}\"", file.display());
            }
        }
        config.push_str("scrape_configs:\n");
        for job in jobs {
            config.push_str(&job.yaml());
        }
        let (process, url) = start_server(
            &program,
            |port, dir| {
                vec![
                    format!("--config.file={}", dir.join("prometheus.yml").display()),
                    format!("--storage.tsdb.path={}", dir.join("data").display()),
                    format!("--web.listen-address=127.0.0.1:{port}"),
                    "--log.level=warn".to_owned(),
                ]
            },
            |dir| std::fs::write(dir.join("prometheus.yml"), &config).expect("write the config"),
            "/-/ready",
        )
        .await;
        Some(Prometheus {
            process,
            url,
            client: reqwest::Client::new(),
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// An instant query now: `Ok(data)` (`resultType` and `result`), or `Err` with the
    /// server's error when the expression does not parse or evaluate.
    pub async fn query(&self, expr: &str) -> Result<Value, String> {
        self.api("api/v1/query", &[("query", expr)]).await
    }

    /// `GET /api/v1/rules`: the rule groups with each rule's health and last error.
    pub async fn rules(&self) -> Value {
        self.api("api/v1/rules", &[])
            .await
            .unwrap_or_else(|error| panic!("read the rules: {error}"))
    }

    /// Waits (bounded) until `expr` returns a non-empty vector, and returns it.
    pub async fn wait_for(&self, expr: &str, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let answer = self.query(expr).await;
            if let Ok(data) = &answer
                && let Some(result) = data["result"].as_array().filter(|r| !r.is_empty())
            {
                return result.clone();
            }
            assert!(
                Instant::now() < deadline,
                "`{expr}` returned nothing within {timeout:?} (last answer: {answer:?}); \
                 Prometheus log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let response = self
            .client
            .get(self.url.join(path).unwrap())
            .query(query)
            .send()
            .await
            .map_err(|error| format!("request failed: {error}"))?;
        let body: Value = response
            .json()
            .await
            .map_err(|error| format!("answer is not JSON: {error}"))?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }
}

/// A Pushgateway, optionally under a route prefix (as behind a reverse proxy).
pub struct Pushgateway {
    process: Process,
    /// Where clients push: the base URL plus the route prefix.
    url: Url,
}

impl Pushgateway {
    /// `None` when the program is missing (see [`require`]).
    pub async fn start(route_prefix: Option<&str>) -> Option<Pushgateway> {
        let program = require(&[PUSHGATEWAY], "Pushgateway")?.remove(0);
        let prefix = route_prefix.unwrap_or("").trim_end_matches('/').to_owned();
        let (process, base) = start_server(
            &program,
            |port, _dir| {
                let mut args = vec![format!("--web.listen-address=127.0.0.1:{port}")];
                if !prefix.is_empty() {
                    args.push(format!("--web.route-prefix={prefix}"));
                }
                args
            },
            |_dir| {},
            &format!("{prefix}/-/ready"),
        )
        .await;
        let url = base
            .join(&format!("{}/", prefix.trim_start_matches('/')))
            .unwrap();
        Some(Pushgateway { process, url })
    }

    /// The URL to give `--pushgateway`.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The socket a Prometheus scrape job targets.
    pub fn address(&self) -> SocketAddr {
        let host = self.url.host_str().unwrap();
        format!("{host}:{}", self.url.port().unwrap())
            .parse()
            .unwrap()
    }

    /// Everything the gateway exposes (its `/metrics`, under the prefix).
    pub async fn metrics(&self) -> String {
        let url = self.url.join("metrics").unwrap();
        let response = reqwest::get(url)
            .await
            .expect("read the gateway's /metrics");
        assert!(
            response.status().is_success(),
            "gateway /metrics: {}; log:\n{}",
            response.status(),
            self.process.log()
        );
        response.text().await.unwrap()
    }
}

/// `promtool check metrics` on `text`: `Some(Ok(()))` when it passes, `Some(Err(output))`
/// when it finds a problem, `None` when promtool is missing (see [`require`]).
pub fn promtool_check_metrics(text: &str) -> Option<Result<(), String>> {
    let program = require(&[PROMTOOL], "promtool check metrics")?.remove(0);
    let mut child = Command::new(program)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let output = child.wait_with_output().expect("wait for promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(if output.status.success() {
        Ok(())
    } else {
        Err(format!("promtool check metrics: {}\n{said}", output.status))
    })
}
