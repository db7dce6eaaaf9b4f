//! How the SDK delivers, without the browser: what an answer means (done,
//! refused, retry), when to retry (exponential backoff with full jitter,
//! honouring `Retry-After`), how a queue is cut into request bodies, how many
//! undelivered events are kept, and the send lease of browsers without Web
//! Locks. The browser parses JSON and dates itself (the loader does), so none
//! of that is here: the SDK's wasm stays small.

use crate::limits::{BEACON_CHUNK_BYTES, MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_PERSISTED_EVENTS};

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

// ---- the queue ---------------------------------------------------------------

/// A batch index that means "in no batch": the event is too large to be sent
/// alone, so no send could ever succeed and keeping it would block the rest.
pub const UNSENDABLE: u32 = u32::MAX;

/// The batch each queued event goes in, in order: events of `sizes` bytes (as
/// JSON text) into bodies of at most `max_body_bytes` (the envelope of
/// `envelope_bytes` and one comma between events included) and the
/// contract's event limit. An event too large for any body is `UNSENDABLE`.
pub fn batch_plan(sizes: &[u32], envelope_bytes: u32, max_body_bytes: u32) -> Vec<u32> {
    let mut plan = Vec::with_capacity(sizes.len());
    let (mut batch, mut count, mut bytes) = (0u32, 0usize, envelope_bytes);
    for &size in sizes {
        let cost = size.saturating_add(1);
        if envelope_bytes.saturating_add(cost) > max_body_bytes {
            plan.push(UNSENDABLE);
            continue;
        }
        if count == MAX_BATCH_EVENTS || bytes.saturating_add(cost) > max_body_bytes {
            batch += 1;
            count = 0;
            bytes = envelope_bytes;
        }
        count += 1;
        bytes += cost;
        plan.push(batch);
    }
    plan
}

/// The largest body the SDK sends: a beacon's chunk (below the browsers'
/// in-flight quota) or a fetch's (the contract's limit).
pub fn max_body_bytes(beacon: bool) -> u32 {
    (if beacon { BEACON_CHUNK_BYTES } else { MAX_BATCH_BYTES }) as u32
}

/// How many of the oldest of `len` persisted events to drop: the SDK keeps at
/// most `MAX_PERSISTED_EVENTS` while it cannot deliver them.
pub fn overflow(len: usize) -> usize {
    len.saturating_sub(MAX_PERSISTED_EVENTS)
}

// ---- the send lease (browsers without Web Locks) ---------------------------------

/// Whether a tab may take the takeover lease: none is held (`until_ms` 0), it
/// ran out, or the tab holds it already. The tab then writes itself as the
/// holder until `now + ttl`, reads it back, and goes on only if it still
/// reads itself (the last writer wins a race).
pub fn lease_free(held_by_me: bool, until_ms: u64, now_ms: u64) -> bool {
    held_by_me || until_ms <= now_ms
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
    fn a_queue_is_cut_by_bytes_and_by_count_and_an_oversized_event_is_left_out() {
        // Envelope 40 bytes, bodies of at most 100: 30 + 1 and 28 + 1 fit
        // together (100), the next starts a new body.
        assert_eq!(batch_plan(&[30, 28, 10], 40, 100), [0, 0, 1]);
        assert_eq!(batch_plan(&[70, 10], 40, 100), [UNSENDABLE, 0], "too large alone");
        assert_eq!(batch_plan(&[59, 10], 40, 100), [0, 1], "exactly full");
        let many = vec![1u32; MAX_BATCH_EVENTS * 2 + 1];
        let plan = batch_plan(&many, 40, 1 << 20);
        assert_eq!(plan[MAX_BATCH_EVENTS - 1], 0);
        assert_eq!(plan[MAX_BATCH_EVENTS], 1);
        assert_eq!(plan[2 * MAX_BATCH_EVENTS], 2);
        assert!(batch_plan(&[], 40, 100).is_empty());
        assert!(max_body_bytes(true) < max_body_bytes(false));
    }

    #[test]
    fn the_oldest_events_beyond_the_cap_are_dropped() {
        assert_eq!(overflow(MAX_PERSISTED_EVENTS), 0);
        assert_eq!(overflow(MAX_PERSISTED_EVENTS + 5), 5);
        assert_eq!(overflow(0), 0);
    }

    #[test]
    fn a_lease_is_taken_when_free_expired_or_ours() {
        assert!(lease_free(false, 0, 1000), "none held");
        assert!(!lease_free(false, 6000, 1000), "another tab's");
        assert!(lease_free(false, 6000, 6000), "run out");
        assert!(lease_free(true, 6000, 1000), "ours");
    }

    proptest::proptest! {
        /// Every body fits, keeps the order, holds at most the contract's
        /// events, and only an event that cannot fit alone is left out.
        #[test]
        fn every_planned_body_fits(sizes in proptest::collection::vec(0u32..120, 0..400), envelope in 10u32..60) {
            let max = 200;
            let plan = batch_plan(&sizes, envelope, max);
            proptest::prop_assert_eq!(plan.len(), sizes.len());
            let mut bodies: std::collections::BTreeMap<u32, (u32, usize)> = Default::default();
            let mut last = 0;
            for (size, batch) in sizes.iter().zip(&plan) {
                proptest::prop_assert_eq!(*batch == UNSENDABLE, envelope + size + 1 > max);
                if *batch == UNSENDABLE { continue; }
                proptest::prop_assert!(*batch >= last, "in order");
                last = *batch;
                let body = bodies.entry(*batch).or_insert((envelope, 0));
                body.0 += size + 1;
                body.1 += 1;
            }
            for (bytes, count) in bodies.values() {
                proptest::prop_assert!(*bytes <= max && *count <= MAX_BATCH_EVENTS);
            }
        }
    }
}
