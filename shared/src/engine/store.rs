//! Where a campaign's state lives, as the engine sees it.
//!
//! `machine` is the one composition of the engine's decisions; it reads and
//! writes a campaign only through `Store`. Two stores implement it: `MemStore`
//! here (the reference: property tests, benchmarks, replay) and
//! `sql_store::SqlStore` (a campaign's SQLite database: rusqlite natively, a
//! Durable Object's storage in the worker). The differential property test
//! holds the two to the same outcomes.
//!
//! The store is infallible from the engine's point of view, like TigerBeetle's
//! storage under its state machine: a store that can fail (SQL) records the
//! first failure, and its owner rolls the whole input back.
//!
//! Every list a method returns is in id order, so both stores hand the engine
//! the same sequence and the outcomes match to the notice.

use super::config::Period;
use super::fraud::ReferrerActivity;
use super::leaderboard::{Leaderboard, Row};
use super::ledger::Ledger;
use super::model::*;
use super::referral::Invitation;
use super::rewards::{CapUsage, Grant, GrantSource, GrantStatus};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// An event whose referral-side rules wait for the review of a flagged
/// referral: what a review needs to award them on approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldEvent {
    pub id: String,
    pub name: String,
    pub trusted: bool,
    pub at: Millis,
}

/// A campaign's state: participants and their identities, referrals,
/// invitations, the ledger, leaderboards, grants, held events, clicks, and
/// which event ids took effect.
pub trait Store {
    // ---- event ids ---------------------------------------------------------
    /// Records that `event_id` takes effect now; false when it already had.
    fn mark_seen(&mut self, event_id: &str) -> bool;

    // ---- participants ------------------------------------------------------
    fn next_participant_id(&self) -> ParticipantId;
    /// A participant as stored (an erased one too, with their identity gone).
    fn participant(&self, id: ParticipantId) -> Option<Participant>;
    fn is_erased(&self, id: ParticipantId) -> bool;
    /// Whoever has this user id, else this anonymous id.
    fn find(&self, anonymous_id: Option<&str>, user_id: Option<&str>) -> Option<ParticipantId>;
    /// Whom each identity names: (the anonymous id's, the user id's).
    fn find_each(
        &self,
        anonymous_id: Option<&str>,
        user_id: Option<&str>,
    ) -> (Option<ParticipantId>, Option<ParticipantId>) {
        (
            anonymous_id.and_then(|a| self.find(Some(a), None)),
            user_id.and_then(|u| self.find(None, Some(u))),
        )
    }
    fn by_code(&self, code: &str) -> Option<ParticipantId>;
    /// A new participant, reachable by their code and their anonymous id.
    fn insert_participant(&mut self, p: &Participant);
    /// Links identities to `id` unless they already belong to someone.
    fn link_identity(&mut self, id: ParticipantId, anonymous_id: Option<&str>, user_id: Option<&str>);
    /// Writes the participant's user id, traits and hashes.
    fn update_participant(&mut self, p: &Participant);
    /// Forgets who they were: identity, traits, hashes; off the boards. Their
    /// ledger stays, so every sum stays true.
    fn erase(&mut self, id: ParticipantId);
    /// Their referrals that count.
    fn confirmed(&self, id: ParticipantId) -> u32;
    fn set_confirmed(&mut self, id: ParticipantId, n: u32);
    /// Points earned through referrer rules, for `caps.per_referrer_max_points`.
    fn referral_points(&self, id: ParticipantId) -> i64;
    fn add_referral_points(&mut self, id: ParticipantId, points: i64);
    /// How many times a browser's events fired `rule` for them.
    fn repeats(&self, id: ParticipantId, rule: &str) -> u32;
    fn set_repeats(&mut self, id: ParticipantId, rule: &str, n: u32);

    // ---- referrals ---------------------------------------------------------
    fn next_referral_id(&self) -> ReferralId;
    fn referral(&self, id: ReferralId) -> Option<Referral>;
    fn referral_of(&self, referee: ParticipantId) -> Option<Referral>;
    /// A new referral; `deadline` is when its quest window closes.
    fn insert_referral(&mut self, r: &Referral, deadline: Millis);
    fn update_referral(&mut self, r: &Referral);
    /// Referrals the referrer received since `since` (velocity), and their
    /// pending ones created before `stale_before`.
    fn activity(&self, referrer: ParticipantId, since: Millis, stale_before: Millis) -> ReferrerActivity;
    /// Pending referrals whose deadline passed before `now`.
    fn overdue_referrals(&self, now: Millis) -> Vec<Referral>;

