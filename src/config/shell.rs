//! The 2020-era `/etc/jitsi/jicofo/config`: shell variable assignments that the Debian
//! init script sourced and turned into Jicofo's command line. Read without a shell:
//! `NAME=value` lines (optionally `export`ed), values unquoted, 'single-' or
//! "double-quoted" (escapes and `\` line continuations as in sh), `$NAME` / `${NAME}` of a
//! variable assigned earlier in the file, `#` comments. Anything else (commands, `$(…)`,
//! backquotes) is an error with its line and column: this file is data here, not a script.

use std::collections::HashMap;

use super::files::{FileError, Parsed, Setting};

/// Variables and the flags they set (as the init script passed them).
pub const VARS: &[(&str, &str)] = &[
    ("JICOFO_HOST", "host"),
    ("JICOFO_HOSTNAME", "domain"),
    ("JICOFO_PORT", "port"),
    ("JICOFO_SECRET", "secret"),
    ("JICOFO_AUTH_DOMAIN", "user_domain"),
    ("JICOFO_AUTH_USER", "user_name"),
    ("JICOFO_AUTH_PASSWORD", "user_password"),
];

/// Longest value after expansion: `A="$A$A"` lines would otherwise double it each time.
pub const MAX_VALUE: usize = 64 * 1024;

/// `JICOFO_OPTS`: extra command-line flags, split into words.
pub const OPTS: &str = "JICOFO_OPTS";

struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    col: usize,
}

impl Cursor<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }
    fn err(&self, message: impl Into<String>) -> FileError {
        FileError::at(self.line, self.col, message)
    }
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// `$NAME` or `${NAME}` after the `$`: the value of an earlier assignment.
fn expand(cur: &mut Cursor, vars: &HashMap<String, String>) -> Result<String, FileError> {
    // (Errors point at the '$'.)
    let (line, col) = (cur.line, cur.col - 1);
    let braced = cur.peek() == Some('{');
    if braced {
        cur.next();
    }
    match cur.peek() {
        Some('(') => return Err(FileError::at(line, col, "command substitution $(…) is not supported: jicofo reads this file without a shell")),
        Some(c) if is_name_start(c) => {}
        _ => return Err(FileError::at(line, col, "a lone '$': write \\$ or quote it with '…'")),
    }
    let mut name = String::new();
    while let Some(c) = cur.peek().filter(|c| is_name_char(*c)) {
        name.push(c);
        cur.next();
    }
    if braced && cur.next() != Some('}') {
        return Err(cur.err("unterminated ${…} (only ${NAME} is supported)"));
    }
    vars.get(&name)
        .cloned()
        .ok_or_else(|| FileError::at(line, col, format!("${} is not assigned earlier in this file", name)))
}

/// One value, up to unquoted whitespace, `#`, `;` or the end of the line.
fn value(cur: &mut Cursor, vars: &HashMap<String, String>) -> Result<String, FileError> {
    let mut out = String::new();
    loop {
        match cur.peek() {
            None | Some('\n') | Some(' ') | Some('\t') | Some('\r') => return Ok(out),
            Some(';') | Some('&') | Some('|') | Some('<') | Some('>') | Some('(') | Some(')') => {
                return Err(cur.err("only NAME=value lines are understood (no commands)"));
            }
            Some('`') => return Err(cur.err("command substitution `…` is not supported: jicofo reads this file without a shell")),
            Some('\'') => {
                let (l, c) = (cur.line, cur.col);
                cur.next();
                loop {
                    match cur.next() {
                        None => return Err(FileError::at(l, c, "unterminated '…' string")),
                        Some('\'') => break,
                        Some(ch) => out.push(ch),
                    }
                }
            }
            Some('"') => {
                let (l, c) = (cur.line, cur.col);
                cur.next();
                loop {
                    match cur.peek() {
                        None => return Err(FileError::at(l, c, "unterminated \"…\" string")),
                        Some('"') => {
                            cur.next();
                            break;
                        }
                        Some('\\') => {
                            cur.next();
                            match cur.next() {
                                Some('\n') => {}
                                Some(ch @ ('"' | '\\' | '$' | '`')) => out.push(ch),
                                Some(ch) => {
                                    out.push('\\');
                                    out.push(ch);
                                }
                                None => return Err(FileError::at(l, c, "unterminated \"…\" string")),
                            }
                        }
                        Some('$') => {
                            cur.next();
                            out.push_str(&expand(cur, vars)?);
                            if out.len() > MAX_VALUE {
                                return Err(cur.err(format!("value longer than {} bytes", MAX_VALUE)));
                            }
                        }
                        Some('`') => return Err(cur.err("command substitution `…` is not supported: jicofo reads this file without a shell")),
                        Some(ch) => {
                            cur.next();
                            out.push(ch);
                        }
                    }
                }
            }
            Some('\\') => {
                cur.next();
                match cur.next() {
                    Some('\n') | None => {}
                    Some(ch) => out.push(ch),
                }
            }
            Some('$') => {
                cur.next();
                out.push_str(&expand(cur, vars)?);
                if out.len() > MAX_VALUE {
                    return Err(cur.err(format!("value longer than {} bytes", MAX_VALUE)));
                }
            }
            Some(ch) => {
                cur.next();
                out.push(ch);
            }
        }
    }
}

