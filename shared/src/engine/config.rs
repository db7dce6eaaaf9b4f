//! A campaign's configuration: typed, (de)serialised as JSON, validated with
//! precise errors (a JSON path and a reason), and versioned. An update makes a
//! new version; referrals stay pinned to the version they started under.

use super::model::{DAY_MS, Millis, Money};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignConfig {
    pub name: String,
    #[serde(default)]
    pub mode: Mode,
    /// RFC 3339; the campaign takes no referrals before.
    #[serde(default, with = "opt_time")]
    pub starts_at: Option<Millis>,
    /// RFC 3339; the campaign takes no referrals after, and end distributions run.
    #[serde(default, with = "opt_time")]
    pub ends_at: Option<Millis>,
    /// Where `GET /r/{code}` sends people (with `?ref={code}`).
    #[serde(default)]
    pub landing_url: Option<String>,
    /// How long after a click a signup still counts as referred.
    #[serde(default = "default_attribution_days")]
    pub attribution_window_days: u32,
    /// A referral code stops bringing referrals this many days after it was
    /// given (at the join, or when the operator gave a new one); none: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_valid_days: Option<u32>,
    #[serde(default)]
    pub quest: Quest,
    #[serde(default)]
    pub point_rules: Vec<PointRule>,
    #[serde(default)]
    pub milestones: Vec<Milestone>,
    #[serde(default)]
    pub rewards: Vec<RewardDef>,
    /// Double-sided programs: what the referee gets when the referral is confirmed.
    #[serde(default)]
    pub referee_reward: Option<String>,
    /// Rewards given out when the campaign ends.
    #[serde(default)]
    pub end_distributions: Vec<Distribution>,
    #[serde(default)]
    pub caps: Caps,
    #[serde(default)]
    pub fraud: FraudSettings,
    #[serde(default)]
    pub leaderboard: LeaderboardSettings,
    /// Text the share widget offers ("Join me on …").
    #[serde(default)]
    pub share_text: Option<String>,
}

fn default_attribution_days() -> u32 {
    90
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every participant has one reusable code (Dropbox-style).
    #[default]
    Code,
    /// Participants mint single-use invitations.
    Invite,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quest {
    /// In order; the last one confirms the referral. Empty: signup confirms.
    #[serde(default)]
    pub steps: Vec<QuestStep>,
    /// Days from signup to finish the quest; then the referral expires.
    #[serde(default = "default_quest_days")]
    pub window_days: u32,
}

impl Default for Quest {
    fn default() -> Self {
        Self {
            steps: Vec::new(),
            window_days: default_quest_days(),
        }
    }
}

fn default_quest_days() -> u32 {
    30
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuestStep {
    pub event: String,
    /// Only a trusted server event (`POST /v1/server/events`) completes it.
    #[serde(default)]
    pub trusted: bool,
}

/// Who a point rule pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    /// The referrer of the participant the event happened to.
    Referrer,
    /// The participant the event happened to, when they were referred.
    Referee,
    /// The participant the event happened to.
    #[serde(rename = "self")]
    Actor,
}

/// "When `event` happens to {referrer | referee | self}, award `points`", if
/// the conditions hold for the recipient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointRule {
    pub id: String,
    /// An event name, or `referral_confirmed` (emitted when a quest completes).
    pub event: String,
    pub to: Recipient,
    /// May be negative (penalties).
    pub points: i64,
    /// Lower first.
    #[serde(default)]
    pub priority: i32,
    /// Only a trusted server event fires it: for conversions a browser must not
    /// be able to claim.
    #[serde(default)]
    pub trusted: bool,
    /// How many times a browser's (untrusted) events may fire it for one
    /// participant: 1 unless set (a browser can send any number of fresh
    /// event ids, so it must not mint points by repeating one).
    /// Trusted server events are not counted against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_participant: Option<u32>,
    #[serde(default)]
    pub when: Conditions,
}

/// The most `max_per_participant` may say (each check is a search over the
/// slots the rule has used).
pub const MAX_RULE_REPEATS: u32 = 100_000;

