//! Webhook delivery from the directory's outbox: signed, claimed before it is
//! sent (two runners never send one delivery twice), retried with backoff,
//! bounded per run, each attempt bounded in time by the `Outbound` that
//! sends it.
//!
//! Who delivers: a campaign's own object, from its alarm, within seconds of
//! the notice (`Scope::Campaign`), so a slow endpoint only slows the campaign
//! that notifies it; the cron takes the stragglers no alarm sent
//! (`Scope::Stragglers`). A deleted (inactive) webhook's deliveries are never
//! claimed again.

use crate::db::{Db, DbError, Stmt, typed};
use crate::sql;
use crate::stmt;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Attempts of one delivery before it is given up.
pub const MAX_ATTEMPTS: i64 = 12;

/// The longest one attempt may take before it counts as failed
/// (`Outbound` implementations enforce it).
pub const ATTEMPT_TIMEOUT_MS: i64 = 5_000;

/// A delivery due for this long is the cron's: its campaign's alarm did not
/// send it (two cron periods).
pub const STRAGGLER_MS: i64 = 10 * 60_000;
const _: () = assert!(
    STRAGGLER_MS > 2 * crate::alarm::SOON_MS + 60_000,
    "an alarm has its chance (and a run's minute) before the cron takes a delivery"
);

/// Most webhooks a tenant may have (every notice is one delivery per webhook).
pub const MAX_WEBHOOKS_PER_TENANT: i64 = 10;

/// A delivery claimed by this run (`sql::CLAIMED_DELIVERIES`).
#[derive(serde::Deserialize)]
struct Claimed {
    id: i64,
    #[serde(rename = "type")]
    kind: String,
    payload: String,
    attempts: i64,
    notice_key: Option<String>,
    url: String,
    secret: String,
}

/// The notice types a webhook may take: the webhook contract's names (the
/// `type` of each payload), apart from the engine's `Notice`, so renaming an
/// engine variant cannot change the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NoticeType {
    #[serde(rename = "referral.confirmed")]
    ReferralConfirmed,
    #[serde(rename = "milestone.reached")]
    MilestoneReached,
    #[serde(rename = "reward.earned")]
    RewardEarned,
    #[serde(rename = "reward.status_changed")]
    RewardStatusChanged,
    #[serde(rename = "leaderboard.top_n_changed")]
    TopNChanged,
    #[serde(rename = "reward.withheld")]
    RewardWithheld,
}

/// A webhook's body (version `campaign::NOTICE_SCHEMA`), before the
/// campaign adds what a receiver needs (codes, user ids, tokens): written
/// field by field from the engine's `Notice`, so the engine can change
/// without changing what receivers parse.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Payload {
    #[serde(rename = "type")]
    pub kind: NoticeType,
    pub campaign: String,
    /// When it happened (RFC 3339).
    pub at: String,
    #[serde(flatten)]
    pub data: PayloadData,
}

/// What each notice type carries (ids are the campaign's own).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum PayloadData {
    Referral {
        referral: u64,
        referrer: u64,
        referee: u64,
    },
    Milestone {
        participant: u64,
        milestone: String,
        nth: u32,
    },
    Earned {
        grant: u64,
        participant: u64,
        reward: String,
    },
    StatusChanged {
        grant: u64,
        from: refloop_core::engine::rewards::GrantStatus,
        to: refloop_core::engine::rewards::GrantStatus,
    },
    Top {
        top: Vec<u64>,
    },
    Withheld {
        participant: u64,
        reward: String,
        reason: String,
    },
}

