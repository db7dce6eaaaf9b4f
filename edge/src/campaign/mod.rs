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
use refloop_core::engine::referral::RefusalReason;
use refloop_core::engine::rewards::{Codes, GrantStatus};
use refloop_core::engine::sql_store::{Rows, Sql, SqlStore};
use refloop_core::engine::store::Store;
use refloop_core::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod read;
mod write;

/// The answers the worker reads back.
pub use write::{CodeGiven, Ended, Erased, Landing, Noticed, Notices, Outboxed};

use read::View;
pub use read::{EXPORT_MAX, ExportOf, ExportRow, ExportRows, GrantExportRow, ReferralExportRow};

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
    /// first; `q` an anonymous id, user id or code (empty: all), or the
    /// people whose email has the keyed hash `email_hash`.
    Answers {
        q: String,
        limit: u32,
        #[serde(default)]
        email_hash: Option<String>,
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
    /// A participant's new referral code: `code` (vanity) or a fresh one.
    SetCode {
        participant: u64,
        code: Option<String>,
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
    /// One export's rows (`?of=`: participants, referrals or grants).
    Export {
        #[serde(default)]
        of: ExportOf,
    },
    /// Expire overdue referrals and grants.
    Tick,
    /// Run the end distributions (the seed is the raffle's, and is recorded).
    End {
        seed: u64,
        /// Run them and answer, then roll everything back: who would get
        /// what if the campaign ended now with this seed.
        #[serde(default)]
        preview: bool,
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
    /// Whether the op's transaction is rolled back after it answered (a
    /// preview: the writes were made only to see what they would be).
    pub fn rolls_back(&self) -> bool {
        matches!(self, Op::End { preview: true, .. })
    }

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
                | Op::Export { .. }
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
    /// An op's typed answer as the wire's JSON.
    fn answer_of(view: impl Serialize) -> Result<Value, ApiError> {
        serde_json::to_value(view).map_err(|e| internal(format!("an answer did not serialise: {e}")))
    }
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
                    write::keep_answers(sql, e, &out)?;
                    if let (Some(r), Some(source)) = (out.referral, &e.source) {
                        write::keep_source(sql, r.0, source)?;
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
                answer_of(reply)
            }
            Op::Click { code, visitor } => {
                // The same visitor's clicks on one code count once a day (a
                // reload, or a script, is no new interest).
                let first_today = match visitor {
                    None => true,
                    Some(v) => write::first_click_today(sql, code, v, now / DAY_MS)?,
                };
                let refusal = match first_today {
                    true => {
                        let input = Input::Click {
                            code: code.clone(),
                            at: now,
                        };
                        run(&mut engine, input).refusal
                    }
                    false => engine.code_owner(code, now).err(),
                };
                match refusal {
                    Some(RefusalReason::UnknownCode) => Err(not_found("no such referral code")),
                    // A code replaced or past its days still lands the
                    // visitor on the site, without a referral.
                    refused => answer_of(write::Landing {
                        landing_url: config.landing_url.clone(),
                        refused: refused.map(|r| r.as_str().to_owned()),
                    }),
                }
            }
            Op::Invite { anonymous_id, user_id } => {
                let p = engine
                    .store
                    .find(anonymous_id.as_deref(), user_id.as_deref())
                    .ok_or_else(|| not_found("not a participant of this campaign yet (sign up first)"))?;
                let out = applied(
                    &mut engine,
                    Input::Invite {
                        participant: p,
                        at: now,
                    },
                    conflict,
                )?;
                let inv = out.invitation.ok_or_else(|| internal("no invitation was minted"))?;
                answer_of(write::Invited {
                    token: inv.token,
                    expires_at: crate::app::iso(inv.expires_at),
                })
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
                answer_of(write::Adjusted {
                    participant: p.0,
                    points: *points,
                    score: engine.store.score(p),
                    idempotency_key: key,
                    duplicate: out.duplicate,
                    notices: notices_of(&call.campaign, &out, now),
                })
            }
            Op::Erase { participant } => {
                let p = ParticipantId(*participant);
                if engine.store.participant(p).is_none() {
                    return Err(not_found("no such participant in this campaign"));
                }
                let (anonymous, users) = write::identities_of(sql, p)?;
                applied(
                    &mut engine,
                    Input::Erase {
                        participant: p,
                        at: now,
                    },
                    not_found,
                )?;
                write::forget_everywhere(sql, p, &anonymous, &users)?;
                answer_of(write::Erased {
                    participant: Some(p.0),
                    erased: Value::Bool(true),
                    anonymous_ids: anonymous,
                    user_ids: users,
                })
            }
            Op::ErasePerson {
                anonymous_ids,
                user_ids,
            } => {
                let people = view.people_named(anonymous_ids, user_ids)?;
                let (mut anonymous, mut users) = (Vec::new(), Vec::new());
                for p in &people {
                    let (a, u) = write::identities_of(sql, *p)?;
                    applied(
                        &mut engine,
                        Input::Erase {
                            participant: *p,
                            at: now,
                        },
                        internal,
                    )?;
                    write::forget_everywhere(sql, *p, &a, &u)?;
                    anonymous.extend(a);
                    users.extend(u);
                }
                answer_of(write::Erased {
                    participant: None,
                    erased: people.iter().map(|p| p.0).collect::<Vec<_>>().into(),
                    anonymous_ids: anonymous,
                    user_ids: users,
                })
            }
            Op::Sources => answer_of(view.sources()?),
            Op::Money => answer_of(view.money()?),
            Op::Answers { q, limit, email_hash } => answer_of(view.answers(q, email_hash.as_deref(), *limit)?),
            Op::Person {
                anonymous_ids,
                user_ids,
            } => answer_of(view.people(view.people_named(anonymous_ids, user_ids)?)?),
            Op::Review { referral, approve } => {
                let input = Input::Review {
                    referral: ReferralId(*referral),
                    approve: *approve,
                    at: now,
                };
                let out = applied(&mut engine, input, missing_or_conflict)?;
                let moved = out
                    .notices
                    .iter()
                    .filter(|n| matches!(n, Notice::RewardStatusChanged { .. } | Notice::RewardEarned { .. }))
                    .count();
                answer_of(write::Reviewed {
                    referral: *referral,
                    approved: *approve,
                    grants: moved,
                    notices: notices_of(&call.campaign, &out, now),
                })
            }
            Op::Transition { grant, to, note } => {
                let input = Input::Transition {
                    grant: GrantId(*grant),
                    to: *to,
                    at: now,
                    note: note.clone(),
                };
                let out = applied(&mut engine, input, missing_or_conflict)?;
                answer_of(write::Moved {
                    grant: view.grant(*grant)?.ok_or_else(|| internal("the grant vanished"))?,
                    notices: notices_of(&call.campaign, &out, now),
                })
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
                let out = applied(&mut engine, input, not_found)?;
                if let Some(cap) = out.capped.first() {
                    return Err(conflict(format!("withheld by a cap: {cap:?}")));
                }
                let grant = match out.grants.first() {
                    Some(g) => view.grant(g.0)?,
                    None => None,
                };
                answer_of(write::Given {
                    duplicate: out.duplicate,
                    grant,
                    notices: notices_of(&call.campaign, &out, now),
                })
            }
            Op::SetCode { participant, code } => {
                let p = ParticipantId(*participant);
                let before = engine
                    .store
                    .participant(p)
                    .filter(|_| !engine.store.is_erased(p))
                    .ok_or_else(|| not_found("no such participant in this campaign"))?;
                let input = Input::SetCode {
                    participant: p,
                    code: code.clone(),
                    at: now,
                };
                let out = applied(&mut engine, input, conflict)?;
                let code = out.code.ok_or_else(|| internal("no code was given"))?;
                answer_of(write::CodeGiven {
                    participant: p.0,
                    previous_code: (!out.duplicate).then_some(before.code),
                    valid_until: config
                        .code_valid_days
                        .map(|d| crate::app::iso(now + Millis::from(d) * DAY_MS)),
                    code,
                    duplicate: out.duplicate,
                })
            }
            Op::Redeem { token, check } => {
                let token = token.trim().to_ascii_uppercase();
                let (id, status) = view
                    .grant_of_token(&token)?
                    .ok_or_else(|| not_found("no such token in this campaign"))?;
                let status = GrantStatus::parse(&status).unwrap_or(GrantStatus::Rejected);
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
                    (None, true) => answer_of(write::Redeemed {
                        valid: Some(true),
                        redeemed: None,
                        grant: view.grant(id)?,
                        notices: Vec::new(),
                    }),
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
                            let out = applied(&mut engine, input, conflict)?;
                            notices.extend(notices_of(&call.campaign, &out, now));
                        }
                        answer_of(write::Redeemed {
                            valid: None,
                            redeemed: Some(true),
                            grant: view.grant(id)?,
                            notices,
                        })
                    }
                }
            }
            Op::Tick => {
                write::forget_old_clicks(sql, now / DAY_MS - 1)?;
                let out = run(&mut engine, Input::Tick { now });
                answer_of(write::Noticed {
                    notices: notices_of(&call.campaign, &out, now),
                })
            }
            Op::End { seed, preview } => {
                let out = applied(&mut engine, Input::End { at: now, seed: *seed }, conflict)?;
                let mut awarded = Vec::new();
                for g in out.grants.iter().take(write::ENDED_SHOWN) {
                    let shown = view
                        .grant(g.0)?
                        .ok_or_else(|| internal("a grant of the end vanished"))?;
                    awarded.push(answer_of(shown)?);
                }
                answer_of(write::Ended {
                    seed: seed.to_string(),
                    grants: out.grants.iter().map(|g| g.0).collect(),
                    awarded,
                    capped: out.capped.clone(),
                    preview: *preview,
                    notices: match preview {
                        true => Notices::default(),
                        false => notices_of(&call.campaign, &out, now),
                    },
                })
            }
            Op::Snapshot { period } => answer_of(view.take_snapshot(*period)?),
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
                answer_of(view.stats(p, code.is_none())?)
            }
            Op::Leaderboard { period, limit, around } => {
                answer_of(view.leaderboard(*period, *limit, around.as_deref())?)
            }
            Op::Participants { q, limit } => answer_of(view.participants(q, *limit)?),
            Op::Ledger { participant, limit } => answer_of(view.ledger(ParticipantId(*participant), *limit)?),
            Op::Referrals { status, review, limit } => answer_of(view.referrals(status, review, *limit)?),
            Op::Grants { status, limit } => answer_of(view.grants(status, *limit)?),
            Op::Snapshots { limit } => answer_of(view.snapshots(*limit)?),
            Op::Funnel => answer_of(view.funnel()?),
            Op::Trend { from, to } => answer_of(view.trend(*from, *to)?),
            Op::Export { of } => view.export(*of),
            Op::Check => answer_of(view.check()?),
            Op::Outbox => answer_of(write::outbox_page(sql, OUTBOX_PAGE)?),
            Op::OutboxSent { through } => {
                write::outbox_sent(sql, *through)?;
                answer_of(write::Through { through: *through })
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
                answer_of(write::replayed(&fixes, &replay_id, *version, *apply, inputs.len()))
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
            write::keep_notices(sql, &call.campaign, &mut answer).map(|()| answer)
        }
        other => other,
    };
    if result.is_ok() {
        *kept = store.into_rows();
    }
    result
}

