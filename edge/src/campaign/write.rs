//! The write side's bookkeeping beside the engine: the notices kept in the
//! object's outbox (with what a receiver needs), the answers an operator
//! reads ("why didn't it count?"), the rest of an erasure, and the typed
//! answers of the write ops.

use super::{CampaignMeta, NOTICE_SCHEMA, internal};
use refloop_core::ApiError;
use refloop_core::engine::machine::{EngineEvent, Outcome};
use refloop_core::engine::model::{EntryReason, LedgerEntry, ParticipantId};
use refloop_core::engine::sql_store::Sql;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Notices as the worker queues them: (type, payload).
pub type Notices = Vec<(String, Value)>;

/// The campaign's tables for one purpose (`what`, named in its errors).
struct Tables<'a, C: Sql>(&'a C, &'static str);

impl<C: Sql> Tables<'_, C> {
    fn rows<T: serde::de::DeserializeOwned>(&self, q: &str, args: &[Value]) -> Result<Vec<T>, ApiError> {
        let what = self.1;
        self.0
            .exec(q, args)
            .map_err(|e| internal(format!("{what}: {e}")))?
            .into_iter()
            .map(|r| crate::db::typed(r).map_err(|e| internal(format!("{what}: {e}"))))
            .collect()
    }

    fn exec(&self, q: &str, args: &[Value]) -> Result<(), ApiError> {
        let what = self.1;
        self.0
            .exec(q, args)
            .map(|_| ())
            .map_err(|e| internal(format!("{what}: {e}")))
    }
}

/// Writes the answer's notices to the object's outbox and gives each its key.
pub(super) fn keep_notices(sql: &impl Sql, campaign: &CampaignMeta, answer: &mut Value) -> Result<(), ApiError> {
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let Some(notices) = answer.get_mut("notices").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for n in notices {
        let Some(kind) = n.get(0).and_then(Value::as_str).map(str::to_owned) else {
            continue;
        };
        enrich_notice(sql, &mut n[1])?;
        let id = Tables(sql, "outbox")
            .rows::<Id>(
                "INSERT INTO outbox (type, payload) VALUES (?1, '{}') RETURNING id",
                &[kind.into()],
            )?
            .first()
            .map_or(0, |r| r.id);
        n[1]["id"] = Value::String(format!("n-{}-{id}", campaign.id));
        Tables(sql, "outbox").exec(
            "UPDATE outbox SET payload = ?2 WHERE id = ?1",
            &[id.into(), n[1].to_string().into()],
        )?;
    }
    Ok(())
}

/// What a webhook receiver needs beside the engine's ids: each participant's
/// code and user id (`participant_code`, `referrer_user_id`, …) and a grant's
/// reward, status and token, read when the notice is made.
fn enrich_notice(sql: &impl Sql, payload: &mut Value) -> Result<(), ApiError> {
    #[derive(Deserialize)]
    struct Who {
        code: String,
        user_id: Option<String>,
    }
    #[derive(Deserialize)]
    struct Granted {
        reward_id: String,
        token: Option<String>,
        code: String,
        user_id: Option<String>,
    }
    let Value::Object(m) = payload else { return Ok(()) };
    m.insert("schema".into(), NOTICE_SCHEMA.into());
    for key in ["participant", "referrer", "referee"] {
        let Some(id) = m.get(key).and_then(Value::as_i64) else {
            continue;
        };
        let who: Vec<Who> =
            Tables(sql, "notice").rows("SELECT code, user_id FROM participants WHERE id = ?1", &[id.into()])?;
        if let Some(w) = who.into_iter().next() {
            m.insert(format!("{key}_code"), w.code.into());
            m.insert(format!("{key}_user_id"), w.user_id.into());
        }
    }
    if let Some(id) = m.get("grant").and_then(Value::as_i64) {
        let granted: Vec<Granted> = Tables(sql, "notice").rows(
            "SELECT g.reward_id, g.token, p.code, p.user_id FROM grants g
             JOIN participants p ON p.id = g.participant_id WHERE g.id = ?1",
            &[id.into()],
        )?;
        if let Some(g) = granted.into_iter().next() {
            m.insert("reward".into(), g.reward_id.into());
            m.insert("token".into(), g.token.into());
            m.insert("participant_code".into(), g.code.into());
            m.insert("participant_user_id".into(), g.user_id.into());
        }
    }
    Ok(())
}

/// Why an event did not count, kept for the operator's "why didn't my
/// referral count?": the refusal of its referral, the rewards a cap withheld.
pub(super) fn keep_answers(sql: &impl Sql, e: &EngineEvent, out: &Outcome) -> Result<(), ApiError> {
    let code = e
        .touch
        .as_ref()
        .and_then(|t| t.code.clone().or_else(|| t.invitation.clone()));
    let answers = out
        .refusal
        .map(|r| ("refused", r.as_str().to_owned()))
        .into_iter()
        .chain(out.capped.iter().map(|c| ("withheld", c.clone())));
    for (kind, reason) in answers {
        Tables(sql, "answers").exec("INSERT INTO answers (at, event_id, anonymous_id, user_id, code, kind, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &[
                e.at.into(),
                e.id.as_str().into(),
                e.anonymous_id.clone().into(),
                e.user_id.clone().into(),
                code.clone().into(),
                kind.into(),
                reason.into(),
            ],
        )?;
    }
    Ok(())
}

