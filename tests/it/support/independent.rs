//! A second reading of the CMA migration API (`docs/api.md`), written from the
//! public docs alone and sharing no code with `cmafleet::sim`: the cloud's jobs, tasks and
//! status trees and the servers' attach, served on a loopback port over HTTP/1.1 only, with
//! every answer's JSON written by hand in the documented shapes. Tests configure how each
//! source server behaves and assert on what it received.

// Shared by several tests of the one test binary; not every test uses every knob.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::fleet::{CLOUD_TOKEN, SERVER_PASSWORD, SERVER_PAT};

const CLOUD: &str = "/migrations/public/v1";
/// Tasks in one page of a task list, as documented.
const PAGE: usize = 20;
/// The documented limit of a create-job body.
const MAX_JOB_BODY: usize = 390 * 1024;

/// What the pre-migration checks of a server find, in Check and Migrate tasks alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    Pass,
    /// `AnonPermission` ends WARNING (excludable).
    Warning,
    /// `MissingAttachments` ends FAILED (not excludable, so no override helps).
    Failed,
}

/// How the data phase of a server's Migrate tasks ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migration {
    Success,
    /// The first scope ends FINISHED/FAILED with a message; the others succeed.
    ScopeFailed,
    /// After the first scope, the root and the `migrate` level end with the status `STOPPED`
    /// (not in the documented set) and the outcome `FAILED`.
    Stopped,
}

/// How task lists and single tasks spell `taskType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskTypes {
    /// `check` / `migrate`, as the docs show.
    Documented,
    /// `PREFLIGHT` / `MIGRATION`: a spelling the docs do not rule out.
    PreflightMigration,
}

/// How one source server (and the CMA on it) behaves.
#[derive(Debug, Clone)]
pub struct ServerBehaviour {
    pub checks: Checks,
    pub migration: Migration,
    pub task_types: TaskTypes,
    /// The first this-many task creates on the server's jobs make the task and then close the
    /// connection without an answer (an outcome the client cannot know).
    pub lost_create_answers: u32,
    /// How long a new task stays PENDING before the CMA picks it up.
    pub pickup: Duration,
    /// How long the checks run (each check finishes at its share of it).
    pub checks_take: Duration,
    /// How long the data phase runs (scopes one after another, each an equal share).
    pub migration_takes: Duration,
}

impl Default for ServerBehaviour {
    fn default() -> ServerBehaviour {
        ServerBehaviour {
            checks: Checks::Pass,
            migration: Migration::Success,
            task_types: TaskTypes::Documented,
            lost_create_answers: 0,
            pickup: Duration::from_millis(50),
            checks_take: Duration::from_millis(300),
            migration_takes: Duration::from_millis(600),
        }
    }
}

impl ServerBehaviour {
    pub fn checks(self, checks: Checks) -> ServerBehaviour {
        ServerBehaviour { checks, ..self }
    }

    pub fn migration(self, migration: Migration) -> ServerBehaviour {
        ServerBehaviour { migration, ..self }
    }

    pub fn task_types(self, task_types: TaskTypes) -> ServerBehaviour {
        ServerBehaviour { task_types, ..self }
    }

    pub fn lose_create_answers(self, count: u32) -> ServerBehaviour {
        ServerBehaviour {
            lost_create_answers: count,
            ..self
        }
    }
}

/// The whole API's configuration: credentials it accepts and each server's behaviour.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The cloud API token any email must present (HTTP Basic).
    pub cloud_token: String,
    /// The servers' personal access token (Bearer).
    pub server_pat: String,
    /// The servers' password (HTTP Basic, any user name).
    pub server_password: String,
    /// Behaviour by server name (which is also its Server ID).
    pub servers: BTreeMap<String, ServerBehaviour>,
    /// Behaviour of a server not listed.
    pub other_servers: ServerBehaviour,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            cloud_token: CLOUD_TOKEN.to_owned(),
            server_pat: SERVER_PAT.to_owned(),
            server_password: SERVER_PASSWORD.to_owned(),
            servers: BTreeMap::new(),
            other_servers: ServerBehaviour::default(),
        }
    }
}

