//! The engine driven through whole stories: referrals, quests, rules, rewards,
//! reviews, caps, versions, replay and the end of a campaign.

mod common;

use common::*;
use refloop_core::engine::config::CampaignConfig;
use refloop_core::engine::config::Period;
use refloop_core::engine::leaderboard::Row;
use refloop_core::engine::model::{ReferralStatus, Review};
use refloop_core::engine::program::{Input, Notice};
use refloop_core::engine::referral::{RefusalReason, Touch};
use refloop_core::engine::rewards::GrantStatus;

const WAITLIST: &str = refloop_core::engine::presets::WAITLIST;

#[test]
fn a_referral_from_click_to_confirmation() {
    let mut d = Driver::new(WAITLIST);
    d.signup("ana", None);
    assert_eq!(d.score("ana"), 10, "signup points for herself");
    let code = d.code("ana");
    assert_eq!(code.len(), 8);
    assert!(
        d.program
            .apply(Input::Click {
                code: code.clone(),
                at: d.now
            })
            .refusal
            .is_none()
    );

    let out = d.signup("ben", Some("ana"));
    let rid = out.referral.expect("a referral");
    assert_eq!(d.program.referral(rid).unwrap().status, ReferralStatus::Pending);
    assert_eq!(d.confirmed("ana"), 0);

    let out = d.event("ben", "email_verified");
    assert!(
        out.notices
            .iter()
            .any(|n| matches!(n, Notice::ReferralConfirmed { .. }))
    );
    assert!(
        out.notices
            .iter()
            .any(|n| matches!(n, Notice::MilestoneReached { milestone, .. } if milestone == "starter"))
    );
    assert_eq!(d.program.referral(rid).unwrap().status, ReferralStatus::Confirmed);
    assert_eq!(d.confirmed("ana"), 1);
    assert_eq!(d.score("ana"), 10 + 10);
    assert_eq!(d.score("ben"), 10 + 5);
    assert_eq!(d.program.funnel().confirmed, 1);
    assert_eq!(d.program.funnel().clicks, 1);
    d.check();
}

#[test]
fn an_event_id_takes_effect_once() {
    let mut d = Driver::new(WAITLIST);
    let first = d.signup("ana", None);
    assert_eq!(first.entries.len(), 1);
    let replayed = d.program.log()[0].clone();
    let again = d.program.apply(replayed);
    assert!(again.duplicate);
    assert!(again.entries.is_empty());
    assert_eq!(d.score("ana"), 10);
}

#[test]
fn the_fifth_referral_pays_the_bonus_once_and_tiers_follow() {
    let mut d = Driver::new(WAITLIST);
    d.signup("ana", None);
    for i in 0..6 {
        let friend = format!("friend{i}");
        d.tick(2 * 3_600_000); // slow enough not to trip the velocity signal
        d.signup(&friend, Some("ana"));
        d.event(&friend, "email_verified");
    }
    assert_eq!(d.confirmed("ana"), 6);
    assert_eq!(d.score("ana"), 10 + 6 * 10 + 50);
    let bonus = d
        .program
        .ledger()
        .entries_of(d.id("ana"))
        .filter(|e| e.idempotency_key.contains("fifth-referral"))
        .count();
    assert_eq!(bonus, 1);
    assert_eq!(refloop_core::engine::rewards::tier(d.program.config(), 6), Some("PRO"));
    d.check();
}

