//! One async method per endpoint of the Cloud Migration Assistant API, on reqwest with
//! rustls: timeouts on every request, no redirects, tolerant parsing, pagination in every
//! form, bounded retries for reads, and never a blind retry of a create.
//!
//! The pieces, each importing only those below it: `hooks` ([`ApiObserver`],
//! [`RequestGate`]: what the program running the client plugs in); `http` ([`HttpClient`]:
//! the run's connections, HTTP/2 where the host speaks it, negotiated over TLS or to a
//! plain-http cloud API's origin); `attempt` (what one attempt comes to); `answer` (what an
//! answer says), `refusal` (a server's final refusals) and `unreached` (why a request got no
//! answer); `transport` (timeouts, capped bodies, classification, the retry loop); `paths`
//! and `paging` (`links.next` in each of its forms); [`CloudClient`] (`cloud`: one cloud
//! user's view of the API, every request waiting first on that user's [`RequestGate`]) and
//! [`ServerClient`] (`server`: one Server/DC instance); `download` streams artifacts to disk.
//! This module only names them.
//!
//! Credentials go only to their own origin: redirects are never followed (a 3xx is
//! [`ErrorKind::Redirect`](crate::cma::error::ErrorKind::Redirect)), a `links.next` on
//! another origin is refused, and artifacts on other hosts (presigned URLs) are fetched
//! without credentials.

mod answer;
mod attempt;
mod cloud;
mod download;
mod hooks;
mod http;
mod paging;
mod paths;
mod refusal;
mod server;
mod transport;
mod unreached;

pub use cloud::{CloudClient, StatusQuery};
pub use hooks::{ApiObserver, Cancelled, NoopObserver, OpenGate, RequestGate};
pub use http::{ClientSettings, ExtraRoots, HttpClient};
pub use server::{ServerClient, ServerCredentials};
