//! Every metric cmafleet exports, each name spelled once ([`names`]), the run's series
//! ([`registry`]), with the item counts kept after their scope ends (`items`) and each site's
//! stage and outcome series gathered from one entry a site (`per_site`); the `/metrics`
//! server; the Pushgateway push (grouped by mode and shard); the node_exporter textfile; the
//! shape of `/status.json`.

mod items;
mod labels;
pub mod names;
mod per_site;
pub mod push;
pub mod registry;
pub mod server;
pub mod status;
pub mod textfile;

pub use registry::Metrics;
