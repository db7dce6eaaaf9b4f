//! `/v1/admin/…`: what an operator does with the secret key, and tenant
//! creation with the root key. Every write is one transaction and leaves a
//! line in the audit log.

use crate::app::{
    Ctx, Params, Reply, Request, Response, Site, bad, db_error, hex, internal, invalid, iso, json_body, not_found,
    query_rows, row_value, site_by_secret_key,
};
use crate::db::{Db, Kv, Row, RowExt, Stmt};
use crate::public::{campaign_of, rank_of, stats_of};
use crate::routes::{Route, parse_limit};
use crate::sql;
use crate::stmt;
use crate::store::{
    CampaignRow, board_statements, config_version, effect_statements, entry_statement, grant_from_row,
    moved_grant_statements, notice_statement, period_key, person_from_row, referral_from_row,
};
use refloop_core::engine::analytics::{daily_trend, funnel};
use refloop_core::engine::config::{CampaignConfig, ConfigError, Period, PointRule, RewardDef, ScoreBy, Versioned};
use refloop_core::engine::model::{CampaignId, DAY_MS, ParticipantId};
use refloop_core::engine::rewards::GrantStatus;
use refloop_core::engine::step::{HeldEvent, Slice, adjustment, decide_review, decide_transition};
use refloop_core::keys::hash_secret_key;
use refloop_core::time::parse_rfc3339_ms;
use refloop_core::{ApiError, ErrorCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

// ---- tenants (root key) ------------------------------------------------------

fn check_root<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request) -> Result<(), ApiError> {
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
pub async fn create_tenant<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request) -> Reply {
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

pub async fn list_tenants<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request) -> Reply {
    check_root(ctx, req)?;
    let rows = query_rows(ctx.db, stmt!(sql::LIST_TENANTS)).await?;
    Ok(Response::value(200, &json!({ "tenants": rows })))
}

// ---- the secret-key routes ---------------------------------------------------

pub async fn dispatch<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, route: Route, p: &Params) -> Reply {
    let site = site_by_secret_key(ctx.db, req).await?;
    crate::app::rate_limit(ctx, &format!("admin:{}", site.id), site.limit(ctx)).await?;
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
        Route::Erase => erase(ctx, &site, c, p.get("participant")).await,
        Route::ListReferrals => referrals(ctx, req, &site, c).await,
        Route::ReviewReferral => review(ctx, req, &site, c, p.get("referral")).await,
        Route::ListGrants => grants(ctx, req, &site, c).await,
        Route::GrantTransition => transition(ctx, req, &site, c, p.get("grant")).await,
        Route::ListSnapshots => snapshots(ctx, req, &site, c).await,
        Route::TakeSnapshot => take_snapshot(ctx, req, &site, c).await,
        Route::Funnel => stats_funnel(ctx, &site, c).await,
        Route::Trend => stats_trend(ctx, req, &site, c).await,
        Route::Export => export(ctx, &site, c).await,
        Route::ListWebhooks => list_webhooks(ctx, &site).await,
        Route::CreateWebhook => create_webhook(ctx, req, &site).await,
        Route::DeleteWebhook => delete_webhook(ctx, &site, p.get("webhook")).await,
        Route::Deliveries => deliveries(ctx, req, &site, p.get("webhook")).await,
        Route::Audit => audit_log(ctx, req, &site).await,
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

async fn events<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, site: &Site) -> Reply {
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

fn parse_config(v: &Value) -> Result<CampaignConfig, ApiError> {
    if !v.is_object() {
        return Err(bad("`config` must be a JSON object"));
    }
    CampaignConfig::from_json(&v.to_string()).map_err(config_errors)
}

async fn list_campaigns<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, site: &Site) -> Reply {
    let rows = query_rows(ctx.db, stmt!(sql::CAMPAIGNS_OF_TENANT, site.tenant_id)).await?;
    let campaigns: Vec<Value> = rows
        .iter()
        .map(CampaignRow::from_row)
        .map(|c| json!({"id": c.id, "slug": c.slug, "name": c.name, "status": c.status, "version": c.current_version}))
        .collect();
    Ok(Response::value(200, &json!({ "campaigns": campaigns })))
}

