//! The edge as a function from a request to a response, over `Db` and `Kv`.
//! The Worker glue builds a `Request` and a `Ctx` and sends back the
//! `Response`; the native tests do the same with rusqlite.

use crate::cors::{PREFLIGHT_HEADERS, allow_origin_headers, origin_allowed};
use crate::db::{Db, DbError, Kv, Row, RowExt};
use crate::routes::{Matched, Route, route};
use crate::sql;
use crate::stmt;
use refloop_core::engine::model::Millis;
use refloop_core::keys::{KeyKind, bearer_secret_key, hash_secret_key, key_kind};
use refloop_core::{ApiError, ErrorCode};
use sha2::Sha256;

pub type Reply = Result<Response, ApiError>;

#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn origin(&self) -> Option<&str> {
        self.header("origin")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Response {
            status,
            headers: vec![
                ("Content-Type".into(), "application/json; charset=utf-8".into()),
                ("Cache-Control".into(), "no-store".into()),
            ],
            body: body.into(),
        }
    }

    pub fn value(status: u16, v: &serde_json::Value) -> Self {
        Self::json(status, v.to_string())
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn error(e: &ApiError) -> Self {
        let r = Self::json(e.status(), e.to_json());
        match e.code {
            ErrorCode::RateLimited => r.with_header("Retry-After", retry_after(e)),
            ErrorCode::Busy | ErrorCode::Internal => r.with_header("Retry-After", "1"),
            _ => r,
        }
    }
}

/// Rate-limit errors carry their wait in the message's last word.
fn retry_after(e: &ApiError) -> String {
    e.message
        .rsplit(' ')
        .next()
        .and_then(|w| w.trim_end_matches('s').parse::<u32>().ok())
        .unwrap_or(60)
        .to_string()
}

/// Requests per minute before 429, per bucket (natively; the worker's limits
/// are its Rate Limiting bindings', in `wrangler.toml`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_key_per_minute: i64,
    pub per_ip_per_minute: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_key_per_minute: 1200,
            per_ip_per_minute: 240,
        }
    }
}

/// What a request is counted against. Browsers' ingestion, servers'
/// ingestion and the admin API, and public reads have separate budgets per
/// site, so a flood of anonymous reads never stops a tenant's real
/// purchases; every public route also counts against the client's IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// `/v1/batch` and invitations, per site.
    Browser,
    /// Secret-key routes (`/v1/server/events`, the admin API), per site.
    Server,
    /// Leaderboards, `me`, public participant views, per site.
    PublicRead,
    /// Every public route, per client IP (salted hash).
    Ip,
}

impl Bucket {
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Browser => "browser",
            Bucket::Server => "server",
            Bucket::PublicRead => "read",
            Bucket::Ip => "ip",
        }
    }
}

/// Counts requests per (bucket, key) in fixed windows without a write to
/// D1: the Workers Rate Limiting binding on Cloudflare (`glue.rs`),
/// `MemLimiter` natively. `true`: one more is allowed.
#[allow(async_fn_in_trait)]
pub trait Limiter {
    async fn allow(&self, bucket: Bucket, key: &str) -> bool;
}

/// Fixed one-minute windows in memory, with `Limits`: the native tests'
/// limiter (the worker's bindings count the same way, across isolates).
#[derive(Default)]
pub struct MemLimiter {
    pub limits: std::cell::Cell<Limits>,
    /// The time windows are counted by (the caller's clock).
    pub now: std::cell::Cell<Millis>,
    counts: std::cell::RefCell<std::collections::HashMap<(Bucket, String, i64), i64>>,
}

impl MemLimiter {
    pub fn new(limits: Limits) -> Self {
        MemLimiter {
            limits: std::cell::Cell::new(limits),
            ..MemLimiter::default()
        }
    }
}

impl Limiter for MemLimiter {
    async fn allow(&self, bucket: Bucket, key: &str) -> bool {
        let limits = self.limits.get();
        let limit = match bucket {
            Bucket::Ip => limits.per_ip_per_minute,
            _ => limits.per_key_per_minute,
        };
        let window = self.now.get() / 60_000;
        let mut counts = self.counts.borrow_mut();
        counts.retain(|k, _| k.2 >= window);
        let n = counts.entry((bucket, key.to_owned(), window)).or_insert(0);
        *n += 1;
        *n <= limit
    }
}

