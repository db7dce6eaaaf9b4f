//! How the SDK delivers, without the browser: what an answer means (done,
//! refused, retry), when to retry (exponential backoff with full jitter,
//! honouring `Retry-After`), and the persisted queue's text (a JSON array of
//! event objects the SDK wrote itself: capped, merged, pruned by id) plus the
//! send lease of browsers without Web Locks. No serde: the SDK stays small.

use crate::limits::MAX_PERSISTED_EVENTS;

/// First retry waits up to this long; each later one doubles the ceiling.
pub const BACKOFF_BASE_MS: u64 = 1_000;
/// The ceiling stops doubling here.
pub const BACKOFF_CAP_MS: u64 = 60_000;
/// A `Retry-After` longer than this is taken as this (a misconfigured edge
/// must not park a page's events for a day).
pub const RETRY_AFTER_CAP_MS: u64 = 3_600_000;

/// What to do with a batch after an attempt to send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The edge took it (2xx): forget the events.
    Delivered,
    /// The edge refused it as bad (4xx other than 408 and 429): sending it
    /// again cannot succeed, so drop it with a warning.
    Refused,
    /// It may go through later: a network error, a timeout, 408, 429, 5xx.
    Retry { after_ms: u64 },
}

/// The verdict on one attempt. `status` is `None` when no answer came (network
/// error, offline); `attempt` counts earlier failed attempts (0 for the
/// first); `random` is any random number (the jitter).
pub fn verdict(status: Option<u16>, retry_after_ms: Option<u64>, attempt: u32, random: u64) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Delivered,
        Some(s) if (400..500).contains(&s) && s != 408 && s != 429 => Verdict::Refused,
        _ => Verdict::Retry {
            after_ms: retry_delay_ms(attempt, random, retry_after_ms),
        },
    }
}

/// Full jitter (a uniform wait below a doubling ceiling), so tabs and pages
/// that failed together do not retry together; never sooner than the edge's
/// `Retry-After`.
pub fn retry_delay_ms(attempt: u32, random: u64, retry_after_ms: Option<u64>) -> u64 {
    let ceiling = BACKOFF_BASE_MS
        .saturating_mul(1u64 << attempt.min(16))
        .min(BACKOFF_CAP_MS);
    let jitter = random % (ceiling + 1);
    match retry_after_ms {
        Some(after) => jitter.max(after.min(RETRY_AFTER_CAP_MS)),
        None => jitter,
    }
}

/// `Retry-After` as milliseconds from `now_ms`: delay-seconds or an HTTP date
/// (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`). `None` when unreadable.
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse::<u64>().ok().map(|s| s.saturating_mul(1000));
    }
    let at = parse_imf_fixdate(v)?;
    Some(at.saturating_sub(now_ms))
}

/// Milliseconds since the epoch of an IMF-fixdate.
fn parse_imf_fixdate(v: &str) -> Option<u64> {
    // "Sun, 06 Nov 1994 08:49:37 GMT" (char patterns: cheaper in wasm than &str ones)
    let rest = v.split_once(',')?.1.trim_start();
    let mut parts = rest.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let year: i64 = parts.next()?.parse().ok()?;
    let time = parts.next()?;
    if parts.next()? != "GMT" {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if day == 0 || day > 31 || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day as i64);
    u64::try_from(days)
        .ok()
        .map(|d| ((d * 24 + h) * 60 + m) * 60_000 + s * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---- the persisted queue ------------------------------------------------------

/// The elements of a JSON array the SDK wrote (`[{…},{…}]`), as their text.
/// `None` when the text is not such an array (a corrupted store is dropped).
pub fn split_array(text: &str) -> Option<Vec<&str>> {
    let t = text.trim();
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    let mut out = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut start) = (0i32, false, false, None);
    for (i, c) in inner.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => {
                if depth == 0 {
                    start = Some(i);
                }
                depth += 1;
            }
            '}' | ']' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
                if depth == 0 {
                    // `get`, not indexing: no panic path (its message would
                    // bring string formatting into the SDK's wasm).
                    out.push(inner.get(start?..=i)?);
                    start = None;
                }
            }
            ',' if depth == 0 => {}
            c if depth == 0 && !c.is_whitespace() => return None,
            _ => {}
        }
    }
    (depth == 0 && !in_string).then_some(out)
}

/// The id of an event object the SDK wrote (it writes `{"id":"…",` first).
pub fn event_id(event_json: &str) -> Option<&str> {
    let rest = event_json.strip_prefix("{\"id\":\"")?;
    rest.split_once('"').map(|(id, _)| id)
}

/// The stored queue after appending `new` events: oldest dropped beyond
/// `MAX_PERSISTED_EVENTS`, an id already stored not stored twice.
pub fn merge(stored: &str, new: &[&str]) -> String {
    let mut events: Vec<&str> = split_array(stored).unwrap_or_default();
    for e in new {
        let id = event_id(e);
        if id.is_none() || !events.iter().any(|x| event_id(x) == id) {
            events.push(e);
        }
    }
    let overflow = events.len().saturating_sub(MAX_PERSISTED_EVENTS);
    join(&events[overflow..])
}

/// The stored queue without the events whose ids are in `ids`.
pub fn remove(stored: &str, ids: &[&str]) -> String {
    let events: Vec<&str> = split_array(stored)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| event_id(e).is_none_or(|id| !ids.contains(&id)))
        .collect();
    join(&events)
}

pub fn join(events: &[&str]) -> String {
    let mut out = String::with_capacity(2 + events.iter().map(|e| e.len() + 1).sum::<usize>());
    out.push('[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(e);
    }
    out.push(']');
    out
}

// ---- the send lease (browsers without Web Locks) ---------------------------------

