//! The referral and gamification engine, sans-IO.
//!
//! - `config`: campaign configuration, validation, versions.
//! - `referral`, `quest`, `rules`, `rewards`, `fraud`: the decisions.
//! - `ledger`: append-only points, idempotency keys, replay corrections.
//! - `leaderboard`: order-statistics rankings per period, snapshots.
//! - `analytics`: funnel, K-factor, daily trend.
//! - `program`: all of it composed over one campaign's state in memory.
//! - `step`: the same composition over the slice of stored state one input touches (the edge).
//! - `presets`: ready-made programs (the waitlist and the nine pulses).

pub mod analytics;
pub mod config;
pub mod fraud;
pub mod leaderboard;
pub mod ledger;
pub mod model;
pub mod presets;
pub mod program;
pub mod quest;
pub mod referral;
pub mod rewards;
pub mod rules;
pub mod step;
