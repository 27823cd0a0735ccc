//! The messages that cross threads, in one place, so that the router (`focus`), the
//! conference threads (`conference`) and the bridge registry (`bridge`) import them from
//! here and never from each other:
//!
//! - [`Inbox`]: router → one conference thread (stanzas, typed where they were parsed:
//!   `xmpp::incoming::Incoming`; conference requests,
//!   connection and bridge changes, Jibri notices, Jitsi component messages, shutdown); bounded ([`INBOX_CAPACITY`] messages, and
//!   in bytes through [`InboxLoad`], see `messages::inbox`).
//! - [`Control`]: conference threads, the HTTP API and `main` → the router.
//! - [`ReplyTarget`] / [`PendingReply`]: where the answer to a conference request goes
//!   (an XMPP connection, or the HTTP API's channel).
//! - [`BridgeEvent`]: what changed in the brewery, for the conferences.
//! - [`Refusal`]: a request refused under a limit.
//! - [`pending`]: the table of outstanding IQ requests (keyed by a random `IqId`),
//!   shared by the router and every conference; answers are routed by it.

pub mod inbox;
pub mod pending;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::xmpp::av_moderation::AvModerationMessage;
use crate::xmpp::conference_iq::{ConferenceReply, RequestFields};
use crate::xmpp::jibri::JibriIq;
use crate::xmpp::room_metadata::RoomMetadata;
use crate::xmpp::ns;
use crate::ids::ConferenceId;
use crate::xmpp::incoming::Incoming;
use crate::xmpp::stanza::{iq_error, iq_result, Envelope, ErrorCondition, ErrorReply};
use crate::jid::Jid;
use crate::net::ConnId;
use crate::xml::Element;

/// A message for a conference thread.
#[derive(Debug)]
pub enum Inbox {
    /// A stanza from the client connection about this room (presence, IQ, IQ answer),
    /// classified once where it was parsed.
    Stanza(Incoming),
    /// A conference request to answer once the focus is in the room.
    Request(PendingReply),
    /// The client connection went down (`false`) or came back (`true`).
    Connection(bool),
    /// A bridge came up or went down.
    Bridge(BridgeEvent),
    /// A status update from, or the departure of, one of this conference's Jibris.
    Jibri(JibriNotice),
    /// A message from a discovered Jitsi Prosody component (AV moderation, room
    /// metadata), already checked to come from its address.
    Component(ComponentMessage),
    /// End the conference now (process shutdown).
    Shutdown,
}

/// What the router passes on about a conference's Jibris.
#[derive(Debug, Clone)]
pub enum JibriNotice {
    /// A status update (IQ set, already answered) from this Jibri.
    Status {
        /// The Jibri's full JID (the sender of the IQ).
        from: Jid,
        /// The `<jibri/>` status IQ it sent.
        jibri: JibriIq,
    },
    /// This Jibri left its brewery.
    Left(Jid),
}

/// A component message for a conference (moderation.md §1, §4).
#[derive(Debug, Clone)]
pub enum ComponentMessage {
    /// From the AV moderation component: enabled media types, whitelists (moderation.md §1).
    AvModeration(AvModerationMessage),
    /// From the room metadata component: the room's metadata JSON (moderation.md §4).
    RoomMetadata(RoomMetadata),
}

impl ComponentMessage {
    /// Estimated memory held (the lists' strings).
    fn weight(&self) -> usize {
        match self {
            ComponentMessage::AvModeration(m) => {
                m.whitelists.iter().flat_map(|(_, l)| l.iter()).map(|j| j.len() + 24).sum::<usize>() + m.actor.as_ref().map_or(0, |a| a.len())
            }
            ComponentMessage::RoomMetadata(m) => {
                m.moderators.iter().chain(m.participants.iter().flatten()).map(|j| j.len() + 24).sum::<usize>()
            }
        }
    }
}

impl Inbox {
    /// A stanza given as a tree (tests, tools), classified as the network layer would.
    pub fn stanza(el: Element) -> Inbox {
        Inbox::Stanza(Incoming::from_element(el))
    }

