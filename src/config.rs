//! Validated, resolved settings built from the command line (and `--config`); nothing past
//! here sees raw flags.
//!
//! SKELETON (issue 4).
