//! A campaign, answered where its state lives: the single writer of one
//! campaign's SQLite database. In the worker that is the campaign's Durable
//! Object (`glue.rs` hands it a `transactionSync` over `ctx.storage.sql`);
//! natively, rusqlite. Either way the same `handle` runs: the engine
//! (`Machine` over `SqlStore`) for every write, and the views the API shows
//! (stats, leaderboard, admin lists) read from the same tables.
//!
//! The worker sends one `Call` per campaign per request, whatever the number
//! of events in it.

use refloop_core::engine::config::{Period, Versioned};
use refloop_core::engine::machine::{EngineEvent, Input, Machine, Notice, Outcome};
use refloop_core::engine::model::*;
use refloop_core::engine::quest;
use refloop_core::engine::rewards::{Codes, GrantStatus, times_reached};
use refloop_core::engine::sql_store::{Rows, Sql, SqlStore, period_key};
use refloop_core::engine::store::Store;
use refloop_core::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Who the campaign is, as the directory (D1) knows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CampaignMeta {
    pub id: i64,
    pub tenant_id: i64,
    pub slug: String,
}

/// One request to a campaign.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    pub campaign: CampaignMeta,
    /// The configuration version that is current (the directory's).
    pub version: u32,
    /// Server time: every window, date and tie is decided by it.
    pub now: Millis,
    /// 32 bytes from the worker's CSPRNG, hex: the campaign's secret for its
    /// codes if it has none yet (its first call).
    #[serde(default)]
    pub entropy: String,
    pub op: Op,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Events of one request that reach this campaign, in order.
    Events {
        events: Vec<EngineEvent>,
    },
    Click {
        code: String,
        /// Who clicked (the salted IP hash): one click per visitor, code and day.
        #[serde(default)]
        visitor: Option<String>,
    },
    Invite {
        anonymous_id: Option<String>,
        user_id: Option<String>,
    },
    /// Public stats of a code, or of the caller's identity (`me`).
    Stats {
        code: Option<String>,
        anonymous_id: Option<String>,
        user_id: Option<String>,
    },
    Leaderboard {
        period: Period,
        limit: u32,
        around: Option<String>,
    },
    Participants {
        q: String,
        limit: u32,
    },
    Ledger {
        participant: u64,
        limit: u32,
    },
    Adjust {
        participant: u64,
        points: i64,
        note: String,
        key: String,
    },
    Erase {
        participant: u64,
    },
    /// Erase whoever these identities name (a person across the tenant's
    /// campaigns: the worker asks each); answers every identity they had.
    ErasePerson {
        anonymous_ids: Vec<String>,
        user_ids: Vec<String>,
    },
    /// The money the campaign's rewards stand for, per currency and status,
    /// against its budget.
    Money,
    /// Referrals and confirmations by where the signup came from.
    Sources,
    /// Why events did not count (refused referrals, withheld rewards), newest
    /// first; `q` an anonymous id, user id or code (empty: all).
    Answers {
        q: String,
        limit: u32,
    },
    /// Everything the campaign keeps about whoever these identities name
    /// (the right of access).
    Person {
        anonymous_ids: Vec<String>,
        user_ids: Vec<String>,
    },
    Referrals {
        status: String,
        review: String,
        limit: u32,
    },
    Review {
        referral: u64,
        approve: bool,
    },
    Grants {
        status: String,
        limit: u32,
    },
    Transition {
        grant: u64,
        to: GrantStatus,
        note: Option<String>,
    },
    /// A reward given by hand (once per `key`).
    Grant {
        participant: u64,
        reward: String,
        key: String,
    },
    /// A checkout's coupon or exchange token: checked, or redeemed once.
    Redeem {
        token: String,
        check: bool,
    },
    Snapshot {
        period: Period,
    },
    Snapshots {
        limit: u32,
    },
    Funnel,
    Trend {
        from: Millis,
        to: Millis,
    },
    Export,
    /// Expire overdue referrals and grants.
    Tick,
    /// Run the end distributions (the seed is the raffle's, and is recorded).
    End {
        seed: u64,
    },
    /// Every invariant of the ledger restated from the tables, and row counts.
    Check,
    /// The campaign's inputs run again under configuration `version`: the
    /// correcting ledger entries, previewed, or appended with `apply`.
    Replay {
        version: u32,
        apply: bool,
    },
    /// The notices of the object's outbox (oldest first, at most 500).
    Outbox,
    /// The outbox's notices up to `through` reached the directory's outbox.
    OutboxSent {
        through: i64,
    },
}

impl Op {
    /// Whether the op writes (it then runs in one transaction).
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            Op::Stats { .. }
                | Op::Leaderboard { .. }
                | Op::Participants { .. }
                | Op::Ledger { .. }
                | Op::Referrals { .. }
                | Op::Grants { .. }
                | Op::Snapshots { .. }
                | Op::Funnel
                | Op::Trend { .. }
                | Op::Export
                | Op::Check
                | Op::Person { .. }
                | Op::Answers { .. }
                | Op::Money
                | Op::Sources
                | Op::Redeem { check: true, .. }
                | Op::Replay { apply: false, .. }
                | Op::Outbox
        )
    }
}

/// What the worker does with an `Events` call's answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EventsReply {
    /// Webhook notices, ready for the outbox: (type, payload).
    pub notices: Vec<(String, Value)>,
    /// Referral codes of everyone who joined or signed up in these events, for
    /// the directory of links (`/r/{code}` and attribution find the campaign).
    pub codes: Vec<String>,
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::NotFound, message)
}

fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Conflict, message)
}

fn internal(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Internal, message)
}

/// The webhook body of a notice (`webhooks::Payload`) and its type's name.
pub fn notice_payload(campaign: &CampaignMeta, n: &Notice, at: Millis) -> (String, Value) {
    let payload = crate::webhooks::Payload::of(n, &campaign.slug, &crate::app::iso(at));
    (
        crate::app::name_of(&payload.kind),
        serde_json::to_value(&payload).unwrap_or(Value::Null),
    )
}

