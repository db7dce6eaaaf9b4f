//! `/v1/admin/sites`: a tenant's sites, each with its key pair and origins.
//! Any secret key of the tenant manages every site of the tenant (campaigns
//! are the tenant's too). A rotation gives a site a new key pair at once and
//! keeps the previous pair working for a grace period, so the site can
//! deploy the new keys without a moment in which its events are refused.

use super::Admin;
use crate::app::{Campaigns, Limiter, Reply, Response, db_error, forget_sites, internal, iso, not_found};
use crate::body::{Bounded, Origin, Text};
use crate::db::{Db, Kv, Stmt, query_one};
use crate::sql;
use crate::stmt;
use refloop_core::ApiError;
use refloop_core::engine::model::Millis;
use refloop_core::keys::hash_secret_key;
use serde::{Deserialize, Serialize};

/// Origins a site may list.
pub const MAX_ORIGINS: usize = 50;
/// The longest grace period of a rotation: 30 days, in hours.
pub const MAX_GRACE_HOURS: u64 = 720;
/// The grace period when a rotation names none: a day.
pub const DEFAULT_GRACE_HOURS: u64 = 24;

/// `SITES_OF_TENANT`'s row.
#[derive(Deserialize)]
struct SiteRow {
    id: i64,
    name: String,
    publishable_key: String,
    created_at: i64,
    rate_limit_per_minute: Option<i64>,
    previous_keys_until: Option<i64>,
    origins: Option<String>,
}

/// A site as the API shows it (its secret key never: only its hash is kept).
#[derive(Serialize)]
struct SiteView {
    id: i64,
    name: String,
    publishable_key: String,
    origins: Vec<String>,
    rate_limit_per_minute: Option<i64>,
    created_at: String,
    /// Until when the keys before the last rotation still work (while they do).
    previous_keys_valid_until: Option<String>,
}

impl SiteView {
    fn of(r: SiteRow, now: Millis) -> Self {
        SiteView {
            id: r.id,
            name: r.name,
            publishable_key: r.publishable_key,
            origins: crate::app::origin_list(r.origins.as_deref()),
            rate_limit_per_minute: r.rate_limit_per_minute,
            created_at: iso(r.created_at),
            previous_keys_valid_until: r.previous_keys_until.filter(|until| *until > now).map(iso),
        }
    }
}

/// A site with its new secret key, shown this once.
#[derive(Serialize)]
struct WithSecret {
    #[serde(flatten)]
    site: SiteView,
    secret_key: String,
}

/// A fresh key pair from the request's CSPRNG bytes.
fn fresh_keys(entropy: &[u8; 48]) -> (String, String) {
    (
        format!("pk_{}", hex::encode(&entropy[..16])),
        format!("sk_{}", hex::encode(&entropy[16..48])),
    )
}

/// Origins, each once, at most `MAX_ORIGINS`.
fn origin_list(origins: Vec<Origin>) -> Result<Vec<String>, ApiError> {
    let mut list: Vec<String> = Vec::new();
    for o in origins {
        if !list.contains(&o.0) {
            list.push(o.0);
        }
    }
    if list.len() > MAX_ORIGINS {
        return Err(crate::app::invalid(format!(
            "origins: at most {MAX_ORIGINS}, not {}",
            list.len()
        )));
    }
    Ok(list)
}

impl<D: Db, K: Kv, C: Campaigns, L: Limiter> Admin<'_, D, K, C, L> {
    /// The path's `{site}`, if it is this tenant's.
    async fn site_of_tenant(&self) -> Result<SiteRow, ApiError> {
        let id = self.id("site")?;
        query_one(self.ctx.db, stmt!(sql::SITE_OF_TENANT, self.site.tenant_id, id as i64))
            .await
            .map_err(db_error)?
            .ok_or_else(|| not_found(format!("this tenant has no site {id}")))
    }
}

/// `GET /v1/admin/sites`: the tenant's sites.
pub async fn list<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Serialize)]
    struct Sites {
        sites: Vec<SiteView>,
    }
    let rows: Vec<SiteRow> = a.rows(stmt!(sql::SITES_OF_TENANT, a.site.tenant_id)).await?;
    let sites = rows.into_iter().map(|r| SiteView::of(r, a.now())).collect();
    Ok(Response::view(200, &Sites { sites }))
}

