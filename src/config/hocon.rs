//! `jicofo.conf` (HOCON) as flag values, parsed with the `hocon-parser` crate.
//!
//! Why that crate: the files the installers write use comments (`#`, `//`), nested objects
//! with `=` or `:` and braces (`jicofo { xmpp: { client: { … } } }`), dotted path keys,
//! quoted and unquoted strings (`type = JWT`), quoted numbers (`port = "5222"`), booleans and
//! arrays (`trusted-domains = [ "recorder.example.com" ]`), and hand-edited hosts may
//! merge objects or use substitutions. `hocon-parser` (1.14, maintained, one dependency:
//! indexmap) implements all of HOCON, reports syntax errors with line and column, and
//! refuses documents nested deeper than 128 levels instead of exhausting the stack. The
//! older `hocon` crate (0.9, 2022) reports no positions, pulls nom 4 and, by default,
//! an HTTP client for URL includes.
//!
//! Substitutions resolve against the file itself only, not the environment (jicofo's
//! environment variables are read as such, see the README). A guard (`guard`) refuses
//! first what the crate handles badly (long dotted paths, self-growing substitutions) and
//! `include`, whose file would escape that guard.

use std::collections::HashMap;
use std::path::Path;

use hocon::{HoconError, HoconValue, ParseOptions};

use super::files::{FileError, Parsed, Setting};

/// `jicofo.conf` keys and the flags they set (the README's table).
pub const KEYS: &[(&str, &str)] = &[
    ("jicofo.xmpp.client.hostname", "host"),
    ("jicofo.xmpp.client.port", "user_port"),
    ("jicofo.xmpp.client.domain", "user_domain"),
    ("jicofo.xmpp.client.xmpp-domain", "domain"),
    ("jicofo.xmpp.client.username", "user_name"),
    ("jicofo.xmpp.client.password", "user_password"),
    ("jicofo.xmpp.client.client-proxy", "client_proxy"),
    ("jicofo.xmpp.client.conference-muc-jid", "conference_muc"),
    ("jicofo.xmpp.client.disable-certificate-verification", "tls_insecure"),
    ("jicofo.bridge.brewery-jid", "bridge_muc"),
    ("jicofo.jibri.brewery-jid", "jibri_muc"),
    ("jicofo.jibri-sip.brewery-jid", "jibri_sip_muc"),
    ("jicofo.jigasi.brewery-jid", "jigasi_muc"),
    ("jicofo.jibri.num-retries", "jibri_num_retries"),
    ("jicofo.rest.port", "rest_port"),
    ("jicofo.rest.host", "rest_bind"),
    ("jicofo.conference.enable-auto-owner", "enable_auto_owner"),
    ("jicofo.conference.enable-ice-restart", "enable_ice_restart"),
];

/// Flags whose keys hold booleans.
const BOOL_FLAGS: &[&str] = &["tls_insecure", "enable_auto_owner", "enable_ice_restart"];

/// Keys read with a meaning of their own (see [`parse`]).
const SPECIAL: &[&str] = &[
    "jicofo.xmpp.client.enabled",
    "jicofo.rest.enabled",
    "jicofo.authentication.enabled",
    "jicofo.authentication.type",
    "jicofo.authentication.login-url",
];

/// Every leaf (scalar or array) of `v` with its dotted path.
fn leaves<'a>(prefix: &str, v: &'a HoconValue, out: &mut Vec<(String, &'a HoconValue)>, depth: usize) {
    match v.as_object() {
        // (The parser refuses documents nested past 128 levels; this walk follows them.)
        Some(map) if depth < 256 => {
            for (k, child) in map {
                let key = if k.contains('.') || k.is_empty() { format!("\"{}\"", k) } else { k.clone() };
                let path = if prefix.is_empty() { key } else { format!("{}.{}", prefix, key) };
                leaves(&path, child, out, depth + 1);
            }
        }
        _ => out.push((prefix.to_string(), v)),
    }
}

/// A scalar as text (numbers and booleans included); `None` for arrays, objects, null.
fn text(v: &HoconValue) -> Option<String> {
    match v {
        HoconValue::Scalar(s) if !v.is_null() => Some(s.raw.clone()),
        _ => None,
    }
}

fn error_of(e: HoconError) -> FileError {
    match e {
        HoconError::Parse(p) => FileError::at(p.line, p.col, p.message),
        HoconError::Resolve(r) => FileError::at(r.line, r.col, format!("{} ({})", r.message, r.path)),
        other => FileError::at(0, 0, other.to_string()),
    }
}