/// Answers one call, starting from the rows `kept` from earlier calls and
/// leaving this call's there when it succeeds (emptied when it fails). Write
/// ops must run inside one transaction of the caller's: an `Err` means roll
/// back.
pub fn handle(sql: &impl Sql, versions: &[Versioned], call: &Call, kept: &mut Rows) -> Result<Value, ApiError> {
    let current = versions
        .iter()
        .rposition(|v| v.version == call.version)
        .ok_or_else(|| internal(format!("campaign {} has no version {}", call.campaign.id, call.version)))?;
    let versions = &versions[..=current];
    let config = &versions[current].config;
    let mut store = SqlStore::with_rows(sql, &config.leaderboard.periods, std::mem::take(kept));
    let codes = codes_of(&store, &call.entropy)?;
    let campaign = CampaignId(call.campaign.id as u64);
    let now = call.now;
    let view = View {
        sql,
        versions,
        campaign: &call.campaign,
        now,
    };
    let result = {
        let mut engine = Machine::new(&mut store, versions, campaign, &codes);
        match &call.op {
            Op::Events { events } => {
                // The top N is looked at once for the call, after its last event.
                let mut reply = EventsReply::default();
                let mut logged = Vec::with_capacity(events.len());
                let keys: Vec<String> = events.iter().map(|e| e.key().into_owned()).collect();
                engine.store.prefetch_seen(&keys);
                for e in events {
                    let input = Input::Event(Box::new(e.clone()));
                    let out = engine.decide(&input);
                    // A duplicate changed nothing: the log (what a replay runs) keeps the first.
                    if !out.duplicate {
                        logged.push(input);
                    }
                    keep_answers(sql, e, &out)?;
                    if let (Some(r), Some(source)) = (out.referral, &e.source) {
                        view.rows(
                            "INSERT INTO referral_sources (referral_id, source) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                            &[json!(r.0), json!(source)],
                        )?;
                    }
                    // A resent join answers its code again, so a directory write
                    // lost after the first answer is made good by the retry.
                    let actor = out
                        .participant
                        .or_else(|| engine.store.find(e.anonymous_id.as_deref(), e.user_id.as_deref()));
                    if e.joins()
                        && let Some(p) = actor.and_then(|p| engine.store.participant(p))
                    {
                        reply.codes.push(p.code);
                    }
                    collect(&call.campaign, &out, e.at, &mut reply);
                }
                engine.store.log_inputs(&logged);
                let mut top = Outcome::default();
                engine.note_top_n(&mut top);
                collect(&call.campaign, &top, now, &mut reply);
                Ok(serde_json::to_value(reply).unwrap_or(Value::Null))
            }
            Op::Click { code, visitor } => {
                // The same visitor's clicks on one code count once a day (a
                // reload, or a script, is no new interest).
                let first_today = match visitor {
                    None => true,
                    Some(v) => !view
                        .rows(
                            "INSERT INTO click_visitors (code, visitor, day) VALUES (?1, ?2, ?3)
                             ON CONFLICT DO NOTHING RETURNING day",
                            &[json!(code), json!(v), json!(now / DAY_MS)],
                        )?
                        .is_empty(),
                };
                let known = match first_today {
                    true => {
                        let input = Input::Click {
                            code: code.clone(),
                            at: now,
                        };
                        run(&mut engine, input).refusal.is_none()
                    }
                    false => engine.store.by_code(code).is_some(),
                };
                match known {
                    false => Err(not_found("no such referral code")),
                    true => Ok(json!({"landing_url": config.landing_url})),
                }
            }
            Op::Invite { anonymous_id, user_id } => {
                let p = engine
                    .store
                    .find(anonymous_id.as_deref(), user_id.as_deref())
                    .ok_or_else(|| not_found("not a participant of this campaign yet (sign up first)"))?;
                let out = run(
                    &mut engine,
                    Input::Invite {
                        participant: p,
                        at: now,
                    },
                );
                if let Some(e) = out.error {
                    return Err(conflict(e));
                }
                let inv = out.invitation.ok_or_else(|| internal("no invitation was minted"))?;
                Ok(json!({"token": inv.token, "expires_at": iso(Some(inv.expires_at))}))
            }
            Op::Adjust {
                participant,
                points,
                note,
                key,
            } => {
                let p = ParticipantId(*participant);
                let out = run(
                    &mut engine,
                    Input::Adjust {
                        participant: p,
                        points: *points,
                        note: note.clone(),
                        key: key.clone(),
                        at: now,
                    },
                );
                if let Some(e) = out.error {
                    return Err(if engine.store.is_erased(p) {
                        conflict("this participant was erased")
                    } else {
                        not_found(format!("{e} in this campaign"))
                    });
                }
                let notices = notices_of(&call.campaign, &out, now);
                Ok(json!({
                    "participant": p.0, "points": points, "score": engine.store.score(p),
                    "idempotency_key": key, "duplicate": out.duplicate, "notices": notices,
                }))
            }
            Op::Erase { participant } => {
                let p = ParticipantId(*participant);
                if engine.store.participant(p).is_none() {
                    return Err(not_found("no such participant in this campaign"));
                }
                let (anonymous, users) = identities_of(sql, p)?;
                let out = run(
                    &mut engine,
                    Input::Erase {
                        participant: p,
                        at: now,
                    },
                );
                if let Some(e) = out.error {
                    return Err(not_found(e));
                }
                forget_everywhere(sql, p, &anonymous, &users)?;
                Ok(json!({
                    "participant": p.0, "erased": true,
                    "anonymous_ids": anonymous, "user_ids": users,
                }))
            }
            Op::ErasePerson {
                anonymous_ids,
                user_ids,
            } => {
                let people = view.people_named(anonymous_ids, user_ids)?;
                let (mut anonymous, mut users) = (Vec::new(), Vec::new());
                for p in &people {
                    let (a, u) = identities_of(sql, *p)?;
                    let out = run(
                        &mut engine,
                        Input::Erase {
                            participant: *p,
                            at: now,
                        },
                    );
                    if let Some(e) = out.error {
                        return Err(internal(e));
                    }
                    forget_everywhere(sql, *p, &a, &u)?;
                    anonymous.extend(a);
                    users.extend(u);
                }
                Ok(json!({
                    "erased": people.iter().map(|p| p.0).collect::<Vec<_>>(),
                    "anonymous_ids": anonymous, "user_ids": users,
                }))
            }
            Op::Sources => {
                let rows = view.rows(
                    "SELECT coalesce(s.source, 'direct') AS source, count(*) AS referrals,
                       sum(r.status = 'confirmed') AS confirmed
                     FROM referrals r LEFT JOIN referral_sources s ON s.referral_id = r.id
                     GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 200",
                    &[],
                )?;
                let sources: Vec<Value> = rows
                    .iter()
                    .map(|r| json!({"source": txt(r, "source"), "referrals": int(r, "referrals"), "confirmed": int(r, "confirmed")}))
                    .collect();
                Ok(json!({ "sources": sources }))
            }
            Op::Money => {
                let rows = view.rows(
                    "SELECT currency, status, count(*) AS grants, sum(value_minor) AS amount_minor FROM grants
                     WHERE currency IS NOT NULL GROUP BY currency, status ORDER BY currency, status",
                    &[],
                )?;
                let mut by_currency: std::collections::BTreeMap<String, Map<String, Value>> = Default::default();
                for r in &rows {
                    let entry = by_currency.entry(txt(r, "currency")).or_default();
                    entry.insert(
                        txt(r, "status"),
                        json!({"grants": int(r, "grants"), "amount_minor": int(r, "amount_minor")}),
                    );
                }
                // What counts against a budget: every grant still worth something.
                let live = |m: &Map<String, Value>| -> i64 {
                    m.iter()
                        .filter(|(k, _)| GrantStatus::parse(k).is_some_and(GrantStatus::is_live))
                        .map(|(_, v)| v["amount_minor"].as_i64().unwrap_or(0))
                        .sum()
                };
                let currencies: Vec<Value> = by_currency
                    .iter()
                    .map(|(cur, m)| json!({"currency": cur, "by_status": m, "committed_minor": live(m)}))
                    .collect();
                let budget = config.caps.budget.as_ref().map(|b| {
                    let used = by_currency.get(&b.currency).map_or(0, live);
                    json!({"currency": b.currency, "amount_minor": b.amount_minor, "committed_minor": used,
                           "left_minor": b.amount_minor - used})
                });
                Ok(json!({"currencies": currencies, "budget": budget}))
            }
            Op::Answers { q, limit } => {
                let rows = view.rows(
                    "SELECT at, event_id, anonymous_id, user_id, code, kind, reason FROM answers
                     WHERE ?1 = '' OR anonymous_id = ?1 OR user_id = ?1 OR code = upper(?1) ORDER BY id DESC LIMIT ?2",
                    &[json!(q.trim()), json!(limit)],
                )?;
                let answers: Vec<Value> = rows
                    .iter()
                    .map(|r| {
                        json!({
                            "at": iso(r.get("at").and_then(Value::as_i64)), "event_id": get(r, "event_id"),
                            "anonymous_id": get(r, "anonymous_id"), "user_id": get(r, "user_id"),
                            "code": get(r, "code"), "kind": txt(r, "kind"), "reason": txt(r, "reason"),
                        })
                    })
                    .collect();
                Ok(json!({ "answers": answers }))
            }
            Op::Person {
                anonymous_ids,
                user_ids,
            } => {
                let people = view.people_named(anonymous_ids, user_ids)?;
                let mut records = Vec::new();
                for p in people {
                    records.push(view.person_record(p)?);
                }
                Ok(json!({ "participants": records }))
            }
            Op::Review { referral, approve } => {
                let out = run(
                    &mut engine,
                    Input::Review {
                        referral: ReferralId(*referral),
                        approve: *approve,
                        at: now,
                    },
                );
                match out.error {
                    Some(e) if e.starts_with("no such") => Err(not_found(format!("{e} in this campaign"))),
                    Some(e) => Err(conflict(e)),
                    None => {
                        let moved = out
                            .notices
                            .iter()
                            .filter(|n| matches!(n, Notice::RewardStatusChanged { .. } | Notice::RewardEarned { .. }))
                            .count();
                        let notices = notices_of(&call.campaign, &out, now);
                        Ok(json!({"referral": referral, "approved": approve, "grants": moved, "notices": notices}))
                    }
                }
            }
            Op::Transition { grant, to, note } => {
                let out = run(
                    &mut engine,
                    Input::Transition {
                        grant: GrantId(*grant),
                        to: *to,
                        at: now,
                        note: note.clone(),
                    },
                );
                match out.error {
                    Some(e) if e.starts_with("no such") => Err(not_found(format!("{e} in this campaign"))),
                    Some(e) => Err(conflict(e)),
                    None => {
                        let mut g = view.grant(*grant).ok_or_else(|| internal("the grant vanished"))?;
                        g["notices"] = json!(notices_of(&call.campaign, &out, now));
                        Ok(g)
                    }
                }
            }
            Op::Grant {
                participant,
                reward,
                key,
            } => {
                let input = Input::Grant {
                    participant: ParticipantId(*participant),
                    reward: reward.clone(),
                    key: key.clone(),
                    at: now,
                };
                let out = run(&mut engine, input);
                if let Some(e) = out.error {
                    return Err(not_found(e));
                }
                if let Some(cap) = out.capped.first() {
                    return Err(conflict(format!("withheld by a cap: {cap:?}")));
                }
                let grant = out.grants.first().and_then(|g| view.grant(g.0));
                Ok(json!({
                    "duplicate": out.duplicate, "grant": grant,
                    "notices": notices_of(&call.campaign, &out, now),
                }))
            }
            Op::Redeem { token, check } => {
                let token = token.trim().to_ascii_uppercase();
                let found = view.rows("SELECT id, status FROM grants WHERE token = ?1", &[json!(token)])?;
                let row = found
                    .first()
                    .ok_or_else(|| not_found("no such token in this campaign"))?;
                let id = int(row, "id") as u64;
                let status = GrantStatus::parse(&txt(row, "status")).unwrap_or(GrantStatus::Rejected);
                let refuse = match status {
                    GrantStatus::Redeemed => Some("this token was redeemed already"),
                    GrantStatus::Earned | GrantStatus::PendingReview => Some("this reward is not approved yet"),
                    GrantStatus::Rejected | GrantStatus::Expired | GrantStatus::Revoked => {
                        Some("this token is no longer valid")
                    }
                    GrantStatus::Approved | GrantStatus::Fulfilled => None,
                };
                match (refuse, check) {
                    (Some(why), _) => Err(conflict(why)),
                    (None, true) => Ok(json!({"valid": true, "grant": view.grant(id)})),
                    (None, false) => {
                        let mut notices = Vec::new();
                        // A checkout redeems what was approved: fulfilled, then redeemed.
                        let steps: &[GrantStatus] = match status {
                            GrantStatus::Approved => &[GrantStatus::Fulfilled, GrantStatus::Redeemed],
                            _ => &[GrantStatus::Redeemed],
                        };
                        for to in steps {
                            let input = Input::Transition {
                                grant: GrantId(id),
                                to: *to,
                                at: now,
                                note: Some("redeemed".into()),
                            };
                            let out = run(&mut engine, input);
                            if let Some(e) = out.error {
                                return Err(conflict(e));
                            }
                            notices.extend(notices_of(&call.campaign, &out, now));
                        }
                        Ok(json!({"redeemed": true, "grant": view.grant(id), "notices": notices}))
                    }
                }
            }
            Op::Tick => {
                view.rows("DELETE FROM click_visitors WHERE day < ?1", &[json!(now / DAY_MS - 1)])?;
                let out = run(&mut engine, Input::Tick { now });
                Ok(json!({"notices": notices_of(&call.campaign, &out, now)}))
            }
            Op::End { seed } => {
                let out = run(&mut engine, Input::End { at: now, seed: *seed });
                if let Some(e) = out.error {
                    return Err(conflict(e));
                }
                Ok(json!({
                    "seed": seed.to_string(),
                    "grants": out.grants.iter().map(|g| g.0).collect::<Vec<_>>(),
                    "capped": out.capped,
                    "notices": notices_of(&call.campaign, &out, now),
                }))
            }
            Op::Snapshot { period } => view.take_snapshot(*period),
            Op::Stats {
                code,
                anonymous_id,
                user_id,
            } => {
                let p = match code {
                    Some(c) => engine.store.by_code(c).filter(|p| !engine.store.is_erased(*p)),
                    None => engine.store.find(anonymous_id.as_deref(), user_id.as_deref()),
                };
                let p = p.ok_or_else(|| match code {
                    Some(_) => not_found("no such referral code in this campaign"),
                    None => not_found("not a participant of this campaign yet (sign up first)"),
                })?;
                view.stats(p)
            }
            Op::Leaderboard { period, limit, around } => view.leaderboard(*period, *limit, around.as_deref()),
            Op::Participants { q, limit } => view.participants(q, *limit),
            Op::Ledger { participant, limit } => view.ledger(ParticipantId(*participant), *limit),
            Op::Referrals { status, review, limit } => view.referrals(status, review, *limit),
            Op::Grants { status, limit } => view.grants(status, *limit),
            Op::Snapshots { limit } => view.snapshots(*limit),
            Op::Funnel => view.funnel(),
            Op::Trend { from, to } => view.trend(*from, *to),
            Op::Export => view.export(),
            Op::Check => view.check(),
            Op::Outbox => {
                let rows = view.rows(
                    "SELECT id, type, payload FROM outbox ORDER BY id LIMIT ?1",
                    &[json!(OUTBOX_PAGE)],
                )?;
                let through = rows.last().map_or(0, |r| int(r, "id"));
                let notices: Vec<Value> = rows
                    .iter()
                    .map(|r| json!([txt(r, "type"), parsed(r, "payload")]))
                    .collect();
                Ok(json!({"notices": notices, "through": through}))
            }
            Op::OutboxSent { through } => {
                view.rows("DELETE FROM outbox WHERE id <= ?1", &[json!(through)])?;
                Ok(json!({"through": through}))
            }
            Op::Replay { version, apply } => {
                let target = versions.iter().find(|v| v.version == *version).ok_or_else(|| {
                    // The campaign is there; the request names a state it never had.
                    let last = versions.last().map_or(0, |v| v.version);
                    conflict(format!("this campaign has versions 1 to {last}, not {version}"))
                })?;
                let inputs = engine.store.inputs();
                let ledger = engine.store.ledger();
                let replay_id = format!("{now}-v{version}");
                let fixes = engine.replay(&ledger, &inputs, target, &replay_id, now, *apply);
                Ok(replay_answer(&fixes, &replay_id, *version, *apply, inputs.len()))
            }
        }
    };
    let result = match store.failure() {
        Some(f) => Err(internal(format!("campaign {}: {f}", call.campaign.id))),
        None => result,
    };
    // The notices go to the object's outbox in the same transaction as the
    // effects they report, each with its key (`id`), before the answer.
    let result = match result {
        Ok(mut answer) if !matches!(call.op, Op::Outbox | Op::OutboxSent { .. }) => {
            keep_notices(sql, &call.campaign, &mut answer).map(|()| answer)
        }
        other => other,
    };
    if result.is_ok() {
        *kept = store.into_rows();
    }
    result
}

