//! Helpers shared by the integration tests.

pub mod browser;
pub mod fleet;
pub mod forward_proxy;
pub mod independent;
pub mod prometheus;
pub mod proxy;
pub mod report_page;
pub mod tls_front;
