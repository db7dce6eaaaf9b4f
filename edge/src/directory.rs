//! The directory in D1: campaigns and their configuration versions, cached in
//! KV (versions never change once written, so they are never invalidated; an
//! update is a new version the campaign row points at, visible at once), and
//! the one way the worker talks to a campaign: `call`.

use crate::app::{Campaigns, Ctx, Limiter, db_error, not_found};
use crate::campaign::{Call, CampaignMeta, Op};
use crate::db::{Db, DbError, Kv, query_as, query_one};
use crate::sql;
use crate::stmt;
use refloop_core::ApiError;
use refloop_core::engine::config::{CampaignConfig, Versioned};

/// A campaign row of the directory (`sql::CAMPAIGN` and its kin).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct CampaignRow {
    pub id: i64,
    pub tenant_id: i64,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub current_version: u32,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

impl CampaignRow {
    pub fn meta(&self) -> CampaignMeta {
        CampaignMeta {
            id: self.id,
            tenant_id: self.tenant_id,
            slug: self.slug.clone(),
        }
    }
}

/// A configuration version's row (`sql::CAMPAIGN_VERSION(S)`): the
/// configuration as JSON text.
#[derive(Debug, serde::Deserialize)]
pub struct VersionRow {
    pub version: u32,
    pub config: String,
    pub created_at: Option<i64>,
}

/// One configuration version, from KV when it is there.
pub async fn config_version(db: &impl Db, kv: &impl Kv, campaign: i64, version: u32) -> Result<Versioned, DbError> {
    let key = format!("cfg:{campaign}:{version}");
    if let Some(text) = kv.get(&key).await
        && let Ok(config) = serde_json::from_str::<CampaignConfig>(&text)
    {
        return Ok(Versioned { version, config });
    }
    let text = query_one::<VersionRow>(db, stmt!(sql::CAMPAIGN_VERSION, campaign, version))
        .await?
        .map(|r| r.config)
        .ok_or_else(|| DbError::from_message(format!("campaign {campaign} has no version {version}")))?;
    let config: CampaignConfig =
        serde_json::from_str(&text).map_err(|e| DbError::from_message(format!("stored config: {e}")))?;
    kv.put(&key, &text, None).await;
    Ok(Versioned { version, config })
}

/// Every version of a campaign, oldest first (what its object needs: a
/// referral stays pinned to the version it started under).
pub async fn all_versions(db: &impl Db, campaign: i64) -> Result<Vec<Versioned>, DbError> {
    query_as::<VersionRow>(db, stmt!(sql::CAMPAIGN_VERSIONS, campaign))
        .await?
        .into_iter()
        .map(|r| {
            let config = serde_json::from_str::<CampaignConfig>(&r.config)
                .map_err(|e| DbError::from_message(format!("stored config of campaign {campaign}: {e}")))?;
            Ok(Versioned {
                version: r.version,
                config,
            })
        })
        .collect()
}

/// The campaign `name` (slug or id) of the tenant, with its current configuration.
pub async fn campaign_of<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    tenant: i64,
    name: &str,
) -> Result<(CampaignRow, Versioned), ApiError> {
    let campaign = query_one::<CampaignRow>(ctx.db, stmt!(sql::CAMPAIGN, tenant, name))
        .await
        .map_err(db_error)?
        .filter(|c| c.current_version > 0)
        .ok_or_else(|| not_found(format!("no campaign {name:?}")))?;
    let current = config_version(ctx.db, ctx.kv, campaign.id, campaign.current_version)
        .await
        .map_err(db_error)?;
    Ok((campaign, current))
}

/// One call to the campaign's single writer, at server time.
pub async fn call<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    ctx: &Ctx<'_, D, K, C, L>,
    campaign: &CampaignRow,
    op: Op,
) -> Result<serde_json::Value, ApiError> {
    let call = Call {
        campaign: campaign.meta(),
        version: campaign.current_version,
        now: ctx.now,
        entropy: hex::encode(&ctx.entropy[..32]),
        op,
    };
    ctx.campaigns.call(&call).await
}

/// The outbox statements of the notices in a campaign's answer: each
/// `[type, payload]` queued for every active webhook of the tenant that takes it.
pub fn notice_statements(campaign: &CampaignMeta, answer: &serde_json::Value, now: i64) -> Vec<crate::db::Stmt> {
    let notices = <crate::campaign::Noticed as serde::Deserialize>::deserialize(answer)
        .map_or_else(|_| Vec::new(), |n| n.notices);
    notices
        .iter()
        .map(|(kind, payload)| notice_statement(campaign, kind, payload, now))
        .collect()
}

/// One notice of `campaign` for every active webhook of its tenant that takes
/// it, once per webhook and notice key (the payload's `id`).
pub fn notice_statement(campaign: &CampaignMeta, kind: &str, payload: &serde_json::Value, now: i64) -> crate::db::Stmt {
    stmt!(
        sql::ENQUEUE_NOTICE,
        campaign.tenant_id,
        kind,
        payload.to_string(),
        now,
        payload["id"].as_str().map(str::to_owned),
        campaign.id
    )
}
