//! `cmafleet plan`: a dry run from the inventory and the state store, with no network. Per
//! site what a run would do (create or reuse the job, create, adopt or reconcile a task, skip);
//! per cloud user the rate-limited calls; and the lower bound on the run's length.
//!
//! The bound: for each cloud user, `n` calls of one class at rate `r` (burst 1) cannot finish
//! before `(n − 1) / r`; the last task created then runs at least the shortest task duration
//! (with `--precheck`, a site's Check task runs before its Migrate task can be created). The
//! caps add their own floors: `ceil(sites / concurrency)` and, per source server,
//! `ceil(tasks / per-server)` task durations one after another. The run's bound is the largest.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::table::{Align, Table};
use crate::cli::{Format, PlanArgs};
use crate::cma::wire::TaskKind;
use crate::config::RunSettings;
use crate::exit;
use crate::fleet::policy::{Rate, RateConfig};
use crate::inventory::{Site, definition_hash};
use crate::state::{SiteState, StateError, Store};
use crate::vocab::{Judgement, Mode};

/// What a run would do for one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SitePlan {
    pub site: String,
    pub cloud_user: String,
    /// `create job`, `reuse job <id>`, or empty when skipped.
    pub job: String,
    /// `create check task`, `adopt migrate task <id>`, `reconcile …`, `skip: done`, …
    pub action: String,
    pub creates_job: bool,
    pub creates_tasks: u32,
}

/// Rate-limited calls of one cloud user and the time they need at least.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserPlan {
    pub cloud_user: String,
    pub sites: usize,
    pub create_job: u32,
    pub create_task: u32,
    /// Seconds the creates need at least, from the rate limits alone.
    pub rate_bound_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub mode: Mode,
    pub sites: Vec<SitePlan>,
    pub users: Vec<UserPlan>,
    /// The shortest task duration assumed (seconds), if known.
    pub task_seconds: Option<f64>,
    /// The lower bound on the run's length, in seconds.
    pub bound_seconds: f64,
    /// Which floor decides the bound.
    pub bound_by: String,
}

/// The inputs of a plan beyond the sites and their state.
#[derive(Debug, Clone)]
pub struct PlanPolicy {
    pub mode: Mode,
    pub precheck: bool,
    pub remigrate: bool,
    pub rates: RateConfig,
    pub concurrency: usize,
    pub per_server: usize,
    /// The shortest a task takes; `None`: unknown (the bound then covers the creates only).
    pub task_duration: Option<Duration>,
}

/// `cmafleet plan`: the settings of the same `run` line, resolved and checked as a run
/// would (its flags, `CMAFLEET_*` variables and `--config` file), then the plan.
pub fn run(args: &PlanArgs) -> u8 {
    let resolved = match RunSettings::resolve(&args.run) {
        Ok(resolved) => resolved,
        Err(error) => return fail(error.exit_code(), &error.to_string()),
    };
    if args.run.print_config {
        return crate::stdout::print(&resolved.print(), exit::OK);
    }
    let settings = resolved.settings;
    let task_duration = match args
        .task_duration
        .as_deref()
        .map(humantime::parse_duration)
        .transpose()
    {
        Ok(duration) => duration,
        Err(error) => return fail(exit::USAGE, &format!("bad --task-duration: {error}")),
    };
    let sites = match super::selection::load_selected(&settings.inventory, &settings.selection) {
        Ok(selected) => selected.sites,
        Err(code) => return code,
    };
    for notice in crate::inventory::inferred_wire_forms(sites.iter().map(|site| &**site)) {
        tracing::warn!("{notice}");
    }
    let states: Vec<SiteState> = match Store::open_existing(&settings.state_dir) {
        Ok(store) => match store.sites() {
            Ok(states) => states,
            Err(error) => return fail(exit::CANT_CREATE, &error.to_string()),
        },
        Err(StateError::Missing(_)) => Vec::new(),
        Err(error) => return fail(error.exit_code(), &error.to_string()),
    };
    let mode = settings.mode;
    let policy = PlanPolicy {
        mode,
        precheck: settings.precheck,
        remigrate: settings.remigrate,
        rates: settings.rates,
        concurrency: settings.concurrency,
        per_server: settings.per_server,
        task_duration: task_duration.or_else(|| shortest_task(&states, mode)),
    };
    let plan = plan(&sites, &states, &policy);
    let text = match args.format {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&plan).expect("a plan serialises: plain data")
        ),
        Format::Table => render(&plan),
    };
    // `cmafleet plan … | head -1`: the reader has what it wanted.
    crate::stdout::print(&text, exit::OK)
}

