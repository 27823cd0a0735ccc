//! RFC 6120 client stream negotiation as a sans-IO state machine: the focus user
//! (`focus@auth.<domain>/focus`) logging in to Prosody.
//!
//! ```text
//!  start() ─▶ AwaitHeader ──header──▶ AwaitFeatures
//!                ▲                     │ features
//!                │                     ├─ <starttls/> offered, policy ≠ Disabled
//!                │                     │     ─▶ AwaitProceed ──<proceed/>──▶ AwaitTls
//!                │                     │                  (Action::StartTls)    │
//!                │◀── ResetStream + header ──── on_tls_established() ◀───────────┘
//!                │                     ├─ not authenticated: <auth mechanism=…>
//!                │                     │     ─▶ AwaitSasl ⟲ <challenge/>/<response/>
//!                │◀── ResetStream + header ──────── <success/> (SCRAM verified)
//!                │                     └─ authenticated: <bind/> IQ ─▶ AwaitBind
//!                                                  │ result
//!                          session required? ─yes─▶ AwaitSession ──result──┐
//!                                                  │ no                    │
//!                                                  ▼                       ▼
//!                                     Send(<presence/>), Ready{jid} ─▶ Ready
//!
//!  Any <stream:error/>, SASL <failure/>, IQ error or out-of-place element ─▶ Failed
//! ```
//!
//! TLS policy: `Required` fails when STARTTLS is not offered; `IfOffered` uses it
//! when offered; `Disabled` never starts TLS (and fails if the server insists).
//! The password is never sent in clear text: PLAIN is only used over TLS.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::sasl::{self, Mechanism, SaslClient, SaslError};
use super::stanza::{parse_error, parse_stream_error, IqType};
use super::{attr_escape, describe, Action, NegotiationError};
use crate::jid::Jid;
use crate::xml::framer::StreamHeader;
use crate::xml::Element;
use crate::xmpp::ns;

/// Whether to use STARTTLS on the client connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Fail unless the server offers STARTTLS.
    Required,
    /// Use STARTTLS when the server offers it.
    IfOffered,
    /// Never start TLS.
    Disabled,
}

/// What the client logs in as. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The XMPP domain of the account, e.g. `auth.meet.test`.
    pub domain: String,
    /// The account's local part (`focus`); None for ANONYMOUS.
    pub username: Option<String>,
    /// The account's password; None for ANONYMOUS.
    pub password: Option<String>,
    /// The resource to bind (`focus`).
    pub resource: String,
    /// Whether STARTTLS is required, used when offered, or never used.
    pub tls: TlsPolicy,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("domain", &self.domain)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("resource", &self.resource)
            .field("tls", &self.tls)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    AwaitHeader,
    AwaitFeatures,
    AwaitProceed,
    AwaitTls,
    AwaitSasl,
    AwaitBind,
    AwaitSession,
    Ready,
    Failed,
}

impl State {
    fn expecting(self) -> &'static str {
        match self {
            State::Idle => "nothing (not started)",
            State::AwaitHeader => "the stream header",
            State::AwaitFeatures => "<stream:features/>",
            State::AwaitProceed => "<proceed/> (STARTTLS)",
            State::AwaitTls => "the TLS handshake",
            State::AwaitSasl => "a SASL <challenge/>, <success/> or <failure/>",
            State::AwaitBind => "the resource binding result",
            State::AwaitSession => "the session result",
            State::Ready => "nothing (negotiation finished)",
            State::Failed => "nothing (negotiation failed)",
        }
    }
}

const BIND_ID: &str = "bind_1";
const SESSION_ID: &str = "session_1";

/// The client stream negotiator. Feed it the server's stream headers and
/// top-level elements; perform the returned actions in order.
#[derive(Debug)]
pub struct ClientNegotiator {
    cfg: ClientConfig,
    state: State,
    tls_active: bool,
    authenticated: bool,
    sasl: Option<SaslClient>,
    need_session: bool,
    stream_id: Option<String>,
    jid: Option<Jid>,
}

impl ClientNegotiator {
    /// A negotiator for `cfg`, not started yet: call [`ClientNegotiator::start`].
    pub fn new(cfg: ClientConfig) -> Self {
        ClientNegotiator {
            cfg,
            state: State::Idle,
            tls_active: false,
            authenticated: false,
            sasl: None,
            need_session: false,
            stream_id: None,
            jid: None,
        }
    }

    /// Open the stream.
    pub fn start(&mut self) -> Vec<Action> {
        self.state = State::AwaitHeader;
        vec![Action::Send(self.header())]
    }

    fn header(&self) -> String {
        format!(
            "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
            attr_escape(&self.cfg.domain)
        )
    }

