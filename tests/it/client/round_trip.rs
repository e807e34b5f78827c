//! Every endpoint: the right method, path, query, headers and body go out, and answers in
//! the tolerant shapes of `docs/api.md` come back typed.

use cmafleet::cma::client::{ServerClient, ServerCredentials, StatusQuery};
use cmafleet::cma::wire::{
    CreateTaskRequest, Destination, Flow, JobDefinition, KeyScope, Outcome, Scope, Source, Status,
    TaskKind, UsersAndGroups, UsersMode, WireTime,
};
use cmafleet::secret::Secret;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::stub::{self, Recorded, Stub, json};
use super::{EMAIL, TOKEN, basic, cloud};

fn definition() -> JobDefinition {
    JobDefinition {
        flow: Flow::Jira,
        name: "cmafleet acme-jira".to_owned(),
        source: Source {
            server_id: "BXXX-XXXX-XXXX-XXXX".to_owned(),
        },
        destination: Destination {
            url: "https://acme.atlassian.net".to_owned(),
        },
        scope: Scope {
            projects: Some(KeyScope {
                included_keys: Some(vec!["ABC".to_owned(), "DEF".to_owned()]),
                included_data: cmafleet::cma::wire::IncludedData::All,
            }),
            users_and_groups: Some(UsersAndGroups {
                mode: UsersMode::All,
            }),
            ..Scope::default()
        },
    }
}