    // ---- invitations -------------------------------------------------------
    fn invitation(&self, token: &str) -> Option<Invitation>;
    fn insert_invitation(&mut self, i: &Invitation);
    fn claim_invitation(&mut self, token: &str, by: ParticipantId);
    /// How many of `inviter`'s invitations are neither claimed nor expired at `now`.
    fn open_invitations(&self, inviter: ParticipantId, now: Millis) -> u32;

    // ---- ledger ------------------------------------------------------------
    /// Appends the entry; false (and nothing written) when its key was there.
    fn append_entry(&mut self, e: &LedgerEntry) -> bool;
    /// The sum of their ledger entries.
    fn score(&self, id: ParticipantId) -> i64;

    // ---- leaderboards ------------------------------------------------------
    /// Adds `delta` (0 enters them) on every board whose window holds `at`.
    fn board_add(&mut self, id: ParticipantId, joined_at: Millis, delta: i64, at: Millis);
    /// The first `n` rows of `period`'s window that holds `now`, in rank order.
    fn board_top(&self, period: Period, n: usize, now: Millis) -> Vec<Row>;

    // ---- grants ------------------------------------------------------------
    fn next_grant_id(&self) -> GrantId;
    fn grant(&self, id: GrantId) -> Option<Grant>;
    fn has_grant_key(&self, key: &str) -> bool;
    fn token_taken(&self, token: &str) -> bool;
    /// A new grant with its history so far.
    fn insert_grant(&mut self, g: &Grant);
    /// The grant's new status and the last transition of its history.
    fn update_grant(&mut self, g: &Grant);
    /// Live grants, for the caps of one more grant of `reward` to `to`.
    fn cap_usage(&self, reward: &str, budget_currency: Option<&str>, to: ParticipantId) -> CapUsage;
    /// Grants of a referral's referee reward.
    fn referee_grants(&self, referral: ReferralId) -> Vec<Grant>;
    /// Grants with an expiry at or before `now` that can still expire.
    fn due_grants(&self, now: Millis) -> Vec<Grant>;
    /// Live grants (raffle tickets count these).
    fn live_grants(&self) -> Vec<Grant>;

    // ---- codes -------------------------------------------------------------
    /// Gives `id` the code `code` from `at` on; their old code is retired and
    /// never names anyone again.
    fn set_code(&mut self, id: ParticipantId, code: &str, at: Millis);
    /// Whether `code` was someone's before they were given another.
    fn code_retired(&self, code: &str) -> bool;
    /// When `id`'s current code was given: their join, unless replaced since.
    fn code_given_at(&self, id: ParticipantId) -> Option<Millis>;

    // ---- held events, clicks, campaign flags ----------------------------------
    fn hold(&mut self, referral: ReferralId, e: &HeldEvent);
    fn take_held(&mut self, referral: ReferralId) -> Vec<HeldEvent>;
    fn add_click(&mut self, code: &str, participant: ParticipantId, at: Millis);
    fn ended(&self) -> bool;
    fn set_ended(&mut self);
    /// The all-time top N last reported (`leaderboard.top_n_changed`).
    fn top_before(&self) -> Vec<ParticipantId>;
    fn set_top_before(&mut self, top: &[ParticipantId]);
}

