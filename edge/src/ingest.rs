//! `POST /v1/batch` (publishable key, from browsers) and `POST /v1/server/events`
//! (secret key, trusted). Each event is stored and decided by every active
//! campaign of the tenant in one transaction; a guard that saw a stale read
//! rolls it back and the event is decided again from fresh rows.

use crate::app::{Ctx, Reply, Request, Response, Site, check_origin, db_error, site_by_secret_key};
use crate::db::{Db, Kv, Stmt};
use crate::sql;
use crate::stmt;
use crate::store::{CampaignRow, effect_statements, load_event_slice};
use refloop_core::ApiError;
use refloop_core::email::{email_sha256, normalise_email};
use refloop_core::engine::model::Traits;
use refloop_core::engine::program::EngineEvent;
use refloop_core::engine::referral::Touch;
use refloop_core::engine::step::decide_event;
use refloop_core::event::Event;
use refloop_core::ingest::{BatchOutcome, parse_batch, plan_inserts, too_large};
use refloop_core::limits::MAX_BATCH_BYTES;
use refloop_core::time::parse_rfc3339_ms;
use serde_json::Value;

/// Attempts at one event before answering `busy`.
const ATTEMPTS: u32 = 40;

pub async fn batch<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request) -> Reply {
    check_size(req)?;
    let parsed = parse_batch(&req.body, ctx.now)?;
    let site = crate::app::cached_site(ctx, parsed.key.as_deref()).await?;
    check_origin(&site, req)?;
    ingest(ctx, req, &site, parsed.events, false).await
}

pub async fn server_events<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request) -> Reply {
    check_size(req)?;
    let site = site_by_secret_key(ctx.db, req).await?;
    let parsed = parse_batch(&req.body, ctx.now)?;
    ingest(ctx, req, &site, parsed.events, true).await
}

fn check_size(req: &Request) -> Result<(), ApiError> {
    let declared = req.header("content-length").and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|l| l > MAX_BATCH_BYTES) || req.body.len() > MAX_BATCH_BYTES {
        return Err(too_large());
    }
    Ok(())
}

async fn ingest<D: Db, K: Kv>(
    ctx: &Ctx<'_, D, K>,
    req: &Request,
    site: &Site,
    events: Vec<Result<Event, refloop_core::event::EventRejection>>,
    trusted: bool,
) -> Reply {
    let ip_hash = ctx.ip_hash(req);
    let plan = plan_inserts(events);
    let mut inserted = vec![false; plan.inserts.len()];
    // One transaction counts the request against its limits and stores every
    // event no campaign can act on (a visitor's page views): one statement
    // inserts those whose actor is nobody's participant. Over a limit, the
    // whole transaction is refused, events and count alike.
    let inert = maybe_inert(&plan.inserts);
    let mut fast = limit_statements(ctx, req, site);
    let candidates: Vec<Value> = plan
        .inserts
        .iter()
        .zip(&inert)
        .filter(|(_, inert)| **inert)
        .map(|(e, _)| {
            serde_json::json!({
                "id": e.id, "type": e.event_type.as_str(), "name": e.name, "anonymous_id": e.anonymous_id,
                "user_id": e.user_id, "at": e.occurred_at_ms, "payload": stored_payload(e),
            })
        })
        .collect();
    if !candidates.is_empty() {
        fast.push(stmt!(
            sql::INSERT_INERT_EVENTS,
            site.id,
            ctx.now,
            trusted,
            Value::Array(candidates).to_string()
        ));
    }
    let results = ctx.db.batch_rows(fast).await.map_err(|e| {
        if e.message.contains("rate_limited") {
            rate_limited(ctx)
        } else {
            db_error(e)
        }
    })?;
    let stored: std::collections::HashSet<String> = results
        .last()
        .filter(|_| inert.iter().any(|i| *i))
        .into_iter()
        .flatten()
        .map(|r| crate::db::RowExt::text(r, "event_id"))
        .collect();
    let mut slow = Vec::new();
    for (i, e) in plan.inserts.iter().enumerate() {
        if inert[i] && stored.contains(&e.id) {
            inserted[i] = true;
        } else {
            // A duplicate, or someone a campaign knows: the engine decides.
            slow.push(i);
        }
    }
    if slow.is_empty() {
        return Ok(Response::json(202, BatchOutcome::new(plan, &inserted).to_json()));
    }
    let campaigns: Vec<CampaignRow> = ctx
        .db
        .query(stmt!(sql::ACTIVE_CAMPAIGNS, site.tenant_id))
        .await
        .map_err(db_error)?
        .iter()
        .map(CampaignRow::from_row)
        .collect();
    let known = known_ids(ctx, site, &plan.inserts).await?;
    for i in slow {
        let e = &plan.inserts[i];
        if known.contains(&e.id) {
            continue;
        }
        // Each event gets its own randomness, so a retried batch draws the same ids.
        let seed = ctx.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        inserted[i] = one_event(ctx, site, &campaigns, e, trusted, ip_hash.clone(), seed).await?;
    }
    let outcome = BatchOutcome::new(plan, &inserted);
    Ok(Response::json(202, outcome.to_json()))
}

