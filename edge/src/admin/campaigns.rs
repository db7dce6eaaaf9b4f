//! Campaigns and their configuration versions (in D1, the directory). An
//! update is a new version: referrals keep the version they started under.

use super::{Admin, campaign_target};
use crate::app::{Campaigns, Limiter, Reply, Response, Site, db_error, internal, invalid, iso};
use crate::body::{Text, Version};
use crate::campaign::Op;
use crate::db::{Db, DbError, Kv, Stmt};
use crate::directory::{CampaignRow, VersionRow, call, campaign_of};
use crate::sql;
use crate::stmt;
use refloop_core::engine::config::{CampaignConfig, ConfigError, PointRule, RewardDef, Versioned};
use refloop_core::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A campaign as the admin API shows it.
#[derive(Serialize)]
struct CampaignView<'a> {
    id: i64,
    slug: &'a str,
    name: &'a str,
    status: &'a str,
    version: u32,
    config: &'a CampaignConfig,
    created_at: String,
    updated_at: Option<String>,
}

fn view<'a>(c: &'a CampaignRow, v: &'a Versioned) -> CampaignView<'a> {
    CampaignView {
        id: c.id,
        slug: &c.slug,
        name: &c.name,
        status: &c.status,
        version: v.version,
        config: &v.config,
        created_at: iso(c.created_at),
        updated_at: c.updated_at.map(iso),
    }
}

fn config_errors(errors: Vec<ConfigError>) -> ApiError {
    let message = errors
        .iter()
        .map(|e| format!("{}: {}", e.path, e.reason))
        .collect::<Vec<_>>()
        .join("; ");
    ApiError::new(ErrorCode::InvalidConfig, message)
}

fn parse_config(v: &Value) -> Result<CampaignConfig, ApiError> {
    if !v.is_object() {
        return Err(crate::app::bad("`config` must be a JSON object"));
    }
    CampaignConfig::from_json(&v.to_string()).map_err(config_errors)
}

/// Referral links redirect to the landing page, so it must be on one of the
/// site's own origins (else every code would be an open redirect to any page
/// an operator, or whoever holds the key, names). A preset's placeholder page
/// moves to the site's first origin.
fn landing_on_site(mut config: CampaignConfig, site: &Site, preset: bool) -> Result<CampaignConfig, ApiError> {
    let Some(landing) = config.landing_url.as_deref().and_then(|u| url::Url::parse(u).ok()) else {
        return Ok(config);
    };
    let origin = landing.origin().ascii_serialization();
    if site.origins.is_empty() || site.origins.iter().any(|o| o == "*" || o.eq_ignore_ascii_case(&origin)) {
        return Ok(config);
    }
    if preset && let Ok(mut moved) = url::Url::parse(&site.origins[0]) {
        moved.set_path(landing.path());
        moved.set_query(landing.query());
        moved.set_fragment(landing.fragment());
        config.landing_url = Some(moved.to_string());
        return Ok(config);
    }
    Err(ApiError::new(
        ErrorCode::InvalidConfig,
        format!(
            "landing_url: must be on one of the site's origins ({})",
            site.origins.join(", ")
        ),
    ))
}

/// `GET /v1/admin/campaigns`.
pub async fn list<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Serialize)]
    struct Line {
        id: i64,
        slug: String,
        name: String,
        status: String,
        version: u32,
    }
    #[derive(Serialize)]
    struct List {
        campaigns: Vec<Line>,
    }
    let rows: Vec<CampaignRow> = a.rows(stmt!(sql::CAMPAIGNS_OF_TENANT, a.site.tenant_id)).await?;
    let campaigns = rows
        .into_iter()
        .map(|c| Line {
            id: c.id,
            slug: c.slug,
            name: c.name,
            status: c.status,
            version: c.current_version,
        })
        .collect();
    Ok(Response::view(200, &List { campaigns }))
}

