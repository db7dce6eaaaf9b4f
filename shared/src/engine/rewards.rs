//! Rewards: milestones reached, grants and their lifecycle, exchange tokens,
//! raffle draws, caps and end-of-campaign distributions.

use super::config::{CampaignConfig, DistributionRule, Milestone, RewardDef, RewardKind};
use super::model::{DAY_MS, GrantId, Millis, Money, ParticipantId, ReferralId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum GrantStatus {
    Earned,
    PendingReview,
    Approved,
    Fulfilled,
    Redeemed,
    Rejected,
    Expired,
    Revoked,
}

impl GrantStatus {
    /// Its name, as serde writes it (one naming rule for both derives).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Every status, in lifecycle order.
    pub const ALL: [GrantStatus; 8] = [
        GrantStatus::Earned,
        GrantStatus::PendingReview,
        GrantStatus::Approved,
        GrantStatus::Fulfilled,
        GrantStatus::Redeemed,
        GrantStatus::Rejected,
        GrantStatus::Expired,
        GrantStatus::Revoked,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// The lifecycle: `earned → pending_review → approved → fulfilled →
    /// redeemed`, with `rejected` before approval, `expired` before redemption
    /// and `revoked` at any point after approval (a clawback).
    pub fn can_become(self, to: GrantStatus) -> bool {
        use GrantStatus::*;
        matches!(
            (self, to),
            (Earned, PendingReview | Approved | Rejected | Expired)
                | (PendingReview, Approved | Rejected | Expired)
                | (Approved, Fulfilled | Expired | Revoked)
                | (Fulfilled, Redeemed | Expired | Revoked)
                | (Redeemed, Revoked)
        )
    }

    /// Still worth something (counts toward caps and budgets).
    pub fn is_live(self) -> bool {
        !matches!(
            self,
            GrantStatus::Rejected | GrantStatus::Expired | GrantStatus::Revoked
        )
    }
}

/// Why a grant exists; also its idempotency: one grant per source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum GrantSource {
    /// The `nth` time a milestone was reached (always 1 unless it repeats with `every`).
    Milestone {
        milestone: String,
        nth: u32,
    },
    /// The flat reward of the referee of a confirmed referral (double-sided).
    Referee {
        referral: ReferralId,
    },
    /// End of campaign distributions.
    Distribution {
        index: usize,
    },
    Manual {
        note: String,
    },
}

impl GrantSource {
    pub fn key(&self, participant: ParticipantId, reward: &str) -> String {
        match self {
            GrantSource::Milestone { milestone, nth } => format!("m:{milestone}:{nth}:p:{}", participant.0),
            GrantSource::Referee { referral } => format!("referee:{}:{reward}", referral.0),
            GrantSource::Distribution { index } => format!("d:{index}:{reward}:p:{}", participant.0),
            GrantSource::Manual { note } => format!("manual:{reward}:p:{}:{note}", participant.0),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub from: Option<GrantStatus>,
    pub to: GrantStatus,
    pub at: Millis,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: GrantId,
    pub participant: ParticipantId,
    pub reward: String,
    pub source: GrantSource,
    pub status: GrantStatus,
    /// Unique redeem code, for coupons and exchange tokens.
    pub token: Option<String>,
    /// Credit granted, for budgets.
    pub value: Option<Money>,
    pub earned_at: Millis,
    pub expires_at: Option<Millis>,
    pub idempotency_key: String,
    /// Every status it has had, in order.
    pub history: Vec<Transition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IllegalTransition {
    pub from: GrantStatus,
    pub to: GrantStatus,
}

impl Grant {
    /// A new grant: `earned`, then at once `pending_review` when it must be
    /// reviewed, or `approved` when it need not be.
    pub fn new(
        id: GrantId,
        participant: ParticipantId,
        reward: &RewardDef,
        source: GrantSource,
        needs_review: bool,
        at: Millis,
    ) -> Grant {
        let mut g = Grant {
            id,
            participant,
            reward: reward.id.clone(),
            idempotency_key: source.key(participant, &reward.id),
            source,
            status: GrantStatus::Earned,
            // A coupon's token and a sized credit's value are the caller's
            // (`Grant { token, value, ..Grant::new(…) }`).
            token: None,
            value: value_of(reward, None),
            earned_at: at,
            expires_at: reward.expires_after_days.map(|d| at + Millis::from(d) * DAY_MS),
            history: vec![Transition {
                from: None,
                to: GrantStatus::Earned,
                at,
                note: None,
            }],
        };
        let next = if needs_review || reward.requires_review {
            GrantStatus::PendingReview
        } else {
            GrantStatus::Approved
        };
        let _ = g.transition(next, at, None);
        g
    }

    /// Moves to `to` if the lifecycle allows it, recording the transition.
    pub fn transition(&mut self, to: GrantStatus, at: Millis, note: Option<String>) -> Result<(), IllegalTransition> {
        if !self.status.can_become(to) {
            return Err(IllegalTransition { from: self.status, to });
        }
        self.history.push(Transition {
            from: Some(self.status),
            to,
            at,
            note,
        });
        self.status = to;
        Ok(())
    }

    /// Expires it when its time has come and it was not redeemed.
    pub fn expire_if_due(&mut self, now: Millis) -> bool {
        match self.expires_at {
            Some(t) if now >= t && self.status.can_become(GrantStatus::Expired) => self
                .transition(GrantStatus::Expired, now, Some("expired".into()))
                .is_ok(),
            _ => false,
        }
    }
}

/// Referral codes and tokens use this alphabet: no 0 O I 1 L to misread.
pub const CODE_ALPHABET: &[u8; 31] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
pub const CODE_LEN: usize = 8;

/// An 8-character code from random bytes (a CSPRNG's, supplied by the caller),
/// unbiased by rejection sampling. `None` when the bytes run out (about one in
/// 10^13 with 32 bytes); the caller draws again.
pub fn code_from_random(random: &[u8]) -> Option<String> {
    const LIMIT: u8 = (256 / CODE_ALPHABET.len() * CODE_ALPHABET.len()) as u8;
    let code: String = random
        .iter()
        .filter(|b| **b < LIMIT)
        .take(CODE_LEN)
        .map(|b| CODE_ALPHABET[(*b as usize) % CODE_ALPHABET.len()] as char)
        .collect();
    (code.len() == CODE_LEN).then_some(code)
}

/// An exchange token: the reward's prefix and a code, e.g. `WELCOME-7KQ2MXPA`.
pub fn token_from_random(prefix: &str, random: &[u8]) -> Option<String> {
    let code = code_from_random(random)?;
    Some(if prefix.is_empty() {
        code
    } else {
        format!("{prefix}-{code}")
    })
}

/// A campaign's codes and tokens: HMAC-SHA256 of the campaign's secret (32
/// bytes from a CSPRNG, kept with the campaign) and the name of what the code
/// is for (`participant:7`, a grant's key, an invitation). So the same entity
/// gets the same code in a replay under any configuration, one code reveals
/// nothing about another, and nobody without the secret can guess one.
#[derive(Clone)]
pub struct Codes {
    secret: [u8; 32],
}

impl Codes {
    pub fn new(secret: [u8; 32]) -> Self {
        Codes { secret }
    }

    /// A secret spread from a seed, for tests, benchmarks and the in-memory
    /// reference (never for a real campaign).
    pub fn from_seed(seed: u64) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(seed.to_le_bytes());
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&digest);
        Codes { secret }
    }

    /// The code of `name` (with `prefix`), try `attempt` (a clash draws the next).
    pub fn code(&self, prefix: &str, name: &str, attempt: u32) -> Option<String> {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.secret).ok()?;
        mac.update(name.as_bytes());
        mac.update(&attempt.to_le_bytes());
        token_from_random(prefix, &mac.finalize().into_bytes())
    }
}

/// How many times a milestone has been reached at `confirmed` referrals.
pub fn times_reached(m: &Milestone, confirmed: u32) -> u32 {
    match (m.every, m.confirmed_referrals) {
        // Linear schedule: at every, 2·every, 3·every …
        (Some(every), 0) if every > 0 => confirmed / every,
        // From a start: at start, start + every, start + 2·every …
        (Some(every), start) if every > 0 => {
            if confirmed < start {
                0
            } else {
                (confirmed - start) / every + 1
            }
        }
        (_, threshold) => u32::from(threshold > 0 && confirmed >= threshold),
    }
}

/// Milestone grants due when a referrer goes from `before` to `after`
/// confirmed referrals: `(milestone, nth)`, each at most once however often this
/// is asked (the grant key includes `nth`).
pub fn milestones_crossed(config: &CampaignConfig, before: u32, after: u32) -> Vec<(&Milestone, u32)> {
    let mut due = Vec::new();
    for m in &config.milestones {
        let (was, now) = (times_reached(m, before), times_reached(m, after));
        for nth in was + 1..=now {
            due.push((m, nth));
        }
    }
    due
}

/// The named tier (milestone with a name) a participant holds at `confirmed`.
pub fn tier(config: &CampaignConfig, confirmed: u32) -> Option<&str> {
    config
        .milestones
        .iter()
        .filter(|m| m.every.is_none() && m.confirmed_referrals <= confirmed)
        .filter_map(|m| m.name.as_deref().map(|n| (m.confirmed_referrals, n)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, n)| n)
}

/// What grants already exist, for cap checks.
#[derive(Debug, Clone, Default)]
pub struct CapUsage {
    /// Distinct participants with a live grant.
    pub winners: u32,
    /// Whether this participant already is one of them.
    pub is_winner: bool,
    /// Live credit granted so far in the budget's currency (minor units).
    pub spent_minor: i64,
    /// Live grants of this reward.
    pub grants_of_reward: u32,
}

/// What a grant of `reward` is worth: a credit's amount, sized by the
/// trusted purchase `amount` that earned it when the reward says how.
pub fn value_of(reward: &RewardDef, amount: Option<i64>) -> Option<Money> {
    match &reward.kind {
        RewardKind::Credit {
            amount_minor,
            currency,
            sized,
        } => Some(Money {
            amount_minor: match (sized, amount) {
                (Some(z), Some(a)) => z.size(a, *amount_minor),
                _ => *amount_minor,
            },
            currency: currency.clone(),
        }),
        _ => None,
    }
}

/// Whether one more grant of `reward`, worth `value`, fits the caps; the
/// reason when not.
pub fn check_caps(
    config: &CampaignConfig,
    reward: &RewardDef,
    value: Option<&Money>,
    usage: &CapUsage,
) -> Result<(), String> {
    if let Some(max) = reward.max_grants
        && usage.grants_of_reward >= max
    {
        return Err(format!("reward {} reached its {max} grants", reward.id));
    }
    if let Some(max) = config.caps.max_winners
        && !usage.is_winner
        && usage.winners >= max
    {
        return Err(format!("the campaign reached its {max} winners"));
    }
    if let (Some(budget), Some(value)) = (&config.caps.budget, value)
        && usage.spent_minor + value.amount_minor > budget.amount_minor
    {
        return Err(format!(
            "the budget of {} {} would be exceeded",
            budget.amount_minor, budget.currency
        ));
    }
    Ok(())
}

/// A small, well-known PRNG (SplitMix64): reproducible from its seed on every
/// platform, which is all a raffle needs (the seed is published with the draw).
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let r = self.next_u64();
            if r < zone {
                return r % n;
            }
        }
    }
}

