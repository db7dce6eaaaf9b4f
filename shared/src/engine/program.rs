//! The engine over one campaign's state, in memory: the reference composition
//! of the decisions in `referral`, `quest`, `rules`, `rewards`, `fraud` and
//! `leaderboard`. The edge composes the same functions over rows it loads from
//! D1; tests, property tests and benchmarks drive this one.
//!
//! Every input is appended to a log, so the whole state can be rebuilt (and
//! replayed under another configuration version). Randomness comes from a
//! seed given at construction; nothing here reads a clock.

use super::config::{CampaignConfig, Mode, PointRule, REFERRAL_CONFIRMED, Recipient, RewardKind, ScoreBy, Versioned};
use super::fraud::{ReferrerActivity, VELOCITY_WINDOW_MS};
use super::leaderboard::Leaderboard;
use super::ledger::{Ledger, corrections, reward_key, rule_key};
use super::model::*;
use super::quest::{self, StepOutcome};
use super::referral::{Invitation, RefusalReason, SignupDecision, SignupFacts, Touch, decide_signup};
use super::rewards::{self, CapUsage, Grant, GrantSource, GrantStatus, SplitMix64, Standing};
use super::rules;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// The event that makes an unknown visitor a participant and carries the
/// referral attribution.
pub const SIGNUP: &str = "signup";

/// An event as the engine sees it (the edge builds it from a stored event).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineEvent {
    pub id: String,
    pub name: String,
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    pub at: Millis,
    /// Came from `POST /v1/server/events` with a secret key.
    pub trusted: bool,
    pub touch: Option<Touch>,
    pub traits: Traits,
    pub email_hash: Option<String>,
    pub email_domain: Option<String>,
    pub ip_hash: Option<String>,
    pub device_id: Option<String>,
}

impl EngineEvent {
    pub fn new(id: impl Into<String>, name: impl Into<String>, anonymous_id: impl Into<String>, at: Millis) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            anonymous_id: Some(anonymous_id.into()),
            user_id: None,
            at,
            trusted: false,
            touch: None,
            traits: Traits::new(),
            email_hash: None,
            email_domain: None,
            ip_hash: None,
            device_id: None,
        }
    }
}

/// Everything that can happen to a campaign, in the order it happened.
#[derive(Debug, Clone)]
pub enum Input {
    Event(Box<EngineEvent>),
    Click {
        code: String,
        at: Millis,
    },
    Invite {
        participant: ParticipantId,
        at: Millis,
    },
    Review {
        referral: ReferralId,
        approve: bool,
        at: Millis,
    },
    Adjust {
        participant: ParticipantId,
        points: i64,
        note: String,
        key: String,
        at: Millis,
    },
    Transition {
        grant: GrantId,
        to: GrantStatus,
        at: Millis,
        note: Option<String>,
    },
    Configure(Box<CampaignConfig>),
    /// Expire overdue referrals and grants.
    Tick {
        now: Millis,
    },
    /// The campaign ended: run the end distributions with this raffle seed.
    End {
        at: Millis,
        seed: u64,
    },
    Erase {
        participant: ParticipantId,
        at: Millis,
    },
}

/// What the webhook outbox carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum Notice {
    #[serde(rename = "referral.confirmed")]
    ReferralConfirmed {
        referral: ReferralId,
        referrer: ParticipantId,
        referee: ParticipantId,
    },
    #[serde(rename = "milestone.reached")]
    MilestoneReached {
        participant: ParticipantId,
        milestone: String,
        nth: u32,
    },
    #[serde(rename = "reward.earned")]
    RewardEarned {
        grant: GrantId,
        participant: ParticipantId,
        reward: String,
    },
    #[serde(rename = "reward.status_changed")]
    RewardStatusChanged {
        grant: GrantId,
        from: GrantStatus,
        to: GrantStatus,
    },
    #[serde(rename = "leaderboard.top_n_changed")]
    TopNChanged { top: Vec<ParticipantId> },
}

/// What one input did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// The event id had taken effect before: nothing happened.
    pub duplicate: bool,
    pub participant: Option<ParticipantId>,
    pub referral: Option<ReferralId>,
    pub refusal: Option<RefusalReason>,
    pub entries: Vec<LedgerEntry>,
    pub grants: Vec<GrantId>,
    /// Grants a cap refused, with the reason.
    pub capped: Vec<String>,
    pub notices: Vec<Notice>,
    pub invitation: Option<String>,
    pub error: Option<String>,
}

