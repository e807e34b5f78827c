//! What the simulator received, served as JSON by `GET /_sim/requests` so tests can assert
//! on it (e.g. that no task was created twice, or that a per-server cap held).
//!
//! Every map is ordered, so two runs of the same requests give byte-identical JSON. The
//! introspection routes (`/_sim/requests`, `/_sim/tasks`, `/_sim/clock`) are not counted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The counters. Deserialisable, so client tests can read them back typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounters {
    /// Every counted request, whatever its answer.
    pub total: u64,
    /// `"METHOD /route/{template}"` → status code (`"200"`, `"429"`, or `"dropped"` for a
    /// connection closed without an answer) → count.
    pub by_route: BTreeMap<String, BTreeMap<String, u64>>,
    /// Server name → what that server saw (cloud calls on its jobs count for it too).
    pub by_server: BTreeMap<String, ServerCounters>,
    pub task_creates: TaskCreates,
    /// Server ID → cloud URL (as sent) → jobs created.
    pub jobs_created: BTreeMap<String, BTreeMap<String, u64>>,
    pub rate_limited: RateLimited,
    pub faults: FaultCounters,
}

/// One server's share.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerCounters {
    pub requests: u64,
    /// Status code → count.
    pub by_code: BTreeMap<String, u64>,
    pub jobs_created: u64,
    pub task_creates: u64,
    /// Successful attaches.
    pub attaches: u64,
    /// Attaches refused because the server is not connected to the cloud site.
    pub attach_refused: u64,
    /// The most tasks that were running at once on this server (from creation until the
    /// root of the status tree finished).
    pub max_running_tasks: u64,
    /// Status-tree reads (`GET …/tasks/{taskId}/status`, every page) on this server's tasks:
    /// what polling cost this server.
    #[serde(default)]
    pub status_reads: u64,
}

/// Tasks created (each `POST …/tasks` answered or not, once the task exists).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCreates {
    pub total: u64,
    /// `check` / `migrate` → count.
    pub by_type: BTreeMap<String, u64>,
    /// Job id → task type → count.
    pub by_job: BTreeMap<String, BTreeMap<String, u64>>,
}

/// 429 answers sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimited {
    pub total: u64,
    /// User email → endpoint class (`create_job`, `create_task`, `read`, `token`) → count.
    pub by_user: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Faults injected by the scenario.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounters {
    /// GETs answered 5xx by `get_error_rate`.
    pub server_errors: u64,
    /// Requests answered 503 inside a burst.
    pub burst_errors: u64,
    /// Creates that succeeded but answered 504.
    pub lost_answers_504: u64,
    /// Creates that succeeded but whose connection was closed without an answer.
    pub dropped_connections: u64,
    /// Requests delayed by `latency`.
    pub delayed_requests: u64,
    /// Answers garbled by `garbage_every` (the request was handled; the client got a 200
    /// it cannot use).
    #[serde(default)]
    pub garbage_answers: u64,
    /// Outages asked with `POST /_sim/outage` (connections refused for a while).
    #[serde(default)]
    pub outages: u64,
}

impl RequestCounters {
    /// How many answers `route` (e.g. `"POST /migrations/public/v1/jobs"`) got with `code`.
    pub fn count(&self, route: &str, code: &str) -> u64 {
        self.by_route
            .get(route)
            .and_then(|codes| codes.get(code))
            .copied()
            .unwrap_or(0)
    }

    /// Jobs on which a task type was created more than once: (job id, task type, count).
    pub fn repeated_task_creates(&self) -> Vec<(String, String, u64)> {
        self.task_creates
            .by_job
            .iter()
            .flat_map(|(job, types)| {
                types
                    .iter()
                    .filter(|(_, count)| **count > 1)
                    .map(|(kind, count)| (job.clone(), kind.clone(), *count))
            })
            .collect()
    }

    pub(crate) fn record_answer(&mut self, route: &str, code: &str, server: Option<&str>) {
        self.total += 1;
        *self
            .by_route
            .entry(route.to_owned())
            .or_default()
            .entry(code.to_owned())
            .or_default() += 1;
        if let Some(server) = server {
            let counters = self.by_server.entry(server.to_owned()).or_default();
            counters.requests += 1;
            *counters.by_code.entry(code.to_owned()).or_default() += 1;
            if route.ends_with("/status") {
                counters.status_reads += 1;
            }
        }
    }

    pub(crate) fn server(&mut self, server: &str) -> &mut ServerCounters {
        self.by_server.entry(server.to_owned()).or_default()
    }

    pub(crate) fn record_job(&mut self, server_id: &str, cloud_url: &str, server: Option<&str>) {
        *self
            .jobs_created
            .entry(server_id.to_owned())
            .or_default()
            .entry(cloud_url.to_owned())
            .or_default() += 1;
        if let Some(server) = server {
            self.server(server).jobs_created += 1;
        }
    }

    pub(crate) fn record_task(&mut self, job_id: &str, kind: &str, server: Option<&str>) {
        self.task_creates.total += 1;
        *self
            .task_creates
            .by_type
            .entry(kind.to_owned())
            .or_default() += 1;
        *self
            .task_creates
            .by_job
            .entry(job_id.to_owned())
            .or_default()
            .entry(kind.to_owned())
            .or_default() += 1;
        if let Some(server) = server {
            self.server(server).task_creates += 1;
        }
    }

    pub(crate) fn record_rate_limited(&mut self, user: &str, class: &str) {
        self.rate_limited.total += 1;
        *self
            .rate_limited
            .by_user
            .entry(user.to_owned())
            .or_default()
            .entry(class.to_owned())
            .or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_creates_are_easy_to_find() {
        let mut counters = RequestCounters::default();
        counters.record_task("j1", "check", Some("acme"));
        counters.record_task("j1", "migrate", Some("acme"));
        counters.record_task("j2", "check", Some("acme"));
        assert!(counters.repeated_task_creates().is_empty());
        counters.record_task("j2", "check", Some("acme"));
        assert_eq!(
            counters.repeated_task_creates(),
            vec![("j2".to_owned(), "check".to_owned(), 2)]
        );
        assert_eq!(counters.by_server["acme"].task_creates, 4);
    }

    #[test]
    fn answers_count_per_route_code_and_server() {
        let mut counters = RequestCounters::default();
        counters.record_answer("GET /x/{id}", "200", Some("acme"));
        counters.record_answer("GET /x/{id}", "503", Some("acme"));
        counters.record_answer("GET /x/{id}", "200", None);
        assert_eq!(counters.count("GET /x/{id}", "200"), 2);
        assert_eq!(counters.by_server["acme"].requests, 2);
        assert_eq!(counters.total, 3);
        let json = serde_json::to_string(&counters).unwrap();
        let back: RequestCounters = serde_json::from_str(&json).unwrap();
        assert_eq!(back, counters);
    }
}
