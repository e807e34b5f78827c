//! `cmafleet status [--state-dir DIR] [--format table|json]`: the fleet's state as the state
//! store knows it — per site its stage, last mode, outcome, job and newest task, and when it
//! last changed — plus the latest run and a count by outcome. With `--site S`, that site
//! alone and what to do next (`status/site.rs`). With `--state-dirs A B …`, the same over
//! several stores in one table, each site with its shard
//! ([`model::fleet_status`]).
//!
//! It only reads, takes no run lock, and works while a run is writing (WAL readers never
//! block the writer). Exit codes: 0 when shown; 73 when the dir holds no state store (saying
//! where one might be) or the store cannot be read; 78 for a store from a newer cmafleet; 2
//! for a `--site` the store does not know.

pub mod model;
mod site;

use self::model::{FleetStatus, OUTCOME_LABELS, RunSummary, read, time};
use crate::cli::{Format, OutputArgs, StatusArgs};
use crate::exit;
use crate::fleet::shutdown::Shutdown;

/// `status`, after `--refresh`'s follow-up when asked; returns the exit code.
pub async fn run_all(args: &StatusArgs, output: &OutputArgs, shutdown: Shutdown) -> u8 {
    if args.refresh {
        let code = super::refresh::run(args, output, shutdown).await;
        if !matches!(code, exit::OK | exit::SITES_FAILED) {
            return code;
        }
    }
    run(args)
}

/// Shows the state; returns the exit code.
pub fn run(args: &StatusArgs) -> u8 {
    let loaded = if args.state_dirs.is_empty() {
        let store = match super::locate::open(&args.store.state_dir, args.store.config.as_deref()) {
            Ok(store) => store,
            Err(code) => return code,
        };
        if let Some(site) = &args.site {
            return site::run(&store, site, args.format);
        }
        read(&store).map_err(|error| (error.exit_code(), error.to_string()))
    } else {
        model::fleet_status(&args.state_dirs)
            .map_err(|error| (error.exit_code(), error.to_string()))
    };
    let status = match loaded {
        Ok(status) => status,
        Err((code, message)) => {
            crate::fatal::report(code, &message);
            return code;
        }
    };
    let text = match args.format {
        Format::Table => render_table(&status),
        Format::Json => render_json(&status),
    };
    // `cmafleet status | head`: the reader has what it wanted.
    crate::stdout::print(&text, exit::OK)
}

