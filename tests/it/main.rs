//! The integration tests: one binary, one module per area.

mod browser;
mod client;
mod fleet;
mod inventory;
mod metrics;
mod ops;
mod sim;
mod state;
mod support;
