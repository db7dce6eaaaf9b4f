//! Every preset validates, and a realistic sequence of events through each
//! gives the rewards and points its description promises.

mod common;

use common::*;
use refloop_core::engine::config::{CampaignConfig, Period};
use refloop_core::engine::model::ReferralStatus;
use refloop_core::engine::presets::{self, PRESETS};
use refloop_core::engine::program::Input;
use refloop_core::engine::rewards::GrantStatus;
use serde_json::json;

fn driver(name: &str) -> Driver {
    Driver::with(presets::preset(name).unwrap_or_else(|| panic!("preset {name} does not validate")))
}

#[test]
fn every_preset_validates_and_round_trips() {
    assert_eq!(PRESETS.len(), 10);
    for (name, json) in PRESETS {
        let c = CampaignConfig::from_json(json).unwrap_or_else(|e| panic!("{name}: {e:#?}"));
        assert_eq!(CampaignConfig::from_json(&c.to_json()).unwrap(), c, "{name}");
    }
}

#[test]
fn waitlist_moves_referrers_up_and_rewards_the_top_three() {
    let mut d = driver("waitlist");
    for who in ["ana", "ben", "cat", "dan"] {
        d.signup(who, None);
        d.event(who, "email_verified");
    }
    for (who, n) in [("dan", 4), ("cat", 2), ("ben", 1)] {
        for i in 0..n {
            let f = format!("{who}{i}");
            d.tick(2 * 3_600_000);
            d.signup(&f, Some(who));
            d.event(&f, "email_verified");
        }
    }
    let board = d.program.leaderboard().board(Period::All).unwrap();
    assert_eq!(board.rank(d.id("dan")), Some(1));
    assert_eq!(board.rank(d.id("cat")), Some(2));
    assert_eq!(board.rank(d.id("ben")), Some(3));
    assert_eq!(d.score("dan"), 15 + 40);
    d.program.apply(Input::End { at: d.now, seed: 9 });
    for who in ["dan", "cat", "ben"] {
        assert_eq!(d.rewards_of(who), ["early-access"], "{who}");
    }
    assert!(d.rewards_of("ana").is_empty());
    d.check();
}

#[test]
fn signup_pulse_rewards_both_sides() {
    let mut d = driver("signup");
    d.signup("ana", None);
    d.signup("ben", Some("ana"));
    assert_eq!(d.rewards_of("ana"), ["thanks"]);
    assert_eq!(d.rewards_of("ben"), ["welcome"]);
    let credit: i64 = d
        .program
        .grants()
        .iter()
        .filter_map(|g| g.value.as_ref())
        .map(|v| v.amount_minor)
        .sum();
    assert_eq!(credit, 1000);
    d.check();
}

#[test]
fn conversion_pulse_pays_per_purchase_and_a_bonus_at_three() {
    let mut d = driver("conversion");
    d.signup("ana", None);
    for i in 0..3 {
        let f = format!("buyer{i}");
        d.tick(2 * 3_600_000);
        d.signup(&f, Some("ana"));
        d.trusted(&f, "purchase_completed");
    }
    assert_eq!(d.rewards_of("ana"), ["twenty", "twenty", "twenty"]);
    assert_eq!(d.score("ana"), 100);
    assert!(d.rewards_of("buyer0")[0] == "friend-coupon");
    d.check();
}

#[test]
fn reactivation_pulse_rewards_only_returning_users() {
    let mut d = driver("reactivation");
    d.send("quiet", "identify", |e| {
        e.user_id = Some("u-quiet".into());
        e.traits.insert("lifecycle_stage".into(), json!("inactive"));
    });
    d.send("busy", "identify", |e| {
        e.user_id = Some("u-busy".into());
        e.traits.insert("lifecycle_stage".into(), json!("active"));
    });
    for who in ["quiet", "busy"] {
        d.event(who, "user_returned");
        d.event(who, "core_action");
        d.event(who, "core_action");
    }
    assert_eq!(d.score("quiet"), 30);
    assert_eq!(d.score("busy"), 0);
    d.program.apply(Input::End { at: d.now, seed: 1 });
    assert_eq!(d.rewards_of("quiet"), ["welcome-back"]);
    assert!(d.rewards_of("busy").is_empty());
    d.check();
}

#[test]
fn cross_sell_pulse_pays_the_upgrader_and_their_referrer() {
    let mut d = driver("cross_sell");
    d.signup("ana", None);
    // Plans come from the site's server: trusted rules read only its traits.
    d.send("ben", "signup", |e| {
        e.traits.insert("plan".into(), json!("free"));
        e.touch = None;
        e.trusted = true;
    });
    // Ben was not referred; Cat is, by Ana.
    d.signup("cat", Some("ana"));
    d.send("cat", "identify", |e| {
        e.traits.insert("plan".into(), json!("starter"));
        e.trusted = true;
    });
    d.trusted("ben", "feature_upgraded");
    d.trusted("cat", "feature_upgraded");
    assert_eq!(d.score("ben"), 30);
    assert_eq!(d.score("cat"), 30);
    assert_eq!(d.score("ana"), 15);
    assert_eq!(d.rewards_of("cat"), ["upgrade-discount"]);
    d.check();
}