pub struct Program {
    campaign: CampaignId,
    versions: Vec<Versioned>,
    rng: SplitMix64,
    seed: u64,
    participants: Vec<Participant>,
    erased: HashSet<ParticipantId>,
    by_anonymous: HashMap<String, ParticipantId>,
    by_user: HashMap<String, ParticipantId>,
    by_code: HashMap<String, ParticipantId>,
    referrals: Vec<Referral>,
    referral_of: HashMap<ParticipantId, ReferralId>,
    referrals_by: HashMap<ParticipantId, Vec<ReferralId>>,
    confirmed: HashMap<ParticipantId, u32>,
    referral_points: HashMap<ParticipantId, i64>,
    invitations: HashMap<String, Invitation>,
    ledger: Ledger,
    grants: Vec<Grant>,
    grant_keys: HashMap<String, GrantId>,
    /// Exchange tokens handed out, unique in the campaign.
    tokens: HashSet<String>,
    winners: HashSet<ParticipantId>,
    leaderboard: Leaderboard,
    seen: HashSet<String>,
    /// Events whose referral-side effects wait for a flagged referral's review.
    held: HashMap<ReferralId, Vec<EngineEvent>>,
    clicks: Vec<(String, Millis)>,
    ended: bool,
    log: Vec<Input>,
    top_before: Vec<ParticipantId>,
}

impl Program {
    pub fn new(config: CampaignConfig, seed: u64) -> Result<Self, Vec<super::config::ConfigError>> {
        config.validate()?;
        let leaderboard = Leaderboard::new(&config.leaderboard.periods);
        Ok(Self {
            campaign: CampaignId::default(),
            versions: vec![Versioned { version: 1, config }],
            rng: SplitMix64::new(seed),
            seed,
            participants: Vec::new(),
            erased: HashSet::new(),
            by_anonymous: HashMap::new(),
            by_user: HashMap::new(),
            by_code: HashMap::new(),
            referrals: Vec::new(),
            referral_of: HashMap::new(),
            referrals_by: HashMap::new(),
            confirmed: HashMap::new(),
            referral_points: HashMap::new(),
            invitations: HashMap::new(),
            ledger: Ledger::default(),
            grants: Vec::new(),
            grant_keys: HashMap::new(),
            tokens: HashSet::new(),
            winners: HashSet::new(),
            leaderboard,
            seen: HashSet::new(),
            held: HashMap::new(),
            clicks: Vec::new(),
            ended: false,
            log: Vec::new(),
            top_before: Vec::new(),
        })
    }

    /// Names the campaign its ledger entries belong to.
    pub fn with_campaign(mut self, campaign: CampaignId) -> Self {
        self.campaign = campaign;
        self
    }

    // ---- reading -------------------------------------------------------

    pub fn campaign(&self) -> CampaignId {
        self.campaign
    }

    pub fn config(&self) -> &CampaignConfig {
        &self.current().config
    }

    pub fn version(&self) -> u32 {
        self.current().version
    }

    fn current(&self) -> &Versioned {
        self.versions.last().expect("a program has at least one version")
    }

    fn config_at(&self, version: u32) -> &CampaignConfig {
        &self.versions[(version.max(1) as usize - 1).min(self.versions.len() - 1)].config
    }

    pub fn participant(&self, id: ParticipantId) -> Option<&Participant> {
        self.participants
            .get(id.0 as usize)
            .filter(|_| !self.erased.contains(&id))
    }

    pub fn participants(&self) -> impl Iterator<Item = &Participant> {
        self.participants.iter().filter(|p| !self.erased.contains(&p.id))
    }

    pub fn find(&self, anonymous_id: Option<&str>, user_id: Option<&str>) -> Option<ParticipantId> {
        user_id
            .and_then(|u| self.by_user.get(u))
            .or_else(|| anonymous_id.and_then(|a| self.by_anonymous.get(a)))
            .copied()
    }

    pub fn by_code(&self, code: &str) -> Option<ParticipantId> {
        self.by_code.get(code).copied()
    }

    pub fn referral(&self, id: ReferralId) -> Option<&Referral> {
        self.referrals.get(id.0 as usize)
    }

    pub fn referrals(&self) -> &[Referral] {
        &self.referrals
    }

    pub fn referral_of(&self, referee: ParticipantId) -> Option<&Referral> {
        self.referral_of.get(&referee).and_then(|r| self.referral(*r))
    }

    pub fn confirmed_referrals(&self, p: ParticipantId) -> u32 {
        self.confirmed.get(&p).copied().unwrap_or(0)
    }

