//! The command line: clap derive structs holding raw flags only. Every option can also come
//! from a `CMAFLEET_*` environment variable; `config` turns these into resolved settings.
//! Run options are `Option`s so that `--config FILE` can fill what the flags leave out (their
//! defaults are in [`defaults`], which `--help` shows and `config` applies last); the
//! on/off options take `--flag`, `--flag=false` or `CMAFLEET_FLAG=false`, so a flag can also
//! switch off what the file switched on.
//!
//! Given twice, a flag's last value wins (`args_override_self`), as in ripgrep and cargo: a
//! wrapper script can append to a base set of flags. Repeatable selections (`--site`,
//! `--wave`, `--override-checks`) add up instead. [`command`] is the clap command with the
//! help's headings, examples and exit codes.

pub mod defaults;
mod help;

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, CommandFactory as _, Parser, Subcommand, ValueEnum};

use crate::exit::HELP_TABLE;

/// The command line's clap command: the derived one, with every command's examples and
/// exit codes in its long help and `plan`'s borrowed flags under their heading.
pub fn command() -> clap::Command {
    help::decorate(Cli::command())
}

/// Migrate a fleet of Jira and Confluence Server/DC instances to Atlassian Cloud.
#[derive(Debug, Parser)]
#[command(
    name = "cmafleet",
    version,
    about,
    after_help = HELP_TABLE,
    propagate_version = true,
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a demo fleet through checks and migration against the built-in simulator.
    Demo(DemoArgs),
    /// Validate an inventory offline; every problem with its line number.
    Validate(ValidateArgs),
    /// Dry run: what a run would do per site and per cloud user, and how long it must take
    /// (takes every flag of `run`).
    Plan(Box<PlanArgs>),
    /// Run checks or migrations for every selected site of an inventory.
    Run(Box<RunArgs>),
    /// Show the fleet's state from the state store, or one site's and what to do next.
    Status(StatusArgs),
    /// List past runs from the state store: id, mode, start, duration, counts, exit code.
    Runs(RunsArgs),
    /// Re-render the reports of a past run from the state store.
    Report(ReportArgs),
    /// Run the simulator of the CMA migration API until interrupted.
    Sim(SimArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the man page (roff).
    Man,
}

/// Logging, for every command (under their own heading in every command's help).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct OutputArgs {
    /// Log line format on stderr (and of a fatal error on stdout).
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        env = "CMAFLEET_LOG_FORMAT"
    )]
    pub log_format: Option<LogFormat>,
    /// The live progress view of `run` and `demo` (their `--progress`, else the `--config`
    /// file's `progress`); `None`: auto.
    #[arg(skip)]
    pub progress: Option<ProgressMode>,
    /// More logging (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Less logging (warnings and errors only).
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object a line, for a log pipeline.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgressMode {
    /// The live view on a terminal, periodic lines otherwise.
    Auto,
    /// The live view even when stderr is not a terminal.
    Always,
    /// Periodic progress lines only.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Pre-migration checks only: a Check task per site.
    Check,
    /// Checks, then data: a Migrate task per site.
    Migrate,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Where the demo's state and reports go.
    #[arg(long, default_value = "cmafleet-demo", env = "CMAFLEET_DEMO_DIR")]
    pub out: PathBuf,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 600.0, env = "CMAFLEET_DEMO_TIME_SCALE")]
    pub time_scale: f64,
    /// Address of the demo's /metrics and live status page.
    #[arg(long, default_value = "127.0.0.1:0", env = "CMAFLEET_METRICS_LISTEN")]
    pub metrics_listen: String,
    /// Live progress view: auto (on a terminal), always, never.
    #[arg(long, value_enum, value_name = "WHEN", env = "CMAFLEET_PROGRESS")]
    pub progress: Option<ProgressMode>,
}

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// The inventory CSV.
    pub inventory: PathBuf,
    /// Also check that every secret reference resolves (values are never shown).
    #[arg(long)]
    pub secrets: bool,
    /// Then try every row live (or the rows --wave, --site, --shard select), creating
    /// nothing: its secrets, its cloud credentials (an authenticated read), its server reached
    /// and the cloud site attached with the row's credentials (attach is the run's own first
    /// step). Exit 4 when a row fails.
    #[arg(long)]
    pub online: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Which rows `--online` tries (the offline checks read every row): tonight's wave, one
    /// site, this process's shard — or those of the `--config` file.
    #[command(
        flatten,
        next_help_heading = "Rows --online tries (the offline checks read every row)"
    )]
    pub select: SelectArgs,
}

