//! The CMA migration API, and nothing else: wire types, the client, its errors and retry rules.

pub mod client;
pub mod error;
pub mod retry;
pub mod surprise;
mod text;
pub mod wire;

pub use client::{ApiObserver, CloudClient, HttpClient, ServerClient, ServerCredentials};
pub use error::{ApiError, Endpoint, ErrorKind, RateClass};
pub use surprise::{Surprise, SurpriseKind, SurpriseLog};
