//! One log line per interval for events that input can repeat at will (refusals,
//! dropped stanzas, reconnect failures): [`LogThrottle`] says when to log and how many
//! events were not logged since; [`LogThrottles`] keeps one per kind of event. Time is
//! passed in, so it runs on simulated time in tests. Used by every layer (`net`,
//! `focus`, `conference`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The interval of [`LogThrottle::default`].
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// One log line per interval for a repeated event: the first passes, then at most one
/// per `interval`, each saying how many were held back since the last.
#[derive(Clone, Debug)]
pub struct LogThrottle {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogThrottle {
    /// A throttle that lets one line through per `interval`.
    pub fn new(interval: Duration) -> LogThrottle {
        LogThrottle { interval, last: None, suppressed: 0 }
    }

    /// An event at `now`: `Some(n)` to log it now (`n` more happened since the last
    /// line), `None` to stay quiet.
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < self.interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

impl Default for LogThrottle {
    fn default() -> LogThrottle {
        LogThrottle::new(DEFAULT_INTERVAL)
    }
}

/// A [`LogThrottle`] per kind of event (a fixed set of names: the map stays small).
#[derive(Clone, Debug, Default)]
pub struct LogThrottles {
    kinds: HashMap<&'static str, LogThrottle>,
}

impl LogThrottles {
    /// An event of `kind` at `now`: see [`LogThrottle::hit`].
    pub fn hit(&mut self, kind: &'static str, now: Instant) -> Option<u64> {
        self.kinds.entry(kind).or_default().hit(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_of_the_rest() {
        let t0 = Instant::now();
        let mut t = LogThrottle::new(Duration::from_secs(10));
        assert_eq!(t.hit(t0), Some(0));
        for i in 1..=99 {
            assert_eq!(t.hit(t0 + Duration::from_millis(i * 10)), None);
        }
        assert_eq!(t.hit(t0 + Duration::from_secs(10)), Some(99));
        assert_eq!(t.hit(t0 + Duration::from_secs(11)), None);
        assert_eq!(t.hit(t0 + Duration::from_secs(100)), Some(1));
        // A clock that goes backwards (simulated time in tests) is no event in the future.
        assert_eq!(t.hit(t0), None);
        // Kinds are throttled separately.
        let mut k = LogThrottles::default();
        assert_eq!(k.hit("a", t0), Some(0));
        assert_eq!(k.hit("b", t0), Some(0));
        assert_eq!(k.hit("a", t0), None);
    }
}
