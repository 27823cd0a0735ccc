//! XEP-0115 entity capabilities, sans-IO: the `<c/>` a client puts in its presence,
//! the bounded parse of a disco#info answer, the verification string and hash
//! (XEP-0115 §5.1, §5.4), and the [`CapsCache`] shared by all conferences.
//!
//! The cache maps a verified `ver` to the features it stands for. It is keyed by
//! what a client claims, so nothing enters it unverified: an answer is cached only
//! when its `sha-1` verification hash equals the `ver` the presence advertised.
//! Anything else (a different hash, another algorithm, an ill-formed or truncated
//! answer) is used for that occupant only and never cached, so one client cannot
//! poison the features other clients with the same `ver` get.
//!
//! Bounds (all constants below): a disco answer contributes at most
//! [`MAX_FEATURES`] features of at most [`MAX_FEATURE_LEN`] bytes (longer or further
//! ones are ignored and the answer counts as truncated), [`MAX_IDENTITIES`]
//! identities, [`MAX_FORMS`] extended forms of [`MAX_FORM_FIELDS`] fields with
//! [`MAX_FIELD_VALUES`] values, every text at most [`MAX_TEXT_LEN`] bytes. The cache
//! holds at most [`CACHE_MAX_ENTRIES`] entries and [`CACHE_MAX_BYTES`] bytes and
//! evicts the least recently used entry first. Mismatches are logged at most once
//! per [`MISMATCH_LOG_INTERVAL`].
//!
//! Every function here is pure over `&Element` / values (no I/O, the clock is an
//! argument), so the parsers are direct fuzz targets.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use base64::Engine;
use log::warn;
use sha1::{Digest, Sha1};

use crate::log_throttle::LogThrottle;
use crate::xml::Element;
use crate::xmpp::ns;

/// Features taken from one disco#info answer; further ones are ignored.
pub const MAX_FEATURES: usize = 512;
/// Longest feature `var` taken (bytes); longer ones are ignored.
pub const MAX_FEATURE_LEN: usize = 256;
/// Identities taken from one answer.
pub const MAX_IDENTITIES: usize = 32;
/// Extended information forms (XEP-0128) taken from one answer.
pub const MAX_FORMS: usize = 8;
/// Fields taken from one form.
pub const MAX_FORM_FIELDS: usize = 64;
/// Values taken from one field.
pub const MAX_FIELD_VALUES: usize = 32;
/// Longest identity attribute, field var or value taken (bytes).
pub const MAX_TEXT_LEN: usize = 256;
/// Longest caps `node` accepted (bytes); the focus sends it back in `node#ver` queries.
pub const MAX_CAPS_NODE: usize = 256;
/// Longest caps `ver` accepted (bytes): a base64 SHA-512 is 88.
pub const MAX_CAPS_VER: usize = 128;
/// Longest caps `hash` name accepted (bytes).
pub const MAX_CAPS_HASH: usize = 32;
/// Entries the cache keeps.
pub const CACHE_MAX_ENTRIES: usize = 1024;
/// Bytes the cache keeps (features, keys and per-entry overhead, estimated).
pub const CACHE_MAX_BYTES: usize = 1 << 20;
/// A rejected (mismatching) answer is logged at most this often.
pub const MISMATCH_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The only hash algorithm whose answers are cached.
pub const SHA1: &str = "sha-1";

/// A presence's `<c xmlns='http://jabber.org/protocol/caps' hash node ver/>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caps {
    /// The `node` attribute: a URI naming the client software, e.g. `https://jitsi.org/jitsi-meet`.
    pub node: String,
    /// The `ver` attribute: the base64 verification hash of the client's disco#info (XEP-0115 §5).
    pub ver: String,
    /// The `hash` attribute; `None` for legacy (pre-1.5) caps.
    pub hash: Option<String>,
}

impl Caps {
    /// Parse a `<c/>` element; `None` without `node` or `ver`, or when one of the
    /// attributes is longer than its cap ([`MAX_CAPS_NODE`], [`MAX_CAPS_VER`], [`MAX_CAPS_HASH`]).
    pub fn parse(c: &Element) -> Option<Caps> {
        if !c.is("c", ns::CAPS) {
            return None;
        }
        Caps::from_attrs(&c.attrs)
    }