fn rate_limited<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>) -> ApiError {
    let wait = 60 - (ctx.now / 1000) % 60;
    ApiError::new(
        refloop_core::ErrorCode::RateLimited,
        format!("too many requests; retry after {wait}s"),
    )
}

/// The counters of the site's key and the caller's IP, and the guards that
/// refuse the transaction when either is over its limit.
fn limit_statements<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, req: &Request, site: &Site) -> Vec<Stmt> {
    let window = ctx.now / 60_000;
    let mut buckets = vec![(format!("site:{}", site.id), site.limit(ctx))];
    if let Some(ip) = ctx.ip_hash(req) {
        buckets.push((format!("ip:{ip}"), ctx.limits.per_ip_per_minute));
    }
    let names = json_list(buckets.iter().map(|b| b.0.as_str()));
    let mut out = vec![stmt!(sql::COUNT_REQUESTS, names, window)];
    for (bucket, limit) in buckets {
        out.push(stmt!(sql::GUARD_RATE, bucket, window, limit));
    }
    out
}

/// Events that cannot make anyone join: not a signup or identify, and from
/// no identity that joins in this batch. Whether the actor is a participant
/// already is asked by the insert itself.
fn maybe_inert(events: &[Event]) -> Vec<bool> {
    let joins = |e: &Event| e.name == refloop_core::engine::program::SIGNUP || e.name == "identify";
    let joining: std::collections::HashSet<&str> = events
        .iter()
        .filter(|e| joins(e))
        .flat_map(|e| [e.anonymous_id.as_deref(), e.user_id.as_deref()])
        .flatten()
        .collect();
    events
        .iter()
        .map(|e| {
            let ids = [e.anonymous_id.as_deref(), e.user_id.as_deref()];
            !joins(e) && ids.iter().flatten().all(|i| !joining.contains(i))
        })
        .collect()
}

/// Stores and decides one event; false when the site had it already.
async fn one_event<D: Db, K: Kv>(
    ctx: &Ctx<'_, D, K>,
    site: &Site,
    campaigns: &[CampaignRow],
    e: &Event,
    trusted: bool,
    ip_hash: Option<String>,
    seed: u64,
) -> Result<bool, ApiError> {
    let engine_event = engine_event(ctx, e, trusted, ip_hash);
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        // The batch-level check saw it new; a retry asks again (a concurrent
        // copy may have landed, and then this one is a duplicate).
        if attempt > 0 {
            let known = ctx
                .db
                .query(stmt!(sql::EVENT_EXISTS, site.id, e.id.as_str()))
                .await
                .map_err(db_error)?;
            if !known.is_empty() {
                return Ok(false);
            }
        }
        let mut stmts: Vec<Stmt> = vec![insert_statement(sql::INSERT_EVENT_STRICT, site, e, ctx.now, trusted)];
        let mut rng = refloop_core::engine::rewards::SplitMix64::new(seed.wrapping_add(u64::from(attempt)));
        for campaign in campaigns {
            let slice = load_event_slice(ctx.db, ctx.kv, campaign, &engine_event)
                .await
                .map_err(db_error)?;
            let effects = decide_event(&slice, &engine_event, &mut rng);
            let pinned = slice.pinned.as_ref().unwrap_or(&slice.current);
            effect_statements(campaign, &effects, pinned, &mut stmts);
        }
        match ctx.db.batch(stmts).await {
            Ok(_) => return Ok(true),
            Err(err) if err.retryable => {
                last = Some(err);
                ctx.db.pause(crate::db::backoff(attempt, rng.next_u64())).await;
            }
            Err(err) => return Err(db_error(err)),
        }
    }
    Err(db_error(
        last.unwrap_or_else(|| crate::db::DbError::from_message("busy")),
    ))
}

