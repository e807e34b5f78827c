//! Reports: the model, pure renderers (model → bytes) and the writer that puts them on disk.
//!
//! - [`model`]: the data (shared with the coordinator and the state store).
//! - Renderers, pure functions of the model (no clock, no I/O): [`csv`] (`summary.csv`),
//!   [`markdown`] (`summary.md`), [`html`] (`report.html`, with [`timeline`]'s SVG),
//!   [`json`] (`run.json`, `sites/<site>.json`), [`changes`] (`changes.md`); [`site_table`]
//!   is `report.html`'s table of sites, paged by the page's script.
//! - Shared by the renderers: [`fleet_checks`] (checks that failed or warned across the
//!   fleet) and [`format`](mod@format) (timestamps, durations, outcome counts); [`markup`]
//!   (HTML escaping) is shared by `report.html`'s parts.
//! - [`merge`]: one fleet report from the runs of several state stores (shards).
//! - [`writer`]: atomic, private (0700/0600) files, paced summary refreshes.

pub mod changes;
pub mod csv;
pub mod fleet_checks;
pub mod format;
pub mod html;
pub mod json;
pub mod markdown;
pub mod markup;
pub mod merge;
pub mod model;
pub mod site_table;
pub mod timeline;
pub mod writer;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;

pub use model::{RunInfo, RunReport, SiteReport};
pub use writer::ReportWriter;
