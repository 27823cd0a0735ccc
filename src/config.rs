//! The command line: raw arguments and environment in, a validated [`Config`] out.
//!
//! Flags keep the seed-era Jicofo names and defaults (`--domain`, `--host`, `--port`,
//! `--subdomain`, `--secret`, `--user_domain`, `--user_name`, `--user_password`), in
//! `--name=value`, `--name value` or `-name=value` form. Secrets may come from the
//! environment (`JICOFO_SECRET`, `JICOFO_AUTH_PASSWORD`) so they never show in `ps`;
//! a flag wins over the environment. Everything is checked here, once: the rest of
//! the program never sees an unchecked value.
//!
//! Two modes ([`Mode`]): with a component secret the focus connects as the
//! `focus.<domain>` component and as the focus user (the seed's layout); without one it
//! connects only as the focus user and serves conference requests that a `client_proxy`
//! component (`--client_proxy`, default `focus.<domain>`) forwards to it, the layout
//! Jitsi's installers have used since 2021.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

pub mod features;
pub mod files;
pub mod hocon;
pub mod limits;
pub mod properties;
pub mod shell;

use crate::jid::Jid;
use features::{Authority, AuthorityKind};
use limits::Limits;

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    /// Run the focus.
    Run(Config),
    /// Check the deployment and exit.
    Check(Config),
    /// Print this text and exit 0 (`--help`, `--version`).
    Print(String),
}

/// A validated configuration. `Debug` never shows the secret or the password.
#[derive(Clone)]
pub struct Config {
    /// XMPP domain (`meet.test`).
    pub domain: String,
    /// Host of Prosody, for both connections.
    pub host: String,
    /// Component (XEP-0114) port.
    pub component_port: u16,
    /// Component sub-domain (`focus`).
    pub subdomain: String,
    /// Component secret; `None`: client-only mode (no component connection).
    pub secret: Option<String>,
    /// The `client_proxy` component trusted to name the real sender of a forwarded
    /// request in the resource of its `from` (`focus.<domain>`).
    pub client_proxy: String,
    /// Domain the focus user logs into (`auth.meet.test`).
    pub user_domain: String,
    /// Focus user name, also its MUC nick (`focus`).
    pub user_name: String,
    /// Focus user password; `None` means SASL ANONYMOUS.
    pub user_password: Option<String>,
    /// Client-to-server port.
    pub user_port: u16,
    /// Extra certificate (or CA) to trust for STARTTLS.
    pub tls_ca_file: Option<PathBuf>,
    /// Skip certificate verification entirely.
    pub tls_insecure: bool,
    /// The bridge brewery MUC room.
    pub bridge_muc: Jid,
    /// The MUC service of conference rooms (`conference.<domain>`): the only service
    /// the focus creates conferences on.
    pub conference_muc: String,
    /// The Jibri (recorder) brewery; `None`: recording and live streaming are off.
    pub jibri_muc: Option<Jid>,
    /// The SIP Jibri brewery; `None` (the default): the SIP video gateway is off.
    pub jibri_sip_muc: Option<Jid>,
    /// The Jigasi brewery; `None`: dial-out and transcription are off.
    pub jigasi_muc: Option<Jid>,
    /// Domains whose members are recognised as Jibri/Jigasi/transcriber by their
    /// presence features (`recorder.<domain>`).
    pub trusted_domains: Vec<String>,
    /// Jibri pending timeout and retries.
    pub jibri_session: features::JibriSessionSettings,
    /// Jicofo's authentication authority (`--auth_domain`: the secure domain;
    /// `--jwt_auth_domain`: the JWT authority of token setup C), if any.
    pub authority: Option<Authority>,
    /// `--enable_auto_owner`, `--enable_ice_restart`.
    pub moderation: features::ModerationSettings,
    /// REST API port; 0 turns the API off.
    pub rest_port: u16,
    /// REST API bind address.
    pub rest_bind: IpAddr,
    /// Limits against hostile input (conferences, new rooms, participants, waiting requests).
    pub limits: Limits,
    /// The configuration files read, and the keys in them no flag stands for.
    pub sources: Sources,
}

/// Where the configuration came from besides flags and the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    /// Configuration files read, in order (later ones win).
    pub files: Vec<PathBuf>,
    /// `FILE: KEY` of each key that no flag stands for (logged once at start).
    pub ignored: Vec<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let Config {
            domain,
            host,
            component_port,
            subdomain,
            secret,
            client_proxy,
            user_domain,
            user_name,
            user_password,
            user_port,
            tls_ca_file,
            tls_insecure,
            bridge_muc,
            conference_muc,
            jibri_muc,
            jibri_sip_muc,
            jigasi_muc,
            trusted_domains,
            jibri_session,
            authority,
            moderation,
            rest_port,
            rest_bind,
            limits,
            sources,
        } = self;
        f.debug_struct("Config")
            .field("domain", domain)
            .field("host", host)
            .field("component_port", component_port)
            .field("subdomain", subdomain)
            .field("secret", &secret.as_ref().map(|_| "<redacted>"))
            .field("client_proxy", client_proxy)
            .field("user_domain", user_domain)
            .field("user_name", user_name)
            .field("user_password", &user_password.as_ref().map(|_| "<redacted>"))
            .field("user_port", user_port)
            .field("tls_ca_file", tls_ca_file)
            .field("tls_insecure", tls_insecure)
            .field("bridge_muc", bridge_muc)
            .field("conference_muc", conference_muc)
            .field("jibri_muc", jibri_muc)
            .field("jibri_sip_muc", jibri_sip_muc)
            .field("jigasi_muc", jigasi_muc)
            .field("trusted_domains", trusted_domains)
            .field("jibri_session", jibri_session)
            .field("authority", authority)
            .field("moderation", moderation)
            .field("rest_port", rest_port)
            .field("rest_bind", rest_bind)
            .field("limits", limits)
            .field("sources", sources)
            .finish()
    }
}

