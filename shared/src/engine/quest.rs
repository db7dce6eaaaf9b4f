//! Quests: the steps a referee completes for the referral to count. Events
//! arrive in whatever order the network delivers them, so each step is
//! recorded as done on its own; the referral is confirmed when every step is
//! done. Progress shown to people is the number of steps done from the start.

use super::config::CampaignConfig;
use super::model::{Millis, Referral, ReferralStatus};

/// Most steps a quest may have (they are kept as bits).
pub const MAX_STEPS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// The event is not a step of this quest, or the referral is settled.
    NotAStep,
    /// The step needs a trusted server event and this one came from a browser.
    NeedsTrusted,
    AlreadyDone,
    /// The window closed before this step: the referral expires.
    Expired,
    /// Recorded; `confirmed` when it was the last missing step.
    Done {
        step: usize,
        confirmed: bool,
    },
}

/// Bits of the steps done.
pub fn all_done(steps: usize) -> u32 {
    if steps >= 32 { u32::MAX } else { (1u32 << steps) - 1 }
}

/// Steps done from the start, for display ("2 of 3").
pub fn progress(done_mask: u32, steps: usize) -> usize {
    (0..steps).take_while(|i| done_mask & (1 << i) != 0).count()
}

/// What an event does to a referral's quest under the referral's (pinned)
/// configuration. Pure: the caller records the outcome.
pub fn advance(
    config: &CampaignConfig,
    referral: &Referral,
    done_mask: u32,
    event: &str,
    trusted: bool,
    now: Millis,
) -> StepOutcome {
    if referral.status != ReferralStatus::Pending {
        return StepOutcome::NotAStep;
    }
    let steps = &config.quest.steps;
    let Some(step) = steps.iter().position(|s| s.event == event) else {
        return StepOutcome::NotAStep;
    };
    if now > referral.created_at + config.quest_window_ms() {
        return StepOutcome::Expired;
    }
    if steps[step].trusted && !trusted {
        return StepOutcome::NeedsTrusted;
    }
    if done_mask & (1 << step) != 0 {
        return StepOutcome::AlreadyDone;
    }
    let mask = done_mask | (1 << step);
    StepOutcome::Done {
        step,
        confirmed: mask == all_done(steps.len()),
    }
}

/// Whether a pending referral's window has closed at `now`.
pub fn is_overdue(config: &CampaignConfig, referral: &Referral, now: Millis) -> bool {
    referral.status == ReferralStatus::Pending && now > referral.created_at + config.quest_window_ms()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::{DAY_MS, ParticipantId, ReferralId, Review};

    fn referral() -> Referral {
        Referral {
            id: ReferralId(1),
            referrer: ParticipantId(1),
            referee: ParticipantId(2),
            via: "CODE".into(),
            status: ReferralStatus::Pending,
            config_version: 1,
            created_at: 0,
            done_mask: 0,
            confirmed_at: None,
            flags: vec![],
            review: Review::Clear,
            reason: None,
        }
    }

    #[test]
    fn steps_in_any_order_confirm_when_all_are_done() {
        let c = CampaignConfig::from_json(
            r#"{"name":"t","quest":{"steps":[{"event":"signup"},{"event":"email_verified"},{"event":"purchase","trusted":true}]}}"#,
        )
        .unwrap();
        let r = referral();
        assert_eq!(advance(&c, &r, 0, "page", false, 1), StepOutcome::NotAStep);
        assert_eq!(advance(&c, &r, 0, "purchase", false, 1), StepOutcome::NeedsTrusted);
        assert_eq!(
            advance(&c, &r, 0, "purchase", true, 1),
            StepOutcome::Done {
                step: 2,
                confirmed: false
            }
        );
        assert_eq!(
            advance(&c, &r, 0b100, "signup", false, 1),
            StepOutcome::Done {
                step: 0,
                confirmed: false
            }
        );
        assert_eq!(advance(&c, &r, 0b101, "signup", false, 1), StepOutcome::AlreadyDone);
        assert_eq!(
            advance(&c, &r, 0b101, "email_verified", false, 1),
            StepOutcome::Done {
                step: 1,
                confirmed: true
            }
        );
        assert_eq!(progress(0b101, 3), 1);
        assert_eq!(progress(0b111, 3), 3);
        assert_eq!(
            advance(&c, &r, 0b101, "email_verified", false, 31 * DAY_MS),
            StepOutcome::Expired
        );
        assert!(is_overdue(&c, &r, 31 * DAY_MS));
        let settled = Referral {
            status: ReferralStatus::Confirmed,
            ..r
        };
        assert_eq!(advance(&c, &settled, 0, "signup", false, 1), StepOutcome::NotAStep);
    }
}