/// A day, for the once-a-day click of a visitor.
const DAY_MS: Millis = 86_400_000;

/// Notices the object hands the directory per `Op::Outbox`.
pub const OUTBOX_PAGE: usize = 500;

/// How often a campaign's object wakes by itself to expire what is overdue
/// (referrals past their quest window, grants past their expiry).
pub const TICK_MS: Millis = 15 * 60_000;
const _: () = assert!(
    TICK_MS > crate::alarm::SOON_MS,
    "the tick is the slow path, SOON the fast one"
);

/// When a campaign's object should next wake after `now`: at its `ends_at`
/// while it has not ended (the end distributions run then), and at least every
/// `TICK_MS`.
pub fn next_wake(config: &refloop_core::engine::config::CampaignConfig, ended: bool, now: Millis) -> Millis {
    let tick = now + TICK_MS;
    match config.ends_at {
        Some(end) if !ended => end.clamp(now, tick),
        _ => tick,
    }
}

/// The wire between the worker and a campaign's object: a `Call` as JSON in,
/// `(status, body)` out, the body the answer or the contract's error.
pub fn answer(sql: &impl Sql, versions: &[Versioned], call: &Call, kept: &mut Rows) -> (u16, String) {
    match handle(sql, versions, call, kept) {
        Ok(v) => (200, v.to_string()),
        Err(e) => (e.status(), e.to_json()),
    }
}

