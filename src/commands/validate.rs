//! `cmafleet validate INVENTORY [--secrets]`.
//!
//! SKELETON: to be written (issue 3).

use crate::cli::ValidateArgs;

/// Validates offline; prints a summary or every problem; returns the exit code.
pub fn run(args: &ValidateArgs) -> u8 {
    let _ = args;
    todo!()
}