impl PointRule {
    /// How often an event may fire this rule for one participant: `None`
    /// is any number of times (trusted events, and the engine's own
    /// `referral_confirmed`, once per referral by its key).
    pub fn repeats_for(&self, trusted_event: bool) -> Option<u32> {
        if trusted_event || self.event == REFERRAL_CONFIRMED {
            None
        } else {
            Some(self.max_per_participant.unwrap_or(1))
        }
    }
}

/// The event the engine emits when a referral is confirmed; rules on it are
/// how milestones-as-points are written ("50 points at the 5th referral").
pub const REFERRAL_CONFIRMED: &str = "referral_confirmed";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// On the recipient's confirmed referrals, counting this one.
    #[serde(default)]
    pub referral_count: Option<CountCondition>,
    #[serde(default)]
    pub first_referral_only: bool,
    /// The recipient's score before this event.
    #[serde(default)]
    pub min_score: Option<i64>,
    #[serde(default)]
    pub traits: Vec<TraitCondition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountCondition {
    #[serde(default)]
    pub equals: Option<u32>,
    #[serde(default)]
    pub gte: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraitCondition {
    /// e.g. `plan`, `tenure_days`, `lifecycle_stage`.
    pub key: String,
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<serde_json::Value>>,
    /// Numeric traits: at least this.
    #[serde(default)]
    pub gte: Option<f64>,
}

/// A threshold of confirmed referrals that grants a reward; `every` makes a
/// linear schedule (every `every` confirmed referrals grants it again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Milestone {
    pub id: String,
    /// A tier name shown to people (STARTER, PRO …).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub confirmed_referrals: u32,
    #[serde(default)]
    pub every: Option<u32>,
    #[serde(default)]
    pub reward: Option<String>,
    #[serde(default)]
    pub badge: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardDef {
    pub id: String,
    pub name: String,
    pub kind: RewardKind,
    /// Every grant waits for an operator in `pending_review`.
    #[serde(default)]
    pub requires_review: bool,
    /// Unredeemed grants expire this many days after they were earned.
    #[serde(default)]
    pub expires_after_days: Option<u32>,
    /// Most grants of this reward in the campaign.
    #[serde(default)]
    pub max_grants: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", deny_unknown_fields)]
pub enum RewardKind {
    Points {
        points: i64,
    },
    /// An amount of money; `amount_minor` unless `sized` says how a trusted
    /// purchase's amount sizes it.
    Credit {
        amount_minor: i64,
        currency: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sized: Option<Sizing>,
    },
    /// A coupon or exchange token: a unique code the participant redeems.
    Coupon {
        prefix: String,
    },
    RaffleTicket {
        tickets: u32,
    },
    Badge {
        badge: String,
    },
    Text {
        text: String,
    },
}

/// How a credit is sized by the amount of the trusted server event that
/// earned it (`properties.amount_minor`, in the credit's currency): a
/// percentage of it, or the tier it falls in (the highest `from_minor` it
/// reaches; a tier gives a fixed amount or its own percentage), never more
/// than `max_minor`. Without a trusted amount (a browser's event, a review,
/// a grant by hand) the credit is its flat `amount_minor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sizing {
    /// Percent of the amount, up to two decimals (12.5 = 12.5 %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<SizeTier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_minor: Option<i64>,
}

/// A purchase of at least `from_minor` gets `amount_minor`, or `percent` of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeTier {
    pub from_minor: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
}

/// `percent` % of `amount`, rounded down to a minor unit; exact for
/// percentages of two decimals (basis points, integer arithmetic).
fn percent_of(amount: i64, percent: f64) -> i64 {
    let basis_points = (percent * 100.0).round() as i128;
    (i128::from(amount) * basis_points / 10_000) as i64
}

impl Sizing {
    /// The credit a purchase of `amount` minor units earns.
    pub fn size(&self, amount: i64, flat: i64) -> i64 {
        let sized = match self
            .tiers
            .iter()
            .filter(|t| amount >= t.from_minor)
            .max_by_key(|t| t.from_minor)
        {
            Some(t) => match (t.amount_minor, t.percent) {
                (Some(a), _) => a,
                (None, Some(p)) => percent_of(amount, p),
                (None, None) => 0,
            },
            // Below every tier: nothing; no tiers: the percentage, else flat.
            None if !self.tiers.is_empty() => 0,
            None => self.percent.map_or(flat, |p| percent_of(amount, p)),
        };
        self.max_minor.map_or(sized, |max| sized.min(max)).max(0)
    }
}

