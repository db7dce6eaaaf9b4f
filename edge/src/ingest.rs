//! `POST /v1/batch` (publishable key, from browsers) and `POST /v1/server/events`
//! (secret key, trusted).
//!
//! A request costs a fixed number of round trips whatever the number of events:
//! the limits (the `Limiter`, no D1 write), one call per campaign the events reach (its
//! Durable Object decides all of them in one transaction and dedupes them by
//! id), then one D1 transaction that logs the events, queues the webhook
//! notices and records the referral codes handed out. A visitor's page views
//! reach no campaign, so their request is one D1 transaction in all.
//!
//! Order matters for "no event lost, none counted twice": the campaigns decide
//! before the log is written, so a failure anywhere leaves nothing in the log
//! and the client's retry is decided again; a campaign that already applied an
//! event answers it as a duplicate.

use crate::app::{Campaigns, Ctx, Cx, Limiter, Reply, Request, Response, Site, db_error};
use crate::campaign::{EventsReply, Op};
use crate::db::{Db, Kv, Stmt, typed};
use crate::directory::{CampaignRow, call, config_version};
use crate::sql;
use crate::stmt;
use refloop_core::ApiError;
use refloop_core::email::{email_sha256, normalise_email};
use refloop_core::engine::config::CampaignConfig;
use refloop_core::engine::machine::EngineEvent;
use refloop_core::engine::model::Traits;
use refloop_core::engine::referral::Touch;
use refloop_core::event::Event;
use refloop_core::ingest::{BatchOutcome, parse_batch, plan_inserts, too_large};
use refloop_core::limits::MAX_BATCH_BYTES;
use refloop_core::time::parse_rfc3339_ms;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// D1 round trips of one ingestion request, at most: the campaigns of the
/// tenant (when the isolate has not kept them), the links the events name,
/// the site's own limit (only a site that has one), the log. (The site is cached by the isolate; configurations
/// are kept with the campaigns, read from KV when the isolate fetches them,
/// and from D1 only the first time a version is seen.) Subrequests to campaign objects: one
/// per campaign reached, at most the tenant's active campaigns.
pub const MAX_D1_ROUND_TRIPS: usize = 4;

/// `POST /v1/batch`: a page's events (the key travels in the body).
pub async fn batch<D: Db, K: Kv, C: Campaigns, L: Limiter>(cx: &Cx<'_, D, K, C, L>) -> Reply {
    check_size(cx.req)?;
    let parsed = parse_batch(&cx.req.body, cx.ctx.now)?;
    let site = cx.browser_site(parsed.key.as_deref()).await?;
    ingest(cx.ctx, cx.req, &site, parsed.events, false).await
}

/// `POST /v1/server/events`: the site's server's events (trusted).
pub async fn server_events<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &crate::admin::Admin<'_, D, K, C, L>) -> Reply {
    check_size(a.req)?;
    let parsed = parse_batch(&a.req.body, a.ctx.now)?;
    ingest(a.ctx, a.req, &a.site, parsed.events, true).await
}

fn check_size(req: &Request) -> Result<(), ApiError> {
    let declared = req.header("content-length").and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|l| l > MAX_BATCH_BYTES) || req.body.len() > MAX_BATCH_BYTES {
        return Err(too_large());
    }
    Ok(())
}

/// A tenant's active campaigns, shared by the requests of one isolate.
type LiveCampaigns = std::rc::Rc<Vec<Live>>;

/// A campaign that takes events, with its current configuration.
struct Live {
    row: CampaignRow,
    config: CampaignConfig,
}

impl Live {
    /// Whether an event of this name can change anything in the campaign: it
    /// makes someone join, a rule or a quest step names it.
    fn acts_on(&self, e: &EngineEvent) -> bool {
        e.joins()
            || self.config.rules_for(&e.name).next().is_some()
            || self.config.quest.steps.iter().any(|s| s.event == e.name)
    }
}