/// A lease stored as `<holder>:<expires at ms>`. Returns the value to write
/// when `me` may send now (no lease, an expired one, or its own), `None` when
/// another tab holds it. The caller writes it, reads it back, and sends only
/// if it still reads its own value (the last writer wins a race).
pub fn take_lease(current: Option<&str>, me: &str, now_ms: u64, ttl_ms: u64) -> Option<String> {
    let held_by_other = current
        .and_then(|c| c.rsplit_once(':'))
        .and_then(|(holder, until)| until.parse::<u64>().ok().map(|u| (holder, u)))
        .is_some_and(|(holder, until)| holder != me && until > now_ms);
    if held_by_other {
        return None;
    }
    let mut v = String::from(me);
    v.push(':');
    push_u64(&mut v, now_ms + ttl_ms);
    Some(v)
}

/// Decimal digits without `format!` (whose machinery costs the wasm kilobytes).
pub fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in &digits[i..] {
        out.push(*d as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_decide_what_happens_to_a_batch() {
        assert_eq!(verdict(Some(202), None, 0, 7), Verdict::Delivered);
        assert_eq!(verdict(Some(400), None, 0, 7), Verdict::Refused);
        assert_eq!(verdict(Some(401), None, 0, 7), Verdict::Refused);
        assert_eq!(verdict(Some(413), None, 0, 7), Verdict::Refused);
        for s in [Some(408), Some(429), Some(500), Some(503), None] {
            assert!(matches!(verdict(s, None, 0, 7), Verdict::Retry { .. }), "{s:?}");
        }
    }

    #[test]
    fn backoff_has_full_jitter_under_a_doubling_capped_ceiling() {
        for attempt in 0..20 {
            let ceiling = (1000u64 << attempt.min(16)).min(60_000);
            assert!(retry_delay_ms(attempt, u64::MAX, None) <= ceiling);
            assert_eq!(retry_delay_ms(attempt, 0, None), 0, "full jitter reaches zero");
        }
        assert_eq!(retry_delay_ms(0, 5, Some(30_000)), 30_000, "Retry-After is a floor");
        assert_eq!(retry_delay_ms(0, 5, Some(10 * RETRY_AFTER_CAP_MS)), RETRY_AFTER_CAP_MS);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("120", 0), Some(120_000));
        // 1994-11-06T08:49:37Z is 784111777 s after the epoch.
        let at = 784_111_777_000;
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at - 5_000),
            Some(5_000)
        );
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at + 5_000), Some(0));
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 PST", 0), None);
        assert_eq!(parse_retry_after("", 0), None);
    }

    #[test]
    fn the_days_algorithm_matches_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 21), 20_778);
    }

    fn ev(id: &str) -> String {
        let mut s = String::from("{\"id\":\"");
        s.push_str(id);
        s.push_str("\",\"type\":\"track\",\"event\":\"a,]}\\\"[{\"}");
        s
    }

    #[test]
    fn the_store_is_split_merged_capped_and_pruned_by_id() {
        let (a, b, c) = (ev("a"), ev("b"), ev("c"));
        let stored = merge("", &[&a, &b]);
        assert_eq!(split_array(&stored).unwrap(), vec![a.as_str(), b.as_str()]);
        let stored = merge(&stored, &[&b, &c]);
        assert_eq!(split_array(&stored).unwrap().len(), 3, "an id is stored once");
        let stored = remove(&stored, &["a", "c"]);
        assert_eq!(split_array(&stored).unwrap(), vec![b.as_str()]);
        assert_eq!(split_array("not json"), None);
        assert_eq!(split_array("[{\"id\":\"x\"} junk]"), None);
        assert_eq!(merge("[{", &[&a]), join(&[&a]), "a corrupted store starts over");
        let many: Vec<String> = (0..MAX_PERSISTED_EVENTS + 5).map(|i| ev(&i.to_string())).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let capped = merge("[]", &refs);
        let kept = split_array(&capped).unwrap();
        assert_eq!(kept.len(), MAX_PERSISTED_EVENTS);
        assert_eq!(event_id(kept[0]), Some("5"), "the oldest are dropped");
    }

    #[test]
    fn a_lease_is_taken_when_free_expired_or_ours() {
        assert_eq!(take_lease(None, "tab1", 1000, 5000).as_deref(), Some("tab1:6000"));
        assert_eq!(take_lease(Some("tab2:6000"), "tab1", 1000, 5000), None);
        assert_eq!(
            take_lease(Some("tab2:6000"), "tab1", 6001, 5000).as_deref(),
            Some("tab1:11001")
        );
        assert_eq!(
            take_lease(Some("tab1:6000"), "tab1", 2000, 5000).as_deref(),
            Some("tab1:7000")
        );
        assert_eq!(take_lease(Some("garbage"), "tab1", 0, 1).as_deref(), Some("tab1:1"));
    }

    proptest::proptest! {
        #[test]
        fn push_u64_writes_decimal(n in proptest::num::u64::ANY) {
            let mut s = String::new();
            push_u64(&mut s, n);
            proptest::prop_assert_eq!(s, n.to_string());
        }

        #[test]
        fn split_array_round_trips_what_join_writes(ids in proptest::collection::vec("[a-z0-9\"\\\\,\\[\\]{}]{0,8}", 0..20)) {
            let events: Vec<String> = ids.iter().map(|id| {
                let escaped = id.replace('\\', "\\\\").replace('"', "\\\"");
                ev(&escaped)
            }).collect();
            let refs: Vec<&str> = events.iter().map(String::as_str).collect();
            let text = join(&refs);
            proptest::prop_assert_eq!(split_array(&text).unwrap(), refs);
        }
    }
}