/// The worker's reading of an object's `(status, body)`.
pub fn read_answer(status: u16, body: &str) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_str(body).map_err(|e| internal(format!("a campaign answered {status}: {e}")))?;
    if status == 200 {
        return Ok(v);
    }
    let code = v["error"]["code"]
        .as_str()
        .and_then(ErrorCode::parse)
        .unwrap_or(ErrorCode::Internal);
    let message = v["error"]["message"]
        .as_str()
        .unwrap_or("the campaign failed")
        .to_owned();
    Err(ApiError::new(code, message))
}

/// Writes the answer's notices to the object's outbox and gives each its key.
fn keep_notices(sql: &impl Sql, campaign: &CampaignMeta, answer: &mut Value) -> Result<(), ApiError> {
    let Some(notices) = answer.get_mut("notices").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for n in notices {
        let Some(kind) = n.get(0).and_then(Value::as_str).map(str::to_owned) else {
            continue;
        };
        enrich_notice(sql, &mut n[1])?;
        let id = sql
            .exec(
                "INSERT INTO outbox (type, payload) VALUES (?1, '{}') RETURNING id",
                &[json!(kind)],
            )
            .map_err(|e| internal(format!("outbox: {e}")))?
            .first()
            .map_or(0, |r| int(r, "id"));
        n[1]["id"] = json!(format!("n-{}-{id}", campaign.id));
        sql.exec(
            "UPDATE outbox SET payload = ?2 WHERE id = ?1",
            &[json!(id), json!(n[1].to_string())],
        )
        .map_err(|e| internal(format!("outbox: {e}")))?;
    }
    Ok(())
}

/// The version of a notice's payload: receivers can tell what it holds.
pub const NOTICE_SCHEMA: u32 = 1;

/// What a webhook receiver needs beside the engine's ids: each participant's
/// code and user id (`participant_code`, `referrer_user_id`, …) and a grant's
/// reward, status and token, read when the notice is made.
fn enrich_notice(sql: &impl Sql, payload: &mut Value) -> Result<(), ApiError> {
    let fail = |e: String| internal(format!("notice: {e}"));
    let Value::Object(m) = payload else { return Ok(()) };
    m.insert("schema".into(), json!(NOTICE_SCHEMA));
    for key in ["participant", "referrer", "referee"] {
        let Some(id) = m.get(key).and_then(Value::as_i64) else {
            continue;
        };
        let rows = sql
            .exec("SELECT code, user_id FROM participants WHERE id = ?1", &[json!(id)])
            .map_err(fail)?;
        if let Some(r) = rows.first() {
            m.insert(format!("{key}_code"), get(r, "code"));
            m.insert(format!("{key}_user_id"), get(r, "user_id"));
        }
    }
    if let Some(id) = m.get("grant").and_then(Value::as_i64) {
        let rows = sql
            .exec(
                "SELECT g.reward_id, g.status, g.token, p.code, p.user_id FROM grants g
                 JOIN participants p ON p.id = g.participant_id WHERE g.id = ?1",
                &[json!(id)],
            )
            .map_err(fail)?;
        if let Some(r) = rows.first() {
            m.insert("reward".into(), get(r, "reward_id"));
            m.insert("token".into(), get(r, "token"));
            m.insert("participant_code".into(), get(r, "code"));
            m.insert("participant_user_id".into(), get(r, "user_id"));
        }
    }
    Ok(())
}

/// Applies one input and keeps it in the campaign's log of inputs.
fn run<C: Sql>(engine: &mut Machine<'_, SqlStore<'_, C>>, input: Input) -> Outcome {
    let out = engine.apply(&input);
    engine.store.log_input(&input);
    out
}

/// The campaign's codes, keyed by its secret (kept on its first call).
fn codes_of<C: Sql>(store: &SqlStore<'_, C>, entropy: &str) -> Result<Codes, ApiError> {
    let secret = store.secret(entropy);
    let bytes: Vec<u8> = (0..secret.len() / 2)
        .filter_map(|i| u8::from_str_radix(secret.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    let secret: [u8; 32] = bytes
        .try_into()
        .map_err(|_| internal("the campaign has no secret for its codes (no entropy was sent)"))?;
    Ok(Codes::new(secret))
}

/// Erasure reaches the log of inputs too: the person's events keep only a
/// pseudonym (`erased:<id>`, so a replay still links them) and lose their
/// traits and hashes.
/// Why an event did not count, kept for the operator's "why didn't my
/// referral count?": the refusal of its referral, the rewards a cap withheld.
fn keep_answers(sql: &impl Sql, e: &EngineEvent, out: &Outcome) -> Result<(), ApiError> {
    let code = e
        .touch
        .as_ref()
        .and_then(|t| t.code.clone().or_else(|| t.invitation.clone()));
    let answers = out
        .refusal
        .map(|r| ("refused", r.as_str().to_owned()))
        .into_iter()
        .chain(out.capped.iter().map(|c| ("withheld", c.clone())));
    for (kind, reason) in answers {
        sql.exec(
            "INSERT INTO answers (at, event_id, anonymous_id, user_id, code, kind, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &[
                json!(e.at),
                json!(e.id),
                json!(e.anonymous_id),
                json!(e.user_id),
                json!(code),
                json!(kind),
                json!(reason),
            ],
        )
        .map_err(|e| internal(format!("answers: {e}")))?;
    }
    Ok(())
}

/// Every identity a participant had: (anonymous ids, user ids), read
/// before an erasure deletes them.
fn identities_of(sql: &impl Sql, p: ParticipantId) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let rows = sql
        .exec(
            "SELECT kind, value FROM identities WHERE participant_id = ?1 ORDER BY kind, value",
            &[json!(p.0)],
        )
        .map_err(|e| internal(format!("identities: {e}")))?;
    let of = |kind: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| txt(r, "kind") == kind)
            .map(|r| txt(r, "value"))
            .collect()
    };
    Ok((of("anonymous"), of("user")))
}

