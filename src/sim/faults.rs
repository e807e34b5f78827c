//! Fault injection: which request of a server is delayed, answered 5xx, or has its create
//! answer lost. Every decision is a pure function of (seed, server, the server's request
//! number), never of timing, so the same requests in the same order meet the same faults.

use std::time::Duration;

use axum::http::StatusCode;

use super::dice;
use super::profile::Faults;
use super::values::LostCreateMode;

/// What happens to one request before it is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Real time to wait before answering.
    pub delay: Duration,
    pub error: Option<InjectedError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InjectedError {
    /// `get_error_rate`: a 500, 502 or 503 on a GET.
    Random(StatusCode),
    /// Inside a burst: 503 whatever the method.
    Burst,
}

impl InjectedError {
    pub(super) fn status(self) -> StatusCode {
        match self {
            InjectedError::Random(status) => status,
            InjectedError::Burst => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Which create's answer is at stake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreateKind {
    Job,
    Task,
}

/// How a create's answer is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LostAnswer {
    GatewayTimeout,
    Drop,
}

/// The faults of request number `seq` (1-based) of `server`.
pub(crate) fn decide(faults: &Faults, seed: u64, server: &str, seq: u64, is_get: bool) -> Decision {
    let server = server.as_bytes();
    let seq_bytes = seq.to_le_bytes();
    let slow = faults.latency_every <= 1 || {
        let phase = dice::roll(seed, &[b"latency-phase", server]) % faults.latency_every;
        (seq + phase).is_multiple_of(faults.latency_every)
    };
    let jitter = if faults.latency_jitter.is_zero() {
        Duration::ZERO
    } else {
        faults
            .latency_jitter
            .mul_f64(dice::unit(seed, &[b"latency", server, &seq_bytes]))
    };
    let in_burst = faults.burst_every > 0 && faults.burst_length > 0 && {
        let phase = dice::roll(seed, &[b"burst-phase", server]) % faults.burst_every;
        (seq + phase) % faults.burst_every < faults.burst_length
    };
    let error = if in_burst {
        Some(InjectedError::Burst)
    } else if is_get
        && faults.get_error_rate > 0.0
        && dice::unit(seed, &[b"get-error", server, &seq_bytes]) < faults.get_error_rate
    {
        let status = match dice::roll(seed, &[b"get-error-code", server, &seq_bytes]) % 3 {
            0 => StatusCode::INTERNAL_SERVER_ERROR,
            1 => StatusCode::BAD_GATEWAY,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        Some(InjectedError::Random(status))
    } else {
        None
    };
    Decision {
        delay: if slow {
            faults.latency + jitter
        } else {
            Duration::ZERO
        },
        error,
    }
}

/// How a garbled answer is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Garbage {
    /// `application/json` that is not JSON (cut off mid-object).
    MalformedJson,
    /// An HTML page (`text/html`), as a proxy's error page would be.
    Html,
    /// A 200 with an empty body.
    Empty,
    /// The body stops short of its `Content-Length` and the connection closes.
    Truncated,
}

/// Whether the answer to request `seq` of `server` is garbled (inside a garbage run), and how.
pub(crate) fn garbage(faults: &Faults, seed: u64, server: &str, seq: u64) -> Option<Garbage> {
    if faults.garbage_every == 0 || faults.garbage_length == 0 {
        return None;
    }
    let server = server.as_bytes();
    let phase = dice::roll(seed, &[b"garbage-phase", server]) % faults.garbage_every;
    if (seq + phase) % faults.garbage_every >= faults.garbage_length {
        return None;
    }
    Some(
        match dice::roll(seed, &[b"garbage-kind", server, &seq.to_le_bytes()]) % 4 {
            0 => Garbage::MalformedJson,
            1 => Garbage::Html,
            2 => Garbage::Empty,
            _ => Garbage::Truncated,
        },
    )
}

/// Whether the answer of a successful create (request `seq` of `server`) is lost, and how.
pub(crate) fn lost_answer(
    faults: &Faults,
    seed: u64,
    server: &str,
    seq: u64,
    kind: CreateKind,
) -> Option<LostAnswer> {
    let (rate, label): (f64, &[u8]) = match kind {
        CreateKind::Job => (faults.lost_job_create_rate, b"lost-job"),
        CreateKind::Task => (faults.lost_task_create_rate, b"lost-task"),
    };
    let parts: [&[u8]; 3] = [label, server.as_bytes(), &seq.to_le_bytes()];
    if rate <= 0.0 || dice::unit(seed, &parts) >= rate {
        return None;
    }
    Some(match faults.lost_create_mode {
        LostCreateMode::GatewayTimeout => LostAnswer::GatewayTimeout,
        LostCreateMode::Drop => LostAnswer::Drop,
        LostCreateMode::Mixed => {
            if dice::roll(seed, &[b"lost-mode", server.as_bytes(), &seq.to_le_bytes()])
                .is_multiple_of(2)
            {
                LostAnswer::GatewayTimeout
            } else {
                LostAnswer::Drop
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults() -> Faults {
        Faults {
            get_error_rate: 0.3,
            latency: Duration::from_millis(2),
            latency_jitter: Duration::from_millis(4),
            latency_every: 1,
            lost_task_create_rate: 0.5,
            lost_job_create_rate: 0.0,
            lost_create_mode: LostCreateMode::Mixed,
            burst_every: 20,
            burst_length: 3,
            garbage_every: 0,
            garbage_length: 0,
        }
    }

    #[test]
    fn decisions_repeat_for_the_same_seed_and_differ_for_another() {
        let run = |seed| {
            (1..200)
                .map(|seq| decide(&faults(), seed, "acme", seq, true))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn rates_and_bursts_are_honoured() {
        let decisions: Vec<_> = (1..=2000)
            .map(|seq| decide(&faults(), 1, "acme", seq, true))
            .collect();
        let bursts = decisions
            .iter()
            .filter(|d| d.error == Some(InjectedError::Burst))
            .count();
        assert_eq!(bursts, 300, "3 in every 20 requests");
        let random = decisions
            .iter()
            .filter(|d| matches!(d.error, Some(InjectedError::Random(_))))
            .count();
        // 30% of the 1700 requests outside bursts.
        assert!((420..600).contains(&random), "{random}");
        assert!(decisions
            .iter()
            .all(|d| d.delay >= Duration::from_millis(2) && d.delay <= Duration::from_millis(6)));
        // POSTs only meet bursts.
        let post_errors = (1..=2000)
            .filter(|seq| decide(&faults(), 1, "acme", *seq, false).error.is_some())
            .count();
        assert_eq!(post_errors, 300);
    }

    #[test]
    fn latency_every_delays_one_request_in_n() {
        let faults = Faults {
            latency: Duration::from_millis(50),
            latency_every: 4,
            ..Faults::default()
        };
        let delayed: Vec<u64> = (1..=400)
            .filter(|seq| !decide(&faults, 5, "acme", *seq, true).delay.is_zero())
            .collect();
        assert_eq!(delayed.len(), 100);
        assert!(delayed.windows(2).all(|pair| pair[1] - pair[0] == 4));
    }

    #[test]
    fn garbage_comes_in_runs_of_every_kind() {
        let faults = Faults {
            garbage_every: 10,
            garbage_length: 2,
            ..Faults::default()
        };
        let garbled: Vec<(u64, Garbage)> = (1..=1000)
            .filter_map(|seq| garbage(&faults, 9, "acme", seq).map(|kind| (seq, kind)))
            .collect();
        assert_eq!(garbled.len(), 200);
        for kind in [
            Garbage::MalformedJson,
            Garbage::Html,
            Garbage::Empty,
            Garbage::Truncated,
        ] {
            assert!(garbled.iter().any(|(_, k)| *k == kind), "{kind:?}");
        }
        assert!(garbage(&Faults::default(), 9, "acme", 1).is_none());
    }

    #[test]
    fn lost_answers_follow_the_rate_and_the_mode() {
        let lost: Vec<_> = (1..=1000)
            .filter_map(|seq| lost_answer(&faults(), 3, "acme", seq, CreateKind::Task))
            .collect();
        assert!((400..600).contains(&lost.len()), "{}", lost.len());
        assert!(lost.contains(&LostAnswer::Drop) && lost.contains(&LostAnswer::GatewayTimeout));
        assert!(
            (1..=1000).all(|seq| lost_answer(&faults(), 3, "acme", seq, CreateKind::Job).is_none())
        );
    }
}
