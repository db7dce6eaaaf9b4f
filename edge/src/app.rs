//! The edge as a function from a request to a response, over `Db` and `Kv`.
//! The Worker glue builds a `Request` and a `Ctx` and sends back the
//! `Response`; the native tests do the same with rusqlite.

use crate::cors::{PREFLIGHT_HEADERS, allow_origin_headers, origin_allowed};
use crate::db::{Db, DbError, Kv, Row, query_as, query_one};
use crate::routes::{Matched, RouteDef, route};
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
    /// A request of `url` (its path, and its query decoded as a form is):
    /// how the worker and the native tests both make one.
    pub fn from_url(method: &str, url: &url::Url, headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        Request {
            method: method.to_owned(),
            path: url.path().to_owned(),
            query: url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            headers: headers.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect(),
            body,
        }
    }

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

    /// A JSON view of an answer (`#[derive(Serialize)]`).
    pub fn view(status: u16, view: &impl serde::Serialize) -> Self {
        match serde_json::to_string(view) {
            Ok(body) => Self::json(status, body),
            Err(e) => Self::error(&internal(format!("a view did not serialise: {e}"))),
        }
    }

    pub fn error(e: &ApiError) -> Self {
        let r = Self::json(e.status(), e.to_json());
        let wait = match e.code {
            ErrorCode::Busy | ErrorCode::Internal => e.retry_after.or(Some(1)),
            _ => e.retry_after,
        };
        match wait {
            Some(seconds) => r.with_header("Retry-After", seconds.to_string()),
            None => r,
        }
    }
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

impl<'a, D: Db, K: Kv, C: Campaigns, L: Limiter> Ctx<'a, D, K, C, L> {
    /// A context of no root key, no caches and no local webhooks (what the
    /// cron and the alarms need); a request's sets those from its config.
    pub fn new(db: &'a D, kv: &'a K, campaigns: &'a C, limiter: &'a L, now: Millis, needs: &'a Needs) -> Self {
        Ctx {
            db,
            kv,
            campaigns,
            limiter,
            now,
            seed: needs.seed,
            entropy: needs.entropy,
            salt: &needs.salt,
            root_key_hash: None,
            top_cache_seconds: 0,
            site_cache_seconds: 0,
            allow_local_webhooks: false,
        }
    }

    /// HMAC-SHA256 keyed with the salt, hex: how IPs and emails are kept (a
    /// keyed hash, so a table of them cannot be matched without the secret).
    pub fn salted(&self, value: &str) -> String {
        hmac_hex(self.salt, value)
    }

    /// A site's identity-verification secret: its server signs a user id with
    /// it (`user_hash`, as Intercom's), so a browser's claim to be that user
    /// can be believed. Derived from the salt, never stored; the secret-key
    /// route `GET /v1/admin/identity` tells it to the site.
    pub fn identity_secret(&self, site_id: i64) -> String {
        format!("idsec_{}", hmac_hex(self.salt, &format!("identity:{site_id}")))
    }

    /// What a site's server sends as `user_hash` beside `user_id`.
    pub fn user_hash(&self, site_id: i64, user_id: &str) -> String {
        hmac_hex(&self.identity_secret(site_id), user_id)
    }

    /// Whether `user_hash` is hex HMAC-SHA256(the site's identity secret, user id).
    pub fn user_hash_ok(&self, site_id: i64, user_id: &str, user_hash: &str) -> bool {
        let given = user_hash.trim();
        if given.len() != 64 {
            return false;
        }
        let Ok(given) = hex::decode(given) else {
            return false;
        };
        let mut mac = hmac_of(&self.identity_secret(site_id));
        hmac::Mac::update(&mut mac, user_id.as_bytes());
        hmac::Mac::verify_slice(mac, &given).is_ok()
    }

    /// The client's IP, salted and hashed, from the platform's own header
    /// only (Cloudflare sets `CF-Connecting-IP` and overwrites a client's).
    pub fn ip_hash(&self, req: &Request) -> Option<String> {
        req.header("cf-connecting-ip").map(|ip| self.salted(ip.trim()))
    }
}

fn hmac_of(key: &str) -> hmac::Hmac<Sha256> {
    <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length")
}

