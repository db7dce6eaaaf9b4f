//! Properties of the engine over arbitrary event sequences, with duplicates
//! and in any order: score = sum of ledger; an event takes effect once; a
//! referee has one referrer; a milestone is granted at most once per time it is
//! reached; caps are never exceeded; replaying under the same configuration
//! corrects nothing.

mod common;

use common::T0;
use proptest::prelude::*;
use refloop_core::engine::config::CampaignConfig;
use refloop_core::engine::model::{HOUR_MS, ReferralId};
use refloop_core::engine::program::{EngineEvent, Input, Program, SIGNUP};
use refloop_core::engine::referral::Touch;
use std::collections::BTreeMap;

const CONFIG: &str = r#"{
  "name": "property",
  "quest": {"steps": [{"event": "signup"}, {"event": "verified"}, {"event": "paid", "trusted": true}], "window_days": 5},
  "point_rules": [
    {"id": "join", "event": "signup", "to": "self", "points": 5},
    {"id": "verify", "event": "verified", "to": "self", "points": 3},
    {"id": "each", "event": "referral_confirmed", "to": "referrer", "points": 10},
    {"id": "first", "event": "referral_confirmed", "to": "referrer", "points": 7, "when": {"first_referral_only": true}},
    {"id": "third", "event": "referral_confirmed", "to": "referrer", "points": 30, "when": {"referral_count": {"equals": 3}}},
    {"id": "friend-paid", "event": "paid", "to": "referrer", "points": 4, "trusted": true},
    {"id": "penalty", "event": "refund", "to": "self", "points": -6}
  ],
  "rewards": [
    {"id": "credit", "name": "$10", "kind": {"type": "credit", "amount_minor": 1000, "currency": "USD"}},
    {"id": "bonus", "name": "Bonus points", "kind": {"type": "points", "points": 25}},
    {"id": "coupon", "name": "Coupon", "kind": {"type": "coupon", "prefix": "F"}, "max_grants": 1}
  ],
  "milestones": [
    {"id": "every-2", "every": 2, "reward": "credit"},
    {"id": "at-3", "confirmed_referrals": 3, "reward": "bonus"}
  ],
  "referee_reward": "coupon",
  "caps": {"budget": {"amount_minor": 1000, "currency": "USD"}, "max_winners": 2,
           "per_referrer_max_confirmed": 4, "per_referrer_max_points": 60},
  "fraud": {"velocity_per_hour": 6},
  "leaderboard": {"top_n": 3}
}"#;

#[derive(Debug, Clone)]
enum Action {
    Signup {
        who: u8,
        by: Option<u8>,
    },
    Step {
        who: u8,
        step: u8,
        trusted: bool,
    },
    Review {
        referral: u8,
        approve: bool,
    },
    Wait {
        hours: u8,
    },
    /// Send an earlier input again.
    Resend {
        index: u8,
    },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        // Few referrers (0..3) and many referees, so referrers reach milestones and caps.
        3 => (0u8..12, proptest::option::of(0u8..3)).prop_map(|(who, by)| Action::Signup { who, by }),
        6 => (0u8..12, 0u8..5, proptest::bool::weighted(0.7)).prop_map(|(who, step, trusted)| Action::Step { who, step, trusted }),
        1 => (0u8..12, any::<bool>()).prop_map(|(referral, approve)| Action::Review { referral, approve }),
        1 => (0u8..20).prop_map(|hours| Action::Wait { hours }),
        1 => any::<u8>().prop_map(|index| Action::Resend { index }),
    ]
}

/// Turns actions into inputs and applies them, checking every invariant after
/// each. Returns the program and the inputs it was given.
fn run(actions: &[Action], with_resends: bool) -> (Program, Vec<Input>) {
    let config = CampaignConfig::from_json(CONFIG).unwrap();
    let mut program = Program::new(config, 11).unwrap();
    let mut inputs: Vec<Input> = Vec::new();
    let mut now = T0 + 1000;
    let mut next = 0u64;
    for a in actions {
        let input = match a {
            Action::Signup { who, by } => {
                next += 1;
                let mut e = EngineEvent::new(format!("e{next}"), SIGNUP, format!("a{who}"), now);
                if who % 4 == 0 {
                    e.ip_hash = Some("shared-ip".into());
                }
                e.touch = by
                    .and_then(|b| program.find(Some(&format!("a{b}")), None))
                    .map(|p| Touch {
                        code: Some(program.participant(p).map(|x| x.code.clone()).unwrap_or_default()),
                        invitation: None,
                        at: now,
                    });
                Input::Event(Box::new(e))
            }
            Action::Step { who, step, trusted } => {
                next += 1;
                let name = ["verified", "paid", "verified", "refund", "page"][*step as usize];
                let mut e = EngineEvent::new(format!("e{next}"), name, format!("a{who}"), now);
                e.trusted = *trusted;
                Input::Event(Box::new(e))
            }
            Action::Review { referral, approve } => Input::Review {
                referral: ReferralId(u64::from(*referral) + 1),
                approve: *approve,
                at: now,
            },
            Action::Wait { hours } => {
                now += i64::from(*hours) * HOUR_MS;
                Input::Tick { now }
            }
            // Only events carry an id that makes a resend a no-op; a review
            // or a tick repeated is a new decision, not a resend.
            Action::Resend { index } => {
                let events: Vec<&Input> = inputs.iter().filter(|i| matches!(i, Input::Event(_))).collect();
                if !with_resends || events.is_empty() {
                    continue;
                }
                events[*index as usize % events.len()].clone()
            }
        };
        program.apply(input.clone());
        if let Err(e) = program.check() {
            panic!("invariant broken after {input:?}: {e}");
        }
        inputs.push(input);
    }
    (program, inputs)
}

