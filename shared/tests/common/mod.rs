//! A small driver for the engine in tests: people by name, events with fresh ids.
#![allow(dead_code)]

use refloop_core::engine::config::CampaignConfig;
use refloop_core::engine::model::{DAY_MS, Millis, ParticipantId};
use refloop_core::engine::program::{EngineEvent, Input, Outcome, Program, SIGNUP};
use refloop_core::engine::referral::Touch;

pub const T0: Millis = 1_767_225_600_000; // 2026-01-01T00:00:00Z
pub const DAY: Millis = DAY_MS;

pub struct Driver {
    pub program: Program,
    next_event: u64,
    pub now: Millis,
}

impl Driver {
    pub fn new(config_json: &str) -> Self {
        Self::with(CampaignConfig::from_json(config_json).unwrap_or_else(|e| panic!("{e:#?}")))
    }

    pub fn with(config: CampaignConfig) -> Self {
        Driver {
            program: Program::new(config, 7).unwrap(),
            next_event: 0,
            now: T0 + DAY,
        }
    }

    pub fn tick(&mut self, ms: Millis) {
        self.now += ms;
    }

    pub fn event(&mut self, who: &str, name: &str) -> Outcome {
        self.send(who, name, |_| {})
    }

    pub fn trusted(&mut self, who: &str, name: &str) -> Outcome {
        self.send(who, name, |e| e.trusted = true)
    }

    pub fn send(&mut self, who: &str, name: &str, edit: impl FnOnce(&mut EngineEvent)) -> Outcome {
        self.next_event += 1;
        let mut e = EngineEvent::new(format!("ev-{}", self.next_event), name, format!("anon-{who}"), self.now);
        edit(&mut e);
        self.program.apply(Input::Event(Box::new(e)))
    }

    /// `who` signs up, referred by `by` (their code) when given.
    pub fn signup(&mut self, who: &str, by: Option<&str>) -> Outcome {
        let code = by.map(|b| self.code(b));
        let now = self.now;
        self.send(who, SIGNUP, |e| {
            e.touch = code.map(|c| Touch {
                code: Some(c),
                invitation: None,
                at: now - 1000,
            });
            e.email_hash = Some(format!("mail-{who}"));
        })
    }

    pub fn id(&self, who: &str) -> ParticipantId {
        self.program
            .find(Some(&format!("anon-{who}")), None)
            .unwrap_or_else(|| panic!("{who} has not joined"))
    }

    pub fn code(&self, who: &str) -> String {
        self.program.participant(self.id(who)).unwrap().code.clone()
    }

    pub fn score(&self, who: &str) -> i64 {
        self.program.score(self.id(who))
    }

    pub fn confirmed(&self, who: &str) -> u32 {
        self.program.confirmed_referrals(self.id(who))
    }

    pub fn rewards_of(&self, who: &str) -> Vec<String> {
        let id = self.id(who);
        self.program
            .grants()
            .iter()
            .filter(|g| g.participant == id)
            .map(|g| g.reward.clone())
            .collect()
    }

    pub fn check(&self) {
        self.program.check().unwrap_or_else(|e| panic!("invariant broken: {e}"));
    }
}
