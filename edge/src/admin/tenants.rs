//! `/v1/admin/tenants` (root key): a tenant and its first site's keys.

use crate::app::{Campaigns, Cx, Limiter, Reply, Response, db_error, internal};
use crate::body::{Bounded, Origin, Text};
use crate::db::{Db, Kv, query_as, query_one};
use crate::sql;
use crate::stmt;
use refloop_core::keys::hash_secret_key;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: Text<200>,
    #[serde(default)]
    site: NewSite,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewSite {
    name: Option<Text<200>>,
    #[serde(default)]
    origins: Vec<Origin>,
    rate_limit_per_minute: Option<Bounded<1, 1_000_000>>,
}

#[derive(Serialize, Deserialize)]
pub struct Tenant {
    pub id: i64,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
}

#[derive(Serialize)]
struct SiteKeys {
    name: String,
    publishable_key: String,
    /// Shown once: only its hash is kept.
    secret_key: String,
    origins: Vec<String>,
}

#[derive(Serialize)]
struct Created {
    tenant: Tenant,
    site: SiteKeys,
}

#[derive(Deserialize)]
struct Id {
    id: i64,
}

/// `POST /v1/admin/tenants` `{name, site: {name?, origins?, rate_limit_per_minute?}}`.
pub async fn create<D: Db, K: Kv, C: Campaigns, L: Limiter>(cx: &Cx<'_, D, K, C, L>) -> Reply {
    let body: NewTenant = cx.body()?;
    let (ctx, name) = (cx.ctx, body.name.0);
    let site_name = body.site.name.map_or_else(|| name.clone(), |n| n.0);
    let origins: Vec<String> = body.site.origins.into_iter().map(|o| o.0).collect();
    let publishable = format!("pk_{}", hex::encode(&ctx.entropy[..16]));
    let secret = format!("sk_{}", hex::encode(&ctx.entropy[16..48]));
    let tenant = query_one::<Id>(ctx.db, stmt!(sql::INSERT_TENANT, name.as_str(), ctx.now))
        .await
        .map_err(db_error)?
        .ok_or_else(|| internal("tenant insert returned no id"))?
        .id;
    let mut stmts = vec![stmt!(
        sql::INSERT_SITE,
        tenant,
        site_name.as_str(),
        publishable.as_str(),
        hash_secret_key(&secret),
        ctx.now,
        body.site.rate_limit_per_minute.map(|n| n.0)
    )];
    for o in &origins {
        stmts.push(stmt!(sql::INSERT_SITE_ORIGIN, publishable.as_str(), o.as_str()));
    }
    #[derive(Serialize)]
    struct Detail<'a> {
        name: &'a str,
    }
    let target = format!("tenant:{tenant}");
    stmts.push(super::audit(
        tenant,
        "tenant.create",
        &target,
        Detail { name: &name },
        ctx.now,
    ));
    ctx.db.batch(stmts).await.map_err(db_error)?;
    let created = Created {
        tenant: Tenant {
            id: tenant,
            name,
            created_at: None,
        },
        site: SiteKeys {
            name: site_name,
            publishable_key: publishable,
            secret_key: secret,
            origins,
        },
    };
    Ok(Response::view(201, &created))
}

/// `GET /v1/admin/tenants`.
pub async fn list<D: Db, K: Kv, C: Campaigns, L: Limiter>(cx: &Cx<'_, D, K, C, L>) -> Reply {
    #[derive(Serialize)]
    struct Tenants {
        tenants: Vec<Tenant>,
    }
    let tenants = query_as(cx.ctx.db, stmt!(sql::LIST_TENANTS)).await.map_err(db_error)?;
    Ok(Response::view(200, &Tenants { tenants }))
}
