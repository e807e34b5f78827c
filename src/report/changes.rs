//! `changes.md`: since the previous run of the same mode, sites whose outcome changed and
//! checks newly failing or newly passing.
//!
//! SKELETON: to be written (issue 5).

use super::model::RunReport;

/// `previous` is `None` on the first run of a mode.
pub fn render(previous: Option<&RunReport>, current: &RunReport) -> String {
    let _ = (previous, current);
    todo!()
}
