//! The Worker: request in, response out. Each handler authenticates, asks the
//! core, and runs the SQL of `crate::sql`. Errors are `ApiError` values turned
//! into the contract's JSON; nothing here panics on outside input, since a
//! panic kills the isolate.

use crate::cors::{PREFLIGHT_HEADERS, allow_origin_headers, origin_allowed};
use crate::routes::{Route, parse_limit, route};
use crate::sql;
use refloop_core::ingest::{BatchOutcome, parse_batch, plan_inserts, too_large};
use refloop_core::keys::{KeyKind, bearer_secret_key, hash_secret_key, key_kind};
use refloop_core::limits::MAX_BATCH_BYTES;
use refloop_core::{ApiError, ErrorCode};
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{D1Database, Env, Headers, Request, Response, console_error, event};

type Reply = std::result::Result<Response, ApiError>;

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: worker::Context) -> worker::Result<Response> {
    let origin = req.headers().get("Origin").ok().flatten();
    let result = handle(&mut req, &env, origin.as_deref()).await;
    let mut response = match result {
        Ok(r) => r,
        Err(e) => json_response(e.status(), e.to_json())?,
    };
    // Let the calling page read every answer of a browser route, errors too,
    // so the SDK can tell a refusal (drop) from a failure (retry).
    if let (Some(o), true) = (origin, req.path().starts_with("/v1/batch")) {
        let headers = response.headers_mut();
        for (name, value) in allow_origin_headers(&o) {
            headers.set(name, &value)?;
        }
    }
    Ok(response)
}

async fn handle(req: &mut Request, env: &Env, origin: Option<&str>) -> Reply {
    match route(req.method().as_ref(), &req.path()) {
        Route::Health => json_response(200, r#"{"ok":true}"#.to_owned()).map_err(internal),
        Route::Batch => batch(req, env, origin).await,
        Route::Preflight => preflight(env, origin).await,
        Route::AdminEvents => admin_events(req, env).await,
        Route::NotFound => Err(ApiError::new(ErrorCode::NotFound, "no such route")),
        Route::MethodNotAllowed => Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            "this route does not take that method",
        )),
    }
}

#[derive(Deserialize)]
struct SiteRow {
    site_id: i64,
    origins: Option<String>,
}

async fn batch(req: &mut Request, env: &Env, origin: Option<&str>) -> Reply {
    let declared = req.headers().get("Content-Length").ok().flatten();
    if declared
        .and_then(|l| l.parse::<usize>().ok())
        .is_some_and(|l| l > MAX_BATCH_BYTES)
    {
        return Err(too_large());
    }
    let body = req
        .bytes()
        .await
        .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, format!("the body could not be read: {e}")))?;
    let received_at = now_ms();
    let batch = parse_batch(&body, received_at)?;
    let key = batch
        .key
        .ok_or_else(|| ApiError::new(ErrorCode::MissingKey, "the batch needs a `key` (pk_…)"))?;
    if key_kind(&key) != Some(KeyKind::Publishable) {
        return Err(unknown_key());
    }
    let db = db(env)?;
    let site: SiteRow = db
        .prepare(sql::SITE_BY_PUBLISHABLE_KEY)
        .bind(&[key.as_str().into()])
        .map_err(internal)?
        .first(None)
        .await
        .map_err(internal)?
        .ok_or_else(unknown_key)?;
    let allowed: Vec<String> = site
        .origins
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if !origin_allowed(origin, &allowed) {
        return Err(ApiError::new(
            ErrorCode::OriginNotAllowed,
            format!("origin {} is not allowed for this key", origin.unwrap_or_default()),
        ));
    }

    let plan = plan_inserts(batch.events);
    let mut statements = Vec::with_capacity(plan.inserts.len());
    for e in &plan.inserts {
        let payload = serde_json::to_string(&e.payload).map_err(internal)?;
        let args: [JsValue; 10] = [
            (site.site_id as f64).into(),
            e.id.as_str().into(),
            e.event_type.as_str().into(),
            e.name.as_str().into(),
            opt(&e.anonymous_id),
            opt(&e.user_id),
            (e.occurred_at_ms as f64).into(),
            (received_at as f64).into(),
            0.into(),
            payload.into(),
        ];
        statements.push(db.prepare(sql::INSERT_EVENT).bind(&args).map_err(internal)?);
    }
    // One D1 batch is one transaction: all of a request's rows or none.
    let inserted: Vec<bool> = if statements.is_empty() {
        Vec::new()
    } else {
        db.batch(statements)
            .await
            .map_err(internal)?
            .iter()
            .map(|r| r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0) > 0)
            .collect()
    };
    let outcome = BatchOutcome::new(plan, &inserted);
    json_response(202, outcome.to_json()).map_err(internal)
}

