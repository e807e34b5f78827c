//! Running many sites: the coordinator, the per-site pipeline, rate limits and caps, the
//! polling schedule, the events between them, and two-phase cancellation.

pub mod breaker;
pub mod coordinator;
pub mod eta;
pub mod events;
pub mod failpoint;
pub mod ledger;
pub mod limits;
pub mod pipeline;
pub mod policy;
pub mod poll;
pub mod settings;
pub mod shutdown;
pub mod verdict;
