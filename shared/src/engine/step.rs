//! The engine over the slice of stored state that one input touches.
//!
//! `program` keeps a whole campaign in memory; the edge cannot. It loads the
//! few rows an input can change (the actor, their referral, the referrer, an
//! invitation, cap usage) into a `Slice`, asks `decide_event` (or one of the
//! admin decisions below) for `Effects`, and writes them in one transaction
//! guarded by the revisions it read: if another request changed any of those
//! rows in between, the write aborts and the edge decides again from fresh
//! rows. The composition follows `program` step for step; the differential
//! property test (`tests/step.rs`) holds the two to the same answers.

use super::config::{CampaignConfig, Mode, PointRule, REFERRAL_CONFIRMED, Recipient, RewardKind, ScoreBy, Versioned};
use super::fraud::ReferrerActivity;
use super::ledger::{reward_key, rule_key};
use super::model::*;
use super::program::{EngineEvent, Notice, SIGNUP};
use super::quest::{self, StepOutcome};
use super::referral::{Invitation, RefusalReason, SignupDecision, SignupFacts, decide_signup};
use super::rewards::{self, CapUsage, Grant, GrantSource, GrantStatus, SplitMix64};
use super::rules;
use std::collections::BTreeMap;

/// A participant as stored, with the counters the decisions read.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub participant: Participant,
    /// Referrals of theirs that count (confirmed, not under review).
    pub confirmed: u32,
    /// Sum of their ledger entries.
    pub score: i64,
    /// Points earned through referrer rules, for `caps.per_referrer_max_points`.
    pub referral_points: i64,
    /// Whether they hold a live grant (for `caps.max_winners`).
    pub is_winner: bool,
    /// Bumped by every write to the row; the guard of optimistic concurrency.
    pub rev: i64,
}

/// Live grants of the campaign, for the caps. Only loaded when a cap exists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub winners: u32,
    pub spent_minor: i64,
    pub grants_of_reward: BTreeMap<String, u32>,
    pub rev: i64,
}

/// What an input may read.
#[derive(Debug, Clone)]
pub struct Slice {
    pub campaign: CampaignId,
    pub current: Versioned,
    /// The version the actor's referral is pinned to, when it is not current.
    pub pinned: Option<Versioned>,
    /// The participant the event happened to, if they have joined.
    pub actor: Option<Person>,
    /// The actor's referral (they are its referee), with its revision.
    pub referral: Option<(Referral, i64)>,
    /// The referral's referrer, or for a signup the owner of the touched code
    /// or the inviter of the touched invitation.
    pub referrer: Option<Person>,
    /// Whether the referrer was erased (their code no longer refers).
    pub referrer_erased: bool,
    pub invitation: Option<Invitation>,
    pub activity: ReferrerActivity,
    /// `None` when the configuration has no caps that need it.
    pub usage: Option<Usage>,
    /// Grant keys the referrer or actor already hold (`GrantSource::key`).
    pub grant_keys: Vec<String>,
}

pub use super::store::HeldEvent;

/// A revision an effect was computed from; the write aborts if it moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    Participant { id: ParticipantId, rev: i64 },
    Referral { id: ReferralId, rev: i64 },
    Usage { rev: i64 },
}

/// What to write, all or nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    pub guards: Vec<Guard>,
    /// A new participant to insert.
    pub joined: Option<Participant>,
    /// The actor's identity after the event (user id, traits, hashes), when it changed.
    pub identity: Option<Participant>,
    pub referral_created: Option<Referral>,
    pub referral_updated: Option<Referral>,
    pub invitation_claimed: Option<(String, ParticipantId)>,
    /// The event waits for the review of the actor's flagged referral.
    pub held: Option<(ReferralId, HeldEvent)>,
    /// The held events of a reviewed referral are settled.
    pub held_released: Option<ReferralId>,
    /// +1 confirmed referral for these referrers.
    pub confirmations: Vec<ParticipantId>,
    pub entries: Vec<LedgerEntry>,
    /// Points of referrer rules, per entry (same order as `entries`).
    pub referral_points: Vec<(ParticipantId, i64)>,
    /// Leaderboard score changes: (participant, delta, at).
    pub board: Vec<(ParticipantId, i64, Millis)>,
    /// New grants.
    pub grants: Vec<Grant>,
    /// Grants that moved along their lifecycle (their last transition is the move).
    pub grants_moved: Vec<Grant>,
    pub notices: Vec<Notice>,
    pub refusal: Option<RefusalReason>,
    pub capped: Vec<String>,
}

