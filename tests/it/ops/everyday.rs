//! The command line as a consultant meets it every day: a flag given twice, a `run` line
//! previewed with `plan`, output piped into `head`, missing secrets, the help, and the plan's
//! table. (`runs`, `status` and `report` on the state store: `state_views.rs`.)

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::support::fleet::{Fleet, Row};

pub(super) const SCALE: f64 = 3600.0;

/// The binary with no `CMAFLEET_*` from the environment the tests run in.
pub(super) fn cmafleet() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cmafleet"));
    command.env_remove("RUST_LOG");
    for (key, _) in std::env::vars() {
        if key.starts_with("CMAFLEET_") {
            command.env_remove(key);
        }
    }
    command
}

pub(super) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(super) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The arguments of a harness command (`run INVENTORY --mode M --state-dir D …`).
pub(super) fn args_of(command: &tokio::process::Command) -> Vec<String> {
    command
        .as_std()
        .get_args()
        .map(|arg| arg.to_str().unwrap().to_owned())
        .collect()
}

/// `cmafleet ARGS` with the fleet's secrets, in the fleet's dir, to its end.
pub(super) fn cli(fleet: &Fleet, args: &[&str]) -> Output {
    cmafleet()
        .args(args)
        .current_dir(fleet.dir.path())
        .env("FLEET_CLOUD_TOKEN", crate::support::fleet::CLOUD_TOKEN)
        .env("FLEET_SERVER_PAT", crate::support::fleet::SERVER_PAT)
        .output()
        .unwrap()
}

