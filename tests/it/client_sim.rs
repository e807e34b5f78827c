//! The CMA client against the simulator: every endpoint round-trips, errors are classified,
//! 429s are honoured, trees come whole across pages, and a lost create answer surfaces as
//! "outcome unknown" without being sent again. (The client's tolerance of every shape the
//! real service may use is tested against hand-written answers in `client.rs`.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmafleet::cma::ErrorKind;
use cmafleet::cma::client::{
    ClientSettings, CloudClient, HttpClient, NoopObserver, OpenGate, ServerClient,
    ServerCredentials, StatusQuery,
};
use cmafleet::cma::wire::{
    CreateTaskRequest, Destination, Flow, IncludedData, JobDefinition, KeyScope, Scope, Source,
    TaskKind,
};
use cmafleet::fleet::limits::RateLimits;
use cmafleet::fleet::policy::RateConfig;
use cmafleet::secret::Secret;
use cmafleet::sim::{self, RequestCounters, Scenario, SimHandle, SimOptions};
use url::Url;

const USER: &str = "alice@example.com";

struct Sim {
    handle: SimHandle,
    http: HttpClient,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.handle.shutdown.cancel();
    }
}

impl Sim {
    async fn start(time_scale: f64, scenario: &str) -> Sim {
        let scenario = Scenario::parse_toml(scenario).expect("scenario parses");
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let handle = sim::start(
            listen,
            SimOptions {
                time_scale,
                scenario,
            },
        )
        .await
        .unwrap();
        let mut settings = ClientSettings {
            request_timeout: Duration::from_secs(5),
            ..ClientSettings::default()
        };
        settings.retry.base_delay = Duration::from_millis(20);
        let http = HttpClient::new(settings, Arc::new(NoopObserver)).unwrap();
        Sim { handle, http }
    }

    fn url(&self) -> Url {
        Url::parse(&self.handle.base_url()).unwrap()
    }

    fn cloud(&self, user: &str, token: &str) -> CloudClient {
        CloudClient::new(
            self.http.clone(),
            &self.url(),
            user,
            Secret::new(token),
            Arc::new(OpenGate),
        )
    }

    fn server(&self, name: &str) -> ServerClient {
        let url = Url::parse(&format!("{}/servers/{name}", self.handle.base_url())).unwrap();
        ServerClient::new(
            self.http.clone(),
            &url,
            ServerCredentials::Bearer(Secret::new("pat")),
        )
    }

    /// A client behind real rate buckets creating jobs at `create_job` (e.g. `5/1s`).
    fn paced_cloud(&self, create_job: &str) -> CloudClient {
        let rates = RateConfig {
            create_job: create_job.parse().unwrap(),
            ..RateConfig::default()
        };
        let limits = RateLimits::new(rates, Arc::new(NoopObserver));
        let gate = limits.for_user(USER);
        CloudClient::new(self.http.clone(), &self.url(), USER, Secret::new("t"), gate)
    }

    async fn advance(&self, by: &str) {
        let url = format!("{}/_sim/clock/advance?by={by}", self.handle.base_url());
        let answer = reqwest::Client::new().post(url).send().await.unwrap();
        assert!(answer.status().is_success());
    }

    async fn counters(&self) -> RequestCounters {
        reqwest::get(format!("{}/_sim/requests", self.handle.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn definition(server: &str) -> JobDefinition {
    JobDefinition {
        flow: Flow::Jira,
        name: format!("cmafleet {server}"),
        source: Source {
            server_id: server.to_owned(),
        },
        destination: Destination {
            url: "https://acme.atlassian.net".to_owned(),
        },
        scope: Scope {
            projects: Some(KeyScope {
                included_keys: Some(vec!["ABC".into()]),
                included_data: IncludedData::All,
            }),
            ..Scope::default()
        },
    }
}

#[tokio::test]
async fn every_endpoint_round_trips_against_the_simulator() {
    let sim = Sim::start(
        1.0,
        r#"clock = "manual"
        [api]
        status_page_size = 3
        [servers.acme.checks.AnonPermission]
        outcome = "WARNING"
        [servers.offline]
        connected = false"#,
    )
    .await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let cloud = sim.cloud(USER, "token");

    let created = cloud
        .create_job(&definition("acme"), &cancel)
        .await
        .unwrap();
    let job = cloud.get_job(&created.job_id, &cancel).await.unwrap();
    assert_eq!(job.definition.source.server_id, "acme");
    assert_eq!(job.definition.destination.url, "https://acme.atlassian.net");

    let attach = sim
        .server("acme")
        .attach("https://acme.atlassian.net", &cancel)
        .await
        .unwrap();
    assert!(
        attach.expiry_time.and_then(|time| time.instant()).is_some(),
        "expiry parses"
    );

    let task = cloud
        .create_task(&created.job_id, &CreateTaskRequest::check(), &cancel)
        .await
        .unwrap();
    let listed = cloud.list_tasks(&created.job_id, &cancel).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].task_id, task.task_id);
    assert_eq!(listed[0].task_type, TaskKind::Check);

    // Eventual consistency: a young task's status is a 404 (the pipeline waits it out).
    // A Check task's checks are directly under its root (the documented shape).
    let query = StatusQuery {
        level: None,
        expand_children: true,
    };
    let young = cloud
        .task_status(&created.job_id, &task.task_id, &query, &cancel)
        .await
        .unwrap_err();
    assert_eq!(young.kind, ErrorKind::NotFound);

    sim.advance("1h").await;
    let checks = cloud
        .task_status(&created.job_id, &task.task_id, &query, &cancel)
        .await
        .unwrap();
    assert!(checks.is_finished());
    assert!(
        checks.children.len() > 3,
        "every check, across pages of 3: {}",
        checks.children.len()
    );
    assert_eq!(
        checks.children["AnonPermission"]
            .outcome
            .as_ref()
            .map(|o| o.as_str()),
        Some("WARNING")
    );

    let finished = cloud
        .get_task(&created.job_id, &task.task_id, &cancel)
        .await
        .unwrap();
    let artifacts = finished
        .results
        .map(|results| results.artifacts)
        .unwrap_or_default();
    assert!(!artifacts.is_empty(), "a finished task lists artifacts");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("report.csv");
    let bytes = cloud
        .download_artifact(&artifacts[0], &dest, &cancel)
        .await
        .unwrap();
    assert!(bytes > 0);
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), bytes);