fn fail(code: u8, message: &str) -> u8 {
    crate::fatal::report(code, message);
    code
}

/// The shortest finished task of the mode's main kind in the state store.
fn shortest_task(states: &[SiteState], mode: Mode) -> Option<Duration> {
    let kind = main_kind(mode);
    states
        .iter()
        .flat_map(|state| &state.tasks)
        .filter(|task| task.kind == kind)
        .filter_map(|task| (task.finished_at? - task.created_at?).to_std().ok())
        .min()
}

fn main_kind(mode: Mode) -> TaskKind {
    match mode {
        Mode::Check => TaskKind::Check,
        Mode::Migrate => TaskKind::Migrate,
    }
}

/// The plan, as a pure function of the sites, their state and the policy.
pub fn plan(sites: &[Arc<Site>], states: &[SiteState], policy: &PlanPolicy) -> Plan {
    let by_site: BTreeMap<&str, &SiteState> = states
        .iter()
        .map(|state| (state.site.as_str(), state))
        .collect();
    let site_plans: Vec<SitePlan> = sites
        .iter()
        .map(|site| site_plan(site, by_site.get(site.name.as_str()).copied(), policy))
        .collect();
    let mut users: BTreeMap<String, UserPlan> = BTreeMap::new();
    for plan in &site_plans {
        let user = users
            .entry(plan.cloud_user.clone())
            .or_insert_with(|| UserPlan {
                cloud_user: plan.cloud_user.clone(),
                sites: 0,
                create_job: 0,
                create_task: 0,
                rate_bound_seconds: 0.0,
            });
        user.sites += 1;
        user.create_job += u32::from(plan.creates_job);
        user.create_task += plan.creates_tasks;
    }
    let task = policy.task_duration.map(|duration| duration.as_secs_f64());
    let mut bound = 0.0f64;
    let mut bound_by = "nothing to do".to_owned();
    for user in users.values_mut() {
        let jobs = calls_time(user.create_job, policy.rates.create_job);
        let tasks = calls_time(user.create_task, policy.rates.create_task);
        user.rate_bound_seconds = jobs.max(tasks);
        if user.create_task > 0 || user.create_job > 0 {
            // After the last create: the last task runs (twice with a precheck).
            let tail = task.unwrap_or(0.0)
                * if policy.precheck && policy.mode == Mode::Migrate {
                    2.0
                } else {
                    1.0
                };
            let total = user.rate_bound_seconds + if user.create_task > 0 { tail } else { 0.0 };
            if total > bound {
                bound = total;
                bound_by = format!("rate limits of {}", user.cloud_user);
            }
        }
    }
    if let Some(task) = task {
        let starting = site_plans
            .iter()
            .filter(|plan| plan.creates_tasks > 0)
            .count();
        let by_concurrency = (starting as f64 / policy.concurrency as f64).ceil() * task;
        if by_concurrency > bound {
            bound = by_concurrency;
            bound_by = format!("--concurrency {}", policy.concurrency);
        }
        let mut per_server: BTreeMap<&str, u32> = BTreeMap::new();
        for (site, plan) in sites.iter().zip(&site_plans) {
            *per_server.entry(site.server_id.as_str()).or_default() += plan.creates_tasks;
        }
        for (server, tasks) in per_server {
            let serial = (f64::from(tasks) / policy.per_server as f64).ceil() * task;
            if serial > bound {
                bound = serial;
                bound_by = format!("--per-server {} on server {server}", policy.per_server);
            }
        }
    }
    Plan {
        mode: policy.mode,
        sites: site_plans,
        users: users.into_values().collect(),
        task_seconds: task,
        bound_seconds: bound,
        bound_by,
    }
}

