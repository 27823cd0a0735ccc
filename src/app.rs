//! The process: command line to running focus, signals, clean shutdown.

use std::sync::Arc;
use std::time::Duration;

use log::{error, info, warn};

use crate::config::{self, Command, Config};
use crate::conference::env::Control;
use crate::focus::FocusRouter;
use crate::net::{ConnSpec, EventLoop, Negotiation, TlsOptions};
use crate::xmpp::c2s::{ClientConfig, TlsPolicy};

/// Keepalive ping interval of both connections.
pub const KEEPALIVE: Duration = Duration::from_secs(10);

/// The two connections of the focus: component first, client second
/// (see `focus::COMPONENT` and `focus::CLIENT`).
pub fn connection_specs(cfg: &Config) -> Vec<ConnSpec> {
    let tls = TlsOptions { ca_file: cfg.tls_ca_file.clone(), insecure: cfg.tls_insecure };
    vec![
        ConnSpec {
            name: "component".into(),
            host: cfg.host.clone(),
            port: cfg.component_port,
            negotiation: Negotiation::Component { jid: cfg.component_jid(), secret: cfg.secret.clone() },
            tls: tls.clone(),
            keepalive: KEEPALIVE,
            max_stanza: crate::xml::DEFAULT_MAX_STANZA,
        },
        ConnSpec {
            name: "client".into(),
            host: cfg.host.clone(),
            port: cfg.user_port,
            negotiation: Negotiation::Client(ClientConfig {
                domain: cfg.user_domain.clone(),
                username: Some(cfg.user_name.clone()).filter(|_| cfg.user_password.is_some()),
                password: cfg.user_password.clone(),
                resource: cfg.user_name.clone(),
                tls: TlsPolicy::IfOffered,
            }),
            tls,
            keepalive: KEEPALIVE,
            max_stanza: crate::xml::DEFAULT_MAX_STANZA,
        },
    ]
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
    info!(
        "jicofo {} starting: component {} on {}:{}, client {}@{} on {}:{}",
        env!("CARGO_PKG_VERSION"),
        cfg.component_jid(),
        cfg.host,
        cfg.component_port,
        cfg.user_name,
        cfg.user_domain,
        cfg.host,
        cfg.user_port
    );
    if cfg.tls_insecure {
        warn!("--tls_insecure: Prosody's certificate is NOT verified");
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
