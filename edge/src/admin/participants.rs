//! A campaign's participants: search, a ledger as an audit trail,
//! corrections and rewards given by hand, the answers the edge gave them.

use super::{Admin, created_once, participant_target};
use crate::app::{Campaigns, Limiter, Reply, Response, db_error};
use crate::body::{Points, Text};
use crate::campaign::{CodeGiven, Op};
use crate::db::{Db, Kv};
use crate::{sql, stmt};
use refloop_core::engine::machine::{VANITY_CODE_LEN, valid_vanity_code};
use refloop_core::engine::rewards::CODE_ALPHABET;
use serde::{Deserialize, Serialize};

/// `GET /v1/admin/campaigns/{campaign}/participants?q=&limit=`.
pub async fn search<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    searched(a, |q, limit| Op::Participants { q, limit }).await
}

/// `GET …/answers?q=&limit=`: what the edge answered the campaign's events;
/// `q` an anonymous id, user id or code, or an email (looked up by its keyed
/// hash, as the edge keeps it: the address itself is never stored).
pub async fn answers<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    let email_hash = a
        .query("q")
        .filter(|q| q.contains('@'))
        .and_then(refloop_core::email::email_sha256)
        .map(|digest| a.ctx.salted(&digest));
    searched(a, |q, limit| Op::Answers { q, limit, email_hash }).await
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

/// An operator's write to a participant: what (`T`), the operator's note,
/// and the key that makes it once.
#[derive(Deserialize, Serialize)]
struct ByHand<T> {
    #[serde(flatten)]
    what: T,
    note: Text<500>,
    #[serde(skip_serializing)]
    idempotency_key: Option<Text<100>>,
    /// Whatever else the body held: refused (serde cannot deny unknown
    /// fields beside a flattened one).
    #[serde(flatten, skip_serializing)]
    rest: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize, Serialize)]
struct Adjustment {
    points: Points,
}

#[derive(Deserialize, Serialize)]
struct Reward {
    reward: Text<64>,
}

/// `POST …/participants/{participant}/adjustments`
/// `{points, note, idempotency_key?}`: an operator's correction, once per key.
pub async fn adjust<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    once_per_key(a, "ledger.adjust", |body: &ByHand<Adjustment>, participant, key| {
        Op::Adjust {
            participant,
            points: body.what.points.0,
            note: body.note.0.clone(),
            key,
        }
    })
    .await
}

/// `POST …/participants/{participant}/grants` `{reward, note, idempotency_key?}`:
/// a reward given by hand (caps apply; audited with the operator's note).
pub async fn grant_by_hand<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    once_per_key(a, "grant.manual", |body: &ByHand<Reward>, participant, key| Op::Grant {
        participant,
        reward: body.what.reward.0.clone(),
        key,
    })
    .await
}

/// A write to the path's participant, made once per idempotency key and
/// audited with the body and the key: `201` made now, `200` made before.
async fn once_per_key<D: Db, K: Kv, C: Campaigns, L: Limiter, T: serde::de::DeserializeOwned + Serialize>(
    a: &Admin<'_, D, K, C, L>,
    action: &str,
    op: impl FnOnce(&ByHand<T>, u64, String) -> Op,
) -> Reply {
    #[derive(Serialize)]
    struct Keyed<'a, B: Serialize> {
        #[serde(flatten)]
        body: &'a B,
        key: &'a str,
    }
    let body: ByHand<T> = a.body()?;
    if let Some(field) = body.rest.keys().next() {
        return Err(crate::app::invalid(format!("`{field}`: unknown field")));
    }
    let key = a.idempotency_key(body.idempotency_key.clone());
    let (c, _) = a.campaign().await?;
    let participant = a.id("participant")?;
    let target = participant_target(&c.slug, participant);
    let write = op(&body, participant, key.clone());
    let detail = Keyed { body: &body, key: &key };
    let answer = a.write(&c, write, action, &target, detail, Vec::new()).await?;
    Ok(created_once(answer))
}

/// `POST …/participants/{participant}/code` `{code?}`: a new referral code
/// for the participant, the vanity `code` asked for (4 to 20 characters of
/// the codes' alphabet, any case) or a fresh random one. Their old code is
/// retired: it never names anyone again, and a visitor who follows it lands
/// on the site without a referral. The directory learns the new code in the
/// same request.
pub async fn set_code<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NewCode {
        code: Option<Text<20>>,
    }
    #[derive(Serialize)]
    struct Detail<'a> {
        code: &'a str,
        previous_code: Option<&'a str>,
    }
    let body: NewCode = a.body()?;
    let vanity = body.code.map(|c| c.0.trim().to_ascii_uppercase());
    if let Some(v) = &vanity
        && !valid_vanity_code(v)
    {
        return Err(crate::app::invalid(format!(
            "code: {} to {} characters of {} (no 0, O, I, 1 or L)",
            VANITY_CODE_LEN.start(),
            VANITY_CODE_LEN.end(),
            String::from_utf8_lossy(CODE_ALPHABET)
        )));
    }
    let (c, _) = a.campaign().await?;
    let participant = a.id("participant")?;
    let answer = a
        .ask(
            &c,
            Op::SetCode {
                participant,
                code: vanity,
            },
        )
        .await?;
    let given = CodeGiven::deserialize(&answer).map_err(crate::app::internal)?;
    let target = participant_target(&c.slug, participant);
    let stmts = vec![
        stmt!(sql::INSERT_LINK, given.code.as_str(), c.id, "code"),
        a.audit(
            "participant.code",
            &target,
            Detail {
                code: &given.code,
                previous_code: given.previous_code.as_deref(),
            },
        ),
    ];
    a.ctx.db.batch(stmts).await.map_err(db_error)?;
    Ok(Response::view(200, &given))
}