/// How the focus reaches Prosody.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The seed's layout: the `focus.<domain>` component (secret) and the focus user.
    ComponentAndClient,
    /// No component secret: only the focus user; conference requests arrive through
    /// a `client_proxy` component.
    ClientOnly,
}

impl Config {
    /// Which connections the focus makes.
    pub fn mode(&self) -> Mode {
        if self.secret.is_some() {
            Mode::ComponentAndClient
        } else {
            Mode::ClientOnly
        }
    }

    /// The component JID, `focus.<domain>`.
    pub fn component_jid(&self) -> String {
        format!("{}.{}", self.subdomain, self.domain)
    }

    /// The focus user's bare JID, `focus@auth.<domain>`.
    pub fn focus_bare_jid(&self) -> String {
        format!("{}@{}", self.user_name, self.user_domain)
    }
}

/// A command-line mistake: one line for the operator, exit status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Every flag: name, value hint ("" for a switch), help text.
pub(crate) const FLAGS: &[(&str, &str, &str)] = &[
    ("domain", "DOMAIN", "XMPP domain of the deployment (example: meet.example.com)"),
    ("host", "HOST", "Prosody host for both connections (default: the domain, else localhost)"),
    ("port", "PORT", "component (XEP-0114) port (default 5347)"),
    ("subdomain", "NAME", "component sub-domain (default focus)"),
    ("secret", "SECRET", "component secret (prefer JICOFO_SECRET in the environment); none: client-only mode"),
    ("client_proxy", "JID", "client_proxy component whose forwarded requests name their sender in the resource (default <subdomain>.<domain>)"),
    ("user_domain", "DOMAIN", "domain of the focus user (default auth.<domain>)"),
    ("user_name", "NAME", "focus user name, also its MUC nick (default focus)"),
    ("user_password", "PASSWORD", "focus user password (prefer JICOFO_AUTH_PASSWORD; absent: SASL ANONYMOUS)"),
    ("user_port", "PORT", "client-to-server port (default 5222)"),
    ("tls_ca_file", "PEM", "certificate or CA to trust for STARTTLS, instead of the system store"),
    ("tls_insecure", "", "do not verify Prosody's certificate, and allow a client connection without TLS to a non-loopback host (logged as a warning)"),
    ("bridge_muc", "JID", "bridge brewery room (default JvbBrewery@internal.auth.<domain>)"),
    ("conference_muc", "DOMAIN", "MUC service of conference rooms; requests for other services are refused (default conference.<domain>)"),
    ("jibri_muc", "JID", "Jibri brewery room for recording and live streaming, 'off' to turn them off (default JibriBrewery@internal.auth.<domain>)"),
    ("jibri_sip_muc", "JID", "SIP Jibri brewery room for the SIP video gateway (default: off)"),
    ("jigasi_muc", "JID", "Jigasi brewery room for dial-out and transcription, 'off' to turn them off (default JigasiBrewery@internal.auth.<domain>)"),
    ("trusted_domain", "DOMAIN", "domain whose members are recognised as Jibri/Jigasi by their presence features; repeatable (default recorder.<domain>)"),
    ("jibri_pending_timeout", "SECONDS", "a Jibri session not on this long after its start ends, 0: never (default 90)"),
    ("jibri_num_retries", "N", "other Jibris tried when one fails, -1: no limit (default 5)"),
    ("auth_domain", "DOMAIN", "secure domain: only users authenticated on DOMAIN may create rooms (also Jicofo's XMPP:DOMAIN and EXT_JWT:DOMAIN forms)"),
    ("jwt_auth_domain", "DOMAIN", "Jicofo's JWT authority (token setup C): users of DOMAIN, where Prosody checks tokens, create rooms and are made owners"),
    ("enable_auto_owner", "BOOL", "make the first eligible participant owner, passed on when they leave (default true; false: Prosody decides owners, e.g. token deployments)"),
    ("enable_ice_restart", "BOOL", "serve clients' in-place ICE restart requests (default true)"),
    ("rest_port", "PORT", "HTTP API port, 0 turns it off (default 8888)"),
    ("rest_bind", "ADDR", "HTTP API address (default 127.0.0.1)"),
    ("max_conferences", "N", "running conferences at most (default 1000)"),
    ("max_new_rooms_per_minute", "N", "new rooms one requester (bare JID) may create per minute (default 20)"),
    ("max_new_rooms_total_per_minute", "N", "new rooms all requesters together may create per minute (default 600)"),
    ("max_participants", "N", "participants a conference serves; later joiners wait for a seat (default 1000)"),
    ("max_waiting_requests", "N", "conference requests a conference keeps while the focus joins (default 256)"),
    ("max_iq_per_second", "N", "IQ requests one sender may send per second, bursts of 5x (default 20)"),
    ("config", "FILE", "read a configuration file: jicofo.conf (HOCON), config (shell variables) or sip-communicator.properties; repeatable, later files win, flags win over files"),
    ("check", "", "check the deployment (Prosody, secret, login, MUC, brewery) and exit"),
    ("help", "", "print this help and exit"),
    ("version", "", "print the version and exit"),
];

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    // Accept the seed's `-name=value` form as well as `--name=value`.
    o.long_only(true);
    for (name, hint, help) in FLAGS {
        if hint.is_empty() {
            o.optflag("", name, help);
        } else if *name == "config" || *name == "trusted_domain" {
            o.optmulti("", name, help, hint);
        } else {
            o.optopt("", name, help, hint);
        }
    }
    o
}

/// Usage text for `--help`.
pub fn usage() -> String {
    let mut s = String::from(
        "Usage: jicofo --domain=DOMAIN [--host=HOST] [options]\n       jicofo [--config=FILE]... [options]\n\n\
         Jitsi Meet conference focus. Give secrets as JICOFO_SECRET and JICOFO_AUTH_PASSWORD\n\
         in the environment (flags win over the environment, both over files). Without\n\
         --config, --domain and --host, the installers' files are read from\n\
         /etc/jitsi/jicofo (or JICOFO_CONFIG_DIR): jicofo.conf, else config, with\n\
         sip-communicator.properties. Log level: RUST_LOG.\n\nOptions:\n",
    );
    for (name, hint, help) in FLAGS {
        let left = if hint.is_empty() { format!("--{}", name) } else { format!("--{}={}", name, hint) };
        s.push_str(&format!("  {:<26} {}\n", left, help));
    }
    s
}