impl Payload {
    pub fn of(n: &refloop_core::engine::machine::Notice, campaign: &str, at: &str) -> Self {
        use refloop_core::engine::machine::Notice;
        let (kind, data) = match n {
            Notice::ReferralConfirmed {
                referral,
                referrer,
                referee,
            } => (
                NoticeType::ReferralConfirmed,
                PayloadData::Referral {
                    referral: referral.0,
                    referrer: referrer.0,
                    referee: referee.0,
                },
            ),
            Notice::MilestoneReached {
                participant,
                milestone,
                nth,
            } => (
                NoticeType::MilestoneReached,
                PayloadData::Milestone {
                    participant: participant.0,
                    milestone: milestone.clone(),
                    nth: *nth,
                },
            ),
            Notice::RewardEarned {
                grant,
                participant,
                reward,
            } => (
                NoticeType::RewardEarned,
                PayloadData::Earned {
                    grant: grant.0,
                    participant: participant.0,
                    reward: reward.clone(),
                },
            ),
            Notice::RewardStatusChanged { grant, from, to } => (
                NoticeType::RewardStatusChanged,
                PayloadData::StatusChanged {
                    grant: grant.0,
                    from: *from,
                    to: *to,
                },
            ),
            Notice::TopNChanged { top } => (
                NoticeType::TopNChanged,
                PayloadData::Top {
                    top: top.iter().map(|p| p.0).collect(),
                },
            ),
            Notice::RewardWithheld {
                participant,
                reward,
                reason,
            } => (
                NoticeType::RewardWithheld,
                PayloadData::Withheld {
                    participant: participant.0,
                    reward: reward.clone(),
                    reason: reason.clone(),
                },
            ),
        };
        Payload {
            kind,
            campaign: campaign.to_owned(),
            at: at.to_owned(),
            data,
        }
    }
}

