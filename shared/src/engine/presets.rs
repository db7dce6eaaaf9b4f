//! Ready-made programs: the waitlist of the first design document and the nine
//! "pulse" programs of the second, as configurations an operator starts from.
//! Each is plain JSON through the same parser and validation as any other.

use super::config::CampaignConfig;

/// `(name, configuration JSON)` of every preset.
pub const PRESETS: &[(&str, &str)] = &[
    ("waitlist", WAITLIST),
    ("signup", SIGNUP),
    ("conversion", CONVERSION),
    ("reactivation", REACTIVATION),
    ("cross_sell", CROSS_SELL),
    ("renewal", RENEWAL),
    ("feedback", FEEDBACK),
    ("product_education", PRODUCT_EDUCATION),
    ("switch_up", SWITCH_UP),
    ("newsletter", NEWSLETTER),
];

pub fn preset(name: &str) -> Option<CampaignConfig> {
    PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, json)| CampaignConfig::from_json(json).ok())
}

/// A launch waitlist: move up by referring; points for joining, verifying and
/// each confirmed referral, a bonus at the fifth; named tiers; the top three
/// get early access when the waitlist closes.
pub const WAITLIST: &str = r#"{
  "name": "Launch waitlist",
  "mode": "code",
  "starts_at": "2026-01-01T00:00:00Z",
  "ends_at": "2027-01-01T00:00:00Z",
  "landing_url": "https://example.com/waitlist",
  "quest": {"steps": [{"event": "signup"}, {"event": "email_verified"}], "window_days": 14},
  "point_rules": [
    {"id": "joined", "event": "signup", "to": "self", "points": 10},
    {"id": "verified", "event": "email_verified", "to": "self", "points": 5},
    {"id": "per-referral", "event": "referral_confirmed", "to": "referrer", "points": 10},
    {"id": "fifth-referral", "event": "referral_confirmed", "to": "referrer", "points": 50, "when": {"referral_count": {"equals": 5}}}
  ],
  "milestones": [
    {"id": "starter", "name": "STARTER", "confirmed_referrals": 1, "badge": "starter"},
    {"id": "pro", "name": "PRO", "confirmed_referrals": 3, "badge": "pro"},
    {"id": "elite", "name": "ELITE", "confirmed_referrals": 10, "badge": "elite"},
    {"id": "champion", "name": "CHAMPION", "confirmed_referrals": 25, "badge": "champion"},
    {"id": "legend", "name": "LEGEND", "confirmed_referrals": 50, "reward": "lifetime"}
  ],
  "rewards": [
    {"id": "early-access", "name": "Early access", "kind": {"type": "text", "text": "You are in the first wave."}},
    {"id": "lifetime", "name": "Lifetime premium", "kind": {"type": "text", "text": "Premium, for life."}, "requires_review": true}
  ],
  "end_distributions": [{"reward": "early-access", "rule": {"type": "top_n", "n": 3}}],
  "leaderboard": {"score_by": "points", "periods": ["all", "month", "week"], "top_n": 10},
  "share_text": "I just joined the waitlist. Jump the queue with my link:"
}"#;

/// Signup pulse: double-sided welcome; both get credit when the friend signs up.
pub const SIGNUP: &str = r#"{
  "name": "Signup pulse",
  "quest": {"steps": [{"event": "signup"}]},
  "rewards": [
    {"id": "welcome", "name": "$5 welcome credit", "kind": {"type": "credit", "amount_minor": 500, "currency": "USD"}},
    {"id": "thanks", "name": "$5 for a friend", "kind": {"type": "credit", "amount_minor": 500, "currency": "USD"}}
  ],
  "milestones": [{"id": "each-friend", "every": 1, "reward": "thanks"}],
  "referee_reward": "welcome",
  "caps": {"budget": {"amount_minor": 1000000, "currency": "USD"}, "per_referrer_max_confirmed": 50}
}"#;

