//! Cross-crate tests live in `tests/tests/`; this library holds their helpers.

pub mod spec;

use rusqlite::Connection;
use std::path::PathBuf;

/// A fresh in-memory SQLite database with every D1 migration applied, in order,
/// exactly as `wrangler d1 migrations apply` would.
pub fn migrated_db() -> Connection {
    let conn = Connection::open_in_memory().expect("open sqlite");
    conn.execute_batch("PRAGMA foreign_keys = ON;").expect("pragma");
    for path in migration_files() {
        let sql = std::fs::read_to_string(&path).expect("read migration");
        conn.execute_batch(&sql)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    conn
}

pub fn migration_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../edge/migrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("edge/migrations")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

use refloop_edge::app::{self, Campaigns, Ctx, Limits, MemLimiter, Request, Response};
use refloop_edge::campaign::{self, Call};
use refloop_edge::db::{Arg, Db, DbError, Kv, Row, Stmt};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;

/// What the tests' edge has for every request: a fixed salt and entropy, and
/// the request's seed.
fn needs(seed: u64) -> app::Needs {
    app::Needs {
        salt: "test-salt".into(),
        seed,
        // Bytes that differ from call to call (two keys drawn in one test
        // must not clash), yet the same on every run.
        entropy: std::array::from_fn(|i| (seed.rotate_left(8 * (i as u32 % 8)) as u8) ^ (i as u8)),
    }
}

/// Runs a future to its end on this thread (rusqlite is synchronous, so
/// every await is ready at once).
pub fn block_on<F: Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

/// The edge's `Db` on a real SQLite connection, as D1 would run it: a batch is
/// one transaction that rolls back on the first error.
pub struct Sqlite {
    pub conn: RefCell<Connection>,
    /// Statements run, for tests that count database work.
    pub statements: Cell<u64>,
    /// Round trips (a query or a batch each): what D1 bills as a subrequest.
    pub round_trips: Cell<u64>,
}

impl Sqlite {
    pub fn seeded() -> Self {
        let conn = migrated_db();
        conn.execute_batch(include_str!("../../edge/seed/demo.sql"))
            .expect("seed");
        Sqlite {
            conn: RefCell::new(conn),
            statements: Cell::new(0),
            round_trips: Cell::new(0),
        }
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.conn.borrow().query_row(sql, [], |r| r.get(0)).expect(sql)
    }
}

fn sql_args(args: &[Arg]) -> Vec<rusqlite::types::Value> {
    args.iter()
        .map(|a| match a {
            Arg::Int(i) => rusqlite::types::Value::Integer(*i),
            Arg::Text(s) => rusqlite::types::Value::Text(s.clone()),
            Arg::Null => rusqlite::types::Value::Null,
        })
        .collect()
}

fn rows(conn: &Connection, s: &Stmt) -> rusqlite::Result<Vec<Row>> {
    read_rows(&mut conn.prepare(s.sql)?, sql_args(&s.args))
}

/// A statement's rows as column → JSON value maps (what D1 and a Durable
/// Object's cursor give the edge).
fn read_rows(stmt: &mut rusqlite::Statement<'_>, args: Vec<rusqlite::types::Value>) -> rusqlite::Result<Vec<Row>> {
    let names: Vec<String> = stmt.column_names().iter().map(|n| n.to_string()).collect();
    let mut out = Vec::new();
    let mut q = stmt.query(rusqlite::params_from_iter(args))?;
    while let Some(r) = q.next()? {
        let mut row = Row::new();
        for (i, name) in names.iter().enumerate() {
            let v = match r.get_ref(i)? {
                rusqlite::types::ValueRef::Null => serde_json::Value::Null,
                rusqlite::types::ValueRef::Integer(n) => serde_json::Value::from(n),
                rusqlite::types::ValueRef::Real(f) => serde_json::Value::from(f),
                rusqlite::types::ValueRef::Text(t) => {
                    serde_json::Value::String(String::from_utf8_lossy(t).into_owned())
                }
                rusqlite::types::ValueRef::Blob(_) => serde_json::Value::Null,
            };
            row.insert(name.clone(), v);
        }
        out.push(row);
    }
    Ok(out)
}

impl Db for Sqlite {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, DbError> {
        self.statements.set(self.statements.get() + 1);
        self.round_trips.set(self.round_trips.get() + 1);
        rows(&self.conn.borrow(), &stmt).map_err(|e| DbError::from_message(e.to_string()))
    }

    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, DbError> {
        Ok(self.run_batch(&stmts)?.into_iter().map(|(n, _)| n).collect())
    }

    async fn batch_rows(&self, stmts: Vec<Stmt>) -> Result<Vec<Vec<Row>>, DbError> {
        Ok(self.run_batch(&stmts)?.into_iter().map(|(_, r)| r).collect())
    }
}

impl Sqlite {
    fn run_batch(&self, stmts: &[Stmt]) -> Result<Vec<(u64, Vec<Row>)>, DbError> {
        self.statements.set(self.statements.get() + stmts.len() as u64);
        self.round_trips.set(self.round_trips.get() + 1);
        let mut conn = self.conn.borrow_mut();
        let tx = conn.transaction().map_err(|e| DbError::from_message(e.to_string()))?;
        let mut out = Vec::new();
        for s in stmts {
            // Stepped like D1 does, so statements with RETURNING run too.
            let rows = rows(&tx, s).map_err(|e| DbError::from_message(e.to_string()))?;
            out.push((tx.changes(), rows));
        }
        tx.commit().map_err(|e| DbError::from_message(e.to_string()))?;
        Ok(out)
    }
}

#[derive(Default)]
pub struct MemKv(pub RefCell<HashMap<String, String>>);

impl Kv for MemKv {
    async fn get(&self, key: &str) -> Option<String> {
        self.0.borrow().get(key).cloned()
    }
    async fn put(&self, key: &str, value: &str, _ttl: Option<u64>) {
        self.0.borrow_mut().insert(key.to_owned(), value.to_owned());
    }
}

/// The edge's handlers over SQLite, with a clock the test moves.
pub struct Edge {
    pub db: Sqlite,
    pub kv: MemKv,
    /// Each campaign's own database, as its Durable Object keeps it.
    pub objects: Objects,
    pub now: Cell<i64>,
    pub seed: Cell<u64>,
    /// The request limits, counted by the test's clock.
    pub limiter: MemLimiter,
}

pub const PK: &str = "pk_demo_refloop_public";
pub const SK: &str = "sk_demo_refloop_secret";
pub const ROOT: &str = "rk_test_root_key";

impl Edge {
    pub fn new() -> Self {
        Edge {
            db: Sqlite::seeded(),
            kv: MemKv::default(),
            objects: Objects::default(),
            now: Cell::new(1_790_000_000_000),
            seed: Cell::new(1),
            limiter: MemLimiter::new(Limits {
                per_key_per_minute: 1_000_000,
                per_ip_per_minute: 1_000_000,
            }),
        }
    }

    pub fn call(&self, method: &str, path_and_query: &str, headers: &[(&str, &str)], body: &str) -> Response {
        let url = url::Url::parse(&format!("http://edge.test{path_and_query}")).expect("a path and query");
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let req = Request::from_url(method, &url, headers, body.as_bytes().to_vec());
        self.seed.set(
            self.seed
                .get()
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        );
        let root = refloop_core::keys::hash_secret_key(ROOT);
        let campaigns = self.objects.reached_through(&self.db);
        self.limiter.now.set(self.now.get());
        let needs = needs(self.seed.get());
        let ctx = Ctx {
            root_key_hash: Some(&root),
            ..Ctx::new(&self.db, &self.kv, &campaigns, &self.limiter, self.now.get(), &needs)
        };
        let response = block_on(app::handle(&ctx, &req));
        let content_type = response
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str());
        if let Err(e) = spec::check(method, url.path(), response.status, content_type, &response.body) {
            panic!("{e}");
        }
        response
    }

    pub fn json(&self, method: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let auth = format!("Bearer {SK}");
        let r = self.call(method, path, &[("authorization", &auth)], &body.to_string());
        (
            r.status,
            serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null),
        )
    }

    pub fn batch(&self, events: serde_json::Value) -> (u16, serde_json::Value) {
        let body = serde_json::json!({"key": PK, "events": events}).to_string();
        let r = self.call("POST", "/v1/batch", &[], &body);
        (
            r.status,
            serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null),
        )
    }

    pub fn server(&self, events: serde_json::Value) -> (u16, serde_json::Value) {
        self.json("POST", "/v1/server/events", serde_json::json!({"events": events}))
    }

    /// The id the admin API gives the participant `anonymous_id` of `campaign`.
    pub fn participant_id(&self, campaign: &str, anonymous_id: &str) -> i64 {
        let (_, people) = self.json(
            "GET",
            &format!("/v1/admin/campaigns/{campaign}/participants"),
            serde_json::json!({}),
        );
        people["participants"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["anonymous_id"] == anonymous_id))
            .and_then(|p| p["id"].as_i64())
            .unwrap_or_else(|| panic!("{anonymous_id} is not a participant of {campaign}: {people}"))
    }

    pub fn me(&self, campaign: &str, anonymous_id: &str) -> Option<serde_json::Value> {
        let r = self.call(
            "GET",
            &format!("/v1/campaigns/{campaign}/me?key={PK}&anonymous_id={anonymous_id}"),
            &[],
            "",
        );
        (r.status == 200).then(|| serde_json::from_str(&r.body).unwrap())
    }

    /// Every campaign's invariants, as the root key's check restates them
    /// from each campaign's tables; the violations found.
    pub fn violations(&self) -> Vec<String> {
        let auth = format!("Bearer {ROOT}");
        let r = self.call("GET", "/v1/admin/check", &[("authorization", &auth)], "");
        assert_eq!(r.status, 200, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        v["violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Runs the cron at `now` with `out` as the webhook receivers.
    pub fn cron(&self, out: &impl refloop_edge::webhooks::Outbound, now: i64) -> refloop_edge::cron::CronReport {
        let campaigns = self.objects.reached_through(&self.db);
        let needs = needs(3);
        let ctx = Ctx::new(&self.db, &self.kv, &campaigns, &self.limiter, now, &needs);
        block_on(refloop_edge::cron::run(&ctx, out)).expect("cron")
    }

    /// Rings the alarm of the campaign `slug`'s object at `now`, as the
    /// Durable Object's alarm does, with `out` as the webhook receivers.
    pub fn alarm(
        &self,
        slug: &str,
        out: &impl refloop_edge::webhooks::Outbound,
        now: i64,
    ) -> refloop_edge::alarm::AlarmReport {
        let row = self
            .db
            .conn
            .borrow()
            .query_row(
                "SELECT id, tenant_id, current_version FROM campaigns WHERE slug = ?1 AND tenant_id = 1",
                [slug],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
            )
            .expect("a campaign of the demo tenant");
        let meta = campaign::CampaignMeta {
            id: row.0,
            tenant_id: row.1,
            slug: slug.to_owned(),
        };
        let version = row.2 as u32;
        let config = block_on(refloop_edge::directory::all_versions(&self.db, meta.id))
            .expect("versions")
            .into_iter()
            .find(|v| v.version == version)
            .map(|v| v.config);
        self.seed.set(self.seed.get().wrapping_add(1));
        let token = format!("alarm-{}", self.seed.get());
        let woken = refloop_edge::alarm::Woken {
            meta: &meta,
            version,
            config: config.as_ref(),
            now,
            seed: 42,
            token: &token,
        };
        let objects = self.objects.reached_through(&self.db);
        block_on(refloop_edge::alarm::ring(&self.db, &objects, out, &woken))
    }
}

/// The campaigns' objects, natively: one rusqlite database per campaign,
/// each call through the same JSON wire and in one transaction, as the
/// worker's Durable Objects do.
#[derive(Default)]
pub struct Objects {
    pub dbs: RefCell<HashMap<i64, CampaignDb>>,
    /// Each object's versions, loaded from the directory when a call names
    /// one it has not seen (as the Durable Object does).
    versions: RefCell<HashMap<i64, Vec<refloop_core::engine::config::Versioned>>>,
    /// Each object's rows kept between calls, as the Durable Object keeps them.
    rows: RefCell<HashMap<i64, refloop_core::engine::sql_store::Rows>>,
    /// Calls made, for tests that count subrequests.
    pub calls: Cell<u64>,
}

impl Objects {
    fn reached_through<'a>(&'a self, d1: &'a Sqlite) -> Reach<'a> {
        Reach { objects: self, d1 }
    }

    /// Runs `f` on a campaign's database (for tests that look inside).
    pub fn with<T>(&self, campaign: i64, f: impl FnOnce(&CampaignDb) -> T) -> T {
        let mut dbs = self.dbs.borrow_mut();
        f(dbs.entry(campaign).or_default())
    }
}

/// `Objects` with the directory their versions come from.
pub struct Reach<'a> {
    objects: &'a Objects,
    d1: &'a Sqlite,
}

impl Campaigns for Reach<'_> {
    async fn call(&self, call: &Call) -> Result<serde_json::Value, refloop_core::ApiError> {
        self.objects.calls.set(self.objects.calls.get() + 1);
        let wire = serde_json::to_string(call).expect("a call serialises");
        let call: Call = serde_json::from_str(&wire).expect("a call reads back");
        let known = self
            .objects
            .versions
            .borrow()
            .get(&call.campaign.id)
            .is_some_and(|v| v.iter().any(|v| v.version == call.version));
        if !known {
            let loaded = refloop_edge::directory::all_versions(self.d1, call.campaign.id)
                .await
                .map_err(refloop_edge::app::db_error)?;
            self.objects.versions.borrow_mut().insert(call.campaign.id, loaded);
        }
        let versions = self.objects.versions.borrow()[&call.campaign.id].clone();
        let mut kept = self
            .objects
            .rows
            .borrow_mut()
            .remove(&call.campaign.id)
            .unwrap_or_default();
        let (status, body) = self.objects.with(call.campaign.id, |db| {
            let writes = call.op.writes();
            if writes {
                db.conn.execute_batch("BEGIN").expect("begin");
            }
            let (status, body) = campaign::answer(db, &versions, &call, &mut kept);
            let commit = status == 200 && !call.op.rolls_back();
            if writes {
                db.conn
                    .execute_batch(if commit { "COMMIT" } else { "ROLLBACK" })
                    .expect("end of transaction");
            }
            (status, body)
        });
        // As the object does: the rows are kept only after a call committed.
        if status == 200 && !call.op.rolls_back() {
            self.objects.rows.borrow_mut().insert(call.campaign.id, kept);
        }
        campaign::read_answer(status, &body)
    }
}

