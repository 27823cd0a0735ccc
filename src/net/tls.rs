//! TLS client set-up with native-tls (OpenSSL on Linux) and readable failure causes.

use std::fmt;

use super::TlsOptions;

/// Why TLS could not be set up or negotiated.
#[derive(Debug, Clone)]
pub enum TlsError {
    /// `--tls_ca_file` could not be read or parsed.
    CaFile(String),
    /// The connector could not be built.
    Setup(String),
    /// The handshake failed; `untrusted` when the peer's certificate was not accepted.
    Handshake {
        /// native-tls's (OpenSSL's) description of the failure.
        message: String,
        /// The server's certificate was not trusted (self-signed, unknown issuer, wrong host
        /// name, expired); the message then points to `--tls_ca_file` and `--tls_insecure`.
        untrusted: bool,
    },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::CaFile(m) => write!(f, "cannot use --tls_ca_file: {}", m),
            TlsError::Setup(m) => write!(f, "TLS set-up failed: {}", m),
            TlsError::Handshake { message, untrusted: true } => write!(
                f,
                "Prosody's TLS certificate is not trusted ({}): pass its certificate or CA with \
                 --tls_ca_file=PEM, or use --tls_insecure to skip verification",
                message
            ),
            TlsError::Handshake { message, untrusted: false } => write!(f, "TLS handshake failed: {}", message),
        }
    }
}

impl std::error::Error for TlsError {}

/// Build a connector for `opts`.
pub fn connector(opts: &TlsOptions) -> Result<native_tls::TlsConnector, TlsError> {
    let mut b = native_tls::TlsConnector::builder();
    if let Some(path) = &opts.ca_file {
        // Only this certificate or CA is trusted (as `curl --cacert`): the system store
        // is not consulted. See [`use_only_ca_file`] for keeping it from being parsed.
        b.disable_built_in_roots(true);
        let pem = std::fs::read(path).map_err(|e| TlsError::CaFile(format!("{}: {}", path.display(), e)))?;
        let cert = native_tls::Certificate::from_pem(&pem)
            .map_err(|e| TlsError::CaFile(format!("{}: not a PEM certificate: {}", path.display(), e)))?;
        b.add_root_certificate(cert);
    }
    if opts.insecure {
        b.danger_accept_invalid_certs(true);
        b.danger_accept_invalid_hostnames(true);
    }
    b.build().map_err(|e| TlsError::Setup(e.to_string()))
}

/// The process trusts only `ca_file` (`--tls_ca_file`): point OpenSSL's default trust
/// file (`SSL_CERT_FILE`, read by native-tls and by OpenSSL when a connector is built) at
/// it, so the system CA bundle is never parsed. [`connector`] already ignores the system
/// store when a CA file is given; without this, OpenSSL would still parse the whole
/// bundle (twice) before the store is replaced, about 1.6 MB of heap that stays for the
/// life of the process. Call once at start-up, before any other thread exists.
pub fn use_only_ca_file(ca_file: &std::path::Path) {
    std::env::set_var("SSL_CERT_FILE", ca_file);
}

/// Classify a handshake failure message.
pub fn handshake_error(message: String) -> TlsError {
    let m = message.to_ascii_lowercase();
    let untrusted = m.contains("certificate verify failed")
        || m.contains("self-signed")
        || m.contains("self signed")
        || m.contains("unable to get local issuer")
        || m.contains("hostname mismatch")
        || m.contains("certificate has expired");
    TlsError::Handshake { message, untrusted }
}