/// `n` calls at `rate`, burst 1: the first at once, then one every interval.
pub fn calls_time(calls: u32, rate: Rate) -> f64 {
    f64::from(calls.saturating_sub(1)) * rate.interval().as_secs_f64()
}

fn site_plan(site: &Site, state: Option<&SiteState>, policy: &PlanPolicy) -> SitePlan {
    let hash = definition_hash(&site.job_definition());
    let mut plan = SitePlan {
        site: site.name.clone(),
        cloud_user: site.cloud_user.clone(),
        job: String::new(),
        action: String::new(),
        creates_job: false,
        creates_tasks: 0,
    };
    let kind = main_kind(policy.mode);
    // What a run resumes, as the pipeline decides it: the newest task of a kind, when no run
    // has concluded a site with it (see `TaskRecord::is_in_flight`).
    let open = |kind: &TaskKind| {
        state
            .and_then(|state| state.last_task(kind))
            .filter(|task| task.finished_at.is_none())
    };
    let migrate_open = open(&TaskKind::Migrate);
    let in_flight = match policy.mode {
        Mode::Check => open(&TaskKind::Check),
        Mode::Migrate if policy.precheck => migrate_open.or_else(|| open(&TaskKind::Check)),
        Mode::Migrate => migrate_open,
    };
    let migrated = state.is_some_and(|state| {
        state.migrated_at.is_some()
            || state
                .last_task(&TaskKind::Migrate)
                .filter(|task| task.finished_at.is_some())
                .is_some_and(|task| task.judgement.is_some_and(Judgement::went_well))
    });
    let apps_pending = state
        .and_then(SiteState::apps_pending)
        .and_then(|task| task.task_id.clone());
    if policy.mode == Mode::Migrate && migrated && !policy.remigrate && migrate_open.is_none() {
        plan.action = match apps_pending {
            Some(task_id) => {
                format!("follow up the apps of migrate task {task_id} (no task created)")
            }
            None => "skip: done (already migrated)".into(),
        };
        return plan;
    }
    match state
        .and_then(|state| state.job.as_ref())
        .filter(|job| job.definition_hash == hash)
    {
        Some(job) => plan.job = format!("reuse job {}", job.job_id),
        None => {
            plan.job = "create job".into();
            plan.creates_job = true;
        }
    }
    let tasks = if policy.mode == Mode::Migrate && policy.precheck {
        2
    } else {
        1
    };
    let then = match in_flight {
        Some(task) if task.kind == TaskKind::Check && tasks == 2 => ", then create migrate task",
        _ => "",
    };
    plan.action = match in_flight {
        Some(task) => match &task.task_id {
            Some(id) => format!(
                "adopt {} task {id} (in flight){then}",
                task.kind.response_str()
            ),
            None => format!(
                "reconcile the {} task intent of {} with the task list{then}",
                task.kind.response_str(),
                task.intent_at.to_rfc3339()
            ),
        },
        None if tasks == 2 => "create check task, then migrate task".into(),
        None => format!("create {} task", kind.response_str()),
    };
    plan.creates_tasks = match in_flight {
        Some(task) if task.kind == TaskKind::Check && tasks == 2 => 1,
        Some(_) => 0,
        None => tasks,
    };
    plan
}

