//! The engine: the one composition of the decisions in `referral`, `quest`,
//! `rules`, `rewards`, `fraud` and `leaderboard` over one campaign, generic
//! over where its state lives (`Store`). `Program` runs it over memory; a
//! campaign's Durable Object runs it over its SQLite database (`SqlStore`).
//!
//! Each input is read, decided and written here, step by step; the store only
//! keeps what it is told. Configurations come beside the state (every version
//! the campaign has had, newest last) and are never cloned per input.
//! Codes and tokens are keyed hashes of the campaign's secret (`Codes`), so a
//! replay draws the same ones; nothing here reads a clock or a random source.

use super::config::{
    CampaignConfig, Mode, Period, PointRule, REFERRAL_CONFIRMED, Recipient, RewardKind, ScoreBy, Versioned,
};
use super::fraud::VELOCITY_WINDOW_MS;
use super::ledger::{repeat_key, reward_key, rule_key};
use super::model::*;
use super::quest::{self, StepOutcome};
use super::referral::{Invitation, RefusalReason, SignupDecision, SignupFacts, Touch, decide_signup};
use super::rewards::{self, Codes, Grant, GrantSource, GrantStatus, Standing};
use super::rules;
use super::store::{HeldEvent, Store};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The event that makes an unknown visitor a participant and carries the
/// referral attribution.
pub const SIGNUP: &str = "signup";
/// `identify` makes a visitor a participant too (without attribution).
pub const IDENTIFY: &str = "identify";

/// Invitations one participant may have waiting (unclaimed, unexpired): a
/// page cannot mint them without end.
pub const MAX_OPEN_INVITATIONS: u32 = 20;

/// How long after joining (server time) a participant's signup may still
/// bring the link they came by: `identify` then `signup` from one page.
pub const JOIN_GRACE_MS: Millis = 10 * 60_000;

/// An event as the engine sees it (the edge builds it from a received event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineEvent {
    pub id: String,
    pub name: String,
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    pub at: Millis,
    /// Came from `POST /v1/server/events` with a secret key.
    pub trusted: bool,
    /// Its `user_id` is vouched for: trusted, or signed by the site's server
    /// (`user_hash`). Only a vouched user id can reach a participant that
    /// another device joined as.
    #[serde(default)]
    pub verified: bool,
    pub touch: Option<Touch>,
    /// Where a signup came from (campaign tags, a click id's kind, the
    /// referring host), for the operator's sources; decides nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub traits: Traits,
    pub email_hash: Option<String>,
    pub email_domain: Option<String>,
    pub ip_hash: Option<String>,
    pub device_id: Option<String>,
    /// A trusted event's purchase amount (`properties.amount_minor`, in
    /// minor units), which sizes the credits it earns; never a browser's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_minor: Option<i64>,
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
            verified: false,
            touch: None,
            source: None,
            traits: Traits::new(),
            email_hash: None,
            email_domain: None,
            ip_hash: None,
            device_id: None,
            amount_minor: None,
        }
    }

    /// The event's identity for dedupe and ledger keys: a trusted server
    /// event never shares one with a browser's, so a browser that posts a
    /// server event's id first cannot make the real conversion a duplicate.
    pub fn key(&self) -> std::borrow::Cow<'_, str> {
        if self.trusted {
            std::borrow::Cow::Owned(format!("server:{}", self.id))
        } else {
            std::borrow::Cow::Borrowed(&self.id)
        }
    }

    /// Whether the event can make a visitor a participant.
    pub fn joins(&self) -> bool {
        self.name == SIGNUP || self.name == IDENTIFY
    }
}

/// Everything that can happen to a campaign, in the order it happened. A
/// campaign keeps its inputs, so it can be replayed under another version.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
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
    /// An operator gives a reward by hand; `key` makes it once (a resent
    /// request grants nothing more). Caps apply as to any grant.
    Grant {
        participant: ParticipantId,
        reward: String,
        key: String,
        at: Millis,
    },
    /// A new configuration version (the owner of the versions applies it).
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
    /// An operator gives a participant a new referral code: `code` (a vanity
    /// code) or, without one, a fresh random one. The old code is retired.
    SetCode {
        participant: ParticipantId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        at: Millis,
    },
}

/// The shortest and longest vanity code (random ones are `rewards::CODE_LEN`).
pub const VANITY_CODE_LEN: std::ops::RangeInclusive<usize> = 4..=20;

/// Whether `code` can be a vanity code: `VANITY_CODE_LEN` characters of the
/// codes' alphabet (no look-alikes: no 0 O I 1 L), upper case.
pub fn valid_vanity_code(code: &str) -> bool {
    VANITY_CODE_LEN.contains(&code.len()) && code.bytes().all(|b| rewards::CODE_ALPHABET.contains(&b))
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
    /// A cap (a budget, the winners, a reward's grants) kept a reward back.
    #[serde(rename = "reward.withheld")]
    RewardWithheld {
        participant: ParticipantId,
        reward: String,
        reason: String,
    },
}