impl ApiConfig {
    pub fn server(mut self, name: &str, behaviour: ServerBehaviour) -> ApiConfig {
        self.servers.insert(name.to_owned(), behaviour);
        self
    }

    fn behaviour(&self, server: &str) -> &ServerBehaviour {
        self.servers.get(server).unwrap_or(&self.other_servers)
    }
}

/// What the API received, for assertions.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// Jobs created, by Server ID.
    pub job_creates: BTreeMap<String, u64>,
    /// Tasks created, by Server ID, then by the `task` sent (`Check`, `Migrate`).
    pub task_creates: BTreeMap<String, BTreeMap<String, u64>>,
    /// Task creates answered by closing the connection, by Server ID.
    pub answers_lost: BTreeMap<String, u64>,
    /// Successful attaches, by server name.
    pub attaches: BTreeMap<String, u64>,
    /// Requests refused for their credentials.
    pub unauthorized: u64,
    /// `METHOD path` of every request outside the documented routes.
    pub unknown_routes: Vec<String>,
}

impl Received {
    /// Tasks of `kind` (`Check`, `Migrate`) created on `server`'s jobs.
    pub fn task_creates_of(&self, server: &str, kind: &str) -> u64 {
        self.task_creates
            .get(server)
            .and_then(|kinds| kinds.get(kind))
            .copied()
            .unwrap_or(0)
    }
}

/// One task as the API holds it (for assertions).
#[derive(Debug, Clone)]
pub struct TaskSeen {
    pub server: String,
    pub job_id: String,
    pub task_id: String,
    /// `Check` or `Migrate`, as sent.
    pub kind: String,
}

/// The running API; dropping it stops the listener and every connection.
pub struct IndependentApi {
    addr: SocketAddr,
    world: Arc<Mutex<World>>,
    shutdown: CancellationToken,
}

impl Drop for IndependentApi {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl IndependentApi {
    /// Serves `config` on 127.0.0.1 (a free port), HTTP/1.1 only.
    pub async fn start(config: ApiConfig) -> IndependentApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let world = Arc::new(Mutex::new(World {
            config,
            jobs: HashMap::new(),
            tasks: Vec::new(),
            attached: BTreeMap::new(),
            received: Received::default(),
        }));
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(listener, app(Arc::clone(&world)), shutdown.clone()));
        IndependentApi {
            addr,
            world,
            shutdown,
        }
    }

    /// `http://127.0.0.1:PORT`: the cloud API base and the root of every `/servers/{name}`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Received {
        lock(&self.world).received.clone()
    }

    /// Every task, in creation order.
    pub fn tasks(&self) -> Vec<TaskSeen> {
        lock(&self.world)
            .tasks
            .iter()
            .map(|task| TaskSeen {
                server: task.server.clone(),
                job_id: task.job_id.clone(),
                task_id: task.id.clone(),
                kind: task.kind.sent().to_owned(),
            })
            .collect()
    }
}

fn lock(world: &Mutex<World>) -> std::sync::MutexGuard<'_, World> {
    world.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accepts connections until `shutdown`, each served by hyper's HTTP/1.1 connection alone (an
/// HTTP/2 preface is a protocol error). A handler cuts its connection through the
/// [`ConnectionCut`] in its request's extensions.
async fn serve(listener: tokio::net::TcpListener, app: Router, shutdown: CancellationToken) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            () = shutdown.cancelled() => return,
        };
        let app = app.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let cut = ConnectionCut(CancellationToken::new());
            let service = {
                let cut = cut.clone();
                hyper::service::service_fn(
                    move |mut request: hyper::Request<hyper::body::Incoming>| {
                        request.extensions_mut().insert(cut.clone());
                        app.clone().oneshot(request)
                    },
                )
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            // Dropping the connection closes the socket, with or without an answer.
            tokio::select! {
                _ = connection => {}
                () = cut.0.cancelled() => {}
                () = shutdown.cancelled() => {}
            }
        });
    }
}

