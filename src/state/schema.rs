//! The schema of `state.db` and its migrations, applied in order on open.
//!
//! SKELETON: to be written (issue 5).
