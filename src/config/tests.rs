//! The layering as a user meets it: a command line (and its `CMAFLEET_*` variables), a
//! settings file and the defaults, resolved into settings and `--print-config` lines.

use clap::FromArgMatches;

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::cli::RunArgs;
use crate::cli::{self, Cli, Command};
use crate::cma::client::ClientSettings;
use crate::exit;
use crate::fleet::policy::{PollPolicy, RateConfig};

/// `cmafleet run` with `line` after it; `state_dir_from`: an environment variable that
/// stands in for `CMAFLEET_STATE_DIR` (tests must not change the process's environment,
/// so they point the flag at a variable every process has).
fn run_args(line: &[&str], state_dir_from: Option<&'static str>) -> RunArgs {
    let mut command = cli::command();
    if let Some(variable) = state_dir_from {
        command = command.mut_subcommand("run", |run| {
            run.mut_arg("state_dir", |arg| arg.env(variable))
        });
    }
    let words = ["cmafleet", "run"].iter().chain(line);
    let matches = command.try_get_matches_from(words).unwrap();
    match Cli::from_arg_matches(&matches).unwrap().command {
        Command::Run(args) => *args,
        other => panic!("not a run: {other:?}"),
    }
}

/// The `--print-config` line of `key`: its value as TOML, and where it came from.
fn line(resolved: &Resolved, key: &str) -> (Option<String>, &'static str) {
    let shown = resolved
        .shown
        .iter()
        .find(|shown| shown.key == key)
        .unwrap();
    let value = shown.value.as_ref().map(ToString::to_string);
    (value, shown.origin.as_str())
}

const FLAG: &str = "flag or CMAFLEET_* variable";

#[test]
fn a_flag_beats_its_variable_which_beats_the_file_which_beats_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cmafleet.toml");
    std::fs::write(
        &config,
        "inventory = \"/srv/fleet.csv\"\nmode = \"check\"\nstate-dir = \"/from/file\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let variable = std::env::var("PATH").unwrap();

    let flag = RunSettings::resolve(&run_args(
        &["--config", config, "--state-dir", "/from/flag"],
        Some("PATH"),
    ))
    .unwrap();
    assert_eq!(flag.settings.state_dir, PathBuf::from("/from/flag"));
    assert_eq!(
        line(&flag, "state-dir"),
        (Some("\"/from/flag\"".into()), FLAG)
    );

    let from_variable = RunSettings::resolve(&run_args(&["--config", config], Some("PATH")));
    let from_variable = from_variable.unwrap();
    assert_eq!(from_variable.settings.state_dir, PathBuf::from(&variable));
    assert_eq!(line(&from_variable, "state-dir").1, FLAG);

    let file = RunSettings::resolve(&run_args(&["--config", config], None)).unwrap();
    assert_eq!(file.settings.state_dir, PathBuf::from("/from/file"));
    assert_eq!(
        line(&file, "state-dir"),
        (Some("\"/from/file\"".into()), "config file")
    );
    assert_eq!(
        line(&file, "mode"),
        (Some("\"check\"".into()), "config file")
    );

    let default = RunSettings::resolve(&run_args(&["x.csv", "--mode", "check"], None)).unwrap();
    assert_eq!(default.settings.state_dir, PathBuf::from("cmafleet-state"));
    assert_eq!(
        line(&default, "state-dir"),
        (Some("\"cmafleet-state\"".into()), "default")
    );
    assert_eq!(line(&default, "mode"), (Some("\"check\"".into()), FLAG));
    assert_eq!(line(&default, "deadline"), (None, "default"));
    assert!(default.print().contains("# deadline ="));
}

#[test]
fn with_nothing_given_each_default_is_the_tables_and_the_engines() {
    let resolved = RunSettings::resolve(&run_args(&["x.csv", "--mode", "migrate"], None)).unwrap();
    for key in crate::cli::defaults::keys() {
        let (value, origin) = line(&resolved, key);
        assert!(value.is_some(), "{key} has a value");
        assert_eq!(origin, "default", "{key}");
    }
    let settings = &resolved.settings;
    assert_eq!(settings.concurrency, 50);
    assert_eq!(settings.per_server, 1);
    assert_eq!(
        settings.cloud_api_url.as_str(),
        "https://api.atlassian.com/"
    );
    assert_eq!(settings.rates, RateConfig::default());
    assert_eq!(settings.poll, PollPolicy::default());
    assert_eq!(
        settings.client.request_timeout,
        ClientSettings::default().request_timeout
    );
    assert_eq!(settings.progress_interval, Duration::from_secs(30));
    assert_eq!(settings.stop_after_same_failures, 3);
    assert_eq!(settings.stop_grace, Duration::from_secs(10));
    assert_eq!(settings.young_task_grace, Duration::from_secs(30));
    assert!(!settings.precheck && !settings.connect && !settings.remigrate);
    assert_eq!(
        line(&resolved, "precheck"),
        (Some("false".into()), "default")
    );
}

#[test]
fn the_files_mode_is_checked_even_under_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cmafleet.toml");
    std::fs::write(&config, "mode = \"chekc\"\n").unwrap();
    let args = run_args(
        &[
            "x.csv",
            "--mode",
            "check",
            "--config",
            config.to_str().unwrap(),
        ],
        None,
    );
    let error = RunSettings::resolve(&args).unwrap_err();
    assert_eq!(error.exit_code(), exit::CONFIG, "{error}");
}
