//! The engine over memory and over SQL, fed the same random histories of every
//! kind of input, must decide the same things: each input's whole `Outcome`
//! (statuses, ledger keys and amounts, grants, caps, notices, errors) and, at
//! the end, the whole state (participants, referrals, grants with their
//! histories, the ledger, the boards), replays included (their corrections,
//! previewed or applied). `MemStore` is the reference; `SqlStore`
//! on rusqlite is what a campaign's Durable Object runs.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use refloop_core::engine::config::{CampaignConfig, Period, Versioned};
use refloop_core::engine::machine::{EngineEvent, Input, Machine, Outcome, SIGNUP};
use refloop_core::engine::model::*;
use refloop_core::engine::referral::Touch;
use refloop_core::engine::rewards::{Codes, GrantStatus};
use refloop_core::engine::sql_store::{Rows, SqlStore};
use refloop_core::engine::store::{MemStore, Store};
use refloop_tests::CampaignDb;
use std::collections::BTreeMap;

const T0: Millis = 1_767_225_600_000;

/// Code mode with every cap, coupons, credit against a budget, a trait
/// condition, end distributions (top N, min score, a raffle) and the fraud
/// signals that put referrals under review.
const CODE: &str = r#"{
  "name": "code",
  "ends_at": "2027-06-01T00:00:00Z",
  "code_valid_days": 2,
  "quest": {"steps": [{"event": "signup"}, {"event": "verified"}, {"event": "paid", "trusted": true}], "window_days": 2},
  "point_rules": [
    {"id": "join", "event": "signup", "to": "self", "points": 5},
    {"id": "verify", "event": "verified", "to": "self", "points": 3},
    {"id": "each", "event": "referral_confirmed", "to": "referrer", "points": 10},
    {"id": "first", "event": "referral_confirmed", "to": "referrer", "points": 7, "when": {"first_referral_only": true}},
    {"id": "welcome", "event": "referral_confirmed", "to": "referee", "points": 4},
    {"id": "friend-paid", "event": "paid", "to": "referrer", "points": 4, "trusted": true},
    {"id": "pro", "event": "verified", "to": "self", "points": 9, "when": {"traits": [{"key": "plan", "equals": "pro"}]}},
    {"id": "penalty", "event": "refund", "to": "self", "points": -6}
  ],
  "rewards": [
    {"id": "credit", "name": "$10", "kind": {"type": "credit", "amount_minor": 1000, "currency": "USD"}, "expires_after_days": 1},
    {"id": "bonus", "name": "Bonus", "kind": {"type": "points", "points": 25}},
    {"id": "coupon", "name": "Coupon", "kind": {"type": "coupon", "prefix": "F"}, "max_grants": 3, "requires_review": true},
    {"id": "ticket", "name": "Ticket", "kind": {"type": "raffle_ticket", "tickets": 2}},
    {"id": "prize", "name": "Prize", "kind": {"type": "badge", "badge": "winner"}}
  ],
  "milestones": [
    {"id": "every-2", "every": 2, "reward": "credit"},
    {"id": "at-1", "confirmed_referrals": 1, "reward": "ticket"},
    {"id": "at-3", "confirmed_referrals": 3, "reward": "bonus"}
  ],
  "referee_reward": "coupon",
  "end_distributions": [
    {"reward": "prize", "rule": {"type": "top_n", "n": 2}},
    {"reward": "bonus", "rule": {"type": "min_score", "score": 20}},
    {"reward": "prize", "rule": {"type": "raffle", "winners": 1}}
  ],
  "caps": {"budget": {"amount_minor": 2000, "currency": "USD"}, "max_winners": 4,
           "per_referrer_max_confirmed": 4, "per_referrer_max_points": 60},
  "fraud": {"velocity_per_hour": 3, "flag_disposable_email": true},
  "leaderboard": {"top_n": 3, "periods": ["all", "month", "week"]}
}"#;

