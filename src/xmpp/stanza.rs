//! Small stanza helpers used by every layer above the network: IQ types, the typed IQ
//! envelope ([`IqHead`]; replies are built from anything with an [`Envelope`]: a tree or
//! a typed IQ), IQ result / error replies (RFC 6120 §8.3), parsing of stanza errors
//! ([`parse_error`] on a tree, [`ErrorReader`] on a stanza's events), and stream errors
//! (RFC 6120 §4.9) for closing a stream.
//!
//! Replies are built in the namespace of the request (`jabber:client` or
//! `jabber:component:accept`), with `to`/`from` swapped from the request. Error
//! replies never echo the request payload (RFC 6120 makes that optional, and it
//! would reflect attacker-chosen XML back), and their text is cut to
//! [`MAX_ERROR_TEXT`] bytes. The one part of a request every reply must echo is its
//! `id`: a request whose id is longer than [`MAX_ECHOED_ID`] is not answered at all
//! ([`is_answerable`]), so that no reply of the focus can grow with a participant's
//! input (Prosody closes a stream that sends a stanza over its size limit, so an
//! echoed id of nearly the size limit would cost the focus its connection).

use std::fmt;

use crate::xml::{Element, Event};
use crate::xmpp::collect::{Step, TextBuf};
use crate::xmpp::ns;

/// The `type` of an `<iq/>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IqType {
    /// `get`: a request for information; must be answered with `result` or `error`.
    Get,
    /// `set`: a request that provides data or changes state; must be answered.
    Set,
    /// `result`: the successful answer to a `get` or `set`.
    Result,
    /// `error`: the failed answer to a `get` or `set` (carries an `<error/>`).
    Error,
}

impl IqType {
    /// Parse the attribute value (exact, lower case as RFC 6120 defines it).
    pub fn parse(s: &str) -> Option<IqType> {
        match s {
            "get" => Some(IqType::Get),
            "set" => Some(IqType::Set),
            "result" => Some(IqType::Result),
            "error" => Some(IqType::Error),
            _ => None,
        }
    }

    /// The type of `iq` (None when it is absent or not one of the four).
    pub fn of(iq: &Element) -> Option<IqType> {
        iq.get_attr("type").and_then(IqType::parse)
    }

    /// The attribute value as written on the wire (lower case).
    pub fn as_str(self) -> &'static str {
        match self {
            IqType::Get => "get",
            IqType::Set => "set",
            IqType::Result => "result",
            IqType::Error => "error",
        }
    }

    /// True for `get` and `set` (requests that must be answered).
    pub fn is_request(self) -> bool {
        matches!(self, IqType::Get | IqType::Set)
    }
}

impl fmt::Display for IqType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `type` attribute of a stanza `<error/>` (RFC 6120 §8.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// `auth`: retry after providing credentials.
    Auth,
    /// `cancel`: do not retry (the error is unrecoverable).
    Cancel,
    /// `continue`: proceed (the condition was only a warning).
    Continue,
    /// `modify`: retry after changing the data sent.
    Modify,
    /// `wait`: retry after waiting (the error is temporary).
    Wait,
}

impl ErrorType {
    /// Parse the attribute value (exact, lower case); `None` for anything else.
    pub fn parse(s: &str) -> Option<ErrorType> {
        match s {
            "auth" => Some(ErrorType::Auth),
            "cancel" => Some(ErrorType::Cancel),
            "continue" => Some(ErrorType::Continue),
            "modify" => Some(ErrorType::Modify),
            "wait" => Some(ErrorType::Wait),
            _ => None,
        }
    }