async fn preflight(env: &Env, origin: Option<&str>) -> Reply {
    let Some(origin) = origin else {
        return Err(ApiError::new(
            ErrorCode::MalformedRequest,
            "a preflight needs an Origin",
        ));
    };
    let allowed: Option<i64> = db(env)?
        .prepare(sql::ANY_SITE_ALLOWS_ORIGIN)
        .bind(&[origin.into()])
        .map_err(internal)?
        .first(Some("allowed"))
        .await
        .map_err(internal)?;
    if allowed.is_none() {
        return Err(ApiError::new(ErrorCode::OriginNotAllowed, "no site allows this origin"));
    }
    let headers = Headers::new();
    for (name, value) in PREFLIGHT_HEADERS {
        headers.set(name, value).map_err(internal)?;
    }
    Ok(Response::empty()
        .map_err(internal)?
        .with_status(204)
        .with_headers(headers))
}

#[derive(Deserialize)]
struct EventRow {
    event_id: String,
    #[serde(rename = "type")]
    kind: String,
    name: String,
    anonymous_id: Option<String>,
    user_id: Option<String>,
    occurred_at: f64,
    received_at: f64,
    trusted: f64,
    payload: String,
}

async fn admin_events(req: &Request, env: &Env) -> Reply {
    let db = db(env)?;
    let site_id = authenticate_secret(req, &db).await?;
    let url = req.url().map_err(internal)?;
    let limit_param = url
        .query_pairs()
        .find(|(k, _)| k == "limit")
        .map(|(_, v)| v.into_owned());
    let limit = parse_limit(limit_param.as_deref()).map_err(|m| ApiError::new(ErrorCode::InvalidParameter, m))?;
    let rows: Vec<EventRow> = db
        .prepare(sql::LIST_EVENTS)
        .bind(&[(site_id as f64).into(), limit.into()])
        .map_err(internal)?
        .all()
        .await
        .map_err(internal)?
        .results()
        .map_err(internal)?;
    let events: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| {
            let payload: serde_json::Value = serde_json::from_str(&r.payload).unwrap_or(serde_json::Value::Null);
            serde_json::json!({
                "id": r.event_id,
                "type": r.kind,
                "event": r.name,
                "anonymous_id": r.anonymous_id,
                "user_id": r.user_id,
                "timestamp": refloop_core::time::format_rfc3339_ms(r.occurred_at as i64),
                "received_at": refloop_core::time::format_rfc3339_ms(r.received_at as i64),
                "trusted": r.trusted != 0.0,
                "properties": payload.get("properties"),
            })
        })
        .collect();
    json_response(200, serde_json::json!({ "events": events }).to_string()).map_err(internal)
}

/// The site whose secret key the `Authorization` header carries.
async fn authenticate_secret(req: &Request, db: &D1Database) -> std::result::Result<i64, ApiError> {
    let header = req.headers().get("Authorization").ok().flatten();
    let key = bearer_secret_key(header.as_deref())
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "send `Authorization: Bearer sk_…`"))?;
    let site: Option<f64> = db
        .prepare(sql::SITE_BY_SECRET_KEY_HASH)
        .bind(&[hash_secret_key(key).into()])
        .map_err(internal)?
        .first(Some("site_id"))
        .await
        .map_err(internal)?;
    site.map(|s| s as i64)
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "this secret key is not known"))
}

fn db(env: &Env) -> std::result::Result<D1Database, ApiError> {
    env.d1("DB").map_err(internal)
}

fn opt(v: &Option<String>) -> JsValue {
    v.as_deref().map_or(JsValue::NULL, JsValue::from)
}

fn unknown_key() -> ApiError {
    ApiError::new(ErrorCode::UnknownKey, "no site has this publishable key")
}

fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

/// Logs the cause and answers with a retryable 500 that leaks nothing.
fn internal(e: impl std::fmt::Display) -> ApiError {
    console_error!("internal error: {e}");
    ApiError::new(ErrorCode::Internal, "the edge failed; nothing was stored, retry later")
}

fn json_response(status: u16, body: String) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("Content-Type", "application/json; charset=utf-8")?;
    headers.set("Cache-Control", "no-store")?;
    Ok(Response::ok(body)?.with_status(status).with_headers(headers))
}