/// The rest of an erasure, beyond the engine's: every device's and user id's
/// trace in the input log (pseudonymised, traits and hashes removed), and
/// the free text written about them (adjustment notes in the ledger, grant
/// transition notes). The ledger's numbers stay, so every sum stays true.
fn forget_everywhere(sql: &impl Sql, p: ParticipantId, anonymous: &[String], users: &[String]) -> Result<(), ApiError> {
    let fail = |e: String| internal(format!("erasure: {e}"));
    let pseudonym = format!("erased:{}", p.0);
    for (field, values) in [("anonymous_id", anonymous), ("user_id", users)] {
        for value in values {
            sql.exec(
                &format!(
                    "UPDATE inputs SET input = json_remove(json_set(input, '$.{field}', ?2),
                       '$.traits', '$.email_hash', '$.email_domain', '$.ip_hash', '$.device_id')
                     WHERE json_extract(input, '$.{field}') = ?1"
                ),
                &[json!(value), json!(pseudonym)],
            )
            .map_err(fail)?;
        }
    }
    for (field, values) in [("anonymous_id", anonymous), ("user_id", users)] {
        sql.exec(
            &format!("UPDATE answers SET anonymous_id = NULL, user_id = NULL WHERE {field} IN (SELECT value FROM json_each(?1))"),
            &[json!(json!(values).to_string())],
        )
        .map_err(fail)?;
    }
    sql.exec(
        "UPDATE ledger SET reason = json_set(reason, '$.note', '[erased]')
         WHERE participant_id = ?1 AND json_extract(reason, '$.note') IS NOT NULL",
        &[json!(p.0)],
    )
    .map_err(fail)?;
    sql.exec(
        "UPDATE grant_transitions SET note = NULL
         WHERE note IS NOT NULL AND grant_id IN (SELECT id FROM grants WHERE participant_id = ?1)",
        &[json!(p.0)],
    )
    .map_err(fail)?;
    Ok(())
}

/// What a replay answers: the corrections it found (and appended, if asked).
fn replay_answer(fixes: &[LedgerEntry], replay_id: &str, version: u32, apply: bool, inputs: usize) -> Value {
    let total: i64 = fixes.iter().map(|f| f.points).sum();
    json!({
        "version": version,
        "replay": replay_id,
        "applied": apply,
        "inputs": inputs,
        "points": total,
        "corrections": fixes.iter().map(|f| json!({
            "participant": f.participant.0, "points": f.points,
            "corrects": match &f.reason { EntryReason::Correction { corrects, .. } => corrects.clone(), _ => String::new() },
        })).collect::<Vec<_>>(),
    })
}

fn collect(campaign: &CampaignMeta, out: &Outcome, at: Millis, reply: &mut EventsReply) {
    reply
        .notices
        .extend(out.notices.iter().map(|n| notice_payload(campaign, n, at)));
}

fn notices_of(campaign: &CampaignMeta, out: &Outcome, at: Millis) -> Vec<(String, Value)> {
    out.notices.iter().map(|n| notice_payload(campaign, n, at)).collect()
}

/// A name the public may see: a first name and an initial from the `name`
/// trait, else the code with most of it hidden.
pub fn masked_name(traits: &str, code: &str) -> String {
    let traits: Map<String, Value> = serde_json::from_str(traits).unwrap_or_default();
    if let Some(name) = traits.get("name").and_then(Value::as_str) {
        // Never publish what looks like an address: an email, a URL, a
        // domain, a handle (a first word with `@`, `/`, `:` or `.` in it).
        let mut words = name.split_whitespace();
        if let Some(first) = words.next().filter(|w| !w.contains(['@', '/', ':', '.'])) {
            let first: String = first.chars().take(24).collect();
            return match words.last().and_then(|l| l.chars().next()) {
                Some(initial) => format!("{first} {initial}."),
                None => first,
            };
        }
    }
    format!("{}•••", code.chars().take(3).collect::<String>())
}

/// The read side: the API's views of the campaign's tables.
struct View<'a, C: Sql> {
    sql: &'a C,
    versions: &'a [Versioned],
    campaign: &'a CampaignMeta,
    now: Millis,
}

/// A time the contract writes (RFC 3339), or null.
fn iso(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |m| Value::String(crate::app::iso(m)))
}

fn int(r: &Map<String, Value>, k: &str) -> i64 {
    r.get(k).and_then(Value::as_i64).unwrap_or(0)
}

