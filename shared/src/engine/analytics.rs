//! Campaign analytics from the facts the engine keeps: the funnel (clicked →
//! signed up → confirmed), conversion, K-factor and a daily trend.

use super::model::{DAY_MS, Millis};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Funnel {
    pub clicks: u64,
    /// Referred signups (referrals created, any status).
    pub signups: u64,
    pub confirmed: u64,
    /// confirmed / clicks, 0 when there were no clicks.
    pub click_to_confirmed: f64,
    /// confirmed / signups.
    pub signup_to_confirmed: f64,
    /// Referred participants brought in per participant: the average number of
    /// invitations each participant sends (clicks / participants) times their
    /// conversion (confirmed / clicks). Above 1 the program grows by itself.
    pub k_factor: f64,
}

pub fn funnel(clicks: u64, signups: u64, confirmed: u64, participants: u64) -> Funnel {
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Funnel {
        clicks,
        signups,
        confirmed,
        click_to_confirmed: ratio(confirmed, clicks),
        signup_to_confirmed: ratio(confirmed, signups),
        k_factor: ratio(clicks, participants) * ratio(confirmed, clicks),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Day {
    /// Start of the day, UTC.
    pub day: Millis,
    pub clicks: u64,
    pub signups: u64,
    pub confirmed: u64,
}

/// Counts per UTC day from `from` to `to` (inclusive), every day present even
/// when empty, so a chart has no gaps.
pub fn daily_trend(clicks: &[Millis], signups: &[Millis], confirmed: &[Millis], from: Millis, to: Millis) -> Vec<Day> {
    let first = from.div_euclid(DAY_MS) * DAY_MS;
    let mut days: BTreeMap<Millis, Day> = BTreeMap::new();
    let mut d = first;
    while d <= to {
        days.insert(
            d,
            Day {
                day: d,
                ..Day::default()
            },
        );
        d += DAY_MS;
    }
    let mut count = |times: &[Millis], field: fn(&mut Day) -> &mut u64| {
        for t in times {
            if let Some(day) = days.get_mut(&(t.div_euclid(DAY_MS) * DAY_MS)) {
                *field(day) += 1;
            }
        }
    };
    count(clicks, |d| &mut d.clicks);
    count(signups, |d| &mut d.signups);
    count(confirmed, |d| &mut d.confirmed);
    days.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn funnel_ratios_and_k_factor() {
        let f = funnel(200, 50, 20, 100);
        assert_eq!(f.click_to_confirmed, 0.1);
        assert_eq!(f.signup_to_confirmed, 0.4);
        assert!((f.k_factor - 0.2).abs() < 1e-12);
        assert_eq!(funnel(0, 0, 0, 0).k_factor, 0.0);
    }

    #[test]
    fn trend_has_every_day() {
        let t = daily_trend(&[0, 10, DAY_MS * 2 + 5], &[DAY_MS], &[], 0, DAY_MS * 2 + 1);
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].clicks, t[1].signups, t[1].clicks, t[2].clicks), (2, 1, 0, 1));
    }
}
