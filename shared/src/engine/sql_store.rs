//! A campaign's state in its own SQLite database: the `Store` the edge runs
//! the engine over. One database per campaign (a Durable Object's storage in
//! the worker, rusqlite natively), so no table carries a campaign id and every
//! statement touches one campaign's rows.
//!
//! The SQL text here is the only SQL of the campaign state; the same text runs
//! in both places. Statements go through the small synchronous `Sql` trait.
//! A failing statement is recorded (`SqlStore::failure`) and the rest of the
//! input carries on with empty answers; the owner must then roll the whole
//! input back (a Durable Object by throwing out of its transaction, rusqlite
//! by not committing), so nothing half-written stays.

use super::config::Period;
use super::fraud::ReferrerActivity;
use super::leaderboard::{Row, window_start};
use super::model::*;
use super::referral::Invitation;
use super::rewards::{CapUsage, Grant, GrantSource, GrantStatus, Transition};
use super::store::{HeldEvent, Store};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::cell::RefCell;
use std::collections::HashMap;

/// One SQLite connection, synchronous: a statement with `?1`-style
/// parameters → its rows as column → value maps.
pub trait Sql {
    fn exec(&self, sql: &str, args: &[Value]) -> Result<Vec<Map<String, Value>>, String>;
}

/// The schema of a campaign's database, statement by statement, in order.
/// `IF NOT EXISTS` throughout: applying it again changes nothing.
pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    // An event id takes effect at most once in the campaign.
    "CREATE TABLE IF NOT EXISTS seen_events (event_id TEXT PRIMARY KEY) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS participants (
       id INTEGER PRIMARY KEY,
       anonymous_id TEXT, user_id TEXT,
       code TEXT NOT NULL UNIQUE,
       joined_at INTEGER NOT NULL,
       traits TEXT NOT NULL DEFAULT '{}',
       email_hash TEXT, email_domain TEXT, ip_hash TEXT, device_id TEXT,
       confirmed INTEGER NOT NULL DEFAULT 0 CHECK (confirmed >= 0),
       referral_points INTEGER NOT NULL DEFAULT 0,
       score INTEGER NOT NULL DEFAULT 0,
       erased INTEGER NOT NULL DEFAULT 0 CHECK (erased IN (0, 1)))",
    // Every anonymous id and user id a participant is known by: one owner each.
    "CREATE TABLE IF NOT EXISTS identities (
       kind TEXT NOT NULL CHECK (kind IN ('anonymous', 'user')),
       value TEXT NOT NULL,
       participant_id INTEGER NOT NULL REFERENCES participants(id),
       PRIMARY KEY (kind, value)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS identities_by_participant ON identities(participant_id)",
    "CREATE TABLE IF NOT EXISTS referrals (
       id INTEGER PRIMARY KEY,
       referrer_id INTEGER NOT NULL REFERENCES participants(id),
       referee_id INTEGER NOT NULL UNIQUE REFERENCES participants(id),
       via TEXT NOT NULL,
       status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'expired')),
       config_version INTEGER NOT NULL,
       created_at INTEGER NOT NULL,
       deadline INTEGER NOT NULL,
       done_mask INTEGER NOT NULL DEFAULT 0,
       confirmed_at INTEGER,
       flags TEXT NOT NULL DEFAULT '[]',
       review TEXT NOT NULL CHECK (review IN ('clear', 'pending', 'approved', 'rejected')),
       reason TEXT,
       CHECK (referrer_id <> referee_id))",
    "CREATE INDEX IF NOT EXISTS referrals_by_referrer ON referrals(referrer_id, created_at)",
    "CREATE INDEX IF NOT EXISTS referrals_pending ON referrals(status, deadline)",
    // Kept in arrival order (the rowid): a review awards them in that order.
    "CREATE TABLE IF NOT EXISTS held_events (
       id INTEGER PRIMARY KEY,
       referral_id INTEGER NOT NULL REFERENCES referrals(id),
       event_id TEXT NOT NULL, name TEXT NOT NULL,
       trusted INTEGER NOT NULL CHECK (trusted IN (0, 1)), at INTEGER NOT NULL,
       UNIQUE (referral_id, event_id))",
    "CREATE TABLE IF NOT EXISTS invitations (
       id INTEGER PRIMARY KEY,
       token TEXT NOT NULL UNIQUE,
       inviter_id INTEGER NOT NULL REFERENCES participants(id),
       created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
       claimed_by INTEGER REFERENCES participants(id))",
    "CREATE INDEX IF NOT EXISTS invitations_by_inviter ON invitations(inviter_id, id)",
    "CREATE TABLE IF NOT EXISTS clicks (
       id INTEGER PRIMARY KEY,
       participant_id INTEGER NOT NULL REFERENCES participants(id),
       code TEXT NOT NULL, at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS clicks_by_participant ON clicks(participant_id)",
    // The answers to "why didn't it count?": every refused referral and every
    // reward a cap withheld, with its reason (the campaign object writes them).
    "CREATE TABLE IF NOT EXISTS answers (
       id INTEGER PRIMARY KEY, at INTEGER NOT NULL, event_id TEXT,
       anonymous_id TEXT, user_id TEXT, code TEXT,
       kind TEXT NOT NULL CHECK (kind IN ('refused', 'withheld')), reason TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS answers_by_anonymous ON answers(anonymous_id)",
    "CREATE INDEX IF NOT EXISTS answers_by_user ON answers(user_id)",
    "CREATE INDEX IF NOT EXISTS answers_by_code ON answers(code)",
    // Where each referral came from (the signup's campaign tags, click id or
    // referring host); the campaign object writes them, the stats read them.
    "CREATE TABLE IF NOT EXISTS referral_sources (
       referral_id INTEGER PRIMARY KEY, source TEXT NOT NULL)",
    // How often a browser's events fired a rule for a participant (its cap).
    "CREATE TABLE IF NOT EXISTS rule_repeats (
       participant_id INTEGER NOT NULL, rule_id TEXT NOT NULL, n INTEGER NOT NULL,
       PRIMARY KEY (participant_id, rule_id)) WITHOUT ROWID",
    // The campaign object's dedupe of clicks: one per visitor, code and day.
    "CREATE TABLE IF NOT EXISTS click_visitors (
       code TEXT NOT NULL, visitor TEXT NOT NULL, day INTEGER NOT NULL,
       PRIMARY KEY (code, visitor, day)) WITHOUT ROWID",
    // Append-only: the triggers refuse updates and deletes.
    "CREATE TABLE IF NOT EXISTS ledger (
       id INTEGER PRIMARY KEY,
       participant_id INTEGER NOT NULL REFERENCES participants(id),
       points INTEGER NOT NULL,
       reason TEXT NOT NULL,
       source_event TEXT, referral_id INTEGER,
       idempotency_key TEXT NOT NULL UNIQUE,
       at INTEGER NOT NULL,
       config_version INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ledger_by_participant ON ledger(participant_id, id)",
    // An entry's amount, owner, key and time never change; only its reason's
    // free text may be blanked (an erasure of the person it was written about).
    "DROP TRIGGER IF EXISTS ledger_no_update",
    "CREATE TRIGGER IF NOT EXISTS ledger_amounts_fixed BEFORE UPDATE OF id, participant_id, points, source_event,
       referral_id, idempotency_key, at, config_version ON ledger
     BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
    // The kept score moves with its entry, in the same statement.
    "CREATE TRIGGER IF NOT EXISTS ledger_moves_score AFTER INSERT ON ledger
     BEGIN UPDATE participants SET score = score + NEW.points WHERE id = NEW.participant_id; END",
    // Scores per board window: 'all', 'month:<start ms>', 'week:<start ms>'.
    "CREATE TABLE IF NOT EXISTS scores (
       period TEXT NOT NULL, participant_id INTEGER NOT NULL,
       score INTEGER NOT NULL, joined_at INTEGER NOT NULL,
       PRIMARY KEY (period, participant_id)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS scores_ranked ON scores(period, score DESC, joined_at, participant_id)",
    "CREATE TABLE IF NOT EXISTS grants (
       id INTEGER PRIMARY KEY,
       participant_id INTEGER NOT NULL REFERENCES participants(id),
       reward_id TEXT NOT NULL,
       source TEXT NOT NULL,
       -- The referral whose referee reward this is (source referee), for reviews.
       referral_id INTEGER,
       status TEXT NOT NULL CHECK (status IN ('earned', 'pending_review', 'approved', 'fulfilled', 'redeemed', 'rejected', 'expired', 'revoked')),
       token TEXT UNIQUE,
       value_minor INTEGER, currency TEXT,
       earned_at INTEGER NOT NULL, expires_at INTEGER,
       idempotency_key TEXT NOT NULL UNIQUE)",
    "CREATE INDEX IF NOT EXISTS grants_by_participant ON grants(participant_id)",
    "CREATE INDEX IF NOT EXISTS grants_by_referral ON grants(referral_id) WHERE referral_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS grants_due ON grants(expires_at) WHERE expires_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS grants_by_status ON grants(status, reward_id)",
    "CREATE TABLE IF NOT EXISTS grant_transitions (
       id INTEGER PRIMARY KEY,
       grant_id INTEGER NOT NULL REFERENCES grants(id),
       from_status TEXT, to_status TEXT NOT NULL, at INTEGER NOT NULL, note TEXT)",
    "CREATE INDEX IF NOT EXISTS grant_transitions_by_grant ON grant_transitions(grant_id, id)",
    // Codes replaced by another (regenerated, or a vanity code): they never
    // name anyone again, and a signup through one is answered as retired.
    "CREATE TABLE IF NOT EXISTS retired_codes (
       code TEXT PRIMARY KEY, participant_id INTEGER NOT NULL, retired_at INTEGER NOT NULL) WITHOUT ROWID",
    // When a participant's current code was given, if not at their join.
    "CREATE TABLE IF NOT EXISTS codes_given (participant_id INTEGER PRIMARY KEY, at INTEGER NOT NULL)",
    // Every input the campaign was given, in order: a replay runs them again.
    "CREATE TABLE IF NOT EXISTS inputs (id INTEGER PRIMARY KEY, input TEXT NOT NULL)",
    // Webhook notices not yet known to be in the directory's outbox: written in
    // the same transaction as the effects they report, drained by the alarm.
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, type TEXT NOT NULL, payload TEXT NOT NULL)",
    // Immutable copies of a board at a moment (the engine never reads them).
    "CREATE TABLE IF NOT EXISTS snapshots (
       id INTEGER PRIMARY KEY, period TEXT NOT NULL, taken_at INTEGER NOT NULL, rows TEXT NOT NULL)",
];

