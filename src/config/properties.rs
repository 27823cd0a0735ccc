//! `sip-communicator.properties`: Java properties (`key=value`, `key: value` or
//! `key value`; `#` and `!` comments; `\` escapes and line continuations; `\uXXXX`).
//! The 2020-era packages keep Jicofo's settings here; current Jicofo still honours the
//! keys as fallbacks behind `jicofo.conf`.

use super::files::{FileError, Parsed, Setting};

/// Keys and the flags they set (the README's table).
pub const KEYS: &[(&str, &str)] = &[
    ("org.jitsi.jicofo.BRIDGE_MUC", "bridge_muc"),
    ("org.jitsi.jicofo.jibri.BREWERY", "jibri_muc"),
    ("org.jitsi.jicofo.jibri.SIP_BREWERY", "jibri_sip_muc"),
    ("org.jitsi.jicofo.jigasi.BREWERY", "jigasi_muc"),
    ("org.jitsi.jicofo.jibri.PENDING_TIMEOUT", "jibri_pending_timeout"),
    ("org.jitsi.jicofo.NUM_JIBRI_RETRIES", "jibri_num_retries"),
    ("org.jitsi.jicofo.auth.URL", "auth_domain"),
    ("org.jitsi.jicofo.ALWAYS_TRUST_MODE_ENABLED", "tls_insecure"),
    ("org.jitsi.jicofo.XMPP_PORT", "user_port"),
    ("org.jitsi.jicofo.auth.jetty.port", "rest_port"),
    ("org.jitsi.jicofo.auth.jetty.host", "rest_bind"),
    ("org.jitsi.jicofo.DISABLE_AUTO_OWNER", "enable_auto_owner"),
];

/// One logical line (continuations joined) and where it started.
struct Logical {
    text: Vec<(char, usize, usize)>,
}

/// Split into logical lines, dropping comments and blank lines.
fn logical_lines(input: &str) -> Vec<Logical> {
    let mut out = Vec::new();
    let lines: Vec<&str> = input.split('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        let mut text = Vec::new();
        let mut first = true;
        loop {
            let raw = lines[i].strip_suffix('\r').unwrap_or(lines[i]);
            let start = if first { 0 } else { raw.len() - raw.trim_start().len() };
            for (col, (_, c)) in raw.char_indices().enumerate().filter(|(_, (j, _))| *j >= start) {
                text.push((c, i + 1, col + 1));
            }
            first = false;
            // An odd number of trailing backslashes continues the line.
            let trailing = raw.chars().rev().take_while(|c| *c == '\\').count();
            i += 1;
            if trailing % 2 == 1 && i < lines.len() {
                text.pop();
                continue;
            }
            break;
        }
        let lead = text.iter().position(|(c, _, _)| !matches!(c, ' ' | '\t' | '\x0c'));
        match lead {
            None => {}
            Some(p) if matches!(text[p].0, '#' | '!') => {}
            Some(p) => out.push(Logical { text: text.split_off(p) }),
        }
    }
    out
}

