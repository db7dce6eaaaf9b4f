//! A campaign's participants: search, a ledger as an audit trail,
//! corrections and rewards given by hand, the answers the edge gave them.

use super::{Admin, created_once, participant_target};
use crate::app::{Campaigns, Limiter, Reply};
use crate::body::{Points, Text};
use crate::campaign::Op;
use crate::db::{Db, Kv};
use serde::{Deserialize, Serialize};

/// `GET /v1/admin/campaigns/{campaign}/participants?q=&limit=`.
pub async fn search<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    searched(a, |q, limit| Op::Participants { q, limit }).await
}

/// `GET …/answers?q=&limit=`: what the edge answered the campaign's events.
pub async fn answers<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    searched(a, |q, limit| Op::Answers { q, limit }).await
}

/// A listing of the campaign's object searched by `q=`, at most `limit=`.
async fn searched<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    a: &Admin<'_, D, K, C, L>,
    op: impl FnOnce(String, u32) -> Op,
) -> Reply {
    let q = a.query("q").unwrap_or_default().to_owned();
    a.listing(50, 500, |limit| Ok(op(q, limit))).await
}

/// `GET …/participants/{participant}/ledger?limit=`; the object checks the
/// invariant (the kept score is the sum of the entries) on the way out.
pub async fn ledger<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    let participant = a.id("participant")?;
    a.listing(100, 1000, |limit| Ok(Op::Ledger { participant, limit }))
        .await
}

/// `POST …/participants/{participant}/adjustments`
/// `{points, note, idempotency_key?}`: an operator's correction, once per key.
pub async fn adjust<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    struct Adjust {
        points: Points,
        note: Text<500>,
        #[serde(skip_serializing)]
        idempotency_key: Option<Text<100>>,
    }
    let body: Adjust = a.body()?;
    once_per_key(
        a,
        "ledger.adjust",
        body.idempotency_key.clone(),
        &body,
        |participant, key| Op::Adjust {
            participant,
            points: body.points.0,
            note: body.note.0.clone(),
            key,
        },
    )
    .await
}

/// `POST …/participants/{participant}/grants` `{reward, note, idempotency_key?}`:
/// a reward given by hand (caps apply; audited with the operator's note).
pub async fn grant_by_hand<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    struct Grant {
        reward: Text<64>,
        note: Text<500>,
        #[serde(skip_serializing)]
        idempotency_key: Option<Text<100>>,
    }
    let body: Grant = a.body()?;
    once_per_key(
        a,
        "grant.manual",
        body.idempotency_key.clone(),
        &body,
        |participant, reward_key| Op::Grant {
            participant,
            reward: body.reward.0.clone(),
            key: reward_key,
        },
    )
    .await
}

/// A write to the path's participant, made once per idempotency key and
/// audited with the body and the key: `201` made now, `200` made before.
async fn once_per_key<D: Db, K: Kv, C: Campaigns, L: Limiter>(
    a: &Admin<'_, D, K, C, L>,
    action: &str,
    key: Option<Text<100>>,
    body: &impl Serialize,
    op: impl FnOnce(u64, String) -> Op,
) -> Reply {
    #[derive(Serialize)]
    struct Keyed<'a, B: Serialize> {
        #[serde(flatten)]
        body: &'a B,
        key: &'a str,
    }
    let key = a.idempotency_key(key);
    let (c, _) = a.campaign().await?;
    let participant = a.id("participant")?;
    let target = participant_target(&c.slug, participant);
    let detail = Keyed { body, key: &key };
    let answer = a
        .write(&c, op(participant, key.clone()), action, &target, detail, Vec::new())
        .await?;
    Ok(created_once(answer))
}
