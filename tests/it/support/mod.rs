//! Helpers shared by the integration tests.

pub mod browser;
pub mod fleet;
pub mod independent;
pub mod prometheus;
pub mod proxy;
