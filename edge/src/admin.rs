//! `/v1/admin/…`: what an operator does with the secret key, and tenant
//! creation with the root key. Every write is one transaction and leaves a
//! line in the audit log.

use crate::app::{
    Campaigns, Ctx, Limiter, Params, Reply, Request, Response, Site, bad, db_error, hex, internal, invalid, iso,
    json_body, not_found, query_rows, row_value, site_by_secret_key,
};
use crate::campaign::Op;
use crate::db::{Db, Kv, RowExt, Stmt};
use crate::directory::{CampaignRow, call, campaign_of, notice_statements};
use crate::routes::{Route, parse_limit};
use crate::sql;
use crate::stmt;
use refloop_core::engine::config::{CampaignConfig, ConfigError, Period, PointRule, RewardDef, Versioned};
use refloop_core::engine::model::DAY_MS;
use refloop_core::engine::rewards::GrantStatus;
use refloop_core::keys::hash_secret_key;
use refloop_core::time::parse_rfc3339_ms;
use refloop_core::{ApiError, ErrorCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

// ---- tenants (root key) ------------------------------------------------------

fn check_root<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
) -> Result<(), ApiError> {
    let expected = ctx
        .root_key_hash
        .ok_or_else(|| ApiError::new(ErrorCode::Forbidden, "no root key is configured on this edge"))?;
    let given = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "send `Authorization: Bearer <root key>`"))?;
    let hash = hex(&Sha256::digest(given.as_bytes()));
    // Both are fixed-length hex digests; compare without an early exit.
    let same =
        hash.len() == expected.len() && hash.bytes().zip(expected.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0;
    if !same {
        return Err(ApiError::new(ErrorCode::Unauthorized, "this is not the root key"));
    }
    Ok(())
}

fn valid_origin(o: &str) -> bool {
    (o.starts_with("https://") || o.starts_with("http://"))
        && o.len() <= 200
        && !o.ends_with('/')
        && o.matches('/').count() == 2
        && !o.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `POST /v1/admin/tenants` `{name, site: {name, origins}}` → the tenant and its
/// first site's keys. The secret key is shown once; only its hash is kept.
pub async fn create_tenant<D: Db, K: Kv, C: Campaigns, L: Limiter>(ctx: &Ctx<'_, D, K, C, L>, req: &Request) -> Reply {
    check_root(ctx, req)?;
    let body = json_body(req)?;
    let name = text_field(&body, "name", 200)?;
    let site = body.get("site").and_then(Value::as_object).cloned().unwrap_or_default();
    let site_name = site.get("name").and_then(Value::as_str).unwrap_or(&name).to_owned();
    let origins: Vec<String> = match site.get("origins") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.iter().map(|o| o.as_str().unwrap_or_default().to_owned()).collect(),
        Some(_) => return Err(bad("`site.origins` must be an array of origins")),
    };
    if let Some(o) = origins.iter().find(|o| !valid_origin(o)) {
        return Err(invalid(format!("{o:?} is not an origin like https://shop.example")));
    }
    let per_minute = match site.get("rate_limit_per_minute") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| invalid("`site.rate_limit_per_minute` is an integer from 1 to 1,000,000"))?,
        ),
    };
    let publishable = format!("pk_{}", hex(&ctx.entropy[..16]));
    let secret = format!("sk_{}", hex(&ctx.entropy[16..48]));
    let tenant = query_rows(ctx.db, stmt!(sql::INSERT_TENANT, name.as_str(), ctx.now))
        .await?
        .first()
        .map(|r| r.int("id"))
        .ok_or_else(|| internal("tenant insert returned no id"))?;
    let mut stmts = vec![stmt!(
        sql::INSERT_SITE,
        tenant,
        site_name.as_str(),
        publishable.as_str(),
        hash_secret_key(&secret),
        ctx.now,
        per_minute
    )];
    for o in &origins {
        stmts.push(stmt!(sql::INSERT_SITE_ORIGIN, publishable.as_str(), o.as_str()));
    }
    stmts.push(audit(
        tenant,
        "tenant.create",
        &format!("tenant:{tenant}"),
        json!({"name": name}),
        ctx.now,
    ));
    ctx.db.batch(stmts).await.map_err(db_error)?;
    Ok(Response::value(
        201,
        &json!({
            "tenant": {"id": tenant, "name": name},
            "site": {"name": site_name, "publishable_key": publishable, "secret_key": secret, "origins": origins},
        }),
    ))
}

pub async fn list_tenants<D: Db, K: Kv, C: Campaigns, L: Limiter>(ctx: &Ctx<'_, D, K, C, L>, req: &Request) -> Reply {
    check_root(ctx, req)?;
    let rows = query_rows(ctx.db, stmt!(sql::LIST_TENANTS)).await?;
    Ok(Response::value(200, &json!({ "tenants": rows })))
}

// ---- the secret-key routes ---------------------------------------------------

