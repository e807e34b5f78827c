//! The integration tests: one binary, one module per area.

mod browser;
mod client;
mod fleet;
mod inventory;
mod metrics;
mod polling;
mod sim;
mod state;
mod support;
