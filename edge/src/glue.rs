//! The Worker glue, and nothing else: a `worker::Request` becomes an
//! `app::Request`, D1 and KV become `Db` and `Kv`, the campaigns' Durable
//! Objects become `Campaigns`, the clock and `crypto.getRandomValues` fill the
//! `Ctx`, and the `app::Response` goes back. `CampaignObject` is the Durable
//! Object class: its SQLite storage is the campaign's `Sql`, and each call
//! runs in one `transactionSync`. A panic would kill the isolate, so nothing
//! here unwraps outside input.

use crate::alarm;
use crate::app::{self, Bucket, Campaigns, Ctx, Limiter, Needs};
use crate::campaign::{self, Call};
use crate::cron;
use crate::db::{Arg, Db, DbError, Kv, Row, Stmt};
use crate::webhooks::{self, Outbound};
use refloop_core::engine::config::Versioned;
use refloop_core::engine::sql_store::{Rows, Sql, SqlStore};
use refloop_core::keys::hash_secret_key;
use refloop_core::{ApiError, ErrorCode};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use wasm_bindgen::closure::Closure;
use worker::js_sys::{self, Reflect, Uint8Array};
use worker::{
    D1Database, DurableObject, Env, Fetch, Headers, Method, ObjectNamespace, Request, RequestInit, Response,
    ScheduleContext, ScheduledEvent, SqlStorage, SqlStorageValue, State, durable_object, event, kv::KvStore,
};

struct D1(D1Database);

fn js_args(args: &[Arg]) -> Vec<JsValue> {
    args.iter()
        .map(|a| match a {
            Arg::Int(i) => JsValue::from_f64(*i as f64),
            Arg::Text(s) => JsValue::from_str(s),
            Arg::Null => JsValue::NULL,
        })
        .collect()
}

impl D1 {
    fn prepare(&self, s: &Stmt) -> Result<worker::D1PreparedStatement, DbError> {
        self.0
            .prepare(s.sql)
            .bind(&js_args(&s.args))
            .map_err(|e| DbError::from_message(e.to_string()))
    }

    /// One D1 batch: one transaction.
    async fn run(&self, stmts: &[Stmt]) -> Result<Vec<worker::D1Result>, DbError> {
        if stmts.is_empty() {
            return Ok(Vec::new());
        }
        let prepared = stmts.iter().map(|s| self.prepare(s)).collect::<Result<Vec<_>, _>>()?;
        self.0
            .batch(prepared)
            .await
            .map_err(|e| DbError::from_message(e.to_string()))
    }
}

impl Db for D1 {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, DbError> {
        let result = self
            .prepare(&stmt)?
            .all()
            .await
            .map_err(|e| DbError::from_message(e.to_string()))?;
        let rows: Vec<serde_json::Value> = result.results().map_err(|e| DbError::from_message(e.to_string()))?;
        Ok(rows
            .into_iter()
            .filter_map(|v| match v {
                serde_json::Value::Object(m) => Some(m),
                _ => None,
            })
            .collect())
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, DbError> {
        Ok(self
            .run(&stmts)
            .await?
            .iter()
            .map(|r| r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0) as u64)
            .collect())
    }

    async fn batch_rows(&self, stmts: Vec<Stmt>) -> Result<Vec<Vec<Row>>, DbError> {
        Ok(self
            .run(&stmts)
            .await?
            .iter()
            .map(|r| {
                r.results::<serde_json::Value>()
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|v| match v {
                        serde_json::Value::Object(m) => Some(m),
                        _ => None,
                    })
                    .collect()
            })
            .collect())
    }

    async fn pause(&self, ms: u64) {
        worker::Delay::from(std::time::Duration::from_millis(ms)).await;
    }
}

struct WorkersKv(Option<KvStore>);

impl Kv for WorkersKv {
    async fn get(&self, key: &str) -> Option<String> {
        self.0.as_ref()?.get(key).text().await.ok().flatten()
    }

