//! The simulator's clock: real time since start (plus whatever `advance` added), converted
//! between real and simulated seconds by the time scale, and to UTC timestamps.
//!
//! Instants are `f64` real seconds since the simulator started. Timestamps on the wire are
//! real UTC times; durations from the scenario (simulated) are divided by the scale.

use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::values::ClockMode;

/// The clock. Cheap to read; `advance` moves every reader forward at once.
#[derive(Debug)]
pub(crate) struct SimClock {
    /// Real start, for the monotonic part of `now`.
    origin: Instant,
    /// UTC time at `origin`, for timestamps.
    origin_wall: DateTime<Utc>,
    /// Simulated seconds per real second.
    scale: f64,
    mode: ClockMode,
    /// Real seconds added by `advance` (time travel for tests).
    offset: Mutex<f64>,
}

impl SimClock {
    pub(super) fn new(scale: f64, mode: ClockMode) -> SimClock {
        SimClock {
            origin: Instant::now(),
            origin_wall: Utc::now(),
            scale,
            mode,
            offset: Mutex::new(0.0),
        }
    }

    pub(super) fn scale(&self) -> f64 {
        self.scale
    }

    pub(super) fn mode(&self) -> ClockMode {
        self.mode
    }

    /// Real seconds since start (the instant every record is stamped with).
    pub(super) fn now(&self) -> f64 {
        let offset = *self.offset.lock().unwrap_or_else(|e| e.into_inner());
        match self.mode {
            ClockMode::Real => self.origin.elapsed().as_secs_f64() + offset,
            ClockMode::Manual => offset,
        }
    }

    /// Moves time forward by `sim_secs` simulated seconds.
    pub(super) fn advance(&self, sim_secs: f64) {
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *offset += sim_secs.max(0.0) / self.scale;
    }

    /// Real seconds that `sim_secs` simulated seconds last.
    pub(super) fn real(&self, sim_secs: f64) -> f64 {
        sim_secs / self.scale
    }

    /// Simulated seconds between two instants.
    pub(super) fn simulated_between(&self, from: f64, to: f64) -> f64 {
        (to - from) * self.scale
    }

    /// The UTC time of an instant.
    pub(super) fn wall(&self, at: f64) -> DateTime<Utc> {
        let micros = (at * 1e6).round() as i64;
        self.origin_wall + chrono::Duration::microseconds(micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let clock = SimClock::new(60.0, ClockMode::Manual);
        assert_eq!(clock.now(), 0.0);
        clock.advance(120.0);
        assert_eq!(clock.now(), 2.0);
        assert_eq!(clock.simulated_between(0.0, clock.now()), 120.0);
        assert_eq!((clock.wall(2.0) - clock.wall(0.0)).num_milliseconds(), 2000);
    }

    #[test]
    fn a_real_clock_scales_durations() {
        let clock = SimClock::new(3600.0, ClockMode::Real);
        assert_eq!(clock.real(3600.0), 1.0);
        let before = clock.now();
        clock.advance(7200.0);
        assert!(clock.now() >= before + 2.0);
    }
}
