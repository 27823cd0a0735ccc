//! The process: command line to running focus, signals, clean shutdown.

use std::sync::Arc;
use std::time::Duration;

use log::{error, info, warn};

use crate::config::{self, Command, Config, Mode};
use crate::messages::Control;
use crate::focus::FocusRouter;
use crate::net::{ConnSpec, EventLoop, Negotiation, TlsOptions};
use crate::xmpp::c2s::{ClientConfig, TlsPolicy};

/// Keepalive ping interval of both connections.
pub const KEEPALIVE: Duration = Duration::from_secs(10);

/// The TLS policy of the client connection to `host`: STARTTLS is required, so that a
/// stripped STARTTLS offer is a failure rather than a clear-text login, unless the
/// host is loopback (127.0.0.0/8, ::1, `localhost`: Prosody on the same machine, often
/// without a certificate) or `--tls_insecure` was given.
pub fn client_tls_policy(host: &str, insecure: bool) -> TlsPolicy {
    if insecure || is_loopback(host) {
        TlsPolicy::IfOffered
    } else {
        TlsPolicy::Required
    }
}

/// Is `host` a loopback address (127.0.0.0/8, ::1, `localhost`)?
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_end_matches('.');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let h = h.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(h);
    match h.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => a.is_loopback(),
        Ok(std::net::IpAddr::V6(a)) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        Err(_) => false,
    }
}

/// The connections of the focus: the client connection first, then, when a component
/// secret is set, the component (see `focus::CLIENT` and `focus::COMPONENT`). Without a
/// secret (client-only mode) there is no component connection.
pub fn connection_specs(cfg: &Config) -> Vec<ConnSpec> {
    let tls = TlsOptions { ca_file: cfg.tls_ca_file.clone(), insecure: cfg.tls_insecure };
    let mut specs = vec![ConnSpec {
        name: "client".into(),
        host: cfg.host.clone(),
        port: cfg.user_port,
        negotiation: Negotiation::Client(ClientConfig {
            domain: cfg.user_domain.clone(),
            username: Some(cfg.user_name.clone()).filter(|_| cfg.user_password.is_some()),
            password: cfg.user_password.clone(),
            resource: cfg.user_name.clone(),
            tls: client_tls_policy(&cfg.host, cfg.tls_insecure),
        }),
        tls: tls.clone(),
        keepalive: KEEPALIVE,
        max_stanza: crate::xml::DEFAULT_MAX_STANZA,
    }];
    if let Some(secret) = &cfg.secret {
        specs.push(ConnSpec {
            name: "component".into(),
            host: cfg.host.clone(),
            port: cfg.component_port,
            negotiation: Negotiation::Component { jid: cfg.component_jid(), secret: secret.clone() },
            tls,
            keepalive: KEEPALIVE,
            max_stanza: crate::xml::DEFAULT_MAX_STANZA,
        });
    }
    debug_assert_eq!(specs.len(), if cfg.secret.is_some() { 2 } else { 1 });
    specs
}

fn init_logging(check: bool) {
    if check {
        // --check prints its own report; the connection logs would only repeat it.
        let _ = env_logger::Builder::new().filter_level(log::LevelFilter::Off).try_init();
        return;
    }
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env).format_timestamp_millis().try_init();
}

/// Run the program; returns the exit status.
pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match config::parse(&args, |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jicofo: {}", e);
            return 2;
        }
    };
    init_logging(matches!(cmd, Command::Check(_)));
    match cmd {
        Command::Print(text) => {
            println!("{}", text);
            0
        }
        Command::Check(cfg) => crate::check::run(&cfg),
        Command::Run(cfg) => run(cfg),
    }
}

