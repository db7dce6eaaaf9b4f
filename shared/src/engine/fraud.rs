//! Fraud signals. refloop flags, it does not block: a flagged referral keeps
//! its rewards in `pending_review` and stays off the leaderboard until an
//! operator approves it. Self-referral is the exception: it is rejected outright
//! (see `referral`), because there is nothing to review.

use super::config::FraudSettings;
use super::model::{HOUR_MS, Millis, Participant};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FraudFlag {
    /// The referee's IP hash is the referrer's.
    SharedIp,
    /// The referee's device id is the referrer's.
    SharedDevice,
    /// More referrals for this referrer within the last hour than allowed.
    Velocity,
    /// The referee's email domain is a known disposable one.
    DisposableEmail,
    /// The referrer has many pending referrals that never confirm.
    StalePending,
}

/// What the signals look at besides the two participants.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReferrerActivity {
    /// Referrals the referrer received in the hour before now.
    pub referrals_last_hour: u32,
    /// The referrer's pending referrals older than the configured age.
    pub stale_pending: u32,
}

pub fn signals(
    settings: &FraudSettings,
    referrer: &Participant,
    referee: &Participant,
    activity: ReferrerActivity,
) -> Vec<FraudFlag> {
    let mut flags = Vec::new();
    let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
    if settings.flag_shared_ip && same(&referrer.ip_hash, &referee.ip_hash) {
        flags.push(FraudFlag::SharedIp);
    }
    if settings.flag_shared_device && same(&referrer.device_id, &referee.device_id) {
        flags.push(FraudFlag::SharedDevice);
    }
    // This referral is the (n+1)th within the hour.
    if activity.referrals_last_hour + 1 > settings.velocity_per_hour {
        flags.push(FraudFlag::Velocity);
    }
    if settings.flag_disposable_email && referee.email_domain.as_deref().is_some_and(is_disposable_domain) {
        flags.push(FraudFlag::DisposableEmail);
    }
    if activity.stale_pending >= settings.stale_pending_count {
        flags.push(FraudFlag::StalePending);
    }
    flags
}

/// The window the velocity signal counts over.
pub const VELOCITY_WINDOW_MS: Millis = HOUR_MS;

pub use crate::email::normalise_email;

/// A bundled list of disposable-mail domains (the most common ones; an
/// operator's review catches the rest).
const DISPOSABLE_DOMAINS: &[&str] = &[
    "10minutemail.com",
    "20minutemail.com",
    "33mail.com",
    "anonbox.net",
    "burnermail.io",
    "discard.email",
    "dispostable.com",
    "dropmail.me",
    "emailondeck.com",
    "fakeinbox.com",
    "getairmail.com",
    "getnada.com",
    "guerrillamail.biz",
    "guerrillamail.com",
    "guerrillamail.de",
    "guerrillamail.info",
    "guerrillamail.net",
    "guerrillamail.org",
    "guerrillamailblock.com",
    "harakirimail.com",
    "inboxbear.com",
    "incognitomail.org",
    "jetable.org",
    "mail-temp.com",
    "mail.tm",
    "mailcatch.com",
    "maildrop.cc",
    "mailinator.com",
    "mailinator.net",
    "mailnesia.com",
    "mintemail.com",
    "moakt.com",
    "mohmal.com",
    "mytemp.email",
    "nada.email",
    "sharklasers.com",
    "spam4.me",
    "spambox.us",
    "spamgourmet.com",
    "temp-mail.io",
    "temp-mail.org",
    "tempail.com",
    "tempmail.com",
    "tempmail.net",
    "tempmailo.com",
    "tempr.email",
    "throwawaymail.com",
    "trashmail.com",
    "trashmail.de",
    "trashmail.net",
    "yopmail.com",
    "yopmail.fr",
    "yopmail.net",
];

pub fn is_disposable_domain(domain: &str) -> bool {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    DISPOSABLE_DOMAINS.binary_search(&domain.as_str()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::ParticipantId;

    fn person(id: u64) -> Participant {
        Participant {
            id: ParticipantId(id),
            anonymous_id: None,
            user_id: None,
            code: format!("CODE{id}"),
            joined_at: 0,
            traits: Default::default(),
            email_hash: None,
            email_domain: None,
            ip_hash: None,
            device_id: None,
        }
    }

    #[test]
    fn the_disposable_list_is_sorted_so_binary_search_works() {
        assert!(DISPOSABLE_DOMAINS.windows(2).all(|w| w[0] < w[1]));
        assert!(is_disposable_domain("Mailinator.com"));
        assert!(!is_disposable_domain("example.com"));
    }

    #[test]
    fn gmail_aliases_collapse_and_others_keep_dots() {
        assert_eq!(
            normalise_email(" J.Doe+promo@GMail.com ").as_deref(),
            Some("jdoe@gmail.com")
        );
        assert_eq!(
            normalise_email("j.doe@googlemail.com").as_deref(),
            Some("jdoe@gmail.com")
        );
        assert_eq!(
            normalise_email("j.doe+x@example.com").as_deref(),
            Some("j.doe@example.com")
        );
        assert_eq!(normalise_email("nope"), None);
        assert_eq!(normalise_email("+tag@gmail.com"), None);
    }

    #[test]
    fn each_signal_fires_on_its_own() {
        let s = FraudSettings::default();
        let mut a = person(1);
        let mut b = person(2);
        assert!(signals(&s, &a, &b, ReferrerActivity::default()).is_empty());
        a.ip_hash = Some("ip".into());
        b.ip_hash = Some("ip".into());
        a.device_id = Some("d".into());
        b.device_id = Some("d".into());
        b.email_domain = Some("yopmail.com".into());
        let flags = signals(
            &s,
            &a,
            &b,
            ReferrerActivity {
                referrals_last_hour: 10,
                stale_pending: 20,
            },
        );
        assert_eq!(
            flags,
            [
                FraudFlag::SharedIp,
                FraudFlag::SharedDevice,
                FraudFlag::Velocity,
                FraudFlag::DisposableEmail,
                FraudFlag::StalePending
            ]
        );
        let under = signals(
            &s,
            &person(1),
            &person(2),
            ReferrerActivity {
                referrals_last_hour: 9,
                stale_pending: 19,
            },
        );
        assert!(under.is_empty(), "the 10th referral in an hour is still fine");
    }
}
