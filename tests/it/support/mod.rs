//! Helpers shared by the integration tests.

pub mod browser;
// Not every test binary module uses every helper of the harness.
#[allow(dead_code)]
pub mod fleet;
pub mod prometheus;