    /// The attribute value as written on the wire (lower case).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Auth => "auth",
            ErrorType::Cancel => "cancel",
            ErrorType::Continue => "continue",
            ErrorType::Modify => "modify",
            ErrorType::Wait => "wait",
        }
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The defined stanza error conditions of RFC 6120 §8.3.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCondition {
    /// `<bad-request/>`: the sender sent a malformed or unprocessable request.
    BadRequest,
    /// `<conflict/>`: access denied because a resource or session with that name or address exists already.
    Conflict,
    /// `<feature-not-implemented/>`: the feature requested is not implemented by the recipient.
    FeatureNotImplemented,
    /// `<forbidden/>`: the requesting entity lacks the permissions for the action.
    Forbidden,
    /// `<gone/>`: the recipient is no longer at this address.
    Gone,
    /// `<internal-server-error/>`: the server or recipient failed internally.
    InternalServerError,
    /// `<item-not-found/>`: the addressed JID or item cannot be found.
    ItemNotFound,
    /// `<jid-malformed/>`: a JID supplied in the request violates the address format.
    JidMalformed,
    /// `<not-acceptable/>`: the request does not meet the recipient's criteria (e.g. a required field is missing).
    NotAcceptable,
    /// `<not-allowed/>`: the recipient allows nobody to perform the action.
    NotAllowed,
    /// `<not-authorized/>`: the sender must authenticate before performing the action.
    NotAuthorized,
    /// `<policy-violation/>`: the request violates a local service policy (e.g. a size or rate limit).
    PolicyViolation,
    /// `<recipient-unavailable/>`: the intended recipient is temporarily unavailable.
    RecipientUnavailable,
    /// `<redirect/>`: the recipient redirects requests for this address to another entity.
    Redirect,
    /// `<registration-required/>`: the sender must register before performing the action.
    RegistrationRequired,
    /// `<remote-server-not-found/>`: the remote domain of the recipient does not exist or cannot be resolved.
    RemoteServerNotFound,
    /// `<remote-server-timeout/>`: the remote server could not be reached in time.
    RemoteServerTimeout,
    /// `<resource-constraint/>`: the recipient lacks the resources (memory, capacity) to serve the request.
    ResourceConstraint,
    /// `<service-unavailable/>`: the recipient does not provide the requested service.
    ServiceUnavailable,
    /// `<subscription-required/>`: the sender must be subscribed before performing the action.
    SubscriptionRequired,
    /// `<undefined-condition/>`: none of the other conditions applies (usually with an application-specific one).
    UndefinedCondition,
    /// `<unexpected-request/>`: the request was understood but is not expected now (e.g. out of order).
    UnexpectedRequest,
}

impl ErrorCondition {
    /// Every condition, in RFC order.
    pub const ALL: [ErrorCondition; 22] = [
        ErrorCondition::BadRequest,
        ErrorCondition::Conflict,
        ErrorCondition::FeatureNotImplemented,
        ErrorCondition::Forbidden,
        ErrorCondition::Gone,
        ErrorCondition::InternalServerError,
        ErrorCondition::ItemNotFound,
        ErrorCondition::JidMalformed,
        ErrorCondition::NotAcceptable,
        ErrorCondition::NotAllowed,
        ErrorCondition::NotAuthorized,
        ErrorCondition::PolicyViolation,
        ErrorCondition::RecipientUnavailable,
        ErrorCondition::Redirect,
        ErrorCondition::RegistrationRequired,
        ErrorCondition::RemoteServerNotFound,
        ErrorCondition::RemoteServerTimeout,
        ErrorCondition::ResourceConstraint,
        ErrorCondition::ServiceUnavailable,
        ErrorCondition::SubscriptionRequired,
        ErrorCondition::UndefinedCondition,
        ErrorCondition::UnexpectedRequest,
    ];

    /// The element name (`item-not-found`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCondition::BadRequest => "bad-request",
            ErrorCondition::Conflict => "conflict",
            ErrorCondition::FeatureNotImplemented => "feature-not-implemented",
            ErrorCondition::Forbidden => "forbidden",
            ErrorCondition::Gone => "gone",
            ErrorCondition::InternalServerError => "internal-server-error",
            ErrorCondition::ItemNotFound => "item-not-found",
            ErrorCondition::JidMalformed => "jid-malformed",
            ErrorCondition::NotAcceptable => "not-acceptable",
            ErrorCondition::NotAllowed => "not-allowed",
            ErrorCondition::NotAuthorized => "not-authorized",
            ErrorCondition::PolicyViolation => "policy-violation",
            ErrorCondition::RecipientUnavailable => "recipient-unavailable",
            ErrorCondition::Redirect => "redirect",
            ErrorCondition::RegistrationRequired => "registration-required",
            ErrorCondition::RemoteServerNotFound => "remote-server-not-found",
            ErrorCondition::RemoteServerTimeout => "remote-server-timeout",
            ErrorCondition::ResourceConstraint => "resource-constraint",
            ErrorCondition::ServiceUnavailable => "service-unavailable",
            ErrorCondition::SubscriptionRequired => "subscription-required",
            ErrorCondition::UndefinedCondition => "undefined-condition",
            ErrorCondition::UnexpectedRequest => "unexpected-request",
        }
    }

    /// The condition named `s`, if RFC 6120 defines it.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(s: &str) -> Option<ErrorCondition> {
        ErrorCondition::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// The error type RFC 6120 §8.3.3 uses with this condition.
    pub fn default_type(self) -> ErrorType {
        use ErrorCondition::*;
        match self {
            BadRequest | JidMalformed | NotAcceptable | PolicyViolation | Redirect => ErrorType::Modify,
            Forbidden | NotAuthorized | RegistrationRequired | SubscriptionRequired => ErrorType::Auth,
            RecipientUnavailable | RemoteServerTimeout | ResourceConstraint | UnexpectedRequest => ErrorType::Wait,
            Conflict
            | FeatureNotImplemented
            | Gone
            | InternalServerError
            | ItemNotFound
            | NotAllowed
            | RemoteServerNotFound
            | ServiceUnavailable
            | UndefinedCondition => ErrorType::Cancel,
        }
    }
}

