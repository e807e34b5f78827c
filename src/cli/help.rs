//! What `--help` says beyond each flag's line: the run settings' defaults, examples and the
//! exit codes at the end of every command's long help, and in `plan --help` the flags of `run`
//! it accepts and ignores under a heading of their own.

use super::defaults;
use crate::exit::HELP_TABLE;

/// The heading of the flags `plan` takes from `run` without using them.
const PLAN_IGNORES: &str =
    "Run options (accepted so a `run` line can be previewed; plan ignores them)";

/// `run`'s flags that matter only once requests are sent: `plan` accepts and ignores them.
const RUN_ONLY: [&str; 20] = [
    "report_dir",
    "cloud_api_url",
    "connect",
    "block_on_warnings",
    "override_checks",
    "wait_apps",
    "no_new_tasks_after",
    "deadline",
    "poll_min",
    "poll_max",
    "metrics_listen",
    "pushgateway",
    "metrics_textfile",
    "progress",
    "progress_interval",
    "request_timeout",
    "http2_prior_knowledge",
    "ca_cert",
    "stop_after_same_failures",
    "stop_grace",
];

/// Examples of each command, shown above the exit codes in its long help (`--help`).
pub(super) const EXAMPLES: [(&str, &str); 10] = [
    (
        "demo",
        "  cmafleet demo                                    # checks, then migration, against the simulator
  cmafleet demo --out /tmp/demo --time-scale 1200  # elsewhere, twice as fast",
    ),
    (
        "validate",
        "  cmafleet validate fleet.csv                      # offline: every problem with its line
  cmafleet validate fleet.csv --secrets            # and every secret reference resolves
  cmafleet validate fleet.csv --online --config nightly.toml
                                                   # then every row tried live, nothing created",
    ),
    (
        "plan",
        "  cmafleet plan fleet.csv --mode check
  cmafleet plan fleet.csv --mode migrate --precheck --wave 1 --format json
  cmafleet plan --config nightly.toml --deadline 6h  # any `run` line, with `plan` for `run`",
    ),
    (
        "run",
        "  cmafleet run fleet.csv --mode check              # nightly pre-migration checks
  cmafleet run fleet.csv --mode migrate --precheck --wave 1 --no-new-tasks-after 05:30 --deadline 6h
  cmafleet run --config nightly.toml --print-config  # the settings and where each comes from
  cmafleet plan fleet.csv --mode migrate --wave 1  # the same line as a dry run",
    ),
    (
        "status",
        "  cmafleet status                                  # every site of ./cmafleet-state
  cmafleet status --site acme-jira                 # its message, failed checks, next step
  cmafleet status --config nightly.toml --format json",
    ),
    (
        "runs",
        "  cmafleet runs                                    # past runs of ./cmafleet-state, newest first
  cmafleet runs --state-dir /var/lib/cmafleet --format json",
    ),
    (
        "report",
        "  cmafleet report --out /tmp/last-night            # the latest run's reports
  cmafleet report --out /tmp/may-1 --run 20260501T020000Z-3f9a   # a past run (`cmafleet runs`)",
    ),
    (
        "sim",
        "  cmafleet sim --listen 127.0.0.1:8080 --time-scale 60   # a simulated minute a second
  cmafleet sim --shapes random --seed 7            # every open point of the API varied",
    ),
    (
        "completions",
        "  cmafleet completions bash > /etc/bash_completion.d/cmafleet
  cmafleet completions zsh > \"${fpath[1]}/_cmafleet\"",
    ),
    (
        "man",
        "  cmafleet man > /usr/local/share/man/man1/cmafleet.1",
    ),
];

/// `command` with the run settings' defaults, every command's examples and exit codes in its
/// long help and `plan`'s borrowed flags under their heading.
pub(super) fn decorate(command: clap::Command) -> clap::Command {
    let mut command = with_defaults(command);
    for (name, examples) in EXAMPLES {
        command = command.mut_subcommand(name, |sub| {
            sub.after_long_help(format!("Examples:\n{examples}\n\n{HELP_TABLE}"))
        });
    }
    command.mut_subcommand("plan", |plan| {
        RUN_ONLY.into_iter().fold(plan, |plan, id| {
            plan.mut_arg(id, |arg| arg.help_heading(PLAN_IGNORES))
        })
    })
}

/// Each flag's default from [`defaults`], after its help text. clap shows a default only of
/// a flag that has one of its own, and these flags must have none: a flag left out is filled
/// from the `--config` file first.
fn with_defaults(command: clap::Command) -> clap::Command {
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    names.iter().fold(command, |command, name| {
        command.mut_subcommand(name, |sub| {
            let defaulted: Vec<(clap::Id, &str)> = sub
                .get_arguments()
                .filter(|arg| arg.get_default_values().is_empty())
                .filter_map(|arg| Some((arg.get_id().clone(), defaults::of(arg.get_long()?)?)))
                .collect();
            defaulted.into_iter().fold(sub, |sub, (id, default)| {
                sub.mut_arg(id, |arg| said_default(arg, default))
            })
        })
    })
}

/// `arg` with ` [default: …]` after its help (and its long help, when it has one).
fn said_default(arg: clap::Arg, default: &str) -> clap::Arg {
    let said = |help: &clap::builder::StyledStr| format!("{help} [default: {default}]");
    let (help, long_help) = (arg.get_help().map(said), arg.get_long_help().map(said));
    let arg = match help {
        Some(help) => arg.help(help),
        None => arg,
    };
    match long_help {
        Some(long_help) => arg.long_help(long_help),
        None => arg,
    }
}