/// Invite mode: single-use invitations, a quest of one step, a referee reward.
const INVITE: &str = r#"{
  "name": "invite",
  "mode": "invite",
  "quest": {"steps": [{"event": "signup"}, {"event": "paid", "trusted": true}], "window_days": 3},
  "point_rules": [
    {"id": "friend", "event": "referral_confirmed", "to": "referrer", "points": 25},
    {"id": "join", "event": "signup", "to": "self", "points": 1}
  ],
  "rewards": [{"id": "thanks", "name": "Thanks", "kind": {"type": "points", "points": 5}}],
  "referee_reward": "thanks",
  "milestones": [{"id": "two", "confirmed_referrals": 2, "reward": "thanks"}],
  "caps": {"max_winners": 3},
  "leaderboard": {"score_by": "confirmed_referrals", "top_n": 2}
}"#;

#[derive(Debug, Clone)]
enum Action {
    Signup {
        who: u8,
        by: Option<u8>,
        disposable: bool,
    },
    /// A signup through a code its owner had before a new one.
    SignupByOldCode {
        who: u8,
        old: u8,
    },
    /// An operator gives a new code: a vanity one (of a few, so they clash),
    /// or a fresh random one.
    SetCode {
        who: u8,
        vanity: Option<u8>,
    },
    Step {
        who: u8,
        step: u8,
        trusted: bool,
    },
    Identify {
        who: u8,
        pro: bool,
    },
    Click {
        whose: u8,
    },
    /// A reward by hand (a reward of either config, or one that does not exist).
    GrantByHand {
        who: u8,
        reward: u8,
        key: u8,
    },
    Invite {
        who: u8,
    },
    Review {
        referral: u8,
        approve: bool,
    },
    Adjust {
        who: u8,
        points: i8,
        key: u8,
    },
    Transition {
        grant: u8,
        to: u8,
    },
    Configure,
    Wait {
        hours: u8,
    },
    End {
        seed: u8,
    },
    Erase {
        who: u8,
    },
    Resend {
        index: u8,
    },
    /// Replay the log under a version (previewed, or applied).
    Replay {
        version: u8,
        apply: bool,
    },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        // Few referrers (0..3), many referees: milestones and caps get reached.
        5 => (0u8..12, proptest::option::of(0u8..3), proptest::bool::weighted(0.2))
            .prop_map(|(who, by, disposable)| Action::Signup { who, by, disposable }),
        6 => (0u8..12, 0u8..5, proptest::bool::weighted(0.7)).prop_map(|(who, step, trusted)| Action::Step { who, step, trusted }),
        1 => (0u8..12, any::<bool>()).prop_map(|(who, pro)| Action::Identify { who, pro }),
        1 => (0u8..4).prop_map(|whose| Action::Click { whose }),
        // Newcomers (12..60), so the code is what decides.
        1 => (12u8..60, any::<u8>()).prop_map(|(who, old)| Action::SignupByOldCode { who, old }),
        1 => (0u8..4, proptest::option::of(0u8..4)).prop_map(|(who, vanity)| Action::SetCode { who, vanity }),
        2 => (0u8..3).prop_map(|who| Action::Invite { who }),
        2 => (0u8..12, any::<bool>()).prop_map(|(referral, approve)| Action::Review { referral, approve }),
        1 => (0u8..12, any::<i8>(), 0u8..3).prop_map(|(who, points, key)| Action::Adjust { who, points, key }),
        1 => (0u8..12, 0u8..7, 0u8..3).prop_map(|(who, reward, key)| Action::GrantByHand { who, reward, key }),
        2 => (0u8..16, 0u8..8).prop_map(|(grant, to)| Action::Transition { grant, to }),
        1 => Just(Action::Configure),
        1 => (0u8..30).prop_map(|hours| Action::Wait { hours }),
        1 => any::<u8>().prop_map(|seed| Action::End { seed }),
        1 => (0u8..12).prop_map(|who| Action::Erase { who }),
        1 => any::<u8>().prop_map(|index| Action::Resend { index }),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(version, apply)| Action::Replay { version, apply }),
    ]
}

const STATUSES: [GrantStatus; 8] = GrantStatus::ALL;

/// The next configuration version: other points, one quest step fewer, so
/// referrals pinned to the first version and those under the second differ.
fn next_version(current: &CampaignConfig) -> CampaignConfig {
    let mut next = current.clone();
    for r in &mut next.point_rules {
        r.points += 1;
    }
    if next.quest.steps.len() > 1 {
        next.quest.steps.pop();
    }
    next
}

