//! Referral decisions: from a signup carrying attribution, whether a referral
//! is created, created as rejected, or refused, and why.

use super::config::{CampaignConfig, Mode};
use super::fraud::{FraudFlag, ReferrerActivity, signals};
use super::model::{Millis, Participant, ParticipantId};
use serde::{Deserialize, Serialize};

/// What a signup's attribution names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touch {
    /// A referral code (`?ref=`).
    pub code: Option<String>,
    /// An invitation token (`?invite=`).
    pub invitation: Option<String>,
    /// When the link was followed.
    pub at: Millis,
}

/// A single-use invitation (invite mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub token: String,
    pub inviter: ParticipantId,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub claimed_by: Option<ParticipantId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RefusalReason {
    UnknownCode,
    /// The invitation's time ran out, or the code's (`code_valid_days`).
    ExpiredCode,
    /// The code was replaced by another (regenerated, or a vanity code).
    RetiredCode,
    /// The code's owner can no longer refer (erased).
    InactiveCode,
    SelfReferral,
    AlreadyReferred,
    /// The click was longer ago than the attribution window.
    OutsideWindow,
    CampaignInactive,
    InvitationClaimed,
    /// A code in invite mode, or an invitation in code mode.
    WrongMode,
    /// The referrer reached `caps.per_referrer_max_confirmed`.
    ReferrerCapReached,
    /// The signup's person joined before (`machine::JOIN_GRACE_MS`): a
    /// link cannot claim someone who is already a participant.
    AlreadyJoined,
}