/// Closes the request's connection without an answer.
#[derive(Clone)]
struct ConnectionCut(CancellationToken);

type Shared = Arc<Mutex<World>>;

fn app(world: Shared) -> Router {
    Router::new()
        .route(&format!("{CLOUD}/jobs"), post(create_job))
        .route(&format!("{CLOUD}/jobs/{{job}}"), get(get_job))
        .route(
            &format!("{CLOUD}/jobs/{{job}}/tasks"),
            post(create_task).get(list_tasks),
        )
        .route(
            &format!("{CLOUD}/jobs/{{job}}/tasks/{{task}}"),
            get(get_task),
        )
        .route(
            &format!("{CLOUD}/jobs/{{job}}/tasks/{{task}}/status"),
            get(task_status),
        )
        .route(
            "/servers/{server}/rest/migration/latest/public/v1/attach",
            post(attach),
        )
        .fallback(unknown_route)
        .with_state(world)
}

/// Jobs, tasks and attachments: the API's whole state.
struct World {
    config: ApiConfig,
    jobs: HashMap<String, Job>,
    /// In creation order.
    tasks: Vec<Task>,
    /// Cloud URLs attached on each server (normalised), by server name.
    attached: BTreeMap<String, BTreeSet<String>>,
    received: Received,
}

struct Job {
    /// The body of the create call, echoed by the API.
    definition: Value,
    /// `source.serverId`: which server's CMA runs the job's tasks.
    server: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskKind {
    Check,
    Migrate,
}

impl TaskKind {
    fn sent(self) -> &'static str {
        match self {
            TaskKind::Check => "Check",
            TaskKind::Migrate => "Migrate",
        }
    }

    fn listed(self, spelling: TaskTypes) -> &'static str {
        match (self, spelling) {
            (TaskKind::Check, TaskTypes::Documented) => "check",
            (TaskKind::Migrate, TaskTypes::Documented) => "migrate",
            (TaskKind::Check, TaskTypes::PreflightMigration) => "PREFLIGHT",
            (TaskKind::Migrate, TaskTypes::PreflightMigration) => "MIGRATION",
        }
    }
}

struct Task {
    id: String,
    job_id: String,
    server: String,
    kind: TaskKind,
    /// The `options` sent (`{}` when none).
    payload: Value,
    created: Instant,
    created_at: chrono::DateTime<chrono::Utc>,
    /// Whether the job's cloud URL was attached on its server when the task was created.
    attached: bool,
    /// The job's scope keys, in the order the data phase runs them.
    scopes: Vec<String>,
    /// The server's behaviour when the task was created.
    behaviour: ServerBehaviour,
}

impl Task {
    fn json(&self) -> Value {
        json!({
            "taskId": self.id,
            "taskType": self.kind.listed(self.behaviour.task_types),
            "createdAt": self.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "payload": self.payload,
            "results": { "artifacts": [] },
        })
    }
}

/// An error answer: JSON `{status, errorMessage, id}` from the cloud, plain text from a server.
struct ApiError {
    status: StatusCode,
    message: String,
    plain_text: bool,
}

impl ApiError {
    fn cloud(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            plain_text: false,
        }
    }

    fn server(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            plain_text: true,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.plain_text {
            return (self.status, self.message).into_response();
        }
        let body = json!({
            "status": self.status.as_u16(),
            "errorMessage": self.message,
            "id": uuid::Uuid::new_v4().to_string(),
        });
        (self.status, Json(body)).into_response()
    }
}

type Answer = Result<Json<Value>, ApiError>;

/// Refuses a cloud call without HTTP Basic `email:token` and the right token.
fn cloud_auth(world: &mut World, headers: &HeaderMap) -> Result<(), ApiError> {
    let valid = basic_credentials(headers)
        .is_some_and(|(email, token)| email.contains('@') && token == world.config.cloud_token);
    if valid {
        return Ok(());
    }
    world.received.unauthorized += 1;
    Err(ApiError::cloud(
        StatusCode::UNAUTHORIZED,
        "Client must be authenticated to access this resource.",
    ))
}

