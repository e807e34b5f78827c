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
        Command::Status(args) => commands::status::run(args),
        _ => {
            eprintln!("not yet available");
            cmafleet::exit::USAGE
        }
    };
    ExitCode::from(code)
}
