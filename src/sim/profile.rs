//! Resolved settings: a scenario's `[defaults]` merged with one server's table into a
//! [`ServerProfile`], the API-wide [`ApiSettings`], and each user's policy and rate limits.
//! Durations here are simulated seconds; the clock converts them to real time.

use std::collections::BTreeMap;
use std::time::Duration;

use super::dice;
use super::limits::RateClass;
use super::scenario::{
    CheckSpec, FaultSpec, Scenario, ScopeSpec, ServerName, ServerSpec, UserEmail,
};
use super::shapes::Shapes;
use super::values::{ClockMode, LostCreateMode, Rate, StatusOrder};

/// API-wide behaviour, with defaults filled in.
#[derive(Debug, Clone)]
pub(crate) struct ApiSettings {
    pub status_delay: f64,
    pub status_page_size: usize,
    pub task_page_size: usize,
    /// How answers are shaped (`links_next`, `last_page`, `timestamps` and `retry_after`
    /// included, whether `[api]` or `[shapes]` sets them).
    pub shapes: Shapes,
    pub token_validity: f64,
    pub attach_validity: f64,
    pub artifact_validity: f64,
    pub not_attached_delay: f64,
    pub hide_pending_nodes: bool,
    pub status_order: StatusOrder,
}

/// Everything the simulator needs to know about one server.
#[derive(Debug, Clone)]
pub(crate) struct ServerProfile {
    pub name: String,
    pub server_id: String,
    pub connected: bool,
    /// The only credential the server accepts, when pinned (a PAT or a Basic password).
    pub token: Option<String>,
    pub save_token_fails: bool,
    /// Simulated seconds an attach stays valid.
    pub attach_validity: f64,
    pub attach_lapse_fails_tasks: bool,
    /// The status a Migrate task ends with instead of finishing (upper case), if any.
    pub end_status: Option<String>,
    pub check_duration: f64,
    pub migrate_duration: f64,
    pub apps_duration: f64,
    pub checks: BTreeMap<String, CheckSpec>,
    pub scopes: BTreeMap<&'static str, ScopeSpec>,
    pub faults: Faults,
}

/// A server's faults with defaults filled in (all off).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Faults {
    pub get_error_rate: f64,
    /// Real time, not scaled.
    pub latency: Duration,
    pub latency_jitter: Duration,
    /// Every this many requests is delayed (1: every request).
    pub latency_every: u64,
    pub lost_task_create_rate: f64,
    pub lost_job_create_rate: f64,
    pub lost_create_mode: LostCreateMode,
    pub burst_every: u64,
    pub burst_length: u64,
    pub garbage_every: u64,
    pub garbage_length: u64,
}

const MINUTE: f64 = 60.0;

impl Scenario {
    /// The seed of fault decisions (0 when the file sets none).
    pub(crate) fn seed(&self) -> u64 {
        self.file.seed.unwrap_or(0)
    }

    /// Whether ids must repeat between runs (only when the file sets a seed).
    pub(crate) fn explicit_seed(&self) -> Option<u64> {
        self.file.seed
    }

    pub(crate) fn clock_mode(&self) -> ClockMode {
        self.file.clock
    }

    pub(crate) fn api(&self) -> ApiSettings {
        let api = &self.file.api;
        let secs = |value: Option<super::values::DurationValue>, default: f64| {
            value.map_or(default, |v| v.secs())
        };
        ApiSettings {
            status_delay: secs(api.status_delay, 5.0),
            status_page_size: api.status_page_size.map_or(10, |n| n.get() as usize),
            task_page_size: api.task_page_size.map_or(20, |n| n.get() as usize),
            shapes: self.shapes(),
            token_validity: secs(api.token_validity, 5.0 * MINUTE),
            attach_validity: secs(api.attach_validity, 24.0 * 60.0 * MINUTE),
            artifact_validity: secs(api.artifact_validity, 7.0 * 24.0 * 60.0 * MINUTE),
            not_attached_delay: secs(api.not_attached_delay, 10.0),
            hide_pending_nodes: api.hide_pending_nodes.unwrap_or(false),
            status_order: api.status_order.unwrap_or_default(),
        }
    }

