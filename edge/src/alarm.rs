//! What a campaign's object does when its alarm wakes it, as plain Rust over
//! the object itself (`Campaigns`, its own calls), the directory (`Db`) and
//! the webhook receivers (`Outbound`), so the native tests run it too.
//!
//! In order: expire what is overdue; the day's snapshot of the board; the end
//! of the campaign when `ends_at` has come (the raffle's seed from the
//! caller's CSPRNG, recorded in the audit log); the object's outbox into the
//! directory's (once per notice key, beside the worker's own write); then the
//! campaign's due webhook deliveries, bounded per run. It answers when to
//! wake next.

use crate::app::Campaigns;
use crate::campaign::{self, Call, CampaignMeta, Op};
use crate::db::{Db, Stmt};
use crate::webhooks::{self, Outbound, Scope};
use refloop_core::engine::config::{CampaignConfig, Period};
use refloop_core::time::parse_rfc3339_ms;

/// How soon the alarm comes back when work is left (a full page of notices
/// or deliveries, or the directory refused a write), and how soon after a
/// call that made notices it rings.
pub const SOON_MS: i64 = 2_000;

/// Deliveries one alarm sends at most (each bounded by
/// `webhooks::ATTEMPT_TIMEOUT_MS`, so a run lasts at most about a minute).
pub const DELIVERIES_PER_ALARM: u32 = 10;
const _: () = assert!(
    DELIVERIES_PER_ALARM as i64 * crate::webhooks::ATTEMPT_TIMEOUT_MS <= 60_000,
    "an alarm's deliveries, each timing out, end within a minute"
);
const _: () = assert!(
    DELIVERIES_PER_ALARM < 900,
    "an alarm's subrequests stay far inside Cloudflare's 1,000"
);

/// One day, the period of the board's snapshots.
const DAY_MS: i64 = 86_400_000;

/// The object's view of itself when the alarm rings.
pub struct Woken<'a> {
    pub meta: &'a CampaignMeta,
    pub version: u32,
    pub config: Option<&'a CampaignConfig>,
    pub now: i64,
    /// A raffle seed, drawn by the caller from the CSPRNG.
    pub seed: u64,
    /// This run's claim on deliveries (random hex).
    pub token: &'a str,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AlarmReport {
    /// When the object should wake again.
    pub next: i64,
    pub ended: bool,
    pub snapshot: bool,
    pub notices_moved: usize,
    pub delivered: u64,
    pub failed: u64,
}

fn call(w: &Woken<'_>, op: Op) -> Call {
    Call {
        campaign: w.meta.clone(),
        version: w.version,
        now: w.now,
        entropy: String::new(),
        op,
    }
}

pub async fn ring(db: &impl Db, object: &impl Campaigns, out: &impl Outbound, w: &Woken<'_>) -> AlarmReport {
    let log = |what: &str, e: &str| crate::app::log(&format!("campaign {} alarm: {what}: {e}", w.meta.id));
    let mut report = AlarmReport::default();
    // The notices of the tick, the snapshot and the end land in the object's outbox.
    if let Err(e) = object.call(&call(w, Op::Tick)).await {
        log("tick", &e.message);
    }
    #[derive(serde::Deserialize)]
    struct Taken {
        taken_at: String,
    }
    #[derive(serde::Deserialize)]
    struct Last {
        snapshots: Vec<Taken>,
    }
    let last_snapshot = object
        .call(&call(w, Op::Snapshots { limit: 1 }))
        .await
        .ok()
        .and_then(|s| serde_json::from_value::<Last>(s).ok())
        .and_then(|l| l.snapshots.first().and_then(|t| parse_rfc3339_ms(&t.taken_at)))
        .unwrap_or(0);
    if w.now - last_snapshot >= DAY_MS {
        report.snapshot = object
            .call(&call(w, Op::Snapshot { period: Period::All }))
            .await
            .is_ok();
    }
    let mut stmts: Vec<Stmt> = Vec::new();
    if let Some(c) = w.config
        && c.ends_at.is_some_and(|e| e <= w.now)
    {
        report.ended = true;
        match object
            .call(&call(
                w,
                Op::End {
                    seed: w.seed,
                    preview: false,
                },
            ))
            .await
        {
            Ok(answer) => {
                let grants =
                    serde_json::from_value::<crate::campaign::Ended>(answer).map_or_else(|_| Vec::new(), |e| e.grants);
                stmts.push(crate::stmt!(crate::sql::SET_CAMPAIGN_STATUS, w.meta.id, "ended", w.now));
                stmts.push(crate::admin::audit(
                    w.meta.tenant_id,
                    "campaign.end",
                    &format!("campaign:{}", w.meta.slug),
                    crate::admin::program::Ended {
                        seed: w.seed.to_string(),
                        grants: &grants,
                        by: Some("ends_at"),
                    },
                    w.now,
                ));
            }
            // Ended before (by an operator): nothing to do, ever again.
            Err(e) if e.code == refloop_core::ErrorCode::Conflict => {}
            Err(e) => log("end", &e.message),
        }
    }
    // The outbox's notices into the directory's, once each (their keys).
    let pending = object
        .call(&call(w, Op::Outbox))
        .await
        .ok()
        .and_then(|p| serde_json::from_value::<crate::campaign::Outboxed>(p).ok());
    let (through, notices) = pending.map_or((0, Vec::new()), |p| (p.through, p.notices));
    report.notices_moved = notices.len();
    stmts.extend(
        notices
            .iter()
            .map(|(kind, payload)| crate::directory::notice_statement(w.meta, kind, payload, w.now)),
    );
    let written = stmts.is_empty()
        || match db.batch(stmts).await {
            Ok(_) => true,
            Err(e) => {
                log("directory", &e.to_string());
                false
            }
        };
    if written
        && through > 0
        && let Err(e) = object.call(&call(w, Op::OutboxSent { through })).await
    {
        log("outbox", &e.message);
    }
    // The campaign's deliveries, now that every notice is in the directory.
    let sent = webhooks::deliver(
        db,
        out,
        w.now,
        w.token,
        Scope::Campaign(w.meta.id),
        DELIVERIES_PER_ALARM,
    )
    .await;
    let (more, next_due) = match sent {
        Ok(d) => {
            report.delivered = d.delivered;
            report.failed = d.failed;
            (d.full, d.next_due)
        }
        Err(e) => {
            log("deliveries", &e.to_string());
            (true, None)
        }
    };
    let left = !written || more || report.notices_moved >= campaign::OUTBOX_PAGE;
    let planned = match w.config {
        Some(c) => campaign::next_wake(c, report.ended, w.now),
        None => w.now + campaign::TICK_MS,
    };
    report.next = if left {
        w.now + SOON_MS
    } else {
        // A retry falls due before the plan: wake for it (never in the past:
        // another runner may hold its claim).
        next_due.map_or(planned, |due| planned.min(due.max(w.now + SOON_MS)))
    };
    report
}
