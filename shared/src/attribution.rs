//! Attribution without the browser: what a landing page's URL and referrer say
//! (a touch), how the first and last touches are kept within the window, which
//! referral code a signup carries under the site's model, the URL without the
//! ref and invite params, and where a first-party cookie may live. A touch is
//! stored as a query string, so the SDK reads it back with the same parser and
//! needs no JSON library.

use crate::delivery::push_u64;

/// Click ids of the ad networks, kept as they come.
pub const CLICK_IDS: [&str; 8] = [
    "gclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "msclkid",
    "ttclid",
    "li_fat_id",
    "twclid",
];

/// Longest value kept from a URL parameter (a touch must fit in storage).
const MAX_VALUE: usize = 256;

/// What one landing told about where the visitor came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touch {
    pub ref_code: Option<String>,
    pub invite: Option<String>,
    /// `utm_*` and click ids, in URL order.
    pub params: Vec<(String, String)>,
    /// The referring page, when it is another site.
    pub referrer: Option<String>,
    pub landing_url: String,
    /// When, in ms since the epoch.
    pub at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    FirstTouch,
    LastTouch,
}

impl Model {
    /// `data-attribution`: `first-touch`, else last touch (the default).
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("first-touch") => Model::FirstTouch,
            _ => Model::LastTouch,
        }
    }
}

/// The pairs of a query string (`?a=1&b=x+y`), percent-decoded, `+` as space.
/// Malformed escapes are kept as written.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn hex(b: Option<&u8>) -> Option<u8> {
    match *b? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
    }
}

fn clip(v: &str) -> String {
    v.chars().take(MAX_VALUE).collect()
}

/// The host of an absolute URL (`https://a.example:8080/x` → `a.example`).
pub fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split_once(']').map(|(h, _)| &h[1..])?
    } else {
        host.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// Whether two hosts are the same site for attribution: equal, or one a
/// subdomain of the other (`www.shop.example` and `shop.example`).
pub fn same_site(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    a == b || a.ends_with(&dotted(&b)) || b.ends_with(&dotted(&a))
}

fn dotted(h: &str) -> String {
    let mut s = String::from(".");
    s.push_str(h);
    s
}

/// The touch of a page view, or `None` when it says nothing: no ref or invite
/// param, no `utm_*`, no click id, and no referrer from another site.
pub fn touch_from_page(url: &str, referrer: &str, ref_param: &str, invite_param: &str, now_ms: u64) -> Option<Touch> {
    let query = url
        .split_once('?')
        .map_or("", |(_, q)| q.split('#').next().unwrap_or(""));
    let mut t = Touch {
        landing_url: clip(url),
        at: now_ms,
        ..Touch::default()
    };
    for (k, v) in parse_query(query) {
        if v.is_empty() {
            continue;
        }
        if k == ref_param {
            t.ref_code = Some(clip(v.trim()));
        } else if k == invite_param {
            t.invite = Some(clip(v.trim()));
        } else if k.starts_with("utm_") || CLICK_IDS.contains(&k.as_str()) {
            t.params.push((clip(&k), clip(&v)));
        }
    }
    let here = host_of(url).unwrap_or_default();
    t.referrer = host_of(referrer)
        .filter(|h| !same_site(h, here))
        .map(|_| clip(referrer));
    let says_something = t.ref_code.is_some() || t.invite.is_some() || !t.params.is_empty() || t.referrer.is_some();
    says_something.then_some(t)
}

/// Whether a touch is still inside the attribution window at `now_ms`.
pub fn is_live(t: &Touch, now_ms: u64, window_days: u32) -> bool {
    now_ms.saturating_sub(t.at) <= u64::from(window_days) * 86_400_000
}

/// The touches after a page view: the first touch is written once (and
/// replaced only once it expired), the last touch by every new one; expired
/// touches are forgotten.
pub fn update(
    first: Option<Touch>,
    last: Option<Touch>,
    new: Option<Touch>,
    now_ms: u64,
    window_days: u32,
) -> (Option<Touch>, Option<Touch>) {
    let live = |t: Option<Touch>| t.filter(|t| is_live(t, now_ms, window_days));
    let (first, last) = (live(first), live(last));
    match new {
        None => (first, last),
        Some(n) => (first.or_else(|| Some(n.clone())), Some(n)),
    }
}

/// What a signup carries under `model`: `(ref code, invite token)` of the
/// chosen touch, falling back to the other touch when the chosen one has
/// neither.
pub fn signup_ref(first: Option<&Touch>, last: Option<&Touch>, model: Model) -> (Option<String>, Option<String>) {
    let order = match model {
        Model::FirstTouch => [first, last],
        Model::LastTouch => [last, first],
    };
    order
        .into_iter()
        .flatten()
        .find(|t| t.ref_code.is_some() || t.invite.is_some())
        .map_or((None, None), |t| (t.ref_code.clone(), t.invite.clone()))
}

/// `url` without the `params` (ref and invite), for `history.replaceState`;
/// `None` when it has none of them.
pub fn clean_url(url: &str, params: &[&str]) -> Option<String> {
    let (before_hash, hash) = match url.split_once('#') {
        Some((b, h)) => (b, Some(h)),
        None => (url, None),
    };
    let (path, query) = before_hash.split_once('?')?;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = decode(p.split_once('=').map_or(*p, |(k, _)| k));
            !params.contains(&key.as_str())
        })
        .collect();
    if kept.len() == query.split('&').filter(|p| !p.is_empty()).count() {
        return None;
    }
    let mut out = String::from(path);
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(h) = hash {
        out.push('#');
        out.push_str(h);
    }
    Some(out)
}