impl RefusalReason {
    /// Its name, as serde writes it (one naming rule for both derives).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Everything the decision looks at, loaded by the caller.
pub struct SignupFacts<'a> {
    pub config: &'a CampaignConfig,
    pub now: Millis,
    pub referee: &'a Participant,
    pub touch: &'a Touch,
    /// Whether the referee already has a referral (any status).
    pub already_referred: bool,
    /// The owner of the code, or the inviter of the invitation, if known.
    pub referrer: Option<&'a Participant>,
    pub referrer_active: bool,
    pub invitation: Option<&'a Invitation>,
    pub referrer_confirmed: u32,
    pub activity: ReferrerActivity,
    /// Why the touch's code brings no referral though it was someone's
    /// (`RetiredCode`, `ExpiredCode`); `None` when it can.
    pub code_refusal: Option<RefusalReason>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignupDecision {
    /// Create a pending referral; flags put it under review.
    Create {
        referrer: ParticipantId,
        flags: Vec<FraudFlag>,
    },
    /// Store the referral as rejected (an operator sees it), with the reason.
    CreateRejected {
        referrer: ParticipantId,
        reason: RefusalReason,
    },
    /// No referral at all.
    Refuse(RefusalReason),
}

pub fn decide_signup(f: &SignupFacts<'_>) -> SignupDecision {
    use RefusalReason::*;
    use SignupDecision::*;
    if !f.config.is_active_at(f.now) {
        return Refuse(CampaignInactive);
    }
    if f.already_referred {
        return Refuse(AlreadyReferred);
    }
    match (f.config.mode, &f.touch.code, &f.touch.invitation) {
        (Mode::Code, Some(_), _) | (Mode::Invite, _, Some(_)) => {}
        (Mode::Code, None, Some(_)) | (Mode::Invite, Some(_), None) => return Refuse(WrongMode),
        (_, None, None) => return Refuse(UnknownCode),
    }
    if let Some(reason) = f.code_refusal {
        return Refuse(reason);
    }
    let Some(referrer) = f.referrer else {
        return Refuse(UnknownCode);
    };
    if f.config.mode == Mode::Invite {
        match f.invitation {
            None => return Refuse(UnknownCode),
            Some(i) if i.claimed_by.is_some_and(|c| c != f.referee.id) => return Refuse(InvitationClaimed),
            Some(i) if f.now >= i.expires_at => return Refuse(ExpiredCode),
            Some(_) => {}
        }
    }
    if !f.referrer_active {
        return Refuse(InactiveCode);
    }
    if !crate::attribution::within_window(f.touch.at, f.now, f.config.attribution_window_ms()) {
        return Refuse(OutsideWindow);
    }
    if referrer.id == f.referee.id || referrer.anonymous_id.is_some() && referrer.anonymous_id == f.referee.anonymous_id
    {
        return Refuse(SelfReferral);
    }
    // Two accounts, one mailbox: the same person. Kept, as rejected, for review.
    if referrer.email_hash.is_some() && referrer.email_hash == f.referee.email_hash {
        return CreateRejected {
            referrer: referrer.id,
            reason: SelfReferral,
        };
    }
    if f.config
        .caps
        .per_referrer_max_confirmed
        .is_some_and(|max| f.referrer_confirmed >= max)
    {
        return CreateRejected {
            referrer: referrer.id,
            reason: ReferrerCapReached,
        };
    }
    Create {
        referrer: referrer.id,
        flags: signals(&f.config.fraud, referrer, f.referee, f.activity),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::DAY_MS;

    fn person(id: u64) -> Participant {
        Participant {
            id: ParticipantId(id),
            anonymous_id: Some(format!("anon{id}")),
            user_id: None,
            code: format!("CODE{id}"),
            joined_at: 0,
            traits: Default::default(),
            email_hash: Some(format!("mail{id}")),
            email_domain: None,
            ip_hash: None,
            device_id: None,
        }
    }

    struct Case {
        config: CampaignConfig,
        referrer: Option<Participant>,
        referee: Participant,
        touch: Touch,
        already: bool,
        active: bool,
        invitation: Option<Invitation>,
        confirmed: u32,
        now: Millis,
    }

    impl Case {
        fn new(json: &str) -> Self {
            Case {
                config: CampaignConfig::from_json(json).unwrap(),
                referrer: Some(person(1)),
                referee: person(2),
                touch: Touch {
                    code: Some("CODE1".into()),
                    invitation: None,
                    at: 10 * DAY_MS,
                },
                already: false,
                active: true,
                invitation: None,
                confirmed: 0,
                now: 10 * DAY_MS + 1000,
            }
        }

        fn decide(&self) -> SignupDecision {
            decide_signup(&SignupFacts {
                config: &self.config,
                now: self.now,
                referee: &self.referee,
                touch: &self.touch,
                already_referred: self.already,
                referrer: self.referrer.as_ref(),
                referrer_active: self.active,
                invitation: self.invitation.as_ref(),
                referrer_confirmed: self.confirmed,
                activity: ReferrerActivity::default(),
                code_refusal: None,
            })
        }
    }

    fn refused(c: &Case) -> RefusalReason {
        match c.decide() {
            SignupDecision::Refuse(r) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_good_signup_creates_a_referral() {
        let c = Case::new(r#"{"name":"t"}"#);
        assert_eq!(
            c.decide(),
            SignupDecision::Create {
                referrer: ParticipantId(1),
                flags: vec![]
            }
        );
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let base = r#"{"name":"t"}"#;
        let mut c = Case::new(base);
        c.referrer = None;
        assert_eq!(refused(&c), RefusalReason::UnknownCode);
        let mut c = Case::new(base);
        c.active = false;
        assert_eq!(refused(&c), RefusalReason::InactiveCode);
        let mut c = Case::new(base);
        c.referee = person(1);
        assert_eq!(refused(&c), RefusalReason::SelfReferral);
        let mut c = Case::new(base);
        c.referee.anonymous_id = Some("anon1".into());
        assert_eq!(refused(&c), RefusalReason::SelfReferral, "same browser");
        let mut c = Case::new(base);
        c.already = true;
        assert_eq!(refused(&c), RefusalReason::AlreadyReferred);
        let mut c = Case::new(base);
        c.now = c.touch.at + 91 * DAY_MS;
        assert_eq!(refused(&c), RefusalReason::OutsideWindow);
        let mut c = Case::new(r#"{"name":"t","ends_at":"1970-01-05T00:00:00Z"}"#);
        assert_eq!(refused(&c), RefusalReason::CampaignInactive);
        c.config.ends_at = None;
        c.touch = Touch {
            code: None,
            invitation: Some("tok".into()),
            at: c.touch.at,
        };
        assert_eq!(refused(&c), RefusalReason::WrongMode);
    }

    #[test]
    fn same_mailbox_and_caps_are_kept_as_rejected() {
        let mut c = Case::new(r#"{"name":"t","caps":{"per_referrer_max_confirmed":3}}"#);
        c.referee.email_hash = Some("mail1".into());
        assert_eq!(
            c.decide(),
            SignupDecision::CreateRejected {
                referrer: ParticipantId(1),
                reason: RefusalReason::SelfReferral
            }
        );
        let mut c = Case::new(r#"{"name":"t","caps":{"per_referrer_max_confirmed":3}}"#);
        c.confirmed = 3;
        assert_eq!(
            c.decide(),
            SignupDecision::CreateRejected {
                referrer: ParticipantId(1),
                reason: RefusalReason::ReferrerCapReached
            }
        );
    }

    #[test]
    fn invitations_are_claimed_once_and_expire() {
        let mut c = Case::new(r#"{"name":"t","mode":"invite"}"#);
        c.touch = Touch {
            code: None,
            invitation: Some("tok".into()),
            at: c.touch.at,
        };
        let inv = Invitation {
            token: "tok".into(),
            inviter: ParticipantId(1),
            created_at: 0,
            expires_at: 30 * DAY_MS,
            claimed_by: None,
        };
        c.invitation = Some(inv.clone());
        assert!(matches!(c.decide(), SignupDecision::Create { .. }));
        c.invitation = Some(Invitation {
            claimed_by: Some(ParticipantId(9)),
            ..inv.clone()
        });
        assert_eq!(refused(&c), RefusalReason::InvitationClaimed);
        c.invitation = Some(Invitation {
            expires_at: c.now,
            ..inv
        });
        assert_eq!(refused(&c), RefusalReason::ExpiredCode);
        c.invitation = None;
        assert_eq!(refused(&c), RefusalReason::UnknownCode);
    }
}