/// Refuses a server call without the server's Bearer token or Basic password.
fn server_auth(world: &mut World, headers: &HeaderMap) -> Result<(), ApiError> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let bearer = header.strip_prefix("Bearer ") == Some(world.config.server_pat.as_str());
    let basic = basic_credentials(headers)
        .is_some_and(|(_, password)| password == world.config.server_password);
    if bearer || basic {
        return Ok(());
    }
    world.received.unauthorized += 1;
    Err(ApiError::server(
        StatusCode::UNAUTHORIZED,
        "You are not authenticated.",
    ))
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, secret) = text.split_once(':')?;
    Some((user.to_owned(), secret.to_owned()))
}

/// A POST must say `Content-Type: application/json` (as Atlassian's XSRF check demands).
fn json_content(
    headers: &HeaderMap,
    error: fn(StatusCode, String) -> ApiError,
) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/json") {
        return Ok(());
    }
    Err(error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("Content-Type must be application/json, not `{content_type}`."),
    ))
}

fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|error| {
        ApiError::cloud(StatusCode::BAD_REQUEST, format!("Malformed JSON: {error}"))
    })
}

fn normalised_url(url: &str) -> String {
    url.trim_end_matches('/').to_ascii_lowercase()
}

async fn create_job(State(world): State<Shared>, headers: HeaderMap, body: Bytes) -> Answer {
    let mut world = lock(&world);
    cloud_auth(&mut world, &headers)?;
    json_content(&headers, ApiError::cloud)?;
    if body.len() > MAX_JOB_BODY {
        return Err(ApiError::cloud(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The job definition exceeds 390 KB.",
        ));
    }
    let definition = json_body(&body)?;
    let invalid =
        |what: &str| ApiError::cloud(StatusCode::BAD_REQUEST, format!("Invalid job: {what}."));
    let flow = definition["flow"].as_str().unwrap_or_default();
    if !matches!(
        flow,
        "jira-onpremises-to-cloud" | "confluence-onpremises-to-cloud"
    ) {
        return Err(invalid(
            "`flow` must be jira- or confluence-onpremises-to-cloud",
        ));
    }
    if !definition["name"].is_string() {
        return Err(invalid("`name` is required"));
    }
    let server = definition["source"]["serverId"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| invalid("`source.serverId` is required"))?
        .to_owned();
    if definition["destination"]["url"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return Err(invalid("`destination.url` is required"));
    }
    if definition["scope"]
        .as_object()
        .is_none_or(serde_json::Map::is_empty)
    {
        return Err(invalid("`scope` must name at least one scope"));
    }
    let job_id = uuid::Uuid::new_v4().to_string();
    *world
        .received
        .job_creates
        .entry(server.clone())
        .or_default() += 1;
    world.jobs.insert(
        job_id.clone(),
        Job {
            definition: definition.clone(),
            server,
        },
    );
    Ok(Json(
        json!({ "jobId": job_id, "jobDefinition": definition }),
    ))
}

async fn get_job(
    State(world): State<Shared>,
    headers: HeaderMap,
    Path(job): Path<String>,
) -> Answer {
    let mut world = lock(&world);
    cloud_auth(&mut world, &headers)?;
    let job = world.jobs.get(&job).ok_or_else(no_job)?;
    Ok(Json(job.definition.clone()))
}

fn no_job() -> ApiError {
    ApiError::cloud(StatusCode::NOT_FOUND, "Job not found.")
}

fn no_task() -> ApiError {
    ApiError::cloud(StatusCode::NOT_FOUND, "Task not found.")
}

