//! Jigasi's brewery presence (`<stats xmlns='http://jitsi.org/protocol/colibri'>`) and
//! the presence `<features>` by which Jibri, Jigasi and the transcriber are known as
//! conference members, typed.
//!
//! Only the stats Jicofo reads are kept: `supports_sip`, `supports_transcription`,
//! `graceful_shutdown`, `participants`, `region` (`stress_level` is ignored, as in
//! Jicofo). Booleans are `true` only for a case-insensitive "true". Values are bounded.
//! Facts: `tests/fixtures/protocol/jibri-jigasi.md` §2.3, §5.5.

use crate::xml::Element;
use crate::xmpp::ns;
use crate::xmpp::presence::Stat;

/// Feature of a Jibri member.
pub const FEATURE_JIBRI: &str = "http://jitsi.org/protocol/jibri";
/// Feature of a Jigasi member.
pub const FEATURE_JIGASI: &str = "http://jitsi.org/protocol/jigasi";
/// Feature of a transcriber member.
pub const FEATURE_TRANSCRIBER: &str = "http://jitsi.org/protocol/transcriber";
/// A Jigasi with this feature may be muted by moderators.
pub const FEATURE_AUDIO_MUTE: &str = "http://jitsi.org/protocol/audio-mute";
/// The longest region taken.
pub const MAX_REGION: usize = 64;
/// Presence features read per member.
pub const MAX_FEATURES: usize = 32;

/// Why a stats presence was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JigasiError {
    /// No `<stats>` in the colibri namespace.
    NoStats,
}

impl std::fmt::Display for JigasiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no colibri stats")
    }
}

impl std::error::Error for JigasiError {}

/// What the focus reads from a Jigasi's brewery presence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JigasiStats {
    /// `supports_sip`: it can dial out to a phone number (SIP gateway).
    pub supports_sip: bool,
    /// `supports_transcription`: it can join as the transcriber.
    pub supports_transcription: bool,
    /// `graceful_shutdown`: it is shutting down and takes no new calls.
    pub graceful_shutdown: bool,
    /// `participants`: calls it serves now (unparsable: 0); selection picks the fewest.
    pub participants: u32,
    /// `region`: where it runs, matched against the regions of the conference's bridges.
    pub region: Option<String>,
}

impl JigasiStats {
    /// The `<stats>` element (as Jigasi or the simulator publishes it).
    pub fn to_element(&self) -> Element {
        let stat = |n: &str, v: String| Element::new("stat", ns::COLIBRI).attr("name", n).attr("value", v);
        let mut el = Element::new("stats", ns::COLIBRI)
            .child(stat("supports_sip", self.supports_sip.to_string()))
            .child(stat("supports_transcription", self.supports_transcription.to_string()))
            .child(stat("graceful_shutdown", self.graceful_shutdown.to_string()))
            .child(stat("participants", self.participants.to_string()))
            .child(stat("conferences", self.participants.min(1).to_string()))
            .child(stat("stress_level", "0.0".into()));
        if let Some(r) = &self.region {
            el = el.child(stat("region", r.clone()));
        }
        el
    }
}

impl TryFrom<&Element> for JigasiStats {
    type Error = JigasiError;

    fn try_from(el: &Element) -> Result<JigasiStats, JigasiError> {
        if !el.is("stats", ns::COLIBRI) {
            return Err(JigasiError::NoStats);
        }
        let stats: Vec<Stat> = el
            .children_named("stat", ns::COLIBRI)
            .take(256)
            .map(|st| Stat { name: st.get_attr("name").map(str::to_string), value: st.get_attr("value").map(str::to_string) })
            .collect();
        Ok(JigasiStats::from_stats(&stats))
    }
}

impl JigasiStats {
    /// From the `<stat>`s of a colibri `<stats>` (the first 256).
    pub fn from_stats(stats: &[Stat]) -> JigasiStats {
        let mut s = JigasiStats::default();
        for st in stats.iter().take(256) {
            let (Some(name), Some(value)) = (st.name.as_deref(), st.value.as_deref()) else { continue };
            let yes = value.trim().eq_ignore_ascii_case("true");
            match name {
                "supports_sip" => s.supports_sip = yes,
                "supports_transcription" => s.supports_transcription = yes,
                "graceful_shutdown" => s.graceful_shutdown = yes,
                "participants" => s.participants = value.trim().parse().unwrap_or(0),
                "region" if !value.is_empty() && value.len() <= MAX_REGION => s.region = Some(value.to_string()),
                _ => {}
            }
        }
        s
    }
}

