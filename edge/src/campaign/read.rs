//! The read side of a campaign: the API's views of its tables. Rows are read
//! into their types (`View::rows_as`), views are `Serialize` structs.

use super::{DAY_MS, internal, masked_name, not_found};
use refloop_core::ApiError;
use refloop_core::engine::config::{CampaignConfig, Period, ScoreBy, Versioned};
use refloop_core::engine::model::{Millis, ParticipantId};
use refloop_core::engine::quest;
use refloop_core::engine::rewards::times_reached;
use refloop_core::engine::sql_store::{Sql, period_key};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub(super) struct View<'a, C: Sql> {
    pub sql: &'a C,
    pub versions: &'a [Versioned],
    pub campaign: &'a super::CampaignMeta,
    pub now: Millis,
}

/// A time the contract writes (RFC 3339).
fn iso(ms: i64) -> String {
    crate::app::iso(ms)
}

/// JSON the tables keep as text, as JSON again.
fn json_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// A participant's row (`SELECT * FROM participants`).
#[derive(Deserialize)]
pub(super) struct ParticipantRow {
    pub id: i64,
    pub code: String,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub joined_at: i64,
    pub confirmed: i64,
    pub score: i64,
    pub traits: String,
    pub erased: i64,
}

/// A participant as the admin API shows one.
#[derive(Serialize)]
pub(super) struct ParticipantView {
    id: i64,
    code: String,
    user_id: Option<String>,
    anonymous_id: Option<String>,
    joined_at: String,
    confirmed_referrals: i64,
    points: i64,
    traits: Value,
    erased: bool,
}

impl From<&ParticipantRow> for ParticipantView {
    fn from(r: &ParticipantRow) -> Self {
        ParticipantView {
            id: r.id,
            code: r.code.clone(),
            user_id: r.user_id.clone(),
            anonymous_id: r.anonymous_id.clone(),
            joined_at: iso(r.joined_at),
            confirmed_referrals: r.confirmed,
            points: r.score,
            traits: json_text(&r.traits),
            erased: r.erased != 0,
        }
    }
}

#[derive(Deserialize)]
struct Count {
    n: i64,
}

#[derive(Serialize)]
struct Milestone<'a> {
    id: &'a str,
    name: Option<&'a str>,
    at: u32,
    every: Option<u32>,
    reached: bool,
}

#[derive(Serialize)]
struct NextMilestone<'a> {
    id: &'a str,
    name: Option<&'a str>,
    at: u32,
    remaining: u32,
}

#[derive(Serialize)]
struct Step<'a> {
    event: &'a str,
    done: bool,
}

#[derive(Serialize)]
struct QuestProgress<'a> {
    status: String,
    steps: Vec<Step<'a>>,
    done: u32,
}

#[derive(Serialize)]
struct Referrals {
    pending: i64,
    confirmed: u32,
    rejected: i64,
    expired: i64,
}

#[derive(Serialize)]
struct RewardLine<'a> {
    reward: String,
    name: Option<&'a str>,
    status: String,
    earned_at: String,
    /// What the reward is worth (credit, a coupon's value), in minor units.
    #[serde(skip_serializing_if = "Option::is_none")]
    value_minor: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<String>,
    /// The coupon or exchange token to use at checkout: shown to the
    /// participant themself (`me`), never in a code's public stats, and only
    /// once the grant is approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

/// A participant's numbers: the SDK's `me()`, a code's public stats.
#[derive(Serialize)]
pub(super) struct Stats<'a> {
    campaign: &'a str,
    code: String,
    link: String,
    clicks: i64,
    referrals: Referrals,
    points: i64,
    rank: Option<u64>,
    tier: Option<&'a str>,
    milestones: Vec<Milestone<'a>>,
    next_milestone: Option<NextMilestone<'a>>,
    rewards: Vec<RewardLine<'a>>,
    quest: Option<QuestProgress<'a>>,
    share_text: &'a Option<String>,
    mode: &'a refloop_core::engine::config::Mode,
    /// When the code stops bringing referrals (`code_valid_days`).
    #[serde(skip_serializing_if = "Option::is_none")]
    code_valid_until: Option<String>,
}

#[derive(Serialize)]
struct BoardRow {
    rank: u64,
    name: String,
    score: i64,
    code: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    you: bool,
}

#[derive(Serialize)]
pub(super) struct Board<'a> {
    campaign: &'a str,
    score_by: &'a ScoreBy,
    top: Vec<BoardRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    around: Option<Vec<BoardRow>>,
}

#[derive(Serialize)]
struct Person {
    participant: Option<ParticipantView>,
    identities: Vec<Identity>,
    ledger: Vec<PersonLedger>,
    referred: Vec<PersonReferral>,
    referred_by: Vec<PersonReferral>,
    grants: Vec<PersonGrant>,
    clicks: Vec<PersonClick>,
}

#[derive(Serialize, Deserialize)]
struct Identity {
    kind: String,
    value: String,
}

#[derive(Serialize, Deserialize)]
struct PersonLedger {
    points: i64,
    reason: String,
    source_event: Option<String>,
    at: i64,
}

#[derive(Serialize, Deserialize)]
struct PersonReferral {
    id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    referee_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    referrer_id: Option<i64>,
    status: String,
    created_at: i64,
}

