//! Property-based fuzzing of the two parsers that take input from outside:
//! the batch parser (any bytes a browser or an attacker can POST) and the
//! campaign-configuration parser (any JSON an operator can PUT). `cargo fuzz`
//! needs a nightly toolchain this machine does not have; proptest explores
//! the same space with shrinking. `FUZZ_CASES` raises the case count
//! (`make fuzz` runs a long, time-bounded round).

use proptest::prelude::*;
use refloop_core::engine::config::CampaignConfig;
use refloop_core::engine::presets::PRESETS;
use refloop_core::ingest::parse_batch;
use serde_json::{Value, json};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// Any JSON value, nested a few levels, with the strings that matter.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop_oneof![
            ".{0,40}",
            Just("signup".to_owned()),
            Just("referral_confirmed".to_owned()),
            Just("0190f3c2-8e4b-7a4e-9f7a-2b1c3d4e5f60".to_owned()),
            Just("pk_demo_refloop_public".to_owned()),
            Just("2026-11-21T00:00:00Z".to_owned()),
            Just("'; DROP TABLE events; --".to_owned()),
            Just("\u{202e}\u{200b}\0".to_owned()),
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("key".to_owned()),
                    Just("events".to_owned()),
                    Just("id".to_owned()),
                    Just("type".to_owned()),
                    Just("event".to_owned()),
                    Just("anonymous_id".to_owned()),
                    Just("timestamp".to_owned()),
                    Just("sent_at".to_owned()),
                    Just("properties".to_owned()),
                    Just("attribution".to_owned()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Arbitrary bytes: never a panic; a refusal is a client error.
    #[test]
    fn the_batch_parser_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        match parse_batch(&bytes, 1_800_000_000_000) {
            Ok(batch) => prop_assert!(batch.events.len() <= 100),
            Err(e) => prop_assert!((400..500).contains(&e.status()), "{e}"),
        }
    }

    /// Arbitrary JSON shaped like a batch: every event is accepted or
    /// rejected with a reason, and a reserved name is never accepted.
    #[test]
    fn the_batch_parser_takes_any_json(events in prop::collection::vec(any_json(), 0..12), key in any_json(), sent_at in any_json()) {
        let body = json!({"key": key, "sent_at": sent_at, "events": events}).to_string();
        if let Ok(batch) = parse_batch(body.as_bytes(), 1_800_000_000_000) {
            prop_assert_eq!(batch.events.len(), events.len());
            for e in batch.events.iter().flatten() {
                prop_assert!(e.name != "referral_confirmed");
                prop_assert!(e.anonymous_id.is_some() || e.user_id.is_some());
                prop_assert!(e.occurred_at_ms <= 1_800_000_000_000);
            }
        }
    }

    /// Arbitrary JSON as a configuration: refused with every problem named,
    /// or accepted valid, and what is accepted round-trips.
    #[test]
    fn the_config_parser_takes_any_json(v in any_json()) {
        match CampaignConfig::from_json(&v.to_string()) {
            Ok(c) => {
                prop_assert!(c.validate().is_ok());
                prop_assert_eq!(CampaignConfig::from_json(&c.to_json()).ok(), Some(c));
            }
            Err(errors) => prop_assert!(!errors.is_empty()),
        }
    }

    /// The presets with one field replaced by anything: the same guarantees,
    /// close to configurations operators really write.
    #[test]
    fn the_config_parser_takes_mutated_presets(which in 0..PRESETS.len(), field in "[a-z_]{1,24}", value in any_json()) {
        let mut base: Value = serde_json::from_str(PRESETS[which].1).unwrap();
        let fields = ["name", "mode", "quest", "point_rules", "milestones", "rewards", "caps", "fraud", "leaderboard", "referee_reward", "end_distributions", "attribution_window_days", "starts_at", "ends_at"];
        let target = fields.iter().find(|f| f.starts_with(&field[..1])).copied().unwrap_or("name");
        base[target] = value;
        match CampaignConfig::from_json(&base.to_string()) {
            Ok(c) => prop_assert!(c.validate().is_ok()),
            Err(errors) => prop_assert!(errors.iter().all(|e| !e.reason.is_empty())),
        }
    }
}
