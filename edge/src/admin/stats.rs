//! What an operator reads of a campaign: snapshots of its boards, the
//! funnel, money, sources, the daily trend and the CSV export.

use super::{Admin, campaign_target};
use crate::app::{Campaigns, Limiter, Reply, Response, internal, invalid};
use crate::campaign::Op;
use crate::db::{Db, Kv};
use refloop_core::ApiError;
use refloop_core::engine::config::Period;
use refloop_core::engine::model::DAY_MS;
use refloop_core::time::parse_rfc3339_ms;
use serde::{Deserialize, Serialize};

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

/// A row of the campaign object's export.
#[derive(Deserialize)]
struct Exported {
    id: i64,
    code: Option<String>,
    user_id: Option<String>,
    joined_at: Option<i64>,
    confirmed: i64,
    score: i64,
    rank: Option<i64>,
    #[serde(default)]
    erased: i64,
}

#[derive(Deserialize)]
struct Export {
    rows: Vec<Exported>,
}

const EXPORT_HEADER: [&str; 8] = [
    "participant_id",
    "code",
    "user_id",
    "joined_at",
    "confirmed_referrals",
    "points",
    "rank",
    "erased",
];

/// A CSV line of the export, in `EXPORT_HEADER`'s order.
#[derive(Serialize)]
struct Line {
    participant_id: i64,
    code: String,
    user_id: String,
    joined_at: String,
    confirmed_referrals: i64,
    points: i64,
    rank: Option<i64>,
    erased: bool,
}

/// Text a spreadsheet would run as a formula starts with a quote instead.
fn inert(s: Option<String>) -> String {
    match s {
        Some(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{s}"),
        s => s.unwrap_or_default(),
    }
}

/// `GET …/export.csv`: every participant with points, referrals and rank.
pub async fn export<D: Db, K: Kv, C: Campaigns, L: Limiter>(a: &Admin<'_, D, K, C, L>) -> Reply {
    let (c, _) = a.campaign().await?;
    let export: Export = serde_json::from_value(a.ask(&c, Op::Export).await?).map_err(internal)?;
    let mut out = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    // The header even when no one has joined yet.
    out.write_record(EXPORT_HEADER).map_err(internal)?;
    for r in export.rows {
        out.serialize(Line {
            participant_id: r.id,
            code: inert(r.code),
            user_id: inert(r.user_id),
            joined_at: r.joined_at.map(crate::app::iso).unwrap_or_default(),
            confirmed_referrals: r.confirmed,
            points: r.score,
            rank: r.rank,
            erased: r.erased != 0,
        })
        .map_err(internal)?;
    }
    let body = out.into_inner().map_err(internal)?;
    Ok(Response {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "text/csv; charset=utf-8".into()),
            (
                "Content-Disposition".into(),
                format!("attachment; filename=\"{}.csv\"", c.slug),
            ),
            ("Cache-Control".into(), "no-store".into()),
        ],
        body: String::from_utf8(body).map_err(internal)?,
    })
}