    /// The account name for messages: `user@domain`, or the domain for ANONYMOUS.
    fn account(&self) -> String {
        match &self.cfg.username {
            Some(u) => format!("{}@{}", u, self.cfg.domain),
            None => self.cfg.domain.clone(),
        }
    }

    /// True once bound and initial presence has been queued.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// The bound JID, once ready.
    pub fn jid(&self) -> Option<&Jid> {
        self.jid.as_ref()
    }

    /// The id of the server's current stream header.
    pub fn stream_id(&self) -> Option<&str> {
        self.stream_id.as_deref()
    }

    /// True once the caller has reported TLS established.
    pub fn is_tls_active(&self) -> bool {
        self.tls_active
    }

    fn fail<T>(&mut self, e: NegotiationError) -> Result<T, NegotiationError> {
        self.state = State::Failed;
        self.sasl = None;
        Err(e)
    }

    fn unexpected<T>(&mut self, got: String) -> Result<T, NegotiationError> {
        let e = NegotiationError::Unexpected {
            peer: self.cfg.domain.clone(),
            expected: self.state.expecting().to_string(),
            got,
        };
        self.fail(e)
    }

    /// The server's stream header (initially and after every stream reset).
    pub fn on_stream_header(&mut self, h: &StreamHeader) -> Result<Vec<Action>, NegotiationError> {
        if self.state != State::AwaitHeader {
            return self.unexpected("a stream header".to_string());
        }
        let bad = |reason: String| NegotiationError::BadStreamHeader { peer: self.cfg.domain.clone(), reason };
        if !h.default_ns.is_empty() && h.default_ns != ns::CLIENT {
            let e = bad(format!("stream namespace is {:?}, expected {:?}", h.default_ns, ns::CLIENT));
            return self.fail(e);
        }
        match h.get("version") {
            Some(v) if v.split('.').next() == Some("1") => {}
            Some(v) => {
                let e = bad(format!("unsupported XMPP version {:?} (need 1.x)", v));
                return self.fail(e);
            }
            None => {
                let e = bad("no version attribute: the server does not speak XMPP 1.0 (RFC 6120)".to_string());
                return self.fail(e);
            }
        }
        self.stream_id = h.get("id").map(str::to_string);
        self.state = State::AwaitFeatures;
        Ok(Vec::new())
    }

    /// A top-level element from the server during negotiation.
    pub fn on_element(&mut self, el: &Element) -> Result<Vec<Action>, NegotiationError> {
        match self.state {
            State::Failed => {
                return Err(NegotiationError::InvalidState("element after negotiation failed".to_string()))
            }
            State::Ready => {
                return Err(NegotiationError::InvalidState(
                    "element after negotiation finished: route it as a stanza".to_string(),
                ))
            }
            _ => {}
        }
        if let Some(se) = parse_stream_error(el) {
            let e =
                NegotiationError::StreamError { peer: self.cfg.domain.clone(), condition: se.condition, text: se.text };
            return self.fail(e);
        }
        match self.state {
            State::AwaitFeatures => self.on_features(el),
            State::AwaitProceed => self.on_proceed(el),
            State::AwaitSasl => self.on_sasl(el),
            State::AwaitBind => self.on_bind_result(el),
            State::AwaitSession => self.on_session_result(el),
            _ => self.unexpected(describe(el)),
        }
    }

    /// The caller finished the TLS handshake after `Action::StartTls`.
    /// Outside that state this does nothing.
    pub fn on_tls_established(&mut self) -> Vec<Action> {
        if self.state != State::AwaitTls {
            return Vec::new();
        }
        self.tls_active = true;
        self.state = State::AwaitHeader;
        vec![Action::ResetStream, Action::Send(self.header())]
    }

    fn on_features(&mut self, el: &Element) -> Result<Vec<Action>, NegotiationError> {
        if !el.is("features", ns::STREAM) {
            return self.unexpected(describe(el));
        }
        let domain = self.cfg.domain.clone();
        if !self.tls_active && !self.authenticated {
            match el.get_child("starttls", ns::TLS) {
                Some(_) if self.cfg.tls != TlsPolicy::Disabled => {
                    self.state = State::AwaitProceed;
                    let starttls = Element::new("starttls", ns::TLS).to_xml_in(ns::CLIENT);
                    return Ok(vec![Action::Send(starttls)]);
                }
                Some(st) if st.get_child("required", ns::TLS).is_some() => {
                    return self.fail(NegotiationError::TlsRequiredByServer { domain });
                }
                Some(_) => {}
                None if self.cfg.tls == TlsPolicy::Required => {
                    return self.fail(NegotiationError::TlsNotOffered { domain });
                }
                None => {}
            }
        }
        if !self.authenticated {
            return self.start_sasl(el);
        }
        if el.get_child("bind", ns::BIND).is_none() {
            let e = NegotiationError::BindFailed {
                jid: self.account(),
                reason: "the server did not offer resource binding after authentication".to_string(),
            };
            return self.fail(e);
        }
        self.need_session = el
            .get_child("session", ns::SESSION)
            .map(|s| s.get_child("optional", ns::SESSION).is_none())
            .unwrap_or(false);
        let iq = Element::new("iq", ns::CLIENT).attr("type", "set").attr("id", BIND_ID).child(
            Element::new("bind", ns::BIND).child(Element::new("resource", ns::BIND).text(self.cfg.resource.clone())),
        );
        self.state = State::AwaitBind;
        Ok(vec![Action::Send(iq.to_xml_in(ns::CLIENT))])
    }