/// Draws ids and codes. Ids fit in 53 bits so JavaScript reads them exactly.
pub struct Draw<'a>(pub &'a mut SplitMix64);

impl Draw<'_> {
    pub fn id(&mut self) -> u64 {
        (self.0.next_u64() >> 11).max(1)
    }

    /// A code (with `prefix`): the store's unique index catches the rare clash,
    /// and the edge decides again.
    pub fn code(&mut self, prefix: &str) -> String {
        loop {
            let bytes: Vec<u8> = (0..4).flat_map(|_| self.0.next_u64().to_le_bytes()).collect();
            if let Some(code) = rewards::token_from_random(prefix, &bytes) {
                return code;
            }
        }
    }
}

/// The working state of one decision: the slice, and what was decided so far.
struct Work<'s, 'r> {
    slice: &'s Slice,
    draw: Draw<'r>,
    actor: Option<Person>,
    referral: Option<Referral>,
    referrer: Option<Person>,
    usage: Option<Usage>,
    grant_keys: Vec<String>,
    out: Effects,
}

/// Decides what one event does to a campaign. `e.id` is new to the campaign
/// (the store's unique event index sees to that).
pub fn decide_event(slice: &Slice, e: &EngineEvent, rng: &mut SplitMix64) -> Effects {
    let mut w = Work {
        slice,
        draw: Draw(rng),
        actor: slice.actor.clone(),
        referral: slice.referral.as_ref().map(|r| r.0.clone()),
        referrer: slice.referrer.clone(),
        usage: slice.usage.clone(),
        grant_keys: slice.grant_keys.clone(),
        out: Effects::default(),
    };
    for p in [&slice.actor, &slice.referrer].into_iter().flatten() {
        w.out.guards.push(Guard::Participant {
            id: p.participant.id,
            rev: p.rev,
        });
    }
    if let Some((r, rev)) = &slice.referral {
        w.out.guards.push(Guard::Referral { id: r.id, rev: *rev });
    }
    if let Some(u) = &slice.usage {
        w.out.guards.push(Guard::Usage { rev: u.rev });
    }
    w.event(e);
    w.out
}

impl Work<'_, '_> {
    fn config(&self) -> &CampaignConfig {
        &self.slice.current.config
    }

    fn version(&self) -> u32 {
        self.slice.current.version
    }

    fn config_at(&self, version: u32) -> &CampaignConfig {
        match &self.slice.pinned {
            Some(v) if v.version == version => &v.config,
            _ => &self.slice.current.config,
        }
    }

    fn person(&self, id: ParticipantId) -> Option<&Person> {
        [&self.actor, &self.referrer]
            .into_iter()
            .flatten()
            .find(|p| p.participant.id == id)
    }

    fn person_mut(&mut self, id: ParticipantId) -> Option<&mut Person> {
        [&mut self.actor, &mut self.referrer]
            .into_iter()
            .flatten()
            .find(|p| p.participant.id == id)
    }