/// The tables for people, each sized to its content, and the bound.
pub fn render(plan: &Plan) -> String {
    let mut sites = Table::new([
        ("SITE", Align::Left),
        ("JOB", Align::Left),
        ("ACTION", Align::Left),
    ]);
    for site in &plan.sites {
        sites.row([site.site.clone(), site.job.clone(), site.action.clone()]);
    }
    let mut users = Table::new([
        ("CLOUD USER", Align::Left),
        ("SITES", Align::Right),
        ("CREATE JOB", Align::Right),
        ("CREATE TASK", Align::Right),
        ("RATE-LIMITED TIME", Align::Right),
    ]);
    for user in &plan.users {
        users.row([
            user.cloud_user.clone(),
            user.sites.to_string(),
            user.create_job.to_string(),
            user.create_task.to_string(),
            seconds(user.rate_bound_seconds),
        ]);
    }
    let bound = match plan.task_seconds {
        Some(task) => format!(
            "Lower bound on the run's length: {} (bound by {}; assuming tasks take at least {})\n",
            seconds(plan.bound_seconds),
            plan.bound_by,
            seconds(task)
        ),
        None => format!(
            "Lower bound on the run's length: {} plus the last task's duration (unknown: pass --task-duration)\n",
            seconds(plan.bound_seconds)
        ),
    };
    format!("{}\n{}\n{bound}", sites.render(), users.render())
}

