//! Cross-crate tests live in `tests/tests/`; this library holds their helpers.

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

use refloop_edge::app::{self, Ctx, Limits, Request, Response};
use refloop_edge::db::{Arg, Db, DbError, Kv, Row, Stmt};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::task::{Context, Poll, Waker};

/// Runs a future whose every await is ready at once (rusqlite is synchronous).
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// The edge's `Db` on a real SQLite connection, as D1 would run it: a batch is
/// one transaction that rolls back on the first error.
pub struct Sqlite {
    pub conn: RefCell<Connection>,
    /// Statements run, for tests that count database work.
    pub statements: Cell<u64>,
}

impl Sqlite {
    pub fn seeded() -> Self {
        let conn = migrated_db();
        conn.execute_batch(include_str!("../../edge/seed/demo.sql"))
            .expect("seed");
        Sqlite {
            conn: RefCell::new(conn),
            statements: Cell::new(0),
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
    let mut stmt = conn.prepare(s.sql)?;
    let names: Vec<String> = stmt.column_names().iter().map(|n| n.to_string()).collect();
    let mut out = Vec::new();
    let mut q = stmt.query(rusqlite::params_from_iter(sql_args(&s.args)))?;
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
    pub now: Cell<i64>,
    pub seed: Cell<u64>,
    pub limits: Limits,
}

pub const PK: &str = "pk_demo_refloop_public";
pub const SK: &str = "sk_demo_refloop_secret";
pub const ROOT: &str = "rk_test_root_key";

impl Edge {
    pub fn new() -> Self {
        Edge {
            db: Sqlite::seeded(),
            kv: MemKv::default(),
            now: Cell::new(1_790_000_000_000),
            seed: Cell::new(1),
            limits: Limits {
                per_key_per_minute: 1_000_000,
                per_ip_per_minute: 1_000_000,
            },
        }
    }

    pub fn call(&self, method: &str, path_and_query: &str, headers: &[(&str, &str)], body: &str) -> Response {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let query = query
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let req = Request {
            method: method.to_owned(),
            path: path.to_owned(),
            query,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        };
        self.seed.set(
            self.seed
                .get()
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        );
        let root = refloop_core::keys::hash_secret_key(ROOT);
        let ctx = Ctx {
            db: &self.db,
            kv: &self.kv,
            now: self.now.get(),
            seed: self.seed.get(),
            entropy: [7; 48],
            salt: "test-salt",
            root_key_hash: Some(&root),
            limits: self.limits,
            top_cache_seconds: 0,
            site_cache_seconds: 0,
        };
        block_on(app::handle(&ctx, &req))
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

    pub fn me(&self, campaign: &str, anonymous_id: &str) -> Option<serde_json::Value> {
        let r = self.call(
            "GET",
            &format!("/v1/campaigns/{campaign}/me?key={PK}&anonymous_id={anonymous_id}"),
            &[],
            "",
        );
        (r.status == 200).then(|| serde_json::from_str(&r.body).unwrap())
    }

    /// The ledger invariants over the whole database; the violations found.
    pub fn violations(&self) -> Vec<String> {
        let conn = self.db.conn.borrow();
        let mut stmt = conn
            .prepare(
                "SELECT 'score ' || p.id FROM participants p
                   WHERE p.score <> (SELECT coalesce(sum(points), 0) FROM ledger l WHERE l.participant_id = p.id)
                 UNION ALL SELECT 'confirmed ' || p.id FROM participants p
                   WHERE p.confirmed <> (SELECT count(*) FROM referrals r WHERE r.referrer_id = p.id
                     AND r.status = 'confirmed' AND r.review IN ('clear', 'approved'))
                 UNION ALL SELECT 'bucket ' || b.score FROM score_buckets b
                   WHERE b.n <> (SELECT count(*) FROM scores s WHERE s.campaign_id = b.campaign_id
                     AND s.period = b.period AND s.score = b.score)
                 UNION ALL SELECT 'tie ' || b.score || ' ' || b.hour FROM tie_buckets b
                   WHERE b.n <> (SELECT count(*) FROM scores s JOIN participants p ON p.id = s.participant_id
                     WHERE s.campaign_id = b.campaign_id AND s.period = b.period AND s.score = b.score
                     AND p.joined_at / 3600000 = b.hour)
                 UNION ALL SELECT 'board ' || s.participant_id FROM scores s JOIN participants p ON p.id = s.participant_id
                   WHERE s.period = 'all' AND s.score <> p.score",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
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
            serde_json::Value::Number(n) => n.as_i64().map_or_else(|| V::Real(n.as_f64().unwrap_or(0.0)), V::Integer),
            serde_json::Value::String(s) => V::Text(s.clone()),
            other => V::Text(other.to_string()),
        })
        .collect()
}

impl refloop_core::engine::sql_store::Sql for CampaignDb {
    fn exec(&self, sql: &str, args: &[serde_json::Value]) -> Result<Vec<Row>, String> {
        self.statements.set(self.statements.get() + 1);
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| e.to_string())?;
        let names: Vec<String> = stmt.column_names().iter().map(|n| n.to_string()).collect();
        let mut q = stmt
            .query(rusqlite::params_from_iter(json_args(args)))
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(r) = q.next().map_err(|e| e.to_string())? {
            let mut row = Row::new();
            for (i, name) in names.iter().enumerate() {
                let v = match r.get_ref(i).map_err(|e| e.to_string())? {
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
}
