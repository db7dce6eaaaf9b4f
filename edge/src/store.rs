//! Rows ↔ the engine's nouns: loading the `Slice` an input needs and turning
//! `Effects` into the statements of one guarded transaction.

use crate::db::{Arg, Db, DbError, Kv, Row, RowExt, Stmt};
use crate::sql;
use crate::stmt;
use refloop_core::engine::config::{CampaignConfig, Period, Versioned};
use refloop_core::engine::fraud::{ReferrerActivity, VELOCITY_WINDOW_MS};
use refloop_core::engine::leaderboard::window_start;
use refloop_core::engine::model::*;
use refloop_core::engine::program::{EngineEvent, Notice};
use refloop_core::engine::referral::Invitation;
use refloop_core::engine::rewards::{Grant, GrantSource, GrantStatus, Transition};
use refloop_core::engine::step::{Effects, Guard, Person, Slice, Usage};
use serde_json::Value;

/// A campaign row.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRow {
    pub id: i64,
    pub tenant_id: i64,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub current_version: u32,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

impl CampaignRow {
    pub fn from_row(r: &Row) -> Self {
        CampaignRow {
            id: r.int("id"),
            tenant_id: r.int("tenant_id"),
            slug: r.text("slug"),
            name: r.text("name"),
            status: r.text("status"),
            current_version: r.int("current_version") as u32,
            created_at: r.int("created_at"),
            updated_at: r.opt_int("updated_at"),
        }
    }
}

/// A configuration version: versions never change once written, so KV keeps
/// them by (campaign, version) without ever invalidating; an update is a new
/// version that the campaign row (read from D1) points at, visible at once.
pub async fn config_version(db: &impl Db, kv: &impl Kv, campaign: i64, version: u32) -> Result<Versioned, DbError> {
    let key = format!("cfg:{campaign}:{version}");
    if let Some(text) = kv.get(&key).await
        && let Ok(config) = serde_json::from_str::<CampaignConfig>(&text)
    {
        return Ok(Versioned { version, config });
    }
    let rows = db.query(stmt!(sql::CAMPAIGN_VERSION, campaign, version)).await?;
    let text = rows
        .first()
        .map(|r| r.text("config"))
        .ok_or_else(|| DbError::from_message(format!("campaign {campaign} has no version {version}")))?;
    let config: CampaignConfig =
        serde_json::from_str(&text).map_err(|e| DbError::from_message(format!("stored config: {e}")))?;
    kv.put(&key, &text, None).await;
    Ok(Versioned { version, config })
}

pub fn person_from_row(r: &Row) -> Person {
    let traits: Traits = serde_json::from_str(&r.text("traits")).unwrap_or_default();
    Person {
        participant: Participant {
            id: ParticipantId(r.int("id") as u64),
            anonymous_id: r.opt_text("anonymous_id"),
            user_id: r.opt_text("user_id"),
            code: r.text("code"),
            joined_at: r.int("joined_at"),
            traits,
            email_hash: r.opt_text("email_hash"),
            email_domain: r.opt_text("email_domain"),
            ip_hash: r.opt_text("ip_hash"),
            device_id: r.opt_text("device_id"),
        },
        confirmed: r.int("confirmed") as u32,
        score: r.int("score"),
        referral_points: r.int("referral_points"),
        is_winner: r.int("is_winner") != 0,
        rev: r.int("rev"),
    }
}

pub fn referral_from_row(r: &Row) -> (Referral, i64) {
    let status = match r.text("status").as_str() {
        "confirmed" => ReferralStatus::Confirmed,
        "rejected" => ReferralStatus::Rejected,
        "expired" => ReferralStatus::Expired,
        _ => ReferralStatus::Pending,
    };
    let review = match r.text("review").as_str() {
        "pending" => Review::Pending,
        "approved" => Review::Approved,
        "rejected" => Review::Rejected,
        _ => Review::Clear,
    };
    (
        Referral {
            id: ReferralId(r.int("id") as u64),
            referrer: ParticipantId(r.int("referrer_id") as u64),
            referee: ParticipantId(r.int("referee_id") as u64),
            via: r.text("via"),
            status,
            config_version: r.int("config_version") as u32,
            created_at: r.int("created_at"),
            done_mask: r.int("done_mask") as u32,
            confirmed_at: r.opt_int("confirmed_at"),
            flags: serde_json::from_str(&r.text("flags")).unwrap_or_default(),
            review,
            reason: r.opt_text("reason"),
        },
        r.int("rev"),
    )
}