    fn event(&mut self, e: &EngineEvent) {
        if self.actor.is_none() {
            if e.name != SIGNUP && e.name != "identify" {
                return; // a visitor who has not joined: stored, nothing to decide
            }
            let p = Participant {
                id: ParticipantId(self.draw.id()),
                anonymous_id: e.anonymous_id.clone(),
                user_id: None,
                code: self.draw.code(""),
                joined_at: e.at,
                traits: Traits::new(),
                email_hash: None,
                email_domain: None,
                ip_hash: None,
                device_id: None,
            };
            self.out.joined = Some(p.clone());
            self.actor = Some(Person {
                participant: p,
                confirmed: 0,
                score: 0,
                referral_points: 0,
                is_winner: false,
                rev: 0,
            });
        }
        self.update_identity(e);
        let Some(actor) = self.actor.as_ref().map(|a| a.participant.id) else {
            return;
        };
        if e.name == SIGNUP
            && let Some(touch) = &e.touch
        {
            self.signup(actor, touch, e.at);
        }
        if self.referral.is_some() {
            self.quest_step(e);
        }
        self.apply_rules(actor, e);
    }

    fn update_identity(&mut self, e: &EngineEvent) {
        let Some(actor) = self.actor.as_mut() else { return };
        let p = &mut actor.participant;
        let before = p.clone();
        if p.user_id.is_none() {
            p.user_id.clone_from(&e.user_id);
        }
        if p.anonymous_id.is_none() {
            p.anonymous_id.clone_from(&e.anonymous_id);
        }
        for (k, v) in &e.traits {
            p.traits.insert(k.clone(), v.clone());
        }
        for (field, value) in [
            (&mut p.email_hash, &e.email_hash),
            (&mut p.email_domain, &e.email_domain),
            (&mut p.ip_hash, &e.ip_hash),
            (&mut p.device_id, &e.device_id),
        ] {
            if value.is_some() {
                field.clone_from(value);
            }
        }
        if *p != before {
            match &mut self.out.joined {
                Some(j) => *j = p.clone(),
                None => self.out.identity = Some(p.clone()),
            }
        }
    }

    fn signup(&mut self, actor: ParticipantId, touch: &super::referral::Touch, now: Millis) {
        let referrer = self.referrer.as_ref().map(|r| r.participant.clone());
        let Some(referee) = self.actor.as_ref().map(|a| a.participant.clone()) else {
            return;
        };
        let decision = decide_signup(&SignupFacts {
            config: self.config(),
            now,
            referee: &referee,
            touch,
            already_referred: self.referral.is_some(),
            referrer: referrer.as_ref(),
            referrer_active: referrer.is_some() && !self.slice.referrer_erased,
            invitation: self.slice.invitation.as_ref(),
            referrer_confirmed: self.referrer.as_ref().map_or(0, |r| r.confirmed),
            activity: self.slice.activity,
        });
        let (referrer, status, flags, reason) = match decision {
            SignupDecision::Refuse(reason) => {
                self.out.refusal = Some(reason);
                return;
            }
            SignupDecision::CreateRejected { referrer, reason } => {
                self.out.refusal = Some(reason);
                (
                    referrer,
                    ReferralStatus::Rejected,
                    Vec::new(),
                    Some(reason.as_str().to_owned()),
                )
            }
            SignupDecision::Create { referrer, flags } => (referrer, ReferralStatus::Pending, flags, None),
        };
        let review = if flags.is_empty() {
            Review::Clear
        } else {
            Review::Pending
        };
        let r = Referral {
            id: ReferralId(self.draw.id()),
            referrer,
            referee: actor,
            via: touch
                .code
                .clone()
                .or_else(|| touch.invitation.clone())
                .unwrap_or_default(),
            status,
            config_version: self.version(),
            created_at: now,
            done_mask: 0,
            confirmed_at: None,
            flags,
            review,
            reason,
        };
        if let Some(token) = &touch.invitation
            && self.slice.invitation.as_ref().is_some_and(|i| &i.token == token)
        {
            self.out.invitation_claimed = Some((token.clone(), actor));
        }
        let id = r.id;
        self.referral = Some(r.clone());
        self.out.referral_created = Some(r);
        if status == ReferralStatus::Pending && self.config().quest.steps.is_empty() {
            self.confirm(id, now);
        }
    }

    /// Records a change to the referral: an insert if it is new, else an update.
    fn save_referral(&mut self) {
        let Some(r) = self.referral.clone() else { return };
        match &mut self.out.referral_created {
            Some(created) if created.id == r.id => *created = r,
            _ => self.out.referral_updated = Some(r),
        }
    }

