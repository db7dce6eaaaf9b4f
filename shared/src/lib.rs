//! refloop-core: the decisions of refloop, without I/O.
//!
//! The edge loads state, hands it to functions here with the input it received,
//! and writes what they return; the SDK shares the contract's constants. Nothing
//! in this crate reads a clock, a random source, the network or a database: time
//! and randomness come in as arguments, so every decision is reproducible.

pub mod attribution;
pub mod delivery;
pub mod email;
pub mod error;
pub mod id;
pub mod keys;
pub mod limits;

#[cfg(feature = "json")]
pub mod engine;
#[cfg(feature = "json")]
pub mod event;
#[cfg(feature = "json")]
pub mod ingest;
#[cfg(feature = "json")]
pub mod time;

pub use error::{ApiError, ErrorCode};
