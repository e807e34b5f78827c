//! The drivers people write by hand, with plain reqwest, to compare cmafleet against (they
//! are not part of the product): a sequential one (create job, attach, create task, poll every
//! 10 s, one site after another) and a parallel one (every site at once, no pacing, a 429
//! retried after `Retry-After` at most twice, then the site fails).

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::setup::{BenchSite, ENV};

const CLOUD: &str = "/migrations/public/v1";
/// The poll interval of a hand-written driver (simulated seconds).
const POLL_SECONDS: f64 = 10.0;
/// Retries after a 429 before the parallel driver gives a site up.
const PARALLEL_RETRIES: u32 = 2;

/// How a driver's run went.
#[derive(Debug, Clone)]
pub struct DriverRun {
    pub wall: Duration,
    pub succeeded: usize,
    pub failed: usize,
}

/// One driver against the simulator at `base`, time-scaled by `scale`.
#[derive(Clone)]
pub struct Driver {
    http: reqwest::Client,
    base: String,
    scale: f64,
    /// Retries after a 429 (`None`: as many as it takes).
    retries: Option<u32>,
}

impl Driver {
    pub fn new(base: &str, scale: f64, retries: Option<u32>) -> Driver {
        Driver {
            http: reqwest::Client::new(),
            base: base.to_owned(),
            scale,
            retries,
        }
    }

    /// Site after site: what a careful person writes first.
    pub async fn sequential(base: &str, scale: f64, sites: &[BenchSite]) -> DriverRun {
        let driver = Driver::new(base, scale, None);
        let started = Instant::now();
        let mut succeeded = 0;
        for site in sites {
            if driver.site(site).await.is_ok() {
                succeeded += 1;
            }
        }
        DriverRun {
            wall: started.elapsed(),
            succeeded,
            failed: sites.len() - succeeded,
        }
    }

    /// Every site at once, no pacing.
    pub async fn parallel(base: &str, scale: f64, sites: &[BenchSite]) -> DriverRun {
        let driver = Driver::new(base, scale, Some(PARALLEL_RETRIES));
        let started = Instant::now();
        let results = join_all(sites.iter().map(|site| {
            let driver = driver.clone();
            async move { driver.site(site).await }
        }))
        .await;
        let succeeded = results.iter().filter(|result| result.is_ok()).count();
        DriverRun {
            wall: started.elapsed(),
            succeeded,
            failed: sites.len() - succeeded,
        }
    }

    fn scaled(&self, seconds: f64) -> Duration {
        Duration::from_secs_f64(seconds / self.scale)
    }

    /// Job, attach, Check task, poll until it finished.
    async fn site(&self, site: &BenchSite) -> Result<(), String> {
        let cloud = site.cloud_url();
        let job = json!({
            "flow": "jira-onpremises-to-cloud",
            "name": format!("naive {}", site.name),
            "source": { "serverId": site.name },
            "destination": { "url": cloud },
            "scope": {
                "projects": { "includedKeys": ["ABC"], "includedData": "all" },
                "usersAndGroups": { "mode": "ALL" }
            }
        });
        let job: Value = self
            .cloud_post(site, &format!("{CLOUD}/jobs"), &job)
            .await?;
        let job_id = job["jobId"].as_str().ok_or("no jobId")?.to_owned();
        let attach = format!(
            "{}/servers/{}/rest/migration/latest/public/v1/attach",
            self.base, site.name
        );
        let answer = self
            .http
            .post(attach)
            .query(&[("cloudUrl", cloud.as_str())])
            .bearer_auth(ENV[1].1)
            .header("Content-Type", "application/json")
            .send()
            .await
            .map_err(|error| error.to_string())?;
        if !answer.status().is_success() {
            return Err(format!("attach: {}", answer.status()));
        }
        let task: Value = self
            .cloud_post(
                site,
                &format!("{CLOUD}/jobs/{job_id}/tasks"),
                &json!({ "task": "Check" }),
            )
            .await?;
        let task_id = task["taskId"].as_str().ok_or("no taskId")?.to_owned();
        let status = format!("{}{CLOUD}/jobs/{job_id}/tasks/{task_id}/status", self.base);
        loop {
            tokio::time::sleep(self.scaled(POLL_SECONDS)).await;
            let answer = self
                .http
                .get(&status)
                .basic_auth(&site.cloud_user, Some(ENV[0].1))
                .send()
                .await
                .map_err(|error| error.to_string())?;
            if !answer.status().is_success() {
                // Not there yet (eventual consistency) or a 429: poll again later.
                continue;
            }
            let body: Value = answer.json().await.map_err(|error| error.to_string())?;
            if body["data"]["status"] == "FINISHED" {
                return Ok(());
            }
        }
    }

    /// A cloud POST, retrying a 429 after `Retry-After` as often as the driver allows.
    async fn cloud_post(
        &self,
        site: &BenchSite,
        path: &str,
        body: &Value,
    ) -> Result<Value, String> {
        let mut retries = 0u32;
        loop {
            let answer = self
                .http
                .post(format!("{}{path}", self.base))
                .basic_auth(&site.cloud_user, Some(ENV[0].1))
                .json(body)
                .send()
                .await
                .map_err(|error| error.to_string())?;
            if answer.status() == StatusCode::TOO_MANY_REQUESTS {
                if self.retries.is_some_and(|max| retries >= max) {
                    return Err("rate limited".into());
                }
                retries += 1;
                tokio::time::sleep(retry_wait(answer.headers())).await;
                continue;
            }
            if !answer.status().is_success() {
                return Err(format!("{path}: {}", answer.status()));
            }
            return answer.json().await.map_err(|error| error.to_string());
        }
    }
}

/// When a 429 says to come back: `Retry-After` seconds, else the instant in
/// `X-RateLimit-Reset`, else one second.
fn retry_wait(headers: &reqwest::header::HeaderMap) -> Duration {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(seconds) = text("Retry-After").and_then(|value| value.parse::<f64>().ok()) {
        return Duration::from_secs_f64(seconds);
    }
    text("X-RateLimit-Reset")
        .and_then(|value| chrono::DateTime::parse_from_rfc3339(value).ok())
        .map(|at| {
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or_default()
        })
        .unwrap_or(Duration::from_secs(1))
}