    /// Estimated memory the message holds (see [`Element::weight`]), for the byte budget
    /// of conference inboxes (`messages::inbox`).
    pub fn weight(&self) -> usize {
        let base = std::mem::size_of::<Inbox>();
        match self {
            Inbox::Stanza(st) => base + st.weight(),
            Inbox::Request(p) => base + p.iq.weight() + p.reply.weight(),
            Inbox::Component(m) => base + m.weight(),
            Inbox::Connection(_) | Inbox::Bridge(_) | Inbox::Shutdown => base,
            Inbox::Jibri(_) => base + crate::xmpp::jibri::MAX_ATTR * 2,
        }
    }
}

/// Where the answer to a conference request goes.
#[derive(Debug, Clone)]
pub enum ReplyTarget {
    /// Back over this XMPP connection.
    Xmpp(ConnId),
    /// To the HTTP API thread waiting on this channel, typed.
    Channel(Sender<ConferenceAnswer>),
}

impl ReplyTarget {
    /// Answer the request `iq` with `a`: sent typed over the channel (never blocking:
    /// the channel has room for the one answer), or, for XMPP, the connection and the
    /// answer stanza to send there.
    pub fn answer<R: Envelope + ?Sized>(&self, iq: &R, a: ConferenceAnswer) -> Option<(ConnId, Element)> {
        match self {
            ReplyTarget::Xmpp(conn) => Some((*conn, a.to_iq(iq))),
            ReplyTarget::Channel(tx) => {
                let _ = tx.try_send(a);
                None
            }
        }
    }
}

/// The answer to a conference request, typed. XMPP requesters get it as an IQ
/// ([`ConferenceAnswer::to_iq`]); the HTTP API gets the value and picks its status from
/// the variant (`ops::api`).
#[derive(Clone, Debug, PartialEq)]
pub enum ConferenceAnswer {
    /// The `<conference>` result, `ready` or not yet.
    Reply(ConferenceReply),
    /// `bad-request` with this text: no or a bad room, a room on another service, no sender.
    BadRequest(String),
    /// `not-acceptable` with this text (secure domain: machine UID missing or wrong).
    NotAcceptable(String),
    /// `not-acceptable` with `<session-invalid/>`: an unknown or expired session.
    SessionInvalid,
    /// `not-authorized` with this text: a guest may not create a room on a secure domain.
    NotAuthorized(String),
    /// `resource-constraint` (type wait): refused under a limit.
    Refused(Refusal),
    /// `service-unavailable` with `<graceful-shutdown/>`: the focus is shutting down.
    ShuttingDown,
}

impl ConferenceAnswer {
    /// The answer stanza to the request `iq`.
    pub fn to_iq<R: Envelope + ?Sized>(&self, iq: &R) -> Element {
        match self {
            ConferenceAnswer::Reply(r) => iq_result(iq).child(r.to_element()),
            ConferenceAnswer::BadRequest(t) => iq_error(iq, ErrorCondition::BadRequest, Some(t)),
            ConferenceAnswer::NotAcceptable(t) => iq_error(iq, ErrorCondition::NotAcceptable, Some(t)),
            ConferenceAnswer::SessionInvalid => ErrorReply::new(ErrorCondition::NotAcceptable)
                .text("invalid session")
                .extra(Element::new("session-invalid", ns::FOCUS))
                .reply_to(iq),
            ConferenceAnswer::NotAuthorized(t) => iq_error(iq, ErrorCondition::NotAuthorized, Some(t)),
            ConferenceAnswer::Refused(r) => r.reply_to(iq),
            ConferenceAnswer::ShuttingDown => ErrorReply::new(ErrorCondition::ServiceUnavailable)
                .extra(Element::new("graceful-shutdown", ns::COLIBRI))
                .reply_to(iq),
        }
    }
}