/// Conversion pulse: the friend's first purchase (a trusted server event)
/// confirms; $20 per conversion to the referrer, a coupon for the friend, a
/// bonus at three conversions.
pub const CONVERSION: &str = r#"{
  "name": "Conversion pulse",
  "quest": {"steps": [{"event": "signup"}, {"event": "purchase_completed", "trusted": true}], "window_days": 30},
  "point_rules": [{"id": "bonus-3", "event": "referral_confirmed", "to": "referrer", "points": 100, "when": {"referral_count": {"equals": 3}}}],
  "rewards": [
    {"id": "twenty", "name": "$20 credit", "kind": {"type": "credit", "amount_minor": 2000, "currency": "USD"}, "expires_after_days": 365},
    {"id": "friend-coupon", "name": "15% off", "kind": {"type": "coupon", "prefix": "FRIEND"}, "expires_after_days": 30}
  ],
  "milestones": [{"id": "per-conversion", "every": 1, "reward": "twenty"}],
  "referee_reward": "friend-coupon",
  "caps": {"budget": {"amount_minor": 500000, "currency": "USD"}}
}"#;

/// Reactivation pulse: points for coming back, only for people who had gone
/// quiet; the most engaged returners win a coupon.
pub const REACTIVATION: &str = r#"{
  "name": "Reactivation pulse",
  "ends_at": "2027-01-01T00:00:00Z",
  "point_rules": [
    {"id": "came-back", "event": "user_returned", "to": "self", "points": 20, "when": {"traits": [{"key": "lifecycle_stage", "in": ["inactive", "at_risk"]}]}},
    {"id": "used-core", "event": "core_action", "to": "self", "points": 5, "max_per_participant": 10, "when": {"min_score": 20}}
  ],
  "rewards": [{"id": "welcome-back", "name": "A month on us", "kind": {"type": "coupon", "prefix": "BACK"}, "expires_after_days": 30}],
  "end_distributions": [{"reward": "welcome-back", "rule": {"type": "min_score", "score": 30}}]
}"#;

/// Cross-sell pulse: upgrading to a paid feature earns points for free-plan
/// users, and the referrer of an upgrader earns too.
pub const CROSS_SELL: &str = r#"{
  "name": "Cross-sell pulse",
  "quest": {"steps": [{"event": "signup"}, {"event": "feature_upgraded", "trusted": true}], "window_days": 14},
  "point_rules": [
    {"id": "upgraded", "event": "feature_upgraded", "to": "self", "points": 30, "trusted": true, "when": {"traits": [{"key": "plan", "in": ["free", "starter"]}]}},
    {"id": "brought-upgrader", "event": "feature_upgraded", "to": "referrer", "points": 15, "trusted": true}
  ],
  "rewards": [{"id": "upgrade-discount", "name": "20% off the upgrade", "kind": {"type": "coupon", "prefix": "UP"}, "expires_after_days": 14}],
  "referee_reward": "upgrade-discount"
}"#;

/// Renewal pulse: renewing earns loyalty points, more for long-standing
/// customers; referring someone who renews earns a free month.
pub const RENEWAL: &str = r#"{
  "name": "Renewal pulse",
  "quest": {"steps": [{"event": "signup"}, {"event": "subscription_renewed", "trusted": true}], "window_days": 365},
  "point_rules": [
    {"id": "renewed", "event": "subscription_renewed", "to": "self", "points": 10, "trusted": true},
    {"id": "loyal", "event": "subscription_renewed", "to": "self", "points": 40, "trusted": true, "when": {"traits": [{"key": "tenure_days", "gte": 365}]}}
  ],
  "rewards": [{"id": "free-month", "name": "A free month", "kind": {"type": "text", "text": "Your next month is free."}}],
  "milestones": [{"id": "each-renewal", "every": 1, "reward": "free-month"}]
}"#;

/// Feedback pulse: a verified review (server event) earns points; gift cards
/// at the end, each checked by an operator.
pub const FEEDBACK: &str = r#"{
  "name": "Feedback pulse",
  "ends_at": "2027-01-01T00:00:00Z",
  "point_rules": [
    {"id": "reviewed", "event": "review_verified", "to": "self", "points": 50, "trusted": true, "when": {"traits": [{"key": "tenure_days", "gte": 180}]}}
  ],
  "rewards": [{"id": "gift-card", "name": "$25 gift card", "kind": {"type": "credit", "amount_minor": 2500, "currency": "USD"}, "requires_review": true, "max_grants": 100}],
  "end_distributions": [{"reward": "gift-card", "rule": {"type": "min_score", "score": 50}}],
  "caps": {"budget": {"amount_minor": 250000, "currency": "USD"}}
}"#;