pub async fn dispatch<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    route: Route,
    p: &Params,
) -> Reply {
    let site = site_by_secret_key(ctx.db, req).await?;
    crate::app::rate_limit(ctx, req, &site, crate::app::Bucket::Server).await?;
    let c = p.get("campaign");
    match route {
        Route::AdminEvents => events(ctx, req, &site).await,
        Route::ListCampaigns => list_campaigns(ctx, &site).await,
        Route::CreateCampaign => create_campaign(ctx, req, &site).await,
        Route::GetCampaign => get_campaign(ctx, &site, c).await,
        Route::UpdateCampaign => update_campaign(ctx, req, &site, c, Part::Whole).await,
        Route::PutPointRules => update_campaign(ctx, req, &site, c, Part::PointRules).await,
        Route::PutRewards => update_campaign(ctx, req, &site, c, Part::Rewards).await,
        Route::SetCampaignStatus => set_status(ctx, req, &site, c).await,
        Route::CampaignVersions => versions(ctx, &site, c).await,
        Route::SearchParticipants => search(ctx, req, &site, c).await,
        Route::ParticipantLedger => ledger(ctx, req, &site, c, p.get("participant")).await,
        Route::Adjust => adjust(ctx, req, &site, c, p.get("participant")).await,
        Route::GrantByHand => grant_by_hand(ctx, req, &site, c, p.get("participant")).await,
        Route::Redeem => redeem(ctx, req, &site, c).await,
        Route::Answers => {
            let (campaign, _) = campaign_of(ctx, site.tenant_id, c).await?;
            let limit = parse_limit(req.param("limit"), 50, 500).map_err(invalid)?;
            let q = req.param("q").unwrap_or_default().to_owned();
            Ok(Response::value(
                200,
                &call(ctx, &campaign, Op::Answers { q, limit }).await?,
            ))
        }
        Route::Erase => erase(ctx, &site, c, p.get("participant")).await,
        Route::ListReferrals => referrals(ctx, req, &site, c).await,
        Route::ReviewReferral => review(ctx, req, &site, c, p.get("referral")).await,
        Route::ListGrants => grants(ctx, req, &site, c).await,
        Route::GrantTransition => transition(ctx, req, &site, c, p.get("grant")).await,
        Route::ListSnapshots => snapshots(ctx, req, &site, c).await,
        Route::TakeSnapshot => take_snapshot(ctx, req, &site, c).await,
        Route::Funnel => stats_funnel(ctx, &site, c).await,
        Route::Money | Route::Sources => {
            let (campaign, _) = campaign_of(ctx, site.tenant_id, c).await?;
            let op = if route == Route::Money { Op::Money } else { Op::Sources };
            Ok(Response::value(200, &call(ctx, &campaign, op).await?))
        }
        Route::Trend => stats_trend(ctx, req, &site, c).await,
        Route::Export => export(ctx, &site, c).await,
        Route::ListWebhooks => list_webhooks(ctx, &site).await,
        Route::Identity => Ok(identity(ctx, &site, req)),
        Route::Person => person(ctx, req, &site).await,
        Route::ErasePerson => erase_person(ctx, req, &site).await,
        Route::CreateWebhook => create_webhook(ctx, req, &site).await,
        Route::DeleteWebhook => delete_webhook(ctx, &site, p.get("webhook")).await,
        Route::Deliveries => deliveries(ctx, req, &site, p.get("webhook")).await,
        Route::Audit => audit_log(ctx, req, &site).await,
        Route::EndCampaign => end_campaign(ctx, req, &site, c).await,
        Route::CheckCampaign => check_campaign(ctx, &site, c).await,
        Route::Replay => replay(ctx, req, &site, c).await,
        _ => Err(not_found("no such route")),
    }
}

pub fn audit(tenant: i64, action: &str, target: &str, detail: Value, at: i64) -> Stmt {
    stmt!(sql::AUDIT, tenant, action, target, detail.to_string(), at)
}

fn text_field(body: &serde_json::Map<String, Value>, key: &str, max: usize) -> Result<String, ApiError> {
    match body.get(key) {
        Some(Value::String(s))
            if !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control) =>
        {
            Ok(s.clone())
        }
        Some(_) => Err(invalid(format!("`{key}` must be text of 1 to {max} characters"))),
        None => Err(bad(format!("`{key}` is required"))),
    }
}

fn id_param(v: &str, what: &str) -> Result<i64, ApiError> {
    v.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid(format!("{what} must be a positive integer id, not {v:?}")))
}

async fn events<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
) -> Reply {
    let limit = parse_limit(req.param("limit"), 50, 1000).map_err(invalid)?;
    let rows = query_rows(ctx.db, stmt!(sql::LIST_EVENTS, site.id, limit)).await?;
    let events: Vec<Value> = rows
        .iter()
        .map(|r| {
            let payload: Value = serde_json::from_str(&r.text("payload")).unwrap_or(Value::Null);
            json!({
                "id": r.text("event_id"),
                "type": r.text("type"),
                "event": r.text("name"),
                "anonymous_id": row_value(r, "anonymous_id"),
                "user_id": row_value(r, "user_id"),
                "timestamp": iso(r.opt_int("occurred_at")),
                "received_at": iso(r.opt_int("received_at")),
                "trusted": r.int("trusted") != 0,
                "properties": payload.get("properties"),
            })
        })
        .collect();
    Ok(Response::value(200, &json!({ "events": events })))
}

// ---- campaigns -----------------------------------------------------------------

fn campaign_json(c: &CampaignRow, v: &Versioned) -> Value {
    json!({
        "id": c.id, "slug": c.slug, "name": c.name, "status": c.status,
        "version": v.version, "config": v.config,
        "created_at": iso(Some(c.created_at)), "updated_at": iso(c.updated_at),
    })
}

fn config_errors(errors: Vec<ConfigError>) -> ApiError {
    let message = errors
        .iter()
        .map(|e| format!("{}: {}", e.path, e.reason))
        .collect::<Vec<_>>()
        .join("; ");
    ApiError::new(ErrorCode::InvalidConfig, message)
}

/// Referral links redirect to the landing page, so it must be on one of the
/// site's own origins (else every code would be an open redirect to any page
/// an operator, or whoever holds the key, names). A preset's placeholder page
/// moves to the site's first origin.
fn landing_on_site(mut config: CampaignConfig, site: &Site, preset: bool) -> Result<CampaignConfig, ApiError> {
    let Some(url) = config.landing_url.clone() else {
        return Ok(config);
    };
    let origin_of = |u: &str| -> String {
        let scheme_end = u.find("://").map_or(0, |i| i + 3);
        let end = u[scheme_end..]
            .find(['/', '?', '#'])
            .map_or(u.len(), |i| scheme_end + i);
        u[..end].to_ascii_lowercase()
    };
    if site.origins.is_empty()
        || site
            .origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(&origin_of(&url)))
    {
        return Ok(config);
    }
    if preset {
        let path = &url[origin_of(&url).len()..];
        config.landing_url = Some(format!("{}{path}", site.origins[0]));
        return Ok(config);
    }
    Err(ApiError::new(
        ErrorCode::InvalidConfig,
        format!(
            "landing_url: must be on one of the site's origins ({})",
            site.origins.join(", ")
        ),
    ))
}