/// The `--format table` text: the latest run (of each store), one aligned line per site
/// (with its shard over several stores), the counts, and the notes.
pub fn render_table(status: &FleetStatus) -> String {
    let mut out = String::new();
    if status.stores.is_empty() {
        out.push_str(&run_line(status.latest_run.as_ref()));
    }
    for store in &status.stores {
        out.push_str(&format!(
            "{} ({}): {}",
            store.shard,
            store.state_db,
            run_line(store.latest_run.as_ref())
        ));
    }
    if status.sites.is_empty() {
        let place = if status.stores.is_empty() {
            status.state_db.clone()
        } else {
            format!("these {} stores", status.stores.len())
        };
        out.push_str(&format!("no sites in {place}\n"));
        return out;
    }
    out.push('\n');
    let sharded = status.sites.iter().any(|site| site.shard.is_some());
    let dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
    let mut header = vec!["SITE"];
    if sharded {
        header.push("SHARD");
    }
    header.extend([
        "STAGE",
        "MODE",
        "OUTCOME",
        "JOB",
        "TASK",
        "TASK STATUS",
        "UPDATED",
    ]);
    let mut rows: Vec<Vec<String>> = vec![header.into_iter().map(str::to_owned).collect()];
    for site in &status.sites {
        let task_status = match (&site.task_status, &site.task_outcome) {
            (Some(status), Some(outcome)) => format!("{status} ({outcome})"),
            (Some(status), None) => status.clone(),
            (None, _) if site.task_kind.is_some() && site.task_id.is_none() => {
                "create unconfirmed".to_owned()
            }
            (None, _) => "-".to_owned(),
        };
        let mut row = vec![site.site.clone()];
        if sharded {
            row.push(dash(&site.shard));
        }
        row.extend([
            site.stage.to_owned(),
            site.last_mode
                .map_or_else(|| "-".to_owned(), |mode| mode.to_string()),
            site.outcome.to_owned(),
            dash(&site.job_id),
            dash(&site.task_id),
            task_status,
            time(site.updated_at.as_ref()),
        ]);
        rows.push(row);
    }
    let mut widths = vec![0usize; rows[0].len()];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let counts: Vec<String> = OUTCOME_LABELS
        .iter()
        .filter_map(|label| {
            let count = status.counts.get(label).copied().unwrap_or(0);
            (count > 0).then(|| format!("{label} {count}"))
        })
        .collect();
    let total = status.sites.len();
    let noun = if total == 1 { "site" } else { "sites" };
    out.push_str(&format!("\n{total} {noun}: {}\n", counts.join(", ")));
    for site in &status.sites {
        if let Some(at) = &site.job_intent_at {
            out.push_str(&format!(
                "note: {}: a job create at {} was never recorded; a job may exist unused\n",
                site.site,
                time(Some(at))
            ));
        }
    }
    for note in &status.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

/// `latest run … (mode): started …, finished …, exit N`, or that there is none.
fn run_line(run: Option<&RunSummary>) -> String {
    let Some(run) = run else {
        return "no run recorded yet\n".to_owned();
    };
    let end = match (&run.finished_at, run.exit_code) {
        (Some(at), Some(code)) => format!("finished {}, exit {code}", time(Some(at))),
        (Some(at), None) => format!("finished {}", time(Some(at))),
        (None, _) => "not finished (running, or killed)".to_owned(),
    };
    format!(
        "latest run {} ({}): started {}, {end}\n",
        run.run_id,
        run.mode,
        time(Some(&run.started_at))
    )
}

/// The `--format json` document, pretty-printed.
pub fn render_json(status: &FleetStatus) -> String {
    let mut text =
        serde_json::to_string_pretty(status).expect("status serialises: plain data, string keys");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use chrono::{DateTime, TimeZone, Utc};

    use super::model::stage_of;
    use super::*;
    use crate::cma::wire::TaskKind;
    use crate::report::model::RunInfo;
    use crate::state::{AttachRecord, JobRecord, SiteState, TaskRecord};
    use crate::vocab::{Mode, Outcome};

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 2, minute, 0).unwrap()
    }

    fn task(kind: TaskKind, task_id: Option<&str>, status: Option<&str>) -> TaskRecord {
        TaskRecord {
            intent_id: 1,
            run_id: "r1".into(),
            job_id: "job-1".into(),
            kind,
            intent_at: at(1),
            task_id: task_id.map(str::to_owned),
            created_at: task_id.map(|_| at(2)),
            adopted: false,
            status: status.map(str::to_owned),
            service_outcome: None,
            judgement: None,
            finished_at: None,
            abandoned: false,
            apps_pending: false,
        }
    }

    fn site(name: &str) -> SiteState {
        SiteState {
            site: name.into(),
            updated_at: Some(at(3)),
            ..SiteState::default()
        }
    }

    fn job() -> Option<JobRecord> {
        Some(JobRecord {
            job_id: "job-1".into(),
            definition_hash: "h".into(),
            created_at: at(1),
        })
    }

    #[test]
    fn the_stage_comes_from_the_newest_task() {
        let mut state = site("a");
        assert_eq!(stage_of(&state), "queued");
        state.job_intent_at = Some(at(1));
        assert_eq!(stage_of(&state), "job");
        state.job = job();
        state.attach = Some(AttachRecord {
            cloud_url: "https://a.atlassian.net".into(),
            attached_at: at(2),
            expires_at: None,
        });
        assert_eq!(stage_of(&state), "attach");
        state.tasks.push(task(TaskKind::Migrate, None, None));
        assert_eq!(stage_of(&state), "reconcile");
        state.tasks[0].task_id = Some("t1".into());
        state.tasks[0].status = Some("IN_PROGRESS".into());
        assert_eq!(stage_of(&state), "migrate");
        state.tasks[0].status = Some("FINISHED".into());
        assert_eq!(stage_of(&state), "migrate", "no outcome recorded yet");
        state.last_outcome = Some(Outcome::Succeeded);
        assert_eq!(
            stage_of(&state),
            "migrate",
            "finished but not concluded (an earlier outcome does not count): the next run adopts it"
        );
        state.tasks[0].finished_at = Some(at(3));
        assert_eq!(stage_of(&state), "done");
        state.tasks[0].apps_pending = true;
        assert_eq!(stage_of(&state), "apps", "migrated, its apps still running");
        state.last_outcome = Some(Outcome::Blocked);
        assert_eq!(
            stage_of(&state),
            "done",
            "a later run ended it otherwise (a --remigrate blocked at its checks)"
        );
        state.last_outcome = Some(Outcome::Succeeded);
        state.tasks[0].apps_pending = false;
        let mut abandoned = task(TaskKind::Check, None, None);
        abandoned.abandoned = true;
        state.tasks.push(abandoned);
        assert_eq!(stage_of(&state), "done", "abandoned intents are ignored");
    }

    fn fixture() -> FleetStatus {
        let mut done = site("acme-jira");
        done.job = job();
        done.last_mode = Some(Mode::Migrate);
        done.last_outcome = Some(Outcome::Succeeded);
        let mut finished = task(TaskKind::Migrate, Some("task-7"), Some("FINISHED"));
        finished.service_outcome = Some("SUCCESS".into());
        finished.finished_at = Some(at(3));
        done.tasks.push(finished);
        let mut unconfirmed = site("beta");
        unconfirmed.job = job();
        unconfirmed.last_mode = Some(Mode::Check);
        unconfirmed.tasks.push(task(TaskKind::Check, None, None));
        let mut lost_job = site("c");
        lost_job.job_intent_at = Some(at(4));
        let run = RunInfo {
            run_id: "20260501-0200".into(),
            mode: Mode::Migrate,
            options: serde_json::json!({}),
            shard: None,
            started_at: at(0),
            finished_at: None,
            counts: BTreeMap::new(),
            exit_code: None,
            notes: Vec::new(),
            version: "0.1.0".into(),
            surprises: Vec::new(),
        };
        FleetStatus::build(
            Path::new("/s/state.db"),
            Some(&run),
            &[done, unconfirmed, lost_job],
        )
    }

    #[test]
    fn the_table_aligns_columns_and_counts_outcomes() {
        let expected = "\
latest run 20260501-0200 (migrate): started 2026-05-01T02:00:00Z, not finished (running, or killed)

SITE       STAGE      MODE     OUTCOME    JOB    TASK    TASK STATUS         UPDATED
acme-jira  done       migrate  succeeded  job-1  task-7  FINISHED (SUCCESS)  2026-05-01T02:03:00Z
beta       reconcile  check    running    job-1  -       create unconfirmed  2026-05-01T02:03:00Z
c          job        -        running    -      -       -                   2026-05-01T02:03:00Z

3 sites: succeeded 1, running 2
note: c: a job create at 2026-05-01T02:04:00Z was never recorded; a job may exist unused
";
        assert_eq!(render_table(&fixture()), expected);
    }

    #[test]
    fn the_json_has_stable_fields_and_every_count() {
        let json: serde_json::Value = serde_json::from_str(&render_json(&fixture())).unwrap();
        assert_eq!(json["state_db"], "/s/state.db");
        assert_eq!(json["latest_run"]["run_id"], "20260501-0200");
        assert_eq!(json["latest_run"]["finished_at"], serde_json::Value::Null);
        assert_eq!(json["counts"]["succeeded"], 1);
        assert_eq!(json["counts"]["running"], 2);
        assert_eq!(json["counts"]["failed"], 0);
        assert_eq!(
            json["counts"].as_object().unwrap().len(),
            OUTCOME_LABELS.len()
        );
        let acme = &json["sites"][0];
        assert_eq!(acme["site"], "acme-jira");
        assert_eq!(acme["stage"], "done");
        assert_eq!(acme["task_id"], "task-7");
        assert_eq!(acme["task_kind"], "migrate");
        assert_eq!(acme["task_outcome"], "SUCCESS");
        assert_eq!(acme["last_mode"], "migrate");
        assert_eq!(acme["updated_at"], "2026-05-01T02:03:00Z");
        assert_eq!(json["sites"][1]["task_id"], serde_json::Value::Null);
        assert_eq!(json["sites"][2]["job_intent_at"], "2026-05-01T02:04:00Z");
    }

    #[test]
    fn an_empty_store_says_so() {
        let status = FleetStatus::build(Path::new("/s/state.db"), None, &[]);
        assert_eq!(
            render_table(&status),
            "no run recorded yet\nno sites in /s/state.db\n"
        );
    }

    // Several stores (`--state-dirs`): joined by `stores`, rendered here.

    /// One store's status of `sites` (name, outcome, minute of the last update).
    fn status(db: &str, sites: &[(&str, Outcome, u32)]) -> FleetStatus {
        let sites: Vec<SiteState> = sites
            .iter()
            .map(|(name, outcome, minute)| SiteState {
                site: (*name).to_owned(),
                last_outcome: Some(*outcome),
                updated_at: Some(Utc.with_ymd_and_hms(2026, 5, 1, 2, *minute, 0).unwrap()),
                ..SiteState::default()
            })
            .collect();
        FleetStatus::build(Path::new(db), None, &sites)
    }

    #[test]
    fn one_table_every_site_once_with_its_shard() {
        let a = status(
            "/a/state.db",
            &[("zeta", Outcome::Failed, 1), ("beta", Outcome::Blocked, 1)],
        );
        let b = status(
            "/b/state.db",
            &[
                ("alpha", Outcome::Succeeded, 2),
                ("beta", Outcome::Succeeded, 3),
            ],
        );
        let joined =
            super::model::join_status([(a, "0/2".to_owned()), (b, "1/2".to_owned())].into_iter());
        let sites: Vec<(&str, &str, &str)> = joined
            .sites
            .iter()
            .map(|site| {
                (
                    site.site.as_str(),
                    site.shard.as_deref().unwrap(),
                    site.outcome,
                )
            })
            .collect();
        assert_eq!(
            sites,
            [
                ("alpha", "1/2", "succeeded"),
                ("beta", "1/2", "succeeded"),
                ("zeta", "0/2", "failed")
            ]
        );
        assert_eq!(joined.counts["succeeded"], 2);
        assert_eq!(
            joined.notes,
            ["beta is in 2 stores (0/2, 1/2): shown from 1/2, updated last"]
        );
        let table = render_table(&joined);
        assert!(
            table.starts_with(
                "0/2 (/a/state.db): no run recorded yet\n1/2 (/b/state.db): no run recorded yet\n"
            ),
            "{table}"
        );
        assert!(table.contains("\nSITE   SHARD  STAGE"), "{table}");
        assert!(table.contains("\nzeta   0/2    done"), "{table}");
        let json: serde_json::Value = serde_json::from_str(&render_json(&joined)).unwrap();
        assert!(json.get("state_db").is_none());
        assert_eq!(
            json["latest_run"],
            serde_json::Value::Null,
            "no store has a run"
        );
        assert_eq!(json["stores"][1]["state_db"], "/b/state.db");
        assert_eq!(json["sites"][2]["shard"], "0/2");
    }
}
