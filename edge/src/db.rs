//! The two things the edge asks of a database, so the same handlers run on
//! D1 in the Worker and on rusqlite in the native tests: a query that returns
//! rows as JSON objects, and a batch of statements that is one transaction.

use serde_json::{Map, Value};

/// A bound parameter. Integers travel to D1 as JavaScript numbers, so every
/// integer the edge stores stays within 2^53 (ids are drawn that way).
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Int(i64),
    Text(String),
    Null,
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<u64> for Arg {
    fn from(v: u64) -> Self {
        Arg::Int(v as i64)
    }
}
impl From<u32> for Arg {
    fn from(v: u32) -> Self {
        Arg::Int(i64::from(v))
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Int(i64::from(v))
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl<T: Into<Arg>> From<Option<T>> for Arg {
    fn from(v: Option<T>) -> Self {
        v.map_or(Arg::Null, Into::into)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub sql: &'static str,
    pub args: Vec<Arg>,
}

/// `stmt(SQL, [a, b])` with anything that converts into an `Arg`.
#[macro_export]
macro_rules! stmt {
    ($sql:expr) => { $crate::db::Stmt { sql: $sql, args: Vec::new() } };
    ($sql:expr, $($arg:expr),+ $(,)?) => {
        $crate::db::Stmt { sql: $sql, args: vec![$($crate::db::Arg::from($arg)),+] }
    };
}

pub type Row = Map<String, Value>;

#[derive(Debug, Clone, PartialEq)]
pub struct DbError {
    /// A constraint refused the batch (a guard saw a stale read, or a unique
    /// index a concurrent insert): decide again from fresh rows. Also "busy"
    /// and "overloaded" answers, which a retry outlives.
    pub retryable: bool,
    pub message: String,
}

impl DbError {
    /// Classifies a database's error text.
    pub fn from_message(message: impl Into<String>) -> Self {
        let message = message.into();
        let m = message.to_ascii_lowercase();
        let retryable = [
            "stale_read",
            "unique constraint failed",
            "busy",
            "overloaded",
            "locked",
            "reset because",
            "try again",
        ]
        .iter()
        .any(|s| m.contains(s));
        DbError { retryable, message }
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[allow(async_fn_in_trait)]
pub trait Db {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, DbError>;
    /// Runs every statement in one transaction; the rows each one changed.
    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, DbError>;
    /// As `batch`, returning the rows each statement returned (`RETURNING`).
    async fn batch_rows(&self, stmts: Vec<Stmt>) -> Result<Vec<Vec<Row>>, DbError>;
    /// Waits before a retry, so contending requests spread out.
    async fn pause(&self, _ms: u64) {}
}

/// Attempts at a D1 write that contention refused (busy, overloaded, a unique
/// index a concurrent insert hit) before the client is told `503 busy`.
pub const WRITE_ATTEMPTS: u32 = 4;

/// `batch_rows`, tried again after a retryable error, with full-jitter backoff.
/// Only for writes that are safe to repeat whole (a refused transaction left
/// nothing behind).
pub async fn batch_rows_retrying(db: &impl Db, stmts: Vec<Stmt>, jitter: u64) -> Result<Vec<Vec<Row>>, DbError> {
    let mut attempt = 0;
    loop {
        match db.batch_rows(stmts.clone()).await {
            Err(e) if e.retryable && attempt + 1 < WRITE_ATTEMPTS => {
                db.pause(backoff(attempt, jitter.rotate_left(attempt * 7))).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Full-jitter exponential backoff: a wait in [0, min(cap, base·2^attempt)).
pub fn backoff(attempt: u32, random: u64) -> u64 {
    let ceiling = (5u64 << attempt.min(10)).min(400);
    random % ceiling.max(1)
}

/// A row read into its type: the columns a query names, by `serde` (a
/// misspelt or missing column is an error, never a silent zero). Numbers a
/// driver handed over as whole floats (JavaScript's) read as integers.
pub fn typed<T: serde::de::DeserializeOwned>(mut row: Row) -> Result<T, DbError> {
    for v in row.values_mut() {
        if let Value::Number(n) = v
            && n.as_i64().is_none()
            && let Some(f) = n.as_f64()
            && f.fract() == 0.0
            && f.abs() < 9_007_199_254_740_992.0
        {
            *v = Value::from(f as i64);
        }
    }
    serde_json::from_value(Value::Object(row))
        .map_err(|e| DbError::from_message(format!("a row read as its type: {e}")))
}

/// A query's rows, each read into `T`.
pub async fn query_as<T: serde::de::DeserializeOwned>(db: &impl Db, stmt: Stmt) -> Result<Vec<T>, DbError> {
    db.query(stmt).await?.into_iter().map(typed).collect()
}

/// A query's first row as `T`, if it returned one.
pub async fn query_one<T: serde::de::DeserializeOwned>(db: &impl Db, stmt: Stmt) -> Result<Option<T>, DbError> {
    db.query(stmt).await?.into_iter().next().map(typed).transpose()
}

/// SQLite's 0/1 as a `bool` (`#[serde(deserialize_with = "db::flag")]`).
pub fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(<i64 as serde::Deserialize>::deserialize(d)? != 0)
}

/// A small key-value cache (Workers KV in the Worker, a map in tests). D1
/// stays the source of truth: a miss or a failure only costs a query.
#[allow(async_fn_in_trait)]
pub trait Kv {
    async fn get(&self, key: &str) -> Option<String>;
    async fn put(&self, key: &str, value: &str, ttl_seconds: Option<u64>);
}

/// No cache: every read goes to the database.
pub struct NoKv;

impl Kv for NoKv {
    async fn get(&self, _key: &str) -> Option<String> {
        None
    }
    async fn put(&self, _key: &str, _value: &str, _ttl_seconds: Option<u64>) {}
}

/// A `Db` that counts its round trips (the benchmark build reports them per
/// request; the native tests count the same way).
pub struct Counted<'a, D: Db> {
    pub db: &'a D,
    pub round_trips: std::cell::Cell<u32>,
}

impl<'a, D: Db> Counted<'a, D> {
    pub fn new(db: &'a D) -> Self {
        Counted {
            db,
            round_trips: std::cell::Cell::new(0),
        }
    }

    fn count(&self) {
        self.round_trips.set(self.round_trips.get() + 1);
    }
}

impl<D: Db> Db for Counted<'_, D> {
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, DbError> {
        self.count();
        self.db.query(stmt).await
    }
    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, DbError> {
        self.count();
        self.db.batch(stmts).await
    }
    async fn batch_rows(&self, stmts: Vec<Stmt>) -> Result<Vec<Vec<Row>>, DbError> {
        self.count();
        self.db.batch_rows(stmts).await
    }
    async fn pause(&self, ms: u64) {
        self.db.pause(ms).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraint_and_busy_errors_are_retryable() {
        assert!(DbError::from_message("D1_ERROR: CHECK constraint failed: stale_read").retryable);
        assert!(DbError::from_message("UNIQUE constraint failed: events.site_id, events.event_id").retryable);
        assert!(DbError::from_message("SQLITE_BUSY: database is locked").retryable);
        assert!(DbError::from_message("D1 DB is overloaded. Requests queued for too long.").retryable);
        assert!(!DbError::from_message("no such table: nope").retryable);
    }
}