pub fn grant_from_row(r: &Row, history: Vec<Transition>) -> Grant {
    Grant {
        id: GrantId(r.int("id") as u64),
        participant: ParticipantId(r.int("participant_id") as u64),
        reward: r.text("reward_id"),
        source: serde_json::from_str(&r.text("source")).unwrap_or(GrantSource::Manual { note: String::new() }),
        status: GrantStatus::parse(&r.text("status")).unwrap_or(GrantStatus::Earned),
        token: r.opt_text("token"),
        value: r.opt_int("value_minor").map(|amount_minor| Money {
            amount_minor,
            currency: r.text("currency"),
        }),
        earned_at: r.int("earned_at"),
        expires_at: r.opt_int("expires_at"),
        idempotency_key: r.text("idempotency_key"),
        history,
    }
}

pub fn status_str(s: ReferralStatus) -> &'static str {
    match s {
        ReferralStatus::Pending => "pending",
        ReferralStatus::Confirmed => "confirmed",
        ReferralStatus::Rejected => "rejected",
        ReferralStatus::Expired => "expired",
    }
}

pub fn review_str(r: Review) -> &'static str {
    match r {
        Review::Clear => "clear",
        Review::Pending => "pending",
        Review::Approved => "approved",
        Review::Rejected => "rejected",
    }
}

async fn one(db: &impl Db, s: Stmt) -> Result<Option<Row>, DbError> {
    Ok(db.query(s).await?.into_iter().next())
}

/// Everything `decide_event` may read for `e` in `campaign`.
pub async fn load_event_slice(
    db: &impl Db,
    kv: &impl Kv,
    campaign: &CampaignRow,
    e: &EngineEvent,
) -> Result<Slice, DbError> {
    let current = config_version(db, kv, campaign.id, campaign.current_version).await?;
    let actor = one(
        db,
        stmt!(
            sql::PERSON_BY_IDENTITY,
            campaign.id,
            e.user_id.clone(),
            e.anonymous_id.clone()
        ),
    )
    .await?
    .map(|r| person_from_row(&r));
    let referral = match &actor {
        Some(a) => one(db, stmt!(sql::REFERRAL_OF, campaign.id, a.participant.id.0))
            .await?
            .map(|r| referral_from_row(&r)),
        None => None,
    };
    let mut invitation = None;
    let mut referrer_row = None;
    if let Some((r, _)) = &referral {
        referrer_row = one(db, stmt!(sql::PERSON_BY_ID, r.referrer.0, campaign.id)).await?;
    } else if let Some(touch) = e
        .touch
        .as_ref()
        .filter(|_| e.name == refloop_core::engine::program::SIGNUP)
    {
        if let Some(code) = &touch.code {
            referrer_row = one(db, stmt!(sql::PERSON_BY_CODE, campaign.id, code.as_str())).await?;
        } else if let Some(token) = &touch.invitation
            && let Some(row) = one(db, stmt!(sql::INVITATION, campaign.id, token.as_str())).await?
        {
            let inv = Invitation {
                token: row.text("token"),
                inviter: ParticipantId(row.int("inviter_id") as u64),
                created_at: row.int("created_at"),
                expires_at: row.int("expires_at"),
                claimed_by: row.opt_int("claimed_by").map(|c| ParticipantId(c as u64)),
            };
            referrer_row = one(db, stmt!(sql::PERSON_BY_ID, inv.inviter.0, campaign.id)).await?;
            invitation = Some(inv);
        }
    }
    let referrer_erased = referrer_row.as_ref().is_some_and(|r| r.opt_int("erased_at").is_some());
    let referrer = referrer_row.map(|r| person_from_row(&r));
    let pinned = match &referral {
        Some((r, _)) if r.config_version != current.version => {
            Some(config_version(db, kv, campaign.id, r.config_version).await?)
        }
        _ => None,
    };
    let mut activity = ReferrerActivity::default();
    if referral.is_none()
        && let Some(r) = &referrer
    {
        let stale_after = i64::from(current.config.fraud.stale_pending_days) * DAY_MS;
        if let Some(row) = one(
            db,
            stmt!(
                sql::REFERRER_ACTIVITY,
                r.participant.id.0,
                e.at - VELOCITY_WINDOW_MS,
                e.at - stale_after
            ),
        )
        .await?
        {
            activity.referrals_last_hour = row.int("last_hour") as u32;
            activity.stale_pending = row.int("stale") as u32;
        }
    }
    let usage = load_usage(db, campaign, &current.config).await?;
    let ids: Vec<u64> = [&actor, &referrer]
        .into_iter()
        .flatten()
        .map(|p| p.participant.id.0)
        .collect();
    let grant_keys = if ids.is_empty() || !has_rewards(&current.config) {
        Vec::new()
    } else {
        db.query(stmt!(
            sql::GRANT_KEYS_OF,
            serde_json::to_string(&ids).unwrap_or_default()
        ))
        .await?
        .iter()
        .map(|r| r.text("idempotency_key"))
        .collect()
    };
    Ok(Slice {
        campaign: CampaignId(campaign.id as u64),
        current,
        pinned,
        actor,
        referral,
        referrer,
        referrer_erased,
        invitation,
        activity,
        usage,
        grant_keys,
    })
}