    async fn put(&self, key: &str, value: &str, ttl_seconds: Option<u64>) {
        let Some(kv) = &self.0 else { return };
        if let Ok(mut put) = kv.put(key, value) {
            if let Some(ttl) = ttl_seconds {
                put = put.expiration_ttl(ttl.max(60));
            }
            // A cache that cannot be written is only a slower next read.
            let _ = put.execute().await;
        }
    }
}

/// `N` bytes from `crypto.getRandomValues`, or why there are none: the
/// worker then refuses to serve rather than mint keys and secrets from zeros.
fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    let array = Uint8Array::new_with_length(N as u32);
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).map_err(|e| format!("{e:?}"))?;
    let get = Reflect::get(&crypto, &"getRandomValues".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .ok_or("this runtime has no crypto.getRandomValues")?;
    get.call1(&crypto, &array)
        .map_err(|e| format!("getRandomValues failed: {e:?}"))?;
    array.copy_to(&mut out);
    Ok(out)
}

fn needs(env: &Env) -> Result<Needs, ApiError> {
    Needs::from(text_var(env, "HASH_SALT"), random_bytes(), random_bytes())
}

use wasm_bindgen::JsCast;

fn text_var(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .ok()
        .map(|s| s.to_string())
        .or_else(|| env.var(name).ok().map(|v| v.to_string()))
        .filter(|s| !s.is_empty())
}

fn int_var(env: &Env, name: &str, default: i64) -> i64 {
    text_var(env, name).and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// The body, read no further than one byte past the largest the API takes
/// (`app::handle` refuses it then): a declared length over it is not read at
/// all, and a stream that goes on is cut.
async fn bounded_body(req: &mut Request) -> Vec<u8> {
    use futures_util::StreamExt;
    let max = refloop_core::limits::MAX_BATCH_BYTES;
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|l| l > max) {
        return Vec::new();
    }
    let Ok(mut stream) = req.stream() else {
        return Vec::new();
    };
    let mut body = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() > max {
            break;
        }
    }
    body
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: worker::Context) -> worker::Result<Response> {
    let url = req.url()?;
    let headers: Vec<(String, String)> = req.headers().entries().collect();
    // The method as sent: workers-rs reads a method it does not know (QUERY)
    // as GET, which would answer it as one.
    let method = req.inner().method().to_ascii_uppercase();
    let body = if matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS") {
        Vec::new()
    } else {
        bounded_body(&mut req).await
    };
    let request = app::Request::from_url(&method, &url, headers, body);
    let response = match (env.d1("DB"), needs(&env)) {
        (Err(e), _) => app::Response::error(&app::internal(e)),
        (_, Err(e)) => app::Response::error(&e),
        (Ok(db), Ok(needs)) => {
            let d1 = D1(db);
            let db = crate::db::Counted::new(&d1);
            let kv = WorkersKv(env.kv("KV").ok());
            let campaigns = Objects(env.durable_object("CAMPAIGNS").ok(), Default::default());
            let root = text_var(&env, "ROOT_KEY").map(|k| hash_secret_key(&k));
            let limiter = RateBindings(&env);
            let now = worker::Date::now().as_millis() as i64;
            let ctx = Ctx {
                root_key_hash: root.as_deref(),
                top_cache_seconds: int_var(&env, "TOP_CACHE_SECONDS", 5),
                site_cache_seconds: int_var(&env, "SITE_CACHE_SECONDS", 30),
                allow_local_webhooks: int_var(&env, "ALLOW_LOCAL_WEBHOOKS", 0) == 1,
                ..Ctx::new(&db, &kv, &campaigns, &limiter, now, &needs)
            };
            let response = app::handle(&ctx, &request).await;
            // The benchmark build says what each request cost.
            #[cfg(feature = "bench")]
            let response = response.with_header(
                "Refloop-Cost",
                format!("d1={}, campaigns={}", db.round_trips.get(), campaigns.calls().get()),
            );
            response
        }
    };
    let out = Headers::new();
    for (k, v) in &response.headers {
        out.set(k, v)?;
    }
    let r = if response.body.is_empty() {
        Response::empty()?
    } else {
        Response::ok(response.body)?
    };
    Ok(r.with_status(response.status).with_headers(out))
}