/// What one input did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// The event id had taken effect before: nothing happened.
    pub duplicate: bool,
    pub participant: Option<ParticipantId>,
    /// The participant joined with this input.
    pub joined: bool,
    pub referral: Option<ReferralId>,
    pub refusal: Option<RefusalReason>,
    pub entries: Vec<LedgerEntry>,
    pub grants: Vec<GrantId>,
    /// Grants a cap refused, with the reason.
    pub capped: Vec<String>,
    pub notices: Vec<Notice>,
    pub invitation: Option<Invitation>,
    /// The participant's new referral code (`Input::SetCode`).
    pub code: Option<String>,
    pub error: Option<String>,
}

/// One campaign's engine for one input: its state, its configuration
/// versions, its randomness.
pub struct Machine<'a, S: Store> {
    pub store: &'a mut S,
    /// Every version the campaign has had, oldest first; the last is current.
    pub versions: &'a [Versioned],
    pub campaign: CampaignId,
    pub codes: &'a Codes,
}

impl<'a, S: Store> Machine<'a, S> {
    pub fn new(store: &'a mut S, versions: &'a [Versioned], campaign: CampaignId, codes: &'a Codes) -> Self {
        assert!(
            !versions.is_empty(),
            "a campaign has at least one configuration version"
        );
        Machine {
            store,
            versions,
            campaign,
            codes,
        }
    }