/// Makes the task; its answer may be lost on purpose (see [`ServerBehaviour`]).
async fn create_task(
    State(world): State<Shared>,
    Extension(cut): Extension<ConnectionCut>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
    body: Bytes,
) -> Response {
    let made = make_task(&world, &headers, &job_id, &body);
    match made {
        Ok((_, true)) => {
            cut.0.cancel();
            std::future::pending().await
        }
        Ok((task_id, false)) => Json(json!({ "taskId": task_id })).into_response(),
        Err(error) => error.into_response(),
    }
}

/// The new task's id and whether its answer is to be lost.
fn make_task(
    world: &Shared,
    headers: &HeaderMap,
    job_id: &str,
    body: &Bytes,
) -> Result<(String, bool), ApiError> {
    let mut world = lock(world);
    cloud_auth(&mut world, headers)?;
    json_content(headers, ApiError::cloud)?;
    let request = json_body(body)?;
    let kind = match request["task"].as_str() {
        Some("Check") => TaskKind::Check,
        Some("Migrate") => TaskKind::Migrate,
        other => {
            return Err(ApiError::cloud(
                StatusCode::BAD_REQUEST,
                format!("`task` must be Check or Migrate, not {other:?}."),
            ));
        }
    };
    let options = request.get("options").cloned().unwrap_or_else(|| json!({}));
    if !options.is_object() {
        return Err(ApiError::cloud(
            StatusCode::BAD_REQUEST,
            "`options` must be an object.",
        ));
    }
    let job = world.jobs.get(job_id).ok_or_else(no_job)?;
    let server = job.server.clone();
    let destination = normalised_url(
        job.definition["destination"]["url"]
            .as_str()
            .unwrap_or_default(),
    );
    let scopes = scope_order(&job.definition);
    let attached = world
        .attached
        .get(&server)
        .is_some_and(|urls| urls.contains(&destination));
    let behaviour = world.config.behaviour(&server).clone();
    let id = uuid::Uuid::new_v4().to_string();
    world.tasks.push(Task {
        id: id.clone(),
        job_id: job_id.to_owned(),
        server: server.clone(),
        kind,
        payload: options,
        created: Instant::now(),
        created_at: chrono::Utc::now(),
        attached,
        scopes,
        behaviour: behaviour.clone(),
    });
    let received = &mut world.received;
    *received
        .task_creates
        .entry(server.clone())
        .or_default()
        .entry(kind.sent().to_owned())
        .or_default() += 1;
    let lost = received.answers_lost.entry(server).or_default();
    let lose = *lost < u64::from(behaviour.lost_create_answers);
    if lose {
        *lost += 1;
    }
    Ok((id, lose))
}

/// The job's scope keys in the order the docs list them (others after, by name).
fn scope_order(definition: &Value) -> Vec<String> {
    const ORDER: [&str; 8] = [
        "projects",
        "spaces",
        "usersAndGroups",
        "jsm",
        "ar",
        "globalEntities",
        "apps",
        "arapps",
    ];
    let keys: Vec<String> = definition["scope"]
        .as_object()
        .map(|scope| scope.keys().cloned().collect())
        .unwrap_or_default();
    let rank = |key: &String| {
        ORDER
            .iter()
            .position(|known| known == key)
            .unwrap_or(ORDER.len())
    };
    let mut ordered = keys;
    ordered.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    ordered
}

