//! The simulator's fault extensions that the hardening scenarios rely on, checked directly
//! (plain reqwest, not the cmafleet client): an outage refuses connections and keeps the
//! world; a request its client abandoned during the latency is never handled; garbled
//! answers are 200s that do not parse.

use std::time::Duration;

use reqwest::Method;
use tower::ServiceExt;

use crate::sim::{ACME, ALICE, TestSim, jira_job};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_refuses_connections_for_a_while_and_keeps_the_world() {
    let sim = TestSim::start(60.0, "").await;
    let created = sim
        .cloud(Method::POST, ALICE, "/jobs")
        .json(&jira_job("acme-jira", ACME, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let job: serde_json::Value = created.json().await.unwrap();
    let job_id = job["jobId"].as_str().unwrap().to_owned();
    let bad = sim.http.post(sim.url("/_sim/outage")).send().await.unwrap();
    assert_eq!(bad.status(), 400, "the period is required");
    let outage = sim
        .http
        .post(sim.url("/_sim/outage?for=400ms"))
        .send()
        .await
        .unwrap();
    assert_eq!(outage.status(), 202);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let during = reqwest::Client::new()
        .get(sim.url("/_sim/requests"))
        .send()
        .await;
    assert!(
        during.as_ref().is_err_and(reqwest::Error::is_connect),
        "refused during the outage: {during:?}"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let again = sim
        .cloud(Method::GET, ALICE, &format!("/jobs/{job_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "the job outlived the outage");
    let counters = sim.counters().await;
    assert_eq!(counters.faults.outages, 1);
    assert_eq!(
        counters
            .jobs_created
            .values()
            .flat_map(|c| c.values())
            .sum::<u64>(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_abandoned_during_its_latency_is_never_handled() {
    let sim = TestSim::start(
        60.0,
        r#"
        [defaults.faults]
        latency = "400ms"
        "#,
    )
    .await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let abandoned = impatient
        .post(sim.url("/migrations/public/v1/jobs"))
        .basic_auth(ALICE, Some("tok"))
        .json(&jira_job("acme-jira", ACME, &[]))
        .send()
        .await;
    assert!(abandoned.is_err_and(|error| error.is_timeout()));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let counters = sim.counters().await;
    assert!(
        counters.jobs_created.is_empty(),
        "the job was not created: {:?}",
        counters.jobs_created
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbled_answers_are_200s_that_do_not_parse() {
    let sim = TestSim::start(
        60.0,
        r#"
        seed = 4
        [rate_limits]
        read = "unlimited"
        create_job = "unlimited"
        [defaults.faults]
        garbage_every = 2
        garbage_length = 1
        "#,
    )
    .await;
    let mut garbled = 0;
    let mut created = 0;
    for _ in 0..12 {
        let answer = sim
            .cloud(Method::POST, ALICE, "/jobs")
            .json(&jira_job("acme-jira", ACME, &[]))
            .send()
            .await;
        let Ok(answer) = answer else {
            garbled += 1; // cut short of its Content-Length: the connection closed
            continue;
        };
        assert_eq!(answer.status(), 200);
        match answer.bytes().await {
            Ok(body) if serde_json::from_slice::<serde_json::Value>(&body).is_ok() => created += 1,
            _ => garbled += 1,
        }
    }
    assert_eq!(garbled, 6, "every other answer is garbled");
    assert_eq!(created, 6);
    let counters = sim.counters().await;
    assert_eq!(counters.faults.garbage_answers, 6);
    let jobs: u64 = counters
        .jobs_created
        .values()
        .flat_map(|c| c.values())
        .sum();
    assert_eq!(jobs, 12, "a garbled create still created its job");
}

#[tokio::test]
async fn without_a_socket_an_outage_is_refused() {
    let router = cmafleet::sim::router(cmafleet::sim::SimOptions {
        time_scale: 60.0,
        scenario: cmafleet::sim::Scenario::default(),
    });
    let answer = router
        .oneshot(
            axum::http::Request::post("/_sim/outage?for=1s")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(answer.status(), 501);
}
