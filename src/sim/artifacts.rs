//! Task artifacts: the reports a finished task lists under `results.artifacts`, their
//! content (rendered from the final, canonical status tree), and their download, which fails
//! with 410 once they expired, and which the `artifacts` shape may replace for the second
//! one by JSON metadata or a login page.

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::cma::wire::{Outcome, StatusNode, TaskKind};

use super::plan::TaskPlan;
use super::progress;
use super::shapes;
use super::shared::{AppState, Attribution, cloud_error, origin};

const CHECKS_REPORT: &str = "preflight-checks-report.csv";
const MIGRATION_REPORT: &str = "migration-report.csv";
const ERROR_LOG: &str = "error-log.txt";

/// The artifacts of a finished task.
pub(crate) fn names(plan: &TaskPlan) -> Vec<&'static str> {
    let mut names = vec![CHECKS_REPORT];
    if plan.kind == TaskKind::Migrate && !plan.blocked {
        names.push(MIGRATION_REPORT);
    }
    if plan.root_outcome() == Outcome::Failed {
        names.push(ERROR_LOG);
    }
    names
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn describe(node: &StatusNode) -> [String; 3] {
    [
        node.status
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        node.outcome
            .as_ref()
            .map(|o| o.to_string())
            .unwrap_or_default(),
        node.message.clone().unwrap_or_default(),
    ]
}

/// The content of an artifact, from the tree as it stands when the task finished.
fn content(plan: &TaskPlan, name: &str) -> String {
    let tree = progress::render(plan, plan.root_end(), false);
    let mut out = String::new();
    match name {
        CHECKS_REPORT => {
            out.push_str("check,status,outcome,excludable,occurrences,message\n");
            if let Some(level) = tree.children.get("check") {
                for (check, node) in &level.children {
                    let [status, outcome, message] = describe(node);
                    let details = node.details.clone().unwrap_or_default();
                    let row = [
                        check.clone(),
                        status,
                        outcome,
                        details.excludable.unwrap_or(false).to_string(),
                        details.occurrences.join("; "),
                        message,
                    ];
                    let row: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
                    out.push_str(&row.join(","));
                    out.push('\n');
                }
            }
        }
        MIGRATION_REPORT => {
            out.push_str("scope,status,outcome,message\n");
            if let Some(level) = tree.children.get("migrate") {
                for (scope, node) in &level.children {
                    let [status, outcome, message] = describe(node);
                    let row: Vec<String> = [scope.clone(), status, outcome, message]
                        .iter()
                        .map(|f| csv_field(f))
                        .collect();
                    out.push_str(&row.join(","));
                    out.push('\n');
                }
            }
        }
        _ => {
            let mut failed = Vec::new();
            collect_failures("", &tree, &mut failed);
            for line in failed {
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    out
}

fn collect_failures(path: &str, node: &StatusNode, out: &mut Vec<String>) {
    if node.outcome == Some(Outcome::Failed) && node.children.is_empty() {
        let name = if path.is_empty() { "task" } else { path };
        out.push(format!(
            "ERROR {name}: {}",
            node.message.as_deref().unwrap_or("failed")
        ));
    }
    for (name, child) in &node.children {
        let child_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}/{name}")
        };
        collect_failures(&child_path, child, out);
    }
}

/// `GET /_sim/artifacts/{taskId}/{name}`: 404 for an unknown artifact or a task not finished,
/// 410 once expired (errors in the cloud's error envelope). The second listed artifact
/// answers what the `artifacts` shape says (the file, JSON metadata or a login page) unless
/// asked with `?download=file`, the `downloadUrl` of its metadata.
pub(crate) async fn artifact(
    State(state): State<AppState>,
    Extension(who): Extension<Attribution>,
    Path((task_id, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let now = state.clock.now();
    let found = {
        let world = state.world();
        world.tasks.get(&task_id).map(|task| {
            if let Some(server) = &task.server {
                who.set(server);
            }
            (std::sync::Arc::clone(&task.plan), task.created_at)
        })
    };
    let Some((plan, created_at)) = found else {
        return cloud_error(&state, StatusCode::NOT_FOUND, "no such artifact");
    };
    let finished_at = created_at + state.clock.real(plan.root_end());
    let listed = names(&plan);
    let position = listed.iter().position(|listed| *listed == name);
    if now < finished_at || position.is_none() {
        return cloud_error(&state, StatusCode::NOT_FOUND, "no such artifact");
    }
    if now >= finished_at + state.clock.real(state.api.artifact_validity) {
        return cloud_error(&state, StatusCode::GONE, "this artifact has expired");
    }
    let direct = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .any(|(key, value)| key == "download" && value == "file");
    if position == Some(1) && !direct {
        let download_url = format!(
            "{}/_sim/artifacts/{task_id}/{name}?download=file",
            origin(&headers)
        );
        if let Some((kind, body)) =
            shapes::artifact_stand_in(state.api.shapes.artifacts, &name, &download_url)
        {
            return ([(header::CONTENT_TYPE, kind)], body).into_response();
        }
    }
    let kind = if name.ends_with(".csv") {
        "text/csv; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    ([(header::CONTENT_TYPE, kind)], content(&plan, &name)).into_response()
}