/// A touch as stored: a query string.
pub fn to_query(t: &Touch) -> String {
    let mut out = String::new();
    let mut pair = |k: &str, v: &str| {
        if !out.is_empty() {
            out.push('&');
        }
        encode(k, &mut out);
        out.push('=');
        encode(v, &mut out);
    };
    if let Some(r) = &t.ref_code {
        pair("ref", r);
    }
    if let Some(i) = &t.invite {
        pair("invite", i);
    }
    for (k, v) in &t.params {
        pair(k, v);
    }
    if let Some(r) = &t.referrer {
        pair("referrer", r);
    }
    pair("landing_url", &t.landing_url);
    let mut at = String::new();
    push_u64(&mut at, t.at);
    pair("at", &at);
    out
}

/// A stored touch back; `None` for text that is not one.
pub fn from_query(s: &str) -> Option<Touch> {
    let mut t = Touch::default();
    let mut at = None;
    for (k, v) in parse_query(s) {
        match k.as_str() {
            "ref" => t.ref_code = Some(v),
            "invite" => t.invite = Some(v),
            "referrer" => t.referrer = Some(v),
            "landing_url" => t.landing_url = v,
            "at" => at = v.parse().ok(),
            _ if k.starts_with("utm_") || CLICK_IDS.contains(&k.as_str()) => t.params.push((k, v)),
            _ => {}
        }
    }
    t.at = at?;
    Some(t)
}

