//! The nouns of a referral program: participants, referrals, ledger entries,
//! grants. Plain data; the decisions about them live in the sibling modules.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

pub const DAY_MS: Millis = 86_400_000;
pub const HOUR_MS: Millis = 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ParticipantId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReferralId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GrantId(pub u64);

/// Traits a site sends with `identify` (plan, tenure, lifecycle stage …).
pub type Traits = BTreeMap<String, serde_json::Value>;

/// The trait under which a participant keeps what trusted server events
/// said (a browser may not set keys that start with `$`): trusted rules'
/// conditions read only these, so a browser cannot set its own
/// `lifecycle_stage` to earn a server-side reward.
pub const SERVER_TRAITS: &str = "$server";

/// The traits the site's server set, out of a participant's traits.
pub fn server_traits(traits: &Traits) -> Traits {
    traits
        .get(SERVER_TRAITS)
        .and_then(serde_json::Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// An end user inside one campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    pub id: ParticipantId,
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    /// Their own referral code (code mode), unique in the campaign.
    pub code: String,
    pub joined_at: Millis,
    pub traits: Traits,
    /// SHA-256 of the normalised email (see `fraud::normalise_email`), salted by the edge.
    pub email_hash: Option<String>,
    /// The email's domain, kept for the disposable-domain signal only.
    pub email_domain: Option<String>,
    pub ip_hash: Option<String>,
    pub device_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralStatus {
    /// The referee signed up; the quest is under way.
    Pending,
    /// The referee finished the quest.
    Confirmed,
    /// Refused: fraud, a cap, or an admin's decision.
    Rejected,
    /// The quest was not finished within the window.
    Expired,
}

/// Whether a flagged referral's rewards may be paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Review {
    /// Nothing was flagged.
    Clear,
    /// Flagged: rewards wait in `pending_review`, the referral is off the leaderboard.
    Pending,
    Approved,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Referral {
    pub id: ReferralId,
    pub referrer: ParticipantId,
    pub referee: ParticipantId,
    /// The code or invitation token used.
    pub via: String,
    pub status: ReferralStatus,
    /// The configuration version the referral started under; its quest and
    /// rules stay pinned to it.
    pub config_version: u32,
    pub created_at: Millis,
    /// The quest steps done, one bit each (`quest::progress` for display).
    pub done_mask: u32,
    pub confirmed_at: Option<Millis>,
    pub flags: Vec<crate::engine::fraud::FraudFlag>,
    pub review: Review,
    pub reason: Option<String>,
}

impl Referral {
    /// Counts toward the referrer's confirmed referrals, milestones and the leaderboard.
    pub fn counts(&self) -> bool {
        self.status == ReferralStatus::Confirmed && matches!(self.review, Review::Clear | Review::Approved)
    }
}

/// Why a ledger entry exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum EntryReason {
    /// A point rule fired on an event.
    Rule { rule: String },
    /// A reward of kind points was granted.
    Reward { reward: String },
    /// An operator's adjustment, with their words.
    Manual { note: String },
    /// A replay under another configuration version corrected an earlier entry.
    Correction { replay: String, corrects: String },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CampaignId(pub u64);

/// One point change. Entries are never edited or deleted; a score is their sum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub campaign: CampaignId,
    pub participant: ParticipantId,
    pub points: i64,
    pub reason: EntryReason,
    pub source_event: Option<String>,
    pub referral: Option<ReferralId>,
    /// Unique per campaign: the same key twice is the same effect, written once.
    pub idempotency_key: String,
    pub at: Millis,
    pub config_version: u32,
}

/// Money in minor units (cents) with an ISO 4217 currency: exact, no floats.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: String,
}