fn has_rewards(c: &CampaignConfig) -> bool {
    c.referee_reward.is_some() || c.milestones.iter().any(|m| m.reward.is_some())
}

/// Live grant counts, only when a cap needs them (D1 bills every row read).
pub async fn load_usage(db: &impl Db, campaign: &CampaignRow, c: &CampaignConfig) -> Result<Option<Usage>, DbError> {
    let capped =
        c.caps.max_winners.is_some() || c.caps.budget.is_some() || c.rewards.iter().any(|r| r.max_grants.is_some());
    if !capped {
        return Ok(None);
    }
    let currency = c.caps.budget.as_ref().map(|b| b.currency.clone()).unwrap_or_default();
    let row = one(db, stmt!(sql::USAGE, campaign.id, currency))
        .await?
        .unwrap_or_default();
    let grants_of_reward = db
        .query(stmt!(sql::USAGE_BY_REWARD, campaign.id))
        .await?
        .iter()
        .map(|r| (r.text("reward_id"), r.int("n") as u32))
        .collect();
    Ok(Some(Usage {
        winners: row.int("winners") as u32,
        spent_minor: row.int("spent"),
        grants_of_reward,
        rev: row.int("rev"),
    }))
}

/// The leaderboard windows a score change at `at` counts toward.
pub fn period_keys(at: Millis) -> [String; 3] {
    [
        "all".to_owned(),
        format!("month:{}", window_start(Period::Month, at)),
        format!("week:{}", window_start(Period::Week, at)),
    ]
}

/// The key of the window of `period` that holds `now`.
pub fn period_key(period: Period, now: Millis) -> String {
    match period {
        Period::All => "all".to_owned(),
        Period::Month => format!("month:{}", window_start(Period::Month, now)),
        Period::Week => format!("week:{}", window_start(Period::Week, now)),
    }
}