async fn list_tasks(
    State(world): State<Shared>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer {
    let mut world = lock(&world);
    cloud_auth(&mut world, &headers)?;
    world.jobs.get(&job_id).ok_or_else(no_job)?;
    let newest_first: Vec<Value> = world
        .tasks
        .iter()
        .rev()
        .filter(|task| task.job_id == job_id)
        .map(Task::json)
        .collect();
    let start: usize = match query.get("cursor").map(String::as_str) {
        None | Some("") => 0,
        Some(cursor) => cursor
            .parse()
            .map_err(|_| ApiError::cloud(StatusCode::BAD_REQUEST, "Invalid cursor."))?,
    };
    let page: Vec<Value> = newest_first
        .iter()
        .skip(start)
        .take(PAGE)
        .cloned()
        .collect();
    let path = format!("{CLOUD}/jobs/{job_id}/tasks");
    let mut links = json!({ "self": format!("{path}?cursor={start}") });
    if start + PAGE < newest_first.len() {
        links["next"] = json!(format!("{path}?cursor={}", start + PAGE));
    }
    Ok(Json(json!({ "data": page, "links": links })))
}

async fn get_task(
    State(world): State<Shared>,
    headers: HeaderMap,
    Path((job_id, task_id)): Path<(String, String)>,
) -> Answer {
    let mut world = lock(&world);
    cloud_auth(&mut world, &headers)?;
    world.jobs.get(&job_id).ok_or_else(no_job)?;
    let task = world
        .tasks
        .iter()
        .find(|task| task.id == task_id && task.job_id == job_id)
        .ok_or_else(no_task)?;
    Ok(Json(task.json()))
}

async fn task_status(
    State(world): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Path((job_id, task_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer {
    let mut world = lock(&world);
    cloud_auth(&mut world, &headers)?;
    world.jobs.get(&job_id).ok_or_else(no_job)?;
    let task = world
        .tasks
        .iter()
        .find(|task| task.id == task_id && task.job_id == job_id)
        .ok_or_else(no_task)?;
    let tree = status_tree(task, task.created.elapsed());
    let level = query.get("level").map(String::as_str).unwrap_or_default();
    let mut node = select_level(task.kind, &tree, level).ok_or_else(|| {
        ApiError::cloud(
            StatusCode::NOT_FOUND,
            format!("No status at level `{level}` yet."),
        )
    })?;
    if query.get("expandChildren").map(String::as_str) != Some("true")
        && let Some(node) = node.as_object_mut()
    {
        node.remove("children");
    }
    let link = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), ToString::to_string);
    Ok(Json(json!({ "data": node, "links": { "self": link } })))
}

/// The node at `level` (empty: the root). A Check task's tree *is* its check subtree, so
/// `level=check` there is the root; `check,{Name}` is one check.
fn select_level(kind: TaskKind, root: &Value, level: &str) -> Option<Value> {
    let mut parts = level.split(',').map(str::trim);
    let node = match (kind, parts.next().unwrap_or_default()) {
        (_, "") => return Some(root.clone()),
        (TaskKind::Check, "check") => root.get("children").map(|_| root)?,
        (TaskKind::Migrate, "check") => root.get("children")?.get("check")?,
        (TaskKind::Migrate, "migrate") => root.get("children")?.get("migrate")?,
        _ => return None,
    };
    match parts.next() {
        None => Some(node.clone()),
        Some(child) => node.get("children")?.get(child).cloned(),
    }
}

/// The full status tree of `task`, `elapsed` after its creation: a pure function of time.
fn status_tree(task: &Task, elapsed: Duration) -> Value {
    let behaviour = &task.behaviour;
    if elapsed < behaviour.pickup {
        return json!({
            "status": "PENDING",
            "message": "Waiting for the Cloud Migration Assistant to pick up the task.",
        });
    }
    if !task.attached {
        let refused = json!({
            "status": "FINISHED",
            "outcome": "FAILED",
            "message": "The cloud URL is not attached through the Cloud Migration Assistant, or the Server ID is incorrect.",
        });
        let mut root = refused.clone();
        root["children"] = match task.kind {
            TaskKind::Check => json!({}),
            TaskKind::Migrate => json!({ "check": refused, "migrate": skipped() }),
        };
        return root;
    }
    let since_pickup = elapsed - behaviour.pickup;
    let checks = check_node(task, since_pickup);
    if task.kind == TaskKind::Check {
        return checks;
    }
    let mut root = json!({ "status": "IN_PROGRESS", "message": "Preflight checks are running" });
    let Some(since_checks) = since_pickup.checked_sub(behaviour.checks_take) else {
        root["children"] = json!({ "check": checks });
        return root;
    };
    if checks["outcome"] == "FAILED" {
        root = json!({ "status": "FINISHED", "outcome": "FAILED", "message": checks["message"] });
        root["children"] = json!({ "check": checks, "migrate": skipped() });
        return root;
    }
    let migrate = migrate_node(task, since_checks);
    root = match migrate.get("outcome").and_then(Value::as_str) {
        None => json!({ "status": "IN_PROGRESS", "message": "Migration is in progress." }),
        Some("SUCCESS") => {
            json!({ "status": "FINISHED", "outcome": "SUCCESS", "message": "Migration complete." })
        }
        Some(_) => json!({
            "status": migrate["status"],
            "outcome": "FAILED",
            "message": migrate["message"],
        }),
    };
    root["children"] = json!({ "check": checks, "migrate": migrate });
    root
}

fn skipped() -> Value {
    json!({
        "status": "FINISHED",
        "outcome": "SKIPPED",
        "message": "The migration did not start.",
    })
}

/// One pre-migration check as the server finds it.
struct CheckFinding {
    name: &'static str,
    outcome: &'static str,
    excludable: bool,
    occurrences: &'static [&'static str],
}

fn findings(checks: Checks) -> Vec<CheckFinding> {
    let passed = |name| CheckFinding {
        name,
        outcome: "SUCCESS",
        excludable: false,
        occurrences: &[],
    };
    let mut all = vec![
        passed("CloudFreeUserLimit"),
        passed("AnonPermission"),
        passed("MissingAttachments"),
    ];
    match checks {
        Checks::Pass => {}
        Checks::Warning => {
            all[1] = CheckFinding {
                name: "AnonPermission",
                outcome: "WARNING",
                excludable: true,
                occurrences: &["Project ABC can be browsed by anonymous users"],
            };
        }
        Checks::Failed => {
            all[2] = CheckFinding {
                name: "MissingAttachments",
                outcome: "FAILED",
                excludable: false,
                occurrences: &["ABC-12: attachment file missing on disk"],
            };
        }
    }
    all
}

/// The checks' subtree, `since` the CMA picked the task up: each check finishes at its share
/// of `checks_take`. `includeKeys`/`excludeKeys` choose the checks of a Check task; on a
/// Migrate task `excludeKeys` turns an excludable failure into a warning.
fn check_node(task: &Task, since: Duration) -> Value {
    let keys = |name: &str| -> Option<Vec<String>> {
        task.payload["checkTypes"][name].as_array().map(|keys| {
            keys.iter()
                .filter_map(|key| key.as_str().map(str::to_owned))
                .collect()
        })
    };
    let (include, exclude) = (keys("includeKeys"), keys("excludeKeys").unwrap_or_default());
    let excluded = |name: &str| exclude.iter().any(|key| key == name);
    let chosen: Vec<CheckFinding> = findings(task.behaviour.checks)
        .into_iter()
        .filter(|check| match task.kind {
            TaskKind::Check => {
                include
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|key| key == check.name))
                    && !excluded(check.name)
            }
            TaskKind::Migrate => true,
        })
        .collect();
    let count = chosen.len().max(1) as u32;
    let mut children = serde_json::Map::new();
    let mut worst = "SUCCESS";
    for (index, check) in chosen.iter().enumerate() {
        let done_at = task.behaviour.checks_take * (index as u32 + 1) / count;
        let node = if since < done_at {
            json!({ "status": "IN_PROGRESS", "message": "The check is running." })
        } else {
            let overridden = task.kind == TaskKind::Migrate
                && check.outcome == "FAILED"
                && check.excludable
                && excluded(check.name);
            let outcome = if overridden { "WARNING" } else { check.outcome };
            worst = match (worst, outcome) {
                ("FAILED", _) | (_, "FAILED") => "FAILED",
                ("WARNING", _) | (_, "WARNING") => "WARNING",
                _ => "SUCCESS",
            };
            json!({
                "status": "FINISHED",
                "outcome": outcome,
                "message": format!("{} check finished.", check.name),
                "details": {
                    "occurrences": check.occurrences,
                    "excludable": check.excludable,
                    "description": format!("What the {} check looks for.", check.name),
                },
            })
        };
        children.insert(check.name.to_owned(), node);
    }
    let mut node = if since < task.behaviour.checks_take {
        json!({ "status": "IN_PROGRESS", "message": "Preflight checks are running" })
    } else {
        let message = match worst {
            "SUCCESS" => "All Preflight checks have passed.",
            "WARNING" => "All Preflight checks have passed with warning.",
            _ => "At least one Preflight check has failed.",
        };
        json!({ "status": "FINISHED", "outcome": worst, "message": message })
    };
    node["children"] = Value::Object(children);
    node
}

