//! How the focus connects to Prosody: the connection specs handed to the event loop
//! ([`connection_specs`]: the client connection first, [`CLIENT`](super::CLIENT), then
//! the component, [`COMPONENT`](super::COMPONENT), when a secret is set), and the TLS
//! policy of the client connection. Used by `app` (the running focus) and `ops::check`
//! (`--check` makes the same connections).

use std::time::Duration;

use crate::config::Config;
use crate::net::{ConnSpec, Negotiation, TlsOptions};
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
        max_nodes: crate::xml::MAX_NODES,
        typed: true,
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
            max_nodes: crate::xml::MAX_NODES,
            typed: true,
        });
    }
    debug_assert_eq!(specs.len(), if cfg.secret.is_some() { 2 } else { 1 });
    specs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Command};

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