/// How `validate --online` reaches the API: the connection flags of `run` (and its
/// `--config` file's values for them).
#[derive(Debug, Clone, Default, Args)]
pub struct ConnectionArgs {
    /// Cloud API base URL.
    #[arg(long, value_name = "URL", env = "CMAFLEET_CLOUD_API_URL")]
    pub cloud_api_url: Option<String>,
    #[command(flatten)]
    pub rates: RateArgs,
    /// Timeout of one HTTP request.
    #[arg(long, value_name = "DURATION", env = "CMAFLEET_REQUEST_TIMEOUT")]
    pub request_timeout: Option<String>,
    #[command(flatten)]
    pub network: NetworkArgs,
    /// Settings file of the runs (TOML): its connection settings and rows (wave, site,
    /// shard) are used unless flags give them.
    #[arg(long, value_name = "FILE", env = "CMAFLEET_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Which rows of the inventory a run or plan takes.
#[derive(Debug, Clone, Default, Args)]
pub struct SelectArgs {
    /// Only rows of this wave (repeatable; waves run in inventory order).
    #[arg(
        long = "wave",
        value_name = "W",
        env = "CMAFLEET_WAVE",
        value_delimiter = ','
    )]
    pub waves: Vec<String>,
    /// Only this site (repeatable).
    #[arg(
        long = "site",
        value_name = "S",
        env = "CMAFLEET_SITE",
        value_delimiter = ','
    )]
    pub sites: Vec<String>,
    /// Only rows of shard I of N (`I/N`, 0-based), assigned by cloud user.
    #[arg(
        long,
        value_name = "I/N",
        env = "CMAFLEET_SHARD",
        conflicts_with = "shards"
    )]
    pub shard: Option<String>,
    /// Number of shards when I comes from JOB_COMPLETION_INDEX (Kubernetes Indexed Job).
    #[arg(long, value_name = "N", env = "CMAFLEET_SHARDS")]
    pub shards: Option<u32>,
}

/// Options that shape what a run sends; shared by `run` and `plan`.
#[derive(Debug, Clone, Default, Args)]
pub struct PolicyArgs {
    /// State dir: SQLite state store and lock.
    #[arg(long, value_name = "DIR", env = "CMAFLEET_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Migrate mode: run a Check task first and gate on it.
    #[arg(long, env = "CMAFLEET_PRECHECK", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub precheck: Option<bool>,
    /// Create a connect token and save it on the server before attaching.
    #[arg(long, env = "CMAFLEET_CONNECT", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub connect: Option<bool>,
    /// Migrate again sites whose migration already succeeded.
    #[arg(long, env = "CMAFLEET_REMIGRATE", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub remigrate: Option<bool>,
    #[command(flatten)]
    pub rates: RateArgs,
}

/// The rate limits per cloud user (`run`, `plan`, `validate --online`).
#[derive(Debug, Clone, Default, Args)]
pub struct RateArgs {
    /// Create-job rate per cloud user.
    #[arg(long, value_name = "RATE", env = "CMAFLEET_RATE_CREATE_JOB")]
    pub rate_create_job: Option<String>,
    /// Create-task rate per cloud user.
    #[arg(long, value_name = "RATE", env = "CMAFLEET_RATE_CREATE_TASK")]
    pub rate_create_task: Option<String>,
    /// Read rate per cloud user.
    #[arg(long, value_name = "RATE", env = "CMAFLEET_RATE_READ")]
    pub rate_read: Option<String>,
    /// Connect-token rate per cloud user.
    #[arg(long, value_name = "RATE", env = "CMAFLEET_RATE_TOKEN")]
    pub rate_token: Option<String>,
}

