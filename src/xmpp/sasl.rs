//! SASL client mechanisms for the c2s connection: SCRAM-SHA-1 (RFC 5802), PLAIN
//! (RFC 4616) and ANONYMOUS (RFC 4505), plus the rule for choosing among the
//! mechanisms a server offers. Pure computation: bytes in, bytes out; the XMPP
//! framing (`<auth>`, `<challenge>`, base64) lives in `c2s`.
//!
//! SCRAM-SHA-1 exchange, as seen by [`ScramSha1`]:
//!
//! ```text
//!   client_first() ──"n,,n=user,r=cnonce"──────────────────────────────▶ server
//!                 ◀──"r=cnonce+snonce,s=salt,i=4096"── handle_server_first()
//!                 ──"c=biws,r=cnonce+snonce,p=proof"──────────────────▶
//!                 ◀──"v=server-signature"──────────── verify_server_final()
//!                                                      (mismatch ⇒ error: the
//!                                                       server does not know the
//!                                                       password)
//! ```
//!
//! Passwords are used as given (no SASLprep); that is exact for ASCII passwords,
//! which is what Prosody accounts for the focus user are in practice.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};

/// The largest SCRAM iteration count we accept. A hostile or broken server could
/// otherwise make us spin in PBKDF2 for minutes on the event loop.
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// A SASL mechanism this client implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// SCRAM-SHA-1 (RFC 5802): salted challenge-response; the password never crosses the wire
    /// and the server proves it knows it too. Chosen whenever a password is set and it is offered.
    ScramSha1,
    /// PLAIN (RFC 4616): user name and password in clear, so chosen only over TLS.
    Plain,
    /// ANONYMOUS (RFC 4505): no credentials; the server assigns a random local part.
    Anonymous,
}

impl Mechanism {
    /// The IANA name, as used in `<mechanism>` and `<auth mechanism=…>`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::Plain => "PLAIN",
            Mechanism::Anonymous => "ANONYMOUS",
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why SASL could not proceed on the client side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaslError {
    /// No offered mechanism is usable with our credentials / transport.
    NoMechanism(String),
    /// A server message was not valid base64.
    BadBase64,
    /// A server message did not follow the mechanism's syntax.
    Malformed(String),
    /// The server nonce does not extend the nonce we sent.
    NonceMismatch,
    /// The iteration count is < 1 or larger than [`MAX_ITERATIONS`].
    BadIterationCount(String),
    /// The server signature in server-final is wrong: the server does not know
    /// our password (or someone is in the middle).
    ServerSignatureMismatch,
    /// server-final carried `e=<error>`.
    ServerError(String),
    /// A message arrived that this mechanism does not expect in its current state.
    UnexpectedMessage(String),
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaslError::NoMechanism(why) => write!(f, "no usable SASL mechanism: {}", why),
            SaslError::BadBase64 => write!(f, "server sent invalid base64 in a SASL message"),
            SaslError::Malformed(why) => write!(f, "malformed SCRAM message from server: {}", why),
            SaslError::NonceMismatch => {
                write!(f, "SCRAM server nonce does not start with the client nonce")
            }
            SaslError::BadIterationCount(i) => write!(
                f,
                "SCRAM iteration count {:?} is not in 1..={}",
                i, MAX_ITERATIONS
            ),
            SaslError::ServerSignatureMismatch => write!(
                f,
                "SCRAM server signature does not verify: the server does not know the password (misconfigured or impersonated server)"
            ),
            SaslError::ServerError(e) => write!(f, "SCRAM server-final reported error {:?}", e),
            SaslError::UnexpectedMessage(what) => write!(f, "unexpected SASL message: {}", what),
        }
    }
}

impl std::error::Error for SaslError {}

