//! The `cmafleet` binary: parse the command line, set up logging and signals, call the
//! library, exit with its code.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cmafleet::cli::{Cli, Command, LogFormat, OutputArgs};
use cmafleet::commands;
use cmafleet::fleet::shutdown::{CancelReason, Shutdown};
use cmafleet::{exit, progress};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.output);
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
        tokio::spawn(handle_signals(shutdown.clone()));
        dispatch(cli, shutdown).await
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(code)
}

async fn dispatch(cli: Cli, shutdown: Shutdown) -> u8 {
    match &cli.command {
        Command::Demo(args) => commands::demo::run(args, &cli.output, shutdown).await,
        Command::Validate(args) => commands::validate::run(args),
        Command::Plan(args) => commands::plan::run(args),
        Command::Run(args) => commands::run::run(args, &cli.output, shutdown).await,
        Command::Status(args) => commands::status::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Sim(args) => commands::sim::run(args, shutdown.graceful().clone()).await,
        Command::Completions(args) => {
            clap_complete::generate(
                args.shell,
                &mut Cli::command(),
                "cmafleet",
                &mut std::io::stdout(),
            );
            exit::OK
        }
        Command::Man => {
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => exit::OK,
                Err(error) => {
                    eprintln!("error: cannot write the man page: {error}");
                    exit::CANT_CREATE
                }
            }
        }
    }
}

/// First SIGINT/SIGTERM: drain. Second: exit at once (the state store stays consistent: every
/// write is a committed SQLite transaction).
async fn handle_signals(shutdown: Shutdown) {
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
    loop {
        let reason = tokio::select! {
            _ = interrupt.recv() => CancelReason::Interrupt,
            _ = terminate.recv() => CancelReason::Terminate,
        };
        if shutdown.is_draining()
            && shutdown
                .reason()
                .is_some_and(|previous| previous != CancelReason::Deadline)
        {
            eprintln!(
                "second signal: exiting now (the state store is consistent; the next run resumes)"
            );
            std::process::exit(i32::from(reason.exit_code()));
        }
        eprintln!(
            "{}: finishing current requests, writing reports (signal again to exit at once)",
            reason.describe()
        );
        shutdown.trigger(reason);
    }
}

fn init_logging(output: &OutputArgs) {
    let default = if output.quiet {
        "warn"
    } else {
        match output.verbose {
            0 => "info",
            1 => "cmafleet=debug,info",
            _ => "cmafleet=trace,debug",
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(progress::LogWriter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    match output.log_format.unwrap_or(LogFormat::Text) {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => builder.with_ansi(ansi).with_target(false).init(),
    }
}
