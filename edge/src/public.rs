//! The public routes: referral links, the leaderboard, a code's stats, the
//! SDK's `me()` and invitations. They take the publishable key and show only
//! public facts: codes, masked names, counts, never an email or an IP.

use crate::app::{
    Bucket, Campaigns, Ctx, Limiter, Reply, Request, Response, Site, bad, check_origin, db_error, json_body, not_found,
    rate_limit, site_by_publishable_key,
};
use crate::campaign::Op;
use crate::db::{Db, Kv, RowExt};
use crate::directory::{CampaignRow, call, campaign_of};
use crate::routes::parse_limit;
use crate::sql;
use crate::stmt;
use refloop_core::ApiError;
use refloop_core::engine::config::{CampaignConfig, Period};
use serde_json::{Value, json};

/// `GET /r/{code}`: count the click, send the visitor to the landing page with the code.
pub async fn click<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    code: &str,
) -> Reply {
    let code = code.trim().to_ascii_uppercase();
    if code.is_empty() || code.len() > 64 {
        return Err(not_found("no such referral code"));
    }
    let list = serde_json::to_string(&[code.as_str()]).unwrap_or_default();
    let campaign = ctx
        .db
        .query(stmt!(sql::LINKS, list))
        .await
        .map_err(db_error)?
        .iter()
        .find(|r| r.text("kind") == "code")
        .map(CampaignRow::from_row)
        .ok_or_else(|| not_found("no such referral code"))?;
    crate::app::ip_limit(ctx, req).await?;
    let visitor = ctx.ip_hash(req);
    let answer = call(
        ctx,
        &campaign,
        Op::Click {
            code: code.clone(),
            visitor,
        },
    )
    .await?;
    let landing = answer
        .get("landing_url")
        .and_then(Value::as_str)
        .map(str::to_owned)
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

async fn public_site<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
) -> Result<Site, ApiError> {
    let site = crate::app::cached_site(ctx, req.param("key")).await?;
    check_origin(&site, req)?;
    rate_limit(ctx, req, &site, Bucket::PublicRead).await?;
    Ok(site)
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
pub async fn leaderboard<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    name: &str,
) -> Reply {
    let site = public_site(ctx, req).await?;
    let (campaign, current) = campaign_of(ctx, site.tenant_id, name).await?;
    let period = parse_period(&current.config, req.param("period"))?;
    let limit = parse_limit(req.param("limit"), 10, 100).map_err(crate::app::invalid)?;
    let around = req.param("around").map(str::to_ascii_uppercase);
    let cache_key = format!("top:{}:{}:{limit}", campaign.id, req.param("period").unwrap_or("all"));
    let cacheable = around.is_none() && ctx.top_cache_seconds > 0;
    if cacheable
        && let Some(text) = ctx.kv.get(&cache_key).await
        && let Ok(cached) = serde_json::from_str::<Value>(&text)
        && cached["at"]
            .as_i64()
            .is_some_and(|at| ctx.now - at < ctx.top_cache_seconds * 1000)
    {
        return Ok(Response::value(200, &cached["body"]));
    }
    let mut body = call(ctx, &campaign, Op::Leaderboard { period, limit, around }).await?;
    body["period"] = json!(req.param("period").unwrap_or("all"));
    if cacheable {
        let entry = json!({"at": ctx.now, "body": body}).to_string();
        ctx.kv.put(&cache_key, &entry, Some(60)).await;
    }
    Ok(Response::value(200, &body))
}

/// `GET /v1/campaigns/{campaign}/participants/{code}`.
pub async fn participant<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    name: &str,
    code: &str,
) -> Reply {
    let site = public_site(ctx, req).await?;
    let (campaign, _) = campaign_of(ctx, site.tenant_id, name).await?;
    let op = Op::Stats {
        code: Some(code.to_ascii_uppercase()),
        anonymous_id: None,
        user_id: None,
    };
    Ok(Response::value(200, &call(ctx, &campaign, op).await?))
}

/// `GET /v1/campaigns/{campaign}/me?key&anonymous_id|user_id`: the SDK's `me()`.
pub async fn me<D: Db, K: Kv, C: Campaigns, L: Limiter>(ctx: &Ctx<'_, D, K, C, L>, req: &Request, name: &str) -> Reply {
    let site = public_site(ctx, req).await?;
    let (campaign, _) = campaign_of(ctx, site.tenant_id, name).await?;
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

/// `POST /v1/invitations` `{key, campaign, anonymous_id|user_id}` → `{token, url}`.
pub async fn invitation<D: Db, K: Kv, C: Campaigns, L: Limiter>(ctx: &Ctx<'_, D, K, C, L>, req: &Request) -> Reply {
    let body = json_body(req)?;
    let s = |k: &str| body.get(k).and_then(Value::as_str);
    let site = site_by_publishable_key(ctx.db, s("key")).await?;
    check_origin(&site, req)?;
    rate_limit(ctx, req, &site, Bucket::Browser).await?;
    let name = s("campaign").ok_or_else(|| bad("name the `campaign`"))?;
    let (campaign, current) = campaign_of(ctx, site.tenant_id, name).await?;
    // As for `me`: a user id only with the site's signature of it.
    let user_id = s("user_id").filter(|u| s("user_hash").is_some_and(|h| ctx.user_hash_ok(site.id, u, h)));
    if s("anonymous_id").is_none() && user_id.is_none() {
        return Err(bad("send `anonymous_id` (or `user_id` with its `user_hash`)"));
    }
    let op = Op::Invite {
        anonymous_id: s("anonymous_id").map(str::to_owned),
        user_id: user_id.map(str::to_owned),
    };
    let answer = call(ctx, &campaign, op).await?;
    let token = answer["token"].as_str().unwrap_or_default().to_owned();
    ctx.db
        .batch(vec![stmt!(sql::INSERT_LINK, token.as_str(), campaign.id, "invite")])
        .await
        .map_err(db_error)?;
    let landing = current.config.landing_url.clone().unwrap_or_default();
    let param = if landing.contains('?') { '&' } else { '?' };
    Ok(Response::value(
        201,
        &json!({
            "token": token,
            "url": format!("{landing}{param}invite={token}"),
            "expires_at": answer["expires_at"],
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