async fn ingest<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    events: Vec<Result<Event, refloop_core::event::EventRejection>>,
    trusted: bool,
) -> Reply {
    // The limits were counted before (nothing is decided nor stored over one).
    let mut round_trips = usize::from(site.per_minute.is_some());
    let ip_hash = ctx.ip_hash(req);
    let plan = plan_inserts(events);
    let engine_events: Vec<EngineEvent> = plan
        .inserts
        .iter()
        .map(|e| engine_event(ctx, site, e, trusted, ip_hash.clone()))
        .collect();

    // Which campaigns each event reaches.
    let live = match cached_campaigns(ctx, site.tenant_id) {
        Some(live) => live,
        None => {
            round_trips += 1;
            let rows: Vec<CampaignRow> = crate::db::query_as(ctx.db, stmt!(sql::ACTIVE_CAMPAIGNS, site.tenant_id))
                .await
                .map_err(db_error)?;
            let mut live = Vec::new();
            for row in rows {
                let config = config_version(ctx.db, ctx.kv, row.id, row.current_version)
                    .await
                    .map_err(db_error)?
                    .config;
                live.push(Live { row, config });
            }
            let live = std::rc::Rc::new(live);
            keep_campaigns(ctx, site.tenant_id, &live);
            live
        }
    };
    let links = if live.is_empty() {
        HashMap::new()
    } else {
        round_trips += 1;
        links_of(ctx, &engine_events).await?
    };
    let mut reach: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, (e, raw)) in engine_events.iter().zip(&plan.inserts).enumerate() {
        for c in targets(&live, e, raw, &links) {
            reach.entry(c).or_default().push(i);
        }
    }

    let log = log_statement(ctx, site, &plan.inserts, trusted);
    let mut last: Vec<Stmt> = Vec::new();
    if !reach.is_empty() {
        for (campaign, indexes) in &reach {
            let Some(c) = live.iter().find(|l| l.row.id == *campaign) else {
                continue;
            };
            let events = indexes.iter().map(|i| engine_events[*i].clone()).collect();
            let answer = call(ctx, &c.row, Op::Events { events }).await?;
            let reply: EventsReply = serde_json::from_value(answer)
                .map_err(|e| crate::app::internal(format!("campaign {campaign} answered: {e}")))?;
            let meta = c.row.meta();
            for (kind, payload) in &reply.notices {
                last.push(crate::directory::notice_statement(&meta, kind, payload, ctx.now));
            }
            for code in &reply.codes {
                last.push(stmt!(sql::INSERT_LINK, code.as_str(), *campaign, "code"));
            }
        }
    }
    // The log last, in the same transaction as the notices and codes.
    let stored: std::collections::HashSet<String> = match log {
        Some(log) => {
            last.insert(0, log);
            round_trips += 1;
            let results = crate::db::batch_rows_retrying(ctx.db, last, ctx.seed)
                .await
                .map_err(db_error)?;
            results
                .first()
                .into_iter()
                .flatten()
                .cloned()
                .map(typed::<Logged>)
                .filter_map(Result::ok)
                .map(|r| r.event_id)
                .collect()
        }
        None => {
            if !last.is_empty() {
                round_trips += 1;
                ctx.db.batch_rows(last).await.map_err(db_error)?;
            }
            Default::default()
        }
    };
    debug_assert!(
        round_trips <= MAX_D1_ROUND_TRIPS,
        "{round_trips} D1 round trips, the bound is {MAX_D1_ROUND_TRIPS}"
    );
    let inserted: Vec<bool> = plan.inserts.iter().map(|e| stored.contains(&e.id)).collect();
    Ok(Response::json(202, BatchOutcome::new(plan, &inserted).to_json()))
}

thread_local! {
    /// The active campaigns of a tenant with their current configurations,
    /// kept by the isolate for `Ctx::site_cache_seconds` (every batch asks;
    /// campaigns change rarely, a version never changes once written, and a
    /// change made through this isolate forgets them at once).
    static CAMPAIGNS: std::cell::RefCell<HashMap<i64, (LiveCampaigns, i64)>> = Default::default();
}

