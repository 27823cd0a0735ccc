//! Colibri2 as the focus speaks it (`jitsi:colibri2`): typed requests built into
//! `conference-modify` IQs, `conference-modified` answers parsed into values, and the
//! bridge's errors classified into the reaction the focus owes them (media.md §1).

use crate::jid::Jid;
use crate::xml::Element;
use crate::xmpp::ns;
use crate::xmpp::stanza::parse_error;

/// One endpoint in a `conference-modify`.
#[derive(Clone, Debug, Default)]
pub struct EndpointRequest {
    pub id: String,
    pub create: bool,
    pub expire: bool,
    pub stats_id: Option<String>,
    /// `<media>` elements (create only).
    pub media: Vec<Element>,
    /// Ask for an SCTP association (create only).
    pub sctp: bool,
    /// The participant's ICE transport (updates) — the inner ice-udp `<transport>`.
    pub transport: Option<Element>,
    /// A complete `<sources>` element (create: usually empty).
    pub sources: Option<Element>,
    /// `(audio, video)` force-mute state, when it changes.
    pub force_mute: Option<(bool, bool)>,
    pub capabilities: Vec<String>,
    pub initial_last_n: Option<u32>,
    /// Ask for an in-place ICE restart (`<transport ice-restart='true'/>`, media.md §1.10).
    pub ice_restart: bool,
}

impl EndpointRequest {
    fn to_element(&self) -> Element {
        let mut e = Element::new("endpoint", ns::COLIBRI2).attr("id", self.id.clone());
        if self.create {
            e.set_attr("create", "true");
        }
        if self.expire {
            e.set_attr("expire", "true");
            return e;
        }
        if let Some(s) = &self.stats_id {
            e.set_attr("stats-id", s.clone());
        }
        e = e.children(self.media.iter().cloned());
        if self.create {
            let mut t = Element::new("transport", ns::COLIBRI2).attr("ice-controlling", "true");
            if self.sctp {
                t = t.child(Element::new("sctp", ns::COLIBRI2));
            }
            e = e.child(t);
        } else if let Some(t) = &self.transport {
            e = e.child(Element::new("transport", ns::COLIBRI2).child(t.clone()));
        } else if self.ice_restart {
            e = e.child(Element::new("transport", ns::COLIBRI2).attr("ice-restart", "true"));
        }
        if let Some(s) = &self.sources {
            e = e.child(s.clone());
        } else if self.create {
            e = e.child(Element::new("sources", ns::COLIBRI2));
        }
        if let Some((a, v)) = self.force_mute {
            let mut fm = Element::new("force-mute", ns::COLIBRI2);
            if a {
                fm.set_attr("audio", "true");
            }
            if v {
                fm.set_attr("video", "true");
            }
            e = e.child(fm);
        }
        for c in &self.capabilities {
            e = e.child(Element::new("capability", ns::COLIBRI2).attr("name", c.clone()));
        }
        if let Some(n) = self.initial_last_n {
            e = e.child(Element::new("initial-last-n", ns::COLIBRI2).attr("value", n.to_string()));
        }
        e
    }
}

/// A `conference-modify` request.
#[derive(Clone, Debug, Default)]
pub struct ConferenceModify {
    pub meeting_id: String,
    /// Room JID; sent only with `create`.
    pub name: Option<String>,
    pub create: bool,
    pub expire: bool,
    pub rtcstats_enabled: Option<bool>,
    pub endpoints: Vec<EndpointRequest>,
}

impl ConferenceModify {
    /// The IQ (type get, as Jicofo sends it) to `bridge` with `id`.
    pub fn to_iq(&self, bridge: &Jid, id: &str) -> Element {
        let mut cm = Element::new("conference-modify", ns::COLIBRI2).attr("meeting-id", self.meeting_id.clone());
        if self.create {
            if let Some(n) = &self.name {
                cm.set_attr("name", n.clone());
            }
            cm.set_attr("create", "true");
            if self.rtcstats_enabled == Some(false) {
                cm.set_attr("rtcstats-enabled", "false");
            }
        }
        if self.expire {
            cm.set_attr("expire", "true");
        }
        cm = cm.children(self.endpoints.iter().map(EndpointRequest::to_element));
        Element::new("iq", ns::CLIENT).attr("type", "get").attr("id", id).attr("to", bridge.to_string()).child(cm)
    }
}

