//! The referral and gamification engine, sans-IO.
//!
//! - `config`: campaign configuration, validation, versions.
//! - `referral`, `quest`, `rules`, `rewards`, `fraud`: the decisions.
//! - `ledger`: append-only points, idempotency keys, replay corrections.
//! - `leaderboard`: order-statistics rankings per period, snapshots.
//! - `analytics`: funnel, K-factor, daily trend.
//! - `machine`: the one composition of all of it over one campaign, generic over `store::Store`.
//! - `store`: where a campaign's state lives (`MemStore`); `sql_store`: the same in SQLite.
//! - `program`: the engine over memory with its input log (replay) and invariant checks.
//! - `presets`: ready-made programs (the waitlist and the nine pulses).

pub mod analytics;
pub mod config;
pub mod fraud;
pub mod leaderboard;
pub mod ledger;
pub mod machine;
pub mod model;
pub mod presets;
pub mod program;
pub mod quest;
pub mod referral;
pub mod rewards;
pub mod rules;
pub mod sql_store;
pub mod store;