struct Run {
    mem: MemStore,
    db: CampaignDb,
    versions: Vec<Versioned>,
    codes: Codes,
    inputs: Vec<Input>,
    /// The SQL store's rows kept between inputs, as a campaign's object keeps
    /// them between calls (dropped every seventh input, as after a restart).
    rows: Rows,
    /// Codes that were replaced by another.
    old_codes: Vec<String>,
}

impl Run {
    fn new(config: &str) -> Self {
        let config = CampaignConfig::from_json(config).unwrap();
        Run {
            mem: MemStore::new(&config.leaderboard.periods),
            db: CampaignDb::new(),
            versions: vec![Versioned { version: 1, config }],
            codes: Codes::from_seed(5),
            inputs: Vec::new(),
            rows: Rows::default(),
            old_codes: Vec::new(),
        }
    }

    fn periods(&self) -> Vec<Period> {
        self.versions[0].config.leaderboard.periods.clone()
    }

    /// One input through both stores; both outcomes.
    fn apply(&mut self, input: Input) -> (Outcome, Outcome) {
        if let Input::Configure(c) = &input {
            let next = self.versions.last().unwrap().update((**c).clone()).unwrap();
            self.versions.push(next);
            self.inputs.push(input);
            return (Outcome::default(), Outcome::default());
        }
        let campaign = CampaignId(1);
        let before = match &input {
            Input::SetCode { participant, .. } => self.mem.participant(*participant).map(|p| p.code),
            _ => None,
        };
        let mem = Machine::new(&mut self.mem, &self.versions, campaign, &self.codes).apply(&input);
        let periods = self.periods();
        let kept = if self.inputs.len() % 7 == 6 {
            Rows::default()
        } else {
            std::mem::take(&mut self.rows)
        };
        let mut store = SqlStore::with_rows(&self.db, &periods, kept);
        let sql = Machine::new(&mut store, &self.versions, campaign, &self.codes).apply(&input);
        if let (Some(old), Some(new)) = (before, &mem.code)
            && &old != new
        {
            self.old_codes.push(old);
        }
        assert_eq!(store.failure(), None, "a statement failed on {input:?}");
        self.rows = store.into_rows();
        self.inputs.push(input);
        (mem, sql)
    }

    /// A replay of the inputs so far under one of the versions, in both
    /// stores; both sets of corrections.
    fn replay(&mut self, version: u8, apply: bool, now: Millis) -> (Vec<LedgerEntry>, Vec<LedgerEntry>) {
        let target = self.versions[version as usize % self.versions.len()].clone();
        let id = format!("r{}", self.inputs.len());
        let campaign = CampaignId(1);
        let ledger = self.mem.ledger().entries().to_vec();
        let mem = Machine::new(&mut self.mem, &self.versions, campaign, &self.codes).replay(
            &ledger,
            &self.inputs,
            &target,
            &id,
            now,
            apply,
        );
        let periods = self.periods();
        let mut store = SqlStore::with_rows(&self.db, &periods, std::mem::take(&mut self.rows));
        let ledger = store.ledger();
        let sql = Machine::new(&mut store, &self.versions, campaign, &self.codes).replay(
            &ledger,
            &self.inputs,
            &target,
            &id,
            now,
            apply,
        );
        assert_eq!(store.failure(), None, "a statement failed in a replay");
        self.rows = store.into_rows();
        (mem, sql)
    }

    fn code_of(&self, who: u8) -> Option<String> {
        let p = self.mem.find(Some(&format!("a{who}")), None)?;
        self.mem.participant(p).map(|p| p.code)
    }

