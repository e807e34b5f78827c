//! `cmafleet status --site S`: one site as a person on call needs it — where it stands, its
//! last outcome and message, the checks that failed or warned, and the next step to take
//! (a command to run where there is one). The next step is a pure function of the site's
//! last report and state ([`next_step`]).

use std::path::Path;

use serde::Serialize;

use super::model::{SiteStatus, stage_of, time};
use crate::cli::Format;
use crate::exit;
use crate::report::model::{CheckResult, RunInfo, SiteReport};
use crate::state::{SiteState, Store};
use crate::vocab::{Mode, Outcome};

/// What `status --site` shows (`--format json`: this document, field names stable).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct SiteView {
    #[serde(flatten)]
    pub status: SiteStatus,
    /// The run whose report is shown: the newest that recorded the site.
    pub run_id: Option<String>,
    /// Its one line: why this outcome.
    pub message: Option<String>,
    pub failed_checks: Vec<CheckLine>,
    pub warned_checks: Vec<CheckLine>,
    /// `sites/<site>.json` of that run's reports.
    pub site_report: Option<String>,
    /// What to do next, in words, with the command to run where there is one.
    pub next_step: String,
}

/// One check that failed or warned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct CheckLine {
    pub name: String,
    /// Whether `--override-checks` may skip it (`None`: the service did not say).
    pub excludable: Option<bool>,
    pub message: Option<String>,
}

impl CheckLine {
    fn of(check: &CheckResult) -> CheckLine {
        CheckLine {
            name: check.name.clone(),
            excludable: check.excludable,
            message: check.message.clone(),
        }
    }
}

/// Shows one site; returns the exit code (2 for a site the store does not know).
pub(super) fn run(store: &Store, site: &str, format: Format) -> u8 {
    let read = store.site(site).and_then(|state| match state {
        Some(state) => Ok(Some((state, store.last_site_report(site)?))),
        None => Ok(None),
    });
    let (state, last) = match read {
        Ok(Some(found)) => found,
        Ok(None) => return unknown(store, site),
        Err(error) => {
            crate::fatal::report(error.exit_code(), &error.to_string());
            return error.exit_code();
        }
    };
    let state_dir = store.path().parent().unwrap_or(Path::new("."));
    let view = view(&state, last.as_ref(), state_dir);
    let text = match format {
        Format::Table => render(&view),
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&view)
                .expect("a site view serialises: plain data, string keys");
            text.push('\n');
            text
        }
    };
    crate::stdout::print(&text, exit::OK)
}