fn parse_config(v: &Value) -> Result<CampaignConfig, ApiError> {
    if !v.is_object() {
        return Err(bad("`config` must be a JSON object"));
    }
    CampaignConfig::from_json(&v.to_string()).map_err(config_errors)
}

async fn list_campaigns<D: Db, K: Kv, C: Campaigns, L: Limiter>(ctx: &Ctx<'_, D, K, C, L>, site: &Site) -> Reply {
    let rows = query_rows(ctx.db, stmt!(sql::CAMPAIGNS_OF_TENANT, site.tenant_id)).await?;
    let campaigns: Vec<Value> = rows
        .iter()
        .map(CampaignRow::from_row)
        .map(|c| json!({"id": c.id, "slug": c.slug, "name": c.name, "status": c.status, "version": c.current_version}))
        .collect();
    Ok(Response::value(200, &json!({ "campaigns": campaigns })))
}

/// `POST /v1/admin/campaigns` `{slug, config}` or `{slug, preset}`.
async fn create_campaign<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
) -> Reply {
    let body = json_body(req)?;
    let slug = text_field(&body, "slug", 64)?;
    if !slug
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || slug.parse::<i64>().is_ok()
    {
        return Err(invalid(
            "`slug` is lower-case letters, digits and dashes (and not a number)",
        ));
    }
    let config = match (body.get("config"), body.get("preset").and_then(Value::as_str)) {
        (Some(c), _) => parse_config(c)?,
        (None, Some(name)) => {
            refloop_core::engine::presets::preset(name).ok_or_else(|| invalid(format!("no preset {name:?}")))?
        }
        (None, None) => return Err(bad("send a `config` (or the name of a `preset`)")),
    };
    let config = landing_on_site(config, site, body.get("config").is_none())?;
    let text = config.to_json();
    let exists = query_rows(ctx.db, stmt!(sql::CAMPAIGN, site.tenant_id, slug.as_str())).await?;
    if !exists.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("a campaign {slug:?} exists"),
        ));
    }
    let stmts = vec![
        stmt!(
            sql::INSERT_CAMPAIGN,
            site.tenant_id,
            slug.as_str(),
            config.name.as_str(),
            ctx.now
        ),
        stmt!(sql::INSERT_FIRST_VERSION, site.tenant_id, slug.as_str(), text, ctx.now),
        audit(
            site.tenant_id,
            "campaign.create",
            &format!("campaign:{slug}"),
            json!({"version": 1}),
            ctx.now,
        ),
    ];
    ctx.db.batch(stmts).await.map_err(|e| {
        if e.retryable {
            ApiError::new(ErrorCode::Conflict, format!("a campaign {slug:?} exists"))
        } else {
            internal(e)
        }
    })?;
    // This isolate's next batch sees the change at once.
    crate::ingest::forget_campaigns(site.tenant_id);
    let (c, v) = campaign_of(ctx, site.tenant_id, &slug).await?;
    wake(ctx, &c).await;
    Ok(Response::value(201, &campaign_json(&c, &v)))
}

/// A campaign's object learns of a new version at once (not at its next
/// event), so its alarm is armed for the version's `ends_at` even when no
/// event ever comes. A failure here only delays that to the next call.
async fn wake<D: Db, K: Kv, C: Campaigns, L: Limiter>(ctx: &Ctx<'_, D, K, C, L>, c: &CampaignRow) {
    if let Err(e) = call(ctx, c, Op::Check).await {
        crate::app::log(&format!("campaign {}: not woken: {}", c.id, e.message));
    }
}

async fn get_campaign<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    site: &Site,
    name: &str,
) -> Reply {
    let (c, v) = campaign_of(ctx, site.tenant_id, name).await?;
    Ok(Response::value(200, &campaign_json(&c, &v)))
}

enum Part {
    Whole,
    PointRules,
    Rewards,
}

/// An update is a new version: referrals keep the version they started under.
async fn update_campaign<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    name: &str,
    part: Part,
) -> Reply {
    let body = json_body(req)?;
    let (c, current) = campaign_of(ctx, site.tenant_id, name).await?;
    let mut next = current.config.clone();
    match part {
        Part::Whole => next = parse_config(body.get("config").ok_or_else(|| bad("send the new `config`"))?)?,
        Part::PointRules => {
            let v = body.get("point_rules").ok_or_else(|| bad("send `point_rules`"))?;
            next.point_rules = serde_json::from_value::<Vec<PointRule>>(v.clone())
                .map_err(|e| ApiError::new(ErrorCode::InvalidConfig, format!("point_rules: {e}")))?;
        }
        Part::Rewards => {
            let v = body.get("rewards").ok_or_else(|| bad("send `rewards`"))?;
            next.rewards = serde_json::from_value::<Vec<RewardDef>>(v.clone())
                .map_err(|e| ApiError::new(ErrorCode::InvalidConfig, format!("rewards: {e}")))?;
        }
    }
    let next = landing_on_site(next, site, false)?;
    let versioned = current.update(next).map_err(config_errors)?;
    if let Some(expected) = body.get("version").and_then(Value::as_u64)
        && expected != u64::from(current.version)
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "the campaign is at version {}, not {expected}; reload and edit again",
                current.version
            ),
        ));
    }
    let stmts = vec![
        stmt!(
            sql::INSERT_NEXT_VERSION,
            c.id,
            current.version,
            versioned.config.to_json(),
            ctx.now
        ),
        stmt!(
            sql::SET_CAMPAIGN_VERSION,
            c.id,
            versioned.version,
            versioned.config.name.as_str(),
            ctx.now
        ),
        audit(
            site.tenant_id,
            "campaign.update",
            &format!("campaign:{}", c.slug),
            json!({"version": versioned.version}),
            ctx.now,
        ),
    ];
    ctx.db.batch(stmts).await.map_err(|e| {
        if e.retryable {
            ApiError::new(
                ErrorCode::Conflict,
                "someone else updated the campaign at the same time; reload",
            )
        } else {
            internal(e)
        }
    })?;
    // This isolate's next batch sees the change at once.
    crate::ingest::forget_campaigns(site.tenant_id);
    let (c, v) = campaign_of(ctx, site.tenant_id, &c.slug).await?;
    wake(ctx, &c).await;
    Ok(Response::value(200, &campaign_json(&c, &v)))
}

