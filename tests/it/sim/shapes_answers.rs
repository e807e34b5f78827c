//! Shapes of the other answers: `taskType`, error envelopes, HTTP versions, the attach
//! refusal's status, what artifact locations answer, `expireAt`, a young job's 404, the
//! `[api]` keys set from `[shapes]`, and random mode serving what its summary names.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::*;

/// A manual-clock simulator with these `[shapes]` lines; checks take 3m.
async fn sim_with(shapes: &str) -> TestSim {
    TestSim::manual(&format!(
        "[api]\nstatus_delay = \"0s\"\n[defaults]\ncheck_duration = \"3m\"\n\
         migrate_duration = \"10m\"\n[shapes]\n{shapes}"
    ))
    .await
}

async fn get_json(sim: &TestSim, path: &str) -> Value {
    let response = sim.cloud(Method::GET, ALICE, path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

/// A finished Check task and a finished Migrate task on one job: (job, check, migrate).
async fn finished_tasks(sim: &TestSim) -> (String, String, String) {
    let job = sim.create_job(&jira_job("acme-jira", ACME, &[])).await;
    sim.attach("acme-jira", ACME).await;
    let check = sim.create_task(&job, &check_task()).await;
    let migrate = sim.create_task(&job, &migrate_task(&[])).await;
    sim.advance("20m").await;
    (job, check, migrate)
}

#[tokio::test]
async fn task_types_are_spelled_as_chosen_or_left_out() {
    for (shape, check, migrate) in [
        ("lower", Some("check"), Some("migrate")),
        ("capitalised", Some("Check"), Some("Migrate")),
        ("upper", Some("CHECK"), Some("MIGRATE")),
        ("other", Some("preflight"), Some("migration")),
        ("absent", None, None),
    ] {
        let sim = sim_with(&format!("task_type = \"{shape}\"")).await;
        let (job, check_id, migrate_id) = finished_tasks(&sim).await;
        let list = get_json(&sim, &format!("/jobs/{job}/tasks")).await;
        let listed: Vec<Option<&str>> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|task| task["taskType"].as_str())
            .collect();
        assert_eq!(listed, [migrate, check], "{shape}: newest first");
        let one = get_json(&sim, &format!("/jobs/{job}/tasks/{check_id}")).await;
        assert_eq!(one["taskType"].as_str(), check, "{shape}");
        assert_eq!(one["taskId"], check_id.as_str());
        let one = get_json(&sim, &format!("/jobs/{job}/tasks/{migrate_id}")).await;
        assert_eq!(one["taskType"].as_str(), migrate, "{shape}");
    }
}

#[tokio::test]
async fn error_bodies_come_in_the_chosen_envelope_with_the_same_words() {
    for envelope in ["error_message", "message", "errors", "error", "text"] {
        let sim = sim_with(&format!(
            "error_envelope = \"{envelope}\"\n[rate_limits]\ntoken = \"1/hour\""
        ))
        .await;
        let missing = sim
            .cloud(Method::GET, ALICE, "/jobs/nope")
            .send()
            .await
            .unwrap();
        let limited = {
            let token = || {
                sim.cloud(Method::POST, ALICE, "/token")
                    .json(&serde_json::json!({ "cloudUrl": ACME }))
                    .send()
            };
            assert_eq!(token().await.unwrap().status(), StatusCode::OK);
            token().await.unwrap()
        };
        let anonymous = sim
            .http
            .get(sim.url(&format!("{CLOUD}/jobs/nope")))
            .send()
            .await
            .unwrap();
        for (response, status, words) in [
            (missing, 404, "job nope not found"),
            (limited, 429, "Rate limit exceeded for token"),
            (anonymous, 401, "Unauthorized: send HTTP Basic"),
        ] {
            assert_eq!(response.status().as_u16(), status, "{envelope}");
            assert!(response.headers().contains_key("atl-traceid"));
            let kind = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            let body = response.text().await.unwrap();
            let text = if envelope == "text" {
                assert!(kind.starts_with("text/plain"), "{kind}");
                body
            } else {
                assert_eq!(kind, "application/json", "{envelope}");
                let json: Value = serde_json::from_str(&body).unwrap();
                let text = match envelope {
                    "error_message" => {
                        assert_eq!(json["status"], status);
                        assert!(json["id"].is_string());
                        &json["errorMessage"]
                    }
                    "message" => &json["message"],
                    "errors" => &json["errors"][0]["message"],
                    _ => &json["error"]["message"],
                };
                text.as_str().unwrap().to_owned()
            };
            assert!(text.starts_with(words), "{envelope}: {text}");
        }
    }
}

#[tokio::test]
async fn http1_only_refuses_http2_prior_knowledge() {
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let probe = |sim: &TestSim| h2c.get(sim.url("/_sim/clock")).send();

    let both = sim_with("").await;
    let answer = probe(&both).await.expect("h2c is served by default");
    assert_eq!(answer.version(), reqwest::Version::HTTP_2);

    let http1 = sim_with("http = \"http1\"").await;
    assert!(probe(&http1).await.is_err(), "h2c prior knowledge fails");
    let answer = http1
        .http
        .get(http1.url("/_sim/clock"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.version(), reqwest::Version::HTTP_11);
    assert_eq!(answer.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_attach_refusal_takes_the_chosen_status_with_the_same_text() {
    for code in [400u16, 403, 409, 500] {
        let sim = TestSim::manual(&format!(
            "[servers.hooli-jira]\nconnected = false\n[shapes]\nattach_refusal = \"{code}\"\n"
        ))
        .await;
        let refused = sim.attach("hooli-jira", ACME).await;
        assert_eq!(refused.status().as_u16(), code);
        let kind = refused.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(kind.starts_with("text/plain"), "{kind}");
        let text = refused.text().await.unwrap();
        assert!(
            text.contains("not authorized with the server") && text.contains("Reconnect"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn the_second_artifact_answers_the_chosen_stand_in_and_the_first_the_file() {
    for shape in ["file", "json", "html"] {
        let sim = sim_with(&format!("artifacts = \"{shape}\"")).await;
        let (job, _, migrate) = finished_tasks(&sim).await;
        let task = get_json(&sim, &format!("/jobs/{job}/tasks/{migrate}")).await;
        let artifacts = task["results"]["artifacts"].as_array().unwrap().clone();
        assert_eq!(artifacts.len(), 2, "checks and migration reports");
        let http = &sim.http;
        let fetch = |location: String| async move {
            let response = http.get(location).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let kind = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            (kind, response.text().await.unwrap())
        };
        let location = |index: usize| artifacts[index]["location"].as_str().unwrap().to_owned();
        let (kind, first) = fetch(location(0)).await;
        assert!(
            kind.starts_with("text/csv") && first.starts_with("check,"),
            "{shape}"
        );
        let (kind, second) = fetch(location(1)).await;
        match shape {
            "file" => assert!(second.starts_with("scope,status,outcome"), "{second}"),
            "json" => {
                assert_eq!(kind, "application/json");
                let meta: Value = serde_json::from_str(&second).unwrap();
                assert_eq!(meta["name"], "migration-report.csv");
                let (kind, file) = fetch(meta["downloadUrl"].as_str().unwrap().to_owned()).await;
                assert!(kind.starts_with("text/csv") && file.starts_with("scope,"));
            }
            _ => {
                assert!(kind.starts_with("text/html"), "{kind}");
                assert!(second.starts_with("<!DOCTYPE html>") && second.contains("Log in"));
            }
        }
    }
}

#[tokio::test]
async fn expire_at_can_be_past_or_garbage_and_the_files_still_download() {
    let past = sim_with("expire_at = \"past\"").await;
    let (job, check, _) = finished_tasks(&past).await;
    let task = get_json(&past, &format!("/jobs/{job}/tasks/{check}")).await;
    let artifact = &task["results"]["artifacts"][0];
    let at = chrono::DateTime::parse_from_rfc3339(artifact["expireAt"].as_str().unwrap())
        .expect("still a timestamp");
    assert!(at < chrono::Utc::now(), "{at}");
    let location = artifact["location"].as_str().unwrap();
    assert_eq!(
        past.http.get(location).send().await.unwrap().status(),
        StatusCode::OK
    );

    let garbage = sim_with("expire_at = \"garbage\"\ntimestamps = \"epoch_millis\"").await;
    let (job, check, _) = finished_tasks(&garbage).await;
    let task = get_json(&garbage, &format!("/jobs/{job}/tasks/{check}")).await;
    assert_eq!(task["results"]["artifacts"][0]["expireAt"], "soon");
    assert!(
        task["createdAt"].is_i64(),
        "other timestamps keep their format"
    );
}

#[tokio::test]
async fn a_task_created_on_a_young_job_answers_404_and_creates_nothing() {
    let sim = sim_with("young_job_404 = \"20s\"").await;
    let job = sim.create_job(&jira_job("acme-jira", ACME, &[])).await;
    sim.attach("acme-jira", ACME).await;
    let create = || {
        sim.cloud(Method::POST, ALICE, &format!("/jobs/{job}/tasks"))
            .json(&check_task())
            .send()
    };
    let refused = create().await.unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["errorMessage"], format!("job {job} not found"));
    sim.advance("19s").await;
    assert_eq!(create().await.unwrap().status(), StatusCode::NOT_FOUND);
    let list = get_json(&sim, &format!("/jobs/{job}/tasks")).await;
    assert_eq!(list["data"], Value::Array(vec![]), "nothing was created");
    assert_eq!(sim.counters().await.task_creates.total, 0);
    sim.advance("1s").await;
    assert_eq!(create().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn api_keys_can_be_set_in_the_shapes_table() {
    let sim = TestSim::manual(
        "[api]\ntask_page_size = 1\n[shapes]\nlinks_next = \"cursor\"\nlast_page = \"null\"\n\
         timestamps = \"epoch_seconds\"\n",
    )
    .await;
    let job = sim.create_job(&jira_job("acme-jira", ACME, &[])).await;
    sim.create_task(&job, &check_task()).await;
    sim.create_task(&job, &check_task()).await;
    let first = get_json(&sim, &format!("/jobs/{job}/tasks")).await;
    let next = first["links"]["next"].as_str().unwrap();
    assert!(
        !next.contains('/') && !next.contains('='),
        "a bare cursor: {next}"
    );
    assert!(first["data"][0]["createdAt"].is_i64());
    let last = get_json(&sim, &format!("/jobs/{job}/tasks?cursor={next}")).await;
    assert!(last["links"]["next"].is_null() && last["links"].get("next").is_some());
}

/// `key=value` pairs of a shapes summary line.
fn summary_pairs(line: &str) -> std::collections::BTreeMap<String, String> {
    line.strip_prefix("shapes: ")
        .expect("the line starts with `shapes: `")
        .split(' ')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

#[tokio::test]
async fn a_random_seed_serves_the_shapes_its_summary_names() {
    let scenario = || {
        Scenario::parse_toml(
            "clock = \"manual\"\n[servers.hooli-jira]\nconnected = false\n\
             [rate_limits]\ncreate_task = \"unlimited\"\n",
        )
        .unwrap()
    };
    assert_eq!(
        scenario().with_random_shapes(3).shapes_summary(),
        scenario().with_random_shapes(3).shapes_summary(),
        "the same seed, the same shapes"
    );
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..12 {
        let chosen = scenario().with_random_shapes(seed);
        let line = chosen.shapes_summary();
        let shapes = summary_pairs(&line);
        assert_eq!(shapes["random_seed"], seed.to_string(), "{line}");
        seen.insert(line.clone());
        let sim = TestSim::with_scenario(1.0, chosen).await;

        let missing = sim
            .cloud(Method::GET, ALICE, "/jobs/nope")
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let body = missing.text().await.unwrap();
        let json: Option<Value> = serde_json::from_str(&body).ok();
        match (shapes["error_envelope"].as_str(), json) {
            ("text", _) => assert_eq!(body, "job nope not found", "{line}"),
            ("error_message", Some(json)) => assert!(json["errorMessage"].is_string(), "{line}"),
            ("message", Some(json)) => assert!(json["message"].is_string(), "{line}"),
            ("errors", Some(json)) => assert!(json["errors"].is_array(), "{line}"),
            ("error", Some(json)) => assert!(json["error"].is_object(), "{line}"),
            (_, json) => panic!("{line}: {json:?} {body}"),
        }

        let refused = sim.attach("hooli-jira", ACME).await;
        assert_eq!(
            refused.status().as_str(),
            shapes["attach_refusal"],
            "{line}"
        );

        let job = sim.create_job(&jira_job("acme-jira", ACME, &[])).await;
        let create = sim
            .cloud(Method::POST, ALICE, &format!("/jobs/{job}/tasks"))
            .json(&migrate_task(&[]))
            .send()
            .await
            .unwrap();
        let young = shapes["young_job_404"] != "0s";
        let expected = if young { 404 } else { 200 };
        assert_eq!(create.status().as_u16(), expected, "{line}");
        if young {
            sim.advance(&shapes["young_job_404"]).await;
            sim.create_task(&job, &migrate_task(&[])).await;
        }
        let list = get_json(&sim, &format!("/jobs/{job}/tasks")).await;
        let served = list["data"][0]["taskType"].as_str();
        let expected = match shapes["task_type"].as_str() {
            "lower" => Some("migrate"),
            "capitalised" => Some("Migrate"),
            "upper" => Some("MIGRATE"),
            "other" => Some("migration"),
            _ => None,
        };
        assert_eq!(served, expected, "{line}");

        let h2 = h2c.get(sim.url("/_sim/clock")).send().await;
        assert_eq!(h2.is_ok(), shapes["http"] == "both", "{line}");
    }
    assert!(seen.len() > 1, "seeds pick different shapes");
}
