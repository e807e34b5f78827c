//! The engine's settings from the resolved run settings: the one place `config` hands values
//! to `fleet` (which never reads `config`).

use super::run::RunSettings;
use crate::fleet::settings::{FleetSettings, PipelinePolicy};

impl RunSettings {
    /// What the fleet engine needs of these settings.
    pub fn fleet(&self) -> FleetSettings {
        FleetSettings {
            concurrency: self.concurrency,
            per_server: self.per_server,
            pipeline: PipelinePolicy {
                mode: self.mode,
                precheck: self.precheck,
                block_on_warnings: self.block_on_warnings,
                override_checks: self.override_checks.clone(),
                connect: self.connect,
                wait_apps: self.wait_apps,
                remigrate: self.remigrate,
                no_new_tasks_after: self.no_new_tasks_after,
                poll: self.poll,
                young_task_grace: self.young_task_grace,
                reads_per_second: self.rates.read.per_second(),
            },
            deadline: self.deadline,
            rates: self.rates.clone(),
            client: self.client.clone(),
            cloud_api_url: self.cloud_api_url.clone(),
            stop_after_same_failures: self.stop_after_same_failures,
            stop_grace: self.stop_grace,
            shard: self.selection.shard.map(|shard| shard.label()),
            options: self.to_json(),
        }
    }
}