/// `POST /v1/admin/campaigns` `{slug, config}` or `{slug, preset}`.
async fn create_campaign<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, site: &Site) -> Reply {
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
    let (c, v) = campaign_of(ctx, site.tenant_id, &slug).await?;
    Ok(Response::value(201, &campaign_json(&c, &v)))
}

async fn get_campaign<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, site: &Site, name: &str) -> Reply {
    let (c, v) = campaign_of(ctx, site.tenant_id, name).await?;
    Ok(Response::value(200, &campaign_json(&c, &v)))
}

enum Part {
    Whole,
    PointRules,
    Rewards,
}

/// An update is a new version: referrals keep the version they started under.
async fn update_campaign<D: Db, K: Kv>(
    ctx: &Ctx<'_, D, K>,
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
    let (c, v) = campaign_of(ctx, site.tenant_id, &c.slug).await?;
    Ok(Response::value(200, &campaign_json(&c, &v)))
}

async fn set_status<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, site: &Site, name: &str) -> Reply {
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
    get_campaign(ctx, site, name).await
}

async fn versions<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, site: &Site, name: &str) -> Reply {
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

// ---- participants and the ledger ---------------------------------------------------

fn participant_json(r: &Row) -> Value {
    json!({
        "id": r.int("id"), "code": r.text("code"), "user_id": row_value(r, "user_id"),
        "anonymous_id": row_value(r, "anonymous_id"), "joined_at": iso(r.opt_int("joined_at")),
        "confirmed_referrals": r.int("confirmed"), "points": r.int("score"),
        "traits": serde_json::from_str::<Value>(&r.text("traits")).unwrap_or(Value::Null),
        "erased": r.opt_int("erased_at").is_some(),
    })
}

async fn search<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, site: &Site, name: &str) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let limit = parse_limit(req.param("limit"), 50, 500).map_err(invalid)?;
    let q = req.param("q").unwrap_or("").trim();
    let q_code = if q.len() == 8 {
        q.to_ascii_uppercase()
    } else {
        q.to_owned()
    };
    let mut rows = query_rows(ctx.db, stmt!(sql::SEARCH_PERSONS, c.id, q_code.as_str(), limit)).await?;
    if q_code != q {
        rows.extend(
            ctx.db
                .query(stmt!(sql::SEARCH_PERSONS, c.id, q, limit))
                .await
                .map_err(db_error)?,
        );
    }
    let people: Vec<Value> = rows.iter().map(participant_json).collect();
    Ok(Response::value(200, &json!({ "participants": people })))
}

async fn person_row<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, c: &CampaignRow, id: &str) -> Result<Row, ApiError> {
    let id = id_param(id, "participant")?;
    ctx.db
        .query(stmt!(sql::PERSON_BY_ID, id, c.id))
        .await
        .map_err(db_error)?
        .into_iter()
        .next()
        .ok_or_else(|| not_found("no such participant in this campaign"))
}

/// A participant's ledger as an audit trail, with the invariant checked on
/// the way out: the kept score is the sum of the entries.
async fn ledger<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, site: &Site, name: &str, pid: &str) -> Reply {
    let (c, current) = campaign_of(ctx, site.tenant_id, name).await?;
    let row = person_row(ctx, &c, pid).await?;
    let id = row.int("id");
    let limit = parse_limit(req.param("limit"), 100, 1000).map_err(invalid)?;
    let entries = query_rows(ctx.db, stmt!(sql::LEDGER_OF, id, limit)).await?;
    let sum = query_rows(ctx.db, stmt!(sql::LEDGER_SUM, id))
        .await?
        .first()
        .map_or(0, |r| r.int("total"));
    if sum != row.int("score") {
        return Err(internal(format!(
            "participant {id}: score {} but ledger sum {sum}",
            row.int("score")
        )));
    }
    let stats = stats_of(ctx, &c, &current, &person_from_row(&row)).await?;
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "id": e.int("id"), "points": e.int("points"),
                "reason": serde_json::from_str::<Value>(&e.text("reason")).unwrap_or(Value::Null),
                "source_event": row_value(e, "source_event"), "referral": row_value(e, "referral_id"),
                "idempotency_key": e.text("idempotency_key"), "at": iso(e.opt_int("at")),
                "config_version": e.int("config_version"),
            })
        })
        .collect();
    Ok(Response::value(
        200,
        &json!({ "participant": participant_json(&row), "score": sum, "stats": stats, "entries": entries }),
    ))
}