/// The statements of a score change on every board.
pub fn board_statements(campaign: i64, p: ParticipantId, delta: i64, at: Millis, out: &mut Vec<Stmt>) {
    if delta == 0 {
        return;
    }
    for period in period_keys(at) {
        out.push(stmt!(sql::LEAVE_BUCKET, campaign, period.clone(), p.0));
        out.push(stmt!(sql::LEAVE_TIE, campaign, period.clone(), p.0));
        out.push(stmt!(sql::MOVE_SCORE, campaign, period.clone(), p.0, delta));
        out.push(stmt!(sql::ENTER_BUCKET, campaign, period.clone(), p.0));
        out.push(stmt!(sql::ENTER_TIE, campaign, period, p.0));
    }
}

pub fn entry_statement(e: &LedgerEntry) -> Stmt {
    stmt!(
        sql::INSERT_ENTRY,
        e.campaign.0,
        e.participant.0,
        e.points,
        serde_json::to_string(&e.reason).unwrap_or_default(),
        e.source_event.clone(),
        e.referral.map(|r| r.0),
        e.idempotency_key.clone(),
        e.at,
        e.config_version
    )
}

pub fn notice_statement(tenant: i64, campaign: &CampaignRow, n: &Notice, at: Millis) -> Stmt {
    let mut payload = serde_json::to_value(n).unwrap_or(Value::Null);
    let kind = payload
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Value::Object(m) = &mut payload {
        m.insert("campaign".into(), Value::String(campaign.slug.clone()));
        m.insert("at".into(), Value::String(refloop_core::time::format_rfc3339_ms(at)));
    }
    stmt!(sql::ENQUEUE_NOTICE, tenant, kind, payload.to_string(), at)
}

fn participant_args(p: &Participant) -> Vec<Arg> {
    vec![
        Arg::from(p.anonymous_id.clone()),
        Arg::from(p.user_id.clone()),
        Arg::from(serde_json::to_string(&p.traits).unwrap_or_else(|_| "{}".into())),
        Arg::from(p.email_hash.clone()),
        Arg::from(p.email_domain.clone()),
        Arg::from(p.ip_hash.clone()),
        Arg::from(p.device_id.clone()),
    ]
}

/// The transaction that writes `effects` of one decision in `campaign`, after
/// the guards of everything the decision read.
pub fn effect_statements(campaign: &CampaignRow, effects: &Effects, config: &Versioned, out: &mut Vec<Stmt>) {
    let c = campaign.id;
    for g in &effects.guards {
        out.push(match *g {
            Guard::Participant { id, rev } => stmt!(sql::GUARD_PERSON, id.0, rev),
            Guard::Referral { id, rev } => stmt!(sql::GUARD_REFERRAL, id.0, rev),
            Guard::Usage { rev } => stmt!(sql::GUARD_USAGE, c, rev),
        });
    }
    if let Some(p) = &effects.joined {
        let mut args = vec![Arg::from(p.id.0), Arg::from(c)];
        let rest = participant_args(p);
        args.extend(rest[..2].iter().cloned());
        args.push(Arg::from(p.code.clone()));
        args.push(Arg::from(p.joined_at));
        args.extend(rest[2..].iter().cloned());
        out.push(Stmt {
            sql: sql::INSERT_PERSON,
            args,
        });
        if let Some(a) = &p.anonymous_id {
            out.push(stmt!(sql::INSERT_ALIAS, c, a.as_str(), p.id.0));
        }
    }
    if let Some(p) = &effects.identity {
        let mut args = vec![Arg::from(p.id.0)];
        args.extend(participant_args(p));
        out.push(Stmt {
            sql: sql::UPDATE_IDENTITY,
            args,
        });
    }
    if let Some(r) = &effects.referral_created {
        let deadline = r.created_at + config.config.quest_window_ms();
        out.push(stmt!(
            sql::INSERT_REFERRAL,
            r.id.0,
            c,
            r.referrer.0,
            r.referee.0,
            r.via.clone(),
            status_str(r.status),
            r.config_version,
            r.created_at,
            deadline,
            r.done_mask,
            r.confirmed_at,
            serde_json::to_string(&r.flags).unwrap_or_else(|_| "[]".into()),
            review_str(r.review),
            r.reason.clone()
        ));
    }
    if let Some(r) = &effects.referral_updated {
        out.push(referral_update(r));
    }
    if let Some((token, claimer)) = &effects.invitation_claimed {
        out.push(stmt!(sql::GUARD_INVITATION, c, token.as_str(), claimer.0));
        out.push(stmt!(sql::CLAIM_INVITATION, c, token.as_str(), claimer.0));
    }
    if let Some((r, e)) = &effects.held {
        out.push(stmt!(
            sql::HOLD_EVENT,
            r.0,
            e.id.as_str(),
            e.name.as_str(),
            e.trusted,
            e.at
        ));
    }
    if let Some(r) = &effects.held_released {
        out.push(stmt!(sql::RELEASE_HELD, r.0));
    }
    for p in &effects.confirmations {
        out.push(stmt!(sql::ADD_CONFIRMED, p.0));
    }
    for (e, (_, referral_points)) in effects.entries.iter().zip(&effects.referral_points) {
        out.push(entry_statement(e));
        out.push(stmt!(sql::ADD_SCORE, e.participant.0, e.points, *referral_points));
    }
    for (p, delta, at) in &effects.board {
        board_statements(c, *p, *delta, *at, out);
    }
    for g in &effects.grants {
        new_grant_statements(c, g, out);
    }
    for g in &effects.grants_moved {
        moved_grant_statements(c, g, out);
    }
    for n in &effects.notices {
        out.push(notice_statement(campaign.tenant_id, campaign, n, notice_time(effects)));
    }
}