/// The Workers Rate Limiting bindings, one per bucket (`wrangler.toml`
/// `[[ratelimits]]`): counted by Cloudflare across isolates, no D1 write.
/// A missing binding lets requests through and says so in the log.
struct RateBindings<'a>(&'a Env);

impl RateBindings<'_> {
    async fn limit(&self, name: &str, key: &str) -> Result<bool, JsValue> {
        let binding = Reflect::get(self.0, &JsValue::from_str(name))?;
        if binding.is_undefined() {
            return Err(JsValue::from_str("no such binding"));
        }
        let limit: js_sys::Function = Reflect::get(&binding, &JsValue::from_str("limit"))?.dyn_into()?;
        let options = js_sys::Object::new();
        Reflect::set(&options, &JsValue::from_str("key"), &JsValue::from_str(key))?;
        let promise: js_sys::Promise = limit.call1(&binding, &options)?.dyn_into()?;
        let outcome = js_sys::futures::JsFuture::from(promise).await?;
        Ok(Reflect::get(&outcome, &JsValue::from_str("success"))?
            .as_bool()
            .unwrap_or(true))
    }
}

impl Limiter for RateBindings<'_> {
    async fn allow(&self, bucket: Bucket, key: &str) -> bool {
        let name = match bucket {
            Bucket::Browser => "RATE_BROWSER",
            Bucket::Server => "RATE_SERVER",
            Bucket::PublicRead => "RATE_READ",
            Bucket::Ip => "RATE_IP",
        };
        match self.limit(name, key).await {
            Ok(allowed) => allowed,
            Err(e) => {
                app::log(&format!("rate limit {name}: {e:?}; let through"));
                true
            }
        }
    }
}

/// Webhook posts, each given up after `webhooks::ATTEMPT_TIMEOUT_MS` (the
/// fetch aborted), so a silent endpoint holds its run for seconds, not minutes.
struct WorkerFetch;

impl Outbound for WorkerFetch {
    async fn post(&self, url: &str, headers: &[(String, String)], body: &str) -> Result<u16, String> {
        let h = Headers::new();
        for (k, v) in headers {
            h.set(k, v).map_err(|e| e.to_string())?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(h)
            .with_body(Some(JsValue::from_str(body)));
        let req = Request::new_with_init(url, &init).map_err(|e| e.to_string())?;
        let abort = worker::AbortController::default();
        let (fetch, signal) = (Fetch::Request(req), abort.signal());
        let send = fetch.send_with_signal(&signal);
        let timeout = worker::Delay::from(std::time::Duration::from_millis(webhooks::ATTEMPT_TIMEOUT_MS as u64));
        futures_util::pin_mut!(send, timeout);
        match futures_util::future::select(send, timeout).await {
            futures_util::future::Either::Left((resp, _)) => Ok(resp.map_err(|e| e.to_string())?.status_code()),
            futures_util::future::Either::Right(_) => {
                abort.abort();
                Err(format!("no answer within {} ms", webhooks::ATTEMPT_TIMEOUT_MS))
            }
        }
    }
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let Ok(db) = env.d1("DB") else {
        app::log("cron: no D1 binding");
        return;
    };
    let Ok(needs) = needs(&env) else {
        return;
    };
    let db = D1(db);
    let kv = WorkersKv(env.kv("KV").ok());
    let campaigns = Objects(env.durable_object("CAMPAIGNS").ok(), Default::default());
    let limiter = RateBindings(&env);
    let now = worker::Date::now().as_millis() as i64;
    let ctx = Ctx::new(&db, &kv, &campaigns, &limiter, now, &needs);
    match cron::run(&ctx, &WorkerFetch).await {
        Ok(report) => worker::console_log!("cron: {report:?}"),
        Err(e) => app::log(&format!("cron failed: {e}")),
    }
}

// ---- the campaigns' Durable Objects ------------------------------------------------

/// The worker's side: one `fetch` to the campaign's object per call.
struct Objects(Option<ObjectNamespace>, std::cell::Cell<u32>);

/// Attempts at reaching a campaign's object for a call that is safe to repeat
/// (events are deduped by id in the object; reads change nothing).
const CALL_ATTEMPTS: u32 = 3;

impl Objects {
    #[allow(dead_code)]
    fn calls(&self) -> &std::cell::Cell<u32> {
        &self.1
    }