/// The statuses of a live grant, as SQL.
const LIVE: &str = "('earned', 'pending_review', 'approved', 'fulfilled', 'redeemed')";

/// The `Store` over one campaign's SQLite database.
pub struct SqlStore<'c, C: Sql> {
    sql: &'c C,
    /// The boards the campaign keeps (the configuration's periods).
    periods: Vec<Period>,
    failure: RefCell<Option<String>>,
    rows: Rows,
    /// Event keys marked seen ahead for this call (`prefetch_seen`), and those
    /// of them that were new and not yet asked about.
    prefetched: std::collections::HashSet<String>,
    fresh: std::collections::HashSet<String>,
}

/// Rows the store has read or written, so an input reads each row once. Safe
/// because the store is the campaign's only writer, and every write below
/// keeps them current. A campaign's object keeps them between calls
/// (`SqlStore::with_rows`, `into_rows`) and drops them when a call rolls back.
#[derive(Default)]
pub struct Rows {
    people: RefCell<HashMap<u64, Person>>,
    /// Referrals by referee (`None`: known to have none).
    referrals_of: RefCell<HashMap<u64, Option<Referral>>>,
    /// Identities known to belong to someone: (kind, value) → participant.
    identities: RefCell<HashMap<(String, String), u64>>,
    /// How often a browser's events fired a rule for a participant.
    repeats: RefCell<HashMap<(u64, String), u32>>,
}

