//! Leaderboards: an order-statistics set per period, so an update and a rank
//! are O(log n), and top N and "around me" read only what they return. Ties
//! go to whoever joined earlier, then to the lower id (total and stable).

use super::config::Period;
use super::model::{Millis, ParticipantId};
use chrono::{DateTime, Datelike, TimeZone, Utc};
use indexset::BTreeSet;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::HashMap;

/// The sort key: higher score first, then earlier join, then lower id.
type Key = (Reverse<i64>, Millis, u64);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// 1-based.
    pub rank: u64,
    pub participant: ParticipantId,
    pub score: i64,
}

/// One ranking over one window.
#[derive(Default)]
pub struct Board {
    order: BTreeSet<Key>,
    entries: HashMap<ParticipantId, (i64, Millis)>,
}

impl Board {
    /// Adds `delta` to `p`'s score (entering them at 0 if new).
    pub fn add(&mut self, p: ParticipantId, joined_at: Millis, delta: i64) {
        let (score, joined) = self.entries.get(&p).copied().unwrap_or((0, joined_at));
        if self.entries.contains_key(&p) {
            self.order.remove(&(Reverse(score), joined, p.0));
        }
        let new = score + delta;
        self.entries.insert(p, (new, joined));
        self.order.insert((Reverse(new), joined, p.0));
    }

    /// Takes `p` off the board (erasure).
    pub fn remove(&mut self, p: ParticipantId) {
        if let Some((score, joined)) = self.entries.remove(&p) {
            self.order.remove(&(Reverse(score), joined, p.0));
        }
    }

    pub fn score(&self, p: ParticipantId) -> Option<i64> {
        self.entries.get(&p).map(|e| e.0)
    }

    /// 1-based rank, O(log n).
    pub fn rank(&self, p: ParticipantId) -> Option<u64> {
        let (score, joined) = self.entries.get(&p)?;
        Some(self.order.rank(&(Reverse(*score), *joined, p.0)) as u64 + 1)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn top(&self, n: usize) -> Vec<Row> {
        self.order.iter().take(n).enumerate().map(|(i, k)| row(i, k)).collect()
    }

    /// `radius` rows above and below `p`, with `p`.
    pub fn around(&self, p: ParticipantId, radius: usize) -> Vec<Row> {
        let Some(rank) = self.rank(p) else { return Vec::new() };
        let me = rank as usize - 1;
        let from = me.saturating_sub(radius);
        let to = (me + radius).min(self.order.len().saturating_sub(1));
        (from..=to)
            .filter_map(|i| self.order.get_index(i).map(|k| row(i, k)))
            .collect()
    }
}

fn row(index: usize, key: &Key) -> Row {
    Row {
        rank: index as u64 + 1,
        participant: ParticipantId(key.2),
        score: key.0.0,
    }
}

/// The start of the window of `period` that contains `at` (UTC; weeks start on
/// Monday). `All` has one window, starting at the epoch.
pub fn window_start(period: Period, at: Millis) -> Millis {
    let Some(t) = DateTime::<Utc>::from_timestamp_millis(at) else {
        return 0;
    };
    let day = t.date_naive();
    let start = match period {
        Period::All => return 0,
        Period::Month => day.with_day(1).unwrap_or(day),
        Period::Week => day - chrono::Days::new(u64::from(day.weekday().num_days_from_monday())),
    };
    Utc.from_utc_datetime(&start.and_hms_opt(0, 0, 0).unwrap_or_default())
        .timestamp_millis()
}

/// The campaign's boards, one per configured period, each for its current window.
pub struct Leaderboard {
    boards: Vec<(Period, Millis, Board)>,
}

impl Leaderboard {
    pub fn new(periods: &[Period]) -> Self {
        Self {
            boards: periods.iter().map(|p| (*p, 0, Board::default())).collect(),
        }
    }

    /// Adds points earned at `at`. A period's board rolls over to a new, empty
    /// window when `at` is past its current one; points from before the current
    /// window count only toward `All`.
    pub fn add(&mut self, p: ParticipantId, joined_at: Millis, delta: i64, at: Millis) {
        for (period, start, board) in &mut self.boards {
            let w = window_start(*period, at);
            if w > *start {
                *start = w;
                *board = Board::default();
            }
            if w == *start {
                board.add(p, joined_at, delta);
            }
        }
    }

    /// Enters `p` at zero on every board, so they have a rank from the start.
    pub fn enter(&mut self, p: ParticipantId, joined_at: Millis, at: Millis) {
        self.add(p, joined_at, 0, at);
    }

