//! A tenant's webhooks and their delivery log.

use super::Admin;
use crate::app::{Campaigns, Limiter, Reply, Response, db_error, internal, not_found};
use crate::body::Text;
use crate::db::{Db, Kv, query_as, query_one};
use crate::sql;
use crate::stmt;
use crate::webhooks::{MAX_WEBHOOKS_PER_TENANT, NoticeType, check_url};
use refloop_core::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};

/// A live webhook as listed (`sql::LIST_WEBHOOKS`; a deleted one is gone
/// from the API, its delivery rows kept); its secret is shown once, at creation.
#[derive(Serialize, Deserialize)]
struct Webhook {
    id: i64,
    url: String,
    /// The notice types it takes, space-separated, or `*`.
    events: String,
    active: i64,
    created_at: i64,
}

#[derive(Serialize, Deserialize)]
struct Delivery {
    id: i64,
    #[serde(rename = "type")]
    kind: String,
    payload: String,
    created_at: i64,
    attempts: i64,
    next_attempt_at: Option<i64>,
    delivered_at: Option<i64>,
    last_status: Option<i64>,
    last_error: Option<String>,
}

async fn webhooks_of<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    a: &Admin<'_, D, K, C, L>,
) -> Result<Vec<Webhook>, ApiError> {
    query_as(a.ctx.db, stmt!(sql::LIST_WEBHOOKS, a.site.tenant_id))
        .await
        .map_err(db_error)
}

/// `GET /v1/admin/webhooks`.
pub async fn list<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Serialize)]
    struct List {
        webhooks: Vec<Webhook>,
    }
    Ok(Response::view(
        200,
        &List {
            webhooks: webhooks_of(a).await?,
        },
    ))
}

/// `POST /v1/admin/webhooks` `{url, events?}` → the webhook and its signing secret.
pub async fn create<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NewWebhook {
        url: Text<500>,
        events: Option<Vec<NoticeType>>,
    }
    #[derive(Serialize)]
    struct Created {
        id: i64,
        url: String,
        events: String,
        secret: String,
    }
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    #[derive(Serialize)]
    struct Detail<'a> {
        url: &'a str,
    }
    let body: NewWebhook = a.body()?;
    let url = check_url(body.url.as_str(), a.ctx.allow_local_webhooks)
        .map_err(crate::app::invalid)?
        .to_string();
    let events = match body.events {
        None => "*".to_owned(),
        Some(list) if list.is_empty() => return Err(crate::app::invalid("`events`: name at least one")),
        Some(list) => list.iter().map(crate::app::name_of).collect::<Vec<_>>().join(" "),
    };
    let live = webhooks_of(a).await?.len() as i64;
    if live >= MAX_WEBHOOKS_PER_TENANT {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("a tenant has at most {MAX_WEBHOOKS_PER_TENANT} webhooks; delete one first"),
        ));
    }
    let secret = format!("whsec_{}", hex::encode(&a.ctx.entropy[..32]));
    let insert = stmt!(
        sql::INSERT_WEBHOOK,
        a.site.tenant_id,
        url.as_str(),
        secret.as_str(),
        events.as_str(),
        a.now()
    );
    let id = query_one::<Id>(a.ctx.db, insert)
        .await
        .map_err(db_error)?
        .ok_or_else(|| internal("webhook insert returned no id"))?
        .id;
    a.ctx
        .db
        .batch(vec![a.audit(
            "webhook.create",
            &format!("webhook:{id}"),
            Detail { url: &url },
        )])
        .await
        .map_err(db_error)?;
    Ok(Response::view(
        201,
        &Created {
            id,
            url,
            events,
            secret,
        },
    ))
}

/// The path's `{webhook}`, if it is this tenant's.
async fn webhook_of<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Result<i64, ApiError> {
    let id = a.id("webhook")? as i64;
    match webhooks_of(a).await?.iter().any(|w| w.id == id) {
        true => Ok(id),
        false => Err(not_found("no such webhook")),
    }
}

/// `DELETE /v1/admin/webhooks/{webhook}`: it is never claimed again.
pub async fn delete<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Serialize)]
    struct Deleted {
        id: i64,
        active: bool,
    }
    #[derive(Serialize)]
    struct Detail {}
    let id = webhook_of(a).await?;
    a.ctx
        .db
        .batch(vec![
            stmt!(sql::DELETE_WEBHOOK, id, a.site.tenant_id),
            a.audit("webhook.delete", &format!("webhook:{id}"), Detail {}),
        ])
        .await
        .map_err(db_error)?;
    Ok(Response::view(200, &Deleted { id, active: false }))
}

/// `GET /v1/admin/webhooks/{webhook}/deliveries?limit=`.
pub async fn deliveries<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Serialize)]
    struct List {
        deliveries: Vec<Delivery>,
    }
    let id = webhook_of(a).await?;
    let limit = a.limit(50, 500)?;
    let deliveries = a.rows(stmt!(sql::DELIVERIES, id, limit)).await?;
    Ok(Response::view(200, &List { deliveries }))
}