    pub fn score(&self, p: ParticipantId) -> i64 {
        self.ledger.score(p)
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    pub fn leaderboard(&self) -> &Leaderboard {
        &self.leaderboard
    }

    pub fn clicks(&self) -> &[(String, Millis)] {
        &self.clicks
    }

    pub fn log(&self) -> &[Input] {
        &self.log
    }

    /// The analytics funnel of the campaign.
    pub fn funnel(&self) -> super::analytics::Funnel {
        let confirmed = self.referrals.iter().filter(|r| r.counts()).count() as u64;
        super::analytics::funnel(
            self.clicks.len() as u64,
            self.referrals.len() as u64,
            confirmed,
            self.participants().count() as u64,
        )
    }

    /// Clicks, referred signups and confirmations per UTC day.
    pub fn trend(&self, from: Millis, to: Millis) -> Vec<super::analytics::Day> {
        let clicks: Vec<Millis> = self.clicks.iter().map(|c| c.1).collect();
        let signups: Vec<Millis> = self.referrals.iter().map(|r| r.created_at).collect();
        let confirmed: Vec<Millis> = self
            .referrals
            .iter()
            .filter(|r| r.counts())
            .filter_map(|r| r.confirmed_at)
            .collect();
        super::analytics::daily_trend(&clicks, &signups, &confirmed, from, to)
    }

    // ---- writing -------------------------------------------------------

    /// Applies one input and returns what it did. Every input is logged.
    pub fn apply(&mut self, input: Input) -> Outcome {
        self.log.push(input.clone());
        let mut out = Outcome::default();
        match input {
            Input::Event(e) => self.event(&e, &mut out),
            Input::Click { code, at } => {
                if self.by_code.contains_key(&code) {
                    self.clicks.push((code, at));
                } else {
                    out.refusal = Some(RefusalReason::UnknownCode);
                }
            }
            Input::Invite { participant, at } => self.invite(participant, at, &mut out),
            Input::Review { referral, approve, at } => self.review(referral, approve, at, &mut out),
            Input::Adjust {
                participant,
                points,
                note,
                key,
                at,
            } => {
                if self.participant(participant).is_none() {
                    out.error = Some("no such participant".into());
                } else {
                    let entry = LedgerEntry {
                        participant,
                        points,
                        reason: EntryReason::Manual { note },
                        source_event: None,
                        referral: None,
                        idempotency_key: format!("manual:{key}"),
                        at,
                        config_version: self.version(),
                        campaign: self.campaign,
                    };
                    self.write(entry, &mut out);
                }
            }
            Input::Transition { grant, to, at, note } => self.transition(grant, to, at, note, &mut out),
            Input::Configure(config) => match self.current().update(*config) {
                Ok(v) => self.versions.push(v),
                Err(errors) => out.error = Some(format!("{errors:?}")),
            },
            Input::Tick { now } => self.tick(now, &mut out),
            Input::End { at, seed } => self.end(at, seed, &mut out),
            Input::Erase { participant, at: _ } => self.erase(participant),
        }
        self.note_top_n(&mut out);
        debug_assert_eq!(self.check(), Ok(()));
        out
    }

    fn event(&mut self, e: &EngineEvent, out: &mut Outcome) {
        if !self.seen.insert(e.id.clone()) {
            out.duplicate = true;
            return;
        }
        let pid = match self.find(e.anonymous_id.as_deref(), e.user_id.as_deref()) {
            Some(p) => p,
            None if e.name == SIGNUP || e.name == "identify" => self.join(e),
            // A visitor who has not joined: stored by the edge, nothing to decide.
            None => return,
        };
        out.participant = Some(pid);
        self.update_identity(pid, e);

        if e.name == SIGNUP
            && let Some(touch) = &e.touch
        {
            self.signup(pid, touch, e.at, out);
        }
        // Quest progress of the actor's referral.
        if let Some(rid) = self.referral_of.get(&pid).copied() {
            self.quest_step(rid, e, out);
        }
        self.apply_rules(pid, e, out);
    }

    fn join(&mut self, e: &EngineEvent) -> ParticipantId {
        let id = ParticipantId(self.participants.len() as u64);
        let code = fresh_code(&mut self.rng, "", |c| self.by_code.contains_key(c));
        self.by_code.insert(code.clone(), id);
        self.participants.push(Participant {
            id,
            anonymous_id: e.anonymous_id.clone(),
            user_id: None,
            code,
            joined_at: e.at,
            traits: Traits::new(),
            email_hash: None,
            email_domain: None,
            ip_hash: None,
            device_id: None,
        });
        if let Some(a) = &e.anonymous_id {
            self.by_anonymous.insert(a.clone(), id);
        }
        self.leaderboard.enter(id, e.at, e.at);
        id
    }

    fn update_identity(&mut self, pid: ParticipantId, e: &EngineEvent) {
        if let Some(u) = &e.user_id {
            self.by_user.entry(u.clone()).or_insert(pid);
        }
        if let Some(a) = &e.anonymous_id {
            self.by_anonymous.entry(a.clone()).or_insert(pid);
        }
        let p = &mut self.participants[pid.0 as usize];
        if p.user_id.is_none() {
            p.user_id.clone_from(&e.user_id);
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
    }

    fn signup(&mut self, pid: ParticipantId, touch: &Touch, now: Millis, out: &mut Outcome) {
        let invitation = touch.invitation.as_ref().and_then(|t| self.invitations.get(t)).cloned();
        let referrer_id = match self.config().mode {
            Mode::Code => touch.code.as_ref().and_then(|c| self.by_code.get(c)).copied(),
            Mode::Invite => invitation.as_ref().map(|i| i.inviter),
        };
        let referrer = referrer_id.and_then(|r| self.participants.get(r.0 as usize)).cloned();
        let activity = referrer_id.map(|r| self.activity(r, now)).unwrap_or_default();
        let decision = decide_signup(&SignupFacts {
            config: self.config(),
            now,
            referee: &self.participants[pid.0 as usize],
            touch,
            already_referred: self.referral_of.contains_key(&pid),
            referrer: referrer.as_ref(),
            referrer_active: referrer_id.is_some_and(|r| !self.erased.contains(&r)),
            invitation: invitation.as_ref(),
            referrer_confirmed: referrer_id.map_or(0, |r| self.confirmed_referrals(r)),
            activity,
        });
        let (referrer, status, flags, reason) = match decision {
            SignupDecision::Refuse(reason) => {
                out.refusal = Some(reason);
                return;
            }
            SignupDecision::CreateRejected { referrer, reason } => {
                out.refusal = Some(reason);
                (
                    referrer,
                    ReferralStatus::Rejected,
                    Vec::new(),
                    Some(reason.as_str().to_owned()),
                )
            }
            SignupDecision::Create { referrer, flags } => (referrer, ReferralStatus::Pending, flags, None),
        };
        let id = ReferralId(self.referrals.len() as u64);
        let review = if flags.is_empty() {
            Review::Clear
        } else {
            Review::Pending
        };
        self.referrals.push(Referral {
            id,
            referrer,
            referee: pid,
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
        });
        self.referral_of.insert(pid, id);
        self.referrals_by.entry(referrer).or_default().push(id);
        if let Some(token) = &touch.invitation
            && let Some(inv) = self.invitations.get_mut(token)
        {
            inv.claimed_by = Some(pid);
        }
        out.referral = Some(id);
        // A quest without steps: the signup itself confirms.
        if status == ReferralStatus::Pending && self.config_at(self.version()).quest.steps.is_empty() {
            self.confirm(id, now, out);
        }
    }

    fn activity(&self, referrer: ParticipantId, now: Millis) -> ReferrerActivity {
        let settings = &self.config().fraud;
        let stale_after = Millis::from(settings.stale_pending_days) * DAY_MS;
        let mut a = ReferrerActivity::default();
        for r in self
            .referrals_by
            .get(&referrer)
            .into_iter()
            .flatten()
            .filter_map(|r| self.referral(*r))
        {
            if now - r.created_at < VELOCITY_WINDOW_MS {
                a.referrals_last_hour += 1;
            }
            if r.status == ReferralStatus::Pending && now - r.created_at > stale_after {
                a.stale_pending += 1;
            }
        }
        a
    }

    fn quest_step(&mut self, rid: ReferralId, e: &EngineEvent, out: &mut Outcome) {
        let r = self.referrals[rid.0 as usize].clone();
        let config = self.config_at(r.config_version);
        match quest::advance(config, &r, r.done_mask, &e.name, e.trusted, e.at) {
            StepOutcome::Done { step, confirmed } => {
                self.referrals[rid.0 as usize].done_mask |= 1 << step;
                if confirmed {
                    self.confirm(rid, e.at, out);
                }
            }
            StepOutcome::Expired => self.referrals[rid.0 as usize].status = ReferralStatus::Expired,
            StepOutcome::NotAStep | StepOutcome::NeedsTrusted | StepOutcome::AlreadyDone => {}
        }
    }

    /// The quest is complete. A referral under review waits for approval for
    /// everything that follows.
    fn confirm(&mut self, rid: ReferralId, at: Millis, out: &mut Outcome) {
        let r = &mut self.referrals[rid.0 as usize];
        r.status = ReferralStatus::Confirmed;
        r.confirmed_at = Some(at);
        if r.review == Review::Pending {
            // The referee's reward exists, but waits in pending_review.
            let (referee, version) = (r.referee, r.config_version);
            if let Some(reward) = self.config_at(version).referee_reward.clone() {
                self.grant(referee, &reward, GrantSource::Referee { referral: rid }, true, at, out);
            }
            return;
        }
        self.count_confirmation(rid, at, out);
    }

    /// A confirmed referral that counts: the referrer's count, the
    /// `referral_confirmed` rules, milestones and the referee's reward.
    fn count_confirmation(&mut self, rid: ReferralId, at: Millis, out: &mut Outcome) {
        let r = self.referrals[rid.0 as usize].clone();
        if let Some(max) = self.config().caps.per_referrer_max_confirmed
            && self.confirmed_referrals(r.referrer) >= max
        {
            let r = &mut self.referrals[rid.0 as usize];
            r.status = ReferralStatus::Rejected;
            r.reason = Some(RefusalReason::ReferrerCapReached.as_str().into());
            out.refusal = Some(RefusalReason::ReferrerCapReached);
            return;
        }
        let before = self.confirmed_referrals(r.referrer);
        let after = before + 1;
        self.confirmed.insert(r.referrer, after);
        out.notices.push(Notice::ReferralConfirmed {
            referral: rid,
            referrer: r.referrer,
            referee: r.referee,
        });
        if self.config().leaderboard.score_by == ScoreBy::ConfirmedReferrals {
            let joined = self.participants[r.referrer.0 as usize].joined_at;
            self.leaderboard.add(r.referrer, joined, 1, at);
        }

        // Rules on the emitted event, under the referral's pinned version.
        let synthetic = EngineEvent {
            id: format!("referral:{}:confirmed", rid.0),
            name: REFERRAL_CONFIRMED.into(),
            ..EngineEvent::new("", "", "", at)
        };
        let config = self.config_at(r.config_version).clone();
        self.award(
            &config,
            config.rules_for(REFERRAL_CONFIRMED),
            &synthetic,
            r.referee,
            Some(&r),
            out,
        );

        let config = self.config().clone();
        for (m, nth) in rewards::milestones_crossed(&config, before, after) {
            out.notices.push(Notice::MilestoneReached {
                participant: r.referrer,
                milestone: m.id.clone(),
                nth,
            });
            if let Some(reward) = &m.reward {
                self.grant(
                    r.referrer,
                    reward,
                    GrantSource::Milestone {
                        milestone: m.id.clone(),
                        nth,
                    },
                    false,
                    at,
                    out,
                );
            }
        }
        if let Some(reward) = self.config_at(r.config_version).referee_reward.clone() {
            self.grant(
                r.referee,
                &reward,
                GrantSource::Referee { referral: rid },
                false,
                at,
                out,
            );
        }
    }

    fn apply_rules(&mut self, pid: ParticipantId, e: &EngineEvent, out: &mut Outcome) {
        let referral = self.referral_of(pid).cloned();
        // Referral-side effects of a referral under review wait for its review.
        let under_review = referral.as_ref().filter(|r| r.review == Review::Pending);
        if let Some(r) = under_review {
            self.held.entry(r.id).or_default().push(e.clone());
        }
        let held = under_review.is_some();
        let current = self.config().clone();
        let own: Vec<&PointRule> = current
            .rules_for(&e.name)
            .filter(|r| r.to == Recipient::Actor && (e.trusted || !r.trusted))
            .collect();
        self.award(&current, own.into_iter(), e, pid, None, out);
        if let (Some(r), false) = (&referral, held) {
            let pinned = self.config_at(r.config_version).clone();
            let side: Vec<&PointRule> = pinned
                .rules_for(&e.name)
                .filter(|rule| rule.to != Recipient::Actor && (e.trusted || !rule.trusted))
                .collect();
            self.award(&pinned, side.into_iter(), e, pid, Some(r), out);
        }
    }

    /// Evaluates `rules` for an event that happened to `actor` and writes the
    /// entries of those that fire.
    fn award<'a>(
        &mut self,
        config: &'a CampaignConfig,
        rules: impl Iterator<Item = &'a PointRule>,
        e: &EngineEvent,
        actor: ParticipantId,
        referral: Option<&Referral>,
        out: &mut Outcome,
    ) {
        // A referral that does not count (rejected, expired) pays no one.
        let live = referral.filter(|r| matches!(r.status, ReferralStatus::Pending | ReferralStatus::Confirmed));
        let recipient = |to: Recipient| match to {
            Recipient::Actor => Some(actor),
            Recipient::Referee => live.map(|r| r.referee),
            Recipient::Referrer => live.map(|r| r.referrer),
        };
        let facts: HashMap<Recipient, (u32, i64, Traits)> = [Recipient::Actor, Recipient::Referee, Recipient::Referrer]
            .into_iter()
            .filter_map(|to| {
                let p = recipient(to)?;
                let person = self.participant(p)?;
                Some((to, (self.confirmed_referrals(p), self.score(p), person.traits.clone())))
            })
            .collect();
        let awards = rules::evaluate(rules, |to| facts.get(&to).map(|(c, s, t)| (*c, *s, t)));
        for a in awards {
            let Some(p) = recipient(a.to) else { continue };
            let mut points = a.points;
            if a.to == Recipient::Referrer
                && let Some(cap) = config.caps.per_referrer_max_points
            {
                let earned = self.referral_points.get(&p).copied().unwrap_or(0);
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
                reason: EntryReason::Rule {
                    rule: a.rule.id.clone(),
                },
                source_event: Some(e.id.clone()),
                referral: live.map(|r| r.id),
                idempotency_key: rule_key(&e.id, &a.rule.id, p),
                at: e.at,
                config_version: self.version(),
                campaign: self.campaign,
            };
            if self.write(entry, out) && a.to == Recipient::Referrer {
                *self.referral_points.entry(p).or_default() += points;
            }
        }
    }

    /// Appends to the ledger and the leaderboard; false when the key was there.
    fn write(&mut self, entry: LedgerEntry, out: &mut Outcome) -> bool {
        let (p, points, at) = (entry.participant, entry.points, entry.at);
        if !self.ledger.append(entry.clone()) {
            return false;
        }
        if self.config().leaderboard.score_by == ScoreBy::Points && !self.erased.contains(&p) {
            let joined = self.participants[p.0 as usize].joined_at;
            self.leaderboard.add(p, joined, points, at);
        }
        out.entries.push(entry);
        true
    }

    fn grant(
        &mut self,
        p: ParticipantId,
        reward_id: &str,
        source: GrantSource,
        needs_review: bool,
        at: Millis,
        out: &mut Outcome,
    ) {
        let config = self.config().clone();
        let Some(reward) = config.reward(reward_id) else { return };
        let key = source.key(p, reward_id);
        if self.grant_keys.contains_key(&key) {
            return;
        }
        let budget_currency = config.caps.budget.as_ref().map(|b| b.currency.clone());
        let usage = CapUsage {
            winners: self.winners.len() as u32,
            is_winner: self.winners.contains(&p),
            spent_minor: self
                .grants
                .iter()
                .filter(|g| g.status.is_live())
                .filter_map(|g| g.value.as_ref())
                .filter(|v| Some(&v.currency) == budget_currency.as_ref())
                .map(|v| v.amount_minor)
                .sum(),
            grants_of_reward: self
                .grants
                .iter()
                .filter(|g| g.reward == reward.id && g.status.is_live())
                .count() as u32,
        };
        if let Err(reason) = rewards::check_caps(&config, reward, &usage) {
            out.capped.push(reason);
            return;
        }
        let token = match &reward.kind {
            RewardKind::Coupon { prefix } => {
                let token = fresh_code(&mut self.rng, prefix, |t| self.tokens.contains(t));
                self.tokens.insert(token.clone());
                Some(token)
            }
            _ => None,
        };
        let id = GrantId(self.grants.len() as u64);
        let g = Grant::new(id, p, reward, source, needs_review, token, at);
        self.grant_keys.insert(g.idempotency_key.clone(), id);
        self.winners.insert(p);
        let approved = g.status == GrantStatus::Approved;
        out.notices.push(Notice::RewardEarned {
            grant: id,
            participant: p,
            reward: reward.id.clone(),
        });
        out.grants.push(id);
        self.grants.push(g);
        if approved {
            self.pay_points(id, 1, at, out);
        }
    }

    /// A points reward is in the ledger while its grant is approved or later:
    /// `sign` 1 pays it on approval, -1 takes it back on revocation.
    fn pay_points(&mut self, id: GrantId, sign: i64, at: Millis, out: &mut Outcome) {
        let g = &self.grants[id.0 as usize];
        let Some(RewardKind::Points { points }) = self.config().reward(&g.reward).map(|r| r.kind.clone()) else {
            return;
        };
        let key = if sign > 0 {
            reward_key(&g.idempotency_key)
        } else {
            format!("revoke:{}", reward_key(&g.idempotency_key))
        };
        let entry = LedgerEntry {
            participant: g.participant,
            points: sign * points,
            reason: EntryReason::Reward {
                reward: g.reward.clone(),
            },
            source_event: None,
            referral: None,
            idempotency_key: key,
            at,
            config_version: self.version(),
            campaign: self.campaign,
        };
        self.write(entry, out);
    }

    fn invite(&mut self, p: ParticipantId, at: Millis, out: &mut Outcome) {
        if self.config().mode != Mode::Invite {
            out.error = Some("this campaign is in code mode: share the referral code".into());
            return;
        }
        if self.participant(p).is_none() {
            out.error = Some("no such participant".into());
            return;
        }
        let token = fresh_code(&mut self.rng, "", |t| self.invitations.contains_key(t));
        let expires_at = at + self.config().attribution_window_ms();
        self.invitations.insert(
            token.clone(),
            Invitation {
                token: token.clone(),
                inviter: p,
                created_at: at,
                expires_at,
                claimed_by: None,
            },
        );
        out.invitation = Some(token);
    }

    fn review(&mut self, rid: ReferralId, approve: bool, at: Millis, out: &mut Outcome) {
        let Some(r) = self.referrals.get(rid.0 as usize).cloned() else {
            out.error = Some("no such referral".into());
            return;
        };
        if r.review != Review::Pending {
            out.error = Some("this referral is not waiting for review".into());
            return;
        }
        let held = self.held.remove(&rid).unwrap_or_default();
        let waiting: Vec<GrantId> = self
            .grants
            .iter()
            .filter(|g| g.source == GrantSource::Referee { referral: rid } && g.status == GrantStatus::PendingReview)
            .filter(|g| self.config().reward(&g.reward).is_none_or(|r| !r.requires_review) || !approve)
            .map(|g| g.id)
            .collect();
        let note = Some(
            if approve {
                "referral approved"
            } else {
                "referral rejected"
            }
            .to_owned(),
        );
        for g in waiting {
            let to = if approve {
                GrantStatus::Approved
            } else {
                GrantStatus::Rejected
            };
            self.transition(g, to, at, note.clone(), out);
        }
        if !approve {
            let r = &mut self.referrals[rid.0 as usize];
            r.review = Review::Rejected;
            r.status = ReferralStatus::Rejected;
            r.reason = Some("rejected on review".into());
            return;
        }
        self.referrals[rid.0 as usize].review = Review::Approved;
        let r = self.referrals[rid.0 as usize].clone();
        let pinned = self.config_at(r.config_version).clone();
        for e in &held {
            let side: Vec<&PointRule> = pinned
                .rules_for(&e.name)
                .filter(|rule| rule.to != Recipient::Actor && (e.trusted || !rule.trusted))
                .collect();
            self.award(&pinned, side.into_iter(), e, r.referee, Some(&r), out);
        }
        if r.status == ReferralStatus::Confirmed {
            self.count_confirmation(rid, at, out);
        }
    }

    fn transition(&mut self, id: GrantId, to: GrantStatus, at: Millis, note: Option<String>, out: &mut Outcome) {
        let Some(g) = self.grants.get_mut(id.0 as usize) else {
            out.error = Some("no such grant".into());
            return;
        };
        let from = g.status;
        match g.transition(to, at, note) {
            Ok(()) => {
                out.notices.push(Notice::RewardStatusChanged { grant: id, from, to });
                match to {
                    GrantStatus::Approved => self.pay_points(id, 1, at, out),
                    GrantStatus::Revoked => self.pay_points(id, -1, at, out),
                    _ => {}
                }
            }
            Err(e) => out.error = Some(format!("a grant cannot go from {:?} to {:?}", e.from, e.to)),
        }
    }

    fn tick(&mut self, now: Millis, out: &mut Outcome) {
        for i in 0..self.referrals.len() {
            let r = &self.referrals[i];
            if quest::is_overdue(self.config_at(r.config_version), r, now) {
                self.referrals[i].status = ReferralStatus::Expired;
            }
        }
        for g in &mut self.grants {
            let from = g.status;
            if g.expire_if_due(now) {
                out.notices.push(Notice::RewardStatusChanged {
                    grant: g.id,
                    from,
                    to: GrantStatus::Expired,
                });
            }
        }
    }

    fn end(&mut self, at: Millis, seed: u64, out: &mut Outcome) {
        if self.ended {
            out.error = Some("the campaign has already ended".into());
            return;
        }
        self.ended = true;
        let config = self.config().clone();
        // One distribution at a time: a raffle sees the tickets handed out by
        // the distributions before it.
        for (index, d) in config.end_distributions.iter().enumerate() {
            let standings = self.standings();
            for p in rewards::winners(&d.rule, &standings, seed ^ index as u64) {
                self.grant(p, &d.reward, GrantSource::Distribution { index }, false, at, out);
            }
        }
    }

    /// Everyone on the all-time board, in rank order, as distributions see them.
    fn standings(&self) -> Vec<Standing> {
        let tickets: HashMap<ParticipantId, u32> =
            self.grants
                .iter()
                .filter(|g| g.status.is_live())
                .fold(HashMap::new(), |mut m, g| {
                    if let Some(RewardKind::RaffleTicket { tickets }) = self.config().reward(&g.reward).map(|r| &r.kind)
                    {
                        *m.entry(g.participant).or_default() += tickets;
                    }
                    m
                });
        let Some(board) = self.leaderboard.board(super::config::Period::All) else {
            return Vec::new();
        };
        board
            .top(board.len())
            .into_iter()
            .map(|row| Standing {
                participant: row.participant,
                rank: row.rank,
                score: self.score(row.participant),
                confirmed_referrals: self.confirmed_referrals(row.participant),
                raffle_tickets: tickets.get(&row.participant).copied().unwrap_or(0),
            })
            .collect()
    }

    fn erase(&mut self, p: ParticipantId) {
        if let Some(person) = self.participants.get_mut(p.0 as usize) {
            person.email_hash = None;
            person.email_domain = None;
            person.ip_hash = None;
            person.device_id = None;
            person.traits.clear();
            self.erased.insert(p);
            self.leaderboard.remove(p);
        }
    }

    fn note_top_n(&mut self, out: &mut Outcome) {
        let n = self.config().leaderboard.top_n as usize;
        let top: Vec<ParticipantId> = self
            .leaderboard
            .board(super::config::Period::All)
            .map(|b| {
                b.top(n)
                    .into_iter()
                    .filter(|r| r.score > 0)
                    .map(|r| r.participant)
                    .collect()
            })
            .unwrap_or_default();
        if top != self.top_before {
            out.notices.push(Notice::TopNChanged { top: top.clone() });
            self.top_before = top;
        }
    }

    // ---- replay --------------------------------------------------------

    /// The correcting entries that bring the ledger to what `config` would have
    /// written for the same inputs, appended and returned. The inputs are
    /// replayed from the log into a fresh program seeded the same way (so ids
    /// and codes match); manual adjustments are kept as they are.
    pub fn replay(
        &mut self,
        config: CampaignConfig,
        replay_id: &str,
        at: Millis,
    ) -> Result<Vec<LedgerEntry>, Vec<super::config::ConfigError>> {
        let mut fresh = Program::new(config.clone(), self.seed)?.with_campaign(self.campaign);
        for input in self.log.iter().filter(|i| !matches!(i, Input::Configure(_))) {
            fresh.apply(input.clone());
        }
        let version = match self.versions.iter().find(|v| v.config == config) {
            Some(v) => v.version,
            None => self.version(),
        };
        let fixes = corrections(self.ledger.entries(), fresh.ledger.entries(), replay_id, at, version);
        let mut out = Outcome::default();
        for f in &fixes {
            self.write(f.clone(), &mut out);
        }
        Ok(fixes)
    }

    // ---- invariants ----------------------------------------------------

    /// Every invariant of the campaign, checked from scratch.
    pub fn check(&self) -> Result<(), String> {
        self.ledger.check()?;
        let config = self.config();
        if config.leaderboard.score_by == ScoreBy::Points
            && let Some(board) = self.leaderboard.board(super::config::Period::All)
        {
            for p in self.participants() {
                let on_board = board.score(p.id).unwrap_or(0);
                if on_board != self.score(p.id) {
                    return Err(format!(
                        "{:?}: leaderboard {on_board}, ledger {}",
                        p.id,
                        self.score(p.id)
                    ));
                }
            }
        }
        let mut referees = HashSet::new();
        for r in &self.referrals {
            if !referees.insert(r.referee) {
                return Err(format!("{:?} has two referrers", r.referee));
            }
            if r.referee == r.referrer {
                return Err(format!("{:?} refers themselves", r.referee));
            }
        }
        let mut counted: HashMap<ParticipantId, u32> = HashMap::new();
        for r in self.referrals.iter().filter(|r| r.counts()) {
            *counted.entry(r.referrer).or_default() += 1;
        }
        for (p, n) in &self.confirmed {
            if counted.get(p).copied().unwrap_or(0) != *n {
                return Err(format!(
                    "{p:?}: confirmed count {n}, counting referrals {:?}",
                    counted.get(p)
                ));
            }
            if config.caps.per_referrer_max_confirmed.is_some_and(|max| *n > max) {
                return Err(format!("{p:?} passed the per-referrer cap"));
            }
        }
        let mut keys = HashSet::new();
        for g in &self.grants {
            if !keys.insert(&g.idempotency_key) {
                return Err(format!("grant {} twice", g.idempotency_key));
            }
            if let GrantSource::Milestone { milestone, nth } = &g.source {
                let reached = config
                    .milestones
                    .iter()
                    .find(|m| &m.id == milestone)
                    .map_or(u32::MAX, |m| {
                        rewards::times_reached(m, self.confirmed_referrals(g.participant))
                    });
                if *nth > reached {
                    return Err(format!(
                        "milestone {milestone} granted a {nth}th time, reached {reached}"
                    ));
                }
            }
        }
        let live: Vec<&Grant> = self.grants.iter().filter(|g| g.status.is_live()).collect();
        if let Some(max) = config.caps.max_winners {
            let winners: HashSet<_> = live.iter().map(|g| g.participant).collect();
            if winners.len() as u32 > max {
                return Err(format!("{} winners, cap {max}", winners.len()));
            }
        }
        if let Some(b) = &config.caps.budget {
            let spent: i64 = live
                .iter()
                .filter_map(|g| g.value.as_ref())
                .filter(|v| v.currency == b.currency)
                .map(|v| v.amount_minor)
                .sum();
            if spent > b.amount_minor {
                return Err(format!("spent {spent}, budget {}", b.amount_minor));
            }
        }
        for r in &config.rewards {
            if let Some(max) = r.max_grants {
                let n = live.iter().filter(|g| g.reward == r.id).count() as u32;
                if n > max {
                    return Err(format!("reward {} granted {n} times, cap {max}", r.id));
                }
            }
        }
        Ok(())
    }
}

/// A code (with `prefix`, if any) from the program's seeded randomness that
/// `taken` does not already know. 31^8 codes: a clash is rare and just draws again.
fn fresh_code(rng: &mut SplitMix64, prefix: &str, taken: impl Fn(&str) -> bool) -> String {
    loop {
        let bytes: Vec<u8> = (0..4).flat_map(|_| rng.next_u64().to_le_bytes()).collect();
        if let Some(code) = rewards::token_from_random(prefix, &bytes)
            && !taken(&code)
        {
            return code;
        }
    }
}
