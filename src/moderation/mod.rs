//! Moderation rules as pure functions of typed inputs (moderation.md §1, §2, §7): the
//! conference calls them at thin seams and does what they decide. No I/O, no clock
//! except what the caller passes in.
//!
//! * [`av`]: AV moderation state of one conference and its transitions (§1.3).
//! * [`breakout`]: main rooms with breakout conferences running (§3), and the settings.
//! * [`mute_rules`]: the nine checks of a mute IQ in order, and what succeeds (§2).
//! * [`ice`]: what a Jingle `session-info` asks for and the answer it gets (§7).

pub mod av;
pub mod breakout;
pub mod ice;
pub mod mute_rules;
