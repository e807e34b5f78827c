//! Attach and connect: a server that is not connected refuses attach (plain text, 400); a
//! fresh token from `POST /token` saved on it connects it; an attach that lapses during a
//! migration can fail it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;

const HOOLI: &str = "https://hooli.atlassian.net";

async fn save_token(sim: &TestSim, cloud: &str, token: &str) -> reqwest::Response {
    sim.server("hooli-jira", "/cloud/save/token")
        .json(&json!({ "cloudUrl": cloud, "token": token }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_saved_token_connects_a_server_that_refused_to_attach() {
    let sim = TestSim::manual("[servers.hooli-jira]\nconnected = false\n").await;
    let refused = sim.attach("hooli-jira", HOOLI).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        refused.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = refused.text().await.unwrap();
    assert!(
        text.contains("not authorized with the server") && text.contains("Reconnect"),
        "{text}"
    );

    let bogus = save_token(&sim, HOOLI, "made-up").await;
    assert_eq!(bogus.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(bogus.text().await.unwrap(), "Exception in saving token.");

    let issue = |cloud: &'static str| {
        sim.cloud(Method::POST, BOB, "/token")
            .json(&json!({ "cloudUrl": cloud }))
            .send()
    };
    let answer: Value = issue(HOOLI).await.unwrap().json().await.unwrap();
    assert_eq!(answer["cloudUrl"], HOOLI);
    let token = answer["token"].as_str().unwrap().to_owned();

    // A token for another site does not connect this one.
    let other: Value = issue(ACME).await.unwrap().json().await.unwrap();
    let mismatched = save_token(&sim, HOOLI, other["token"].as_str().unwrap()).await;
    assert_eq!(mismatched.status(), StatusCode::INTERNAL_SERVER_ERROR);

    let saved = save_token(&sim, HOOLI, &token).await;
    assert_eq!(saved.status(), StatusCode::OK);
    let saved: Value = saved.json().await.unwrap();
    assert_eq!(saved["message"], "Token saved successfully.");
    assert_eq!(saved["cloudUrl"], HOOLI);
    assert_eq!(
        sim.attach("hooli-jira", HOOLI).await.status(),
        StatusCode::OK
    );
    // Only that cloud site is connected.
    assert_eq!(
        sim.attach("hooli-jira", ACME).await.status(),
        StatusCode::BAD_REQUEST
    );

    let counters = sim.counters().await;
    let hooli = &counters.by_server["hooli-jira"];
    assert_eq!((hooli.attaches, hooli.attach_refused), (1, 2));
}

#[tokio::test]
async fn a_connect_token_expires_after_five_minutes() {
    let sim = TestSim::manual("[servers.hooli-jira]\nconnected = false\n").await;
    let answer: Value = sim
        .cloud(Method::POST, BOB, "/token")
        .json(&json!({ "cloudUrl": HOOLI }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sim.advance("5m").await;
    let late = save_token(&sim, HOOLI, answer["token"].as_str().unwrap()).await;
    assert_eq!(late.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        sim.attach("hooli-jira", HOOLI).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn an_attach_lapsing_mid_migration_fails_the_task_when_the_scenario_says_so() {
    let sim = TestSim::manual(
        r#"
[servers.wayne-jira]
attach_validity = "30m"
attach_lapse_fails_tasks = true
check_duration = "5m"
migrate_duration = "60m"
"#,
    )
    .await;
    let job = sim.create_job(&jira_job("wayne-jira", ACME, &[])).await;
    let attach: Value = sim.attach("wayne-jira", ACME).await.json().await.unwrap();
    assert!(attach["expiryTime"].is_string());
    let task = sim.create_task(&job, &migrate_task(&[])).await;
    sim.advance("29m").await;
    assert_eq!(sim.tree(&job, &task, "").await["status"], "IN_PROGRESS");
    sim.advance("2m").await;
    let root = sim.tree(&job, &task, "?expandChildren=true").await;
    assert_eq!(root["status"], "FINISHED");
    assert_eq!(root["outcome"], "FAILED");
    assert!(
        root["message"].as_str().unwrap().contains("not attached"),
        "{root}"
    );
    assert_eq!(
        child(child(&root, "migrate"), "projects")["outcome"],
        "FAILED"
    );
    assert_eq!(child(&root, "check")["outcome"], "SUCCESS");
}
