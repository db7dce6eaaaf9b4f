//! The public routes: referral links, the leaderboard, a code's stats, the
//! SDK's `me()` and invitations. They take the publishable key and show only
//! public facts: codes, masked names, counts, never an email or an IP.

use crate::app::{Browser, Campaigns, Cx, Limiter, Reply, Response, bad, db_error, not_found};
use crate::body::Text;
use crate::campaign::Op;
use crate::db::{Db, Kv, query_as};
use crate::directory::{CampaignRow, call, campaign_of};
use crate::sql;
use crate::stmt;
use refloop_core::ApiError;
use refloop_core::engine::config::{CampaignConfig, Period};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /r/{code}`: count the click, send the visitor to the landing page with the code.
pub async fn click<D: Db, K: Kv, C: Campaigns, L: Limiter>(cx: &Cx<'_, D, K, C, L>) -> Reply {
    /// A link of `sql::LINKS`: its kind and its campaign's row.
    #[derive(Deserialize)]
    struct Link {
        kind: String,
        #[serde(flatten)]
        campaign: CampaignRow,
    }
    let ctx = cx.ctx;
    let code = cx.path("code").trim().to_ascii_uppercase();
    if code.is_empty() || code.len() > 64 {
        return Err(not_found("no such referral code"));
    }
    let list = serde_json::to_string(&[code.as_str()]).unwrap_or_default();
    let links: Vec<Link> = query_as(ctx.db, stmt!(sql::LINKS, list)).await.map_err(db_error)?;
    let campaign = links
        .into_iter()
        .find(|l| l.kind == "code")
        .map(|l| l.campaign)
        .ok_or_else(|| not_found("no such referral code"))?;
    let visitor = ctx.ip_hash(cx.req);
    let answer = call(
        ctx,
        &campaign,
        Op::Click {
            code: code.clone(),
            visitor,
        },
    )
    .await?;
    let landing = crate::campaign::Landing::deserialize(&answer).map_err(crate::app::internal)?;
    let url = landing
        .landing_url
        .ok_or_else(|| not_found("this campaign has no landing page"))?;
    // A code that was replaced or ran out of days still brings the visitor
    // to the site, but names no one.
    let location = match landing.refused {
        None => with_param(&url, "ref", &code)?,
        Some(_) => url::Url::parse(&url)
            .map_err(|_| not_found("this campaign's landing page is not a URL"))?
            .into(),
    };
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

/// `landing` with `name=value` added to its query.
fn with_param(landing: &str, name: &str, value: &str) -> Result<String, ApiError> {
    let mut url = url::Url::parse(landing).map_err(|_| not_found("this campaign's landing page is not a URL"))?;
    url.query_pairs_mut().append_pair(name, value);
    Ok(url.into())
}

fn parse_period(config: &CampaignConfig, value: Option<&str>) -> Result<Period, ApiError> {
    let period = match value {
        None => Period::All,
        Some(v) => serde_json::from_value(Value::String(v.to_owned()))
            .map_err(|_| crate::app::invalid(format!("period must be all, month or week, not {v:?}")))?,
    };
    if !config.leaderboard.periods.contains(&period) {
        return Err(not_found("this campaign keeps no board for that period"));
    }
    Ok(period)
}

/// A board's top as KV keeps it for `Ctx::top_cache_seconds`.
#[derive(Serialize, Deserialize)]
struct CachedTop {
    at: i64,
    body: Value,
}

/// `GET /v1/campaigns/{campaign}/leaderboard`: the top N (cached briefly in
/// KV) and, with `around`, the rows around one code.
pub async fn leaderboard<D: Db, K: Kv, C: Campaigns, L: Limiter>(b: &Browser<'_, D, K, C, L>) -> Reply {
    let ctx = b.ctx;
    let (campaign, current) = campaign_of(ctx, b.site.tenant_id, b.path("campaign")).await?;
    let period = parse_period(&current.config, b.query("period"))?;
    let limit = b.limit(10, 100)?;
    let around = b.query("around").map(str::to_ascii_uppercase);
    let period_name = crate::app::name_of(&period);
    let cache_key = format!("top:{}:{period_name}:{limit}", campaign.id);
    let cacheable = around.is_none() && ctx.top_cache_seconds > 0;
    if cacheable
        && let Some(text) = ctx.kv.get(&cache_key).await
        && let Ok(cached) = serde_json::from_str::<CachedTop>(&text)
        && ctx.now - cached.at < ctx.top_cache_seconds * 1000
    {
        return Ok(Response::value(200, &cached.body));
    }
    let mut body = call(ctx, &campaign, Op::Leaderboard { period, limit, around }).await?;
    body["period"] = Value::String(period_name);
    if cacheable
        && let Ok(entry) = serde_json::to_string(&CachedTop {
            at: ctx.now,
            body: body.clone(),
        })
    {
        ctx.kv.put(&cache_key, &entry, Some(60)).await;
    }
    Ok(Response::value(200, &body))
}

/// `GET /v1/campaigns/{campaign}/participants/{code}`.
pub async fn participant<D: Db, K: Kv, C: Campaigns, L: Limiter>(b: &Browser<'_, D, K, C, L>) -> Reply {
    let (ctx, site) = (b.ctx, &b.site);
    let (campaign, _) = campaign_of(ctx, site.tenant_id, b.path("campaign")).await?;
    let op = Op::Stats {
        code: Some(b.path("code").to_ascii_uppercase()),
        anonymous_id: None,
        user_id: None,
    };
    Ok(Response::value(200, &call(ctx, &campaign, op).await?))
}

/// `GET /v1/campaigns/{campaign}/me?key&anonymous_id|user_id`: the SDK's `me()`.
pub async fn me<D: Db, K: Kv, C: Campaigns, L: Limiter>(b: &Browser<'_, D, K, C, L>) -> Reply {
    let (ctx, site, req) = (b.ctx, &b.site, b.req);
    let (campaign, _) = campaign_of(ctx, site.tenant_id, b.path("campaign")).await?;
    // A user id is looked up only with the site's signature of it: otherwise
    // any page could ask whether a user id exists (and read their numbers).
    let anonymous_id = req.param("anonymous_id");
    let user_id = req
        .param("user_id")
        .filter(|u| req.param("user_hash").is_some_and(|h| ctx.user_hash_ok(site.id, u, h)));
    if anonymous_id.is_none() && user_id.is_none() {
        return Err(bad("send `anonymous_id` (or `user_id` with its `user_hash`)"));
    }
    let op = Op::Stats {
        code: None,
        anonymous_id: anonymous_id.map(str::to_owned),
        user_id: user_id.map(str::to_owned),
    };
    Ok(Response::value(200, &call(ctx, &campaign, op).await?))
}

/// `POST /v1/invitations` `{key, campaign, anonymous_id | user_id + user_hash}`
/// → `{token, url, expires_at}`.
pub async fn invitation<D: Db, K: Kv, C: Campaigns, L: Limiter>(cx: &Cx<'_, D, K, C, L>) -> Reply {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Ask {
        key: Option<String>,
        campaign: Text<64>,
        anonymous_id: Option<Text<128>>,
        user_id: Option<Text<128>>,
        user_hash: Option<String>,
    }
    #[derive(Deserialize)]
    struct Made {
        token: String,
        expires_at: Value,
    }
    #[derive(Serialize)]
    struct Invitation {
        token: String,
        url: String,
        expires_at: Value,
    }
    let ask: Ask = cx.body()?;
    let ctx = cx.ctx;
    let site = cx.browser_site(ask.key.as_deref()).await?;
    let (campaign, current) = campaign_of(ctx, site.tenant_id, ask.campaign.as_str()).await?;
    // As for `me`: a user id only with the site's signature of it.
    let user_id = ask.user_id.map(|u| u.0).filter(|u| {
        ask.user_hash
            .as_deref()
            .is_some_and(|h| ctx.user_hash_ok(site.id, u, h))
    });
    if ask.anonymous_id.is_none() && user_id.is_none() {
        return Err(bad("send `anonymous_id` (or `user_id` with its `user_hash`)"));
    }
    let op = Op::Invite {
        anonymous_id: ask.anonymous_id.map(|a| a.0),
        user_id,
    };
    let made: Made = serde_json::from_value(call(ctx, &campaign, op).await?).map_err(crate::app::internal)?;
    ctx.db
        .batch(vec![stmt!(
            sql::INSERT_LINK,
            made.token.as_str(),
            campaign.id,
            "invite"
        )])
        .await
        .map_err(db_error)?;
    // No landing page, no link to it (the token still works in `?invite=`).
    let url = match current.config.landing_url.as_deref() {
        Some(landing) => with_param(landing, "invite", &made.token)?,
        None => String::new(),
    };
    Ok(Response::view(
        201,
        &Invitation {
            url,
            token: made.token,
            expires_at: made.expires_at,
        },
    ))
}

/// `GET /v1/qr.svg?data=…`: a QR code of a referral link or invitation, as SVG,
/// for the share widget. Pure and cacheable: the same text, the same image.
pub async fn qr<D: Db, K: Kv, C: Campaigns, L: Limiter>(cx: &Cx<'_, D, K, C, L>) -> Reply {
    let data = cx.query("data").unwrap_or("");
    if data.is_empty() || data.chars().count() > 512 {
        return Err(crate::app::invalid("`data` is the text to encode, 1 to 512 characters"));
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
