//! `jvb-sim`: a bridge simulator for tests and demos (not a bridge: no media).
//! The simulator is in `jvbsim` (a test tool, not part of the focus: it uses the
//! library's `net`, `xml` and `xmpp` layers through their public API); this file is
//! the command line.

mod jvbsim;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::bounded;
use log::{error, info, warn};

use jvbsim::{Command, Event, Recorder, Settings, SimRouter};
use jicofo::net::{ConnSpec, EventLoop, Negotiation, TlsOptions};
use jicofo::xmpp::c2s::{ClientConfig, TlsPolicy};

const ABOUT: &str = "\
jvb-sim: a Jitsi Videobridge SIMULATOR for tests and demos. It is NOT a bridge and
handles no media. It logs into Prosody as an XMPP client, joins the bridge brewery
MUC with a stats presence and answers Colibri2 conference-modify requests and health
checks like a real JVB would (random ICE/DTLS parameters that point nowhere).";

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.optopt("", "host", "XMPP server host (default 127.0.0.1)", "HOST");
    o.optopt("", "port", "client-to-server port (default 5222)", "PORT");
    o.optopt("", "domain", "login domain (default auth.meet.test)", "DOMAIN");
    o.optopt("", "user", "login user (default jvb)", "USER");
    o.optopt("", "password", "login password (or env JVB_PASSWORD)", "PASSWORD");
    o.optopt("", "brewery", "brewery MUC (default JvbBrewery@internal.auth.meet.test)", "JID");
    o.optopt("", "nick", "nickname in the brewery, the bridge's identity (default jvb1)", "NICK");
    o.optopt("", "region", "region stat (none by default)", "REGION");
    o.optopt("", "stress", "stress_level stat (default 0.1)", "FLOAT");
    o.optopt("", "version-string", "version stat (default 2.3.0-sim)", "VERSION");
    o.optopt("", "ws-domain", "domain in colibri web-socket URLs (default meet.test)", "DOMAIN");
    o.optopt("", "delay-ms", "delay every colibri answer by this many ms (default 0)", "MS");
    o.optflag("", "fail-health", "health checks fail (internal-server-error) from the start");
    o.optflag("", "drain", "start with drain=true");
    o.optopt("", "record", "append every colibri/health request and answer as JSON lines to FILE", "FILE");
    o.optopt("", "tls_ca_file", "PEM certificate or CA to trust for Prosody's TLS", "PEM");
    o.optflag("", "tls_insecure", "do not verify Prosody's TLS certificate");
    o.optflag("h", "help", "print this help");
    o
}

fn usage(o: &getopts::Options) -> String {
    let brief = format!("{}\n\nUsage: jvb-sim [options]", ABOUT);
    format!(
        "{}\n{}\nOn stdout it prints `jvb-sim: joined <brewery>/<nick>` once in the brewery.\n\
         Each line of the --record file: {{\"t_ms\":<unix ms>,\"dir\":\"in\"|\"out\",\
         \"kind\":\"colibri\"|\"health\",\"meeting_id\":<string or null>,\"xml\":\"<stanza>\"}}\n\
         SIGTERM/SIGINT: leave the brewery, close the stream, exit 0. Stdin EOF: keep running.",
        o.usage(&brief),
        jvbsim::COMMANDS_HELP
    )
}

struct Args {
    host: String,
    port: u16,
    domain: String,
    user: String,
    password: String,
    settings: Settings,
    record: Option<PathBuf>,
    tls: TlsOptions,
}

