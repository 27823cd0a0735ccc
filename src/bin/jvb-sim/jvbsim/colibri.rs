//! The simulated bridge's Colibri2 and health-check logic, without sockets or clocks
//! of its own: every request is answered synchronously from the state kept here.
//!
//! [`Bridge::colibri_iq`] follows the conference-modify algorithm of a real Jitsi
//! Videobridge (lookup by meeting-id, structural validation, "ignore unknown" mode,
//! endpoints in order stopping at the first error, feedback sources, auto-expiry)
//! and answers with the same error conditions, texts and colibri2 `<error reason>`
//! children. Relays (Octo) are not supported: any `<relay>` is refused the way a
//! bridge with relays disabled refuses it. No media is ever sent or received: the
//! ICE/DTLS/web-socket parameters in the answers are random but well-formed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use jicofo::jid::Jid;
use jicofo::xml::Element;
use jicofo::xmpp::ns;
use jicofo::xmpp::stanza::{iq_result, ErrorCondition, ErrorReply};

pub const NS_ICE: &str = "urn:xmpp:jingle:transports:ice-udp:1";
pub const NS_DTLS: &str = "urn:xmpp:jingle:apps:dtls:0";
pub const NS_SSMA: &str = "urn:xmpp:jingle:apps:rtp:ssma:0";

/// A conference with no endpoints expires this long after its creation.
pub const EMPTY_CONFERENCE_TIMEOUT: Duration = Duration::from_secs(20);
/// The only SCTP port a bridge accepts and announces.
pub const SCTP_PORT: &str = "5000";

/// Fixed parameters of the simulated bridge.
#[derive(Clone, Debug)]
pub struct BridgeConfig {
    /// The server id in web-socket URLs (the brewery nickname).
    pub server_id: String,
    /// The domain in web-socket URLs (`wss://<domain>/colibri-ws/...`).
    pub ws_domain: String,
    /// Address of the single host candidate.
    pub candidate_ip: String,
    /// Port of the single host candidate.
    pub candidate_port: u16,
    /// Whether SCTP data channels are configured.
    pub sctp_enabled: bool,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            server_id: "jvb1".into(),
            ws_domain: "meet.test".into(),
            candidate_ip: "127.0.0.1".into(),
            candidate_port: 10000,
            sctp_enabled: true,
        }
    }
}

/// A colibri2 request refused: condition, text and the optional colibri2 children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColibriError {
    pub condition: ErrorCondition,
    pub text: String,
    /// `<error xmlns='jitsi:colibri2' reason=…/>`.
    pub reason: Option<&'static str>,
    /// `<endpoint xmlns='jitsi:colibri2' id=…/>` (unknown_endpoint only).
    pub endpoint: Option<String>,
}

impl ColibriError {
    fn new(condition: ErrorCondition, text: impl Into<String>) -> ColibriError {
        ColibriError { condition, text: text.into(), reason: None, endpoint: None }
    }

    fn reason(mut self, reason: &'static str) -> ColibriError {
        self.reason = Some(reason);
        self
    }

    /// The stanza error builder for this error.
    pub fn to_reply(&self) -> ErrorReply {
        let mut r = ErrorReply::new(self.condition).text(&self.text);
        if let Some(reason) = self.reason {
            r = r.extra(Element::new("error", ns::COLIBRI2).attr("reason", reason));
        }
        if let Some(id) = &self.endpoint {
            r = r.extra(Element::new("endpoint", ns::COLIBRI2).attr("id", id.clone()));
        }
        r
    }
}

fn bad_request(text: impl Into<String>) -> ColibriError {
    ColibriError::new(ErrorCondition::BadRequest, text)
}

/// The bridge's own ICE/DTLS parameters for one endpoint.
#[derive(Clone, Debug)]
pub struct LocalTransport {
    pub ufrag: String,
    pub pwd: String,
    pub fingerprint: String,
    pub candidate_id: String,
    pub ws_pwd: String,
}

/// An endpoint allocated on the bridge. (Some fields are state a real bridge keeps
/// and the simulator only records: shown in `Debug`, read by nobody.)
#[derive(Clone, Debug)]
#[allow(dead_code)]
pub struct Endpoint {
    pub id: String,
    pub stats_id: Option<String>,
    pub visitor: bool,
    pub ice_controlling: bool,
    pub capabilities: Vec<String>,
    pub local: LocalTransport,
    /// SCTP was requested on create.
    pub sctp: bool,
    /// `<media>` elements received (only ever added to).
    pub media: Vec<Element>,
    /// The last remote ICE `<transport>` received.
    pub remote_transport: Option<Element>,
    /// DTLS role fixed by the remote `setup`: Some(true) = the bridge is the DTLS server.
    pub dtls_server: Option<bool>,
    /// The endpoint's `<media-source>` elements (replaced by every `<sources>`).
    pub sources: Vec<Element>,
    pub force_mute_audio: bool,
    pub force_mute_video: bool,
    pub initial_last_n: Option<String>,
    /// ICE restarts done (the `ice-generation` of the current local credentials).
    pub ice_generation: u32,
}

