//! The ledger's invariants restated from the tables: one campaign (secret
//! key) or every campaign and the directory (root key, for the edge's
//! operator and the tests).

use super::Admin;
use crate::app::{Campaigns, Cx, Limiter, Reply, Response, db_error};
use crate::campaign::Op;
use crate::db::{Db, Kv, query_as, query_one};
use crate::directory::{CampaignRow, call};
use crate::sql;
use crate::stmt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `GET /v1/admin/campaigns/{campaign}/check`: the campaign's invariants and
/// row counts.
pub async fn campaign<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    let (c, _) = a.campaign().await?;
    Ok(Response::value(200, &a.ask(&c, Op::Check).await?))
}

/// What a campaign's object answers to `Op::Check`.
#[derive(Deserialize, Default)]
struct Checked {
    #[serde(default)]
    violations: Vec<String>,
    #[serde(default)]
    counts: BTreeMap<String, i64>,
}

#[derive(Serialize)]
struct CampaignCounts {
    id: i64,
    slug: String,
    counts: BTreeMap<String, i64>,
}

/// Row counts of the directory and the log (`sql::DIRECTORY_COUNTS`).
#[derive(Serialize, Deserialize, Default)]
struct DirectoryCounts {
    tenants: i64,
    sites: i64,
    site_origins: i64,
    campaigns: i64,
    campaign_versions: i64,
    events: i64,
    referral_links: i64,
    webhooks: i64,
    outbox: i64,
    audit_log: i64,
}

#[derive(Serialize)]
struct Everything {
    violations: Vec<String>,
    counts: BTreeMap<String, i64>,
    campaigns: Vec<CampaignCounts>,
    directory: DirectoryCounts,
}

/// `GET /v1/admin/check` (root key).
pub async fn all<D: Db, K: Kv, C: Campaigns, L: Limiter>(cx: &Cx<'_, D, K, C, L>) -> Reply {
    let ctx = cx.ctx;
    let mut all = Everything {
        violations: Vec::new(),
        counts: BTreeMap::new(),
        campaigns: Vec::new(),
        directory: DirectoryCounts::default(),
    };
    let rows: Vec<CampaignRow> = query_as(ctx.db, stmt!(sql::ALL_CAMPAIGNS)).await.map_err(db_error)?;
    for c in rows.into_iter().filter(|c| c.current_version > 0) {
        let answer = call(ctx, &c, Op::Check).await?;
        let checked: Checked = serde_json::from_value(answer).unwrap_or_default();
        all.violations
            .extend(checked.violations.iter().map(|v| format!("campaign {}: {v}", c.id)));
        for (k, n) in &checked.counts {
            *all.counts.entry(k.clone()).or_default() += n;
        }
        all.campaigns.push(CampaignCounts {
            id: c.id,
            slug: c.slug,
            counts: checked.counts,
        });
    }
    all.directory = query_one(ctx.db, stmt!(sql::DIRECTORY_COUNTS))
        .await
        .map_err(db_error)?
        .unwrap_or_default();
    Ok(Response::view(200, &all))
}
