//! Every metric of SPEC.md, each name spelled once ([`registry`]); the `/metrics` server;
//! the Pushgateway push; the node_exporter textfile; the shape of `/status.json`.

mod labels;
pub mod push;
pub mod registry;
pub mod server;
pub mod status;
pub mod textfile;

pub use registry::Metrics;
