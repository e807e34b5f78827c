//! The integration tests: one binary, one module per area.

mod browser;
mod client;
mod client_sim;
mod fleet;
mod inventory;
mod metrics;
mod sim;
mod state;
mod support;