/// Skip blanks; then a comment or the end of the line must follow.
fn end_of_line(cur: &mut Cursor) -> Result<(), FileError> {
    while matches!(cur.peek(), Some(' ') | Some('\t') | Some('\r')) {
        cur.next();
    }
    match cur.peek() {
        None => Ok(()),
        Some('\n') => {
            cur.next();
            Ok(())
        }
        Some('#') => {
            while cur.peek().is_some_and(|c| c != '\n') {
                cur.next();
            }
            cur.next();
            Ok(())
        }
        Some(_) => Err(cur.err("only one NAME=value per line is understood")),
    }
}

/// Every assignment of the file, in order, with variables expanded.
pub fn assignments(input: &str) -> Result<Vec<(String, String, usize)>, FileError> {
    let mut cur = Cursor { chars: input.chars().peekable(), line: 1, col: 1 };
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    loop {
        while matches!(cur.peek(), Some(' ') | Some('\t') | Some('\r')) {
            cur.next();
        }
        match cur.peek() {
            None => return Ok(out),
            Some('\n') | Some('#') => {
                end_of_line(&mut cur)?;
                continue;
            }
            _ => {}
        }
        let line = cur.line;
        let mut name = String::new();
        while let Some(c) = cur.peek().filter(|c| is_name_char(*c)) {
            name.push(c);
            cur.next();
        }
        if name == "export" && matches!(cur.peek(), Some(' ') | Some('\t')) {
            while matches!(cur.peek(), Some(' ') | Some('\t')) {
                cur.next();
            }
            name.clear();
            while let Some(c) = cur.peek().filter(|c| is_name_char(*c)) {
                name.push(c);
                cur.next();
            }
        }
        if name.is_empty() || !name.starts_with(is_name_start) || cur.peek() != Some('=') {
            return Err(cur.err("expected NAME=value"));
        }
        cur.next();
        let v = value(&mut cur, &vars)?;
        end_of_line(&mut cur)?;
        vars.insert(name.clone(), v.clone());
        out.push((name, v, line));
    }
}

/// Split `JICOFO_OPTS` into words (quotes were already removed by the assignment, so
/// words are separated by blanks) and turn `--name=value` / `-name=value` / `--switch`
/// into settings.
fn opts(value: &str, line: usize) -> Result<Vec<Setting>, FileError> {
    let mut out = Vec::new();
    for word in value.split_whitespace() {
        let flag = word.trim_start_matches('-');
        let (name, v) = match flag.split_once('=') {
            Some((n, v)) => (n, v.to_string()),
            None => (flag, "true".to_string()),
        };
        let known = super::FLAGS.iter().find(|(n, _, _)| *n == name && !matches!(*n, "config" | "check" | "help" | "version"));
        match known {
            Some((n, hint, _)) if word.starts_with('-') && (hint.is_empty() == !flag.contains('=')) => {
                out.push(Setting::new(n, v, format!("{} {}", OPTS, word.split('=').next().unwrap_or(word))));
            }
            _ => return Err(FileError::at(line, 1, format!("{}: '{}' is not a jicofo flag (see --help)", OPTS, word))),
        }
    }
    Ok(out)
}