/// A conference request waiting for its answer.
#[derive(Debug, Clone)]
pub struct PendingReply {
    /// Where to answer.
    pub target: ReplyTarget,
    /// The request IQ (its id/from/to shape the answer), slimmed to what answering and
    /// replaying it need (`xmpp::conference_iq::slim_request`).
    pub iq: Element,
    /// The `<conference>` answer without `ready`.
    pub reply: ConferenceReply,
    /// The real JID of whoever asked (when known).
    pub requester: Option<Jid>,
}

/// Why a conference ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Nobody joined within the start timeout (15 s) after creation.
    NobodyJoined,
    /// The last participant left the room (and no breakout room keeps it).
    RoomEmpty,
    /// The MUC room was destroyed (`<destroy/>` in the focus's unavailable presence).
    RoomDestroyed,
    /// The focus is not (or no longer) owner of the room, or was removed from it.
    NotOwner,
    /// The focus could not join the room (at start or on rejoining after a reconnect).
    JoinFailed,
    /// The process is shutting down (or the thread was told to end).
    Shutdown,
    /// An internal error (a panic) ended it; the room was left.
    Panicked,
}

/// Capacity of a conference inbox: messages sent to the conference and not processed yet,
/// including those it keeps aside during a blocking wait (see `messages::inbox`, which also
/// bounds them in bytes).
pub const INBOX_CAPACITY: usize = 4096;

/// Messages from conference threads to the router.
#[derive(Debug)]
pub enum Control {
    /// The conference thread `id` is about to return (its last message).
    Ended {
        /// The conference that ends.
        id: ConferenceId,
        /// Why it ends.
        reason: EndReason,
    },
    /// Stop taking conferences and end every running one (graceful shutdown).
    Shutdown,
    /// A conference found a bridge failed: tell every conference.
    BridgeEvents(Vec<BridgeEvent>),
    /// A conference request from the HTTP API; the answer goes to `reply`.
    Http {
        /// The request's fields (room, properties), as the HTTP API read them.
        request: RequestFields,
        /// Where the answer goes (the HTTP connection waiting for it).
        reply: Sender<ConferenceAnswer>,
    },
}

/// What changed, for the conferences.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BridgeEvent {
    /// A bridge became available for new conferences.
    Up(Jid),
    /// A bridge left, failed or is shutting down: move its participants.
    Down(Jid),
}

/// A request refused under a limit: answered `resource-constraint` (type wait) with
/// [`Refusal::text`]. The HTTP API answers it `503` with `Retry-After:`
/// [`Refusal::retry_after`] (it gets the value, in [`ConferenceAnswer::Refused`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `--max_conferences` conferences are running.
    TooManyConferences,
    /// `--max_new_rooms_per_minute` or `--max_new_rooms_total_per_minute`.
    TooManyNewRooms,
    /// The conference's inbox is full (messages or bytes).
    ConferenceBusy,
    /// `--max_waiting_requests` wait for the focus to join the room.
    TooManyWaiting,
    /// No thread could be started for a new conference.
    CannotStart,
}

impl Refusal {
    /// Every refusal, in declaration order.
    pub const ALL: [Refusal; 5] =
        [Refusal::TooManyConferences, Refusal::TooManyNewRooms, Refusal::ConferenceBusy, Refusal::TooManyWaiting, Refusal::CannotStart];

    /// The text of the `resource-constraint` answer.
    pub fn text(self) -> &'static str {
        match self {
            Refusal::TooManyConferences => "too many conferences; try again later",
            Refusal::TooManyNewRooms => "too many new rooms; try again later",
            Refusal::ConferenceBusy => "the conference is busy",
            Refusal::TooManyWaiting => "too many requests for this conference; try again later",
            Refusal::CannotStart => "cannot start a conference",
        }
    }

    /// When a retry may succeed: the room limits count per sliding minute and
    /// conferences last minutes; a busy inbox or a joining focus is a matter of seconds.
    pub fn retry_after(self) -> Duration {
        match self {
            Refusal::TooManyConferences | Refusal::TooManyNewRooms => Duration::from_secs(60),
            Refusal::ConferenceBusy | Refusal::TooManyWaiting | Refusal::CannotStart => Duration::from_secs(5),
        }
    }

    /// The answer to `iq`.
    pub fn reply_to<R: Envelope + ?Sized>(self, iq: &R) -> crate::xml::Element {
        crate::xmpp::stanza::iq_error(iq, crate::xmpp::stanza::ErrorCondition::ResourceConstraint, Some(self.text()))
    }
}

