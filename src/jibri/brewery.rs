//! One Jibri brewery (the recorder pool or the SIP gateway pool): the instances seen in
//! its MUC with their `<jibri-status>`, and Jicofo's selection (§2.2 of
//! `tests/fixtures/protocol/jibri-jigasi.md`):
//!
//! - candidates are available (healthy ∧ idle) and were not selected in the last
//!   [`RESELECT_GUARD`] (their busy presence may not have come yet);
//! - the one whose last failure is oldest wins (never-failed first); if even that one
//!   failed less than [`FAILURE_HOLD_OFF`] ago, nobody is selected;
//! - a new presence saying available clears the failure mark;
//! - nothing selected: [`NoJibri::AllBusy`] when the brewery has any instance,
//!   [`NoJibri::NotAvailable`] when it has none.
//!
//! Sans-IO: presences and the clock in, decisions out. At most [`MAX_INSTANCES`]
//! instances are tracked (more are ignored with a log line from the caller).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::jid::Jid;
use crate::xml::Element;
use crate::xmpp::jibri::JibriStatus;
use crate::xmpp::presence::Presence;

/// An instance selected this recently is not selected again.
pub const RESELECT_GUARD: Duration = Duration::from_millis(200);
/// An instance that failed is not selected for this long.
pub const FAILURE_HOLD_OFF: Duration = Duration::from_secs(60);
/// Instances tracked per brewery.
pub const MAX_INSTANCES: usize = 512;

/// Why no Jibri was selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoJibri {
    /// Instances exist but none is selectable (`resource-constraint` "all Jibris are busy").
    AllBusy,
    /// The brewery has no instance (`service-unavailable` "no Jibris available").
    NotAvailable,
}

#[derive(Debug, Clone)]
struct Instance {
    status: JibriStatus,
    last_selected: Option<Instant>,
    last_failed: Option<Instant>,
}

/// What a presence changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreweryChange {
    /// Nothing changed: not from this brewery, the focus's own presence, or a member that
    /// is not (and was not) a Jibri instance.
    None,
    /// A new instance or a new status.
    Updated(Jid),
    /// The instance left the brewery (or stopped publishing a status).
    Left(Jid),
    /// Not tracked: the brewery is full.
    Ignored,
}

/// The instances of one brewery.
#[derive(Debug, Clone)]
pub struct JibriBrewery {
    room: Jid,
    instances: BTreeMap<Jid, Instance>,
}

impl JibriBrewery {
    /// An empty brewery for the MUC room `room` (instances arrive with presences).
    pub fn new(room: Jid) -> JibriBrewery {
        JibriBrewery { room, instances: BTreeMap::new() }
    }

    /// The brewery's room JID.
    pub fn room(&self) -> &Jid {
        &self.room
    }

    /// A presence from the brewery room. Members without `<jibri-status>` (the focus,
    /// anyone else) are not instances; `own_nick`'s presences are ignored.
    pub fn on_presence(&mut self, p: &Element, own_nick: &str, now: Instant) -> BreweryChange {
        self.on_brewery_presence(&Presence::from_element(p), own_nick, now)
    }

    /// [`JibriBrewery::on_presence`] on a typed presence (as the router has it).
    pub fn on_brewery_presence(&mut self, p: &Presence, own_nick: &str, now: Instant) -> BreweryChange {
        let Some(from) = p.from_jid() else { return BreweryChange::None };
        if from.bare() != self.room || from.resource().is_none_or(|r| r == own_nick) {
            return BreweryChange::None;
        }
        let status = p.jibri_status.clone();
        let gone = p.is_unavailable();
        match status {
            Some(status) if !gone => {
                if let Some(i) = self.instances.get_mut(&from) {
                    if status.available() {
                        i.last_failed = None;
                    }
                    i.status = status;
                } else {
                    if self.instances.len() >= MAX_INSTANCES {
                        return BreweryChange::Ignored;
                    }
                    self.instances.insert(from.clone(), Instance { status, last_selected: None, last_failed: None });
                }
                let _ = now;
                BreweryChange::Updated(from)
            }
            _ => {
                if self.instances.remove(&from).is_some() {
                    BreweryChange::Left(from)
                } else {
                    BreweryChange::None
                }
            }
        }
    }

    /// Select an instance (§2.2), not one of `exclude`; stamps it selected.
    pub fn select(&mut self, exclude: &[Jid], now: Instant) -> Result<Jid, NoJibri> {
        if self.instances.is_empty() {
            return Err(NoJibri::NotAvailable);
        }
        let best = self
            .instances
            .iter()
            .filter(|(j, i)| {
                i.status.available()
                    && !exclude.contains(j)
                    && i.last_selected.is_none_or(|t| now.saturating_duration_since(t) >= RESELECT_GUARD)
            })
            .min_by_key(|(_, i)| i.last_failed)
            .map(|(j, i)| (j.clone(), i.last_failed));
        match best {
            Some((_, Some(f))) if now.saturating_duration_since(f) < FAILURE_HOLD_OFF => Err(NoJibri::AllBusy),
            Some((j, _)) => {
                if let Some(i) = self.instances.get_mut(&j) {
                    i.last_selected = Some(now);
                }
                Ok(j)
            }
            None => Err(NoJibri::AllBusy),
        }
    }

