//! The public routes: referral links, the leaderboard, a code's stats, the
//! SDK's `me()` and invitations. They take the publishable key and show only
//! public facts: codes, masked names, counts, never an email or an IP.

use crate::app::{
    Ctx, Reply, Request, Response, Site, bad, check_origin, db_error, iso, json_body, not_found, query_rows,
    rate_limit, site_by_publishable_key,
};
use crate::db::{Db, Kv, Row, RowExt};
use crate::routes::parse_limit;
use crate::sql;
use crate::stmt;
use crate::store::{CampaignRow, config_version, period_key, person_from_row};
use refloop_core::engine::config::{CampaignConfig, Period, Versioned};
use refloop_core::engine::model::ParticipantId;
use refloop_core::engine::quest;
use refloop_core::engine::rewards::times_reached;
use refloop_core::engine::step::{Person, decide_invitation};
use refloop_core::{ApiError, ErrorCode};
use serde_json::{Value, json};

/// `GET /r/{code}`: count the click, send the visitor to the landing page with the code.
pub async fn click<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, code: &str) -> Reply {
    let code = code.trim().to_ascii_uppercase();
    if code.is_empty() || code.len() > 64 {
        return Err(not_found("no such referral code"));
    }
    let person = query_rows(ctx.db, stmt!(sql::PERSON_BY_ANY_CODE, code.as_str()))
        .await?
        .into_iter()
        .next()
        .filter(|r| r.opt_int("erased_at").is_none())
        .ok_or_else(|| not_found("no such referral code"))?;
    let campaign = campaign_by_id(ctx.db, person.int("campaign_id")).await?;
    let current = config_version(ctx.db, ctx.kv, campaign.id, campaign.current_version)
        .await
        .map_err(db_error)?;
    let ip_hash = ctx.ip_hash(req);
    if let Some(ip) = &ip_hash {
        rate_limit(ctx, &format!("ip:{ip}"), ctx.limits.per_ip_per_minute).await?;
    }
    ctx.db
        .batch(vec![stmt!(
            sql::INSERT_CLICK,
            campaign.id,
            person.int("id"),
            ctx.now,
            ip_hash
        )])
        .await
        .map_err(db_error)?;
    let landing = current
        .config
        .landing_url
        .clone()
        .ok_or_else(|| not_found("this campaign has no landing page"))?;
    let param = if landing.contains('?') { '&' } else { '?' };
    let location = format!("{landing}{param}ref={code}");
    Ok(Response {
        status: 302,
        headers: vec![
            ("Location".into(), location),
            ("Cache-Control".into(), "no-store".into()),
            ("Referrer-Policy".into(), "no-referrer-when-downgrade".into()),
        ],
        body: String::new(),
    })
}

pub async fn campaign_by_id(db: &impl Db, id: i64) -> Result<CampaignRow, ApiError> {
    db.query(stmt!(sql::CAMPAIGN_BY_ID, id))
        .await
        .map_err(db_error)?
        .first()
        .map(CampaignRow::from_row)
        .ok_or_else(|| not_found("no such campaign"))
}

/// The campaign `name` (slug or id) of the tenant, with its current configuration.
pub async fn campaign_of<D: Db, K: Kv>(
    ctx: &Ctx<'_, D, K>,
    tenant: i64,
    name: &str,
) -> Result<(CampaignRow, Versioned), ApiError> {
    let campaign = query_rows(ctx.db, stmt!(sql::CAMPAIGN, tenant, name))
        .await?
        .first()
        .map(CampaignRow::from_row)
        .filter(|c| c.current_version > 0)
        .ok_or_else(|| not_found(format!("no campaign {name:?}")))?;
    let current = config_version(ctx.db, ctx.kv, campaign.id, campaign.current_version)
        .await
        .map_err(db_error)?;
    Ok((campaign, current))
}

async fn public_site<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request) -> Result<Site, ApiError> {
    let site = crate::app::cached_site(ctx, req.param("key")).await?;
    check_origin(&site, req)?;
    rate_limit(ctx, &format!("site:{}", site.id), site.limit(ctx)).await?;
    Ok(site)
}

