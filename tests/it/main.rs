//! The integration tests: one binary, one module per area.

mod browser;
mod client;
mod fleet;
mod hardening;
mod inventory;
mod metrics;
mod sim;
mod state;
mod support;
