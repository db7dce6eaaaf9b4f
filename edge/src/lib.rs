//! refloop's edge: a Cloudflare Worker. It authenticates, loads state from D1,
//! asks `refloop-core` what to do and writes the answer.
//!
//! Everything that is not Worker glue (routing, CORS, SQL) is plain Rust that
//! compiles natively, so the tests crate runs the SQL on real SQLite.

pub mod cors;
pub mod routes;
pub mod sql;

#[cfg(target_arch = "wasm32")]
mod glue;