/// A campaign's slug: lower-case letters, digits and dashes, with a letter
/// (so it is never a number: a number names a campaign by id).
struct Slug(String);

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<De: serde::Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        let Text::<64>(s) = Text::deserialize(d)?;
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || !s.bytes().any(|b| b.is_ascii_lowercase())
        {
            return Err(serde::de::Error::custom(
                "is lower-case letters, digits and dashes, with at least one letter",
            ));
        }
        Ok(Slug(s))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCampaign {
    slug: Slug,
    config: Option<Value>,
    preset: Option<Text<64>>,
}

/// `POST /v1/admin/campaigns` `{slug, config}` or `{slug, preset}`.
pub async fn create<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    let body: NewCampaign = a.body()?;
    let slug = body.slug.0;
    let config = match (&body.config, body.preset) {
        (Some(c), _) => parse_config(c)?,
        (None, Some(name)) => refloop_core::engine::presets::preset(name.as_str())
            .ok_or_else(|| invalid(format!("no preset {:?}", name.as_str())))?,
        (None, None) => return Err(crate::app::bad("send a `config` (or the name of a `preset`)")),
    };
    let config = landing_on_site(config, &a.site, body.config.is_none())?;
    let (tenant, now) = (a.site.tenant_id, a.now());
    let taken = || ApiError::new(ErrorCode::Conflict, format!("a campaign {slug:?} exists"));
    let exists: Vec<CampaignRow> = a.rows(stmt!(sql::CAMPAIGN, tenant, slug.as_str())).await?;
    if !exists.is_empty() {
        return Err(taken());
    }
    #[derive(Serialize)]
    struct Detail {
        version: u32,
    }
    let stmts = vec![
        stmt!(sql::INSERT_CAMPAIGN, tenant, slug.as_str(), config.name.as_str(), now),
        stmt!(sql::INSERT_FIRST_VERSION, tenant, slug.as_str(), config.to_json(), now),
        a.audit("campaign.create", &campaign_target(&slug), Detail { version: 1 }),
    ];
    a.ctx.db.batch(stmts).await.map_err(|e| conflict_or(e, taken))?;
    changed(a, &slug, 201).await
}

/// A refused write was a concurrent one (`conflict`), or a failure.
fn conflict_or(e: DbError, conflict: impl FnOnce() -> ApiError) -> ApiError {
    match e.retryable {
        true => conflict(),
        false => internal(e),
    }
}

/// After a change: this isolate's next batch sees it at once, the
/// campaign's object learns of the new version at once (so its alarm is
/// armed for `ends_at` even when no event ever comes; a failure only delays
/// that to the next call), and the campaign is answered as it is now.
async fn changed<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>, name: &str, status: u16) -> Reply {
    crate::ingest::forget_campaigns(a.site.tenant_id);
    let (c, v) = campaign_of(a.ctx, a.site.tenant_id, name).await?;
    if let Err(e) = call(a.ctx, &c, Op::Check).await {
        crate::app::log(&format!("campaign {}: not woken: {}", c.id, e.message));
    }
    Ok(Response::view(status, &view(&c, &v)))
}

/// `GET /v1/admin/campaigns/{campaign}`.
pub async fn get<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    let (c, v) = a.campaign().await?;
    Ok(Response::view(200, &view(&c, &v)))
}

/// `PUT /v1/admin/campaigns/{campaign}` `{config, version?}`; `version`, the
/// one the edit was made from, refuses the edit if another came since.
pub async fn update<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Edit {
        config: Value,
        version: Option<Version>,
    }
    let edit: Edit = a.body()?;
    let config = parse_config(&edit.config)?;
    save(a, edit.version.map(|v| v.0 as u32), |_| Ok(config)).await
}

/// `PUT /v1/admin/campaigns/{campaign}/point-rules` `{point_rules, version?}`.
pub async fn put_point_rules<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    let edit: PartEdit = a.body()?;
    let (point_rules, version): (Vec<PointRule>, _) = edit.take("point_rules")?;
    save(a, version, |c| {
        Ok(CampaignConfig {
            point_rules,
            ..c.clone()
        })
    })
    .await
}

/// `PUT /v1/admin/campaigns/{campaign}/rewards` `{rewards, version?}`.
pub async fn put_rewards<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    let edit: PartEdit = a.body()?;
    let (rewards, version): (Vec<RewardDef>, _) = edit.take("rewards")?;
    save(a, version, |c| Ok(CampaignConfig { rewards, ..c.clone() })).await
}