    /// From the attributes of a `<c/>` element (bounded as [`Caps::parse`]).
    pub fn from_attrs(attrs: &[(String, String)]) -> Option<Caps> {
        let get = |k: &str| crate::xmpp::collect::attr(attrs, k);
        let node = get("node").filter(|v| v.len() <= MAX_CAPS_NODE)?;
        let ver = get("ver").filter(|v| v.len() <= MAX_CAPS_VER)?;
        let hash = match get("hash") {
            Some(h) if h.len() > MAX_CAPS_HASH => return None,
            h => h.map(str::to_string),
        };
        Some(Caps { node: node.to_string(), ver: ver.to_string(), hash })
    }

    /// The caps of a presence stanza, if it has any.
    pub fn from_presence(presence: &Element) -> Option<Caps> {
        presence.get_child("c", ns::CAPS).and_then(Caps::parse)
    }

    /// The `node` to ask disco#info about: `node#ver`.
    pub fn query_node(&self) -> String {
        format!("{}#{}", self.node, self.ver)
    }

    /// True when the advertised hash is `sha-1`, the one algorithm cached.
    pub fn is_sha1(&self) -> bool {
        self.hash.as_deref() == Some(SHA1)
    }
}

/// A disco#info `<identity category type xml:lang name/>`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity {
    /// The `category` attribute, e.g. `client`.
    pub category: String,
    /// The `type` attribute, e.g. `pc` (`type` is a Rust keyword).
    pub kind: String,
    /// The `xml:lang` attribute; empty when absent.
    pub lang: String,
    /// The `name` attribute; empty when absent.
    pub name: String,
}

/// An extended information form (XEP-0128): its `FORM_TYPE` and the other fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfoForm {
    /// The value of the hidden `FORM_TYPE` field, which names the form.
    pub form_type: String,
    /// `(var, values)` of every field but `FORM_TYPE`.
    pub fields: Vec<(String, Vec<String>)>,
}

/// A disco#info answer, parsed within the bounds of this module.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoInfo {
    /// The identities, at most [`MAX_IDENTITIES`].
    pub identities: Vec<Identity>,
    /// The features, in document order, at most [`MAX_FEATURES`].
    pub features: Vec<String>,
    /// Forms with a hidden `FORM_TYPE` (others are ignored, §5.4).
    pub forms: Vec<InfoForm>,
    /// Something was over a bound and left out: the hash cannot be checked.
    pub truncated: bool,
    /// Ill-formed in the sense of XEP-0115 §5.4 (duplicate identity, feature or
    /// FORM_TYPE, a FORM_TYPE with several values): never cached.
    pub ill_formed: bool,
}

/// `Some(s)` when `s` is at most `max` bytes.
fn bounded(s: &str, max: usize) -> Option<String> {
    (s.len() <= max).then(|| s.to_string())
}