    /// The rate limit of `user` for `class`: the user's override, else the file's, else the
    /// documented limit.
    pub(crate) fn rate(&self, user: &str, class: RateClass) -> Rate {
        let pick = |spec: &super::scenario::RateLimitsSpec| match class {
            RateClass::CreateJob => spec.create_job,
            RateClass::CreateTask => spec.create_task,
            RateClass::Read => spec.read,
            RateClass::Token => spec.token,
        };
        self.user(user)
            .and_then(|u| pick(&u.rate_limits))
            .or_else(|| pick(&self.file.rate_limits))
            .unwrap_or(match class {
                RateClass::CreateJob | RateClass::CreateTask => Rate::per_minute(5),
                RateClass::Read => Rate::per_minute(600),
                RateClass::Token => Rate::per_hour(10),
            })
    }

    /// Whether the user is an admin of the destination sites (default true).
    pub(crate) fn is_admin(&self, user: &str) -> bool {
        self.user(user).and_then(|u| u.admin).unwrap_or(true)
    }

    /// The API token the scenario pins for the user, if any.
    pub(crate) fn pinned_token(&self, user: &str) -> Option<&str> {
        self.user(user).and_then(|u| u.token.as_deref())
    }

    fn user(&self, user: &str) -> Option<&super::scenario::UserSpec> {
        self.file.users.get(&UserEmail(user.to_owned()))
    }

    /// The server a job's Server ID names: a scenario server with that `server_id`, else the
    /// server of that name unless the scenario gave it another ID. `None`: no such server.
    pub(crate) fn server_for_id(&self, server_id: &str) -> Option<String> {
        for (name, spec) in &self.file.servers {
            if spec.server_id.as_deref() == Some(server_id) {
                return Some(name.0.clone());
            }
        }
        match self.file.servers.get(&ServerName(server_id.to_owned())) {
            Some(spec) if spec.server_id.is_some() => None,
            _ => Some(server_id.to_owned()),
        }
    }

    /// The resolved profile of a server (any name: unknown servers get the defaults).
    pub(crate) fn profile(&self, server: &str) -> ServerProfile {
        let defaults = &self.file.defaults;
        let empty = ServerSpec::default();
        let own = self
            .file
            .servers
            .get(&ServerName(server.to_owned()))
            .unwrap_or(&empty);
        let bytes = server.as_bytes();
        // Without a scenario, durations vary by server (stable, seed-independent).
        let varied = |label: &[u8], low_min: u64, high_min: u64| {
            dice::between(0, &[b"duration", label, bytes], low_min * 60, high_min * 60) as f64
        };
        let secs =
            |own: Option<super::values::DurationValue>,
             default: Option<super::values::DurationValue>,
             fallback: f64| { own.or(default).map_or(fallback, |v| v.secs()) };
        let mut checks = defaults.checks.clone();
        checks.extend(own.checks.clone());
        let mut scopes: BTreeMap<&'static str, ScopeSpec> = defaults
            .scopes
            .iter()
            .map(|(name, spec)| (name.0, spec.clone()))
            .collect();
        for (name, spec) in &own.scopes {
            let merged = match scopes.remove(name.0) {
                Some(base) => merge_scope(base, spec),
                None => spec.clone(),
            };
            scopes.insert(name.0, merged);
        }
        ServerProfile {
            name: server.to_owned(),
            server_id: own.server_id.clone().unwrap_or_else(|| server.to_owned()),
            connected: own.connected.or(defaults.connected).unwrap_or(true),
            token: own.token.clone().or_else(|| defaults.token.clone()),
            save_token_fails: own
                .save_token_fails
                .or(defaults.save_token_fails)
                .unwrap_or(false),
            attach_validity: secs(
                own.attach_validity,
                defaults.attach_validity,
                self.api().attach_validity,
            ),
            attach_lapse_fails_tasks: own
                .attach_lapse_fails_tasks
                .or(defaults.attach_lapse_fails_tasks)
                .unwrap_or(false),
            end_status: own
                .end_status
                .as_ref()
                .or(defaults.end_status.as_ref())
                .map(|status| status.trim().to_ascii_uppercase()),
            check_duration: secs(
                own.check_duration,
                defaults.check_duration,
                varied(b"check", 3, 8),
            ),
            migrate_duration: secs(
                own.migrate_duration,
                defaults.migrate_duration,
                varied(b"migrate", 20, 120),
            ),
            apps_duration: secs(
                own.apps_duration,
                defaults.apps_duration,
                varied(b"apps", 10, 50),
            ),
            checks,
            scopes,
            faults: merge_faults(&own.faults, &defaults.faults),
        }
    }
}

fn merge_scope(base: ScopeSpec, over: &ScopeSpec) -> ScopeSpec {
    let mut items = base.items;
    items.extend(over.items.clone());
    ScopeSpec {
        outcome: over.outcome.or(base.outcome),
        message: over.message.clone().or(base.message),
        duration: over.duration.or(base.duration),
        items,
    }
}