/// Every identity a participant had: (anonymous ids, user ids), read
/// before an erasure deletes them.
pub(super) fn identities_of(sql: &impl Sql, p: ParticipantId) -> Result<(Vec<String>, Vec<String>), ApiError> {
    #[derive(Deserialize)]
    struct Identity {
        kind: String,
        value: String,
    }
    let rows: Vec<Identity> = Tables(sql, "identities").rows(
        "SELECT kind, value FROM identities WHERE participant_id = ?1 ORDER BY kind, value",
        &[p.0.into()],
    )?;
    let (anonymous, users): (Vec<Identity>, Vec<Identity>) = rows.into_iter().partition(|r| r.kind == "anonymous");
    Ok((
        anonymous.into_iter().map(|r| r.value).collect(),
        users.into_iter().map(|r| r.value).collect(),
    ))
}

/// The rest of an erasure, beyond the engine's: every device's and user id's
/// trace in the input log (pseudonymised, traits and hashes removed), and
/// the free text written about them (adjustment notes in the ledger, grant
/// transition notes). The ledger's numbers stay, so every sum stays true.
pub(super) fn forget_everywhere(
    sql: &impl Sql,
    p: ParticipantId,
    anonymous: &[String],
    users: &[String],
) -> Result<(), ApiError> {
    let pseudonym = format!("erased:{}", p.0);
    for (field, values) in [("anonymous_id", anonymous), ("user_id", users)] {
        for value in values {
            Tables(sql, "erasure").exec(
                &format!(
                    "UPDATE inputs SET input = json_remove(json_set(input, '$.{field}', ?2),
                       '$.traits', '$.email_hash', '$.email_domain', '$.ip_hash', '$.device_id')
                     WHERE json_extract(input, '$.{field}') = ?1"
                ),
                &[value.as_str().into(), pseudonym.as_str().into()],
            )?;
        }
        let list = serde_json::to_string(values).unwrap_or_else(|_| "[]".into());
        Tables(sql, "erasure").exec(&format!(
                "UPDATE answers SET anonymous_id = NULL, user_id = NULL WHERE {field} IN (SELECT value FROM json_each(?1))"
            ),
            &[list.into()],
        )?;
    }
    Tables(sql, "erasure").exec(
        "UPDATE ledger SET reason = json_set(reason, '$.note', '[erased]')
         WHERE participant_id = ?1 AND json_extract(reason, '$.note') IS NOT NULL",
        &[p.0.into()],
    )?;
    Tables(sql, "erasure").exec(
        "UPDATE grant_transitions SET note = NULL
         WHERE note IS NOT NULL AND grant_id IN (SELECT id FROM grants WHERE participant_id = ?1)",
        &[p.0.into()],
    )
}

/// `Op::Click`: where the link sends the visitor.
#[derive(Serialize, Deserialize)]
pub struct Landing {
    pub landing_url: Option<String>,
    /// Why the code brings no referral (`retired_code`, `expired_code`): the
    /// visitor lands without it.
    #[serde(default)]
    pub refused: Option<String>,
}

/// `Op::SetCode`: the participant's code now, and the one it replaced.
#[derive(Serialize, Deserialize)]
pub struct CodeGiven {
    pub participant: u64,
    pub code: String,
    /// The retired code (none when the code was theirs already).
    pub previous_code: Option<String>,
    /// When the new code stops bringing referrals (`code_valid_days`).
    pub valid_until: Option<String>,
    /// The code was theirs already: nothing changed.
    pub duplicate: bool,
}

/// `Op::Invite`.
#[derive(Serialize)]
pub(super) struct Invited {
    pub token: String,
    pub expires_at: String,
}

/// `Op::Adjust`.
#[derive(Serialize)]
pub(super) struct Adjusted<'a> {
    pub participant: u64,
    pub points: i64,
    pub score: i64,
    pub idempotency_key: &'a str,
    pub duplicate: bool,
    pub notices: Notices,
}

/// `Op::Erase` (`participant`, `erased: true`) and `Op::ErasePerson`
/// (`erased`: the participants), with every identity they had.
#[derive(Serialize, Deserialize)]
pub struct Erased {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<u64>,
    pub erased: Value,
    pub anonymous_ids: Vec<String>,
    pub user_ids: Vec<String>,
}

/// `Op::Review`.
#[derive(Serialize)]
pub(super) struct Reviewed {
    pub referral: u64,
    pub approved: bool,
    /// Grants the review moved.
    pub grants: usize,
    pub notices: Notices,
}