impl DiscoInfo {
    /// Parse the `<query xmlns='http://jabber.org/protocol/disco#info'>` of an answer.
    pub fn parse(query: &Element) -> DiscoInfo {
        let mut out = DiscoInfo::default();
        let mut seen_features: HashSet<&str> = HashSet::new();
        let mut seen_identities: HashSet<Identity> = HashSet::new();
        let mut seen_forms: HashSet<String> = HashSet::new();
        for child in query.elements() {
            if child.is("feature", ns::DISCO_INFO) {
                let Some(var) = child.get_attr("var") else { continue };
                if out.features.len() >= MAX_FEATURES || var.len() > MAX_FEATURE_LEN {
                    out.truncated = true;
                    continue;
                }
                if !seen_features.insert(var) {
                    out.ill_formed = true;
                    continue;
                }
                out.features.push(var.to_string());
            } else if child.is("identity", ns::DISCO_INFO) {
                if out.identities.len() >= MAX_IDENTITIES {
                    out.truncated = true;
                    continue;
                }
                let text = |a: &str| bounded(child.get_attr(a).unwrap_or(""), MAX_TEXT_LEN);
                let (Some(category), Some(kind), Some(lang), Some(name)) =
                    (text("category"), text("type"), text("xml:lang"), text("name"))
                else {
                    out.truncated = true;
                    continue;
                };
                let id = Identity { category, kind, lang, name };
                if !seen_identities.insert(id.clone()) {
                    out.ill_formed = true;
                    continue;
                }
                out.identities.push(id);
            } else if child.is("x", ns::DATA) {
                match parse_form(child) {
                    FormParse::Ignored => {}
                    FormParse::Truncated => out.truncated = true,
                    FormParse::IllFormed => out.ill_formed = true,
                    FormParse::Form(f) => {
                        if out.forms.len() >= MAX_FORMS {
                            out.truncated = true;
                        } else if !seen_forms.insert(f.form_type.clone()) {
                            out.ill_formed = true;
                        } else {
                            out.forms.push(f);
                        }
                    }
                }
            }
        }
        out
    }

    /// The XEP-0115 §5.1 verification string S (before hashing).
    pub fn verification_string(&self) -> String {
        let mut s = String::new();
        let mut ids: Vec<&Identity> = self.identities.iter().collect();
        ids.sort();
        for i in ids {
            s.push_str(&format!("{}/{}/{}/{}<", i.category, i.kind, i.lang, i.name));
        }
        let mut feats: Vec<&str> = self.features.iter().map(String::as_str).collect();
        feats.sort_unstable();
        for f in feats {
            s.push_str(f);
            s.push('<');
        }
        let mut forms: Vec<&InfoForm> = self.forms.iter().collect();
        forms.sort_by(|a, b| a.form_type.cmp(&b.form_type));
        for form in forms {
            s.push_str(&form.form_type);
            s.push('<');
            let mut fields: Vec<&(String, Vec<String>)> = form.fields.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            for (var, values) in fields {
                s.push_str(var);
                s.push('<');
                let mut values: Vec<&str> = values.iter().map(String::as_str).collect();
                values.sort_unstable();
                for v in values {
                    s.push_str(v);
                    s.push('<');
                }
            }
        }
        s
    }

    /// The base64 SHA-1 of the verification string: the `ver` a truthful client
    /// advertises with `hash='sha-1'`.
    pub fn sha1_ver(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(Sha1::digest(self.verification_string().as_bytes()))
    }
}

enum FormParse {
    /// Not a result form with a hidden FORM_TYPE: not part of the hash.
    Ignored,
    Truncated,
    IllFormed,
    Form(InfoForm),
}

fn parse_form(x: &Element) -> FormParse {
    let mut form_type: Option<String> = None;
    let mut fields = Vec::new();
    for field in x.children_named("field", ns::DATA) {
        let Some(var) = field.get_attr("var") else { continue };
        let mut values = Vec::new();
        for v in field.children_named("value", ns::DATA) {
            if values.len() >= MAX_FIELD_VALUES {
                return FormParse::Truncated;
            }
            let Some(text) = bounded(&v.text_content(), MAX_TEXT_LEN) else { return FormParse::Truncated };
            values.push(text);
        }
        if var == "FORM_TYPE" {
            if field.get_attr("type") != Some("hidden") {
                return FormParse::Ignored;
            }
            let first = values.first().cloned().unwrap_or_default();
            if form_type.is_some() || values.iter().any(|v| *v != first) {
                return FormParse::IllFormed;
            }
            form_type = Some(first);
            continue;
        }
        if fields.len() >= MAX_FORM_FIELDS || var.len() > MAX_TEXT_LEN {
            return FormParse::Truncated;
        }
        fields.push((var.to_string(), values));
    }
    match form_type {
        Some(form_type) => FormParse::Form(InfoForm { form_type, fields }),
        None => FormParse::Ignored,
    }
}

