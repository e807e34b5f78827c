//! `cmafleet report --out DIR [--run RUN_ID | --mode MODE]`: re-renders a past run's reports
//! from the state store (the latest run by default, of `--mode` if given). With
//! `--state-dirs A B …`, one fleet report from each store's latest run of a mode
//! ([`stores::fleet_report`](super::stores::fleet_report)).

use std::path::{Path, PathBuf};

use super::locate;
use crate::cli::ReportArgs;
use crate::config::mode_of;
use crate::exit;
use crate::report::model::SiteReport;
use crate::report::{ReportWriter, RunReport};

pub fn run(args: &ReportArgs) -> u8 {
    if !args.state_dirs.is_empty() {
        return run_fleet(args);
    }
    let store = match super::locate::open(&args.store.state_dir, args.store.config.as_deref()) {
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
                let message = format!("no {what} recorded in {}", args.store.state_dir.display());
                return fail(exit::USAGE, &message);
            }
            Err(error) => return fail(error.exit_code(), &error.to_string()),
        },
    };
    let mut report = match store.run_report(&run_id) {
        Ok(Some(report)) => report,
        Ok(None) => {
            return fail(
                exit::USAGE,
                &format!(
                    "no run {run_id} in {}; `cmafleet runs` lists the runs",
                    args.store.state_dir.display()
                ),
            );
        }
        Err(error) => return fail(exit::CANT_CREATE, &error.to_string()),
    };
    let previous = store.previous_run(report.run.mode, &run_id).unwrap_or(None);
    let saved_in = locate::report_dir_of(&report.run.options, &args.store.state_dir, &run_id);
    if let Err(code) = write(args, &mut report, previous.as_ref(), |_| {
        Some(saved_in.clone())
    }) {
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
    let (mut report, previous) =
        match super::stores::fleet_report(&args.state_dirs, args.mode.map(mode_of)) {
            Ok(reports) => reports,
            Err(error) => return fail(error.exit_code(), &error.to_string()),
        };
    // Each shard's run saved its artifacts in its own report dir (its options, by label).
    let shards = report.run.options.clone();
    let saved_in = |site: &SiteReport| {
        let shard = &shards[site.shard.as_deref()?];
        Some(locate::report_dir_of(
            &shard["options"],
            Path::new(shard["state_dir"].as_str()?),
            shard["run_id"].as_str()?,
        ))
    };
    if let Err(code) = write(args, &mut report, previous.as_ref(), saved_in) {
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

/// Writes the reports into `--out`, with the artifacts the runs saved (`saved_in`: the report
/// dir each site's run wrote to).
fn write(
    args: &ReportArgs,
    report: &mut RunReport,
    previous: Option<&RunReport>,
    saved_in: impl Fn(&SiteReport) -> Option<PathBuf>,
) -> Result<(), u8> {
    let writer = ReportWriter::create(&args.out)
        .map_err(|error| fail(exit::CANT_CREATE, &error.to_string()))?;
    bring_artifacts(report, &args.out, saved_in)
        .map_err(|error| fail(exit::CANT_CREATE, &error.to_string()))?;
    writer
        .write_all(report, previous, &[])
        .map_err(|error| fail(exit::CANT_CREATE, &error.to_string()))
}

/// A re-rendered report is whole: every artifact a run saved (`artifacts/<file>` under the
/// report dir `saved_in` gives for its site) is linked — a hard link, else a copy — into
/// `out`'s `artifacts/`, where the report's links point. One no longer there keeps its row,
/// saying where it was.
fn bring_artifacts(
    report: &mut RunReport,
    out: &Path,
    saved_in: impl Fn(&SiteReport) -> Option<PathBuf>,
) -> std::io::Result<()> {
    for site in &mut report.sites {
        let Some(from_dir) = saved_in(site) else {
            continue;
        };
        for artifact in &mut site.artifacts {
            // Only what a run writes: a plain path inside its report dir.
            let Some(relative) = artifact.saved_as.clone().filter(|path| {
                Path::new(path)
                    .components()
                    .all(|part| matches!(part, std::path::Component::Normal(_)))
            }) else {
                continue;
            };
            let (from, to) = (from_dir.join(&relative), out.join(&relative));
            let same = matches!(
                (from.canonicalize(), to.canonicalize()),
                (Ok(from), Ok(to)) if from == to
            );
            if same {
                continue;
            }
            if !from.is_file() {
                if to.is_file() {
                    // Where the report goes already holds it (its own run's dir, or an
                    // earlier re-render): the link still leads to the file.
                    continue;
                }
                artifact.saved_as = None;
                artifact.error = Some(format!(
                    "saved as {} by its run; no longer there",
                    from.display()
                ));
                continue;
            }
            match std::fs::remove_file(&to) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
            if std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to)?;
            }
        }
    }
    Ok(())
}

fn fail(code: u8, message: &str) -> u8 {
    crate::fatal::report(code, message);
    code
}
