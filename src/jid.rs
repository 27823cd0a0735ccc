//! XMPP addresses (RFC 7622), parsed once and carried as a value.
//!
//! `Jid` keeps the three parts separately; `Display` gives the canonical text. Parsing
//! splits the resource at the first `/` and the local part at the last `@` before it
//! (so `room@conference.x/focus` and proxy resources such as
//! `focus.x/user@guest.x/abc` both work). Local parts and domains are lower-cased
//! (as nodeprep/nameprep would); resources are kept as they are; no other stringprep.

use std::fmt;
use std::str::FromStr;

/// Why a string is not a JID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JidError {
    /// The string is empty.
    Empty,
    /// Nothing before the `@` (`@domain`).
    EmptyLocal,
    /// No domain, or only dots (`user@`, `.`).
    EmptyDomain,
    /// Nothing after the `/` (`domain/`).
    EmptyResource,
    /// A part is longer than 1023 bytes (RFC 7622 §3.1).
    TooLong,
    /// A character the part may not hold: in the local part `"&'/:<>@`, whitespace or
    /// control characters; in the domain `@/<>"'&`, whitespace or control characters;
    /// in the resource control characters.
    BadChar(char),
}

impl fmt::Display for JidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JidError::Empty => write!(f, "empty JID"),
            JidError::EmptyLocal => write!(f, "empty local part"),
            JidError::EmptyDomain => write!(f, "empty domain"),
            JidError::EmptyResource => write!(f, "empty resource"),
            JidError::TooLong => write!(f, "a part is longer than 1023 bytes"),
            JidError::BadChar(c) => write!(f, "character {:?} is not allowed", c),
        }
    }
}

impl std::error::Error for JidError {}

/// A parsed JID: `[local@]domain[/resource]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Jid {
    local: Option<String>,
    domain: String,
    resource: Option<String>,
}

impl Jid {
    /// Parse a JID.
    pub fn parse(s: &str) -> Result<Jid, JidError> {
        if s.is_empty() {
            return Err(JidError::Empty);
        }
        let (bare, resource) = match s.find('/') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let (local, domain) = match bare.rfind('@') {
            Some(i) => (Some(&bare[..i]), &bare[i + 1..]),
            None => (None, bare),
        };
        // Local parts compare case-insensitively (Prosody lower-cases room names). The
        // bound applies to the lower-cased form, the one kept and printed (lower-casing
        // can lengthen: U+023E is 2 bytes, its lower case 3; found by the jid fuzz target).
        let local = local.map(str::to_lowercase);
        if let Some(l) = local.as_deref() {
            if l.is_empty() {
                return Err(JidError::EmptyLocal);
            }
            if l.len() > 1023 {
                return Err(JidError::TooLong);
            }
            for c in l.chars() {
                if matches!(c, '"' | '&' | '\'' | '/' | ':' | '<' | '>' | '@') || c.is_whitespace() || c.is_control() {
                    return Err(JidError::BadChar(c));
                }
            }
        }
        // Trailing dots are not part of the domain (RFC 7622 §3.2); what is left must not be
        // empty (found by the `jid` fuzz target: "." gave a JID with an empty domain).
        let domain = domain.trim_end_matches('.');
        if domain.is_empty() {
            return Err(JidError::EmptyDomain);
        }
        if domain.len() > 1023 {
            return Err(JidError::TooLong);
        }
        for c in domain.chars() {
            if c.is_whitespace() || c.is_control() || matches!(c, '@' | '/' | '<' | '>' | '"' | '\'' | '&') {
                return Err(JidError::BadChar(c));
            }
        }
        if let Some(r) = resource {
            if r.is_empty() {
                return Err(JidError::EmptyResource);
            }
            if r.len() > 1023 {
                return Err(JidError::TooLong);
            }
            if let Some(c) = r.chars().find(|c| c.is_control()) {
                return Err(JidError::BadChar(c));
            }
        }
        Ok(Jid {
            local,
            domain: domain.to_ascii_lowercase(),
            resource: resource.map(str::to_string),
        })
    }

    /// Build `local@domain` (no checks beyond what `parse` does on the result).
    pub fn bare_from(local: &str, domain: &str) -> Result<Jid, JidError> {
        Jid::parse(&format!("{}@{}", local, domain))
    }

    /// The local part (`room` of `room@conference.x`).
    pub fn local(&self) -> Option<&str> {
        self.local.as_deref()
    }

    /// The domain part.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The resource part (a MUC nick for an occupant JID).
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// This JID without its resource.
    pub fn bare(&self) -> Jid {
        Jid { local: self.local.clone(), domain: self.domain.clone(), resource: None }
    }

    /// True when there is no resource.
    pub fn is_bare(&self) -> bool {
        self.resource.is_none()
    }

    /// This JID with `resource` (replacing any).
    pub fn with_resource(&self, resource: &str) -> Jid {
        Jid { local: self.local.clone(), domain: self.domain.clone(), resource: Some(resource.to_string()) }
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = &self.local {
            write!(f, "{}@", l)?;
        }
        f.write_str(&self.domain)?;
        if let Some(r) = &self.resource {
            write!(f, "/{}", r)?;
        }
        Ok(())
    }
}

impl FromStr for Jid {
    type Err = JidError;
    fn from_str(s: &str) -> Result<Jid, JidError> {
        Jid::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let j = Jid::parse("room1@conference.Meet.Test/focus").unwrap();
        assert_eq!(j.local(), Some("room1"));
        assert_eq!(j.domain(), "conference.meet.test");
        assert_eq!(j.resource(), Some("focus"));
        assert_eq!(j.bare().to_string(), "room1@conference.meet.test");
    }

    #[test]
    fn proxy_resource_keeps_full_jid() {
        let j = Jid::parse("focus.meet.test/abc@meet.test/res-1").unwrap();
        assert_eq!(j.local(), None);
        assert_eq!(j.resource(), Some("abc@meet.test/res-1"));
        let inner = Jid::parse(j.resource().unwrap()).unwrap();
        assert_eq!(inner.local(), Some("abc"));
    }

    #[test]
    fn errors() {
        assert_eq!(Jid::parse(""), Err(JidError::Empty));
        assert_eq!(Jid::parse("@x"), Err(JidError::EmptyLocal));
        assert_eq!(Jid::parse("a@"), Err(JidError::EmptyDomain));
        assert_eq!(Jid::parse("a@b/"), Err(JidError::EmptyResource));
        assert!(Jid::parse("a b@c").is_err());
        // Found by the `jid` fuzz target: a domain of dots only was accepted as empty.
        assert_eq!(Jid::parse("."), Err(JidError::EmptyDomain));
        assert_eq!(Jid::parse("a@../r"), Err(JidError::EmptyDomain));
        assert_eq!(Jid::parse("a@meet.test../r").unwrap().to_string(), "a@meet.test/r");
        // The length bound is on the lower-cased local part (what is kept and printed).
        let grows = format!("{}@meet.test", "\u{23e}".repeat(400));
        assert_eq!(grows.len(), 800 + 10);
        assert_eq!(Jid::parse(&grows), Err(JidError::TooLong));
    }
}