/// A name the public may see: a first name and an initial from the `name`
/// trait, else the code with most of it hidden.
pub fn masked_name(r: &Row) -> String {
    let traits: serde_json::Map<String, Value> = serde_json::from_str(&r.text("traits")).unwrap_or_default();
    if let Some(name) = traits.get("name").and_then(Value::as_str) {
        let mut words = name.split_whitespace();
        if let Some(first) = words.next() {
            let first: String = first.chars().take(24).collect();
            return match words.last().and_then(|l| l.chars().next()) {
                Some(initial) => format!("{first} {initial}."),
                None => first,
            };
        }
    }
    let code = r.text("code");
    format!("{}•••", code.chars().take(3).collect::<String>())
}

fn board_row(rank: u64, r: &Row) -> Value {
    json!({ "rank": rank, "name": masked_name(r), "score": r.int("score"), "code": r.text("code") })
}

fn parse_period(config: &CampaignConfig, value: Option<&str>) -> Result<Period, ApiError> {
    let period = match value.unwrap_or("all") {
        "all" => Period::All,
        "month" => Period::Month,
        "week" => Period::Week,
        other => {
            return Err(crate::app::invalid(format!(
                "period must be all, month or week, not {other:?}"
            )));
        }
    };
    if !config.leaderboard.periods.contains(&period) {
        return Err(crate::app::invalid("this campaign keeps no board for that period"));
    }
    Ok(period)
}

/// `GET /v1/campaigns/{campaign}/leaderboard`: the top N (cached briefly in
/// KV) and, with `around`, the rows around one code.
pub async fn leaderboard<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, name: &str) -> Reply {
    let site = public_site(ctx, req).await?;
    let (campaign, current) = campaign_of(ctx, site.tenant_id, name).await?;
    let period = parse_period(&current.config, req.param("period"))?;
    let limit = parse_limit(req.param("limit"), 10, 100).map_err(crate::app::invalid)?;
    let key = period_key(period, ctx.now);
    let top = top_rows(ctx, campaign.id, &key, limit).await?;
    let mut body = json!({
        "campaign": campaign.slug,
        "period": req.param("period").unwrap_or("all"),
        "score_by": current.config.leaderboard.score_by,
        "top": top,
    });
    if let Some(code) = req.param("around") {
        let person = query_rows(
            ctx.db,
            stmt!(sql::PERSON_BY_CODE, campaign.id, code.to_ascii_uppercase()),
        )
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| not_found("no such referral code in this campaign"))?;
        body["around"] = around(ctx, campaign.id, &key, person.int("id"), 2).await?;
    }
    Ok(Response::value(200, &body))
}

async fn top_rows<D: Db, K: Kv>(
    ctx: &Ctx<'_, D, K>,
    campaign: i64,
    period: &str,
    limit: u32,
) -> Result<Value, ApiError> {
    let cache_key = format!("top:{campaign}:{period}:{limit}");
    if ctx.top_cache_seconds > 0
        && let Some(text) = ctx.kv.get(&cache_key).await
        && let Ok(cached) = serde_json::from_str::<Value>(&text)
        && cached["at"]
            .as_i64()
            .is_some_and(|at| ctx.now - at < ctx.top_cache_seconds * 1000)
    {
        return Ok(cached["rows"].clone());
    }
    let rows = query_rows(ctx.db, stmt!(sql::TOP, campaign, period, limit)).await?;
    let top = Value::Array(
        rows.iter()
            .enumerate()
            .map(|(i, r)| board_row(i as u64 + 1, r))
            .collect(),
    );
    if ctx.top_cache_seconds > 0 {
        let entry = json!({"at": ctx.now, "rows": top}).to_string();
        ctx.kv.put(&cache_key, &entry, Some(60)).await;
    }
    Ok(top)
}

/// A participant's rank without a scan: the score buckets above, plus ties
/// that joined earlier. `None` while their score is zero (not on the board).
pub async fn rank_of(
    db: &impl Db,
    campaign: i64,
    period: &str,
    participant: i64,
) -> Result<Option<(u64, i64)>, ApiError> {
    Ok(db
        .query(stmt!(sql::RANK, campaign, period, participant))
        .await
        .map_err(db_error)?
        .first()
        .map(|r| (r.int("rank") as u64, r.int("score"))))
}