/// One endpoint of a `conference-modified` answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EndpointAnswer {
    pub id: String,
    /// The inner ICE-UDP transport (ufrag, pwd, fingerprint, candidates, web-socket).
    pub transport: Option<Element>,
    pub sctp_port: Option<u16>,
    pub expired: bool,
}

/// A parsed `conference-modified`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConferenceModified {
    pub endpoints: Vec<EndpointAnswer>,
    /// The bridge's feedback `<sources>`, when present.
    pub sources: Option<Element>,
}

impl ConferenceModified {
    pub fn endpoint(&self, id: &str) -> Option<&EndpointAnswer> {
        self.endpoints.iter().find(|e| e.id == id)
    }
}

/// What the focus must do about a failed colibri request (media.md §1.9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reaction {
    /// Fail only this invite (or only this update); keep the bridge session.
    FailInvite,
    /// Drop the whole session on this bridge and re-invite its participants.
    RemoveSession,
    /// Mark the bridge non-operational, then remove the session.
    BridgeFailed,
    /// The bridge is in graceful shutdown: remove the session.
    GracefulShutdown,
    /// Drop this endpoint's colibri state and re-invite it.
    UnknownEndpoint(String),
}

/// A colibri failure: the error condition, the colibri2 reason, and the reaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColibriError {
    pub condition: String,
    pub reason: Option<String>,
    pub text: Option<String>,
    pub reaction: Reaction,
}

impl std::fmt::Display for ColibriError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.condition)?;
        if let Some(r) = &self.reason {
            write!(f, " ({})", r)?;
        }
        if let Some(t) = &self.text {
            write!(f, ": {}", t)?;
        }
        Ok(())
    }
}