impl fmt::Display for ErrorCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest `id` of a request the focus answers (bytes). Real ids are short (Strophe:
/// a UUID and `:sendIQ`, 43 bytes; Smack: about 15; Prosody: a UUID).
pub const MAX_ECHOED_ID: usize = 256;
/// Longest human-readable error text (bytes); longer texts are cut on a character boundary.
pub const MAX_ERROR_TEXT: usize = 256;

/// `s` cut to at most `max` bytes, on a character boundary.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// What a reply to a stanza needs from it: its namespace (the stream's) and its `id`,
/// `from`, `to` and `type`. A parsed tree ([`Element`]) has them, and so has the typed
/// envelope of an IQ read without a tree ([`IqHead`]).
pub trait Envelope {
    /// The stanza's namespace (`jabber:client`, `jabber:component:accept`).
    fn stanza_ns(&self) -> &str;
    /// One of the stanza's attributes (`id`, `from`, `to`, `type`).
    fn envelope_attr(&self, name: &str) -> Option<&str>;
}

impl Envelope for Element {
    fn stanza_ns(&self) -> &str {
        &self.ns
    }
    fn envelope_attr(&self, name: &str) -> Option<&str> {
        self.get_attr(name)
    }
}

impl Envelope for crate::xml::Outgoing {
    fn stanza_ns(&self) -> &str {
        self.ns()
    }
    fn envelope_attr(&self, name: &str) -> Option<&str> {
        self.get_attr(name)
    }
}

/// The envelope of an IQ, typed: what answering it, routing it and checking its sender
/// need. Values as received (bounded by the stanza size only: answers never echo more
/// than [`MAX_ECHOED_ID`] of an id, see [`is_answerable`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IqHead {
    /// The stanza's namespace (the stream's default).
    pub ns: String,
    /// The `type` attribute.
    pub typ: IqType,
    /// The `id` attribute (matches a result to its request).
    pub id: Option<String>,
    /// The `from` attribute: the sender's full JID as stamped by the server.
    pub from: Option<String>,
    /// The `to` attribute: the addressee's JID.
    pub to: Option<String>,
}

impl IqHead {
    /// The envelope of an IQ whose opening tag had `attrs` (moved out of them), in `ns`;
    /// `None` when its `type` is absent or not one of the four.
    pub fn take(ns: String, attrs: &mut [(String, String)]) -> Option<IqHead> {
        use crate::xmpp::collect::{attr, take_attr};
        let typ = attr(attrs, "type").and_then(IqType::parse)?;
        Some(IqHead { ns, typ, id: take_attr(attrs, "id"), from: take_attr(attrs, "from"), to: take_attr(attrs, "to") })
    }

    /// The envelope of `iq` (`None` without a valid type).
    pub fn of(iq: &Element) -> Option<IqHead> {
        Some(IqHead {
            ns: iq.ns.clone(),
            typ: IqType::of(iq)?,
            id: iq.get_attr("id").map(str::to_string),
            from: iq.get_attr("from").map(str::to_string),
            to: iq.get_attr("to").map(str::to_string),
        })
    }

    /// The IQ as an element with no children (its attributes in the usual order).
    pub fn to_element(&self) -> Element {
        Element::new("iq", &self.ns)
            .attr("type", self.typ.as_str())
            .attr_opt("id", self.id.clone())
            .attr_opt("from", self.from.clone())
            .attr_opt("to", self.to.clone())
    }

    /// Estimated heap memory held (see `Element::weight`).
    pub fn weight(&self) -> usize {
        let s = |v: &Option<String>| v.as_ref().map_or(0, |v| v.capacity() + 16);
        self.ns.capacity() + 16 + s(&self.id) + s(&self.from) + s(&self.to)
    }
}

impl Envelope for IqHead {
    fn stanza_ns(&self) -> &str {
        &self.ns
    }
    fn envelope_attr(&self, name: &str) -> Option<&str> {
        match name {
            "id" => self.id.as_deref(),
            "from" => self.from.as_deref(),
            "to" => self.to.as_deref(),
            "type" => Some(self.typ.as_str()),
            _ => None,
        }
    }
}