async fn around<D: Db, K: Kv>(
    ctx: &Ctx<'_, D, K>,
    campaign: i64,
    period: &str,
    participant: i64,
    radius: u32,
) -> Result<Value, ApiError> {
    let Some((rank, score)) = rank_of(ctx.db, campaign, period, participant).await? else {
        return Ok(json!([]));
    };
    let me_row = query_rows(ctx.db, stmt!(sql::SCORE_ROW, campaign, period, participant)).await?;
    let joined = me_row.first().map_or(0, |r| r.int("joined_at"));
    let above = query_rows(
        ctx.db,
        stmt!(sql::ABOVE, campaign, period, score, joined, participant, radius),
    )
    .await?;
    let below = query_rows(
        ctx.db,
        stmt!(sql::BELOW, campaign, period, score, joined, participant, radius),
    )
    .await?;
    let me = query_rows(ctx.db, stmt!(sql::PERSON_BY_ID, participant, campaign)).await?;
    let mut rows = Vec::new();
    for (i, r) in above.iter().rev().enumerate() {
        rows.push(board_row(rank - above.len() as u64 + i as u64, r));
    }
    if let Some(m) = me.first() {
        let mut row = board_row(rank, m);
        row["score"] = json!(score);
        row["you"] = json!(true);
        rows.push(row);
    }
    for (i, r) in below.iter().enumerate() {
        rows.push(board_row(rank + 1 + i as u64, r));
    }
    Ok(Value::Array(rows))
}

/// Public stats of one participant: what the widgets show.
pub async fn stats_of<D: Db, K: Kv>(
    ctx: &Ctx<'_, D, K>,
    campaign: &CampaignRow,
    current: &Versioned,
    p: &Person,
) -> Result<Value, ApiError> {
    let id = p.participant.id.0 as i64;
    let referrals = query_rows(ctx.db, stmt!(sql::REFERRAL_COUNTS, id)).await?;
    let count = |status: &str| -> i64 {
        referrals
            .iter()
            .filter(|r| r.text("status") == status)
            .map(|r| r.int("n"))
            .sum()
    };
    let clicks = query_rows(ctx.db, stmt!(sql::CLICKS_OF, id))
        .await?
        .first()
        .map_or(0, |r| r.int("n"));
    let rank = rank_of(ctx.db, campaign.id, "all", id).await?;
    let grants = query_rows(ctx.db, stmt!(sql::GRANTS_OF, id)).await?;
    let config = &current.config;
    let milestones: Vec<Value> = config
        .milestones
        .iter()
        .map(|m| {
            json!({
                "id": m.id, "name": m.name, "at": m.confirmed_referrals, "every": m.every,
                "reached": times_reached(m, p.confirmed) > 0,
            })
        })
        .collect();
    let next = config
        .milestones
        .iter()
        .filter(|m| m.every.is_none() && m.confirmed_referrals > p.confirmed)
        .min_by_key(|m| m.confirmed_referrals)
        .map(|m| json!({"id": m.id, "name": m.name, "at": m.confirmed_referrals, "remaining": m.confirmed_referrals - p.confirmed}));
    let referral = query_rows(ctx.db, stmt!(sql::REFERRAL_OF, campaign.id, id)).await?;
    let quest_progress = referral.first().map(|r| {
        let mask = r.int("done_mask") as u32;
        let steps: Vec<Value> = config
            .quest
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| json!({"event": s.event, "done": mask & (1 << i) != 0}))
            .collect();
        json!({
            "status": r.text("status"),
            "steps": steps,
            "done": quest::progress(mask, config.quest.steps.len()),
        })
    });
    let link = format!("/r/{}", p.participant.code);
    Ok(json!({
        "campaign": campaign.slug,
        "code": p.participant.code,
        "link": link,
        "clicks": clicks,
        "referrals": {
            "pending": count("pending"),
            "confirmed": p.confirmed,
            "rejected": count("rejected"),
            "expired": count("expired"),
        },
        "points": p.score,
        "rank": rank.map(|r| r.0),
        "tier": refloop_core::engine::rewards::tier(config, p.confirmed),
        "milestones": milestones,
        "next_milestone": next,
        "rewards": grants.iter().map(|g| json!({
            "reward": g.text("reward_id"),
            "name": config.reward(&g.text("reward_id")).map(|r| r.name.clone()),
            "status": g.text("status"),
            "earned_at": iso(g.opt_int("earned_at")),
        })).collect::<Vec<_>>(),
        "quest": quest_progress,
        "share_text": config.share_text,
        "mode": config.mode,
    }))
}

