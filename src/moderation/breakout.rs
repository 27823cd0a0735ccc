//! Breakout rooms (moderation.md §3): which main rooms have breakout conferences
//! running, shared by all conferences and the router. A breakout conference registers
//! its main room once it read it from the room's owner form and unregisters when it
//! ends; a main conference whose room empties is kept while any are registered, and
//! the router lets anyone (re)create a main room that has some (people returning). At
//! most one entry per running conference, so bounded by `--max_conferences`.

use std::collections::HashMap;

use crate::jid::Jid;

/// Running breakout conferences per main room.
#[derive(Debug, Default)]
pub struct BreakoutRegistry {
    mains: HashMap<Jid, usize>,
}

impl BreakoutRegistry {
    /// A breakout conference of `main` started.
    pub fn add(&mut self, main: &Jid) {
        *self.mains.entry(main.clone()).or_default() += 1;
    }

    /// A breakout conference of `main` ended.
    pub fn remove(&mut self, main: &Jid) {
        if let Some(n) = self.mains.get_mut(main) {
            *n -= 1;
            if *n == 0 {
                self.mains.remove(main);
            }
        }
    }

    /// Has `main` breakout conferences running?
    pub fn has_breakouts(&self, main: &Jid) -> bool {
        self.mains.contains_key(main)
    }
}

/// Settings of the moderation features, configured in `config`.
pub use crate::config::features::ModerationSettings as Settings;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakouts_are_counted_per_main_room() {
        let mut r = BreakoutRegistry::default();
        let main = Jid::parse("main@conference.meet.test").unwrap();
        assert!(!r.has_breakouts(&main));
        r.add(&main);
        r.add(&main);
        r.remove(&main);
        assert!(r.has_breakouts(&main));
        r.remove(&main);
        assert!(!r.has_breakouts(&main));
        r.remove(&main);
        assert!(r.mains.is_empty());
    }
}