/// What checking an answer against the advertised caps found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The answer hashes to the advertised `ver`: cacheable.
    Verified,
    /// The answer hashes to something else (`computed`): a lie or a bug.
    Mismatch {
        /// The base64 SHA-1 verification string the answer actually hashes to.
        computed: String,
    },
    /// Not `hash='sha-1'` (another algorithm, or legacy caps without `hash`).
    UnsupportedHash,
    /// The answer was over a bound of this module; not checked.
    Truncated,
    /// Ill-formed per XEP-0115 §5.4.
    IllFormed,
}

/// Check `info` against the caps a presence advertised.
pub fn verify(caps: &Caps, info: &DiscoInfo) -> Verdict {
    if !caps.is_sha1() {
        return Verdict::UnsupportedHash;
    }
    if info.truncated {
        return Verdict::Truncated;
    }
    if info.ill_formed {
        return Verdict::IllFormed;
    }
    let computed = info.sha1_ver();
    if computed == caps.ver {
        Verdict::Verified
    } else {
        Verdict::Mismatch { computed }
    }
}

#[derive(Debug)]
struct Entry {
    features: Vec<String>,
    bytes: usize,
    tick: u64,
}

/// The estimated memory an entry holds.
fn entry_bytes(ver: &str, features: &[String]) -> usize {
    const OVERHEAD: usize = 128; // map slot, order slot, the key twice, the Vec header
    OVERHEAD + 2 * ver.len() + features.iter().map(|f| f.len() + std::mem::size_of::<String>()).sum::<usize>()
}

/// Verified disco#info features by `ver`: an LRU cache bounded by entries and bytes.
#[derive(Debug)]
pub struct CapsCache {
    max_entries: usize,
    max_bytes: usize,
    entries: HashMap<String, Entry>,
    /// tick → key, oldest first.
    order: BTreeMap<u64, String>,
    tick: u64,
    bytes: usize,
    /// Mismatching answers, logged once per [`MISMATCH_LOG_INTERVAL`].
    mismatch_log: LogThrottle,
}

impl Default for CapsCache {
    fn default() -> CapsCache {
        CapsCache::new()
    }
}

impl CapsCache {
    /// A cache with the default bounds ([`CACHE_MAX_ENTRIES`], [`CACHE_MAX_BYTES`]).
    pub fn new() -> CapsCache {
        CapsCache::with_bounds(CACHE_MAX_ENTRIES, CACHE_MAX_BYTES)
    }

