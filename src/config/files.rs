//! Jicofo's configuration files as flag values: which files to read, in which order, and
//! what each understood key means as a flag (see the README's table). The parsers of the
//! three formats live beside this file: [`super::hocon`] (`jicofo.conf`), [`super::shell`]
//! (the 2020-era `config`) and [`super::properties`] (`sip-communicator.properties`).
//!
//! Reading is the only I/O here, through a function the caller passes, so tests give
//! files as strings. Later files win over earlier ones; flags and `JICOFO_*` environment
//! variables win over every file (that is decided in [`super::parse`]). Keys that no flag
//! stands for are collected by name and logged once at start as ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the installers keep Jicofo's configuration.
pub const DEFAULT_DIR: &str = "/etc/jitsi/jicofo";
/// Environment variable that replaces [`DEFAULT_DIR`] (tests, unusual hosts).
pub const DIR_ENV: &str = "JICOFO_CONFIG_DIR";
/// Larger files are refused: a configuration file is a few KiB.
pub const MAX_FILE: usize = 1 << 20;

/// The format of a configuration file, from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `jicofo.conf` (HOCON), Jicofo since 2020.
    Hocon,
    /// `config`: shell variable assignments, read by the 2020-era init script.
    Shell,
    /// `sip-communicator.properties` (Java properties), the 2020-era settings.
    Properties,
}

impl Kind {
    /// `*.conf` is HOCON, `*.properties` Java properties, anything else shell variables.
    pub fn of(path: &Path) -> Kind {
        match path.extension().and_then(|e| e.to_str()) {
            Some("conf") => Kind::Hocon,
            Some("properties") => Kind::Properties,
            _ => Kind::Shell,
        }
    }
}

/// One understood key of a file: the flag it sets and the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// Flag name without dashes (`user_port`); switches get "true" or "false".
    pub flag: &'static str,
    /// The value as the flag would take it.
    pub value: String,
    /// The key as written in the file (`jicofo.xmpp.client.port`), for messages.
    pub key: String,
}

impl Setting {
    /// `flag` set to `value` by the file key `key`.
    pub fn new(flag: &'static str, value: impl Into<String>, key: impl Into<String>) -> Setting {
        Setting { flag, value: value.into(), key: key.into() }
    }
}

/// What a parser makes of one file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The understood keys, in file order.
    pub settings: Vec<Setting>,
    /// Keys no flag stands for, by name.
    pub ignored: Vec<String>,
}

/// A syntax error (or a value that cannot be used) at a place in a file. Line and
/// column count from 1; 0 when unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    /// Line of the error, from 1 (0: unknown).
    pub line: usize,
    /// Column of the error, from 1 (0: unknown).
    pub col: usize,
    /// What is wrong, for the operator.
    pub message: String,
}

impl FileError {
    /// An error at `line`, `col` (0, 0 when unknown).
    pub fn at(line: usize, col: usize, message: impl Into<String>) -> FileError {
        FileError { line, col, message: message.into() }
    }

    /// `FILE:LINE:COL: message` (without the position when unknown).
    pub fn in_file(&self, path: &Path) -> String {
        if self.line == 0 {
            format!("{}: {}", path.display(), self.message)
        } else {
            format!("{}:{}:{}: {}", path.display(), self.line, self.col, self.message)
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

/// A file value with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileValue {
    /// The value as the flag would take it.
    pub value: String,
    /// `FILE: KEY`, for messages about a bad value.
    pub origin: String,
}

/// Everything the files said, merged (later files win).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileValues {
    values: BTreeMap<&'static str, FileValue>,
    /// The files read, in order.
    pub read: Vec<PathBuf>,
    /// `FILE: KEY` of every key no flag stands for.
    pub ignored: Vec<String>,
}

impl FileValues {
    /// The value the files give flag `name`.
    pub fn get(&self, name: &str) -> Option<&FileValue> {
        self.values.get(name)
    }

    /// Whether any file was read.
    pub fn any(&self) -> bool {
        !self.read.is_empty()
    }