    fn input(&mut self, a: &Action, now: &mut Millis, next: &mut u64) -> Option<Input> {
        *next += 1;
        let id = format!("e{next}");
        let invite_mode = self.versions[0].config.mode == refloop_core::engine::config::Mode::Invite;
        Some(match a {
            Action::Signup { who, by, disposable } => {
                let mut e = EngineEvent::new(id, SIGNUP, format!("a{who}"), *now);
                if who % 4 == 0 {
                    e.ip_hash = Some("shared-ip".into());
                }
                e.email_domain = Some(if *disposable { "mailinator.com" } else { "example.com" }.into());
                e.email_hash = Some(format!("mail-{who}"));
                let by = by.map(|b| format!("a{b}"));
                e.touch = match (invite_mode, by) {
                    (_, None) => None,
                    // The newest invitation of the inviter, claimed or not.
                    (true, Some(b)) => self
                        .mem
                        .find(Some(&b), None)
                        .and_then(|inviter| self.invitations_of(inviter).pop())
                        .map(|token| Touch {
                            code: None,
                            invitation: Some(token),
                            at: *now - 1000,
                        }),
                    (false, Some(b)) => Some(Touch {
                        code: self.code_of(b[1..].parse().unwrap()),
                        invitation: None,
                        at: *now - 1000,
                    }),
                };
                Input::Event(Box::new(e))
            }
            Action::SignupByOldCode { who, old } => {
                if self.old_codes.is_empty() {
                    return None;
                }
                let mut e = EngineEvent::new(id, SIGNUP, format!("a{who}"), *now);
                e.touch = Some(Touch {
                    code: Some(self.old_codes[*old as usize % self.old_codes.len()].clone()),
                    invitation: None,
                    at: *now - 1000,
                });
                Input::Event(Box::new(e))
            }
            Action::SetCode { who, vanity } => Input::SetCode {
                participant: self
                    .mem
                    .find(Some(&format!("a{who}")), None)
                    .unwrap_or(ParticipantId(88)),
                code: vanity.map(|v| ["ANNA", "BOB2", "ZED9", "bad!"][v as usize].to_owned()),
                at: *now,
            },
            Action::Step { who, step, trusted } => {
                let name = ["verified", "paid", "verified", "refund", "page"][*step as usize];
                let mut e = EngineEvent::new(id, name, format!("a{who}"), *now);
                e.trusted = *trusted;
                Input::Event(Box::new(e))
            }
            Action::Identify { who, pro } => {
                let mut e = EngineEvent::new(id, "identify", format!("a{who}"), *now);
                e.user_id = Some(format!("u{who}"));
                e.traits
                    .insert("plan".into(), (if *pro { "pro" } else { "free" }).into());
                Input::Event(Box::new(e))
            }
            Action::Click { whose } => Input::Click {
                code: self.code_of(*whose).unwrap_or_else(|| "NOSUCHCD".into()),
                at: *now,
            },
            Action::Invite { who } => Input::Invite {
                participant: self.mem.find(Some(&format!("a{who}")), None)?,
                at: *now,
            },
            Action::Review { referral, approve } => Input::Review {
                referral: ReferralId(u64::from(*referral) + 1),
                approve: *approve,
                at: *now,
            },
            Action::GrantByHand { who, reward, key } => Input::Grant {
                participant: self
                    .mem
                    .find(Some(&format!("a{who}")), None)
                    .unwrap_or(ParticipantId(99)),
                reward: ["credit", "bonus", "coupon", "ticket", "prize", "thanks", "nope"][*reward as usize % 7].into(),
                key: format!("g{key}"),
                at: *now,
            },
            Action::Adjust { who, points, key } => Input::Adjust {
                participant: self
                    .mem
                    .find(Some(&format!("a{who}")), None)
                    .unwrap_or(ParticipantId(99)),
                // Non-zero, either sign, within ±100.
                points: match i64::from(*points).clamp(-100, 100) {
                    0 => 1,
                    p => p,
                },
                note: "by hand".into(),
                key: format!("k{key}"),
                at: *now,
            },
            Action::Transition { grant, to } => Input::Transition {
                grant: GrantId(u64::from(*grant)),
                to: STATUSES[*to as usize],
                at: *now,
                note: Some("operator".into()),
            },
            Action::Configure => {
                if self.versions.len() >= 3 {
                    return None;
                }
                Input::Configure(Box::new(next_version(&self.versions.last().unwrap().config)))
            }
            Action::Wait { hours } => {
                *now += i64::from(*hours) * HOUR_MS;
                Input::Tick { now: *now }
            }
            Action::End { seed } => Input::End {
                at: *now,
                seed: u64::from(*seed),
            },
            Action::Erase { who } => Input::Erase {
                participant: self
                    .mem
                    .find(Some(&format!("a{who}")), None)
                    .unwrap_or(ParticipantId(77)),
                at: *now,
            },
            Action::Replay { .. } => return None,
            Action::Resend { index } => {
                let events: Vec<&Input> = self.inputs.iter().filter(|i| matches!(i, Input::Event(_))).collect();
                if events.is_empty() {
                    return None;
                }
                events[*index as usize % events.len()].clone()
            }
        })
    }