fn run(cfg: Config) -> i32 {
    let cfg = Arc::new(cfg);
    match cfg.mode() {
        Mode::ComponentAndClient => info!(
            "jicofo {} starting: component {} on {}:{}, client {}@{} on {}:{}",
            env!("CARGO_PKG_VERSION"),
            cfg.component_jid(),
            cfg.host,
            cfg.component_port,
            cfg.user_name,
            cfg.user_domain,
            cfg.host,
            cfg.user_port
        ),
        Mode::ClientOnly => info!(
            "jicofo {} starting in client-only mode (no component secret): client {}@{} on {}:{}; \
             conference requests arrive through the client_proxy {}",
            env!("CARGO_PKG_VERSION"),
            cfg.user_name,
            cfg.user_domain,
            cfg.host,
            cfg.user_port,
            cfg.client_proxy
        ),
    }
    if !cfg.sources.files.is_empty() {
        let files: Vec<String> = cfg.sources.files.iter().map(|p| p.display().to_string()).collect();
        info!("configuration files read (flags and JICOFO_* variables win over them): {}", files.join(", "));
    }
    if !cfg.sources.ignored.is_empty() {
        warn!("configuration keys ignored (no flag of this focus stands for them): {}", cfg.sources.ignored.join(", "));
    }
    if cfg.tls_insecure {
        warn!("--tls_insecure: Prosody's certificate is NOT verified, and the client connection may be unencrypted");
    } else if client_tls_policy(&cfg.host, false) == TlsPolicy::IfOffered {
        info!("{} is loopback: the client connection uses STARTTLS when Prosody offers it", cfg.host);
    }
    if cfg.user_password.is_none() {
        info!("no focus password: logging in with SASL ANONYMOUS on {}", cfg.user_domain);
    }
    let signals = match signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot install signal handlers: {}", e);
            return 1;
        }
    };
    let (event_loop, net) = match EventLoop::new() {
        Ok(x) => x,
        Err(e) => {
            error!("cannot create the event loop: {}", e);
            return 1;
        }
    };
    let router = FocusRouter::new(cfg.clone(), net.clone());
    let control = router.control();
    let metrics = router.metrics();
    let rest = if cfg.rest_port != 0 {
        let api = crate::net::http::Api {
            metrics: metrics.clone(),
            bridges: router.bridges(),
            control: control.clone(),
            net: net.clone(),
            focus_jid: cfg.focus_bare_jid(),
        };
        match crate::net::http::RestServer::start(std::net::SocketAddr::new(cfg.rest_bind, cfg.rest_port), api) {
            Ok(r) => Some(r),
            Err(e) => {
                error!("{}", e);
                return 1;
            }
        }
    } else {
        None
    };
    let net_thread = match event_loop.spawn(connection_specs(&cfg), Box::new(router)) {
        Ok(j) => j,
        Err(e) => {
            error!("cannot start the event loop: {}", e);
            return 1;
        }
    };
    let mut signals = signals;
    let handle = signals.handle();
    // Wait for the first signal.
    let first = signals.forever().next();
    info!("signal {:?}: shutting down", first);
    // A second signal exits at once.
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            eprintln!("jicofo: second signal, exiting now");
            std::process::exit(1);
        }
    });
    let _ = control.send(Control::Shutdown);
    net.wake();
    // Conferences leave their rooms; then the streams are closed.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while metrics.current().0 > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(r) = rest {
        r.stop();
    }
    net.shutdown();
    let _ = net_thread.join();
    handle.close();
    info!("stopped");
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_required_unless_loopback_or_insecure() {
        for host in ["meet.example.com", "10.0.0.5", "::2", "192.168.1.1", "localhost.example.com", "128.0.0.1", "::ffff:10.0.0.1"] {
            assert_eq!(client_tls_policy(host, false), TlsPolicy::Required, "{host}");
            assert_eq!(client_tls_policy(host, true), TlsPolicy::IfOffered, "{host}");
        }
        for host in ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LocalHost.", "::ffff:127.0.0.1"] {
            assert_eq!(client_tls_policy(host, false), TlsPolicy::IfOffered, "{host}");
        }
        let cfg = |host: &str, insecure: bool| {
            let mut args = vec!["--domain=meet.example.com".to_string(), "--secret=s".into(), format!("--host={host}")];
            if insecure {
                args.push("--tls_insecure".into());
            }
            match config::parse(&args, |_| None).unwrap() {
                Command::Run(c) => c,
                other => panic!("{other:?}"),
            }
        };
        let policy = |c: &Config| match &connection_specs(c)[crate::focus::CLIENT.0].negotiation {
            Negotiation::Client(cc) => cc.tls,
            other => panic!("{other:?}"),
        };
        assert_eq!(policy(&cfg("meet.example.com", false)), TlsPolicy::Required);
        assert_eq!(policy(&cfg("meet.example.com", true)), TlsPolicy::IfOffered);
        assert_eq!(policy(&cfg("127.0.0.1", false)), TlsPolicy::IfOffered);
    }

    #[test]
    fn secrets_never_show_in_debug() {
        use crate::xmpp::c2s::ClientNegotiator;
        use crate::xmpp::component::ComponentNegotiator;
        use crate::xmpp::sasl::{Mechanism, SaslClient, ScramSha1};

        let (secret, password) = ("Compon3ntSecret", "Us3rPassw0rd");
        let args: Vec<String> = ["--domain=meet.example.com", "--user_name=focus"].iter().map(|s| s.to_string()).collect();
        let env = |k: &str| match k {
            "JICOFO_SECRET" => Some(secret.to_string()),
            "JICOFO_AUTH_PASSWORD" => Some(password.to_string()),
            _ => None,
        };
        let cmd = config::parse(&args, env).unwrap();
        let Command::Run(cfg) = &cmd else { panic!() };
        assert_eq!((cfg.secret.as_deref(), cfg.user_password.as_deref()), (Some(secret), Some(password)));
        let specs = connection_specs(cfg);
        let Negotiation::Client(client) = specs[crate::focus::CLIENT.0].negotiation.clone() else { panic!() };
        let component = specs[crate::focus::COMPONENT.0].negotiation.clone();

        // SCRAM in every state: the salted password and signatures are derived secrets.
        let mut scram = ScramSha1::with_nonce("focus", password, "fyko+d2lbbFgONRv9qkxdawL");
        let first = scram.client_first();
        let after_first = format!("{scram:?}");
        let fin = scram.handle_server_first(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096").unwrap();
        let after_final = format!("{scram:?}");
        let mut plain = SaslClient::new(Mechanism::Plain, "focus", Some(password));
        let _ = plain.initial_response();
        let mut neg = ClientNegotiator::new(client.clone());
        neg.start();

        let debugs = [
            format!("{cmd:?}"),
            format!("{cfg:?}"),
            format!("{:?}", specs),
            format!("{component:?}"),
            format!("{client:?}"),
            format!("{:?}", ComponentNegotiator::new("focus.meet.example.com".into(), secret.into())),
            format!("{neg:?}"),
            after_first,
            after_final,
            format!("{plain:?}"),
        ];
        // The client's final message carries the proof; the server signature is kept to verify.
        let proof = fin.rsplit("p=").next().unwrap().to_string();
        for d in &debugs {
            assert!(!d.contains(secret) && !d.contains(password), "secret in {d}");
            assert!(!d.contains(&proof), "SCRAM proof in {d}");
            assert!(!d.contains("server_signature: ["), "SCRAM signature in {d}");
        }
        assert!(debugs[1].contains("meet.example.com") && debugs[1].contains("<redacted>"), "{}", debugs[1]);
        assert!(debugs[3].contains("focus.meet.example.com"), "{}", debugs[3]);
        assert!(!first.is_empty());
    }

    #[test]
    fn client_only_mode_has_no_component_connection() {
        let parse = |args: &[&str]| match config::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>(), |_| None).unwrap() {
            Command::Run(c) => c,
            other => panic!("{other:?}"),
        };
        let specs = connection_specs(&parse(&["--domain=meet.example.com"]));
        assert_eq!(specs.len(), 1);
        assert!(matches!(specs[crate::focus::CLIENT.0].negotiation, Negotiation::Client(_)));
        let specs = connection_specs(&parse(&["--domain=meet.example.com", "--secret=s"]));
        assert_eq!(specs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["client", "component"]);
        assert!(matches!(specs[crate::focus::COMPONENT.0].negotiation, Negotiation::Component { .. }));
    }
}