fn cached_campaigns<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    tenant: i64,
) -> Option<LiveCampaigns> {
    if ctx.site_cache_seconds <= 0 {
        return None;
    }
    CAMPAIGNS.with(|c| {
        c.borrow()
            .get(&tenant)
            .filter(|(_, until)| *until > ctx.now)
            .map(|(rows, _)| rows.clone())
    })
}

fn keep_campaigns<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    tenant: i64,
    live: &LiveCampaigns,
) {
    if ctx.site_cache_seconds <= 0 {
        return;
    }
    CAMPAIGNS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 10_000 {
            c.clear();
        }
        c.insert(tenant, (live.clone(), ctx.now + ctx.site_cache_seconds * 1000));
    });
}

/// After a change to a tenant's campaigns: this isolate asks D1 again.
pub fn forget_campaigns(tenant: i64) {
    CAMPAIGNS.with(|c| c.borrow_mut().remove(&tenant));
}

/// The campaigns an event reaches. An event that names its `campaign` reaches
/// that one; a signup whose referral code or invitation names a campaign
/// reaches that one; any other event reaches every active campaign of the
/// tenant that can act on it (a join, or a rule or quest step of its name).
fn targets(live: &[Live], e: &EngineEvent, raw: &Event, links: &HashMap<String, i64>) -> Vec<i64> {
    let named = raw.payload.get("campaign").and_then(Value::as_str);
    if let Some(slug) = named {
        return live
            .iter()
            .filter(|l| l.row.slug == slug && l.acts_on(e))
            .map(|l| l.row.id)
            .collect();
    }
    if let Some(t) = &e.touch
        && let Some(c) = [&t.code, &t.invitation]
            .into_iter()
            .flatten()
            .find_map(|token| links.get(token))
    {
        return live.iter().filter(|l| l.row.id == *c).map(|l| l.row.id).collect();
    }
    live.iter().filter(|l| l.acts_on(e)).map(|l| l.row.id).collect()
}

/// The campaigns the batch's referral codes and invitations name (one query).
async fn links_of<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    events: &[EngineEvent],
) -> Result<HashMap<String, i64>, ApiError> {
    let tokens: Vec<&str> = events
        .iter()
        .filter_map(|e| e.touch.as_ref())
        .flat_map(|t| [t.code.as_deref(), t.invitation.as_deref()])
        .flatten()
        .collect();
    if tokens.is_empty() {
        return Ok(HashMap::new());
    }
    let list = serde_json::to_string(&tokens).unwrap_or_else(|_| "[]".into());
    #[derive(serde::Deserialize)]
    struct Link {
        token: String,
        id: i64,
    }
    let links: Vec<Link> = crate::db::query_as(ctx.db, stmt!(sql::LINKS, list))
        .await
        .map_err(db_error)?;
    Ok(links.into_iter().map(|l| (l.token, l.id)).collect())
}

/// An event the log statement stored (`RETURNING event_id`).
#[derive(serde::Deserialize)]
struct Logged {
    event_id: String,
}

/// The one statement that logs every event of the batch (none: no statement).
fn log_statement<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    site: &Site,
    events: &[Event],
    trusted: bool,
) -> Option<Stmt> {
    if events.is_empty() {
        return None;
    }
    /// An element of `sql::INSERT_EVENTS`'s JSON array.
    #[derive(serde::Serialize)]
    struct LogRow<'a> {
        id: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        name: &'a str,
        anonymous_id: &'a Option<String>,
        user_id: &'a Option<String>,
        at: i64,
        payload: String,
    }
    let rows: Vec<LogRow> = events
        .iter()
        .map(|e| LogRow {
            id: &e.id,
            kind: e.event_type.as_str(),
            name: &e.name,
            anonymous_id: &e.anonymous_id,
            user_id: &e.user_id,
            at: e.occurred_at_ms,
            payload: stored_payload(e),
        })
        .collect();
    let rows = serde_json::to_string(&rows).ok()?;
    Some(stmt!(sql::INSERT_EVENTS, site.id, ctx.now, trusted, rows))
}