/// `{points, note, idempotency_key?}`: an operator's correction, once per key.
async fn adjust<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, site: &Site, name: &str, pid: &str) -> Reply {
    let body = json_body(req)?;
    let points = body
        .get("points")
        .and_then(Value::as_i64)
        .filter(|p| *p != 0 && p.abs() <= 1_000_000_000)
        .ok_or_else(|| invalid("`points` must be a non-zero integer within ±1,000,000,000"))?;
    let note = text_field(&body, "note", 500)?;
    let key = match body.get("idempotency_key").or(None) {
        Some(Value::String(k)) if !k.is_empty() && k.len() <= 100 => k.clone(),
        Some(_) => return Err(invalid("`idempotency_key` must be text of 1 to 100 characters")),
        None => req
            .header("idempotency-key")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}:{}", ctx.now, ctx.seed)),
    };
    let (c, current) = campaign_of(ctx, site.tenant_id, name).await?;
    let row = person_row(ctx, &c, pid).await?;
    if row.opt_int("erased_at").is_some() {
        return Err(ApiError::new(ErrorCode::Conflict, "this participant was erased"));
    }
    let p = ParticipantId(row.int("id") as u64);
    let entry = adjustment(
        &current,
        CampaignId(c.id as u64),
        p,
        points,
        note.clone(),
        &key,
        ctx.now,
    );
    let exists = query_rows(ctx.db, stmt!(sql::ENTRY_WITH_KEY, c.id, entry.idempotency_key.as_str())).await?;
    if exists.is_empty() {
        let mut stmts = vec![entry_statement(&entry), stmt!(sql::ADD_SCORE, p.0, points, 0i64)];
        if current.config.leaderboard.score_by == ScoreBy::Points {
            board_statements(c.id, p, points, ctx.now, &mut stmts);
        }
        stmts.push(audit(
            site.tenant_id,
            "ledger.adjust",
            &format!("participant:{}", p.0),
            json!({"points": points, "note": note, "key": key}),
            ctx.now,
        ));
        ctx.db.batch(stmts).await.map_err(db_error)?;
    }
    let score = query_rows(ctx.db, stmt!(sql::LEDGER_SUM, p.0))
        .await?
        .first()
        .map_or(0, |r| r.int("total"));
    Ok(Response::value(
        if exists.is_empty() { 201 } else { 200 },
        &json!({"participant": p.0, "points": points, "score": score, "idempotency_key": key, "duplicate": !exists.is_empty()}),
    ))
}

/// GDPR erasure: the person is forgotten (ids, traits, hashes, raw events,
/// board rows); the ledger's numbers stay so every sum stays true.
async fn erase<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, site: &Site, name: &str, pid: &str) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let row = person_row(ctx, &c, pid).await?;
    let id = row.int("id");
    let stmts = vec![
        stmt!(
            sql::ERASE_EVENTS,
            site.id,
            row.opt_text("user_id"),
            row.opt_text("anonymous_id")
        ),
        stmt!(sql::ERASE_PERSON, id, ctx.now),
        stmt!(sql::ERASE_ALIASES, id),
        stmt!(sql::ERASE_CLICK_IPS, id),
        stmt!(sql::LEAVE_ALL_BUCKETS, c.id, id),
        stmt!(sql::LEAVE_ALL_TIES, c.id, id),
        stmt!(sql::DELETE_SCORES, c.id, id),
        audit(
            site.tenant_id,
            "participant.erase",
            &format!("participant:{id}"),
            json!({}),
            ctx.now,
        ),
    ];
    ctx.db.batch(stmts).await.map_err(db_error)?;
    Ok(Response::value(200, &json!({"participant": id, "erased": true})))
}

