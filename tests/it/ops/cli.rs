//! The settings file and its precedence (flag and `CMAFLEET_*` variable > file > default),
//! `--print-config`, a run driven by the file alone, and the generated shell completions and
//! man page.

use std::path::Path;
use std::process::{Command, Output};

use cmafleet::config::SettingsFile;

use crate::support::fleet::{Fleet, Row};

fn cmafleet() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cmafleet"));
    command
        .env_remove("RUST_LOG")
        .env_remove("JOB_COMPLETION_INDEX");
    // No stray CMAFLEET_* from the environment the tests run in.
    for (key, _) in std::env::vars() {
        if key.starts_with("CMAFLEET_") {
            command.env_remove(key);
        }
    }
    command
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `key = value  # origin` lines of `--print-config`, as (value, origin).
fn printed(output: &Output) -> std::collections::BTreeMap<String, (String, String)> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text(output)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (setting, origin) = line.split_once("  # ").expect("an origin comment");
            let (key, value) = setting.split_once(" = ").expect("key = value");
            (
                key.trim().to_owned(),
                (value.trim().to_owned(), origin.trim().to_owned()),
            )
        })
        .collect()
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("cmafleet.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn flags_override_the_file_and_the_file_overrides_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        r#"
            inventory = "fleet.csv"
            mode = "check"
            concurrency = 7
            per-server = 3
            poll-max = "2m"
            rate-read = "300/min"
            precheck = true
            progress-interval = "10s"
            pushgateway = "https://push:hunter2@gw.example.com/"
        "#,
    );
    let output = cmafleet()
        .args(["run", "--print-config", "--config"])
        .arg(&config)
        .args([
            "--concurrency",
            "9",
            "--precheck=false",
            "--rate-read",
            "100/min",
        ])
        .env("CMAFLEET_PER_SERVER", "2")
        .output()
        .unwrap();
    let settings = printed(&output);
    let flag = "flag or CMAFLEET_* variable";
    let is = |key: &str, value: &str, origin: &str| {
        assert_eq!(
            settings[key],
            (value.to_owned(), origin.to_owned()),
            "{key}:\n{}",
            text(&output)
        );
    };
    // flag > file
    is("concurrency", "9", flag);
    is("precheck", "false", flag);
    is("rate-read", "\"100/min\"", flag);
    // variable > file
    is("per-server", "2", flag);
    // file > default
    is("poll-max", "\"2m\"", "config file");
    is("progress-interval", "\"10s\"", "config file");
    is("mode", "\"check\"", "config file");
    let inventory = dir.path().join("fleet.csv");
    is(
        "inventory",
        &format!("\"{}\"", inventory.display()),
        "config file",
    );
    // defaults
    is("poll-min", "\"5s\"", "default");
    is("rate-create-task", "\"5/min\"", "default");
    is("state-dir", "\"cmafleet-state\"", "default");
    // A password in a URL never prints.
    is(
        "pushgateway",
        "\"https://push:***@gw.example.com/\"",
        "config file",
    );
    assert!(!text(&output).contains("hunter2"));

    // The output is itself a settings file that resolves to the same values.
    let again = write_config(dir.path(), &text(&output));
    let reread = SettingsFile::load(Some(&again)).expect("print-config output loads");
    assert_eq!(reread.concurrency, Some(9));
    assert_eq!(reread.precheck, Some(false));
    assert_eq!(reread.poll_max.as_deref(), Some("2m"));
}

#[test]
fn the_file_can_shard_by_job_completion_index() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "inventory = \"fleet.csv\"\nmode = \"migrate\"\nshards = 3\n",
    );
    let output = cmafleet()
        .args(["run", "--print-config", "--config"])
        .arg(&config)
        .env("JOB_COMPLETION_INDEX", "2")
        .output()
        .unwrap();
    let line = text(&output)
        .lines()
        .find(|line| line.starts_with("shards = 3"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{}", text(&output)));
    assert!(
        line.ends_with("# config file; this process is shard 2/3 (JOB_COMPLETION_INDEX)"),
        "{line}"
    );
    let both = write_config(dir.path(), "shards = 3\nshard = \"0/3\"\n");
    let refused = cmafleet()
        .args(["run", "x.csv", "--mode", "check", "--config"])
        .arg(&both)
        .output()
        .unwrap();
    assert_eq!(
        refused.status.code(),
        Some(78),
        "shard and shards in one file"
    );
}

#[test]
fn a_bad_config_file_is_a_configuration_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "mode = \"check\"\nconcurency = 4\n");
    let output = cmafleet()
        .args(["run", "inventory.csv", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("concurency") && stderr.contains("line 2"),
        "{stderr}"
    );

    let missing = cmafleet()
        .args(["run", "--mode", "check"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2), "no inventory anywhere");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_takes_everything_from_the_settings_file() {
    let fleet = Fleet::start("", 3600.0, vec![Row::jira("acme"), Row::jira("globex")]).await;
    // The harness's flags, as a settings file: the command line is just `run --config`.
    let planned = fleet.command("check", "from-file");
    let args: Vec<String> = planned
        .as_std()
        .get_args()
        .map(|arg| arg.to_str().unwrap().to_owned())
        .collect();
    let mut file = format!(
        "inventory = {:?}\nmode = \"check\"\nsite = [\"globex\"]\nprogress = \"never\"\n",
        args[1]
    );
    for pair in args[4..].chunks(2) {
        let key = pair[0].trim_start_matches("--");
        if key != "progress" {
            file.push_str(&format!("{key} = {:?}\n", pair[1]));
        }
    }
    let config = fleet.dir.path().join("nightly.toml");
    std::fs::write(&config, file).unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cmafleet"));
    command
        .args(["run", "--config"])
        .arg(&config)
        .envs(
            planned
                .as_std()
                .get_envs()
                .filter_map(|(key, value)| Some((key, value?))),
        )
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let output = Fleet::output(command).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let summary = fleet.summary("from-file");
    assert_eq!(
        summary.keys().collect::<Vec<_>>(),
        ["globex"],
        "the file's `site` selection"
    );
    assert_eq!(summary["globex"]["outcome"], "succeeded");

    // `status` and `report` find the state dir through the same file.
    let status = cmafleet()
        .args(["status", "--format", "json", "--config"])
        .arg(&config)
        .current_dir(fleet.dir.path())
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(text(&status).contains("globex"), "{}", text(&status));
    let elsewhere = cmafleet()
        .args(["status", "--config"])
        .arg(&config)
        .args(["--state-dir", "/nonexistent/state"])
        .output()
        .unwrap();
    assert!(
        !elsewhere.status.success(),
        "--state-dir wins over the file"
    );
}

#[test]
fn completions_and_the_man_page_cover_every_command() {
    let commands = ["demo", "validate", "plan", "run", "status", "report", "sim"];
    for shell in ["bash", "zsh", "fish"] {
        let output = cmafleet().args(["completions", shell]).output().unwrap();
        assert!(output.status.success(), "{shell}");
        let script = text(&output);
        for command in commands {
            assert!(
                script.contains(command),
                "{shell} completion lacks `{command}`"
            );
        }
        assert!(script.contains("print-config"), "{shell}: run's flags");
    }
    let man = cmafleet().arg("man").output().unwrap();
    assert!(man.status.success());
    let page = text(&man);
    assert!(
        page.starts_with(".ie") || page.contains(".TH cmafleet"),
        "roff"
    );
    for command in commands {
        assert!(page.contains(command), "the man page lacks `{command}`");
    }
}
