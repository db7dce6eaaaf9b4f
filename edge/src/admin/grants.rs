//! Grants: the list, the lifecycle moved by hand, and redemption of a
//! checkout's coupon or exchange token.

use super::Admin;
use crate::app::{Campaigns, Limiter, Reply, Response};
use crate::body::{Note, Text};
use crate::campaign::Op;
use crate::db::{Db, Kv};
use refloop_core::engine::rewards::GrantStatus;
use serde::{Deserialize, Serialize};

/// `GET …/grants?status=&limit=`.
pub async fn list<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    let status = super::variant::<GrantStatus>(a.query("status"), "status")?;
    a.listing(50, 500, |limit| Ok(Op::Grants { status, limit })).await
}

/// `POST …/grants/{grant}/transitions` `{to, note?}`: moves a grant along its
/// lifecycle; approval pays a points reward into the ledger, revocation
/// takes it back.
pub async fn transition<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Transition {
        to: GrantStatus,
        note: Option<Note<500>>,
    }
    #[derive(Serialize)]
    struct Detail {
        to: GrantStatus,
    }
    let body: Transition = a.body()?;
    let (c, _) = a.campaign().await?;
    let grant = a.id("grant")?;
    let op = Op::Transition {
        grant,
        to: body.to,
        note: body.note.map(|n| n.0),
    };
    let target = format!("grant:{grant}");
    let answer = a
        .write(&c, op, "grant.transition", &target, Detail { to: body.to }, Vec::new())
        .await?;
    Ok(Response::value(200, &answer))
}

/// `POST /v1/admin/campaigns/{campaign}/redeem` `{token, check?}`: a
/// checkout's coupon or exchange token, checked (`check: true`, nothing
/// changes) or redeemed once (the grant becomes `redeemed`; again: 409).
pub async fn redeem<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Redeem {
        token: Text<64>,
        #[serde(default)]
        check: bool,
    }
    #[derive(Serialize)]
    struct Detail<'a> {
        token: &'a str,
    }
    let body: Redeem = a.body()?;
    let (c, _) = a.campaign().await?;
    let op = Op::Redeem {
        token: body.token.0.clone(),
        check: body.check,
    };
    let answer = match body.check {
        true => a.ask(&c, op).await?,
        false => {
            let target = format!("campaign:{}/token", c.slug);
            let detail = Detail {
                token: body.token.as_str(),
            };
            a.write(&c, op, "grant.redeem", &target, detail, Vec::new()).await?
        }
    };
    Ok(Response::value(200, &answer))
}
