//! The scheduled work, housekeeping only: each campaign's object does its own
//! (expiry, the daily snapshot, the end, its webhooks) from its alarm
//! (`alarm.rs`). The cron sends the webhook deliveries no alarm sent
//! (`webhooks::Scope::Stragglers`) and forgets old rate-limit windows.
//! Bounded per run: at most `DELIVERIES_PER_RUN` deliveries, each bounded in
//! time, and two statements besides.

use crate::app::{Campaigns, Ctx, Limiter};
use crate::db::{Db, Kv};
use crate::sql;
use crate::stmt;
use crate::webhooks::{self, Outbound, Scope};

/// Deliveries the cron sends per run at most (the stragglers no alarm sent).
pub const DELIVERIES_PER_RUN: u32 = 50;
const _: () = assert!(
    DELIVERIES_PER_RUN as i64 * webhooks::ATTEMPT_TIMEOUT_MS < 15 * 60_000,
    "a run's deliveries, each timing out, end within a cron's 15 minutes"
);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CronReport {
    pub delivered: u64,
    pub failed: u64,
}

pub async fn run<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    out: &impl Outbound,
) -> Result<CronReport, crate::db::DbError> {
    let (db, now) = (ctx.db, ctx.now);
    db.batch(vec![stmt!(sql::FORGET_WINDOWS, now / 60_000 - 60)]).await?;
    let token = hex::encode(&ctx.entropy[..16]);
    let sent = webhooks::deliver(db, out, now, &token, Scope::Stragglers, DELIVERIES_PER_RUN).await?;
    Ok(CronReport {
        delivered: sent.delivered,
        failed: sent.failed,
    })
}