/// Pick a mechanism among `offered` (names as the server listed them).
///
/// With a password: SCRAM-SHA-1 if offered; otherwise PLAIN, but only over TLS (we
/// never send a password in the clear); otherwise an error that says why. Without
/// a password: ANONYMOUS if offered, otherwise an error.
pub fn choose(offered: &[String], password: Option<&str>, tls_active: bool) -> Result<Mechanism, SaslError> {
    let has = |m: Mechanism| offered.iter().any(|o| o.trim().eq_ignore_ascii_case(m.name()));
    let list = if offered.is_empty() { "none".to_string() } else { offered.join(", ") };
    match password {
        Some(_) => {
            if has(Mechanism::ScramSha1) {
                Ok(Mechanism::ScramSha1)
            } else if has(Mechanism::Plain) {
                if tls_active {
                    Ok(Mechanism::Plain)
                } else {
                    Err(SaslError::NoMechanism(format!(
                        "server offers PLAIN but not SCRAM-SHA-1 (offered: {}), and the stream is not encrypted: refusing to send the password in clear text; enable TLS or SCRAM-SHA-1 in Prosody",
                        list
                    )))
                }
            } else {
                Err(SaslError::NoMechanism(format!(
                    "a password is configured but the server offers neither SCRAM-SHA-1 nor PLAIN (offered: {})",
                    list
                )))
            }
        }
        None => {
            if has(Mechanism::Anonymous) {
                Ok(Mechanism::Anonymous)
            } else {
                Err(SaslError::NoMechanism(format!(
                    "no password is configured and the server does not offer ANONYMOUS (offered: {}); configure the focus user's password",
                    list
                )))
            }
        }
    }
}

/// The PLAIN initial response: `authzid NUL authcid NUL passwd` with an empty authzid.
pub fn plain_response(username: &str, password: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(username.len() + password.len() + 2);
    v.push(0);
    v.extend_from_slice(username.as_bytes());
    v.push(0);
    v.extend_from_slice(password.as_bytes());
    v
}

/// Escape a user name as a SCRAM `saslname`: `=` → `=3D`, `,` → `=2C`.
pub fn escape_saslname(name: &str) -> String {
    let mut s = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '=' => s.push_str("=3D"),
            ',' => s.push_str("=2C"),
            c => s.push(c),
        }
    }
    s
}

/// A fresh random client nonce: 24 printable characters, never `,`.
pub fn random_nonce() -> String {
    let bytes: [u8; 18] = rand::random();
    B64.encode(bytes)
}

/// `Debug` leaves the expected server signature out (derived from the password).
#[derive(Clone, PartialEq, Eq)]
enum ScramState {
    Initial,
    /// client-first sent.
    SentFirst,
    /// client-final sent; holds the expected server signature.
    SentFinal {
        server_signature: Vec<u8>,
    },
    Verified,
    Failed,
}

impl fmt::Debug for ScramState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScramState::Initial => "Initial",
            ScramState::SentFirst => "SentFirst",
            ScramState::SentFinal { .. } => "SentFinal",
            ScramState::Verified => "Verified",
            ScramState::Failed => "Failed",
        })
    }
}

/// A SCRAM-SHA-1 client exchange (no channel binding: gs2 header `n,,`).
/// `Debug` never shows the password.
#[derive(Clone)]
pub struct ScramSha1 {
    password: String,
    nonce: String,
    client_first_bare: String,
    state: ScramState,
}

type HmacSha1 = Hmac<Sha1>;

fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; new_from_slice cannot fail for Hmac.
    let mut mac = match HmacSha1::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Compare in time independent of where the first difference is.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl fmt::Debug for ScramSha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramSha1")
            .field("client_first_bare", &self.client_first_bare)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl ScramSha1 {
    /// A new exchange with a random client nonce.
    pub fn new(username: &str, password: &str) -> ScramSha1 {
        ScramSha1::with_nonce(username, password, &random_nonce())
    }

    /// A new exchange with a given client nonce (tests; must be printable, no `,`).
    pub fn with_nonce(username: &str, password: &str, nonce: &str) -> ScramSha1 {
        ScramSha1 {
            password: password.to_string(),
            nonce: nonce.to_string(),
            client_first_bare: format!("n={},r={}", escape_saslname(username), nonce),
            state: ScramState::Initial,
        }
    }

    /// The client-first message (`n,,n=user,r=nonce`).
    pub fn client_first(&mut self) -> String {
        self.state = ScramState::SentFirst;
        format!("n,,{}", self.client_first_bare)
    }

    /// Process server-first (raw, already base64-decoded); returns client-final.
    pub fn handle_server_first(&mut self, msg: &[u8]) -> Result<String, SaslError> {
        if self.state != ScramState::SentFirst {
            return Err(self.fail(SaslError::UnexpectedMessage("server-first at the wrong time".into())));
        }
        match self.compute_final(msg) {
            Ok((client_final, server_signature)) => {
                self.state = ScramState::SentFinal { server_signature };
                Ok(client_final)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn fail(&mut self, e: SaslError) -> SaslError {
        self.state = ScramState::Failed;
        e
    }

    fn compute_final(&self, msg: &[u8]) -> Result<(String, Vec<u8>), SaslError> {
        let server_first =
            std::str::from_utf8(msg).map_err(|_| SaslError::Malformed("server-first is not UTF-8".into()))?;
        let mut nonce = None;
        let mut salt = None;
        let mut iters = None;
        for (idx, part) in server_first.split(',').enumerate() {
            let (key, value) = match part.split_once('=') {
                Some((k, v)) if k.len() == 1 => (k, v),
                _ => return Err(SaslError::Malformed(format!("bad attribute {:?}", part))),
            };
            match key {
                "m" if idx == 0 => {
                    return Err(SaslError::Malformed("server requires an unsupported extension (m=)".into()))
                }
                "r" if idx == 0 => nonce = Some(value),
                "s" if idx == 1 => salt = Some(value),
                "i" if idx == 2 => iters = Some(value),
                _ if idx >= 3 => {} // extensions: ignored
                _ => return Err(SaslError::Malformed(format!("unexpected attribute {:?}", part))),
            }
        }
        let nonce = nonce.ok_or_else(|| SaslError::Malformed("missing r=".into()))?;
        let salt = salt.ok_or_else(|| SaslError::Malformed("missing s=".into()))?;
        let iters = iters.ok_or_else(|| SaslError::Malformed("missing i=".into()))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len() {
            return Err(SaslError::NonceMismatch);
        }
        if !nonce.chars().all(|c| c.is_ascii_graphic() && c != ',') {
            return Err(SaslError::Malformed("nonce has non-printable characters".into()));
        }
        let salt = B64.decode(salt).map_err(|_| SaslError::BadBase64)?;
        if salt.is_empty() {
            return Err(SaslError::Malformed("empty salt".into()));
        }
        let iters: u32 = match iters.parse::<u32>() {
            Ok(i) if (1..=MAX_ITERATIONS).contains(&i) && !iters.starts_with('+') => i,
            _ => return Err(SaslError::BadIterationCount(iters.to_string())),
        };

        let mut salted = [0u8; 20];
        pbkdf2::pbkdf2_hmac::<Sha1>(self.password.as_bytes(), &salt, iters, &mut salted);
        let client_key = hmac_sha1(&salted, b"Client Key");
        let stored_key = Sha1::digest(&client_key);
        let without_proof = format!("c=biws,r={}", nonce);
        let auth_message = format!("{},{},{}", self.client_first_bare, server_first, without_proof);
        let client_signature = hmac_sha1(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&client_signature).map(|(a, b)| a ^ b).collect();
        let server_key = hmac_sha1(&salted, b"Server Key");
        let server_signature = hmac_sha1(&server_key, auth_message.as_bytes());
        Ok((format!("{},p={}", without_proof, B64.encode(proof)), server_signature))
    }

    /// Verify server-final (raw, already base64-decoded).
    pub fn verify_server_final(&mut self, msg: &[u8]) -> Result<(), SaslError> {
        let expected = match &self.state {
            ScramState::SentFinal { server_signature } => server_signature.clone(),
            _ => return Err(self.fail(SaslError::UnexpectedMessage("server-final at the wrong time".into()))),
        };
        let r = (|| {
            let text =
                std::str::from_utf8(msg).map_err(|_| SaslError::Malformed("server-final is not UTF-8".into()))?;
            let first = text.split(',').next().unwrap_or("");
            if let Some(e) = first.strip_prefix("e=") {
                return Err(SaslError::ServerError(e.to_string()));
            }
            let v = first
                .strip_prefix("v=")
                .ok_or_else(|| SaslError::Malformed(format!("server-final {:?} lacks v=", text)))?;
            let sig = B64.decode(v).map_err(|_| SaslError::BadBase64)?;
            if ct_eq(&sig, &expected) {
                Ok(())
            } else {
                Err(SaslError::ServerSignatureMismatch)
            }
        })();
        match r {
            Ok(()) => {
                self.state = ScramState::Verified;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// True once server-final has been verified.
    pub fn is_verified(&self) -> bool {
        self.state == ScramState::Verified
    }
}

/// One client-side SASL exchange of whichever mechanism was chosen, driven by
/// the raw (decoded) payloads of `<challenge>` and `<success>`.
/// `Debug` never shows the password.
#[derive(Clone)]
pub enum SaslClient {
    /// A SCRAM-SHA-1 exchange in progress.
    Scram(ScramSha1),
    /// PLAIN: one initial response carrying both credentials.
    Plain {
        /// The authentication identity (the account's local part).
        username: String,
        /// The account's password.
        password: String,
    },
    /// ANONYMOUS: no initial response.
    Anonymous,
}

impl fmt::Debug for SaslClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaslClient::Scram(s) => f.debug_tuple("Scram").field(s).finish(),
            SaslClient::Plain { username, .. } => {
                f.debug_struct("Plain").field("username", username).field("password", &"<redacted>").finish()
            }
            SaslClient::Anonymous => f.write_str("Anonymous"),
        }
    }
}

impl SaslClient {
    /// Set up `mech` with the given credentials (`password` is required for
    /// SCRAM-SHA-1 and PLAIN; an empty one is used if absent).
    pub fn new(mech: Mechanism, username: &str, password: Option<&str>) -> SaslClient {
        let pw = password.unwrap_or("");
        match mech {
            Mechanism::ScramSha1 => SaslClient::Scram(ScramSha1::new(username, pw)),
            Mechanism::Plain => SaslClient::Plain { username: username.to_string(), password: pw.to_string() },
            Mechanism::Anonymous => SaslClient::Anonymous,
        }
    }

    /// Which mechanism this exchange runs.
    pub fn mechanism(&self) -> Mechanism {
        match self {
            SaslClient::Scram(_) => Mechanism::ScramSha1,
            SaslClient::Plain { .. } => Mechanism::Plain,
            SaslClient::Anonymous => Mechanism::Anonymous,
        }
    }

    /// The initial response to put in `<auth>` (`None`: send no initial response).
    pub fn initial_response(&mut self) -> Option<Vec<u8>> {
        match self {
            SaslClient::Scram(s) => Some(s.client_first().into_bytes()),
            SaslClient::Plain { username, password } => Some(plain_response(username, password)),
            SaslClient::Anonymous => None,
        }
    }

    /// Answer a server challenge.
    pub fn challenge(&mut self, data: &[u8]) -> Result<Vec<u8>, SaslError> {
        match self {
            SaslClient::Scram(s) => match s.state {
                ScramState::SentFirst => s.handle_server_first(data).map(String::into_bytes),
                // Some servers send server-final as a challenge and an empty <success/>.
                ScramState::SentFinal { .. } => s.verify_server_final(data).map(|()| Vec::new()),
                _ => Err(SaslError::UnexpectedMessage("challenge after the exchange finished".into())),
            },
            SaslClient::Plain { .. } => Err(SaslError::UnexpectedMessage("challenge during PLAIN".into())),
            // RFC 4505: the server may send an empty challenge; answer with no trace.
            SaslClient::Anonymous if data.is_empty() => Ok(Vec::new()),
            SaslClient::Anonymous => Err(SaslError::UnexpectedMessage("challenge during ANONYMOUS".into())),
        }
    }

    /// Check the additional data of `<success>`; for SCRAM the server signature
    /// must have been verified by now (here or in a previous challenge).
    pub fn success(&mut self, data: Option<&[u8]>) -> Result<(), SaslError> {
        match self {
            SaslClient::Scram(s) => {
                let data = data.filter(|d| !d.is_empty());
                match data {
                    Some(d) if !s.is_verified() => s.verify_server_final(d),
                    Some(_) => Err(SaslError::UnexpectedMessage("second server-final in <success>".into())),
                    None if s.is_verified() => Ok(()),
                    None => Err(SaslError::Malformed(
                        "<success> without server-final: the server did not prove it knows the password".into(),
                    )),
                }
            }
            SaslClient::Plain { .. } | SaslClient::Anonymous => match data {
                Some(d) if !d.is_empty() => {
                    Err(SaslError::UnexpectedMessage("<success> with data for a mechanism that has none".into()))
                }
                _ => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CNONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";
    const SFIRST: &str = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";

    #[test]
    fn rfc5802_vector() {
        let mut s = ScramSha1::with_nonce("user", "pencil", CNONCE);
        assert_eq!(s.client_first(), "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        let fin = s.handle_server_first(SFIRST.as_bytes()).unwrap();
        assert_eq!(fin, "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
        s.verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=").unwrap();
        assert!(s.is_verified());
    }

    #[test]
    fn tampered_server_signature_rejected() {
        let mut s = ScramSha1::with_nonce("user", "pencil", CNONCE);
        s.client_first();
        s.handle_server_first(SFIRST.as_bytes()).unwrap();
        assert_eq!(s.verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKA="), Err(SaslError::ServerSignatureMismatch));
        assert!(!s.is_verified());
        // And it stays failed.
        assert!(s.verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=").is_err());
    }

    #[test]
    fn wrong_password_gives_other_proof() {
        let mut s = ScramSha1::with_nonce("user", "pencil2", CNONCE);
        s.client_first();
        let fin = s.handle_server_first(SFIRST.as_bytes()).unwrap();
        assert!(!fin.ends_with("p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="));
        assert!(s.verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=").is_err());
    }

    #[test]
    fn server_final_error_and_garbage() {
        let mut s = ScramSha1::with_nonce("user", "pencil", CNONCE);
        s.client_first();
        s.handle_server_first(SFIRST.as_bytes()).unwrap();
        assert_eq!(s.verify_server_final(b"e=invalid-proof"), Err(SaslError::ServerError("invalid-proof".into())));
        for bad in [&b"v=!!!"[..], b"x=1", b"", b"\xff\xfe"] {
            let mut s = ScramSha1::with_nonce("user", "pencil", CNONCE);
            s.client_first();
            s.handle_server_first(SFIRST.as_bytes()).unwrap();
            assert!(s.verify_server_final(bad).is_err(), "{:?}", bad);
        }
    }

    #[test]
    fn hostile_server_first_rejected() {
        type Check = fn(&SaslError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("r=someoneelse123,s=QSXCR+Q6sek8bf92,i=4096", |e| *e == SaslError::NonceMismatch),
            ("r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096", |e| *e == SaslError::NonceMismatch),
            ("r=fyko+d2lbbFgONRv9qkxdawLX,s=QSXCR+Q6sek8bf92,i=0", |e| matches!(e, SaslError::BadIterationCount(_))),
            ("r=fyko+d2lbbFgONRv9qkxdawLX,s=QSXCR+Q6sek8bf92,i=-1", |e| matches!(e, SaslError::BadIterationCount(_))),
            ("r=fyko+d2lbbFgONRv9qkxdawLX,s=QSXCR+Q6sek8bf92,i=4294967295", |e| {
                matches!(e, SaslError::BadIterationCount(_))
            }),
            ("r=fyko+d2lbbFgONRv9qkxdawLX,s=QSXCR+Q6sek8bf92,i=99999999999999", |e| {
                matches!(e, SaslError::BadIterationCount(_))
            }),
            ("r=fyko+d2lbbFgONRv9qkxdawLX,s=not base64!,i=4096", |e| *e == SaslError::BadBase64),
            ("r=fyko+d2lbbFgONRv9qkxdawLX,s=,i=4096", |e| matches!(e, SaslError::Malformed(_))),
            ("m=ext,r=fyko+d2lbbFgONRv9qkxdawLX,s=QSXCR+Q6sek8bf92,i=4096", |e| matches!(e, SaslError::Malformed(_))),
            ("r=fyko+d2lbbFgONRv9qkxdawLX,i=4096", |e| matches!(e, SaslError::Malformed(_))),
            ("s=QSXCR+Q6sek8bf92,r=fyko+d2lbbFgONRv9qkxdawLX,i=4096", |e| matches!(e, SaslError::Malformed(_))),
            ("", |e| matches!(e, SaslError::Malformed(_))),
            ("garbage", |e| matches!(e, SaslError::Malformed(_))),
        ];
        for (msg, ok) in cases {
            let mut s = ScramSha1::with_nonce("user", "pencil", CNONCE);
            s.client_first();
            let e = s.handle_server_first(msg.as_bytes()).unwrap_err();
            assert!(ok(&e), "{:?} gave {:?}", msg, e);
        }
        // Non-UTF-8.
        let mut s = ScramSha1::with_nonce("user", "pencil", CNONCE);
        s.client_first();
        assert!(s.handle_server_first(b"r=\xff").is_err());
        // Server-first before client-first.
        let mut s = ScramSha1::with_nonce("user", "pencil", CNONCE);
        assert!(s.handle_server_first(SFIRST.as_bytes()).is_err());
    }

    #[test]
    fn extensions_after_iterations_are_ignored() {
        let mut s = ScramSha1::with_nonce("user", "pencil", CNONCE);
        s.client_first();
        let msg = format!("{},x=ext", SFIRST);
        assert!(s.handle_server_first(msg.as_bytes()).is_ok());
    }

    #[test]
    fn debug_hides_password() {
        let s = ScramSha1::with_nonce("user", "hunter2", CNONCE);
        assert!(!format!("{:?}", s).contains("hunter2"));
        let c = SaslClient::new(Mechanism::Plain, "user", Some("hunter2"));
        assert!(!format!("{:?}", c).contains("hunter2"));
    }

    #[test]
    fn saslname_escaping() {
        assert_eq!(escape_saslname("a=b,c"), "a=3Db=2Cc");
        let mut s = ScramSha1::with_nonce("fo=c,us", "x", "abc");
        assert_eq!(s.client_first(), "n,,n=fo=3Dc=2Cus,r=abc");
    }

    #[test]
    fn random_nonces_are_printable_and_distinct() {
        let a = random_nonce();
        let b = random_nonce();
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(a.chars().all(|c| c.is_ascii_graphic() && c != ','));
    }

    #[test]
    fn plain_encoding() {
        assert_eq!(plain_response("focus", "s3cr3t"), b"\0focus\0s3cr3t".to_vec());
        assert_eq!(B64.encode(plain_response("focus", "s3cr3t")), "AGZvY3VzAHMzY3IzdA==");
        let mut c = SaslClient::new(Mechanism::Plain, "focus", Some("s3cr3t"));
        assert_eq!(c.initial_response(), Some(b"\0focus\0s3cr3t".to_vec()));
        assert!(c.challenge(b"x").is_err());
        assert!(c.success(None).is_ok());
    }

    #[test]
    fn anonymous_client() {
        let mut c = SaslClient::new(Mechanism::Anonymous, "", None);
        assert_eq!(c.initial_response(), None);
        assert_eq!(c.challenge(b""), Ok(Vec::new()));
        assert!(c.success(Some(b"")).is_ok());
        assert!(c.success(Some(b"junk")).is_err());
    }

    #[test]
    fn scram_client_via_enum() {
        let mut c = SaslClient::Scram(ScramSha1::with_nonce("user", "pencil", CNONCE));
        assert_eq!(c.initial_response().unwrap(), b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL".to_vec());
        c.challenge(SFIRST.as_bytes()).unwrap();
        // Success without the server-final: not acceptable.
        let mut c2 = c.clone();
        assert!(c2.success(None).is_err());
        // server-final in <success>.
        let mut c3 = c.clone();
        assert!(c3.success(Some(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")).is_ok());
        // server-final as a challenge, then an empty <success/>.
        assert_eq!(c.challenge(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=").unwrap(), Vec::<u8>::new());
        assert!(c.success(None).is_ok());
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn choice_rules() {
        let all = names(&["PLAIN", "SCRAM-SHA-1", "ANONYMOUS"]);
        assert_eq!(choose(&all, Some("pw"), false), Ok(Mechanism::ScramSha1));
        assert_eq!(choose(&all, Some("pw"), true), Ok(Mechanism::ScramSha1));
        assert_eq!(choose(&all, None, false), Ok(Mechanism::Anonymous));
        assert_eq!(choose(&names(&["PLAIN"]), Some("pw"), true), Ok(Mechanism::Plain));
        let e = choose(&names(&["PLAIN"]), Some("pw"), false).unwrap_err();
        assert!(e.to_string().contains("clear text"), "{}", e);
        let e = choose(&names(&["DIGEST-MD5"]), Some("pw"), true).unwrap_err();
        assert!(e.to_string().contains("DIGEST-MD5"), "{}", e);
        let e = choose(&names(&["PLAIN", "SCRAM-SHA-1"]), None, true).unwrap_err();
        assert!(e.to_string().contains("ANONYMOUS"), "{}", e);
        assert!(choose(&[], None, true).is_err());
        assert_eq!(choose(&names(&["scram-sha-1"]), Some("pw"), false), Ok(Mechanism::ScramSha1));
    }
}