    fn quest_step(&mut self, e: &EngineEvent) {
        let Some(r) = self.referral.clone() else { return };
        let config = self.config_at(r.config_version);
        match quest::advance(config, &r, r.done_mask, &e.name, e.trusted, e.at) {
            StepOutcome::Done { step, confirmed } => {
                if let Some(r) = self.referral.as_mut() {
                    r.done_mask |= 1 << step;
                }
                self.save_referral();
                if confirmed {
                    self.confirm(r.id, e.at);
                }
            }
            StepOutcome::Expired => {
                if let Some(r) = self.referral.as_mut() {
                    r.status = ReferralStatus::Expired;
                }
                self.save_referral();
            }
            StepOutcome::NotAStep | StepOutcome::NeedsTrusted | StepOutcome::AlreadyDone => {}
        }
    }

    fn confirm(&mut self, rid: ReferralId, at: Millis) {
        let Some(r) = self.referral.as_mut().filter(|r| r.id == rid) else {
            return;
        };
        r.status = ReferralStatus::Confirmed;
        r.confirmed_at = Some(at);
        let (review, referee, version) = (r.review, r.referee, r.config_version);
        self.save_referral();
        if review == Review::Pending {
            if let Some(reward) = self.config_at(version).referee_reward.clone() {
                self.grant(referee, &reward, GrantSource::Referee { referral: rid }, true, at);
            }
            return;
        }
        self.count_confirmation(at);
    }

    fn count_confirmation(&mut self, at: Millis) {
        let Some(r) = self.referral.clone() else { return };
        let Some(before) = self.person(r.referrer).map(|p| p.confirmed) else {
            return;
        };
        if let Some(max) = self.config().caps.per_referrer_max_confirmed
            && before >= max
        {
            if let Some(r) = self.referral.as_mut() {
                r.status = ReferralStatus::Rejected;
                r.reason = Some(RefusalReason::ReferrerCapReached.as_str().into());
            }
            self.save_referral();
            self.out.refusal = Some(RefusalReason::ReferrerCapReached);
            return;
        }
        let after = before + 1;
        if let Some(p) = self.person_mut(r.referrer) {
            p.confirmed = after;
        }
        self.out.confirmations.push(r.referrer);
        self.out.notices.push(Notice::ReferralConfirmed {
            referral: r.id,
            referrer: r.referrer,
            referee: r.referee,
        });
        if self.config().leaderboard.score_by == ScoreBy::ConfirmedReferrals {
            self.out.board.push((r.referrer, 1, at));
        }
        let synthetic = EngineEvent {
            id: format!("referral:{}:confirmed", r.id.0),
            name: REFERRAL_CONFIRMED.into(),
            ..EngineEvent::new("", "", "", at)
        };
        let pinned = self.config_at(r.config_version).clone();
        let rules: Vec<PointRule> = pinned.rules_for(REFERRAL_CONFIRMED).cloned().collect();
        self.award(&pinned, &rules, &synthetic, r.referee, true);

        let config = self.config().clone();
        for (m, nth) in rewards::milestones_crossed(&config, before, after) {
            self.out.notices.push(Notice::MilestoneReached {
                participant: r.referrer,
                milestone: m.id.clone(),
                nth,
            });
            if let Some(reward) = &m.reward {
                let source = GrantSource::Milestone {
                    milestone: m.id.clone(),
                    nth,
                };
                self.grant(r.referrer, reward, source, false, at);
            }
        }
        if let Some(reward) = pinned.referee_reward.clone() {
            self.grant(r.referee, &reward, GrantSource::Referee { referral: r.id }, false, at);
        }
    }