/// Largest `jicofo.conf` accepted: the installers' files are under 8 KiB, Jicofo's whole
/// `reference.conf` is 21 KiB.
pub const MAX_HOCON: usize = 64 * 1024;
/// Most keys in one dotted path (`jicofo.xmpp.client.port` has 4).
pub const MAX_PATH_KEYS: usize = 32;

/// Most substitutions (`${…}`) and `+=` in one file (the installers write none; Jicofo's
/// `reference.conf` has two).
pub const MAX_SUBSTITUTIONS: usize = 16;

/// Refuse what the parser handles badly before it sees it (found by the pathological inputs
/// of `hostile_documents_are_refused_or_parsed_in_bounds`): a dotted path of thousands of
/// keys makes `hocon-parser` 1.14 use memory quadratic in their number (300 000 keys: over
/// 20 GB); self-referencing substitutions and `+=` grow without bound (`a = ${a}${a}` forty
/// times: gigabytes in seconds) or take seconds each. So: paths of at most
/// [`MAX_PATH_KEYS`] keys, at most [`MAX_SUBSTITUTIONS`] substitutions and `+=`, and no
/// `include` (its file would escape these checks; pass it with another `--config`).
/// Quoted strings and comments are skipped; a "word" lies between blanks and separators.
fn guard(input: &str) -> Result<(), FileError> {
    if input.len() > MAX_HOCON {
        return Err(FileError::at(0, 0, format!("larger than {} bytes; not a jicofo.conf?", MAX_HOCON)));
    }
    let (mut line, mut col) = (1usize, 0usize);
    let (mut dots, mut start) = (0usize, (1usize, 1usize));
    let mut chars = input.chars().peekable();
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut substitutions = 0usize;
    let mut word = String::new();
    let mut word_at = (1usize, 1usize);
    let mut previous = ' ';
    while let Some(c) = chars.next() {
        col += 1;
        if c == '\n' {
            line += 1;
            col = 0;
            comment = false;
            quote = None;
            dots = 0;
            continue;
        }
        if comment {
            continue;
        }
        let separator = c.is_whitespace() || "{}[],:=+\"#".contains(c);
        if quote.is_none() {
            if separator {
                if word == "include" {
                    return Err(FileError::at(word_at.0, word_at.1, "include is not supported: pass the included file with another --config"));
                }
                word.clear();
            } else {
                if word.is_empty() {
                    word_at = (line, col);
                }
                if word.len() < 16 {
                    word.push(c);
                }
            }
            let counted = (c == '{' && previous == '$') || (c == '=' && previous == '+');
            previous = c;
            if counted {
                substitutions += 1;
                if substitutions > MAX_SUBSTITUTIONS {
                    return Err(FileError::at(line, col - 1, format!("more than {} substitutions (${{…}}) and += in one file", MAX_SUBSTITUTIONS)));
                }
            }
        }
        if let Some(q) = quote {
            if c == '\\' {
                chars.next();
                col += 1;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' => quote = Some('"'),
            '#' => comment = true,
            '/' if chars.peek() == Some(&'/') => comment = true,
            '.' => {
                if dots == 0 {
                    start = (line, col);
                }
                dots += 1;
                if dots >= MAX_PATH_KEYS {
                    return Err(FileError::at(start.0, start.1, format!("a path of more than {} keys", MAX_PATH_KEYS)));
                }
            }
            c if c.is_whitespace() || "{}[],:=+$".contains(c) => dots = 0,
            _ => {}
        }
    }
    Ok(())
}

/// The flag values of a `jicofo.conf`; `dir` is where includes are looked up.
pub fn parse(input: &str, dir: Option<&Path>) -> Result<Parsed, FileError> {
    guard(input)?;
    let mut opts = ParseOptions::defaults().with_env(HashMap::new());
    if let Some(d) = dir {
        opts = opts.with_base_dir(d.to_path_buf());
    }
    let cfg = hocon::parse_string_with_options(input, opts).map_err(error_of)?;
    let mut all = Vec::new();
    for k in cfg.keys() {
        if let Some(v) = cfg.get(k) {
            let key = if k.contains('.') { format!("\"{}\"", k) } else { k.to_string() };
            leaves(&key, v, &mut all, 0);
        }
    }
    let value_of = |key: &str| all.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
    let bool_of = |key: &str| -> Result<Option<bool>, FileError> {
        match value_of(key) {
            None => Ok(None),
            Some(v) => v.as_bool().map(Some).ok_or_else(|| FileError::at(0, 0, format!("{}: not a boolean", key))),
        }
    };
    let mut out = Parsed::default();
    for (key, v) in &all {
        if let Some((_, flag)) = KEYS.iter().find(|(k, _)| k == key) {
            let value = text(v).ok_or_else(|| FileError::at(0, 0, format!("{}: expected a single value", key)))?;
            if BOOL_FLAGS.contains(flag) {
                let b = v.as_bool().ok_or_else(|| FileError::at(0, 0, format!("{}: not a boolean", key)))?;
                out.settings.push(Setting::new(flag, b.to_string(), key.clone()));
            } else {
                out.settings.push(Setting::new(flag, value, key.clone()));
            }
        } else if !SPECIAL.contains(&key.as_str()) {
            out.ignored.push(key.clone());
        }
    }
    if bool_of("jicofo.xmpp.client.enabled")? == Some(false) {
        return Err(FileError::at(0, 0, "jicofo.xmpp.client.enabled = false: this focus always uses the client connection"));
    }
    if bool_of("jicofo.rest.enabled")? == Some(false) {
        out.settings.push(Setting::new("rest_port", "0", "jicofo.rest.enabled"));
    }
    // Authentication: Jicofo's enabled=false is type NONE; XMPP is the secure domain, JWT
    // Jicofo's JWT authority (token setup C); login-url is the domain either way.
    if bool_of("jicofo.authentication.enabled")? == Some(true) {
        let typ = value_of("jicofo.authentication.type").and_then(text).unwrap_or_else(|| "NONE".into());
        let flag = match typ.to_ascii_uppercase().as_str() {
            "XMPP" => Some("auth_domain"),
            "JWT" => Some("jwt_auth_domain"),
            "NONE" => None,
            other => {
                return Err(FileError::at(
                    0,
                    0,
                    format!(
                        "jicofo.authentication.type = {}: only XMPP (a secure domain) and JWT (Jicofo's JWT authority) are supported by this focus",
                        other
                    ),
                ))
            }
        };
        if let Some(flag) = flag {
            let url = value_of("jicofo.authentication.login-url").and_then(text).ok_or_else(|| {
                FileError::at(0, 0, format!("jicofo.authentication.type = {} needs login-url (the domain users log in on)", typ))
            })?;
            out.settings.push(Setting::new(flag, url, "jicofo.authentication.login-url"));
        }
    } else {
        for k in ["jicofo.authentication.type", "jicofo.authentication.login-url"] {
            if value_of(k).is_some() {
                out.ignored.push(format!("{} (authentication is not enabled)", k));
            }
        }
    }
    // No xmpp-domain (the docker image's file of 2021 has none): the client-proxy's parent.
    let has = |flag: &str| out.settings.iter().any(|s| s.flag == flag);
    if !has("domain") {
        let parent = out.settings.iter().find(|s| s.flag == "client_proxy").and_then(|s| s.value.split_once('.')).map(|(_, d)| d.to_string());
        if let Some(d) = parent.filter(|d| !d.is_empty()) {
            out.settings.push(Setting::new("domain", d, "jicofo.xmpp.client.client-proxy (its parent domain; no xmpp-domain)"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(p: &Parsed) -> Vec<(&str, &str)> {
        p.settings.iter().map(|s| (s.flag, s.value.as_str())).collect()
    }

    #[test]
    fn the_shapes_installers_write() {
        let text = r#"# Jicofo HOCON configuration. See reference.conf in /usr/share/jicofo/jicofo.jar for
#available options, syntax, and default values.
jicofo {
  xmpp: {
    client: {
      client-proxy: "focus.meet.example.com"
      xmpp-domain: "meet.example.com"
      domain: "auth.meet.example.com"
      username: "focus"
      password: "s3cr3t"
      port = "5222"
      disable-certificate-verification = true
    }
    trusted-domains: [ "recorder.meet.example.com" ]
  }
  bridge: {
    brewery-jid: "JvbBrewery@internal.auth.meet.example.com"
  }
  // docker style
  authentication {
    enabled = true
    type = XMPP
    login-url = meet.example.com
  }
  octo { enabled = false }
}
jicofo.rest.port = 8889
"#;
        let p = parse(text, None).unwrap();
        let f = flags(&p);
        for want in [
            ("client_proxy", "focus.meet.example.com"),
            ("domain", "meet.example.com"),
            ("user_domain", "auth.meet.example.com"),
            ("user_name", "focus"),
            ("user_password", "s3cr3t"),
            ("user_port", "5222"),
            ("tls_insecure", "true"),
            ("bridge_muc", "JvbBrewery@internal.auth.meet.example.com"),
            ("auth_domain", "meet.example.com"),
            ("rest_port", "8889"),
        ] {
            assert!(f.contains(&want), "{:?} not in {:?}", want, f);
        }
        assert_eq!(p.ignored, vec!["jicofo.xmpp.trusted-domains", "jicofo.octo.enabled"]);
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let e = parse("jicofo {\n  xmpp {\n    client { port = \"5222 }\n  }\n}\n", None).unwrap_err();
        assert_eq!(e.line, 3, "{:?}", e);
        assert!(e.col > 0);
        let e = parse("jicofo {\n  a = 1\n", None).unwrap_err();
        assert!(e.line >= 2, "{:?}", e);
        let e = parse("jicofo.a = ${HOME}\n", None).unwrap_err();
        assert_eq!((e.line, e.col > 0), (1, true), "environment substitutions are not resolved: {:?}", e);
        let deep = format!("a = {}", "[".repeat(10_000));
        assert!(parse(&deep, None).is_err());
        // Paths of absurd length are refused before the parser (whose memory would grow with
        // their square); dots in quoted strings and comments do not count.
        let long = format!("jicofo {{\n  {}= 1\n}}", "a.".repeat(40));
        let e = parse(&long, None).unwrap_err();
        assert_eq!((e.line, e.col), (2, 4), "{:?}", e);
        let dotted_values = format!("a = \"{}\" # {}\nb = 1 // {}\n", "x.".repeat(100), "y.".repeat(100), "z.".repeat(100));
        assert!(parse(&dotted_values, None).is_ok());
        assert!(parse(&"#".repeat(MAX_HOCON + 1), None).unwrap_err().message.contains("larger than"));
    }

    #[test]
    fn hostile_documents_are_refused_or_parsed_in_bounds() {
        // Each of these took the parser gigabytes or many seconds before the guard.
        let doubling = format!("a = \"x\"\n{}", "a = ${a}${a}\n".repeat(40));
        let e = parse(&doubling, None).unwrap_err();
        assert_eq!((e.line, e.col), (10, 5), "the 17th: {:?}", e);
        assert!(parse(&"a += 1\n".repeat(5_000), None).unwrap_err().message.contains("+="));
        assert!(parse(&format!("a = {{}}\n{}", "a = ${a}{x = 1}\n".repeat(5_000)), None).is_err());
        let e = parse("jicofo {\n  include \"other.conf\"\n}\n", None).unwrap_err();
        assert_eq!((e.line, e.col), (2, 3), "{:?}", e);
        // Reference.conf's own use stays possible.
        let p = parse("jicofo.xmpp.client { username = \"focus\", resource = ${jicofo.xmpp.client.username} }", None).unwrap();
        assert_eq!(p.ignored, vec!["jicofo.xmpp.client.resource"]);
        // Quoted "include" and "${" are just text.
        assert!(parse("jicofo.a = \"include ${x} a+=b\"", None).is_ok());
    }

    #[test]
    fn unsupported_values_are_refused_with_the_key() {
        let e = parse("jicofo.authentication { enabled = true, type = SHIBBOLETH, login-url = x.test }", None).unwrap_err();
        assert!(e.message.contains("SHIBBOLETH") && e.message.contains("JWT"), "{:?}", e);
        let e = parse("jicofo.authentication { enabled = true, type = JWT }", None).unwrap_err();
        assert!(e.message.contains("login-url"), "{:?}", e);
        let e = parse("jicofo.xmpp.client.enabled = false", None).unwrap_err();
        assert!(e.message.starts_with("jicofo.xmpp.client.enabled"), "{:?}", e);
        let e = parse("jicofo.xmpp.client.port = [1, 2]", None).unwrap_err();
        assert!(e.message.starts_with("jicofo.xmpp.client.port"), "{:?}", e);
        let p = parse("jicofo.rest.enabled = false\njicofo.authentication.type = XMPP", None).unwrap();
        assert_eq!(flags(&p), vec![("rest_port", "0")]);
        assert_eq!(p.ignored, vec!["jicofo.authentication.type (authentication is not enabled)"]);
    }

    #[test]
    fn jwt_authentication_is_jicofos_jwt_authority() {
        let p = parse("jicofo.authentication {\n  enabled = true\n  type = JWT\n  login-url = \"meet.example\"\n}", None).unwrap();
        assert_eq!(flags(&p), vec![("jwt_auth_domain", "meet.example")]);
        let p = parse("jicofo.authentication { enabled = true, type = xmpp, login-url = meet.example }", None).unwrap();
        assert_eq!(flags(&p), vec![("auth_domain", "meet.example")]);
    }

    #[test]
    fn without_xmpp_domain_the_domain_is_the_proxy_parent() {
        let p = parse("jicofo.xmpp.client { client-proxy = \"focus.meet.jitsi\", domain = \"auth.meet.jitsi\" }", None).unwrap();
        assert!(flags(&p).contains(&("domain", "meet.jitsi")), "{:?}", p);
    }
}
