//! `cmafleet report --out DIR [--run RUN_ID | --mode MODE]`: re-renders a past run's reports
//! from the state store (the latest run by default, of `--mode` if given). With
//! `--state-dirs A B …`, one fleet report from each store's latest run of a mode
//! ([`stores::fleet_report`](super::stores::fleet_report)).

use crate::cli::ReportArgs;
use crate::config::mode_of;
use crate::exit;
use crate::report::{ReportWriter, RunReport};

pub fn run(args: &ReportArgs) -> u8 {
    if !args.state_dirs.is_empty() {
        return run_fleet(args);
    }
    let store = match super::locate::open(&args.state_dir, args.config.as_deref()) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let mode = args.mode.map(mode_of);
    let latest = store.runs().map(|runs| {
        runs.into_iter()
            .find(|run| mode.is_none_or(|mode| run.mode == mode))
    });
    let run_id = match &args.run_id {
        Some(run_id) => run_id.clone(),
        None => match latest {
            Ok(Some(run)) => run.run_id,
            Ok(None) => {
                let what = mode.map_or_else(|| "run".to_owned(), |mode| format!("{mode} run"));
                let message = format!("no {what} recorded in {}", args.state_dir.display());
                return fail(exit::USAGE, &message);
            }
            Err(error) => return fail(error.exit_code(), &error.to_string()),
        },
    };
    let report = match store.run_report(&run_id) {
        Ok(Some(report)) => report,
        Ok(None) => {
            return fail(
                exit::USAGE,
                &format!(
                    "no run {run_id} in {}; `cmafleet runs` lists the runs",
                    args.state_dir.display()
                ),
            );
        }
        Err(error) => return fail(exit::CANT_CREATE, &error.to_string()),
    };
    let previous = store.previous_run(report.run.mode, &run_id).unwrap_or(None);
    if let Err(code) = write(args, &report, previous.as_ref()) {
        return code;
    }
    crate::stdout::print(
        &format!(
            "{} reports of run {run_id} written to {}\nOpen {}\n",
            report.sites.len(),
            args.out.display(),
            args.out.join("report.html").display()
        ),
        exit::OK,
    )
}

/// `--state-dirs`: one report over several stores.
fn run_fleet(args: &ReportArgs) -> u8 {
    let (report, previous) =
        match super::stores::fleet_report(&args.state_dirs, args.mode.map(mode_of)) {
            Ok(reports) => reports,
            Err(error) => return fail(error.exit_code(), &error.to_string()),
        };
    if let Err(code) = write(args, &report, previous.as_ref()) {
        return code;
    }
    crate::stdout::print(
        &format!(
            "{} reports of {} runs ({}) from {} state stores written to {}\nOpen {}\n",
            report.sites.len(),
            report.run.mode,
            report.run.run_id,
            args.state_dirs.len(),
            args.out.display(),
            args.out.join("report.html").display()
        ),
        exit::OK,
    )
}

fn write(args: &ReportArgs, report: &RunReport, previous: Option<&RunReport>) -> Result<(), u8> {
    let writer = ReportWriter::create(&args.out)
        .map_err(|error| fail(exit::CANT_CREATE, &error.to_string()))?;
    writer
        .write_all(report, previous, &[])
        .map_err(|error| fail(exit::CANT_CREATE, &error.to_string()))
}

fn fail(code: u8, message: &str) -> u8 {
    crate::fatal::report(code, message);
    code
}
