//! The integration tests: one binary, one module per area.

mod metrics;
mod state;
mod support;
