//! What concerns the whole site: its raw events, its identity-verification
//! secret, its audit log.

use super::Admin;
use crate::app::{Campaigns, Limiter, Reply, Response, iso};
use crate::db::{Db, Kv};
use crate::sql;
use crate::stmt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A row of the raw event log (`sql::LIST_EVENTS`, `sql::EVENTS_OF_PERSON`).
#[derive(Serialize, Deserialize)]
pub struct EventRow {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    pub occurred_at: Option<i64>,
    pub received_at: Option<i64>,
    pub trusted: i64,
    pub payload: Option<String>,
}

#[derive(Serialize)]
struct EventView {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    event: Option<String>,
    anonymous_id: Option<String>,
    user_id: Option<String>,
    timestamp: Option<String>,
    received_at: Option<String>,
    trusted: bool,
    properties: Option<Value>,
}

impl From<EventRow> for EventView {
    fn from(r: EventRow) -> Self {
        let payload: Option<Value> = r.payload.as_deref().and_then(|p| serde_json::from_str(p).ok());
        EventView {
            id: r.event_id,
            kind: r.kind,
            event: r.name,
            anonymous_id: r.anonymous_id,
            user_id: r.user_id,
            timestamp: r.occurred_at.map(iso),
            received_at: r.received_at.map(iso),
            trusted: r.trusted != 0,
            properties: payload.and_then(|mut p| p.get_mut("properties").map(Value::take)),
        }
    }
}

/// `GET /v1/admin/events?limit=`: the newest raw events of the site.
pub async fn events<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Serialize)]
    struct Events {
        events: Vec<EventView>,
    }
    let limit = a.limit(50, 1000)?;
    let rows: Vec<EventRow> = a.rows(stmt!(sql::LIST_EVENTS, a.site.id, limit)).await?;
    Ok(Response::view(
        200,
        &Events {
            events: rows.into_iter().map(EventView::from).collect(),
        },
    ))
}

/// `GET /v1/admin/identity[?user_id=]`: the site's identity-verification
/// secret, for its server to sign user ids with (`user_hash`), and the hash
/// of `user_id` when one is named (to check an implementation against).
pub async fn identity<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Serialize)]
    struct Example<'a> {
        user_id: &'a str,
        user_hash: String,
    }
    #[derive(Serialize)]
    struct Identity<'a> {
        identity_secret: String,
        user_hash: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        example: Option<Example<'a>>,
    }
    let view = Identity {
        identity_secret: a.ctx.identity_secret(a.site.id),
        user_hash: "hex HMAC-SHA256(identity_secret, user_id), sent as `user_hash` beside `user_id`",
        example: a.query("user_id").map(|user_id| Example {
            user_id,
            user_hash: a.ctx.user_hash(a.site.id, user_id),
        }),
    };
    Ok(Response::view(200, &view))
}

/// A line of the audit log.
#[derive(Serialize, Deserialize)]
struct AuditLine {
    action: String,
    target: String,
    /// JSON text, as written.
    detail: String,
    at: i64,
}

/// `GET /v1/admin/audit?limit=`.
pub async fn audit_log<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Serialize)]
    struct Entries {
        entries: Vec<AuditLine>,
    }
    let limit = a.limit(50, 500)?;
    let entries = a.rows(stmt!(sql::LIST_AUDIT, a.site.tenant_id, limit)).await?;
    Ok(Response::view(200, &Entries { entries }))
}
