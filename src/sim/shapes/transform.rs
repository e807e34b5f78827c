//! The pure functions that turn the simulator's canonical answers into the chosen shapes:
//! the structure of a status tree (where a Check task's checks hang, which scopes show,
//! whether children come unasked), the spelling of its `status`/`outcome` values, `taskType`
//! and `expireAt` in task answers, error bodies, and what a stand-in artifact answers.
//! Structural changes work on the rendered [`StatusNode`] (before a level is selected and
//! paged); spelling and task fields work on the answer's JSON.

use serde_json::{Value, json};

use crate::cma::wire::{StatusNode, TaskKind};

use super::points::{
    ArtifactAnswer, EnumCase, ErrorEnvelope, ExpireAt, StatusWords, TaskTypeShape,
};

/// What a stand-in artifact page says: a login form, as a browser-only URL answers.
const LOGIN_PAGE: &str = "<!DOCTYPE html><html><head><title>Log in to continue - Atlassian</title>\
</head><body><form method=\"post\" action=\"/login\"><input name=\"username\">\
<input name=\"password\" type=\"password\"><button>Log in</button></form></body></html>";

/// The `expireAt` of the `garbage` shape.
const GARBAGE_TIME: &str = "soon";

/// A Check task's checks become the root's children (its `check` child goes away).
pub(crate) fn checks_under_root(root: &mut StatusNode) {
    if let Some(check) = root.children.remove("check") {
        root.children = check.children;
    }
}

/// Keeps, under the `migrate` child of the root, only the scopes `started` names.
pub(crate) fn late_scopes(root: &mut StatusNode, started: impl Fn(&str) -> bool) {
    if let Some(migrate) = root.children.get_mut("migrate") {
        migrate.children.retain(|name, _| started(name));
    }
}

/// A canonical (upper-case) enum value in the chosen casing.
pub(crate) fn spell(canonical: &str, case: EnumCase) -> String {
    match case {
        EnumCase::Upper => canonical.to_ascii_uppercase(),
        EnumCase::Lower => canonical.to_ascii_lowercase(),
        EnumCase::Title => {
            let lower = canonical.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        }
    }
}

/// A canonical `status` in the chosen words and casing. Words other than the three
/// documented ones (`STOPPED`) keep their word.
pub(crate) fn status_word(canonical: &str, case: EnumCase, words: StatusWords) -> String {
    let word = match (words, canonical.to_ascii_uppercase().as_str()) {
        (StatusWords::Unknown, "PENDING") => "QUEUED",
        (StatusWords::Unknown, "IN_PROGRESS") => "RUNNING",
        (StatusWords::Unknown, "FINISHED") => "COMPLETED",
        _ => canonical,
    };
    spell(word, case)
}

/// Respells `status` and `outcome` of a node and of its children, recursively. Nothing
/// else (details, progress) is touched.
pub(crate) fn spell_tree(node: &mut Value, case: EnumCase, words: StatusWords) {
    let Some(map) = node.as_object_mut() else {
        return;
    };
    if let Some(Value::String(status)) = map.get_mut("status") {
        *status = status_word(status, case, words);
    }
    if let Some(Value::String(outcome)) = map.get_mut("outcome") {
        *outcome = spell(outcome, case);
    }
    if let Some(Value::Object(children)) = map.get_mut("children") {
        for child in children.values_mut() {
            spell_tree(child, case, words);
        }
    }
}

/// Sets (or removes) `taskType` of a task's JSON.
pub(crate) fn task_type(task: &mut Value, kind: &TaskKind, shape: TaskTypeShape) {
    let Some(map) = task.as_object_mut() else {
        return;
    };
    let migrate = *kind == TaskKind::Migrate;
    let word = match (shape, migrate) {
        (TaskTypeShape::Absent, _) => {
            map.remove("taskType");
            return;
        }
        (TaskTypeShape::Lower, false) => "check",
        (TaskTypeShape::Lower, true) => "migrate",
        (TaskTypeShape::Capitalised, false) => "Check",
        (TaskTypeShape::Capitalised, true) => "Migrate",
        (TaskTypeShape::Upper, false) => "CHECK",
        (TaskTypeShape::Upper, true) => "MIGRATE",
        (TaskTypeShape::Other, false) => "preflight",
        (TaskTypeShape::Other, true) => "migration",
    };
    map.insert("taskType".into(), json!(word));
}