    /// `jid` failed a start (timeout, error, busy): excluded for [`FAILURE_HOLD_OFF`].
    pub fn failed(&mut self, jid: &Jid, now: Instant) {
        if let Some(i) = self.instances.get_mut(jid) {
            i.last_failed = Some(now);
        }
    }

    /// Is `jid` an instance of this brewery?
    pub fn contains(&self, jid: &Jid) -> bool {
        self.instances.contains_key(jid)
    }

    /// Instances in the brewery.
    pub fn count(&self) -> usize {
        self.instances.len()
    }

    /// Instances reporting healthy and idle.
    pub fn available_count(&self) -> usize {
        self.instances.values().filter(|i| i.status.available()).count()
    }

    /// Forget every instance (the connection was lost; the brewery is rejoined).
    pub fn clear(&mut self) -> Vec<Jid> {
        std::mem::take(&mut self.instances).into_keys().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmpp::ns;

    fn room() -> Jid {
        Jid::parse("JibriBrewery@internal.auth.meet.test").unwrap()
    }

    fn presence(nick: &str, busy: bool, healthy: bool) -> Element {
        Element::new("presence", ns::CLIENT)
            .attr("from", room().with_resource(nick).to_string())
            .child(JibriStatus { busy, healthy }.to_element())
    }

    #[test]
    fn selection_follows_jicofo() {
        let t0 = Instant::now();
        let mut b = JibriBrewery::new(room());
        assert_eq!(b.select(&[], t0), Err(NoJibri::NotAvailable));
        b.on_presence(&presence("j1", false, true), "focus", t0);
        b.on_presence(&presence("j2", true, true), "focus", t0);
        b.on_presence(&presence("j3", false, false), "focus", t0);
        let j1 = room().with_resource("j1");
        assert_eq!(b.select(&[], t0), Ok(j1.clone()));
        // Selected 0 ms ago: not again within the guard.
        assert_eq!(b.select(&[], t0 + Duration::from_millis(100)), Err(NoJibri::AllBusy));
        assert_eq!(b.select(&[], t0 + RESELECT_GUARD), Ok(j1.clone()));
        // A failure holds it off for a minute...
        b.failed(&j1, t0 + Duration::from_secs(1));
        assert_eq!(b.select(&[], t0 + Duration::from_secs(30)), Err(NoJibri::AllBusy));
        assert_eq!(b.select(&[], t0 + Duration::from_secs(62)), Ok(j1.clone()));
        // ...unless it says it is available again.
        b.failed(&j1, t0 + Duration::from_secs(63));
        b.on_presence(&presence("j1", false, true), "focus", t0 + Duration::from_secs(64));
        assert_eq!(b.select(&[], t0 + Duration::from_secs(65)), Ok(j1.clone()));
        // The never-failed one wins over an old failure.
        b.on_presence(&presence("j2", false, true), "focus", t0);
        b.failed(&j1, t0);
        assert_eq!(b.select(&[], t0 + Duration::from_secs(200)), Ok(room().with_resource("j2")));
        assert_eq!(b.select(&[room().with_resource("j2")], t0 + Duration::from_secs(300)), Ok(j1));
    }

    #[test]
    fn members_without_status_and_leavers_are_not_instances() {
        let t0 = Instant::now();
        let mut b = JibriBrewery::new(room());
        let focus = Element::new("presence", ns::CLIENT).attr("from", room().with_resource("focus").to_string());
        assert_eq!(b.on_presence(&focus, "focus", t0), BreweryChange::None);
        let other = Element::new("presence", ns::CLIENT).attr("from", room().with_resource("x").to_string());
        assert_eq!(b.on_presence(&other, "focus", t0), BreweryChange::None);
        b.on_presence(&presence("j1", false, true), "focus", t0);
        assert_eq!(b.count(), 1);
        let gone = presence("j1", false, true).attr("type", "unavailable");
        assert_eq!(b.on_presence(&gone, "focus", t0), BreweryChange::Left(room().with_resource("j1")));
        assert_eq!(b.count(), 0);
        for i in 0..MAX_INSTANCES + 5 {
            b.on_presence(&presence(&format!("j{}", i), false, true), "focus", t0);
        }
        assert_eq!(b.count(), MAX_INSTANCES);
    }
}