/// A campaign's state in memory: the reference store.
pub struct MemStore {
    pub(crate) participants: Vec<Participant>,
    pub(crate) erased: HashSet<ParticipantId>,
    pub(crate) by_anonymous: HashMap<String, ParticipantId>,
    pub(crate) by_user: HashMap<String, ParticipantId>,
    pub(crate) by_code: HashMap<String, ParticipantId>,
    pub(crate) referrals: Vec<Referral>,
    pub(crate) deadlines: Vec<Millis>,
    pub(crate) referral_of: HashMap<ParticipantId, ReferralId>,
    pub(crate) referrals_by: HashMap<ParticipantId, Vec<ReferralId>>,
    pub(crate) confirmed: HashMap<ParticipantId, u32>,
    pub(crate) referral_points: HashMap<ParticipantId, i64>,
    pub(crate) repeats: HashMap<(ParticipantId, String), u32>,
    pub(crate) invitations: HashMap<String, Invitation>,
    pub(crate) ledger: Ledger,
    pub(crate) grants: Vec<Grant>,
    pub(crate) grant_keys: HashSet<String>,
    pub(crate) tokens: HashSet<String>,
    pub(crate) leaderboard: Leaderboard,
    pub(crate) seen: HashSet<String>,
    pub(crate) held: HashMap<ReferralId, Vec<HeldEvent>>,
    pub(crate) clicks: Vec<(String, Millis)>,
    pub(crate) ended: bool,
    pub(crate) top_before: Vec<ParticipantId>,
    /// Codes replaced by another, with whose they were.
    pub(crate) retired_codes: HashMap<String, ParticipantId>,
    /// When a participant's code was replaced last.
    pub(crate) codes_given: HashMap<ParticipantId, Millis>,
}

