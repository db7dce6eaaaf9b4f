//! The rank a leaderboard needs, two ways, at 1M participants in the same run:
//! the core's order-statistics board, and what a plain SQL schema would do, a
//! `COUNT(*)` of the rows above on an indexed SQLite table (the query the
//! edge's score buckets avoid). `make bench` puts both in bench/REPORT.md.

use criterion::{Criterion, criterion_group, criterion_main};
use refloop_core::engine::leaderboard::Board;
use refloop_core::engine::model::ParticipantId;
use refloop_core::engine::rewards::SplitMix64;
use rusqlite::{Connection, params};
use std::hint::black_box;

const N: u64 = 1_000_000;

fn rank(c: &mut Criterion) {
    let mut rng = SplitMix64::new(5);
    let scores: Vec<i64> = (0..N).map(|_| rng.below(10_000) as i64).collect();

    let mut board = Board::default();
    for (p, s) in scores.iter().enumerate() {
        board.add(ParticipantId(p as u64), p as i64, *s);
    }

    let db = Connection::open_in_memory().expect("sqlite");
    db.execute_batch(
        "CREATE TABLE scores (participant_id INTEGER PRIMARY KEY, score INTEGER NOT NULL, joined_at INTEGER NOT NULL);",
    )
    .expect("schema");
    {
        let tx = db.unchecked_transaction().expect("tx");
        let mut insert = tx.prepare("INSERT INTO scores VALUES (?1, ?2, ?3)").expect("insert");
        for (p, s) in scores.iter().enumerate() {
            insert.execute(params![p as i64, s, p as i64]).expect("row");
        }
        drop(insert);
        tx.commit().expect("commit");
    }
    db.execute_batch("CREATE INDEX scores_ranked ON scores(score DESC, joined_at);")
        .expect("index");
    let mut count = db
        .prepare(
            "SELECT 1 + count(*) FROM scores s, (SELECT score, joined_at FROM scores WHERE participant_id = ?1) me
             WHERE s.score > me.score OR (s.score = me.score AND s.joined_at < me.joined_at)",
        )
        .expect("rank query");

    let mut g = c.benchmark_group("rank at 1M participants");
    g.sample_size(20);
    g.bench_function("order-statistics board", |b| {
        b.iter(|| black_box(board.rank(ParticipantId(rng.below(N)))))
    });
    g.bench_function("SQLite COUNT(*) on an index", |b| {
        b.iter(|| {
            let p = rng.below(N) as i64;
            let r: i64 = count.query_row([p], |row| row.get(0)).expect("rank");
            black_box(r)
        })
    });
    g.finish();
}

criterion_group!(benches, rank);
criterion_main!(benches);
