//! The SQLite state store (`<state-dir>/state.db`) and the run lock (`<state-dir>/lock`).
//! `docs/state.md` describes the tables for people who open them with `sqlite3`.

pub mod lock;
pub mod schema;
pub mod store;

pub use lock::{LOCK_FILE, LockError, RunLock};
pub use schema::SCHEMA_VERSION;
pub use store::{AttachRecord, DB_FILE, JobRecord, SiteState, StateError, Store, TaskRecord, Tx};
