//! refloop's browser SDK: the decisions, in wasm. The loader (`js/loader.js`)
//! is the browser shell: it owns the page's APIs (storage, cookies, timers,
//! `fetch`, `sendBeacon`, Web Locks, listeners) and asks this module what to
//! do — ids, event JSON, the persisted queue's text, batches, what an answer
//! means and when to retry, attribution, email hashes. Keeping the browser
//! calls in plain JavaScript keeps the download small: every web-sys call
//! costs wasm and glue, a line of JavaScript costs a line.
//!
//! Everything here is a pure function of its arguments (time and randomness
//! come in from the shell), mostly thin wrappers of `refloop-core`.

mod queue;

use queue::{Queue, QueuedEvent};
use refloop_core::delivery;
use refloop_core::keys::{KeyKind, key_kind};
use refloop_core::limits::BEACON_CHUNK_BYTES;
use wasm_bindgen::prelude::*;

pub use queue::{EventFields, batch_body, event_json as event_json_of};

/// Whether `key` can be a publishable key (a secret key never goes in a page).
#[wasm_bindgen(js_name = isPublishableKey)]
pub fn is_publishable_key(key: &str) -> bool {
    key_kind(key) == Some(KeyKind::Publishable)
}

/// A UUID v7 from the clock and 10 random bytes (`crypto.getRandomValues`).
#[wasm_bindgen(js_name = newId)]
pub fn new_id(now_ms: f64, random: &[u8]) -> String {
    let mut r = [0u8; 10];
    for (i, b) in random.iter().take(10).enumerate() {
        r[i] = *b;
    }
    refloop_core::id::uuid_v7(now_ms as u64, r)
}

/// The JSON text of one event; `properties`, `traits` and `attribution` come
/// as JSON text already (the browser's `JSON.stringify`), so the wasm has no
/// JSON library.
#[wasm_bindgen(js_name = eventJson)]
#[allow(clippy::too_many_arguments)]
pub fn event_json(
    id: &str,
    kind: &str,
    name: Option<String>,
    anonymous_id: &str,
    user_id: Option<String>,
    timestamp: &str,
    properties: Option<String>,
    traits: Option<String>,
    attribution: Option<String>,
) -> String {
    queue::event_json(&EventFields {
        id,
        kind,
        name: name.as_deref(),
        anonymous_id,
        user_id: user_id.as_deref(),
        timestamp,
        properties: properties.as_deref(),
        traits: traits.as_deref(),
        attribution: attribution.as_deref(),
    })
}

/// The persisted queue with `events` (a JSON array text) appended: capped at
/// 1000, oldest dropped, an id stored once.
#[wasm_bindgen(js_name = queueMerge)]
pub fn queue_merge(stored: &str, events: &str) -> String {
    let new = delivery::split_array(events).unwrap_or_default();
    delivery::merge(stored, &new)
}

/// The persisted queue without the events of `ids` (comma-separated).
#[wasm_bindgen(js_name = queueRemove)]
pub fn queue_remove(stored: &str, ids: &str) -> String {
    let ids: Vec<&str> = ids.split(',').filter(|s| !s.is_empty()).collect();
    delivery::remove(stored, &ids)
}

/// How many events the persisted queue holds.
#[wasm_bindgen(js_name = queueLength)]
pub fn queue_length(stored: &str) -> usize {
    delivery::split_array(stored).map_or(0, |v| v.len())
}

/// The queue cut into request bodies of at most `max_bytes` (0: the beacon
/// limit) and 100 events, in order, one per line: `ids<TAB>body`, ids
/// comma-separated. JSON escapes control characters, so a body has no tab or
/// newline of its own.
#[wasm_bindgen(js_name = queueBatches)]
pub fn queue_batches(stored: &str, key: &str, sent_at: &str, max_bytes: usize) -> String {
    let mut q = Queue::default();
    for json in delivery::split_array(stored).unwrap_or_default() {
        if let Some(id) = delivery::event_id(json) {
            q.push(QueuedEvent {
                id: id.to_owned(),
                json: json.to_owned(),
            });
        }
    }
    let max = if max_bytes == 0 { BEACON_CHUNK_BYTES } else { max_bytes };
    let mut out = String::new();
    for batch in q.drain_batches(key, sent_at, max) {
        for (i, e) in batch.events.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&e.id);
        }
        out.push('\t');
        out.push_str(&batch.body(key, sent_at));
        out.push('\n');
    }
    out
}

/// What an answer means: -1 delivered, -2 refused (drop it), else the wait in
/// ms before a retry. `status` 0 means no answer came.
#[wasm_bindgen]
pub fn verdict(status: u16, retry_after: Option<String>, now_ms: f64, attempt: u32, random: f64) -> f64 {
    let status = (status != 0).then_some(status);
    let after = retry_after.and_then(|v| delivery::parse_retry_after(&v, now_ms as u64));
    match delivery::verdict(status, after, attempt, (random * 9.0e15) as u64) {
        delivery::Verdict::Delivered => -1.0,
        delivery::Verdict::Refused => -2.0,
        delivery::Verdict::Retry { after_ms } => after_ms as f64,
    }
}

/// The send lease to write, if this tab may send (browsers without Web Locks).
#[wasm_bindgen(js_name = takeLease)]
pub fn take_lease(current: Option<String>, me: &str, now_ms: f64, ttl_ms: f64) -> Option<String> {
    delivery::take_lease(current.as_deref(), me, now_ms as u64, ttl_ms as u64)
}