/// Hex HMAC-SHA256 of `value` keyed with `key`.
pub fn hmac_hex(key: &str, value: &str) -> String {
    let mut mac = hmac_of(key);
    hmac::Mac::update(&mut mac, value.as_bytes());
    hex::encode(hmac::Mac::finalize(mac).into_bytes())
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
        ApiError::new(ErrorCode::Busy, "the data changed under this request; retry").retry_after(1)
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

/// `SITE_BY_*`'s row (origins space-joined).
#[derive(serde::Deserialize)]
struct SiteRow {
    site_id: i64,
    tenant_id: i64,
    per_minute: Option<i64>,
    origins: Option<String>,
}

impl From<SiteRow> for Site {
    fn from(row: SiteRow) -> Site {
        Site {
            id: row.site_id,
            tenant_id: row.tenant_id,
            per_minute: row.per_minute,
            origins: origin_list(row.origins.as_deref()),
        }
    }
}

/// A site's origins as the directory's queries give them (space-joined).
pub fn origin_list(joined: Option<&str>) -> Vec<String> {
    joined
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

thread_local! {
    /// Sites by publishable key, kept by the isolate for `Ctx::site_cache_seconds`:
    /// the hottest lookup of all (every batch), and one that rarely changes.
    static SITES: std::cell::RefCell<std::collections::HashMap<String, (Site, Millis)>> = Default::default();
}

/// Forgets the sites this isolate keeps, after a site's keys or origins
/// changed (other isolates see the change within `site_cache_seconds`).
pub fn forget_sites() {
    SITES.with(|c| c.borrow_mut().clear());
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
    let site = site_by_publishable_key(ctx.db, key, ctx.now).await?;
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

pub async fn site_by_publishable_key(db: &impl Db, key: Option<&str>, now: Millis) -> Result<Site, ApiError> {
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
    let row: SiteRow = query_one(db, stmt!(sql::SITE_BY_PUBLISHABLE_KEY, key, now))
        .await
        .map_err(db_error)?
        .ok_or_else(unknown_key)?;
    Ok(row.into())
}

pub fn unknown_key() -> ApiError {
    ApiError::new(ErrorCode::UnknownKey, "no site has this publishable key")
}

/// The site whose secret key the `Authorization` header carries. A
/// publishable key there is refused as such: it can never read admin data.
pub async fn site_by_secret_key(db: &impl Db, req: &Request, now: Millis) -> Result<Site, ApiError> {
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
    let row: SiteRow = query_one(db, stmt!(sql::SITE_BY_SECRET_KEY_HASH, hash_secret_key(key), now))
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "this secret key is not known"))?;
    // Its origins are not checked on secret-key routes (no browser sends
    // them); the campaigns' landing pages must be on one of them.
    Ok(row.into())
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
        #[derive(serde::Deserialize)]
        struct Count {
            n: i64,
        }
        let rows: Vec<Count> = query_as(
            ctx.db,
            stmt!(sql::COUNT_REQUESTS, site_window_bucket(site, bucket), ctx.now / 60_000),
        )
        .await
        .map_err(db_error)?;
        if rows.iter().any(|r| r.n > limit) {
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
    .retry_after(wait as u32)
}

fn too_large(req: &Request) -> bool {
    let max = refloop_core::limits::MAX_BATCH_BYTES;
    let declared = req.header("content-length").and_then(|l| l.parse::<usize>().ok());
    declared.is_some_and(|l| l > max) || req.body.len() > max
}

pub async fn handle<D: Db, K: Kv, C: Campaigns, L: Limiter>(ctx: &Ctx<'_, D, K, C, L>, req: &Request) -> Response {
    // The baseline of the load benchmark: the same worker, request and
    // context, no work. Only in the build with the `bench` feature.
    #[cfg(feature = "bench")]
    if req.path == "/__bench/noop" {
        return Response::json(202, r#"{"accepted":0,"duplicates":0,"rejected":[]}"#);
    }
    let matched = route(&req.method, &req.path);
    let browser = matches!(&matched, Matched::Route(def, _) if def.browser);
    // No route takes more than 64 KiB; the worker stops reading past it.
    let result = match too_large(req) {
        true => Err(refloop_core::ingest::too_large()),
        false => serve(ctx, req, matched).await,
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

async fn serve<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    req: &Request,
    matched: Matched,
) -> Reply {
    let (def, params) = match matched {
        Matched::Route(def, params) => (def, params),
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
    if def.bucket == Some(Bucket::Ip) {
        ip_limit(ctx, req).await?;
    }
    crate::routes::dispatch(Cx { ctx, req, def, params }).await
}

/// A request matched to its row of the route table: what every handler gets.
pub struct Cx<'a, D: Db, K: Kv, C: Campaigns, L: Limiter> {
    pub ctx: &'a Ctx<'a, D, K, C, L>,
    pub req: &'a Request,
    pub def: &'static RouteDef,
    params: Vec<(&'static str, String)>,
}

impl<'a, D: Db, K: Kv, C: Campaigns, L: Limiter> Cx<'a, D, K, C, L> {
    /// A path parameter of the route's pattern (`{campaign}`).
    pub fn path(&self, name: &str) -> &str {
        debug_assert!(
            self.def.path.contains(&format!("{{{name}}}")),
            "{} has no {{{name}}}",
            self.def.path
        );
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// A path parameter that is a positive integer id.
    pub fn id(&self, name: &str) -> Result<u64, ApiError> {
        let v = self.path(name);
        v.parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_ID).contains(n))
            .ok_or_else(|| invalid(format!("{name} must be a positive integer id, not {v:?}")))
    }

    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.req.param(name)
    }

    /// `limit=` of a listing: 1 to `max`, `default` when absent.
    pub fn limit(&self, default: u32, max: u32) -> Result<u32, ApiError> {
        crate::routes::parse_limit(self.query("limit"), default, max).map_err(invalid)
    }

    /// The JSON body as `T` (its fields checked by `serde`: an unknown field
    /// is refused, so a misspelt option is never silently ignored). An empty
    /// body (no bytes at all) reads as `{}` for routes whose fields are all
    /// optional.
    pub fn body<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        let bytes: &[u8] = match self.req.body.iter().find(|b| !b.is_ascii_whitespace()) {
            None if self.req.body.is_empty() => b"{}",
            // serde would read a struct from an array too.
            Some(b'{') => &self.req.body,
            _ => return Err(bad("the body must be a JSON object")),
        };
        let mut de = serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let at = match path.as_str() {
                "." => String::new(),
                p => format!("`{p}`: "),
            };
            match inner.classify() {
                serde_json::error::Category::Data if !inner.to_string().starts_with("missing field") => {
                    invalid(format!("{at}{inner}"))
                }
                serde_json::error::Category::Data => bad(format!("{at}{inner}")),
                _ => bad(format!("the body is not valid JSON: {inner}")),
            }
        })
    }

    /// The root key, compared in constant time with its configured hash.
    pub fn check_root(&self) -> Result<(), ApiError> {
        use subtle::ConstantTimeEq;
        let expected = self
            .ctx
            .root_key_hash
            .ok_or_else(|| ApiError::new(ErrorCode::Forbidden, "no root key is configured on this edge"))?;
        let given = self
            .req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "send `Authorization: Bearer <root key>`"))?;
        let hash = hex::encode(sha2::Digest::finalize(<Sha256 as sha2::Digest>::new_with_prefix(given)));
        match bool::from(hash.as_bytes().ct_eq(expected.as_bytes())) {
            true => Ok(()),
            false => Err(ApiError::new(ErrorCode::Unauthorized, "this is not the root key")),
        }
    }

    /// The site of a publishable key, called from one of its origins, within
    /// the route's budget (`Auth::PublishableInBody` routes call it with the
    /// key they read).
    pub async fn browser_site(&self, key: Option<&str>) -> Result<Site, ApiError> {
        let site = cached_site(self.ctx, key).await?;
        check_origin(&site, self.req)?;
        if let Some(bucket) = self.def.bucket {
            rate_limit(self.ctx, self.req, &site, bucket).await?;
        }
        Ok(site)
    }

    /// `Auth::Publishable`: the site of the query's `key`.
    pub async fn browser(self) -> Result<Browser<'a, D, K, C, L>, ApiError> {
        let site = self.browser_site(self.query("key")).await?;
        Ok(WithSite { cx: self, site })
    }

    /// `Auth::Secret`: the site of the bearer secret key, within its budget.
    pub async fn admin(self) -> Result<WithSite<'a, D, K, C, L>, ApiError> {
        let site = site_by_secret_key(self.ctx.db, self.req, self.ctx.now).await?;
        rate_limit(self.ctx, self.req, &site, self.def.bucket.unwrap_or(Bucket::Server)).await?;
        Ok(WithSite { cx: self, site })
    }
}