fn txt(r: &Map<String, Value>, k: &str) -> String {
    r.get(k).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn get(r: &Map<String, Value>, k: &str) -> Value {
    r.get(k).cloned().unwrap_or(Value::Null)
}

fn parsed(r: &Map<String, Value>, k: &str) -> Value {
    serde_json::from_str(&txt(r, k)).unwrap_or(Value::Null)
}

impl<C: Sql> View<'_, C> {
    fn rows(&self, sql: &str, args: &[Value]) -> Result<Vec<Map<String, Value>>, ApiError> {
        self.sql
            .exec(sql, args)
            .map_err(|e| internal(format!("campaign {}: {e}", self.campaign.id)))
    }

    fn config(&self) -> &refloop_core::engine::config::CampaignConfig {
        &self.versions[self.versions.len() - 1].config
    }

    /// Rank on the board of `period` (now), `None` while the score is zero.
    fn rank(&self, period: Period, p: i64) -> Result<Option<(u64, i64, i64)>, ApiError> {
        let key = period_key(period, self.now);
        let rows = self.rows(
            "SELECT s.score, s.joined_at, 1 + (SELECT count(*) FROM scores t WHERE t.period = s.period
               AND (t.score > s.score OR (t.score = s.score AND (t.joined_at < s.joined_at
                 OR (t.joined_at = s.joined_at AND t.participant_id < s.participant_id))))) AS rank
             FROM scores s WHERE s.period = ?1 AND s.participant_id = ?2 AND s.score > 0",
            &[json!(key), json!(p)],
        )?;
        Ok(rows
            .first()
            .map(|r| (int(r, "rank") as u64, int(r, "score"), int(r, "joined_at"))))
    }

    fn stats(&self, p: ParticipantId) -> Result<Value, ApiError> {
        let id = p.0 as i64;
        let person = self
            .rows("SELECT * FROM participants WHERE id = ?1", &[json!(id)])?
            .into_iter()
            .next()
            .ok_or_else(|| not_found("no such participant"))?;
        let confirmed = int(&person, "confirmed") as u32;
        let referrals = self.rows(
            "SELECT status, count(*) AS n FROM referrals WHERE referrer_id = ?1 GROUP BY status",
            &[json!(id)],
        )?;
        let count = |status: &str| -> i64 {
            referrals
                .iter()
                .filter(|r| txt(r, "status") == status)
                .map(|r| int(r, "n"))
                .sum()
        };
        let clicks = self
            .rows(
                "SELECT count(*) AS n FROM clicks WHERE participant_id = ?1",
                &[json!(id)],
            )?
            .first()
            .map_or(0, |r| int(r, "n"));
        let rank = self.rank(Period::All, id)?;
        let grants = self.rows(
            "SELECT reward_id, status, earned_at, token FROM grants WHERE participant_id = ?1 ORDER BY earned_at, id",
            &[json!(id)],
        )?;
        let config = self.config();
        let milestones: Vec<Value> = config
            .milestones
            .iter()
            .map(|m| {
                json!({
                    "id": m.id, "name": m.name, "at": m.confirmed_referrals, "every": m.every,
                    "reached": times_reached(m, confirmed) > 0,
                })
            })
            .collect();
        let next = config
            .milestones
            .iter()
            .filter(|m| m.every.is_none() && m.confirmed_referrals > confirmed)
            .min_by_key(|m| m.confirmed_referrals)
            .map(|m| json!({"id": m.id, "name": m.name, "at": m.confirmed_referrals, "remaining": m.confirmed_referrals - confirmed}));
        let referral = self.rows(
            "SELECT status, done_mask, config_version FROM referrals WHERE referee_id = ?1",
            &[json!(id)],
        )?;
        let quest_progress = referral.first().map(|r| {
            let mask = int(r, "done_mask") as u32;
            let steps: Vec<Value> = config
                .quest
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| json!({"event": s.event, "done": mask & (1 << i) != 0}))
                .collect();
            json!({
                "status": txt(r, "status"),
                "steps": steps,
                "done": quest::progress(mask, config.quest.steps.len()),
            })
        });
        let code = txt(&person, "code");
        Ok(json!({
            "campaign": self.campaign.slug,
            "code": code,
            "link": format!("/r/{code}"),
            "clicks": clicks,
            "referrals": {
                "pending": count("pending"),
                "confirmed": confirmed,
                "rejected": count("rejected"),
                "expired": count("expired"),
            },
            "points": int(&person, "score"),
            "rank": rank.map(|r| r.0),
            "tier": refloop_core::engine::rewards::tier(config, confirmed),
            "milestones": milestones,
            "next_milestone": next,
            "rewards": grants.iter().map(|g| json!({
                "reward": txt(g, "reward_id"),
                "name": config.reward(&txt(g, "reward_id")).map(|r| r.name.clone()),
                "status": txt(g, "status"),
                "earned_at": iso(g.get("earned_at").and_then(Value::as_i64)),
            })).collect::<Vec<_>>(),
            "quest": quest_progress,
            "share_text": config.share_text,
            "mode": config.mode,
        }))
    }

    fn board_row(rank: u64, r: &Map<String, Value>) -> Value {
        json!({
            "rank": rank, "name": masked_name(&txt(r, "traits"), &txt(r, "code")),
            "score": int(r, "score"), "code": txt(r, "code"),
        })
    }

    fn leaderboard(&self, period: Period, limit: u32, around: Option<&str>) -> Result<Value, ApiError> {
        let key = period_key(period, self.now);
        let top = self.rows(
            "SELECT s.participant_id, s.score, p.code, p.traits FROM scores s JOIN participants p ON p.id = s.participant_id
             WHERE s.period = ?1 AND s.score > 0 ORDER BY s.score DESC, s.joined_at, s.participant_id LIMIT ?2",
            &[json!(key), json!(limit)],
        )?;
        let top: Vec<Value> = top
            .iter()
            .enumerate()
            .map(|(i, r)| Self::board_row(i as u64 + 1, r))
            .collect();
        let mut body = json!({
            "campaign": self.campaign.slug,
            "score_by": self.config().leaderboard.score_by,
            "top": top,
        });
        if let Some(code) = around {
            let me = self
                .rows(
                    "SELECT id, code, traits FROM participants WHERE code = ?1 AND erased = 0",
                    &[json!(code)],
                )?
                .into_iter()
                .next()
                .ok_or_else(|| not_found("no such referral code in this campaign"))?;
            let id = int(&me, "id");
            let mut rows = Vec::new();
            if let Some((rank, score, joined)) = self.rank(period, id)? {
                let radius = 2;
                let above = self.rows(
                    "SELECT s.score, p.code, p.traits FROM scores s JOIN participants p ON p.id = s.participant_id
                     WHERE s.period = ?1 AND (s.score > ?2 OR (s.score = ?2 AND (s.joined_at < ?3
                       OR (s.joined_at = ?3 AND s.participant_id < ?4))))
                     ORDER BY s.score ASC, s.joined_at DESC, s.participant_id DESC LIMIT ?5",
                    &[json!(key), json!(score), json!(joined), json!(id), json!(radius)],
                )?;
                let below = self.rows(
                    "SELECT s.score, p.code, p.traits FROM scores s JOIN participants p ON p.id = s.participant_id
                     WHERE s.period = ?1 AND s.score > 0 AND (s.score < ?2 OR (s.score = ?2 AND (s.joined_at > ?3
                       OR (s.joined_at = ?3 AND s.participant_id > ?4))))
                     ORDER BY s.score DESC, s.joined_at, s.participant_id LIMIT ?5",
                    &[json!(key), json!(score), json!(joined), json!(id), json!(radius)],
                )?;
                for (i, r) in above.iter().rev().enumerate() {
                    rows.push(Self::board_row(rank - above.len() as u64 + i as u64, r));
                }
                let mut row = Self::board_row(rank, &me);
                row["score"] = json!(score);
                row["you"] = json!(true);
                rows.push(row);
                for (i, r) in below.iter().enumerate() {
                    rows.push(Self::board_row(rank + 1 + i as u64, r));
                }
            }
            body["around"] = Value::Array(rows);
        }
        Ok(body)
    }

    fn participant_json(r: &Map<String, Value>) -> Value {
        json!({
            "id": int(r, "id"), "code": txt(r, "code"), "user_id": get(r, "user_id"),
            "anonymous_id": get(r, "anonymous_id"), "joined_at": iso(r.get("joined_at").and_then(Value::as_i64)),
            "confirmed_referrals": int(r, "confirmed"), "points": int(r, "score"),
            "traits": parsed(r, "traits"),
            "erased": int(r, "erased") != 0,
        })
    }

    fn participants(&self, q: &str, limit: u32) -> Result<Value, ApiError> {
        let q = q.trim();
        let rows = if q.is_empty() {
            self.rows(
                "SELECT * FROM participants WHERE erased = 0 ORDER BY joined_at DESC, id DESC LIMIT ?1",
                &[json!(limit)],
            )?
        } else {
            self.rows(
                "SELECT * FROM participants WHERE erased = 0 AND (code = upper(?1) OR id IN
                   (SELECT participant_id FROM identities WHERE value = ?1)) ORDER BY id LIMIT ?2",
                &[json!(q), json!(limit)],
            )?
        };
        let people: Vec<Value> = rows.iter().map(Self::participant_json).collect();
        Ok(json!({ "participants": people }))
    }

    /// A participant's ledger as an audit trail, with the invariant checked on
    /// the way out: the kept score is the sum of the entries.
    /// The live participants any of these identities name.
    fn people_named(&self, anonymous: &[String], users: &[String]) -> Result<Vec<ParticipantId>, ApiError> {
        let rows = self.rows(
            "SELECT DISTINCT i.participant_id AS id FROM identities i JOIN participants p ON p.id = i.participant_id
             WHERE p.erased = 0 AND ((i.kind = 'anonymous' AND i.value IN (SELECT value FROM json_each(?1)))
                OR (i.kind = 'user' AND i.value IN (SELECT value FROM json_each(?2)))) ORDER BY i.participant_id",
            &[json!(anonymous).to_string().into(), json!(users).to_string().into()],
        )?;
        Ok(rows.iter().map(|r| ParticipantId(int(r, "id") as u64)).collect())
    }

    /// A participant's whole record for the right of access: who they are,
    /// their identities, ledger, referrals both ways, grants, clicks.
    fn person_record(&self, p: ParticipantId) -> Result<Value, ApiError> {
        let id = json!(p.0);
        let all = |sql: &str| self.rows(sql, std::slice::from_ref(&id));
        let person = all("SELECT * FROM participants WHERE id = ?1")?;
        let identities: Vec<Value> = all("SELECT kind, value FROM identities WHERE participant_id = ?1")?
            .iter()
            .map(|r| json!({"kind": txt(r, "kind"), "value": txt(r, "value")}))
            .collect();
        let rows =
            |sql: &str| -> Result<Vec<Value>, ApiError> { Ok(all(sql)?.into_iter().map(Value::Object).collect()) };
        Ok(json!({
            "participant": person.first().map(Self::participant_json),
            "identities": identities,
            "ledger": rows("SELECT points, reason, source_event, at FROM ledger WHERE participant_id = ?1 ORDER BY id")?,
            "referred": rows("SELECT id, referee_id, status, created_at FROM referrals WHERE referrer_id = ?1 ORDER BY id")?,
            "referred_by": rows("SELECT id, referrer_id, status, created_at FROM referrals WHERE referee_id = ?1")?,
            "grants": rows("SELECT id, reward_id, status, earned_at, expires_at FROM grants WHERE participant_id = ?1 ORDER BY id")?,
            "clicks": rows("SELECT code, at FROM clicks WHERE participant_id = ?1 ORDER BY id")?,
        }))
    }

    fn ledger(&self, p: ParticipantId, limit: u32) -> Result<Value, ApiError> {
        let id = p.0 as i64;
        let person = self
            .rows("SELECT * FROM participants WHERE id = ?1", &[json!(id)])?
            .into_iter()
            .next()
            .ok_or_else(|| not_found("no such participant in this campaign"))?;
        let sum = self
            .rows(
                "SELECT coalesce(sum(points), 0) AS total FROM ledger WHERE participant_id = ?1",
                &[json!(id)],
            )?
            .first()
            .map_or(0, |r| int(r, "total"));
        if sum != int(&person, "score") {
            return Err(internal(format!(
                "participant {id}: score {} but ledger sum {sum}",
                int(&person, "score")
            )));
        }
        let entries = self.rows(
            "SELECT * FROM ledger WHERE participant_id = ?1 ORDER BY id DESC LIMIT ?2",
            &[json!(id), json!(limit)],
        )?;
        let entries: Vec<Value> = entries
            .iter()
            .map(|e| {
                json!({
                    "id": int(e, "id"), "points": int(e, "points"), "reason": parsed(e, "reason"),
                    "source_event": get(e, "source_event"), "referral": get(e, "referral_id"),
                    "idempotency_key": txt(e, "idempotency_key"), "at": iso(e.get("at").and_then(Value::as_i64)),
                    "config_version": int(e, "config_version"),
                })
            })
            .collect();
        let stats = if int(&person, "erased") == 0 {
            self.stats(p)?
        } else {
            Value::Null
        };
        Ok(json!({
            "participant": Self::participant_json(&person), "score": sum, "stats": stats, "entries": entries,
        }))
    }

    fn referrals(&self, status: &str, review: &str, limit: u32) -> Result<Value, ApiError> {
        let rows = self.rows(
            "SELECT r.*, a.code AS referrer_code, b.code AS referee_code FROM referrals r
             JOIN participants a ON a.id = r.referrer_id JOIN participants b ON b.id = r.referee_id
             WHERE (?1 = '' OR r.status = ?1) AND (?2 = '' OR r.review = ?2)
             ORDER BY r.created_at DESC, r.id DESC LIMIT ?3",
            &[json!(status), json!(review), json!(limit)],
        )?;
        let list: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "id": int(r, "id"), "referrer": {"id": int(r, "referrer_id"), "code": txt(r, "referrer_code")},
                    "referee": {"id": int(r, "referee_id"), "code": txt(r, "referee_code")},
                    "status": txt(r, "status"), "review": txt(r, "review"), "reason": get(r, "reason"),
                    "via": txt(r, "via"),
                    "flags": parsed(r, "flags"),
                    "created_at": iso(r.get("created_at").and_then(Value::as_i64)),
                    "confirmed_at": iso(r.get("confirmed_at").and_then(Value::as_i64)),
                    "config_version": int(r, "config_version"),
                })
            })
            .collect();
        Ok(json!({ "referrals": list }))
    }

    fn grant_json(&self, r: &Map<String, Value>) -> Result<Value, ApiError> {
        let transitions = self.rows(
            "SELECT from_status, to_status, at, note FROM grant_transitions WHERE grant_id = ?1 ORDER BY id",
            &[json!(int(r, "id"))],
        )?;
        Ok(json!({
            "id": int(r, "id"), "participant": {"id": int(r, "participant_id"), "code": get(r, "code")},
            "reward": txt(r, "reward_id"), "status": txt(r, "status"), "token": get(r, "token"),
            "source": parsed(r, "source"),
            "value_minor": get(r, "value_minor"), "currency": get(r, "currency"),
            "earned_at": iso(r.get("earned_at").and_then(Value::as_i64)),
            "expires_at": iso(r.get("expires_at").and_then(Value::as_i64)),
            "history": transitions.iter().map(|t| json!({
                "from": get(t, "from_status"), "to": txt(t, "to_status"),
                "at": iso(t.get("at").and_then(Value::as_i64)), "note": get(t, "note"),
            })).collect::<Vec<_>>(),
        }))
    }

    fn grant(&self, id: u64) -> Option<Value> {
        let rows = self
            .rows(
                "SELECT g.*, p.code FROM grants g JOIN participants p ON p.id = g.participant_id WHERE g.id = ?1",
                &[json!(id)],
            )
            .ok()?;
        rows.first().and_then(|r| self.grant_json(r).ok())
    }

    fn grants(&self, status: &str, limit: u32) -> Result<Value, ApiError> {
        let rows = self.rows(
            "SELECT g.*, p.code FROM grants g JOIN participants p ON p.id = g.participant_id
             WHERE (?1 = '' OR g.status = ?1) ORDER BY g.earned_at DESC, g.id DESC LIMIT ?2",
            &[json!(status), json!(limit)],
        )?;
        let list = rows.iter().map(|r| self.grant_json(r)).collect::<Result<Vec<_>, _>>()?;
        Ok(json!({ "grants": list }))
    }

    fn take_snapshot(&self, period: Period) -> Result<Value, ApiError> {
        let rows = self.rows(
            "SELECT s.participant_id, s.score, p.code FROM scores s JOIN participants p ON p.id = s.participant_id
             WHERE s.period = ?1 AND s.score > 0 ORDER BY s.score DESC, s.joined_at, s.participant_id LIMIT 100",
            &[json!(period_key(period, self.now))],
        )?;
        let rows: Vec<Value> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| json!({"rank": i + 1, "participant": int(r, "participant_id"), "code": txt(r, "code"), "score": int(r, "score")}))
            .collect();
        let name = serde_json::to_value(period)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "all".into());
        let id = self
            .rows(
                "INSERT INTO snapshots (period, taken_at, rows) VALUES (?1, ?2, ?3) RETURNING id",
                &[json!(name), json!(self.now), json!(Value::Array(rows).to_string())],
            )?
            .first()
            .map(|r| int(r, "id"))
            .ok_or_else(|| internal("snapshot insert returned no id"))?;
        Ok(json!({"id": id, "period": name, "taken_at": iso(Some(self.now))}))
    }

    fn snapshots(&self, limit: u32) -> Result<Value, ApiError> {
        let rows = self.rows(
            "SELECT * FROM snapshots ORDER BY taken_at DESC, id DESC LIMIT ?1",
            &[json!(limit)],
        )?;
        let list: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "id": int(r, "id"), "period": txt(r, "period"),
                    "taken_at": iso(r.get("taken_at").and_then(Value::as_i64)), "rows": parsed(r, "rows"),
                })
            })
            .collect();
        Ok(json!({ "snapshots": list }))
    }

    fn funnel(&self) -> Result<Value, ApiError> {
        let r = self
            .rows(
                "SELECT (SELECT count(*) FROM clicks) AS clicks, (SELECT count(*) FROM referrals) AS signups,
                   (SELECT count(*) FROM referrals WHERE status = 'confirmed' AND review IN ('clear', 'approved')) AS confirmed,
                   (SELECT count(*) FROM participants WHERE erased = 0) AS participants",
                &[],
            )?
            .into_iter()
            .next()
            .unwrap_or_default();
        let f = refloop_core::engine::analytics::funnel(
            int(&r, "clicks") as u64,
            int(&r, "signups") as u64,
            int(&r, "confirmed") as u64,
            int(&r, "participants") as u64,
        );
        Ok(json!({"funnel": f, "participants": int(&r, "participants")}))
    }

    fn trend(&self, from: Millis, to: Millis) -> Result<Value, ApiError> {
        let end = to + DAY_MS;
        let clicks: Vec<i64> = self
            .rows(
                "SELECT at FROM clicks WHERE at >= ?1 AND at < ?2",
                &[json!(from), json!(end)],
            )?
            .iter()
            .map(|r| int(r, "at"))
            .collect();
        let refs = self.rows(
            "SELECT created_at, confirmed_at, status, review FROM referrals WHERE created_at >= ?1 AND created_at < ?2",
            &[json!(from), json!(end)],
        )?;
        let signups: Vec<i64> = refs.iter().map(|r| int(r, "created_at")).collect();
        let confirmed: Vec<i64> = refs
            .iter()
            .filter(|r| txt(r, "status") == "confirmed" && matches!(txt(r, "review").as_str(), "clear" | "approved"))
            .filter_map(|r| r.get("confirmed_at").and_then(Value::as_i64))
            .collect();
        let days: Vec<Value> = refloop_core::engine::analytics::daily_trend(&clicks, &signups, &confirmed, from, to)
            .into_iter()
            .map(|d| json!({"day": iso(Some(d.day)), "clicks": d.clicks, "signups": d.signups, "confirmed": d.confirmed}))
            .collect();
        Ok(json!({ "days": days }))
    }

    /// Participants with their rank, in pages of 1,000 (one query a page), at
    /// most 50,000 rows; a bigger export belongs in a queue.
    fn export(&self) -> Result<Value, ApiError> {
        let mut out = Vec::new();
        let mut after = -1i64;
        for _ in 0..50 {
            // Ranks from one window over the board per page (the board's
            // order: score, then who joined first), not a count per row.
            let rows = self.rows(
                "WITH ranked AS (SELECT participant_id, ROW_NUMBER() OVER
                     (ORDER BY score DESC, joined_at, participant_id) AS rank
                   FROM scores WHERE period = 'all' AND score > 0)
                 SELECT p.id, p.code, p.user_id, p.joined_at, p.confirmed, p.score, p.erased, r.rank
                 FROM participants p LEFT JOIN ranked r ON r.participant_id = p.id
                 WHERE p.id > ?1 ORDER BY p.id LIMIT 1000",
                &[json!(after)],
            )?;
            let n = rows.len();
            for r in rows {
                after = int(&r, "id");
                out.push(Value::Object(r));
            }
            if n < 1000 {
                break;
            }
        }
        Ok(json!({ "rows": out }))
    }

    /// Every invariant the tables must hold, restated from scratch: each kept
    /// score is its ledger's sum, each confirmed count its counting referrals,
    /// each all-time board score its ledger score (boards by points).
    fn check(&self) -> Result<Value, ApiError> {
        let by_points = self.config().leaderboard.score_by == refloop_core::engine::config::ScoreBy::Points;
        let violations = self.rows(
            "SELECT 'score ' || p.id AS what FROM participants p
               WHERE p.score <> (SELECT coalesce(sum(points), 0) FROM ledger l WHERE l.participant_id = p.id)
             UNION ALL SELECT 'confirmed ' || p.id FROM participants p
               WHERE p.confirmed <> (SELECT count(*) FROM referrals r WHERE r.referrer_id = p.id
                 AND r.status = 'confirmed' AND r.review IN ('clear', 'approved'))
             UNION ALL SELECT 'board ' || s.participant_id FROM scores s JOIN participants p ON p.id = s.participant_id
               WHERE ?1 AND s.period = 'all' AND s.score <> p.score",
            &[json!(by_points)],
        )?;
        let counts = self
            .rows(
                "SELECT (SELECT count(*) FROM participants) AS participants, (SELECT count(*) FROM referrals) AS referrals,
                   (SELECT count(*) FROM invitations) AS invitations, (SELECT count(*) FROM clicks) AS clicks,
                   (SELECT count(*) FROM ledger) AS ledger, (SELECT count(*) FROM scores) AS scores,
                   (SELECT count(*) FROM grants) AS grants, (SELECT count(*) FROM grant_transitions) AS grant_transitions,
                   (SELECT count(*) FROM snapshots) AS snapshots, (SELECT count(*) FROM seen_events) AS seen_events,
                   (SELECT count(*) FROM outbox) AS pending_notices",
                &[],
            )?
            .into_iter()
            .next()
            .unwrap_or_default();
        Ok(json!({
            "violations": violations.iter().map(|r| txt(r, "what")).collect::<Vec<_>>(),
            "counts": counts,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use refloop_core::engine::config::CampaignConfig;

    #[test]
    fn an_object_wakes_at_its_end_and_at_least_every_tick() {
        let mut c = CampaignConfig::from_json(r#"{"name":"w"}"#).unwrap();
        assert_eq!(next_wake(&c, false, 1_000), 1_000 + TICK_MS);
        c.ends_at = Some(5_000);
        assert_eq!(next_wake(&c, false, 1_000), 5_000, "wakes when the campaign ends");
        assert_eq!(next_wake(&c, false, 9_000), 9_000, "an end already due is due now");
        assert_eq!(next_wake(&c, true, 9_000), 9_000 + TICK_MS, "ended: only the ticks");
        c.ends_at = Some(1_000 + 10 * TICK_MS);
        assert_eq!(next_wake(&c, false, 1_000), 1_000 + TICK_MS);
    }
}