    fn apply_rules(&mut self, actor: ParticipantId, e: &EngineEvent) {
        let held = self.referral.as_ref().is_some_and(|r| r.review == Review::Pending);
        if held && let Some(r) = &self.referral {
            let pinned = self.config_at(r.config_version);
            if pinned.rules_for(&e.name).any(|rule| rule.to != Recipient::Actor) {
                self.out.held = Some((
                    r.id,
                    HeldEvent {
                        id: e.id.clone(),
                        name: e.name.clone(),
                        trusted: e.trusted,
                        at: e.at,
                    },
                ));
            }
        }
        let current = self.config().clone();
        let own: Vec<PointRule> = current
            .rules_for(&e.name)
            .filter(|r| r.to == Recipient::Actor && (e.trusted || !r.trusted))
            .cloned()
            .collect();
        self.award(&current, &own, e, actor, false);
        if let (Some(r), false) = (self.referral.clone(), held) {
            let pinned = self.config_at(r.config_version).clone();
            let side: Vec<PointRule> = pinned
                .rules_for(&e.name)
                .filter(|rule| rule.to != Recipient::Actor && (e.trusted || !rule.trusted))
                .cloned()
                .collect();
            self.award(&pinned, &side, e, actor, true);
        }
    }

    /// `program::award` over the slice: the rules that fire, their entries.
    fn award(
        &mut self,
        config: &CampaignConfig,
        rules: &[PointRule],
        e: &EngineEvent,
        actor: ParticipantId,
        side: bool,
    ) {
        let live = self
            .referral
            .clone()
            .filter(|_| side)
            .filter(|r| matches!(r.status, ReferralStatus::Pending | ReferralStatus::Confirmed));
        let recipient = |to: Recipient| match to {
            Recipient::Actor => Some(actor),
            Recipient::Referee => live.as_ref().map(|r| r.referee),
            Recipient::Referrer => live.as_ref().map(|r| r.referrer),
        };
        let facts: BTreeMap<u8, (u32, i64, Traits)> = [Recipient::Actor, Recipient::Referee, Recipient::Referrer]
            .into_iter()
            .filter_map(|to| {
                let p = self.person(recipient(to)?)?;
                Some((to as u8, (p.confirmed, p.score, p.participant.traits.clone())))
            })
            .collect();
        let awards: Vec<(String, Recipient, i64)> =
            rules::evaluate(rules.iter(), |to| facts.get(&(to as u8)).map(|(c, s, t)| (*c, *s, t)))
                .into_iter()
                .map(|a| (a.rule.id.clone(), a.to, a.points))
                .collect();
        for (rule, to, points) in awards {
            let Some(p) = recipient(to) else { continue };
            let mut points = points;
            if to == Recipient::Referrer
                && let Some(cap) = config.caps.per_referrer_max_points
            {
                let earned = self.person(p).map_or(0, |x| x.referral_points);
                if points > 0 {
                    points = points.min(cap - earned).max(0);
                }
                if points == 0 {
                    continue;
                }
            }
            let entry = LedgerEntry {
                participant: p,
                points,
                reason: EntryReason::Rule { rule: rule.clone() },
                source_event: Some(e.id.clone()),
                referral: live.as_ref().map(|r| r.id),
                idempotency_key: rule_key(&e.id, &rule, p),
                at: e.at,
                config_version: self.version(),
                campaign: self.slice.campaign,
            };
            let referral_points = if to == Recipient::Referrer { points } else { 0 };
            self.write(entry, referral_points);
        }
    }

    fn write(&mut self, entry: LedgerEntry, referral_points: i64) {
        if self
            .out
            .entries
            .iter()
            .any(|x| x.idempotency_key == entry.idempotency_key)
        {
            return;
        }
        let (p, points, at) = (entry.participant, entry.points, entry.at);
        if let Some(person) = self.person_mut(p) {
            person.score += points;
            person.referral_points += referral_points;
        }
        if self.config().leaderboard.score_by == ScoreBy::Points {
            self.out.board.push((p, points, at));
        }
        self.out.referral_points.push((p, referral_points));
        self.out.entries.push(entry);
    }