// ---- referrals, grants -------------------------------------------------------------

async fn referrals<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, site: &Site, name: &str) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let status = req.param("status").unwrap_or("");
    let review = req.param("review").unwrap_or("");
    if !["", "pending", "confirmed", "rejected", "expired"].contains(&status) {
        return Err(invalid("status is pending, confirmed, rejected or expired"));
    }
    if !["", "clear", "pending", "approved", "rejected"].contains(&review) {
        return Err(invalid("review is clear, pending, approved or rejected"));
    }
    let limit = parse_limit(req.param("limit"), 50, 500).map_err(invalid)?;
    let rows = query_rows(ctx.db, stmt!(sql::LIST_REFERRALS, c.id, status, review, limit)).await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.int("id"), "referrer": {"id": r.int("referrer_id"), "code": r.text("referrer_code")},
                "referee": {"id": r.int("referee_id"), "code": r.text("referee_code")},
                "status": r.text("status"), "review": r.text("review"), "reason": row_value(r, "reason"),
                "flags": serde_json::from_str::<Value>(&r.text("flags")).unwrap_or(Value::Null),
                "created_at": iso(r.opt_int("created_at")), "confirmed_at": iso(r.opt_int("confirmed_at")),
                "config_version": r.int("config_version"),
            })
        })
        .collect();
    Ok(Response::value(200, &json!({ "referrals": list })))
}

/// `{approve: bool}` on a flagged referral.
async fn review<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, site: &Site, name: &str, rid: &str) -> Reply {
    let body = json_body(req)?;
    let approve = body
        .get("approve")
        .and_then(Value::as_bool)
        .ok_or_else(|| bad("send `approve`: true or false"))?;
    let (c, current) = campaign_of(ctx, site.tenant_id, name).await?;
    let rid = id_param(rid, "referral")?;
    for attempt in 0..20u64 {
        let row = query_rows(ctx.db, stmt!(sql::REFERRAL_BY_ID, rid, c.id))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| not_found("no such referral in this campaign"))?;
        let (referral, rev) = referral_from_row(&row);
        let load = |id: u64| async move {
            ctx.db
                .query(stmt!(sql::PERSON_BY_ID, id, c.id))
                .await
                .map_err(db_error)
                .map(|rows| rows.first().map(person_from_row))
        };
        let actor = load(referral.referee.0).await?;
        let referrer = load(referral.referrer.0).await?;
        let pinned = if referral.config_version != current.version {
            Some(
                config_version(ctx.db, ctx.kv, c.id, referral.config_version)
                    .await
                    .map_err(db_error)?,
            )
        } else {
            None
        };
        let usage = crate::store::load_usage(ctx.db, &c, &current.config)
            .await
            .map_err(db_error)?;
        let ids = serde_json::to_string(&[referral.referee.0, referral.referrer.0]).unwrap_or_default();
        let grant_keys = query_rows(ctx.db, stmt!(sql::GRANT_KEYS_OF, ids))
            .await?
            .iter()
            .map(|r| r.text("idempotency_key"))
            .collect();
        let waiting: Vec<_> = query_rows(ctx.db, stmt!(sql::WAITING_GRANTS, rid))
            .await?
            .iter()
            .map(|r| grant_from_row(r, Vec::new()))
            .collect();
        let held: Vec<HeldEvent> = query_rows(ctx.db, stmt!(sql::HELD_EVENTS, rid))
            .await?
            .iter()
            .map(|r| HeldEvent {
                id: r.text("event_id"),
                name: r.text("name"),
                trusted: r.int("trusted") != 0,
                at: r.int("at"),
            })
            .collect();
        let slice = Slice {
            campaign: CampaignId(c.id as u64),
            current: current.clone(),
            pinned,
            actor,
            referral: Some((referral, rev)),
            referrer,
            referrer_erased: false,
            invitation: None,
            activity: Default::default(),
            usage,
            grant_keys,
        };
        let mut rng = ctx.rng();
        for _ in 0..attempt {
            rng.next_u64();
        }
        let effects = decide_review(&slice, &waiting, &held, approve, ctx.now, &mut rng)
            .map_err(|m| ApiError::new(ErrorCode::Conflict, m))?;
        let mut stmts = Vec::new();
        effect_statements(&c, &effects, slice.pinned.as_ref().unwrap_or(&current), &mut stmts);
        stmts.push(audit(
            site.tenant_id,
            if approve { "referral.approve" } else { "referral.reject" },
            &format!("referral:{rid}"),
            json!({}),
            ctx.now,
        ));
        match ctx.db.batch(stmts).await {
            Ok(_) => {
                return Ok(Response::value(
                    200,
                    &json!({"referral": rid, "approved": approve, "grants": effects.grants_moved.len() + effects.grants.len()}),
                ));
            }
            Err(e) if e.retryable => ctx.db.pause(crate::db::backoff(attempt as u32, rng.next_u64())).await,
            Err(e) => return Err(internal(e)),
        }
    }
    Err(ApiError::new(ErrorCode::Busy, "the referral kept changing; retry"))
}

