//! One entry point per command: each takes its resolved arguments (and, for long-running
//! commands, a shutdown handle) and returns the process exit code. `main` only parses, sets up
//! logging and signals, and exits.

pub mod demo;
mod locate;
mod online;
pub mod plan;
mod refresh;
pub mod report;
pub mod run;
pub mod runs;
mod selection;
pub mod sim;
pub mod status;
pub mod stores;
mod table;
pub mod validate;
