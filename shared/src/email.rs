//! Email addresses as identity: reduced to the mailbox they deliver to, and
//! hashed. The SDK sends only the hash (unless the site opts into plain
//! email); the edge salts it again before storing; the fraud signals compare
//! hashes. No `format!`, so the SDK can link it cheaply.

use sha2::{Digest, Sha256};

/// An email address reduced to the mailbox it delivers to: lower case, and for
/// Gmail (and googlemail.com) without dots and `+tags`. Returns `None` for
/// something that is not an address. ASCII case folding: Unicode's tables
/// would cost the SDK 10 KB, and mailbox names are ASCII in practice.
pub fn normalise_email(email: &str) -> Option<String> {
    let email = email.trim().to_ascii_lowercase();
    let (local, domain) = email.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() || !domain.contains('.') {
        return None;
    }
    let base = local.split('+').next().unwrap_or(local);
    let (local, domain) = match domain {
        "gmail.com" | "googlemail.com" => (base.replace('.', ""), "gmail.com"),
        _ => (base.to_owned(), domain),
    };
    if local.is_empty() {
        return None;
    }
    let mut out = local;
    out.push('@');
    out.push_str(domain);
    Some(out)
}

/// Lower-case hex SHA-256 of the normalised address: what leaves the browser.
pub fn email_sha256(email: &str) -> Option<String> {
    let normal = normalise_email(email)?;
    Some(crate::keys::hex_lower(&Sha256::digest(normal.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_dots_and_tags_are_one_mailbox() {
        assert_eq!(
            email_sha256("J.Doe+promo@GMail.com"),
            email_sha256("jdoe@googlemail.com")
        );
        assert_ne!(email_sha256("j.doe@example.com"), email_sha256("jdoe@example.com"));
        // sha256("jdoe@gmail.com"), computed independently (Python's hashlib).
        assert_eq!(
            email_sha256(" J.Doe@gmail.com ").as_deref(),
            Some("910789803908d9ab8a57b28ff0af7ab81b9607356aef6f18d8499eb1489ed8ab")
        );
        assert_eq!(email_sha256("not an address"), None);
    }
}