    /// A cache holding at most `max_entries` entries and `max_bytes` bytes.
    pub fn with_bounds(max_entries: usize, max_bytes: usize) -> CapsCache {
        CapsCache {
            max_entries,
            max_bytes,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            bytes: 0,
            mismatch_log: LogThrottle::new(MISMATCH_LOG_INTERVAL),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Estimated bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The features cached for `caps` (a `sha-1` ver only), marking them recently used.
    pub fn get(&mut self, caps: &Caps) -> Option<Vec<String>> {
        if !caps.is_sha1() {
            return None;
        }
        let tick = self.next_tick();
        let e = self.entries.get_mut(&caps.ver)?;
        self.order.remove(&e.tick);
        e.tick = tick;
        self.order.insert(tick, caps.ver.clone());
        Some(e.features.clone())
    }

    /// True when `ver` is cached (no LRU update).
    pub fn contains(&self, ver: &str) -> bool {
        self.entries.contains_key(ver)
    }

    /// Check the answer `info` to a disco#info about `caps` and cache its features
    /// when they verify. Anything else is logged (rate-limited) with `who` (the
    /// occupant) and not cached; the caller still uses `info.features` for that
    /// occupant. `now` paces the log.
    pub fn learn(&mut self, caps: &Caps, info: &DiscoInfo, who: &str, now: Instant) -> Verdict {
        let verdict = verify(caps, info);
        match &verdict {
            Verdict::Verified => self.insert(&caps.ver, info.features.clone()),
            Verdict::UnsupportedHash => {}
            other => {
                if let Some(dropped) = self.mismatch_log.hit(now) {
                    warn!(
                        "caps: disco#info of {} does not match its ver {:?} ({}); used for it only, not cached{}",
                        who,
                        caps.ver,
                        match other {
                            Verdict::Mismatch { computed } => format!("hash {computed}"),
                            Verdict::Truncated => "over the size bounds".to_string(),
                            _ => "ill-formed".to_string(),
                        },
                        if dropped > 0 { format!(" ({dropped} more since the last such line)") } else { String::new() }
                    );
                }
            }
        }
        verdict
    }

    /// Insert verified features, evicting least recently used entries to stay within
    /// the bounds. An entry larger than the whole byte bound is not kept.
    fn insert(&mut self, ver: &str, features: Vec<String>) {
        let bytes = entry_bytes(ver, &features);
        if bytes > self.max_bytes || self.max_entries == 0 {
            return;
        }
        if let Some(old) = self.entries.remove(ver) {
            self.order.remove(&old.tick);
            self.bytes -= old.bytes;
        }
        while self.entries.len() >= self.max_entries || self.bytes + bytes > self.max_bytes {
            let Some((_, key)) = self.order.pop_first() else { break };
            if let Some(e) = self.entries.remove(&key) {
                self.bytes -= e.bytes;
            }
        }
        let tick = self.next_tick();
        self.order.insert(tick, ver.to_string());
        self.entries.insert(ver.to_string(), Entry { features, bytes, tick });
        self.bytes += bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_fragment;

    const JOIN: &str = include_str!("../../tests/fixtures/captures/lyno-muc-join-presence.xml");

    /// The features lib-jitsi-meet 2.6726.2 (the captured client) registers, in its
    /// order: the caps namespace, then `XMPP.initFeaturesList` in Chromium with the
    /// default options (RTX, REMB, TCC) over a connection with Rayo enabled.
    const LJM_FEATURES: &[&str] = &[
        "http://jabber.org/protocol/caps",
        "urn:xmpp:jingle:1",
        "urn:xmpp:jingle:apps:rtp:1",
        "urn:xmpp:jingle:transports:ice-udp:1",
        "urn:xmpp:jingle:apps:dtls:0",
        "urn:xmpp:jingle:transports:dtls-sctp:1",
        "urn:xmpp:jingle:apps:rtp:audio",
        "urn:xmpp:jingle:apps:rtp:video",
        "http://jitsi.org/json-encoded-sources",
        "urn:ietf:rfc:4588",
        "http://jitsi.org/remb",
        "http://jitsi.org/tcc",
        "urn:ietf:rfc:5761",
        "urn:ietf:rfc:5888",
        "urn:xmpp:rayo:client:1",
    ];

    fn capture(text: &str) -> Element {
        let body = text.find("-->").map(|i| &text[i + 3..]).unwrap_or(text);
        parse_fragment(body.trim()).unwrap()
    }

    fn query(children: &str) -> Element {
        parse_fragment(&format!("<query xmlns='http://jabber.org/protocol/disco#info'>{children}</query>")).unwrap()
    }

    fn features_xml(features: &[&str]) -> String {
        features.iter().map(|f| format!("<feature var='{f}'/>")).collect()
    }

    fn sha1_caps(ver: &str) -> Caps {
        Caps { node: "https://jitsi.org/jitsi-meet".into(), ver: ver.into(), hash: Some("sha-1".into()) }
    }

    /// A feature set and the caps that truthfully describe it.
    fn truthful(tag: &str, n: usize) -> (Caps, DiscoInfo) {
        let feats: Vec<String> = (0..n).map(|i| format!("urn:test:{tag}:{i}")).collect();
        let refs: Vec<&str> = feats.iter().map(String::as_str).collect();
        let info = DiscoInfo::parse(&query(&features_xml(&refs)));
        (sha1_caps(&info.sha1_ver()), info)
    }

    #[test]
    fn xep_0115_simple_example() {
        let q = query(
            "<identity category='client' type='pc' name='Exodus 0.9.1'/>\
             <feature var='http://jabber.org/protocol/disco#info'/>\
             <feature var='http://jabber.org/protocol/disco#items'/>\
             <feature var='http://jabber.org/protocol/muc'/>\
             <feature var='http://jabber.org/protocol/caps'/>",
        );
        let info = DiscoInfo::parse(&q);
        assert_eq!(
            info.verification_string(),
            "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<\
             http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<"
        );
        assert_eq!(info.sha1_ver(), "QgayPKawpkPSDYmwT/WM94uAlu0=");
    }

    #[test]
    fn xep_0115_complex_example_with_a_form() {
        let q = query(
            "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>\
             <identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>\
             <feature var='http://jabber.org/protocol/caps'/>\
             <feature var='http://jabber.org/protocol/disco#info'/>\
             <feature var='http://jabber.org/protocol/disco#items'/>\
             <feature var='http://jabber.org/protocol/muc'/>\
             <x xmlns='jabber:x:data' type='result'>\
               <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>\
               <field var='ip_version'><value>ipv4</value><value>ipv6</value></field>\
               <field var='os'><value>Mac</value></field>\
               <field var='os_version'><value>10.5.1</value></field>\
               <field var='software'><value>Psi</value></field>\
               <field var='software_version'><value>0.11</value></field>\
             </x>\
             <x xmlns='jabber:x:data' type='result'><field var='no_form_type'><value>ignored</value></field></x>",
        );
        let info = DiscoInfo::parse(&q);
        assert!(!info.truncated && !info.ill_formed);
        assert_eq!(info.forms.len(), 1, "a form without FORM_TYPE is not part of the hash");
        assert_eq!(info.sha1_ver(), "q07IKJEyjvHSyhy//CH0CxmKi8w=");
        assert_eq!(verify(&sha1_caps("q07IKJEyjvHSyhy//CH0CxmKi8w="), &info), Verdict::Verified);
    }

    #[test]
    fn captured_lib_jitsi_meet_presence_and_its_answer_verify_and_are_cached() {
        let presence = capture(JOIN);
        let caps = Caps::from_presence(&presence).unwrap();
        assert_eq!(caps.node, "https://jitsi.org/jitsi-meet");
        assert_eq!(caps.ver, "/LxjVAUjW56LWSj9lRquSYt35Ho=");
        assert!(caps.is_sha1());
        assert_eq!(caps.query_node(), "https://jitsi.org/jitsi-meet#/LxjVAUjW56LWSj9lRquSYt35Ho=");
        // What Strophe's disco plugin answers: no identity, the features in order.
        let answer = parse_fragment(&format!(
            "<iq xmlns='jabber:client' type='result' id='x'>\
             <query xmlns='http://jabber.org/protocol/disco#info' node='{}'>{}</query></iq>",
            caps.query_node(),
            features_xml(LJM_FEATURES)
        ))
        .unwrap();
        let info = DiscoInfo::parse(answer.get_child("query", ns::DISCO_INFO).unwrap());
        assert_eq!(info.features.len(), LJM_FEATURES.len());
        let mut cache = CapsCache::new();
        assert_eq!(cache.get(&caps), None);
        assert_eq!(cache.learn(&caps, &info, "room/19c373a4", Instant::now()), Verdict::Verified);
        assert_eq!(cache.get(&caps).unwrap(), info.features);
        assert_eq!(cache.len(), 1);
        assert!(cache.bytes() > 0);
    }

    #[test]
    fn a_lying_answer_is_not_cached() {
        let caps = Caps::from_presence(&capture(JOIN)).unwrap();
        let mut cache = CapsCache::new();
        let t = Instant::now();
        // The attacker advertises the ver of real clients and answers with other features
        // (here: claiming to be Jibri, which is never muted and never made owner).
        let mut lie: Vec<&str> = LJM_FEATURES.to_vec();
        lie.push("http://jitsi.org/protocol/jibri");
        let info = DiscoInfo::parse(&query(&features_xml(&lie)));
        assert!(matches!(cache.learn(&caps, &info, "room/evil", t), Verdict::Mismatch { .. }));
        assert!(cache.is_empty());
        assert_eq!(cache.get(&caps), None, "the next client with this ver is asked itself");
        // A truthful client afterwards still gets its own answer cached.
        let truth = DiscoInfo::parse(&query(&features_xml(LJM_FEATURES)));
        assert_eq!(cache.learn(&caps, &truth, "room/good", t), Verdict::Verified);
        // A later lie with the same ver neither replaces nor removes the verified entry.
        assert!(matches!(cache.learn(&caps, &info, "room/evil2", t), Verdict::Mismatch { .. }));
        assert_eq!(cache.get(&caps).unwrap(), truth.features);
    }

    #[test]
    fn other_hashes_and_legacy_caps_are_never_cached() {
        let (caps, info) = truthful("h", 3);
        let mut cache = CapsCache::new();
        let t = Instant::now();
        for hash in [Some("sha-256"), Some("SHA-1"), None] {
            let c = Caps { hash: hash.map(str::to_string), ..caps.clone() };
            assert_eq!(cache.learn(&c, &info, "room/x", t), Verdict::UnsupportedHash);
            assert_eq!(cache.get(&c), None);
        }
        assert!(cache.is_empty());
        assert!(Caps::parse(&parse_fragment("<c xmlns='http://jabber.org/protocol/caps' node='n'/>").unwrap()).is_none());
    }

    #[test]
    fn ill_formed_answers_are_not_cached() {
        let mut cache = CapsCache::new();
        let t = Instant::now();
        let cases = [
            "<feature var='a'/><feature var='a'/>",
            "<identity category='client' type='pc'/><identity category='client' type='pc'/>",
            "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>u</value></field></x>\
             <x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>u</value></field></x>",
            "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>u</value><value>v</value></field></x>",
        ];
        for xml in cases {
            let info = DiscoInfo::parse(&query(xml));
            assert!(info.ill_formed, "{xml}");
            // Even with the ver the (deduplicated) content would hash to.
            assert_eq!(cache.learn(&sha1_caps(&info.sha1_ver()), &info, "room/x", t), Verdict::IllFormed, "{xml}");
        }
        assert!(cache.is_empty());
        // A FORM_TYPE that is not hidden: the form is ignored, the answer is fine.
        let info = DiscoInfo::parse(&query(
            "<feature var='a'/><x xmlns='jabber:x:data'><field var='FORM_TYPE'><value>u</value></field></x>",
        ));
        assert!(!info.ill_formed && info.forms.is_empty());
    }

    #[test]
    fn an_answer_contributes_bounded_features() {
        let many: Vec<String> = (0..MAX_FEATURES + 100).map(|i| format!("urn:f:{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let info = DiscoInfo::parse(&query(&features_xml(&refs)));
        assert_eq!(info.features.len(), MAX_FEATURES);
        assert!(info.truncated);
        let long = "x".repeat(MAX_FEATURE_LEN + 1);
        let info = DiscoInfo::parse(&query(&features_xml(&["urn:ok", &long])));
        assert_eq!(info.features, vec!["urn:ok".to_string()]);
        assert!(info.truncated);
        // Truncated answers are not cached, even if the ver matches what was kept.
        let mut cache = CapsCache::new();
        assert_eq!(cache.learn(&sha1_caps(&info.sha1_ver()), &info, "room/x", Instant::now()), Verdict::Truncated);
        assert!(cache.is_empty());
        let exactly = "y".repeat(MAX_FEATURE_LEN);
        let info = DiscoInfo::parse(&query(&features_xml(&[&exactly])));
        assert!(!info.truncated && info.features.len() == 1);
        // Identities, forms, fields and values are bounded too.
        let ids: String = (0..MAX_IDENTITIES + 1).map(|i| format!("<identity category='c' type='t{i}'/>")).collect();
        let info = DiscoInfo::parse(&query(&ids));
        assert_eq!(info.identities.len(), MAX_IDENTITIES);
        assert!(info.truncated);
        let values: String = (0..MAX_FIELD_VALUES + 1).map(|i| format!("<value>{i}</value>")).collect();
        let info = DiscoInfo::parse(&query(&format!(
            "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>u</value></field>\
             <field var='f'>{values}</field></x>"
        )));
        assert!(info.truncated && info.forms.is_empty());
    }

    #[test]
    fn lru_eviction_by_entries() {
        let mut cache = CapsCache::with_bounds(2, usize::MAX);
        let t = Instant::now();
        let (a, ia) = truthful("a", 2);
        let (b, ib) = truthful("b", 2);
        let (c, ic) = truthful("c", 2);
        assert_eq!(cache.learn(&a, &ia, "r/a", t), Verdict::Verified);
        assert_eq!(cache.learn(&b, &ib, "r/b", t), Verdict::Verified);
        assert!(cache.get(&a).is_some(), "a is now the most recently used");
        assert_eq!(cache.learn(&c, &ic, "r/c", t), Verdict::Verified);
        assert_eq!(cache.len(), 2);
        assert!(cache.contains(&a.ver) && cache.contains(&c.ver));
        assert!(!cache.contains(&b.ver), "the least recently used entry went");
        // Learning a cached ver again refreshes it instead of adding an entry.
        assert_eq!(cache.learn(&a, &ia, "r/a2", t), Verdict::Verified);
        assert_eq!(cache.len(), 2);
        let (d, id) = truthful("d", 2);
        cache.learn(&d, &id, "r/d", t);
        assert!(cache.contains(&a.ver) && cache.contains(&d.ver) && !cache.contains(&c.ver));
    }

    #[test]
    fn lru_eviction_by_bytes() {
        let (a, ia) = truthful("a", 10);
        let one = entry_bytes(&a.ver, &ia.features);
        // Room for two entries of this size, not three.
        let mut cache = CapsCache::with_bounds(1000, 2 * one + one / 2);
        let t = Instant::now();
        for tag in ["a", "b", "c", "d", "e"] {
            let (c, i) = truthful(tag, 10);
            assert_eq!(cache.learn(&c, &i, "r/x", t), Verdict::Verified);
            assert!(cache.bytes() <= 2 * one + one / 2);
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.contains(&truthful("d", 10).0.ver) && cache.contains(&truthful("e", 10).0.ver));
        // An entry larger than the whole bound is not kept and evicts nothing.
        let (big, ibig) = truthful("big", 200);
        assert_eq!(cache.learn(&big, &ibig, "r/big", t), Verdict::Verified);
        assert!(!cache.contains(&big.ver));
        assert_eq!(cache.len(), 2);
        // The default bounds hold under a flood of distinct, truthful feature sets.
        let mut cache = CapsCache::new();
        for i in 0..CACHE_MAX_ENTRIES + 200 {
            let (c, info) = truthful(&format!("flood{i}"), 20);
            cache.learn(&c, &info, "r/flood", t);
            assert!(cache.len() <= CACHE_MAX_ENTRIES && cache.bytes() <= CACHE_MAX_BYTES);
        }
    }

    #[test]
    fn mismatches_are_logged_at_most_once_a_minute() {
        let caps = sha1_caps("AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        let info = DiscoInfo::parse(&query("<feature var='a'/>"));
        let mut cache = CapsCache::new();
        let t = Instant::now();
        // What the throttle would do next, without using it up.
        let next = |c: &CapsCache, at: Instant| c.mismatch_log.clone().hit(at);
        cache.learn(&caps, &info, "r/1", t);
        assert_eq!(next(&cache, t + Duration::from_secs(1)), None, "logged at t: quiet for a minute");
        for i in 0..100 {
            cache.learn(&caps, &info, "r/2", t + Duration::from_millis(i));
        }
        assert_eq!(next(&cache, t + MISMATCH_LOG_INTERVAL), Some(100), "100 held back");
        cache.learn(&caps, &info, "r/3", t + MISMATCH_LOG_INTERVAL);
        assert_eq!(next(&cache, t + MISMATCH_LOG_INTERVAL + Duration::from_secs(1)), None, "logged again");
        assert_eq!(next(&cache, t + 2 * MISMATCH_LOG_INTERVAL), Some(0), "the count went into that line");
    }
}