pub(super) fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_given_twice_takes_its_last_value() {
    let fleet = Fleet::start("", SCALE, vec![Row::jira("acme")]).await;
    // A wrapper script appending `--report-dir` to a base set of flags that has one.
    let chosen = fleet.report_dir("chosen");
    let run = fleet
        .run("check", "base", &["--report-dir", path(&chosen)])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        chosen.join("summary.csv").is_file(),
        "the last --report-dir"
    );
    assert!(
        !fleet.report_dir("base").exists(),
        "the first is overridden"
    );

    let inventory = path(&fleet.inventory);
    let validate = cli(&fleet, &["validate", inventory, "--secrets", "--secrets"]);
    assert_eq!(validate.status.code(), Some(0), "{}", stderr(&validate));
    let printed = cli(
        &fleet,
        &[
            "run",
            inventory,
            "--mode",
            "check",
            "--concurrency",
            "3",
            "--mode",
            "migrate",
            "--concurrency",
            "9",
            "--print-config",
        ],
    );
    assert_eq!(printed.status.code(), Some(0), "{}", stderr(&printed));
    let text = stdout(&printed);
    assert!(text.contains("mode = \"migrate\""), "{text}");
    assert!(text.contains("concurrency = 9"), "{text}");
    // Repeatable selections still add up.
    let planned = cli(
        &fleet,
        &[
            "plan", inventory, "--mode", "check", "--site", "acme", "--site", "acme",
        ],
    );
    assert_eq!(planned.status.code(), Some(0), "{}", stderr(&planned));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_takes_the_whole_command_line_of_run() {
    let fleet = Fleet::start("", SCALE, vec![Row::jira("acme"), Row::jira("globex")]).await;
    let mut args = args_of(&fleet.command("check", "never-written"));
    assert_eq!(args[0], "run");
    args[0] = "plan".to_owned();
    args.extend(
        [
            "--deadline",
            "6h",
            "--no-new-tasks-after",
            "05:30",
            "--metrics-listen",
            "127.0.0.1:0",
            "--stop-grace",
            "3s",
            "--request-timeout",
            "30s",
            "--http2-prior-knowledge",
            "--wait-apps",
            "--stop-after-same-failures",
            "2",
        ]
        .map(str::to_owned),
    );
    let output = cli(&fleet, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    for site in ["acme", "globex"] {
        assert!(
            text.lines()
                .any(|line| line.starts_with(site) && line.contains("create check task")),
            "{text}"
        );
    }
    assert!(
        !fleet.report_dir("never-written").exists(),
        "a plan writes no report"
    );
    assert_eq!(fleet.counters().await.total, 0, "a plan sends nothing");

    // A bad value of a flag plan ignores is still refused, as `run` would refuse it.
    let bad = cli(
        &fleet,
        &[
            "plan",
            path(&fleet.inventory),
            "--mode",
            "check",
            "--poll-min",
            "soon",
        ],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    let help = stdout(&cmafleet().args(["plan", "--help"]).output().unwrap());
    let heading = help
        .find("Run options (accepted so a `run` line can be previewed; plan ignores them):")
        .unwrap_or_else(|| panic!("{help}"));
    for flag in [
        "--deadline",
        "--cloud-api-url",
        "--report-dir",
        "--progress <WHEN>",
    ] {
        assert!(
            help.find(flag).is_some_and(|at| at > heading),
            "{flag} under the ignored heading:\n{help}"
        );
    }
    assert!(help.find("--concurrency").is_some_and(|at| at < heading));
}

/// Runs `command` with a stdout whose reader is already gone: every write is `EPIPE`.
fn with_closed_stdout(mut command: Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    command
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_writes_to_a_closed_pipe_quietly() {
    let fleet = Fleet::start("", SCALE, vec![Row::jira("acme"), Row::jira("globex")]).await;
    // `run` itself: its summary goes nowhere, its exit code is the run's.
    let mut run = fleet.command("check", "first").into_std();
    run.stdin(Stdio::null());
    let ran = with_closed_stdout(run);
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    assert!(fleet.report_dir("first").join("summary.csv").is_file());

    let state_dir = fleet.state_dir();
    let (inventory, state) = (path(&fleet.inventory), path(&state_dir));
    let out = fleet.dir.path().join("rendered");
    let commands: Vec<Vec<&str>> = vec![
        vec!["plan", inventory, "--mode", "check", "--state-dir", state],
        vec!["plan", inventory, "--mode", "check", "--format", "json"],
        vec!["validate", inventory],
        vec!["run", inventory, "--mode", "check", "--print-config"],
        vec!["status", "--state-dir", state],
        vec!["status", "--state-dir", state, "--site", "acme"],
        vec!["runs", "--state-dir", state],
        vec!["runs", "--state-dir", state, "--format", "json"],
        vec!["report", "--state-dir", state, "--out", path(&out)],
        vec!["man"],
        vec!["completions", "bash"],
        vec!["completions", "zsh"],
        vec!["--help"],
        vec!["run", "--help"],
    ];
    for args in commands {
        let mut command = cmafleet();
        command
            .args(&args)
            .current_dir(fleet.dir.path())
            .env("FLEET_CLOUD_TOKEN", crate::support::fleet::CLOUD_TOKEN)
            .env("FLEET_SERVER_PAT", crate::support::fleet::SERVER_PAT);
        let output = with_closed_stdout(command);
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {said}");
        assert!(
            !said.contains("panicked") && !said.contains("Broken pipe"),
            "{args:?}: {said}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_groups_missing_secrets_by_reference_like_validate() {
    let rows = vec![Row::jira("a"), Row::jira("b"), Row::jira("c")];
    let fleet = Fleet::start("", SCALE, rows).await;
    let mut command = fleet.command("check", "none");
    command
        .env_remove("FLEET_CLOUD_TOKEN")
        .env_remove("FLEET_SERVER_PAT");
    let run = Fleet::output(command).await;
    assert_eq!(run.code, 78, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        lines.contains(
            &"secret env:FLEET_CLOUD_TOKEN (lines 2, 3, 4): environment variable FLEET_CLOUD_TOKEN is not set"
        ),
        "{}",
        run.stderr
    );
    assert!(
        lines.contains(
            &"secret env:FLEET_SERVER_PAT (lines 2, 3, 4): environment variable FLEET_SERVER_PAT is not set"
        ),
        "{}",
        run.stderr
    );
    assert!(
        !lines.iter().any(|line| line.starts_with("line ")),
        "nothing per row: {}",
        run.stderr
    );
    assert!(
        lines.contains(&"error: 2 secret reference(s) do not resolve; set them and run again"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_help_groups_global_options_and_gives_examples_and_exit_codes() {
    let help = |args: &[&str]| stdout(&cmafleet().args(args).output().unwrap());
    let commands = [
        "demo",
        "validate",
        "plan",
        "run",
        "status",
        "runs",
        "report",
        "sim",
        "completions",
        "man",
    ];
    for command in commands {
        let text = help(&[command, "--help"]);
        let global = text
            .find("\nGlobal options:\n")
            .unwrap_or_else(|| panic!("{command}:\n{text}"));
        let options = text
            .find("\nOptions:\n")
            .unwrap_or_else(|| panic!("{command}:\n{text}"));
        assert!(options < global, "{command}: own options first");
        assert_eq!(
            text.matches("--log-format <FORMAT>").count(),
            1,
            "{command}"
        );
        assert!(
            text.find("--log-format").unwrap() > global,
            "{command}: not interleaved"
        );
        assert!(text.find("-q, --quiet").unwrap() > global, "{command}");
        assert!(
            text.contains(&format!("Examples:\n  cmafleet {command}")),
            "{command}:\n{text}"
        );
        assert!(
            text.contains("Exit codes:\n  0 ") && text.contains("\n  75   temporary"),
            "{command}:\n{text}"
        );
        let offers_progress = text.contains("--progress <WHEN>");
        assert_eq!(
            offers_progress,
            ["run", "demo", "plan"].contains(&command),
            "{command}: --progress only where progress is shown (plan: ignored, with run's flags)"
        );
    }
    let run = help(&["run", "--help"]);
    assert!(
        run.contains("--mode <MODE>\n          check: pre-migration checks only"),
        "{run}"
    );
    assert!(
        run.contains("--progress-interval <DURATION>\n          Time between progress lines when not on a terminal, a duration like 30s or 2m"),
        "{run}"
    );
    for command in ["status", "runs", "plan"] {
        let text = help(&[command, "--help"]);
        assert!(
            text.contains(
                "--format <FORMAT>\n          Output: table (for people) or json (for scripts)"
            ),
            "{command}:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_table_fits_its_content_and_durations_read_alike() {
    let rows = vec![Row::jira("a"), Row::jira("a-much-longer-site-name")];
    let fleet = Fleet::start("", SCALE, rows).await;
    let run = fleet.run("check", "check", &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let state = fleet.state_dir();
    let output = cli(
        &fleet,
        &[
            "plan",
            path(&fleet.inventory),
            "--mode",
            "check",
            "--state-dir",
            path(&state),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    let action = lines[0].find("ACTION").unwrap();
    for line in &lines[1..3] {
        assert!(line.contains("reuse job "), "{text}");
        assert_eq!(
            line.find("create check task"),
            Some(action),
            "ACTION stays in its column:\n{text}"
        );
    }
    assert!(!text.contains(".00s"), "{text}");
    // Two creates at 5/min: 12 s apart; the tasks seen took well under a second.
    assert_eq!(
        *lines.last().unwrap(),
        "Lower bound on the run's length: 12s (bound by rate limits of alice@example.com; \
         assuming tasks take at least 0s)",
        "{text}"
    );
}