/// Can a reply to `req` be sent? False when its `id` is longer than [`MAX_ECHOED_ID`]:
/// such a request is dropped unanswered (its sender is the only one waiting).
pub fn is_answerable<R: Envelope + ?Sized>(req: &R) -> bool {
    req.envelope_attr("id").is_none_or(|id| id.len() <= MAX_ECHOED_ID)
}

/// An IQ `result` answering `req`: same namespace and id, `to`/`from` swapped.
pub fn iq_result<R: Envelope + ?Sized>(req: &R) -> Element {
    reply_iq(req, IqType::Result)
}

fn reply_iq<R: Envelope + ?Sized>(req: &R, ty: IqType) -> Element {
    Element::new("iq", req.stanza_ns())
        .attr("type", ty.as_str())
        .attr("id", req.envelope_attr("id").unwrap_or(""))
        .attr_opt("to", req.envelope_attr("from"))
        .attr_opt("from", req.envelope_attr("to"))
}

/// An IQ `error` answering `req` with `condition` (default type) and optional text.
pub fn iq_error<R: Envelope + ?Sized>(req: &R, condition: ErrorCondition, text: Option<&str>) -> Element {
    let mut b = ErrorReply::new(condition);
    if let Some(t) = text {
        b = b.text(t);
    }
    b.reply_to(req)
}

/// Builder for a stanza `<error/>` and for error replies carrying it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorReply {
    condition: ErrorCondition,
    error_type: ErrorType,
    text: Option<String>,
    extra: Vec<Element>,
}

impl ErrorReply {
    /// `condition` with its RFC 6120 default type, no text, no extra children.
    pub fn new(condition: ErrorCondition) -> ErrorReply {
        ErrorReply { condition, error_type: condition.default_type(), text: None, extra: Vec::new() }
    }

    /// Override the error type.
    pub fn error_type(mut self, t: ErrorType) -> ErrorReply {
        self.error_type = t;
        self
    }

    /// Add a human-readable `<text xml:lang='en'>`, cut to [`MAX_ERROR_TEXT`] bytes
    /// (it may quote input).
    pub fn text(mut self, text: &str) -> ErrorReply {
        self.text = Some(clip(text, MAX_ERROR_TEXT).to_string());
        self
    }

    /// Add an application-specific child (e.g. `<session-invalid xmlns='http://jitsi.org/protocol/focus'/>`).
    pub fn extra(mut self, el: Element) -> ErrorReply {
        self.extra.push(el);
        self
    }

    /// The `<error/>` element alone, in namespace `stanza_ns`.
    pub fn to_element(&self, stanza_ns: &str) -> Element {
        let mut err = Element::new("error", stanza_ns)
            .attr("type", self.error_type.as_str())
            .child(Element::new(self.condition.as_str(), ns::STANZAS));
        if let Some(t) = &self.text {
            err = err.child(Element::new("text", ns::STANZAS).attr("xml:lang", "en").text(t.clone()));
        }
        err.children(self.extra.iter().cloned())
    }

    /// An IQ error answering `req` (payload not echoed).
    pub fn reply_to<R: Envelope + ?Sized>(&self, req: &R) -> Element {
        reply_iq(req, IqType::Error).child(self.to_element(req.stanza_ns()))
    }
}

/// The error answer to a stanza that was not read (skipped by the framer for its size
/// or depth, or unparsable), known only by the name and attributes of its opening tag:
/// `Some` for an IQ `get`/`set` with an `id` (its sender waits for an answer), in the
/// stream's namespace `stream_ns`, `to`/`from` swapped as for any reply; `None` for
/// anything else (dropped without an answer), an id over [`MAX_ECHOED_ID`] included.
pub fn refuse_unread(
    name: &str,
    attrs: &[(String, String)],
    stream_ns: &str,
    condition: ErrorCondition,
    text: &str,
) -> Option<Element> {
    let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if name != "iq" || !get("type").and_then(IqType::parse).is_some_and(IqType::is_request) {
        return None;
    }
    let mut req = Element::new("iq", stream_ns).attr("id", get("id")?);
    if !is_answerable(&req) {
        return None;
    }
    for k in ["from", "to"] {
        if let Some(v) = get(k) {
            req.set_attr(k, v);
        }
    }
    Some(iq_error(&req, condition, Some(text)))
}

/// A stanza error as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StanzaError {
    /// The defined condition; `UndefinedCondition` when the condition element is
    /// missing or not one RFC 6120 defines (see `condition_name` for the raw name).
    pub condition: ErrorCondition,
    /// The condition element's name as received ("" when there was none).
    pub condition_name: String,
    /// The `type` attribute as received ("" when absent).
    pub error_type: String,
    /// The `<text/>`, if any.
    pub text: Option<String>,
    /// Other children of `<error/>` (application-specific conditions, e.g. a
    /// colibri2 `<error reason=…/>`), by name, namespace and attributes.
    pub extra: Vec<AppCondition>,
}

