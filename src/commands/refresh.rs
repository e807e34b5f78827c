//! `cmafleet status --refresh`: before the state is shown, the sites whose apps were still
//! migrating when their migration ended are read again — a migrate run of just those sites,
//! with the inventory and cloud API URL of the latest migrate run, which follows their tasks
//! up and creates nothing (`fleet::pipeline`'s follow-up) — so `status` shows how their apps
//! ended.

use clap::Parser as _;

use crate::cli::{Cli, Command, OutputArgs, StatusArgs};
use crate::exit;
use crate::fleet::shutdown::Shutdown;
use crate::state::{StateError, Store};
use crate::vocab::Mode;

/// Runs the follow-up when a site needs it; returns its exit code (0 when none did).
pub(super) async fn run(args: &StatusArgs, output: &OutputArgs, shutdown: Shutdown) -> u8 {
    let (pending, latest) = match pending_sites(&args.store.state_dir) {
        Ok(found) => found,
        Err(error) => {
            crate::fatal::report(error.exit_code(), &error.to_string());
            return error.exit_code();
        }
    };
    if pending.is_empty() {
        tracing::info!("refresh: no site has apps still migrating after its migration");
        return exit::OK;
    }
    let Some(options) = latest else {
        let message = "refresh: no migrate run is recorded to take the inventory from";
        crate::fatal::report(exit::CONFIG, message);
        return exit::CONFIG;
    };
    let text = |key: &str| {
        options
            .get(key)
            .and_then(|value| value.as_str())
            .map(str::to_owned)
    };
    let (Some(inventory), Some(api)) = (text("inventory"), text("cloud_api_url")) else {
        let message = "refresh: the latest migrate run names no inventory or cloud API URL";
        crate::fatal::report(exit::CONFIG, message);
        return exit::CONFIG;
    };
    tracing::info!(
        "refresh: reading again the apps of {} site(s): {}",
        pending.len(),
        pending.join(", ")
    );
    let state_dir = args.store.state_dir.display().to_string();
    let mut argv = vec![
        "cmafleet".to_owned(),
        "run".into(),
        inventory,
        "--mode".into(),
        "migrate".into(),
        "--state-dir".into(),
        state_dir,
        "--cloud-api-url".into(),
        api,
        "--site".into(),
        pending.join(","),
    ];
    if let Some(config) = &args.store.config {
        argv.push("--config".into());
        argv.push(config.display().to_string());
    }
    let run_args = match Cli::try_parse_from(&argv) {
        Ok(Cli {
            command: Command::Run(run_args),
            ..
        }) => run_args,
        Ok(_) => unreachable!("the arguments name the run command"),
        Err(error) => {
            crate::fatal::report(exit::USAGE, &format!("refresh: {error}"));
            return exit::USAGE;
        }
    };
    let output = OutputArgs {
        progress: Some(crate::cli::ProgressMode::Never),
        ..output.clone()
    };
    super::run::run_as(&run_args, &output, shutdown, false).await
}

/// The sites whose migration ended with apps still running, and the options of the latest
/// migrate run.
fn pending_sites(
    state_dir: &std::path::Path,
) -> Result<(Vec<String>, Option<serde_json::Value>), StateError> {
    let store = Store::open_existing(state_dir)?;
    let pending = store
        .sites()?
        .into_iter()
        .filter(|site| site.apps_pending().is_some())
        .map(|site| site.site)
        .collect();
    let latest = store
        .runs()?
        .into_iter()
        .find(|run| run.mode == Mode::Migrate)
        .map(|run| run.options);
    Ok((pending, latest))
}
