//! CORS for the browser-facing routes. The batch key is in the body, so a
//! preflight cannot know the site: it is answered for any origin some site
//! allows, and the POST itself is checked against its own site's list.

/// The headers that let `origin` read a response of ours, `Retry-After`
/// included (without it a cross-origin page cannot read how long a 429 asks
/// it to wait, and the SDK would retry at once).
pub fn allow_origin_headers(origin: &str) -> [(&'static str, String); 4] {
    [
        ("Access-Control-Allow-Origin", origin.to_owned()),
        ("Access-Control-Allow-Credentials", "false".to_owned()),
        ("Access-Control-Expose-Headers", "Retry-After".to_owned()),
        ("Vary", "Origin".to_owned()),
    ]
}

/// The extra headers of a successful preflight.
pub const PREFLIGHT_HEADERS: [(&str, &str); 3] = [
    ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
    ("Access-Control-Allow-Headers", "Content-Type"),
    ("Access-Control-Max-Age", "86400"),
];

/// Whether a request from `origin` may write to a site allowing `allowed`.
/// A request without an Origin header is not from a browser page (browsers
/// send one on every cross-origin POST and beacon); the allow-list exists to
/// keep other pages from spending a site's key, which only browsers could do.
pub fn origin_allowed(origin: Option<&str>, allowed: &[String]) -> bool {
    match origin {
        None => true,
        Some(o) => allowed.iter().any(|a| a == o || a == "*"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list() {
        let allowed = vec!["https://shop.example".to_owned()];
        assert!(origin_allowed(Some("https://shop.example"), &allowed));
        assert!(!origin_allowed(Some("https://evil.example"), &allowed));
        assert!(!origin_allowed(Some("https://shop.example.evil"), &allowed));
        assert!(!origin_allowed(Some("null"), &allowed));
        assert!(origin_allowed(None, &allowed));
    }
}
