//! Jigasi in one conference: the moderator's Rayo `<dial>` (phone or SIP dial-out, or
//! the transcriber) checked as §5.1 of `tests/fixtures/protocol/jibri-jigasi.md` says,
//! forwarded to a selected Jigasi (§2.3) as a copy on a new IQ, retried on up to two
//! other Jigasis after an error or a timeout, and the `<ref>` relayed to the requester
//! with its own id (§5.2). Hang-up goes from the client to the Jigasi directly.
//!
//! Refusals: no Jigasi brewery → `service-unavailable`; the sender not in the room →
//! `item-not-found`... as a non-member `forbidden`; not a moderator → `forbidden`;
//! a bad `<dial>` (no or malformed `to`, too many or too long headers) → `bad-request`;
//! `JvbRoomName` naming another room → `forbidden`; a transcriber already in the room →
//! `conflict`; more than [`MAX_DIALS`] dials in flight → `resource-constraint`;
//! nobody to select → `service-unavailable`; after the last attempt
//! `remote-server-timeout` (timeouts) or `undefined-condition` (errors).

use std::sync::atomic::Ordering;

use log::{info, warn};

use crate::jid::Jid;
use crate::xml::Element;
use crate::xmpp::incoming::Incoming;
use crate::xmpp::ns;
use crate::xmpp::jigasi::Robot;
use crate::xmpp::rayo::{Dial, DialTarget, ROOM_NAME_HEADER};
use crate::xmpp::stanza::{iq_error, ErrorCondition};

use super::{Conference, Env, PendingIq, REPLY_TIMEOUT};

/// Dials one conference may have in flight.
pub const MAX_DIALS: usize = 4;

/// One dial on its way.
#[derive(Debug, Clone)]
struct InFlight {
    key: u64,
    /// The moderator's request (slim: id/from/to).
    iq: Element,
    dial: Dial,
    tried: Vec<Jid>,
}

/// The conference's dials in flight.
#[derive(Debug, Default)]
pub(crate) struct Dials {
    next: u64,
    flights: Vec<InFlight>,
}

impl<E: Env> Conference<E> {
    /// A `<dial>` IQ from an occupant.
    pub(crate) fn on_dial_request(&mut self, iq: &Element, el: &Element) {
        if let Some(r) = self.dial_request(iq, el) {
            self.send(r);
        }
    }

    fn dial_request(&mut self, iq: &Element, el: &Element) -> Option<Element> {
        if self.shared.jigasi.brewery.is_none() {
            return Some(iq_error(iq, ErrorCondition::ServiceUnavailable, Some("no Jigasi brewery is configured")));
        }
        let from = iq.get_attr("from").and_then(|f| Jid::parse(f).ok());
        let Some(nick) = from.as_ref().filter(|f| f.bare() == self.room).and_then(|f| f.resource()).map(str::to_string) else {
            return Some(iq_error(iq, ErrorCondition::ItemNotFound, None));
        };
        let Some(occupant) = self.occupants.iter().find(|o| o.nick == nick).cloned() else {
            return Some(iq_error(iq, ErrorCondition::Forbidden, Some("not a participant")));
        };
        if !occupant.is_moderator() {
            return Some(iq_error(iq, ErrorCondition::Forbidden, Some("only moderators may dial")));
        }
        let dial = match Dial::try_from(el) {
            Ok(d) => d,
            Err(e) => return Some(iq_error(iq, ErrorCondition::BadRequest, Some(&e.to_string()))),
        };
        if let Some(room) = dial.header(ROOM_NAME_HEADER) {
            if !Jid::parse(room).is_ok_and(|r| r == self.room) {
                return Some(iq_error(iq, ErrorCondition::Forbidden, Some("JvbRoomName is another room")));
            }
        }
        let transcriber = dial.target == DialTarget::Transcriber;
        if transcriber && self.occupants.iter().any(|o| o.robot == Some(Robot::Transcriber)) {
            return Some(iq_error(iq, ErrorCondition::Conflict, Some("a transcriber is already in the room")));
        }
        if self.dials.flights.len() >= MAX_DIALS {
            return Some(iq_error(iq, ErrorCondition::ResourceConstraint, Some("too many dials in flight")));
        }
        self.dials.next += 1;
        let key = self.dials.next;
        info!("conference {}: {} dials {}", self.room, occupant.nick, if transcriber { "the transcriber" } else { &dial.to });
        self.dials.flights.push(InFlight { key, iq: crate::xmpp::conference_iq::slim_request(iq), dial, tried: Vec::new() });
        self.dial_attempt(key, ErrorCondition::ServiceUnavailable);
        None
    }