impl Rows {
    /// Participants kept at most; past it the rows are dropped and read again.
    pub const MAX_PEOPLE: usize = 50_000;

    fn trim(&self) {
        if self.people.borrow().len() > Self::MAX_PEOPLE {
            self.people.borrow_mut().clear();
            self.referrals_of.borrow_mut().clear();
            self.identities.borrow_mut().clear();
            self.repeats.borrow_mut().clear();
        }
    }
}

/// A participant's row: who they are and the counters the engine reads.
#[derive(Clone)]
struct Person {
    participant: Participant,
    confirmed: u32,
    referral_points: i64,
    score: i64,
    erased: bool,
}

impl<'c, C: Sql> SqlStore<'c, C> {
    pub fn new(sql: &'c C, periods: &[Period]) -> Self {
        Self::with_rows(sql, periods, Rows::default())
    }

    /// A store that starts from rows kept from earlier calls.
    pub fn with_rows(sql: &'c C, periods: &[Period], rows: Rows) -> Self {
        rows.trim();
        SqlStore {
            sql,
            periods: periods.to_vec(),
            failure: RefCell::new(None),
            rows,
            prefetched: Default::default(),
            fresh: Default::default(),
        }
    }

    /// The rows to keep for the next call (only after this one committed).
    pub fn into_rows(self) -> Rows {
        self.rows
    }

    /// Creates the tables (again: nothing changes).
    pub fn migrate(sql: &C) -> Result<(), String> {
        for s in SCHEMA {
            sql.exec(s, &[])?;
        }
        Ok(())
    }

    /// The first statement that failed since the store was made: the input
    /// must then be rolled back whole.
    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    fn run(&self, sql: &str, args: &[Value]) -> Vec<Map<String, Value>> {
        match self.sql.exec(sql, args) {
            Ok(rows) => rows,
            Err(e) => {
                self.failure
                    .borrow_mut()
                    .get_or_insert_with(|| format!("{e} (in: {})", first_line(sql)));
                Vec::new()
            }
        }
    }

    fn rows<T: DeserializeOwned>(&self, sql: &str, args: &[Value]) -> Vec<T> {
        self.run(sql, args)
            .into_iter()
            .filter_map(|row| match serde_json::from_value(Value::Object(row)) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.failure
                        .borrow_mut()
                        .get_or_insert_with(|| format!("a row of `{}` does not read: {e}", first_line(sql)));
                    None
                }
            })
            .collect()
    }

    fn one<T: DeserializeOwned>(&self, sql: &str, args: &[Value]) -> Option<T> {
        self.rows(sql, args).into_iter().next()
    }

    fn int(&self, sql: &str, args: &[Value]) -> i64 {
        self.one::<Int>(sql, args).map_or(0, |r| r.n.unwrap_or(0))
    }

    /// Records an input the campaign was given (a replay runs them again).
    pub fn log_input(&self, input: &super::machine::Input) {
        self.run("INSERT INTO inputs (input) VALUES (?1)", &[text(input)]);
    }

    /// Marks a batch's event keys seen in one statement, ahead of deciding
    /// them: `mark_seen` then answers from what it returned (in the same
    /// transaction, so a rolled-back call forgets both).
    pub fn prefetch_seen(&mut self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        #[derive(Deserialize)]
        struct Seen {
            event_id: String,
        }
        let fresh = self.rows::<Seen>(
            "INSERT INTO seen_events (event_id) SELECT value FROM json_each(?1) WHERE true
             ON CONFLICT DO NOTHING RETURNING event_id",
            &[Value::String(json!(keys).to_string())],
        );
        self.prefetched.extend(keys.iter().cloned());
        self.fresh.extend(fresh.into_iter().map(|s| s.event_id));
    }

    /// Logs several inputs, in order, in one statement (a batch of events).
    pub fn log_inputs(&self, inputs: &[super::machine::Input]) {
        if inputs.is_empty() {
            return;
        }
        let texts: Vec<Value> = inputs.iter().map(text).collect();
        self.run(
            "INSERT INTO inputs (input) SELECT value FROM json_each(?1) ORDER BY key",
            &[Value::String(Value::Array(texts).to_string())],
        );
    }

    /// Every input the campaign was given, in order.
    pub fn inputs(&self) -> Vec<super::machine::Input> {
        #[derive(Deserialize)]
        struct Logged {
            input: String,
        }
        self.rows::<Logged>("SELECT input FROM inputs ORDER BY id", &[])
            .into_iter()
            .filter_map(|l| serde_json::from_str(&l.input).ok())
            .collect()
    }

    /// The whole ledger, in order.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        #[derive(Deserialize)]
        struct Entry {
            participant_id: i64,
            points: i64,
            reason: String,
            source_event: Option<String>,
            referral_id: Option<i64>,
            idempotency_key: String,
            at: i64,
            config_version: u32,
        }
        self.rows::<Entry>("SELECT * FROM ledger ORDER BY id", &[])
            .into_iter()
            .filter_map(|e| {
                Some(LedgerEntry {
                    campaign: CampaignId::default(),
                    participant: ParticipantId(e.participant_id as u64),
                    points: e.points,
                    reason: serde_json::from_str(&e.reason).ok()?,
                    source_event: e.source_event,
                    referral: e.referral_id.map(|r| ReferralId(r as u64)),
                    idempotency_key: e.idempotency_key,
                    at: e.at,
                    config_version: e.config_version,
                })
            })
            .collect()
    }

    /// The campaign's secret for its codes: the one kept, else `fresh`, kept
    /// from now on.
    pub fn secret(&self, fresh: &str) -> String {
        self.run(
            "INSERT INTO meta (key, value) VALUES ('secret', ?1) ON CONFLICT DO NOTHING",
            &[json!(fresh)],
        );
        #[derive(Deserialize)]
        struct Meta {
            value: String,
        }
        self.one::<Meta>("SELECT value FROM meta WHERE key = 'secret'", &[])
            .map_or_else(|| fresh.to_owned(), |m| m.value)
    }

    fn history(&self, grant: i64) -> Vec<Transition> {
        self.rows::<TransitionRow>(
            "SELECT from_status, to_status, at, note FROM grant_transitions WHERE grant_id = ?1 ORDER BY id",
            &[json!(grant)],
        )
        .into_iter()
        .filter_map(TransitionRow::into_transition)
        .collect()
    }

    fn grants_where(&self, condition: &str, args: &[Value]) -> Vec<Grant> {
        let sql = format!("SELECT * FROM grants WHERE {condition} ORDER BY id");
        self.rows::<GrantRow>(&sql, args)
            .into_iter()
            .filter_map(|g| {
                let history = self.history(g.id);
                g.into_grant(history)
            })
            .collect()
    }

    /// A participant's row, from this call's rows when read before.
    fn person(&self, id: ParticipantId) -> Option<Person> {
        if let Some(p) = self.rows.people.borrow().get(&id.0) {
            return Some(p.clone());
        }
        let p: Person = self
            .one::<ParticipantRow>("SELECT * FROM participants WHERE id = ?1", &[json!(id.0)])?
            .into();
        self.rows.people.borrow_mut().insert(id.0, p.clone());
        Some(p)
    }

    /// Changes a participant's kept row (when this call has read it).
    fn touch(&self, id: ParticipantId, f: impl FnOnce(&mut Person)) {
        if let Some(p) = self.rows.people.borrow_mut().get_mut(&id.0) {
            f(p);
        }
    }

    fn period_keys(&self, at: Millis) -> Vec<String> {
        self.periods.iter().map(|p| period_key(*p, at)).collect()
    }
}