#[derive(Serialize, Deserialize)]
struct PersonGrant {
    id: i64,
    reward_id: String,
    status: String,
    earned_at: i64,
    expires_at: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct PersonClick {
    code: String,
    at: i64,
}

#[derive(Deserialize)]
struct LedgerRow {
    id: i64,
    points: i64,
    reason: String,
    source_event: Option<String>,
    referral_id: Option<i64>,
    idempotency_key: String,
    at: i64,
    config_version: i64,
}

#[derive(Serialize)]
struct LedgerEntryView {
    id: i64,
    points: i64,
    reason: Value,
    source_event: Option<String>,
    referral: Option<i64>,
    idempotency_key: String,
    at: String,
    config_version: i64,
}

#[derive(Serialize)]
pub(super) struct Ledger<'a> {
    participant: ParticipantView,
    score: i64,
    stats: Option<Stats<'a>>,
    entries: Vec<LedgerEntryView>,
}

#[derive(Deserialize)]
struct ReferralRow {
    id: i64,
    referrer_id: i64,
    referee_id: i64,
    referrer_code: String,
    referee_code: String,
    status: String,
    review: String,
    reason: Option<String>,
    via: String,
    flags: String,
    created_at: i64,
    confirmed_at: Option<i64>,
    config_version: i64,
}

#[derive(Serialize)]
struct Party {
    id: i64,
    code: String,
}

#[derive(Serialize)]
struct ReferralView {
    id: i64,
    referrer: Party,
    referee: Party,
    status: String,
    review: String,
    reason: Option<String>,
    via: String,
    flags: Value,
    created_at: String,
    confirmed_at: Option<String>,
    config_version: i64,
}

#[derive(Deserialize)]
struct GrantRow {
    id: i64,
    participant_id: i64,
    code: Option<String>,
    reward_id: String,
    status: String,
    token: Option<String>,
    source: String,
    value_minor: Option<i64>,
    currency: Option<String>,
    earned_at: i64,
    expires_at: Option<i64>,
}

#[derive(Deserialize)]
struct TransitionRow {
    from_status: Option<String>,
    to_status: String,
    at: i64,
    note: Option<String>,
}

#[derive(Serialize)]
struct TransitionView {
    from: Option<String>,
    to: String,
    at: String,
    note: Option<String>,
}

#[derive(Serialize)]
struct GrantParty {
    id: i64,
    code: Option<String>,
}

/// A grant with its lifecycle history.
#[derive(Serialize)]
pub(super) struct GrantView {
    id: i64,
    participant: GrantParty,
    reward: String,
    status: String,
    token: Option<String>,
    source: Value,
    value_minor: Option<i64>,
    currency: Option<String>,
    earned_at: String,
    expires_at: Option<String>,
    history: Vec<TransitionView>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotLine {
    rank: usize,
    participant: i64,
    code: String,
    score: i64,
}

#[derive(Serialize)]
pub(super) struct SnapshotTaken {
    id: i64,
    period: String,
    taken_at: String,
}

#[derive(Serialize)]
pub(super) struct Day {
    day: String,
    clicks: u64,
    signups: u64,
    confirmed: u64,
}

/// One row of the export (`admin::stats::export` writes the CSV).
#[derive(Serialize, Deserialize)]
pub struct ExportRow {
    pub id: i64,
    pub code: String,
    pub user_id: Option<String>,
    pub joined_at: i64,
    pub confirmed: i64,
    pub score: i64,
    pub erased: i64,
    pub rank: Option<i64>,
}

/// Which rows an export holds (`?of=` of `export.csv`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportOf {
    #[default]
    Participants,
    Referrals,
    Grants,
}

/// Rows read per query of an export.
pub const EXPORT_PAGE: i64 = 1_000;
/// Rows an export holds at most.
pub const EXPORT_MAX: i64 = 50_000;

/// A referral as exported: both parties, its state and where it came from.
#[derive(Serialize, Deserialize)]
pub struct ReferralExportRow {
    pub id: i64,
    pub referrer_id: i64,
    pub referrer_code: String,
    pub referee_id: i64,
    pub referee_code: String,
    pub status: String,
    pub review: String,
    pub reason: Option<String>,
    pub via: String,
    pub source: Option<String>,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub config_version: i64,
}

/// A grant as exported: who, what, its state and its token.
#[derive(Serialize, Deserialize)]
pub struct GrantExportRow {
    pub id: i64,
    pub participant_id: i64,
    pub code: String,
    pub user_id: Option<String>,
    pub reward_id: String,
    pub status: String,
    pub token: Option<String>,
    pub source: String,
    pub value_minor: Option<i64>,
    pub currency: Option<String>,
    pub earned_at: i64,
    pub expires_at: Option<i64>,
}

/// An export's answer: its rows.
#[derive(Serialize, Deserialize)]
pub struct ExportRows<T> {
    pub rows: Vec<T>,
}

/// Rows with named lists, the shape of every listing answer.
macro_rules! listing {
    ($name:ident, $field:ident: $item:ty) => {
        #[derive(Serialize)]
        pub(super) struct $name {
            $field: Vec<$item>,
        }
    };
}
listing!(Participants, participants: ParticipantView);
listing!(ReferralList, referrals: ReferralView);
listing!(GrantList, grants: GrantView);
listing!(Days, days: Day);
listing!(People, participants: Person);

#[derive(Serialize)]
pub(super) struct SnapshotView {
    id: i64,
    period: String,
    taken_at: String,
    rows: Value,
}
listing!(Snapshots, snapshots: SnapshotView);