impl MemStore {
    /// An empty campaign keeping boards for `periods`.
    pub fn new(periods: &[Period]) -> Self {
        MemStore {
            participants: Vec::new(),
            erased: HashSet::new(),
            by_anonymous: HashMap::new(),
            by_user: HashMap::new(),
            by_code: HashMap::new(),
            referrals: Vec::new(),
            deadlines: Vec::new(),
            referral_of: HashMap::new(),
            referrals_by: HashMap::new(),
            confirmed: HashMap::new(),
            referral_points: HashMap::new(),
            repeats: HashMap::new(),
            invitations: HashMap::new(),
            ledger: Ledger::default(),
            grants: Vec::new(),
            grant_keys: HashSet::new(),
            tokens: HashSet::new(),
            leaderboard: Leaderboard::new(periods),
            seen: HashSet::new(),
            held: HashMap::new(),
            clicks: Vec::new(),
            ended: false,
            top_before: Vec::new(),
            retired_codes: HashMap::new(),
            codes_given: HashMap::new(),
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    fn live(&self) -> impl Iterator<Item = &Grant> {
        self.grants.iter().filter(|g| g.status.is_live())
    }
}

/// Ids are dense from 1 (the API's ids are positive): id n is slot n - 1.
fn slot(id: u64) -> usize {
    (id as usize).wrapping_sub(1)
}

impl Store for MemStore {
    fn mark_seen(&mut self, event_id: &str) -> bool {
        self.seen.insert(event_id.to_owned())
    }

    fn next_participant_id(&self) -> ParticipantId {
        ParticipantId(self.participants.len() as u64 + 1)
    }

    fn participant(&self, id: ParticipantId) -> Option<Participant> {
        self.participants.get(slot(id.0)).cloned()
    }

    fn is_erased(&self, id: ParticipantId) -> bool {
        self.erased.contains(&id)
    }

    fn find(&self, anonymous_id: Option<&str>, user_id: Option<&str>) -> Option<ParticipantId> {
        user_id
            .and_then(|u| self.by_user.get(u))
            .or_else(|| anonymous_id.and_then(|a| self.by_anonymous.get(a)))
            .copied()
    }

    fn by_code(&self, code: &str) -> Option<ParticipantId> {
        self.by_code.get(code).copied()
    }

    fn set_code(&mut self, id: ParticipantId, code: &str, at: Millis) {
        let Some(p) = self.participants.get_mut(slot(id.0)) else {
            return;
        };
        let old = std::mem::replace(&mut p.code, code.to_owned());
        self.by_code.remove(&old);
        self.by_code.insert(code.to_owned(), id);
        self.retired_codes.insert(old, id);
        self.codes_given.insert(id, at);
    }

    fn code_retired(&self, code: &str) -> bool {
        self.retired_codes.contains_key(code)
    }

    fn code_given_at(&self, id: ParticipantId) -> Option<Millis> {
        self.codes_given
            .get(&id)
            .copied()
            .or_else(|| self.participants.get(slot(id.0)).map(|p| p.joined_at))
    }

    fn insert_participant(&mut self, p: &Participant) {
        debug_assert_eq!(p.id, self.next_participant_id(), "participant ids are dense");
        self.by_code.insert(p.code.clone(), p.id);
        self.participants.push(p.clone());
        self.link_identity(p.id, p.anonymous_id.as_deref(), p.user_id.as_deref());
    }

    fn link_identity(&mut self, id: ParticipantId, anonymous_id: Option<&str>, user_id: Option<&str>) {
        if let Some(u) = user_id {
            self.by_user.entry(u.to_owned()).or_insert(id);
        }
        if let Some(a) = anonymous_id {
            self.by_anonymous.entry(a.to_owned()).or_insert(id);
        }
    }

    fn update_participant(&mut self, p: &Participant) {
        if let Some(slot) = self.participants.get_mut(slot(p.id.0)) {
            *slot = p.clone();
        }
    }

    fn erase(&mut self, id: ParticipantId) {
        let Some(person) = self.participants.get_mut(slot(id.0)) else {
            return;
        };
        person.anonymous_id = None;
        person.user_id = None;
        person.email_hash = None;
        person.email_domain = None;
        person.ip_hash = None;
        person.device_id = None;
        person.traits.clear();
        self.by_anonymous.retain(|_, p| *p != id);
        self.by_user.retain(|_, p| *p != id);
        self.erased.insert(id);
        self.leaderboard.remove(id);
    }

    fn confirmed(&self, id: ParticipantId) -> u32 {
        self.confirmed.get(&id).copied().unwrap_or(0)
    }

    fn set_confirmed(&mut self, id: ParticipantId, n: u32) {
        self.confirmed.insert(id, n);
    }

    fn referral_points(&self, id: ParticipantId) -> i64 {
        self.referral_points.get(&id).copied().unwrap_or(0)
    }

    fn add_referral_points(&mut self, id: ParticipantId, points: i64) {
        *self.referral_points.entry(id).or_default() += points;
    }

    fn repeats(&self, id: ParticipantId, rule: &str) -> u32 {
        self.repeats.get(&(id, rule.to_owned())).copied().unwrap_or(0)
    }

    fn set_repeats(&mut self, id: ParticipantId, rule: &str, n: u32) {
        self.repeats.insert((id, rule.to_owned()), n);
    }

    fn next_referral_id(&self) -> ReferralId {
        ReferralId(self.referrals.len() as u64 + 1)
    }

    fn referral(&self, id: ReferralId) -> Option<Referral> {
        self.referrals.get(slot(id.0)).cloned()
    }

    fn referral_of(&self, referee: ParticipantId) -> Option<Referral> {
        self.referral_of.get(&referee).and_then(|r| self.referral(*r))
    }

    fn insert_referral(&mut self, r: &Referral, deadline: Millis) {
        debug_assert_eq!(r.id, self.next_referral_id(), "referral ids are dense");
        debug_assert!(!self.referral_of.contains_key(&r.referee), "a referee has one referrer");
        self.referral_of.insert(r.referee, r.id);
        self.referrals_by.entry(r.referrer).or_default().push(r.id);
        self.referrals.push(r.clone());
        self.deadlines.push(deadline);
    }

    fn update_referral(&mut self, r: &Referral) {
        if let Some(slot) = self.referrals.get_mut(slot(r.id.0)) {
            *slot = r.clone();
        }
    }

    fn activity(&self, referrer: ParticipantId, since: Millis, stale_before: Millis) -> ReferrerActivity {
        let mut a = ReferrerActivity::default();
        for r in self
            .referrals_by
            .get(&referrer)
            .into_iter()
            .flatten()
            .filter_map(|r| self.referrals.get(slot(r.0)))
        {
            if r.created_at > since {
                a.referrals_last_hour += 1;
            }
            if r.status == ReferralStatus::Pending && r.created_at < stale_before {
                a.stale_pending += 1;
            }
        }
        a
    }

    fn overdue_referrals(&self, now: Millis) -> Vec<Referral> {
        self.referrals
            .iter()
            .zip(&self.deadlines)
            .filter(|(r, deadline)| r.status == ReferralStatus::Pending && now > **deadline)
            .map(|(r, _)| r.clone())
            .collect()
    }

    fn invitation(&self, token: &str) -> Option<Invitation> {
        self.invitations.get(token).cloned()
    }

    fn insert_invitation(&mut self, i: &Invitation) {
        self.invitations.insert(i.token.clone(), i.clone());
    }

    fn claim_invitation(&mut self, token: &str, by: ParticipantId) {
        if let Some(i) = self.invitations.get_mut(token) {
            i.claimed_by = Some(by);
        }
    }

    fn open_invitations(&self, inviter: ParticipantId, now: Millis) -> u32 {
        self.invitations
            .values()
            .filter(|i| i.inviter == inviter && i.claimed_by.is_none() && i.expires_at > now)
            .count() as u32
    }

    fn append_entry(&mut self, e: &LedgerEntry) -> bool {
        self.ledger.append(e.clone())
    }

    fn score(&self, id: ParticipantId) -> i64 {
        self.ledger.score(id)
    }

    fn board_add(&mut self, id: ParticipantId, joined_at: Millis, delta: i64, at: Millis) {
        if !self.erased.contains(&id) {
            self.leaderboard.add(id, joined_at, delta, at);
        }
    }

    fn board_top(&self, period: Period, n: usize, _now: Millis) -> Vec<Row> {
        self.leaderboard.board(period).map(|b| b.top(n)).unwrap_or_default()
    }

    fn next_grant_id(&self) -> GrantId {
        GrantId(self.grants.len() as u64 + 1)
    }

    fn grant(&self, id: GrantId) -> Option<Grant> {
        self.grants.get(slot(id.0)).cloned()
    }

    fn has_grant_key(&self, key: &str) -> bool {
        self.grant_keys.contains(key)
    }

    fn token_taken(&self, token: &str) -> bool {
        self.tokens.contains(token)
    }

    fn insert_grant(&mut self, g: &Grant) {
        debug_assert_eq!(g.id, self.next_grant_id(), "grant ids are dense");
        self.grant_keys.insert(g.idempotency_key.clone());
        if let Some(t) = &g.token {
            self.tokens.insert(t.clone());
        }
        self.grants.push(g.clone());
    }

    fn update_grant(&mut self, g: &Grant) {
        if let Some(slot) = self.grants.get_mut(slot(g.id.0)) {
            *slot = g.clone();
        }
    }

    fn cap_usage(&self, reward: &str, budget_currency: Option<&str>, to: ParticipantId) -> CapUsage {
        let winners: HashSet<ParticipantId> = self.live().map(|g| g.participant).collect();
        CapUsage {
            winners: winners.len() as u32,
            is_winner: winners.contains(&to),
            spent_minor: self
                .live()
                .filter_map(|g| g.value.as_ref())
                .filter(|v| Some(v.currency.as_str()) == budget_currency)
                .map(|v| v.amount_minor)
                .sum(),
            grants_of_reward: self.live().filter(|g| g.reward == reward).count() as u32,
        }
    }

    fn referee_grants(&self, referral: ReferralId) -> Vec<Grant> {
        self.grants
            .iter()
            .filter(|g| g.source == GrantSource::Referee { referral })
            .cloned()
            .collect()
    }

    fn due_grants(&self, now: Millis) -> Vec<Grant> {
        self.grants
            .iter()
            .filter(|g| g.expires_at.is_some_and(|t| now >= t) && g.status.can_become(GrantStatus::Expired))
            .cloned()
            .collect()
    }

    fn live_grants(&self) -> Vec<Grant> {
        self.live().cloned().collect()
    }

    fn hold(&mut self, referral: ReferralId, e: &HeldEvent) {
        let held = self.held.entry(referral).or_default();
        if !held.iter().any(|h| h.id == e.id) {
            held.push(e.clone());
        }
    }

    fn take_held(&mut self, referral: ReferralId) -> Vec<HeldEvent> {
        self.held.remove(&referral).unwrap_or_default()
    }

    fn add_click(&mut self, code: &str, _participant: ParticipantId, at: Millis) {
        self.clicks.push((code.to_owned(), at));
    }

    fn ended(&self) -> bool {
        self.ended
    }

    fn set_ended(&mut self) {
        self.ended = true;
    }

    fn top_before(&self) -> Vec<ParticipantId> {
        self.top_before.clone()
    }

    fn set_top_before(&mut self, top: &[ParticipantId]) {
        self.top_before = top.to_vec();
    }
}