/// The weight of what waits in one conference's inbox (sent by the router and not yet
/// processed by the conference), and the total of every inbox. Shared by the router
/// (which adds what it sends), the conference thread (which subtracts what it takes and
/// reports what it keeps aside) and the router again when the conference has ended
/// ([`InboxLoad::release`]).
#[derive(Debug)]
pub struct InboxLoad {
    /// Messages the conference keeps aside during a blocking wait.
    backlog: AtomicUsize,
    /// Bytes in the channel plus bytes kept aside.
    bytes: AtomicUsize,
    /// Bytes kept aside, as last reported by the conference.
    kept: AtomicUsize,
    /// The sum of `bytes` over every conference.
    total: Arc<AtomicUsize>,
}

/// Subtract `n` from `a` without going below zero; what was subtracted.
fn saturating_sub(a: &AtomicUsize, n: usize) -> usize {
    let before = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(n))).unwrap_or(0);
    before.min(n)
}

impl InboxLoad {
    /// A conference's load, counted in `total` too.
    pub fn new(total: Arc<AtomicUsize>) -> InboxLoad {
        InboxLoad { backlog: AtomicUsize::new(0), bytes: AtomicUsize::new(0), kept: AtomicUsize::new(0), total }
    }

    /// `w` bytes were sent to the conference.
    pub fn sent(&self, w: usize) {
        self.bytes.fetch_add(w, Ordering::Relaxed);
        self.total.fetch_add(w, Ordering::Relaxed);
    }

    /// The conference took a message of `w` bytes from its channel.
    pub fn taken(&self, w: usize) {
        let n = saturating_sub(&self.bytes, w);
        saturating_sub(&self.total, n);
    }

    /// The conference now keeps `n` messages of `bytes` bytes aside (unprocessed).
    pub fn report_backlog(&self, n: usize, bytes: usize) {
        self.backlog.store(n, Ordering::Relaxed);
        let before = self.kept.swap(bytes, Ordering::Relaxed);
        if bytes >= before {
            self.sent(bytes - before);
        } else {
            self.taken(before - bytes);
        }
    }

    /// Messages kept aside.
    pub fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Bytes waiting for this conference.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Bytes waiting for every conference.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// The conference has ended: whatever it did not take leaves the total.
    pub fn release(&self) {
        let n = self.bytes.swap(0, Ordering::Relaxed);
        self.kept.store(0, Ordering::Relaxed);
        self.backlog.store(0, Ordering::Relaxed);
        saturating_sub(&self.total, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_follows_what_the_conference_takes_and_keeps_aside() {
        let total: Arc<AtomicUsize> = Arc::default();
        let l = InboxLoad::new(total.clone());
        l.sent(1000);
        l.sent(500);
        l.taken(500);
        assert_eq!((l.bytes(), total.load(Ordering::Relaxed)), (1000, 1000));
        // Taken (1000 gone), then kept aside during a wait: it counts again until processed.
        l.taken(1000);
        l.report_backlog(1, 1000);
        assert_eq!((l.backlog(), l.bytes(), total.load(Ordering::Relaxed)), (1, 1000, 1000));
        l.report_backlog(3, 2500);
        l.report_backlog(1, 300);
        assert_eq!((l.backlog(), l.bytes()), (1, 300));
        l.report_backlog(0, 0);
        assert_eq!((l.bytes(), total.load(Ordering::Relaxed)), (0, 0));
        // Never below zero, and the total stays the sum.
        l.taken(10_000);
        assert_eq!((l.bytes(), total.load(Ordering::Relaxed)), (0, 0));
        l.sent(70);
        l.release();
        assert_eq!((l.bytes(), total.load(Ordering::Relaxed)), (0, 0));
    }
}
