//! The XEP-0114 component handshake digest.
//!
//! After the server answers the component's stream header with its own header
//! carrying `id`, the component proves it knows the shared secret by sending
//! `<handshake>` with the lower-case hex SHA-1 of `id` followed by the secret:
//!
//! ```text
//!   component ──<stream:stream to='focus.meet.test'>──────────▶ server
//!             ◀──<stream:stream id='3BF96D32' from=…>──────────
//!             ──<handshake>hex(sha1(id ++ secret))</handshake>▶
//!             ◀──<handshake/>───────────────────────────────── (accepted)
//! ```

use sha1::{Digest, Sha1};

/// Lower-case hex SHA-1 of `stream_id` concatenated with `secret`.
pub fn handshake_digest(stream_id: &str, secret: &str) -> String {
    let mut h = Sha1::new();
    h.update(stream_id.as_bytes());
    h.update(secret.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xep0114_example_id() {
        // Oracle: `printf '%s' '3BF96D32secret' | sha1sum`.
        assert_eq!(handshake_digest("3BF96D32", "secret"), "b09ea9b3b7f586be8a08d0a3dd7466f110aeb136");
    }

    #[test]
    fn fips_180_vector_split_across_id_and_secret() {
        // SHA-1("abc") from FIPS 180: the digest covers id ++ secret, no separator.
        assert_eq!(handshake_digest("a", "bc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(handshake_digest("ab", "c"), handshake_digest("", "abc"));
    }

    #[test]
    fn lower_case_hex() {
        let d = handshake_digest("x", "y");
        assert_eq!(d.len(), 40);
        assert!(d.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    }
}