/// The data subtree, `since` the checks passed: scopes run one after another, each appearing
/// when it starts. A stopped migration stops when its first scope ends.
fn migrate_node(task: &Task, since: Duration) -> Value {
    let behaviour = &task.behaviour;
    let count = task.scopes.len().max(1) as u32;
    let share = behaviour.migration_takes / count;
    let stop_at = (behaviour.migration == Migration::Stopped).then_some(share);
    let now = stop_at.map_or(since, |stop| since.min(stop));
    let mut children = serde_json::Map::new();
    for (index, scope) in task.scopes.iter().enumerate() {
        let starts = share * index as u32;
        if now < starts || stop_at.is_some_and(|stop| starts >= stop) {
            break;
        }
        let node = if now < starts + share {
            let percent = ((now - starts).as_millis() * 100 / share.as_millis().max(1)) as u64;
            json!({
                "status": "IN_PROGRESS",
                "message": "Migrating.",
                "progressDetails": { "isSupported": true, "percent": percent },
            })
        } else if index == 0 && behaviour.migration == Migration::ScopeFailed {
            json!({ "status": "FINISHED", "outcome": "FAILED", "message": "12 issues could not be imported." })
        } else {
            json!({ "status": "FINISHED", "outcome": "SUCCESS", "message": "Migrated." })
        };
        children.insert(scope.clone(), node);
    }
    let mut node = match stop_at {
        Some(stop) if since >= stop => json!({
            "status": "STOPPED",
            "outcome": "FAILED",
            "message": "The migration was stopped and cannot be resumed.",
        }),
        _ if since < behaviour.migration_takes => {
            json!({ "status": "IN_PROGRESS", "message": "Migration is in progress." })
        }
        _ if behaviour.migration == Migration::ScopeFailed => json!({
            "status": "FINISHED",
            "outcome": "FAILED",
            "message": "The migration finished with errors.",
        }),
        _ => {
            json!({ "status": "FINISHED", "outcome": "SUCCESS", "message": "Migration complete." })
        }
    };
    node["children"] = Value::Object(children);
    node
}

/// Attaches a cloud URL on a server for 24 hours.
async fn attach(
    State(world): State<Shared>,
    headers: HeaderMap,
    Path(server): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer {
    let mut world = lock(&world);
    server_auth(&mut world, &headers)?;
    json_content(&headers, ApiError::server)?;
    let cloud_url = query
        .get("cloudUrl")
        .filter(|url| url.starts_with("http"))
        .ok_or_else(|| ApiError::server(StatusCode::BAD_REQUEST, "cloudUrl is required."))?
        .clone();
    world
        .attached
        .entry(server.clone())
        .or_default()
        .insert(normalised_url(&cloud_url));
    *world.received.attaches.entry(server).or_default() += 1;
    let expiry = chrono::Utc::now() + chrono::Duration::hours(24);
    Ok(Json(json!({
        "cloudUrl": cloud_url,
        "expiryTime": expiry.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })))
}

async fn unknown_route(State(world): State<Shared>, method: Method, uri: Uri) -> ApiError {
    lock(&world)
        .received
        .unknown_routes
        .push(format!("{method} {}", uri.path()));
    ApiError::cloud(StatusCode::NOT_FOUND, "No such endpoint.")
}