    async fn call_once(&self, call: &Call, body: &str) -> Result<(u16, String), String> {
        let ns = self.0.as_ref().ok_or("no CAMPAIGNS binding")?;
        let stub = ns
            .id_from_name(&format!("campaign:{}", call.campaign.id))
            .and_then(|id| id.get_stub())
            .map_err(|e| e.to_string())?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(JsValue::from_str(body)));
        let req = Request::new_with_init("https://campaign/call", &init).map_err(|e| e.to_string())?;
        let mut resp = stub.fetch_with_request(req).await.map_err(|e| e.to_string())?;
        let text = resp.text().await.map_err(|e| e.to_string())?;
        Ok((resp.status_code(), text))
    }
}

impl Campaigns for Objects {
    async fn call(&self, call: &Call) -> Result<serde_json::Value, ApiError> {
        self.1.set(self.1.get() + 1);
        let body = serde_json::to_string(call).map_err(app::internal)?;
        let repeatable = matches!(call.op, campaign::Op::Events { .. }) || !call.op.writes();
        let attempts = if repeatable { CALL_ATTEMPTS } else { 1 };
        for attempt in 0..attempts {
            match self.call_once(call, &body).await {
                Ok((status, text)) => return campaign::read_answer(status, &text),
                Err(e) => {
                    app::log(&format!("campaign {} (attempt {}): {e}", call.campaign.id, attempt + 1));
                    worker::Delay::from(std::time::Duration::from_millis(20 << attempt)).await;
                }
            }
        }
        Err(ApiError::new(
            ErrorCode::Busy,
            "the campaign could not be reached; retry",
        ))
    }
}

/// A campaign's SQLite storage as the engine's `Sql`.
struct ObjectSql(SqlStorage);

fn sql_value(v: &serde_json::Value) -> SqlStorageValue {
    match v {
        serde_json::Value::Null => SqlStorageValue::Null,
        serde_json::Value::Bool(b) => SqlStorageValue::Integer(i64::from(*b)),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => SqlStorageValue::Integer(i),
            None => SqlStorageValue::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => SqlStorageValue::String(s.clone()),
        other => SqlStorageValue::String(other.to_string()),
    }
}

fn json_value(v: SqlStorageValue) -> serde_json::Value {
    match v {
        SqlStorageValue::Null | SqlStorageValue::Blob(_) => serde_json::Value::Null,
        SqlStorageValue::Boolean(b) => serde_json::Value::from(i64::from(b)),
        SqlStorageValue::Integer(i) => serde_json::Value::from(i),
        SqlStorageValue::Float(f) => serde_json::Value::from(f),
        SqlStorageValue::String(s) => serde_json::Value::String(s),
    }
}