/// Whether a percentage is one a sizing can take: above 0, at most 100, at
/// most two decimals.
fn valid_percent(p: f64) -> bool {
    p > 0.0 && p <= 100.0 && ((p * 100.0).round() - p * 100.0).abs() < 1e-6
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    pub reward: String,
    pub rule: DistributionRule,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", deny_unknown_fields)]
pub enum DistributionRule {
    TopN {
        n: u32,
    },
    MinScore {
        score: i64,
    },
    MinReferrals {
        count: u32,
    },
    /// A seeded weighted draw among raffle-ticket holders.
    Raffle {
        winners: u32,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caps {
    /// Most distinct participants who receive any reward.
    #[serde(default)]
    pub max_winners: Option<u32>,
    /// Most money granted as credit, in one currency.
    #[serde(default)]
    pub budget: Option<Money>,
    /// Confirmed referrals a referrer may earn from; later ones are rejected.
    #[serde(default)]
    pub per_referrer_max_confirmed: Option<u32>,
    /// Points a referrer may earn from referral rules; awards are cut to fit.
    #[serde(default)]
    pub per_referrer_max_points: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FraudSettings {
    /// More referrals than this for one referrer within an hour is flagged.
    #[serde(default = "default_velocity")]
    pub velocity_per_hour: u32,
    #[serde(default = "yes")]
    pub flag_shared_ip: bool,
    #[serde(default = "yes")]
    pub flag_shared_device: bool,
    #[serde(default = "yes")]
    pub flag_disposable_email: bool,
    /// A referrer with at least this many pending referrals older than
    /// `stale_pending_days` gets new referrals flagged.
    #[serde(default = "default_stale_count")]
    pub stale_pending_count: u32,
    #[serde(default = "default_stale_days")]
    pub stale_pending_days: u32,
}

impl Default for FraudSettings {
    fn default() -> Self {
        Self {
            velocity_per_hour: default_velocity(),
            flag_shared_ip: true,
            flag_shared_device: true,
            flag_disposable_email: true,
            stale_pending_count: default_stale_count(),
            stale_pending_days: default_stale_days(),
        }
    }
}

fn default_velocity() -> u32 {
    10
}
fn default_stale_count() -> u32 {
    20
}
fn default_stale_days() -> u32 {
    14
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderboardSettings {
    #[serde(default)]
    pub score_by: ScoreBy,
    #[serde(default = "default_periods")]
    pub periods: Vec<Period>,
    #[serde(default = "default_top_n")]
    pub top_n: u32,
}

impl Default for LeaderboardSettings {
    fn default() -> Self {
        Self {
            score_by: ScoreBy::default(),
            periods: default_periods(),
            top_n: default_top_n(),
        }
    }
}

fn default_periods() -> Vec<Period> {
    vec![Period::All, Period::Month, Period::Week]
}
fn default_top_n() -> u32 {
    10
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreBy {
    #[default]
    Points,
    ConfirmedReferrals,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    All,
    Month,
    Week,
}

/// One precise complaint about a configuration: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigError {
    /// A JSON path, e.g. `point_rules[2].when.referral_count`.
    pub path: String,
    pub reason: String,
}

impl ConfigError {
    fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// A configuration at one version. Versions start at 1 and only grow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versioned {
    pub version: u32,
    pub config: CampaignConfig,
}

impl Versioned {
    /// The next version with `config`, validated.
    pub fn update(&self, config: CampaignConfig) -> Result<Versioned, Vec<ConfigError>> {
        config.validate()?;
        Ok(Versioned {
            version: self.version + 1,
            config,
        })
    }
}

impl CampaignConfig {
    /// Parses and validates; serde's errors are reported with their path too.
    pub fn from_json(text: &str) -> Result<Self, Vec<ConfigError>> {
        let config: CampaignConfig = serde_json::from_str(text).map_err(|e| {
            vec![ConfigError::new(
                format!("line {} column {}", e.line(), e.column()),
                e.to_string(),
            )]
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn reward(&self, id: &str) -> Option<&RewardDef> {
        self.rewards.iter().find(|r| r.id == id)
    }

    /// Point rules for `event`, in the order they apply (priority, then as written).
    pub fn rules_for<'a>(&'a self, event: &'a str) -> impl Iterator<Item = &'a PointRule> + 'a {
        let mut rules: Vec<&PointRule> = self.point_rules.iter().filter(|r| r.event == event).collect();
        rules.sort_by_key(|r| r.priority);
        rules.into_iter()
    }

    pub fn quest_window_ms(&self) -> Millis {
        Millis::from(self.quest.window_days) * DAY_MS
    }

    pub fn attribution_window_ms(&self) -> Millis {
        Millis::from(self.attribution_window_days) * DAY_MS
    }

    /// Whether the campaign takes referrals at `now`.
    pub fn is_active_at(&self, now: Millis) -> bool {
        self.starts_at.is_none_or(|s| now >= s) && self.ends_at.is_none_or(|e| now < e)
    }

    /// Every problem at once, each with its path.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut err = |path: String, reason: &str| errors.push(ConfigError::new(path, reason));

        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            err("name".into(), "must be 1 to 200 characters");
        }
        if let (Some(s), Some(e)) = (self.starts_at, self.ends_at)
            && e <= s
        {
            err("ends_at".into(), "must be after starts_at");
        }
        // It becomes a `Location` header: no whitespace nor control
        // characters (a CR/LF once made every referral link fail), a host.
        if let Some(url) = &self.landing_url {
            let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
            let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
            if host.is_none_or(str::is_empty)
                || url.len() > 2000
                || url.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                err(
                    "landing_url".into(),
                    "must be an http(s) URL with a host, no spaces or line breaks",
                );
            }
        }
        if self.code_valid_days.is_some_and(|d| !(1..=3650).contains(&d)) {
            err("code_valid_days".into(), "must be 1 to 3650");
        }
        if !(1..=365).contains(&self.attribution_window_days) {
            err("attribution_window_days".into(), "must be 1 to 365");
        }
        if !(1..=365).contains(&self.quest.window_days) {
            err("quest.window_days".into(), "must be 1 to 365");
        }
        if self.quest.steps.len() > super::quest::MAX_STEPS {
            err("quest.steps".into(), "has more than 32 steps");
        }
        let mut step_names = BTreeSet::new();
        for (i, step) in self.quest.steps.iter().enumerate() {
            if !valid_name(&step.event) {
                err(
                    format!("quest.steps[{i}].event"),
                    "must be 1 to 128 characters, no control characters",
                );
            } else if step.event == REFERRAL_CONFIRMED {
                err(
                    format!("quest.steps[{i}].event"),
                    "referral_confirmed is emitted by refloop, not a step",
                );
            } else if !step_names.insert(step.event.as_str()) {
                err(format!("quest.steps[{i}].event"), "appears twice in the quest");
            }
        }

        let reward_ids = unique_ids(self.rewards.iter().map(|r| r.id.as_str()), "rewards", &mut errors);
        let _ = unique_ids(
            self.point_rules.iter().map(|r| r.id.as_str()),
            "point_rules",
            &mut errors,
        );
        let _ = unique_ids(self.milestones.iter().map(|m| m.id.as_str()), "milestones", &mut errors);
        let mut err = |path: String, reason: &str| errors.push(ConfigError::new(path, reason));

        for (i, rule) in self.point_rules.iter().enumerate() {
            let p = format!("point_rules[{i}]");
            if !valid_name(&rule.event) {
                err(format!("{p}.event"), "must be an event name");
            }
            if rule.points == 0 || rule.points.abs() > 1_000_000_000 {
                err(format!("{p}.points"), "must be non-zero and at most 1e9 in size");
            }
            if rule.max_per_participant.is_some_and(|n| n == 0 || n > MAX_RULE_REPEATS) {
                err(format!("{p}.max_per_participant"), "must be from 1 to 100000");
            }
            if let Some(c) = &rule.when.referral_count {
                match (c.equals, c.gte) {
                    (None, None) => err(format!("{p}.when.referral_count"), "needs equals or gte"),
                    (Some(_), Some(_)) => err(format!("{p}.when.referral_count"), "takes equals or gte, not both"),
                    _ => {}
                }
            }
            if rule.when.first_referral_only && rule.when.referral_count.is_some() {
                err(format!("{p}.when"), "first_referral_only already fixes referral_count");
            }
            for (j, t) in rule.when.traits.iter().enumerate() {
                let given = [t.equals.is_some(), t.one_of.is_some(), t.gte.is_some()]
                    .iter()
                    .filter(|b| **b)
                    .count();
                if t.key.trim().is_empty() {
                    err(format!("{p}.when.traits[{j}].key"), "must not be empty");
                }
                if given != 1 {
                    err(format!("{p}.when.traits[{j}]"), "takes exactly one of equals, in, gte");
                }
                if t.one_of.as_ref().is_some_and(Vec::is_empty) {
                    err(format!("{p}.when.traits[{j}].in"), "must list at least one value");
                }
            }
            let referral_only = rule.when.referral_count.is_some() || rule.when.first_referral_only;
            if referral_only && rule.event != REFERRAL_CONFIRMED {
                err(
                    format!("{p}.when"),
                    "referral conditions apply only to referral_confirmed rules",
                );
            }
            if referral_only && rule.to != Recipient::Referrer {
                err(
                    format!("{p}.to"),
                    "referral conditions count the referrer's referrals: use to = referrer",
                );
            }
        }

        for (i, m) in self.milestones.iter().enumerate() {
            let p = format!("milestones[{i}]");
            if m.confirmed_referrals == 0 && m.every.is_none() {
                err(format!("{p}.confirmed_referrals"), "must be at least 1 (or set every)");
            }
            if m.every == Some(0) {
                err(format!("{p}.every"), "must be at least 1");
            }
            if m.reward.is_none() && m.badge.is_none() && m.name.is_none() {
                err(p.clone(), "grants nothing: give it a reward, a badge or a tier name");
            }
            if let Some(r) = &m.reward
                && !reward_ids.contains(r.as_str())
            {
                err(format!("{p}.reward"), "names no reward of this campaign");
            }
        }
        let mut thresholds = BTreeSet::new();
        for (i, m) in self.milestones.iter().enumerate() {
            if m.every.is_none() && !thresholds.insert(m.confirmed_referrals) {
                err(
                    format!("milestones[{i}].confirmed_referrals"),
                    "another milestone has this threshold",
                );
            }
        }

        for (i, r) in self.rewards.iter().enumerate() {
            let p = format!("rewards[{i}]");
            if r.name.trim().is_empty() {
                err(format!("{p}.name"), "must not be empty");
            }
            match &r.kind {
                RewardKind::Points { points } if *points == 0 => err(format!("{p}.kind.points"), "must not be zero"),
                RewardKind::Credit {
                    amount_minor,
                    currency,
                    sized,
                } => {
                    if *amount_minor <= 0 {
                        err(
                            format!("{p}.kind.amount_minor"),
                            "must be positive (minor units, e.g. cents)",
                        );
                    }
                    if let Some(z) = sized {
                        let q = format!("{p}.kind.sized");
                        if z.percent.is_none() && z.tiers.is_empty() {
                            err(q.clone(), "needs percent or tiers");
                        }
                        if z.percent.is_some() && !z.tiers.is_empty() {
                            err(
                                q.clone(),
                                "has percent or tiers, not both (a tier can have its own percent)",
                            );
                        }
                        if let Some(pc) = z.percent
                            && !valid_percent(pc)
                        {
                            err(
                                format!("{q}.percent"),
                                "must be above 0 and at most 100, two decimals at most",
                            );
                        }
                        if let Some(max) = z.max_minor
                            && max <= 0
                        {
                            err(format!("{q}.max_minor"), "must be positive");
                        }
                        if z.tiers.len() > 20 {
                            err(format!("{q}.tiers"), "at most 20");
                        }
                        for (j, t) in z.tiers.iter().enumerate() {
                            let tp = format!("{q}.tiers[{j}]");
                            if t.from_minor < 0 {
                                err(format!("{tp}.from_minor"), "must not be negative");
                            }
                            if z.tiers[..j].iter().any(|u| u.from_minor == t.from_minor) {
                                err(format!("{tp}.from_minor"), "repeats another tier's");
                            }
                            match (t.amount_minor, t.percent) {
                                (Some(_), Some(_)) | (None, None) => {
                                    err(tp.clone(), "needs amount_minor or percent, one of them")
                                }
                                (Some(a), None) if a < 0 => err(format!("{tp}.amount_minor"), "must not be negative"),
                                (None, Some(pc)) if !valid_percent(pc) => err(
                                    format!("{tp}.percent"),
                                    "must be above 0 and at most 100, two decimals at most",
                                ),
                                _ => {}
                            }
                        }
                    }
                    if !valid_currency(currency) {
                        err(format!("{p}.kind.currency"), "must be an ISO 4217 code such as USD");
                    }
                }
                RewardKind::Coupon { prefix }
                    if prefix.len() > 16 || !prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
                {
                    err(
                        format!("{p}.kind.prefix"),
                        "must be at most 16 letters, digits or dashes",
                    )
                }
                RewardKind::RaffleTicket { tickets } if *tickets == 0 => {
                    err(format!("{p}.kind.tickets"), "must be at least 1")
                }
                _ => {}
            }
            if r.max_grants == Some(0) {
                err(format!("{p}.max_grants"), "must be at least 1 when set");
            }
        }
        if let Some(r) = &self.referee_reward
            && !reward_ids.contains(r.as_str())
        {
            err("referee_reward".into(), "names no reward of this campaign");
        }
        for (i, d) in self.end_distributions.iter().enumerate() {
            let p = format!("end_distributions[{i}]");
            if !reward_ids.contains(d.reward.as_str()) {
                err(format!("{p}.reward"), "names no reward of this campaign");
            }
            match d.rule {
                DistributionRule::TopN { n: 0 } | DistributionRule::Raffle { winners: 0 } => {
                    err(format!("{p}.rule"), "must pick at least one winner")
                }
                _ => {}
            }
            if matches!(d.rule, DistributionRule::Raffle { .. })
                && !self
                    .rewards
                    .iter()
                    .any(|r| matches!(r.kind, RewardKind::RaffleTicket { .. }))
            {
                err(
                    format!("{p}.rule"),
                    "a raffle needs a raffle_ticket reward to hand out tickets",
                );
            }
        }
        if !end_date_ok(self) {
            err(
                "end_distributions".into(),
                "need ends_at: they run when the campaign ends",
            );
        }
        if let Some(b) = &self.caps.budget {
            if b.amount_minor <= 0 {
                err("caps.budget.amount_minor".into(), "must be positive");
            }
            if !valid_currency(&b.currency) {
                err("caps.budget.currency".into(), "must be an ISO 4217 code such as USD");
            }
            for (i, r) in self.rewards.iter().enumerate() {
                if let RewardKind::Credit { currency, .. } = &r.kind
                    && currency != &b.currency
                {
                    err(
                        format!("rewards[{i}].kind.currency"),
                        "differs from the budget's currency",
                    );
                }
            }
        }
        if matches!(self.caps.max_winners, Some(0)) {
            err("caps.max_winners".into(), "must be at least 1 when set");
        }
        if matches!(self.caps.per_referrer_max_points, Some(p) if p <= 0) {
            err("caps.per_referrer_max_points".into(), "must be positive when set");
        }
        if self.fraud.velocity_per_hour == 0 {
            err("fraud.velocity_per_hour".into(), "must be at least 1");
        }
        if self.leaderboard.periods.is_empty() {
            err("leaderboard.periods".into(), "must list at least one period");
        }
        if !(1..=1000).contains(&self.leaderboard.top_n) {
            err("leaderboard.top_n".into(), "must be 1 to 1000");
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

fn end_date_ok(c: &CampaignConfig) -> bool {
    c.end_distributions.is_empty() || c.ends_at.is_some()
}

fn unique_ids<'a>(ids: impl Iterator<Item = &'a str>, list: &str, errors: &mut Vec<ConfigError>) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    for (i, id) in ids.enumerate() {
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            errors.push(ConfigError::new(
                format!("{list}[{i}].id"),
                "must be 1 to 64 letters, digits, - _ .",
            ));
        } else if !seen.insert(id) {
            errors.push(ConfigError::new(format!("{list}[{i}].id"), "is used twice"));
        }
    }
    seen
}

fn valid_name(s: &str) -> bool {
    let n = s.chars().count();
    (1..=128).contains(&n) && !s.chars().any(char::is_control)
}

fn valid_currency(c: &str) -> bool {
    c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())
}

/// RFC 3339 strings in JSON, milliseconds inside.
mod opt_time {
    use super::Millis;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(ms) => s.serialize_str(&crate::time::format_rfc3339_ms(*ms)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => crate::time::parse_rfc3339_ms(&s)
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("{s:?} is not an RFC 3339 timestamp"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> CampaignConfig {
        CampaignConfig::from_json(r#"{"name":"Launch"}"#).unwrap()
    }

    #[test]
    fn a_minimal_campaign_gets_the_documented_defaults() {
        let c = minimal();
        assert_eq!(c.mode, Mode::Code);
        assert_eq!(c.attribution_window_days, 90);
        assert_eq!(c.quest.window_days, 30);
        assert_eq!(c.leaderboard.periods, vec![Period::All, Period::Month, Period::Week]);
        assert_eq!(CampaignConfig::from_json(&c.to_json()).unwrap(), c, "round trip");
    }

    #[test]
    fn errors_name_their_path_and_all_are_reported() {
        let errors = CampaignConfig::from_json(
            r#"{"name":"", "attribution_window_days": 0,
                "quest": {"steps":[{"event":"signup"},{"event":"signup"}]},
                "point_rules":[{"id":"a","event":"signup","to":"self","points":0},
                               {"id":"a","event":"signup","to":"self","points":5,
                                "when":{"referral_count":{"equals":5}}}],
                "milestones":[{"id":"m","confirmed_referrals":3,"reward":"nope"}],
                "rewards":[{"id":"c","name":"Credit","kind":{"type":"credit","amount_minor":-5,"currency":"usd"}}]}"#,
        )
        .unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        for expected in [
            "name",
            "attribution_window_days",
            "quest.steps[1].event",
            "point_rules[1].id",
            "point_rules[0].points",
            "point_rules[1].when",
            "point_rules[1].to",
            "milestones[0].reward",
            "rewards[0].kind.amount_minor",
            "rewards[0].kind.currency",
        ] {
            assert!(paths.contains(&expected), "missing {expected} in {errors:#?}");
        }
    }

    #[test]
    fn type_errors_come_with_a_position() {
        let errors = CampaignConfig::from_json(r#"{"name":"x","mode":"pyramid"}"#).unwrap_err();
        assert!(errors[0].path.starts_with("line 1"), "{errors:?}");
        assert!(errors[0].reason.contains("pyramid"));
        let unknown = CampaignConfig::from_json(r#"{"name":"x","colour":"red"}"#).unwrap_err();
        assert!(unknown[0].reason.contains("colour"));
        let date = CampaignConfig::from_json(r#"{"name":"x","starts_at":"tomorrow"}"#).unwrap_err();
        assert!(date[0].reason.contains("RFC 3339"));
    }

    #[test]
    fn updates_make_new_versions_and_refuse_invalid_configs() {
        let v1 = Versioned {
            version: 1,
            config: minimal(),
        };
        let mut next = minimal();
        next.name = "Launch 2".into();
        let v2 = v1.update(next).unwrap();
        assert_eq!(v2.version, 2);
        let mut bad = minimal();
        bad.name.clear();
        assert!(v2.update(bad).is_err());
    }

    #[test]
    fn activity_window() {
        let c = CampaignConfig::from_json(
            r#"{"name":"x","starts_at":"2026-01-01T00:00:00Z","ends_at":"2026-02-01T00:00:00Z"}"#,
        )
        .unwrap();
        let jan15 = crate::time::parse_rfc3339_ms("2026-01-15T00:00:00Z").unwrap();
        assert!(c.is_active_at(jan15));
        assert!(!c.is_active_at(c.ends_at.unwrap()));
        assert!(!c.is_active_at(c.starts_at.unwrap() - 1));
    }

    #[test]
    fn rules_apply_in_priority_order() {
        let c = CampaignConfig::from_json(
            r#"{"name":"x","point_rules":[
                {"id":"late","event":"signup","to":"self","points":1,"priority":5},
                {"id":"early","event":"signup","to":"self","points":1,"priority":-1},
                {"id":"other","event":"purchase","to":"self","points":1}]}"#,
        )
        .unwrap();
        let ids: Vec<&str> = c.rules_for("signup").map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["early", "late"]);
    }
}