async fn set_status<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    name: &str,
) -> Reply {
    let body = json_body(req)?;
    let status = text_field(&body, "status", 16)?;
    if !["active", "paused", "ended"].contains(&status.as_str()) {
        return Err(invalid("`status` is active, paused or ended"));
    }
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    ctx.db
        .batch(vec![
            stmt!(sql::SET_CAMPAIGN_STATUS, c.id, status.as_str(), ctx.now),
            audit(
                site.tenant_id,
                "campaign.status",
                &format!("campaign:{}", c.slug),
                json!({"status": status}),
                ctx.now,
            ),
        ])
        .await
        .map_err(db_error)?;
    // This isolate's next batch sees the change at once.
    crate::ingest::forget_campaigns(site.tenant_id);
    get_campaign(ctx, site, name).await
}

async fn versions<D: Db, K: Kv, C: Campaigns, L: Limiter>(ctx: &Ctx<'_, D, K, C, L>, site: &Site, name: &str) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let rows = query_rows(ctx.db, stmt!(sql::CAMPAIGN_VERSIONS, c.id)).await?;
    let versions: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "version": r.int("version"),
                "created_at": iso(r.opt_int("created_at")),
                "config": serde_json::from_str::<Value>(&r.text("config")).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(Response::value(200, &json!({ "versions": versions })))
}

// ---- a campaign's own state: answered by its object ---------------------------

/// The answer, without the notices it queued.
fn without_notices(mut answer: Value) -> Value {
    if let Value::Object(m) = &mut answer {
        m.remove("notices");
    }
    answer
}

/// A write of an operator's: the campaign decides, then the audit line and
/// the notices go to D1 in one transaction.
async fn admin_write<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    site: &Site,
    c: &CampaignRow,
    op: Op,
    action: &str,
    target: &str,
    detail: Value,
) -> Result<Value, ApiError> {
    let answer = call(ctx, c, op).await?;
    let mut stmts = notice_statements(&c.meta(), &answer, ctx.now);
    stmts.push(audit(site.tenant_id, action, target, detail, ctx.now));
    ctx.db.batch(stmts).await.map_err(db_error)?;
    Ok(without_notices(answer))
}

async fn search<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    name: &str,
) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let limit = parse_limit(req.param("limit"), 50, 500).map_err(invalid)?;
    let q = req.param("q").unwrap_or("").to_owned();
    Ok(Response::value(
        200,
        &call(ctx, &c, Op::Participants { q, limit }).await?,
    ))
}

/// A participant's ledger as an audit trail; the object checks the invariant
/// (the kept score is the sum of the entries) on the way out.
async fn ledger<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    name: &str,
    pid: &str,
) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let participant = id_param(pid, "participant")? as u64;
    let limit = parse_limit(req.param("limit"), 100, 1000).map_err(invalid)?;
    Ok(Response::value(
        200,
        &call(ctx, &c, Op::Ledger { participant, limit }).await?,
    ))
}

/// `{points, note, idempotency_key?}`: an operator's correction, once per key.
async fn adjust<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    name: &str,
    pid: &str,
) -> Reply {
    let body = json_body(req)?;
    let points = body
        .get("points")
        .and_then(Value::as_i64)
        .filter(|p| *p != 0 && p.abs() <= 1_000_000_000)
        .ok_or_else(|| invalid("`points` must be a non-zero integer within ±1,000,000,000"))?;
    let note = text_field(&body, "note", 500)?;
    let key = idempotency_key(ctx, req, &body)?;
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let participant = id_param(pid, "participant")? as u64;
    let op = Op::Adjust {
        participant,
        points,
        note: note.clone(),
        key: key.clone(),
    };
    let detail = json!({"points": points, "note": note, "key": key});
    let answer = admin_write(
        ctx,
        site,
        &c,
        op,
        "ledger.adjust",
        &participant_target(&c.slug, participant),
        detail,
    )
    .await?;
    Ok(created_once(answer))
}

/// `201` for a write made now, `200` for one its key had made before.
fn created_once(answer: Value) -> Response {
    let status = if answer["duplicate"] == json!(true) { 200 } else { 201 };
    Response::value(status, &answer)
}

/// An operator's write is made once per key: the body's `idempotency_key`,
/// the `Idempotency-Key` header, or (neither) one of its own.
fn idempotency_key<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    body: &serde_json::Map<String, Value>,
) -> Result<String, ApiError> {
    match body.get("idempotency_key") {
        Some(Value::String(k)) if !k.is_empty() && k.len() <= 100 => Ok(k.clone()),
        Some(_) => Err(invalid("`idempotency_key` must be text of 1 to 100 characters")),
        None => Ok(req
            .header("idempotency-key")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}:{}", ctx.now, ctx.seed))),
    }
}