    pub fn remove(&mut self, p: ParticipantId) {
        for (_, _, board) in &mut self.boards {
            board.remove(p);
        }
    }

    pub fn board(&self, period: Period) -> Option<&Board> {
        self.boards.iter().find(|b| b.0 == period).map(|b| &b.2)
    }

    /// An immutable copy of the top `n` of `period`.
    pub fn snapshot(&self, period: Period, n: usize, taken_at: Millis) -> Option<Snapshot> {
        let b = self.boards.iter().find(|b| b.0 == period)?;
        Some(Snapshot {
            period,
            window_start: b.1,
            taken_at,
            rows: b.2.top(n),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub period: Period,
    pub window_start: Millis,
    pub taken_at: Millis,
    pub rows: Vec<Row>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranks_ties_and_neighbours() {
        let mut b = Board::default();
        b.add(ParticipantId(1), 100, 10);
        b.add(ParticipantId(2), 50, 10); // same score, joined earlier: ahead
        b.add(ParticipantId(3), 10, 5);
        b.add(ParticipantId(4), 20, 30);
        assert_eq!(b.rank(ParticipantId(4)), Some(1));
        assert_eq!(b.rank(ParticipantId(2)), Some(2));
        assert_eq!(b.rank(ParticipantId(1)), Some(3));
        assert_eq!(b.rank(ParticipantId(3)), Some(4));
        let around: Vec<u64> = b.around(ParticipantId(1), 1).iter().map(|r| r.participant.0).collect();
        assert_eq!(around, [2, 1, 3]);
        b.add(ParticipantId(3), 10, 100);
        assert_eq!(
            b.top(2)
                .iter()
                .map(|r| (r.rank, r.participant.0, r.score))
                .collect::<Vec<_>>(),
            [(1, 3, 105), (2, 4, 30)]
        );
        b.remove(ParticipantId(3));
        assert_eq!(b.rank(ParticipantId(3)), None);
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn windows_start_on_the_first_of_the_month_and_on_mondays() {
        let t = crate::time::parse_rfc3339_ms("2026-11-21T19:30:00Z").unwrap(); // a Saturday
        assert_eq!(
            crate::time::format_rfc3339_ms(window_start(Period::Month, t)),
            "2026-11-01T00:00:00.000Z"
        );
        assert_eq!(
            crate::time::format_rfc3339_ms(window_start(Period::Week, t)),
            "2026-11-16T00:00:00.000Z"
        );
        assert_eq!(window_start(Period::All, t), 0);
    }

    #[test]
    fn period_boards_roll_over() {
        let nov = crate::time::parse_rfc3339_ms("2026-11-21T00:00:00Z").unwrap();
        let dec = crate::time::parse_rfc3339_ms("2026-12-02T00:00:00Z").unwrap();
        let mut lb = Leaderboard::new(&[Period::All, Period::Month]);
        lb.add(ParticipantId(1), 0, 10, nov);
        lb.add(ParticipantId(2), 0, 3, dec);
        lb.add(ParticipantId(1), 0, 100, nov); // late, for November: all-time only
        assert_eq!(lb.board(Period::All).unwrap().score(ParticipantId(1)), Some(110));
        assert_eq!(lb.board(Period::Month).unwrap().score(ParticipantId(1)), None);
        assert_eq!(lb.board(Period::Month).unwrap().rank(ParticipantId(2)), Some(1));
        let snap = lb.snapshot(Period::All, 10, dec).unwrap();
        assert_eq!(snap.rows[0].participant, ParticipantId(1));
    }

    proptest! {
        // The board agrees with sorting everything from scratch.
        #[test]
        fn rank_matches_a_full_sort(ops in proptest::collection::vec((0u64..30, -50i64..50), 1..200)) {
            let mut b = Board::default();
            let mut scores: HashMap<u64, i64> = HashMap::new();
            for (p, d) in &ops {
                b.add(ParticipantId(*p), (*p as i64) * 7 % 11, *d);
                *scores.entry(*p).or_default() += d;
            }
            let mut all: Vec<(Reverse<i64>, i64, u64)> = scores.iter().map(|(p, s)| (Reverse(*s), (*p as i64) * 7 % 11, *p)).collect();
            all.sort();
            for (i, k) in all.iter().enumerate() {
                prop_assert_eq!(b.rank(ParticipantId(k.2)), Some(i as u64 + 1));
            }
        }
    }
}