    /// Send the dial of `key` to the next Jigasi, or answer `last` when there is none
    /// or the attempts are used up.
    fn dial_attempt(&mut self, key: u64, last: ErrorCondition) {
        let Some(pos) = self.dials.flights.iter().position(|f| f.key == key) else { return };
        let f = &self.dials.flights[pos];
        let transcriber = f.dial.target == DialTarget::Transcriber;
        let jigasi = if f.tried.len() >= crate::jigasi::DIAL_ATTEMPTS {
            None
        } else {
            let regions: Vec<String> = self.bridge_regions();
            let local = self.shared.jigasi.local_region.clone();
            self.shared.jigasi.brewery.as_ref().and_then(|b| b.lock().select(&f.tried, transcriber, &regions, local.as_deref()))
        };
        let Some(to) = jigasi else {
            let f = self.dials.flights.remove(pos);
            let cond = if f.tried.is_empty() { ErrorCondition::ServiceUnavailable } else { last };
            warn!("conference {}: dial to {} failed: {}", self.room, f.dial.to, cond.as_str());
            self.shared.jigasi.dials_failed.fetch_add(1, Ordering::Relaxed);
            let text = if f.tried.is_empty() { "no Jigasi available" } else { "Jigasi did not answer" };
            let r = iq_error(&f.iq, cond, Some(text));
            self.send(r);
            return;
        };
        let deadline = self.env.now() + REPLY_TIMEOUT;
        let Some(id) = self.track(PendingIq::Dial { key }, to.clone(), deadline) else {
            let f = self.dials.flights.remove(pos);
            self.shared.jigasi.dials_failed.fetch_add(1, Ordering::Relaxed);
            let r = iq_error(&f.iq, ErrorCondition::ResourceConstraint, None);
            self.send(r);
            return;
        };
        let f = &mut self.dials.flights[pos];
        f.tried.push(to.clone());
        if f.tried.len() == 1 {
            self.shared.jigasi.dials.fetch_add(1, Ordering::Relaxed);
        }
        let iq = Element::new("iq", ns::CLIENT).attr("type", "set").attr("id", id).attr("to", to.to_string()).child(f.dial.to_element());
        info!("conference {}: dial forwarded to Jigasi {}", self.room, to);
        self.send(iq);
    }

    /// Jigasi's answer to a dial (or `None` at its deadline).
    pub(crate) fn on_dial_answer(&mut self, key: u64, answer: Option<&Incoming>) {
        match answer {
            Some(a) if a.get_attr("type") == Some("result") => {
                let Some(pos) = self.dials.flights.iter().position(|f| f.key == key) else { return };
                let f = self.dials.flights.remove(pos);
                // The answer as is, to the requester with its id (children bounded: a
                // `<ref>` is copied, anything else dropped).
                let mut r = crate::xmpp::stanza::iq_result(&f.iq);
                if let Some(rf) = a.element().and_then(|a| a.get_child("ref", crate::xmpp::rayo::NS)).and_then(|x| crate::xmpp::rayo::Ref::try_from(x).ok()) {
                    info!("conference {}: dial to {} answered: {}", self.room, f.dial.to, rf.uri);
                    r = r.child(rf.to_element());
                }
                self.shared.jigasi.dials_answered.fetch_add(1, Ordering::Relaxed);
                self.send(r);
            }
            Some(_) => self.dial_attempt(key, ErrorCondition::UndefinedCondition),
            None => self.dial_attempt(key, ErrorCondition::RemoteServerTimeout),
        }
    }

    /// The conference ends: whoever waits for a dial gets `item-not-found`.
    pub(crate) fn dials_abort_all(&mut self) {
        for f in std::mem::take(&mut self.dials.flights) {
            let r = iq_error(&f.iq, ErrorCondition::ItemNotFound, Some("the conference has ended"));
            self.send(r);
        }
    }

    /// Regions of the conference's bridges (for Jigasi selection).
    fn bridge_regions(&self) -> Vec<String> {
        let Some(b) = self.media.bridging.last_bridge.as_ref() else { return Vec::new() };
        self.shared.bridges.lock().get(b).and_then(|x| x.region.clone()).into_iter().collect()
    }
}