/// `POST /v1/admin/sites` `{name, origins?, rate_limit_per_minute?}`: another
/// site of the tenant, with its own keys (the secret key is shown once).
pub async fn create<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NewSite {
        name: Text<200>,
        #[serde(default)]
        origins: Vec<Origin>,
        rate_limit_per_minute: Option<Bounded<1, 1_000_000>>,
    }
    #[derive(Serialize)]
    struct Detail<'a> {
        name: &'a str,
        origins: &'a [String],
    }
    let body: NewSite = a.body()?;
    let origins = origin_list(body.origins)?;
    let (publishable, secret) = fresh_keys(&a.ctx.entropy);
    let name = body.name.0;
    let mut stmts = vec![stmt!(
        sql::INSERT_SITE,
        a.site.tenant_id,
        name.as_str(),
        publishable.as_str(),
        hash_secret_key(&secret),
        a.now(),
        body.rate_limit_per_minute.map(|n| n.0)
    )];
    for o in &origins {
        stmts.push(stmt!(sql::INSERT_SITE_ORIGIN, publishable.as_str(), o.as_str()));
    }
    let target = format!("site:{publishable}");
    stmts.push(a.audit(
        "site.create",
        &target,
        Detail {
            name: &name,
            origins: &origins,
        },
    ));
    a.ctx.db.batch(stmts).await.map_err(db_error)?;
    let row: SiteRow = a
        .rows(stmt!(sql::SITES_OF_TENANT, a.site.tenant_id))
        .await?
        .into_iter()
        .find(|r: &SiteRow| r.publishable_key == publishable)
        .ok_or_else(|| internal("the new site was not found after its insert"))?;
    let view = WithSecret {
        site: SiteView::of(row, a.now()),
        secret_key: secret,
    };
    Ok(Response::view(201, &view))
}

/// `POST /v1/admin/sites/{site}/keys` `{grace_hours?}`: a new key pair for
/// the site, shown once; the previous pair keeps working for `grace_hours`
/// (default a day, 0 to stop it now, at most 30 days).
pub async fn rotate<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Rotate {
        grace_hours: Option<Bounded<0, { MAX_GRACE_HOURS as i64 }>>,
    }
    #[derive(Serialize)]
    struct Detail {
        grace_hours: u64,
    }
    let body: Rotate = a.body()?;
    let site = a.site_of_tenant().await?;
    let grace_hours = body.grace_hours.map_or(DEFAULT_GRACE_HOURS, |h| h.0 as u64);
    let until = a.now() + (grace_hours as i64) * 3_600_000;
    let (publishable, secret) = fresh_keys(&a.ctx.entropy);
    let target = format!("site:{}", site.id);
    let stmts: Vec<Stmt> = vec![
        stmt!(
            sql::ROTATE_SITE_KEYS,
            site.id,
            publishable.as_str(),
            hash_secret_key(&secret),
            until
        ),
        a.audit("site.rotate_keys", &target, Detail { grace_hours }),
    ];
    a.ctx.db.batch(stmts).await.map_err(db_error)?;
    forget_sites();
    let view = WithSecret {
        site: SiteView::of(
            SiteRow {
                publishable_key: publishable,
                previous_keys_until: Some(until),
                ..site
            },
            a.now(),
        ),
        secret_key: secret,
    };
    Ok(Response::view(200, &view))
}

/// `PUT /v1/admin/sites/{site}/origins` `{origins}`: the site's origins
/// become this list (add one by sending the list with it, remove one by
/// sending the list without it).
pub async fn set_origins<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Origins {
        origins: Vec<Origin>,
    }
    #[derive(Serialize)]
    struct Detail<'a> {
        origins: &'a [String],
    }
    let body: Origins = a.body()?;
    let origins = origin_list(body.origins)?;
    let site = a.site_of_tenant().await?;
    let mut stmts = vec![stmt!(sql::CLEAR_SITE_ORIGINS, site.id)];
    for o in &origins {
        stmts.push(stmt!(sql::ADD_SITE_ORIGIN, site.id, o.as_str()));
    }
    let target = format!("site:{}", site.id);
    stmts.push(a.audit("site.origins", &target, Detail { origins: &origins }));
    a.ctx.db.batch(stmts).await.map_err(db_error)?;
    forget_sites();
    let view = SiteView::of(
        SiteRow {
            origins: Some(origins.join(" ")),
            ..site
        },
        a.now(),
    );
    Ok(Response::view(200, &view))
}