/// Product education pulse: progressive points for learning the product;
/// badges for those who get far, and a raffle among the learners.
pub const PRODUCT_EDUCATION: &str = r#"{
  "name": "Product education pulse",
  "ends_at": "2027-01-01T00:00:00Z",
  "point_rules": [
    {"id": "tutorial", "event": "tutorial_completed", "to": "self", "points": 10},
    {"id": "first-use", "event": "feature_first_use", "to": "self", "points": 20},
    {"id": "power-user", "event": "power_user", "to": "self", "points": 50, "when": {"min_score": 30}}
  ],
  "rewards": [
    {"id": "expert-badge", "name": "Expert badge", "kind": {"type": "badge", "badge": "expert"}},
    {"id": "ticket", "name": "Raffle ticket", "kind": {"type": "raffle_ticket", "tickets": 1}},
    {"id": "prize", "name": "Conference pass", "kind": {"type": "text", "text": "A pass to our conference."}}
  ],
  "end_distributions": [
    {"reward": "expert-badge", "rule": {"type": "min_score", "score": 80}},
    {"reward": "ticket", "rule": {"type": "min_score", "score": 10}},
    {"reward": "prize", "rule": {"type": "raffle", "winners": 1}}
  ]
}"#;

/// Switch-up pulse: migrating from a competitor, step by step; the team
/// migration is verified by the server and confirms; tiers for referrers who
/// bring whole teams.
pub const SWITCH_UP: &str = r#"{
  "name": "Switch-up pulse",
  "quest": {"steps": [{"event": "signup"}, {"event": "data_imported"}, {"event": "team_migrated", "trusted": true}], "window_days": 60},
  "point_rules": [
    {"id": "imported", "event": "data_imported", "to": "self", "points": 25},
    {"id": "migrated", "event": "team_migrated", "to": "self", "points": 75, "trusted": true},
    {"id": "brought-team", "event": "referral_confirmed", "to": "referrer", "points": 100}
  ],
  "rewards": [
    {"id": "welcome", "name": "Two months free", "kind": {"type": "text", "text": "Two months on us."}},
    {"id": "ambassador", "name": "Ambassador credit", "kind": {"type": "credit", "amount_minor": 10000, "currency": "USD"}, "requires_review": true}
  ],
  "milestones": [
    {"id": "switcher", "name": "SWITCHER", "confirmed_referrals": 1},
    {"id": "ambassador", "name": "AMBASSADOR", "confirmed_referrals": 5, "reward": "ambassador"}
  ],
  "referee_reward": "welcome"
}"#;

/// Newsletter pulse: each friend who subscribes earns points; badges at 5, 10
/// and 20 friends; the leaderboard counts friends, not points.
pub const NEWSLETTER: &str = r#"{
  "name": "Newsletter pulse",
  "mode": "code",
  "quest": {"steps": [{"event": "newsletter_subscribed"}], "window_days": 7},
  "point_rules": [{"id": "friend", "event": "referral_confirmed", "to": "referrer", "points": 1}],
  "rewards": [
    {"id": "ebook", "name": "The ebook", "kind": {"type": "text", "text": "Your download link is in your inbox."}},
    {"id": "b5", "name": "5 friends", "kind": {"type": "badge", "badge": "bronze"}},
    {"id": "b10", "name": "10 friends", "kind": {"type": "badge", "badge": "silver"}},
    {"id": "b20", "name": "20 friends", "kind": {"type": "badge", "badge": "gold"}}
  ],
  "milestones": [
    {"id": "m5", "confirmed_referrals": 5, "reward": "b5"},
    {"id": "m10", "confirmed_referrals": 10, "reward": "b10"},
    {"id": "m20", "confirmed_referrals": 20, "reward": "b20"}
  ],
  "referee_reward": "ebook",
  "leaderboard": {"score_by": "confirmed_referrals"}
}"#;