/// What every request needs from the platform, or the reason to refuse it
/// (fail closed: without a salt IPs and emails would be kept unsalted;
/// without randomness keys and secrets would be guessable).
#[derive(Debug)]
pub struct Needs {
    pub salt: String,
    pub seed: u64,
    pub entropy: [u8; 48],
}

impl Needs {
    pub fn from(
        salt: Option<String>,
        seed: Result<[u8; 8], String>,
        entropy: Result<[u8; 48], String>,
    ) -> Result<Needs, ApiError> {
        let refuse = |why: &str| {
            log(&format!("refusing to serve: {why}"));
            ApiError::new(ErrorCode::Internal, format!("the edge is misconfigured: {why}"))
        };
        let salt = salt
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| refuse("the HASH_SALT secret is not set"))?;
        let seed = u64::from_le_bytes(seed.map_err(|e| refuse(&e))?);
        let entropy = entropy.map_err(|e| refuse(&e))?;
        Ok(Needs { salt, seed, entropy })
    }
}

/// The campaigns' single writers: one call reaches one campaign's Durable
/// Object (natively, its rusqlite database) and returns its answer.
#[allow(async_fn_in_trait)]
pub trait Campaigns {
    async fn call(&self, call: &crate::campaign::Call) -> Result<serde_json::Value, ApiError>;
}

/// What a request may use besides its own bytes.
pub struct Ctx<'a, D: Db, K: Kv, C: Campaigns, L: Limiter> {
    pub db: &'a D,
    pub kv: &'a K,
    pub campaigns: &'a C,
    pub limiter: &'a L,
    pub now: Millis,
    /// Fresh randomness for this request (ids, codes, tokens).
    pub seed: u64,
    /// Fresh CSPRNG bytes for secrets (API keys, webhook secrets).
    pub entropy: [u8; 48],
    /// Salt of the IP and email hashes (a Worker secret).
    pub salt: &'a str,
    /// SHA-256 of the root key that may create tenants (a Worker secret).
    pub root_key_hash: Option<&'a str>,
    /// Seconds a cached leaderboard top stays fresh (0: no cache).
    pub top_cache_seconds: i64,
    /// Seconds the isolate keeps a site (keys, origins, limit) it looked up.
    pub site_cache_seconds: i64,
    /// Webhooks may point at this machine (http, loopback): development only
    /// (`ALLOW_LOCAL_WEBHOOKS` in `.dev.vars`).
    pub allow_local_webhooks: bool,
}

impl<D: Db, K: Kv, C: Campaigns, L: Limiter> Ctx<'_, D, K, C, L> {
    /// HMAC-SHA256 keyed with the salt, hex: how IPs and emails are kept (a
    /// keyed hash, so a table of them cannot be matched without the secret).
    pub fn salted(&self, value: &str) -> String {
        let mut mac = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(self.salt.as_bytes())
            .expect("HMAC takes a key of any length");
        hmac::Mac::update(&mut mac, value.as_bytes());
        hex(&hmac::Mac::finalize(mac).into_bytes())
    }

    /// A site's identity-verification secret: its server signs a user id with
    /// it (`user_hash`, as Intercom's), so a browser's claim to be that user
    /// can be believed. Derived from the salt, never stored; the secret-key
    /// route `GET /v1/admin/identity` tells it to the site.
    pub fn identity_secret(&self, site_id: i64) -> String {
        let mut mac = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(self.salt.as_bytes())
            .expect("HMAC takes a key of any length");
        hmac::Mac::update(&mut mac, format!("identity:{site_id}").as_bytes());
        format!("idsec_{}", hex(&hmac::Mac::finalize(mac).into_bytes()))
    }

    /// Whether `user_hash` is hex HMAC-SHA256(the site's identity secret, user id).
    pub fn user_hash_ok(&self, site_id: i64, user_id: &str, user_hash: &str) -> bool {
        let Some(given) = unhex(user_hash.trim()) else {
            return false;
        };
        let mut mac = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(self.identity_secret(site_id).as_bytes())
            .expect("HMAC takes a key of any length");
        hmac::Mac::update(&mut mac, user_id.as_bytes());
        hmac::Mac::verify_slice(mac, &given).is_ok()
    }

    /// The client's IP, salted and hashed, from the platform's own header
    /// only (Cloudflare sets `CF-Connecting-IP` and overwrites a client's).
    pub fn ip_hash(&self, req: &Request) -> Option<String> {
        req.header("cf-connecting-ip").map(|ip| self.salted(ip.trim()))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Logs the cause and answers with a retryable error that leaks nothing.
pub fn internal(e: impl std::fmt::Display) -> ApiError {
    log(&format!("internal error: {e}"));
    ApiError::new(ErrorCode::Internal, "the edge failed; nothing was stored, retry later")
}

/// A database failure: contention is `busy` (retry), anything else internal.
pub fn db_error(e: DbError) -> ApiError {
    if e.retryable {
        log(&format!("busy: {e}"));
        ApiError::new(ErrorCode::Busy, "the data changed under this request; retry")
    } else {
        internal(e)
    }
}

#[cfg(target_arch = "wasm32")]
pub fn log(s: &str) {
    worker::console_error!("{s}");
}
#[cfg(not(target_arch = "wasm32"))]
pub fn log(s: &str) {
    eprintln!("{s}");
}

/// A query's rows, a database failure as the contract's error.
pub async fn query_rows(db: &impl Db, stmt: crate::db::Stmt) -> Result<Vec<Row>, ApiError> {
    db.query(stmt).await.map_err(db_error)
}

pub fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::MalformedRequest, message)
}
pub fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidParameter, message)
}
pub fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::NotFound, message)
}