/// The flag values of a 2020-era `config` file.
pub fn parse(input: &str) -> Result<Parsed, FileError> {
    let mut out = Parsed::default();
    for (name, value, line) in assignments(input)? {
        if let Some((_, flag)) = VARS.iter().find(|(n, _)| *n == name) {
            out.settings.push(Setting::new(flag, value, name));
        } else if name == OPTS {
            out.settings.extend(opts(&value, line)?);
        } else {
            out.ignored.push(name);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_2020_installer_wrote() {
        let text = "# Jitsi Conference Focus settings\n# sets the host name of the XMPP server\nJICOFO_HOST=localhost\n\n\
                    # sets the XMPP domain (default: none)\nJICOFO_HOSTNAME=meet.example.com\n\n\
                    JICOFO_SECRET=Xy9#kL2q\nJICOFO_PORT=5347\nJICOFO_AUTH_DOMAIN=auth.meet.example.com\n\
                    JICOFO_AUTH_USER=focus\nJICOFO_AUTH_PASSWORD=aB3@dE6#\n\
                    # extra options to pass to the jicofo daemon\nJICOFO_OPTS=\"\"\n\
                    JAVA_SYS_PROPS=\"-Dnet.java.sip.communicator.SC_HOME_DIR_LOCATION=/etc/jitsi -Dnet.java.sip.communicator.SC_HOME_DIR_NAME=jicofo\"\n";
        let p = parse(text).unwrap();
        let f: Vec<(&str, &str)> = p.settings.iter().map(|s| (s.flag, s.value.as_str())).collect();
        assert_eq!(
            f,
            vec![
                ("host", "localhost"),
                ("domain", "meet.example.com"),
                ("secret", "Xy9#kL2q"),
                ("port", "5347"),
                ("user_domain", "auth.meet.example.com"),
                ("user_name", "focus"),
                ("user_password", "aB3@dE6#"),
            ]
        );
        assert_eq!(p.ignored, vec!["JAVA_SYS_PROPS"]);
    }

    #[test]
    fn quoting_expansion_and_opts() {
        let text = "export D='meet.test'\nJICOFO_HOSTNAME=\"$D\"\nJICOFO_AUTH_DOMAIN=auth.${D} # comment\n\
                    JICOFO_AUTH_PASSWORD=\"a \\\"b\\\" \\$c\"\nJICOFO_OPTS=\"--rest_port=9999 --tls_insecure\"\nX=\"two\\\nlines\"\n";
        let p = parse(text).unwrap();
        let get = |flag: &str| p.settings.iter().find(|s| s.flag == flag).map(|s| s.value.clone());
        assert_eq!(get("domain").as_deref(), Some("meet.test"));
        assert_eq!(get("user_domain").as_deref(), Some("auth.meet.test"));
        assert_eq!(get("user_password").as_deref(), Some("a \"b\" $c"));
        assert_eq!(get("rest_port").as_deref(), Some("9999"));
        assert_eq!(get("tls_insecure").as_deref(), Some("true"));
        assert_eq!(p.ignored, vec!["D", "X"]);
    }

    #[test]
    fn scripts_are_refused_with_line_and_column() {
        for (text, line, col) in [
            ("A=1\nJICOFO_SECRET=$(cat /x)\n", 2, 15),
            ("A=1\n\nif true; then\n", 3, 3),
            ("A=`id`\n", 1, 3),
            ("A=\"open\n\nB=1\n", 1, 3),
            ("A=1 B=2\n", 1, 5),
            ("A=$NOPE\n", 1, 3),
            ("A=1; rm -rf /\n", 1, 4),
            ("JICOFO_OPTS=\"--bogus=1\"\n", 1, 1),
            ("JICOFO_OPTS=\"--port\"\n", 1, 1),
            (&format!("A=xxxxxxxx\n{}", "A=\"$A$A\"\n".repeat(40)), 15, 8),
        ] {
            let e = parse(text).unwrap_err();
            let text = text.get(..60).unwrap_or(text);
            assert_eq!((e.line, e.col), (line, col), "{:?}: {}", text, e.message);
        }
    }
}
