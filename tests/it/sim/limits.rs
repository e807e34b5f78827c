//! Per-user rate limits: at most N requests of a class in any (scaled) window, 429 with
//! `Retry-After` beyond it, other users unaffected.

use reqwest::{Method, StatusCode};

use super::*;

#[tokio::test]
async fn the_sixth_job_create_within_a_minute_is_refused_but_not_for_another_user() {
    // Time stands still, so "within a minute" holds however slow the machine is.
    let sim = TestSim::manual("").await;
    let body = jira_job("acme-jira", ACME, &[]);
    for n in 1..=5 {
        assert_eq!(
            sim.create_job_as(ALICE, &body).await.status(),
            StatusCode::OK,
            "create {n}"
        );
    }
    let refused = sim.create_job_as(ALICE, &body).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        retry_after, 60,
        "the oldest create leaves the window in a minute"
    );
    let reset = refused.headers()["x-ratelimit-reset"].to_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(reset).is_ok(),
        "{reset}"
    );

    assert_eq!(sim.create_job_as(BOB, &body).await.status(), StatusCode::OK);
    // Reads have their own, larger budget.
    let read = sim
        .cloud(Method::GET, ALICE, "/jobs/unknown")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::NOT_FOUND);

    sim.advance("59s").await;
    assert_eq!(
        sim.create_job_as(ALICE, &body).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    sim.advance("1s").await;
    assert_eq!(
        sim.create_job_as(ALICE, &body).await.status(),
        StatusCode::OK
    );

    let counters = sim.counters().await;
    assert_eq!(counters.rate_limited.total, 2);
    assert_eq!(counters.rate_limited.by_user[ALICE]["create_job"], 2);
    assert!(!counters.rate_limited.by_user.contains_key(BOB));
    assert_eq!(counters.count("POST /migrations/public/v1/jobs", "429"), 2);
    assert_eq!(counters.jobs_created["acme-jira"][ACME], 7);
}

#[tokio::test]
async fn windows_are_divided_by_the_time_scale() {
    // At ×60 a minute lasts a second; time still stands still until advanced.
    let sim = TestSim::start(60.0, "clock = \"manual\"\n").await;
    let job = sim.create_job(&jira_job("acme-jira", ACME, &[])).await;
    for _ in 0..5 {
        sim.create_task(&job, &check_task()).await;
    }
    let refused = sim
        .cloud(Method::POST, ALICE, &format!("/jobs/{job}/tasks"))
        .json(&check_task())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // A one-second real wait: Retry-After is whole seconds and never 0.
    assert_eq!(refused.headers()["retry-after"], "1");
    sim.advance("60s").await;
    sim.create_task(&job, &check_task()).await;
    assert_eq!(
        sim.counters().await.task_creates.total,
        6,
        "a refused create creates nothing"
    );
}

#[tokio::test]
async fn retry_after_takes_the_form_the_scenario_chooses() {
    let http_date =
        TestSim::manual("[api]\nretry_after = \"http_date\"\n[rate_limits]\ntoken = \"1/hour\"\n")
            .await;
    let token = |sim: &TestSim| {
        sim.cloud(Method::POST, ALICE, "/token")
            .json(&serde_json::json!({ "cloudUrl": ACME }))
            .send()
    };
    assert_eq!(token(&http_date).await.unwrap().status(), StatusCode::OK);
    let refused = token(&http_date).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let date = refused.headers()["retry-after"].to_str().unwrap();
    assert!(httpdate::parse_http_date(date).is_ok(), "{date}");

    let reset_only = TestSim::manual("[api]\nretry_after = \"reset_only\"\n[users.\"alice@globex-consulting.example\".rate_limits]\ntoken = \"1/hour\"\n").await;
    assert_eq!(token(&reset_only).await.unwrap().status(), StatusCode::OK);
    let refused = token(&reset_only).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().get("retry-after").is_none());
    assert!(refused.headers().get("x-ratelimit-reset").is_some());
    // Bob keeps the documented 10 an hour.
    let bob = reset_only
        .cloud(Method::POST, BOB, "/token")
        .json(&serde_json::json!({ "cloudUrl": ACME }))
        .send()
        .await
        .unwrap();
    assert_eq!(bob.status(), StatusCode::OK);
}
