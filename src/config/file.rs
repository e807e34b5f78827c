//! The settings file (`--config cmafleet.toml`): every run option under its flag's name, so a
//! cron line or a systemd unit stays one short command. Relative paths in the file are taken
//! relative to the file's own directory, so a config directory can be moved as a whole.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::ConfigError;
use crate::cli::{LogFormat, ProgressMode};

/// The settings file, key by key (kebab-case, as the flags are spelled). Unknown keys are
/// errors, so a typo never silently falls back to a default. The command line is layered
/// over it in the same shape (`super::flags`); no default is written here.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SettingsFile {
    /// The inventory CSV, so `cmafleet run --config FILE` needs nothing else.
    pub inventory: Option<PathBuf>,
    /// `check` or `migrate`.
    pub mode: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub report_dir: Option<PathBuf>,
    pub cloud_api_url: Option<String>,
    pub concurrency: Option<usize>,
    pub per_server: Option<usize>,
    pub wave: Option<Vec<String>>,
    pub site: Option<Vec<String>>,
    /// `I/N`: this process takes shard I of N.
    pub shard: Option<String>,
    /// N, with I from `JOB_COMPLETION_INDEX` (a Kubernetes Indexed Job).
    pub shards: Option<u32>,
    pub precheck: Option<bool>,
    pub block_on_warnings: Option<bool>,
    pub override_checks: Option<Vec<String>>,
    pub connect: Option<bool>,
    pub wait_apps: Option<bool>,
    pub remigrate: Option<bool>,
    pub no_new_tasks_after: Option<String>,
    pub deadline: Option<String>,
    pub poll_min: Option<String>,
    pub poll_max: Option<String>,
    pub rate_create_job: Option<String>,
    pub rate_create_task: Option<String>,
    pub rate_read: Option<String>,
    pub rate_token: Option<String>,
    pub metrics_listen: Option<String>,
    pub pushgateway: Option<String>,
    pub metrics_textfile: Option<PathBuf>,
    pub progress_interval: Option<String>,
    pub request_timeout: Option<String>,
    pub http2_prior_knowledge: Option<bool>,
    pub ca_cert: Option<PathBuf>,
    pub stop_after_same_failures: Option<usize>,
    pub stop_grace: Option<String>,
    /// Read by `main` before logging starts (`--log-format` overrides it).
    pub log_format: Option<LogFormat>,
    /// Read by `main` (`--progress` overrides it).
    pub progress: Option<ProgressMode>,
}

impl SettingsFile {
    /// The file at `path`, or an empty one when there is none (exit 78 when it cannot be
    /// read or does not parse, naming the line).
    pub fn load(path: Option<&Path>) -> Result<SettingsFile, ConfigError> {
        let Some(path) = path else {
            return Ok(SettingsFile::default());
        };
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigError::Config(format!(
                "cannot read config file {}: {error}",
                path.display()
            ))
        })?;
        let mut file = SettingsFile::parse(&text).map_err(|error| {
            ConfigError::Config(format!("config file {}: {error}", path.display()))
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        file.anchor_paths(base);
        Ok(file)
    }

    /// Parses the TOML text of a settings file.
    pub fn parse(text: &str) -> Result<SettingsFile, String> {
        toml::from_str(text).map_err(|error| error.to_string().trim_end().to_owned())
    }

    /// Makes relative paths relative to `base` (the file's directory).
    fn anchor_paths(&mut self, base: &Path) {
        for path in [
            &mut self.inventory,
            &mut self.state_dir,
            &mut self.report_dir,
            &mut self.metrics_textfile,
            &mut self.ca_cert,
        ]
        .into_iter()
        .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let error = SettingsFile::parse("concurrency = 4\nconcurency = 5\n").unwrap_err();
        assert!(error.contains("line 2"), "{error}");
        assert!(error.contains("concurency"), "{error}");
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("check.toml");
        std::fs::write(
            &path,
            "inventory = \"fleet.csv\"\nstate-dir = \"/var/lib/cmafleet\"\nreport-dir = \"out\"\n",
        )
        .unwrap();
        let file = SettingsFile::load(Some(&path)).unwrap();
        assert_eq!(file.inventory, Some(dir.path().join("fleet.csv")));
        assert_eq!(file.state_dir, Some(PathBuf::from("/var/lib/cmafleet")));
        assert_eq!(file.report_dir, Some(dir.path().join("out")));
    }

    #[test]
    fn a_missing_file_is_a_configuration_error() {
        let error = SettingsFile::load(Some(Path::new("/nonexistent/cmafleet.toml"))).unwrap_err();
        assert!(matches!(error, ConfigError::Config(_)), "{error:?}");
    }
}