/// Rewrites `expireAt` of every listed artifact of a task's JSON: `past` (a timestamp
/// already gone) or unparseable text; `future` leaves them.
pub(crate) fn expire_at(task: &mut Value, shape: ExpireAt, past: &str) {
    let value = match shape {
        ExpireAt::Future => return,
        ExpireAt::Past => past,
        ExpireAt::Garbage => GARBAGE_TIME,
    };
    let Some(artifacts) = task
        .pointer_mut("/results/artifacts")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for artifact in artifacts.iter_mut().filter_map(Value::as_object_mut) {
        artifact.insert("expireAt".into(), json!(value));
    }
}

/// The content type and body of a cloud-side error answer. The words are the same in
/// every envelope.
pub(crate) fn error_body(
    envelope: ErrorEnvelope,
    status: u16,
    message: &str,
    id: &str,
) -> (&'static str, String) {
    let body = match envelope {
        ErrorEnvelope::ErrorMessage => {
            json!({ "status": status, "errorMessage": message, "id": id })
        }
        ErrorEnvelope::Message => json!({ "message": message }),
        ErrorEnvelope::Errors => json!({ "errors": [{ "message": message }] }),
        ErrorEnvelope::Error => json!({ "error": { "message": message } }),
        ErrorEnvelope::Text => return ("text/plain; charset=utf-8", message.to_owned()),
    };
    ("application/json", body.to_string())
}

/// What an artifact location answers instead of the file (content type and body), or
/// `None` when it answers the file.
pub(crate) fn artifact_stand_in(
    answer: ArtifactAnswer,
    name: &str,
    download_url: &str,
) -> Option<(&'static str, String)> {
    match answer {
        ArtifactAnswer::File => None,
        ArtifactAnswer::Json => Some((
            "application/json",
            json!({ "name": name, "downloadUrl": download_url }).to_string(),
        )),
        ArtifactAnswer::Html => Some(("text/html; charset=utf-8", LOGIN_PAGE.to_owned())),
    }
}