/// Whether a webhook may be sent to `url`: https to a public host. Loopback,
/// private, link-local, CGNAT and unique-local addresses, `localhost`,
/// `.local`, `.internal` and metadata hosts are refused, as is any host with
/// a CR or LF; `allow_local` (a development flag) admits http and loopback
/// for a receiver on the developer's machine.
pub fn check_url(raw: &str, allow_local: bool) -> Result<url::Url, String> {
    let parsed = url::Url::parse(raw).map_err(|e| format!("`url` is not a URL: {e}"))?;
    let host = parsed.host().ok_or("`url` needs a host")?;
    let loopback = match &host {
        url::Host::Domain(d) => *d == "localhost",
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    if allow_local && loopback && matches!(parsed.scheme(), "http" | "https") {
        return Ok(parsed);
    }
    if parsed.scheme() != "https" {
        return Err("`url` must be https://".into());
    }
    let private = match &host {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost"
                || !d.contains('.')
                || [".localhost", ".local", ".internal", ".home.arpa"]
                    .iter()
                    .any(|s| d.ends_with(s))
                || d.starts_with("metadata.")
        }
        url::Host::Ipv4(ip) => {
            let [a, b, ..] = ip.octets();
            ip.is_private()
                || ip.is_loopback()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_multicast()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        url::Host::Ipv6(ip) => {
            let first = ip.segments()[0];
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || ip.to_ipv4_mapped().is_some()
        }
    };
    if private {
        return Err("`url` must name a public host (not loopback, private, link-local or internal)".into());
    }
    Ok(parsed)
}

/// Sends one webhook: (url, headers, body) → HTTP status, or why it failed.
/// An implementation gives up after `ATTEMPT_TIMEOUT_MS`.
#[allow(async_fn_in_trait)]
pub trait Outbound {
    async fn post(&self, url: &str, headers: &[(String, String)], body: &str) -> Result<u16, String>;
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the receiver
/// recomputes it and refuses a timestamp older than a few minutes (replays).
pub fn signature(secret: &str, unix_seconds: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("t={unix_seconds},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The Standard Webhooks signature (standardwebhooks.com), beside ours, so
/// receivers can verify with its libraries: `v1,` + base64 HMAC-SHA256 of
/// `<id>.<timestamp>.<body>`, keyed with the base64-decoded part of the
/// secret after `whsec_`.
pub fn standard_signature(secret: &str, id: &str, unix_seconds: i64, body: &str) -> String {
    use base64::Engine as _;
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_else(|_| encoded.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{unix_seconds}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// The wait before attempt `attempts + 1`: 30 s doubling, at most 6 hours.
pub fn backoff_ms(attempts: i64) -> i64 {
    let exp = attempts.clamp(0, 20) as u32;
    (30_000i64.saturating_mul(1 << exp)).min(6 * 3_600_000)
}

/// Whose deliveries a run takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One campaign's, from its object's alarm.
    Campaign(i64),
    /// The cron's: deliveries of no campaign, and those due for `STRAGGLER_MS`.
    Stragglers,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub delivered: u64,
    pub failed: u64,
    /// Every claimable delivery of the scope was taken (there may be more).
    pub full: bool,
    /// When the campaign's next undelivered notice is due (campaign scope).
    pub next_due: Option<i64>,
}

/// Claims at most `limit` due deliveries of `scope`, sends them one after
/// the other, and records every result in one batch. `token` names this run's
/// claim (random; two runners never share one).
pub async fn deliver(
    db: &impl Db,
    out: &impl Outbound,
    now: i64,
    token: &str,
    scope: Scope,
    limit: u32,
) -> Result<Delivered, DbError> {
    // The claim outlasts the run's every attempt timing out.
    let until = now + i64::from(limit) * ATTEMPT_TIMEOUT_MS + 60_000;
    let claim = match scope {
        Scope::Campaign(c) => stmt!(
            sql::CLAIM_CAMPAIGN_DELIVERIES,
            now,
            token,
            until,
            i64::from(limit),
            c,
            MAX_ATTEMPTS
        ),
        Scope::Stragglers => stmt!(
            sql::CLAIM_STRAGGLERS,
            now,
            token,
            until,
            i64::from(limit),
            now - STRAGGLER_MS,
            MAX_ATTEMPTS
        ),
    };
    let claimed: Vec<Claimed> = db
        .batch_rows(vec![claim, stmt!(sql::CLAIMED_DELIVERIES, token)])
        .await?
        .pop()
        .unwrap_or_default()
        .into_iter()
        .map(typed)
        .collect::<Result<_, _>>()?;
    let mut report = Delivered {
        full: claimed.len() as u32 >= limit,
        ..Delivered::default()
    };
    let mut results: Vec<Stmt> = Vec::with_capacity(claimed.len());
    for d in &claimed {
        let (body, id, secret) = (&d.payload, d.id, &d.secret);
        // The message's id is its notice's (the same on every retry).
        let message = d.notice_key.clone().unwrap_or_else(|| format!("d-{id}"));
        let headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("Refloop-Event".to_owned(), d.kind.clone()),
            ("Refloop-Delivery".to_owned(), id.to_string()),
            ("Refloop-Signature".to_owned(), signature(secret, now / 1000, body)),
            ("webhook-id".to_owned(), message.clone()),
            ("webhook-timestamp".to_owned(), (now / 1000).to_string()),
            (
                "webhook-signature".to_owned(),
                standard_signature(secret, &message, now / 1000, body),
            ),
        ];
        let retry_at = now + backoff_ms(d.attempts);
        results.push(match out.post(&d.url, &headers, body).await {
            Ok(status) if (200..300).contains(&status) => {
                report.delivered += 1;
                stmt!(sql::DELIVERED, id, now, i64::from(status))
            }
            Ok(status) => {
                report.failed += 1;
                stmt!(
                    sql::DELIVERY_FAILED,
                    id,
                    retry_at,
                    i64::from(status),
                    format!("HTTP {status}")
                )
            }
            Err(e) => {
                report.failed += 1;
                stmt!(sql::DELIVERY_FAILED, id, retry_at, Option::<i64>::None, e)
            }
        });
    }
    if let Scope::Campaign(c) = scope {
        results.push(stmt!(sql::NEXT_DELIVERY_DUE, c, MAX_ATTEMPTS));
    }
    if !results.is_empty() {
        let mut rows = db.batch_rows(results).await?;
        if matches!(scope, Scope::Campaign(_)) {
            #[derive(serde::Deserialize)]
            struct Due {
                at: Option<i64>,
            }
            report.next_due = match rows.pop().and_then(|r| r.into_iter().next()) {
                Some(row) => typed::<Due>(row)?.at,
                None => None,
            };
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The webhook contract, pinned: what receivers parse for each type.
    #[test]
    fn payloads_are_the_contracts_not_the_engines() {
        use refloop_core::engine::machine::Notice;
        use refloop_core::engine::model::{GrantId, ParticipantId, ReferralId};
        use refloop_core::engine::rewards::GrantStatus;
        let body = |n: Notice| serde_json::to_value(Payload::of(&n, "launch", "2026-12-04T00:00:00.000Z")).unwrap();
        let at = serde_json::json!({"campaign": "launch", "at": "2026-12-04T00:00:00.000Z"});
        let with = |mut v: serde_json::Value| {
            v.as_object_mut().unwrap().extend(at.as_object().unwrap().clone());
            v
        };
        assert_eq!(
            body(Notice::ReferralConfirmed {
                referral: ReferralId(1),
                referrer: ParticipantId(2),
                referee: ParticipantId(3)
            }),
            with(serde_json::json!({"type": "referral.confirmed", "referral": 1, "referrer": 2, "referee": 3}))
        );
        assert_eq!(
            body(Notice::RewardStatusChanged {
                grant: GrantId(4),
                from: GrantStatus::Earned,
                to: GrantStatus::PendingReview
            }),
            with(
                serde_json::json!({"type": "reward.status_changed", "grant": 4, "from": "earned", "to": "pending_review"})
            )
        );
        assert_eq!(
            body(Notice::TopNChanged {
                top: vec![ParticipantId(5)]
            }),
            with(serde_json::json!({"type": "leaderboard.top_n_changed", "top": [5]}))
        );
    }

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_and_body() {
        let s = signature("whsec_test", 1_700_000_000, "{}");
        assert!(s.starts_with("t=1700000000,v1="));
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(s, signature("whsec_other", 1_700_000_000, "{}"));
        assert_ne!(s, signature("whsec_test", 1_700_000_001, "{}"));
    }

    #[test]
    fn webhook_urls_are_public_https() {
        for ok in [
            "https://hooks.example.com/x",
            "https://203.0.113.9:8443/in",
            "https://[2001:db8::1]/x",
        ] {
            assert!(check_url(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://hooks.example.com/x",
            "http://localhost.attacker.example/x",
            "https://metadata.internal/x",
            "https://metadata.google.internal/computeMetadata",
            "https://169.254.169.254/latest",
            "https://10.0.0.1/x",
            "https://172.16.5.4/x",
            "https://192.168.1.1/x",
            "https://100.64.0.1/x",
            "https://127.0.0.1/x",
            "https://localhost/x",
            "https://printer.local/x",
            "https://intranet/x",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://[::ffff:10.0.0.1]/x",
            "https://0.0.0.0/x",
            "not a url",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(
            check_url("http://127.0.0.1:9/x", true).is_ok(),
            "the development flag admits loopback"
        );
        assert!(check_url("http://localhost:8080/x", true).is_ok());
        assert!(check_url("http://10.0.0.1/x", true).is_err(), "but nothing private");
    }

    #[test]
    fn the_standard_webhooks_signature_matches_its_reference() {
        // The example of the Standard Webhooks specification's reference
        // implementations (secret, id, timestamp, payload → signature).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            standard_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(0), 30_000);
        assert_eq!(backoff_ms(1), 60_000);
        assert_eq!(backoff_ms(30), 6 * 3_600_000);
    }
}
