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

use crate::focus::limits::{self, Limits};
use crate::jid::Jid;

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
    /// Secure domain: only users authenticated on it may create rooms.
    pub auth_domain: Option<String>,
    /// REST API port; 0 turns the API off.
    pub rest_port: u16,
    /// REST API bind address.
    pub rest_bind: IpAddr,
    /// Limits against hostile input (conferences, new rooms, participants, waiting requests).
    pub limits: Limits,
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
            auth_domain,
            rest_port,
            rest_bind,
            limits,
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
            .field("auth_domain", auth_domain)
            .field("rest_port", rest_port)
            .field("rest_bind", rest_bind)
            .field("limits", limits)
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
const FLAGS: &[(&str, &str, &str)] = &[
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
    ("tls_ca_file", "PEM", "certificate or CA to trust for STARTTLS, besides the system store"),
    ("tls_insecure", "", "do not verify Prosody's certificate, and allow a client connection without TLS to a non-loopback host (logged as a warning)"),
    ("bridge_muc", "JID", "bridge brewery room (default JvbBrewery@internal.auth.<domain>)"),
    ("conference_muc", "DOMAIN", "MUC service of conference rooms; requests for other services are refused (default conference.<domain>)"),
    ("auth_domain", "DOMAIN", "secure domain: only users authenticated on DOMAIN may create rooms"),
    ("rest_port", "PORT", "HTTP API port, 0 turns it off (default 8888)"),
    ("rest_bind", "ADDR", "HTTP API address (default 127.0.0.1)"),
    ("max_conferences", "N", "running conferences at most (default 1000)"),
    ("max_new_rooms_per_minute", "N", "new rooms one requester (bare JID) may create per minute (default 20)"),
    ("max_new_rooms_total_per_minute", "N", "new rooms all requesters together may create per minute (default 600)"),
    ("max_participants", "N", "participants a conference serves; later joiners wait for a seat (default 1000)"),
    ("max_waiting_requests", "N", "conference requests a conference keeps while the focus joins (default 256)"),
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
        } else {
            o.optopt("", name, help, hint);
        }
    }
    o
}

/// Usage text for `--help`.
pub fn usage() -> String {
    let mut s = String::from(
        "Usage: jicofo --domain=DOMAIN [--host=HOST] [options]\n\n\
         Jitsi Meet conference focus. Give secrets as JICOFO_SECRET and JICOFO_AUTH_PASSWORD\n\
         in the environment (flags win over the environment). Log level: RUST_LOG.\n\nOptions:\n",
    );
    for (name, hint, help) in FLAGS {
        let left = if hint.is_empty() { format!("--{}", name) } else { format!("--{}={}", name, hint) };
        s.push_str(&format!("  {:<26} {}\n", left, help));
    }
    s
}

fn parse_port(name: &str, value: &str) -> Result<u16, ConfigError> {
    match value.parse::<u16>() {
        Ok(p) => Ok(p),
        Err(_) => Err(ConfigError(format!("--{}: '{}' is not a port number (0-65535)", name, value))),
    }
}

/// A limit: a whole number from 1 to `max`.
fn parse_limit(name: &str, value: &str, max: usize) -> Result<usize, ConfigError> {
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError(format!("--{}: '{}' is not a number from 1 to {}", name, value, max))),
    }
}

fn check_domain(name: &str, value: &str) -> Result<String, ConfigError> {
    let v = value.trim();
    match Jid::parse(v) {
        Ok(j) if j.local().is_none() && j.resource().is_none() => Ok(j.domain().to_string()),
        _ => Err(ConfigError(format!("--{}: '{}' is not a domain name", name, value))),
    }
}

/// Parse arguments (without the program name) and the environment lookup `env`.
pub fn parse<F>(args: &[String], env: F) -> Result<Command, ConfigError>
where
    F: Fn(&str) -> Option<String>,
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
    // The seed ignored flags with an empty value; keep that.
    let get = |name: &str| m.opt_str(name).filter(|v| !v.is_empty());

    let domain = match (get("domain"), get("host")) {
        (Some(d), _) => check_domain("domain", &d)?,
        (None, Some(h)) => check_domain("host", &h)?,
        (None, None) => return Err(ConfigError("--domain is required (the XMPP domain, e.g. --domain=meet.example.com)".into())),
    };
    let host = match get("host") {
        Some(h) => h,
        None => domain.clone(),
    };
    let component_port = match get("port") {
        Some(p) => parse_port("port", &p)?,
        None => 5347,
    };
    let subdomain = get("subdomain").unwrap_or_else(|| "focus".into());
    if subdomain.contains(['.', '@', '/']) || subdomain.trim().is_empty() {
        return Err(ConfigError(format!("--subdomain: '{}' must be a single label such as focus", subdomain)));
    }
    // No secret: client-only mode (the focus user alone, behind a client_proxy).
    let secret = get("secret").or_else(|| env("JICOFO_SECRET").filter(|s| !s.is_empty()));
    let client_proxy = match get("client_proxy") {
        Some(d) => check_domain("client_proxy", &d)?,
        None => format!("{}.{}", subdomain, domain),
    };
    let user_domain = match get("user_domain") {
        Some(d) => check_domain("user_domain", &d)?,
        None => format!("auth.{}", domain),
    };
    let user_name = get("user_name").unwrap_or_else(|| "focus".into());
    if Jid::bare_from(&user_name, &user_domain).is_err() {
        return Err(ConfigError(format!("--user_name: '{}' is not a valid XMPP user name", user_name)));
    }
    let user_password = get("user_password").or_else(|| env("JICOFO_AUTH_PASSWORD").filter(|s| !s.is_empty()));
    let user_port = match get("user_port") {
        Some(p) => parse_port("user_port", &p)?,
        None => 5222,
    };
    let tls_ca_file = get("tls_ca_file").map(PathBuf::from);
    if let Some(p) = &tls_ca_file {
        if !p.is_file() {
            return Err(ConfigError(format!("--tls_ca_file: {} is not a readable file", p.display())));
        }
    }
    let tls_insecure = m.opt_present("tls_insecure");
    let bridge_muc_text = get("bridge_muc").unwrap_or_else(|| format!("JvbBrewery@internal.auth.{}", domain));
    let bridge_muc = match Jid::parse(&bridge_muc_text) {
        Ok(j) if j.local().is_some() && j.is_bare() => j,
        _ => return Err(ConfigError(format!("--bridge_muc: '{}' is not a room JID (room@service)", bridge_muc_text))),
    };
    let conference_muc = match get("conference_muc") {
        Some(d) => check_domain("conference_muc", &d)?,
        None => format!("conference.{}", domain),
    };
    let auth_domain = match get("auth_domain") {
        Some(d) => Some(check_domain("auth_domain", d.trim_start_matches("XMPP:"))?),
        None => None,
    };
    let rest_port = match get("rest_port") {
        Some(p) => parse_port("rest_port", &p)?,
        None => 8888,
    };
    let rest_bind = match get("rest_bind") {
        Some(a) => a.parse::<IpAddr>().map_err(|_| ConfigError(format!("--rest_bind: '{}' is not an IP address", a)))?,
        None => IpAddr::from([127, 0, 0, 1]),
    };
    let limit = |name: &str, default: usize, max: usize| match get(name) {
        Some(v) => parse_limit(name, &v, max),
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
        auth_domain,
        rest_port,
        rest_bind,
        limits,
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
        match parse(&args(a), |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))? {
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
                max_waiting_requests: 9
            }
        );
        for bad in ["--max_conferences=0", "--max_participants=-1", "--max_waiting_requests=lots", "--max_conferences=100001"] {
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
}
