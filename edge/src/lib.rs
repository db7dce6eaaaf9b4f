//! refloop's edge: a Cloudflare Worker. It authenticates, loads state from D1,
//! asks `refloop-core` what to do and writes the answer.
//!
//! Everything but the Worker glue is plain Rust over two small traits
//! (`db::Db`, `db::Kv`), so the native tests run the very same handlers on
//! real SQLite with the same migrations.

pub mod admin;
pub mod app;
pub mod cors;
pub mod cron;
pub mod db;
pub mod ingest;
pub mod public;
pub mod routes;
pub mod sql;
pub mod store;

#[cfg(target_arch = "wasm32")]
mod glue;
