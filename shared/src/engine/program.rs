//! `Program`: one campaign in memory, driven by logged `Input`s. The engine
//! (`machine`) over a `MemStore`, plus what only memory can offer cheaply:
//! the whole input log (so the campaign can be replayed under another
//! configuration version) and `check`, every invariant restated from scratch
//! and asserted after each input in debug builds. Tests, property tests and
//! benchmarks drive it; it is the reference the SQL store is held to.

use super::config::{CampaignConfig, ConfigError, ScoreBy, Versioned};
use super::leaderboard::Leaderboard;
use super::ledger::Ledger;
use super::machine::Machine;
use super::model::*;
use super::rewards::{self, Codes, Grant, GrantSource};
use super::store::{MemStore, Store};
use std::collections::{HashMap, HashSet};

pub use super::machine::{EngineEvent, Input, Notice, Outcome, SIGNUP};

pub struct Program {
    campaign: CampaignId,
    versions: Vec<Versioned>,
    codes: Codes,
    store: MemStore,
    log: Vec<Input>,
}

impl Program {
    pub fn new(config: CampaignConfig, seed: u64) -> Result<Self, Vec<ConfigError>> {
        config.validate()?;
        let store = MemStore::new(&config.leaderboard.periods);
        Ok(Self {
            campaign: CampaignId::default(),
            versions: vec![Versioned { version: 1, config }],
            codes: Codes::from_seed(seed),
            store,
            log: Vec::new(),
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

    pub fn versions(&self) -> &[Versioned] {
        &self.versions
    }

    fn current(&self) -> &Versioned {
        self.versions.last().expect("a program has at least one version")
    }

    /// The state itself, for reads the accessors below do not cover.
    pub fn store(&self) -> &MemStore {
        &self.store
    }

    pub fn participant(&self, id: ParticipantId) -> Option<&Participant> {
        self.store
            .participants
            .get((id.0 as usize).wrapping_sub(1))
            .filter(|_| !self.store.erased.contains(&id))
    }

    pub fn participants(&self) -> impl Iterator<Item = &Participant> {
        self.store
            .participants
            .iter()
            .filter(|p| !self.store.erased.contains(&p.id))
    }

    pub fn find(&self, anonymous_id: Option<&str>, user_id: Option<&str>) -> Option<ParticipantId> {
        self.store.find(anonymous_id, user_id)
    }

    pub fn by_code(&self, code: &str) -> Option<ParticipantId> {
        self.store.by_code(code)
    }

    pub fn referral(&self, id: ReferralId) -> Option<&Referral> {
        self.store.referrals.get((id.0 as usize).wrapping_sub(1))
    }

    pub fn referrals(&self) -> &[Referral] {
        &self.store.referrals
    }

    pub fn referral_of(&self, referee: ParticipantId) -> Option<&Referral> {
        self.store.referral_of.get(&referee).and_then(|r| self.referral(*r))
    }

    pub fn confirmed_referrals(&self, p: ParticipantId) -> u32 {
        self.store.confirmed(p)
    }

    pub fn score(&self, p: ParticipantId) -> i64 {
        self.store.score(p)
    }

    pub fn ledger(&self) -> &Ledger {
        &self.store.ledger
    }

    pub fn grant(&self, id: GrantId) -> Option<&Grant> {
        self.store.grants.get((id.0 as usize).wrapping_sub(1))
    }

    pub fn grants(&self) -> &[Grant] {
        &self.store.grants
    }

    pub fn leaderboard(&self) -> &Leaderboard {
        &self.store.leaderboard
    }

    pub fn clicks(&self) -> &[(String, Millis)] {
        &self.store.clicks
    }

    pub fn log(&self) -> &[Input] {
        &self.log
    }

    /// The analytics funnel of the campaign.
    pub fn funnel(&self) -> super::analytics::Funnel {
        let referrals = &self.store.referrals;
        let confirmed = referrals.iter().filter(|r| r.counts()).count() as u64;
        super::analytics::funnel(
            self.store.clicks.len() as u64,
            referrals.len() as u64,
            confirmed,
            self.participants().count() as u64,
        )
    }

    /// Clicks, referred signups and confirmations per UTC day.
    pub fn trend(&self, from: Millis, to: Millis) -> Vec<super::analytics::Day> {
        let clicks: Vec<Millis> = self.store.clicks.iter().map(|c| c.1).collect();
        let referrals = &self.store.referrals;
        let signups: Vec<Millis> = referrals.iter().map(|r| r.created_at).collect();
        let confirmed: Vec<Millis> = referrals
            .iter()
            .filter(|r| r.counts())
            .filter_map(|r| r.confirmed_at)
            .collect();
        super::analytics::daily_trend(&clicks, &signups, &confirmed, from, to)
    }

    // ---- writing -------------------------------------------------------

    /// Applies one input and returns what it did. Every input is logged.
    pub fn apply(&mut self, input: Input) -> Outcome {
        let out = match &input {
            Input::Configure(config) => {
                let mut out = Outcome::default();
                match self.current().update((**config).clone()) {
                    Ok(v) => self.versions.push(v),
                    Err(errors) => out.error = Some(format!("{errors:?}")),
                }
                out
            }
            other => Machine::new(&mut self.store, &self.versions, self.campaign, &self.codes).apply(other),
        };
        self.log.push(input);
        debug_assert_eq!(self.check(), Ok(()));
        out
    }

    // ---- replay --------------------------------------------------------

    /// The correcting entries that bring the ledger to what `config` would have
    /// written for the same inputs, appended and returned. The inputs are
    /// replayed from the log by `Machine::replay` with the same codes (so ids
    /// and codes match); manual adjustments are kept as they are.
    pub fn replay(
        &mut self,
        config: CampaignConfig,
        replay_id: &str,
        at: Millis,
    ) -> Result<Vec<LedgerEntry>, Vec<ConfigError>> {
        config.validate()?;
        let version = match self.versions.iter().find(|v| v.config == config) {
            Some(v) => v.version,
            None => self.version(),
        };
        let target = Versioned { version, config };
        let ledger = self.store.ledger.entries().to_vec();
        let fixes = Machine::new(&mut self.store, &self.versions, self.campaign, &self.codes)
            .replay(&ledger, &self.log, &target, replay_id, at, true);
        Ok(fixes)
    }

    // ---- invariants ----------------------------------------------------

    /// Every invariant of the campaign, checked from scratch.
    pub fn check(&self) -> Result<(), String> {
        self.store.ledger.check()?;
        let config = self.config();
        if config.leaderboard.score_by == ScoreBy::Points
            && let Some(board) = self.store.leaderboard.board(super::config::Period::All)
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
        for r in &self.store.referrals {
            if !referees.insert(r.referee) {
                return Err(format!("{:?} has two referrers", r.referee));
            }
            if r.referee == r.referrer {
                return Err(format!("{:?} refers themselves", r.referee));
            }
        }
        let mut counted: HashMap<ParticipantId, u32> = HashMap::new();
        for r in self.store.referrals.iter().filter(|r| r.counts()) {
            *counted.entry(r.referrer).or_default() += 1;
        }
        for (p, n) in &self.store.confirmed {
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
        for g in &self.store.grants {
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
        let live: Vec<&Grant> = self.store.grants.iter().filter(|g| g.status.is_live()).collect();
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
