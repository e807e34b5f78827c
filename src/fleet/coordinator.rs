//! SKELETON (issue 4).
