//! What the Jibri and Jigasi simulators share (a test tool, not part of the focus): the
//! login connection, the event loop with signal handling, and one-line stanza traces on
//! stdout (`<name>: -> <xml>` sent, `<name>: <- <xml>` received) so tests and the
//! report can show the exchange.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use jicofo::net::{ConnSpec, EventLoop, Negotiation, Router, TlsOptions};
use jicofo::xml::Element;
use jicofo::xmpp::c2s::{ClientConfig, TlsPolicy};

/// Login options every simulator takes.
pub struct Login {
    pub host: String,
    pub port: u16,
    pub domain: String,
    pub user: String,
    pub password: String,
    pub resource: String,
    pub tls: TlsOptions,
}

/// Add the login options to `o`.
pub fn login_options(o: &mut getopts::Options, default_domain: &str, default_user: &str) {
    o.optopt("", "host", "XMPP server host (default 127.0.0.1)", "HOST");
    o.optopt("", "port", "client-to-server port (default 5222)", "PORT");
    o.optopt("", "domain", &format!("login domain (default {})", default_domain), "DOMAIN");
    o.optopt("", "user", &format!("login user (default {})", default_user), "USER");
    o.optopt("", "password", "login password (or env GATEWAY_PASSWORD)", "PASSWORD");
    o.optopt("", "tls_ca_file", "PEM certificate or CA to trust for Prosody's TLS", "PEM");
    o.optflag("", "tls_insecure", "do not verify Prosody's TLS certificate");
    o.optflag("", "trace", "print every stanza sent and received on stdout, one line each");
    o.optflag("h", "help", "print this help");
}

/// A number option.
pub fn num<T: std::str::FromStr>(m: &getopts::Matches, name: &str, default: T) -> Result<T, String> {
    match m.opt_str(name) {
        None => Ok(default),
        Some(s) => s.parse().map_err(|_| format!("--{}: not a valid number: {:?}", name, s)),
    }
}

/// The login from the parsed options.
pub fn login(m: &getopts::Matches, default_domain: &str, default_user: &str, resource: &str) -> Result<Login, String> {
    let password = m
        .opt_str("password")
        .or_else(|| std::env::var("GATEWAY_PASSWORD").ok())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| "no password: set GATEWAY_PASSWORD or pass --password".to_string())?;
    Ok(Login {
        host: m.opt_str("host").unwrap_or_else(|| "127.0.0.1".into()),
        port: num(m, "port", 5222u16)?,
        domain: m.opt_str("domain").unwrap_or_else(|| default_domain.into()),
        user: m.opt_str("user").unwrap_or_else(|| default_user.into()),
        password,
        resource: resource.into(),
        tls: TlsOptions { ca_file: m.opt_str("tls_ca_file").map(PathBuf::from), insecure: m.opt_present("tls_insecure") },
    })
}

/// Print a line on stdout at once.
pub fn say(name: &str, line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}: {}", name, line);
    let _ = out.flush();
}

/// Trace a stanza (`dir`: `->` sent, `<-` received) when tracing.
pub fn trace(on: bool, name: &str, dir: &str, el: &Element) {
    if on {
        say(name, &format!("{} {}", dir, el.to_xml()));
    }
}

/// What a simulator's argument parsing gave: the login and settings (logging is then
/// set up), `None` when there is nothing to run (`--help`); a bad argument exits 2.
pub fn parsed_or_exit<S>(name: &str, parsed: Result<Option<(Login, S)>, String>) -> Option<(Login, S)> {
    match parsed {
        Ok(Some(x)) => {
            let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).format_timestamp_millis().try_init();
            Some(x)
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!("{}: {}", name, e);
            std::process::exit(2);
        }
    }
}

/// Run `router` on one client connection until SIGTERM/SIGINT; exit status.
pub fn run(name: &str, login: Login, router: Box<dyn Router>) -> i32 {
    let spec = ConnSpec {
        name: name.into(),
        host: login.host.clone(),
        port: login.port,
        negotiation: Negotiation::Client(ClientConfig {
            domain: login.domain.clone(),
            username: Some(login.user.clone()),
            password: Some(login.password.clone()),
            resource: login.resource.clone(),
            tls: TlsPolicy::IfOffered,
        }),
        tls: login.tls.clone(),
        keepalive: Duration::from_secs(10),
        max_stanza: jicofo::xml::DEFAULT_MAX_STANZA,
        // A Jigasi in a large room is offered every participant's sources: no node cap of
        // the focus's size.
        max_nodes: 1 << 20,
        typed: false,
    };
    let mut signals = match signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot install signal handlers: {}", e);
            return 1;
        }
    };
    let (event_loop, net) = match EventLoop::new() {
        Ok(x) => x,
        Err(e) => {
            log::error!("cannot create the event loop: {}", e);
            return 1;
        }
    };
    let net_thread = match event_loop.spawn(vec![spec], router) {
        Ok(j) => j,
        Err(e) => {
            log::error!("cannot start the event loop: {}", e);
            return 1;
        }
    };
    if let Some(sig) = signals.forever().next() {
        log::info!("signal {}: leaving", sig);
    }
    net.shutdown();
    let _ = net_thread.join();
    0
}