/// The event as the engine sees it: attribution as a touch, the email only as
/// a salted hash of its normalised form, the IP only as a salted hash.
pub fn engine_event<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    site: &Site,
    e: &Event,
    trusted: bool,
    ip_hash: Option<String>,
) -> EngineEvent {
    // A browser's user id is vouched for only by the site's signature.
    let verified = trusted
        || e.user_id.as_deref().is_some_and(|u| {
            e.payload
                .get("user_hash")
                .and_then(Value::as_str)
                .is_some_and(|h| ctx.user_hash_ok(site.id, u, h))
        });
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
        // When the link was clicked, as the browser remembers it: never
        // after the event, nor after now.
        at: text("at")
            .and_then(|t| parse_rfc3339_ms(&t))
            .unwrap_or(e.occurred_at_ms)
            .min(e.occurred_at_ms)
            .min(ctx.now),
    });
    // Where it came from: the campaign tags, else a click id's kind, else the
    // referring host (each at most 64 characters).
    let source = touch.as_ref().and(
        text("utm_source")
            .map(|s| match text("utm_medium") {
                Some(m) => format!("{s} / {m}"),
                None => s,
            })
            .or_else(|| text("click_id").map(|k| format!("{k} (paid)")))
            .or_else(|| text("referrer_host")),
    );
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
        // Server time decides every window, date and tie of a browser's
        // event (velocity, stale referrals, quest and campaign dates, who
        // joined first): a client clock could backdate any of them; its own
        // time stays in the log (`occurred_at`), for display and ordering.
        // The site's server is believed about when its events happened
        // (bounded to the last 30 days): that is how history is imported.
        at: if trusted { e.occurred_at_ms } else { ctx.now },
        trusted,
        verified,
        touch,
        source,
        traits,
        email_hash,
        email_domain,
        ip_hash,
        device_id: None,
        // A purchase's amount sizes credits only when the site's server says
        // it (a page could claim any amount): `properties.amount_minor`, a
        // non-negative integer of minor units.
        amount_minor: e
            .payload
            .get("properties")
            .and_then(|p| p.get("amount_minor"))
            .and_then(Value::as_i64)
            .filter(|a| trusted && (0..=MAX_AMOUNT_MINOR).contains(a)),
    }
}

/// The largest purchase amount a trusted event can state (10^12 minor units).
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000;

/// Takes `email` (plain, when the site opted in) or `email_sha256` (what the
/// SDK sends by default) out of the traits and returns the salted hash and
/// the domain (for the disposable-domain signal).
fn email_identity<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    traits: &mut Traits,
) -> (Option<String>, Option<String>) {
    // Contact details are never kept as they were sent: an email by any of
    // its usual names becomes the salted hash, a phone number is dropped.
    let mut plain = None;
    let contact: Vec<String> = traits.keys().filter(|k| contact_key(k).is_some()).cloned().collect();
    for k in contact {
        let v = traits.remove(&k);
        if contact_key(&k) == Some(Contact::Email) && (plain.is_none() || k == "email") {
            plain = v;
        }
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contact {
    Email,
    Phone,
}

/// Whether a trait or property key names a contact detail.
fn contact_key(key: &str) -> Option<Contact> {
    let k = key.to_ascii_lowercase().replace(['-', ' '], "_");
    match k.as_str() {
        "email" | "e_mail" | "mail" | "email_address" | "user_email" | "emailaddress" => Some(Contact::Email),
        "phone" | "phone_number" | "phonenumber" | "mobile" | "mobile_phone" | "tel" | "telephone" | "cell" => {
            Some(Contact::Phone)
        }
        _ => None,
    }
}

/// What the events table keeps: the event without any contact detail in its
/// traits or properties (nor the email's hash).
fn stored_payload(e: &Event) -> String {
    let mut payload = e.payload.clone();
    for field in ["traits", "properties"] {
        if let Some(Value::Object(m)) = payload.get_mut(field) {
            m.retain(|k, _| contact_key(k).is_none() && k != "email_sha256");
        }
    }
    Value::Object(payload).to_string()
}