fn grant_json(r: &Row, transitions: &[Row]) -> Value {
    json!({
        "id": r.int("id"), "participant": {"id": r.int("participant_id"), "code": row_value(r, "code")},
        "reward": r.text("reward_id"), "status": r.text("status"), "token": row_value(r, "token"),
        "source": serde_json::from_str::<Value>(&r.text("source")).unwrap_or(Value::Null),
        "value_minor": row_value(r, "value_minor"), "currency": row_value(r, "currency"),
        "earned_at": iso(r.opt_int("earned_at")), "expires_at": iso(r.opt_int("expires_at")),
        "history": transitions.iter().map(|t| json!({
            "from": row_value(t, "from_status"), "to": t.text("to_status"), "at": iso(t.opt_int("at")), "note": row_value(t, "note"),
        })).collect::<Vec<_>>(),
    })
}

async fn grants<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, site: &Site, name: &str) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let status = req.param("status").unwrap_or("");
    if !status.is_empty() && GrantStatus::parse(status).is_none() {
        return Err(invalid(
            "status is one of earned, pending_review, approved, fulfilled, redeemed, rejected, expired, revoked",
        ));
    }
    let limit = parse_limit(req.param("limit"), 50, 500).map_err(invalid)?;
    let rows = query_rows(ctx.db, stmt!(sql::LIST_GRANTS, c.id, status, limit)).await?;
    let mut list = Vec::new();
    for r in &rows {
        let t = query_rows(ctx.db, stmt!(sql::TRANSITIONS_OF, r.int("id"))).await?;
        list.push(grant_json(r, &t));
    }
    Ok(Response::value(200, &json!({ "grants": list })))
}

/// `{to, note?}`: moves a grant along its lifecycle; approval pays a points
/// reward into the ledger, revocation takes it back.
async fn transition<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, site: &Site, name: &str, gid: &str) -> Reply {
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
    let (c, current) = campaign_of(ctx, site.tenant_id, name).await?;
    let gid = id_param(gid, "grant")?;
    let row = query_rows(ctx.db, stmt!(sql::GRANT, gid, c.id))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| not_found("no such grant in this campaign"))?;
    let grant = grant_from_row(&row, Vec::new());
    let (moved, entry, notice) = decide_transition(&current, CampaignId(c.id as u64), &grant, to, ctx.now, note)
        .map_err(|m| ApiError::new(ErrorCode::Conflict, m))?;
    let mut stmts = Vec::new();
    moved_grant_statements(c.id, &moved, &mut stmts);
    if let Some(e) = &entry {
        stmts.push(entry_statement(e));
        stmts.push(stmt!(sql::ADD_SCORE, e.participant.0, e.points, 0i64));
        if current.config.leaderboard.score_by == ScoreBy::Points {
            board_statements(c.id, e.participant, e.points, e.at, &mut stmts);
        }
    }
    stmts.push(notice_statement(c.tenant_id, &c, &notice, ctx.now));
    stmts.push(audit(
        site.tenant_id,
        "grant.transition",
        &format!("grant:{gid}"),
        json!({"from": grant.status.as_str(), "to": to.as_str()}),
        ctx.now,
    ));
    ctx.db.batch(stmts).await.map_err(|e| {
        if e.retryable {
            ApiError::new(ErrorCode::Conflict, "the grant moved meanwhile; reload")
        } else {
            internal(e)
        }
    })?;
    let row = query_rows(ctx.db, stmt!(sql::GRANT, gid, c.id)).await?;
    let t = query_rows(ctx.db, stmt!(sql::TRANSITIONS_OF, gid)).await?;
    Ok(Response::value(200, &grant_json(&row[0], &t)))
}