/// The site a publishable key names.
#[derive(Debug, Clone)]
pub struct Site {
    pub id: i64,
    pub tenant_id: i64,
    pub origins: Vec<String>,
    /// The site's own request limit per minute, if it has one.
    pub per_minute: Option<i64>,
}

impl Site {
    /// A site from `SITE_BY_*`'s row (origins space-joined).
    fn from_row(row: &Row) -> Site {
        Site {
            id: row.int("site_id"),
            tenant_id: row.int("tenant_id"),
            per_minute: row.opt_int("per_minute"),
            origins: row
                .text("origins")
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

thread_local! {
    /// Sites by publishable key, kept by the isolate for `Ctx::site_cache_seconds`:
    /// the hottest lookup of all (every batch), and one that rarely changes.
    static SITES: std::cell::RefCell<std::collections::HashMap<String, (Site, Millis)>> = Default::default();
}

/// The site of a publishable key, from the isolate's cache when fresh.
pub async fn cached_site<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    key: Option<&str>,
) -> Result<Site, ApiError> {
    if ctx.site_cache_seconds > 0
        && let Some(k) = key
        && let Some(site) = SITES.with(|c| {
            c.borrow()
                .get(k)
                .filter(|(_, until)| *until > ctx.now)
                .map(|(s, _)| s.clone())
        })
    {
        return Ok(site);
    }
    let site = site_by_publishable_key(ctx.db, key).await?;
    if ctx.site_cache_seconds > 0
        && let Some(k) = key
    {
        let until = ctx.now + ctx.site_cache_seconds * 1000;
        SITES.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() > 10_000 {
                c.clear();
            }
            c.insert(k.to_owned(), (site.clone(), until));
        });
    }
    Ok(site)
}

pub async fn site_by_publishable_key(db: &impl Db, key: Option<&str>) -> Result<Site, ApiError> {
    let key =
        key.ok_or_else(|| ApiError::new(ErrorCode::MissingKey, "send the site's publishable key (`key=pk_…`)"))?;
    match key_kind(key) {
        Some(KeyKind::Publishable) => {}
        Some(KeyKind::Secret) => {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "a secret key never belongs in a browser; use the publishable key",
            ));
        }
        None => return Err(unknown_key()),
    }
    let row = db
        .query(stmt!(sql::SITE_BY_PUBLISHABLE_KEY, key))
        .await
        .map_err(db_error)?
        .into_iter()
        .next()
        .ok_or_else(unknown_key)?;
    Ok(Site::from_row(&row))
}

pub fn unknown_key() -> ApiError {
    ApiError::new(ErrorCode::UnknownKey, "no site has this publishable key")
}