    fn grant(&mut self, p: ParticipantId, reward_id: &str, source: GrantSource, needs_review: bool, at: Millis) {
        let config = self.config().clone();
        let Some(reward) = config.reward(reward_id) else { return };
        let key = source.key(p, reward_id);
        if self.grant_keys.contains(&key) {
            return;
        }
        let usage = self.usage.clone().unwrap_or_default();
        let caps = CapUsage {
            winners: usage.winners,
            is_winner: self.person(p).is_some_and(|x| x.is_winner),
            spent_minor: usage.spent_minor,
            grants_of_reward: usage.grants_of_reward.get(&reward.id).copied().unwrap_or(0),
        };
        if let Err(reason) = rewards::check_caps(&config, reward, &caps) {
            self.out.capped.push(reason);
            return;
        }
        let token = match &reward.kind {
            RewardKind::Coupon { prefix } => Some(self.draw.code(prefix)),
            _ => None,
        };
        let g = Grant::new(GrantId(self.draw.id()), p, reward, source, needs_review, token, at);
        self.grant_keys.push(key);
        if let Some(u) = self.usage.as_mut() {
            if !caps.is_winner {
                u.winners += 1;
            }
            *u.grants_of_reward.entry(reward.id.clone()).or_default() += 1;
            if let Some(v) = &g.value
                && config.caps.budget.as_ref().is_some_and(|b| b.currency == v.currency)
            {
                u.spent_minor += v.amount_minor;
            }
        }
        if let Some(person) = self.person_mut(p) {
            person.is_winner = true;
        }
        self.out.notices.push(Notice::RewardEarned {
            grant: g.id,
            participant: p,
            reward: reward.id.clone(),
        });
        let approved = g.status == GrantStatus::Approved;
        if approved && let Some(entry) = points_entry(&config, &g, 1, at, self.version(), self.slice.campaign) {
            self.write(entry, 0);
        }
        self.out.grants.push(g);
    }
}

/// The ledger entry a points reward makes when its grant is approved (`sign`
/// 1) or revoked (`sign` -1); `None` for rewards that are not points.
pub fn points_entry(
    config: &CampaignConfig,
    g: &Grant,
    sign: i64,
    at: Millis,
    version: u32,
    campaign: CampaignId,
) -> Option<LedgerEntry> {
    let Some(RewardKind::Points { points }) = config.reward(&g.reward).map(|r| r.kind.clone()) else {
        return None;
    };
    let key = if sign > 0 {
        reward_key(&g.idempotency_key)
    } else {
        format!("revoke:{}", reward_key(&g.idempotency_key))
    };
    Some(LedgerEntry {
        participant: g.participant,
        points: sign * points,
        reason: EntryReason::Reward {
            reward: g.reward.clone(),
        },
        source_event: None,
        referral: None,
        idempotency_key: key,
        at,
        config_version: version,
        campaign,
    })
}

/// An operator moves a grant along its lifecycle: the grant after the move,
/// the ledger entry of a points reward (paid on approval, taken back on
/// revocation) and the webhook notice; an error a client can act on when the
/// lifecycle forbids the move.
pub fn decide_transition(
    current: &Versioned,
    campaign: CampaignId,
    grant: &Grant,
    to: GrantStatus,
    at: Millis,
    note: Option<String>,
) -> Result<(Grant, Option<LedgerEntry>, Notice), String> {
    let mut g = grant.clone();
    let from = g.status;
    g.transition(to, at, note)
        .map_err(|e| format!("a grant cannot go from {} to {}", e.from.as_str(), e.to.as_str()))?;
    let sign = match to {
        GrantStatus::Approved => 1,
        GrantStatus::Revoked => -1,
        _ => 0,
    };
    let entry = (sign != 0)
        .then(|| points_entry(&current.config, &g, sign, at, current.version, campaign))
        .flatten();
    let notice = Notice::RewardStatusChanged { grant: g.id, from, to };
    Ok((g, entry, notice))
}