impl Sql for ObjectSql {
    fn exec(
        &self,
        sql: &str,
        args: &[serde_json::Value],
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, String> {
        let cursor = self
            .0
            .exec(sql, args.iter().map(sql_value).collect::<Vec<_>>())
            .map_err(|e| e.to_string())?;
        let names = cursor.column_names();
        let mut rows = Vec::new();
        for row in cursor.raw() {
            let row = row.map_err(|e| e.to_string())?;
            rows.push(names.iter().cloned().zip(row.into_iter().map(json_value)).collect());
        }
        Ok(rows)
    }
}

/// The single writer of one campaign: its state in its SQLite storage, the
/// engine run over it, one transaction per call.
#[durable_object]
pub struct CampaignObject {
    state: State,
    env: Env,
    /// Every configuration version of the campaign (immutable once written),
    /// loaded from D1 when a call names one not seen yet.
    versions: RefCell<Vec<Versioned>>,
    /// The rows earlier calls read and wrote, kept in memory (the object is
    /// the campaign's only writer); dropped when a call rolls back.
    rows: Rc<RefCell<Rows>>,
    /// Which campaign this object is and its current version, as the last
    /// call said (kept in storage too, for the alarm), and when the alarm
    /// was last armed for that version.
    me: RefCell<Option<(campaign::CampaignMeta, u32)>>,
    /// When the alarm is set for, as this instance armed it (`i64::MAX`: unknown).
    alarm_at: std::cell::Cell<i64>,
}

/// The alarm's own record of the campaign it belongs to.
const META_KEY: &str = "campaign";

impl CampaignObject {
    async fn versions_for(&self, call: &Call) -> Result<Vec<Versioned>, ApiError> {
        if !self.versions.borrow().iter().any(|v| v.version == call.version) {
            let db = D1(self.env.d1("DB").map_err(app::internal)?);
            let loaded = crate::directory::all_versions(&db, call.campaign.id)
                .await
                .map_err(app::db_error)?;
            *self.versions.borrow_mut() = loaded;
        }
        Ok(self.versions.borrow().clone())
    }

    /// Runs `call` in one `transactionSync`: an error rolls every write back.
    fn in_transaction(&self, versions: Vec<Versioned>, call: Call) -> (u16, String) {
        let sql = ObjectSql(self.state.storage().sql());
        if !call.op.writes() {
            return campaign::answer(&sql, &versions, &call, &mut self.rows.borrow_mut());
        }
        let out: Rc<RefCell<Option<(u16, String)>>> = Rc::new(RefCell::new(None));
        let slot = out.clone();
        let rows = self.rows.clone();
        let body = Closure::<dyn FnMut() -> Result<JsValue, JsValue>>::new(move || {
            let (status, text) = campaign::answer(&sql, &versions, &call, &mut rows.borrow_mut());
            // A preview answers, then throws its writes away like a failure.
            let failed = status != 200 || call.op.rolls_back();
            *slot.borrow_mut() = Some((status, text));
            if failed {
                // Thrown out of transactionSync: the writes roll back.
                Err(JsValue::from_str("rolled back"))
            } else {
                Ok(JsValue::UNDEFINED)
            }
        });
        let handle = self.state.storage();
        let storage: &JsValue = handle.as_raw().as_ref();
        let run = Reflect::get(storage, &"transactionSync".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        let thrown = match run {
            Some(f) => f.call1(storage, body.as_ref().unchecked_ref()).err(),
            None => Some(JsValue::from_str("this runtime has no transactionSync")),
        };
        let answer = out.borrow_mut().take();
        if thrown.is_some() {
            // Rolled back: what the rows learnt may not be in storage.
            *self.rows.borrow_mut() = Rows::default();
        }
        match (answer, thrown) {
            (Some(a), _) => a,
            (None, e) => {
                let e = app::internal(format!("transaction failed: {e:?}"));
                (e.status(), e.to_json())
            }
        }
    }
}

impl DurableObject for CampaignObject {
    fn new(state: State, env: Env) -> Self {
        let sql = ObjectSql(state.storage().sql());
        if let Err(e) = SqlStore::migrate(&sql) {
            app::log(&format!("campaign schema: {e}"));
        }
        CampaignObject {
            state,
            env,
            versions: RefCell::new(Vec::new()),
            rows: Default::default(),
            me: RefCell::new(None),
            alarm_at: std::cell::Cell::new(i64::MAX),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let text = req.text().await?;
        let (status, body) = match serde_json::from_str::<Call>(&text) {
            Err(e) => {
                let e = app::internal(format!("a call that does not read: {e}"));
                (e.status(), e.to_json())
            }
            Ok(call) => match self.versions_for(&call).await {
                Ok(versions) => {
                    let who = (call.campaign.clone(), call.version);
                    let answer = self.in_transaction(versions, call);
                    if answer.0 == 200 {
                        self.remember(who).await;
                        if answer.1.contains("\"notices\":[[") {
                            self.drain_soon().await;
                        }
                    }
                    answer
                }
                Err(e) => (e.status(), e.to_json()),
            },
        };
        Ok(Response::ok(body)?.with_status(status))
    }

    /// Wakes at `ends_at`, every `TICK_MS`, and within `alarm::SOON_MS` of a call
    /// with notices; `alarm::ring` says what it does and when to wake next.
    async fn alarm(&self) -> worker::Result<Response> {
        let Some((meta, version)) = self.who().await else {
            return Response::ok("no campaign yet");
        };
        let now = worker::Date::now().as_millis() as i64;
        let db = D1(self.env.d1("DB")?);
        let probe = Call {
            campaign: meta.clone(),
            version,
            now,
            entropy: String::new(),
            op: campaign::Op::Check,
        };
        let versions = match self.versions_for(&probe).await {
            Ok(v) => v,
            Err(e) => {
                app::log(&format!("campaign {} alarm: {}", meta.id, e.message));
                self.arm(now + campaign::TICK_MS).await;
                return Response::ok("retry later");
            }
        };
        let config = versions.iter().find(|v| v.version == version).map(|v| v.config.clone());
        let (Ok(token), Ok(seed)) = (random_bytes::<16>(), random_bytes::<8>()) else {
            app::log(&format!("campaign {} alarm: no randomness; later", meta.id));
            self.arm(now + campaign::TICK_MS).await;
            return Response::ok("retry later");
        };
        let token = hex::encode(token);
        let woken = alarm::Woken {
            meta: &meta,
            version,
            config: config.as_ref(),
            now,
            seed: u64::from_le_bytes(seed) >> 11,
            token: &token,
        };
        let report = alarm::ring(&db, &Itself(self, versions), &WorkerFetch, &woken).await;
        self.alarm_at.set(report.next);
        self.arm(report.next).await;
        Response::ok("done")
    }
}

/// The object calling itself, in its own transactions (the alarm's calls).
struct Itself<'a>(&'a CampaignObject, Vec<Versioned>);

impl Campaigns for Itself<'_> {
    async fn call(&self, call: &Call) -> Result<serde_json::Value, ApiError> {
        let (status, text) = self.0.in_transaction(self.1.clone(), call.clone());
        campaign::read_answer(status, &text)
    }
}

impl CampaignObject {
    /// The campaign and version the last call named (from storage after a restart).
    async fn who(&self) -> Option<(campaign::CampaignMeta, u32)> {
        if let Some(me) = self.me.borrow().clone() {
            return Some(me);
        }
        let me: (campaign::CampaignMeta, u32) = self.state.storage().get(META_KEY).await.ok().flatten()?;
        *self.me.borrow_mut() = Some(me.clone());
        Some(me)
    }