/// The site whose secret key the `Authorization` header carries. A
/// publishable key there is refused as such: it can never read admin data.
pub async fn site_by_secret_key(db: &impl Db, req: &Request) -> Result<Site, ApiError> {
    let header = req.header("authorization");
    if header
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .and_then(key_kind)
        == Some(KeyKind::Publishable)
    {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a publishable key cannot use this route; send the secret key",
        ));
    }
    let key = bearer_secret_key(header)
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "send `Authorization: Bearer sk_…`"))?;
    let row = db
        .query(stmt!(sql::SITE_BY_SECRET_KEY_HASH, hash_secret_key(key)))
        .await
        .map_err(db_error)?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "this secret key is not known"))?;
    // Its origins are not checked on secret-key routes (no browser sends
    // them); the campaigns' landing pages must be on one of them.
    Ok(Site::from_row(&row))
}

pub fn check_origin(site: &Site, req: &Request) -> Result<(), ApiError> {
    if origin_allowed(req.origin(), &site.origins) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::OriginNotAllowed,
            format!(
                "origin {} is not allowed for this key",
                req.origin().unwrap_or_default()
            ),
        ))
    }
}

/// A request's limits: `bucket` for the site, and the client's IP on
/// public routes, counted by the `Limiter` (no D1 write). A site with its own
/// limit (`rate_limit_per_minute`) is also counted in D1 against it, the one
/// case that costs a statement.
pub async fn rate_limit<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    site: &Site,
    bucket: Bucket,
) -> Result<(), ApiError> {
    if !ctx.limiter.allow(bucket, &site.id.to_string()).await {
        return Err(rate_limited(ctx));
    }
    if bucket != Bucket::Server
        && let Some(ip) = ctx.ip_hash(req)
        && !ctx.limiter.allow(Bucket::Ip, &ip).await
    {
        return Err(rate_limited(ctx));
    }
    if let Some(limit) = site.per_minute {
        let rows = ctx
            .db
            .query(stmt!(
                sql::COUNT_REQUESTS,
                site_window_bucket(site, bucket),
                ctx.now / 60_000
            ))
            .await
            .map_err(db_error)?;
        if rows.iter().any(|r| r.int("n") > limit) {
            return Err(rate_limited(ctx));
        }
    }
    Ok(())
}

/// Only the IP's limit (a route of no site: referral links).
pub async fn ip_limit<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
) -> Result<(), ApiError> {
    match ctx.ip_hash(req) {
        Some(ip) if !ctx.limiter.allow(Bucket::Ip, &ip).await => Err(rate_limited(ctx)),
        _ => Ok(()),
    }
}

/// The D1 bucket of a site's own limit (JSON array of one, for `COUNT_REQUESTS`).
pub fn site_window_bucket(site: &Site, bucket: Bucket) -> String {
    format!("[\"{}:{}\"]", bucket.name(), site.id)
}

/// 429 with the wait until the next minute (`Retry-After`).
pub fn rate_limited<D: Db, K: Kv, C: Campaigns, L: Limiter>(ctx: &Ctx<'_, D, K, C, L>) -> ApiError {
    let wait = 60 - (ctx.now / 1000) % 60;
    ApiError::new(
        ErrorCode::RateLimited,
        format!("too many requests; retry after {wait}s"),
    )
}

fn too_large(req: &Request) -> bool {
    let max = refloop_core::limits::MAX_BATCH_BYTES;
    let declared = req.header("content-length").and_then(|l| l.parse::<usize>().ok());
    declared.is_some_and(|l| l > max) || req.body.len() > max
}

/// Browser-facing routes answer with CORS headers for the calling page.
fn is_browser_route(r: Route) -> bool {
    matches!(
        r,
        Route::Batch | Route::Leaderboard | Route::PublicParticipant | Route::Me | Route::Invitations
    )
}