/// An operator's manual adjustment: one ledger entry, keyed by the operator's
/// idempotency key so a retried request adds nothing.
pub fn adjustment(
    current: &Versioned,
    campaign: CampaignId,
    participant: ParticipantId,
    points: i64,
    note: String,
    key: &str,
    at: Millis,
) -> LedgerEntry {
    LedgerEntry {
        campaign,
        participant,
        points,
        reason: EntryReason::Manual { note },
        source_event: None,
        referral: None,
        idempotency_key: format!("manual:{key}"),
        at,
        config_version: current.version,
    }
}

/// A participant mints a single-use invitation (invite mode).
pub fn decide_invitation(
    config: &CampaignConfig,
    inviter: ParticipantId,
    at: Millis,
    rng: &mut SplitMix64,
) -> Result<Invitation, String> {
    if config.mode != Mode::Invite {
        return Err("this campaign is in code mode: share the referral code".into());
    }
    Ok(Invitation {
        token: Draw(rng).code(""),
        inviter,
        created_at: at,
        expires_at: at + config.attribution_window_ms(),
        claimed_by: None,
    })
}

/// An operator's review of a flagged referral: approving counts it (when the
/// referee finished the quest) and releases the referee's waiting reward;
/// rejecting rejects both. `waiting` are the referee grants in
/// `pending_review`; `held` the events whose referral-side rules waited for
/// this review (awarded on approval, dropped on rejection).
pub fn decide_review(
    slice: &Slice,
    waiting: &[Grant],
    held: &[HeldEvent],
    approve: bool,
    at: Millis,
    rng: &mut SplitMix64,
) -> Result<Effects, String> {
    let Some((r, rev)) = &slice.referral else {
        return Err("no such referral".into());
    };
    if r.review != Review::Pending {
        return Err("this referral is not waiting for review".into());
    }
    let mut w = Work {
        slice,
        draw: Draw(rng),
        actor: slice.actor.clone(),
        referral: Some(r.clone()),
        referrer: slice.referrer.clone(),
        usage: slice.usage.clone(),
        grant_keys: slice.grant_keys.clone(),
        out: Effects::default(),
    };
    w.out.guards.push(Guard::Referral { id: r.id, rev: *rev });
    for p in [&slice.actor, &slice.referrer].into_iter().flatten() {
        w.out.guards.push(Guard::Participant {
            id: p.participant.id,
            rev: p.rev,
        });
    }
    if let Some(u) = &slice.usage {
        w.out.guards.push(Guard::Usage { rev: u.rev });
    }
    let note = Some(
        if approve {
            "referral approved"
        } else {
            "referral rejected"
        }
        .to_owned(),
    );
    for g in waiting {
        let releasable = slice
            .current
            .config
            .reward(&g.reward)
            .is_none_or(|d| !d.requires_review);
        if approve && !releasable {
            continue;
        }
        let to = if approve {
            GrantStatus::Approved
        } else {
            GrantStatus::Rejected
        };
        let (moved, entry, notice) = decide_transition(&slice.current, slice.campaign, g, to, at, note.clone())?;
        if let Some(e) = entry {
            w.write(e, 0);
        }
        w.out.notices.push(notice);
        w.out.grants_moved.push(moved);
    }
    if let Some(r) = w.referral.as_mut() {
        if approve {
            r.review = Review::Approved;
        } else {
            r.review = Review::Rejected;
            r.status = ReferralStatus::Rejected;
            r.reason = Some("rejected on review".into());
        }
    }
    w.out.referral_updated = w.referral.clone();
    w.out.held_released = Some(r.id);
    if approve {
        let pinned = w.config_at(r.config_version).clone();
        for h in held {
            let side: Vec<PointRule> = pinned
                .rules_for(&h.name)
                .filter(|rule| rule.to != Recipient::Actor && (h.trusted || !rule.trusted))
                .cloned()
                .collect();
            let e = EngineEvent {
                id: h.id.clone(),
                name: h.name.clone(),
                trusted: h.trusted,
                ..EngineEvent::new("", "", "", h.at)
            };
            w.award(&pinned, &side, &e, r.referee, true);
        }
        if r.status == ReferralStatus::Confirmed {
            w.count_confirmation(at);
        }
    }
    Ok(w.out)
}