/// `POST …/participants/{id}/grants` `{reward, note, idempotency_key?}`: a
/// reward given by hand (caps apply; audited with the operator's note).
async fn grant_by_hand<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    name: &str,
    pid: &str,
) -> Reply {
    let body = json_body(req)?;
    let reward = text_field(&body, "reward", 64)?;
    let note = text_field(&body, "note", 500)?;
    let key = idempotency_key(ctx, req, &body)?;
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let participant = id_param(pid, "participant")? as u64;
    let op = Op::Grant {
        participant,
        reward: reward.clone(),
        key: key.clone(),
    };
    let detail = json!({"reward": reward, "note": note, "key": key});
    let target = participant_target(&c.slug, participant);
    let answer = admin_write(ctx, site, &c, op, "grant.manual", &target, detail).await?;
    Ok(created_once(answer))
}

/// `POST /v1/admin/campaigns/{campaign}/redeem` `{token, check?}`: a
/// checkout's coupon or exchange token, checked (`check: true`, nothing
/// changes) or redeemed once (the grant becomes `redeemed`; again: 409).
async fn redeem<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    name: &str,
) -> Reply {
    let body = json_body(req)?;
    let token = text_field(&body, "token", 64)?;
    let check = body.get("check").and_then(Value::as_bool).unwrap_or(false);
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let op = Op::Redeem {
        token: token.clone(),
        check,
    };
    let answer = match check {
        true => call(ctx, &c, op).await?,
        false => {
            let target = format!("campaign:{}/token", c.slug);
            admin_write(ctx, site, &c, op, "grant.redeem", &target, json!({"token": token})).await?
        }
    };
    Ok(Response::value(200, &answer))
}

/// The audit target of what was done to a participant of a campaign.
fn participant_target(slug: &str, participant: u64) -> String {
    format!("campaign:{slug}/participant:{participant}")
}

/// `DELETE /v1/admin/campaigns/{campaign}/participants/{id}`: GDPR erasure
/// of the person this participant is, in every campaign of the tenant (the
/// same as `POST /v1/admin/people/erase` with their identities).
async fn erase<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    site: &Site,
    name: &str,
    pid: &str,
) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let participant = id_param(pid, "participant")? as u64;
    let answer = call(ctx, &c, Op::Erase { participant }).await?;
    let ids = |k: &str| -> Vec<String> {
        answer[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let mut erased = vec![participant_target(&c.slug, participant)];
    let done = erase_everywhere(
        ctx,
        site,
        "participant.erase",
        ids("anonymous_ids"),
        ids("user_ids"),
        &mut erased,
    )
    .await?;
    Ok(Response::value(
        200,
        &json!({"participant": participant, "erased": true, "campaigns": done}),
    ))
}

/// The identities a person request names: `user_id` and/or `anonymous_id`.
fn person_ids(get: impl Fn(&str) -> Option<String>) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let (anonymous, users): (Vec<String>, Vec<String>) = (
        get("anonymous_id").into_iter().collect(),
        get("user_id").into_iter().collect(),
    );
    if anonymous.is_empty() && users.is_empty() {
        return Err(bad("name the person: `user_id` and/or `anonymous_id`"));
    }
    if anonymous.iter().chain(&users).any(|v| v.is_empty() || v.len() > 128) {
        return Err(invalid("an id is 1 to 128 characters"));
    }
    Ok((anonymous, users))
}

/// `POST /v1/admin/people/erase` `{user_id?, anonymous_id?}`: GDPR erasure.
/// The person is forgotten in every campaign of the tenant (ids, traits,
/// hashes, board rows, the input log, notes written about them), in every
/// site's raw events from any of their devices, and in the audit log's notes;
/// the ledger's numbers stay so every sum stays true.
async fn erase_person<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
) -> Reply {
    let body = json_body(req)?;
    let (anonymous, users) = person_ids(|k| body.get(k).and_then(Value::as_str).map(str::to_owned))?;
    let mut erased = Vec::new();
    let done = erase_everywhere(ctx, site, "person.erase", anonymous, users, &mut erased).await?;
    Ok(Response::value(
        200,
        &json!({"erased": erased.len(), "campaigns": done}),
    ))
}

/// Campaigns one erasure or export asks at most (each is one subrequest).
const PEOPLE_CAMPAIGNS: usize = 200;

/// The tenant's campaigns a person may be in (every one with a version).
async fn people_campaigns<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    site: &Site,
) -> Result<Vec<CampaignRow>, ApiError> {
    Ok(query_rows(ctx.db, stmt!(sql::CAMPAIGNS_OF_TENANT, site.tenant_id))
        .await?
        .iter()
        .map(CampaignRow::from_row)
        .filter(|c| c.current_version > 0)
        .take(PEOPLE_CAMPAIGNS)
        .collect())
}