/// A conference on the bridge, keyed by meeting-id.
#[derive(Clone, Debug)]
#[allow(dead_code)]
pub struct Conference {
    pub meeting_id: String,
    pub name: Option<String>,
    /// The bridge's own hex id, used in web-socket URLs.
    pub internal_id: String,
    pub audio_ssrc: u32,
    pub video_ssrc: u32,
    pub endpoints: Vec<Endpoint>,
    pub created: Instant,
}

impl Conference {
    pub fn endpoint(&self, id: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.id == id)
    }
}

/// The simulated bridge's state.
pub struct Bridge {
    pub cfg: BridgeConfig,
    pub conferences: BTreeMap<String, Conference>,
    /// In graceful shutdown: conference creation is refused.
    pub graceful_shutdown: bool,
    /// Some(text): health checks fail with internal-server-error and this text.
    pub health_failure: Option<String>,
    rng: StdRng,
}

/// The text of a failing health check (a real JVB's most common one).
pub const HEALTH_FAILURE_TEXT: &str = "No valid IP addresses available for harvesting.";

fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// True when an endpoint item carries create, media, transport or sources.
fn is_full_endpoint(e: &Element) -> bool {
    is_true(e.get_attr("create"))
        || e.get_child("media", ns::COLIBRI2).is_some()
        || e.get_child("transport", ns::COLIBRI2).is_some()
        || e.get_child("sources", ns::COLIBRI2).is_some()
}

impl Bridge {
    /// A bridge with fresh random state.
    pub fn new(cfg: BridgeConfig) -> Bridge {
        Bridge::with_rng(cfg, StdRng::from_entropy())
    }

    /// A bridge whose random values come from `seed` (tests).
    #[cfg(test)]
    pub fn seeded(cfg: BridgeConfig, seed: u64) -> Bridge {
        Bridge::with_rng(cfg, StdRng::seed_from_u64(seed))
    }

    fn with_rng(cfg: BridgeConfig, rng: StdRng) -> Bridge {
        Bridge { cfg, conferences: BTreeMap::new(), graceful_shutdown: false, health_failure: None, rng }
    }

    /// Number of endpoints over all conferences.
    pub fn participants(&self) -> usize {
        self.conferences.values().map(|c| c.endpoints.len()).sum()
    }

    // ---- health -------------------------------------------------------------------

    /// The answer to a `<healthcheck/>` IQ.
    pub fn health_iq(&self, iq: &Element) -> Element {
        match &self.health_failure {
            None => iq_result(iq),
            Some(text) => ErrorReply::new(ErrorCondition::InternalServerError).text(text).reply_to(iq),
        }
    }

    // ---- autonomous expiry --------------------------------------------------------

