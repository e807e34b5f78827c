//! The `cmafleet` binary: parse the command line, set up logging and signals, call the
//! library, exit with its code.

use std::process::ExitCode;

use clap::Parser;
use cmafleet::cli::{Cli, Command};
use cmafleet::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match &cli.command {
        Command::Validate(args) => commands::validate::run(args),
        Command::Sim(args) => run_async(|shutdown| commands::sim::run(args, shutdown)),
        _ => {
            eprintln!("not yet available");
            cmafleet::exit::USAGE
        }
    };
    ExitCode::from(code)
}

/// Runs an async command on a tokio runtime with a shutdown token cancelled by ctrl-c.
fn run_async<F, Fut>(command: F) -> u8
where
    F: FnOnce(tokio_util::sync::CancellationToken) -> Fut,
    Fut: std::future::Future<Output = u8>,
{
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: failed to start the async runtime: {err}");
            return cmafleet::exit::CONFIG;
        }
    };
    runtime.block_on(async {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_signal.cancel();
            }
        });
        command(shutdown).await
    })
}