/// Seconds as every duration of cmafleet reads: `0s`, `12s`, `3m 20s`, `1h 05m`.
fn seconds(value: f64) -> String {
    crate::report::format::duration(value.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::parse;

    fn sites(rows: &[(&str, &str, &str)]) -> Vec<Arc<Site>> {
        let mut csv = String::from(
            "site,product,server_url,server_id,server_auth,cloud_url,cloud_user,cloud_token\n",
        );
        for (site, server, user) in rows {
            csv.push_str(&format!(
                "{site},jira,https://{server}.example.com,{server},env:PAT,https://{site}.atlassian.net,{user},env:TOKEN\n"
            ));
        }
        parse(&csv)
            .expect("valid test inventory")
            .into_iter()
            .map(Arc::new)
            .collect()
    }

    fn policy(mode: Mode) -> PlanPolicy {
        PlanPolicy {
            mode,
            precheck: false,
            remigrate: false,
            rates: RateConfig::default(),
            concurrency: 50,
            per_server: 1,
            task_duration: Some(Duration::from_secs(300)),
        }
    }

    #[test]
    fn the_bound_follows_the_formula() {
        let rows: Vec<(String, String, &str)> = (0..10)
            .map(|n| {
                (
                    format!("s{n}"),
                    format!("srv{n}"),
                    if n < 6 { "a@x.com" } else { "b@x.com" },
                )
            })
            .collect();
        let rows: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), *c))
            .collect();
        let plan = plan(&sites(&rows), &[], &policy(Mode::Check));
        // a@x.com: 6 jobs and 6 tasks at 5/min → (6 − 1) × 12 s = 60 s, then a 300 s task.
        assert_eq!(plan.users[0].create_task, 6);
        assert_eq!(plan.users[0].rate_bound_seconds, 60.0);
        assert_eq!(plan.bound_seconds, 360.0);
        assert!(plan.bound_by.contains("a@x.com"));
        assert!(
            plan.sites
                .iter()
                .all(|site| site.action == "create check task" && site.creates_job)
        );
    }

    #[test]
    fn precheck_doubles_the_tasks_and_the_tail() {
        let mut policy = policy(Mode::Migrate);
        policy.precheck = true;
        let plan = plan(
            &sites(&[("s1", "srv1", "a@x.com"), ("s2", "srv2", "a@x.com")]),
            &[],
            &policy,
        );
        assert_eq!(plan.users[0].create_task, 4);
        assert_eq!(plan.bound_seconds, 3.0 * 12.0 + 600.0);
    }

    #[test]
    fn a_shared_server_serialises_its_tasks() {
        let plan = plan(
            &sites(&[
                ("s1", "srv", "a@x.com"),
                ("s2", "srv", "a@x.com"),
                ("s3", "srv", "a@x.com"),
            ]),
            &[],
            &policy(Mode::Check),
        );
        assert_eq!(plan.bound_seconds, 900.0);
        assert!(plan.bound_by.contains("--per-server"));
    }

    #[test]
    fn the_tables_fit_a_reused_job_and_durations_read_alike() {
        let sites = sites(&[("a", "srv1", "a@x.com"), ("bb", "srv2", "a@x.com")]);
        let state = SiteState {
            site: "a".into(),
            job: Some(crate::state::JobRecord {
                job_id: "3f2c9e1a-7b4d-4c8e-9f10-2a6b5c4d3e21".into(),
                definition_hash: definition_hash(&sites[0].job_definition()),
                created_at: chrono::Utc::now(),
            }),
            ..SiteState::default()
        };
        let mut policy = policy(Mode::Check);
        policy.task_duration = Some(Duration::from_millis(400));
        let text = render(&plan(&sites, &[state], &policy));
        assert_eq!(
            text,
            "\
SITE  JOB                                             ACTION
a     reuse job 3f2c9e1a-7b4d-4c8e-9f10-2a6b5c4d3e21  create check task
bb    create job                                      create check task

CLOUD USER  SITES  CREATE JOB  CREATE TASK  RATE-LIMITED TIME
a@x.com         2           1            2                12s

Lower bound on the run's length: 12s (bound by rate limits of a@x.com; assuming tasks take at least 0s)
"
        );
    }

    fn task(intent_id: i64, kind: TaskKind, finished: bool) -> crate::state::TaskRecord {
        let at = chrono::Utc::now();
        crate::state::TaskRecord {
            intent_id,
            run_id: "r1".into(),
            job_id: "j1".into(),
            kind,
            intent_at: at,
            task_id: Some(format!("t{intent_id}")),
            created_at: Some(at),
            adopted: false,
            status: Some("FINISHED".into()),
            service_outcome: None,
            judgement: Some(Judgement::Succeeded),
            finished_at: finished.then_some(at),
            abandoned: false,
            apps_pending: false,
        }
    }

    #[test]
    fn a_migrated_site_is_done_whatever_check_task_is_open() {
        let sites = sites(&[("s1", "srv1", "a@x.com")]);
        let mut state = SiteState {
            site: "s1".into(),
            migrated_at: Some(chrono::Utc::now()),
            ..SiteState::default()
        };
        state.tasks.push(task(1, TaskKind::Migrate, true));
        state.tasks.push(task(2, TaskKind::Check, false));
        let mut policy = policy(Mode::Migrate);
        policy.precheck = true;
        let planned = plan(&sites, &[state], &policy);
        assert_eq!(planned.sites[0].action, "skip: done (already migrated)");
        assert_eq!(planned.sites[0].creates_tasks, 0);
    }

    #[test]
    fn a_task_judged_by_a_killed_run_is_adopted_not_created() {
        let sites = sites(&[("s1", "srv1", "a@x.com")]);
        // Judged succeeded, but the run died before recording the site's outcome.
        let mut state = SiteState {
            site: "s1".into(),
            ..SiteState::default()
        };
        state.tasks.push(task(1, TaskKind::Check, true));
        state.tasks.push(task(2, TaskKind::Migrate, false));
        let planned = plan(&sites, &[state.clone()], &policy(Mode::Migrate));
        assert_eq!(planned.sites[0].action, "adopt migrate task t2 (in flight)");
        assert_eq!(planned.sites[0].creates_tasks, 0);
        // A precheck judged, its Migrate task not created yet.
        state.tasks[0].finished_at = None;
        state.tasks.pop();
        let mut precheck = policy(Mode::Migrate);
        precheck.precheck = true;
        let planned = plan(&sites, &[state], &precheck);
        assert_eq!(
            planned.sites[0].action,
            "adopt check task t1 (in flight), then create migrate task"
        );
        assert_eq!(planned.sites[0].creates_tasks, 1);
    }
}
