//! A campaign's referrals, and the review of the ones fraud checks flagged.

use super::{Admin, variant};
use crate::app::{Campaigns, Limiter, Reply, Response};
use crate::campaign::Op;
use crate::db::{Db, Kv};
use refloop_core::engine::model::{ReferralStatus, Review};
use serde::{Deserialize, Serialize};

/// `GET …/referrals?status=&review=&limit=`.
pub async fn list<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    let status = variant::<ReferralStatus>(a.query("status"), "status")?;
    let review = variant::<Review>(a.query("review"), "review")?;
    a.listing(50, 500, |limit| Ok(Op::Referrals { status, review, limit }))
        .await
}

/// `POST …/referrals/{referral}/review` `{approve}` on a flagged referral.
pub async fn review<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Review {
        approve: bool,
    }
    #[derive(Serialize)]
    struct Detail {}
    let body: Review = a.body()?;
    let (c, _) = a.campaign().await?;
    let referral = a.id("referral")?;
    let action = if body.approve {
        "referral.approve"
    } else {
        "referral.reject"
    };
    let op = Op::Review {
        referral,
        approve: body.approve,
    };
    let target = format!("referral:{referral}");
    let answer = a.write(&c, op, action, &target, Detail {}, Vec::new()).await?;
    Ok(Response::value(200, &answer))
}
