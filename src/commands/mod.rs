//! One entry point per command: each takes its resolved arguments and a shutdown handle and
//! returns the process exit code. `main` only parses, sets up logging and signals, and exits.

pub mod sim;
pub mod validate;