/// A `--site` the store does not know: a bad flag value (exit 2), with the nearest name.
fn unknown(store: &Store, site: &str) -> u8 {
    let names: Vec<String> = store
        .sites()
        .map(|sites| sites.into_iter().map(|state| state.site).collect())
        .unwrap_or_default();
    let hint = names
        .iter()
        .map(|name| (strsim::levenshtein(site, name), name))
        .filter(|(distance, name)| *distance <= (name.chars().count() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map_or_else(
            || format!("it has {} sites; `cmafleet status` lists them", names.len()),
            |(_, name)| format!("did you mean `{name}`?"),
        );
    crate::fatal::report(
        exit::USAGE,
        &format!(
            "--site {site}: no such site in {}; {hint}",
            store.path().display()
        ),
    );
    exit::USAGE
}

/// The view of a site from its state and its newest report.
pub(super) fn view(
    state: &SiteState,
    last: Option<&(RunInfo, SiteReport)>,
    state_dir: &Path,
) -> SiteView {
    let checks = |outcome: &str| -> Vec<CheckLine> {
        last.map(|(_, report)| {
            report
                .checks
                .iter()
                .filter(|check| check.outcome.eq_ignore_ascii_case(outcome))
                .map(|check| CheckLine::of(check))
                .collect()
        })
        .unwrap_or_default()
    };
    let site_report = last.map(|(run, _)| {
        crate::commands::locate::report_dir_of(&run.options, state_dir, &run.run_id)
            .join("sites")
            .join(format!("{}.json", state.site))
    });
    let inventory = last
        .and_then(|(run, _)| run.options.get("inventory")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "INVENTORY".to_owned());
    let mut rerun = format!("cmafleet run {inventory}");
    if state_dir != Path::new("cmafleet-state") {
        rerun.push_str(&format!(" --state-dir {}", state_dir.display()));
    }
    // Where the run went, when not to Atlassian's API (a simulator, a test double).
    if let Some(url) = last
        .and_then(|(run, _)| run.options.get("cloud_api_url")?.as_str())
        .filter(|url| url.trim_end_matches('/') != crate::config::DEFAULT_CLOUD_API_URL)
    {
        rerun.push_str(&format!(" --cloud-api-url {url}"));
    }
    let next_step = next_step(
        state,
        last.map(|(_, report)| report),
        &rerun,
        site_report.as_deref(),
    );
    SiteView {
        status: SiteStatus::of(state),
        run_id: last.map(|(run, _)| run.run_id.clone()),
        message: last
            .map(|(_, report)| report.message.clone())
            .filter(|message| !message.is_empty()),
        failed_checks: checks("FAILED"),
        warned_checks: checks("WARNING"),
        site_report: site_report.map(|path| path.display().to_string()),
        next_step,
    }
}

/// What to do next about a site, given its state and newest report. `rerun` is the start of
/// the command line that runs it again (`cmafleet run INVENTORY [--state-dir DIR]`).
pub(super) fn next_step(
    state: &SiteState,
    report: Option<&SiteReport>,
    rerun: &str,
    site_report: Option<&Path>,
) -> String {
    let site = &state.site;
    let read = site_report.map_or_else(
        || "its report".to_owned(),
        |path| path.display().to_string(),
    );
    let Some(report) = report.filter(|report| report.outcome.is_some()) else {
        return match stage_of(state) {
            "queued" => format!("not started yet: `{rerun} --mode check --site {site}` starts it"),
            _ => format!(
                "a task is in flight (a run is going on, or was stopped): the next run adopts it — \
                 `{rerun} --mode {} --site {site}`",
                state.last_mode.unwrap_or(Mode::Check)
            ),
        };
    };
    let mode = report.mode;
    if let Some(task) = state
        .apps_pending()
        .filter(|_| matches!(report.outcome, Some(Outcome::Succeeded | Outcome::Warnings)))
    {
        return format!(
            "migrated, its apps still migrating after the core (task {}): the next migrate run \
             (or `status --refresh`) reads them again — `{rerun} --mode migrate --site {site}`",
            task.task_id.as_deref().unwrap_or("?")
        );
    }
    match report.outcome.unwrap_or(Outcome::Failed) {
        Outcome::Succeeded if mode == Mode::Check => {
            format!("checks passed: migrate it with `{rerun} --mode migrate --site {site}`")
        }
        Outcome::Succeeded => {
            "migrated: nothing to do (a migrate run skips it unless --remigrate)".to_owned()
        }
        Outcome::Warnings if mode == Mode::Check => format!(
            "checks warned (warnings do not block unless --block-on-warnings): review them in \
             {read}, then `{rerun} --mode migrate --site {site}`"
        ),
        Outcome::Warnings => format!("migrated with warnings: review them in {read}"),
        Outcome::Blocked => blocked(report, rerun, &read),
        Outcome::Failed => format!(
            "read {read} (its errors carry the service's request ids), fix what it says, then \
             `{rerun} --mode {mode} --site {site}`"
        ),
        Outcome::Detached => format!(
            "still running remotely: the next run resumes it — `{rerun} --mode {mode} --site {site}`"
        ),
        Outcome::Skipped if state.migrated_at.is_some() => format!(
            "already migrated: nothing to do (`{rerun} --mode migrate --site {site} --remigrate` \
             migrates it again)"
        ),
        Outcome::Skipped => format!(
            "skipped ({}): the next run takes it — `{rerun} --mode {mode} --site {site}`",
            report.message
        ),
    }
}

/// The next step of a blocked site: override the excludable failed checks, fix the others,
/// connect the cloud site, or drop `--block-on-warnings`.
fn blocked(report: &SiteReport, rerun: &str, read: &str) -> String {
    let site = &report.site;
    let failed: Vec<&CheckResult> = report
        .checks
        .iter()
        .map(|check| &**check)
        .filter(|check| check.outcome.eq_ignore_ascii_case("FAILED"))
        .collect();
    let names = |excludable: bool| -> Vec<&str> {
        failed
            .iter()
            .filter(|check| check.excludable.unwrap_or(false) == excludable)
            .map(|check| check.name.as_str())
            .collect()
    };
    let (excludable, fixed) = (names(true), names(false));
    let override_line = format!(
        "`{rerun} --mode migrate --site {site} --override-checks {}`",
        excludable.join(",")
    );
    if report.message.contains("not connected") {
        return format!(
            "connect the cloud site to this server in the Migration Assistant, or rerun with \
             --connect: `{rerun} --mode {} --site {site} --connect`",
            report.mode
        );
    }
    match (excludable.is_empty(), fixed.is_empty()) {
        (false, true) => format!(
            "the failed checks may be overridden: rerun with `--override-checks {}` — {override_line}",
            excludable.join(",")
        ),
        (false, false) => format!(
            "fix {} on the server (each check's message says what; see {read}), then \
             run again; {} may be overridden with `--override-checks {}`",
            fixed.join(", "),
            excludable.join(", "),
            excludable.join(",")
        ),
        (true, false) => format!(
            "fix {} on the server (each check's message says what; see {read}), then \
             `{rerun} --mode {} --site {site}`",
            fixed.join(", "),
            report.mode
        ),
        (true, true) if report.message.contains("--block-on-warnings") => {
            format!("review the warnings in {read}, or rerun without --block-on-warnings")
        }
        (true, true) => format!("read {read}, fix what it says, then run again"),
    }
}

/// The `--format table` text.
pub(super) fn render(view: &SiteView) -> String {
    let status = &view.status;
    let dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
    let mut rows: Vec<(&str, String)> = vec![
        ("outcome", status.outcome.to_owned()),
        ("stage", status.stage.to_owned()),
        (
            "last run",
            match (&view.run_id, status.last_mode) {
                (Some(run), Some(mode)) => format!("{run} ({mode})"),
                (Some(run), None) => run.clone(),
                (None, _) => "-".to_owned(),
            },
        ),
        ("job", dash(&status.job_id)),
        (
            "task",
            match (&status.task_id, &status.task_kind, &status.task_status) {
                (Some(id), Some(kind), Some(task_status)) => {
                    format!("{id} ({kind}, {task_status})")
                }
                (Some(id), Some(kind), None) => format!("{id} ({kind})"),
                (id, _, _) => dash(id),
            },
        ),
        ("updated", time(status.updated_at.as_ref())),
    ];
    if let Some(message) = &view.message {
        rows.push(("message", message.clone()));
    }
    if let Some(path) = &view.site_report {
        rows.push(("report", path.clone()));
    }
    let mut out = format!("{}\n", status.site);
    for (label, value) in rows {
        out.push_str(&format!("  {:<9} {value}\n", format!("{label}:")));
    }
    for (title, checks) in [
        ("failed checks", &view.failed_checks),
        ("warnings", &view.warned_checks),
    ] {
        if checks.is_empty() {
            continue;
        }
        out.push_str(&format!("  {title}:\n"));
        let width = checks
            .iter()
            .map(|check| check.name.len())
            .max()
            .unwrap_or(0);
        for check in checks {
            let excludable = match check.excludable {
                Some(true) => "excludable",
                Some(false) => "not excludable",
                None => "-",
            };
            let line = format!(
                "    {:<width$}  {excludable:<14}  {}",
                check.name,
                check.message.as_deref().unwrap_or("")
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out.push_str(&format!("next: {}\n", view.next_step));
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::vocab::Stage;

    fn check(name: &str, outcome: &str, excludable: Option<bool>) -> Arc<CheckResult> {
        Arc::new(CheckResult {
            name: name.into(),
            status: "FINISHED".into(),
            outcome: outcome.into(),
            message: Some(format!("{name} says so")),
            occurrences: Vec::new(),
            excludable,
            description: None,
        })
    }

    fn blocked_report(checks: Vec<Arc<CheckResult>>, message: &str) -> SiteReport {
        let mut report = SiteReport::pending("acme", "jira", Mode::Check);
        report.outcome = Some(Outcome::Blocked);
        report.stage = Stage::Done;
        report.message = message.into();
        report.checks = checks;
        report
    }

    fn state(outcome: Option<Outcome>) -> SiteState {
        SiteState {
            site: "acme".into(),
            last_mode: Some(Mode::Check),
            last_outcome: outcome,
            ..SiteState::default()
        }
    }

    const RERUN: &str = "cmafleet run fleet.csv";

    #[test]
    fn an_excludable_failed_check_is_overridden_by_name() {
        let report = blocked_report(
            vec![
                check("AnonPermission", "FAILED", Some(true)),
                check("Fine", "SUCCESS", Some(false)),
            ],
            "checks failed: AnonPermission",
        );
        let step = next_step(&state(Some(Outcome::Blocked)), Some(&report), RERUN, None);
        assert_eq!(
            step,
            "the failed checks may be overridden: rerun with `--override-checks AnonPermission` — \
             `cmafleet run fleet.csv --mode migrate --site acme --override-checks AnonPermission`"
        );
    }

    #[test]
    fn a_check_that_cannot_be_excluded_is_to_be_fixed() {
        let report = blocked_report(
            vec![
                check("AnonPermission", "FAILED", Some(true)),
                check("MissingAttachments", "FAILED", Some(false)),
            ],
            "checks failed",
        );
        let step = next_step(
            &state(Some(Outcome::Blocked)),
            Some(&report),
            RERUN,
            Some(Path::new("r/sites/acme.json")),
        );
        assert!(
            step.starts_with("fix MissingAttachments on the server (each check's message says what; see r/sites/acme.json)"),
            "{step}"
        );
        assert!(
            step.ends_with(
                "AnonPermission may be overridden with `--override-checks AnonPermission`"
            ),
            "{step}"
        );
    }

    #[test]
    fn every_outcome_has_a_next_step() {
        let not_connected = blocked_report(
            Vec::new(),
            "the cloud site is not connected to this server (connect it …): 401",
        );
        let step = next_step(
            &state(Some(Outcome::Blocked)),
            Some(&not_connected),
            RERUN,
            None,
        );
        assert!(step.starts_with("connect the cloud site"), "{step}");
        assert!(step.ends_with("--site acme --connect`"), "{step}");
        let mut report = blocked_report(Vec::new(), "");
        for (outcome, start) in [
            (
                Outcome::Detached,
                "still running remotely: the next run resumes it",
            ),
            (Outcome::Failed, "read its report (its errors carry"),
            (
                Outcome::Succeeded,
                "checks passed: migrate it with `cmafleet run fleet.csv --mode migrate --site acme`",
            ),
            (Outcome::Warnings, "checks warned"),
            (Outcome::Skipped, "skipped"),
        ] {
            report.outcome = Some(outcome);
            let step = next_step(&state(Some(outcome)), Some(&report), RERUN, None);
            assert!(step.starts_with(start), "{outcome:?}: {step}");
        }
        let step = next_step(&state(None), None, RERUN, None);
        assert_eq!(
            step,
            "not started yet: `cmafleet run fleet.csv --mode check --site acme` starts it"
        );
    }

    #[test]
    fn the_table_shows_message_checks_and_next_step() {
        let report = blocked_report(
            vec![check("AnonPermission", "FAILED", Some(true))],
            "checks failed: AnonPermission",
        );
        let run = RunInfo {
            run_id: "r1".into(),
            mode: Mode::Check,
            options: serde_json::json!({"inventory": "fleet.csv", "report_dir": null}),
            shard: None,
            started_at: chrono::Utc::now(),
            finished_at: None,
            counts: Default::default(),
            exit_code: Some(1),
            notes: Vec::new(),
            version: "0".into(),
            surprises: Vec::new(),
        };
        let view = view(
            &state(Some(Outcome::Blocked)),
            Some(&(run, report)),
            Path::new("/s"),
        );
        let text = render(&view);
        assert!(text.starts_with("acme\n  outcome:  blocked\n"), "{text}");
        assert!(
            text.contains("  message:  checks failed: AnonPermission\n"),
            "{text}"
        );
        assert!(
            text.contains("  report:   /s/reports/r1/sites/acme.json\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "  failed checks:\n    AnonPermission  excludable      AnonPermission says so\n"
            ),
            "{text}"
        );
        assert!(
            text.ends_with(
                "--state-dir /s --mode migrate --site acme --override-checks AnonPermission`\n"
            ),
            "{text}"
        );
    }
}