/// A weighted draw without replacement: each entrant's chance is their tickets
/// over the tickets left. Entrants are sorted by id first, so the same seed and
/// the same entrants give the same winners anywhere.
pub fn raffle(entrants: &[(ParticipantId, u32)], winners: u32, seed: u64) -> Vec<ParticipantId> {
    let mut pool: Vec<(ParticipantId, u64)> = entrants
        .iter()
        .filter(|(_, t)| *t > 0)
        .map(|(p, t)| (*p, u64::from(*t)))
        .collect();
    pool.sort();
    pool.dedup_by(|a, b| {
        if a.0 == b.0 {
            b.1 += a.1;
            true
        } else {
            false
        }
    });
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::new();
    while out.len() < winners as usize && !pool.is_empty() {
        let total: u64 = pool.iter().map(|e| e.1).sum();
        let mut pick = rng.below(total);
        let index = pool
            .iter()
            .position(|(_, t)| {
                if pick < *t {
                    true
                } else {
                    pick -= t;
                    false
                }
            })
            .unwrap_or(0);
        out.push(pool.remove(index).0);
    }
    out
}

/// One participant as end-of-campaign distributions see them.
#[derive(Debug, Clone)]
pub struct Standing {
    pub participant: ParticipantId,
    /// 1-based rank on the all-time board.
    pub rank: u64,
    pub score: i64,
    pub confirmed_referrals: u32,
    pub raffle_tickets: u32,
}