fn insert_statement(sql: &'static str, site: &Site, e: &Event, now: i64, trusted: bool) -> Stmt {
    stmt!(
        sql,
        site.id,
        e.id.as_str(),
        e.event_type.as_str(),
        e.name.as_str(),
        e.anonymous_id.clone(),
        e.user_id.clone(),
        e.occurred_at_ms,
        now,
        trusted,
        stored_payload(e)
    )
}

fn json_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    serde_json::to_string(&items.collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
}

/// Which of the batch's ids the site already has (one query).
async fn known_ids<D: Db, K: Kv>(
    ctx: &Ctx<'_, D, K>,
    site: &Site,
    events: &[Event],
) -> Result<std::collections::HashSet<String>, ApiError> {
    if events.is_empty() {
        return Ok(Default::default());
    }
    let ids = json_list(events.iter().map(|e| e.id.as_str()));
    Ok(ctx
        .db
        .query(stmt!(sql::KNOWN_EVENT_IDS, site.id, ids))
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| crate::db::RowExt::text(r, "event_id"))
        .collect())
}

/// The event as the engine sees it: attribution as a touch, the email only as
/// a salted hash of its normalised form, the IP only as a salted hash.
pub fn engine_event<D: Db, K: Kv>(
    ctx: &Ctx<'_, D, K>,
    e: &Event,
    trusted: bool,
    ip_hash: Option<String>,
) -> EngineEvent {
    let attribution = e.payload.get("attribution").and_then(Value::as_object);
    let text = |k: &str| {
        attribution
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 64)
            .map(str::to_owned)
    };
    let (code, invitation) = (text("ref"), text("invite"));
    let touch = (code.is_some() || invitation.is_some()).then(|| Touch {
        code: code.map(|c| c.to_ascii_uppercase()),
        invitation: invitation.map(|c| c.to_ascii_uppercase()),
        at: text("at")
            .and_then(|t| parse_rfc3339_ms(&t))
            .unwrap_or(e.occurred_at_ms)
            .min(e.occurred_at_ms),
    });
    let mut traits: Traits = e
        .payload
        .get("traits")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let (email_hash, email_domain) = email_identity(ctx, &mut traits);
    EngineEvent {
        id: e.id.clone(),
        name: e.name.clone(),
        anonymous_id: e.anonymous_id.clone(),
        user_id: e.user_id.clone(),
        at: e.occurred_at_ms,
        trusted,
        touch,
        traits,
        email_hash,
        email_domain,
        ip_hash,
        device_id: None,
    }
}

/// Takes `email` (plain, when the site opted in) or `email_sha256` (what the
/// SDK sends by default) out of the traits and returns the salted hash and
/// the domain (for the disposable-domain signal).
fn email_identity<D: Db, K: Kv>(ctx: &Ctx<'_, D, K>, traits: &mut Traits) -> (Option<String>, Option<String>) {
    let plain = traits.remove("email");
    let hashed = traits.remove("email_sha256");
    let domain = traits
        .remove("email_domain")
        .and_then(|d| d.as_str().map(str::to_ascii_lowercase));
    // The same digest the SDK sends as `email_sha256`, so both paths agree.
    if let Some(email) = plain.as_ref().and_then(Value::as_str)
        && let (Some(digest), Some(normal)) = (email_sha256(email), normalise_email(email))
    {
        let domain = normal.rsplit('@').next().map(str::to_owned);
        return (Some(ctx.salted(&digest)), domain);
    }
    match hashed.as_ref().and_then(Value::as_str) {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (Some(ctx.salted(&h.to_ascii_lowercase())), domain)
        }
        _ => (None, domain),
    }
}

/// What the events table keeps: the event without any email in its traits.
fn stored_payload(e: &Event) -> String {
    let mut payload = e.payload.clone();
    if let Some(Value::Object(traits)) = payload.get_mut("traits") {
        for k in ["email", "email_sha256"] {
            traits.remove(k);
        }
    }
    Value::Object(payload).to_string()
}