/// Without `expandChildren`, children come without their own children.
pub(crate) fn collapse_grandchildren(node: &mut StatusNode) {
    for child in node.children.values_mut() {
        child.children.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_outcomes_are_respelled_everywhere_in_the_tree() {
        let canonical = json!({
            "status": "FINISHED", "outcome": "SUCCESS", "message": "keep ME",
            "details": { "status": "KEEP" },
            "children": {
                "check": { "status": "IN_PROGRESS" },
                "migrate": { "status": "STOPPED", "outcome": "FAILED",
                             "children": { "apps": { "status": "PENDING" } } }
            }
        });
        let spelled = |case, words| {
            let mut value = canonical.clone();
            spell_tree(&mut value, case, words);
            value
        };
        let lower = spelled(EnumCase::Lower, StatusWords::Documented);
        assert_eq!(lower["status"], "finished");
        assert_eq!(lower["outcome"], "success");
        assert_eq!(lower["message"], "keep ME");
        assert_eq!(lower["details"]["status"], "KEEP");
        assert_eq!(lower["children"]["check"]["status"], "in_progress");
        assert_eq!(lower["children"]["migrate"]["status"], "stopped");
        let title = spelled(EnumCase::Title, StatusWords::Documented);
        assert_eq!(title["children"]["check"]["status"], "In_progress");
        assert_eq!(title["outcome"], "Success");
        let unknown = spelled(EnumCase::Upper, StatusWords::Unknown);
        assert_eq!(unknown["status"], "COMPLETED");
        assert_eq!(unknown["outcome"], "SUCCESS");
        assert_eq!(unknown["children"]["check"]["status"], "RUNNING");
        assert_eq!(
            unknown["children"]["migrate"]["children"]["apps"]["status"],
            "QUEUED"
        );
        assert_eq!(unknown["children"]["migrate"]["status"], "STOPPED");
        let both = spelled(EnumCase::Lower, StatusWords::Unknown);
        assert_eq!(both["children"]["check"]["status"], "running");
        assert_eq!(spelled(EnumCase::Upper, StatusWords::Documented), canonical);
    }

    #[test]
    fn task_types_take_every_spelling_or_none() {
        let cases = [
            (TaskTypeShape::Lower, "check", "migrate"),
            (TaskTypeShape::Capitalised, "Check", "Migrate"),
            (TaskTypeShape::Upper, "CHECK", "MIGRATE"),
            (TaskTypeShape::Other, "preflight", "migration"),
        ];
        for (shape, check, migrate) in cases {
            let mut task = json!({ "taskId": "t", "taskType": "check" });
            task_type(&mut task, &TaskKind::Check, shape);
            assert_eq!(task["taskType"], check);
            task_type(&mut task, &TaskKind::Migrate, shape);
            assert_eq!(task["taskType"], migrate);
        }
        let mut task = json!({ "taskId": "t", "taskType": "check" });
        task_type(&mut task, &TaskKind::Check, TaskTypeShape::Absent);
        assert_eq!(task, json!({ "taskId": "t" }));
    }

    #[test]
    fn expire_at_is_future_past_or_garbage() {
        let task = json!({ "results": { "artifacts": [
            { "name": "a", "expireAt": "2099-01-01T00:00:00.000Z" },
            { "name": "b", "expireAt": "2099-01-01T00:00:00.000Z" }
        ] } });
        let shaped = |shape| {
            let mut value = task.clone();
            expire_at(&mut value, shape, "2001-01-01T00:00:00.000Z");
            value
        };
        assert_eq!(shaped(ExpireAt::Future), task);
        let past = shaped(ExpireAt::Past);
        assert_eq!(
            past["results"]["artifacts"][1]["expireAt"],
            "2001-01-01T00:00:00.000Z"
        );
        let garbage = shaped(ExpireAt::Garbage);
        assert_eq!(garbage["results"]["artifacts"][0]["expireAt"], "soon");
        let mut empty = json!({ "results": { "artifacts": [] } });
        expire_at(&mut empty, ExpireAt::Garbage, "x");
        assert_eq!(empty, json!({ "results": { "artifacts": [] } }));
    }

    #[test]
    fn error_bodies_keep_the_words_in_every_envelope() {
        let body = |envelope| error_body(envelope, 404, "job j not found", "00ab");
        let parsed = |envelope| -> Value { serde_json::from_str(&body(envelope).1).unwrap() };
        assert_eq!(
            parsed(ErrorEnvelope::ErrorMessage),
            json!({ "status": 404, "errorMessage": "job j not found", "id": "00ab" })
        );
        assert_eq!(
            parsed(ErrorEnvelope::Message),
            json!({ "message": "job j not found" })
        );
        assert_eq!(
            parsed(ErrorEnvelope::Errors),
            json!({ "errors": [{ "message": "job j not found" }] })
        );
        assert_eq!(
            parsed(ErrorEnvelope::Error),
            json!({ "error": { "message": "job j not found" } })
        );
        assert_eq!(body(ErrorEnvelope::ErrorMessage).0, "application/json");
        assert_eq!(
            body(ErrorEnvelope::Text),
            ("text/plain; charset=utf-8", "job j not found".to_owned())
        );
    }

    #[test]
    fn stand_in_artifacts_are_json_metadata_or_a_login_page() {
        assert_eq!(artifact_stand_in(ArtifactAnswer::File, "r.csv", "u"), None);
        let (kind, body) = artifact_stand_in(ArtifactAnswer::Json, "r.csv", "http://h/r").unwrap();
        assert_eq!(kind, "application/json");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({ "name": "r.csv", "downloadUrl": "http://h/r" })
        );
        let (kind, body) = artifact_stand_in(ArtifactAnswer::Html, "r.csv", "u").unwrap();
        assert!(kind.starts_with("text/html"));
        assert!(body.starts_with("<!DOCTYPE html>") && body.contains("Log in"));
    }
}