pub async fn handle<D: Db, K: Kv, C: Campaigns, L: Limiter>(ctx: &Ctx<'_, D, K, C, L>, req: &Request) -> Response {
    // The baseline of the load benchmark: the same worker, request and
    // context, no work. Only in the build with the `bench` feature.
    #[cfg(feature = "bench")]
    if req.path == "/__bench/noop" {
        return Response::json(202, r#"{"accepted":0,"duplicates":0,"rejected":[]}"#);
    }
    let matched = route(&req.method, &req.path);
    let browser = matches!(&matched, Matched::Route(r, _) if is_browser_route(*r));
    // No route takes more than 64 KiB; the worker stops reading past it.
    let result = match too_large(req) {
        true => Err(refloop_core::ingest::too_large()),
        false => dispatch(ctx, req, matched).await,
    };
    let mut response = match result {
        Ok(r) => r,
        Err(e) => Response::error(&e),
    };
    // The calling page may read every answer of a browser route, errors too,
    // so the SDK can tell a refusal (drop) from a failure (retry).
    if let (Some(o), true) = (req.origin(), browser) {
        for (name, value) in allow_origin_headers(o) {
            response = response.with_header(name, value);
        }
    }
    if req.method == "HEAD" {
        response.body.clear();
    }
    response
}

async fn dispatch<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    matched: Matched,
) -> Reply {
    let (r, params) = match matched {
        Matched::Route(r, p) => (r, p),
        Matched::Preflight => return preflight(ctx, req).await,
        Matched::MethodNotAllowed(allowed) => {
            let e = ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("this route takes {}", allowed.join(", ")),
            );
            return Ok(Response::error(&e).with_header("Allow", allowed.join(", ")));
        }
        Matched::NotFound => return Err(not_found("no such route")),
    };
    let p = Params(params);
    match r {
        Route::Health => Ok(Response::json(200, r#"{"ok":true}"#)),
        Route::Batch => crate::ingest::batch(ctx, req).await,
        Route::ServerEvents => crate::ingest::server_events(ctx, req).await,
        Route::Click => crate::public::click(ctx, req, p.get("code")).await,
        Route::Leaderboard => crate::public::leaderboard(ctx, req, p.get("campaign")).await,
        Route::PublicParticipant => crate::public::participant(ctx, req, p.get("campaign"), p.get("code")).await,
        Route::Me => crate::public::me(ctx, req, p.get("campaign")).await,
        Route::Invitations => crate::public::invitation(ctx, req).await,
        Route::Qr => crate::public::qr(req),
        Route::Tenants => crate::admin::create_tenant(ctx, req).await,
        Route::ListTenants => crate::admin::list_tenants(ctx, req).await,
        Route::CheckAll => crate::admin::check_all(ctx, req).await,
        other => crate::admin::dispatch(ctx, req, other, &p).await,
    }
}

/// Path parameters by name.
pub struct Params(pub Vec<(&'static str, String)>);

impl Params {
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| *k == name).map_or("", |(_, v)| v.as_str())
    }
}

/// A preflight names no key, so it is answered for any origin some site allows;
/// the request itself is then checked against its own site's list.
async fn preflight<D: Db, K: Kv, C: Campaigns, L: Limiter>(ctx: &Ctx<'_, D, K, C, L>, req: &Request) -> Reply {
    let origin = req.origin().ok_or_else(|| bad("a preflight needs an Origin"))?;
    let allowed = ctx
        .db
        .query(stmt!(sql::ANY_SITE_ALLOWS_ORIGIN, origin))
        .await
        .map_err(db_error)?;
    if allowed.is_empty() {
        return Err(ApiError::new(ErrorCode::OriginNotAllowed, "no site allows this origin"));
    }
    let mut r = Response {
        status: 204,
        headers: Vec::new(),
        body: String::new(),
    };
    for (name, value) in PREFLIGHT_HEADERS {
        r = r.with_header(name, value);
    }
    for (name, value) in allow_origin_headers(origin) {
        r = r.with_header(name, value);
    }
    Ok(r)
}

/// A JSON body as an object, or a 400 that says why.
pub fn json_body(req: &Request) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    if req.body.len() > refloop_core::limits::MAX_BATCH_BYTES {
        return Err(ApiError::new(ErrorCode::PayloadTooLarge, "the body is over 64 KiB"));
    }
    match serde_json::from_slice(&req.body) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("the body must be a JSON object")),
        Err(e) => Err(bad(format!("the body is not valid JSON: {e}"))),
    }
}

pub fn row_value(r: &Row, col: &str) -> serde_json::Value {
    r.get(col).cloned().unwrap_or(serde_json::Value::Null)
}

pub fn iso(ms: Option<i64>) -> serde_json::Value {
    ms.map_or(serde_json::Value::Null, |m| {
        serde_json::Value::String(refloop_core::time::format_rfc3339_ms(m))
    })
}