// ---- leaderboard snapshots, statistics, export --------------------------------------

fn period_of(v: Option<&str>) -> Result<Period, ApiError> {
    match v.unwrap_or("all") {
        "all" => Ok(Period::All),
        "month" => Ok(Period::Month),
        "week" => Ok(Period::Week),
        other => Err(invalid(format!("period must be all, month or week, not {other:?}"))),
    }
}

async fn take_snapshot<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, site: &Site, name: &str) -> Reply {
    let body = if req.body.is_empty() {
        Default::default()
    } else {
        json_body(req)?
    };
    let period_name = body.get("period").and_then(Value::as_str).unwrap_or("all").to_owned();
    let period = period_of(Some(&period_name))?;
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let id = snapshot(ctx.db, c.id, period, &period_name, ctx.now).await?;
    ctx.db
        .batch(vec![audit(
            site.tenant_id,
            "snapshot.take",
            &format!("campaign:{}", c.slug),
            json!({"id": id}),
            ctx.now,
        )])
        .await
        .map_err(db_error)?;
    Ok(Response::value(
        201,
        &json!({"id": id, "period": period_name, "taken_at": iso(Some(ctx.now))}),
    ))
}

/// An immutable copy of the top 100 of a board, now.
pub async fn snapshot(db: &impl Db, campaign: i64, period: Period, name: &str, now: i64) -> Result<i64, ApiError> {
    let rows = db
        .query(stmt!(sql::TOP, campaign, period_key(period, now), 100u32))
        .await
        .map_err(db_error)?;
    let rows: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"rank": i + 1, "participant": r.int("participant_id"), "code": r.text("code"), "score": r.int("score")}))
        .collect();
    db.query(stmt!(
        sql::INSERT_SNAPSHOT,
        campaign,
        name,
        now,
        Value::Array(rows).to_string()
    ))
    .await
    .map_err(db_error)?
    .first()
    .map(|r| r.int("id"))
    .ok_or_else(|| internal("snapshot insert returned no id"))
}

async fn snapshots<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, site: &Site, name: &str) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let limit = parse_limit(req.param("limit"), 20, 100).map_err(invalid)?;
    let rows = query_rows(ctx.db, stmt!(sql::LIST_SNAPSHOTS, c.id, limit)).await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.int("id"), "period": r.text("period"), "taken_at": iso(r.opt_int("taken_at")),
                "rows": serde_json::from_str::<Value>(&r.text("rows")).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(Response::value(200, &json!({ "snapshots": list })))
}

async fn stats_funnel<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, site: &Site, name: &str) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let r = query_rows(ctx.db, stmt!(sql::FUNNEL, c.id))
        .await?
        .into_iter()
        .next()
        .unwrap_or_default();
    let f = funnel(
        r.int("clicks") as u64,
        r.int("signups") as u64,
        r.int("confirmed") as u64,
        r.int("participants") as u64,
    );
    Ok(Response::value(
        200,
        &json!({"funnel": f, "participants": r.int("participants")}),
    ))
}

