//! The SDK's wasm in a real browser (headless Chromium through
//! wasm-bindgen-test): the functions the loader calls, with the browser's own
//! JSON parser checking what they write.

use refloop_sdk::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn is_uuid_v7(id: &str) -> bool {
    let b = id.as_bytes();
    id.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && b[14] == b'7'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
        && id
            .chars()
            .filter(|c| *c != '-')
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

fn event(id: &str) -> String {
    event_json(
        id,
        "track",
        Some("say \"hi\"".into()),
        "anon",
        None,
        "2026-01-01T00:00:00.000Z",
        Some(r#"{"n":1}"#.into()),
        None,
        None,
    )
}

#[wasm_bindgen_test]
fn ids_are_uuid_v7_ordered_by_time() {
    let a = new_id(1_800_000_000_000.0, &[0xff; 10]);
    let b = new_id(1_800_000_000_001.0, &[0; 10]);
    assert!(is_uuid_v7(&a) && is_uuid_v7(&b), "{a} {b}");
    assert!(a < b);
}

#[wasm_bindgen_test]
fn event_json_is_json_the_browser_parses() {
    let e = event("0190f3c2-8e4b-7a4e-9f7a-2b1c3d4e5f60");
    let parsed = js_sys::JSON::parse(&e).expect("valid JSON");
    assert_eq!(js_sys::Reflect::get(&parsed, &"event".into()).unwrap(), "say \"hi\"");
    assert!(js_sys::Reflect::get(&parsed, &"user_id".into()).unwrap().is_undefined());
}

#[wasm_bindgen_test]
fn the_persisted_queue_merges_caps_removes_and_batches() {
    let (a, b) = (event("a"), event("b"));
    let stored = queue_merge("", &format!("[{a},{b}]"));
    assert_eq!(queue_length(&stored), 2);
    let stored = queue_merge(&stored, &format!("[{b}]"));
    assert_eq!(queue_length(&stored), 2, "an id is stored once");
    let lines = queue_batches(&stored, "pk_k", "2026-01-01T00:00:00.000Z", 0);
    let (ids, body) = lines.trim_end().split_once('\t').unwrap();
    assert_eq!(ids, "a,b");
    let parsed = js_sys::JSON::parse(body).expect("the body is JSON");
    assert_eq!(
        js_sys::Array::from(&js_sys::Reflect::get(&parsed, &"events".into()).unwrap()).length(),
        2
    );
    assert_eq!(queue_length(&queue_remove(&stored, "a")), 1);
    assert_eq!(queue_length("garbage"), 0);
}

#[wasm_bindgen_test]
fn answers_and_keys() {
    assert_eq!(verdict(202, None, 0.0, 0, 0.5), -1.0);
    assert_eq!(verdict(400, None, 0.0, 0, 0.5), -2.0);
    assert!(verdict(503, Some("7".into()), 0.0, 0, 0.0) >= 7000.0);
    assert!(verdict(0, None, 0.0, 3, 0.9) <= 8000.0);
    assert!(is_publishable_key("pk_demo_refloop_public"));
    assert!(!is_publishable_key("sk_demo_refloop_secret"));
}
