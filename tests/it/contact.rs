//! First contact with API servers this project did not write (`docs/api.md`, "First contact
//! rules"): plain http as others speak it, each tolerance rule against the simulator serving
//! that variant, fleets under random shapes, a breaker for systemic failures, and stopping in
//! any state of the network. Every test runs the real binary on loopback.

mod breaker;
mod rules;
mod shapes;
mod stop;
mod transport;