impl StanzaError {
    /// Estimated heap memory held (see `Element::weight`).
    pub fn weight(&self) -> usize {
        let extra: usize = self
            .extra
            .iter()
            .map(|a| 64 + a.name.capacity() + a.ns.capacity() + a.attrs.iter().map(|(k, v)| k.capacity() + v.capacity() + 48).sum::<usize>())
            .sum();
        32 + self.condition_name.capacity() + self.error_type.capacity() + self.text.as_ref().map_or(0, String::capacity) + extra
    }
}

/// A child of a stanza `<error/>` other than the condition and the text: an
/// application-specific condition, kept by name, namespace and attributes (what is
/// below it is not read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppCondition {
    /// The element's local name.
    pub name: String,
    /// The element's namespace.
    pub ns: String,
    /// Its attributes, as (name, value) pairs in document order.
    pub attrs: Vec<(String, String)>,
}

impl AppCondition {
    /// True when this is `name` in namespace `ns`.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// The value of attribute `name`.
    pub fn get_attr(&self, name: &str) -> Option<&str> {
        crate::xmpp::collect::attr(&self.attrs, name)
    }

    /// As an element (no children).
    pub fn to_element(&self) -> Element {
        Element { name: self.name.clone(), ns: self.ns.clone(), attrs: self.attrs.clone(), children: Vec::new() }
    }
}

impl PartialEq<Element> for AppCondition {
    /// Equal to an element with the same name, namespace and attributes and no children.
    fn eq(&self, el: &Element) -> bool {
        el.children.is_empty() && self.name == el.name && self.ns == el.ns && self.attrs == el.attrs
    }
}

impl fmt::Display for StanzaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.condition_name.is_empty() { "no condition" } else { &self.condition_name };
        write!(f, "{}", name)?;
        if !self.error_type.is_empty() {
            write!(f, " (type {})", self.error_type)?;
        }
        if let Some(t) = &self.text {
            write!(f, ": {}", t)?;
        }
        Ok(())
    }
}

/// Reads a stanza `<error/>` from the events below it (given after its own start; it
/// reports [`Step::Closed`] at its end): the first condition in the stanzas namespace,
/// the first `<text/>`, every other child as an [`AppCondition`]. What [`parse_error`]
/// reads from a tree, without one.
#[derive(Debug)]
pub struct ErrorReader {
    error: StanzaError,
    /// Open elements below `<error/>`.
    depth: usize,
    /// The `<text/>` being read (a direct child).
    text: Option<TextBuf>,
}

impl ErrorReader {
    /// An `<error/>` whose opening tag had `attrs`.
    pub fn new(attrs: &[(String, String)]) -> ErrorReader {
        let error = StanzaError {
            condition: ErrorCondition::UndefinedCondition,
            condition_name: String::new(),
            error_type: crate::xmpp::collect::attr(attrs, "type").unwrap_or("").to_string(),
            text: None,
            extra: Vec::new(),
        };
        ErrorReader { error, depth: 0, text: None }
    }

    /// The next event below `<error/>`.
    pub fn event(&mut self, ev: Event) -> Step {
        match ev {
            Event::Start { name, ns, attrs } => {
                self.depth += 1;
                if self.depth == 1 {
                    if ns == ns::STANZAS {
                        if name == "text" {
                            if self.error.text.is_none() {
                                self.text = Some(TextBuf::default());
                            }
                        } else if self.error.condition_name.is_empty() {
                            self.error.condition_name = name;
                        } else {
                            self.error.extra.push(AppCondition { name, ns, attrs });
                        }
                    } else {
                        self.error.extra.push(AppCondition { name, ns, attrs });
                    }
                } else if self.depth == 2 {
                    if let Some(t) = &mut self.text {
                        t.child();
                    }
                }
            }
            Event::Text(t) => {
                if let (1, Some(buf)) = (self.depth, &mut self.text) {
                    buf.text(t);
                }
            }
            Event::End => {
                if self.depth == 0 {
                    return Step::Closed;
                }
                self.depth -= 1;
                if self.depth == 0 {
                    if let Some(t) = self.text.take() {
                        self.error.text = Some(t.finish());
                    }
                } else if self.depth == 1 {
                    if let Some(t) = &mut self.text {
                        t.child();
                    }
                }
            }
        }
        Step::Inside
    }