/// Unescape `s` (a key or a value); `\uXXXX` must have four hex digits.
fn unescape(s: &[(char, usize, usize)]) -> Result<String, FileError> {
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        let (c, line, col) = s[i];
        i += 1;
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&(e, _, _)) = s.get(i) else { break };
        i += 1;
        match e {
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            'f' => out.push('\x0c'),
            'u' => {
                let hex: String = s.iter().skip(i).take(4).map(|(c, _, _)| *c).collect();
                let ch = (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32)
                    .ok_or_else(|| FileError::at(line, col, "malformed \\uXXXX escape"))?;
                out.push(ch);
                i += 4;
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Every `(key, value, line)` of the file.
pub fn entries(input: &str) -> Result<Vec<(String, String, usize)>, FileError> {
    let mut out = Vec::new();
    for l in logical_lines(input) {
        let t = &l.text;
        let line = t[0].1;
        // The key ends at an unescaped '=', ':' or blank.
        let mut k = 0;
        while k < t.len() {
            match t[k].0 {
                '\\' => k += 2,
                '=' | ':' | ' ' | '\t' | '\x0c' => break,
                _ => k += 1,
            }
        }
        let k = k.min(t.len());
        let mut v = k;
        while v < t.len() && matches!(t[v].0, ' ' | '\t' | '\x0c') {
            v += 1;
        }
        if v < t.len() && matches!(t[v].0, '=' | ':') {
            v += 1;
            while v < t.len() && matches!(t[v].0, ' ' | '\t' | '\x0c') {
                v += 1;
            }
        }
        out.push((unescape(&t[..k])?, unescape(&t[v..])?, line));
    }
    Ok(out)
}

/// The flag values of a `sip-communicator.properties`.
pub fn parse(input: &str) -> Result<Parsed, FileError> {
    let mut out = Parsed::default();
    for (key, value, line) in entries(input)? {
        let value = value.trim().to_string();
        match KEYS.iter().find(|(k, _)| *k == key) {
            Some((_, "auth_domain")) => {
                // XMPP:<domain> is the secure domain, EXT_JWT:<domain> Jicofo's JWT
                // authority; Shibboleth is not supported.
                if let Some(d) = value.strip_prefix("XMPP:") {
                    out.settings.push(Setting::new("auth_domain", d, key));
                } else if let Some(d) = value.strip_prefix("EXT_JWT:") {
                    out.settings.push(Setting::new("jwt_auth_domain", d, key));
                } else {
                    return Err(FileError::at(
                        line,
                        1,
                        format!(
                            "{} = {}: only XMPP:<domain> (a secure domain) and EXT_JWT:<domain> (Jicofo's JWT authority) are supported by this focus",
                            key, value
                        ),
                    ));
                }
            }
            Some((_, "tls_insecure")) => {
                let b = value.eq_ignore_ascii_case("true");
                out.settings.push(Setting::new("tls_insecure", b.to_string(), key));
            }
            Some((_, "enable_auto_owner")) => {
                let disabled = value.eq_ignore_ascii_case("true");
                out.settings.push(Setting::new("enable_auto_owner", (!disabled).to_string(), key));
            }
            Some((_, flag)) => out.settings.push(Setting::new(flag, value, key)),
            None => out.ignored.push(key),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_2020_keys() {
        let text = "org.jitsi.jicofo.BRIDGE_MUC=JvbBrewery@internal.auth.meet.example.com\n\
                    org.jitsi.jicofo.jibri.BREWERY=JibriBrewery@internal.auth.meet.example.com\n\
                    org.jitsi.jicofo.jibri.PENDING_TIMEOUT=90\n\
                    # a comment\n  ! another\n\n\
                    org.jitsi.jicofo.auth.URL=XMPP:meet.example.com\n\
                    org.jitsi.jicofo.ALWAYS_TRUST_MODE_ENABLED=true\n";
        let p = parse(text).unwrap();
        let f: Vec<(&str, &str)> = p.settings.iter().map(|s| (s.flag, s.value.as_str())).collect();
        assert_eq!(
            f,
            vec![
                ("bridge_muc", "JvbBrewery@internal.auth.meet.example.com"),
                ("jibri_muc", "JibriBrewery@internal.auth.meet.example.com"),
                ("jibri_pending_timeout", "90"),
                ("auth_domain", "meet.example.com"),
                ("tls_insecure", "true")
            ]
        );
        assert!(p.ignored.is_empty(), "{:?}", p.ignored);
    }

    #[test]
    fn java_properties_syntax() {
        let e = entries("a = 1\nb:2\nc 3\nd\\=x=4\ne=multi\\\n    line\nf=\\u0041\\t\r\ng=\n").unwrap();
        let kv: Vec<(&str, &str)> = e.iter().map(|(k, v, _)| (k.as_str(), v.as_str())).collect();
        assert_eq!(kv, vec![("a", "1"), ("b", "2"), ("c", "3"), ("d=x", "4"), ("e", "multiline"), ("f", "A\t"), ("g", "")]);
        assert_eq!(e[5].2, 7, "line numbers count physical lines");
        let err = entries("a=1\nb=\\u00g1\n").unwrap_err();
        assert_eq!((err.line, err.col), (2, 3));
        let err = parse("org.jitsi.jicofo.auth.URL=shibboleth:default\n").unwrap_err();
        assert!(err.message.contains("only XMPP") && err.message.contains("EXT_JWT"), "{:?}", err);
        // EXT_JWT:<domain> is Jicofo's JWT authority.
        let p = parse("org.jitsi.jicofo.auth.URL=EXT_JWT:meet.example\n").unwrap();
        let f: Vec<(&str, &str)> = p.settings.iter().map(|s| (s.flag, s.value.as_str())).collect();
        assert_eq!(f, vec![("jwt_auth_domain", "meet.example")]);
        // A trailing backslash on the last line ends nothing.
        assert_eq!(entries("a=1\\").unwrap()[0].1, "1");
    }
}
