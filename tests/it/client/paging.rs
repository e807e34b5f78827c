//! `links.next` in every form: bare cursor, path, query, full URL; the last page as absent,
//! `null`, `""` or `links: {}`; a looping cursor; a link to another origin.

use cmafleet::cma::ErrorKind;
use cmafleet::cma::client::StatusQuery;
use tokio_util::sync::CancellationToken;

use super::cloud;
use super::stub::{self, Recorded, Stub, json};

fn task(id: &str) -> String {
    format!(r#"{{"taskId":"{id}","taskType":"check"}}"#)
}

fn cursor(request: &Recorded) -> Option<String> {
    request
        .query_pairs()
        .into_iter()
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v)
}

/// Job `{end}`: four pages linked by a cursor, a path, a query and a full URL; the last
/// page ends in the way `{end}` names.
fn pages(request: &Recorded, origin: &str) -> axum::response::Response {
    let job = request
        .path
        .split('/')
        .nth(5)
        .unwrap_or_default()
        .to_owned();
    let last_links = match job.as_str() {
        "absent" => "",
        "null" => r#","links":{"self":"x","next":null}"#,
        "empty" => r#","links":{"next":""}"#,
        "bare" => r#","links":{}"#,
        _ => r#","links":null"#,
    };
    let base = format!("/migrations/public/v1/jobs/{job}/tasks");
    let (data, next) = match cursor(request).as_deref() {
        None => (task("t1"), r#""next":"c2""#.to_owned()),
        Some("c2") => (task("t2"), format!(r#""next":"{base}?cursor=c3""#)),
        Some("c3") => (task("t3"), r#""next":"?cursor=c4""#.to_owned()),
        Some("c4") => (task("t4"), format!(r#""next":"{origin}{base}?cursor=c5""#)),
        Some("c5") => {
            return json(200, &format!(r#"{{"data":[{}]{last_links}}}"#, task("t5")));
        }
        Some(other) => panic!("unexpected cursor {other}"),
    };
    json(
        200,
        &format!(r#"{{"data":[{data}],"links":{{"self":"s",{next}}}}}"#),
    )
}

#[tokio::test]
async fn list_tasks_follows_next_in_every_form_to_every_kind_of_end() {
    let origin = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let shared = origin.clone();
    let stub = Stub::start(move |r: &Recorded| pages(r, shared.get().unwrap())).await;
    origin
        .set(stub.url.as_str().trim_end_matches('/').to_owned())
        .unwrap();
    let (http, _) = stub::http(stub::settings());
    let client = cloud(&http, &stub.url, None);
    let cancel = CancellationToken::new();
    for end in ["absent", "null", "empty", "bare", "nulllinks"] {
        let before = stub.count();
        let tasks = client.list_tasks(end, &cancel).await.unwrap();
        let ids: Vec<&str> = tasks.iter().map(|t| t.task_id.as_str()).collect();
        assert_eq!(ids, ["t1", "t2", "t3", "t4", "t5"], "{end}");
        let requests = &stub.requests()[before..];
        let cursors: Vec<Option<String>> = requests.iter().map(cursor).collect();
        assert_eq!(
            cursors,
            [None, Some("c2"), Some("c3"), Some("c4"), Some("c5")].map(|c| c.map(str::to_owned)),
            "{end}"
        );
        assert!(
            requests
                .iter()
                .all(|r| r.path == format!("/migrations/public/v1/jobs/{end}/tasks"))
        );
    }
}

#[tokio::test]
async fn a_looping_cursor_ends_the_listing_without_duplicates() {
    let stub = Stub::start(|r: &Recorded| {
        let body = match cursor(r).as_deref() {
            None => format!(r#"{{"data":[{}],"links":{{"next":"again"}}}}"#, task("t1")),
            _ => format!(
                r#"{{"data":[{},{}],"links":{{"next":"again"}}}}"#,
                task("t1"),
                task("t2")
            ),
        };
        json(200, &body)
    })
    .await;
    let (http, _) = stub::http(stub::settings());
    let client = cloud(&http, &stub.url, None);
    let tasks = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.list_tasks("j", &CancellationToken::new()),
    )
    .await
    .expect("the listing ends")
    .unwrap();
    let ids: Vec<&str> = tasks.iter().map(|t| t.task_id.as_str()).collect();
    assert_eq!(ids, ["t1", "t2"]);
    assert_eq!(stub.count(), 2);
}

#[tokio::test]
async fn a_next_link_to_another_origin_is_refused_and_never_contacted() {
    let elsewhere = Stub::start(|_| json(200, r#"{"data":[]}"#)).await;
    let target = elsewhere.at("/migrations/public/v1/jobs/j/tasks?cursor=c2");
    let stub = Stub::start(move |_| {
        json(
            200,
            &format!(r#"{{"data":[],"links":{{"next":"{target}"}}}}"#),
        )
    })
    .await;
    let (http, _) = stub::http(stub::settings());
    let client = cloud(&http, &stub.url, None);
    let err = client
        .list_tasks("j", &CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Decode);
    assert!(err.to_string().contains("another origin"), "{err}");
    assert_eq!(elsewhere.count(), 0);
}

#[tokio::test]
async fn status_pages_are_merged_and_keep_the_query() {
    let stub = Stub::start(|r: &Recorded| match cursor(r).as_deref() {
        None => json(
            200,
            r#"{"data":{"status":"IN_PROGRESS","children":{"check":{"status":"FINISHED","outcome":"SUCCESS"},"projects":{"status":"IN_PROGRESS","children":{"ABC":{"status":"FINISHED"}}}}},"links":{"next":"p2"}}"#,
        ),
        Some("p2") => json(
            200,
            r#"{"data":{"children":{"projects":{"children":{"DEF":{"status":"IN_PROGRESS","progressDetails":{"isSupported":"true","percent":"42.5","data":[{"name":"Issues","total":"100","processed":42}]}}}},"apps":{"status":"in_progress"}}},"links":{"next":"/migrations/public/v1/jobs/j/tasks/t/status?cursor=p3"}}"#,
        ),
        Some("p3") => json(200, r#"{"links":{}}"#),
        Some(other) => panic!("unexpected cursor {other}"),
    })
    .await;
    let (http, _) = stub::http(stub::settings());
    let client = cloud(&http, &stub.url, None);
    let query = StatusQuery {
        level: Some("migrate".to_owned()),
        expand_children: true,
    };
    let tree = client
        .task_status("j", "t", &query, &CancellationToken::new())
        .await
        .unwrap();
    assert!(!tree.is_finished());
    assert!(tree.children["check"].is_finished());
    let projects = &tree.children["projects"].children;
    assert_eq!(projects.keys().collect::<Vec<_>>(), ["ABC", "DEF"]);
    let progress = projects["DEF"].progress_details.as_ref().unwrap();
    assert_eq!(progress.percent, Some(42.5));
    assert_eq!(progress.data[0].total, Some(100));
    assert_eq!(progress.data[0].processed, Some(42));
    assert!(tree.children.contains_key("apps"));
    let requests = stub.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        let pairs = request.query_pairs();
        assert!(
            pairs.contains(&("level".into(), "migrate".into())),
            "{pairs:?}"
        );
        assert!(
            pairs.contains(&("expandChildren".into(), "true".into())),
            "{pairs:?}"
        );
    }
}
