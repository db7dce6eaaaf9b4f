//! API keys. A publishable key (`pk_…`) is public and identifies a site; a
//! secret key (`sk_…`) authorises the admin API and trusted server events and is
//! stored only as its SHA-256. Keys are long random strings, so an unsalted fast
//! hash is enough to make a leaked table useless (as with GitHub's tokens).

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Publishable,
    Secret,
}

/// What kind of key `key` claims to be, if its form is plausible at all. Says
/// nothing about whether the key exists.
pub fn key_kind(key: &str) -> Option<KeyKind> {
    let (kind, rest) = if let Some(rest) = key.strip_prefix("pk_") {
        (KeyKind::Publishable, rest)
    } else if let Some(rest) = key.strip_prefix("sk_") {
        (KeyKind::Secret, rest)
    } else {
        return None;
    };
    let plausible = (8..=96).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    plausible.then_some(kind)
}

/// Lower-case hex SHA-256 of a secret key: what the database stores and looks up.
pub fn hash_secret_key(key: &str) -> String {
    hex_lower(&Sha256::digest(key.as_bytes()))
}

/// The bearer token of an `Authorization` header value, if it is a secret key.
pub fn bearer_secret_key(header: Option<&str>) -> Option<&str> {
    let token = header?.strip_prefix("Bearer ")?.trim();
    (key_kind(token) == Some(KeyKind::Secret)).then_some(token)
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_prefix_and_form() {
        assert_eq!(key_kind("pk_demo_0123456789"), Some(KeyKind::Publishable));
        assert_eq!(key_kind("sk_demo_0123456789"), Some(KeyKind::Secret));
        assert_eq!(key_kind("pk_shortkey"), Some(KeyKind::Publishable));
        assert_eq!(key_kind("pk_sho"), None);
        assert_eq!(key_kind("xk_demo_0123456789"), None);
        assert_eq!(key_kind("pk_demo 0123456789"), None);
        assert_eq!(key_kind("pk_démo_0123456789"), None);
    }

    #[test]
    fn secret_hash_is_sha256_hex() {
        // Known answer: `printf %s sk_test_123456 | sha256sum`.
        assert_eq!(
            hash_secret_key("sk_test_123456"),
            "58a5e18e57cb4cf83cf8e4e1d420958e9297c3502468d2e33b5052b0f46cb640"
        );
    }

    #[test]
    fn bearer_accepts_only_secret_keys() {
        assert_eq!(
            bearer_secret_key(Some("Bearer sk_demo_0123456789")),
            Some("sk_demo_0123456789")
        );
        assert_eq!(bearer_secret_key(Some("Bearer pk_demo_0123456789")), None);
        assert_eq!(bearer_secret_key(Some("Basic sk_demo_0123456789")), None);
        assert_eq!(bearer_secret_key(None), None);
    }
}