impl Default for Edge {
    fn default() -> Self {
        Self::new()
    }
}

/// A campaign's database on rusqlite, as `refloop_core`'s `Sql`: what a
/// campaign's Durable Object runs on in the worker, natively.
pub struct CampaignDb {
    pub conn: Connection,
    /// Statements run, for tests that count database work.
    pub statements: Cell<u64>,
}

impl CampaignDb {
    /// A fresh in-memory campaign database with the schema applied.
    pub fn new() -> Self {
        let db = CampaignDb {
            conn: Connection::open_in_memory().expect("open sqlite"),
            statements: Cell::new(0),
        };
        db.conn.execute_batch("PRAGMA foreign_keys = ON;").expect("pragma");
        refloop_core::engine::sql_store::SqlStore::migrate(&db).expect("campaign schema");
        db
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.conn.query_row(sql, [], |r| r.get(0)).expect(sql)
    }
}

impl Default for CampaignDb {
    fn default() -> Self {
        Self::new()
    }
}

fn json_args(args: &[serde_json::Value]) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value as V;
    args.iter()
        .map(|a| match a {
            serde_json::Value::Null => V::Null,
            serde_json::Value::Bool(b) => V::Integer(i64::from(*b)),
            serde_json::Value::Number(n) => n
                .as_i64()
                .map_or_else(|| V::Real(n.as_f64().unwrap_or(0.0)), V::Integer),
            serde_json::Value::String(s) => V::Text(s.clone()),
            other => V::Text(other.to_string()),
        })
        .collect()
}

impl refloop_core::engine::sql_store::Sql for CampaignDb {
    fn exec(&self, sql: &str, args: &[serde_json::Value]) -> Result<Vec<Row>, String> {
        self.statements.set(self.statements.get() + 1);
        if std::env::var_os("REFLOOP_SQL_TRACE").is_some() {
            eprintln!(
                "SQL {}",
                sql.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .take(90)
                    .collect::<String>()
            );
        }
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| e.to_string())?;
        read_rows(&mut stmt, json_args(args)).map_err(|e| e.to_string())
    }
}