/// `label` names the value in errors: `--flag`, a variable, or a file's key.
fn parse_port(name: &str, value: &str) -> Result<u16, ConfigError> {
    match value.parse::<u16>() {
        Ok(p) => Ok(p),
        Err(_) => Err(ConfigError(format!("{}: '{}' is not a port number (0-65535)", name, value))),
    }
}

/// A limit: a whole number from 1 to `max`.
fn parse_limit(name: &str, value: &str, max: usize) -> Result<usize, ConfigError> {
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError(format!("{}: '{}' is not a number from 1 to {}", name, value, max))),
    }
}

fn check_domain(name: &str, value: &str) -> Result<String, ConfigError> {
    let v = value.trim();
    match Jid::parse(v) {
        Ok(j) if j.local().is_none() && j.resource().is_none() => Ok(j.domain().to_string()),
        _ => Err(ConfigError(format!("{}: '{}' is not a domain name", name, value))),
    }
}

/// The authentication authority from `--auth_domain` (a domain, or Jicofo's `XMPP:<domain>`
/// / `EXT_JWT:<domain>` of `org.jitsi.jicofo.auth.URL`) and `--jwt_auth_domain`: at most
/// one of them; a flag wins over a file's value of the other.
fn authority(
    get: &dyn Fn(&str) -> Option<String>,
    label: &dyn Fn(&str) -> String,
    flag_given: &dyn Fn(&str) -> bool,
) -> Result<Option<Authority>, ConfigError> {
    let xmpp = get("auth_domain");
    let jwt = get("jwt_auth_domain");
    let (name, text, kind) = match (xmpp, jwt) {
        (None, None) => return Ok(None),
        (Some(x), Some(j)) => match (flag_given("auth_domain"), flag_given("jwt_auth_domain")) {
            (true, false) => ("auth_domain", x, AuthorityKind::XmppDomain),
            (false, true) => ("jwt_auth_domain", j, AuthorityKind::ExternalJwt),
            _ => {
                return Err(ConfigError(format!(
                    "{} and {}: one authentication authority at most (a secure domain or Jicofo's JWT authority)",
                    label("auth_domain"),
                    label("jwt_auth_domain")
                )))
            }
        },
        (Some(x), None) => ("auth_domain", x, AuthorityKind::XmppDomain),
        (None, Some(j)) => ("jwt_auth_domain", j, AuthorityKind::ExternalJwt),
    };
    let (kind, domain) = match (kind, text.split_once(':')) {
        (AuthorityKind::XmppDomain, Some(("XMPP", d))) => (AuthorityKind::XmppDomain, d),
        (_, Some(("EXT_JWT", d))) => (AuthorityKind::ExternalJwt, d),
        (_, Some((scheme, _))) => {
            return Err(ConfigError(format!(
                "{}: '{}': only a domain{} is supported ({}: is not)",
                label(name),
                text,
                if kind == AuthorityKind::XmppDomain { ", XMPP:<domain> or EXT_JWT:<domain>" } else { "" },
                scheme
            )))
        }
        (k, None) => (k, text.as_str()),
    };
    Ok(Some(Authority { kind, domain: check_domain(&label(name), domain)? }))
}

/// Environment variables that stand for flags: the names of the 2020-era `config` file,
/// so that a systemd `EnvironmentFile=` or a container can set them. A flag wins over
/// its variable; both win over configuration files.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("JICOFO_HOST", "host"),
    ("JICOFO_HOSTNAME", "domain"),
    ("JICOFO_PORT", "port"),
    ("JICOFO_SECRET", "secret"),
    ("JICOFO_AUTH_DOMAIN", "user_domain"),
    ("JICOFO_AUTH_USER", "user_name"),
    ("JICOFO_AUTH_PASSWORD", "user_password"),
];

/// Parse arguments (without the program name) and the environment lookup `env`, reading
/// configuration files from the file system.
pub fn parse<F>(args: &[String], env: F) -> Result<Command, ConfigError>
where
    F: Fn(&str) -> Option<String>,
{
    parse_with(args, env, |p| p.is_file(), |p| std::fs::read_to_string(p))
}