/// Parse the answer to a request; `allocation` selects the allocation reaction table.
pub fn parse_answer(iq: Option<&Element>, allocation: bool) -> Result<ConferenceModified, ColibriError> {
    let Some(iq) = iq else {
        return Err(ColibriError {
            condition: "timeout".into(),
            reason: None,
            text: None,
            reaction: if allocation { Reaction::BridgeFailed } else { Reaction::FailInvite },
        });
    };
    if iq.get_attr("type") == Some("result") {
        let Some(cm) = iq.get_child("conference-modified", ns::COLIBRI2) else {
            return Err(ColibriError {
                condition: "not conference-modified".into(),
                reason: None,
                text: None,
                reaction: if allocation { Reaction::FailInvite } else { Reaction::RemoveSession },
            });
        };
        let endpoints = cm
            .children_named("endpoint", ns::COLIBRI2)
            .map(|e| {
                let outer = e.get_child("transport", ns::COLIBRI2);
                EndpointAnswer {
                    id: e.get_attr("id").unwrap_or_default().to_string(),
                    transport: outer.and_then(|t| t.get_child("transport", "urn:xmpp:jingle:transports:ice-udp:1")).cloned(),
                    sctp_port: outer
                        .and_then(|t| t.get_child("sctp", ns::COLIBRI2))
                        .and_then(|s| s.get_attr("port"))
                        .and_then(|p| p.parse().ok()),
                    expired: e.get_attr("expire") == Some("true"),
                }
            })
            .collect();
        return Ok(ConferenceModified { endpoints, sources: cm.get_child("sources", ns::COLIBRI2).cloned() });
    }
    let err = parse_error(iq);
    let condition = err.as_ref().map(|e| e.condition_name.clone()).unwrap_or_else(|| "unknown".into());
    let text = err.as_ref().and_then(|e| e.text.clone());
    let c2 = err.as_ref().and_then(|e| e.extra.iter().find(|x| x.is("error", ns::COLIBRI2)).cloned());
    let reason = c2.as_ref().and_then(|e| e.get_attr("reason")).map(|r| r.to_ascii_lowercase());
    let unknown_ep = err
        .as_ref()
        .and_then(|e| e.extra.iter().find(|x| x.is("endpoint", ns::COLIBRI2)))
        .and_then(|e| e.get_attr("id"))
        .map(str::to_string);
    let reaction = if allocation {
        match (condition.as_str(), reason.as_deref()) {
            ("bad-request", _) => Reaction::FailInvite,
            ("item-not-found", Some("conference_not_found")) => Reaction::RemoveSession,
            ("item-not-found", _) => Reaction::FailInvite,
            ("conflict", _) => Reaction::RemoveSession,
            ("service-unavailable", Some("graceful_shutdown")) => Reaction::GracefulShutdown,
            _ => Reaction::BridgeFailed,
        }
    } else {
        match (reason.as_deref(), unknown_ep) {
            (Some("unknown_endpoint"), Some(id)) => Reaction::UnknownEndpoint(id),
            _ => Reaction::RemoveSession,
        }
    };
    Err(ColibriError { condition, reason, text, reaction })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse::parse_fragment;

    fn bridge() -> Jid {
        Jid::parse("jvbbrewery@internal.auth.meet.test/jvb1").unwrap()
    }

    #[test]
    fn create_request_shape() {
        let req = ConferenceModify {
            meeting_id: "m1".into(),
            name: Some("room1@conference.meet.test".into()),
            create: true,
            endpoints: vec![EndpointRequest {
                id: "a1".into(),
                create: true,
                stats_id: Some("Alice".into()),
                sctp: true,
                capabilities: vec!["source-names".into()],
                ..Default::default()
            }],
            ..Default::default()
        };
        let iq = req.to_iq(&bridge(), "x1");
        let cm = iq.get_child("conference-modify", ns::COLIBRI2).unwrap();
        assert_eq!(cm.get_attr("create"), Some("true"));
        assert_eq!(cm.get_attr("name"), Some("room1@conference.meet.test"));
        let ep = cm.get_child("endpoint", ns::COLIBRI2).unwrap();
        assert_eq!(ep.get_attr("create"), Some("true"));
        let t = ep.get_child("transport", ns::COLIBRI2).unwrap();
        assert_eq!(t.get_attr("ice-controlling"), Some("true"));
        assert!(t.get_child("sctp", ns::COLIBRI2).is_some());
        assert!(ep.get_child("sources", ns::COLIBRI2).is_some());
        assert_eq!(ep.get_child("capability", ns::COLIBRI2).unwrap().get_attr("name"), Some("source-names"));
    }

    #[test]
    fn parses_answers_and_errors() {
        let ok = parse_fragment(
            "<iq xmlns='jabber:client' type='result' id='x'><conference-modified xmlns='jitsi:colibri2'>\
             <endpoint id='a1'><transport><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u' pwd='p'/>\
             <sctp port='5000' role='server'/></transport></endpoint><sources><media-source type='audio' id='jvb-a0'/>\
             </sources></conference-modified></iq>",
        )
        .unwrap();
        let a = parse_answer(Some(&ok), true).unwrap();
        let ep = a.endpoint("a1").unwrap();
        assert_eq!(ep.transport.as_ref().unwrap().get_attr("ufrag"), Some("u"));
        assert_eq!(ep.sctp_port, Some(5000));
        assert!(a.sources.is_some());
        let err = |body: &str| {
            parse_fragment(&format!("<iq xmlns='jabber:client' type='error' id='x'><error type='cancel'>{}</error></iq>", body))
                .unwrap()
        };
        let nf = err("<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><error xmlns='jitsi:colibri2' reason='conference_not_found'/>");
        assert_eq!(parse_answer(Some(&nf), true).unwrap_err().reaction, Reaction::RemoveSession);
        let muc = err("<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>");
        assert_eq!(parse_answer(Some(&muc), true).unwrap_err().reaction, Reaction::FailInvite);
        let gs = err("<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><error xmlns='jitsi:colibri2' reason='graceful_shutdown'/>");
        assert_eq!(parse_answer(Some(&gs), true).unwrap_err().reaction, Reaction::GracefulShutdown);
        assert_eq!(parse_answer(None, true).unwrap_err().reaction, Reaction::BridgeFailed);
        let ue = err("<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><error xmlns='jitsi:colibri2' reason='unknown_endpoint'/><endpoint xmlns='jitsi:colibri2' id='b2'/>");
        assert_eq!(parse_answer(Some(&ue), false).unwrap_err().reaction, Reaction::UnknownEndpoint("b2".into()));
        assert_eq!(parse_answer(None, false).unwrap_err().reaction, Reaction::FailInvite);
    }
}
