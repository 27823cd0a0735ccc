//! Identifiers as types of their own, so that one kind cannot be passed where another is
//! meant: a conference's number ([`ConferenceId`]), an occupant's nick, which is also its
//! endpoint id on the bridge ([`Nick`]), a Jingle session id ([`Sid`]), the meeting id
//! that names a conference on the bridge ([`MeetingId`]) and the id of a conference's
//! session on one bridge ([`BridgeSessionId`]).
//!
//! They are plain values: no validation happens here (the parsers bound what they accept);
//! a string id is built from a `String` or `&str` with `From`, read with `as_str`, shown
//! with `Display` and, in maps, looked up by `&str` (`Borrow<str>`).

use std::borrow::Borrow;
use std::fmt;

/// A conference of this focus: the router numbers them from 1 as it starts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConferenceId(pub u64);

impl fmt::Display for ConferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A string identifier type with the conversions every one of them has.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The identifier's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> $name {
                $name(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> $name {
                $name(s.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

string_id!(
    /// An occupant's MUC nick (the resource of its occupant JID). The focus uses it as the
    /// participant's endpoint id on the bridge and as the owner of its sources, as Jicofo does.
    Nick
);

string_id!(
    /// A Jingle session id (`sid`), chosen by the focus for each offer.
    Sid
);

string_id!(
    /// The meeting id: the room form's `muc#roominfo_meetingId`, else a random UUID. It
    /// names the conference on the bridge (Colibri2 `meeting-id`).
    MeetingId
);

string_id!(
    /// The id of a conference's session on one bridge (a random UUID), signaled to the
    /// participants as `<bridge-session id>`; a new one after every move to another session.
    BridgeSessionId
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn string_ids_convert_compare_and_are_looked_up_by_text() {
        let n = Nick::from("alice");
        assert_eq!(n.as_str(), "alice");
        assert_eq!(n, "alice");
        assert_eq!(n, *"alice");
        assert_eq!(n, "alice".to_string());
        assert_eq!(n.to_string(), "alice");
        assert_eq!(String::from(n.clone()), "alice");
        let mut m = BTreeMap::new();
        m.insert(n, 1);
        assert_eq!(m.get("alice"), Some(&1), "a map of nicks is looked up by text");
        assert_eq!(ConferenceId(7).to_string(), "7");
        assert!(Sid::default().as_str().is_empty());
    }
}