/// Ids the edge draws and accepts stay within JavaScript's safe integers
/// (D1 hands numbers to JavaScript).
pub const MAX_ID: u64 = (1 << 53) - 1;

/// A request whose key named its site: a page's (`Auth::Publishable`, as
/// `Browser`) or a server's (`Auth::Secret`, as `admin::Admin`).
pub struct WithSite<'a, D: Db, K: Kv, C: Campaigns, L: Limiter> {
    pub cx: Cx<'a, D, K, C, L>,
    pub site: Site,
}

/// A request of a page of `site`.
pub type Browser<'a, D, K, C, L> = WithSite<'a, D, K, C, L>;

impl<'a, D: Db, K: Kv, C: Campaigns, L: Limiter> std::ops::Deref for WithSite<'a, D, K, C, L> {
    type Target = Cx<'a, D, K, C, L>;
    fn deref(&self) -> &Self::Target {
        &self.cx
    }
}

/// `GET /healthz`.
pub async fn health<D: Db, K: Kv, C: Campaigns, L: Limiter>(_: &Cx<'_, D, K, C, L>) -> Reply {
    Ok(Response::json(200, r#"{"ok":true}"#))
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

/// The name `serde` gives a unit variant (`GrantStatus::PendingReview` →
/// `pending_review`): each enum's names are written once, in its derive.
pub fn name_of(v: &impl serde::Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// A time as the contract writes it (RFC 3339, milliseconds, UTC).
pub fn iso(ms: i64) -> String {
    refloop_core::time::format_rfc3339_ms(ms)
}