fn merge_faults(own: &FaultSpec, defaults: &FaultSpec) -> Faults {
    let rate = |a: Option<super::values::Probability>, b: Option<super::values::Probability>| {
        a.or(b).map_or(0.0, |p| p.0)
    };
    let time = |a: Option<super::values::DurationValue>,
                b: Option<super::values::DurationValue>| {
        a.or(b).map_or(Duration::ZERO, |d| d.0)
    };
    Faults {
        get_error_rate: rate(own.get_error_rate, defaults.get_error_rate),
        latency: time(own.latency, defaults.latency),
        latency_jitter: time(own.latency_jitter, defaults.latency_jitter),
        latency_every: own
            .latency_every
            .or(defaults.latency_every)
            .unwrap_or(1)
            .max(1),
        lost_task_create_rate: rate(own.lost_task_create_rate, defaults.lost_task_create_rate),
        lost_job_create_rate: rate(own.lost_job_create_rate, defaults.lost_job_create_rate),
        lost_create_mode: own
            .lost_create_mode
            .or(defaults.lost_create_mode)
            .unwrap_or_default(),
        burst_every: own.burst_every.or(defaults.burst_every).unwrap_or(0),
        burst_length: own.burst_length.or(defaults.burst_length).unwrap_or(0),
        garbage_every: own.garbage_every.or(defaults.garbage_every).unwrap_or(0),
        garbage_length: own.garbage_length.or(defaults.garbage_length).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::values::PlannedOutcome;

    #[test]
    fn no_scenario_means_healthy_servers_with_realistic_durations() {
        let scenario = Scenario::default();
        let profile = scenario.profile("acme-jira");
        assert!(profile.connected);
        assert_eq!(profile.server_id, "acme-jira");
        assert!((180.0..=480.0).contains(&profile.check_duration));
        assert!((1200.0..=7200.0).contains(&profile.migrate_duration));
        assert!(profile.checks.is_empty());
        assert_eq!(profile.faults.get_error_rate, 0.0);
        assert_eq!(profile.faults.burst_every, 0);
        assert_eq!(
            scenario.rate("a@b.example", RateClass::CreateJob),
            Rate::per_minute(5)
        );
        assert_eq!(
            scenario.rate("a@b.example", RateClass::Token),
            Rate::per_hour(10)
        );
        assert!(scenario.is_admin("a@b.example"));
    }

    #[test]
    fn a_server_table_overrides_the_defaults_key_by_key() {
        let scenario = Scenario::parse_toml(
            r#"
[defaults]
check_duration = "5m"
migrate_duration = "30m"
[defaults.checks.MissingAttachments]
outcome = "WARNING"
[defaults.scopes.projects]
outcome = "WARNING"
items = { Issues = 100 }
[defaults.faults]
get_error_rate = 0.1
latency = "5ms"
[servers.acme]
server_id = "RMJK"
check_duration = "2m"
[servers.acme.scopes.projects]
outcome = "FAILED"
[servers.acme.faults]
get_error_rate = 0.5
[users."bob@x.example"]
admin = false
token = "t0k"
rate_limits = { read = "60/min" }
"#,
        )
        .unwrap();
        let acme = scenario.profile("acme");
        assert_eq!(acme.server_id, "RMJK");
        assert_eq!(acme.check_duration, 120.0);
        assert_eq!(acme.migrate_duration, 1800.0);
        assert_eq!(
            acme.checks["MissingAttachments"].outcome,
            PlannedOutcome::Warning
        );
        let projects = &acme.scopes["projects"];
        assert_eq!(projects.outcome, Some(PlannedOutcome::Failed));
        assert_eq!(projects.items["Issues"], 100);
        assert_eq!(acme.faults.get_error_rate, 0.5);
        assert_eq!(acme.faults.latency, Duration::from_millis(5));
        assert_eq!(scenario.server_for_id("RMJK").as_deref(), Some("acme"));
        assert_eq!(scenario.server_for_id("acme"), None);
        assert_eq!(scenario.server_for_id("other").as_deref(), Some("other"));
        assert!(!scenario.is_admin("bob@x.example"));
        assert_eq!(scenario.pinned_token("bob@x.example"), Some("t0k"));
        assert_eq!(
            scenario.rate("bob@x.example", RateClass::Read),
            Rate::per_minute(60)
        );
        assert_eq!(
            scenario.rate("eve@x.example", RateClass::Read),
            Rate::per_minute(600)
        );
    }
}