async fn erase_everywhere<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    site: &Site,
    action: &str,
    mut anonymous: Vec<String>,
    mut users: Vec<String>,
    erased: &mut Vec<String>,
) -> Result<usize, ApiError> {
    let campaigns = people_campaigns(ctx, site).await?;
    // Twice: a device one campaign knew may name them in another.
    for _ in 0..2 {
        let before = anonymous.len() + users.len();
        for c in &campaigns {
            let op = Op::ErasePerson {
                anonymous_ids: anonymous.clone(),
                user_ids: users.clone(),
            };
            let answer = call(ctx, c, op).await?;
            for p in answer["erased"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
            {
                erased.push(participant_target(&c.slug, p));
            }
            for (key, list) in [("anonymous_ids", &mut anonymous), ("user_ids", &mut users)] {
                for v in answer[key].as_array().into_iter().flatten().filter_map(Value::as_str) {
                    if !list.iter().any(|x| x == v) {
                        list.push(v.to_owned());
                    }
                }
            }
        }
        if anonymous.len() + users.len() == before {
            break;
        }
    }
    let list = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    ctx.db
        .batch(vec![
            stmt!(sql::ERASE_EVENTS, site.tenant_id, list(&users), list(&anonymous)),
            stmt!(sql::ERASE_AUDIT_NOTES, site.tenant_id, list(erased)),
            audit(
                site.tenant_id,
                action,
                "person",
                json!({"participants": erased.len(), "campaigns": campaigns.len()}),
                ctx.now,
            ),
        ])
        .await
        .map_err(db_error)?;
    Ok(campaigns.len())
}

/// `GET /v1/admin/people?user_id=&anonymous_id=`: the right of access,
/// everything the tenant's campaigns and raw events keep about a person.
async fn person<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
) -> Reply {
    let (anonymous, users) = person_ids(|k| req.param(k).map(str::to_owned))?;
    let campaigns = people_campaigns(ctx, site).await?;
    let mut found = Vec::new();
    for c in &campaigns {
        let op = Op::Person {
            anonymous_ids: anonymous.clone(),
            user_ids: users.clone(),
        };
        let answer = call(ctx, c, op).await?;
        for p in answer["participants"].as_array().into_iter().flatten() {
            found.push(json!({"campaign": c.slug, "record": p}));
        }
    }
    let list = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    let events: Vec<Value> = query_rows(
        ctx.db,
        stmt!(
            sql::EVENTS_OF_PERSON,
            site.tenant_id,
            list(&users),
            list(&anonymous),
            1000i64
        ),
    )
    .await?
    .into_iter()
    .map(Value::Object)
    .collect();
    Ok(Response::value(200, &json!({"campaigns": found, "events": events})))
}

async fn referrals<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    name: &str,
) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let status = req.param("status").unwrap_or("").to_owned();
    let review = req.param("review").unwrap_or("").to_owned();
    if !["", "pending", "confirmed", "rejected", "expired"].contains(&status.as_str()) {
        return Err(invalid("status is pending, confirmed, rejected or expired"));
    }
    if !["", "clear", "pending", "approved", "rejected"].contains(&review.as_str()) {
        return Err(invalid("review is clear, pending, approved or rejected"));
    }
    let limit = parse_limit(req.param("limit"), 50, 500).map_err(invalid)?;
    Ok(Response::value(
        200,
        &call(ctx, &c, Op::Referrals { status, review, limit }).await?,
    ))
}

/// `{approve: bool}` on a flagged referral.
async fn review<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    name: &str,
    rid: &str,
) -> Reply {
    let body = json_body(req)?;
    let approve = body
        .get("approve")
        .and_then(Value::as_bool)
        .ok_or_else(|| bad("send `approve`: true or false"))?;
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let referral = id_param(rid, "referral")? as u64;
    let action = if approve { "referral.approve" } else { "referral.reject" };
    let op = Op::Review { referral, approve };
    let answer = admin_write(ctx, site, &c, op, action, &format!("referral:{referral}"), json!({})).await?;
    Ok(Response::value(200, &answer))
}

async fn grants<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    name: &str,
) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let status = req.param("status").unwrap_or("").to_owned();
    if !status.is_empty() && GrantStatus::parse(&status).is_none() {
        return Err(invalid(
            "status is one of earned, pending_review, approved, fulfilled, redeemed, rejected, expired, revoked",
        ));
    }
    let limit = parse_limit(req.param("limit"), 50, 500).map_err(invalid)?;
    Ok(Response::value(
        200,
        &call(ctx, &c, Op::Grants { status, limit }).await?,
    ))
}

/// `{to, note?}`: moves a grant along its lifecycle; approval pays a points
/// reward into the ledger, revocation takes it back.
async fn transition<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    name: &str,
    gid: &str,
) -> Reply {
    let body = json_body(req)?;
    let to = body
        .get("to")
        .and_then(Value::as_str)
        .and_then(GrantStatus::parse)
        .ok_or_else(|| invalid("`to` is one of approved, fulfilled, redeemed, rejected, expired, revoked"))?;
    let note = match body.get("note") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= 500 => Some(s.clone()),
        Some(_) => return Err(invalid("`note` is text of at most 500 characters")),
    };
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let grant = id_param(gid, "grant")? as u64;
    let op = Op::Transition { grant, to, note };
    let detail = json!({"to": to.as_str()});
    let answer = admin_write(ctx, site, &c, op, "grant.transition", &format!("grant:{grant}"), detail).await?;
    Ok(Response::value(200, &answer))
}

/// `POST /v1/admin/campaigns/{campaign}/end` `{seed?}`: the campaign ends now
/// (status `ended`), its end distributions run (top N, min score, min
/// referrals, raffle with the recorded seed) and the grants are returned.
async fn end_campaign<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    name: &str,
) -> Reply {
    let body = if req.body.is_empty() {
        Default::default()
    } else {
        json_body(req)?
    };
    let seed = match body.get("seed") {
        None | Some(Value::Null) => ctx.seed >> 11,
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| invalid("`seed` is a non-negative integer (or its decimal text)"))?,
    };
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let answer = call(ctx, &c, Op::End { seed }).await?;
    let mut stmts = notice_statements(&c.meta(), &answer, ctx.now);
    stmts.push(stmt!(sql::SET_CAMPAIGN_STATUS, c.id, "ended", ctx.now));
    stmts.push(audit(
        site.tenant_id,
        "campaign.end",
        &format!("campaign:{}", c.slug),
        json!({"seed": seed.to_string(), "grants": answer["grants"]}),
        ctx.now,
    ));
    ctx.db.batch(stmts).await.map_err(db_error)?;
    // This isolate's next batch sees the change at once.
    crate::ingest::forget_campaigns(site.tenant_id);
    Ok(Response::value(200, &without_notices(answer)))
}

