//! Jibri through the focus: the recorder and SIP-gateway breweries ([`brewery`]), one
//! session's state machine ([`session`]), and [`Jibris`], what the router and every
//! conference share: the breweries (when configured) and which Jibri serves which
//! conference, so a status update from a Jibri reaches the conference that started
//! it and nobody else. Counters for `/stats` and `/metrics`.
//!
//! The conference side (checks of the moderator's `<jibri>` IQ, publication in the
//! focus presence) is `conference::jibri`; the typed elements are `xmpp::jibri`.

pub mod brewery;
pub mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use crate::ids::ConferenceId;
use crate::jid::Jid;
use brewery::{JibriBrewery, NoJibri};
pub use session::SessionConfig;

/// Session counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Sessions a Jibri accepted (the moderator got a result).
    pub started: AtomicU64,
    /// Sessions that ended in an error (start refused, retries exhausted, failure).
    pub failed: AtomicU64,
    /// Sessions running now (starting, pending or on).
    pub active: AtomicU64,
}

/// The Jibri breweries and bindings, shared by the router and conferences.
#[derive(Debug, Default)]
pub struct Jibris {
    /// The recorder brewery (`--jibri_muc`): file recording and live streaming; `None` when off.
    pub recorder: Option<Mutex<JibriBrewery>>,
    /// The SIP Jibri brewery (`--jibri_sip_muc`): the SIP video gateway; `None` when off.
    pub sip: Option<Mutex<JibriBrewery>>,
    /// Jibri (occupant JID in its brewery) → the conference whose session it serves.
    bound: Mutex<HashMap<Jid, ConferenceId>>,
    /// Pending timeout and retry budget of every session.
    pub session: SessionConfig,
    /// Counters of recording and live streaming sessions.
    pub recording: Counters,
    /// Counters of SIP gateway sessions.
    pub sip_calls: Counters,
}

impl Jibris {
    /// Breweries as configured (`None`: that feature is off).
    pub fn new(recorder: Option<Jid>, sip: Option<Jid>, session: SessionConfig) -> Jibris {
        Jibris {
            recorder: recorder.map(|r| Mutex::new(JibriBrewery::new(r))),
            sip: sip.map(|r| Mutex::new(JibriBrewery::new(r))),
            bound: Mutex::new(HashMap::new()),
            session,
            recording: Counters::default(),
            sip_calls: Counters::default(),
        }
    }

    /// The brewery for SIP (`true`) or recording.
    pub fn brewery(&self, sip: bool) -> Option<&Mutex<JibriBrewery>> {
        if sip {
            self.sip.as_ref()
        } else {
            self.recorder.as_ref()
        }
    }

    /// The counters of SIP (`true`) or recording sessions.
    pub fn counters(&self, sip: bool) -> &Counters {
        if sip {
            &self.sip_calls
        } else {
            &self.recording
        }
    }

    /// Which brewery `room` is, if any (`Some(true)`: the SIP one).
    pub fn brewery_of(&self, room: &Jid) -> Option<bool> {
        if self.recorder.as_ref().is_some_and(|b| b.lock().room() == room) {
            Some(false)
        } else if self.sip.as_ref().is_some_and(|b| b.lock().room() == room) {
            Some(true)
        } else {
            None
        }
    }

    /// The conference `jibri` serves.
    pub fn bound_to(&self, jibri: &Jid) -> Option<ConferenceId> {
        self.bound.lock().get(jibri).copied()
    }

    /// Forget every binding of conference `conf` (it ended).
    pub fn unbind_conference(&self, conf: ConferenceId) {
        self.bound.lock().retain(|_, c| *c != conf);
    }

    /// Instances in each brewery (recorder, SIP) and how many are available.
    pub fn instance_counts(&self) -> [(usize, usize); 2] {
        let c = |b: Option<&Mutex<JibriBrewery>>| b.map(|b| {
            let b = b.lock();
            (b.count(), b.available_count())
        });
        [c(self.recorder.as_ref()).unwrap_or((0, 0)), c(self.sip.as_ref()).unwrap_or((0, 0))]
    }

    /// A [`session::Pool`] over one brewery for conference `conf`.
    pub fn pool(&self, sip: bool, conf: ConferenceId) -> ConferencePool<'_> {
        ConferencePool { jibris: self, sip, conf }
    }
}

/// Selection from one brewery on behalf of one conference: a selected Jibri is bound
/// to the conference until released.
pub struct ConferencePool<'a> {
    jibris: &'a Jibris,
    sip: bool,
    conf: ConferenceId,
}

impl session::Pool for ConferencePool<'_> {
    fn select(&mut self, exclude: &[Jid], now: Instant) -> Result<Jid, NoJibri> {
        let Some(b) = self.jibris.brewery(self.sip) else { return Err(NoJibri::NotAvailable) };
        // A Jibri bound to a session (a stale idle presence) is not selected again.
        let busy: Vec<Jid> = self.jibris.bound.lock().keys().cloned().collect();
        let mut ex = exclude.to_vec();
        ex.extend(busy);
        let j = b.lock().select(&ex, now)?;
        self.jibris.bound.lock().insert(j.clone(), self.conf);
        Ok(j)
    }

    fn failed(&mut self, jid: &Jid, now: Instant) {
        if let Some(b) = self.jibris.brewery(self.sip) {
            b.lock().failed(jid, now);
        }
    }

    fn release(&mut self, jid: &Jid) {
        let mut bound = self.jibris.bound.lock();
        if bound.get(jid) == Some(&self.conf) {
            bound.remove(jid);
        }
    }
}

/// Count a session event.
pub fn count(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