    fn start_sasl(&mut self, features: &Element) -> Result<Vec<Action>, NegotiationError> {
        let domain = self.cfg.domain.clone();
        let offered: Vec<String> = match features.get_child("mechanisms", ns::SASL) {
            Some(m) => m
                .children_named("mechanism", ns::SASL)
                .map(|m| m.text_content().trim().to_string())
                .filter(|m| !m.is_empty())
                .collect(),
            None => Vec::new(),
        };
        let mech = match sasl::choose(&offered, self.cfg.password.as_deref(), self.tls_active) {
            Ok(m) => m,
            Err(SaslError::NoMechanism(reason)) => {
                return self.fail(NegotiationError::NoUsableMechanism { domain, reason })
            }
            Err(other) => return self.fail(NegotiationError::NoUsableMechanism { domain, reason: other.to_string() }),
        };
        let username = match (&self.cfg.username, mech) {
            (_, Mechanism::Anonymous) => String::new(),
            (Some(u), _) if !u.is_empty() => u.clone(),
            _ => {
                return self.fail(NegotiationError::NoUsableMechanism {
                    domain,
                    reason: "a password is configured but no user name (set --user_name)".to_string(),
                })
            }
        };
        let mut client = SaslClient::new(mech, &username, self.cfg.password.as_deref());
        let mut auth = Element::new("auth", ns::SASL).attr("mechanism", mech.name());
        match client.initial_response() {
            None => {}
            Some(data) if data.is_empty() => auth = auth.text("="),
            Some(data) => auth = auth.text(B64.encode(data)),
        }
        self.sasl = Some(client);
        self.state = State::AwaitSasl;
        Ok(vec![Action::Send(auth.to_xml_in(ns::CLIENT))])
    }

    fn on_proceed(&mut self, el: &Element) -> Result<Vec<Action>, NegotiationError> {
        if el.is("proceed", ns::TLS) {
            self.state = State::AwaitTls;
            Ok(vec![Action::StartTls])
        } else if el.is("failure", ns::TLS) {
            let domain = self.cfg.domain.clone();
            self.fail(NegotiationError::TlsFailed { domain })
        } else {
            self.unexpected(describe(el))
        }
    }

    /// Decode the base64 payload of a SASL element; `=` and empty mean no data.
    fn sasl_payload(&mut self, el: &Element) -> Result<Option<Vec<u8>>, NegotiationError> {
        let text = el.text_content();
        let text = text.trim();
        if text.is_empty() || text == "=" {
            return Ok(None);
        }
        match B64.decode(text) {
            Ok(d) => Ok(Some(d)),
            Err(_) => {
                let domain = self.cfg.domain.clone();
                self.fail(NegotiationError::SaslProtocol { domain, error: SaslError::BadBase64 })
            }
        }
    }

    fn on_sasl(&mut self, el: &Element) -> Result<Vec<Action>, NegotiationError> {
        let domain = self.cfg.domain.clone();
        if el.ns != ns::SASL {
            return self.unexpected(describe(el));
        }
        match el.name.as_str() {
            "challenge" => {
                let data = self.sasl_payload(el)?.unwrap_or_default();
                let r = match self.sasl.as_mut() {
                    Some(c) => c.challenge(&data),
                    None => Err(SaslError::UnexpectedMessage("no exchange in progress".into())),
                };
                match r {
                    Ok(resp) => {
                        let mut r = Element::new("response", ns::SASL);
                        if !resp.is_empty() {
                            r = r.text(B64.encode(resp));
                        }
                        Ok(vec![Action::Send(r.to_xml_in(ns::CLIENT))])
                    }
                    Err(error) => self.fail(NegotiationError::SaslProtocol { domain, error }),
                }
            }
            "success" => {
                let data = self.sasl_payload(el)?;
                let r = match self.sasl.as_mut() {
                    Some(c) => c.success(data.as_deref()),
                    None => Err(SaslError::UnexpectedMessage("no exchange in progress".into())),
                };
                if let Err(error) = r {
                    return self.fail(NegotiationError::SaslProtocol { domain, error });
                }
                self.sasl = None;
                self.authenticated = true;
                self.state = State::AwaitHeader;
                Ok(vec![Action::ResetStream, Action::Send(self.header())])
            }
            "failure" => {
                let mut condition = None;
                let mut text = None;
                for c in el.elements().filter(|c| c.ns == ns::SASL) {
                    if c.name == "text" {
                        text.get_or_insert_with(|| c.text_content());
                    } else if condition.is_none() {
                        condition = Some(c.name.clone());
                    }
                }
                let mechanism = self.sasl.as_ref().map(|c| c.mechanism()).unwrap_or(Mechanism::Anonymous);
                let e = NegotiationError::AuthFailed {
                    jid: self.account(),
                    mechanism,
                    condition: condition.unwrap_or_else(|| "undefined-condition".to_string()),
                    text,
                };
                self.fail(e)
            }
            _ => self.unexpected(describe(el)),
        }
    }

