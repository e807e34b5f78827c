//! The simulator, driven over loopback with plain reqwest (never the cmafleet client), so
//! that what it answers is checked against docs/api.md independently of the client.
//!
//! Most tests use a manual clock (`clock = "manual"`): simulated time moves only when a test
//! advances it, so nothing depends on how fast this machine runs.

mod connect;
mod faults;
mod flows;
mod limits;
mod pages;
mod process;
mod shapes_answers;
mod shapes_tree;

use std::net::SocketAddr;
use std::time::Duration;

use cmafleet::sim::{self, RequestCounters, Scenario, SimHandle, SimOptions, SimTask};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

pub const CLOUD: &str = "/migrations/public/v1";
pub const ALICE: &str = "alice@globex-consulting.example";
pub const BOB: &str = "bob@globex-consulting.example";

/// A simulator on a free loopback port, shut down when dropped.
pub struct TestSim {
    pub handle: SimHandle,
    pub http: reqwest::Client,
}

impl Drop for TestSim {
    fn drop(&mut self) {
        self.handle.shutdown.cancel();
    }
}

impl TestSim {
    /// Starts a simulator with a TOML scenario at a time scale.
    pub async fn start(time_scale: f64, scenario: &str) -> TestSim {
        let scenario = Scenario::parse_toml(scenario).expect("test scenario parses");
        TestSim::with_scenario(time_scale, scenario).await
    }

    /// Starts a simulator with a loaded scenario at a time scale.
    pub async fn with_scenario(time_scale: f64, scenario: Scenario) -> TestSim {
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let handle = sim::start(
            listen,
            SimOptions {
                time_scale,
                scenario,
            },
        )
        .await
        .expect("simulator starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        TestSim { handle, http }
    }

    /// A simulator whose time moves only when the test says so.
    pub async fn manual(scenario: &str) -> TestSim {
        TestSim::start(1.0, &format!("clock = \"manual\"\n{scenario}")).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    /// A cloud request as `user` (token `tok`).
    pub fn cloud(&self, method: Method, user: &str, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(&format!("{CLOUD}{path}")))
            .basic_auth(user, Some("tok"))
            .header("Accept", "application/json")
    }

    /// A server request with a PAT.
    pub fn server(&self, server: &str, path: &str) -> RequestBuilder {
        self.http
            .post(self.url(&format!("/servers/{server}/rest/migration/latest{path}")))
            .bearer_auth("server-pat")
            .header("Accept", "application/json")
    }

    pub async fn create_job_as(&self, user: &str, body: &Value) -> Response {
        self.cloud(Method::POST, user, "/jobs")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a job and returns its id.
    pub async fn create_job(&self, body: &Value) -> String {
        let response = self.create_job_as(ALICE, body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let answer: Value = response.json().await.unwrap();
        answer["jobId"].as_str().unwrap().to_owned()
    }

    pub async fn attach(&self, server: &str, cloud: &str) -> Response {
        self.server(server, &format!("/public/v1/attach?cloudUrl={cloud}"))
            .header("Content-Type", "application/json")
            .send()
            .await
            .unwrap()
    }

    /// Creates a task and returns its id.
    pub async fn create_task(&self, job: &str, body: &Value) -> String {
        let response = self
            .cloud(Method::POST, ALICE, &format!("/jobs/{job}/tasks"))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let answer: Value = response.json().await.unwrap();
        answer["taskId"].as_str().unwrap().to_owned()
    }

    /// `GET …/status?query`.
    pub async fn status(&self, job: &str, task: &str, query: &str) -> Response {
        self.cloud(
            Method::GET,
            ALICE,
            &format!("/jobs/{job}/tasks/{task}/status{query}"),
        )
        .send()
        .await
        .unwrap()
    }

    /// The status node at `query`, which must answer 200, with every page merged.
    pub async fn tree(&self, job: &str, task: &str, query: &str) -> Value {
        let response = self.status(job, task, query).await;
        assert_eq!(response.status(), StatusCode::OK, "status{query}");
        let mut page: Value = response.json().await.unwrap();
        let mut data = page["data"].take();
        while let Some(next) = page["links"]["next"].as_str().filter(|n| !n.is_empty()) {
            let url = if next.starts_with("http") {
                next.to_owned()
            } else if next.starts_with('/') {
                self.url(next)
            } else {
                let separator = if query.is_empty() { "?" } else { "&" };
                self.url(&format!(
                    "{CLOUD}/jobs/{job}/tasks/{task}/status{query}{separator}cursor={next}"
                ))
            };
            page = self
                .http
                .get(url)
                .basic_auth(ALICE, Some("tok"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(children) = page["data"]["children"].as_object() {
                for (name, child) in children {
                    data["children"][name] = child.clone();
                }
            }
        }
        data
    }

    /// Moves simulated time forward (`90s`, `5m`, `25h`).
    pub async fn advance(&self, by: &str) {
        let response = self
            .http
            .post(self.url(&format!("/_sim/clock/advance?by={by}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    pub async fn counters(&self) -> RequestCounters {
        self.http
            .get(self.url("/_sim/requests"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn tasks(&self) -> Vec<SimTask> {
        self.http
            .get(self.url("/_sim/tasks"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// A Jira job definition as cmafleet sends it.
pub fn jira_job(server_id: &str, cloud_url: &str, apps: &[&str]) -> Value {
    let mut scope = json!({
        "projects": { "includedKeys": ["ABC", "DEF"], "includedData": "all" },
        "usersAndGroups": { "mode": "ALL" }
    });
    if !apps.is_empty() {
        scope["apps"] = json!({ "includedKeys": apps });
    }
    json!({
        "flow": "jira-onpremises-to-cloud",
        "name": format!("cmafleet {server_id}"),
        "source": { "serverId": server_id },
        "destination": { "url": cloud_url },
        "scope": scope
    })
}

/// A Confluence job definition as cmafleet sends it.
pub fn confluence_job(server_id: &str, cloud_url: &str) -> Value {
    json!({
        "flow": "confluence-onpremises-to-cloud",
        "name": format!("cmafleet {server_id}"),
        "source": { "serverId": server_id },
        "destination": { "url": cloud_url },
        "scope": {
            "spaces": { "includedKeys": ["ENG"], "includedData": "all" },
            "usersAndGroups": { "mode": "ALL" },
            "globalEntities": { "includedTypes": ["GLOBAL_PAGE_TEMPLATES"] }
        }
    })
}

pub fn check_task() -> Value {
    json!({ "task": "Check" })
}

pub fn migrate_task(exclude: &[&str]) -> Value {
    if exclude.is_empty() {
        json!({ "task": "Migrate" })
    } else {
        json!({ "task": "Migrate", "options": { "checkTypes": { "excludeKeys": exclude } } })
    }
}

/// `node["children"][name]`, which must exist.
pub fn child<'a>(node: &'a Value, name: &str) -> &'a Value {
    let child = &node["children"][name];
    assert!(!child.is_null(), "no child {name} in {node}");
    child
}

pub const ACME: &str = "https://acme.atlassian.net";