/// Answers every cloud endpoint the way the real service might: unknown fields, odd casing,
/// timestamps in several formats.
fn cloud_answers(request: &Recorded) -> axum::response::Response {
    let base = "/migrations/public/v1";
    let path = request.path.strip_prefix(base).unwrap_or("?");
    match (request.method.as_str(), path) {
        ("POST", "/jobs") => json(
            200,
            r#"{"jobId":"0f1e2d3c-job","jobDefinition":{"flow":"JIRA-ONPREMISES-TO-CLOUD","name":"n","source":{"serverId":12345},"destination":{"url":"https://acme.atlassian.net"},"scope":{"projects":{"includedKeys":["ABC"],"includedData":"ALL"}}},"extra":{"nested":true}}"#,
        ),
        ("GET", "/jobs/0f1e2d3c-job") => json(
            200,
            r#"{"name":"n","flow":"confluence-onpremises-to-cloud","source":{"serverId":"S-1"},"destination":{"url":"https://acme.atlassian.net"},"scope":{"spaces":{"includedData":"All"},"globalEntities":{"includedTypes":["GLOBAL_PAGE_TEMPLATES"]}},"unknown":1}"#,
        ),
        ("POST", "/jobs/0f1e2d3c-job/tasks") => json(200, r#"{"taskId":"task-1","ignored":[1,2]}"#),
        ("GET", "/jobs/0f1e2d3c-job/tasks") => json(
            200,
            r#"{"data":[{"taskId":"task-2","taskType":"MIGRATE","createdAt":1700000000000},{"taskId":"task-1","taskType":"check","createdAt":"2023-11-14T22:13:20","results":{"artifacts":null}}],"links":{"self":"x"}}"#,
        ),
        ("GET", "/jobs/0f1e2d3c-job/tasks/task-1") => json(
            200,
            r#"{"taskId":"task-1","taskType":"Check","createdAt":"1700000000","payload":{"task":"Check"},"results":{"artifacts":[{"name":"report","location":"/files/r.csv","expireAt":"2023-11-15T00:00:00Z"}]}}"#,
        ),
        ("GET", "/jobs/0f1e2d3c-job/tasks/task-1/status") => json(
            200,
            r#"{"data":{"status":"finished","outcome":"Warning","message":"All Preflight checks have passed with warning.","someNewField":{"x":1},"children":{"AnonPermission":{"status":"FINISHED","outcome":"WARNING","details":{"occurrences":[{"project":"ABC"},"plain"],"excludable":"true"}},"DatabaseSize":{"status":"SOMETHING_NEW"}}},"links":{}}"#,
        ),
        ("POST", "/token") => json(
            200,
            r#"{"uri":"https://x","cloudUrl":"https://acme.atlassian.net","token":"connect-token-9"}"#,
        ),
        _ => json(404, r#"{"errorMessage":"no such route"}"#),
    }
}

fn assert_cloud_headers(request: &Recorded) {
    let expected = basic(EMAIL, TOKEN);
    assert_eq!(
        request.header("authorization"),
        Some(expected.as_str()),
        "{request:?}"
    );
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(request.header("user-agent"), Some("cmafleet-test/1"));
    if request.method == "POST" {
        assert_eq!(request.header("content-type"), Some("application/json"));
    }
}

#[tokio::test]
async fn every_cloud_endpoint_round_trips() {
    let stub = Stub::start(cloud_answers).await;
    let (http, events) = stub::http(stub::settings());
    let client = cloud(&http, &stub.url, None);
    let cancel = CancellationToken::new();

    let created = client.create_job(&definition(), &cancel).await.unwrap();
    assert_eq!(created.job_id, "0f1e2d3c-job");
    let echoed = created.job_definition.unwrap();
    assert_eq!(echoed.flow, Flow::Jira);
    assert_eq!(echoed.source.server_id, "12345");

    let job = client.get_job("0f1e2d3c-job", &cancel).await.unwrap();
    assert_eq!(job.job_id, None);
    assert_eq!(job.definition.flow, Flow::Confluence);

    let task = client
        .create_task(
            "0f1e2d3c-job",
            &CreateTaskRequest::migrate(&["AnonPermission".into()]),
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(task.task_id, "task-1");

    let tasks = client.list_tasks("0f1e2d3c-job", &cancel).await.unwrap();
    let ids: Vec<&str> = tasks.iter().map(|t| t.task_id.as_str()).collect();
    assert_eq!(ids, ["task-2", "task-1"]);
    assert_eq!(tasks[0].task_type, TaskKind::Migrate);
    assert_eq!(
        tasks[0]
            .created_at
            .as_ref()
            .and_then(WireTime::instant)
            .map(|t| t.timestamp()),
        Some(1_700_000_000)
    );
    assert_eq!(
        tasks[1]
            .created_at
            .as_ref()
            .and_then(WireTime::instant)
            .map(|t| t.timestamp()),
        Some(1_700_000_000)
    );

    let one = client
        .get_task("0f1e2d3c-job", "task-1", &cancel)
        .await
        .unwrap();
    assert_eq!(one.task_type, TaskKind::Check);
    let artifacts = one.results.unwrap().artifacts;
    assert_eq!(artifacts[0].location, "/files/r.csv");
    assert!(artifacts[0].expire_at.as_ref().unwrap().instant().is_some());

    let query = StatusQuery {
        level: Some("check".to_owned()),
        expand_children: true,
    };
    let tree = client
        .task_status("0f1e2d3c-job", "task-1", &query, &cancel)
        .await
        .unwrap();
    assert!(tree.is_finished());
    assert_eq!(tree.outcome, Some(Outcome::Warning));
    let anon = &tree.children["AnonPermission"];
    let details = anon.details.as_ref().unwrap();
    assert_eq!(details.occurrences, [r#"{"project":"ABC"}"#, "plain"]);
    assert_eq!(details.excludable, Some(true));
    let unknown = &tree.children["DatabaseSize"];
    assert_eq!(
        unknown.status,
        Some(Status::Unknown("SOMETHING_NEW".into()))
    );
    assert!(!unknown.is_finished());

    let token = client
        .create_token("https://acme.atlassian.net", &cancel)
        .await
        .unwrap();
    assert_eq!(token.token.expose(), "connect-token-9");

    let requests = stub.requests();
    let seen: Vec<(String, String)> = requests
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let expected: Vec<(String, String)> = [
        ("POST", "/migrations/public/v1/jobs"),
        ("GET", "/migrations/public/v1/jobs/0f1e2d3c-job"),
        ("POST", "/migrations/public/v1/jobs/0f1e2d3c-job/tasks"),
        ("GET", "/migrations/public/v1/jobs/0f1e2d3c-job/tasks"),
        (
            "GET",
            "/migrations/public/v1/jobs/0f1e2d3c-job/tasks/task-1",
        ),
        (
            "GET",
            "/migrations/public/v1/jobs/0f1e2d3c-job/tasks/task-1/status",
        ),
        ("POST", "/migrations/public/v1/token"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(seen, expected);
    for request in &requests {
        assert_cloud_headers(request);
    }
    let create_job = requests[0].json();
    assert_eq!(create_job["flow"], "jira-onpremises-to-cloud");
    assert_eq!(create_job["source"]["serverId"], "BXXX-XXXX-XXXX-XXXX");
    assert_eq!(create_job["scope"]["projects"]["includedKeys"][1], "DEF");
    assert_eq!(create_job["scope"]["projects"]["includedData"], "all");
    assert_eq!(create_job["scope"]["usersAndGroups"]["mode"], "ALL");
    assert_eq!(
        requests[2].json(),
        serde_json::json!({"task":"Migrate","options":{"checkTypes":{"excludeKeys":["AnonPermission"]}}})
    );
    assert_eq!(requests[3].query, None);
    assert_eq!(
        requests[5].query_pairs(),
        [
            ("level".to_owned(), "check".to_owned()),
            ("expandChildren".to_owned(), "true".to_owned())
        ]
    );
    assert_eq!(
        requests[6].json(),
        serde_json::json!({"cloudUrl":"https://acme.atlassian.net"})
    );
    assert_eq!(events.codes(), vec!["200"; 7]);
}

#[tokio::test]
async fn a_status_without_data_is_an_empty_node_and_the_whole_tree_has_no_query() {
    let stub = Stub::start(|_| json(200, r#"{"links":{"next":null}}"#)).await;
    let (http, _) = stub::http(stub::settings());
    let client = cloud(&http, &stub.url, None);
    let tree = client
        .task_status("j", "t", &StatusQuery::default(), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(tree, Default::default());
    assert_eq!(stub.requests()[0].query, None);
}

#[tokio::test]
async fn server_endpoints_round_trip_with_bearer_and_basic() {
    let stub = Stub::start(|request: &Recorded| {
        if request.path.ends_with("/public/v1/attach") {
            json(
                200,
                r#"{"cloudUrl":"https://acme.atlassian.net/","expiryTime":1700086400}"#,
            )
        } else {
            json(
                200,
                r#"{"cloudUrl":"https://acme.atlassian.net","message":"Token saved successfully."}"#,
            )
        }
    })
    .await;
    let (http, _) = stub::http(stub::settings());
    let server_url = stub.url.join("servers/jira-1").unwrap();
    let cancel = CancellationToken::new();

    let bearer = ServerClient::new(
        http.clone(),
        &server_url,
        ServerCredentials::Bearer(Secret::new("pat-secret-1")),
    );
    let attached = bearer
        .attach("https://acme.atlassian.net/", &cancel)
        .await
        .unwrap();
    assert_eq!(
        attached
            .expiry_time
            .and_then(|t| t.instant())
            .map(|t| t.timestamp()),
        Some(1_700_086_400)
    );
    let basic_client = ServerClient::new(
        http,
        &server_url,
        ServerCredentials::Basic {
            username: "migrator".to_owned(),
            password: Secret::new("pw-secret-2"),
        },
    );
    let saved = basic_client
        .save_token(
            "https://acme.atlassian.net",
            &Secret::new("connect-token-9"),
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(saved.message.as_deref(), Some("Token saved successfully."));

    let requests = stub.requests();
    let attach = &requests[0];
    assert_eq!(attach.method, "POST");
    assert_eq!(
        attach.path,
        "/servers/jira-1/rest/migration/latest/public/v1/attach"
    );
    assert_eq!(
        attach.query.as_deref(),
        Some("cloudUrl=https%3A%2F%2Facme.atlassian.net%2F")
    );
    assert_eq!(attach.header("authorization"), Some("Bearer pat-secret-1"));
    assert_eq!(attach.header("content-type"), Some("application/json"));
    assert_eq!(attach.header("accept"), Some("application/json"));
    assert!(attach.body.is_empty());

    let save = &requests[1];
    assert_eq!(save.method, "POST");
    assert_eq!(
        save.path,
        "/servers/jira-1/rest/migration/latest/cloud/save/token"
    );
    assert_eq!(
        save.header("authorization"),
        Some(basic("migrator", "pw-secret-2").as_str())
    );
    assert_eq!(save.header("content-type"), Some("application/json"));
    assert_eq!(
        save.json(),
        serde_json::json!({"cloudUrl":"https://acme.atlassian.net","token":"connect-token-9"})
    );
}

#[tokio::test]
async fn ids_cannot_escape_their_path_segment() {
    let stub = Stub::start(|_| json(200, r#"{"taskId":"t","taskType":"check"}"#)).await;
    let (http, _) = stub::http(stub::settings());
    let client = cloud(&http, &stub.url, None);
    client
        .get_task("../../token", "a b", &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        stub.requests()[0].path,
        "/migrations/public/v1/jobs/..%2F..%2Ftoken/tasks/a%20b"
    );
}

#[tokio::test]
async fn a_cloud_api_url_with_a_path_prefix_is_kept() {
    let stub = Stub::start(|_| json(200, r#"{"taskId":"t"}"#)).await;
    let (http, _) = stub::http(stub::settings());
    let api = Url::parse(&stub.at("/proxy/atlassian/")).unwrap();
    let client = cloud(&http, &api, None);
    client
        .create_task("j", &CreateTaskRequest::check(), &CancellationToken::new())
        .await
        .unwrap();
    let request = &stub.requests()[0];
    assert_eq!(
        request.path,
        "/proxy/atlassian/migrations/public/v1/jobs/j/tasks"
    );
    assert_eq!(request.json(), serde_json::json!({"task":"Check"}));
}

/// Every client future can be spawned on a multi-threaded runtime (each site's pipeline is
/// a task of its own). A compile-time check: it fails to build, never to run.
#[allow(dead_code)]
fn client_futures_are_send_and_static(
    cloud: cmafleet::cma::client::CloudClient,
    server: ServerClient,
) {
    fn spawnable<F: std::future::Future + Send + 'static>(_: F) {}
    let cancel = CancellationToken::new();
    let c = cloud.clone();
    let k = cancel.clone();
    spawnable(async move { c.create_job(&serde_json::from_str("{}").unwrap(), &k).await });
    let c = cloud.clone();
    let k = cancel.clone();
    spawnable(async move { c.get_job("j", &k).await });
    let c = cloud.clone();
    let k = cancel.clone();
    spawnable(async move { c.create_task("j", &CreateTaskRequest::check(), &k).await });
    let c = cloud.clone();
    let k = cancel.clone();
    spawnable(async move { c.list_tasks("j", &k).await });
    let c = cloud.clone();
    let k = cancel.clone();
    spawnable(async move { c.get_task("j", "t", &k).await });
    let c = cloud.clone();
    let k = cancel.clone();
    spawnable(async move { c.task_status("j", "t", &StatusQuery::default(), &k).await });
    let c = cloud.clone();
    let k = cancel.clone();
    spawnable(async move { c.create_token("u", &k).await });
    let c = cloud;
    let k = cancel.clone();
    spawnable(async move {
        let artifact = serde_json::from_str("{}").unwrap();
        c.download_artifact(&artifact, std::path::Path::new("x"), &k)
            .await
    });
    let s = server.clone();
    let k = cancel.clone();
    spawnable(async move { s.attach("u", &k).await });
    spawnable(async move { server.save_token("u", &Secret::new("t"), &cancel).await });
}

#[tokio::test]
async fn a_plain_http_cloud_api_gets_http2_and_other_plain_http_hosts_http1() {
    let api = Stub::start(cloud_answers).await;
    // A Server/DC instance on loopback too (an SSH tunnel, say): it may not speak HTTP/2.
    let server = Stub::start(|_| json(200, r#"{"expiryTime":"2023-11-15T00:00:00Z"}"#)).await;
    let (http, _) = stub::http(stub::settings().with_h2c_api(&api.url));
    let cancel = CancellationToken::new();

    let client = cloud(&http, &api.url, None);
    client.get_job("0f1e2d3c-job", &cancel).await.unwrap();
    client.get_job("0f1e2d3c-job", &cancel).await.unwrap();
    ServerClient::new(
        http.clone(),
        &server.url.join("servers/jira-1").unwrap(),
        ServerCredentials::Bearer(Secret::new("pat-secret-1")),
    )
    .attach("https://acme.atlassian.net/", &cancel)
    .await
    .unwrap();

    let versions = |stub: &Stub| {
        stub.requests()
            .iter()
            .map(|r| r.version)
            .collect::<Vec<_>>()
    };
    assert_eq!(versions(&api), [axum::http::Version::HTTP_2; 2]);
    assert_eq!(versions(&server), [axum::http::Version::HTTP_11]);

    // Without the cloud API's origin named, plain http is HTTP/1.1 everywhere.
    let (http, _) = stub::http(stub::settings());
    cloud(&http, &api.url, None)
        .get_job("0f1e2d3c-job", &cancel)
        .await
        .unwrap();
    assert_eq!(versions(&api)[2], axum::http::Version::HTTP_11);
}