#[test]
fn refusals_come_with_reasons() {
    let mut d = Driver::new(WAITLIST);
    d.signup("ana", None);
    let now = d.now;
    let unknown = d.send("ben", "signup", |e| {
        e.touch = Some(Touch {
            code: Some("NOSUCH23".into()),
            invitation: None,
            at: now,
        })
    });
    assert_eq!(unknown.refusal, Some(RefusalReason::UnknownCode));
    assert!(unknown.referral.is_none());
    // Ana clicks her own link in her own browser.
    let code = d.code("ana");
    let own = d.send("ana", "signup", |e| {
        e.touch = Some(Touch {
            code: Some(code.clone()),
            invitation: None,
            at: now,
        })
    });
    assert_eq!(own.refusal, Some(RefusalReason::SelfReferral));
    // Ben was not referred at his signup; a second signup with a code does not change that? It does:
    // he has no referral yet, so the later attributed signup creates one.
    d.signup("cat", Some("ana"));
    let twice = d.signup("cat", Some("ben"));
    assert_eq!(twice.refusal, Some(RefusalReason::AlreadyReferred));
    assert_eq!(
        d.program.referral_of(d.id("cat")).unwrap().referrer,
        d.id("ana"),
        "one referrer, the first"
    );
    d.check();
}

#[test]
fn a_flagged_referral_waits_for_review_and_stays_off_the_leaderboard() {
    let mut d = Driver::new(WAITLIST);
    d.send("ana", "signup", |e| e.ip_hash = Some("same-ip".into()));
    let code = d.code("ana");
    let now = d.now;
    let out = d.send("sock", "signup", |e| {
        e.ip_hash = Some("same-ip".into());
        e.touch = Some(Touch {
            code: Some(code),
            invitation: None,
            at: now,
        });
    });
    let rid = out.referral.unwrap();
    let r = d.program.referral(rid).unwrap();
    assert_eq!(r.review, Review::Pending);
    assert_eq!(r.flags, vec![refloop_core::engine::fraud::FraudFlag::SharedIp]);
    d.event("sock", "email_verified");
    assert_eq!(d.program.referral(rid).unwrap().status, ReferralStatus::Confirmed);
    assert_eq!(d.confirmed("ana"), 0, "does not count while under review");
    assert_eq!(d.score("ana"), 10, "no referral points yet");
    let board = d.program.leaderboard().board(Period::All).unwrap();
    assert_eq!(board.score(d.id("ana")), Some(10));

    let approved = d.program.apply(Input::Review {
        referral: rid,
        approve: true,
        at: d.now,
    });
    assert!(approved.error.is_none());
    assert_eq!(d.confirmed("ana"), 1);
    assert_eq!(d.score("ana"), 20);
    let again = d.program.apply(Input::Review {
        referral: rid,
        approve: true,
        at: d.now,
    });
    assert!(again.error.is_some(), "a review happens once");
    assert_eq!(d.score("ana"), 20);
    d.check();
}

#[test]
fn a_rejected_review_pays_nothing() {
    let mut d = Driver::new(WAITLIST);
    d.send("ana", "signup", |e| e.device_id = Some("phone".into()));
    let code = d.code("ana");
    let now = d.now;
    let rid = d
        .send("sock", "signup", |e| {
            e.device_id = Some("phone".into());
            e.touch = Some(Touch {
                code: Some(code),
                invitation: None,
                at: now,
            });
        })
        .referral
        .unwrap();
    d.event("sock", "email_verified");
    d.program.apply(Input::Review {
        referral: rid,
        approve: false,
        at: d.now,
    });
    assert_eq!(d.program.referral(rid).unwrap().status, ReferralStatus::Rejected);
    assert_eq!(d.confirmed("ana"), 0);
    assert_eq!(d.score("ana"), 10);
    d.check();
}

#[test]
fn invitations_are_single_use() {
    let mut d = Driver::new(
        r#"{"name":"invites","mode":"invite","quest":{"steps":[{"event":"signup"}]},
        "point_rules":[{"id":"r","event":"referral_confirmed","to":"referrer","points":7}]}"#,
    );
    d.signup("ana", None);
    let token = d
        .program
        .apply(Input::Invite {
            participant: d.id("ana"),
            at: d.now,
        })
        .invitation
        .unwrap()
        .token;
    let now = d.now;
    let touch = Touch {
        code: None,
        invitation: Some(token.clone()),
        at: now,
    };
    let t = touch.clone();
    let first = d.send("ben", "signup", |e| e.touch = Some(t));
    assert!(first.referral.is_some());
    assert_eq!(d.score("ana"), 7);
    let second = d.send("cat", "signup", |e| e.touch = Some(touch));
    assert_eq!(second.refusal, Some(RefusalReason::InvitationClaimed));
    // A code is no use in invite mode.
    let code = d.code("ana");
    let wrong = d.send("dan", "signup", |e| {
        e.touch = Some(Touch {
            code: Some(code),
            invitation: None,
            at: now,
        })
    });
    assert_eq!(wrong.refusal, Some(RefusalReason::WrongMode));
    d.check();
}