    fn invitations_of(&self, inviter: ParticipantId) -> Vec<String> {
        let mut stmt = self
            .db
            .conn
            .prepare("SELECT token FROM invitations WHERE inviter_id = ?1 ORDER BY id")
            .unwrap();
        stmt.query_map([inviter.0 as i64], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// The whole state of both stores, side by side.
    fn compare_state(&self) {
        let periods = self.periods();
        let sql = SqlStore::new(&self.db, &periods);
        let people = self.db.count("SELECT count(*) FROM participants") as u64;
        assert_eq!(people + 1, self.mem.next_participant_id().0, "participants");
        for id in (1..=people).map(ParticipantId) {
            assert_eq!(sql.participant(id), self.mem.participant(id), "participant {id:?}");
            assert_eq!(sql.is_erased(id), self.mem.is_erased(id));
            assert_eq!(sql.score(id), self.mem.score(id), "score of {id:?}");
            assert_eq!(sql.confirmed(id), self.mem.confirmed(id));
            assert_eq!(sql.referral_points(id), self.mem.referral_points(id));
        }
        let referrals = sql.next_referral_id().0;
        assert_eq!(referrals, self.mem.next_referral_id().0, "referrals");
        for id in (1..referrals).map(ReferralId) {
            assert_eq!(sql.referral(id), self.mem.referral(id), "referral {id:?}");
        }
        let grants = sql.next_grant_id().0;
        assert_eq!(grants, self.mem.next_grant_id().0, "grants");
        for id in (1..grants).map(GrantId) {
            assert_eq!(sql.grant(id), self.mem.grant(id), "grant {id:?}");
        }
        // The all-time board row by row. (Windowed boards answer for the
        // window of the time asked in SQL, for the window of the last write in
        // memory; the engine itself reads only the all-time board.)
        assert_eq!(
            sql.board_top(Period::All, 100, 0),
            self.mem.board_top(Period::All, 100, 0),
            "all-time board"
        );
        // The ledger, entry by entry, and score = sum of the ledger in SQL.
        let mut stmt = self
            .db
            .conn
            .prepare("SELECT idempotency_key, participant_id, points FROM ledger ORDER BY id")
            .unwrap();
        let sql_ledger: Vec<(String, u64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mem_ledger: Vec<(String, u64, i64)> = self
            .mem
            .ledger()
            .entries()
            .iter()
            .map(|e| (e.idempotency_key.clone(), e.participant.0, e.points))
            .collect();
        assert_eq!(sql_ledger, mem_ledger, "ledger");
        assert_eq!(
            self.db.count(
                "SELECT count(*) FROM participants p WHERE p.score <>
                   (SELECT coalesce(sum(points), 0) FROM ledger l WHERE l.participant_id = p.id)"
            ),
            0,
            "a kept score differs from its ledger sum"
        );
    }
}

/// Runs a history through both stores, comparing every outcome; counts what
/// kinds of outcome it reached (so a generator that stops reaching them fails).
fn differential(config: &str, actions: &[Action]) -> BTreeMap<&'static str, usize> {
    let mut run = Run::new(config);
    let mut now = T0 + 1000;
    let mut next = 0u64;
    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    for a in actions {
        if let Action::Replay { version, apply } = a {
            let (mem, sql) = run.replay(*version, *apply, now);
            assert_eq!(sql, mem, "the stores' replays disagree");
            *seen.entry("corrections").or_default() += mem.len();
            continue;
        }
        let Some(input) = run.input(a, &mut now, &mut next) else {
            continue;
        };
        let (mem, sql) = run.apply(input.clone());
        assert_eq!(sql, mem, "the stores disagree on {input:?}");
        let mut count = |k: &'static str, n: usize| *seen.entry(k).or_default() += n;
        count("entries", mem.entries.len());
        count("grants", mem.grants.len());
        count("capped", mem.capped.len());
        count("refusals", usize::from(mem.refusal.is_some()));
        count("duplicates", usize::from(mem.duplicate));
        count("errors", usize::from(mem.error.is_some()));
        count("invitations", usize::from(mem.invitation.is_some()));
        count("codes", usize::from(mem.code.is_some() && !mem.duplicate));
        let refused = |r| usize::from(mem.refusal == Some(r));
        count(
            "retired",
            refused(refloop_core::engine::referral::RefusalReason::RetiredCode),
        );
        count(
            "expired",
            refused(refloop_core::engine::referral::RefusalReason::ExpiredCode),
        );
        for n in &mem.notices {
            count(
                match n {
                    refloop_core::engine::machine::Notice::ReferralConfirmed { .. } => "confirmed",
                    refloop_core::engine::machine::Notice::MilestoneReached { .. } => "milestones",
                    refloop_core::engine::machine::Notice::RewardEarned { .. } => "earned",
                    refloop_core::engine::machine::Notice::RewardStatusChanged { .. } => "moved",
                    refloop_core::engine::machine::Notice::TopNChanged { .. } => "top",
                    refloop_core::engine::machine::Notice::RewardWithheld { .. } => "withheld",
                },
                1,
            );
        }
    }
    run.compare_state();
    seen
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    #[test]
    fn memory_and_sql_decide_alike_in_code_mode(actions in proptest::collection::vec(action(), 1..90)) {
        differential(CODE, &actions);
    }

    #[test]
    fn memory_and_sql_decide_alike_in_invite_mode(actions in proptest::collection::vec(action(), 1..60)) {
        differential(INVITE, &actions);
    }
}

/// The generator reaches every kind of outcome the comparison is about.
#[test]
fn the_histories_reach_every_kind_of_outcome() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut total: BTreeMap<&'static str, usize> = BTreeMap::new();
    for config in [CODE, INVITE] {
        for _ in 0..60 {
            let actions = proptest::collection::vec(action(), 60..90)
                .new_tree(&mut runner)
                .unwrap()
                .current();
            for (k, n) in differential(config, &actions) {
                *total.entry(k).or_default() += n;
            }
        }
    }
    for kind in [
        "entries",
        "grants",
        "capped",
        "refusals",
        "duplicates",
        "errors",
        "invitations",
        "confirmed",
        "milestones",
        "earned",
        "moved",
        "top",
        "withheld",
        "corrections",
        "codes",
        "retired",
        "expired",
    ] {
        assert!(
            total.get(kind).copied().unwrap_or(0) > 0,
            "no history reached {kind}: {total:?}"
        );
    }
}

/// The case the two engines of the first round disagreed on: a revoked grant
/// frees its holder's place under `max_winners`.
#[test]
fn a_revoked_grant_frees_a_winner_place_in_both_stores() {
    let config = r#"{"name":"w","quest":{"steps":[{"event":"signup"}]},
      "rewards":[{"id":"b","name":"b","kind":{"type":"badge","badge":"b"}}],
      "milestones":[{"id":"one","confirmed_referrals":1,"reward":"b"}],
      "caps":{"max_winners":1}}"#;
    let mut run = Run::new(config);
    let mut now = T0 + 1000;
    let mut next = 0;
    let script = [
        Action::Signup {
            who: 0,
            by: None,
            disposable: false,
        },
        Action::Signup {
            who: 1,
            by: None,
            disposable: false,
        },
        Action::Signup {
            who: 2,
            by: Some(0),
            disposable: false,
        },
        // Participant 0 won the only place; the grant is revoked…
        Action::Transition { grant: 1, to: 7 },
        // …so participant 1's milestone may be granted.
        Action::Signup {
            who: 3,
            by: Some(1),
            disposable: false,
        },
    ];
    let mut outcomes = Vec::new();
    for a in &script {
        let input = run.input(a, &mut now, &mut next).unwrap();
        let (mem, sql) = run.apply(input);
        assert_eq!(mem, sql);
        outcomes.push(mem);
    }
    assert_eq!(outcomes[2].grants.len(), 1, "{:?}", outcomes[2]);
    assert!(outcomes[3].error.is_none(), "{:?}", outcomes[3]);
    assert_eq!(
        outcomes[4].grants.len(),
        1,
        "a revoked winner holds no place: {:?}",
        outcomes[4]
    );
    run.compare_state();
}
