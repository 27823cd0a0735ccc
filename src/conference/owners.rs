//! Owners and roles (§3.3): who the focus makes an owner of the room, as values.
//!
//! Without a secure domain the room has one owner: an occupant the MUC already lists as
//! owner, else the first eligible participant with a known real JID (not Jibri or
//! Jigasi), who gets the owner affiliation; when the owner leaves (or the grant fails),
//! the next one is chosen. With an authentication authority (the secure domain or
//! Jicofo's JWT authority, `crate::auth`), every authenticated participant is made an
//! owner. A participant is asked for at most once while a grant is outstanding or
//! done ([`Owners::grant_failed`] allows a new one).

use std::collections::BTreeSet;

use crate::ids::Nick;
use crate::jid::Jid;

/// What ownership needs to know of an occupant.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// Its nick.
    pub nick: &'a Nick,
    /// Its real JID, when the room shows it.
    pub real_jid: Option<&'a Jid>,
    /// The MUC lists it as owner already.
    pub is_owner: bool,
    /// Not Jibri or Jigasi.
    pub eligible: bool,
    /// Authenticated in the secure domain.
    pub authenticated: bool,
}

/// The room's owner as the focus sees it, and the grants it asked for.
#[derive(Debug, Default)]
pub struct Owners {
    owner: Option<Nick>,
    requested: BTreeSet<Nick>,
}

impl Owners {
    /// The owner chosen (without a secure domain).
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_ref().map(Nick::as_str)
    }

    /// The grants to ask the MUC for now, given the occupants in join order (`secure`:
    /// with a secure domain; `auto_owner`: the focus picks an owner when the MUC lists
    /// none, off when Prosody decides owners (token setups, moderation.md §5) or roles come
    /// from the main room (breakout rooms, §3)). Each grant is remembered as asked.
    pub fn decide(&mut self, secure: bool, auto_owner: bool, occupants: &[Candidate]) -> Vec<(Nick, Jid)> {
        if secure {
            let grants: Vec<(Nick, Jid)> = occupants
                .iter()
                .filter(|o| !o.is_owner && !self.requested.contains(o.nick) && o.authenticated)
                .filter_map(|o| o.real_jid.map(|j| (o.nick.clone(), j.clone())))
                .collect();
            for (nick, _) in &grants {
                self.requested.insert(nick.clone());
            }
            return grants;
        }
        if self.owner.as_ref().is_some_and(|n| occupants.iter().any(|o| o.nick == n)) {
            return Vec::new();
        }
        if let Some(o) = occupants.iter().find(|o| o.is_owner && o.eligible) {
            self.owner = Some(o.nick.clone());
            return Vec::new();
        }
        if !auto_owner {
            return Vec::new();
        }
        let Some((nick, jid)) =
            occupants.iter().find_map(|o| o.real_jid.filter(|_| o.eligible).map(|j| (o.nick.clone(), j.clone())))
        else {
            return Vec::new();
        };
        self.owner = Some(nick.clone());
        self.requested.insert(nick.clone());
        vec![(nick, jid)]
    }

    /// The MUC refused (or never got) the grant for `nick`.
    pub fn grant_failed(&mut self, nick: &str) {
        self.requested.remove(nick);
        if self.owner.as_ref().is_some_and(|o| o == nick) {
            self.owner = None;
        }
    }

    /// `nick` left the room.
    pub fn left(&mut self, nick: &str) {
        self.requested.remove(nick);
        if self.owner.as_ref().is_some_and(|o| o == nick) {
            self.owner = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(nick: &'static str, jid: Option<&str>) -> Candidate<'static> {
        let real_jid = jid.map(|j| &*Box::leak(Box::new(Jid::parse(j).unwrap())));
        let nick = &*Box::leak(Box::new(Nick::from(nick)));
        Candidate { nick, real_jid, is_owner: false, eligible: true, authenticated: false }
    }

    fn nicks(g: &[(Nick, Jid)]) -> Vec<&str> {
        g.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn the_first_eligible_participant_is_made_owner_and_the_next_inherits() {
        let mut o = Owners::default();
        let jibri = Candidate { eligible: false, ..c("jibri", Some("j@meet.test/1")) };
        let hidden = c("hidden", None);
        let mut room = vec![jibri, hidden, c("a", Some("a@meet.test/1")), c("b", Some("b@meet.test/1"))];
        let g = o.decide(false, true, &room);
        assert_eq!(nicks(&g), vec!["a"]);
        assert_eq!(g[0].1.to_string(), "a@meet.test/1");
        assert_eq!(o.owner(), Some("a"));
        assert!(o.decide(false, true, &room).is_empty(), "asked once");
        o.left("a");
        room.remove(2);
        assert_eq!(nicks(&o.decide(false, true, &room)), vec!["b"]);
        // A refused grant: the next decision asks again.
        o.grant_failed("b");
        assert_eq!(o.owner(), None);
        assert_eq!(nicks(&o.decide(false, true, &room)), vec!["b"]);
    }

    #[test]
    fn an_existing_owner_is_remembered_not_replaced() {
        let mut o = Owners::default();
        let room = vec![c("a", Some("a@meet.test/1")), Candidate { is_owner: true, ..c("m", Some("m@meet.test/1")) }];
        assert!(o.decide(false, true, &room).is_empty());
        assert_eq!(o.owner(), Some("m"));
        // Jibri listed as owner does not count.
        let mut o = Owners::default();
        let room = vec![Candidate { is_owner: true, eligible: false, ..c("jibri", Some("j@x/1")) }, c("a", Some("a@meet.test/1"))];
        assert_eq!(nicks(&o.decide(false, true, &room)), vec!["a"]);
    }

    #[test]
    fn in_a_secure_domain_every_authenticated_participant_is_made_owner_once() {
        let mut o = Owners::default();
        let auth = |n: &'static str, j: &str| Candidate { authenticated: true, ..c(n, Some(j)) };
        let mut room = vec![auth("u1", "user1@meet.test/x"), c("g1", Some("anon@guest.meet.test/x")), auth("u2", "user2@meet.test/y")];
        room.push(Candidate { is_owner: true, ..auth("u3", "user3@meet.test/z") });
        assert_eq!(nicks(&o.decide(true, true, &room)), vec!["u1", "u2"]);
        assert!(o.decide(true, true, &room).is_empty(), "asked once");
        o.grant_failed("u2");
        assert_eq!(nicks(&o.decide(true, true, &room)), vec!["u2"]);
        o.left("u1");
        assert_eq!(nicks(&o.decide(true, true, &room)), vec!["u1"], "a new occupant with the nick is asked again");
    }

    #[test]
    fn without_auto_owner_the_focus_grants_nothing_but_follows_the_muc() {
        let mut o = Owners::default();
        let mut room = vec![c("a", Some("a@meet.test/1")), c("b", Some("b@meet.test/1"))];
        assert!(o.decide(false, false, &room).is_empty());
        assert_eq!(o.owner(), None);
        room[1].is_owner = true;
        assert!(o.decide(false, false, &room).is_empty());
        assert_eq!(o.owner(), Some("b"), "an owner Prosody made is followed");
    }
}
