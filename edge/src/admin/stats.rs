//! What an operator reads of a campaign: snapshots of its boards, the
//! funnel, money, sources, the daily trend and the CSV export.

use super::{Admin, campaign_target};
use crate::app::iso;
use crate::app::{Campaigns, Limiter, Reply, Response, internal, invalid};
use crate::campaign::{ExportOf, ExportRow, ExportRows, GrantExportRow, Op, ReferralExportRow};
use crate::db::{Db, Kv};
use refloop_core::ApiError;
use refloop_core::engine::config::Period;
use refloop_core::engine::model::DAY_MS;
use refloop_core::time::parse_rfc3339_ms;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET …/snapshots?limit=`.
pub async fn snapshots<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    a.listing(20, 100, |limit| Ok(Op::Snapshots { limit })).await
}

/// `POST …/snapshots` `{period?}`: the board of `period` kept as it is now.
pub async fn take_snapshot<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Take {
        #[serde(default = "all")]
        period: Period,
    }
    fn all() -> Period {
        Period::All
    }
    #[derive(Serialize)]
    struct Detail {}
    let body: Take = a.body()?;
    let (c, _) = a.campaign().await?;
    let op = Op::Snapshot { period: body.period };
    let answer = a
        .write(
            &c,
            op,
            "snapshot.take",
            &campaign_target(&c.slug),
            Detail {},
            Vec::new(),
        )
        .await?;
    Ok(Response::value(201, &answer))
}

/// `GET …/stats/funnel`.
pub async fn funnel<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    let (c, _) = a.campaign().await?;
    Ok(Response::value(200, &a.ask(&c, Op::Funnel).await?))
}

/// `GET …/stats/money`: rewards' value by currency and status, and the budget.
pub async fn money<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    let (c, _) = a.campaign().await?;
    Ok(Response::value(200, &a.ask(&c, Op::Money).await?))
}

/// `GET …/stats/sources`: referrals by the channel they came through.
pub async fn sources<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    let (c, _) = a.campaign().await?;
    Ok(Response::value(200, &a.ask(&c, Op::Sources).await?))
}

/// The longest span a trend covers.
const MAX_TREND_DAYS: i64 = 366;

/// `GET …/stats/trend?from=&to=`: clicks, signups and confirmations a day
/// (the last 30 days by default).
pub async fn trend<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    let (c, _) = a.campaign().await?;
    let time = |k: &str, default: i64| -> Result<i64, ApiError> {
        match a.query(k) {
            None => Ok(default),
            Some(v) => parse_rfc3339_ms(v)
                .or_else(|| parse_rfc3339_ms(&format!("{v}T00:00:00Z")))
                .ok_or_else(|| invalid(format!("`{k}` must be a date (2026-11-01) or an RFC 3339 time"))),
        }
    };
    let to = time("to", a.now())?;
    let from = time("from", to - 29 * DAY_MS)?;
    if from > to || to - from > MAX_TREND_DAYS * DAY_MS {
        return Err(invalid("`from` must come before `to`, at most a year apart"));
    }
    Ok(Response::value(200, &a.ask(&c, Op::Trend { from, to }).await?))
}

/// A participant's CSV line.
#[derive(Serialize)]
struct ParticipantLine {
    participant_id: i64,
    code: String,
    user_id: String,
    joined_at: String,
    confirmed_referrals: i64,
    points: i64,
    rank: Option<i64>,
    erased: bool,
}

impl From<ExportRow> for ParticipantLine {
    fn from(r: ExportRow) -> Self {
        ParticipantLine {
            participant_id: r.id,
            code: inert(Some(r.code)),
            user_id: inert(r.user_id),
            joined_at: iso(r.joined_at),
            confirmed_referrals: r.confirmed,
            points: r.score,
            rank: r.rank,
            erased: r.erased != 0,
        }
    }
}

/// A referral's CSV line.
#[derive(Serialize)]
struct ReferralLine {
    referral_id: i64,
    referrer_id: i64,
    referrer_code: String,
    referee_id: i64,
    referee_code: String,
    status: String,
    review: String,
    reason: String,
    via: String,
    source: String,
    created_at: String,
    confirmed_at: String,
    config_version: i64,
}

impl From<ReferralExportRow> for ReferralLine {
    fn from(r: ReferralExportRow) -> Self {
        ReferralLine {
            referral_id: r.id,
            referrer_id: r.referrer_id,
            referrer_code: inert(Some(r.referrer_code)),
            referee_id: r.referee_id,
            referee_code: inert(Some(r.referee_code)),
            status: r.status,
            review: r.review,
            reason: inert(r.reason),
            via: r.via,
            // Where the signup came from, as the campaign kept it (tags a
            // page could write: neutralised like any text).
            source: inert(r.source),
            created_at: iso(r.created_at),
            confirmed_at: r.confirmed_at.map(iso).unwrap_or_default(),
            config_version: r.config_version,
        }
    }
}

/// A grant's CSV line.
#[derive(Serialize)]
struct GrantLine {
    grant_id: i64,
    participant_id: i64,
    code: String,
    user_id: String,
    reward: String,
    status: String,
    token: String,
    source: String,
    value_minor: Option<i64>,
    currency: String,
    earned_at: String,
    expires_at: String,
}

impl From<GrantExportRow> for GrantLine {
    fn from(r: GrantExportRow) -> Self {
        GrantLine {
            grant_id: r.id,
            participant_id: r.participant_id,
            code: inert(Some(r.code)),
            user_id: inert(r.user_id),
            reward: inert(Some(r.reward_id)),
            status: r.status,
            token: inert(r.token),
            source: inert(Some(r.source)),
            value_minor: r.value_minor,
            currency: inert(r.currency),
            earned_at: iso(r.earned_at),
            expires_at: r.expires_at.map(iso).unwrap_or_default(),
        }
    }
}

/// The CSV of an export's rows: the header (even with no rows, so a
/// spreadsheet still knows the columns), then a line per row.
fn csv_of<R: DeserializeOwned, L: Serialize + From<R>>(header: &[&str], answer: Value) -> Result<String, ApiError> {
    let rows: ExportRows<R> = serde_json::from_value(answer).map_err(internal)?;
    let mut out = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    out.write_record(header).map_err(internal)?;
    for r in rows.rows {
        out.serialize(L::from(r)).map_err(internal)?;
    }
    String::from_utf8(out.into_inner().map_err(internal)?).map_err(internal)
}

/// Text a spreadsheet would run as a formula starts with a quote instead.
fn inert(s: Option<String>) -> String {
    match s {
        Some(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{s}"),
        s => s.unwrap_or_default(),
    }
}

/// `GET …/export.csv?of=participants|referrals|grants`: every participant
/// with points, referrals and rank; every referral with both parties and its
/// source; or every grant with its status and token. The campaign reads it
/// in pages (one query a page), at most `EXPORT_MAX` rows.
pub async fn export<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    let of: ExportOf = match a.query("of") {
        None => ExportOf::default(),
        Some(v) => serde_json::from_value(Value::String(v.to_owned())).map_err(|e| invalid(format!("`of`: {e}")))?,
    };
    let (c, _) = a.campaign().await?;
    let answer = a.ask(&c, Op::Export { of }).await?;
    let (body, name) = match of {
        ExportOf::Participants => (
            csv_of::<ExportRow, ParticipantLine>(
                &[
                    "participant_id",
                    "code",
                    "user_id",
                    "joined_at",
                    "confirmed_referrals",
                    "points",
                    "rank",
                    "erased",
                ],
                answer,
            )?,
            c.slug.clone(),
        ),
        ExportOf::Referrals => (
            csv_of::<ReferralExportRow, ReferralLine>(
                &[
                    "referral_id",
                    "referrer_id",
                    "referrer_code",
                    "referee_id",
                    "referee_code",
                    "status",
                    "review",
                    "reason",
                    "via",
                    "source",
                    "created_at",
                    "confirmed_at",
                    "config_version",
                ],
                answer,
            )?,
            format!("{}-referrals", c.slug),
        ),
        ExportOf::Grants => (
            csv_of::<GrantExportRow, GrantLine>(
                &[
                    "grant_id",
                    "participant_id",
                    "code",
                    "user_id",
                    "reward",
                    "status",
                    "token",
                    "source",
                    "value_minor",
                    "currency",
                    "earned_at",
                    "expires_at",
                ],
                answer,
            )?,
            format!("{}-grants", c.slug),
        ),
    };
    Ok(Response {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "text/csv; charset=utf-8".into()),
            (
                "Content-Disposition".into(),
                format!("attachment; filename=\"{name}.csv\""),
            ),
            ("Cache-Control".into(), "no-store".into()),
        ],
        body,
    })
}
