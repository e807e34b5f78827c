//! Reports: the model, pure renderers (model → bytes) and the writer that puts them on disk.

pub mod changes;
pub mod csv;
pub mod fleet_checks;
pub mod format;
pub mod html;
pub mod json;
pub mod markdown;
pub mod model;
pub mod timeline;
pub mod writer;

#[cfg(test)]
pub(crate) mod tests;

pub use model::{RunInfo, RunReport, SiteReport};
pub use writer::ReportWriter;
