//! refloop's browser SDK: the rules, in wasm. The loader (`js/`) is the
//! browser shell: it owns the page's APIs (storage, cookies, timers, `fetch`,
//! `sendBeacon`, Web Locks, listeners) and the browser's own JSON and date
//! parsing, and asks this module every question with a rule in it: the event
//! id, whether a key may be in a page, what an answer means and when to retry,
//! how a queue is cut into bodies, how many undelivered events are kept, the
//! send lease, and the attribution model (the window and which touch a
//! signup carries), the last shared with the edge's own check.
//!
//! Everything here is a pure function of its arguments (time and randomness
//! come in from the shell), a thin wrapper of `refloop-core`. Numbers cross
//! the boundary where they can: a string costs the wasm an allocator's work
//! and the page an encoding.

// Single-threaded wasm (no atomics): one allocator, no lock.
#[cfg(all(not(target_feature = "atomics"), target_family = "wasm"))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

use refloop_core::attribution;
use refloop_core::delivery;
use refloop_core::keys::{KeyKind, key_kind};
use wasm_bindgen::prelude::*;

/// Whether `key` can be a publishable key (a secret key never goes in a page).
#[wasm_bindgen(js_name = isPublishableKey)]
pub fn is_publishable_key(key: &str) -> bool {
    key_kind(key) == Some(KeyKind::Publishable)
}

/// As many UUID v7 of the millisecond `now_ms` as `random` (from
/// `crypto.getRandomValues`) has 10 bytes for,
/// one after another (36 characters each): a page tracking a burst of
/// events crosses into the wasm once per burst, not once per event.
#[wasm_bindgen(js_name = newIds)]
pub fn new_ids(now_ms: f64, random: &[u8]) -> String {
    let mut out = String::with_capacity(random.len() / 10 * 36);
    for chunk in random.chunks_exact(10) {
        let mut r = [0u8; 10];
        r.copy_from_slice(chunk);
        out.push_str(&refloop_core::id::uuid_v7(now_ms as u64, r));
    }
    out
}

/// What an answer means for the batch that was sent.
#[wasm_bindgen]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The edge took it: forget its events.
    Delivered = 0,
    /// The edge refused it as bad: sending it again cannot succeed.
    Refused = 1,
    /// It may go through later (`retryDelay` says when).
    Retry = 2,
}

/// What the answer `status` means (0: no answer came).
#[wasm_bindgen]
pub fn answer(status: u16) -> Answer {
    match delivery::verdict((status != 0).then_some(status), None, 0, 0) {
        delivery::Verdict::Delivered => Answer::Delivered,
        delivery::Verdict::Refused => Answer::Refused,
        delivery::Verdict::Retry { .. } => Answer::Retry,
    }
}

/// How long to wait before the next attempt, after `attempt` failed ones:
/// full jitter (`random` in [0, 1)) under a doubling ceiling, never sooner
/// than the edge's `Retry-After` (in ms, as the browser read it; negative or
/// NaN when there was none).
#[wasm_bindgen(js_name = retryDelay)]
pub fn retry_delay(attempt: u32, random: f64, retry_after_ms: f64) -> f64 {
    let after = (retry_after_ms >= 0.0).then_some(retry_after_ms as u64);
    delivery::retry_delay_ms(attempt, (random * 9.0e15) as u64, after) as f64
}

/// The batch of each queued event, in order: events of `sizes` bytes of JSON
/// into bodies of `envelope` bytes plus the events, each under the beacon's
/// limit or a fetch's, and the contract's count. `UNSENDABLE` (2^32 - 1): an
/// event too large to be sent at all.
#[wasm_bindgen(js_name = batchPlan)]
pub fn batch_plan(sizes: &[u32], envelope: u32, beacon: bool) -> Vec<u32> {
    delivery::batch_plan(sizes, envelope, delivery::max_body_bytes(beacon))
}

/// How many of the oldest of `len` undelivered events to drop.
#[wasm_bindgen]
pub fn overflow(len: u32) -> u32 {
    delivery::overflow(len as usize) as u32
}

/// Whether this tab may take the takeover lease (browsers without Web
/// Locks): none held (`until_ms` 0), run out, or its own.
#[wasm_bindgen(js_name = leaseFree)]
pub fn lease_free(held_by_me: bool, until_ms: f64, now_ms: f64) -> bool {
    delivery::lease_free(held_by_me, until_ms as u64, now_ms as u64)
}

/// Whether a touch at `at_ms` still counts at `now_ms` (the attribution
/// window of `days`, as the edge checks it).
#[wasm_bindgen(js_name = touchCounts)]
pub fn touch_counts(at_ms: f64, now_ms: f64, days: u32) -> bool {
    attribution::within_window(at_ms as i64, now_ms as i64, i64::from(days) * 86_400_000)
}

/// Which kept touch a signup carries: 0 the first, 1 the last, none when
/// neither holds a link; the model's own (`first_touch`) when it does.
#[wasm_bindgen(js_name = chosenTouch)]
pub fn chosen_touch(first_has_link: bool, last_has_link: bool, first_touch: bool) -> Option<u8> {
    attribution::chosen(first_has_link, last_has_link, first_touch).map(|t| match t {
        attribution::Touch::First => 0,
        attribution::Touch::Last => 1,
    })
}