/// The version of a notice's payload (`webhooks::Payload`, enriched by
/// `write::keep_notices`): receivers can tell what it holds.
pub const NOTICE_SCHEMA: u32 = 1;

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

/// What the engine refused, for inputs that name something: it is not there
/// (404), or not in a state that allows this (409).
fn missing_or_conflict(e: String) -> ApiError {
    match e.starts_with("no such") {
        true => not_found(format!("{e} in this campaign")),
        false => conflict(e),
    }
}

/// `run`, with the engine's refusal of the input as the error `refused` makes.
fn applied<C: Sql>(
    engine: &mut Machine<'_, SqlStore<'_, C>>,
    input: Input,
    refused: fn(String) -> ApiError,
) -> Result<Outcome, ApiError> {
    let out = run(engine, input);
    match out.error.clone() {
        Some(e) => Err(refused(e)),
        None => Ok(out),
    }
}

/// Applies one input and keeps it in the campaign's log of inputs.
fn run<C: Sql>(engine: &mut Machine<'_, SqlStore<'_, C>>, input: Input) -> Outcome {
    let out = engine.apply(&input);
    engine.store.log_input(&input);
    out
}

/// The campaign's codes, keyed by its secret (kept on its first call).
fn codes_of<C: Sql>(store: &SqlStore<'_, C>, entropy: &str) -> Result<Codes, ApiError> {
    let mut secret = [0u8; 32];
    hex::decode_to_slice(store.secret(entropy), &mut secret)
        .map_err(|_| internal("the campaign has no secret for its codes (no entropy was sent)"))?;
    Ok(Codes::new(secret))
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