    /// The error read.
    pub fn finish(mut self) -> StanzaError {
        self.error.condition = ErrorCondition::from_str(&self.error.condition_name).unwrap_or(ErrorCondition::UndefinedCondition);
        self.error
    }
}

/// The `<error/>` of an error stanza (IQ, message or presence with
/// `type='error'`); None when `stanza` is not of type error or has no `<error/>`.
pub fn parse_error(stanza: &Element) -> Option<StanzaError> {
    if stanza.get_attr("type") != Some("error") {
        return None;
    }
    let err = stanza.elements().find(|e| e.name == "error" && e.ns == stanza.ns)?;
    let mut r = ErrorReader::new(&err.attrs);
    let mut first = true;
    crate::xml::parse::walk(err, &mut |ev| {
        if !std::mem::take(&mut first) {
            r.event(ev);
        }
    });
    Some(r.finish())
}

/// A stream error as received (`<stream:error/>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamErrorInfo {
    /// The condition element's name ("undefined-condition" when there was none).
    pub condition: String,
    /// Its `<text/>` child's content, if any.
    pub text: Option<String>,
}

impl fmt::Display for StreamErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.text {
            Some(t) => write!(f, "{} ({})", self.condition, t),
            None => f.write_str(&self.condition),
        }
    }
}

/// Parse `el` if it is a `<stream:error/>`.
pub fn parse_stream_error(el: &Element) -> Option<StreamErrorInfo> {
    if !el.is("error", ns::STREAM) {
        return None;
    }
    let mut condition = None;
    let mut text = None;
    for child in el.elements().filter(|c| c.ns == ns::STREAMS) {
        if child.name == "text" {
            if text.is_none() {
                text = Some(child.text_content());
            }
        } else if condition.is_none() {
            condition = Some(child.name.clone());
        }
    }
    Some(StreamErrorInfo { condition: condition.unwrap_or_else(|| "undefined-condition".to_string()), text })
}

