//! The SQLite state store (`<state-dir>/state.db`) and the run lock (`<state-dir>/lock`).

pub mod lock;
pub mod schema;
pub mod store;

pub use lock::{LockError, RunLock};
pub use store::{AttachRecord, JobRecord, SiteState, StateError, Store, TaskRecord, Tx};