/// `POST /v1/admin/campaigns/{campaign}/replay` `{version, apply?}`: every
/// input of the campaign run again under configuration `version`; without
/// `apply` a preview of the correcting entries, with it they are appended
/// (never an edit). Running the same replay again corrects nothing more.
async fn replay<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    name: &str,
) -> Reply {
    let body = json_body(req)?;
    let version = body
        .get("version")
        .and_then(Value::as_u64)
        .filter(|v| (1..=u64::from(u32::MAX)).contains(v))
        .ok_or_else(|| bad("send the configuration `version` to replay under"))? as u32;
    let apply = match body.get("apply") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("`apply` is true or false")),
    };
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let op = Op::Replay { version, apply };
    if !apply {
        return Ok(Response::value(200, &call(ctx, &c, op).await?));
    }
    let target = format!("campaign:{}", c.slug);
    let answer = admin_write(
        ctx,
        site,
        &c,
        op,
        "campaign.replay",
        &target,
        json!({"version": version}),
    )
    .await?;
    Ok(Response::value(200, &answer))
}

/// `GET /v1/admin/campaigns/{campaign}/check`: every invariant of the
/// campaign's ledger restated from its tables, and its row counts.
async fn check_campaign<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    site: &Site,
    name: &str,
) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    Ok(Response::value(200, &call(ctx, &c, Op::Check).await?))
}

fn period_of(v: Option<&str>) -> Result<Period, ApiError> {
    match v.unwrap_or("all") {
        "all" => Ok(Period::All),
        "month" => Ok(Period::Month),
        "week" => Ok(Period::Week),
        other => Err(invalid(format!("period must be all, month or week, not {other:?}"))),
    }
}

async fn take_snapshot<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    name: &str,
) -> Reply {
    let body = if req.body.is_empty() {
        Default::default()
    } else {
        json_body(req)?
    };
    let period = period_of(body.get("period").and_then(Value::as_str))?;
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let target = format!("campaign:{}", c.slug);
    let answer = admin_write(
        ctx,
        site,
        &c,
        Op::Snapshot { period },
        "snapshot.take",
        &target,
        json!({}),
    )
    .await?;
    Ok(Response::value(201, &answer))
}

async fn snapshots<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    name: &str,
) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let limit = parse_limit(req.param("limit"), 20, 100).map_err(invalid)?;
    Ok(Response::value(200, &call(ctx, &c, Op::Snapshots { limit }).await?))
}

async fn stats_funnel<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    site: &Site,
    name: &str,
) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    Ok(Response::value(200, &call(ctx, &c, Op::Funnel).await?))
}

async fn stats_trend<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    name: &str,
) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let time = |k: &str, default: i64| -> Result<i64, ApiError> {
        match req.param(k) {
            None => Ok(default),
            Some(v) => parse_rfc3339_ms(v)
                .or_else(|| parse_rfc3339_ms(&format!("{v}T00:00:00Z")))
                .ok_or_else(|| invalid(format!("`{k}` must be a date (2026-11-01) or an RFC 3339 time"))),
        }
    };
    let to = time("to", ctx.now)?;
    let from = time("from", to - 29 * DAY_MS)?;
    if from > to || to - from > 366 * DAY_MS {
        return Err(invalid("`from` must come before `to`, at most a year apart"));
    }
    Ok(Response::value(200, &call(ctx, &c, Op::Trend { from, to }).await?))
}

/// A CSV cell: quoted when needed, and never a formula a spreadsheet would run.
pub fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

async fn export<D: Db, K: Kv, C: Campaigns, L: Limiter>(ctx: &Ctx<'_, D, K, C, L>, site: &Site, name: &str) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let answer = call(ctx, &c, Op::Export).await?;
    let mut out = String::from("participant_id,code,user_id,joined_at,confirmed_referrals,points,rank,erased\n");
    for r in answer["rows"].as_array().into_iter().flatten() {
        let text = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
        let number = |k: &str| r[k].as_i64().map(|n| n.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            number("id"),
            csv_cell(&text("code")),
            csv_cell(&text("user_id")),
            r["joined_at"]
                .as_i64()
                .map(refloop_core::time::format_rfc3339_ms)
                .unwrap_or_default(),
            number("confirmed"),
            number("score"),
            number("rank"),
            r["erased"].as_i64().unwrap_or(0) != 0
        ));
    }
    Ok(Response {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "text/csv; charset=utf-8".into()),
            (
                "Content-Disposition".into(),
                format!("attachment; filename=\"{}.csv\"", c.slug),
            ),
            ("Cache-Control".into(), "no-store".into()),
        ],
        body: out,
    })
}

/// `GET /v1/admin/check` (root key): every campaign's invariants and row
/// counts, and the directory's, for operators of the edge (and the tests).
pub async fn check_all<D: Db, K: Kv, C: Campaigns, L: Limiter>(ctx: &Ctx<'_, D, K, C, L>, req: &Request) -> Reply {
    check_root(ctx, req)?;
    let mut campaigns = Vec::new();
    let mut violations = Vec::new();
    let mut totals: serde_json::Map<String, Value> = serde_json::Map::new();
    for c in query_rows(ctx.db, stmt!(sql::ALL_CAMPAIGNS))
        .await?
        .iter()
        .map(CampaignRow::from_row)
        .filter(|c| c.current_version > 0)
    {
        let answer = call(ctx, &c, Op::Check).await?;
        for v in answer["violations"].as_array().into_iter().flatten() {
            violations.push(json!(format!("campaign {}: {}", c.id, v.as_str().unwrap_or_default())));
        }
        if let Some(counts) = answer["counts"].as_object() {
            for (k, v) in counts {
                let n = totals.get(k).and_then(Value::as_i64).unwrap_or(0) + v.as_i64().unwrap_or(0);
                totals.insert(k.clone(), json!(n));
            }
        }
        campaigns.push(json!({"id": c.id, "slug": c.slug, "counts": answer["counts"]}));
    }
    let directory = query_rows(ctx.db, stmt!(sql::DIRECTORY_COUNTS)).await?;
    Ok(Response::value(
        200,
        &json!({
            "violations": violations, "counts": totals, "campaigns": campaigns,
            "directory": directory.into_iter().next().unwrap_or_default(),
        }),
    ))
}

