//! `cmafleet report --out DIR [--run RUN_ID]`: re-renders a past run's reports from the state
//! store (the latest run by default).

use crate::cli::ReportArgs;
use crate::exit;
use crate::report::ReportWriter;

pub fn run(args: &ReportArgs) -> u8 {
    let store = match super::locate::open(&args.state_dir, args.config.as_deref()) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let run_id = match &args.run_id {
        Some(run_id) => run_id.clone(),
        None => match store.latest_run() {
            Ok(Some(run)) => run.run_id,
            Ok(None) => {
                let message = format!("no run recorded in {}", args.state_dir.display());
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
    let writer = match ReportWriter::create(&args.out) {
        Ok(writer) => writer,
        Err(error) => return fail(exit::CANT_CREATE, &error.to_string()),
    };
    if let Err(error) = writer.write_all(&report, previous.as_ref(), &[]) {
        return fail(exit::CANT_CREATE, &error.to_string());
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

fn fail(code: u8, message: &str) -> u8 {
    crate::fatal::report(code, message);
    code
}
