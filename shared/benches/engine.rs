//! `cargo bench -p refloop-core`: the engine's figures.
//!
//! - rule evaluation: point rules evaluated per second (aim ≥ 1M on one core);
//! - engine events/s in a campaign of 100k participants;
//! - leaderboard update and rank with 1M participants (aim: rank ≤ 2 µs);
//! - replay: corrections for a ledger of 1M entries (aim ≤ 2 s).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use refloop_core::engine::config::CampaignConfig;
use refloop_core::engine::leaderboard::Board;
use refloop_core::engine::ledger::corrections;
use refloop_core::engine::model::{EntryReason, LedgerEntry, ParticipantId, Traits};
use refloop_core::engine::presets::WAITLIST;
use refloop_core::engine::program::{EngineEvent, Input, Program, SIGNUP};
use refloop_core::engine::referral::Touch;
use refloop_core::engine::rewards::SplitMix64;
use refloop_core::engine::rules;
use std::hint::black_box;
use std::time::Duration;

const T0: i64 = 1_767_225_600_000 + 86_400_000;

fn rule_evaluation(c: &mut Criterion) {
    let config = CampaignConfig::from_json(WAITLIST).unwrap();
    let traits = Traits::new();
    let per_call = config.rules_for("referral_confirmed").count() as u64;
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(per_call));
    let mut n = 0u32;
    g.bench_function("evaluate referral_confirmed rules", |b| {
        b.iter(|| {
            n = n.wrapping_add(1) % 64;
            black_box(rules::evaluate(config.rules_for("referral_confirmed"), |_, _| {
                Some((n, 100, &traits))
            }))
        })
    });
    g.finish();
}

/// A waitlist with `n` participants, a third of them referred.
fn campaign(n: u64) -> Program {
    let mut p = Program::new(CampaignConfig::from_json(WAITLIST).unwrap(), 1).unwrap();
    let mut rng = SplitMix64::new(3);
    for i in 0..n {
        let at = T0 + i as i64 * 1000;
        let mut e = EngineEvent::new(format!("s{i}"), SIGNUP, format!("a{i}"), at);
        if i % 3 == 1 && i > 10 {
            let referrer = ParticipantId(rng.below(i / 2));
            let code = p.participant(referrer).map(|x| x.code.clone());
            e.touch = code.map(|c| Touch {
                code: Some(c),
                invitation: None,
                at,
            });
        }
        p.apply(Input::Event(Box::new(e)));
    }
    p
}

fn engine_events(c: &mut Criterion) {
    let mut program = campaign(100_000);
    let mut g = c.benchmark_group("engine (100k participants)");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    let mut i = 0u64;
    // Each iteration is a new event: a referee verifying (confirms a referral,
    // pays the referrer, may cross a milestone) or a plain event.
    g.bench_function("apply one event", |b| {
        b.iter(|| {
            i += 1;
            let who = (i * 7919) % 100_000;
            let name = if i.is_multiple_of(2) { "email_verified" } else { "page" };
            let e = EngineEvent::new(
                format!("bench{i}"),
                name,
                format!("a{who}"),
                T0 + 200_000_000 + i as i64,
            );
            black_box(program.apply(Input::Event(Box::new(e))))
        })
    });
    g.finish();
}

fn leaderboard(c: &mut Criterion) {
    const N: u64 = 1_000_000;
    let mut board = Board::default();
    let mut rng = SplitMix64::new(5);
    for p in 0..N {
        board.add(ParticipantId(p), p as i64, rng.below(10_000) as i64);
    }
    let mut g = c.benchmark_group("leaderboard (1M participants)");
    g.sample_size(50);
    g.bench_function("update a score", |b| {
        b.iter(|| {
            let p = ParticipantId(rng.below(N));
            board.add(p, p.0 as i64, black_box(rng.below(100) as i64 - 50));
        })
    });
    g.bench_function("rank", |b| {
        b.iter(|| black_box(board.rank(ParticipantId(rng.below(N)))))
    });
    g.bench_function("top 10", |b| b.iter(|| black_box(board.top(10))));
    g.bench_function("around me (±5)", |b| {
        b.iter(|| black_box(board.around(ParticipantId(rng.below(N)), 5)))
    });
    g.finish();
}

fn replay(c: &mut Criterion) {
    const N: usize = 1_000_000;
    let entry = |i: usize, points: i64| LedgerEntry {
        campaign: Default::default(),
        participant: ParticipantId((i % 100_000) as u64),
        points,
        reason: EntryReason::Rule { rule: "r".into() },
        source_event: None,
        referral: None,
        idempotency_key: format!("e:{i}:r:r:p:{}", i % 100_000),
        at: 0,
        config_version: 1,
    };
    let actual: Vec<LedgerEntry> = (0..N).map(|i| entry(i, 10)).collect();
    // Under the new rules every tenth entry pays 25 instead of 10.
    let expected: Vec<LedgerEntry> = (0..N).map(|i| entry(i, if i % 10 == 0 { 25 } else { 10 })).collect();
    let mut g = c.benchmark_group("replay");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("corrections for 1M ledger entries", |b| {
        b.iter_batched(
            || (),
            |_| black_box(corrections(&actual, &expected, "bench", 0, 2)),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, rule_evaluation, engine_events, leaderboard, replay);
criterion_main!(benches);