#[test]
fn a_trusted_step_needs_a_server_event_and_late_steps_expire() {
    let mut d = Driver::new(refloop_core::engine::presets::CONVERSION);
    d.signup("ana", None);
    let rid = d.signup("ben", Some("ana")).referral.unwrap();
    d.event("ben", "purchase_completed");
    assert_eq!(
        d.program.referral(rid).unwrap().status,
        ReferralStatus::Pending,
        "the browser cannot confirm a purchase"
    );
    d.trusted("ben", "purchase_completed");
    assert_eq!(d.program.referral(rid).unwrap().status, ReferralStatus::Confirmed);
    assert_eq!(d.rewards_of("ana"), ["twenty"]);
    let coupon = d.program.grants().iter().find(|g| g.reward == "friend-coupon").unwrap();
    assert!(coupon.token.as_deref().unwrap().starts_with("FRIEND-"));

    let late = d.signup("cat", Some("ana")).referral.unwrap();
    d.tick(31 * DAY);
    d.trusted("cat", "purchase_completed");
    assert_eq!(d.program.referral(late).unwrap().status, ReferralStatus::Expired);
    let slow = d.signup("dan", Some("ana")).referral.unwrap();
    d.tick(31 * DAY);
    d.program.apply(Input::Tick { now: d.now });
    assert_eq!(d.program.referral(slow).unwrap().status, ReferralStatus::Expired);
    assert_eq!(d.confirmed("ana"), 1);
    d.check();
}

#[test]
fn caps_stop_grants_with_a_reason_and_hold() {
    let mut d = Driver::new(
        r#"{"name":"capped","quest":{"steps":[{"event":"signup"}]},
        "rewards":[{"id":"ten","name":"$10","kind":{"type":"credit","amount_minor":1000,"currency":"USD"}}],
        "milestones":[{"id":"each","every":1,"reward":"ten"}],
        "caps":{"budget":{"amount_minor":2500,"currency":"USD"},"per_referrer_max_confirmed":4}}"#,
    );
    d.signup("ana", None);
    let mut capped = Vec::new();
    for i in 0..6 {
        d.tick(3_600_000 * 2);
        let out = d.signup(&format!("f{i}"), Some("ana"));
        capped.extend(out.capped);
        if i >= 4 {
            assert_eq!(out.refusal, Some(RefusalReason::ReferrerCapReached));
        }
    }
    assert_eq!(d.rewards_of("ana").len(), 2, "the budget holds two $10 grants");
    assert!(capped.iter().any(|c| c.contains("budget")), "{capped:?}");
    assert_eq!(d.confirmed("ana"), 4);
    d.check();
}

#[test]
fn referrals_stay_pinned_to_their_version() {
    let mut d = Driver::new(
        r#"{"name":"v","quest":{"steps":[{"event":"signup"},{"event":"a"}]},
        "point_rules":[{"id":"r","event":"referral_confirmed","to":"referrer","points":10}]}"#,
    );
    d.signup("ana", None);
    let old = d.signup("ben", Some("ana")).referral.unwrap();
    let v2 = CampaignConfig::from_json(
        r#"{"name":"v","quest":{"steps":[{"event":"signup"},{"event":"b"}]},
        "point_rules":[{"id":"r","event":"referral_confirmed","to":"referrer","points":99}]}"#,
    )
    .unwrap();
    assert!(d.program.apply(Input::Configure(Box::new(v2))).error.is_none());
    assert_eq!(d.program.version(), 2);
    let new = d.signup("cat", Some("ana")).referral.unwrap();
    d.event("ben", "b");
    assert_eq!(
        d.program.referral(old).unwrap().status,
        ReferralStatus::Pending,
        "v1's quest needs a, not b"
    );
    d.event("ben", "a");
    d.event("cat", "b");
    assert_eq!(d.program.referral(new).unwrap().status, ReferralStatus::Confirmed);
    assert_eq!(d.score("ana"), 10 + 99, "each referral paid under its own version");
    d.check();
}