/// `Op::Transition`: the grant as it is now.
#[derive(Serialize)]
pub(super) struct Moved {
    #[serde(flatten)]
    pub grant: super::read::GrantView,
    pub notices: Notices,
}

/// `Op::Grant`.
#[derive(Serialize)]
pub(super) struct Given {
    pub duplicate: bool,
    pub grant: Option<super::read::GrantView>,
    pub notices: Notices,
}

/// `Op::Redeem`: checked (`valid`) or redeemed.
#[derive(Serialize)]
pub(super) struct Redeemed {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redeemed: Option<bool>,
    pub grant: Option<super::read::GrantView>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Notices,
}

/// `Op::Tick`, and what the worker reads of any answer: its notices.
#[derive(Serialize, Deserialize)]
pub struct Noticed {
    #[serde(default)]
    pub notices: Notices,
}

/// `Op::End`.
#[derive(Serialize, Deserialize)]
pub struct Ended {
    /// As text: JavaScript cannot hold every u64.
    pub seed: String,
    pub grants: Vec<u64>,
    /// The first `ENDED_SHOWN` of them: who got what.
    #[serde(default)]
    pub awarded: Vec<Value>,
    pub capped: Vec<String>,
    /// Nothing was kept: this is what ending now with this seed would do.
    #[serde(default)]
    pub preview: bool,
    pub notices: Notices,
}

/// Grants of an end shown whole in its answer (all are counted in `grants`).
pub const ENDED_SHOWN: usize = 100;

/// `Op::Outbox`: the notices (type, payload) up to `through`.
#[derive(Serialize, Deserialize)]
pub struct Outboxed {
    pub notices: Vec<(String, Value)>,
    pub through: i64,
}

/// `Op::OutboxSent`.
#[derive(Serialize)]
pub(super) struct Through {
    pub through: i64,
}

#[derive(Serialize)]
struct Correction {
    participant: u64,
    points: i64,
    corrects: String,
}

/// What a replay answers: the corrections it found (and appended, if asked).
#[derive(Serialize)]
pub(super) struct Replayed<'a> {
    version: u32,
    replay: &'a str,
    applied: bool,
    inputs: usize,
    points: i64,
    corrections: Vec<Correction>,
}

pub(super) fn replayed<'a>(
    fixes: &[LedgerEntry],
    replay: &'a str,
    version: u32,
    applied: bool,
    inputs: usize,
) -> Replayed<'a> {
    Replayed {
        version,
        replay,
        applied,
        inputs,
        points: fixes.iter().map(|f| f.points).sum(),
        corrections: fixes
            .iter()
            .map(|f| Correction {
                participant: f.participant.0,
                points: f.points,
                corrects: match &f.reason {
                    EntryReason::Correction { corrects, .. } => corrects.clone(),
                    _ => String::new(),
                },
            })
            .collect(),
    }
}

/// The outbox's next page (oldest first).
pub(super) fn outbox_page(sql: &impl Sql, page: usize) -> Result<Outboxed, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: i64,
        #[serde(rename = "type")]
        kind: String,
        payload: String,
    }
    let rows: Vec<Row> = Tables(sql, "outbox").rows(
        "SELECT id, type, payload FROM outbox ORDER BY id LIMIT ?1",
        &[page.into()],
    )?;
    Ok(Outboxed {
        through: rows.last().map_or(0, |r| r.id),
        notices: rows
            .into_iter()
            .map(|r| (r.kind, serde_json::from_str(&r.payload).unwrap_or(Value::Null)))
            .collect(),
    })
}

/// Whether this visitor's click on `code` is their first today (the same
/// visitor's clicks on one code count once a day).
pub(super) fn first_click_today(sql: &impl Sql, code: &str, visitor: &str, day: i64) -> Result<bool, ApiError> {
    #[derive(Deserialize)]
    struct Day {
        #[allow(dead_code)]
        day: i64,
    }
    let new: Vec<Day> = Tables(sql, "clicks").rows(
        "INSERT INTO click_visitors (code, visitor, day) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING RETURNING day",
        &[code.into(), visitor.into(), day.into()],
    )?;
    Ok(!new.is_empty())
}

/// Where a referral came from (`utm_source`, a click id's kind, …).
pub(super) fn keep_source(sql: &impl Sql, referral: u64, source: &str) -> Result<(), ApiError> {
    Tables(sql, "sources").exec(
        "INSERT INTO referral_sources (referral_id, source) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        &[referral.into(), source.into()],
    )
}

/// Visitor-day click marks older than yesterday are of no use.
pub(super) fn forget_old_clicks(sql: &impl Sql, before_day: i64) -> Result<(), ApiError> {
    Tables(sql, "clicks").exec("DELETE FROM click_visitors WHERE day < ?1", &[before_day.into()])
}

/// The outbox up to `through` reached the directory.
pub(super) fn outbox_sent(sql: &impl Sql, through: i64) -> Result<(), ApiError> {
    Tables(sql, "outbox").exec("DELETE FROM outbox WHERE id <= ?1", &[through.into()])
}
