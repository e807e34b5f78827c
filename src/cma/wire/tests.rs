//! Hand-written JSON in every tolerant shape of docs/api.md, and the strict shapes we send.

use chrono::{TimeZone, Utc};
use serde_json::json;

use super::*;

fn links(json: &str) -> Links {
    serde_json::from_str::<TaskList>(json).unwrap().links
}

#[test]
fn next_links_in_every_form() {
    let cases = [
        (r#"{"data":[]}"#, None),
        (r#"{"data":[],"links":null}"#, None),
        (r#"{"data":[],"links":{}}"#, None),
        (r#"{"data":[],"links":{"self":"s"}}"#, None),
        (r#"{"data":[],"links":{"next":null}}"#, None),
        (r#"{"data":[],"links":{"next":""}}"#, None),
        (r#"{"data":[],"links":{"next":"   "}}"#, None),
        (r#"{"data":[],"links":{"next":42}}"#, None),
        (
            r#"{"data":[],"links":{"next":"https://api.atlassian.com/migrations/public/v1/jobs/j/tasks?cursor=abc"}}"#,
            Some(NextPage::Url(
                "https://api.atlassian.com/migrations/public/v1/jobs/j/tasks?cursor=abc".into(),
            )),
        ),
        (
            r#"{"data":[],"links":{"next":"http://127.0.0.1:9/x?cursor=1"}}"#,
            Some(NextPage::Url("http://127.0.0.1:9/x?cursor=1".into())),
        ),
        (
            r#"{"data":[],"links":{"next":"/migrations/public/v1/jobs/j/tasks?cursor=abc"}}"#,
            Some(NextPage::Path(
                "/migrations/public/v1/jobs/j/tasks?cursor=abc".into(),
            )),
        ),
        (
            r#"{"data":[],"links":{"next":"?cursor=abc"}}"#,
            Some(NextPage::Path("?cursor=abc".into())),
        ),
        (
            r#"{"data":[],"links":{"next":" eyJwYWdlIjoyfQ== "}}"#,
            Some(NextPage::Cursor("eyJwYWdlIjoyfQ==".into())),
        ),
    ];
    for (json, expected) in cases {
        assert_eq!(links(json).next_page(), expected, "{json}");
    }
}

#[test]
fn a_task_list_without_data_or_with_null_data_is_empty() {
    assert!(
        serde_json::from_str::<TaskList>("{}")
            .unwrap()
            .data
            .is_empty()
    );
    assert!(
        serde_json::from_str::<TaskList>(r#"{"data":null}"#)
            .unwrap()
            .data
            .is_empty()
    );
}

#[test]
fn enums_parse_in_any_casing_and_keep_unknown_values() {
    for text in ["FINISHED", "finished", "Finished"] {
        assert_eq!(Status::parse(text), Status::Finished);
    }
    assert_eq!(Status::parse("in_progress"), Status::InProgress);
    assert_eq!(Status::parse("Pending"), Status::Pending);
    let odd = Status::parse("QUEUED_FOR_LATER");
    assert_eq!(odd, Status::Unknown("QUEUED_FOR_LATER".into()));
    assert!(!odd.is_finished(), "an unknown status is not finished");
    for (text, outcome) in [
        ("success", Outcome::Success),
        ("Warning", Outcome::Warning),
        ("FAILED", Outcome::Failed),
        ("skipped", Outcome::Skipped),
    ] {
        assert_eq!(Outcome::parse(text), outcome);
    }
    assert_eq!(
        Outcome::parse("PARTIAL"),
        Outcome::Unknown("PARTIAL".into())
    );
    assert_eq!(TaskKind::parse("check"), TaskKind::Check);
    assert_eq!(TaskKind::parse("MIGRATE"), TaskKind::Migrate);
    assert_eq!(Flow::parse("Jira-OnPremises-To-Cloud"), Flow::Jira);
    assert_eq!(IncludedData::parse("ALL"), IncludedData::All);
    assert_eq!(UsersMode::parse("none"), UsersMode::None);
    // Through serde, inside a node, and echoed back verbatim when unknown.
    let node: StatusNode =
        serde_json::from_str(r#"{"status":"finished","outcome":"Brand_New"}"#).unwrap();
    assert!(node.is_finished());
    assert_eq!(node.outcome, Some(Outcome::Unknown("Brand_New".into())));
    assert_eq!(
        serde_json::to_value(&node).unwrap(),
        json!({"status":"FINISHED","outcome":"Brand_New"})
    );
}

fn time(json: serde_json::Value) -> WireTime {
    serde_json::from_value(json).unwrap()
}

#[test]
fn timestamps_in_every_format() {
    let at = Utc.with_ymd_and_hms(2023, 11, 14, 22, 13, 20).unwrap();
    let same = [
        json!("2023-11-14T22:13:20Z"),
        json!("2023-11-14T22:13:20.000Z"),
        json!("2023-11-14T23:13:20+01:00"),
        json!("2023-11-14T23:13:20+0100"),
        json!("2023-11-14T22:13:20"),
        json!(" 2023-11-14T22:13:20Z "),
        json!(1_700_000_000),
        json!(1_700_000_000_000u64),
        json!(1_700_000_000.0),
        json!("1700000000"),
        json!("1700000000000"),
    ];
    for value in same {
        assert_eq!(time(value.clone()).instant(), Some(at), "{value}");
    }
    let millis = time(json!("2023-11-14T22:13:20.250Z")).instant().unwrap();
    assert_eq!(millis.timestamp_millis(), 1_700_000_000_250);
    let ms = time(json!(1_700_000_000_250u64)).instant().unwrap();
    assert_eq!(ms.timestamp_millis(), 1_700_000_000_250);
}

#[test]
fn timestamps_that_cannot_be_read_are_kept_never_fail() {
    for (value, kept) in [
        (json!("next tuesday"), "next tuesday"),
        (json!(""), ""),
        (json!(-5), "-5"),
        (json!(true), "true"),
        (json!({"epoch": 1}), r#"{"epoch":1}"#),
        (json!("2023-13-45T99:99:99Z"), "2023-13-45T99:99:99Z"),
    ] {
        let parsed = time(value.clone());
        assert_eq!(parsed, WireTime::Unparsed(kept.into()), "{value}");
        assert_eq!(parsed.instant(), None);
    }
    // In a whole answer: a bad timestamp does not fail the task, a null one is absent.
    let task: Task = serde_json::from_str(
        r#"{"taskId":"t","taskType":"check","createdAt":"garbage","results":{"artifacts":[{"name":"a","location":"/x","expireAt":null}]}}"#,
    )
    .unwrap();
    assert_eq!(task.created_at, Some(WireTime::Unparsed("garbage".into())));
    assert_eq!(task.results.unwrap().artifacts[0].expire_at, None);
    let attach: AttachResponse = serde_json::from_str(r#"{"expiryTime":"soon"}"#).unwrap();
    assert!(attach.expiry_time.unwrap().instant().is_none());
}

#[test]
fn status_trees_tolerate_missing_nodes_unknown_fields_and_odd_values() {
    let node: StatusNode = serde_json::from_str(
        r#"{
            "status": "IN_PROGRESS",
            "newTopLevelField": {"anything": [1, 2]},
            "children": {
                "check": {
                    "status": "FINISHED", "outcome": "FAILED",
                    "message": "At least one Preflight check has failed.",
                    "children": {
                        "AnonPermission": {
                            "status": "finished", "outcome": "failed",
                            "details": {"occurrences": ["ABC", {"project": "DEF", "count": 2}, 7],
                                        "excludable": "TRUE", "description": "d", "extra": 1}
                        },
                        "DatabaseSize": {
                            "status": "FINISHED", "outcome": "WARNING",
                            "details": {"occurrences": "just one", "excludable": "maybe"}
                        },
                        "MissingAttachments": {"details": {"occurrences": null}},
                        "Empty": {}
                    }
                },
                "projects": {
                    "status": "IN_PROGRESS",
                    "progressDetails": {"isSupported": true, "percent": "30",
                        "data": [{"name": "Issues", "total": "40", "processed": 12.0},
                                 {"name": "Odd", "total": -1, "processed": "n/a"}]}
                },
                "apps": null,
                "jsm": "not a node",
                "usersAndGroups": [{"status": "FINISHED"}, [1, 2]],
                "globalEntities": 7,
                "spaces": true,
                "ar": {"status": 3, "outcome": ["x"], "message": {"m": 1},
                       "details": "text", "progressDetails": "n/a", "children": "none"}
            }
        }"#,
    )
    .unwrap();
    assert!(!node.is_finished());
    let checks = &node.children["check"].children;
    let anon = checks["AnonPermission"].details.as_ref().unwrap();
    assert_eq!(
        anon.occurrences,
        ["ABC", r#"{"count":2,"project":"DEF"}"#, "7"]
    );
    assert_eq!(anon.excludable, Some(true));
    let size = checks["DatabaseSize"].details.as_ref().unwrap();
    assert_eq!(size.occurrences, ["just one"]);
    assert_eq!(size.excludable, None);
    assert!(
        checks["MissingAttachments"]
            .details
            .as_ref()
            .unwrap()
            .occurrences
            .is_empty()
    );
    assert_eq!(checks["Empty"], StatusNode::default());
    let progress = node.children["projects"].progress_details.as_ref().unwrap();
    assert_eq!(progress.percent, Some(30.0));
    assert_eq!(progress.data[0].total, Some(40));
    assert_eq!(progress.data[0].processed, Some(12));
    assert_eq!(progress.data[1].total, None);
    assert_eq!(progress.data[1].processed, None);
    // Nodes of the wrong shape count as missing; fields of the wrong shape as absent.
    assert!(!node.children.contains_key("apps"));
    for missing in ["jsm", "usersAndGroups", "globalEntities", "spaces"] {
        assert!(!node.children.contains_key(missing), "{missing}");
    }
    assert_eq!(node.children["ar"], StatusNode::default());
}

#[test]
fn a_status_answer_may_lack_data_or_be_empty() {
    for json in [
        "{}",
        r#"{"data":null}"#,
        r#"{"links":{}}"#,
        r#"{"data":null,"links":null}"#,
    ] {
        let page: StatusResponse = serde_json::from_str(json).unwrap();
        assert_eq!(page.data, None, "{json}");
        assert_eq!(page.links.next_page(), None, "{json}");
    }
    let page: StatusResponse = serde_json::from_str(r#"{"data":{}}"#).unwrap();
    assert_eq!(page.data, Some(StatusNode::default()));
}

#[test]
fn pages_merge_children_and_fill_what_was_missing() {
    let mut first: StatusNode = serde_json::from_str(
        r#"{"status":"IN_PROGRESS","children":{"check":{"status":"FINISHED"},"projects":{"children":{"A":{"status":"FINISHED"}}}}}"#,
    )
    .unwrap();
    let second: StatusNode = serde_json::from_str(
        r#"{"status":"FINISHED","outcome":"SUCCESS","children":{"projects":{"status":"IN_PROGRESS","children":{"B":{}}},"apps":{}}}"#,
    )
    .unwrap();
    first.merge_page(second);
    assert_eq!(
        first.status,
        Some(Status::InProgress),
        "the first page's value stays"
    );
    assert_eq!(
        first.outcome, None,
        "status and outcome are one reading: a node that finished between two pages is read again"
    );
    assert!(!first.is_finished());
    assert_eq!(
        first.children.keys().collect::<Vec<_>>(),
        ["apps", "check", "projects"]
    );
    let projects = &first.children["projects"];
    assert_eq!(projects.status, Some(Status::InProgress));
    assert_eq!(projects.children.keys().collect::<Vec<_>>(), ["A", "B"]);
}

#[test]
fn error_bodies_in_every_shape() {
    let sibling: ErrorBody =
        serde_json::from_str(r#"{"status":400,"errorMessage":"Invalid scope","id":"5b1d-req"}"#)
            .unwrap();
    assert_eq!(sibling.text().as_deref(), Some("Invalid scope"));
    assert_eq!(sibling.id.as_deref(), Some("5b1d-req"));
    let numeric_id: ErrorBody =
        serde_json::from_str(r#"{"status":"BAD_REQUEST","message":"m","id":123}"#).unwrap();
    assert_eq!(numeric_id.text().as_deref(), Some("m"));
    assert_eq!(numeric_id.id.as_deref(), Some("123"));
    let error_string: ErrorBody = serde_json::from_str(r#"{"error":"Unauthorized"}"#).unwrap();
    assert_eq!(error_string.text().as_deref(), Some("Unauthorized"));
    let error_object: ErrorBody =
        serde_json::from_str(r#"{"error":{"message":"No such job","code":"X"}}"#).unwrap();
    assert_eq!(error_object.text().as_deref(), Some("No such job"));
    let listed: ErrorBody =
        serde_json::from_str(r#"{"errors":[{"message":"a"},{"message":"b"}]}"#).unwrap();
    assert_eq!(listed.text().as_deref(), Some("a; b"));
    let unknown: ErrorBody =
        serde_json::from_str(r#"{"error":{"code":"X"},"unrelated":true}"#).unwrap();
    assert_eq!(
        unknown.text(),
        None,
        "no message field: an envelope of another shape"
    );
    let nothing: ErrorBody = serde_json::from_str(r#"{"errors":[]}"#).unwrap();
    assert_eq!(nothing.text(), None);
    assert_eq!(nothing.id, None);
    // Plain text is not JSON: the client keeps it as the message (see `client::transport`).
    assert!(serde_json::from_str::<ErrorBody>("Exception in saving token.").is_err());
}

#[test]
fn answers_with_unknown_fields_and_odd_ids_parse() {
    let job: CreateJobResponse = serde_json::from_str(
        r#"{"jobId":"j-1","jobDefinition":{"flow":"CONFLUENCE-ONPREMISES-TO-CLOUD","source":{"serverId":42},"scope":{"spaces":{"includedData":"ALL"},"usersAndGroups":{"mode":"all"},"globalEntities":{"includedTypes":["GLOBAL_PAGE_TEMPLATES"]},"jsm":{"anything":1}},"future":"x"}}"#,
    )
    .unwrap();
    let definition = job.job_definition.unwrap();
    assert_eq!(definition.flow, Flow::Confluence);
    assert_eq!(definition.source.server_id, "42");
    assert_eq!(definition.name, "");
    assert_eq!(
        definition.scope.users_and_groups.unwrap().mode,
        UsersMode::All
    );
    assert_eq!(definition.scope.jsm, Some(json!({"anything": 1})));
    let flat: GetJobResponse = serde_json::from_str(
        r#"{"jobId":"j-1","name":"n","flow":"jira-onpremises-to-cloud","destination":{"url":"https://a.atlassian.net"}}"#,
    )
    .unwrap();
    assert_eq!(flat.job_id.as_deref(), Some("j-1"));
    assert_eq!(flat.definition.destination.url, "https://a.atlassian.net");
    let token: TokenResponse = serde_json::from_str(r#"{"token":"t-1"}"#).unwrap();
    assert_eq!(token.token.expose(), "t-1");
    assert!(!format!("{token:?}").contains("t-1"));
    let saved: SaveTokenResponse = serde_json::from_str("{}").unwrap();
    assert_eq!(saved, SaveTokenResponse::default());
}

#[test]
fn requests_are_sent_in_the_published_casing() {
    assert_eq!(
        serde_json::to_value(CreateTaskRequest::check()).unwrap(),
        json!({"task": "Check"})
    );
    assert_eq!(
        serde_json::to_value(CreateTaskRequest::migrate(&[])).unwrap(),
        json!({"task": "Migrate"})
    );
    assert_eq!(
        serde_json::to_value(CreateTaskRequest::migrate(&["AnonPermission".into()])).unwrap(),
        json!({"task": "Migrate", "options": {"checkTypes": {"excludeKeys": ["AnonPermission"]}}})
    );
    let definition = JobDefinition {
        flow: Flow::Confluence,
        name: "cmafleet wiki".into(),
        source: Source {
            server_id: "RMJK-8WAW-JKMI-CNOY".into(),
        },
        destination: Destination {
            url: "https://acme.atlassian.net".into(),
        },
        scope: Scope {
            spaces: Some(KeyScope {
                included_keys: None,
                included_data: IncludedData::All,
            }),
            users_and_groups: Some(UsersAndGroups {
                mode: UsersMode::All,
            }),
            apps: Some(AppsScope {
                included_keys: vec!["com.example.app".into()],
            }),
            global_entities: Some(GlobalEntities {
                included_types: vec!["GLOBAL_PAGE_TEMPLATES".into()],
            }),
            ..Scope::default()
        },
    };
    assert_eq!(
        serde_json::to_value(&definition).unwrap(),
        json!({
            "flow": "confluence-onpremises-to-cloud",
            "name": "cmafleet wiki",
            "source": {"serverId": "RMJK-8WAW-JKMI-CNOY"},
            "destination": {"url": "https://acme.atlassian.net"},
            "scope": {
                "spaces": {"includedData": "all"},
                "usersAndGroups": {"mode": "ALL"},
                "apps": {"includedKeys": ["com.example.app"]},
                "globalEntities": {"includedTypes": ["GLOBAL_PAGE_TEMPLATES"]}
            }
        })
    );
    let task = Task {
        task_id: "t".into(),
        task_type: TaskKind::Migrate,
        created_at: None,
        payload: None,
        results: None,
    };
    assert_eq!(
        serde_json::to_value(&task).unwrap(),
        json!({"taskId": "t", "taskType": "migrate"})
    );
}

#[test]
fn task_lists_keep_every_readable_task() {
    let list: TaskList = serde_json::from_str(
        r#"{"data":[
            {"taskId":"t3","taskType":"migrate","results":"pending"},
            {"taskType":"check"},
            "garbage",
            {"taskId":42},
            {"taskId":"t1","taskType":7,"createdAt":"2023-11-14T22:13:20Z","results":{"artifacts":[{"location":"/a"}]}}
        ]}"#,
    )
    .unwrap();
    let ids: Vec<&str> = list.data.iter().map(|t| t.task_id.as_str()).collect();
    assert_eq!(ids, ["t3", "42", "t1"]);
    assert_eq!(list.data[0].task_type, TaskKind::Migrate);
    assert_eq!(list.data[0].results, None);
    assert_eq!(list.data[1].task_type, TaskKind::Unknown(String::new()));
    assert_eq!(list.data[2].task_type, TaskKind::Unknown(String::new()));
    assert_eq!(
        list.data[2].results.as_ref().unwrap().artifacts[0].location,
        "/a"
    );
    assert!(
        serde_json::from_str::<TaskList>(r#"{"data":{"not":"a list"}}"#)
            .unwrap()
            .data
            .is_empty()
    );
}

#[test]
fn a_node_with_an_outcome_has_ended_whatever_its_status_says() {
    let stopped: StatusNode = serde_json::from_str(
        r#"{"status":"STOPPED","outcome":"FAILED","message":"The migration was stopped."}"#,
    )
    .unwrap();
    assert!(stopped.is_finished());
    assert_eq!(
        stopped.odd_ending().as_deref(),
        Some("status STOPPED, outcome FAILED: The migration was stopped.")
    );
    let completed: StatusNode =
        serde_json::from_str(r#"{"status":"completed","outcome":"success"}"#).unwrap();
    assert!(completed.is_finished());
    assert_eq!(completed.odd_ending(), None, "judged by its outcome");
    let running: StatusNode = serde_json::from_str(r#"{"status":"RUNNING"}"#).unwrap();
    assert!(
        !running.is_finished(),
        "an unknown status without an outcome runs on"
    );
    assert_eq!(running.odd_ending(), None);
    let documented: StatusNode =
        serde_json::from_str(r#"{"status":"FINISHED","outcome":"FAILED"}"#).unwrap();
    assert_eq!(documented.odd_ending(), None);
}
