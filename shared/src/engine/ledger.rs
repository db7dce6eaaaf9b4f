//! The ledger: append-only point entries. A score is the sum of a
//! participant's entries, always; corrections are new entries.

use super::model::{CampaignId, EntryReason, LedgerEntry, ParticipantId};
use std::collections::{BTreeMap, HashMap};

/// The idempotency key of a rule's effect: the same event, rule and
/// participant can only ever be one entry.
pub fn rule_key(event_id: &str, rule_id: &str, participant: ParticipantId) -> String {
    format!("e:{event_id}:r:{rule_id}:p:{}", participant.0)
}

/// The key of the `n`th time (from 1) a browser's events fired a rule for a
/// participant: a rule capped per participant has one key per allowed time,
/// so the cap is the ledger's uniqueness, whatever the event ids.
pub fn repeat_key(rule_id: &str, participant: ParticipantId, n: u32) -> String {
    format!("n:{n}:r:{rule_id}:p:{}", participant.0)
}

/// The key of a points reward granted by a grant.
pub fn reward_key(grant_key: &str) -> String {
    format!("g:{grant_key}")
}

/// A ledger in memory, keyed for idempotency. The edge keeps the same shape in
/// D1 with a unique index on the key.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    entries: Vec<LedgerEntry>,
    keys: HashMap<String, usize>,
    scores: HashMap<ParticipantId, i64>,
}

impl Ledger {
    /// Appends `entry` unless its key is already there. Returns whether it was new.
    pub fn append(&mut self, entry: LedgerEntry) -> bool {
        if self.keys.contains_key(&entry.idempotency_key) {
            return false;
        }
        self.keys.insert(entry.idempotency_key.clone(), self.entries.len());
        *self.scores.entry(entry.participant).or_default() += entry.points;
        self.entries.push(entry);
        true
    }

    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }

    pub fn score(&self, p: ParticipantId) -> i64 {
        self.scores.get(&p).copied().unwrap_or(0)
    }

    pub fn entries(&self) -> &[LedgerEntry] {
        &self.entries
    }

    pub fn entries_of(&self, p: ParticipantId) -> impl Iterator<Item = &LedgerEntry> {
        self.entries.iter().filter(move |e| e.participant == p)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The invariant, checked from scratch: every kept score is the sum of the
    /// entries, and every key is unique.
    pub fn check(&self) -> Result<(), String> {
        let mut sums: HashMap<ParticipantId, i64> = HashMap::new();
        for e in &self.entries {
            *sums.entry(e.participant).or_default() += e.points;
        }
        for (p, s) in &self.scores {
            if sums.get(p).copied().unwrap_or(0) != *s {
                return Err(format!("score of {p:?} is {s}, its entries sum to {:?}", sums.get(p)));
            }
        }
        if self.keys.len() != self.entries.len() {
            return Err("an idempotency key appears twice".into());
        }
        Ok(())
    }
}

/// Correcting entries that turn the ledger `actual` into `expected` (what a
/// replay under another configuration computed), without editing anything:
/// for every original effect (key) whose points differ, one entry with the
/// difference. `replay_id` names this replay and makes its keys unique, so
/// running the same replay twice adds nothing the second time.
pub fn corrections(
    actual: &[LedgerEntry],
    expected: &[LedgerEntry],
    replay_id: &str,
    at: i64,
    config_version: u32,
) -> Vec<LedgerEntry> {
    // Net points per original effect, corrections folded into what they correct.
    let mut have: BTreeMap<&str, (i64, ParticipantId, CampaignId)> = BTreeMap::new();
    for e in actual {
        if matches!(e.reason, EntryReason::Manual { .. }) {
            continue; // an operator's word stands through replays
        }
        let key = match &e.reason {
            EntryReason::Correction { corrects, .. } => corrects.as_str(),
            _ => e.idempotency_key.as_str(),
        };
        let slot = have.entry(key).or_insert((0, e.participant, e.campaign));
        slot.0 += e.points;
    }
    let mut want: BTreeMap<&str, (i64, &LedgerEntry)> = BTreeMap::new();
    for e in expected
        .iter()
        .filter(|e| !matches!(e.reason, EntryReason::Manual { .. }))
    {
        let slot = want.entry(e.idempotency_key.as_str()).or_insert((0, e));
        slot.0 += e.points;
    }
    let mut out = Vec::new();
    let mut push =
        |key: &str, participant: ParticipantId, campaign: CampaignId, diff: i64, source: Option<&LedgerEntry>| {
            if diff != 0 {
                out.push(LedgerEntry {
                    campaign,
                    participant,
                    points: diff,
                    reason: EntryReason::Correction {
                        replay: replay_id.to_owned(),
                        corrects: key.to_owned(),
                    },
                    source_event: source.and_then(|s| s.source_event.clone()),
                    referral: source.and_then(|s| s.referral),
                    idempotency_key: format!("replay:{replay_id}:{key}"),
                    at,
                    config_version,
                });
            }
        };
    for (key, (points, entry)) in &want {
        let had = have.get(key).map_or(0, |h| h.0);
        push(key, entry.participant, entry.campaign, points - had, Some(entry));
    }
    for (key, (points, participant, campaign)) in &have {
        if !want.contains_key(key) {
            push(key, *participant, *campaign, -points, None);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: u64, points: i64, key: &str) -> LedgerEntry {
        LedgerEntry {
            campaign: Default::default(),
            participant: ParticipantId(p),
            points,
            reason: EntryReason::Rule { rule: "r".into() },
            source_event: Some("e".into()),
            referral: None,
            idempotency_key: key.into(),
            at: 0,
            config_version: 1,
        }
    }

    #[test]
    fn the_same_key_is_written_once_and_scores_are_sums() {
        let mut l = Ledger::default();
        assert!(l.append(entry(1, 10, "a")));
        assert!(!l.append(entry(1, 10, "a")));
        assert!(l.append(entry(1, -3, "b")));
        assert_eq!(l.score(ParticipantId(1)), 7);
        assert_eq!(l.len(), 2);
        l.check().unwrap();
    }

    #[test]
    fn corrections_make_the_sums_match_and_a_second_run_adds_nothing() {
        let actual = vec![entry(1, 10, "a"), entry(1, 5, "b"), entry(2, 7, "c")];
        // Under the new rules: a pays 20, b pays nothing, c is unchanged, d is new.
        let expected = vec![entry(1, 20, "a"), entry(2, 7, "c"), entry(3, 1, "d")];
        let fix = corrections(&actual, &expected, "r1", 9, 2);
        let mut ledger = Ledger::default();
        for e in actual.iter().chain(&fix) {
            assert!(ledger.append(e.clone()));
        }
        assert_eq!(ledger.score(ParticipantId(1)), 20);
        assert_eq!(ledger.score(ParticipantId(2)), 7);
        assert_eq!(ledger.score(ParticipantId(3)), 1);
        let again = corrections(ledger.entries(), &expected, "r2", 10, 2);
        assert!(again.is_empty(), "{again:?}");
        assert!(corrections(&expected, &expected, "r3", 0, 1).is_empty());
    }
}