    fn current(&self) -> &'a Versioned {
        let versions: &'a [Versioned] = self.versions;
        &versions[versions.len() - 1]
    }

    fn config(&self) -> &'a CampaignConfig {
        &self.current().config
    }

    fn version(&self) -> u32 {
        self.current().version
    }

    /// The version a referral is pinned to (the current one if it is unknown).
    fn config_at(&self, version: u32) -> &'a CampaignConfig {
        let versions: &'a [Versioned] = self.versions;
        versions
            .iter()
            .find(|v| v.version == version)
            .map_or(&self.current().config, |v| &v.config)
    }

    /// Applies one input and returns what it did, with a
    /// `leaderboard.top_n_changed` notice when the top N moved. `Configure`
    /// belongs to the owner of the versions and does nothing here.
    pub fn apply(&mut self, input: &Input) -> Outcome {
        let mut out = self.decide(input);
        self.note_top_n(&mut out);
        out
    }

    /// Replay: runs `inputs` (the campaign's log) again on a fresh state
    /// under `target` alone, and returns the entries that correct this
    /// campaign's `ledger` to what `target` would have written, appending
    /// them (and moving the boards) when `apply`. Nothing is ever edited:
    /// a correction is a new entry keyed by `replay_id` and what it corrects,
    /// so applying the same replay twice adds nothing the second time.
    pub fn replay(
        &mut self,
        ledger: &[LedgerEntry],
        inputs: &[Input],
        target: &Versioned,
        replay_id: &str,
        at: Millis,
        apply: bool,
    ) -> Vec<LedgerEntry> {
        let mut fresh = super::store::MemStore::new(&target.config.leaderboard.periods);
        let alone = std::slice::from_ref(target);
        let mut again = Machine::new(&mut fresh, alone, self.campaign, self.codes);
        for input in inputs.iter().filter(|i| !matches!(i, Input::Configure(_))) {
            again.apply(input);
        }
        let mut fixes = super::ledger::corrections(ledger, fresh.ledger().entries(), replay_id, at, target.version);
        // They correct this campaign, whatever a store remembers of the
        // entries' campaign (a campaign's own database keeps none).
        for f in &mut fixes {
            f.campaign = self.campaign;
        }
        if apply {
            let by_points = self.config().leaderboard.score_by == ScoreBy::Points;
            for f in &fixes {
                if self.store.append_entry(f)
                    && by_points
                    && let Some(p) = self.live_participant(f.participant)
                {
                    self.store.board_add(p.id, p.joined_at, f.points, f.at);
                }
            }
        }
        fixes
    }

    /// Applies one input without looking at the top N: a caller applying
    /// many inputs at once calls `note_top_n` once after the last.
    pub fn decide(&mut self, input: &Input) -> Outcome {
        let mut out = Outcome::default();
        match input {
            Input::Event(e) => self.event(e, &mut out),
            Input::Click { code, at } => match self.code_owner(code, *at) {
                Ok(p) => self.store.add_click(code, p, *at),
                Err(reason) => out.refusal = Some(reason),
            },
            Input::SetCode { participant, code, at } => self.set_code(*participant, code.as_deref(), *at, &mut out),
            Input::Invite { participant, at } => self.invite(*participant, *at, &mut out),
            Input::Review { referral, approve, at } => self.review(*referral, *approve, *at, &mut out),
            Input::Adjust {
                participant,
                points,
                note,
                key,
                at,
            } => self.adjust(*participant, *points, note, key, *at, &mut out),
            Input::Transition { grant, to, at, note } => self.transition(*grant, *to, *at, note.clone(), &mut out),
            Input::Grant {
                participant,
                reward,
                key,
                at,
            } => self.grant_by_hand(*participant, reward, key, *at, &mut out),
            Input::Configure(_) => {}
            Input::Tick { now } => self.tick(*now, &mut out),
            Input::End { at, seed } => self.end(*at, *seed, &mut out),
            Input::Erase { participant, .. } => {
                if self.live_participant(*participant).is_none() {
                    out.error = Some("no such participant".into());
                } else {
                    self.store.erase(*participant);
                }
            }
        }
        out
    }

    /// Whose referral code `code` is and whether it can bring a referral
    /// at `now`: the reason when it cannot (unknown, replaced, past
    /// `code_valid_days`, its owner erased).
    pub fn code_owner(&self, code: &str, now: Millis) -> Result<ParticipantId, RefusalReason> {
        self.code_standing(code, self.store.by_code(code), now)
    }

    /// `code_owner`, for a caller that looked up whom the code names (`owner`).
    fn code_standing(
        &self,
        code: &str,
        owner: Option<ParticipantId>,
        now: Millis,
    ) -> Result<ParticipantId, RefusalReason> {
        match owner {
            None if self.store.code_retired(code) => Err(RefusalReason::RetiredCode),
            None => Err(RefusalReason::UnknownCode),
            Some(p) if self.store.is_erased(p) => Err(RefusalReason::UnknownCode),
            Some(p) if self.code_expired(p, now) => Err(RefusalReason::ExpiredCode),
            Some(p) => Ok(p),
        }
    }

    /// Whether `p`'s code is past the configuration's `code_valid_days`.
    fn code_expired(&self, p: ParticipantId, now: Millis) -> bool {
        self.config().code_valid_days.is_some_and(|days| {
            self.store
                .code_given_at(p)
                .is_some_and(|given| now >= given + Millis::from(days) * DAY_MS)
        })
    }

    /// An operator's new code for `p`: `vanity`, or a fresh random one.
    fn set_code(&mut self, p: ParticipantId, vanity: Option<&str>, at: Millis, out: &mut Outcome) {
        let Some(person) = self.live_participant(p) else {
            out.error = Some("no such participant".into());
            return;
        };
        let code = match vanity {
            Some(v) if !valid_vanity_code(v) => {
                out.error = Some(format!(
                    "a code is {} to {} characters of {}",
                    VANITY_CODE_LEN.start(),
                    VANITY_CODE_LEN.end(),
                    String::from_utf8_lossy(rewards::CODE_ALPHABET)
                ));
                return;
            }
            // Already theirs: nothing to do (a resent request).
            Some(v) if v == person.code => {
                out.duplicate = true;
                out.code = Some(person.code);
                return;
            }
            Some(v) if self.store.by_code(v).is_some() || self.store.code_retired(v) => {
                out.error = Some(format!("the code {v} is taken"));
                return;
            }
            Some(v) => v.to_owned(),
            None => self.fresh_code("", &format!("participant:{}:given:{at}", p.0), |s, c| {
                s.by_code(c).is_some() || s.code_retired(c)
            }),
        };
        self.store.set_code(p, &code, at);
        out.participant = Some(p);
        out.code = Some(code);
    }

    fn live_participant(&self, id: ParticipantId) -> Option<Participant> {
        self.store.participant(id).filter(|_| !self.store.is_erased(id))
    }

    fn event(&mut self, e: &EngineEvent, out: &mut Outcome) {
        if !self.store.mark_seen(&e.key()) {
            out.duplicate = true;
            return;
        }
        // A browser can say any user id: without the site's signature
        // (`verified`) it cannot take over (link to, rename, refer) someone
        // who joined on another device; the event is decided as the device's
        // own. A real user's new device is linked by the site's server (a
        // trusted event) or a `user_hash`.
        let (by_anonymous, by_user) = self.store.find_each(e.anonymous_id.as_deref(), e.user_id.as_deref());
        let claims_someone_else = !(e.trusted || e.verified) && by_user.is_some() && by_anonymous != by_user;
        let unvouched;
        let (e, found) = match claims_someone_else {
            false => (e, by_user.or(by_anonymous)),
            true => {
                unvouched = EngineEvent {
                    user_id: None,
                    ..e.clone()
                };
                (&unvouched, by_anonymous)
            }
        };
        let pid = match found {
            Some(p) => p,
            None if e.joins() => {
                out.joined = true;
                self.join(e)
            }
            // A visitor who has not joined: nothing to decide.
            None => return,
        };
        out.participant = Some(pid);
        self.update_identity(pid, e);
        if e.name == SIGNUP
            && let Some(touch) = &e.touch
        {
            // A referral is made when a person joins through a link, never
            // for someone who joined before (a signup naming an existing
            // participant would otherwise hand their conversions to the
            // sender of the code). A page that identifies first and signs
            // up a moment later still carries its link.
            let joined_at = self.store.participant(pid).map_or(e.at, |p| p.joined_at);
            if out.joined || e.at - joined_at <= JOIN_GRACE_MS {
                self.signup(pid, touch, e.at, out);
            } else {
                out.refusal = Some(RefusalReason::AlreadyJoined);
            }
        }
        // Quest progress of the actor's referral.
        if let Some(r) = self.store.referral_of(pid) {
            self.quest_step(r, e, out);
        }
        self.apply_rules(pid, e, out);
    }

    fn join(&mut self, e: &EngineEvent) -> ParticipantId {
        let id = self.store.next_participant_id();
        let code = self.fresh_code("", &format!("participant:{}", id.0), |s, c| {
            s.by_code(c).is_some() || s.code_retired(c)
        });
        let p = Participant {
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
        };
        self.store.insert_participant(&p);
        self.store.board_add(id, e.at, 0, e.at);
        id
    }

    fn update_identity(&mut self, pid: ParticipantId, e: &EngineEvent) {
        self.store
            .link_identity(pid, e.anonymous_id.as_deref(), e.user_id.as_deref());
        let Some(mut p) = self.store.participant(pid) else {
            return;
        };
        let before = p.clone();
        if p.user_id.is_none() {
            p.user_id.clone_from(&e.user_id);
        }
        if p.anonymous_id.is_none() {
            p.anonymous_id.clone_from(&e.anonymous_id);
        }
        // Known traits change; new ones only while the record has room
        // (each event's are bounded, their sum must be too). What a trusted
        // event says is also kept apart, for trusted rules' conditions.
        let room = |t: &Traits, k: &str| t.contains_key(k) || t.len() < crate::limits::MAX_TRAITS;
        let mut server = server_traits(&p.traits);
        for (k, v) in &e.traits {
            if room(&p.traits, k) {
                p.traits.insert(k.clone(), v.clone());
            }
            if e.trusted && room(&server, k) {
                server.insert(k.clone(), v.clone());
            }
        }
        if e.trusted && !e.traits.is_empty() {
            p.traits.insert(
                SERVER_TRAITS.to_owned(),
                serde_json::to_value(&server).unwrap_or_default(),
            );
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
        if p != before {
            self.store.update_participant(&p);
        }
    }

    fn signup(&mut self, pid: ParticipantId, touch: &Touch, now: Millis, out: &mut Outcome) {
        let config = self.config();
        let invitation = touch.invitation.as_deref().and_then(|t| self.store.invitation(t));
        let referrer_id = match config.mode {
            Mode::Code => touch.code.as_deref().and_then(|c| self.store.by_code(c)),
            Mode::Invite => invitation.as_ref().map(|i| i.inviter),
        };
        // A code that was someone's but brings no referral now says why.
        let code_refusal = match (config.mode, touch.code.as_deref()) {
            (Mode::Code, Some(c)) => match self.code_standing(c, referrer_id, now) {
                Err(reason @ (RefusalReason::RetiredCode | RefusalReason::ExpiredCode)) => Some(reason),
                _ => None,
            },
            _ => None,
        };
        let referrer = referrer_id.and_then(|r| self.store.participant(r));
        let activity = match referrer_id {
            Some(r) => {
                let stale_after = Millis::from(config.fraud.stale_pending_days) * DAY_MS;
                self.store.activity(r, now - VELOCITY_WINDOW_MS, now - stale_after)
            }
            None => Default::default(),
        };
        let Some(referee) = self.store.participant(pid) else {
            return;
        };
        let decision = decide_signup(&SignupFacts {
            config,
            now,
            referee: &referee,
            touch,
            already_referred: self.store.referral_of(pid).is_some(),
            referrer: referrer.as_ref(),
            referrer_active: referrer_id.is_some_and(|r| !self.store.is_erased(r)),
            invitation: invitation.as_ref(),
            referrer_confirmed: referrer_id.map_or(0, |r| self.store.confirmed(r)),
            activity,
            code_refusal,
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
        let review = if flags.is_empty() {
            Review::Clear
        } else {
            Review::Pending
        };
        let r = Referral {
            id: self.store.next_referral_id(),
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
        };
        self.store.insert_referral(&r, now + config.quest_window_ms());
        if let Some(token) = &touch.invitation
            && invitation.is_some()
        {
            self.store.claim_invitation(token, pid);
        }
        out.referral = Some(r.id);
        // A quest without steps: the signup itself confirms.
        if status == ReferralStatus::Pending && config.quest.steps.is_empty() {
            self.confirm(r, now, None, out);
        }
    }

    fn quest_step(&mut self, mut r: Referral, e: &EngineEvent, out: &mut Outcome) {
        let config = self.config_at(r.config_version);
        match quest::advance(config, &r, r.done_mask, &e.name, e.trusted, e.at) {
            StepOutcome::Done { step, confirmed } => {
                r.done_mask |= 1 << step;
                self.store.update_referral(&r);
                if confirmed {
                    self.confirm(r, e.at, e.amount_minor.filter(|_| e.trusted), out);
                }
            }
            StepOutcome::Expired => {
                r.status = ReferralStatus::Expired;
                self.store.update_referral(&r);
            }
            StepOutcome::NotAStep | StepOutcome::NeedsTrusted | StepOutcome::AlreadyDone => {}
        }
    }

    /// The quest is complete. A referral under review waits for approval for
    /// everything that follows. `amount`: the trusted purchase that completed
    /// it, which sizes the credits it earns.
    fn confirm(&mut self, mut r: Referral, at: Millis, amount: Option<i64>, out: &mut Outcome) {
        r.status = ReferralStatus::Confirmed;
        r.confirmed_at = Some(at);
        self.store.update_referral(&r);
        if r.review == Review::Pending {
            // The referee's reward exists, but waits in pending_review.
            if let Some(reward) = &self.config_at(r.config_version).referee_reward {
                self.grant(
                    r.referee,
                    reward,
                    GrantSource::Referee { referral: r.id },
                    true,
                    (at, amount),
                    out,
                );
            }
            return;
        }
        self.count_confirmation(r, at, amount, out);
    }

    /// A confirmed referral that counts: the referrer's count, the
    /// `referral_confirmed` rules, milestones and the referee's reward.
    fn count_confirmation(&mut self, mut r: Referral, at: Millis, amount: Option<i64>, out: &mut Outcome) {
        let config = self.config();
        let before = self.store.confirmed(r.referrer);
        if let Some(max) = config.caps.per_referrer_max_confirmed
            && before >= max
        {
            r.status = ReferralStatus::Rejected;
            r.reason = Some(RefusalReason::ReferrerCapReached.as_str().into());
            self.store.update_referral(&r);
            out.refusal = Some(RefusalReason::ReferrerCapReached);
            return;
        }
        let after = before + 1;
        self.store.set_confirmed(r.referrer, after);
        out.notices.push(Notice::ReferralConfirmed {
            referral: r.id,
            referrer: r.referrer,
            referee: r.referee,
        });
        if config.leaderboard.score_by == ScoreBy::ConfirmedReferrals
            && let Some(p) = self.store.participant(r.referrer)
        {
            self.store.board_add(r.referrer, p.joined_at, 1, at);
        }

        // Rules on the emitted event, under the referral's pinned version.
        let synthetic = EngineEvent {
            id: format!("referral:{}:confirmed", r.id.0),
            name: REFERRAL_CONFIRMED.into(),
            ..EngineEvent::new("", "", "", at)
        };
        let pinned = self.config_at(r.config_version);
        self.award(
            pinned,
            pinned.rules_for(REFERRAL_CONFIRMED),
            &synthetic,
            r.referee,
            Some(&r),
            out,
        );

        for (m, nth) in rewards::milestones_crossed(config, before, after) {
            out.notices.push(Notice::MilestoneReached {
                participant: r.referrer,
                milestone: m.id.clone(),
                nth,
            });
            if let Some(reward) = &m.reward {
                let source = GrantSource::Milestone {
                    milestone: m.id.clone(),
                    nth,
                };
                self.grant(r.referrer, reward, source, false, (at, amount), out);
            }
        }
        if let Some(reward) = &pinned.referee_reward {
            self.grant(
                r.referee,
                reward,
                GrantSource::Referee { referral: r.id },
                false,
                (at, amount),
                out,
            );
        }
    }

    fn apply_rules(&mut self, pid: ParticipantId, e: &EngineEvent, out: &mut Outcome) {
        let referral = self.store.referral_of(pid);
        let current = self.config();
        let own = current
            .rules_for(&e.name)
            .filter(|r| r.to == Recipient::Actor && (e.trusted || !r.trusted));
        self.award(current, own, e, pid, None, out);
        let Some(r) = referral else { return };
        let pinned = self.config_at(r.config_version);
        let side = |rule: &&PointRule| rule.to != Recipient::Actor && (e.trusted || !rule.trusted);
        if r.review == Review::Pending {
            // Referral-side effects of a referral under review wait for its review.
            if pinned.rules_for(&e.name).any(|rule| side(&rule)) {
                let held = HeldEvent {
                    id: e.id.clone(),
                    name: e.name.clone(),
                    trusted: e.trusted,
                    at: e.at,
                };
                self.store.hold(r.id, &held);
            }
            return;
        }
        self.award(pinned, pinned.rules_for(&e.name).filter(side), e, pid, Some(&r), out);
    }

    /// Evaluates `rules` for an event that happened to `actor` and writes the
    /// entries of those that fire.
    fn award<'r>(
        &mut self,
        config: &CampaignConfig,
        rules: impl Iterator<Item = &'r PointRule>,
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
        type Facts = (u32, i64, Traits, Traits);
        let facts: HashMap<Recipient, Facts> = [Recipient::Actor, Recipient::Referee, Recipient::Referrer]
            .into_iter()
            .filter_map(|to| {
                let p = recipient(to)?;
                let person = self.live_participant(p)?;
                let server = server_traits(&person.traits);
                Some((
                    to,
                    (self.store.confirmed(p), self.store.score(p), person.traits, server),
                ))
            })
            .collect();
        let awards = rules::evaluate(rules, |to, trusted| {
            facts
                .get(&to)
                .map(|(c, s, all, server)| (*c, *s, if trusted { server } else { all }))
        });
        for a in awards {
            let Some(p) = recipient(a.to) else { continue };
            let mut points = a.points;
            if a.to == Recipient::Referrer
                && let Some(cap) = config.caps.per_referrer_max_points
            {
                let earned = self.store.referral_points(p);
                if points > 0 {
                    points = points.min(cap - earned).max(0);
                }
                if points == 0 {
                    continue;
                }
            }
            // A browser's events fire a rule a bounded number of times per
            // participant: the next unused slot's key, none when all are used.
            let (key, slot) = match a.rule.repeats_for(e.trusted) {
                None => (rule_key(&e.key(), &a.rule.id, p), None),
                Some(cap) => match self.store.repeats(p, &a.rule.id) {
                    used if used >= cap => continue,
                    used => (repeat_key(&a.rule.id, p, used + 1), Some(used + 1)),
                },
            };
            let entry = LedgerEntry {
                participant: p,
                points,
                reason: EntryReason::Rule {
                    rule: a.rule.id.clone(),
                },
                source_event: Some(e.id.clone()),
                referral: live.map(|r| r.id),
                idempotency_key: key,
                at: e.at,
                config_version: self.version(),
                campaign: self.campaign,
            };
            let written = self.write(entry, out);
            // The slot is used either way (written now, or found written).
            if let Some(n) = slot {
                self.store.set_repeats(p, &a.rule.id, n);
            }
            if written && a.to == Recipient::Referrer {
                self.store.add_referral_points(p, points);
            }
        }
    }

    /// Appends to the ledger and the leaderboard; false when the key was there.
    fn write(&mut self, entry: LedgerEntry, out: &mut Outcome) -> bool {
        if !self.store.append_entry(&entry) {
            return false;
        }
        if self.config().leaderboard.score_by == ScoreBy::Points
            && let Some(p) = self.live_participant(entry.participant)
        {
            self.store.board_add(p.id, p.joined_at, entry.points, entry.at);
        }
        out.entries.push(entry);
        true
    }

    /// Grants `reward_id` to `p`, earned `at` through a trusted purchase of
    /// `amount` (which sizes a credit) when there was one.
    fn grant(
        &mut self,
        p: ParticipantId,
        reward_id: &str,
        source: GrantSource,
        needs_review: bool,
        (at, amount): (Millis, Option<i64>),
        out: &mut Outcome,
    ) {
        let config = self.config();
        let Some(reward) = config.reward(reward_id) else { return };
        let key = source.key(p, reward_id);
        if self.store.has_grant_key(&key) {
            return;
        }
        let currency = config.caps.budget.as_ref().map(|b| b.currency.as_str());
        let usage = self.store.cap_usage(&reward.id, currency, p);
        let value = rewards::value_of(reward, amount);
        if let Err(reason) = rewards::check_caps(config, reward, value.as_ref(), &usage) {
            out.notices.push(Notice::RewardWithheld {
                participant: p,
                reward: reward.id.clone(),
                reason: reason.clone(),
            });
            out.capped.push(reason);
            return;
        }
        let token = match &reward.kind {
            RewardKind::Coupon { prefix } => {
                Some(self.fresh_code(prefix, &format!("grant:{key}"), |s, t| s.token_taken(t)))
            }
            _ => None,
        };
        let g = Grant {
            token,
            value,
            ..Grant::new(self.store.next_grant_id(), p, reward, source, needs_review, at)
        };
        self.store.insert_grant(&g);
        out.notices.push(Notice::RewardEarned {
            grant: g.id,
            participant: p,
            reward: reward.id.clone(),
        });
        out.grants.push(g.id);
        if g.status == GrantStatus::Approved {
            self.pay_points(&g, 1, at, out);
        }
    }

    fn grant_by_hand(&mut self, p: ParticipantId, reward: &str, key: &str, at: Millis, out: &mut Outcome) {
        if self.live_participant(p).is_none() {
            out.error = Some("no such participant".into());
            return;
        }
        if self.config().reward(reward).is_none() {
            out.error = Some(format!("this campaign has no reward {reward:?}"));
            return;
        }
        let source = GrantSource::Manual { note: key.to_owned() };
        if self.store.has_grant_key(&source.key(p, reward)) {
            out.duplicate = true;
            return;
        }
        self.grant(p, reward, source, false, (at, None), out);
    }

    /// A points reward is in the ledger while its grant is approved or later:
    /// `sign` 1 pays it on approval, -1 takes it back on revocation.
    fn pay_points(&mut self, g: &Grant, sign: i64, at: Millis, out: &mut Outcome) {
        let Some(RewardKind::Points { points }) = self.config().reward(&g.reward).map(|r| &r.kind) else {
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

    fn adjust(&mut self, p: ParticipantId, points: i64, note: &str, key: &str, at: Millis, out: &mut Outcome) {
        if self.live_participant(p).is_none() {
            out.error = Some("no such participant".into());
            return;
        }
        let entry = LedgerEntry {
            participant: p,
            points,
            reason: EntryReason::Manual { note: note.to_owned() },
            source_event: None,
            referral: None,
            idempotency_key: format!("manual:{key}"),
            at,
            config_version: self.version(),
            campaign: self.campaign,
        };
        if !self.write(entry, out) {
            out.duplicate = true;
        }
    }

    fn invite(&mut self, p: ParticipantId, at: Millis, out: &mut Outcome) {
        let config = self.config();
        if config.mode != Mode::Invite {
            out.error = Some("this campaign is in code mode: share the referral code".into());
            return;
        }
        if self.live_participant(p).is_none() {
            out.error = Some("no such participant".into());
            return;
        }
        if self.store.open_invitations(p, at) >= MAX_OPEN_INVITATIONS {
            out.error = Some(format!(
                "at most {MAX_OPEN_INVITATIONS} invitations wait to be claimed at once; share one of those"
            ));
            return;
        }
        let invitation = Invitation {
            token: self.fresh_code("", &format!("invitation:{}:{at}", p.0), |s, t| {
                s.invitation(t).is_some()
            }),
            inviter: p,
            created_at: at,
            expires_at: at + config.attribution_window_ms(),
            claimed_by: None,
        };
        self.store.insert_invitation(&invitation);
        out.invitation = Some(invitation);
    }

    fn review(&mut self, rid: ReferralId, approve: bool, at: Millis, out: &mut Outcome) {
        let Some(mut r) = self.store.referral(rid) else {
            out.error = Some("no such referral".into());
            return;
        };
        if r.review != Review::Pending {
            out.error = Some("this referral is not waiting for review".into());
            return;
        }
        let held = self.store.take_held(rid);
        let config = self.config();
        let waiting: Vec<GrantId> = self
            .store
            .referee_grants(rid)
            .into_iter()
            .filter(|g| g.status == GrantStatus::PendingReview)
            .filter(|g| !approve || config.reward(&g.reward).is_none_or(|d| !d.requires_review))
            .map(|g| g.id)
            .collect();
        let note = if approve {
            "referral approved"
        } else {
            "referral rejected"
        };
        let to = if approve {
            GrantStatus::Approved
        } else {
            GrantStatus::Rejected
        };
        for g in waiting {
            self.transition(g, to, at, Some(note.to_owned()), out);
        }
        if !approve {
            r.review = Review::Rejected;
            r.status = ReferralStatus::Rejected;
            r.reason = Some("rejected on review".into());
            self.store.update_referral(&r);
            return;
        }
        r.review = Review::Approved;
        self.store.update_referral(&r);
        let pinned = self.config_at(r.config_version);
        for h in &held {
            let side = pinned
                .rules_for(&h.name)
                .filter(|rule| rule.to != Recipient::Actor && (h.trusted || !rule.trusted));
            let e = EngineEvent {
                id: h.id.clone(),
                name: h.name.clone(),
                trusted: h.trusted,
                ..EngineEvent::new("", "", "", h.at)
            };
            self.award(pinned, side, &e, r.referee, Some(&r), out);
        }
        if r.status == ReferralStatus::Confirmed {
            self.count_confirmation(r, at, None, out);
        }
    }

    fn transition(&mut self, id: GrantId, to: GrantStatus, at: Millis, note: Option<String>, out: &mut Outcome) {
        let Some(mut g) = self.store.grant(id) else {
            out.error = Some("no such grant".into());
            return;
        };
        let from = g.status;
        match g.transition(to, at, note) {
            Ok(()) => {
                self.store.update_grant(&g);
                out.notices.push(Notice::RewardStatusChanged { grant: id, from, to });
                match to {
                    GrantStatus::Approved => self.pay_points(&g, 1, at, out),
                    GrantStatus::Revoked => self.pay_points(&g, -1, at, out),
                    _ => {}
                }
            }
            Err(e) => {
                out.error = Some(format!(
                    "a grant cannot go from {} to {}",
                    e.from.as_str(),
                    e.to.as_str()
                ))
            }
        }
    }

    fn tick(&mut self, now: Millis, out: &mut Outcome) {
        for mut r in self.store.overdue_referrals(now) {
            if quest::is_overdue(self.config_at(r.config_version), &r, now) {
                r.status = ReferralStatus::Expired;
                self.store.update_referral(&r);
            }
        }
        for mut g in self.store.due_grants(now) {
            let from = g.status;
            if g.expire_if_due(now) {
                self.store.update_grant(&g);
                out.notices.push(Notice::RewardStatusChanged {
                    grant: g.id,
                    from,
                    to: GrantStatus::Expired,
                });
            }
        }
    }

    fn end(&mut self, at: Millis, seed: u64, out: &mut Outcome) {
        if self.store.ended() {
            out.error = Some("the campaign has already ended".into());
            return;
        }
        self.store.set_ended();
        let config = self.config();
        // One distribution at a time: a raffle sees the tickets handed out by
        // the distributions before it.
        for (index, d) in config.end_distributions.iter().enumerate() {
            let standings = self.standings(at);
            for p in rewards::winners(&d.rule, &standings, seed ^ index as u64) {
                self.grant(
                    p,
                    &d.reward,
                    GrantSource::Distribution { index },
                    false,
                    (at, None),
                    out,
                );
            }
        }
    }

    /// Everyone on the all-time board, in rank order, as distributions see them.
    fn standings(&self, now: Millis) -> Vec<Standing> {
        let config = self.config();
        let mut tickets: HashMap<ParticipantId, u32> = HashMap::new();
        for g in self.store.live_grants() {
            if let Some(RewardKind::RaffleTicket { tickets: n }) = config.reward(&g.reward).map(|r| &r.kind) {
                *tickets.entry(g.participant).or_default() += n;
            }
        }
        self.store
            .board_top(Period::All, usize::MAX, now)
            .into_iter()
            .map(|row| Standing {
                participant: row.participant,
                rank: row.rank,
                score: self.store.score(row.participant),
                confirmed_referrals: self.store.confirmed(row.participant),
                raffle_tickets: tickets.get(&row.participant).copied().unwrap_or(0),
            })
            .collect()
    }

    /// A `leaderboard.top_n_changed` notice when the all-time top N moved.
    pub fn note_top_n(&mut self, out: &mut Outcome) {
        let n = self.config().leaderboard.top_n as usize;
        let top: Vec<ParticipantId> = self
            .store
            .board_top(Period::All, n, 0)
            .into_iter()
            .filter(|r| r.score > 0)
            .map(|r| r.participant)
            .collect();
        if top != self.store.top_before() {
            out.notices.push(Notice::TopNChanged { top: top.clone() });
            self.store.set_top_before(&top);
        }
    }

    /// The code of `name` (with `prefix`, if any) that `taken` does not
    /// already know. 31^8 codes: a clash is rare and takes the next attempt, a
    /// bounded number of times (a store that answers "taken" for everything
    /// is a bug).
    fn fresh_code(&self, prefix: &str, name: &str, taken: impl Fn(&S, &str) -> bool) -> String {
        const ATTEMPTS: u32 = 64;
        // The campaign is part of the name: two campaigns never share a code by construction.
        let name = format!("campaign:{}:{name}", self.campaign.0);
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if let Some(code) = self.codes.code(prefix, &name, attempt) {
                if !taken(self.store, &code) {
                    return code;
                }
                last = code;
            }
        }
        panic!("{ATTEMPTS} codes of {name} in a row were taken (last {last}): the store's uniqueness check is broken");
    }
}