    fn set(&mut self, flag: &'static str, value: String, origin: String) {
        self.values.insert(flag, FileValue { value, origin });
    }
}

/// The files to read when no `--config` and no `--domain`/`--host` is given: in `dir`,
/// `jicofo.conf` (current installs), else the 2020-era `config`; `sip-communicator.properties`
/// first in both cases (Jicofo still honours its keys as fallbacks, and the Debian
/// installer leaves the brewery there on upgraded hosts). On a current install `config`
/// is not read: the installer copied its credentials into `jicofo.conf`, and a
/// component secret left in it from 2020 would point at a component that no longer is.
pub fn default_files(dir: &Path, exists: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let props = dir.join("sip-communicator.properties");
    if exists(&props) {
        files.push(props);
    }
    let hocon = dir.join("jicofo.conf");
    let shell = dir.join("config");
    if exists(&hocon) {
        files.push(hocon);
    } else if exists(&shell) {
        files.push(shell);
    }
    // sip-communicator.properties alone is not a configuration.
    if files.iter().all(|f| Kind::of(f) == Kind::Properties) {
        files.clear();
    }
    files
}

/// Read and parse `files` in order with `read_file`; the first error is returned as one
/// line naming the file (and line and column for syntax errors).
pub fn read_all(files: &[PathBuf], read_file: impl Fn(&Path) -> std::io::Result<String>) -> Result<FileValues, String> {
    let mut out = FileValues::default();
    for path in files {
        let text = read_file(path).map_err(|e| format!("{}: cannot read: {}", path.display(), e))?;
        if text.len() > MAX_FILE {
            return Err(format!("{}: larger than {} bytes; not a configuration file?", path.display(), MAX_FILE));
        }
        let parsed = match Kind::of(path) {
            Kind::Hocon => super::hocon::parse(&text, path.parent()),
            Kind::Shell => super::shell::parse(&text),
            Kind::Properties => super::properties::parse(&text),
        }
        .map_err(|e| e.in_file(path))?;
        for s in parsed.settings {
            out.set(s.flag, s.value, format!("{}: {}", path.display(), s.key));
        }
        out.ignored.extend(parsed.ignored.into_iter().map(|k| format!("{}: {}", path.display(), k)));
        out.read.push(path.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name() {
        assert_eq!(Kind::of(Path::new("/etc/jitsi/jicofo/jicofo.conf")), Kind::Hocon);
        assert_eq!(Kind::of(Path::new("/etc/jitsi/jicofo/config")), Kind::Shell);
        assert_eq!(Kind::of(Path::new("x/sip-communicator.properties")), Kind::Properties);
    }

    #[test]
    fn default_files_prefer_jicofo_conf() {
        let dir = Path::new("/d");
        let with = |names: &[&str]| {
            let names: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
            default_files(dir, |p| names.iter().any(|n| n == p))
        };
        let all = with(&["jicofo.conf", "config", "sip-communicator.properties"]);
        assert_eq!(all, vec![dir.join("sip-communicator.properties"), dir.join("jicofo.conf")]);
        assert_eq!(with(&["config", "sip-communicator.properties"]), vec![dir.join("sip-communicator.properties"), dir.join("config")]);
        assert_eq!(with(&["config"]), vec![dir.join("config")]);
        assert!(with(&["sip-communicator.properties"]).is_empty());
        assert!(with(&[]).is_empty());
    }

    #[test]
    fn later_files_win_and_errors_name_the_file() {
        let files = vec![PathBuf::from("/d/sip-communicator.properties"), PathBuf::from("/d/jicofo.conf")];
        let read = |p: &Path| -> std::io::Result<String> {
            Ok(if Kind::of(p) == Kind::Properties {
                "org.jitsi.jicofo.BRIDGE_MUC=old@internal.auth.a.test\norg.jitsi.jicofo.SHORT_ID=5\n".into()
            } else {
                "jicofo.bridge.brewery-jid = \"new@internal.auth.a.test\"\n".into()
            })
        };
        let v = read_all(&files, read).unwrap();
        assert_eq!(v.get("bridge_muc").unwrap().value, "new@internal.auth.a.test");
        assert_eq!(v.get("bridge_muc").unwrap().origin, "/d/jicofo.conf: jicofo.bridge.brewery-jid");
        assert_eq!(v.ignored, vec!["/d/sip-communicator.properties: org.jitsi.jicofo.SHORT_ID"]);
        let e = read_all(&[PathBuf::from("/d/jicofo.conf")], |_| Ok("jicofo {\n  a = \"x\n}\n".into())).unwrap_err();
        assert!(e.starts_with("/d/jicofo.conf:2:"), "{}", e);
        let e = read_all(&[PathBuf::from("/d/config")], |_| Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied))).unwrap_err();
        assert!(e.starts_with("/d/config: cannot read"), "{}", e);
        let e = read_all(&[PathBuf::from("/d/config")], |_| Ok("#".repeat(MAX_FILE + 1))).unwrap_err();
        assert!(e.contains("larger than"), "{}", e);
    }

    /// Mutations of the installers' files (and of bytes the three syntaxes care about)
    /// through every parser: each returns a value or an error, never panics or hangs.
    /// Deterministic; `JICOFO_CONFIG_FUZZ_ITERS` runs more (the README's figure: 200 000).
    #[test]
    fn mutated_files_never_panic_any_parser() {
        use rand::{Rng, SeedableRng};
        let seeds: [&str; 4] = [
            include_str!("../../tests/fixtures/config/debian-current/jicofo.conf"),
            include_str!("../../tests/fixtures/config/docker/jicofo.conf"),
            include_str!("../../tests/fixtures/config/debian-2020/config"),
            include_str!("../../tests/fixtures/config/debian-2020/sip-communicator.properties"),
        ];
        let tokens: &[&str] = &[
            "{", "}", "[", "]", "\"", "'", "\"\"\"", "=", ":", ",", "\n", "\\", "\\u", "$", "${", "${?", "}", "#", "//", "/*", "include ",
            "`", "$(", ";", "export ", "+=", ".", "\r", "\t", " ", "\u{feff}", "é", "\u{0}", "9999999999999999999999", "true", "null",
        ];
        let iters: usize = std::env::var("JICOFO_CONFIG_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
        let mut rng = rand::rngs::StdRng::seed_from_u64(15);
        for i in 0..iters {
            let mut text: Vec<char> = seeds[i % seeds.len()].chars().collect();
            for _ in 0..rng.gen_range(1..8) {
                let at = rng.gen_range(0..=text.len());
                match rng.gen_range(0..4) {
                    0 if !text.is_empty() => {
                        let end = (at + rng.gen_range(1..20)).min(text.len());
                        text.drain(at.min(end)..end);
                    }
                    1 => {
                        let t = tokens[rng.gen_range(0..tokens.len())];
                        text.splice(at..at, t.chars());
                    }
                    2 => {
                        let t = tokens[rng.gen_range(0..tokens.len())].repeat(rng.gen_range(1..200));
                        text.splice(at..at, t.chars());
                    }
                    _ => text.insert(at, char::from_u32(rng.gen_range(0..0x250)).unwrap_or('?')),
                }
            }
            let text: String = text.into_iter().collect();
            let _ = super::super::hocon::parse(&text, None);
            let _ = super::super::shell::parse(&text);
            let _ = super::super::properties::parse(&text);
        }
    }
}
