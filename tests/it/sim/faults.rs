//! Seeded faults: 5xx on GETs, bursts of 503s, latency, and create answers lost (504 or a
//! dropped connection) although the job or task was created. The same seed and the same
//! requests give the same answers and the same counters.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::*;

fn scenario(seed: u64) -> String {
    format!(
        r#"
seed = {seed}
[rate_limits]
create_job = "unlimited"
create_task = "unlimited"
read = "unlimited"
[defaults.faults]
get_error_rate = 0.25
burst_every = 17
burst_length = 2
lost_task_create_rate = 0.4
lost_job_create_rate = 0.3
lost_create_mode = "mixed"
latency = "1ms"
latency_jitter = "2ms"
"#
    )
}

fn answer(result: &Result<reqwest::Response, reqwest::Error>) -> String {
    match result {
        Ok(response) => response.status().as_u16().to_string(),
        Err(_) => "dropped".to_owned(),
    }
}

/// The same script of requests, one at a time; returns what each answered, and for each
/// job how many task creates did not meet a 503 (so the task must exist).
async fn script(sim: &TestSim) -> (Vec<String>, Vec<(String, usize)>) {
    let mut log = Vec::new();
    let mut jobs = Vec::new();
    for server in ["acme-jira", "hooli-jira"] {
        for _ in 0..4 {
            let result = sim
                .cloud(Method::POST, ALICE, "/jobs")
                .json(&jira_job(server, ACME, &[]))
                .send()
                .await;
            log.push(format!("job {}", answer(&result)));
            if let Ok(response) = result
                && response.status() == StatusCode::OK
            {
                let body: Value = response.json().await.unwrap();
                jobs.push(body["jobId"].as_str().unwrap().to_owned());
            }
        }
        for _ in 0..10 {
            let status = sim.attach(server, ACME).await.status();
            log.push(format!("attach {}", status.as_u16()));
            if status == StatusCode::OK {
                break;
            }
        }
    }
    let mut expected = Vec::new();
    for job in &jobs {
        let mut made = 0;
        for _ in 0..5 {
            let result = sim
                .cloud(Method::POST, ALICE, &format!("/jobs/{job}/tasks"))
                .json(&check_task())
                .send()
                .await;
            let code = answer(&result);
            if code != "503" {
                made += 1;
            }
            log.push(format!("task {code}"));
        }
        expected.push((job.clone(), made));
        for _ in 0..6 {
            let result = sim
                .cloud(Method::GET, ALICE, &format!("/jobs/{job}"))
                .send()
                .await;
            log.push(format!("get {}", answer(&result)));
        }
    }
    (log, expected)
}

/// Lists a job's tasks, retrying injected errors.
async fn listed_tasks(sim: &TestSim, job: &str) -> usize {
    for _ in 0..50 {
        let response = sim
            .cloud(Method::GET, ALICE, &format!("/jobs/{job}/tasks"))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::OK {
            let page: Value = response.json().await.unwrap();
            return page["data"].as_array().unwrap().len();
        }
    }
    panic!("the task list never answered");
}

#[tokio::test]
async fn every_fault_repeats_exactly_for_the_same_seed() {
    let first = TestSim::manual(&scenario(42)).await;
    let second = TestSim::manual(&scenario(42)).await;
    let (log, expected) = script(&first).await;
    let (again, _) = script(&second).await;
    assert_eq!(log, again);
    let counters = first.counters().await;
    assert_eq!(counters, second.counters().await);
    assert_eq!(
        serde_json::to_string(&counters).unwrap(),
        serde_json::to_string(&second.counters().await).unwrap(),
        "identical JSON, ids included"
    );

    let faults = &counters.faults;
    assert!(faults.server_errors > 0, "{faults:?}");
    assert!(faults.burst_errors > 0, "{faults:?}");
    assert!(faults.lost_answers_504 > 0, "{faults:?}");
    assert!(faults.dropped_connections > 0, "{faults:?}");
    assert!(faults.delayed_requests > 0, "{faults:?}");
    assert!(log.iter().any(|l| l == "task dropped"), "{log:?}");
    assert!(log.iter().any(|l| l == "task 504"), "{log:?}");
    assert!(
        log.iter().any(|l| l == "job 504" || l == "job dropped"),
        "{log:?}"
    );
    let route = "POST /migrations/public/v1/jobs/{jobId}/tasks";
    assert_eq!(
        counters.count(route, "dropped"),
        log.iter().filter(|l| *l == "task dropped").count() as u64
    );

    // A lost answer still created the task: the list has every task whose create got past
    // the gateway (answered 200, 504, or dropped), and no other.
    for (job, made) in expected {
        assert_eq!(listed_tasks(&first, &job).await, made, "job {job}");
        assert_eq!(counters.task_creates.by_job[&job]["check"], made as u64);
    }

    let other = TestSim::manual(&scenario(7)).await;
    let (different, _) = script(&other).await;
    assert_ne!(log, different, "another seed, other faults");
}

#[tokio::test]
async fn without_faults_nothing_is_injected() {
    let sim = TestSim::manual("seed = 42\n").await;
    let (log, _) = script(&sim).await;
    assert!(
        log.iter()
            .all(|l| l.ends_with(" 200") || l.ends_with(" 429")),
        "{log:?}"
    );
    let faults = sim.counters().await.faults;
    assert_eq!(faults, cmafleet::sim::FaultCounters::default());
}