fn first_line(sql: &str) -> &str {
    sql.lines().next().unwrap_or(sql).trim()
}

/// The key of the window of `period` that holds `at`.
pub fn period_key(period: Period, at: Millis) -> String {
    match period {
        Period::All => "all".to_owned(),
        Period::Month => format!("month:{}", window_start(Period::Month, at)),
        Period::Week => format!("week:{}", window_start(Period::Week, at)),
    }
}

fn opt(v: Option<&str>) -> Value {
    v.map_or(Value::Null, |s| Value::String(s.to_owned()))
}

fn text<T: serde::Serialize>(v: &T) -> Value {
    Value::String(serde_json::to_string(v).unwrap_or_default())
}

#[derive(Deserialize)]
struct Int {
    n: Option<i64>,
}

#[derive(Deserialize)]
struct ParticipantRow {
    #[serde(default)]
    confirmed: i64,
    #[serde(default)]
    referral_points: i64,
    #[serde(default)]
    score: i64,
    #[serde(default)]
    erased: i64,
    id: i64,
    anonymous_id: Option<String>,
    user_id: Option<String>,
    code: String,
    joined_at: i64,
    traits: String,
    email_hash: Option<String>,
    email_domain: Option<String>,
    ip_hash: Option<String>,
    device_id: Option<String>,
}

impl From<ParticipantRow> for Person {
    fn from(r: ParticipantRow) -> Self {
        let (confirmed, referral_points, score, erased) =
            (r.confirmed as u32, r.referral_points, r.score, r.erased != 0);
        Person {
            participant: r.into(),
            confirmed,
            referral_points,
            score,
            erased,
        }
    }
}

impl From<ParticipantRow> for Participant {
    fn from(r: ParticipantRow) -> Self {
        Participant {
            id: ParticipantId(r.id as u64),
            anonymous_id: r.anonymous_id,
            user_id: r.user_id,
            code: r.code,
            joined_at: r.joined_at,
            traits: serde_json::from_str(&r.traits).unwrap_or_default(),
            email_hash: r.email_hash,
            email_domain: r.email_domain,
            ip_hash: r.ip_hash,
            device_id: r.device_id,
        }
    }
}

#[derive(Deserialize)]
struct ReferralRow {
    id: i64,
    referrer_id: i64,
    referee_id: i64,
    via: String,
    status: ReferralStatus,
    config_version: u32,
    created_at: i64,
    done_mask: u32,
    confirmed_at: Option<i64>,
    flags: String,
    review: Review,
    reason: Option<String>,
}

impl From<ReferralRow> for Referral {
    fn from(r: ReferralRow) -> Self {
        Referral {
            id: ReferralId(r.id as u64),
            referrer: ParticipantId(r.referrer_id as u64),
            referee: ParticipantId(r.referee_id as u64),
            via: r.via,
            status: r.status,
            config_version: r.config_version,
            created_at: r.created_at,
            done_mask: r.done_mask,
            confirmed_at: r.confirmed_at,
            flags: serde_json::from_str(&r.flags).unwrap_or_default(),
            review: r.review,
            reason: r.reason,
        }
    }
}

#[derive(Deserialize)]
struct InvitationRow {
    token: String,
    inviter_id: i64,
    created_at: i64,
    expires_at: i64,
    claimed_by: Option<i64>,
}

#[derive(Deserialize)]
struct GrantRow {
    id: i64,
    participant_id: i64,
    reward_id: String,
    source: String,
    status: GrantStatus,
    token: Option<String>,
    value_minor: Option<i64>,
    currency: Option<String>,
    earned_at: i64,
    expires_at: Option<i64>,
    idempotency_key: String,
}

