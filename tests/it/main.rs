//! The integration tests: one binary, one module per area.

mod browser;
mod client;
mod client_sim;
mod contact;
mod crash;
mod fleet;
mod hardening;
mod inventory;
mod lifecycle;
mod metrics;
mod network;
mod ops;
mod polling;
mod sim;
mod state;
mod support;