/// A member the focus treats differently (§5.5): recognised only by its presence
/// features **and** a real JID on a trusted domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Robot {
    /// Jibri's browser (feature `http://jitsi.org/protocol/jibri`): recording or streaming.
    Jibri,
    /// Jigasi; `audio_mute`: it advertises that moderators may mute it.
    Jigasi {
        /// It has feature `http://jitsi.org/protocol/audio-mute`.
        audio_mute: bool,
    },
    /// Jigasi as the transcriber.
    Transcriber,
}

impl Robot {
    /// What a member with these presence `features` and this real JID's `domain` is,
    /// given the trusted domains (lower-case). Features alone never make a robot.
    pub fn recognise(features: &[String], domain: Option<&str>, trusted: &[String]) -> Option<Robot> {
        let domain = domain?.to_ascii_lowercase();
        if !trusted.iter().any(|t| *t == domain) {
            return None;
        }
        let has = |f: &str| features.iter().any(|x| x == f);
        if has(FEATURE_TRANSCRIBER) {
            Some(Robot::Transcriber)
        } else if has(FEATURE_JIGASI) {
            Some(Robot::Jigasi { audio_mute: has(FEATURE_AUDIO_MUTE) })
        } else if has(FEATURE_JIBRI) {
            Some(Robot::Jibri)
        } else {
            None
        }
    }

    /// May a moderator mute this member's `audio` (else video)? Jibri never, Jigasi
    /// only its audio and only when it says so.
    pub fn may_be_muted(self, audio: bool) -> bool {
        matches!(self, Robot::Jigasi { audio_mute: true }) && audio
    }
}

/// The features a MUC presence carries (`<features><feature var=…/></features>`,
/// jabber:client), at most [`MAX_FEATURES`] of at most 256 bytes.
pub fn presence_features(p: &Element) -> Vec<String> {
    let Some(f) = p.get_child("features", ns::CLIENT) else { return Vec::new() };
    f.children_named("feature", ns::CLIENT)
        .filter_map(|x| x.get_attr("var"))
        .filter(|v| v.len() <= 256)
        .take(MAX_FEATURES)
        .map(str::to_string)
        .collect()
}

/// The `<features>` element for a presence.
pub fn features_element(vars: &[&str]) -> Element {
    Element::new("features", ns::CLIENT).children(vars.iter().map(|v| Element::new("feature", ns::CLIENT).attr("var", *v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_round_trip_and_ignore_the_rest() {
        let s = JigasiStats { supports_sip: true, supports_transcription: false, graceful_shutdown: false, participants: 3, region: Some("eu".into()) };
        assert_eq!(JigasiStats::try_from(&s.to_element()).unwrap(), s);
        let odd = Element::new("stats", ns::COLIBRI)
            .child(Element::new("stat", ns::COLIBRI).attr("name", "supports_sip").attr("value", "yes"))
            .child(Element::new("stat", ns::COLIBRI).attr("name", "participants").attr("value", "-4"))
            .child(Element::new("stat", ns::COLIBRI).attr("name", "region").attr("value", "r".repeat(65)));
        assert_eq!(JigasiStats::try_from(&odd).unwrap(), JigasiStats::default());
        assert_eq!(JigasiStats::try_from(&Element::new("x", "y")), Err(JigasiError::NoStats));
    }

    #[test]
    fn robots_need_features_and_a_trusted_domain() {
        let t = vec!["recorder.meet.test".to_string()];
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(Robot::recognise(&f(&[FEATURE_JIBRI]), Some("recorder.meet.test"), &t), Some(Robot::Jibri));
        assert_eq!(Robot::recognise(&f(&[FEATURE_JIBRI]), Some("meet.test"), &t), None, "features alone");
        assert_eq!(Robot::recognise(&f(&[]), Some("recorder.meet.test"), &t), None, "domain alone");
        assert_eq!(Robot::recognise(&f(&[FEATURE_JIBRI]), None, &t), None, "hidden real JID");
        let j = Robot::recognise(&f(&[FEATURE_JIGASI, FEATURE_AUDIO_MUTE]), Some("Recorder.Meet.Test"), &t).unwrap();
        assert!(j.may_be_muted(true) && !j.may_be_muted(false));
        assert!(!Robot::Jibri.may_be_muted(true));
        assert_eq!(Robot::recognise(&f(&[FEATURE_JIGASI, FEATURE_TRANSCRIBER]), Some("recorder.meet.test"), &t), Some(Robot::Transcriber));
    }

    #[test]
    fn features_are_bounded() {
        let many: Vec<String> = (0..100).map(|i| format!("urn:f{}", i)).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let p = Element::new("presence", ns::CLIENT).child(features_element(&refs));
        assert_eq!(presence_features(&p).len(), MAX_FEATURES);
        let p = Element::new("presence", ns::CLIENT).child(features_element(&[FEATURE_JIGASI]));
        assert_eq!(presence_features(&p), vec![FEATURE_JIGASI.to_string()]);
    }
}