/// `{<part>, version?}`: one part of a configuration and the version it was
/// edited from.
#[derive(Deserialize)]
struct PartEdit {
    version: Option<Version>,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

impl PartEdit {
    fn take<T: serde::de::DeserializeOwned>(mut self, name: &str) -> Result<(T, Option<u32>), ApiError> {
        let value = self
            .rest
            .remove(name)
            .ok_or_else(|| crate::app::bad(format!("missing field `{name}`")))?;
        if let Some(other) = self.rest.keys().next() {
            return Err(invalid(format!(
                "unknown field `{other}`, expected `{name}` or `version`"
            )));
        }
        Ok((part(value, name)?, self.version.map(|v| v.0 as u32)))
    }
}

/// A part of a configuration: its errors are the configuration's (422).
fn part<T: serde::de::DeserializeOwned>(v: Value, name: &str) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::new(ErrorCode::InvalidConfig, format!("{name}: {e}")))
}

/// The next version, made from the current configuration by `edit`.
async fn save<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    a: &Admin<'_, D, K, C, L>,
    expected: Option<u32>,
    edit: impl FnOnce(&CampaignConfig) -> Result<CampaignConfig, ApiError>,
) -> Reply {
    let (c, current) = a.campaign().await?;
    let next = landing_on_site(edit(&current.config)?, &a.site, false)?;
    let versioned = current.update(next).map_err(config_errors)?;
    if let Some(expected) = expected
        && expected != current.version
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "the campaign is at version {}, not {expected}; reload and edit again",
                current.version
            ),
        ));
    }
    #[derive(Serialize)]
    struct Detail {
        version: u32,
    }
    let now = a.now();
    let stmts: Vec<Stmt> = vec![
        stmt!(
            sql::INSERT_NEXT_VERSION,
            c.id,
            current.version,
            versioned.config.to_json(),
            now
        ),
        stmt!(
            sql::SET_CAMPAIGN_VERSION,
            c.id,
            versioned.version,
            versioned.config.name.as_str(),
            now
        ),
        a.audit(
            "campaign.update",
            &campaign_target(&c.slug),
            Detail {
                version: versioned.version,
            },
        ),
    ];
    a.ctx.db.batch(stmts).await.map_err(|e| {
        conflict_or(e, || {
            ApiError::new(
                ErrorCode::Conflict,
                "someone else updated the campaign at the same time; reload",
            )
        })
    })?;
    changed(a, &c.slug, 200).await
}

/// A campaign's status, as the operator sets it.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Status {
    Active,
    Paused,
    Ended,
}

/// `POST /v1/admin/campaigns/{campaign}/status` `{status}`.
pub async fn set_status<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    struct SetStatus {
        status: Status,
    }
    let body: SetStatus = a.body()?;
    let (c, _) = a.campaign().await?;
    let status = crate::app::name_of(&body.status);
    a.ctx
        .db
        .batch(vec![
            stmt!(sql::SET_CAMPAIGN_STATUS, c.id, status.as_str(), a.now()),
            a.audit("campaign.status", &campaign_target(&c.slug), &body),
        ])
        .await
        .map_err(db_error)?;
    changed(a, &c.slug, 200).await
}

/// `GET /v1/admin/campaigns/{campaign}/versions`.
pub async fn versions<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Serialize)]
    struct Version {
        version: u32,
        created_at: Option<String>,
        config: Value,
    }
    #[derive(Serialize)]
    struct Versions {
        versions: Vec<Version>,
    }
    let (c, _) = a.campaign().await?;
    let rows: Vec<VersionRow> = a.rows(stmt!(sql::CAMPAIGN_VERSIONS, c.id)).await?;
    let versions = rows
        .into_iter()
        .map(|r| Version {
            version: r.version,
            created_at: r.created_at.map(iso),
            config: serde_json::from_str(&r.config).unwrap_or(Value::Null),
        })
        .collect();
    Ok(Response::view(200, &Versions { versions }))
}