fn parse_args(args: &[String]) -> Result<Option<Args>, String> {
    let o = options();
    let m = o.parse(args).map_err(|e| format!("{} (see --help)", e))?;
    if m.opt_present("help") {
        println!("{}", usage(&o));
        return Ok(None);
    }
    if !m.free.is_empty() {
        return Err(format!("unexpected argument {:?} (see --help)", m.free[0]));
    }
    fn num<T: std::str::FromStr>(m: &getopts::Matches, name: &str, default: T) -> Result<T, String> {
        match m.opt_str(name) {
            None => Ok(default),
            Some(s) => s.parse().map_err(|_| format!("--{}: not a valid number: {:?}", name, s)),
        }
    }
    let password = m
        .opt_str("password")
        .or_else(|| std::env::var("JVB_PASSWORD").ok())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| "no password: set JVB_PASSWORD or pass --password".to_string())?;
    let d = Settings::default();
    let stress: f64 = num(&m, "stress", d.stress)?;
    let settings = Settings {
        brewery: m.opt_str("brewery").unwrap_or(d.brewery),
        nick: m.opt_str("nick").unwrap_or(d.nick),
        region: m.opt_str("region").filter(|r| !r.is_empty()),
        stress,
        version: m.opt_str("version-string").unwrap_or(d.version),
        ws_domain: m.opt_str("ws-domain").unwrap_or(d.ws_domain),
        delay: Duration::from_millis(num(&m, "delay-ms", 0u64)?),
        fail_health: m.opt_present("fail-health"),
        drain: m.opt_present("drain"),
    };
    if jicofo::jid::Jid::parse(&settings.brewery).map(|j| !j.is_bare() || j.local().is_none()).unwrap_or(true) {
        return Err(format!("--brewery: not a bare room JID: {:?}", settings.brewery));
    }
    Ok(Some(Args {
        host: m.opt_str("host").unwrap_or_else(|| "127.0.0.1".into()),
        port: num(&m, "port", 5222u16)?,
        domain: m.opt_str("domain").unwrap_or_else(|| "auth.meet.test".into()),
        user: m.opt_str("user").unwrap_or_else(|| "jvb".into()),
        password,
        settings,
        record: m.opt_str("record").map(PathBuf::from),
        tls: TlsOptions { ca_file: m.opt_str("tls_ca_file").map(PathBuf::from), insecure: m.opt_present("tls_insecure") },
    }))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = match parse_args(&args) {
        Ok(Some(a)) => a,
        Ok(None) => return,
        Err(e) => {
            eprintln!("jvb-sim: {}", e);
            std::process::exit(2);
        }
    };
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env).format_timestamp_millis().try_init();
    std::process::exit(run(a));
}

fn run(a: Args) -> i32 {
    info!(
        "jvb-sim (bridge simulator, no media) {}@{} on {}:{}, brewery {}/{}",
        a.user, a.domain, a.host, a.port, a.settings.brewery, a.settings.nick
    );
    if a.tls.insecure {
        warn!("--tls_insecure: Prosody's certificate is NOT verified");
    }
    let recorder = match &a.record {
        None => None,
        Some(p) => match Recorder::create(p) {
            Ok(r) => Some(r),
            Err(e) => {
                error!("cannot create --record file {}: {}", p.display(), e);
                return 1;
            }
        },
    };
    let spec = ConnSpec {
        name: "jvb".into(),
        host: a.host.clone(),
        port: a.port,
        negotiation: Negotiation::Client(ClientConfig {
            domain: a.domain.clone(),
            username: Some(a.user.clone()),
            password: Some(a.password.clone()),
            resource: a.settings.nick.clone(),
            tls: TlsPolicy::IfOffered,
        }),
        tls: a.tls.clone(),
        keepalive: Duration::from_secs(10),
        max_stanza: jicofo::xml::DEFAULT_MAX_STANZA,
        // JVB has no node cap of its own: the focus's requests for a large room are big.
        max_nodes: 1 << 20,
        typed: false,
    };
    let signals = match signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot install signal handlers: {}", e);
            return 1;
        }
    };
    let (cmd_tx, cmd_rx) = bounded::<Command>(64);
    let (ev_tx, ev_rx) = bounded::<Option<Event>>(64);
    // The router's events, forwarded into the main channel (None = a signal).
    let (router_tx, router_rx) = bounded::<Event>(64);
    let (event_loop, net) = match EventLoop::new() {
        Ok(x) => x,
        Err(e) => {
            error!("cannot create the event loop: {}", e);
            return 1;
        }
    };
    let router = SimRouter::new(a.settings.clone(), cmd_rx, router_tx, recorder);
    let net_thread = match event_loop.spawn(vec![spec], Box::new(router)) {
        Ok(j) => j,
        Err(e) => {
            error!("cannot start the event loop: {}", e);
            return 1;
        }
    };
    if let Err(e) = jvbsim::spawn_stdin_reader(cmd_tx, net.clone()) {
        warn!("cannot read commands from stdin: {}", e);
    }
    let fwd = ev_tx.clone();
    std::thread::spawn(move || {
        for ev in router_rx.iter() {
            if fwd.send(Some(ev)).is_err() {
                return;
            }
        }
    });
    let handle = signals.handle();
    std::thread::spawn(move || {
        let mut signals = signals;
        for sig in signals.forever() {
            info!("signal {}: leaving", sig);
            if ev_tx.send(None).is_err() {
                return;
            }
        }
    });
    let occupant = format!("{}/{}", a.settings.brewery, a.settings.nick);
    for ev in ev_rx.iter() {
        match ev {
            Some(Event::Joined(_)) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "jvb-sim: joined {}", occupant);
                let _ = out.flush();
            }
            Some(Event::Crash) => {
                eprintln!("jvb-sim: crash requested, exiting without a word");
                std::process::exit(1);
            }
            Some(Event::Leave) | None => break,
        }
    }
    // Leave the brewery (the router sends the unavailable presence) and close the stream.
    net.shutdown();
    let _ = net_thread.join();
    handle.close();
    info!("stopped");
    0
}
