//! `/v1/admin/…`: what an operator does with the secret key (and, with the
//! root key, what the edge's own operator does). One module per resource;
//! each handler receives an `Admin`: the request, its site, and the means
//! every write shares (the campaign it names, the audit line, the
//! campaign's decision followed by one D1 transaction).

pub mod campaigns;
pub mod check;
pub mod grants;
pub mod participants;
pub mod people;
pub mod program;
pub mod referrals;
pub mod site;
pub mod sites;
pub mod stats;
pub mod tenants;
pub mod webhooks;

use crate::app::{Campaigns, Limiter, Reply, Response, WithSite, db_error, invalid};
use crate::campaign::Op;
use crate::db::{Db, Kv, Stmt};
use crate::directory::{CampaignRow, call, notice_statements};
use crate::sql;
use crate::stmt;
use refloop_core::ApiError;
use refloop_core::engine::config::Versioned;
use serde::Serialize;
use serde_json::Value;

/// A request of a site's server (`Auth::Secret`): its site is known.
pub type Admin<'a, D, K, C, L> = WithSite<'a, D, K, C, L>;

/// What every operator's request shares.
impl<D: Db, K: Kv, C: Campaigns, L: Limiter> WithSite<'_, D, K, C, L> {
    pub fn now(&self) -> i64 {
        self.ctx.now
    }

    /// The campaign of the path's `{campaign}` (slug or id), of this tenant.
    pub async fn campaign(&self) -> Result<(CampaignRow, Versioned), ApiError> {
        crate::directory::campaign_of(self.ctx, self.site.tenant_id, self.path("campaign")).await
    }

    /// A query's rows, each read into `T`.
    pub async fn rows<T: serde::de::DeserializeOwned>(&self, stmt: Stmt) -> Result<Vec<T>, ApiError> {
        crate::db::query_as(self.ctx.db, stmt).await.map_err(db_error)
    }

    /// A listing the campaign's object answers, of at most `limit=` rows
    /// (`default`, at most `max`).
    pub async fn listing(&self, default: u32, max: u32, op: impl FnOnce(u32) -> Result<Op, ApiError>) -> Reply {
        let (c, _) = self.campaign().await?;
        let op = op(self.limit(default, max)?)?;
        Ok(Response::value(200, &self.ask(&c, op).await?))
    }

    /// One call to a campaign's object.
    pub async fn ask(&self, c: &CampaignRow, op: Op) -> Result<Value, ApiError> {
        call(self.ctx, c, op).await
    }

    /// The audit line of a write, for the write's own transaction.
    pub fn audit(&self, action: &str, target: &str, detail: impl Serialize) -> Stmt {
        audit(self.site.tenant_id, action, target, detail, self.now())
    }

    /// A write of an operator's: the campaign decides, then the audit line
    /// and the notices go to D1 in one transaction. The answer without its
    /// notices.
    pub async fn write(
        &self,
        c: &CampaignRow,
        op: Op,
        action: &str,
        target: &str,
        detail: impl Serialize,
        more: Vec<Stmt>,
    ) -> Result<Value, ApiError> {
        let mut answer = self.ask(c, op).await?;
        let mut stmts = notice_statements(&c.meta(), &answer, self.now());
        stmts.extend(more);
        stmts.push(self.audit(action, target, detail));
        self.ctx.db.batch(stmts).await.map_err(db_error)?;
        if let Value::Object(m) = &mut answer {
            m.remove("notices");
        }
        Ok(answer)
    }

    /// An operator's write is made once per key: the body's `idempotency_key`,
    /// the `Idempotency-Key` header, or (neither) one of its own.
    pub fn idempotency_key(&self, from_body: Option<crate::body::Text<100>>) -> String {
        match from_body {
            Some(k) => k.0,
            None => self
                .req
                .header("idempotency-key")
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{}:{}", self.now(), self.ctx.seed)),
        }
    }
}

/// An audit line: who did what to which, when.
pub fn audit(tenant: i64, action: &str, target: &str, detail: impl Serialize, at: i64) -> Stmt {
    let detail = serde_json::to_string(&detail).unwrap_or_else(|_| "{}".into());
    stmt!(sql::AUDIT, tenant, action, target, detail, at)
}

/// `201` for a write made now, `200` for one its key had made before.
pub fn created_once(answer: Value) -> Response {
    #[derive(serde::Deserialize)]
    struct Once {
        #[serde(default)]
        duplicate: bool,
    }
    let status = if <Once as serde::Deserialize>::deserialize(&answer).is_ok_and(|o| o.duplicate) {
        200
    } else {
        201
    };
    Response::value(status, &answer)
}

/// The audit target of what was done to a participant of a campaign.
pub fn participant_target(slug: &str, participant: u64) -> String {
    format!("campaign:{slug}/participant:{participant}")
}

/// The audit target of a campaign.
pub fn campaign_target(slug: &str) -> String {
    format!("campaign:{slug}")
}

/// A query parameter naming a variant of the enum `T` by its serde name
/// (absent: empty, meaning any); an unknown one says which there are.
pub fn variant<T: serde::de::DeserializeOwned>(value: Option<&str>, name: &str) -> Result<String, ApiError> {
    match value {
        None => Ok(String::new()),
        Some(v) => match serde_json::from_value::<T>(Value::String(v.to_owned())) {
            Ok(_) => Ok(v.to_owned()),
            Err(e) => Err(invalid(format!("`{name}`: {e}"))),
        },
    }
}
