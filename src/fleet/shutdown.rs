//! Two-phase cancellation: the first signal (or the deadline, or a store failure) drains — no
//! new work, in-flight requests finish, sites end `detached` — and a second signal (or the
//! stop grace running out) forces: requests still on the wire are dropped, so the run ends at
//! once through its usual end. Library code receives a [`Shutdown`]; only `main` installs OS
//! signal handlers.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::exit;

/// Why a run stopped early, in order of severity (a later reason never hides an earlier one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CancelReason {
    /// `--deadline` passed: polling stops, in-flight sites stay resumable (exit 3).
    Deadline,
    /// The state store refused a write: the run stops cleanly (exit 73).
    StoreFailure,
    /// SIGTERM (exit 143).
    Terminate,
    /// SIGINT (exit 130).
    Interrupt,
}

impl CancelReason {
    pub fn exit_code(self) -> u8 {
        match self {
            CancelReason::Deadline => exit::DETACHED,
            CancelReason::StoreFailure => exit::CANT_CREATE,
            CancelReason::Terminate => exit::TERMINATED,
            CancelReason::Interrupt => exit::INTERRUPTED,
        }
    }

    /// Whether this reason is a signal (a second signal forces).
    pub fn is_signal(self) -> bool {
        matches!(self, CancelReason::Terminate | CancelReason::Interrupt)
    }

    pub fn describe(self) -> &'static str {
        match self {
            CancelReason::Deadline => "the deadline passed",
            CancelReason::StoreFailure => "the state store refused a write",
            CancelReason::Terminate => "terminated (SIGTERM)",
            CancelReason::Interrupt => "interrupted (SIGINT)",
        }
    }
}

/// The run's cancellation state, cheap to clone.
#[derive(Clone, Default)]
pub struct Shutdown {
    /// Fires on the first signal: stop starting work.
    graceful: CancellationToken,
    /// Fires on the second signal or when the stop grace runs out: abandon in-flight
    /// requests too.
    forced: CancellationToken,
    /// The most severe reason given, and how many signals came (the second one forces).
    reason: Arc<Mutex<(Option<CancelReason>, u32)>>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Starts draining for `reason`; a second call (another signal) forces.
    pub fn trigger(&self, reason: CancelReason) {
        let mut state = self
            .reason
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        state.0 = Some(state.0.map_or(reason, |previous| previous.max(reason)));
        if reason.is_signal() {
            state.1 += 1;
        }
        let force = state.1 >= 2;
        drop(state);
        self.graceful.cancel();
        if force {
            self.forced.cancel();
        }
    }

    /// Forces at once: the grace given to requests already sent ran out.
    pub fn force(&self) {
        self.graceful.cancel();
        self.forced.cancel();
    }

    pub fn graceful(&self) -> &CancellationToken {
        &self.graceful
    }

    pub fn forced(&self) -> &CancellationToken {
        &self.forced
    }

    pub fn is_draining(&self) -> bool {
        self.graceful.is_cancelled()
    }

    pub fn reason(&self) -> Option<CancelReason> {
        self.reason
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_signal_drains_second_forces() {
        let shutdown = Shutdown::new();
        shutdown.trigger(CancelReason::Interrupt);
        assert!(shutdown.is_draining());
        assert!(!shutdown.forced().is_cancelled());
        shutdown.trigger(CancelReason::Interrupt);
        assert!(shutdown.forced().is_cancelled());
        assert_eq!(shutdown.reason(), Some(CancelReason::Interrupt));
    }

    #[test]
    fn a_signal_after_the_deadline_wins_the_exit_code_but_does_not_force() {
        let shutdown = Shutdown::new();
        shutdown.trigger(CancelReason::Deadline);
        assert_eq!(
            shutdown.reason().map(CancelReason::exit_code),
            Some(exit::DETACHED)
        );
        shutdown.trigger(CancelReason::Terminate);
        assert_eq!(
            shutdown.reason().map(CancelReason::exit_code),
            Some(exit::TERMINATED)
        );
        assert!(!shutdown.forced().is_cancelled(), "the first signal drains");
        shutdown.trigger(CancelReason::Interrupt);
        assert!(shutdown.forced().is_cancelled(), "the second signal forces");
        assert_eq!(
            shutdown.reason().map(CancelReason::exit_code),
            Some(exit::INTERRUPTED)
        );
    }

    #[test]
    fn the_deadline_never_forces() {
        let shutdown = Shutdown::new();
        shutdown.trigger(CancelReason::Deadline);
        shutdown.trigger(CancelReason::Deadline);
        assert!(!shutdown.forced().is_cancelled());
    }
}