/// `GET /v1/campaigns/{campaign}/participants/{code}`.
pub async fn participant<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, name: &str, code: &str) -> Reply {
    let site = public_site(ctx, req).await?;
    let (campaign, current) = campaign_of(ctx, site.tenant_id, name).await?;
    let row = query_rows(
        ctx.db,
        stmt!(sql::PERSON_BY_CODE, campaign.id, code.to_ascii_uppercase()),
    )
    .await?
    .into_iter()
    .next()
    .filter(|r| r.opt_int("erased_at").is_none())
    .ok_or_else(|| not_found("no such referral code in this campaign"))?;
    let stats = stats_of(ctx, &campaign, &current, &person_from_row(&row)).await?;
    Ok(Response::value(200, &stats))
}

/// The participant an SDK call speaks for (`anonymous_id` or `user_id`).
async fn caller<D: Db, K: Kv>(
    ctx: &Ctx<'_, D, K>,
    campaign: &CampaignRow,
    anonymous_id: Option<&str>,
    user_id: Option<&str>,
) -> Result<Person, ApiError> {
    if anonymous_id.is_none() && user_id.is_none() {
        return Err(bad("send `anonymous_id` or `user_id`"));
    }
    ctx.db
        .query(stmt!(sql::PERSON_BY_IDENTITY, campaign.id, user_id, anonymous_id))
        .await
        .map_err(db_error)?
        .first()
        .map(person_from_row)
        .ok_or_else(|| not_found("not a participant of this campaign yet (sign up first)"))
}

/// `GET /v1/campaigns/{campaign}/me?key&anonymous_id|user_id`: the SDK's `me()`.
pub async fn me<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, name: &str) -> Reply {
    let site = public_site(ctx, req).await?;
    let (campaign, current) = campaign_of(ctx, site.tenant_id, name).await?;
    let p = caller(ctx, &campaign, req.param("anonymous_id"), req.param("user_id")).await?;
    let stats = stats_of(ctx, &campaign, &current, &p).await?;
    Ok(Response::value(200, &stats))
}

/// `POST /v1/invitations` `{key, campaign, anonymous_id|user_id}` → `{token, url}`.
pub async fn invitation<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request) -> Reply {
    let body = json_body(req)?;
    let s = |k: &str| body.get(k).and_then(Value::as_str);
    let site = site_by_publishable_key(ctx.db, s("key")).await?;
    check_origin(&site, req)?;
    rate_limit(ctx, &format!("site:{}", site.id), site.limit(ctx)).await?;
    let name = s("campaign").ok_or_else(|| bad("name the `campaign`"))?;
    let (campaign, current) = campaign_of(ctx, site.tenant_id, name).await?;
    let inviter = caller(ctx, &campaign, s("anonymous_id"), s("user_id")).await?;
    let inv = decide_invitation(
        &current.config,
        ParticipantId(inviter.participant.id.0),
        ctx.now,
        &mut ctx.rng(),
    )
    .map_err(|m| ApiError::new(ErrorCode::Conflict, m))?;
    ctx.db
        .batch(vec![stmt!(
            sql::INSERT_INVITATION,
            campaign.id,
            inv.token.as_str(),
            inv.inviter.0,
            inv.created_at,
            inv.expires_at
        )])
        .await
        .map_err(db_error)?;
    let landing = current.config.landing_url.clone().unwrap_or_default();
    let param = if landing.contains('?') { '&' } else { '?' };
    Ok(Response::value(
        201,
        &json!({
            "token": inv.token,
            "url": format!("{landing}{param}invite={}", inv.token),
            "expires_at": iso(Some(inv.expires_at)),
        }),
    ))
}

/// `GET /v1/qr.svg?data=…`: a QR code of a referral link or invitation, as SVG,
/// for the share widget. Pure and cacheable: the same text, the same image.
pub fn qr(req: &Request) -> Reply {
    let data = req.param("data").unwrap_or("");
    if data.is_empty() || data.len() > 512 {
        return Err(crate::app::invalid("`data` is the text to encode, 1 to 512 bytes"));
    }
    let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| crate::app::invalid(format!("cannot encode this text: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(160, 160)
        .quiet_zone(true)
        .build();
    Ok(Response {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "image/svg+xml".into()),
            ("Cache-Control".into(), "public, max-age=86400".into()),
            ("Access-Control-Allow-Origin".into(), "*".into()),
        ],
        body: svg,
    })
}