/// Where to try a first-party cookie, shortest first: the registrable domain is
/// the first the browser accepts (it refuses public suffixes such as `co.uk`).
/// Empty for IP addresses and single-label hosts (`localhost`): a host-only
/// cookie there.
pub fn cookie_domain_candidates(host: &str) -> Vec<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let is_ip = host.contains(':')
        || host
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()));
    let labels: Vec<&str> = host.split('.').collect();
    if is_ip || labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return Vec::new();
    }
    (2..=labels.len())
        .map(|n| labels[labels.len() - n..].join("."))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;
    const DAY: u64 = 86_400_000;

    #[test]
    fn a_landing_with_a_ref_utm_and_click_id_is_a_touch() {
        let t = touch_from_page(
            "https://shop.example/launch?ref=ABCD2345&utm_source=news&utm_medium=email&gclid=xyz&other=1#top",
            "https://news.example/post",
            "ref",
            "invite",
            NOW,
        )
        .unwrap();
        assert_eq!(t.ref_code.as_deref(), Some("ABCD2345"));
        assert_eq!(t.invite, None);
        assert_eq!(
            t.params,
            [("utm_source", "news"), ("utm_medium", "email"), ("gclid", "xyz")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(t.referrer.as_deref(), Some("https://news.example/post"));
        assert_eq!(t.at, NOW);
    }

    #[test]
    fn the_site_itself_is_not_a_referrer_and_a_plain_visit_is_no_touch() {
        assert_eq!(
            touch_from_page(
                "https://shop.example/",
                "https://www.shop.example/a",
                "ref",
                "invite",
                NOW
            ),
            None
        );
        assert_eq!(touch_from_page("https://shop.example/", "", "ref", "invite", NOW), None);
        let t = touch_from_page("https://shop.example/?invite=TOK3N", "", "ref", "invite", NOW).unwrap();
        assert_eq!(t.invite.as_deref(), Some("TOK3N"));
        let custom = touch_from_page("https://shop.example/?r=CODE2345&ref=no", "", "r", "i", NOW).unwrap();
        assert_eq!(
            custom.ref_code.as_deref(),
            Some("CODE2345"),
            "data-ref-param names the param"
        );
    }

    #[test]
    fn first_touch_is_written_once_and_last_touch_every_time_within_the_window() {
        let a = touch_from_page("https://s.example/?ref=AAAA2222", "", "ref", "invite", NOW).unwrap();
        let b = touch_from_page("https://s.example/?ref=BBBB3333", "", "ref", "invite", NOW + DAY).unwrap();
        let (f, l) = update(None, None, Some(a.clone()), NOW, 90);
        let (f, l) = update(f, l, Some(b.clone()), NOW + DAY, 90);
        assert_eq!((f.as_ref(), l.as_ref()), (Some(&a), Some(&b)));
        assert_eq!(
            signup_ref(f.as_ref(), l.as_ref(), Model::LastTouch).0.as_deref(),
            Some("BBBB3333")
        );
        assert_eq!(
            signup_ref(f.as_ref(), l.as_ref(), Model::FirstTouch).0.as_deref(),
            Some("AAAA2222")
        );
        // A page view without a touch changes nothing; past the window both expire.
        let (f2, l2) = update(f.clone(), l.clone(), None, NOW + 2 * DAY, 90);
        assert_eq!((f2, l2), (f.clone(), l.clone()));
        let (f3, l3) = update(f, l, None, NOW + 100 * DAY, 90);
        assert_eq!((f3, l3), (None, None));
        // A utm-only last touch leaves the ref to the first touch.
        let c = touch_from_page("https://s.example/?utm_source=x", "", "ref", "invite", NOW + DAY).unwrap();
        assert_eq!(
            signup_ref(Some(&a), Some(&c), Model::LastTouch).0.as_deref(),
            Some("AAAA2222")
        );
    }

    #[test]
    fn the_ref_and_invite_params_leave_the_url_and_nothing_else_does() {
        let p = ["ref", "invite"];
        assert_eq!(
            clean_url("https://s.example/a?ref=X&utm_source=y#h", &p).as_deref(),
            Some("https://s.example/a?utm_source=y#h")
        );
        assert_eq!(
            clean_url("https://s.example/a?ref=X", &p).as_deref(),
            Some("https://s.example/a")
        );
        assert_eq!(
            clean_url("https://s.example/a?invite=T&ref=X&b=2", &p).as_deref(),
            Some("https://s.example/a?b=2")
        );
        assert_eq!(clean_url("https://s.example/a?utm_source=y", &p), None);
        assert_eq!(clean_url("https://s.example/a", &p), None);
    }

    #[test]
    fn a_touch_round_trips_through_its_stored_form() {
        let t = touch_from_page(
            "https://s.example/?ref=AB%2BC&utm_campaign=spring%20sale&fbclid=a%26b",
            "https://other.example/?q=1&r=2",
            "ref",
            "invite",
            NOW,
        )
        .unwrap();
        assert_eq!(t.ref_code.as_deref(), Some("AB+C"));
        assert_eq!(from_query(&to_query(&t)), Some(t));
        assert_eq!(from_query("nonsense"), None);
    }

    #[test]
    fn cookie_domains_are_tried_from_the_shortest() {
        assert_eq!(
            cookie_domain_candidates("a.b.example.co.uk"),
            ["co.uk", "example.co.uk", "b.example.co.uk", "a.b.example.co.uk"]
        );
        assert_eq!(cookie_domain_candidates("Shop.Example."), ["shop.example"]);
        assert!(cookie_domain_candidates("localhost").is_empty());
        assert!(cookie_domain_candidates("127.0.0.1").is_empty());
        assert!(cookie_domain_candidates("::1").is_empty());
    }

    #[test]
    fn hosts_are_read_from_urls() {
        assert_eq!(host_of("https://user@a.example:8080/x?y"), Some("a.example"));
        assert_eq!(host_of("http://[::1]:80/"), Some("::1"));
        assert_eq!(host_of("not a url"), None);
    }

    proptest::proptest! {
        #[test]
        fn stored_touches_round_trip(r in proptest::option::of(".{0,20}"), source in ".{0,20}", at in 0u64..4_000_000_000_000) {
            let t = Touch {
                ref_code: r.filter(|r| !r.is_empty()),
                invite: None,
                params: vec![("utm_source".into(), source)],
                referrer: None,
                landing_url: "https://s.example/?x=1&y=2".into(),
                at,
            };
            proptest::prop_assert_eq!(from_query(&to_query(&t)), Some(t));
        }
    }
}
