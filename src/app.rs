//! The process: command line to running focus, signals, clean shutdown.

use std::sync::Arc;
use std::time::Duration;

use log::{error, info, warn};

use crate::config::{self, Command, Config, Mode};
use crate::messages::Control;
use crate::focus::FocusRouter;
use crate::focus::connections::{client_tls_policy, connection_specs};
use crate::net::EventLoop;
use crate::xmpp::c2s::TlsPolicy;

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
    if let Command::Run(cfg) | Command::Check(cfg) = &cmd {
        // Still one thread: the environment may be changed safely.
        if let Some(ca) = &cfg.tls_ca_file {
            crate::net::tls::use_only_ca_file(ca);
        }
    }
    match cmd {
        Command::Print(text) => {
            println!("{}", text);
            0
        }
        Command::Check(cfg) => crate::ops::check::run(&cfg),
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
        let api = crate::ops::api::Api { metrics: metrics.clone(), bridges: router.bridges(), control: control.clone(), net: net.clone() };
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