fn notice_time(effects: &Effects) -> Millis {
    effects
        .entries
        .first()
        .map(|e| e.at)
        .or(effects.grants.first().map(|g| g.earned_at))
        .or(effects.referral_updated.as_ref().and_then(|r| r.confirmed_at))
        .or(effects.referral_created.as_ref().map(|r| r.created_at))
        .unwrap_or_default()
}

pub fn referral_update(r: &Referral) -> Stmt {
    stmt!(
        sql::UPDATE_REFERRAL,
        r.id.0,
        status_str(r.status),
        r.done_mask,
        r.confirmed_at,
        serde_json::to_string(&r.flags).unwrap_or_else(|_| "[]".into()),
        review_str(r.review),
        r.reason.clone()
    )
}

/// A new grant with its history so far.
pub fn new_grant_statements(campaign: i64, g: &Grant, out: &mut Vec<Stmt>) {
    out.push(stmt!(
        sql::INSERT_GRANT,
        g.id.0,
        campaign,
        g.participant.0,
        g.reward.clone(),
        serde_json::to_string(&g.source).unwrap_or_default(),
        g.status.as_str(),
        g.token.clone(),
        g.value.as_ref().map(|v| v.amount_minor),
        g.value.as_ref().map(|v| v.currency.clone()),
        g.earned_at,
        g.expires_at,
        g.idempotency_key.clone()
    ));
    for t in &g.history {
        out.push(stmt!(
            sql::INSERT_TRANSITION,
            g.id.0,
            t.from.map(GrantStatus::as_str),
            t.to.as_str(),
            t.at,
            t.note.clone()
        ));
    }
    if g.status.is_live() {
        out.push(stmt!(sql::SET_WINNER, g.participant.0));
    }
    out.push(stmt!(sql::BUMP_USAGE, campaign));
}

/// A grant's move: guarded by the status it was read in, recorded.
pub fn moved_grant_statements(campaign: i64, g: &Grant, out: &mut Vec<Stmt>) {
    let Some(t) = g.history.last() else { return };
    let from = t.from.map(GrantStatus::as_str).unwrap_or_default();
    out.push(stmt!(sql::GUARD_GRANT, g.id.0, from));
    out.push(stmt!(sql::MOVE_GRANT, g.id.0, from, t.to.as_str()));
    out.push(stmt!(
        sql::INSERT_TRANSITION,
        g.id.0,
        from,
        t.to.as_str(),
        t.at,
        t.note.clone()
    ));
    out.push(stmt!(sql::BUMP_USAGE, campaign));
}
