//! The limits against hostile input as configured ([`Limits`]: flags and their defaults).
//! The helpers that enforce them are in `focus::limits`; conferences read `Limits` from
//! their shared state.

/// Default of `--max_conferences`.
pub const DEFAULT_MAX_CONFERENCES: usize = 1000;
/// Default of `--max_new_rooms_per_minute` (per requester bare JID).
pub const DEFAULT_NEW_ROOMS_PER_MINUTE: usize = 20;
/// Default of `--max_new_rooms_total_per_minute` (all requesters together).
pub const DEFAULT_NEW_ROOMS_TOTAL_PER_MINUTE: usize = 600;
/// Default of `--max_participants` (per conference).
pub const DEFAULT_MAX_PARTICIPANTS: usize = 1000;
/// Default of `--max_waiting_requests` (per conference, while the focus is joining).
pub const DEFAULT_MAX_WAITING_REQUESTS: usize = 256;
/// Default of `--max_iq_per_second` (IQ requests per sender; bursts of five times that).
pub const DEFAULT_IQ_PER_SECOND: usize = 20;

/// The configured limits.
///
/// Jicofo has no participant limit for a main room (its `visitors.max-participants`
/// redirects clients that support visitors to visitor nodes, which this focus does not
/// have). Here a participant past `max_participants` stays in the MUC but the focus
/// serves it nothing (no disco, ownership or offer) until a seat frees; the focus
/// remembers at most as many waiting ones again and ignores the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Running conferences (each is a thread and a MUC room).
    pub max_conferences: usize,
    /// New rooms one requester (bare JID) may create per minute.
    pub new_rooms_per_minute: usize,
    /// New rooms all requesters together may create per minute.
    pub new_rooms_total_per_minute: usize,
    /// Participants a conference serves (offers, disco, ownership); later joiners wait.
    pub max_participants: usize,
    /// Conference requests a conference keeps while the focus is joining its room.
    pub max_waiting_requests: usize,
    /// IQ requests one sender (full JID as it reaches the focus) may send per second,
    /// with bursts of five times that.
    pub iq_per_second: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_conferences: DEFAULT_MAX_CONFERENCES,
            new_rooms_per_minute: DEFAULT_NEW_ROOMS_PER_MINUTE,
            new_rooms_total_per_minute: DEFAULT_NEW_ROOMS_TOTAL_PER_MINUTE,
            max_participants: DEFAULT_MAX_PARTICIPANTS,
            max_waiting_requests: DEFAULT_MAX_WAITING_REQUESTS,
            iq_per_second: DEFAULT_IQ_PER_SECOND,
        }
    }
}
