//! Pagination: status children and task lists in pages, `links.next` in every form the
//! client must accept, and every way of saying "last page".

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use super::*;

/// These tests page a Check task's `level=check` read without `expandChildren`: the checks
/// under a `check` node, its children served unasked.
const CHECK_LEVEL: &str = "[shapes]\nchildren = \"one_level\"\ncheck_task_tree = \"check_node\"\n";

/// Fetches `first` and follows `links.next` by hand, in whatever form it comes; returns
/// the pages' JSON.
async fn follow(sim: &TestSim, first: &str, base_path: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut url = sim.url(first);
    loop {
        let page: Value = sim
            .http
            .get(&url)
            .basic_auth(ALICE, Some("tok"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let next = page["links"]["next"].as_str().unwrap_or("").to_owned();
        pages.push(page);
        assert!(pages.len() < 20, "pagination never ends");
        if next.is_empty() {
            return pages;
        }
        url = if next.starts_with("http://") {
            next
        } else if next.starts_with('/') {
            sim.url(&next)
        } else {
            let separator = if base_path.contains('?') { '&' } else { '?' };
            sim.url(&format!("{base_path}{separator}cursor={next}"))
        };
    }
}

#[tokio::test]
async fn a_check_tree_larger_than_a_page_is_fetched_by_following_links_next_in_each_form() {
    for (form, last) in [
        ("url", "absent"),
        ("path", "null"),
        ("cursor", "empty"),
        ("url", "empty_links"),
    ] {
        let sim = TestSim::manual(&format!(
            "[api]\nlinks_next = \"{form}\"\nlast_page = \"{last}\"\n[defaults]\ncheck_duration = \"5m\"\n{CHECK_LEVEL}"
        ))
        .await;
        let job = sim.create_job(&jira_job("acme-jira", ACME, &[])).await;
        sim.attach("acme-jira", ACME).await;
        let task = sim.create_task(&job, &check_task()).await;
        sim.advance("5m").await;
        let path = format!("{CLOUD}/jobs/{job}/tasks/{task}/status?level=check");
        let pages = follow(&sim, &path, &path).await;
        assert!(
            pages.len() >= 2,
            "{form}: a Jira check tree needs 2+ pages by default"
        );
        let mut names = BTreeSet::new();
        for page in &pages {
            assert_eq!(
                page["data"]["status"], "FINISHED",
                "every page carries the node"
            );
            for name in page["data"]["children"].as_object().unwrap().keys() {
                assert!(names.insert(name.clone()), "{form}: {name} came twice");
            }
        }
        assert_eq!(names.len(), 16, "{form}/{last}");
        let last_links = &pages.last().unwrap()["links"];
        match last {
            "absent" => assert!(last_links.get("next").is_none() && last_links["self"].is_string()),
            "null" => assert!(last_links["next"].is_null() && last_links.get("next").is_some()),
            "empty" => assert_eq!(last_links["next"], ""),
            _ => assert_eq!(last_links, &serde_json::json!({})),
        }
        let next = pages[0]["links"]["next"].as_str().unwrap();
        match form {
            "url" => assert!(next.starts_with(&sim.handle.base_url()), "{next}"),
            "path" => assert!(
                next.starts_with("/migrations/public/v1/") && next.contains("level=check"),
                "{next}"
            ),
            _ => assert!(!next.contains('/') && !next.contains('='), "{next}"),
        }
    }
}

#[tokio::test]
async fn status_filters_and_page_size_are_honoured() {
    let sim = TestSim::manual(
        &format!("[api]\nstatus_page_size = 3\n[servers.acme-jira]\ncheck_duration = \"5m\"\n[servers.acme-jira.checks.DatabaseSize]\noutcome = \"WARNING\"\n{CHECK_LEVEL}"),
    )
    .await;
    let job = sim.create_job(&jira_job("acme-jira", ACME, &[])).await;
    sim.attach("acme-jira", ACME).await;
    let task = sim.create_task(&job, &check_task()).await;
    sim.advance("5m").await;
    let path = format!("{CLOUD}/jobs/{job}/tasks/{task}/status?level=check");
    assert_eq!(
        follow(&sim, &path, &path).await.len(),
        6,
        "16 checks, 3 a page"
    );
    let warned = sim.tree(&job, &task, "?level=check&outcome=warning").await;
    let names: Vec<_> = warned["children"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(names, ["DatabaseSize"]);
}

#[tokio::test]
async fn task_lists_come_newest_first_twenty_a_page() {
    let sim = TestSim::manual(
        "[api]\nlinks_next = \"path\"\n[rate_limits]\ncreate_task = \"unlimited\"\n",
    )
    .await;
    let job = sim.create_job(&jira_job("acme-jira", ACME, &[])).await;
    let mut created = Vec::new();
    for _ in 0..23 {
        created.push(sim.create_task(&job, &check_task()).await);
        sim.advance("1s").await;
    }
    let path = format!("{CLOUD}/jobs/{job}/tasks");
    let pages = follow(&sim, &path, &path).await;
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0]["data"].as_array().unwrap().len(), 20);
    let listed: Vec<String> = pages
        .iter()
        .flat_map(|page| page["data"].as_array().unwrap().clone())
        .map(|task| task["taskId"].as_str().unwrap().to_owned())
        .collect();
    created.reverse();
    assert_eq!(listed, created, "newest first, each once");
    let bad = sim
        .cloud(
            Method::GET,
            ALICE,
            &format!("/jobs/{job}/tasks?cursor=bogus"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
