//! Stopping early on a systemic failure: when the sites of one cloud user keep failing at the
//! same step with the same answer (a refused token, a job definition the service rejects, an
//! API that cannot be reached), that user's other sites are not started — 297 sites do not
//! each meet the same 401 at 5 creates a minute. `--stop-after-same-failures K` (0: never).
//!
//! The coordinator feeds each concluded site's [`FailureSignature`] to [`Breakers`]; a
//! user's [`Tripwire`] is shared with that user's pipelines, which stop before their next
//! step (and in the middle of a wait for a create's turn) once it has tripped.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

use crate::vocab::Stage;

/// Where and how a site failed, when the failure may be systemic: the step, and the
/// service's answer (a 4xx status with its words), or the API out of reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureSignature {
    pub stage: Stage,
    /// `HTTP 401: Unauthorized`, `unreachable: cannot connect to …`.
    pub answer: String,
}

impl fmt::Display for FailureSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {} ({})", self.stage, self.answer)
    }
}

/// One cloud user's breaker, as its pipelines see it.
#[derive(Debug)]
pub struct Tripwire {
    /// Cancelled when the breaker trips: a create still waiting for its turn is not sent.
    /// A child of the run's stop token, so a signal cancels it too.
    pub stop: CancellationToken,
    /// Why, once tripped: the message of every site it stops.
    reason: OnceLock<String>,
}

impl Tripwire {
    fn new(run_stop: &CancellationToken) -> Tripwire {
        Tripwire {
            stop: run_stop.child_token(),
            reason: OnceLock::new(),
        }
    }

    /// The message of a site this breaker stopped, once it has tripped.
    pub fn tripped(&self) -> Option<&str> {
        self.reason.get().map(String::as_str)
    }
}

/// How many sites of a user failed alike in a row.
#[derive(Debug)]
struct Streak {
    signature: Option<FailureSignature>,
    count: usize,
}

/// Every cloud user's breaker (owned by the coordinator).
pub struct Breakers {
    /// K: sites failing alike in a row that trip a user's breaker; 0 never trips.
    limit: usize,
    /// The run's stop token, parent of every user's.
    run_stop: CancellationToken,
    users: HashMap<String, (Streak, Arc<Tripwire>)>,
}

impl Breakers {
    pub fn new(limit: usize, run_stop: CancellationToken) -> Breakers {
        Breakers {
            limit,
            run_stop,
            users: HashMap::new(),
        }
    }

    /// The tripwire a pipeline of `user` watches.
    pub fn tripwire(&mut self, user: &str) -> Arc<Tripwire> {
        let run_stop = &self.run_stop;
        Arc::clone(
            &self
                .users
                .entry(user.to_owned())
                .or_insert_with(|| {
                    let streak = Streak {
                        signature: None,
                        count: 0,
                    };
                    (streak, Arc::new(Tripwire::new(run_stop)))
                })
                .1,
        )
    }

    /// Why `user`'s sites are no longer started, if its breaker tripped.
    pub fn tripped(&self, user: &str) -> Option<&str> {
        self.users.get(user).and_then(|(_, wire)| wire.tripped())
    }

    /// Counts a concluded site of `user`: `failure` is its signature when it failed in a
    /// way that may be systemic, `None` for any other end (which breaks the streak).
    /// Returns what happened when this site trips the breaker.
    pub fn concluded(&mut self, user: &str, failure: Option<&FailureSignature>) -> Option<String> {
        if self.limit == 0 {
            return None;
        }
        let limit = self.limit;
        let wire = self.tripwire(user);
        let (streak, _) = self.users.get_mut(user)?;
        match failure {
            Some(signature) if streak.signature.as_ref() == Some(signature) => streak.count += 1,
            Some(signature) => {
                streak.signature = Some(signature.clone());
                streak.count = 1;
            }
            None => {
                streak.signature = None;
                streak.count = 0;
            }
        }
        if streak.count < limit || wire.tripped().is_some() {
            return None;
        }
        let signature = streak.signature.as_ref()?;
        let what = format!(
            "{} sites of this cloud user in a row failed {signature}",
            streak.count
        );
        let _ = wire.reason.set(format!(
            "not started: {what}; fix that, then run again (--stop-after-same-failures 0 turns this stop off)"
        ));
        wire.stop.cancel();
        Some(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> FailureSignature {
        FailureSignature {
            stage: Stage::Job,
            answer: "HTTP 400: Invalid scope".into(),
        }
    }

    #[test]
    fn k_sites_failing_alike_in_a_row_trip_only_their_users_breaker() {
        let run = CancellationToken::new();
        let mut breakers = Breakers::new(3, run.clone());
        let alice = breakers.tripwire("alice");
        let bob = breakers.tripwire("bob");
        assert_eq!(breakers.concluded("alice", Some(&refused())), None);
        assert_eq!(breakers.concluded("bob", Some(&refused())), None);
        assert_eq!(breakers.concluded("alice", Some(&refused())), None);
        let reason = breakers.concluded("alice", Some(&refused())).unwrap();
        assert!(reason.contains("3 sites"), "{reason}");
        assert!(
            reason.contains("at job (HTTP 400: Invalid scope)"),
            "{reason}"
        );
        assert!(alice.stop.is_cancelled() && alice.tripped().is_some());
        assert!(!bob.stop.is_cancelled() && breakers.tripped("bob").is_none());
        assert!(!run.is_cancelled(), "only the user's sites stop");
        assert_eq!(
            breakers.concluded("alice", Some(&refused())),
            None,
            "said once"
        );
    }

    #[test]
    fn another_end_breaks_the_streak_and_zero_never_trips() {
        let mut breakers = Breakers::new(2, CancellationToken::new());
        breakers.concluded("alice", Some(&refused()));
        breakers.concluded("alice", None);
        assert_eq!(breakers.concluded("alice", Some(&refused())), None);
        let other = FailureSignature {
            answer: "HTTP 401: Unauthorized".into(),
            ..refused()
        };
        assert_eq!(breakers.concluded("alice", Some(&other)), None);
        assert!(breakers.concluded("alice", Some(&other)).is_some());
        let mut off = Breakers::new(0, CancellationToken::new());
        for _ in 0..10 {
            assert_eq!(off.concluded("alice", Some(&refused())), None);
        }
    }

    #[test]
    fn a_signal_cancels_every_users_stop_token() {
        let run = CancellationToken::new();
        let mut breakers = Breakers::new(3, run.clone());
        let alice = breakers.tripwire("alice");
        run.cancel();
        assert!(alice.stop.is_cancelled());
        assert!(alice.tripped().is_none(), "a signal is no trip");
    }
}
