//! refloop's edge: a Cloudflare Worker. It authenticates, finds the campaigns a
//! request reaches in the directory (D1), and makes one call to each
//! campaign's Durable Object, the single writer of that campaign's state,
//! where `refloop-core`'s engine runs over the object's SQLite database.
//!
//! Everything but the Worker glue is plain Rust over two small traits
//! (`db::Db`, `db::Kv`), so the native tests run the very same handlers on
//! real SQLite with the same migrations.

pub mod admin;
pub mod alarm;
pub mod app;
pub mod body;
pub mod campaign;
pub mod cors;
pub mod cron;
pub mod db;
pub mod directory;
pub mod ingest;
pub mod public;
pub mod routes;
pub mod sql;
pub mod webhooks;

#[cfg(target_arch = "wasm32")]
mod glue;
