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
