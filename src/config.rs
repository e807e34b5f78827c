//! Validated, resolved settings built from the command line, `CMAFLEET_*` variables and the
//! optional `--config` file (flags and variables override the file, the file overrides the
//! defaults of [`crate::cli::defaults`]). Nothing past this module sees raw flags.
//!
//! Every setting is layered by the same rule (the `layer` module), the command line taken
//! as one more settings file (`flags`); this module says which settings a run has, in the
//! order `--print-config` shows them, and how they depend on each other.

mod engine;
mod error;
mod file;
mod flags;
mod layer;
mod network;
mod print;
mod run;
mod shard;
mod values;

pub use error::ConfigError;
pub use file::SettingsFile;
pub use flags::mode_of;
pub use network::ConnectionSettings;
pub use run::{Resolved, RunSettings};
pub use shard::{Selection, Shard};

/// Atlassian's migration API (`--cloud-api-url`'s default): `status` leaves it unsaid.
pub use crate::cli::defaults::CLOUD_API_URL as DEFAULT_CLOUD_API_URL;

#[cfg(test)]
mod tests;