#[derive(Serialize)]
pub(super) struct Funnel {
    funnel: refloop_core::engine::analytics::Funnel,
    participants: i64,
}

#[derive(Serialize)]
pub(super) struct Checked {
    violations: Vec<String>,
    counts: BTreeMap<String, i64>,
}

/// Unix milliseconds written as the contract's time.
fn as_iso<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&iso(*ms))
}

/// A row of `answers`, shown with its time in RFC 3339.
#[derive(Serialize, Deserialize)]
pub(super) struct Answer {
    #[serde(serialize_with = "as_iso")]
    at: i64,
    event_id: Option<String>,
    anonymous_id: Option<String>,
    user_id: Option<String>,
    code: Option<String>,
    kind: String,
    reason: String,
}
listing!(Answers, answers: Answer);

#[derive(Serialize, Deserialize)]
pub(super) struct Source {
    source: String,
    referrals: i64,
    confirmed: i64,
}
listing!(Sources, sources: Source);

#[derive(Serialize, Deserialize, Clone, Copy, Default)]
struct Amount {
    grants: i64,
    amount_minor: i64,
}

#[derive(Serialize)]
struct Currency {
    currency: String,
    by_status: BTreeMap<String, Amount>,
    committed_minor: i64,
}

#[derive(Serialize)]
struct Budget<'a> {
    currency: &'a str,
    amount_minor: i64,
    committed_minor: i64,
    left_minor: i64,
}

#[derive(Serialize)]
pub(super) struct Money<'a> {
    currencies: Vec<Currency>,
    budget: Option<Budget<'a>>,
}

impl<'a, C: Sql> View<'a, C> {
    /// Rows as JSON objects; prefer `rows_as`.
    pub fn exec(&self, sql: &str, args: &[Value]) -> Result<Vec<serde_json::Map<String, Value>>, ApiError> {
        self.sql
            .exec(sql, args)
            .map_err(|e| internal(format!("campaign {}: {e}", self.campaign.id)))
    }

    /// A query's rows, each read into `T` (a missing column is an error).
    pub fn rows_as<T: DeserializeOwned>(&self, sql: &str, args: &[Value]) -> Result<Vec<T>, ApiError> {
        self.exec(sql, args)?
            .into_iter()
            .map(|r| crate::db::typed(r).map_err(|e| internal(format!("campaign {}: {e}", self.campaign.id))))
            .collect()
    }

    fn one_as<T: DeserializeOwned>(&self, sql: &str, args: &[Value]) -> Result<Option<T>, ApiError> {
        Ok(self.rows_as(sql, args)?.into_iter().next())
    }