#[test]
fn renewal_pulse_rewards_loyalty() {
    let mut d = driver("renewal");
    d.send("old", "identify", |e| {
        e.user_id = Some("u-old".into());
        e.traits.insert("tenure_days".into(), json!(400));
        e.trusted = true;
    });
    d.send("new", "identify", |e| {
        e.user_id = Some("u-new".into());
        e.traits.insert("tenure_days".into(), json!(20));
        e.trusted = true;
    });
    d.trusted("old", "subscription_renewed");
    d.trusted("new", "subscription_renewed");
    assert_eq!(d.score("old"), 50);
    assert_eq!(d.score("new"), 10);
    d.signup("ref", Some("old"));
    d.trusted("ref", "subscription_renewed");
    assert_eq!(d.rewards_of("old"), ["free-month"]);
    d.check();
}

#[test]
fn feedback_pulse_gift_cards_wait_for_review() {
    let mut d = driver("feedback");
    d.send("vet", "identify", |e| {
        e.user_id = Some("u-vet".into());
        e.traits.insert("tenure_days".into(), json!(365));
        e.trusted = true;
    });
    d.trusted("vet", "review_verified");
    d.program.apply(Input::End { at: d.now, seed: 3 });
    let g = d.program.grants().iter().find(|g| g.reward == "gift-card").unwrap();
    assert_eq!(g.status, GrantStatus::PendingReview);
    d.check();
}

#[test]
fn product_education_pulse_badges_and_a_reproducible_raffle() {
    let run = || {
        let mut d = driver("product_education");
        for (who, events) in [
            ("a", vec!["tutorial_completed"]),
            ("b", vec!["tutorial_completed", "feature_first_use", "power_user"]),
            ("c", vec!["feature_first_use"]),
        ] {
            d.send(who, "identify", |e| e.user_id = Some(format!("u-{who}")));
            for ev in events {
                d.event(who, ev);
            }
        }
        d.program.apply(Input::End { at: d.now, seed: 2026 });
        d.check();
        d
    };
    let d = run();
    assert_eq!(d.score("b"), 80);
    assert!(d.rewards_of("b").contains(&"expert-badge".to_string()));
    assert!(!d.rewards_of("a").contains(&"expert-badge".to_string()));
    let prize = |d: &Driver| {
        d.program
            .grants()
            .iter()
            .filter(|g| g.reward == "prize")
            .map(|g| g.participant)
            .collect::<Vec<_>>()
    };
    assert_eq!(prize(&d).len(), 1);
    assert_eq!(prize(&d), prize(&run()), "the same seed draws the same winner");
}

#[test]
fn switch_up_pulse_confirms_on_team_migration_and_tiers_up() {
    let mut d = driver("switch_up");
    d.signup("ana", None);
    for i in 0..5 {
        let f = format!("team{i}");
        d.tick(2 * 3_600_000);
        let rid = d.signup(&f, Some("ana")).referral.unwrap();
        d.event(&f, "data_imported");
        d.event(&f, "team_migrated");
        assert_eq!(
            d.program.referral(rid).unwrap().status,
            ReferralStatus::Pending,
            "needs the server's word"
        );
        d.trusted(&f, "team_migrated");
        assert_eq!(d.program.referral(rid).unwrap().status, ReferralStatus::Confirmed);
    }
    assert_eq!(d.score("ana"), 500);
    assert_eq!(
        refloop_core::engine::rewards::tier(d.program.config(), 5),
        Some("AMBASSADOR")
    );
    let amb = d.program.grants().iter().find(|g| g.reward == "ambassador").unwrap();
    assert_eq!(amb.status, GrantStatus::PendingReview);
    assert_eq!(
        d.score("team0"),
        25 + 75,
        "the browser's team_migrated counts for points, not for the quest"
    );
    d.check();
}

#[test]
fn newsletter_pulse_ranks_by_friends_and_awards_badges() {
    let mut d = driver("newsletter");
    d.send("ana", "signup", |_| {});
    d.send("ben", "signup", |_| {});
    for i in 0..5 {
        let f = format!("reader{i}");
        d.tick(2 * 3_600_000);
        d.signup(&f, Some("ana"));
        d.event(&f, "newsletter_subscribed");
    }
    d.signup("solo", Some("ben"));
    d.event("solo", "newsletter_subscribed");
    assert_eq!(d.rewards_of("ana"), ["b5"]);
    assert_eq!(d.rewards_of("reader0"), ["ebook"]);
    let board = d.program.leaderboard().board(Period::All).unwrap();
    assert_eq!(board.score(d.id("ana")), Some(5), "ranked by confirmed referrals");
    assert_eq!(board.rank(d.id("ben")), Some(2));
    d.check();
}