/// A serialized `<stream:error/>` followed by `</stream:stream>`, for closing a
/// stream whose header declared the `stream` prefix. `condition` is an RFC 6120
/// §4.9.3 name (`not-well-formed`, `policy-violation`, `system-shutdown`, …).
pub fn stream_error(condition: &str, text: Option<&str>) -> String {
    let mut out = String::from("<stream:error>");
    out.push_str(&Element::new(condition, ns::STREAMS).to_xml());
    if let Some(t) = text {
        out.push_str(&Element::new("text", ns::STREAMS).attr("xml:lang", "en").text(t).to_xml());
    }
    out.push_str("</stream:error></stream:stream>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get_req() -> Element {
        Element::new("iq", ns::CLIENT)
            .attr("type", "get")
            .attr("id", "abc")
            .attr("from", "user@meet.test/res")
            .attr("to", "focus.meet.test")
            .child(Element::new("query", ns::DISCO_INFO))
    }

    #[test]
    fn iq_type_round_trip() {
        for t in [IqType::Get, IqType::Set, IqType::Result, IqType::Error] {
            assert_eq!(IqType::parse(t.as_str()), Some(t));
        }
        assert_eq!(IqType::parse("GET"), None);
        assert_eq!(IqType::parse(""), None);
        assert_eq!(IqType::of(&get_req()), Some(IqType::Get));
        assert_eq!(IqType::of(&Element::new("iq", ns::CLIENT)), None);
        assert!(IqType::Set.is_request() && !IqType::Result.is_request());
    }

    #[test]
    fn result_swaps_addresses() {
        let r = iq_result(&get_req());
        assert_eq!(
            r.to_xml_in(ns::CLIENT),
            "<iq type='result' id='abc' to='user@meet.test/res' from='focus.meet.test'/>"
        );
        // No from/to on the request: none on the reply.
        let bare = Element::new("iq", ns::COMPONENT).attr("type", "set").attr("id", "1");
        assert_eq!(iq_result(&bare).to_xml_in(ns::COMPONENT), "<iq type='result' id='1'/>");
    }

    #[test]
    fn error_reply_shape() {
        let e = iq_error(&get_req(), ErrorCondition::ItemNotFound, Some("no such room"));
        assert_eq!(
            e.to_xml_in(ns::CLIENT),
            "<iq type='error' id='abc' to='user@meet.test/res' from='focus.meet.test'>\
             <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>no such room</text></error></iq>"
        );
        // Payload not echoed.
        assert!(e.get_child("query", ns::DISCO_INFO).is_none());
        let e = iq_error(&get_req(), ErrorCondition::BadRequest, None);
        assert_eq!(
            e.to_xml_in(ns::CLIENT),
            "<iq type='error' id='abc' to='user@meet.test/res' from='focus.meet.test'>\
             <error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        );
    }

    #[test]
    fn error_builder_extra_and_type() {
        let e = ErrorReply::new(ErrorCondition::NotAcceptable)
            .error_type(ErrorType::Cancel)
            .text("session expired")
            .extra(Element::new("session-invalid", ns::FOCUS))
            .reply_to(&get_req());
        let parsed = parse_error(&e).unwrap();
        assert_eq!(parsed.condition, ErrorCondition::NotAcceptable);
        assert_eq!(parsed.error_type, "cancel");
        assert_eq!(parsed.text.as_deref(), Some("session expired"));
        assert_eq!(parsed.extra, vec![Element::new("session-invalid", ns::FOCUS)]);
        assert!(e.to_xml_in(ns::CLIENT).contains("<session-invalid xmlns='http://jitsi.org/protocol/focus'/>"));
    }

    #[test]
    fn default_types_follow_rfc6120() {
        use ErrorCondition::*;
        let expect = [
            (BadRequest, "modify"),
            (NotAcceptable, "modify"),
            (NotAuthorized, "auth"),
            (Forbidden, "auth"),
            (ItemNotFound, "cancel"),
            (ServiceUnavailable, "cancel"),
            (FeatureNotImplemented, "cancel"),
            (InternalServerError, "cancel"),
            (ResourceConstraint, "wait"),
            (Conflict, "cancel"),
            (NotAllowed, "cancel"),
            (RemoteServerTimeout, "wait"),
            (UnexpectedRequest, "wait"),
            (PolicyViolation, "modify"),
            (UndefinedCondition, "cancel"),
            (JidMalformed, "modify"),
            (RegistrationRequired, "auth"),
            (SubscriptionRequired, "auth"),
            (RecipientUnavailable, "wait"),
            (Gone, "cancel"),
            (Redirect, "modify"),
            (RemoteServerNotFound, "cancel"),
        ];
        assert_eq!(expect.len(), ErrorCondition::ALL.len());
        for (c, t) in expect {
            assert_eq!(c.default_type().as_str(), t, "{}", c);
        }
    }

    #[test]
    fn condition_names_round_trip() {
        for c in ErrorCondition::ALL {
            assert_eq!(ErrorCondition::from_str(c.as_str()), Some(c));
        }
        assert_eq!(ErrorCondition::from_str("Item-Not-Found"), None);
        assert_eq!(ErrorCondition::from_str("text"), None);
        for t in ["auth", "cancel", "continue", "modify", "wait"] {
            assert_eq!(ErrorType::parse(t).unwrap().as_str(), t);
        }
        assert_eq!(ErrorType::parse("boom"), None);
    }

    #[test]
    fn parse_error_with_colibri2_reason_and_unknown_condition() {
        let iq = Element::new("iq", ns::CLIENT).attr("type", "error").attr("id", "x").child(
            Element::new("error", ns::CLIENT)
                .attr("type", "cancel")
                .child(Element::new("item-not-found", ns::STANZAS))
                .child(Element::new("error", ns::COLIBRI2).attr("reason", "CONFERENCE_NOT_FOUND")),
        );
        let e = parse_error(&iq).unwrap();
        assert_eq!(e.condition, ErrorCondition::ItemNotFound);
        assert_eq!(e.condition_name, "item-not-found");
        assert_eq!(e.text, None);
        assert_eq!(e.extra.len(), 1);
        assert_eq!(e.extra[0].get_attr("reason"), Some("CONFERENCE_NOT_FOUND"));
        assert_eq!(e.to_string(), "item-not-found (type cancel)");

        let iq = Element::new("iq", ns::CLIENT).attr("type", "error").child(
            Element::new("error", ns::CLIENT)
                .child(Element::new("text", ns::STANZAS).text("why"))
                .child(Element::new("made-up", ns::STANZAS)),
        );
        let e = parse_error(&iq).unwrap();
        assert_eq!(e.condition, ErrorCondition::UndefinedCondition);
        assert_eq!(e.condition_name, "made-up");
        assert_eq!(e.error_type, "");
        assert_eq!(e.text.as_deref(), Some("why"));

        // Empty <error/>, missing <error/>, not an error.
        let iq = Element::new("iq", ns::CLIENT).attr("type", "error").child(Element::new("error", ns::CLIENT));
        assert_eq!(parse_error(&iq).unwrap().condition_name, "");
        assert_eq!(parse_error(&Element::new("iq", ns::CLIENT).attr("type", "error")), None);
        assert_eq!(parse_error(&iq_result(&get_req())), None);
    }

    #[test]
    fn stream_error_text() {
        assert_eq!(
            stream_error("policy-violation", Some("stanza too big & <bad>")),
            "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>stanza too big &amp; &lt;bad&gt;</text>\
             </stream:error></stream:stream>"
        );
        assert_eq!(
            stream_error("system-shutdown", None),
            "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
        );
    }

    #[test]
    fn parse_stream_errors() {
        let el = Element::new("error", ns::STREAM)
            .child(Element::new("host-unknown", ns::STREAMS))
            .child(Element::new("text", ns::STREAMS).text("no such host"));
        let e = parse_stream_error(&el).unwrap();
        assert_eq!(e.condition, "host-unknown");
        assert_eq!(e.text.as_deref(), Some("no such host"));
        assert_eq!(e.to_string(), "host-unknown (no such host)");
        let e = parse_stream_error(&Element::new("error", ns::STREAM)).unwrap();
        assert_eq!(e.condition, "undefined-condition");
        assert_eq!(parse_stream_error(&Element::new("error", ns::CLIENT)), None);
    }

    #[test]
    fn unread_iq_requests_are_refused_others_dropped() {
        let a = |p: &[(&str, &str)]| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let attrs = a(&[("type", "set"), ("id", "x'1"), ("from", "u@meet.test/r"), ("to", "focus.meet.test")]);
        let e = refuse_unread("iq", &attrs, ns::COMPONENT, ErrorCondition::PolicyViolation, "too large").unwrap();
        assert_eq!(
            e.to_xml_in(ns::COMPONENT),
            "<iq type='error' id='x&apos;1' to='u@meet.test/r' from='focus.meet.test'><error type='modify'>\
             <policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>too large</text></error></iq>"
        );
        let err = parse_error(&e).unwrap();
        assert_eq!((err.condition, err.error_type.as_str()), (ErrorCondition::PolicyViolation, "modify"));
        // get too; no from on a client stream: no to in the answer.
        let e = refuse_unread("iq", &a(&[("id", "g"), ("type", "get")]), ns::CLIENT, ErrorCondition::BadRequest, "bad").unwrap();
        assert_eq!((e.ns.as_str(), e.get_attr("to"), e.get_attr("id")), (ns::CLIENT, None, Some("g")));
        // Not answered: results, errors, no type, no id, other stanzas.
        for (name, attrs) in [
            ("iq", a(&[("type", "result"), ("id", "1")])),
            ("iq", a(&[("type", "error"), ("id", "1")])),
            ("iq", a(&[("type", "SET"), ("id", "1")])),
            ("iq", a(&[("id", "1")])),
            ("iq", a(&[("type", "get")])),
            ("message", a(&[("type", "get"), ("id", "1")])),
            ("presence", a(&[("id", "1")])),
            ("stream:iq", a(&[("type", "get"), ("id", "1")])),
        ] {
            assert_eq!(refuse_unread(name, &attrs, ns::CLIENT, ErrorCondition::PolicyViolation, "x"), None, "{name} {attrs:?}");
        }
    }

    #[test]
    fn no_reply_grows_with_the_request() {
        // An id of nearly the stanza size cap (a skipped stanza's opening tag may carry one)
        // would make the answer larger than Prosody accepts from the focus: not answered.
        let long_id = "'".repeat(40_000);
        let attrs = vec![("type".to_string(), "get".to_string()), ("id".to_string(), long_id.clone())];
        assert_eq!(refuse_unread("iq", &attrs, ns::CLIENT, ErrorCondition::PolicyViolation, "x"), None);
        let req = Element::new("iq", ns::CLIENT).attr("type", "get").attr("id", long_id);
        assert!(!is_answerable(&req));
        let at_cap = Element::new("iq", ns::CLIENT).attr("type", "get").attr("id", "i".repeat(MAX_ECHOED_ID));
        assert!(is_answerable(&at_cap) && is_answerable(&Element::new("iq", ns::CLIENT)));
        // Error texts are cut on a character boundary, however long what they quote.
        let quoted = format!("Invalid thing: {}", "é'".repeat(100_000));
        let e = iq_error(&get_req(), ErrorCondition::BadRequest, Some(&quoted));
        let text = parse_error(&e).unwrap().text.unwrap();
        assert!(text.len() <= MAX_ERROR_TEXT && text.len() >= MAX_ERROR_TEXT - 3, "{}", text.len());
        assert!(quoted.starts_with(&text));
        assert!(e.to_xml().len() < 2_000, "{} bytes", e.to_xml().len());
        assert_eq!(clip("abc", 2), "ab");
        assert_eq!(clip("éé", 3), "é");
        assert_eq!(clip("é", 1), "");
        assert_eq!(clip("short", 100), "short");
    }
}