#[test]
fn replay_corrects_without_editing_and_is_idempotent() {
    let mut d = Driver::new(WAITLIST);
    d.signup("ana", None);
    for f in ["b", "c"] {
        d.tick(2 * 3_600_000);
        d.signup(f, Some("ana"));
        d.event(f, "email_verified");
    }
    d.program.apply(Input::Adjust {
        participant: d.id("ana"),
        points: 3,
        note: "goodwill".into(),
        key: "k1".into(),
        at: d.now,
    });
    let before = d.program.ledger().len();
    assert_eq!(d.score("ana"), 10 + 20 + 3);

    let same = d.program.config().clone();
    assert!(
        d.program.replay(same, "same", d.now).unwrap().is_empty(),
        "same rules, nothing to correct"
    );

    let richer = CampaignConfig::from_json(&WAITLIST.replace(r#""points": 10}"#, r#""points": 25}"#)).unwrap();
    let fixes = d.program.replay(richer.clone(), "r1", d.now).unwrap();
    assert!(!fixes.is_empty());
    assert_eq!(
        d.program.ledger().len(),
        before + fixes.len(),
        "appended, nothing edited"
    );
    assert_eq!(
        d.score("ana"),
        25 + 2 * 25 + 3,
        "every 10-point rule now pays 25; the manual 3 stands"
    );
    assert_eq!(d.score("b"), 25 + 5);
    assert!(
        d.program.replay(richer, "r2", d.now).unwrap().is_empty(),
        "a second replay adds nothing"
    );
    d.check();
}

#[test]
fn the_end_of_the_campaign_distributes_to_the_top() {
    let mut d = Driver::new(WAITLIST);
    for (who, friends) in [("ana", 3), ("ben", 1), ("cat", 2), ("dan", 0)] {
        d.signup(who, None);
        for i in 0..friends {
            let f = format!("{who}-f{i}");
            d.tick(2 * 3_600_000);
            d.signup(&f, Some(who));
            d.event(&f, "email_verified");
        }
    }
    let top: Vec<Row> = d.program.leaderboard().board(Period::All).unwrap().top(3);
    assert_eq!(top[0].participant, d.id("ana"));
    let out = d.program.apply(Input::End { at: d.now, seed: 1 });
    assert_eq!(out.grants.len(), 3);
    let winners: Vec<_> = out
        .grants
        .iter()
        .map(|g| d.program.grant(*g).unwrap().participant)
        .collect();
    assert_eq!(winners, [top[0].participant, top[1].participant, top[2].participant]);
    assert!(
        d.program.apply(Input::End { at: d.now, seed: 1 }).error.is_some(),
        "ends once"
    );
    d.check();
}

#[test]
fn grant_transitions_follow_the_lifecycle() {
    let mut d = Driver::new(refloop_core::engine::presets::SIGNUP);
    d.signup("ana", None);
    d.signup("ben", Some("ana"));
    let g = d.program.grants().iter().find(|g| g.reward == "thanks").unwrap().id;
    assert_eq!(d.program.grant(g).unwrap().status, GrantStatus::Approved);
    let bad = d.program.apply(Input::Transition {
        grant: g,
        to: GrantStatus::Redeemed,
        at: d.now,
        note: None,
    });
    assert!(bad.error.unwrap().contains("cannot go"));
    for to in [GrantStatus::Fulfilled, GrantStatus::Redeemed] {
        let ok = d.program.apply(Input::Transition {
            grant: g,
            to,
            at: d.now,
            note: Some("paid".into()),
        });
        assert!(ok.error.is_none());
        assert!(
            ok.notices
                .iter()
                .any(|n| matches!(n, Notice::RewardStatusChanged { .. }))
        );
    }
    assert_eq!(d.program.grant(g).unwrap().history.len(), 4);
}

#[test]
fn erasure_takes_a_participant_off_the_board_and_forgets_their_details() {
    let mut d = Driver::new(WAITLIST);
    d.send("ana", "signup", |e| e.ip_hash = Some("ip".into()));
    let id = d.id("ana");
    d.program.apply(Input::Erase {
        participant: id,
        at: d.now,
    });
    assert!(d.program.participant(id).is_none());
    assert_eq!(d.program.leaderboard().board(Period::All).unwrap().rank(id), None);
    d.check();
}

#[test]
fn a_flagged_referral_holds_the_referees_reward_in_pending_review() {
    let mut d = Driver::new(refloop_core::engine::presets::SIGNUP);
    d.send("ana", "signup", |e| e.ip_hash = Some("ip".into()));
    let code = d.code("ana");
    let now = d.now;
    let touch = |e: &mut refloop_core::engine::program::EngineEvent| {
        e.ip_hash = Some("ip".into());
        e.touch = Some(Touch {
            code: Some(code.clone()),
            invitation: None,
            at: now,
        });
    };
    let rid = d.send("sock", "signup", touch).referral.unwrap();
    let welcome = d
        .program
        .grants()
        .iter()
        .find(|g| g.reward == "welcome")
        .expect("held, not dropped");
    assert_eq!(welcome.status, GrantStatus::PendingReview);
    assert!(d.rewards_of("ana").is_empty(), "the referrer's side waits too");
    d.program.apply(Input::Review {
        referral: rid,
        approve: true,
        at: d.now,
    });
    let welcome = d.program.grants().iter().find(|g| g.reward == "welcome").unwrap();
    assert_eq!(welcome.status, GrantStatus::Approved);
    assert_eq!(d.rewards_of("ana"), ["thanks"]);
    d.check();
}

#[test]
fn a_points_reward_is_paid_on_approval_and_taken_back_on_revocation() {
    let mut d = Driver::new(
        r#"{"name":"p","quest":{"steps":[{"event":"signup"}]},
        "rewards":[{"id":"pts","name":"50 points","kind":{"type":"points","points":50},"requires_review":true}],
        "milestones":[{"id":"first","confirmed_referrals":1,"reward":"pts"}]}"#,
    );
    d.signup("ana", None);
    d.signup("ben", Some("ana"));
    assert_eq!(d.score("ana"), 0, "not while pending review");
    let g = d.program.grants()[0].id;
    d.program.apply(Input::Transition {
        grant: g,
        to: GrantStatus::Approved,
        at: d.now,
        note: None,
    });
    assert_eq!(d.score("ana"), 50);
    d.program.apply(Input::Transition {
        grant: g,
        to: GrantStatus::Revoked,
        at: d.now,
        note: Some("clawback".into()),
    });
    assert_eq!(d.score("ana"), 0, "a new entry takes it back; nothing is edited");
    assert_eq!(d.program.ledger().len(), 2);
    d.check();
}

#[test]
fn the_daily_trend_counts_clicks_signups_and_confirmations() {
    let mut d = Driver::new(WAITLIST);
    d.signup("ana", None);
    let code = d.code("ana");
    d.program.apply(Input::Click { code, at: d.now });
    d.signup("ben", Some("ana"));
    d.tick(DAY);
    d.event("ben", "email_verified");
    let days = d.program.trend(T0, d.now);
    let total = |f: fn(&refloop_core::engine::analytics::Day) -> u64| days.iter().map(f).sum::<u64>();
    assert_eq!(
        (total(|x| x.clicks), total(|x| x.signups), total(|x| x.confirmed)),
        (1, 1, 1)
    );
    assert_eq!(days.last().unwrap().confirmed, 1);
}
