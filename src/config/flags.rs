//! The command line as the top layer of settings, in the settings file's own shape: each
//! flag under its key, so that every setting is layered by one rule over the same fields.
//! clap has already put each `CMAFLEET_*` variable in its flag's place.

use super::file::SettingsFile;
use crate::cli::{ConnectionArgs, ModeArg, NetworkArgs, RateArgs, RunArgs, SelectArgs};
use crate::vocab::Mode;

/// The flags of `run` (and `plan`).
pub(super) fn of_run(args: &RunArgs) -> SettingsFile {
    let policy = &args.policy;
    let flags = SettingsFile {
        inventory: args.inventory.clone(),
        mode: args.mode.map(|mode| mode_of(mode).as_str().to_owned()),
        state_dir: policy.state_dir.clone(),
        report_dir: args.report_dir.clone(),
        cloud_api_url: args.cloud_api_url.clone(),
        concurrency: args.concurrency,
        per_server: args.per_server,
        precheck: policy.precheck,
        block_on_warnings: args.block_on_warnings,
        override_checks: given(&args.override_checks),
        connect: policy.connect,
        wait_apps: args.wait_apps,
        remigrate: policy.remigrate,
        no_new_tasks_after: args.no_new_tasks_after.clone(),
        deadline: args.deadline.clone(),
        poll_min: args.poll_min.clone(),
        poll_max: args.poll_max.clone(),
        metrics_listen: args.metrics_listen.clone(),
        pushgateway: args.pushgateway.clone(),
        metrics_textfile: args.metrics_textfile.clone(),
        progress_interval: args.progress_interval.clone(),
        request_timeout: args.request_timeout.clone(),
        stop_after_same_failures: args.stop_after_same_failures,
        stop_grace: args.stop_grace.clone(),
        ..SettingsFile::default()
    };
    let flags = with_select(flags, &args.select);
    with_network(with_rates(flags, &policy.rates), &args.network)
}

/// The flags of `validate --online`: how to reach the API, and which rows to try.
pub(super) fn of_connection(args: &ConnectionArgs, select: &SelectArgs) -> SettingsFile {
    let flags = SettingsFile {
        cloud_api_url: args.cloud_api_url.clone(),
        request_timeout: args.request_timeout.clone(),
        ..SettingsFile::default()
    };
    let flags = with_select(flags, select);
    with_network(with_rates(flags, &args.rates), &args.network)
}

fn with_select(flags: SettingsFile, select: &SelectArgs) -> SettingsFile {
    SettingsFile {
        wave: given(&select.waves),
        site: given(&select.sites),
        shard: select.shard.clone(),
        shards: select.shards,
        ..flags
    }
}

fn with_rates(flags: SettingsFile, rates: &RateArgs) -> SettingsFile {
    SettingsFile {
        rate_create_job: rates.rate_create_job.clone(),
        rate_create_task: rates.rate_create_task.clone(),
        rate_read: rates.rate_read.clone(),
        rate_token: rates.rate_token.clone(),
        ..flags
    }
}

fn with_network(flags: SettingsFile, network: &NetworkArgs) -> SettingsFile {
    SettingsFile {
        http2_prior_knowledge: network.http2_prior_knowledge,
        ca_cert: network.ca_cert.clone(),
        ..flags
    }
}

/// A repeatable flag's values; `None` when it was not given, so the file's list applies.
fn given(values: &[String]) -> Option<Vec<String>> {
    (!values.is_empty()).then(|| values.to_vec())
}

/// The mode a `--mode` flag names.
pub fn mode_of(mode: ModeArg) -> Mode {
    match mode {
        ModeArg::Check => Mode::Check,
        ModeArg::Migrate => Mode::Migrate,
    }
}
