//! Jigasi through the focus: the Jigasi brewery (instances and their stats, from
//! presence) and Jicofo's selection (§2.3 of `tests/fixtures/protocol/jibri-jigasi.md`):
//! drop excluded instances, those in graceful shutdown and those lacking the capability
//! (`supports_transcription` for the transcriber, else `supports_sip`); then the first
//! non-empty of: in a preferred region (the conference's bridges'), in the local
//! region, all; pick the fewest `participants` (`stress_level` is not read).
//!
//! The conference side (checks of the moderator's `<dial>`, forwarding with retries,
//! relaying the `<ref>`) is `conference::jigasi`; the typed elements are `xmpp::rayo`
//! and `xmpp::jigasi`. Sans-IO; at most [`MAX_INSTANCES`] instances.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use parking_lot::Mutex;

use crate::jid::Jid;
use crate::xml::Element;
use crate::xmpp::jigasi::JigasiStats;
use crate::xmpp::presence::Presence;

/// Instances tracked.
pub const MAX_INSTANCES: usize = 512;
/// Attempts per dial: the first and two retries (a constant in Jicofo too).
pub const DIAL_ATTEMPTS: usize = 3;

/// The instances of the Jigasi brewery.
#[derive(Debug, Clone)]
pub struct JigasiBrewery {
    room: Jid,
    instances: BTreeMap<Jid, JigasiStats>,
}

impl JigasiBrewery {
    /// An empty brewery for the MUC room `room` (instances arrive with presences).
    pub fn new(room: Jid) -> JigasiBrewery {
        JigasiBrewery { room, instances: BTreeMap::new() }
    }

    /// The brewery's room JID.
    pub fn room(&self) -> &Jid {
        &self.room
    }

    /// A presence from the brewery: instances publish colibri `<stats>`; others (the
    /// focus) are not instances.
    pub fn on_presence(&mut self, p: &Element, own_nick: &str) {
        self.on_brewery_presence(&Presence::from_element(p), own_nick)
    }

    /// [`JigasiBrewery::on_presence`] on a typed presence (as the router has it).
    pub fn on_brewery_presence(&mut self, p: &Presence, own_nick: &str) {
        let Some(from) = p.from_jid() else { return };
        if from.bare() != self.room || from.resource().is_none_or(|r| r == own_nick) {
            return;
        }
        let stats = p.stats.as_deref().map(JigasiStats::from_stats);
        match stats {
            Some(s) if !p.is_unavailable() => {
                if self.instances.len() < MAX_INSTANCES || self.instances.contains_key(&from) {
                    self.instances.insert(from, s);
                }
            }
            _ => {
                self.instances.remove(&from);
            }
        }
    }

    /// Select a Jigasi (§2.3).
    pub fn select(&self, exclude: &[Jid], transcriber: bool, preferred: &[String], local: Option<&str>) -> Option<Jid> {
        let ok: Vec<(&Jid, &JigasiStats)> = self
            .instances
            .iter()
            .filter(|(j, s)| {
                !exclude.contains(j) && !s.graceful_shutdown && if transcriber { s.supports_transcription } else { s.supports_sip }
            })
            .collect();
        let in_region = |r: &dyn Fn(&str) -> bool| -> Vec<(&Jid, &JigasiStats)> {
            ok.iter().filter(|(_, s)| s.region.as_deref().is_some_and(r)).cloned().collect()
        };
        let pref = in_region(&|r| preferred.iter().any(|p| p == r));
        let loc = in_region(&|r| local == Some(r));
        let set = if !pref.is_empty() {
            pref
        } else if !loc.is_empty() {
            loc
        } else {
            ok.clone()
        };
        set.into_iter().min_by_key(|(_, s)| s.participants).map(|(j, _)| j.clone())
    }