/// Who receives one end distribution. `standings` in rank order; a raffle's
/// seed is published with its result so anyone can redraw it.
pub fn winners(rule: &DistributionRule, standings: &[Standing], seed: u64) -> Vec<ParticipantId> {
    match *rule {
        DistributionRule::TopN { n } => standings
            .iter()
            .filter(|s| s.rank <= u64::from(n))
            .map(|s| s.participant)
            .collect(),
        DistributionRule::MinScore { score } => standings
            .iter()
            .filter(|s| s.score >= score)
            .map(|s| s.participant)
            .collect(),
        DistributionRule::MinReferrals { count } => standings
            .iter()
            .filter(|s| s.confirmed_referrals >= count)
            .map(|s| s.participant)
            .collect(),
        DistributionRule::Raffle { winners } => {
            let entrants: Vec<(ParticipantId, u32)> =
                standings.iter().map(|s| (s.participant, s.raffle_tickets)).collect();
            raffle(&entrants, winners, seed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::{HashMap, HashSet};

    fn reward(kind: serde_json::Value) -> RewardDef {
        serde_json::from_value(json!({"id":"r","name":"R","kind":kind})).unwrap()
    }

    #[test]
    fn only_legal_transitions_and_all_are_recorded() {
        let mut g = Grant::new(
            GrantId(1),
            ParticipantId(1),
            &reward(json!({"type":"text","text":"hi"})),
            GrantSource::Manual { note: "n".into() },
            false,
            5,
        );
        assert_eq!(g.status, GrantStatus::Approved);
        assert!(
            g.transition(GrantStatus::Redeemed, 6, None).is_err(),
            "must be fulfilled first"
        );
        g.transition(GrantStatus::Fulfilled, 6, None).unwrap();
        g.transition(GrantStatus::Redeemed, 7, None).unwrap();
        assert!(g.transition(GrantStatus::Expired, 8, None).is_err());
        let path: Vec<GrantStatus> = g.history.iter().map(|t| t.to).collect();
        assert_eq!(
            path,
            [
                GrantStatus::Earned,
                GrantStatus::Approved,
                GrantStatus::Fulfilled,
                GrantStatus::Redeemed
            ]
        );
        let mut reviewed = Grant::new(
            GrantId(2),
            ParticipantId(1),
            &reward(json!({"type":"text","text":"hi"})),
            GrantSource::Manual { note: "m".into() },
            true,
            5,
        );
        assert_eq!(reviewed.status, GrantStatus::PendingReview);
        assert!(reviewed.transition(GrantStatus::Fulfilled, 6, None).is_err());
        reviewed
            .transition(GrantStatus::Rejected, 6, Some("fraud".into()))
            .unwrap();
        assert!(!reviewed.status.is_live());
    }

    #[test]
    fn every_pair_of_statuses_is_either_allowed_or_refused_as_documented() {
        use GrantStatus::*;
        let all = [
            Earned,
            PendingReview,
            Approved,
            Fulfilled,
            Redeemed,
            Rejected,
            Expired,
            Revoked,
        ];
        let allowed: usize = all
            .iter()
            .map(|a| all.iter().filter(|b| a.can_become(**b)).count())
            .sum();
        assert_eq!(allowed, 4 + 3 + 3 + 3 + 1);
        for terminal in [Rejected, Expired, Revoked] {
            assert!(all.iter().all(|b| !terminal.can_become(*b)));
        }
    }

    #[test]
    fn expiry() {
        let mut r = reward(json!({"type":"coupon","prefix":"W"}));
        r.expires_after_days = Some(1);
        let mut g = Grant {
            token: Some("W-X".into()),
            ..Grant::new(
                GrantId(1),
                ParticipantId(1),
                &r,
                GrantSource::Manual { note: "x".into() },
                false,
                0,
            )
        };
        assert!(!g.expire_if_due(DAY_MS - 1));
        assert!(g.expire_if_due(DAY_MS));
        assert_eq!(g.status, GrantStatus::Expired);
    }

    #[test]
    fn codes_use_the_unambiguous_alphabet_without_bias() {
        let mut rng = SplitMix64::new(7);
        let mut counts: HashMap<char, u32> = HashMap::new();
        let mut seen = HashSet::new();
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..32).map(|_| rng.next_u64() as u8).collect();
            let code = code_from_random(&bytes).unwrap();
            assert_eq!(code.len(), 8);
            assert!(!code.contains(['0', 'O', 'I', '1', 'L']));
            for c in code.chars() {
                *counts.entry(c).or_default() += 1;
            }
            seen.insert(code);
        }
        assert_eq!(seen.len(), 20_000, "31^8 codes: no collision expected here");
        assert_eq!(counts.len(), 31);
        let (min, max) = (counts.values().min().unwrap(), counts.values().max().unwrap());
        assert!(f64::from(*max) / f64::from(*min) < 1.15, "{min}..{max}");
        assert_eq!(code_from_random(&[255; 32]), None, "bytes that are all rejected");
        assert_eq!(
            token_from_random("WELCOME", &[0; 8]).as_deref(),
            Some("WELCOME-AAAAAAAA")
        );
    }

    #[test]
    fn milestones_thresholds_and_linear_schedules() {
        let c = crate::engine::config::CampaignConfig::from_json(
            &json!({"name":"t",
            "rewards":[{"id":"ten","name":"$10","kind":{"type":"credit","amount_minor":1000,"currency":"USD"}}],
            "milestones":[
                {"id":"starter","name":"STARTER","confirmed_referrals":1},
                {"id":"pro","name":"PRO","confirmed_referrals":3},
                {"id":"each","every":1,"reward":"ten"}]})
            .to_string(),
        )
        .unwrap();
        let crossed = |a, b| {
            milestones_crossed(&c, a, b)
                .into_iter()
                .map(|(m, n)| format!("{}#{n}", m.id))
                .collect::<Vec<_>>()
        };
        assert_eq!(crossed(0, 1), ["starter#1", "each#1"]);
        assert_eq!(crossed(1, 3), ["pro#1", "each#2", "each#3"]);
        assert!(crossed(3, 3).is_empty());
        assert_eq!(tier(&c, 0), None);
        assert_eq!(tier(&c, 2), Some("STARTER"));
        assert_eq!(tier(&c, 9), Some("PRO"));
    }

    #[test]
    fn caps_reject_with_a_reason() {
        let c = crate::engine::config::CampaignConfig::from_json(&json!({"name":"t",
            "caps":{"max_winners":2,"budget":{"amount_minor":2500,"currency":"USD"}},
            "rewards":[{"id":"ten","name":"$10","kind":{"type":"credit","amount_minor":1000,"currency":"USD"},"max_grants":5}]}).to_string()).unwrap();
        let r = c.reward("ten").unwrap();
        assert!(
            check_caps(
                &c,
                r,
                value_of(r, None).as_ref(),
                &CapUsage {
                    winners: 1,
                    is_winner: false,
                    spent_minor: 1000,
                    grants_of_reward: 1
                }
            )
            .is_ok()
        );
        assert!(
            check_caps(
                &c,
                r,
                value_of(r, None).as_ref(),
                &CapUsage {
                    winners: 2,
                    is_winner: false,
                    spent_minor: 0,
                    grants_of_reward: 0
                }
            )
            .unwrap_err()
            .contains("winners")
        );
        assert!(
            check_caps(
                &c,
                r,
                value_of(r, None).as_ref(),
                &CapUsage {
                    winners: 2,
                    is_winner: true,
                    spent_minor: 0,
                    grants_of_reward: 0
                }
            )
            .is_ok()
        );
        assert!(
            check_caps(
                &c,
                r,
                value_of(r, None).as_ref(),
                &CapUsage {
                    winners: 1,
                    is_winner: true,
                    spent_minor: 2000,
                    grants_of_reward: 2
                }
            )
            .unwrap_err()
            .contains("budget")
        );
        assert!(
            check_caps(
                &c,
                r,
                value_of(r, None).as_ref(),
                &CapUsage {
                    winners: 0,
                    is_winner: false,
                    spent_minor: 0,
                    grants_of_reward: 5
                }
            )
            .unwrap_err()
            .contains("grants")
        );
    }

    #[test]
    fn a_trusted_purchase_sizes_a_credit_by_percent_or_tier_within_its_cap() {
        let credit = |sized: serde_json::Value| {
            reward(json!({"type":"credit","amount_minor":500,"currency":"USD","sized":sized}))
        };
        let amount = |r: &RewardDef, a: Option<i64>| value_of(r, a).unwrap().amount_minor;
        let tenth = credit(json!({"percent":10,"max_minor":5000}));
        assert_eq!(amount(&tenth, Some(12_345)), 1_234, "10 % rounded down to the cent");
        assert_eq!(amount(&tenth, Some(100_000)), 5_000, "capped");
        assert_eq!(amount(&tenth, None), 500, "no trusted amount: the flat amount");
        assert_eq!(amount(&credit(json!({"percent":12.5})), Some(1_000)), 125);
        // The seed's purchase-value tiers: below $50 nothing, $50 → $10,
        // $100 → $25, $250 and up → 5 % (a tier's own percentage), at most $40.
        let tiers = credit(json!({"tiers":[
            {"from_minor":5000,"amount_minor":1000},
            {"from_minor":10000,"amount_minor":2500},
            {"from_minor":25000,"percent":5}],"max_minor":4000}));
        assert_eq!(amount(&tiers, Some(4_999)), 0);
        assert_eq!(amount(&tiers, Some(5_000)), 1_000);
        assert_eq!(amount(&tiers, Some(24_999)), 2_500);
        assert_eq!(amount(&tiers, Some(60_000)), 3_000);
        assert_eq!(amount(&tiers, Some(1_000_000)), 4_000);
        // A sized credit counts against the budget at what it is worth.
        let c = crate::engine::config::CampaignConfig::from_json(&json!({"name":"t",
            "caps":{"budget":{"amount_minor":3000,"currency":"USD"}},
            "rewards":[{"id":"r","name":"R","kind":{"type":"credit","amount_minor":500,"currency":"USD","sized":{"percent":10}}}]}).to_string()).unwrap();
        let r = c.reward("r").unwrap();
        let usage = CapUsage {
            spent_minor: 2_000,
            ..CapUsage::default()
        };
        assert!(check_caps(&c, r, value_of(r, Some(10_000)).as_ref(), &usage).is_ok());
        assert!(check_caps(&c, r, value_of(r, Some(10_010)).as_ref(), &usage).is_err());
    }

    #[test]
    fn sizing_is_validated_with_paths() {
        let bad = |sized: serde_json::Value| {
            crate::engine::config::CampaignConfig::from_json(&json!({"name":"t",
                "rewards":[{"id":"r","name":"R","kind":{"type":"credit","amount_minor":500,"currency":"USD","sized":sized}}]}).to_string())
            .unwrap_err()
            .iter()
            .map(|e| format!("{}: {}", e.path, e.reason))
            .collect::<Vec<_>>()
            .join("; ")
        };
        assert!(bad(json!({})).contains("rewards[0].kind.sized: needs percent or tiers"));
        assert!(bad(json!({"percent":150})).contains("rewards[0].kind.sized.percent"));
        assert!(bad(json!({"percent":10.123})).contains("two decimals"));
        assert!(bad(json!({"tiers":[{"from_minor":0}]})).contains("rewards[0].kind.sized.tiers[0]"));
        assert!(bad(json!({"percent":5,"tiers":[{"from_minor":0,"percent":5}]})).contains("not both"));
    }

    #[test]
    fn raffles_are_reproducible_and_weighted() {
        let entrants: Vec<(ParticipantId, u32)> = (1..=50)
            .map(|i| (ParticipantId(i), if i == 7 { 50 } else { 1 }))
            .collect();
        let a = raffle(&entrants, 5, 42);
        let mut reversed = entrants.clone();
        reversed.reverse();
        assert_eq!(a, raffle(&reversed, 5, 42), "order of entry does not matter");
        assert_eq!(a.len(), 5);
        assert_eq!(a.iter().collect::<HashSet<_>>().len(), 5, "no one wins twice");
        let wins_of_7 = (0..400)
            .filter(|s| raffle(&entrants, 1, *s).first() == Some(&ParticipantId(7)))
            .count();
        // 50 of 99 tickets: about half of the draws.
        assert!((150..250).contains(&wins_of_7), "{wins_of_7}");
        assert!(raffle(&[(ParticipantId(1), 0)], 1, 1).is_empty());
    }
}
