//! The SDK's wasm in a real browser (headless Chromium through
//! wasm-bindgen-test): the functions the loader calls, as it calls them.

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

#[wasm_bindgen_test]
fn ids_are_uuid_v7_ordered_by_time() {
    let a = new_ids(1_800_000_000_000.0, &[0xff; 10]);
    let b = new_ids(1_800_000_000_001.0, &[0; 10]);
    assert!(is_uuid_v7(&a) && is_uuid_v7(&b), "{a} {b}");
    assert!(a < b);
    let burst = new_ids(1_800_000_000_000.0, &[7; 30]);
    assert_eq!(burst.len(), 3 * 36);
    assert!((0..3).all(|i| is_uuid_v7(&burst[i * 36..i * 36 + 36])));
}

#[wasm_bindgen_test]
fn answers_and_waits() {
    assert_eq!(answer(202), Answer::Delivered);
    assert_eq!(answer(400), Answer::Refused);
    assert_eq!(answer(429), Answer::Retry);
    assert_eq!(answer(0), Answer::Retry, "no answer");
    assert_eq!(retry_delay(0, 0.0, f64::NAN), 0.0);
    assert_eq!(retry_delay(0, 0.5, 30_000.0), 30_000.0, "Retry-After is a floor");
    assert!(retry_delay(3, 0.999, -1.0) <= 8_000.0);
}

#[wasm_bindgen_test]
fn a_queue_is_cut_under_the_beacons_limit() {
    // 32,000 + 30,000 bytes: over a beacon's 60 KiB, under a fetch's 64 KiB.
    let plan = batch_plan(&[32_000, 30_000, 10], 60, true);
    assert_eq!(plan, [0, 1, 1]);
    assert_eq!(batch_plan(&[32_000, 30_000], 60, false), [0, 0], "a fetch takes 64 KiB");
    assert_eq!(batch_plan(&[70_000], 60, false), [u32::MAX]);
    assert_eq!(overflow(1_003), 3);
}

#[wasm_bindgen_test]
fn keys_leases_and_touches() {
    assert!(is_publishable_key("pk_demo_refloop_public"));
    assert!(!is_publishable_key("sk_demo_refloop_secret"));
    assert!(lease_free(false, 0.0, 1_000.0));
    assert!(!lease_free(false, 16_000.0, 2_000.0), "another tab's");
    assert!(lease_free(true, 16_000.0, 2_000.0), "its own");
    assert!(touch_counts(0.0, 86_400_000.0, 1));
    assert!(!touch_counts(0.0, 86_400_001.0, 1));
    assert_eq!(chosen_touch(true, true, false), Some(1));
    assert_eq!(chosen_touch(true, false, false), Some(0));
    assert_eq!(chosen_touch(false, false, true), None);
}
