//! The SQLite state store (`<state-dir>/state.db`) and the run lock (`<state-dir>/lock`).
//! `docs/state.md` describes the tables for people who open them with `sqlite3`.
//!
//! Inside, the arrows run one way: `error` imports nothing of the state; `schema` (the
//! migrations) reports `error`s; `store` opens the db through `schema`; `lock` shares the
//! store's way of creating the private state dir.

mod error;
mod lock;
mod schema;
mod store;

pub use error::StateError;
pub use lock::{LockError, RunLock};
pub use store::{AttachRecord, DB_FILE, JobRecord, SiteState, Store, TaskRecord, Tx};