    /// Check that `el` answers our IQ `id`; Ok(Err(reason)) for an IQ error.
    fn iq_answer<'a>(&mut self, el: &'a Element, id: &str) -> Result<Result<&'a Element, String>, NegotiationError> {
        if !el.is("iq", ns::CLIENT) || el.get_attr("id") != Some(id) {
            return self.unexpected(describe(el));
        }
        match IqType::of(el) {
            Some(IqType::Result) => Ok(Ok(el)),
            Some(IqType::Error) => Ok(Err(match parse_error(el) {
                Some(se) => se.to_string(),
                None => "error without an <error/> element".to_string(),
            })),
            _ => self.unexpected(format!("<iq id='{}'> of type {:?}", id, el.get_attr("type").unwrap_or(""))),
        }
    }

    fn on_bind_result(&mut self, el: &Element) -> Result<Vec<Action>, NegotiationError> {
        let account = self.account();
        let iq = match self.iq_answer(el, BIND_ID)? {
            Ok(iq) => iq,
            Err(reason) => return self.fail(NegotiationError::BindFailed { jid: account, reason }),
        };
        let text = iq
            .get_child("bind", ns::BIND)
            .and_then(|b| b.get_child("jid", ns::BIND))
            .map(|j| j.text_content().trim().to_string());
        let jid = match text {
            None => {
                let reason = "the bind result carries no <jid/>".to_string();
                return self.fail(NegotiationError::BindFailed { jid: account, reason });
            }
            Some(t) => match Jid::parse(&t) {
                Ok(j) if j.resource().is_some() => j,
                Ok(_) => {
                    let reason = format!("the server bound {:?}, which has no resource", t);
                    return self.fail(NegotiationError::BindFailed { jid: account, reason });
                }
                Err(e) => {
                    let reason = format!("the server bound an invalid JID {:?}: {}", t, e);
                    return self.fail(NegotiationError::BindFailed { jid: account, reason });
                }
            },
        };
        self.jid = Some(jid);
        if self.need_session {
            self.state = State::AwaitSession;
            let iq = Element::new("iq", ns::CLIENT)
                .attr("type", "set")
                .attr("id", SESSION_ID)
                .child(Element::new("session", ns::SESSION));
            return Ok(vec![Action::Send(iq.to_xml_in(ns::CLIENT))]);
        }
        Ok(self.finish())
    }

    fn on_session_result(&mut self, el: &Element) -> Result<Vec<Action>, NegotiationError> {
        match self.iq_answer(el, SESSION_ID)? {
            Ok(_) => Ok(self.finish()),
            Err(reason) => {
                let jid = self.account();
                self.fail(NegotiationError::SessionFailed { jid, reason })
            }
        }
    }

    fn finish(&mut self) -> Vec<Action> {
        self.state = State::Ready;
        let jid = match &self.jid {
            Some(j) => j.clone(),
            None => return Vec::new(), // unreachable: finish() follows a successful bind
        };
        vec![Action::Send(Element::new("presence", ns::CLIENT).to_xml_in(ns::CLIENT)), Action::Ready { jid }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmpp::sasl::ScramSha1;

    const DOMAIN: &str = "auth.meet.test";

    fn header(id: &str) -> StreamHeader {
        StreamHeader {
            attrs: vec![
                ("id".into(), id.into()),
                ("from".into(), DOMAIN.into()),
                ("version".into(), "1.0".into()),
                ("xml:lang".into(), "en".into()),
            ],
            default_ns: ns::CLIENT.into(),
            prefixes: vec![("stream".into(), ns::STREAM.into())],
        }
    }

    fn cfg(user: Option<&str>, pass: Option<&str>, tls: TlsPolicy) -> ClientConfig {
        ClientConfig {
            domain: DOMAIN.into(),
            username: user.map(String::from),
            password: pass.map(String::from),
            resource: "focus".into(),
            tls,
        }
    }

    fn features(children: Vec<Element>) -> Element {
        Element::new("features", ns::STREAM).children(children)
    }

    fn mechanisms(names: &[&str]) -> Element {
        Element::new("mechanisms", ns::SASL)
            .children(names.iter().map(|n| Element::new("mechanism", ns::SASL).text(*n)))
    }

    fn starttls(required: bool) -> Element {
        let st = Element::new("starttls", ns::TLS);
        if required {
            st.child(Element::new("required", ns::TLS))
        } else {
            st
        }
    }

    fn sasl_el(name: &str, data: &str) -> Element {
        let e = Element::new(name, ns::SASL);
        if data.is_empty() {
            e
        } else {
            e.text(B64.encode(data))
        }
    }

    fn bind_features(session: Option<bool>) -> Element {
        let mut f = vec![Element::new("bind", ns::BIND)];
        if let Some(optional) = session {
            let s = Element::new("session", ns::SESSION);
            f.push(if optional { s.child(Element::new("optional", ns::SESSION)) } else { s });
        }
        features(f)
    }

    fn bind_result(jid: &str) -> Element {
        Element::new("iq", ns::CLIENT)
            .attr("type", "result")
            .attr("id", BIND_ID)
            .child(Element::new("bind", ns::BIND).child(Element::new("jid", ns::BIND).text(jid)))
    }

    fn sends(actions: &[Action]) -> Vec<&str> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(s) => Some(s.as_str()),
                _ => None,
            })
            .collect()
    }

    const HEADER: &str = "<?xml version='1.0'?><stream:stream to='auth.meet.test' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

    /// Drive a SCRAM login with a deterministic nonce, injecting the RFC 5802 vector.
    fn to_sasl_with_rfc_vector(n: &mut ClientNegotiator) {
        // Replace the random-nonce client with the RFC 5802 one (same module tree).
        n.sasl = Some(SaslClient::Scram(ScramSha1::with_nonce("user", "pencil", "fyko+d2lbbFgONRv9qkxdawL")));
        if let Some(SaslClient::Scram(s)) = n.sasl.as_mut() {
            s.client_first();
        }
    }

    #[test]
    fn full_flow_with_starttls_scram_and_session() {
        let mut n = ClientNegotiator::new(cfg(Some("user"), Some("pencil"), TlsPolicy::Required));
        assert_eq!(n.start(), vec![Action::Send(HEADER.into())]);
        assert_eq!(n.on_stream_header(&header("s1")).unwrap(), vec![]);
        assert_eq!(n.stream_id(), Some("s1"));
        let a = n.on_element(&features(vec![starttls(false), mechanisms(&["SCRAM-SHA-1", "PLAIN"])])).unwrap();
        assert_eq!(sends(&a), vec!["<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"]);
        assert_eq!(n.on_element(&Element::new("proceed", ns::TLS)).unwrap(), vec![Action::StartTls]);
        assert_eq!(n.on_tls_established(), vec![Action::ResetStream, Action::Send(HEADER.into())]);
        assert!(n.is_tls_active());
        n.on_stream_header(&header("s2")).unwrap();
        let a = n.on_element(&features(vec![mechanisms(&["PLAIN", "SCRAM-SHA-1"])])).unwrap();
        let s = sends(&a);
        assert_eq!(s.len(), 1);
        assert!(
            s[0].starts_with("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>"),
            "{}",
            s[0]
        );
        let payload = s[0].split('>').nth(1).unwrap().split('<').next().unwrap();
        let first = String::from_utf8(B64.decode(payload).unwrap()).unwrap();
        assert!(first.starts_with("n,,n=user,r="), "{}", first);

        to_sasl_with_rfc_vector(&mut n);
        let a = n
            .on_element(&sasl_el("challenge", "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"))
            .unwrap();
        let expect = format!(
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
            B64.encode("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")
        );
        assert_eq!(sends(&a), vec![expect.as_str()]);
        let a = n.on_element(&sasl_el("success", "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")).unwrap();
        assert_eq!(a, vec![Action::ResetStream, Action::Send(HEADER.into())]);
        n.on_stream_header(&header("s3")).unwrap();
        let a = n.on_element(&bind_features(Some(false))).unwrap();
        assert_eq!(
            sends(&a),
            vec!["<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>focus</resource></bind></iq>"]
        );
        let a = n.on_element(&bind_result("user@auth.meet.test/focus")).unwrap();
        assert_eq!(
            sends(&a),
            vec!["<iq type='set' id='session_1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"]
        );
        assert!(!n.is_ready());
        let a = n.on_element(&Element::new("iq", ns::CLIENT).attr("type", "result").attr("id", SESSION_ID)).unwrap();
        let jid = Jid::parse("user@auth.meet.test/focus").unwrap();
        assert_eq!(a, vec![Action::Send("<presence/>".into()), Action::Ready { jid: jid.clone() }]);
        assert!(n.is_ready());
        assert_eq!(n.jid(), Some(&jid));
        // Further elements belong to the router.
        assert!(matches!(n.on_element(&Element::new("message", ns::CLIENT)), Err(NegotiationError::InvalidState(_))));
    }

    #[test]
    fn tampered_scram_success_rejected() {
        let mut n = ClientNegotiator::new(cfg(Some("user"), Some("pencil"), TlsPolicy::Disabled));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        n.on_element(&features(vec![mechanisms(&["SCRAM-SHA-1"])])).unwrap();
        to_sasl_with_rfc_vector(&mut n);
        n.on_element(&sasl_el("challenge", "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"))
            .unwrap();
        let e = n.on_element(&sasl_el("success", "v=AAAApqV8S7suAoZWja4dJRkFsKQ=")).unwrap_err();
        assert!(
            matches!(e, NegotiationError::SaslProtocol { error: SaslError::ServerSignatureMismatch, .. }),
            "{:?}",
            e
        );
        assert!(!e.is_auth_failure());
        // <success/> with no server-final at all is also rejected.
        let mut n = ClientNegotiator::new(cfg(Some("user"), Some("pencil"), TlsPolicy::Disabled));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        n.on_element(&features(vec![mechanisms(&["SCRAM-SHA-1"])])).unwrap();
        assert!(n.on_element(&Element::new("success", ns::SASL)).is_err());
    }

    #[test]
    fn wrong_password_message() {
        let mut n = ClientNegotiator::new(cfg(Some("focus"), Some("bad"), TlsPolicy::IfOffered));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        n.on_element(&features(vec![mechanisms(&["SCRAM-SHA-1"])])).unwrap();
        let failure = Element::new("failure", ns::SASL).child(Element::new("not-authorized", ns::SASL));
        let e = n.on_element(&failure).unwrap_err();
        assert!(e.is_auth_failure());
        assert_eq!(
            e.to_string(),
            "authentication failed for focus@auth.meet.test: wrong user name or password (check --user_name, --user_password / JICOFO_AUTH_PASSWORD)"
        );
        // Failed for good.
        assert!(matches!(n.on_element(&failure), Err(NegotiationError::InvalidState(_))));
        assert!(!n.is_ready());
    }

    #[test]
    fn anonymous_flow_and_refusal() {
        let mut n = ClientNegotiator::new(cfg(None, None, TlsPolicy::Disabled));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        let a = n.on_element(&features(vec![starttls(false), mechanisms(&["ANONYMOUS", "PLAIN"])])).unwrap();
        assert_eq!(sends(&a), vec!["<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>"]);
        let a = n.on_element(&Element::new("success", ns::SASL)).unwrap();
        assert_eq!(a[0], Action::ResetStream);
        n.on_stream_header(&header("s2")).unwrap();
        n.on_element(&bind_features(Some(true))).unwrap(); // optional session: skipped
        let a = n.on_element(&bind_result("abc123@auth.meet.test/focus")).unwrap();
        assert_eq!(a.len(), 2);
        assert!(n.is_ready());

        let mut n = ClientNegotiator::new(cfg(None, None, TlsPolicy::Disabled));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        n.on_element(&features(vec![mechanisms(&["ANONYMOUS"])])).unwrap();
        let e = n
            .on_element(
                &Element::new("failure", ns::SASL)
                    .child(Element::new("not-authorized", ns::SASL))
                    .child(Element::new("text", ns::SASL).text("anonymous disabled")),
            )
            .unwrap_err();
        let msg = e.to_string();
        assert!(e.is_auth_failure());
        assert!(msg.contains("--user_password") && msg.contains("anonymous disabled"), "{}", msg);
    }

    #[test]
    fn no_anonymous_offered() {
        let mut n = ClientNegotiator::new(cfg(None, None, TlsPolicy::IfOffered));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        let e = n.on_element(&features(vec![mechanisms(&["SCRAM-SHA-1"])])).unwrap_err();
        assert!(matches!(e, NegotiationError::NoUsableMechanism { .. }));
        assert!(e.to_string().contains("ANONYMOUS"), "{}", e);
    }

    #[test]
    fn plain_needs_tls() {
        let mut n = ClientNegotiator::new(cfg(Some("focus"), Some("pw"), TlsPolicy::IfOffered));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        let e = n.on_element(&features(vec![mechanisms(&["PLAIN"])])).unwrap_err();
        assert!(matches!(e, NegotiationError::NoUsableMechanism { .. }));
        assert!(e.to_string().contains("clear text"), "{}", e);

        // Over TLS PLAIN is fine.
        let mut n = ClientNegotiator::new(cfg(Some("focus"), Some("pw"), TlsPolicy::IfOffered));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        n.on_element(&features(vec![starttls(false), mechanisms(&["PLAIN"])])).unwrap();
        n.on_element(&Element::new("proceed", ns::TLS)).unwrap();
        n.on_tls_established();
        n.on_stream_header(&header("s2")).unwrap();
        let a = n.on_element(&features(vec![mechanisms(&["PLAIN"])])).unwrap();
        assert_eq!(
            sends(&a),
            vec!["<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGZvY3VzAHB3</auth>"]
        );
    }

    #[test]
    fn tls_policies() {
        // Required but not offered.
        let mut n = ClientNegotiator::new(cfg(Some("focus"), Some("pw"), TlsPolicy::Required));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        let e = n.on_element(&features(vec![mechanisms(&["SCRAM-SHA-1"])])).unwrap_err();
        assert_eq!(e, NegotiationError::TlsNotOffered { domain: DOMAIN.into() });
        assert!(e.to_string().contains("STARTTLS"));
        // Disabled but server requires it.
        let mut n = ClientNegotiator::new(cfg(Some("focus"), Some("pw"), TlsPolicy::Disabled));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        let e = n.on_element(&features(vec![starttls(true), mechanisms(&["SCRAM-SHA-1"])])).unwrap_err();
        assert_eq!(e, NegotiationError::TlsRequiredByServer { domain: DOMAIN.into() });
        // Disabled and optional: straight to SASL.
        let mut n = ClientNegotiator::new(cfg(Some("focus"), Some("pw"), TlsPolicy::Disabled));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        let a = n.on_element(&features(vec![starttls(false), mechanisms(&["SCRAM-SHA-1"])])).unwrap();
        assert!(sends(&a)[0].contains("mechanism='SCRAM-SHA-1'"));
        // Server refuses STARTTLS.
        let mut n = ClientNegotiator::new(cfg(Some("focus"), Some("pw"), TlsPolicy::IfOffered));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        n.on_element(&features(vec![starttls(false)])).unwrap();
        let e = n.on_element(&Element::new("failure", ns::TLS)).unwrap_err();
        assert_eq!(e, NegotiationError::TlsFailed { domain: DOMAIN.into() });
        // on_tls_established out of place is a no-op.
        let mut n = ClientNegotiator::new(cfg(Some("focus"), Some("pw"), TlsPolicy::IfOffered));
        assert!(n.on_tls_established().is_empty());
    }

    #[test]
    fn stream_errors_and_bad_headers() {
        let mut n = ClientNegotiator::new(cfg(Some("focus"), Some("pw"), TlsPolicy::IfOffered));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        let e = n
            .on_element(
                &Element::new("error", ns::STREAM)
                    .child(Element::new("host-unknown", ns::STREAMS))
                    .child(Element::new("text", ns::STREAMS).text("not served here")),
            )
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("host-unknown") && msg.contains("not served here"), "{}", msg);

        let mut n = ClientNegotiator::new(cfg(Some("focus"), Some("pw"), TlsPolicy::IfOffered));
        n.start();
        let mut h = header("s1");
        h.attrs.retain(|(k, _)| k != "version");
        assert!(matches!(n.on_stream_header(&h), Err(NegotiationError::BadStreamHeader { .. })));

        let mut n = ClientNegotiator::new(cfg(Some("focus"), Some("pw"), TlsPolicy::IfOffered));
        n.start();
        let mut h = header("s1");
        h.default_ns = ns::COMPONENT.into();
        assert!(matches!(n.on_stream_header(&h), Err(NegotiationError::BadStreamHeader { .. })));

        // Header before start, twice, or an element before the header.
        let mut n = ClientNegotiator::new(cfg(Some("focus"), Some("pw"), TlsPolicy::IfOffered));
        assert!(n.on_stream_header(&header("s1")).is_err());
        let mut n = ClientNegotiator::new(cfg(Some("focus"), Some("pw"), TlsPolicy::IfOffered));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        assert!(n.on_stream_header(&header("s1")).is_err());
        let mut n = ClientNegotiator::new(cfg(Some("focus"), Some("pw"), TlsPolicy::IfOffered));
        n.start();
        assert!(matches!(n.on_element(&features(vec![])), Err(NegotiationError::Unexpected { .. })));
    }

    #[test]
    fn hostile_elements_are_errors() {
        fn at_sasl() -> ClientNegotiator {
            let mut n = ClientNegotiator::new(cfg(Some("user"), Some("pencil"), TlsPolicy::Disabled));
            n.start();
            n.on_stream_header(&header("s1")).unwrap();
            n.on_element(&features(vec![mechanisms(&["SCRAM-SHA-1"])])).unwrap();
            n
        }
        // Not base64.
        let e = at_sasl().on_element(&Element::new("challenge", ns::SASL).text("%%%")).unwrap_err();
        assert!(matches!(e, NegotiationError::SaslProtocol { error: SaslError::BadBase64, .. }));
        // Nonce not extending ours.
        let e = at_sasl().on_element(&sasl_el("challenge", "r=evil,s=QSXCR+Q6sek8bf92,i=4096")).unwrap_err();
        assert!(matches!(e, NegotiationError::SaslProtocol { error: SaslError::NonceMismatch, .. }));
        // Random element.
        let e = at_sasl().on_element(&Element::new("message", ns::CLIENT)).unwrap_err();
        assert!(matches!(e, NegotiationError::Unexpected { .. }));
        // Empty failure.
        let e = at_sasl().on_element(&Element::new("failure", ns::SASL)).unwrap_err();
        assert!(e.to_string().contains("undefined-condition"));
        // Features without mechanisms.
        let mut n = ClientNegotiator::new(cfg(Some("user"), Some("pencil"), TlsPolicy::Disabled));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        assert!(matches!(n.on_element(&features(vec![])), Err(NegotiationError::NoUsableMechanism { .. })));
        // Not features at all.
        let mut n = ClientNegotiator::new(cfg(Some("user"), Some("pencil"), TlsPolicy::Disabled));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        assert!(n.on_element(&Element::new("proceed", ns::TLS)).is_err());
    }

    fn at_bind(session: Option<bool>) -> ClientNegotiator {
        let mut n = ClientNegotiator::new(cfg(None, None, TlsPolicy::Disabled));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        n.on_element(&features(vec![mechanisms(&["ANONYMOUS"])])).unwrap();
        n.on_element(&Element::new("success", ns::SASL)).unwrap();
        n.on_stream_header(&header("s2")).unwrap();
        n.on_element(&bind_features(session)).unwrap();
        n
    }

    #[test]
    fn bind_errors() {
        let err_iq = Element::new("iq", ns::CLIENT).attr("type", "error").attr("id", BIND_ID).child(
            Element::new("error", ns::CLIENT)
                .attr("type", "cancel")
                .child(Element::new("conflict", ns::STANZAS))
                .child(Element::new("text", ns::STANZAS).text("resource in use")),
        );
        let e = at_bind(None).on_element(&err_iq).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, NegotiationError::BindFailed { .. }));
        assert!(msg.contains("conflict") && msg.contains("resource in use"), "{}", msg);
        // Missing <jid/>, invalid JID, JID without resource, wrong id, wrong type.
        let no_jid = Element::new("iq", ns::CLIENT).attr("type", "result").attr("id", BIND_ID);
        assert!(matches!(at_bind(None).on_element(&no_jid), Err(NegotiationError::BindFailed { .. })));
        assert!(matches!(at_bind(None).on_element(&bind_result("@/")), Err(NegotiationError::BindFailed { .. })));
        assert!(matches!(
            at_bind(None).on_element(&bind_result("focus@auth.meet.test")),
            Err(NegotiationError::BindFailed { .. })
        ));
        let mut wrong_id = bind_result("focus@auth.meet.test/focus");
        wrong_id.set_attr("id", "other");
        assert!(matches!(at_bind(None).on_element(&wrong_id), Err(NegotiationError::Unexpected { .. })));
        let mut wrong_type = bind_result("focus@auth.meet.test/focus");
        wrong_type.set_attr("type", "set");
        assert!(matches!(at_bind(None).on_element(&wrong_type), Err(NegotiationError::Unexpected { .. })));
        // Session failure.
        let mut n = at_bind(Some(false));
        n.on_element(&bind_result("x@auth.meet.test/focus")).unwrap();
        let e = n.on_element(&Element::new("iq", ns::CLIENT).attr("type", "error").attr("id", SESSION_ID)).unwrap_err();
        assert!(matches!(e, NegotiationError::SessionFailed { .. }));
        // No bind feature after auth.
        let mut n = ClientNegotiator::new(cfg(None, None, TlsPolicy::Disabled));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        n.on_element(&features(vec![mechanisms(&["ANONYMOUS"])])).unwrap();
        n.on_element(&Element::new("success", ns::SASL)).unwrap();
        n.on_stream_header(&header("s2")).unwrap();
        assert!(matches!(n.on_element(&features(vec![])), Err(NegotiationError::BindFailed { .. })));
    }

    #[test]
    fn debug_hides_password() {
        let mut n = ClientNegotiator::new(cfg(Some("focus"), Some("hunter2"), TlsPolicy::Disabled));
        n.start();
        n.on_stream_header(&header("s1")).unwrap();
        n.on_element(&features(vec![mechanisms(&["SCRAM-SHA-1"])])).unwrap();
        assert!(!format!("{:?}", n).contains("hunter2"));
    }

    #[test]
    fn domain_is_escaped_in_header() {
        let mut c = cfg(None, None, TlsPolicy::Disabled);
        c.domain = "a'b".into();
        let mut n = ClientNegotiator::new(c);
        assert!(sends(&n.start())[0].contains("to='a&apos;b'"));
    }
}