    // Connect by API: the offline server refuses to attach until a token is saved.
    let offline = sim.server("offline");
    let refused = offline
        .attach("https://acme.atlassian.net", &cancel)
        .await
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::NotConnected, "{refused}");
    let token = cloud
        .create_token("https://acme.atlassian.net", &cancel)
        .await
        .unwrap();
    offline
        .save_token("https://acme.atlassian.net", &token.token, &cancel)
        .await
        .unwrap();
    offline
        .attach("https://acme.atlassian.net", &cancel)
        .await
        .unwrap();
}

#[tokio::test]
async fn auth_and_missing_things_are_classified() {
    let sim = Sim::start(
        1.0,
        r#"[users."pinned@example.com"]
        token = "right"
        [users."viewer@example.com"]
        admin = false"#,
    )
    .await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let wrong = sim
        .cloud("pinned@example.com", "wrong")
        .create_job(&definition("acme"), &cancel)
        .await
        .unwrap_err();
    assert_eq!(wrong.kind, ErrorKind::Unauthorized);
    assert!(!wrong.is_retryable());
    let viewer = sim
        .cloud("viewer@example.com", "any")
        .get_job("nope", &cancel)
        .await
        .unwrap_err();
    assert_eq!(viewer.kind, ErrorKind::Forbidden);
    let missing = sim
        .cloud(USER, "any")
        .get_job("no-such-job", &cancel)
        .await
        .unwrap_err();
    assert_eq!(missing.kind, ErrorKind::NotFound);
    assert!(
        !wrong.to_string().contains("wrong"),
        "the token never shows in an error: {wrong}"
    );
}

async fn rate_limited_create_waits(retry_after: &str) {
    // One create a (scaled) minute: 2 s real at ×30. The buckets allow far more, so the
    // second create meets a 429, and the bucket's pause (not its pace) makes the retry wait.
    let sim = Sim::start(
        30.0,
        &format!(
            r#"[api]
            retry_after = "{retry_after}"
            [rate_limits]
            create_job = "1/min""#
        ),
    )
    .await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let cloud = sim.paced_cloud("100/1s");
    cloud
        .create_job(&definition("acme"), &cancel)
        .await
        .unwrap();
    let started = Instant::now();
    cloud
        .create_job(&definition("acme"), &cancel)
        .await
        .unwrap();
    let waited = started.elapsed();
    let counters = sim.counters().await;
    // At least the one 429 (an HTTP date has whole seconds: a retry landing on the slot's
    // very instant may meet one more, which pauses the bucket again).
    assert!(
        counters.count("POST /migrations/public/v1/jobs", "429") >= 1,
        "{counters:?}"
    );
    assert_eq!(counters.count("POST /migrations/public/v1/jobs", "200"), 2);
    // Retry-After is whole seconds, rounded up: at least 1 s.
    assert!(waited >= Duration::from_secs(1), "waited only {waited:?}");
}

#[tokio::test]
async fn a_429_with_retry_after_in_seconds_is_honoured() {
    rate_limited_create_waits("seconds").await;
}

#[tokio::test]
async fn a_429_with_retry_after_as_an_http_date_is_honoured() {
    rate_limited_create_waits("http_date").await;
}

#[tokio::test]
async fn paced_by_the_buckets_no_429_comes_back() {
    let sim = Sim::start(60.0, "").await;
    let cancel = tokio_util::sync::CancellationToken::new();
    // The simulator's 5/min at ×60 is 5 per second; pace to it exactly.
    let cloud = sim.paced_cloud("5/1s");
    for _ in 0..8 {
        cloud
            .create_job(&definition("acme"), &cancel)
            .await
            .unwrap();
    }
    let counters = sim.counters().await;
    assert_eq!(counters.rate_limited.total, 0, "{counters:?}");
}

#[tokio::test]
async fn a_lost_create_answer_is_outcome_unknown_and_not_sent_again() {
    for mode in ["504", "drop"] {
        let sim = Sim::start(
            1.0,
            &format!(
                r#"clock = "manual"
                seed = 7
                [servers.acme.faults]
                lost_task_create_rate = 1.0
                lost_create_mode = "{mode}""#
            ),
        )
        .await;
        let cancel = tokio_util::sync::CancellationToken::new();
        let cloud = sim.cloud(USER, "token");
        let job = cloud
            .create_job(&definition("acme"), &cancel)
            .await
            .unwrap();
        let lost = cloud
            .create_task(&job.job_id, &CreateTaskRequest::check(), &cancel)
            .await
            .unwrap_err();
        assert!(lost.is_outcome_unknown(), "{mode}: {lost}");
        assert!(lost.to_string().contains("outcome unknown"), "{lost}");
        let counters = sim.counters().await;
        assert_eq!(
            counters.task_creates.total, 1,
            "{mode}: sent once, never re-sent"
        );
        // The task exists: reconciling with the task list finds it.
        let listed = cloud.list_tasks(&job.job_id, &cancel).await.unwrap();
        assert_eq!(listed.len(), 1, "{mode}");
    }
}