/// [`parse`] with the file system given as `exists` and `read` (tests give strings).
pub fn parse_with<F, E, R>(args: &[String], env: F, exists: E, read: R) -> Result<Command, ConfigError>
where
    F: Fn(&str) -> Option<String>,
    E: Fn(&std::path::Path) -> bool,
    R: Fn(&std::path::Path) -> std::io::Result<String>,
{
    let m = options().parse(args).map_err(|e| ConfigError(format!("{} (see --help)", e)))?;
    if m.opt_present("help") {
        return Ok(Command::Print(usage()));
    }
    if m.opt_present("version") {
        return Ok(Command::Print(format!("jicofo {}", env!("CARGO_PKG_VERSION"))));
    }
    if let Some(extra) = m.free.first() {
        return Err(ConfigError(format!("unexpected argument '{}' (flags look like --name=value; see --help)", extra)));
    }
    // Configuration files: the --config ones, else (no --domain or --host either) the
    // installers' files in JICOFO_CONFIG_DIR or /etc/jitsi/jicofo when they exist.
    let given: Vec<PathBuf> = m.opt_strs("config").into_iter().filter(|v| !v.is_empty()).map(PathBuf::from).collect();
    let flag_given = |name: &str| m.opt_str(name).is_some_and(|v| !v.is_empty());
    let dir = PathBuf::from(env(files::DIR_ENV).filter(|d| !d.is_empty()).unwrap_or_else(|| files::DEFAULT_DIR.into()));
    let paths = if !given.is_empty() {
        given
    } else if flag_given("domain") || flag_given("host") {
        Vec::new()
    } else {
        files::default_files(&dir, &exists)
    };
    let file_values = files::read_all(&paths, &read).map_err(ConfigError)?;

    // The seed ignored flags with an empty value; keep that (and empty variables).
    let env_of = |name: &str| ENV_VARS.iter().find(|(_, f)| *f == name).map(|(v, _)| *v);
    let get = |name: &str| {
        m.opt_str(name)
            .filter(|v| !v.is_empty())
            .or_else(|| env_of(name).and_then(&env).filter(|v| !v.is_empty()))
            .or_else(|| file_values.get(name).map(|v| v.value.clone()))
    };
    // What a bad value is called in the error: the flag, the variable or the file's key.
    let label = |name: &str| {
        if flag_given(name) {
            format!("--{}", name)
        } else if let Some(var) = env_of(name).filter(|v| env(v).is_some_and(|x| !x.is_empty())) {
            var.to_string()
        } else if let Some(v) = file_values.get(name) {
            format!("{} (--{})", v.origin, name)
        } else {
            format!("--{}", name)
        }
    };
    let switch = |name: &str| m.opt_present(name) || file_values.get(name).is_some_and(|v| v.value == "true");

    // The domain may come from --host (the seed's rule), not from a file's host name.
    let host_given = get("host").filter(|_| flag_given("host") || env_of("host").and_then(&env).is_some_and(|v| !v.is_empty()));
    let domain = match (get("domain"), host_given) {
        (Some(d), _) => check_domain(&label("domain"), &d)?,
        (None, Some(h)) => check_domain(&label("host"), &h)?,
        (None, None) if file_values.any() => {
            let read: Vec<String> = file_values.read.iter().map(|p| p.display().to_string()).collect();
            return Err(ConfigError(format!(
                "no XMPP domain in {} (jicofo.xmpp.client.xmpp-domain, JICOFO_HOSTNAME or --domain)",
                read.join(", ")
            )));
        }
        (None, None) => {
            return Err(ConfigError(format!(
                "--domain is required (the XMPP domain, e.g. --domain=meet.example.com), or a configuration file: \
                 --config=FILE, or jicofo.conf or config in {} ({})",
                dir.display(),
                files::DIR_ENV
            )))
        }
    };
    // Jicofo's files default the XMPP host to localhost; the seed's flags to the domain.
    let host = match get("host") {
        Some(h) => h,
        None if file_values.any() => "localhost".into(),
        None => domain.clone(),
    };
    let component_port = match get("port") {
        Some(p) => parse_port(&label("port"), &p)?,
        None => 5347,
    };
    let subdomain = get("subdomain").unwrap_or_else(|| "focus".into());
    if subdomain.contains(['.', '@', '/']) || subdomain.trim().is_empty() {
        return Err(ConfigError(format!("--subdomain: '{}' must be a single label such as focus", subdomain)));
    }
    // No secret: client-only mode (the focus user alone, behind a client_proxy).
    let secret = get("secret");
    let client_proxy = match get("client_proxy") {
        Some(d) => check_domain(&label("client_proxy"), &d)?,
        None => format!("{}.{}", subdomain, domain),
    };
    let user_domain = match get("user_domain") {
        Some(d) => check_domain(&label("user_domain"), &d)?,
        None => format!("auth.{}", domain),
    };
    let user_name = get("user_name").unwrap_or_else(|| "focus".into());
    if Jid::bare_from(&user_name, &user_domain).is_err() {
        return Err(ConfigError(format!("{}: '{}' is not a valid XMPP user name", label("user_name"), user_name)));
    }
    let user_password = get("user_password");
    let user_port = match get("user_port") {
        Some(p) => parse_port(&label("user_port"), &p)?,
        None => 5222,
    };
    let tls_ca_file = get("tls_ca_file").map(PathBuf::from);
    if let Some(p) = &tls_ca_file {
        if !p.is_file() {
            return Err(ConfigError(format!("{}: {} is not a readable file", label("tls_ca_file"), p.display())));
        }
    }
    let tls_insecure = switch("tls_insecure");
    let bridge_muc_text = get("bridge_muc").unwrap_or_else(|| format!("JvbBrewery@internal.auth.{}", domain));
    let bridge_muc = match Jid::parse(&bridge_muc_text) {
        Ok(j) if j.local().is_some() && j.is_bare() => j,
        _ => return Err(ConfigError(format!("{}: '{}' is not a room JID (room@service)", label("bridge_muc"), bridge_muc_text))),
    };
    let conference_muc = match get("conference_muc") {
        Some(d) => check_domain(&label("conference_muc"), &d)?,
        None => format!("conference.{}", domain),
    };
    let brewery = |name: &str, default: Option<String>| -> Result<Option<Jid>, ConfigError> {
        let text = match get(name) {
            Some(t) if t.eq_ignore_ascii_case("off") || t.eq_ignore_ascii_case("none") => return Ok(None),
            Some(t) => t,
            None => match default {
                Some(d) => d,
                None => return Ok(None),
            },
        };
        match Jid::parse(&text) {
            Ok(j) if j.local().is_some() && j.is_bare() => Ok(Some(j)),
            _ => Err(ConfigError(format!("{}: '{}' is not a room JID (room@service)", label(name), text))),
        }
    };
    let jibri_muc = brewery("jibri_muc", Some(format!("JibriBrewery@internal.auth.{}", domain)))?;
    let jibri_sip_muc = brewery("jibri_sip_muc", None)?;
    let jigasi_muc = brewery("jigasi_muc", Some(format!("JigasiBrewery@internal.auth.{}", domain)))?;
    let mut trusted_domains = Vec::new();
    for d in m.opt_strs("trusted_domain").into_iter().filter(|d| !d.is_empty()) {
        trusted_domains.push(check_domain("--trusted_domain", &d)?.to_ascii_lowercase());
    }
    if trusted_domains.is_empty() {
        trusted_domains.push(format!("recorder.{}", domain).to_ascii_lowercase());
    }
    let pending_timeout = match get("jibri_pending_timeout") {
        None => 90,
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|s| *s <= 86_400)
            .ok_or_else(|| ConfigError(format!("{}: '{}' is not a number of seconds (0 to 86400)", label("jibri_pending_timeout"), v)))?,
    };
    let num_retries = match get("jibri_num_retries") {
        None => Some(5),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(-1) => None,
            Ok(n) if (0..=1000).contains(&n) => Some(n as u32),
            _ => return Err(ConfigError(format!("{}: '{}' is not -1 or a number from 0 to 1000", label("jibri_num_retries"), v))),
        },
    };
    let jibri_session = features::JibriSessionSettings {
        pending_timeout: (pending_timeout > 0).then(|| std::time::Duration::from_secs(pending_timeout)),
        num_retries,
    };
    let authority = authority(&get, &label, &flag_given)?;
    let boolean = |name: &str, default: bool| match get(name) {
        None => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(ConfigError(format!("{}: '{}' is not true or false", label(name), v))),
    };
    let moderation = features::ModerationSettings {
        auto_owner: boolean("enable_auto_owner", true)?,
        ice_restart: boolean("enable_ice_restart", true)?,
    };
    let rest_port = match get("rest_port") {
        Some(p) => parse_port(&label("rest_port"), &p)?,
        None => 8888,
    };
    let rest_bind = match get("rest_bind") {
        Some(a) => a.parse::<IpAddr>().map_err(|_| ConfigError(format!("{}: '{}' is not an IP address", label("rest_bind"), a)))?,
        None => IpAddr::from([127, 0, 0, 1]),
    };
    let limit = |name: &str, default: usize, max: usize| match get(name) {
        Some(v) => parse_limit(&label(name), &v, max),
        None => Ok(default),
    };
    let limits = Limits {
        max_conferences: limit("max_conferences", limits::DEFAULT_MAX_CONFERENCES, 100_000)?,
        new_rooms_per_minute: limit("max_new_rooms_per_minute", limits::DEFAULT_NEW_ROOMS_PER_MINUTE, 1_000_000)?,
        new_rooms_total_per_minute: limit(
            "max_new_rooms_total_per_minute",
            limits::DEFAULT_NEW_ROOMS_TOTAL_PER_MINUTE,
            1_000_000,
        )?,
        max_participants: limit("max_participants", limits::DEFAULT_MAX_PARTICIPANTS, 100_000)?,
        max_waiting_requests: limit("max_waiting_requests", limits::DEFAULT_MAX_WAITING_REQUESTS, 100_000)?,
        iq_per_second: limit("max_iq_per_second", limits::DEFAULT_IQ_PER_SECOND, 100_000)?,
    };
    let cfg = Config {
        domain,
        host,
        component_port,
        subdomain,
        secret,
        client_proxy,
        user_domain,
        user_name,
        user_password,
        user_port,
        tls_ca_file,
        tls_insecure,
        bridge_muc,
        conference_muc,
        jibri_muc,
        jibri_sip_muc,
        jigasi_muc,
        trusted_domains,
        jibri_session,
        authority,
        moderation,
        rest_port,
        rest_bind,
        limits,
        sources: Sources { files: file_values.read.clone(), ignored: file_values.ignored.clone() },
    };
    if m.opt_present("check") {
        Ok(Command::Check(cfg))
    } else {
        Ok(Command::Run(cfg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn run(a: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let no_files = |_: &std::path::Path| -> std::io::Result<String> { Err(std::io::ErrorKind::NotFound.into()) };
        match parse_with(&args(a), |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()), |_| false, no_files)? {
            Command::Run(c) => Ok(c),
            other => panic!("unexpected {:?}", other),
        }
    }

    #[test]
    fn defaults_follow_the_seed() {
        let c = run(&["--domain=meet.test", "--secret=s"], &[]).unwrap();
        assert_eq!(c.host, "meet.test");
        assert_eq!(c.component_port, 5347);
        assert_eq!(c.subdomain, "focus");
        assert_eq!(c.user_name, "focus");
        assert_eq!(c.user_domain, "auth.meet.test");
        assert_eq!(c.user_port, 5222);
        assert_eq!(c.user_password, None);
        assert_eq!(c.component_jid(), "focus.meet.test");
        // Room names compare case-insensitively; Prosody reports them lower-cased.
        assert_eq!(c.bridge_muc.to_string(), "jvbbrewery@internal.auth.meet.test");
        assert_eq!(c.rest_port, 8888);
        assert_eq!(c.conference_muc, "conference.meet.test");
        assert_eq!(c.limits, Limits::default());
    }

    #[test]
    fn limits_are_validated() {
        let c = run(
            &[
                "--domain=meet.test",
                "--secret=s",
                "--max_conferences=5",
                "--max_new_rooms_per_minute=3",
                "--max_new_rooms_total_per_minute=30",
                "--max_participants=7",
                "--max_waiting_requests=9",
                "--max_iq_per_second=4",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(
            c.limits,
            Limits {
                max_conferences: 5,
                new_rooms_per_minute: 3,
                new_rooms_total_per_minute: 30,
                max_participants: 7,
                max_waiting_requests: 9,
                iq_per_second: 4,
            }
        );
        for bad in ["--max_conferences=0", "--max_participants=-1", "--max_waiting_requests=lots", "--max_conferences=100001", "--max_iq_per_second=0"] {
            let e = run(&["--domain=meet.test", "--secret=s", bad], &[]).unwrap_err();
            let name = bad.split('=').next().unwrap();
            assert!(e.0.starts_with(name) && !e.0.contains('\n'), "{}: {}", bad, e);
        }
    }

    #[test]
    fn host_alone_gives_domain_and_single_dash_works() {
        let c = run(&["-host=127.0.0.1", "-secret=x", "-port=6000"], &[]).unwrap();
        assert_eq!(c.domain, "127.0.0.1");
        assert_eq!(c.component_port, 6000);
    }

    #[test]
    fn secrets_from_environment_and_flag_wins() {
        let c = run(&["--domain=meet.test"], &[("JICOFO_SECRET", "e"), ("JICOFO_AUTH_PASSWORD", "p")]).unwrap();
        assert_eq!(c.secret.as_deref(), Some("e"));
        assert_eq!(c.user_password.as_deref(), Some("p"));
        let c = run(&["--domain=meet.test", "--secret=f"], &[("JICOFO_SECRET", "e")]).unwrap();
        assert_eq!(c.secret.as_deref(), Some("f"));
        assert_eq!(c.mode(), Mode::ComponentAndClient);
    }

    #[test]
    fn no_secret_is_client_only_mode_behind_the_proxy() {
        let c = run(&["--domain=meet.test"], &[("JICOFO_AUTH_PASSWORD", "p")]).unwrap();
        assert_eq!((c.mode(), c.secret.as_deref()), (Mode::ClientOnly, None));
        assert_eq!(c.client_proxy, "focus.meet.test");
        // An empty secret counts as none, as the seed ignored empty flags.
        let c = run(&["--domain=meet.test", "--secret="], &[("JICOFO_SECRET", "")]).unwrap();
        assert_eq!(c.mode(), Mode::ClientOnly);
        let c = run(&["--domain=meet.test", "--subdomain=conf"], &[]).unwrap();
        assert_eq!(c.client_proxy, "conf.meet.test");
        let c = run(&["--domain=meet.test", "--client_proxy=proxy.example.org"], &[]).unwrap();
        assert_eq!(c.client_proxy, "proxy.example.org");
        let e = run(&["--domain=meet.test", "--client_proxy=a@b/c"], &[]).unwrap_err();
        assert!(e.0.starts_with("--client_proxy"), "{}", e);
    }

    #[test]
    fn errors_are_one_clear_line() {
        let e = run(&["--domain=meet.test", "--secret=s", "--port=99999"], &[]).unwrap_err();
        assert!(e.0.contains("--port"), "{}", e);
        let e = run(&["--secret=s"], &[]).unwrap_err();
        assert!(e.0.contains("--domain"), "{}", e);
        let e = run(&["--domain=meet.test", "--secret=s", "--bogus=1"], &[]).unwrap_err();
        assert!(e.0.contains("bogus"), "{}", e);
        let e = run(&["--domain=meet.test", "--secret=s", "--bridge_muc=nope"], &[]).unwrap_err();
        assert!(e.0.contains("--bridge_muc"), "{}", e);
        for e in [e] {
            assert!(!e.0.contains('\n'));
        }
    }

    #[test]
    fn help_and_version() {
        assert!(matches!(parse(&args(&["--help"]), |_| None), Ok(Command::Print(s)) if s.contains("--user_password")));
        assert!(matches!(parse(&args(&["--version"]), |_| None), Ok(Command::Print(s)) if s.starts_with("jicofo ")));
    }

    /// Parse with `files` (path, contents) as the whole file system and `env`.
    fn with_files(a: &[&str], env: &[(&str, &str)], files: &[(&str, &str)]) -> Result<Command, ConfigError> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let files: Vec<(std::path::PathBuf, String)> = files.iter().map(|(p, t)| (p.into(), t.to_string())).collect();
        parse_with(
            &args(a),
            |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            |p| files.iter().any(|(f, _)| f == p),
            |p| files.iter().find(|(f, _)| f == p).map(|(_, t)| t.clone()).ok_or_else(|| std::io::ErrorKind::NotFound.into()),
        )
    }

    fn run_files(a: &[&str], env: &[(&str, &str)], files: &[(&str, &str)]) -> Config {
        match with_files(a, env, files).unwrap() {
            Command::Run(c) | Command::Check(c) => c,
            other => panic!("{:?}", other),
        }
    }

    const DEBIAN_CURRENT: &str = include_str!("../tests/fixtures/config/debian-current/jicofo.conf");
    const DEBIAN_2020: &str = include_str!("../tests/fixtures/config/debian-2020/config");
    const DEBIAN_2020_PROPS: &str = include_str!("../tests/fixtures/config/debian-2020/sip-communicator.properties");
    const DOCKER: &str = include_str!("../tests/fixtures/config/docker/jicofo.conf");

    #[test]
    fn a_current_debian_install_runs_client_only_from_etc() {
        let c = run_files(&[], &[], &[("/etc/jitsi/jicofo/jicofo.conf", DEBIAN_CURRENT)]);
        assert_eq!(c.mode(), Mode::ClientOnly);
        assert_eq!((c.domain.as_str(), c.host.as_str(), c.user_port), ("meet.example.com", "localhost", 5222));
        assert_eq!((c.user_domain.as_str(), c.user_name.as_str()), ("auth.meet.example.com", "focus"));
        assert_eq!(c.user_password.as_deref(), Some("Tz8kW3qLm5RvX2pN"));
        assert_eq!(c.client_proxy, "focus.meet.example.com");
        assert_eq!(c.bridge_muc.to_string(), "jvbbrewery@internal.auth.meet.example.com");
        assert_eq!(c.conference_muc, "conference.meet.example.com");
        assert_eq!(c.sources.files, vec![std::path::PathBuf::from("/etc/jitsi/jicofo/jicofo.conf")]);
        assert_eq!(c.sources.ignored, vec!["/etc/jitsi/jicofo/jicofo.conf: jicofo.xmpp.trusted-domains"]);
        // The same with --check alone (no deployment flag), and from JICOFO_CONFIG_DIR.
        assert!(matches!(with_files(&["--check"], &[], &[("/etc/jitsi/jicofo/jicofo.conf", DEBIAN_CURRENT)]), Ok(Command::Check(_))));
        let c = run_files(&[], &[("JICOFO_CONFIG_DIR", "/srv/j")], &[("/srv/j/jicofo.conf", DEBIAN_CURRENT)]);
        assert_eq!(c.domain, "meet.example.com");
        // A leftover 2020 `config` with a secret is not read next to jicofo.conf.
        let c = run_files(&[], &[], &[("/etc/jitsi/jicofo/jicofo.conf", DEBIAN_CURRENT), ("/etc/jitsi/jicofo/config", DEBIAN_2020)]);
        assert_eq!(c.mode(), Mode::ClientOnly);
    }

    #[test]
    fn a_2020_debian_install_runs_with_the_component() {
        let files = [("/etc/jitsi/jicofo/config", DEBIAN_2020), ("/etc/jitsi/jicofo/sip-communicator.properties", DEBIAN_2020_PROPS)];
        let c = run_files(&[], &[], &files);
        assert_eq!(c.mode(), Mode::ComponentAndClient);
        assert_eq!(c.secret.as_deref(), Some("k#7Rq@2x"));
        assert_eq!((c.domain.as_str(), c.host.as_str(), c.component_port), ("meet.example.com", "localhost", 5347));
        assert_eq!(c.user_password.as_deref(), Some("W@9m#Lp4"));
        assert_eq!(c.bridge_muc.to_string(), "jvbbrewery@internal.auth.meet.example.com");
        assert_eq!(c.sources.files.len(), 2);
        assert_eq!(c.sources.ignored, vec!["/etc/jitsi/jicofo/config: JAVA_SYS_PROPS"]);
    }

    #[test]
    fn jibri_and_jigasi_flags() {
        let c = run(&["--domain=meet.test", "--secret=s"], &[]).unwrap();
        assert_eq!(c.jibri_muc.as_ref().map(|j| j.to_string()).as_deref(), Some("jibribrewery@internal.auth.meet.test"));
        assert_eq!(c.jigasi_muc.as_ref().map(|j| j.to_string()).as_deref(), Some("jigasibrewery@internal.auth.meet.test"));
        assert_eq!(c.jibri_sip_muc, None);
        assert_eq!(c.trusted_domains, vec!["recorder.meet.test".to_string()]);
        assert_eq!(c.jibri_session, features::JibriSessionSettings::default());
        let c = run(
            &["--domain=meet.test", "--jibri_muc=off", "--jigasi_muc=J@internal.auth.meet.test", "--jibri_sip_muc=S@x.test",
              "--trusted_domain=a.test", "--trusted_domain=B.test", "--jibri_pending_timeout=0", "--jibri_num_retries=-1"],
            &[],
        )
        .unwrap();
        assert_eq!(c.jibri_muc, None);
        assert_eq!(c.jibri_sip_muc.map(|j| j.to_string()).as_deref(), Some("s@x.test"));
        assert_eq!(c.trusted_domains, vec!["a.test".to_string(), "b.test".to_string()]);
        assert_eq!(c.jibri_session, features::JibriSessionSettings { pending_timeout: None, num_retries: None });
        for bad in ["--jibri_muc=nope", "--trusted_domain=a@b", "--jibri_pending_timeout=x", "--jibri_num_retries=-2"] {
            let e = run(&["--domain=meet.test", bad], &[]).unwrap_err();
            assert!(e.0.contains(bad.split('=').next().unwrap()), "{}", e);
        }
    }

    #[test]
    fn the_docker_file_with_its_own_names() {
        let c = run_files(&["--config=/config/jicofo.conf"], &[], &[("/config/jicofo.conf", DOCKER)]);
        assert_eq!(c.mode(), Mode::ClientOnly);
        assert_eq!((c.domain.as_str(), c.host.as_str()), ("meet.jitsi", "xmpp.meet.jitsi"));
        assert_eq!((c.conference_muc.as_str(), c.client_proxy.as_str()), ("muc.meet.jitsi", "focus.meet.jitsi"));
        assert_eq!(c.authority, Some(Authority { kind: AuthorityKind::XmppDomain, domain: "meet.jitsi".into() }));
        assert!(c.tls_insecure);
        assert_eq!(c.bridge_muc.to_string(), "jvbbrewery@internal-muc.meet.jitsi");
        let ignored: Vec<&str> = c.sources.ignored.iter().map(|k| k.trim_start_matches("/config/jicofo.conf: ")).collect();
        for k in ["jicofo.authentication.enable-auto-login", "jicofo.xmpp.trusted-domains", "jicofo.sctp.enabled"] {
            assert!(ignored.contains(&k), "{} not in {:?}", k, ignored);
        }
        // The Jibri brewery is read (docker names it jibribrewery@internal-muc.<domain>).
        assert!(!ignored.contains(&"jicofo.jibri.brewery-jid"), "{:?}", ignored);
        assert_eq!(c.jibri_muc.as_ref().map(|j| j.local().unwrap_or_default().to_string()).as_deref(), Some("jibribrewery"));
        assert!(!ignored.iter().any(|k| k.contains("password") || k.contains("client.enabled")), "{:?}", ignored);
    }

    #[test]
    fn authentication_authorities_from_flags_and_files() {
        let xmpp = |d: &str| Some(Authority { kind: AuthorityKind::XmppDomain, domain: d.into() });
        let jwt = |d: &str| Some(Authority { kind: AuthorityKind::ExternalJwt, domain: d.into() });
        assert_eq!(run(&["--domain=meet.test"], &[]).unwrap().authority, None);
        assert_eq!(run(&["--domain=meet.test", "--auth_domain=auth.meet.test"], &[]).unwrap().authority, xmpp("auth.meet.test"));
        assert_eq!(run(&["--domain=meet.test", "--auth_domain=XMPP:auth.meet.test"], &[]).unwrap().authority, xmpp("auth.meet.test"));
        assert_eq!(run(&["--domain=meet.test", "--jwt_auth_domain=meet.test"], &[]).unwrap().authority, jwt("meet.test"));
        // Jicofo's property form works in the flag too.
        assert_eq!(run(&["--domain=meet.test", "--auth_domain=EXT_JWT:meet.test"], &[]).unwrap().authority, jwt("meet.test"));
        for bad in [&["--auth_domain=a.test", "--jwt_auth_domain=b.test"][..], &["--auth_domain=shibboleth:x"], &["--jwt_auth_domain=a@b"]] {
            let mut a = vec!["--domain=meet.test"];
            a.extend_from_slice(bad);
            let e = run(&a, &[]).unwrap_err();
            assert!(e.0.starts_with("--auth_domain") || e.0.starts_with("--jwt_auth_domain"), "{}", e);
            assert!(!e.0.contains('\n'));
        }
        // Files: jicofo.conf type = JWT, the 2020 property EXT_JWT:; a flag wins over a file.
        let conf = [("/c/jicofo.conf", "jicofo.xmpp.client.xmpp-domain = meet.example\njicofo.authentication { enabled = true, type = JWT, login-url = \"meet.example\" }")];
        assert_eq!(run_files(&["--config=/c/jicofo.conf"], &[], &conf).authority, jwt("meet.example"));
        let props = [("/c/sip-communicator.properties", "org.jitsi.jicofo.auth.URL=EXT_JWT:meet.example\n")];
        let c = run_files(&["--config=/c/sip-communicator.properties", "--domain=meet.example"], &[], &props);
        assert_eq!(c.authority, jwt("meet.example"));
        let c = run_files(&["--config=/c/jicofo.conf", "--auth_domain=auth.meet.example"], &[], &conf);
        assert_eq!(c.authority, xmpp("auth.meet.example"));
        // Two files naming different authorities: an error naming both keys.
        let both = [conf[0], ("/c/x.properties", "org.jitsi.jicofo.auth.URL=XMPP:auth.meet.example\n")];
        let e = with_files(&["--config=/c/x.properties", "--config=/c/jicofo.conf"], &[], &both).unwrap_err();
        assert!(e.0.contains("org.jitsi.jicofo.auth.URL") && e.0.contains("login-url") && e.0.contains("one authentication authority"), "{}", e);
    }

    #[test]
    fn flags_then_environment_then_files() {
        let files = [("/c/jicofo.conf", "jicofo.xmpp.client { xmpp-domain = a.test, port = 1111, password = filepw }\njicofo.rest.port = 7000")];
        let c = run_files(&["--config=/c/jicofo.conf"], &[], &files);
        assert_eq!((c.domain.as_str(), c.user_port, c.rest_port, c.user_password.as_deref()), ("a.test", 1111, 7000, Some("filepw")));
        let env = [("JICOFO_HOSTNAME", "b.test"), ("JICOFO_AUTH_PASSWORD", "envpw"), ("JICOFO_HOST", "10.0.0.1")];
        let c = run_files(&["--config=/c/jicofo.conf"], &env, &files);
        assert_eq!((c.domain.as_str(), c.host.as_str(), c.user_password.as_deref()), ("b.test", "10.0.0.1", Some("envpw")));
        let c = run_files(&["--config=/c/jicofo.conf", "--domain=c.test", "--user_port=2222", "--user_password=flagpw"], &env, &files);
        assert_eq!((c.domain.as_str(), c.user_port, c.user_password.as_deref()), ("c.test", 2222, Some("flagpw")));
        // Repeated --config: later files win.
        let two = [("/c/a.conf", "jicofo.rest.port = 7001\njicofo.xmpp.client.xmpp-domain = a.test"), ("/c/b.conf", "jicofo.rest.port = 7002")];
        let c = run_files(&["--config=/c/a.conf", "--config=/c/b.conf"], &[], &two);
        assert_eq!(c.rest_port, 7002);
        // --domain alone: the files in /etc are not read.
        let c = run_files(&["--domain=d.test"], &[], &[("/etc/jitsi/jicofo/jicofo.conf", DEBIAN_CURRENT)]);
        assert!(c.sources.files.is_empty() && c.user_password.is_none());
    }

    #[test]
    fn file_mistakes_name_the_file_and_key() {
        let e = with_files(&["--config=/c/jicofo.conf"], &[], &[("/c/jicofo.conf", "jicofo {\n  xmpp.client.port = 5222\n  bridge { brewery-jid = \"x@y\"\n")]).unwrap_err();
        assert!(e.0.starts_with("/c/jicofo.conf:4:") || e.0.starts_with("/c/jicofo.conf:3:"), "{}", e);
        let e = with_files(&["--config=/c/jicofo.conf"], &[], &[("/c/jicofo.conf", "jicofo.xmpp.client { xmpp-domain = a.test, port = lots }")]).unwrap_err();
        assert_eq!(e.0, "/c/jicofo.conf: jicofo.xmpp.client.port (--user_port): 'lots' is not a port number (0-65535)");
        let e = with_files(&["--config=/c/config"], &[], &[("/c/config", "JICOFO_HOSTNAME=a.test\nJICOFO_PORT=$(x)\n")]).unwrap_err();
        assert!(e.0.starts_with("/c/config:2:13: command substitution"), "{}", e);
        let e = with_files(&["--config=/c/missing.conf"], &[], &[]).unwrap_err();
        assert!(e.0.starts_with("/c/missing.conf: cannot read"), "{}", e);
        let e = with_files(&["--config=/c/jicofo.conf"], &[], &[("/c/jicofo.conf", "jicofo.bridge.brewery-jid = \"x@y\"")]).unwrap_err();
        assert!(e.0.starts_with("no XMPP domain in /c/jicofo.conf"), "{}", e);
        let e = with_files(&[], &[], &[]).unwrap_err();
        assert!(e.0.contains("--domain is required") && e.0.contains("/etc/jitsi/jicofo") && e.0.contains("JICOFO_CONFIG_DIR"), "{}", e);
        for e in [e] {
            assert!(!e.0.contains('\n'));
        }
    }
}
