//! Running a program to its end: the end with its distributions, and the
//! replay of every input under another configuration.

use super::{Admin, campaign_target};
use crate::app::{Campaigns, Limiter, Reply, Response};
use crate::body::Seed;
use crate::campaign::Op;
use crate::db::{Db, Kv};
use crate::sql;
use crate::stmt;
use serde::{Deserialize, Serialize};

/// The audit detail of a campaign's end, by an operator or by its `ends_at`.
#[derive(Serialize)]
pub struct Ended<'a> {
    /// As text: JavaScript cannot hold every u64.
    pub seed: String,
    pub grants: &'a [u64],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<&'static str>,
}

/// `POST /v1/admin/campaigns/{campaign}/end` `{seed?, preview?}`: the
/// campaign ends now (status `ended`), its end distributions run (top N, min
/// score, min referrals, raffle with the recorded seed) and the grants are
/// returned. With `preview` they run and are answered, then rolled back:
/// who would get what if it ended now (with `seed`, the same raffle winners
/// the real end will draw with that seed).
pub async fn end<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct End {
        seed: Option<Seed>,
        #[serde(default)]
        preview: bool,
    }
    let body: End = a.body()?;
    let seed = body.seed.map_or(a.ctx.seed >> 11, |s| s.0);
    let (c, _) = a.campaign().await?;
    if body.preview {
        if c.status == "ended" {
            return Err(refloop_core::ApiError::new(
                refloop_core::ErrorCode::Conflict,
                "the campaign has already ended",
            ));
        }
        let answer = a.ask(&c, Op::End { seed, preview: true }).await?;
        return Ok(Response::value(200, &answer));
    }
    let answer = a.ask(&c, Op::End { seed, preview: false }).await?;
    let mut stmts = crate::directory::notice_statements(&c.meta(), &answer, a.now());
    let mut ended: crate::campaign::Ended = serde_json::from_value(answer).map_err(crate::app::internal)?;
    stmts.push(stmt!(sql::SET_CAMPAIGN_STATUS, c.id, "ended", a.now()));
    let detail = Ended {
        seed: seed.to_string(),
        grants: &ended.grants,
        by: None,
    };
    stmts.push(a.audit("campaign.end", &campaign_target(&c.slug), detail));
    a.ctx.db.batch(stmts).await.map_err(crate::app::db_error)?;
    // This isolate's next batch sees the change at once.
    crate::ingest::forget_campaigns(a.site.tenant_id);
    ended.notices.clear();
    Ok(Response::view(200, &ended))
}

/// `POST /v1/admin/campaigns/{campaign}/replay` `{version, apply?}`: every
/// input of the campaign run again under configuration `version`; without
/// `apply` a preview of the correcting entries, with it they are appended
/// (never an edit). Running the same replay again corrects nothing more.
pub async fn replay<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Replay {
        version: crate::body::Version,
        #[serde(default)]
        apply: bool,
    }
    #[derive(Serialize)]
    struct Detail {
        version: u32,
    }
    let body: Replay = a.body()?;
    let version = body.version.0 as u32;
    let (c, _) = a.campaign().await?;
    let op = Op::Replay {
        version,
        apply: body.apply,
    };
    let answer = match body.apply {
        false => a.ask(&c, op).await?,
        true => {
            let target = campaign_target(&c.slug);
            a.write(&c, op, "campaign.replay", &target, Detail { version }, Vec::new())
                .await?
        }
    };
    Ok(Response::value(200, &answer))
}
