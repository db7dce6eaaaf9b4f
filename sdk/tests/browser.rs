//! The SDK in a real browser (headless Chromium through wasm-bindgen-test):
//! ids, identity persistence, argument checks and the batch it would send.

use refloop_sdk::Client;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn config(batch_size: u32) -> JsValue {
    let c = js_sys::Object::new();
    let set = |k: &str, v: JsValue| js_sys::Reflect::set(&c, &k.into(), &v).unwrap();
    set("key", "pk_test_browser".into());
    // Nothing listens there; a long flush interval keeps the test offline.
    set("api", "http://127.0.0.1:9".into());
    set("batchSize", batch_size.into());
    set("flushMs", 600_000.into());
    c.into()
}

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

#[wasm_bindgen_test]
fn track_returns_a_fresh_uuid_v7_and_queues_the_event() {
    let client = Client::new(&config(100)).unwrap();
    let a = client.track("signup", JsValue::UNDEFINED).unwrap();
    let b = client.track("signup", JsValue::UNDEFINED).unwrap();
    assert!(is_uuid_v7(&a), "{a}");
    assert_ne!(a, b);
    assert!(a < b || a[..13] == b[..13], "ids sort by time");
    assert_eq!(client.queued_count(), 2);
}

#[wasm_bindgen_test]
fn bad_arguments_are_refused_without_queueing() {
    let client = Client::new(&config(100)).unwrap();
    assert!(client.track("", JsValue::UNDEFINED).is_err());
    assert!(client.track("   ", JsValue::UNDEFINED).is_err());
    assert!(client.track("x", "not an object".into()).is_err());
    assert!(client.track("x", js_sys::Array::new().into()).is_err());
    assert!(client.identify("", JsValue::UNDEFINED).is_err());
    assert_eq!(client.queued_count(), 0);
    assert!(Client::new(&JsValue::NULL).is_err(), "no key");
    let secret = js_sys::Object::new();
    js_sys::Reflect::set(&secret, &"key".into(), &"sk_oops_secret".into()).unwrap();
    js_sys::Reflect::set(&secret, &"api".into(), &"http://x".into()).unwrap();
    assert!(
        Client::new(&secret.into()).is_err(),
        "a secret key never goes in a page"
    );
}

#[wasm_bindgen_test]
fn the_anonymous_id_survives_a_new_instance_and_reset_replaces_it() {
    let first = Client::new(&config(100)).unwrap();
    let id = first.anonymous_id();
    assert!(is_uuid_v7(&id));
    let again = Client::new(&config(100)).unwrap();
    assert_eq!(again.anonymous_id(), id, "kept in localStorage");
    again.reset();
    assert_ne!(again.anonymous_id(), id);
    assert_eq!(Client::new(&config(100)).unwrap().anonymous_id(), again.anonymous_id());
}

#[wasm_bindgen_test]
fn the_batch_body_is_json_the_edge_accepts() {
    let events = vec![refloop_sdk_test_event("e1"), refloop_sdk_test_event("e2")];
    let body = refloop_sdk::batch_body("pk_k", "2026-01-01T00:00:00.000Z", &events);
    let parsed = js_sys::JSON::parse(&body).expect("valid JSON");
    let list = js_sys::Reflect::get(&parsed, &"events".into()).unwrap();
    assert_eq!(js_sys::Array::from(&list).length(), 2);
    assert_eq!(js_sys::Reflect::get(&parsed, &"key".into()).unwrap(), "pk_k");
}

fn refloop_sdk_test_event(id: &str) -> refloop_sdk::QueuedEvent {
    refloop_sdk::QueuedEvent {
        id: id.into(),
        json: format!(r#"{{"id":"{id}","type":"track"}}"#),
    }
}