/// `plan` takes the whole command line of `run` (swap the word to preview a run); the flags
/// that only matter once requests are sent are accepted and ignored, under their own heading
/// in `plan --help`.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Assume every task takes at least this long, a duration like 20m [default: the shortest
    /// seen in the state store].
    #[arg(long, value_name = "DURATION")]
    pub task_duration: Option<String>,
    /// Output: table (for people) or json (for scripts).
    #[arg(long, value_enum, default_value = "table", env = "CMAFLEET_FORMAT")]
    pub format: Format,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The inventory CSV [or `inventory` in the --config file].
    pub inventory: Option<PathBuf>,
    /// check: pre-migration checks only; migrate: checks, then data [or `mode` in the file].
    #[arg(long, value_enum, value_name = "MODE", env = "CMAFLEET_MODE")]
    pub mode: Option<ModeArg>,
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Settings file (TOML); flags override it, it overrides defaults.
    #[arg(long, value_name = "FILE", env = "CMAFLEET_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print the resolved settings as a settings file, each with its origin (secrets as ***), and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Report dir [default: <state-dir>/reports/<run-id>].
    #[arg(long, value_name = "DIR", env = "CMAFLEET_REPORT_DIR")]
    pub report_dir: Option<PathBuf>,
    /// Cloud API base URL.
    #[arg(long, value_name = "URL", env = "CMAFLEET_CLOUD_API_URL")]
    pub cloud_api_url: Option<String>,
    /// Sites in flight at once.
    #[arg(long, value_name = "N", env = "CMAFLEET_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Active tasks per source server.
    #[arg(long, value_name = "N", env = "CMAFLEET_PER_SERVER")]
    pub per_server: Option<usize>,
    /// Treat check WARNING as blocking.
    #[arg(long, env = "CMAFLEET_BLOCK_ON_WARNINGS", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub block_on_warnings: Option<bool>,
    /// Checks to override on Migrate (sent as excludeKeys; only excludable checks).
    #[arg(
        long,
        value_name = "K1,K2",
        value_delimiter = ',',
        env = "CMAFLEET_OVERRIDE_CHECKS"
    )]
    pub override_checks: Vec<String>,
    /// Keep polling until app migration finishes too.
    #[arg(long, env = "CMAFLEET_WAIT_APPS", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub wait_apps: Option<bool>,
    /// No new tasks after this local time (night window).
    #[arg(long, value_name = "HH:MM", env = "CMAFLEET_NO_NEW_TASKS_AFTER")]
    pub no_new_tasks_after: Option<String>,
    /// Stop polling after this long; in-flight sites stay resumable (e.g. 6h).
    #[arg(long, value_name = "DURATION", env = "CMAFLEET_DEADLINE")]
    pub deadline: Option<String>,
    /// Shortest poll interval.
    #[arg(long, value_name = "DURATION", env = "CMAFLEET_POLL_MIN")]
    pub poll_min: Option<String>,
    /// Longest poll interval.
    #[arg(long, value_name = "DURATION", env = "CMAFLEET_POLL_MAX")]
    pub poll_max: Option<String>,
    /// Serve /metrics, /healthz and the live status page here while running.
    #[arg(long, value_name = "ADDR", env = "CMAFLEET_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Push final metrics to this Pushgateway.
    #[arg(long, value_name = "URL", env = "CMAFLEET_PUSHGATEWAY")]
    pub pushgateway: Option<String>,
    /// Write final metrics here for node_exporter's textfile collector.
    #[arg(long, value_name = "PATH", env = "CMAFLEET_METRICS_TEXTFILE")]
    pub metrics_textfile: Option<PathBuf>,
    /// Live progress view: auto (on a terminal), always, never [or `progress` in the file].
    #[arg(long, value_enum, value_name = "WHEN", env = "CMAFLEET_PROGRESS")]
    pub progress: Option<ProgressMode>,
    /// Time between progress lines when not on a terminal, a duration like 30s or 2m.
    #[arg(long, value_name = "DURATION", env = "CMAFLEET_PROGRESS_INTERVAL")]
    pub progress_interval: Option<String>,
    /// Timeout of one HTTP request.
    #[arg(long, value_name = "DURATION", env = "CMAFLEET_REQUEST_TIMEOUT")]
    pub request_timeout: Option<String>,
    #[command(flatten)]
    pub network: NetworkArgs,
    /// Stop a cloud user's other sites when this many of its sites failed at the same step
    /// with the same answer (0: never).
    #[arg(long, value_name = "K", env = "CMAFLEET_STOP_AFTER_SAME_FAILURES")]
    pub stop_after_same_failures: Option<usize>,
    /// After a signal, how long requests already sent may take to finish.
    #[arg(long, value_name = "DURATION", env = "CMAFLEET_STOP_GRACE")]
    pub stop_grace: Option<String>,
}

/// How cmafleet reaches the API: HTTP version and trusted certificates. (Proxies come from
/// `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`, in either case, as curl reads
/// them but for `HTTP_PROXY` in capitals, which curl ignores.)
#[derive(Debug, Clone, Default, Args)]
pub struct NetworkArgs {
    /// Speak HTTP/2 without negotiation to a plain-http --cloud-api-url (the simulator); plain
    /// http is HTTP/1.1 otherwise, and https negotiates.
    #[arg(long, env = "CMAFLEET_HTTP2_PRIOR_KNOWLEDGE", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub http2_prior_knowledge: Option<bool>,
    /// Also trust the CA certificates in this PEM file (a private CA, a TLS-inspecting proxy);
    /// `SSL_CERT_FILE=FILE` instead replaces the system's CA certificates with the file's.
    #[arg(long, value_name = "FILE", env = "CMAFLEET_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// A JSON document for scripts (field names are stable).
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output: table (for people) or json (for scripts).
    #[arg(long, value_enum, default_value = "table", env = "CMAFLEET_FORMAT")]
    pub format: Format,
    /// Only this site: its last outcome and message, its failed checks, and what to do next.
    #[arg(long, value_name = "S", conflicts_with = "state_dirs")]
    pub site: Option<String>,
    /// First read again the sites whose apps were still migrating when their migration
    /// ended (a migrate run of just those sites, with the latest migrate run's inventory and
    /// cloud API URL; it creates no task), then show the state.
    #[arg(long, conflicts_with = "state_dirs")]
    pub refresh: bool,
    /// Several state dirs at once, the shards of one fleet: one table, each site once with
    /// its shard (the run's --shard label, else the dir's name). Replaces --state-dir.
    #[arg(long, value_name = "DIR", num_args = 1.., value_delimiter = ',', env = "CMAFLEET_STATE_DIRS")]
    pub state_dirs: Vec<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct RunsArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output: table (for people) or json (for scripts).
    #[arg(long, value_enum, default_value = "table", env = "CMAFLEET_FORMAT")]
    pub format: Format,
}