    /// Does any instance support SIP (`false`) or transcription (`true`)?
    pub fn supports(&self, transcriber: bool) -> bool {
        self.instances.values().any(|s| !s.graceful_shutdown && if transcriber { s.supports_transcription } else { s.supports_sip })
    }

    /// Instances tracked now (any capability, including those shutting down).
    pub fn count(&self) -> usize {
        self.instances.len()
    }

    /// Forget every instance (the client connection dropped; they are listed again by the
    /// presences of the rejoin).
    pub fn clear(&mut self) {
        self.instances.clear();
    }
}

/// The Jigasi brewery (when configured) and dial counters, shared by the router and
/// conferences.
#[derive(Debug, Default)]
pub struct Jigasis {
    /// The Jigasi brewery (`--jigasi_muc`); `None` when dial-out and transcription are off.
    pub brewery: Option<Mutex<JigasiBrewery>>,
    /// The local region for selection (Jicofo's `jicofo.local-region`; no flag sets it yet).
    pub local_region: Option<String>,
    /// Dials forwarded to a Jigasi.
    pub dials: AtomicU64,
    /// Dials answered with a `<ref>`.
    pub dials_answered: AtomicU64,
    /// Dials that failed (no Jigasi, errors, timeouts).
    pub dials_failed: AtomicU64,
}

impl Jigasis {
    /// The brewery as configured (`None`: off), counters at zero.
    pub fn new(brewery: Option<Jid>) -> Jigasis {
        Jigasis { brewery: brewery.map(|b| Mutex::new(JigasiBrewery::new(b))), ..Default::default() }
    }

    /// (instances, SIP-capable, transcription-capable).
    pub fn counts(&self) -> (usize, usize, usize) {
        match &self.brewery {
            None => (0, 0, 0),
            Some(b) => {
                let b = b.lock();
                let n = |t: bool| b.instances.values().filter(|s| !s.graceful_shutdown && if t { s.supports_transcription } else { s.supports_sip }).count();
                (b.count(), n(false), n(true))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmpp::ns;

    fn room() -> Jid {
        Jid::parse("JigasiBrewery@internal.auth.meet.test").unwrap()
    }

    fn presence(nick: &str, s: JigasiStats) -> Element {
        Element::new("presence", ns::CLIENT).attr("from", room().with_resource(nick).to_string()).child(s.to_element())
    }

    fn stats(sip: bool, tr: bool, n: u32, region: Option<&str>) -> JigasiStats {
        JigasiStats { supports_sip: sip, supports_transcription: tr, graceful_shutdown: false, participants: n, region: region.map(Into::into) }
    }

    #[test]
    fn selection_by_capability_region_and_load() {
        let mut b = JigasiBrewery::new(room());
        assert_eq!(b.select(&[], false, &[], None), None);
        b.on_presence(&presence("a", stats(true, false, 5, Some("eu"))), "focus");
        b.on_presence(&presence("b", stats(true, false, 1, Some("us"))), "focus");
        b.on_presence(&presence("t", stats(false, true, 9, None)), "focus");
        let j = |n: &str| Some(room().with_resource(n));
        assert_eq!(b.select(&[], false, &[], None), j("b"), "fewest participants");
        assert_eq!(b.select(&[], false, &["eu".into()], None), j("a"), "preferred region first");
        assert_eq!(b.select(&[], false, &["ap".into()], Some("eu")), j("a"), "then the local region");
        assert_eq!(b.select(&[room().with_resource("b")], false, &[], None), j("a"));
        assert_eq!(b.select(&[], true, &[], None), j("t"), "the transcriber needs the capability");
        let mut shut = stats(true, false, 0, None);
        shut.graceful_shutdown = true;
        b.on_presence(&presence("c", shut), "focus");
        assert_eq!(b.select(&[], false, &[], None), j("b"), "graceful shutdown takes nothing new");
        b.on_presence(&presence("b", stats(true, false, 1, None)).attr("type", "unavailable"), "focus");
        assert_eq!(b.count(), 3);
    }
}