fn ledger_by_key(p: &Program) -> BTreeMap<String, i64> {
    p.ledger()
        .entries()
        .iter()
        .map(|e| (e.idempotency_key.clone(), e.points))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_any_sequence(actions in proptest::collection::vec(action(), 1..120)) {
        let (program, _) = run(&actions, true);
        for p in program.participants() {
            let sum: i64 = program.ledger().entries_of(p.id).map(|e| e.points).sum();
            prop_assert_eq!(program.score(p.id), sum);
        }
    }

    #[test]
    fn resending_changes_nothing(actions in proptest::collection::vec(action(), 1..80)) {
        let (with, _) = run(&actions, true);
        let (without, _) = run(&actions, false);
        prop_assert_eq!(ledger_by_key(&with), ledger_by_key(&without));
        prop_assert_eq!(with.grants().len(), without.grants().len());
        prop_assert_eq!(with.referrals(), without.referrals());
    }

    #[test]
    fn replaying_under_the_same_configuration_corrects_nothing(actions in proptest::collection::vec(action(), 1..80)) {
        let (mut program, _) = run(&actions, true);
        let config = program.config().clone();
        let fixes = program.replay(config, "same", T0).unwrap();
        prop_assert!(fixes.is_empty(), "{:?}", fixes);
    }

    /// The same events in another order keep every invariant (checked inside `run`).
    #[test]
    fn any_order_keeps_the_invariants(mut actions in proptest::collection::vec(action(), 1..80), seed in any::<u64>()) {
        let mut rng = refloop_core::engine::rewards::SplitMix64::new(seed);
        for i in (1..actions.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            actions.swap(i, j);
        }
        let _ = run(&actions, true);
    }
}

/// The generator reaches the states the properties are about (confirmations,
/// reviews, milestones, caps); otherwise the properties above would hold
/// vacuously.
#[test]
fn the_generator_reaches_the_interesting_states() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use refloop_core::engine::model::{ReferralStatus, Review};
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(action(), 60..120);
    let (mut confirmed, mut reviewed, mut milestones, mut capped, mut expired, mut duplicates) = (0, 0, 0, 0, 0, 0);
    for _ in 0..200 {
        let actions = strategy.new_tree(&mut runner).unwrap().current();
        let config = CampaignConfig::from_json(CONFIG).unwrap();
        let (program, inputs) = run(&actions, true);
        confirmed += program
            .referrals()
            .iter()
            .filter(|r| r.status == ReferralStatus::Confirmed)
            .count();
        expired += program
            .referrals()
            .iter()
            .filter(|r| r.status == ReferralStatus::Expired)
            .count();
        reviewed += program
            .referrals()
            .iter()
            .filter(|r| matches!(r.review, Review::Approved | Review::Rejected))
            .count();
        milestones += program
            .grants()
            .iter()
            .filter(|g| matches!(g.source, refloop_core::engine::rewards::GrantSource::Milestone { .. }))
            .count();
        // Replaying the inputs once more: every event is a duplicate now.
        let mut again = Program::new(config, 11).unwrap();
        for i in &inputs {
            let first = again.apply(i.clone());
            capped += first.capped.len();
            duplicates += usize::from(first.duplicate);
        }
    }
    eprintln!(
        "confirmed {confirmed} reviewed {reviewed} milestones {milestones} capped {capped} expired {expired} duplicates {duplicates}"
    );
    for (what, n) in [
        ("confirmed", confirmed),
        ("reviewed", reviewed),
        ("milestones", milestones),
        ("capped", capped),
        ("expired", expired),
        ("duplicates", duplicates),
    ] {
        assert!(n > 0, "the generator never produced {what}");
    }
}