    pub fn config(&self) -> &'a CampaignConfig {
        &self.versions[self.versions.len() - 1].config
    }

    /// Rank on the board of `period` (now), `None` while the score is zero:
    /// (rank, score, joined at).
    fn rank(&self, period: Period, p: i64) -> Result<Option<(u64, i64, i64)>, ApiError> {
        #[derive(Deserialize)]
        struct Ranked {
            rank: i64,
            score: i64,
            joined_at: i64,
        }
        let key = period_key(period, self.now);
        let r: Option<Ranked> = self.one_as(
            "SELECT s.score, s.joined_at, 1 + (SELECT count(*) FROM scores t WHERE t.period = s.period
               AND (t.score > s.score OR (t.score = s.score AND (t.joined_at < s.joined_at
                 OR (t.joined_at = s.joined_at AND t.participant_id < s.participant_id))))) AS rank
             FROM scores s WHERE s.period = ?1 AND s.participant_id = ?2 AND s.score > 0",
            &[key.into(), p.into()],
        )?;
        Ok(r.map(|r| (r.rank as u64, r.score, r.joined_at)))
    }

    fn participant(&self, id: i64) -> Result<Option<ParticipantRow>, ApiError> {
        self.one_as("SELECT * FROM participants WHERE id = ?1", &[id.into()])
    }

    /// A participant's numbers; `own` when the participant asks (`me`), which
    /// adds their rewards' tokens.
    pub fn stats(&self, p: ParticipantId, own: bool) -> Result<Stats<'a>, ApiError> {
        #[derive(Deserialize)]
        struct ByStatus {
            status: String,
            n: i64,
        }
        #[derive(Deserialize)]
        struct GrantLine {
            reward_id: String,
            status: String,
            earned_at: i64,
            value_minor: Option<i64>,
            currency: Option<String>,
            token: Option<String>,
        }
        #[derive(Deserialize)]
        struct Mine {
            status: String,
            done_mask: i64,
        }
        let id = p.0 as i64;
        let person = self.participant(id)?.ok_or_else(|| not_found("no such participant"))?;
        let confirmed = person.confirmed as u32;
        let referrals: Vec<ByStatus> = self.rows_as(
            "SELECT status, count(*) AS n FROM referrals WHERE referrer_id = ?1 GROUP BY status",
            &[id.into()],
        )?;
        let count = |status: &str| -> i64 { referrals.iter().filter(|r| r.status == status).map(|r| r.n).sum() };
        let clicks = self
            .one_as::<Count>(
                "SELECT count(*) AS n FROM clicks WHERE participant_id = ?1",
                &[id.into()],
            )?
            .map_or(0, |c| c.n);
        let rank = self.rank(Period::All, id)?;
        let grants: Vec<GrantLine> = self.rows_as(
            "SELECT reward_id, status, earned_at, value_minor, currency, token FROM grants
             WHERE participant_id = ?1 ORDER BY earned_at, id",
            &[id.into()],
        )?;
        let config = self.config();
        let milestones = config
            .milestones
            .iter()
            .map(|m| Milestone {
                id: &m.id,
                name: m.name.as_deref(),
                at: m.confirmed_referrals,
                every: m.every,
                reached: times_reached(m, confirmed) > 0,
            })
            .collect();
        let next_milestone = config
            .milestones
            .iter()
            .filter(|m| m.every.is_none() && m.confirmed_referrals > confirmed)
            .min_by_key(|m| m.confirmed_referrals)
            .map(|m| NextMilestone {
                id: &m.id,
                name: m.name.as_deref(),
                at: m.confirmed_referrals,
                remaining: m.confirmed_referrals - confirmed,
            });
        let mine: Option<Mine> = self.one_as(
            "SELECT status, done_mask FROM referrals WHERE referee_id = ?1",
            &[id.into()],
        )?;
        let quest = mine.map(|r| {
            let mask = r.done_mask as u32;
            QuestProgress {
                status: r.status,
                steps: config
                    .quest
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| Step {
                        event: &s.event,
                        done: mask & (1 << i) != 0,
                    })
                    .collect(),
                done: quest::progress(mask, config.quest.steps.len()) as u32,
            }
        });
        let code_valid_until = match config.code_valid_days {
            None => None,
            Some(days) => {
                let given = self
                    .one_as::<Count>(
                        "SELECT at AS n FROM codes_given WHERE participant_id = ?1",
                        &[id.into()],
                    )?
                    .map_or(person.joined_at, |c| c.n);
                Some(iso(given + Millis::from(days) * DAY_MS))
            }
        };
        Ok(Stats {
            code_valid_until,
            campaign: &self.campaign.slug,
            link: format!("/r/{}", person.code),
            code: person.code,
            clicks,
            referrals: Referrals {
                pending: count("pending"),
                confirmed,
                rejected: count("rejected"),
                expired: count("expired"),
            },
            points: person.score,
            rank: rank.map(|r| r.0),
            tier: refloop_core::engine::rewards::tier(config, confirmed),
            milestones,
            next_milestone,
            rewards: grants
                .into_iter()
                .map(|g| {
                    let usable = own && matches!(g.status.as_str(), "approved" | "fulfilled" | "redeemed");
                    RewardLine {
                        name: config.reward(&g.reward_id).map(|r| r.name.as_str()),
                        reward: g.reward_id,
                        earned_at: iso(g.earned_at),
                        value_minor: g.value_minor,
                        currency: g.currency,
                        token: g.token.filter(|_| usable),
                        status: g.status,
                    }
                })
                .collect(),
            quest,
            share_text: &config.share_text,
            mode: &config.mode,
        })
    }

    pub fn leaderboard(&self, period: Period, limit: u32, around: Option<&str>) -> Result<Board<'a>, ApiError> {
        #[derive(Deserialize)]
        struct Scored {
            score: i64,
            code: String,
            traits: String,
        }
        let row = |rank: u64, r: &Scored| BoardRow {
            rank,
            name: masked_name(&r.traits, &r.code),
            score: r.score,
            code: r.code.clone(),
            you: false,
        };
        let key = period_key(period, self.now);
        let top: Vec<Scored> = self.rows_as(
            "SELECT s.score, p.code, p.traits FROM scores s JOIN participants p ON p.id = s.participant_id
             WHERE s.period = ?1 AND s.score > 0 ORDER BY s.score DESC, s.joined_at, s.participant_id LIMIT ?2",
            &[key.clone().into(), limit.into()],
        )?;
        let mut board = Board {
            campaign: &self.campaign.slug,
            score_by: &self.config().leaderboard.score_by,
            top: top.iter().enumerate().map(|(i, r)| row(i as u64 + 1, r)).collect(),
            around: None,
        };
        let Some(code) = around else { return Ok(board) };
        #[derive(Deserialize)]
        struct Me {
            id: i64,
            code: String,
            traits: String,
        }
        let me: Me = self
            .one_as(
                "SELECT id, code, traits FROM participants WHERE code = ?1 AND erased = 0",
                &[code.into()],
            )?
            .ok_or_else(|| not_found("no such referral code in this campaign"))?;
        let mut rows = Vec::new();
        if let Some((rank, score, joined)) = self.rank(period, me.id)? {
            let radius = 2;
            let args = [key.into(), score.into(), joined.into(), me.id.into(), radius.into()];
            let above: Vec<Scored> = self.rows_as(
                "SELECT s.score, p.code, p.traits FROM scores s JOIN participants p ON p.id = s.participant_id
                 WHERE s.period = ?1 AND (s.score > ?2 OR (s.score = ?2 AND (s.joined_at < ?3
                   OR (s.joined_at = ?3 AND s.participant_id < ?4))))
                 ORDER BY s.score ASC, s.joined_at DESC, s.participant_id DESC LIMIT ?5",
                &args,
            )?;
            let below: Vec<Scored> = self.rows_as(
                "SELECT s.score, p.code, p.traits FROM scores s JOIN participants p ON p.id = s.participant_id
                 WHERE s.period = ?1 AND s.score > 0 AND (s.score < ?2 OR (s.score = ?2 AND (s.joined_at > ?3
                   OR (s.joined_at = ?3 AND s.participant_id > ?4))))
                 ORDER BY s.score DESC, s.joined_at, s.participant_id LIMIT ?5",
                &args,
            )?;
            for (i, r) in above.iter().rev().enumerate() {
                rows.push(row(rank - above.len() as u64 + i as u64, r));
            }
            let mine = Scored {
                score,
                code: me.code,
                traits: me.traits,
            };
            rows.push(BoardRow {
                you: true,
                ..row(rank, &mine)
            });
            for (i, r) in below.iter().enumerate() {
                rows.push(row(rank + 1 + i as u64, r));
            }
        }
        board.around = Some(rows);
        Ok(board)
    }

    pub fn participants(&self, q: &str, limit: u32) -> Result<Participants, ApiError> {
        let q = q.trim();
        let rows: Vec<ParticipantRow> = if q.is_empty() {
            self.rows_as(
                "SELECT * FROM participants WHERE erased = 0 ORDER BY joined_at DESC, id DESC LIMIT ?1",
                &[limit.into()],
            )?
        } else {
            self.rows_as(
                "SELECT * FROM participants WHERE erased = 0 AND (code = upper(?1) OR id IN
                   (SELECT participant_id FROM identities WHERE value = ?1)) ORDER BY id LIMIT ?2",
                &[q.into(), limit.into()],
            )?
        };
        Ok(Participants {
            participants: rows.iter().map(ParticipantView::from).collect(),
        })
    }

    /// The live participants any of these identities name.
    pub fn people_named(&self, anonymous: &[String], users: &[String]) -> Result<Vec<ParticipantId>, ApiError> {
        #[derive(Deserialize)]
        struct Id {
            id: i64,
        }
        let list = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let rows: Vec<Id> = self.rows_as(
            "SELECT DISTINCT i.participant_id AS id FROM identities i JOIN participants p ON p.id = i.participant_id
             WHERE p.erased = 0 AND ((i.kind = 'anonymous' AND i.value IN (SELECT value FROM json_each(?1)))
                OR (i.kind = 'user' AND i.value IN (SELECT value FROM json_each(?2)))) ORDER BY i.participant_id",
            &[list(anonymous).into(), list(users).into()],
        )?;
        Ok(rows.into_iter().map(|r| ParticipantId(r.id as u64)).collect())
    }

    /// Everything the campaign keeps about these people (the right of access):
    /// who they are, their identities, ledger, referrals both ways, grants, clicks.
    pub fn people(&self, people: Vec<ParticipantId>) -> Result<People, ApiError> {
        let mut records = Vec::new();
        for p in people {
            let id = [Value::from(p.0)];
            records.push(Person {
                participant: self.participant(p.0 as i64)?.as_ref().map(ParticipantView::from),
                identities: self.rows_as("SELECT kind, value FROM identities WHERE participant_id = ?1", &id)?,
                ledger: self.rows_as(
                    "SELECT points, reason, source_event, at FROM ledger WHERE participant_id = ?1 ORDER BY id",
                    &id,
                )?,
                referred: self.rows_as(
                    "SELECT id, referee_id, status, created_at FROM referrals WHERE referrer_id = ?1 ORDER BY id",
                    &id,
                )?,
                referred_by: self.rows_as(
                    "SELECT id, referrer_id, status, created_at FROM referrals WHERE referee_id = ?1",
                    &id,
                )?,
                grants: self.rows_as(
                    "SELECT id, reward_id, status, earned_at, expires_at FROM grants WHERE participant_id = ?1 ORDER BY id",
                    &id,
                )?,
                clicks: self.rows_as(
                    "SELECT code, at FROM clicks WHERE participant_id = ?1 ORDER BY id",
                    &id,
                )?,
            });
        }
        Ok(People { participants: records })
    }

    /// A participant's ledger as an audit trail, with the invariant checked on
    /// the way out: the kept score is the sum of the entries.
    pub fn ledger(&self, p: ParticipantId, limit: u32) -> Result<Ledger<'a>, ApiError> {
        #[derive(Deserialize)]
        struct Total {
            total: i64,
        }
        let id = p.0 as i64;
        let person = self
            .participant(id)?
            .ok_or_else(|| not_found("no such participant in this campaign"))?;
        let sum = self
            .one_as::<Total>(
                "SELECT coalesce(sum(points), 0) AS total FROM ledger WHERE participant_id = ?1",
                &[id.into()],
            )?
            .map_or(0, |t| t.total);
        if sum != person.score {
            return Err(internal(format!(
                "participant {id}: score {} but ledger sum {sum}",
                person.score
            )));
        }
        let entries: Vec<LedgerRow> = self.rows_as(
            "SELECT * FROM ledger WHERE participant_id = ?1 ORDER BY id DESC LIMIT ?2",
            &[id.into(), limit.into()],
        )?;
        Ok(Ledger {
            participant: ParticipantView::from(&person),
            score: sum,
            stats: match person.erased {
                0 => Some(self.stats(p, true)?),
                _ => None,
            },
            entries: entries
                .into_iter()
                .map(|e| LedgerEntryView {
                    id: e.id,
                    points: e.points,
                    reason: json_text(&e.reason),
                    source_event: e.source_event,
                    referral: e.referral_id,
                    idempotency_key: e.idempotency_key,
                    at: iso(e.at),
                    config_version: e.config_version,
                })
                .collect(),
        })
    }

    pub fn referrals(&self, status: &str, review: &str, limit: u32) -> Result<ReferralList, ApiError> {
        let rows: Vec<ReferralRow> = self.rows_as(
            "SELECT r.*, a.code AS referrer_code, b.code AS referee_code FROM referrals r
             JOIN participants a ON a.id = r.referrer_id JOIN participants b ON b.id = r.referee_id
             WHERE (?1 = '' OR r.status = ?1) AND (?2 = '' OR r.review = ?2)
             ORDER BY r.created_at DESC, r.id DESC LIMIT ?3",
            &[status.into(), review.into(), limit.into()],
        )?;
        let referrals = rows
            .into_iter()
            .map(|r| ReferralView {
                id: r.id,
                referrer: Party {
                    id: r.referrer_id,
                    code: r.referrer_code,
                },
                referee: Party {
                    id: r.referee_id,
                    code: r.referee_code,
                },
                status: r.status,
                review: r.review,
                reason: r.reason,
                via: r.via,
                flags: json_text(&r.flags),
                created_at: iso(r.created_at),
                confirmed_at: r.confirmed_at.map(iso),
                config_version: r.config_version,
            })
            .collect();
        Ok(ReferralList { referrals })
    }

    fn grant_view(&self, r: GrantRow) -> Result<GrantView, ApiError> {
        let history: Vec<TransitionRow> = self.rows_as(
            "SELECT from_status, to_status, at, note FROM grant_transitions WHERE grant_id = ?1 ORDER BY id",
            &[r.id.into()],
        )?;
        Ok(GrantView {
            id: r.id,
            participant: GrantParty {
                id: r.participant_id,
                code: r.code,
            },
            reward: r.reward_id,
            status: r.status,
            token: r.token,
            source: json_text(&r.source),
            value_minor: r.value_minor,
            currency: r.currency,
            earned_at: iso(r.earned_at),
            expires_at: r.expires_at.map(iso),
            history: history
                .into_iter()
                .map(|t| TransitionView {
                    from: t.from_status,
                    to: t.to_status,
                    at: iso(t.at),
                    note: t.note,
                })
                .collect(),
        })
    }

    pub fn grant(&self, id: u64) -> Result<Option<GrantView>, ApiError> {
        let row: Option<GrantRow> = self.one_as(
            "SELECT g.*, p.code FROM grants g JOIN participants p ON p.id = g.participant_id WHERE g.id = ?1",
            &[id.into()],
        )?;
        row.map(|r| self.grant_view(r)).transpose()
    }

    pub fn grants(&self, status: &str, limit: u32) -> Result<GrantList, ApiError> {
        let rows: Vec<GrantRow> = self.rows_as(
            "SELECT g.*, p.code FROM grants g JOIN participants p ON p.id = g.participant_id
             WHERE (?1 = '' OR g.status = ?1) ORDER BY g.earned_at DESC, g.id DESC LIMIT ?2",
            &[status.into(), limit.into()],
        )?;
        let grants = rows.into_iter().map(|r| self.grant_view(r)).collect::<Result<_, _>>()?;
        Ok(GrantList { grants })
    }

    /// The id of a grant with this exchange token, and its status.
    pub fn grant_of_token(&self, token: &str) -> Result<Option<(u64, String)>, ApiError> {
        #[derive(Deserialize)]
        struct Held {
            id: i64,
            status: String,
        }
        let held: Option<Held> = self.one_as("SELECT id, status FROM grants WHERE token = ?1", &[token.into()])?;
        Ok(held.map(|h| (h.id as u64, h.status)))
    }

    pub fn take_snapshot(&self, period: Period) -> Result<SnapshotTaken, ApiError> {
        #[derive(Deserialize)]
        struct Scored {
            participant_id: i64,
            score: i64,
            code: String,
        }
        #[derive(Deserialize)]
        struct Id {
            id: i64,
        }
        let rows: Vec<Scored> = self.rows_as(
            "SELECT s.participant_id, s.score, p.code FROM scores s JOIN participants p ON p.id = s.participant_id
             WHERE s.period = ?1 AND s.score > 0 ORDER BY s.score DESC, s.joined_at, s.participant_id LIMIT 100",
            &[period_key(period, self.now).into()],
        )?;
        let lines: Vec<SnapshotLine> = rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| SnapshotLine {
                rank: i + 1,
                participant: r.participant_id,
                code: r.code,
                score: r.score,
            })
            .collect();
        let period = crate::app::name_of(&period);
        let lines = serde_json::to_string(&lines).map_err(|e| internal(e.to_string()))?;
        let id = self
            .one_as::<Id>(
                "INSERT INTO snapshots (period, taken_at, rows) VALUES (?1, ?2, ?3) RETURNING id",
                &[period.as_str().into(), self.now.into(), lines.into()],
            )?
            .ok_or_else(|| internal("snapshot insert returned no id"))?
            .id;
        Ok(SnapshotTaken {
            id,
            period,
            taken_at: iso(self.now),
        })
    }

    pub fn snapshots(&self, limit: u32) -> Result<Snapshots, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            id: i64,
            period: String,
            taken_at: i64,
            rows: String,
        }
        let rows: Vec<Row> = self.rows_as(
            "SELECT * FROM snapshots ORDER BY taken_at DESC, id DESC LIMIT ?1",
            &[limit.into()],
        )?;
        let snapshots = rows
            .into_iter()
            .map(|r| SnapshotView {
                id: r.id,
                period: r.period,
                taken_at: iso(r.taken_at),
                rows: json_text(&r.rows),
            })
            .collect();
        Ok(Snapshots { snapshots })
    }

    pub fn funnel(&self) -> Result<Funnel, ApiError> {
        #[derive(Deserialize, Default)]
        struct Counts {
            clicks: i64,
            signups: i64,
            confirmed: i64,
            participants: i64,
        }
        let c: Counts = self
            .one_as(
                "SELECT (SELECT count(*) FROM clicks) AS clicks, (SELECT count(*) FROM referrals) AS signups,
                   (SELECT count(*) FROM referrals WHERE status = 'confirmed' AND review IN ('clear', 'approved')) AS confirmed,
                   (SELECT count(*) FROM participants WHERE erased = 0) AS participants",
                &[],
            )?
            .unwrap_or_default();
        Ok(Funnel {
            funnel: refloop_core::engine::analytics::funnel(
                c.clicks as u64,
                c.signups as u64,
                c.confirmed as u64,
                c.participants as u64,
            ),
            participants: c.participants,
        })
    }

    pub fn trend(&self, from: Millis, to: Millis) -> Result<Days, ApiError> {
        #[derive(Deserialize)]
        struct At {
            at: i64,
        }
        #[derive(Deserialize)]
        struct Made {
            created_at: i64,
            confirmed_at: Option<i64>,
            status: String,
            review: String,
        }
        let end = to + DAY_MS;
        let clicks: Vec<At> = self.rows_as(
            "SELECT at FROM clicks WHERE at >= ?1 AND at < ?2",
            &[from.into(), end.into()],
        )?;
        let clicks: Vec<i64> = clicks.into_iter().map(|c| c.at).collect();
        let refs: Vec<Made> = self.rows_as(
            "SELECT created_at, confirmed_at, status, review FROM referrals WHERE created_at >= ?1 AND created_at < ?2",
            &[from.into(), end.into()],
        )?;
        let signups: Vec<i64> = refs.iter().map(|r| r.created_at).collect();
        let confirmed: Vec<i64> = refs
            .iter()
            .filter(|r| r.status == "confirmed" && matches!(r.review.as_str(), "clear" | "approved"))
            .filter_map(|r| r.confirmed_at)
            .collect();
        let days = refloop_core::engine::analytics::daily_trend(&clicks, &signups, &confirmed, from, to)
            .into_iter()
            .map(|d| Day {
                day: iso(d.day),
                clicks: d.clicks,
                signups: d.signups,
                confirmed: d.confirmed,
            })
            .collect();
        Ok(Days { days })
    }

    /// One of the campaign's exports, read in pages of `EXPORT_PAGE` rows
    /// (one query a page, keyed on the row id), at most `EXPORT_MAX` rows; a
    /// bigger export belongs in a queue.
    pub fn export(&self, of: ExportOf) -> Result<Value, ApiError> {
        fn answer<T: Serialize>(rows: Vec<T>) -> Result<Value, ApiError> {
            serde_json::to_value(ExportRows { rows }).map_err(|e| internal(e.to_string()))
        }
        match of {
            // Ranks from one window over the board per page (the board's
            // order: score, then who joined first), not a count per row.
            ExportOf::Participants => answer(self.pages::<ExportRow>(
                "WITH ranked AS (SELECT participant_id, ROW_NUMBER() OVER
                     (ORDER BY score DESC, joined_at, participant_id) AS rank
                   FROM scores WHERE period = 'all' AND score > 0)
                 SELECT p.id, p.code, p.user_id, p.joined_at, p.confirmed, p.score, p.erased, r.rank
                 FROM participants p LEFT JOIN ranked r ON r.participant_id = p.id
                 WHERE p.id > ?1 ORDER BY p.id LIMIT ?2",
                |r| r.id,
            )?),
            ExportOf::Referrals => answer(self.pages::<ReferralExportRow>(
                "SELECT r.id, r.referrer_id, a.code AS referrer_code, r.referee_id, b.code AS referee_code,
                        r.status, r.review, r.reason, r.via, s.source, r.created_at, r.confirmed_at, r.config_version
                 FROM referrals r JOIN participants a ON a.id = r.referrer_id JOIN participants b ON b.id = r.referee_id
                 LEFT JOIN referral_sources s ON s.referral_id = r.id
                 WHERE r.id > ?1 ORDER BY r.id LIMIT ?2",
                |r| r.id,
            )?),
            ExportOf::Grants => answer(self.pages::<GrantExportRow>(
                "SELECT g.id, g.participant_id, p.code, p.user_id, g.reward_id, g.status, g.token, g.source,
                        g.value_minor, g.currency, g.earned_at, g.expires_at
                 FROM grants g JOIN participants p ON p.id = g.participant_id
                 WHERE g.id > ?1 ORDER BY g.id LIMIT ?2",
                |r| r.id,
            )?),
        }
    }

    /// The rows of `sql` (`?1` the last id read, `?2` the page size, ordered
    /// by that id) page after page.
    fn pages<T: DeserializeOwned>(&self, sql: &str, id: impl Fn(&T) -> i64) -> Result<Vec<T>, ApiError> {
        let mut rows = Vec::new();
        let mut after = -1i64;
        for _ in 0..EXPORT_MAX / EXPORT_PAGE {
            let page: Vec<T> = self.rows_as(sql, &[after.into(), EXPORT_PAGE.into()])?;
            let n = page.len();
            after = page.last().map_or(after, &id);
            rows.extend(page);
            if n < EXPORT_PAGE as usize {
                break;
            }
        }
        Ok(rows)
    }

    /// Why events did not count, newest first, for one identity or code.
    pub fn answers(&self, q: &str, email_hash: Option<&str>, limit: u32) -> Result<Answers, ApiError> {
        let answers = match email_hash {
            // The people with this email (any of their devices and user ids).
            Some(hash) => self.rows_as(
                "SELECT at, event_id, anonymous_id, user_id, code, kind, reason FROM answers
                 WHERE anonymous_id IN (SELECT i.value FROM identities i JOIN participants p ON p.id = i.participant_id
                                        WHERE p.email_hash = ?1 AND i.kind = 'anonymous')
                    OR user_id IN (SELECT i.value FROM identities i JOIN participants p ON p.id = i.participant_id
                                   WHERE p.email_hash = ?1 AND i.kind = 'user')
                 ORDER BY id DESC LIMIT ?2",
                &[hash.into(), limit.into()],
            )?,
            None => self.rows_as(
                "SELECT at, event_id, anonymous_id, user_id, code, kind, reason FROM answers
                 WHERE ?1 = '' OR anonymous_id = ?1 OR user_id = ?1 OR code = upper(?1) ORDER BY id DESC LIMIT ?2",
                &[q.trim().into(), limit.into()],
            )?,
        };
        Ok(Answers { answers })
    }

    pub fn sources(&self) -> Result<Sources, ApiError> {
        let sources = self.rows_as(
            "SELECT coalesce(s.source, 'direct') AS source, count(*) AS referrals,
               coalesce(sum(r.status = 'confirmed'), 0) AS confirmed
             FROM referrals r LEFT JOIN referral_sources s ON s.referral_id = r.id
             GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 200",
            &[],
        )?;
        Ok(Sources { sources })
    }

    /// The money the rewards stand for, per currency and grant status, and the
    /// budget: what counts against it is every grant still worth something.
    pub fn money(&self) -> Result<Money<'a>, ApiError> {
        #[derive(Deserialize)]
        struct Row {
            currency: String,
            status: String,
            grants: i64,
            amount_minor: i64,
        }
        let rows: Vec<Row> = self.rows_as(
            "SELECT currency, status, count(*) AS grants, coalesce(sum(value_minor), 0) AS amount_minor FROM grants
             WHERE currency IS NOT NULL GROUP BY currency, status ORDER BY currency, status",
            &[],
        )?;
        let mut by_currency: BTreeMap<String, BTreeMap<String, Amount>> = BTreeMap::new();
        for r in rows {
            let amount = Amount {
                grants: r.grants,
                amount_minor: r.amount_minor,
            };
            by_currency.entry(r.currency).or_default().insert(r.status, amount);
        }
        let live = |m: &BTreeMap<String, Amount>| -> i64 {
            m.iter()
                .filter(|(k, _)| refloop_core::engine::rewards::GrantStatus::parse(k).is_some_and(|s| s.is_live()))
                .map(|(_, v)| v.amount_minor)
                .sum()
        };
        let budget = self.config().caps.budget.as_ref().map(|b| {
            let used = by_currency.get(&b.currency).map_or(0, live);
            Budget {
                currency: &b.currency,
                amount_minor: b.amount_minor,
                committed_minor: used,
                left_minor: b.amount_minor - used,
            }
        });
        let currencies = by_currency
            .into_iter()
            .map(|(currency, by_status)| Currency {
                committed_minor: live(&by_status),
                currency,
                by_status,
            })
            .collect();
        Ok(Money { currencies, budget })
    }

    /// Every invariant the tables must hold, restated from scratch: each kept
    /// score is its ledger's sum, each confirmed count its counting referrals,
    /// each all-time board score its ledger score (boards by points).
    pub fn check(&self) -> Result<Checked, ApiError> {
        #[derive(Deserialize)]
        struct What {
            what: String,
        }
        let by_points = self.config().leaderboard.score_by == ScoreBy::Points;
        let violations: Vec<What> = self.rows_as(
            "SELECT 'score ' || p.id AS what FROM participants p
               WHERE p.score <> (SELECT coalesce(sum(points), 0) FROM ledger l WHERE l.participant_id = p.id)
             UNION ALL SELECT 'confirmed ' || p.id FROM participants p
               WHERE p.confirmed <> (SELECT count(*) FROM referrals r WHERE r.referrer_id = p.id
                 AND r.status = 'confirmed' AND r.review IN ('clear', 'approved'))
             UNION ALL SELECT 'board ' || s.participant_id FROM scores s JOIN participants p ON p.id = s.participant_id
               WHERE ?1 AND s.period = 'all' AND s.score <> p.score",
            &[by_points.into()],
        )?;
        let counts: BTreeMap<String, i64> = self
            .one_as(
                "SELECT (SELECT count(*) FROM participants) AS participants, (SELECT count(*) FROM referrals) AS referrals,
                   (SELECT count(*) FROM invitations) AS invitations, (SELECT count(*) FROM clicks) AS clicks,
                   (SELECT count(*) FROM ledger) AS ledger, (SELECT count(*) FROM scores) AS scores,
                   (SELECT count(*) FROM grants) AS grants, (SELECT count(*) FROM grant_transitions) AS grant_transitions,
                   (SELECT count(*) FROM snapshots) AS snapshots, (SELECT count(*) FROM seen_events) AS seen_events,
                   (SELECT count(*) FROM outbox) AS pending_notices",
                &[],
            )?
            .unwrap_or_default();
        Ok(Checked {
            violations: violations.into_iter().map(|v| v.what).collect(),
            counts,
        })
    }
}