    /// Records who the object is when that changed, and arms the alarm for
    /// the (new) version: at its end, or the next tick.
    async fn remember(&self, who: (campaign::CampaignMeta, u32)) {
        if self.me.borrow().as_ref() == Some(&who) {
            return;
        }
        let _ = self.state.storage().put(META_KEY, &who).await;
        let now = worker::Date::now().as_millis() as i64;
        let config = self
            .versions
            .borrow()
            .iter()
            .find(|v| v.version == who.1)
            .map(|v| v.config.clone());
        *self.me.borrow_mut() = Some(who);
        let next = config.map_or(now + campaign::TICK_MS, |c| campaign::next_wake(&c, false, now));
        self.alarm_at.set(next);
        self.arm(next).await;
    }

    /// The alarm within `alarm::SOON_MS` of a call with notices: they reach
    /// the directory's outbox even when the worker's own write of them was
    /// lost, and their webhooks go out.
    async fn drain_soon(&self) {
        let soon = worker::Date::now().as_millis() as i64 + alarm::SOON_MS;
        if self.alarm_at.get() > soon {
            self.alarm_at.set(soon);
            self.arm(soon).await;
        }
    }

    async fn arm(&self, at: i64) {
        let now = worker::Date::now().as_millis() as i64;
        if let Err(e) = self.state.storage().set_alarm((at - now).max(0)).await {
            app::log(&format!("campaign alarm not set: {e}"));
        }
    }
}
