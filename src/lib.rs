//! cmafleet migrates a fleet of Jira and Confluence Server/Data Center instances to
//! Atlassian Cloud through the Cloud Migration Assistant (CMA) migration API.
//!
//! # How it fits together
//!
//! `docs/architecture.md` is the map of the crate: its layers, a site's way from inventory row
//! to report, who owns which state and the invariants. In short:
//!
//! An inventory CSV is parsed and validated into [`inventory::Site`]s. The [`config`] module
//! layers the command line, `CMAFLEET_*` variables, the settings file and the defaults into
//! settings, and hands the engine plain values ([`fleet::settings`]). For `run`,
//! [`fleet::coordinator`] owns all run state: one loop that turns what happens into one event
//! at a time, admits sites under the concurrency and per-server caps and gives each a
//! [`fleet::pipeline`] task (job → attach → task: checks, data, apps → collect). Pipelines
//! talk to the API through [`cma::client`], every request waiting first on its cloud user's
//! rate bucket ([`fleet::limits`]); they never mutate shared state but send
//! [`fleet::events`] to the coordinator, which applies them in order to the [`state`] store
//! (journal before act, one writer), the [`metrics`] and the [`report`] writer. The [`sim`]
//! module is a simulator of both sides of the API for tests, demos and benchmarks; it shares
//! [`cma::wire`] with the client.

//! # Module map
//!
//! - [`cli`]: clap structs, raw flags only; [`config`]: resolved settings; [`exit`]: exit codes;
//!   [`fatal`]: how a fatal error reaches a person (stderr, and stdout for cron).
//! - [`commands`]: one entry point per command (`demo`, `validate`, `plan`, `run`, …).
//! - [`vocab`]: the words every layer speaks (`Mode`, `Stage`, `Outcome`, `Judgement`);
//!   [`secret`]: the `Secret` type, below both the inventory and the API client;
//!   [`loopback`]: which hosts may be reached over plain http.
//! - [`inventory`]: CSV → `Site`s and the secret references their rows carry.
//! - [`cma`]: the API: `wire` types, `client`, `error` classification, `retry` rules.
//! - [`fleet`]: `coordinator` (the loop, with its `admission`: which site starts when,
//!   `commit`: when the store's next group commit is due, `launcher`: clients and spawned
//!   pipelines, `journal`: what each event writes to the store), `pipeline` (with its
//!   `phase` machine and the one `conclusion` mapping), `settings`, `policy` (rates and the
//!   poll policy as values), `limits`, `poll`, `events`, `ledger`, `shutdown`.
//! - [`state`]: the SQLite state store, its schema migrations and the run lock.
//! - [`metrics`]: metric names, `/metrics` server, Pushgateway, textfile.
//! - [`report`]: the report model, pure renderers and the writer.
//! - [`logging`]: log filter and formats (text, JSON lines); [`progress`]: the live terminal
//!   view and periodic progress lines; [`stdout`]: command output, quiet on a closed pipe.
//! - [`sim`]: the simulator.

#![warn(unreachable_pub)]

pub mod cli;
pub mod cma;
pub mod commands;
pub mod config;
pub mod exit;
pub mod fatal;
pub mod fleet;
pub mod inventory;
pub mod logging;
pub mod loopback;
pub mod metrics;
pub mod progress;
pub mod report;
pub mod secret;
pub mod sim;
pub mod state;
pub mod stdout;
pub mod vocab;