async fn stats_trend<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, site: &Site, name: &str) -> Reply {
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
    let end = to + DAY_MS;
    let clicks: Vec<i64> = query_rows(ctx.db, stmt!(sql::TREND_CLICKS, c.id, from, end))
        .await?
        .iter()
        .map(|r| r.int("at"))
        .collect();
    let refs = query_rows(ctx.db, stmt!(sql::TREND_REFERRALS, c.id, from, end)).await?;
    let signups: Vec<i64> = refs.iter().map(|r| r.int("created_at")).collect();
    let confirmed: Vec<i64> = refs
        .iter()
        .filter(|r| r.text("status") == "confirmed" && matches!(r.text("review").as_str(), "clear" | "approved"))
        .filter_map(|r| r.opt_int("confirmed_at"))
        .collect();
    let days: Vec<Value> = daily_trend(&clicks, &signups, &confirmed, from, to)
        .into_iter()
        .map(|d| json!({"day": iso(Some(d.day)), "clicks": d.clicks, "signups": d.signups, "confirmed": d.confirmed}))
        .collect();
    Ok(Response::value(200, &json!({ "days": days })))
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

async fn export<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, site: &Site, name: &str) -> Reply {
    let (c, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let mut out = String::from("participant_id,code,user_id,joined_at,confirmed_referrals,points,rank,erased\n");
    let mut after = 0i64;
    // Pages of 1,000 up to 50,000 rows; a bigger export belongs in a queue.
    for _ in 0..50 {
        let rows = query_rows(ctx.db, stmt!(sql::EXPORT_PARTICIPANTS, c.id, after, 1000u32)).await?;
        for r in &rows {
            let rank = rank_of(ctx.db, c.id, "all", r.int("id"))
                .await?
                .map(|x| x.0.to_string())
                .unwrap_or_default();
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{}\n",
                r.int("id"),
                csv_cell(&r.text("code")),
                csv_cell(&r.text("user_id")),
                refloop_core::time::format_rfc3339_ms(r.int("joined_at")),
                r.int("confirmed"),
                r.int("score"),
                rank,
                r.opt_int("erased_at").is_some()
            ));
            after = r.int("id");
        }
        if rows.len() < 1000 {
            break;
        }
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

// ---- webhooks and the audit log ------------------------------------------------------

const NOTICE_TYPES: [&str; 5] = [
    "referral.confirmed",
    "milestone.reached",
    "reward.earned",
    "reward.status_changed",
    "leaderboard.top_n_changed",
];

async fn create_webhook<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, site: &Site) -> Reply {
    let body = json_body(req)?;
    let url = text_field(&body, "url", 500)?;
    let local = url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost");
    if !(url.starts_with("https://") || local) {
        return Err(invalid("`url` must be https:// (http:// only for localhost)"));
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

async fn list_webhooks<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, site: &Site) -> Reply {
    let rows = query_rows(ctx.db, stmt!(sql::LIST_WEBHOOKS, site.tenant_id)).await?;
    Ok(Response::value(200, &json!({ "webhooks": rows })))
}

async fn webhook_of<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, site: &Site, id: &str) -> Result<i64, ApiError> {
    let id = id_param(id, "webhook")?;
    let rows = query_rows(ctx.db, stmt!(sql::LIST_WEBHOOKS, site.tenant_id)).await?;
    rows.iter()
        .find(|r| r.int("id") == id)
        .map(|_| id)
        .ok_or_else(|| not_found("no such webhook"))
}

async fn delete_webhook<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, site: &Site, id: &str) -> Reply {
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

async fn deliveries<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, site: &Site, id: &str) -> Reply {
    let id = webhook_of(ctx, site, id).await?;
    let limit = parse_limit(req.param("limit"), 50, 500).map_err(invalid)?;
    let rows = query_rows(ctx.db, stmt!(sql::DELIVERIES, id, limit)).await?;
    Ok(Response::value(200, &json!({ "deliveries": rows })))
}

async fn audit_log<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, site: &Site) -> Reply {
    let limit = parse_limit(req.param("limit"), 50, 500).map_err(invalid)?;
    let rows = query_rows(ctx.db, stmt!(sql::LIST_AUDIT, site.tenant_id, limit)).await?;
    Ok(Response::value(200, &json!({ "entries": rows })))
}