// ---- webhooks and the audit log ------------------------------------------------------

const NOTICE_TYPES: [&str; 6] = [
    "referral.confirmed",
    "milestone.reached",
    "reward.earned",
    "reward.status_changed",
    "leaderboard.top_n_changed",
    "reward.withheld",
];

/// `GET /v1/admin/identity[?user_id=]`: the site's identity-verification
/// secret, for its server to sign user ids with (`user_hash`), and the hash
/// of `user_id` when one is named (to check an implementation against).
fn identity<D: Db, K: Kv, C: Campaigns, L: Limiter>(ctx: &Ctx<'_, D, K, C, L>, site: &Site, req: &Request) -> Response {
    let secret = ctx.identity_secret(site.id);
    let mut answer = serde_json::json!({
        "identity_secret": secret,
        "user_hash": "hex HMAC-SHA256(identity_secret, user_id), sent as `user_hash` beside `user_id`",
    });
    if let Some(user) = req.param("user_id") {
        let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(secret.as_bytes())
            .expect("HMAC takes a key of any length");
        hmac::Mac::update(&mut mac, user.as_bytes());
        answer["example"] =
            serde_json::json!({"user_id": user, "user_hash": hex(&hmac::Mac::finalize(mac).into_bytes())});
    }
    Response::value(200, &answer)
}

async fn create_webhook<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
) -> Reply {
    let body = json_body(req)?;
    let url = text_field(&body, "url", 500)?;
    let url = crate::webhooks::check_url(&url, ctx.allow_local_webhooks)
        .map_err(invalid)?
        .to_string();
    let live = query_rows(ctx.db, stmt!(sql::LIST_WEBHOOKS, site.tenant_id))
        .await?
        .iter()
        .filter(|w| w.int("active") == 1)
        .count() as i64;
    if live >= crate::webhooks::MAX_WEBHOOKS_PER_TENANT {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "a tenant has at most {} webhooks; delete one first",
                crate::webhooks::MAX_WEBHOOKS_PER_TENANT
            ),
        ));
    }
    let events = match body.get("events") {
        None => "*".to_owned(),
        Some(Value::Array(a)) => {
            let names: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
            if names.len() != a.len() || names.is_empty() || names.iter().any(|n| !NOTICE_TYPES.contains(n)) {
                return Err(invalid(format!("`events` lists some of {}", NOTICE_TYPES.join(", "))));
            }
            names.join(" ")
        }
        Some(_) => return Err(invalid("`events` must be an array")),
    };
    let secret = format!("whsec_{}", hex(&ctx.entropy[..32]));
    let id = ctx
        .db
        .query(stmt!(
            sql::INSERT_WEBHOOK,
            site.tenant_id,
            url.as_str(),
            secret.as_str(),
            events.as_str(),
            ctx.now
        ))
        .await
        .map_err(db_error)?
        .first()
        .map(|r| r.int("id"))
        .ok_or_else(|| internal("webhook insert returned no id"))?;
    ctx.db
        .batch(vec![audit(
            site.tenant_id,
            "webhook.create",
            &format!("webhook:{id}"),
            json!({"url": url}),
            ctx.now,
        )])
        .await
        .map_err(db_error)?;
    Ok(Response::value(
        201,
        &json!({"id": id, "url": url, "events": events, "secret": secret}),
    ))
}

async fn list_webhooks<D: Db, K: Kv, C: Campaigns, L: Limiter>(ctx: &Ctx<'_, D, K, C, L>, site: &Site) -> Reply {
    let rows = query_rows(ctx.db, stmt!(sql::LIST_WEBHOOKS, site.tenant_id)).await?;
    Ok(Response::value(200, &json!({ "webhooks": rows })))
}

async fn webhook_of<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    site: &Site,
    id: &str,
) -> Result<i64, ApiError> {
    let id = id_param(id, "webhook")?;
    let rows = query_rows(ctx.db, stmt!(sql::LIST_WEBHOOKS, site.tenant_id)).await?;
    rows.iter()
        .find(|r| r.int("id") == id)
        .map(|_| id)
        .ok_or_else(|| not_found("no such webhook"))
}

async fn delete_webhook<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    site: &Site,
    id: &str,
) -> Reply {
    let id = webhook_of(ctx, site, id).await?;
    ctx.db
        .batch(vec![
            stmt!(sql::DELETE_WEBHOOK, id, site.tenant_id),
            audit(
                site.tenant_id,
                "webhook.delete",
                &format!("webhook:{id}"),
                json!({}),
                ctx.now,
            ),
        ])
        .await
        .map_err(db_error)?;
    Ok(Response::value(200, &json!({"id": id, "active": false})))
}

async fn deliveries<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    id: &str,
) -> Reply {
    let id = webhook_of(ctx, site, id).await?;
    let limit = parse_limit(req.param("limit"), 50, 500).map_err(invalid)?;
    let rows = query_rows(ctx.db, stmt!(sql::DELIVERIES, id, limit)).await?;
    Ok(Response::value(200, &json!({ "deliveries": rows })))
}

async fn audit_log<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
) -> Reply {
    let limit = parse_limit(req.param("limit"), 50, 500).map_err(invalid)?;
    let rows = query_rows(ctx.db, stmt!(sql::LIST_AUDIT, site.tenant_id, limit)).await?;
    Ok(Response::value(200, &json!({ "entries": rows })))
}