/// The state store a command that only reads it opens (`status`, `runs`, `report`).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// State dir.
    #[arg(
        long,
        value_name = "DIR",
        default_value = defaults::STATE_DIR,
        env = "CMAFLEET_STATE_DIR"
    )]
    pub state_dir: PathBuf,
    /// Settings file of the runs (TOML): its `state-dir` is used unless --state-dir is given.
    #[arg(long, value_name = "FILE", env = "CMAFLEET_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Where to write the reports.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Which run (default: the latest, of --mode if given).
    #[arg(long = "run", value_name = "RUN_ID", conflicts_with = "state_dirs")]
    pub run_id: Option<String>,
    /// The latest run of this mode (default: the latest run's mode; with --state-dirs, the
    /// first store's).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Several state dirs at once, the shards of one fleet: one report from each store's
    /// latest run of --mode, each site once with its shard (the run's --shard label, else the
    /// dir's name). Replaces --state-dir.
    #[arg(long, value_name = "DIR", num_args = 1.., value_delimiter = ',', env = "CMAFLEET_STATE_DIRS")]
    pub state_dirs: Vec<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080", env = "CMAFLEET_SIM_LISTEN")]
    pub listen: String,
    /// Simulated seconds per real second (60: a minute lasts a second).
    #[arg(long, default_value_t = 1.0, env = "CMAFLEET_SIM_TIME_SCALE")]
    pub time_scale: f64,
    /// Scenario file (TOML or YAML).
    #[arg(long, value_name = "FILE", env = "CMAFLEET_SIM_SCENARIO")]
    pub scenario: Option<PathBuf>,
    /// Answer shapes where the API docs are silent, for every point the scenario's [shapes]
    /// table does not set: documented (the default; given, it also overrides the table's
    /// random_seed) or random (picked from --seed).
    #[arg(long, value_enum, value_name = "MODE", env = "CMAFLEET_SIM_SHAPES")]
    pub shapes: Option<ShapesMode>,
    /// Seed of --shapes random: the same seed picks the same shapes (default: a new seed,
    /// printed in the shapes line).
    #[arg(long, value_name = "S", env = "CMAFLEET_SIM_SEED")]
    pub seed: Option<u64>,
}

/// `cmafleet sim --shapes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShapesMode {
    /// The shapes the public API material documents.
    Documented,
    /// Every point picked from a seed.
    Random,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::help::EXAMPLES;
    use super::*;

    #[test]
    fn the_command_is_consistent_and_every_command_has_examples() {
        let command = command();
        command.clone().debug_assert();
        let names: Vec<&str> = command
            .get_subcommands()
            .map(clap::Command::get_name)
            .collect();
        for name in &names {
            assert!(
                EXAMPLES.iter().any(|(with, _)| with == name),
                "no examples for `{name}`"
            );
        }
        for (name, _) in EXAMPLES {
            assert!(
                names.contains(&name),
                "examples of an unknown command {name}"
            );
        }
    }

    #[test]
    fn every_default_is_a_flag_of_run_and_its_help_says_it() {
        let command = command();
        let run = command.find_subcommand("run").unwrap();
        for key in defaults::keys() {
            let arg = run
                .get_arguments()
                .find(|arg| arg.get_long() == Some(key))
                .unwrap_or_else(|| panic!("a default of no `run` flag: {key}"));
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let default = defaults::of(key).unwrap();
            assert!(
                help.ends_with(&format!(" [default: {default}]")),
                "--{key}: {help}"
            );
        }
        let status = command.find_subcommand("status").unwrap();
        let state_dir = status
            .get_arguments()
            .find(|arg| arg.get_long() == Some("state-dir"))
            .unwrap();
        assert_eq!(state_dir.get_default_values(), [defaults::STATE_DIR]);
        let help = state_dir
            .get_help()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(!help.contains("[default"), "said once, by clap: {help}");
    }
}
