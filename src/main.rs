//! The `cmafleet` binary: parse the command line, set up logging and signals, call the
//! library, exit with its code.

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, FromArgMatches};
use cmafleet::cli::{self, Cli, Command, LogFormat};
use cmafleet::commands;
use cmafleet::config::SettingsFile;
use cmafleet::exit;
use cmafleet::fleet::shutdown::{CancelReason, Shutdown};
use cmafleet::logging::{self, Verbosity};

/// A run is thousands of small, short-lived allocations spread over the runtime's threads
/// (HTTP answers, status trees, events); glibc's allocator spent about a tenth of a
/// 10,000-site run's CPU time on them (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let matches = cli::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    if let Err(code) = settle_from_config(&mut cli, &matches) {
        return ExitCode::from(code);
    }
    logging::init(
        cli.output.log_format.unwrap_or(LogFormat::Text),
        Verbosity {
            quiet: cli.output.quiet,
            verbose: cli.output.verbose,
        },
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(exit::CANT_CREATE);
        }
    };
    let code = runtime.block_on(async {
        let shutdown = Shutdown::new();
        let ends_by_force = matches!(
            cli.command,
            Command::Run(_) | Command::Demo(_) | Command::Status(_)
        );
        tokio::spawn(handle_signals(shutdown.clone(), ends_by_force));
        dispatch(cli, shutdown).await
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(code)
}

async fn dispatch(cli: Cli, shutdown: Shutdown) -> u8 {
    match &cli.command {
        Command::Demo(args) => commands::demo::run(args, &cli.output, shutdown).await,
        Command::Validate(args) => commands::validate::run_all(args, shutdown.graceful()).await,
        Command::Plan(args) => commands::plan::run(args),
        Command::Run(args) => commands::run::run(args, &cli.output, shutdown).await,
        Command::Status(args) => commands::status::run_all(args, &cli.output, shutdown).await,
        Command::Runs(args) => commands::runs::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Sim(args) => commands::sim::run(args, shutdown.graceful().clone()).await,
        // Written whole, then printed: a reader that closes the pipe early (`| head`) ends
        // the output quietly (exit 0), where writing straight to stdout would panic.
        Command::Completions(args) => {
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut cli::command(), "cmafleet", &mut script);
            cmafleet::stdout::print(&String::from_utf8_lossy(&script), exit::OK)
        }
        Command::Man => {
            let mut page = Vec::new();
            match clap_mangen::Man::new(cli::command()).render(&mut page) {
                Ok(()) => cmafleet::stdout::print(&String::from_utf8_lossy(&page), exit::OK),
                Err(error) => {
                    cmafleet::fatal::report(
                        exit::CANT_CREATE,
                        &format!("cannot render the man page: {error}"),
                    );
                    exit::CANT_CREATE
                }
            }
        }
    }
}

/// First SIGINT/SIGTERM: drain. Second: force. A command that drives the engine (`ends_by_force`:
/// `run`, `demo`, `status --refresh`) then drops the requests on the wire and ends at once
/// through its usual end (reports written, the run recorded; the state store is consistent
/// either way: every write is a committed SQLite transaction); should that end not come
/// within [`FORCED_END`], or for any other command, the process exits on the spot.
async fn handle_signals(shutdown: Shutdown, ends_by_force: bool) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!(
            "cannot install signal handlers; SIGINT/SIGTERM will kill the run without draining"
        );
        return;
    };
    let mut signals = 0;
    loop {
        let reason = tokio::select! {
            _ = interrupt.recv() => CancelReason::Interrupt,
            _ = terminate.recv() => CancelReason::Terminate,
        };
        signals += 1;
        match signals {
            1 => eprintln!(
                "{}: finishing current requests, writing reports (signal again to exit at once)",
                reason.describe()
            ),
            2 if ends_by_force => {
                eprintln!(
                    "second signal: dropping the requests in flight and exiting now (the state store is consistent; the next run resumes)"
                );
                tokio::spawn(async move {
                    tokio::time::sleep(FORCED_END).await;
                    std::process::exit(i32::from(reason.exit_code()));
                });
            }
            _ => std::process::exit(i32::from(reason.exit_code())),
        }
        shutdown.trigger(reason);
    }
}

/// How long a forced run may take to write its reports and record its end before the process
/// exits without them (its state store is consistent either way).
const FORCED_END: std::time::Duration = std::time::Duration::from_secs(5);

/// What a `--config` file decides before a command starts: the log format and progress view
/// of `run` and `plan` (flags win; a file that cannot be read is reported by the command
/// itself, with its exit code), and the state dir of `status`, `runs` and `report` unless
/// `--state-dir` was given.
fn settle_from_config(cli: &mut Cli, matches: &ArgMatches) -> Result<(), u8> {
    let (name, store) = match &mut cli.command {
        Command::Run(args) => {
            settle_run(&mut cli.output, args);
            return Ok(());
        }
        Command::Plan(args) => {
            settle_run(&mut cli.output, &args.run);
            return Ok(());
        }
        Command::Demo(args) => {
            cli.output.progress = args.progress;
            return Ok(());
        }
        Command::Status(args) => ("status", &mut args.store),
        Command::Runs(args) => ("runs", &mut args.store),
        Command::Report(args) => ("report", &mut args.store),
        _ => return Ok(()),
    };
    let Some(path) = &store.config else {
        return Ok(());
    };
    let file = SettingsFile::load(Some(path)).map_err(|error| {
        cmafleet::fatal::report(error.exit_code(), &error.to_string());
        error.exit_code()
    })?;
    let defaulted = matches
        .subcommand_matches(name)
        .and_then(|matches| matches.value_source("state_dir"))
        .is_none_or(|source| source == ValueSource::DefaultValue);
    if defaulted && let Some(dir) = file.state_dir {
        store.state_dir = dir;
    }
    Ok(())
}

/// The log format and progress view of a `run` line: flags, then its `--config` file.
fn settle_run(output: &mut cli::OutputArgs, args: &cli::RunArgs) {
    output.progress = args.progress;
    if let Some(path) = args.config.as_deref()
        && let Ok(file) = SettingsFile::load(Some(path))
    {
        output.log_format = output.log_format.or(file.log_format);
        output.progress = output.progress.or(file.progress);
    }
}