impl GrantRow {
    fn into_grant(self, history: Vec<Transition>) -> Option<Grant> {
        Some(Grant {
            id: GrantId(self.id as u64),
            participant: ParticipantId(self.participant_id as u64),
            reward: self.reward_id,
            source: serde_json::from_str(&self.source).ok()?,
            status: self.status,
            token: self.token,
            value: self.value_minor.map(|amount_minor| Money {
                amount_minor,
                currency: self.currency.unwrap_or_default(),
            }),
            earned_at: self.earned_at,
            expires_at: self.expires_at,
            idempotency_key: self.idempotency_key,
            history,
        })
    }
}

#[derive(Deserialize)]
struct TransitionRow {
    from_status: Option<GrantStatus>,
    to_status: GrantStatus,
    at: i64,
    note: Option<String>,
}

impl TransitionRow {
    fn into_transition(self) -> Option<Transition> {
        Some(Transition {
            from: self.from_status,
            to: self.to_status,
            at: self.at,
            note: self.note,
        })
    }
}

#[derive(Deserialize)]
struct HeldRow {
    event_id: String,
    name: String,
    trusted: i64,
    at: i64,
}

#[derive(Deserialize)]
struct BoardRow {
    participant_id: i64,
    score: i64,
}

impl<C: Sql> Store for SqlStore<'_, C> {
    fn mark_seen(&mut self, event_id: &str) -> bool {
        if self.prefetched.contains(event_id) {
            return self.fresh.remove(event_id);
        }
        !self
            .run(
                "INSERT INTO seen_events (event_id) VALUES (?1) ON CONFLICT DO NOTHING RETURNING event_id",
                &[json!(event_id)],
            )
            .is_empty()
    }

    fn next_participant_id(&self) -> ParticipantId {
        ParticipantId(self.int("SELECT coalesce(max(id) + 1, 1) AS n FROM participants", &[]) as u64)
    }

    fn participant(&self, id: ParticipantId) -> Option<Participant> {
        self.person(id).map(|p| p.participant)
    }

    fn is_erased(&self, id: ParticipantId) -> bool {
        self.person(id).is_some_and(|p| p.erased)
    }

    fn find(&self, anonymous_id: Option<&str>, user_id: Option<&str>) -> Option<ParticipantId> {
        // A user id wins over an anonymous id.
        let (by_anonymous, by_user) = self.find_each(anonymous_id, user_id);
        by_user.or(by_anonymous)
    }

    fn find_each(
        &self,
        anonymous_id: Option<&str>,
        user_id: Option<&str>,
    ) -> (Option<ParticipantId>, Option<ParticipantId>) {
        // Identities change only through this store (the campaign's single
        // writer): one known to be someone's is answered from memory.
        let known = |kind: &str, v: &str| {
            self.rows
                .identities
                .borrow()
                .get(&(kind.to_owned(), v.to_owned()))
                .map(|p| ParticipantId(*p))
        };
        let by_anonymous = anonymous_id.map(|a| known("anonymous", a));
        let by_user = user_id.map(|u| known("user", u));
        if by_anonymous.is_none_or(|k| k.is_some()) && by_user.is_none_or(|k| k.is_some()) {
            return (by_anonymous.flatten(), by_user.flatten());
        }
        #[derive(Deserialize)]
        struct Identity {
            kind: String,
            value: String,
            participant_id: i64,
        }
        let rows = self.rows::<Identity>(
            "SELECT kind, value, participant_id FROM identities
             WHERE (kind = 'user' AND value = ?1) OR (kind = 'anonymous' AND value = ?2)",
            &[opt(user_id), opt(anonymous_id)],
        );
        let mut known = self.rows.identities.borrow_mut();
        for r in &rows {
            known.insert((r.kind.clone(), r.value.clone()), r.participant_id as u64);
        }
        let of = |kind: &str| {
            rows.iter()
                .find(|r| r.kind == kind)
                .map(|r| ParticipantId(r.participant_id as u64))
        };
        (of("anonymous"), of("user"))
    }

    fn by_code(&self, code: &str) -> Option<ParticipantId> {
        self.one::<Int>("SELECT id AS n FROM participants WHERE code = ?1", &[json!(code)])
            .and_then(|r| r.n)
            .map(|n| ParticipantId(n as u64))
    }

    fn set_code(&mut self, id: ParticipantId, code: &str, at: Millis) {
        let Some(before) = self.participant(id) else { return };
        self.run(
            "INSERT INTO retired_codes (code, participant_id, retired_at) VALUES (?1, ?2, ?3)",
            &[json!(before.code), json!(id.0), json!(at)],
        );
        self.run(
            "UPDATE participants SET code = ?2 WHERE id = ?1",
            &[json!(id.0), json!(code)],
        );
        self.run(
            "INSERT INTO codes_given (participant_id, at) VALUES (?1, ?2)
             ON CONFLICT (participant_id) DO UPDATE SET at = excluded.at",
            &[json!(id.0), json!(at)],
        );
        self.touch(id, |person| person.participant.code = code.to_owned());
    }

    fn code_retired(&self, code: &str) -> bool {
        self.one::<Int>("SELECT 1 AS n FROM retired_codes WHERE code = ?1", &[json!(code)])
            .is_some()
    }

    fn code_given_at(&self, id: ParticipantId) -> Option<Millis> {
        self.one::<Int>(
            "SELECT at AS n FROM codes_given WHERE participant_id = ?1",
            &[json!(id.0)],
        )
        .and_then(|r| r.n)
        .or_else(|| self.participant(id).map(|p| p.joined_at))
    }

    fn insert_participant(&mut self, p: &Participant) {
        self.run(
            "INSERT INTO participants (id, anonymous_id, user_id, code, joined_at, traits, email_hash, email_domain, ip_hash, device_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            &[
                json!(p.id.0),
                opt(p.anonymous_id.as_deref()),
                opt(p.user_id.as_deref()),
                json!(p.code),
                json!(p.joined_at),
                text(&p.traits),
                opt(p.email_hash.as_deref()),
                opt(p.email_domain.as_deref()),
                opt(p.ip_hash.as_deref()),
                opt(p.device_id.as_deref()),
            ],
        );
        self.link_identity(p.id, p.anonymous_id.as_deref(), p.user_id.as_deref());
        self.rows.people.borrow_mut().insert(
            p.id.0,
            Person {
                participant: p.clone(),
                confirmed: 0,
                referral_points: 0,
                score: 0,
                erased: false,
            },
        );
        self.rows.referrals_of.borrow_mut().insert(p.id.0, None);
    }

    fn link_identity(&mut self, id: ParticipantId, anonymous_id: Option<&str>, user_id: Option<&str>) {
        for (kind, value) in [("user", user_id), ("anonymous", anonymous_id)] {
            if let Some(v) = value {
                // Already someone's (this call found it): nothing to link.
                if self
                    .rows
                    .identities
                    .borrow()
                    .contains_key(&(kind.to_owned(), v.to_owned()))
                {
                    continue;
                }
                self.run(
                    "INSERT INTO identities (kind, value, participant_id) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    &[json!(kind), json!(v), json!(id.0)],
                );
                // Someone's now (theirs, or whoever had it first).
                self.rows
                    .identities
                    .borrow_mut()
                    .insert((kind.to_owned(), v.to_owned()), id.0);
            }
        }
    }

    fn update_participant(&mut self, p: &Participant) {
        self.run(
            "UPDATE participants SET anonymous_id = ?2, user_id = ?3, traits = ?4, email_hash = ?5, email_domain = ?6,
               ip_hash = ?7, device_id = ?8 WHERE id = ?1",
            &[
                json!(p.id.0),
                opt(p.anonymous_id.as_deref()),
                opt(p.user_id.as_deref()),
                text(&p.traits),
                opt(p.email_hash.as_deref()),
                opt(p.email_domain.as_deref()),
                opt(p.ip_hash.as_deref()),
                opt(p.device_id.as_deref()),
            ],
        );
        self.touch(p.id, |person| person.participant = p.clone());
    }

    fn erase(&mut self, id: ParticipantId) {
        let id = json!(id.0);
        self.run(
            "UPDATE participants SET anonymous_id = NULL, user_id = NULL, traits = '{}', email_hash = NULL,
               email_domain = NULL, ip_hash = NULL, device_id = NULL, erased = 1 WHERE id = ?1",
            std::slice::from_ref(&id),
        );
        self.run(
            "DELETE FROM identities WHERE participant_id = ?1",
            std::slice::from_ref(&id),
        );
        let erased = id.as_u64().unwrap_or_default();
        self.rows.identities.borrow_mut().retain(|_, p| *p != erased);
        self.run(
            "DELETE FROM scores WHERE participant_id = ?1",
            std::slice::from_ref(&id),
        );
        self.rows.people.borrow_mut().remove(&id.as_u64().unwrap_or_default());
    }

    fn confirmed(&self, id: ParticipantId) -> u32 {
        self.person(id).map_or(0, |p| p.confirmed)
    }

    fn set_confirmed(&mut self, id: ParticipantId, n: u32) {
        self.run(
            "UPDATE participants SET confirmed = ?2 WHERE id = ?1",
            &[json!(id.0), json!(n)],
        );
        self.touch(id, |p| p.confirmed = n);
    }

    fn referral_points(&self, id: ParticipantId) -> i64 {
        self.person(id).map_or(0, |p| p.referral_points)
    }

    fn add_referral_points(&mut self, id: ParticipantId, points: i64) {
        self.run(
            "UPDATE participants SET referral_points = referral_points + ?2 WHERE id = ?1",
            &[json!(id.0), json!(points)],
        );
        self.touch(id, |p| p.referral_points += points);
    }

    fn next_referral_id(&self) -> ReferralId {
        ReferralId(self.int("SELECT coalesce(max(id) + 1, 1) AS n FROM referrals", &[]) as u64)
    }

    fn referral(&self, id: ReferralId) -> Option<Referral> {
        self.one::<ReferralRow>("SELECT * FROM referrals WHERE id = ?1", &[json!(id.0)])
            .map(Referral::from)
    }

    fn referral_of(&self, referee: ParticipantId) -> Option<Referral> {
        if let Some(r) = self.rows.referrals_of.borrow().get(&referee.0) {
            return r.clone();
        }
        let r = self
            .one::<ReferralRow>("SELECT * FROM referrals WHERE referee_id = ?1", &[json!(referee.0)])
            .map(Referral::from);
        self.rows.referrals_of.borrow_mut().insert(referee.0, r.clone());
        r
    }

    fn insert_referral(&mut self, r: &Referral, deadline: Millis) {
        self.run(
            "INSERT INTO referrals (id, referrer_id, referee_id, via, status, config_version, created_at, deadline,
               done_mask, confirmed_at, flags, review, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            &[
                json!(r.id.0),
                json!(r.referrer.0),
                json!(r.referee.0),
                json!(r.via),
                json!(r.status),
                json!(r.config_version),
                json!(r.created_at),
                json!(deadline),
                json!(r.done_mask),
                json!(r.confirmed_at),
                text(&r.flags),
                json!(r.review),
                opt(r.reason.as_deref()),
            ],
        );
        self.rows.referrals_of.borrow_mut().insert(r.referee.0, Some(r.clone()));
    }

    fn update_referral(&mut self, r: &Referral) {
        self.run(
            "UPDATE referrals SET status = ?2, done_mask = ?3, confirmed_at = ?4, flags = ?5, review = ?6, reason = ?7
             WHERE id = ?1",
            &[
                json!(r.id.0),
                json!(r.status),
                json!(r.done_mask),
                json!(r.confirmed_at),
                text(&r.flags),
                json!(r.review),
                opt(r.reason.as_deref()),
            ],
        );
        self.rows.referrals_of.borrow_mut().insert(r.referee.0, Some(r.clone()));
    }

    fn activity(&self, referrer: ParticipantId, since: Millis, stale_before: Millis) -> ReferrerActivity {
        #[derive(Deserialize)]
        struct Activity {
            last_hour: Option<i64>,
            stale: Option<i64>,
        }
        let a = self.one::<Activity>(
            "SELECT sum(created_at > ?2) AS last_hour, sum(status = 'pending' AND created_at < ?3) AS stale
             FROM referrals WHERE referrer_id = ?1",
            &[json!(referrer.0), json!(since), json!(stale_before)],
        );
        ReferrerActivity {
            referrals_last_hour: a.as_ref().and_then(|a| a.last_hour).unwrap_or(0) as u32,
            stale_pending: a.as_ref().and_then(|a| a.stale).unwrap_or(0) as u32,
        }
    }

    fn overdue_referrals(&self, now: Millis) -> Vec<Referral> {
        self.rows::<ReferralRow>(
            "SELECT * FROM referrals WHERE status = 'pending' AND deadline < ?1 ORDER BY id",
            &[json!(now)],
        )
        .into_iter()
        .map(Referral::from)
        .collect()
    }

    fn invitation(&self, token: &str) -> Option<Invitation> {
        self.one::<InvitationRow>(
            "SELECT token, inviter_id, created_at, expires_at, claimed_by FROM invitations WHERE token = ?1",
            &[json!(token)],
        )
        .map(|i| Invitation {
            token: i.token,
            inviter: ParticipantId(i.inviter_id as u64),
            created_at: i.created_at,
            expires_at: i.expires_at,
            claimed_by: i.claimed_by.map(|c| ParticipantId(c as u64)),
        })
    }

    fn insert_invitation(&mut self, i: &Invitation) {
        self.run(
            "INSERT INTO invitations (token, inviter_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            &[
                json!(i.token),
                json!(i.inviter.0),
                json!(i.created_at),
                json!(i.expires_at),
            ],
        );
    }

    fn claim_invitation(&mut self, token: &str, by: ParticipantId) {
        self.run(
            "UPDATE invitations SET claimed_by = ?2 WHERE token = ?1",
            &[json!(token), json!(by.0)],
        );
    }

    fn open_invitations(&self, inviter: ParticipantId, now: Millis) -> u32 {
        self.int(
            "SELECT count(*) AS n FROM invitations WHERE inviter_id = ?1 AND claimed_by IS NULL AND expires_at > ?2",
            &[json!(inviter.0), json!(now)],
        ) as u32
    }

    fn append_entry(&mut self, e: &LedgerEntry) -> bool {
        let added = !self
            .run(
                "INSERT INTO ledger (participant_id, points, reason, source_event, referral_id, idempotency_key, at, config_version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
                &[
                    json!(e.participant.0),
                    json!(e.points),
                    text(&e.reason),
                    opt(e.source_event.as_deref()),
                    json!(e.referral.map(|r| r.0)),
                    json!(e.idempotency_key),
                    json!(e.at),
                    json!(e.config_version),
                ],
            )
            .is_empty();
        if added {
            // The kept score moved with the entry (`ledger_moves_score`).
            self.touch(e.participant, |p| p.score += e.points);
        }
        added
    }

    fn repeats(&self, id: ParticipantId, rule: &str) -> u32 {
        let key = (id.0, rule.to_owned());
        if let Some(n) = self.rows.repeats.borrow().get(&key) {
            return *n;
        }
        let n = self.int(
            "SELECT coalesce(max(n), 0) AS n FROM rule_repeats WHERE participant_id = ?1 AND rule_id = ?2",
            &[json!(id.0), json!(rule)],
        ) as u32;
        self.rows.repeats.borrow_mut().insert(key, n);
        n
    }

    fn set_repeats(&mut self, id: ParticipantId, rule: &str, n: u32) {
        self.run(
            "INSERT INTO rule_repeats (participant_id, rule_id, n) VALUES (?1, ?2, ?3)
             ON CONFLICT (participant_id, rule_id) DO UPDATE SET n = excluded.n",
            &[json!(id.0), json!(rule), json!(n)],
        );
        self.rows.repeats.borrow_mut().insert((id.0, rule.to_owned()), n);
    }

    fn score(&self, id: ParticipantId) -> i64 {
        self.person(id).map_or(0, |p| p.score)
    }

    fn board_add(&mut self, id: ParticipantId, joined_at: Millis, delta: i64, at: Millis) {
        if self.is_erased(id) {
            return;
        }
        // Every window of the boards in one statement.
        let keys = self.period_keys(at);
        self.run(
            "INSERT INTO scores (period, participant_id, score, joined_at)
             SELECT value, ?2, ?3, ?4 FROM json_each(?1) WHERE true
             ON CONFLICT (period, participant_id) DO UPDATE SET score = score + excluded.score",
            &[text(&keys), json!(id.0), json!(delta), json!(joined_at)],
        );
    }

    fn board_top(&self, period: Period, n: usize, now: Millis) -> Vec<Row> {
        if !self.periods.contains(&period) {
            return Vec::new();
        }
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        self.rows::<BoardRow>(
            "SELECT participant_id, score FROM scores WHERE period = ?1
             ORDER BY score DESC, joined_at, participant_id LIMIT ?2",
            &[json!(period_key(period, now)), json!(limit)],
        )
        .into_iter()
        .enumerate()
        .map(|(i, r)| Row {
            rank: i as u64 + 1,
            participant: ParticipantId(r.participant_id as u64),
            score: r.score,
        })
        .collect()
    }

    fn next_grant_id(&self) -> GrantId {
        GrantId(self.int("SELECT coalesce(max(id) + 1, 1) AS n FROM grants", &[]) as u64)
    }

    fn grant(&self, id: GrantId) -> Option<Grant> {
        self.grants_where("id = ?1", &[json!(id.0)]).into_iter().next()
    }

    fn has_grant_key(&self, key: &str) -> bool {
        self.int(
            "SELECT count(*) AS n FROM grants WHERE idempotency_key = ?1",
            &[json!(key)],
        ) > 0
    }

    fn token_taken(&self, token: &str) -> bool {
        self.int("SELECT count(*) AS n FROM grants WHERE token = ?1", &[json!(token)]) > 0
    }

    fn insert_grant(&mut self, g: &Grant) {
        let referral = match g.source {
            GrantSource::Referee { referral } => json!(referral.0),
            _ => Value::Null,
        };
        self.run(
            "INSERT INTO grants (id, participant_id, reward_id, source, referral_id, status, token, value_minor, currency,
               earned_at, expires_at, idempotency_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            &[
                json!(g.id.0),
                json!(g.participant.0),
                json!(g.reward),
                text(&g.source),
                referral,
                json!(g.status),
                opt(g.token.as_deref()),
                json!(g.value.as_ref().map(|v| v.amount_minor)),
                opt(g.value.as_ref().map(|v| v.currency.as_str())),
                json!(g.earned_at),
                json!(g.expires_at),
                json!(g.idempotency_key),
            ],
        );
        for t in &g.history {
            self.insert_transition(g.id, t);
        }
    }

    fn update_grant(&mut self, g: &Grant) {
        self.run(
            "UPDATE grants SET status = ?2 WHERE id = ?1",
            &[json!(g.id.0), json!(g.status)],
        );
        if let Some(t) = g.history.last() {
            self.insert_transition(g.id, t);
        }
    }

    fn cap_usage(&self, reward: &str, budget_currency: Option<&str>, to: ParticipantId) -> CapUsage {
        #[derive(Deserialize)]
        struct Usage {
            winners: i64,
            is_winner: i64,
            spent: i64,
            of_reward: i64,
        }
        let sql = format!(
            "SELECT count(DISTINCT participant_id) AS winners,
                    coalesce(max(participant_id = ?3), 0) AS is_winner,
                    coalesce(sum(CASE WHEN currency = ?2 THEN value_minor ELSE 0 END), 0) AS spent,
                    coalesce(sum(reward_id = ?1), 0) AS of_reward
             FROM grants WHERE status IN {LIVE}"
        );
        let u = self.one::<Usage>(&sql, &[json!(reward), opt(budget_currency), json!(to.0)]);
        u.map_or_else(CapUsage::default, |u| CapUsage {
            winners: u.winners as u32,
            is_winner: u.is_winner != 0,
            spent_minor: u.spent,
            grants_of_reward: u.of_reward as u32,
        })
    }

    fn referee_grants(&self, referral: ReferralId) -> Vec<Grant> {
        self.grants_where("referral_id = ?1", &[json!(referral.0)])
    }

    fn due_grants(&self, now: Millis) -> Vec<Grant> {
        self.grants_where(
            "expires_at IS NOT NULL AND expires_at <= ?1 AND status IN ('earned', 'pending_review', 'approved', 'fulfilled')",
            &[json!(now)],
        )
    }

    fn live_grants(&self) -> Vec<Grant> {
        self.grants_where(&format!("status IN {LIVE}"), &[])
    }

    fn hold(&mut self, referral: ReferralId, e: &HeldEvent) {
        self.run(
            "INSERT INTO held_events (referral_id, event_id, name, trusted, at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT DO NOTHING",
            &[
                json!(referral.0),
                json!(e.id),
                json!(e.name),
                json!(i64::from(e.trusted)),
                json!(e.at),
            ],
        );
    }

    fn take_held(&mut self, referral: ReferralId) -> Vec<HeldEvent> {
        let held = self
            .rows::<HeldRow>(
                "SELECT event_id, name, trusted, at FROM held_events WHERE referral_id = ?1 ORDER BY id",
                &[json!(referral.0)],
            )
            .into_iter()
            .map(|h| HeldEvent {
                id: h.event_id,
                name: h.name,
                trusted: h.trusted != 0,
                at: h.at,
            })
            .collect();
        self.run("DELETE FROM held_events WHERE referral_id = ?1", &[json!(referral.0)]);
        held
    }

    fn add_click(&mut self, code: &str, participant: ParticipantId, at: Millis) {
        self.run(
            "INSERT INTO clicks (participant_id, code, at) VALUES (?1, ?2, ?3)",
            &[json!(participant.0), json!(code), json!(at)],
        );
    }

    fn ended(&self) -> bool {
        self.int("SELECT count(*) AS n FROM meta WHERE key = 'ended'", &[]) > 0
    }

    fn set_ended(&mut self) {
        self.run(
            "INSERT INTO meta (key, value) VALUES ('ended', '1') ON CONFLICT DO NOTHING",
            &[],
        );
    }

    fn top_before(&self) -> Vec<ParticipantId> {
        #[derive(Deserialize)]
        struct Meta {
            value: String,
        }
        self.one::<Meta>("SELECT value FROM meta WHERE key = 'top_before'", &[])
            .and_then(|m| serde_json::from_str(&m.value).ok())
            .unwrap_or_default()
    }

    fn set_top_before(&mut self, top: &[ParticipantId]) {
        self.run(
            "INSERT INTO meta (key, value) VALUES ('top_before', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[text(&top)],
        );
    }
}

impl<C: Sql> SqlStore<'_, C> {
    fn insert_transition(&self, grant: GrantId, t: &Transition) {
        self.run(
            "INSERT INTO grant_transitions (grant_id, from_status, to_status, at, note) VALUES (?1, ?2, ?3, ?4, ?5)",
            &[
                json!(grant.0),
                json!(t.from),
                json!(t.to),
                json!(t.at),
                opt(t.note.as_deref()),
            ],
        );
    }
}