    /// When the next empty conference will be due for expiry.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.conferences
            .values()
            .filter(|c| c.endpoints.is_empty())
            .map(|c| c.created + EMPTY_CONFERENCE_TIMEOUT)
            .min()
    }

    /// Expire conferences without endpoints created more than 20 s ago; returns their meeting-ids.
    pub fn expire_idle(&mut self, now: Instant) -> Vec<String> {
        let due: Vec<String> = self
            .conferences
            .values()
            .filter(|c| c.endpoints.is_empty() && now >= c.created + EMPTY_CONFERENCE_TIMEOUT)
            .map(|c| c.meeting_id.clone())
            .collect();
        for m in &due {
            self.conferences.remove(m);
        }
        due
    }

    // ---- colibri2 -----------------------------------------------------------------

    /// Answer an IQ carrying `<conference-modify xmlns='jitsi:colibri2'>`: a result
    /// with `<conference-modified>` or an error reply.
    pub fn colibri_iq(&mut self, iq: &Element, now: Instant) -> Element {
        let Some(cm) = iq.get_child("conference-modify", ns::COLIBRI2) else {
            return bad_request("No conference-modify").to_reply().reply_to(iq);
        };
        match self.conference_modify(cm, now) {
            Ok(modified) => iq_result(iq).child(modified),
            Err(e) => e.to_reply().reply_to(iq),
        }
    }

    /// Process one `<conference-modify>`; `Ok` holds the `<conference-modified>`.
    pub fn conference_modify(&mut self, cm: &Element, now: Instant) -> Result<Element, ColibriError> {
        let mid = cm.get_attr("meeting-id").unwrap_or("").trim().to_string();
        if mid.is_empty() {
            return Err(bad_request("Missing meeting-id"));
        }
        let create = is_true(cm.get_attr("create"));
        if create {
            if self.conferences.contains_key(&mid) {
                return Err(ColibriError::new(
                    ErrorCondition::Conflict,
                    format!("Conference already exists for ID: {}", mid),
                )
                .reason("conference_already_exists"));
            }
            if self.graceful_shutdown {
                return Err(ColibriError::new(ErrorCondition::ServiceUnavailable, "In graceful shutdown")
                    .reason("graceful_shutdown"));
            }
            let name = cm.get_attr("name").map(str::to_string);
            if let Some(n) = &name {
                match Jid::parse(n) {
                    Ok(j) if j.resource().is_none() => {}
                    _ => return Err(bad_request("Invalid conference name (not a JID)")),
                }
            }
            let conf = Conference {
                meeting_id: mid.clone(),
                name,
                internal_id: self.hex(16),
                audio_ssrc: self.rng.gen(),
                video_ssrc: self.rng.gen(),
                endpoints: Vec::new(),
                created: now,
            };
            self.conferences.insert(mid.clone(), conf);
        } else if !self.conferences.contains_key(&mid) {
            return Err(ColibriError::new(ErrorCondition::ItemNotFound, format!("Conference not found for ID: {}", mid))
                .reason("conference_not_found"));
        }

        let result = self.modify(&mid, cm, create);
        if result.is_ok() {
            let conf = &self.conferences[&mid];
            if is_true(cm.get_attr("expire")) || (!create && conf.endpoints.is_empty()) {
                self.conferences.remove(&mid);
            }
        }
        result
    }

    fn modify(&mut self, mid: &str, cm: &Element, create: bool) -> Result<Element, ColibriError> {
        let endpoints: Vec<&Element> = cm.children_named("endpoint", ns::COLIBRI2).collect();
        let relays: Vec<&Element> = cm.children_named("relay", ns::COLIBRI2).collect();
        let fni = |text: &str| {
            ColibriError::new(ErrorCondition::FeatureNotImplemented, text).reason("feature_not_implemented")
        };
        if !endpoints.is_empty() && !relays.is_empty() {
            return Err(fni("Modifying endpoints and relays in the same request is not supported."));
        }
        if relays.len() > 1 {
            return Err(fni("Modifying more than one relay in a request is not supported."));
        }
        if endpoints.len() > 1 && endpoints.iter().any(|e| is_full_endpoint(e)) {
            return Err(fni(
                "Modifying more than one endpoint in a request is only supported for expire and force-mute.",
            ));
        }
        let ignore_unknown = !endpoints.iter().any(|e| is_full_endpoint(e))
            && relays.iter().all(|r| is_true(r.get_attr("expire")));

        let mut answer = Element::new("conference-modified", ns::COLIBRI2);
        let mut any_create = false;
        for ep in &endpoints {
            if is_true(ep.get_attr("create")) {
                any_create = true;
            }
            let echo = self.endpoint_item(mid, ep, ignore_unknown)?;
            answer = answer.child(echo);
        }
        // <connects> are accepted and ignored (no transcription here).
        if !relays.is_empty() {
            return Err(ColibriError::new(ErrorCondition::FeatureNotImplemented, "Octo is disabled in configuration."));
        }
        if create || any_create {
            let conf = &self.conferences[mid];
            answer = answer.child(feedback_sources(conf.audio_ssrc, conf.video_ssrc));
        }
        Ok(answer)
    }

    /// One `<endpoint>` of a request; returns its echo.
    fn endpoint_item(&mut self, mid: &str, ep: &Element, ignore_unknown: bool) -> Result<Element, ColibriError> {
        let id = ep.get_attr("id").unwrap_or("").to_string();
        if id.is_empty() {
            return Err(bad_request("Endpoint with no ID"));
        }
        if is_true(ep.get_attr("expire")) {
            let conf = self.conferences.get_mut(mid).expect("conference exists");
            conf.endpoints.retain(|e| e.id != id);
            return Ok(Element::new("endpoint", ns::COLIBRI2).attr("id", id).attr("expire", "true"));
        }
        let transport = ep.get_child("transport", ns::COLIBRI2);
        let created = is_true(ep.get_attr("create"));
        if created {
            let exists = self.conferences[mid].endpoint(&id).is_some();
            if exists {
                return Err(ColibriError::new(ErrorCondition::Conflict, format!("Endpoint with ID {} already exists", id)));
            }
            let Some(t) = transport else {
                return Err(bad_request(format!("Attempt to create endpoint {} with no <transport>", id)));
            };
            let capabilities: Vec<String> = ep
                .children_named("capability", ns::COLIBRI2)
                .filter_map(|c| c.get_attr("name").map(str::to_string))
                .collect();
            if !capabilities.iter().any(|c| c == "source-names") {
                return Err(bad_request("Source name support is mandatory."));
            }
            let local = self.local_transport();
            let endpoint = Endpoint {
                id: id.clone(),
                stats_id: ep.get_attr("stats-id").map(str::to_string),
                visitor: ep.get_attr("muc-role") == Some("visitor"),
                ice_controlling: is_true(t.get_attr("ice-controlling")),
                capabilities,
                local,
                sctp: false,
                media: Vec::new(),
                remote_transport: None,
                dtls_server: None,
                sources: Vec::new(),
                force_mute_audio: false,
                force_mute_video: false,
                ice_generation: 0,
                initial_last_n: None,
            };
            self.conferences.get_mut(mid).expect("conference exists").endpoints.push(endpoint);
            // SCTP checks run once the endpoint exists (an error leaves it allocated).
            if let Some(sctp) = t.get_child("sctp", ns::COLIBRI2) {
                if !self.cfg.sctp_enabled {
                    return Err(ColibriError::new(ErrorCondition::FeatureNotImplemented, "SCTP support is not configured"));
                }
                if let Some(role) = sctp.get_attr("role") {
                    if role != "server" {
                        return Err(ColibriError::new(
                            ErrorCondition::FeatureNotImplemented,
                            format!("Unsupported SCTP role: {}", role),
                        ));
                    }
                }
                if let Some(port) = sctp.get_attr("port") {
                    if port != SCTP_PORT {
                        return Err(bad_request("Specific SCTP port requested, not supported."));
                    }
                }
                self.endpoint_mut(mid, &id).sctp = true;
            }
        } else if self.conferences[mid].endpoint(&id).is_none() {
            if ignore_unknown {
                return Ok(Element::new("endpoint", ns::COLIBRI2).attr("id", id));
            }
            let mut e =
                ColibriError::new(ErrorCondition::ItemNotFound, format!("Endpoint not found for ID: {}", id))
                    .reason("unknown_endpoint");
            e.endpoint = Some(id);
            return Err(e);
        }

        // Apply the rest of the item.
        let endpoint = self.endpoint_mut(mid, &id);
        if let Some(s) = ep.get_attr("stats-id") {
            endpoint.stats_id = Some(s.to_string());
        }
        for m in ep.children_named("media", ns::COLIBRI2) {
            endpoint.media.push(m.clone());
        }
        if let Some(n) = ep.get_child("initial-last-n", ns::COLIBRI2) {
            endpoint.initial_last_n = n.get_attr("value").map(str::to_string);
        }
        if let Some(remote) = transport.and_then(|t| t.get_child("transport", NS_ICE)) {
            if let Some(setup) = remote.get_child("fingerprint", NS_DTLS).and_then(|f| f.get_attr("setup")) {
                match setup {
                    "active" => endpoint.dtls_server = Some(true),
                    "passive" => endpoint.dtls_server = Some(false),
                    _ => {}
                }
            }
            endpoint.remote_transport = Some(remote.clone());
        }
        if let Some(sources) = ep.get_child("sources", ns::COLIBRI2) {
            let list: Vec<Element> = sources.children_named("media-source", ns::COLIBRI2).cloned().collect();
            if endpoint.visitor && !list.is_empty() {
                return Err(bad_request(format!("Attempt to set sources for visitor endpoint {}", id)));
            }
            endpoint.sources = list;
        }
        if let Some(fm) = ep.get_child("force-mute", ns::COLIBRI2) {
            endpoint.force_mute_audio = is_true(fm.get_attr("audio"));
            endpoint.force_mute_video = is_true(fm.get_attr("video"));
        }
        // A simulator has no media: ICE counts as established once the participant's
        // transport arrived. Then a restart gives new credentials and the next
        // ice-generation; before, the existing transport without one, as a real bridge
        // does before ICE has completed (media.md §1.10).
        let restart = transport.is_some_and(|t| is_true(t.get_attr("ice-restart")));
        if restart && !created {
            let established = self.conferences[mid].endpoint(&id).is_some_and(|e| e.remote_transport.is_some());
            if established {
                let fresh = self.local_transport();
                let endpoint = self.endpoint_mut(mid, &id);
                endpoint.local.ufrag = fresh.ufrag;
                endpoint.local.pwd = fresh.pwd;
                endpoint.ice_generation += 1;
            }
        }

        let mut echo = Element::new("endpoint", ns::COLIBRI2).attr("id", id.clone());
        if created || restart {
            let conf = &self.conferences[mid];
            let endpoint = conf.endpoint(&id).expect("endpoint exists");
            echo = echo.child(self.transport_element(conf, endpoint));
        }
        Ok(echo)
    }

    fn endpoint_mut(&mut self, mid: &str, id: &str) -> &mut Endpoint {
        self.conferences
            .get_mut(mid)
            .and_then(|c| c.endpoints.iter_mut().find(|e| e.id == id))
            .expect("endpoint exists")
    }

    /// The colibri2 `<transport>` of an endpoint's answer.
    fn transport_element(&self, conf: &Conference, ep: &Endpoint) -> Element {
        let t = &ep.local;
        let setup = match ep.dtls_server {
            None => "actpass",
            Some(true) => "passive",
            Some(false) => "active",
        };
        let url = format!(
            "wss://{}/colibri-ws/{}/{}/{}?pwd={}",
            self.cfg.ws_domain, self.cfg.server_id, conf.internal_id, ep.id, t.ws_pwd
        );
        let mut ice = Element::new("transport", NS_ICE).attr("ufrag", t.ufrag.clone()).attr("pwd", t.pwd.clone());
        if ep.ice_generation > 0 {
            ice.set_attr("ice-generation", ep.ice_generation.to_string());
        }
        let ice = ice
            .child(Element::new("rtcp-mux", NS_ICE))
            .child(
                Element::new("fingerprint", NS_DTLS)
                    .attr("hash", "sha-256")
                    .attr("setup", setup)
                    .text(t.fingerprint.clone()),
            )
            .child(Element::new("web-socket", ns::COLIBRI).attr("url", url))
            .child(
                Element::new("candidate", NS_ICE)
                    .attr("component", "1")
                    .attr("foundation", "1")
                    .attr("generation", "0")
                    .attr("id", t.candidate_id.clone())
                    .attr("network", "0")
                    .attr("priority", "2130706431")
                    .attr("protocol", "udp")
                    .attr("type", "host")
                    .attr("ip", self.cfg.candidate_ip.clone())
                    .attr("port", self.cfg.candidate_port.to_string()),
            );
        let mut outer = Element::new("transport", ns::COLIBRI2).child(ice);
        if ep.sctp {
            outer = outer.child(Element::new("sctp", ns::COLIBRI2).attr("port", SCTP_PORT).attr("role", "server"));
        }
        outer
    }

    fn local_transport(&mut self) -> LocalTransport {
        let fp: Vec<String> = (0..32).map(|_| format!("{:02X}", self.rng.gen::<u8>())).collect();
        LocalTransport {
            ufrag: self.alnum(14),
            pwd: self.alnum(26),
            fingerprint: fp.join(":"),
            candidate_id: self.hex(16),
            ws_pwd: self.alnum(15),
        }
    }

    fn alnum(&mut self, n: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..n).map(|_| CHARS[self.rng.gen_range(0..CHARS.len())] as char).collect()
    }

    fn hex(&mut self, n: usize) -> String {
        const CHARS: &[u8] = b"0123456789abcdef";
        (0..n).map(|_| CHARS[self.rng.gen_range(0..CHARS.len())] as char).collect()
    }
}

/// The bridge's feedback `<sources>` (`jvb-a0`, `jvb-v0`).
pub fn feedback_sources(audio_ssrc: u32, video_ssrc: u32) -> Element {
    let ms = |ty: &str, id: &str, ssrc: u32| {
        Element::new("media-source", ns::COLIBRI2)
            .attr("type", ty)
            .attr("id", id)
            .child(Element::new("source", NS_SSMA).attr("ssrc", ssrc.to_string()).attr("name", id))
    };
    Element::new("sources", ns::COLIBRI2)
        .child(ms("audio", "jvb-a0", audio_ssrc))
        .child(ms("video", "jvb-v0", video_ssrc))
}
